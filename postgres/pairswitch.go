package postgres

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/load"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/validate"
	"github.com/jackc/pgx/v5"
)

// The cut over from another engine to PostgreSQL, and back: the checklists of the
// cutover package on the two databases. PostgreSQL's half is the same switcher as
// between two PostgreSQL servers, on the target only (its runbook, gates' phase,
// block, pg_cron jobs, QA); the source's half is its engine's (engine.SwitchSource).
//
//   - The sync marker is written on the source (SwitchSource.Marker); the applier
//     records it in state.sync_marker when everything before it is committed. Back,
//     a marker is a logical message on the target that reverse replication's
//     applier records on the source.
//   - Identities are set from the source's AUTO_INCREMENT counters as they are at the
//     switch (the translation's identities, the schema read again); a rollback
//     raises the source's counters past the target's identities.
//   - Reverse replication streams the target's tables from a slot of the target
//     (publications made before the block) through the translation's back
//     converters into the source engine's applier, which keeps its position on the
//     source. The source's triggers are dropped for the while (they would fire again
//     on replicated rows) and come back at a rollback's unlock.
//   - A rollback records the source's position before its unlock: forward replication
//     goes on from there, after what reverse replication wrote.
//   - The gates refuse a switch whose target accepts keys the source's would refuse
//     (case- or pad-insensitive unique keys become case- and pad-sensitive): reverse
//     replication could not write such rows back.

// pairSwitcher is the switcher of a migration from another engine.
type pairSwitcher struct {
	*switcher
	src      engine.SwitchSource
	half     load.SourceHalf
	tr       *translation
	validate func(context.Context, validate.Options) (*validate.Report, error)
}

var (
	_ cutover.Sides  = (*pairSwitcher)(nil)
	_ cutover.Titler = (*pairSwitcher)(nil)
)

// pairTitles are the checklists' steps between two engines.
var pairTitles = map[string]string{
	"switch gates":        "check the gates: CDC running and caught up (a marker through it), no apply exceptions, no known differences, reverse replication possible, the target's keys as strict as the source's",
	"switch publications": "prepare reverse replication before the block: publications on the target, the control database on the source",
	"switch block":        "block writes on the source (its engine's way: accounts locked, sessions ended)",
	"switch jobs":         "suspend scheduled jobs on the source (events, suspend_jobs hooks)",
	"switch sequences":    "set the target's identities from the source's AUTO_INCREMENT counters",
	"switch objects":      "secondary objects on the target: every index valid",
	"switch reverse":      "drop the source's triggers (recorded), then start reverse replication, target to source, from the target's position now",
	"switch unlock":       "unlock: the target's users write, its jobs run",
	"rollback jobs":       "suspend scheduled jobs on the target (pg_cron, suspend_jobs hooks)",
	"rollback sequences":  "raise the source's AUTO_INCREMENT counters past the target's identities",
	"rollback unlock":     "unlock the source: the position forward replication resumes from recorded, its triggers back, its accounts and events back",
	"rollback cleanup":    "drop reverse replication's slot and publications on the target; forward replication resumes after what reverse replication wrote",
}

func (s *pairSwitcher) StepTitle(kind, step string) string {
	return pairTitles[kind+" "+step]
}

// SwitchPair runs the switch or the rollback of kind between two engines.
func (Engine) SwitchPair(ctx context.Context, p *plan.Plan, opts cutover.Options, kind string, half load.SourceHalf,
	validate func(context.Context, validate.Options) (*validate.Report, error), source func() (engine.SwitchSource, error)) (*cutover.Result, error) {
	s, err := openPairSwitcher(ctx, p, opts, kind, half, source)
	if err != nil {
		return nil, err
	}
	s.validate = validate
	defer s.close(context.WithoutCancel(ctx))
	if kind == "rollback" {
		return cutover.Rollback(ctx, s, p, opts)
	}
	return cutover.Switch(ctx, s, p, opts)
}

// ApprovePair approves the waiting switch: on the target, as between two PostgreSQL
// servers.
func (Engine) ApprovePair(ctx context.Context, p *plan.Plan, by string) (string, error) {
	return Approve(ctx, p, by)
}

