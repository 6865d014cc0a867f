package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pgx/v5"
)

// Switch runs the cut over: the checklist (cutover.Switch) on the migration's two
// databases.
func Switch(ctx context.Context, p *plan.Plan, opts cutover.Options) (*cutover.Result, error) {
	s, err := openSwitcher(ctx, p, opts, "switch")
	if err != nil {
		return nil, err
	}
	defer s.close(ctx)
	return cutover.Switch(ctx, s, p, opts)
}

// Reconnect opens again a connection a step left closed (pgx closes one whose query
// a context, such as the downtime budget, cancelled): the undos run on it. The
// target's comes back with the switch lock and the control schema on it.
func (s *switcher) Reconnect(ctx context.Context) error {
	if s.src.IsClosed() {
		src, err := ConnectSide(ctx, "source", s.p.Source)
		if err != nil {
			return err
		}
		s.src = src
	}
	return s.reconnectTarget(ctx)
}

// reconnectTarget opens the target's connection again, with the switch lock and the
// control schema on it, when a step left it closed.
func (s *switcher) reconnectTarget(ctx context.Context) error {
	if !s.tgt.IsClosed() {
		return nil
	}
	tgt, err := ConnectSide(ctx, "target", s.p.Target)
	if err != nil {
		return err
	}
	var locked bool
	if err := tgt.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", int64(switchLock)).Scan(&locked); err != nil || !locked {
		tgt.Close(ctx)
		return fmt.Errorf("target: take the switch lock again after the connection was lost (held: %v): %w", locked, err)
	}
	ctl, err := OpenControl(ctx, tgt, s.p.ControlSchema)
	if err != nil {
		tgt.Close(ctx)
		return err
	}
	s.tgt, s.ctl = tgt, ctl
	return nil
}

// The switcher does the steps of the checklists (cutover.Sides) on the source and the
// target; the forward replication runs out of the source, reverse replication out of
// the target.
var (
	_ cutover.Runs        = (*switcher)(nil)
	_ cutover.Gates       = (*switcher)(nil)
	_ cutover.Validation  = (*switcher)(nil)
	_ cutover.Blocker     = (*switcher)(nil)
	_ cutover.Jobs        = (*switcher)(nil)
	_ cutover.Replication = (*switcher)(nil)
	_ cutover.Sequences   = (*switcher)(nil)
	_ cutover.Objects     = (*switcher)(nil)
	_ cutover.Reverse     = (*switcher)(nil)
	_ cutover.QA          = (*switcher)(nil)
	_ cutover.Unlocker    = (*switcher)(nil)
)

// CheckGates runs the gates of kind; they set the phase of the run when they hold.
func (s *switcher) CheckGates(ctx context.Context, kind string) (string, error) {
	if kind == "rollback" {
		return s.rollbackGates(ctx)
	}
	return s.gates(ctx)
}

// UndoGates sets the phase the gates of kind set back to the one before the run.
func (s *switcher) UndoGates(ctx context.Context, kind string) (string, error) {
	if kind == "rollback" {
		return s.phaseBack(ctx, control.PhaseRollingBack, control.PhaseSwitched)
	}
	return s.phaseBack(ctx, control.PhaseSwitching, control.PhaseCDC)
}

// Tracked reports whether the running task records the keys it changes.
func (s *switcher) Tracked() bool { return s.tracked() }

// ValidateBeforeBlock brings the validation up to the moment before the block.
func (s *switcher) ValidateBeforeBlock(ctx context.Context) (string, error) {
	return s.validateBeforeBlock(ctx)
}

// ValidateWindow compares the rows changed since the validation before the block.
func (s *switcher) ValidateWindow(ctx context.Context) (string, error) {
	return s.validateChanged(ctx)
}

// Sync waits until the replication out of from has applied a marker written there.
func (s *switcher) Sync(ctx context.Context, from cutover.Side) (string, error) {
	if from == cutover.Target {
		return s.syncReverse(ctx)
	}
	return s.syncForward(ctx)
}

// StopReplication stops the replication out of from and waits until its slot is idle.
func (s *switcher) StopReplication(ctx context.Context, from cutover.Side) (string, error) {
	if from == cutover.Target {
		return s.stopReverse(ctx)
	}
	return s.stopForward(ctx)
}

// ResumeReplication tells the task to replicate out of from again.
func (s *switcher) ResumeReplication(ctx context.Context, from cutover.Side) (string, error) {
	if from == cutover.Target {
		return s.resumeReverse(ctx)
	}
	return s.resumeForward(ctx)
}

