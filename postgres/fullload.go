package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/validate"
	"io"
	"os"
	"sync"
	"time"

	"github.com/cutover-dev/cutover/internal/failpoint"
	"github.com/cutover-dev/cutover/internal/metrics"
	"github.com/cutover-dev/cutover/load"
	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pgx/v5"
)

// FullLoad runs the full load, or resumes it: schema (pre-data), the tables copied
// from one consistent snapshot, then secondary objects (post-data). The state of each
// step lives in the target's control schema, so a rerun after a crash goes on from
// where it stopped: tables already loaded are kept, partly loaded ones are redone.
func FullLoad(ctx context.Context, p *plan.Plan, opts engine.StartOptions) (err error) {
	out, disp := opts.Out, opts.Display
	if disp == nil {
		disp = &load.Lines{W: out}
	}
	// A load that begins is assessed, and any load reads the source (readSource): both
	// read only, so they start before the target tells whether the load begins.
	dir, err := os.MkdirTemp("", "cutover-schema-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rs := readSource(ctx, p, !p.CDC.Enabled, dir)
	defer func() { rs.close(context.WithoutCancel(ctx)) }()
	assessing := assessAsync(ctx, p, assessOptions{AssessOptions: engine.AssessOptions{LongTransaction: time.Minute}, relations: rs.allRelations})
	defer assessing.stop()
	tgt, err := ConnectSide(ctx, "target", p.Target)
	if err != nil {
		return err
	}
	defer tgt.Close(context.WithoutCancel(ctx))

	ctl, existed, err := ReadControl(ctx, tgt, p.ControlSchema)
	if err != nil {
		return err
	}
	st := control.State{Phase: control.PhaseNew, Mode: control.ModeCDC}
	if existed {
		// Upgraded first: the state is read with this version's columns.
		if ctl, err = OpenControl(ctx, tgt, p.ControlSchema); err != nil {
			return err
		}
		if st, err = ctl.State(ctx); err != nil {
			return err
		}
	}
	// The mode is the plan's when the load begins; from then on the recorded one.
	copyOnly := !p.CDC.Enabled
	if st.Phase != control.PhaseNew {
		copyOnly = st.Mode == control.ModeCopy
		if copyOnly != !p.CDC.Enabled {
			disp.Step(fmt.Sprintf("this migration is %s (recorded in the control schema %s); the plan's cdc.enabled: %t does not change it: cutover finish, then cutover start, to begin another way",
				modeText(st.Mode), p.ControlSchema, p.CDC.Enabled))
		}
	}
	defer rememberMode(p, copyOnly, &err)
	switch st.Phase {
	case control.PhaseLoaded, control.PhaseCDC, control.PhaseSwitching, control.PhaseSwitched, control.PhaseRollingBack, control.PhaseRolledBack:
		if copyOnly {
			fmt.Fprintf(out, "the copy is complete already (snapshot at position %s); nothing is left on the source. cutover finish drops the control schema\n", st.Position)
			return nil
		}
		fmt.Fprintf(out, "the full load is complete already (slot %s, position %s)\n", st.Slot, st.Position)
		return nil
	case control.PhaseFinishing, control.PhaseFinished:
		return errFinished(p)
	}
	resumed := st.Phase != control.PhaseNew
	if copyOnly != rs.copyOnly {
		// The recorded mode is not the plan's: read the source the way it needs.
		rs.close(context.WithoutCancel(ctx))
		sub, err := os.MkdirTemp(dir, "")
		if err != nil {
			return err
		}
		rs = readSource(ctx, p, copyOnly, sub)
	}
	if st.Phase == control.PhaseNew {
		report := assessing.wait()
		if report.Failed() {
			_ = report.WriteText(out)
			return check.ErrNotReady
		}
	} else {
		assessing.stop()
	}
	if ctl, err = OpenControl(ctx, tgt, p.ControlSchema); err != nil {
		return err
	}

	if err := rs.waitListed(); err != nil {
		return err
	}
	src, major, tables := rs.src, rs.major, rs.tables
	if !copyOnly {
		// A copy captures no change: every table is copied, whatever its replica identity.
		tables = applyNoIdentityPolicy(tables, p.CDC.NoIdentity)
	}

	take := takeSnapshot
	if copyOnly {
		take = rs.exportSnapshot
	}
	snap, err := take(ctx, p, src, tables, ctl, &st, disp)
	if err != nil {
		return err
	}
	failpoint.KillAt("start:snapshot")
	defer snap.Close(context.WithoutCancel(ctx))
	var pool *workerPool
	if st.Phase == control.PhaseSchema || st.Phase == control.PhaseLoading {
		// The workers' connections open while the schema is dumped and created.
		pool = openWorkers(ctx, p, snap.Name, p.FullLoad.Parallel)
		defer pool.close(context.WithoutCancel(ctx))
	}

	leave, dump, err := rs.schema(ctx, p, snap, tables)
	if err != nil {
		return err
	}
	if st.Phase == control.PhaseSchema {
		for _, l := range leave {
			if !l.hidden {
				disp.Step(fmt.Sprintf("not created on the target: %s (it needs %s, which the plan excludes)", l.object, l.excluded))
			}
		}
	}

	if st.Phase == control.PhaseSchema {
		present, err := tablesPresent(ctx, tgt, tables)
		if err != nil {
			return err
		}
		switch {
		case present == 0:
			disp.Step("creating the schema on the target (pre-data)")
			if err := dump.RestorePreData(ctx, p.Target); err != nil {
				return err
			}
			failpoint.KillAt("start:pre-data")
			if !copyOnly {
				// Tables made with default privileges are writable already.
				detail, stuck, err := closeTarget(ctx, p, tgt, ctl, tables)
				if err != nil {
					return err
				}
				sayClosed(detail, stuck, disp.Step)
			}
		case resumed && present == len(tables):
			// The pre-data is one transaction: the run that stopped committed it.
			disp.Step("the schema (pre-data) is on the target already")
		default:
			return fmt.Errorf("the target holds %d of the %d tables to migrate, but cutover did not create them (the state says the schema is not made yet)\n"+
				"fix: drop those tables on the target (or the whole database, and create it again empty), then run cutover start again", present, len(tables))
		}
		st.Phase = control.PhaseLoading
		if err := ctl.SetState(ctx, st); err != nil {
			return err
		}
	}
	if st.Phase == control.PhaseLoading {
		if err := copyTables(ctx, p, src, tgt, ctl, snap, pool, tables, major, disp, opts.Metrics); err != nil {
			return err
		}
		st.Phase = control.PhasePostData
		if err := ctl.SetState(ctx, st); err != nil {
			return err
		}
	}
	if st.Phase == control.PhasePostData {
		disp.Step(fmt.Sprintf("building indexes, constraints, triggers and materialized views (%d jobs)", p.FullLoad.Parallel))
		built, err := dump.postDataBuilt(ctx, src, tgt)
		if err != nil {
			return err
		}
		if len(built) > 0 {
			disp.Step(fmt.Sprintf("%d of them are on the target already (built by the run that stopped)", len(built)))
		}
		if err := dump.RestorePostData(ctx, p.Target, p.FullLoad.Parallel, built); err != nil {
			return err
		}
		failpoint.KillAt("start:post-data")
		disp.Step("giving the objects their owners and grants from the source")
		res, err := dump.restoreAccess(ctx, tgt)
		if err != nil {
			return err
		}
		disp.Step(fmt.Sprintf("owners and grants: %d statements applied", res.applied))
		failpoint.KillAt("start:grants")
		if !copyOnly {
			// The grants just given may open the tables to more roles.
			detail, stuck, err := closeTarget(ctx, p, tgt, ctl, tables)
			if err != nil {
				return err
			}
			sayClosed(detail, stuck, disp.Step)
		}
		for _, l := range res.skippedLines() {
			disp.Step("owners and grants: not applied, " + l + ": those objects keep the migration role as owner or lack the grant;" +
				" create the roles on the target before the load (pg_dumpall --roles-only on the source lists them) to keep them")
		}
		if copyOnly {
			if err := copySequences(ctx, p, src, tgt, tables, disp); err != nil {
				return err
			}
		}
		st.Phase = control.PhaseLoaded
		if err := ctl.SetState(ctx, st); err != nil {
			return err
		}
		if copyOnly && p.Validation.AfterLoad {
			// At the copy's snapshot, still open: what the source held when it was copied.
			if err := validateAfterLoad(ctx, p, snap.Name, disp); err != nil {
				return err
			}
		}
	}
	if copyOnly {
		fmt.Fprintf(out, "copy complete, from a snapshot of the source at position %s. No replication slot, publication or\n"+
			"control schema was left on the source; there is no change stream and nothing to switch. cutover finish drops\n"+
			"the control schema %s on the target.\n", st.Position, p.ControlSchema)
		return nil
	}
	fmt.Fprintf(out, "full load complete. The change stream starts at position %s of slot %s on the source;\n"+
		"the slot keeps the source's WAL from there until cutover start goes on into change data capture or cutover finish drops it.\n", st.Position, st.Slot)
	return nil
}

// takeSnapshot creates the migration's slot with its exported snapshot on the first run.
// A resumed load cannot have that snapshot back (it died with its connection), so it
// takes a new one from a temporary slot: the tables it copies then start their change
// stream at the new position, the ones loaded before at the slot's.
func takeSnapshot(ctx context.Context, p *plan.Plan, src *pgx.Conn, tables []*relation, ctl *Control, st *control.State, disp load.Display) (*Snapshot, error) {
	switch st.Phase {
	case control.PhaseNew, control.PhaseSchema:
		if st.Slot != "" {
			// A run that stopped before any table was copied: start over with a new slot.
			if err := DropSlot(ctx, p.Source, st.Slot); err != nil {
				return nil, fmt.Errorf("drop the slot %s of the run that stopped: %w", st.Slot, err)
			}
			if err := dropPublications(ctx, src, st.Slot); err != nil {
				return nil, err
			}
			if err := dropDDLCapture(ctx, src, p.ControlSchema, st.Slot); err != nil {
				return nil, err
			}
		}
		slot := "cutover_" + randomHex(4)
		// Named in the state before anything is made on the source: a run killed while
		// it makes them (publications, capture, the slot holding WAL) drops them on the
		// rerun (above) instead of leaving them.
		st.Slot = slot
		if err := ctl.SetState(ctx, *st); err != nil {
			return nil, err
		}
		if err := createPublications(ctx, src, slot, tables, p.CDC.NoIdentity); err != nil {
			return nil, err
		}
		if p.CDC.DDL == plan.DDLReplicate {
			err := installDDLCapture(ctx, src, p.ControlSchema, slot)
			switch {
			case errors.Is(err, errNoDDLCapture):
				disp.Step(fmt.Sprintf("schema changes on the source are not captured (%v): a column the source adds still reaches the target through the change stream's own description of the table; any other schema change stops CDC with the statement to run on the target", err))
			case err != nil:
				return nil, err
			default:
				disp.Step("schema changes on the source are captured by the event triggers " + slot + "_ddl_* (cdc.ddl: replicate)")
			}
		}
		snap, err := CreateSnapshot(ctx, p.Source, slot, false)
		if err != nil {
			return nil, err
		}
		failpoint.KillAt("start:slot") // the slot made, its position not recorded
		*st = control.State{Phase: control.PhaseSchema, Slot: slot, Position: snap.Position}
		if err := ctl.SetState(ctx, *st); err != nil {
			snap.Close(ctx)
			return nil, err
		}
		disp.Step(fmt.Sprintf("created replication slot %s; snapshot %s at position %s", slot, snap.Name, snap.Position))
		return snap, nil
	}
	snap, err := CreateSnapshot(ctx, p.Source, st.Slot+"_resume_"+randomHex(2), true)
	if err != nil {
		return nil, err
	}
	disp.Step(fmt.Sprintf("resuming the %s phase with a new snapshot at position %s", st.Phase, snap.Position))
	return snap, nil
}

// exportSnapshot is takeSnapshot for a one-shot copy: it records the snapshot that
// readSource exported, by a REPEATABLE READ transaction, with no slot. A resumed copy
// takes a new one: the tables it copies are then at a later point than those loaded
// before. The snapshot is the caller's to close from then on.
func (rs *sourceRead) exportSnapshot(ctx context.Context, p *plan.Plan, _ *pgx.Conn, _ []*relation, ctl *Control, st *control.State, disp load.Display) (*Snapshot, error) {
	snap := rs.snap
	rs.snap = nil
	switch st.Phase {
	case control.PhaseNew, control.PhaseSchema:
		*st = control.State{Phase: control.PhaseSchema, Position: snap.Position, Mode: control.ModeCopy}
		err := ctl.SetState(ctx, *st)
		if err == nil {
			err = ctl.SetMode(ctx, control.ModeCopy)
		}
		if err != nil {
			snap.Close(ctx)
			return nil, err
		}
		disp.Step(fmt.Sprintf("a one-shot copy (cdc.enabled: false): snapshot %s at position %s, no replication slot", snap.Name, snap.Position))
	default:
		disp.Step(fmt.Sprintf("resuming the %s phase of the copy with a new snapshot at position %s", st.Phase, snap.Position))
	}
	return snap, nil
}

// modeText names a migration's mode for messages.
func modeText(mode string) string {
	if mode == control.ModeCopy {
		return "a one-shot copy (cdc.enabled: false)"
	}
	return "a migration with change data capture"
}

// copySequences sets every sequence of the migrated schemas on the target from the
// source, as the switch's sequences step does (with its headroom).
func copySequences(ctx context.Context, p *plan.Plan, src, tgt *pgx.Conn, tables []*relation, disp load.Display) error {
	s := &switcher{p: p, src: src, tgt: tgt, tables: tables, out: io.Discard}
	msg, err := s.syncSequences(src, tgt, "source", "target")(ctx)
	if err != nil {
		return fmt.Errorf("set the sequences on the target: %w", err)
	}
	disp.Step(msg)
	return nil
}

// validateAfterLoad validates every table of a copy at its snapshot (validation.after_load).
func validateAfterLoad(ctx context.Context, p *plan.Plan, snapshot string, disp load.Display) error {
	disp.Step("validating every table (validation.after_load)")
	rep, err := validatePass(ctx, p, validateOptions{Options: validate.Options{BusyPercent: 100}, sourceSnapshot: snapshot})
	if err != nil {
		return fmt.Errorf("validation after the load: %w", err)
	}
	disp.Step(validationSummary(rep))
	if !rep.Equal {
		return fmt.Errorf("validation after the load: %w", validate.ErrNotEqual)
	}
	return nil
}

// tablesPresent counts the tables to migrate that exist on the target.
func tablesPresent(ctx context.Context, tgt *pgx.Conn, tables []*relation) (int, error) {
	names := make([]string, len(tables))
	for i, r := range tables {
		names[i] = r.qname
	}
	var n int
	err := tgt.QueryRow(ctx, `SELECT count(to_regclass(t)) FROM unnest($1::text[]) t`, names).Scan(&n)
	return n, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// excluded lists the source's relations the plan does not migrate.
func excluded(all, included []*relation) []*relation {
	in := map[uint32]bool{}
	for _, r := range included {
		in[r.oid] = true
	}
	var out []*relation
	for _, r := range all {
		if !in[r.oid] {
			out = append(out, r)
		}
	}
	return out
}

// copyTables copies every table not yet loaded, inside the snapshot.
func copyTables(ctx context.Context, p *plan.Plan, src, tgt *pgx.Conn, ctl *Control, snap *Snapshot, pool *workerPool, tables []*relation, major int, disp load.Display, m *metrics.Metrics) error {
	// The plan is read inside the snapshot so block counts match what the workers see.
	if _, err := src.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"); err != nil {
		return err
	}
	if _, err := src.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+snap.Name+"'"); err != nil {
		return err
	}
	var tgtMajor int
	if err := tgt.QueryRow(ctx, "SELECT current_setting('server_version_num')::int / 10000").Scan(&tgtMajor); err != nil {
		return err
	}
	cp, err := planCopy(ctx, src, tables, p.FullLoad.Parallel, major, major == tgtMajor)
	if _, rbErr := src.Exec(ctx, "ROLLBACK"); err == nil {
		err = rbErr
	}
	if err != nil {
		return err
	}
	oids := map[[2]string]uint32{}
	for _, r := range tables {
		oids[[2]string{r.schema, r.name}] = r.oid
	}
	stats := make([]control.TableStat, len(cp.tables))
	for i, t := range cp.tables {
		stats[i] = control.TableStat{Schema: t.Schema, Table: t.Name, EstimatedBytes: t.EstimatedBytes, SourceOID: oids[[2]string{t.Schema, t.Name}]}
	}
	if err := ctl.QueueTables(ctx, stats); err != nil {
		return err
	}
	done, err := ctl.TableStats(ctx)
	if err != nil {
		return err
	}
	state := map[string]string{}
	for _, s := range done {
		state[s.Schema+"."+s.Table] = s.State
	}
	var todo []*load.Table
	for _, t := range cp.tables {
		switch state[t.String()] {
		case control.TableLoaded:
			continue
		case control.TableLoading, control.TableError:
			// A stopped run copied part of it (a table is marked loading before its first
			// row): empty it, it is redone whole. A queued table was never touched.
			if _, err := tgt.Exec(ctx, "TRUNCATE ONLY "+cp.specs[t].qname); err != nil {
				return fmt.Errorf("table %s: empty it on the target before copying: %w", cp.specs[t].qname, err)
			}
		}
		todo = append(todo, t)
	}
	disp.Step(fmt.Sprintf("copying %d tables (%d loaded before) with %d workers", len(todo), len(cp.tables)-len(todo), p.FullLoad.Parallel))
	rec := &recorder{ctl: ctl, position: snap.Position, disp: disp, metrics: m}
	disp.Begin(todo)
	defer disp.End()
	defer pool.close(context.WithoutCancel(ctx)) // the workers opened ahead that the copy did not need
	return load.Run(ctx, todo, p.FullLoad.Parallel, func(ctx context.Context) (load.Worker, error) {
		return pool.get(ctx, p, snap.Name, cp)
	}, rec)
}