func openPairSwitcher(ctx context.Context, p *plan.Plan, opts cutover.Options, kind string, half load.SourceHalf, source func() (engine.SwitchSource, error)) (_ *pairSwitcher, err error) {
	s := &pairSwitcher{switcher: &switcher{p: p, opts: opts, out: opts.Out, dry: opts.DryRun}, half: half}
	if s.out == nil {
		s.out = io.Discard
	}
	defer func() {
		if err != nil {
			s.close(context.WithoutCancel(ctx))
		}
	}()
	if s.tgt, err = ConnectSide(ctx, "target", p.Target); err != nil {
		return nil, err
	}
	ctl, ok, err := ReadControl(ctx, s.tgt, p.ControlSchema)
	if err == nil && !ok {
		err = fmt.Errorf("no migration on this target (no control schema %s): run cutover start first", p.ControlSchema)
	}
	if err == nil {
		ctl, err = OpenControl(ctx, s.tgt, p.ControlSchema)
	}
	if err != nil {
		return nil, err
	}
	s.ctl = ctl
	if s.st, err = ctl.State(ctx); err != nil {
		return nil, err
	}
	if s.st.Mode == control.ModeCopy {
		return nil, fmt.Errorf("nothing to %s: the migration %s is a one-shot copy (cdc.enabled: false) with no change stream; point the applications at the target yourself, and run cutover finish to drop its control schema", kind, p.ControlSchema)
	}
	if err := s.tgt.QueryRow(ctx, "SELECT changes_tracked_from FROM "+ctl.table("state")).Scan(&s.trackedFrom); err != nil {
		return nil, fmt.Errorf("target: read whether changes are tracked from %s: %w", ctl.table("state"), err)
	}
	var locked bool
	if err := s.tgt.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", int64(switchLock)).Scan(&locked); err != nil {
		return nil, err
	}
	if !locked && !s.dry {
		return nil, fmt.Errorf("another cutover switch or rollback is running on this migration: wait for it (cutover status shows its steps)")
	}
	if err := s.tgt.QueryRow(ctx, "SELECT current_database()").Scan(&s.tgtDB); err != nil {
		return nil, err
	}
	if s.tr, err = pairTranslation(ctx, p, half, s.tgt); err != nil {
		return nil, err
	}
	if s.tables, err = s.tr.relations(ctx, s.tgt); err != nil {
		return nil, err
	}
	if s.src, err = source(); err != nil {
		return nil, err
	}
	s.hooks = cutover.PlanHooks(p, s.out, s.dry)
	return s, nil
}

// pairTranslation reads the source's schema through half and translates it as the
// load did.
func pairTranslation(ctx context.Context, p *plan.Plan, half load.SourceHalf, tgt *pgx.Conn) (*translation, error) {
	if err := half.Open(ctx); err != nil {
		return nil, err
	}
	if err := half.TableList(ctx); err != nil {
		return nil, err
	}
	sch, err := half.ReadSchema(ctx, false)
	if err != nil {
		return nil, err
	}
	postgis, err := targetPostGIS(ctx, tgt)
	if err != nil {
		return nil, err
	}
	return translate(sch, pairSchemaName(sch), pairRules(p, sch, postgis))
}

func (s *pairSwitcher) close(ctx context.Context) {
	if s.src != nil {
		s.src.Close()
	}
	if s.tgt != nil {
		s.tgt.Close(ctx)
	}
}

// reverseSlotOf is reverse replication's slot on the target: a PostgreSQL name made
// of the forward stream's (a MySQL stream's is "server_id N").
func reverseSlotOf(st control.State) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return -1
	}, st.Slot)
	return cutName("cutover_"+name, maxIdent-len("_rev_inserts")) + "_rev"
}

// reverseStreamLock is the advisory lock (on the target) reverse replication holds.
func reverseStreamLock(p *plan.Plan) string { return p.ControlSchema + ".reverse" }

// Runs: the target's (the embedded switcher's), and the source's half acts for the
// same run.

func (s *pairSwitcher) Begin(r *cutover.Run) {
	s.switcher.Begin(r)
	s.src.Begin(r)
}

// Reconnect opens the target's connection again, with the switch lock.
func (s *pairSwitcher) Reconnect(ctx context.Context) error { return s.reconnectTarget(ctx) }

// Gates

func (s *pairSwitcher) CheckGates(ctx context.Context, kind string) (string, error) {
	if kind == "rollback" {
		return s.pairRollbackGates(ctx)
	}
	return s.pairGates(ctx)
}