// CopySequences sets every sequence on the other side from its value on from.
func (s *switcher) CopySequences(ctx context.Context, from cutover.Side) (string, error) {
	f, t := s.side(from), s.side(from.Other())
	return s.syncSequences(f.conn, t.conn, f.name, t.name)(ctx)
}

// gates checks that the switch can begin; it changes nothing but the phase.
func (s *switcher) gates(ctx context.Context) (string, error) {
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	st := s.st
	switch st.Phase {
	case control.PhaseCDC, control.PhaseRolledBack:
	case control.PhaseSwitched:
		fail("the migration is already switched to the target: cutover rollback goes back, cutover finish ends it")
	default:
		fail("the migration is in phase %q: a switch needs change data capture running (cutover start, past the full load)", st.Phase)
	}
	active, err := slotActive(ctx, s.src, "source", st.Slot)
	if err != nil {
		return "", err
	}
	if !active {
		fail("no cutover start is streaming the changes (slot %s is idle): run cutover start and let it catch up", st.Slot)
	}
	if problem, err := s.latencyGate(ctx); err != nil {
		return "", err
	} else if problem != "" {
		fail("%s", problem)
	}
	var exceptions int64
	if err := s.tgt.QueryRow(ctx, "SELECT count(*) FROM "+s.ctl.table("apply_exceptions")+" WHERE NOT resolved").Scan(&exceptions); err != nil {
		return "", fmt.Errorf("target: read apply_exceptions: %w", err)
	}
	if exceptions > 0 {
		fail("%d unresolved apply exception(s) in %s.apply_exceptions: fix each, then mark it resolved (UPDATE %s SET resolved = true WHERE id = ...)",
			exceptions, s.p.ControlSchema, s.ctl.table("apply_exceptions"))
	}
	var copying []string
	if err := s.tgt.QueryRow(ctx, "SELECT coalesce(array_agg(format('%I.%I', schema_name, table_name) ORDER BY 1), '{}') FROM "+s.ctl.table("table_stats")+" WHERE copy_pending").Scan(&copying); err != nil {
		return "", fmt.Errorf("target: read table_stats: %w", err)
	}
	if len(copying) > 0 {
		fail("%s wait(s) to be copied again after a schema change that rewrote them on the source: let cutover start catch up with the source's schema changes (its log says when each is copied)",
			listText(copying, 10))
	}
	stats, err := s.ctl.TableStats(ctx)
	if err != nil {
		return "", fmt.Errorf("target: read table_stats: %w", err)
	}
	var unvalidated, mismatched []string
	for _, t := range stats {
		name := pgx.Identifier{t.Schema, t.Table}.Sanitize()
		switch t.Validation {
		case control.ValidationValidated, control.ValidationNoKey:
		case control.ValidationMismatched:
			mismatched = append(mismatched, name)
		default:
			unvalidated = append(unvalidated, name+" ("+t.Validation+")")
		}
	}
	if len(mismatched) > 0 {
		fail("the last validation found differences in %s: cutover validate --repair, then cutover validate", listText(mismatched, 5))
	}
	// With the changes tracked, the step after the gates validates these before the
	// block; without, the first look at them would be inside the downtime window.
	if len(unvalidated) > 0 && !s.tracked() && (active || !s.p.Validation.Tracking()) {
		fail("not validated yet: %s: run cutover validate first (changes are not tracked, so the switch's only validation is a full pass inside the downtime window)", listText(unvalidated, 5))
	}
	problems = append(problems, s.reverseGates(ctx)...)
	problems = append(problems, s.blockGates(ctx)...)
	// The target is closed to the applications until the unlock (the load closed it).
	open, err := s.openSide(ctx, s.target())
	if err != nil {
		return "", err
	}
	problems = append(problems, open...)
	missing, _, err := s.compareObjects(ctx)
	if err != nil {
		return "", err
	}
	if len(missing) > 0 {
		fail("missing on the target: %s: create them there (they are on the source)", listText(missing, 8))
	}
	if _, err := s.sequencePairs(ctx, s.src, s.tgt, "source", "target"); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return "", fmt.Errorf("%w:\n  - %s", cutover.ErrGates, strings.Join(problems, "\n  - "))
	}
	return "every gate holds", s.setPhase(ctx, control.PhaseSwitching)
}

// latencyFresh is how recently cutover start must have measured the target latency
// for the switch to trust it.
const latencyFresh = 15 * time.Second

