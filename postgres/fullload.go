package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/internal/failpoint"
	"github.com/cutover-dev/cutover/internal/metrics"
	"github.com/cutover-dev/cutover/load"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/validate"
	"github.com/jackc/pgx/v5"
)

// FullLoad runs the full load, or resumes it: load.FullLoad's checklist, each step
// of it run on PostgreSQL by a loadJob.
func FullLoad(ctx context.Context, p *plan.Plan, opts engine.StartOptions) error {
	out, disp := opts.Out, opts.Display
	if disp == nil {
		disp = &load.Lines{W: out}
	}
	job := &loadJob{p: p, out: out, disp: disp, metrics: opts.Metrics}
	copyOnly, err := load.FullLoad(ctx, p, job, out, disp, load.Words{Complete: func(st control.State) string {
		return fmt.Sprintf("full load complete. The change stream starts at position %s of slot %s on the source;\n"+
			"the slot keeps the source's WAL from there until cutover start goes on into change data capture or cutover finish drops it.\n", st.Position, st.Slot)
	}})
	if err == nil {
		rememberMode(p, copyOnly)
	}
	return err
}

// loadJob is a full load on PostgreSQL: the source read in the background with the
// assessment (readSource), the schema dumped and restored with pg_dump's sections,
// the rows copied by COPY workers at the snapshot exported with the slot.
type loadJob struct {
	p       *plan.Plan
	out     io.Writer
	disp    load.Display
	metrics *metrics.Metrics

	dir       string // the schema dump's
	rs        *sourceRead
	assessing *assessRun
	tgt       *pgx.Conn
	ctl       *Control
	existed   bool // the target had a control schema

	src    *pgx.Conn
	major  int
	tables []*relation
	snap   *Snapshot
	pool   *workerPool
	dump   *SchemaDump
}

var _ load.Job = (*loadJob)(nil)

// Begin starts reading the source and the assessment — both only read, so they start
// before the target tells whether the load begins — and reads the control state.
func (l *loadJob) Begin(ctx context.Context) (control.State, error) {
	st := control.State{Phase: control.PhaseNew, Mode: control.ModeCDC}
	dir, err := os.MkdirTemp("", "cutover-schema-")
	if err != nil {
		return st, err
	}
	l.dir = dir
	l.rs = readSource(ctx, l.p, !l.p.CDC.Enabled, dir)
	l.assessing = assessAsync(ctx, l.p, assessOptions{AssessOptions: engine.AssessOptions{LongTransaction: time.Minute}, relations: l.rs.allRelations})
	if l.tgt, err = ConnectSide(ctx, "target", l.p.Target); err != nil {
		return st, err
	}
	if l.ctl, l.existed, err = ReadControl(ctx, l.tgt, l.p.ControlSchema); err != nil || !l.existed {
		return st, err
	}
	// Upgraded first: the state is read with this version's columns.
	if l.ctl, err = OpenControl(ctx, l.tgt, l.p.ControlSchema); err != nil {
		return st, err
	}
	return l.ctl.State(ctx)
}

// ReadSourceAs reads the source again when the recorded mode is not the plan's.
func (l *loadJob) ReadSourceAs(ctx context.Context, copyOnly bool) error {
	if copyOnly == l.rs.copyOnly {
		return nil
	}
	l.rs.close(context.WithoutCancel(ctx))
	sub, err := os.MkdirTemp(l.dir, "")
	if err != nil {
		return err
	}
	l.rs = readSource(ctx, l.p, copyOnly, sub)
	return nil
}

func (l *loadJob) Assessment() *check.Report { return l.assessing.wait() }
func (l *loadJob) SkipAssessment()           { l.assessing.stop() }

func (l *loadJob) OpenControl(ctx context.Context) (err error) {
	l.ctl, err = OpenControl(ctx, l.tgt, l.p.ControlSchema)
	return err
}

func (l *loadJob) SetState(ctx context.Context, st control.State) error {
	return l.ctl.SetState(ctx, st)
}

// Close ends the snapshot, the workers, the source's reading and the connections.
func (l *loadJob) Close(ctx context.Context) {
	if l.pool != nil {
		l.pool.close(ctx)
	}
	if l.snap != nil {
		l.snap.Close(ctx)
	}
	if l.tgt != nil {
		l.tgt.Close(ctx)
	}
	if l.assessing != nil {
		l.assessing.stop()
	}
	if l.rs != nil {
		l.rs.close(ctx)
	}
	if l.dir != "" {
		os.RemoveAll(l.dir)
	}
}

// TableList waits for the source's tables; a replicating load applies the plan's
// policy for tables without replica identity (a copy captures no change: every table
// is copied, whatever its replica identity).
func (l *loadJob) TableList(ctx context.Context, copyOnly bool) error {
	if err := l.rs.waitListed(); err != nil {
		return err
	}
	l.src, l.major, l.tables = l.rs.src, l.rs.major, l.rs.tables
	if !copyOnly {
		l.tables = applyNoIdentityPolicy(l.tables, l.p.CDC.NoIdentity)
	}
	return nil
}