func (s *pairSwitcher) pairGates(ctx context.Context) (string, error) {
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	switch s.st.Phase {
	case control.PhaseCDC, control.PhaseRolledBack:
	case control.PhaseSwitched:
		fail("the migration is already switched to the target: cutover rollback goes back, cutover finish ends it")
	default:
		fail("the migration is in phase %q: a switch needs change data capture running (cutover start, past the full load)", s.st.Phase)
	}
	running, err := lockHeld(ctx, s.tgt, pairStreamLock(s.p))
	if err != nil {
		return "", err
	}
	detail := "every gate holds"
	if !running {
		fail("no cutover start is streaming the changes: run cutover start and let it catch up")
	} else if !s.dry {
		// the markers' table is in the control database on the source
		if _, err := s.src.PrepareReverse(ctx); err != nil {
			return "", err
		}
		took, err := s.waitSynced(ctx, "gates", s.p.Cutover.MaxLatency.D())
		if err != nil {
			fail("the change stream is not caught up: a marker written on the source was not applied within cutover.max_latency (%v): wait for CDC to catch up (cutover status)", s.p.Cutover.MaxLatency)
		} else {
			detail += fmt.Sprintf("; a marker written on the source was applied in %v", took.Round(time.Millisecond))
		}
	}
	var exceptions int64
	if err := s.tgt.QueryRow(ctx, "SELECT count(*) FROM "+s.ctl.table("apply_exceptions")+" WHERE NOT resolved").Scan(&exceptions); err != nil {
		return "", fmt.Errorf("target: read apply_exceptions: %w", err)
	}
	if exceptions > 0 {
		fail("%d unresolved apply exception(s) in %s.apply_exceptions: fix each, then mark it resolved", exceptions, s.p.ControlSchema)
	}
	stats, err := s.ctl.TableStats(ctx)
	if err != nil {
		return "", fmt.Errorf("target: read table_stats: %w", err)
	}
	var mismatched []string
	for _, t := range stats {
		if t.Validation == control.ValidationMismatched {
			mismatched = append(mismatched, pgx.Identifier{t.Schema, t.Table}.Sanitize())
		}
	}
	if len(mismatched) > 0 {
		fail("the last validation found differences in %s: find why (cutover validate names the rows), then cutover validate again", listText(mismatched, 5))
	}
	if s.p.Cutover.Block == plan.BlockReadOnly {
		open, err := s.openSide(ctx, s.target())
		if err != nil {
			return "", err
		}
		problems = append(problems, open...)
	}
	problems = append(problems, s.reverseTargetGates(ctx)...)
	problems = append(problems, s.tr.failbackRisks()...)
	problems = append(problems, s.src.Gates(ctx)...)
	if len(problems) > 0 {
		return "", fmt.Errorf("%w:\n  - %s", cutover.ErrGates, strings.Join(problems, "\n  - "))
	}
	return detail, s.setPhase(ctx, control.PhaseSwitching)
}

// reverseTargetGates checks that the target can stream its changes back.
func (s *pairSwitcher) reverseTargetGates(ctx context.Context) []string {
	var walLevel string
	var free int
	if err := s.tgt.QueryRow(ctx, "SELECT current_setting('wal_level'), current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)").Scan(&walLevel, &free); err != nil {
		return []string{fmt.Sprintf("target: read what reverse replication needs there: %v", err)}
	}
	var problems []string
	if walLevel != "logical" {
		problems = append(problems, fmt.Sprintf("the target's wal_level is %s: reverse replication streams its changes back, which needs wal_level = logical (ALTER SYSTEM SET wal_level = logical, then restart the target)", walLevel))
	}
	if free < 1 {
		problems = append(problems, "the target has no free replication slot for reverse replication: raise max_replication_slots there (a restart), or drop a slot no one uses")
	}
	var canCreate bool
	if err := s.tgt.QueryRow(ctx, "SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user").Scan(&canCreate); err == nil && !canCreate {
		problems = append(problems, "the target's migration role may not create a replication slot for reverse replication: ALTER ROLE ... REPLICATION (or grant rds_replication on a managed service)")
	}
	return problems
}