// latencyGate says what does not hold of the target latency ("" when it is fresh and
// below cutover.max_latency). Every figure may be NULL: a task that just started has
// measured nothing yet.
func (s *switcher) latencyGate(ctx context.Context) (string, error) {
	var lat, age *time.Duration
	if err := s.tgt.QueryRow(ctx, "SELECT target_latency, now() - measured_at FROM "+s.ctl.table("state")).Scan(&lat, &age); err != nil {
		return "", fmt.Errorf("target: read the target latency from %s: %w", s.ctl.table("state"), err)
	}
	switch {
	case age == nil || lat == nil:
		return "the target latency has not been measured yet: wait until cutover status shows a latency (cutover start measures it every few seconds once it streams), then run cutover switch again", nil
	case *age > latencyFresh:
		return fmt.Sprintf("the target latency was last measured %v ago, and the switch trusts one measured in the last %v: is cutover start running? (cutover status)",
			age.Round(time.Second), latencyFresh), nil
	case *lat > s.p.Cutover.MaxLatency.D():
		return fmt.Sprintf("the target latency is %v, above cutover.max_latency (%v): wait for CDC to catch up", lat.Round(time.Millisecond), s.p.Cutover.MaxLatency), nil
	}
	return "", nil
}

// reverseGates checks that reverse replication can start on the target.
func (s *switcher) reverseGates(ctx context.Context) []string {
	var problems []string
	var walLevel string
	var free int
	var canReplicate bool
	var version string
	var major int
	err := s.tgt.QueryRow(ctx, `SELECT current_setting('wal_level'),
		    current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots WHERE slot_name <> $1),
		    (SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user),
		    current_setting('server_version'), current_setting('server_version_num')::int / 10000`, reverseSlot(s.st.Slot)).Scan(&walLevel, &free, &canReplicate, &version, &major)
	if err != nil {
		return []string{fmt.Sprintf("target: could not read what reverse replication needs there (wal_level, max_replication_slots, the role's REPLICATION): %v", err)}
	}
	if major < minStreamMajor {
		problems = append(problems, fmt.Sprintf("the target runs PostgreSQL %s: reverse replication reads its change stream, which needs PostgreSQL %d or later", version, minStreamMajor))
	}
	if walLevel != "logical" {
		problems = append(problems, fmt.Sprintf("the target's wal_level is %s: reverse replication needs logical (ALTER SYSTEM SET wal_level = logical on the target, then restart it)", walLevel))
	}
	if free < 1 {
		problems = append(problems, "the target has no free replication slot for reverse replication: raise max_replication_slots there (a restart) or drop an unused slot")
	}
	if !canReplicate {
		problems = append(problems, "the target's role cannot read a replication slot: ALTER ROLE ... REPLICATION on the target")
	}
	problems = append(problems, applyPrivileges(ctx, s.src, "source", s.tables)...)
	if active, err := slotActive(ctx, s.tgt, "target", reverseSlot(s.st.Slot)); err != nil {
		problems = append(problems, err.Error())
	} else if active {
		problems = append(problems, fmt.Sprintf("the reverse replication slot %s on the target is in use: stop what streams from it", reverseSlot(s.st.Slot)))
	}
	return problems
}

// applyPrivileges says what the role of conn lacks to apply changes there (reverse
// replication into the source): SET session_replication_role, so that triggers and
// foreign keys do not fire for replicated rows (a superuser, or on PostgreSQL 15 and
// later GRANT SET ON PARAMETER, as managed services allow), and INSERT, UPDATE, DELETE
// and TRUNCATE on every migrated table.
func applyPrivileges(ctx context.Context, conn *pgx.Conn, side string, tables []*relation) []string {
	var names []string
	for _, r := range tables {
		if r.published() {
			names = append(names, r.qname)
		}
	}
	var super, canSet bool
	var major int
	var user string
	var missing []string
	err := conn.QueryRow(ctx, `SELECT rolsuper, current_setting('server_version_num')::int / 10000, current_user,
		    rolsuper OR (current_setting('server_version_num')::int >= 150000
		                 AND has_parameter_privilege('session_replication_role', 'SET')),
		    coalesce((SELECT array_agg(t ORDER BY t) FROM unnest($1::text[]) t
		              WHERE to_regclass(t) IS NOT NULL AND NOT has_table_privilege(t, 'INSERT, UPDATE, DELETE, TRUNCATE')), '{}')
		FROM pg_roles WHERE rolname = current_user`, names).Scan(&super, &major, &user, &canSet, &missing)
	if err != nil {
		return []string{fmt.Sprintf("%s: read what the role may do to apply changes: %v", side, err)}
	}
	var problems []string
	if !canSet {
		fix := fmt.Sprintf("GRANT SET ON PARAMETER session_replication_role TO %s;", pgx.Identifier{user}.Sanitize())
		if major < 15 {
			fix = "before PostgreSQL 15 only a superuser may set it (Amazon RDS: GRANT rds_superuser TO " + pgx.Identifier{user}.Sanitize() + ";)"
		}
		problems = append(problems, fmt.Sprintf("the %s's role %s may not SET session_replication_role, which reverse replication applies the target's writes with (so that the %s's triggers and foreign keys do not fire twice): on the %s, %s",
			side, user, side, side, fix))
	}
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("the %s's role %s may not write to %s, which reverse replication writes the target's changes to: on the %s, GRANT INSERT, UPDATE, DELETE, TRUNCATE ON %s TO %s; (or grant it the role that owns them)",
			side, user, listText(missing, 5), side, strings.Join(missing, ", "), pgx.Identifier{user}.Sanitize()))
	}
	return problems
}