// Snapshot takes the slot's snapshot (takeSnapshot), or a copy's (exportSnapshot).
func (l *loadJob) Snapshot(ctx context.Context, st *control.State, copyOnly bool) (err error) {
	take := takeSnapshot
	if copyOnly {
		take = l.rs.exportSnapshot
	}
	l.snap, err = take(ctx, l.p, l.src, l.tables, l.ctl, st, l.disp)
	return err
}

// OpenWorkers opens the workers' connections while the schema is dumped and created.
func (l *loadJob) OpenWorkers(ctx context.Context) {
	l.pool = openWorkers(ctx, l.p, l.snap.Name, l.p.FullLoad.Parallel)
}

// ReadSchema dumps the schema at the snapshot, without the objects that need an
// excluded table.
func (l *loadJob) ReadSchema(ctx context.Context, announce bool) error {
	leave, dump, err := l.rs.schema(ctx, l.p, l.snap, l.tables)
	if err != nil {
		return err
	}
	l.dump = dump
	if announce {
		for _, lo := range leave {
			if !lo.hidden {
				l.disp.Step(fmt.Sprintf("not created on the target: %s (it needs %s, which the plan excludes)", lo.object, lo.excluded))
			}
		}
	}
	return nil
}

func (l *loadJob) TablesPresent(ctx context.Context) (int, int, error) {
	n, err := tablesPresent(ctx, l.tgt, l.tables)
	return n, len(l.tables), err
}

// CreateTables restores the dump's pre-data: one transaction.
func (l *loadJob) CreateTables(ctx context.Context) error {
	return l.dump.RestorePreData(ctx, l.p.Target)
}

// CloseTarget closes the target to every role but the migration's (closeTarget).
func (l *loadJob) CloseTarget(ctx context.Context) error {
	detail, stuck, err := closeTarget(ctx, l.p, l.tgt, l.ctl, l.tables)
	if err != nil {
		return err
	}
	sayClosed(detail, stuck, l.disp.Step)
	return nil
}

// CopyTables copies the rows with the workers opened ahead.
func (l *loadJob) CopyTables(ctx context.Context) error {
	return copyTables(ctx, l.p, l.src, l.tgt, l.ctl, l.snap, l.pool, l.tables, l.major, l.disp, l.metrics)
}

// BuildObjects restores the dump's post-data, but what the run that stopped built.
func (l *loadJob) BuildObjects(ctx context.Context) error {
	l.disp.Step(fmt.Sprintf("building indexes, constraints, triggers and materialized views (%d jobs)", l.p.FullLoad.Parallel))
	built, err := l.dump.postDataBuilt(ctx, l.src, l.tgt)
	if err != nil {
		return err
	}
	if len(built) > 0 {
		l.disp.Step(fmt.Sprintf("%d of them are on the target already (built by the run that stopped)", len(built)))
	}
	return l.dump.RestorePostData(ctx, l.p.Target, l.p.FullLoad.Parallel, built)
}

// GiveAccess gives the objects their owners and grants from the source; what a role
// missing on the target prevents is said.
func (l *loadJob) GiveAccess(ctx context.Context) error {
	l.disp.Step("giving the objects their owners and grants from the source")
	res, err := l.dump.restoreAccess(ctx, l.tgt)
	if err != nil {
		return err
	}
	l.disp.Step(fmt.Sprintf("owners and grants: %d statements applied", res.applied))
	for _, line := range res.skippedLines() {
		l.disp.Step("owners and grants: not applied, " + line + ": those objects keep the migration role as owner or lack the grant;" +
			" create the roles on the target before the load (pg_dumpall --roles-only on the source lists them) to keep them")
	}
	return nil
}

func (l *loadJob) CopySequences(ctx context.Context) error {
	return copySequences(ctx, l.p, l.src, l.tgt, l.tables, l.disp)
}

func (l *loadJob) ValidateAtSnapshot(ctx context.Context) error {
	return validateAfterLoad(ctx, l.p, l.snap.Name, l.disp)
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
	disp.Step(validate.Summary(rep))
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
	todo, partly := load.Pending(cp.tables, done)
	for _, t := range partly {
		if _, err := tgt.Exec(ctx, "TRUNCATE ONLY "+cp.specs[t].qname); err != nil {
			return fmt.Errorf("table %s: empty it on the target before copying: %w", cp.specs[t].qname, err)
		}
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

// rememberMode records the mode of a FullLoad that succeeded, for IsCopy.
func rememberMode(p *plan.Plan, copyOnly bool) {
	loadedModes.Store(p, loadedMode{cdcEnabled: p.CDC.Enabled, copyOnly: copyOnly})
}