// failbackRisks are the keys the target would let take values the source's keys
// refuse: case-insensitive ones made case-sensitive (translation.case_insensitive:
// none). Reverse replication could not write such rows back. (PAD SPACE keys have
// their guard, padGuard.)
func (tr *translation) failbackRisks() []string {
	var out []string
	for _, t := range tr.tables {
		st := t.source
		keys := [][]string{st.PrimaryKey}
		for _, ix := range st.Indexes {
			if !ix.Unique {
				continue
			}
			var cols []string
			for _, c := range ix.Columns {
				cols = append(cols, c.Name)
			}
			keys = append(keys, cols)
		}
		var ci []string
		seen := map[string]bool{}
		for _, k := range keys {
			for _, name := range k {
				c := t.column(name)
				if c == nil || !c.carried() || seen[name] || c.src.Type.Kind != cdc.KindText {
					continue
				}
				seen[name] = true
				if c.src.CaseInsensitive && c.collation == "" && c.pgType != "citext" {
					ci = append(ci, name)
				}
			}
		}
		if len(ci) > 0 {
			out = append(out, fmt.Sprintf("table %s: the unique keys on %s are case-insensitive on the source and case-sensitive on the target, which would take 'a' and 'A' that reverse replication cannot write back: "+
				"migrate with translation.case_insensitive: icu or citext (cutover finish, then cutover start), or leave the table out of the migration", st, strings.Join(ci, ", ")))
		}
	}
	return out
}

func (s *pairSwitcher) pairRollbackGates(ctx context.Context) (string, error) {
	var problems []string
	if s.st.Phase != control.PhaseSwitched {
		problems = append(problems, fmt.Sprintf("the migration is in phase %q: only a switched migration rolls back", s.st.Phase))
	}
	var inPlace bool
	if err := s.tgt.QueryRow(ctx, "SELECT reverse_slot <> '' AND EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = reverse_slot) FROM "+s.ctl.table("state")).Scan(&inPlace); err != nil {
		return "", fmt.Errorf("target: read reverse replication's slot: %w", err)
	}
	if !inPlace && s.st.Phase == control.PhaseSwitched {
		problems = append(problems, fmt.Sprintf("reverse replication's slot %s is not on the target, so the writes made there since the switch cannot reach the source: "+
			"stay on the target (cutover finish), or bring those writes to the source by hand before going back", reverseSlotOf(s.st)))
	}
	found, err := blockFindings(ctx, s.target(), nil, s.p.Cutover)
	if err != nil {
		return "", err
	}
	for _, f := range found {
		problems = append(problems, f.String())
	}
	if len(problems) > 0 {
		return "", fmt.Errorf("the rollback did not begin:\n  - %s", strings.Join(problems, "\n  - "))
	}
	return "every gate holds", s.setPhase(ctx, control.PhaseRollingBack)
}

// Validation: inside the window, an incremental validation compares the rows changed
// since each table's last validation, when the applier records them
// (validation.track_changes) and the table was validated since; every other table
// in full. Between engines a validation needs the source to pause while a table is
// read (see AtPoint), so none runs before the block, under the users' writes: the
// step says which tables the window will read whole.

func (s *pairSwitcher) Tracked() bool { return s.tracked() }

// ValidateBeforeBlock validates while the users still write, as between two
// PostgreSQL servers: the tables never validated since changes are tracked in full,
// the others by their changed rows.
func (s *pairSwitcher) ValidateBeforeBlock(ctx context.Context) (string, error) {
	return s.validateBeforeBlockBy(ctx, func(ctx context.Context) ([]string, error) {
		return validate.PassesBeforeBlock(ctx, s.validate, quoteTable, s.p.ControlSchema)
	}, s.caughtUp)
}

// caughtUp is the gates' check of the change stream's lag again: a marker written on
// the source applied within cutover.max_latency.
func (s *pairSwitcher) caughtUp(ctx context.Context) (string, error) {
	if _, err := s.waitSynced(ctx, "prevalidate", s.p.Cutover.MaxLatency.D()); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return fmt.Sprintf("the change stream is not caught up (cutover.max_latency %v): %v", s.p.Cutover.MaxLatency, err), nil
	}
	return "", nil
}