// recorder keeps table_stats current and shows each table's progress.
type recorder struct {
	ctl      *Control
	position string
	disp     load.Display
	metrics  *metrics.Metrics
}

var _ load.Recorder = (*recorder)(nil)

func (r *recorder) Started(ctx context.Context, t *load.Table) error {
	r.disp.Started(t)
	return r.ctl.tableUpdate(ctx, t.Schema, t.Name, "state = 'loading', rows = 0, bytes = 0, started_at = now(), finished_at = NULL, error = ''")
}

// Progress only touches a table still loading: a late report must not undo the
// final counts of a table that was loaded meanwhile.
func (r *recorder) Progress(ctx context.Context, t *load.Table, rows, bytes int64) error {
	r.disp.Progress(t, rows, bytes)
	return r.ctl.tableProgress(ctx, t.Schema, t.Name, rows, bytes)
}

func (r *recorder) Loaded(ctx context.Context, t *load.Table, rows, bytes int64, took time.Duration) error {
	err := r.ctl.tableUpdate(ctx, t.Schema, t.Name, "state = 'loaded', rows = $3, bytes = $4, finished_at = now(), position = $5", rows, bytes, r.position)
	if err == nil {
		r.disp.Loaded(t, rows, bytes, took)
		r.metrics.FullLoadRows(t.String(), rows)
	}
	return err
}