// reverseSlot names the slot of reverse replication on the target.
func reverseSlot(slot string) string { return slot + "_rev" }

func (s *switcher) syncForward(ctx context.Context) (string, error) {
	marker, err := s.waitApplied(ctx, "source", s.src, s.tgt, s.p.Cutover.SyncTimeout.D())
	if err != nil {
		return "", err
	}
	return "the target applied the marker at " + marker, nil
}

func (s *switcher) stopForward(ctx context.Context) (string, error) {
	if err := s.setReplication(ctx, control.ReplicateStopped); err != nil {
		return "", err
	}
	if err := s.waitSlotIdle(ctx, "source", s.src, s.st.Slot); err != nil {
		return "", err
	}
	return "slot " + s.st.Slot + " is idle", nil
}

func (s *switcher) resumeForward(ctx context.Context) (string, error) {
	return "forward replication resumes", s.setReplication(ctx, control.ReplicateForward)
}

// StartReverse creates the target's publications and slot, and the position reverse
// replication starts from in the source's own control schema; then the task replicates
// target to source.
func (s *switcher) StartReverse(ctx context.Context) (string, error) {
	slot := reverseSlot(s.st.Slot)
	// Left by an earlier switch that did not get to undo it.
	if err := s.exec(ctx, "target", s.tgt, dropSlotSQL, slot); err != nil {
		return "", err
	}
	var pos string
	if s.dry {
		fmt.Fprintf(s.out, "      target: SELECT pg_create_logical_replication_slot('%s', 'pgoutput')\n", slot)
	} else if err := s.tgt.QueryRow(ctx, "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')", slot).Scan(&pos); err != nil {
		return "", fmt.Errorf("target: create the reverse replication slot %s: %w", slot, err)
	}
	if s.dry {
		fmt.Fprintf(s.out, "      source: create the control schema %s for reverse replication's position\n", s.p.ControlSchema)
	} else {
		rctl, err := OpenControl(ctx, s.src, s.p.ControlSchema)
		if err != nil {
			return "", fmt.Errorf("source: %w", err)
		}
		if _, err := s.src.Exec(ctx, "UPDATE "+rctl.table("state")+` SET phase = $1, slot = $2, position = $3, applied_position = '', applied_commit_time = NULL,
			applied_at = NULL, changes_tracked_from = '', replication = 'forward', updated_at = now()`, control.PhaseCDC, slot, pos); err != nil {
			return "", fmt.Errorf("source: record where reverse replication starts: %w", err)
		}
		var stats []control.TableStat
		for _, r := range s.tables {
			stats = append(stats, control.TableStat{Schema: r.schema, Table: r.name})
		}
		if err := rctl.QueueTables(ctx, stats); err != nil {
			return "", fmt.Errorf("source: %w", err)
		}
	}
	if err := s.exec(ctx, "target", s.tgt, "UPDATE "+s.ctl.table("state")+" SET reverse_slot = $1, reverse_position = $2, replication = $3", slot, pos, control.ReplicateReverse); err != nil {
		return "", err
	}
	return "slot " + slot + " on the target from " + pos, nil
}

// PrepareReverse creates the publications reverse replication streams through,
// before the block: CREATE PUBLICATION ... FOR TABLE locks each table against
// autovacuum, which yields only after deadlock_timeout (1 s inside the window at
// pgbench scale 100). A publication publishes nothing until a slot streams from it.
func (s *switcher) PrepareReverse(ctx context.Context) (string, error) {
	slot := reverseSlot(s.st.Slot)
	all, ins := publications(slot)
	for _, sql := range append([]string{"DROP PUBLICATION IF EXISTS " + pgx.Identifier{all}.Sanitize(), "DROP PUBLICATION IF EXISTS " + pgx.Identifier{ins}.Sanitize()},
		publicationStatements(slot, s.tables, s.p.CDC.NoIdentity)...) {
		if err := s.exec(ctx, "target", s.tgt, sql); err != nil {
			return "", err
		}
	}
	return "publications " + all + " and " + ins + " on the target", nil
}