func (s *pairSwitcher) ValidateWindow(ctx context.Context) (string, error) {
	if s.dry {
		if s.tracked() {
			fmt.Fprintf(s.out, "      validate, source against target: the rows changed since each table's last validation, every table not validated since changes are tracked in full\n")
		} else {
			fmt.Fprintf(s.out, "      warning: validate EVERY TABLE IN FULL inside the downtime window: %s%s\n", s.untracked(), s.expectedFullPass(ctx))
		}
		return "", nil
	}
	rep, err := s.validate(ctx, validate.Options{Incremental: true, BusyPercent: 100})
	if err != nil {
		return "", err
	}
	if err := s.differences(rep, "inside the window"); err != nil {
		return "", err
	}
	if !s.tracked() {
		return fullPassDetail + " (" + s.untracked() + "): " + validationDetail(rep), nil
	}
	return validationDetail(rep), nil
}

// Block and jobs: the source's by its engine, the target's as between two
// PostgreSQL servers.

func (s *pairSwitcher) Block(ctx context.Context, sd cutover.Side) (string, error) {
	if sd == cutover.Source {
		return s.src.Block(ctx)
	}
	return s.block(ctx, s.target())
}

func (s *pairSwitcher) Unblock(ctx context.Context, sd cutover.Side) (string, error) {
	if sd == cutover.Source {
		return s.src.Unblock(ctx)
	}
	return s.unblock(ctx, s.target())
}

func (s *pairSwitcher) SuspendJobs(ctx context.Context, sd cutover.Side) (string, error) {
	if sd == cutover.Source {
		return s.src.SuspendJobs(ctx)
	}
	return s.suspendJobs(ctx, s.target())
}

func (s *pairSwitcher) ResumeJobs(ctx context.Context, sd cutover.Side) (string, error) {
	if sd == cutover.Source {
		return s.src.ResumeJobs(ctx)
	}
	// no job moved between the engines: the target's own come back
	return s.resumeJobs(ctx, s.target(), s.target())
}

// Replication

// syncID is a new sync marker's ID.
func (s *pairSwitcher) syncID(tag string) string {
	return fmt.Sprintf("%s:%s:%d", s.run.ID, tag, time.Now().UnixNano())
}

// waitSynced writes a marker on the source and waits, timeout at most, until the
// target's applier recorded it.
func (s *pairSwitcher) waitSynced(ctx context.Context, tag string, timeout time.Duration) (time.Duration, error) {
	id := s.syncID(tag)
	if s.dry {
		fmt.Fprintf(s.out, "      source: write the sync marker %s, then wait up to %v until the target applied it\n", id, timeout)
		return 0, nil
	}
	start := time.Now()
	if err := s.src.Marker(ctx, id); err != nil {
		return 0, err
	}
	err := pollUntil(ctx, timeout, func() (bool, error) {
		var got string
		err := s.tgt.QueryRow(ctx, "SELECT sync_marker FROM "+s.ctl.table("state")).Scan(&got)
		return got == id, err
	}, fmt.Sprintf("replication did not apply the sync marker %s within %v: is cutover start running and keeping up? (cutover status)", id, timeout))
	return time.Since(start), err
}

// pollUntil calls done every few milliseconds until it says true, for timeout at
// most (then an error that says why).
func pollUntil(ctx context.Context, timeout time.Duration, done func() (bool, error), why string) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := done()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s", why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Sync waits until the replication out of from has applied a marker written there.
func (s *pairSwitcher) Sync(ctx context.Context, from cutover.Side) (string, error) {
	if from == cutover.Source {
		took, err := s.waitSynced(ctx, "sync", s.p.Cutover.SyncTimeout.D())
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("the target applied the marker in %v", took.Round(time.Millisecond)), nil
	}
	id := s.syncID("sync")
	timeout := s.p.Cutover.SyncTimeout.D()
	if s.dry {
		fmt.Fprintf(s.out, "      target: SELECT pg_logical_emit_message(false, '%s', '%s'), then wait up to %v until the source applied it\n", markerPrefix, engine.SyncMarker(id), timeout)
		return "", nil
	}
	detail := ""
	running, err := lockHeld(ctx, s.tgt, reverseStreamLock(s.p))
	if err != nil {
		return "", err
	}
	if !running {
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- runReverse(rctx, s.p, engine.StartOptions{Out: io.Discard}, &load.Lines{W: io.Discard}, s.tr, func() (engine.SwitchSource, error) { return s.src, nil })
		}()
		defer func() {
			cancel()
			<-done
		}()
		detail = " (no cutover start ran: reverse replication ran here)"
	}
	start := time.Now()
	if _, err := s.tgt.Exec(ctx, "SELECT pg_logical_emit_message(false, $1, $2)", markerPrefix, engine.SyncMarker(id)); err != nil {
		return "", fmt.Errorf("target: write the sync marker: %w", err)
	}
	err = pollUntil(ctx, timeout, func() (bool, error) {
		got, err := s.src.MarkerApplied(ctx)
		return got == id, err
	}, fmt.Sprintf("reverse replication did not apply the sync marker %s within %v (cutover.sync_timeout): is cutover start running? (cutover status)", id, timeout))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("the source applied the marker in %v%s", time.Since(start).Round(time.Millisecond), detail), nil
}