func (r *recorder) Failed(ctx context.Context, t *load.Table, err error) error {
	r.disp.Failed(t, err)
	return r.ctl.tableUpdate(ctx, t.Schema, t.Name, "state = 'error', error = $3, finished_at = now()", err.Error())
}

// IsCopy reports whether the migration on the target is a one-shot copy: recorded so
// in its control schema, or about to begin as one (no control schema yet, and the
// plan's cdc.enabled is false).
func IsCopy(ctx context.Context, p *plan.Plan) (bool, error) {
	if m, ok := loadedModes.LoadAndDelete(p); ok && m.(loadedMode).cdcEnabled == p.CDC.Enabled {
		return m.(loadedMode).copyOnly, nil
	}
	tgt, err := ConnectSide(ctx, "target", p.Target)
	if err != nil {
		return false, err
	}
	defer tgt.Close(context.WithoutCancel(ctx))
	ctl, ok, err := ReadControl(ctx, tgt, p.ControlSchema)
	if err != nil || !ok {
		return !p.CDC.Enabled, err
	}
	st, err := ctl.State(ctx)
	if err != nil {
		return false, err
	}
	if st.Phase == control.PhaseNew {
		return !p.CDC.Enabled, nil
	}
	return st.Mode == control.ModeCopy, nil
}

// loadedModes holds, per plan, the mode of the migration a FullLoad of this process
// just completed, for the IsCopy that follows it (cutover start's): the answer without
// another connection to the target.
var loadedModes sync.Map // *plan.Plan -> loadedMode

type loadedMode struct{ cdcEnabled, copyOnly bool }

// rememberMode records the mode of a FullLoad that returns *err nil, for IsCopy.
func rememberMode(p *plan.Plan, copyOnly bool, err *error) {
	if *err == nil {
		loadedModes.Store(p, loadedMode{cdcEnabled: p.CDC.Enabled, copyOnly: copyOnly})
	}
}