// UnprepareReverse drops the publications PrepareReverse created.
func (s *switcher) UnprepareReverse(ctx context.Context) (string, error) {
	slot := reverseSlot(s.st.Slot)
	if s.dry {
		return "", nil
	}
	if err := dropPublications(ctx, s.tgt, slot); err != nil {
		return "", err
	}
	return "dropped the publications of " + slot + " on the target", nil
}

// DropReverse stops reverse replication and drops its slot and publications.
func (s *switcher) DropReverse(ctx context.Context) (string, error) {
	slot := reverseSlot(s.st.Slot)
	if err := s.setReplication(ctx, control.ReplicateStopped); err != nil {
		return "", err
	}
	if s.dry {
		fmt.Fprintf(s.out, "      target: wait until no walsender streams from slot %s, then drop it\n", slot)
	} else if err := dropSlotWhenFree(ctx, s.tgt, "target", slot, io.Discard); err != nil {
		return "", err
	}
	if !s.dry {
		if err := dropPublications(ctx, s.tgt, slot); err != nil {
			return "", err
		}
	}
	return "dropped slot " + slot + " and its publications on the target", s.exec(ctx, "target", s.tgt, "UPDATE "+s.ctl.table("state")+" SET reverse_slot = '', reverse_position = ''")
}

// QA runs the plan's assertions against the target, then waits for the approval.
func (s *switcher) QA(ctx context.Context) (string, error) {
	qa := s.p.Cutover.QA
	for _, q := range qa.SQL {
		if s.dry {
			fmt.Fprintf(s.out, "      target: %s  -- must return true\n", q)
			continue
		}
		var ok *bool
		if err := s.tgt.QueryRow(ctx, q).Scan(&ok); err != nil {
			return "", fmt.Errorf("QA query %q on the target: %w (it must return one boolean)", q, err)
		}
		if ok == nil || !*ok {
			return "", fmt.Errorf("QA query %q on the target returned %v, not true", q, fmtBool(ok))
		}
	}
	if err := s.hooks.Commands(ctx, "qa", qa.Commands, "CUTOVER_STEP=qa", "CUTOVER_RUN="+s.run.ID); err != nil {
		return "", err
	}
	detail := fmt.Sprintf("%d queries and %d commands passed", len(qa.SQL), len(qa.Commands))
	if !s.p.Cutover.Approval {
		return detail, nil
	}
	if s.opts.Yes {
		return detail + "; approved in advance (--yes)", nil
	}
	if s.dry {
		fmt.Fprintf(s.out, "      wait for cutover approve\n")
		return detail, nil
	}
	fmt.Fprintf(s.out, "      waiting for the approval: run cutover approve (the downtime budget keeps counting)\n")
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		var by string
		err := s.tgt.QueryRow(ctx, "SELECT approved_by FROM "+s.ctl.table("approvals")+" WHERE run_id = $1", s.run.ID).Scan(&by)
		if err == nil {
			return detail + "; approved by " + by, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no approval: %w", context.Cause(ctx))
		case <-tick.C:
		}
	}
}

func fmtBool(b *bool) string {
	if b == nil {
		return "NULL"
	}
	return fmt.Sprint(*b)
}

// Approve approves the running switch (cutover.approval).
func Approve(ctx context.Context, p *plan.Plan, by string) (string, error) {
	tgt, err := ConnectSide(ctx, "target", p.Target)
	if err != nil {
		return "", err
	}
	defer tgt.Close(context.WithoutCancel(ctx))
	ctl, ok, err := ReadControl(ctx, tgt, p.ControlSchema)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("no migration on this target (no control schema %s)", p.ControlSchema)
	}
	var id string
	err = tgt.QueryRow(ctx, "SELECT id FROM "+ctl.table("runs")+" WHERE kind = 'switch' AND outcome = 'running' ORDER BY started_at DESC LIMIT 1").Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", errors.New("no switch is running: nothing to approve")
	}
	if err != nil {
		return "", err
	}
	_, err = tgt.Exec(ctx, "INSERT INTO "+ctl.table("approvals")+" (run_id, approved_by) VALUES ($1, $2) ON CONFLICT DO NOTHING", id, by)
	return id, err
}