// streamStops bounds the wait for a stream to stop once told to.
const streamStops = 30 * time.Second

// StopReplication stops the replication out of from and waits until it is idle.
func (s *pairSwitcher) StopReplication(ctx context.Context, from cutover.Side) (string, error) {
	if err := s.setReplication(ctx, control.ReplicateStopped); err != nil {
		return "", err
	}
	lock := pairStreamLock(s.p)
	if from == cutover.Target {
		lock = reverseStreamLock(s.p)
	}
	if s.dry {
		fmt.Fprintf(s.out, "      target: wait until the advisory lock %s is free\n", lock)
		return "", nil
	}
	if err := pollUntil(ctx, streamStops, func() (bool, error) {
		held, err := lockHeld(ctx, s.tgt, lock)
		return !held, err
	}, fmt.Sprintf("replication out of the %s still runs %v after it was told to stop: is another process applying the changes?", from, streamStops)); err != nil {
		return "", err
	}
	return "nothing streams", nil
}

func (s *pairSwitcher) ResumeReplication(ctx context.Context, from cutover.Side) (string, error) {
	if from == cutover.Target {
		return "reverse replication resumes", s.setReplication(ctx, control.ReplicateReverse)
	}
	return "forward replication resumes", s.setReplication(ctx, control.ReplicateForward)
}

// lockHeld says whether another session holds the advisory lock name.
func lockHeld(ctx context.Context, conn *pgx.Conn, name string) (bool, error) {
	var held bool
	err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND objid = hashtext($1)::oid AND pid <> pg_backend_pid())`, name).Scan(&held)
	if err != nil {
		return false, fmt.Errorf("target: read whether replication runs: %w", err)
	}
	return held, nil
}

// Sequences

// CopySequences sets the target's identities from the source's counters now, or
// (from the target, a rollback) raises the source's counters past them.
func (s *pairSwitcher) CopySequences(ctx context.Context, from cutover.Side) (string, error) {
	if from == cutover.Source {
		tr, err := pairTranslation(ctx, s.p, s.half, s.tgt)
		if err != nil {
			return "", err
		}
		qs := tr.identities()
		for _, q := range qs {
			if err := s.exec(ctx, "target", s.tgt, q); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("%d identities set past the source's AUTO_INCREMENT counters and the rows", len(qs)), nil
	}
	next := map[string]int64{}
	for _, t := range s.tr.tables {
		for _, c := range t.columns {
			if !c.identity || !c.carried() {
				continue
			}
			var n int64
			if err := s.tgt.QueryRow(ctx, fmt.Sprintf("SELECT greatest(coalesce(pg_sequence_last_value(pg_get_serial_sequence(%s, %s)::regclass) + 1, 1), (SELECT coalesce(max(%s) + 1, 1) FROM %s))",
				quoteLiteral(t.qualified), quoteLiteral(c.name), qident(c.name), t.qualified)).Scan(&n); err != nil {
				return "", fmt.Errorf("target: read the identity of %s: %w", t.qualified, err)
			}
			next[t.source.Name] = n
		}
	}
	return s.src.RaiseCounters(ctx, next)
}

// SecondaryObjects checks that every index the load built on the target is valid.
func (s *pairSwitcher) SecondaryObjects(ctx context.Context) (string, error) {
	var invalid []string
	if err := s.tgt.QueryRow(ctx, `SELECT coalesce(array_agg(i.indexrelid::regclass::text ORDER BY 1), '{}') FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT i.indisvalid AND n.nspname = $1`, s.tr.schema).Scan(&invalid); err != nil {
		return "", fmt.Errorf("target: read the indexes: %w", err)
	}
	if len(invalid) > 0 {
		return "", fmt.Errorf("target: indexes %s are not valid (a build that failed): REINDEX them, then switch again", listText(invalid, 8))
	}
	return "every index on the target is valid", nil
}

// Reverse replication

func (s *pairSwitcher) PrepareReverse(ctx context.Context) (string, error) {
	slot := reverseSlotOf(s.st)
	all, ins := publications(slot)
	for _, q := range append([]string{"DROP PUBLICATION IF EXISTS " + pgx.Identifier{all}.Sanitize(), "DROP PUBLICATION IF EXISTS " + pgx.Identifier{ins}.Sanitize()},
		publicationStatements(slot, s.tables, s.p.CDC.NoIdentity)...) {
		if err := s.exec(ctx, "target", s.tgt, q); err != nil {
			return "", err
		}
	}
	d, err := s.src.PrepareReverse(ctx)
	if err != nil {
		return "", err
	}
	closed, err := s.closeTargetWriters(ctx)
	if err != nil {
		return "", err
	}
	return "publications " + all + " and " + ins + " on the target; " + d + closed, nil
}

// closeTargetWriters blocks the target's roles that may write to the migrated tables
// and log in (granted since the load closed the target, which cannot map the source's
// accounts to them): recorded, so that the unlock gives them their login back, and
// an undo of this step gives back only these.
func (s *pairSwitcher) closeTargetWriters(ctx context.Context) (string, error) {
	if s.p.Cutover.Block == plan.BlockReadOnly {
		return "", nil // the load made the target read-only; the gates' openSide said otherwise
	}
	roles, err := writers(ctx, s.tgt, "target", s.tables, s.p.Cutover.ExemptRoles)
	if err != nil || len(roles) == 0 {
		return "", err
	}
	d, err := s.blockRoles(ctx, s.target(), roles)
	if err != nil {
		return "", err
	}
	return "; target closed until the unlock: " + d, nil
}

func (s *pairSwitcher) UnprepareReverse(ctx context.Context) (string, error) {
	if s.dry {
		return "", nil
	}
	slot := reverseSlotOf(s.st)
	if err := dropPublications(ctx, s.tgt, slot); err != nil {
		return "", err
	}
	// the roles this step closed, and only those
	roles, err := s.loginRoles(ctx, s.target(), "side = 'target' AND run_id = $1 AND restored_at IS NULL", "", s.run.ID)
	if err != nil {
		return "", err
	}
	if err := s.alterRoles(ctx, s.target(), roles, "LOGIN"); err != nil {
		return "", err
	}
	if err := s.record(ctx, "UPDATE "+s.ctl.table("blocked_roles")+" SET restored_at = now() WHERE side = 'target' AND run_id = $1 AND restored_at IS NULL", s.run.ID); err != nil {
		return "", err
	}
	return fmt.Sprintf("dropped the publications of %s on the target; %d roles can log in to it again%s", slot, len(roles), inParens(listText(roles, 6))), nil
}

// StartReverse drops the source's triggers, creates the target's slot, and records
// where reverse replication starts; then the task replicates target to source.
func (s *pairSwitcher) StartReverse(ctx context.Context) (string, error) {
	moved, err := s.src.MoveTriggers(ctx)
	if err != nil {
		return "", err
	}
	slot := reverseSlotOf(s.st)
	if err := s.exec(ctx, "target", s.tgt, dropSlotSQL, slot); err != nil {
		return "", err
	}
	var pos string
	if s.dry {
		fmt.Fprintf(s.out, "      target: SELECT pg_create_logical_replication_slot('%s', 'pgoutput')\n", slot)
	} else if err := s.tgt.QueryRow(ctx, "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')", slot).Scan(&pos); err != nil {
		return "", fmt.Errorf("target: create the reverse replication slot %s: %w", slot, err)
	}
	if err := s.exec(ctx, "target", s.tgt, "UPDATE "+s.ctl.table("state")+" SET reverse_slot = $1, reverse_position = $2, replication = $3", slot, pos, control.ReplicateReverse); err != nil {
		return "", err
	}
	return moved + "; slot " + slot + " on the target from " + pos, nil
}

// DropReverse stops reverse replication, drops its slot and publications, and gives
// the source its triggers back (the undo of the switch's reverse step).
func (s *pairSwitcher) DropReverse(ctx context.Context) (string, error) {
	d1, err := s.dropReverseSlot(ctx)
	if err != nil {
		return "", err
	}
	d2, err := s.src.RestoreTriggers(ctx)
	if err != nil {
		return "", err
	}
	return d1 + "; " + d2, nil
}

// dropReverseSlot stops reverse replication and drops its slot and publications.
func (s *pairSwitcher) dropReverseSlot(ctx context.Context) (string, error) {
	if _, err := s.StopReplication(ctx, cutover.Target); err != nil {
		return "", err
	}
	slot := reverseSlotOf(s.st)
	if s.dry {
		fmt.Fprintf(s.out, "      target: drop slot %s and its publications\n", slot)
	} else {
		if err := dropSlotWhenFree(ctx, s.tgt, "target", slot, io.Discard); err != nil {
			return "", err
		}
		if err := dropPublications(ctx, s.tgt, slot); err != nil {
			return "", err
		}
	}
	return "dropped slot " + slot + " and its publications on the target", s.exec(ctx, "target", s.tgt, "UPDATE "+s.ctl.table("state")+" SET reverse_slot = '', reverse_position = ''")
}

// EndReverse ends reverse replication after a rollback (whose unlock gave the source
// its triggers back): forward replication goes on from the source's position the
// unlock recorded.
func (s *pairSwitcher) EndReverse(ctx context.Context) (string, error) {
	d, err := s.dropReverseSlot(ctx)
	if err != nil {
		return "", err
	}
	if err := s.exec(ctx, "target", s.tgt, "UPDATE "+s.ctl.table("table_stats")+" SET validated_position = ''"); err != nil {
		return "", err
	}
	if err := s.setReplication(ctx, control.ReplicateForward); err != nil {
		return "", err
	}
	return d + "; forward replication resumes", nil
}

// Unlock and relock

func (s *pairSwitcher) Unlock(ctx context.Context, sd cutover.Side) (string, error) {
	if sd == cutover.Source {
		return s.unlockPairSource(ctx)
	}
	d1, err := s.unblock(ctx, s.target())
	if err != nil {
		return "", err
	}
	d2, err := s.resumeCron(ctx, s.target(), s.target())
	if err != nil {
		return "", err
	}
	if err := s.hooks.Commands(ctx, "resume_jobs", s.p.Cutover.Hooks.ResumeJobs, "CUTOVER_STEP=unlock", "CUTOVER_RUN="+s.run.ID, "CUTOVER_SIDE=target"); err != nil {
		return "", err
	}
	if err := s.setPhase(ctx, control.PhaseSwitched); err != nil {
		return "", err
	}
	return d1 + "; " + d2, nil
}

func (s *pairSwitcher) Relock(ctx context.Context, sd cutover.Side) (string, error) {
	if sd == cutover.Target {
		return s.relockTarget(ctx)
	}
	d1, err := s.src.Block(ctx)
	if err != nil {
		return "", err
	}
	d2, err := s.src.SuspendJobs(ctx)
	if err != nil {
		return "", err
	}
	d3, err := s.src.MoveTriggers(ctx)
	if err != nil {
		return "", err
	}
	if _, err := s.phaseBack(ctx, control.PhaseRolledBack, control.PhaseRollingBack); err != nil {
		return "", err
	}
	return d1 + "; " + d2 + "; " + d3, nil
}

// unlockPairSource ends a rollback's downtime: the position forward replication goes
// on from is the source's now (reverse replication stopped, the source still
// blocked), then the source's triggers, accounts and events come back.
func (s *pairSwitcher) unlockPairSource(ctx context.Context) (string, error) {
	if s.dry {
		fmt.Fprintf(s.out, "      source: read the binary log's position; target: forward replication resumes from it\n")
	} else {
		pos, err := s.src.Position(ctx)
		if err != nil {
			return "", err
		}
		if err := s.exec(ctx, "target", s.tgt, "UPDATE "+s.ctl.table("state")+" SET applied_position = $1", pos); err != nil {
			return "", err
		}
	}
	d1, err := s.src.RestoreTriggers(ctx)
	if err != nil {
		return "", err
	}
	d2, err := s.src.Unblock(ctx)
	if err != nil {
		return "", err
	}
	d3, err := s.src.ResumeJobs(ctx)
	if err != nil {
		return "", err
	}
	if err := s.setPhase(ctx, control.PhaseRolledBack); err != nil {
		return "", err
	}
	return d1 + "; " + d2 + "; " + d3, nil
}
