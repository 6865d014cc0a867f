package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pgx/v5"
)

// switcher holds what the steps of a switch or a rollback share.
type switcher struct {
	p      *plan.Plan
	opts   cutover.Options
	out    io.Writer
	dry    bool
	src    *pgx.Conn
	tgt    *pgx.Conn
	ctl    *Control
	st     control.State
	run    *cutover.Run
	hooks  cutover.Hooks
	tables []*relation // the migrated tables, as the source describes them
	// trackedFrom is state.changes_tracked_from: "" when the running task does not
	// record the keys it changes.
	trackedFrom string
	srcDB       string
	tgtDB       string
}

// switchLock is the advisory lock a switch or rollback holds on the target, so that
// two never run at once.
const switchLock = 7_413_502_931

// openSwitcher connects to both sides and takes the switch lock.
func openSwitcher(ctx context.Context, p *plan.Plan, opts cutover.Options, kind string) (*switcher, error) {
	s := &switcher{p: p, opts: opts, out: opts.Out, dry: opts.DryRun}
	if s.out == nil {
		s.out = io.Discard
	}
	var err error
	if s.tgt, err = ConnectSide(ctx, "target", p.Target); err != nil {
		return nil, err
	}
	if s.src, err = ConnectSide(ctx, "source", p.Source); err != nil {
		s.close(ctx)
		return nil, err
	}
	ctl, ok, err := ReadControl(ctx, s.tgt, p.ControlSchema)
	if err == nil && !ok {
		err = fmt.Errorf("no migration on this target (no control schema %s): run cutover start first", p.ControlSchema)
	}
	if err == nil {
		// Adds the tables of the switch to a control schema an older version made.
		ctl, err = OpenControl(ctx, s.tgt, p.ControlSchema)
	}
	if err != nil {
		s.close(ctx)
		return nil, err
	}
	s.ctl = ctl
	if s.st, err = ctl.State(ctx); err != nil {
		s.close(ctx)
		return nil, err
	}
	if s.st.Mode == control.ModeCopy {
		s.close(ctx)
		return nil, fmt.Errorf("nothing to %s: the migration %s is a one-shot copy (cdc.enabled: false) with no change stream; point the applications at the target yourself, and run cutover finish to drop its control schema", kind, p.ControlSchema)
	}
	if err := s.tgt.QueryRow(ctx, "SELECT changes_tracked_from FROM "+ctl.table("state")).Scan(&s.trackedFrom); err != nil {
		s.close(ctx)
		return nil, fmt.Errorf("target: read whether changes are tracked from %s: %w", ctl.table("state"), err)
	}
	var locked bool
	if err := s.tgt.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", int64(switchLock)).Scan(&locked); err != nil {
		s.close(ctx)
		return nil, err
	}
	if !locked && !s.dry {
		s.close(ctx)
		return nil, fmt.Errorf("another cutover switch or rollback is running on this migration: wait for it (cutover status shows its steps)")
	}
	if err := s.readDatabases(ctx); err != nil {
		s.close(ctx)
		return nil, err
	}
	all, err := listRelations(ctx, s.src)
	if err != nil {
		s.close(ctx)
		return nil, fmt.Errorf("source: list the tables: %w", err)
	}
	included, _ := selectTables(all, p)
	s.tables = applyNoIdentityPolicy(included, p.CDC.NoIdentity)
	s.hooks = cutover.PlanHooks(p, s.out, s.dry)
	return s, nil
}

func (s *switcher) close(ctx context.Context) { closeAll(ctx, []*pgx.Conn{s.src, s.tgt}) }

// readDatabases reads the names of the databases s.src and s.tgt are connected to.
func (s *switcher) readDatabases(ctx context.Context) error {
	for _, q := range []struct {
		conn *pgx.Conn
		db   *string
	}{{s.src, &s.srcDB}, {s.tgt, &s.tgtDB}} {
		if err := q.conn.QueryRow(ctx, "SELECT current_database()").Scan(q.db); err != nil {
			return err
		}
	}
	return nil
}

// exec runs a statement that changes a database, or prints it in a dry run.
func (s *switcher) exec(ctx context.Context, side string, conn *pgx.Conn, sql string, args ...any) error {
	if s.dry {
		fmt.Fprintf(s.out, "      %s: %s", side, sql)
		if len(args) > 0 {
			fmt.Fprintf(s.out, "  -- with %v", args)
		}
		fmt.Fprintln(s.out)
		return nil
	}
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("%s: %s: %w", side, firstLine(sql), err)
	}
	return nil
}

// record writes to the control schema what an undo needs; nothing in a dry run.
func (s *switcher) record(ctx context.Context, sql string, args ...any) error {
	if s.dry {
		return nil
	}
	if _, err := s.tgt.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("target: record in the control schema: %w", err)
	}
	return nil
}

func firstLine(sql string) string {
	sql = strings.TrimSpace(sql)
	if i := strings.IndexByte(sql, '\n'); i >= 0 {
		return sql[:i] + " ..."
	}
	return sql
}

// setReplication tells the running task which way to replicate.
func (s *switcher) setReplication(ctx context.Context, dir string) error {
	return s.exec(ctx, "target", s.tgt, "UPDATE "+s.ctl.table("state")+" SET replication = $1", dir)
}

// setPhase records where the migration stands.
func (s *switcher) setPhase(ctx context.Context, phase string) error {
	return s.exec(ctx, "target", s.tgt, "UPDATE "+s.ctl.table("state")+" SET phase = $1, updated_at = now()", phase)
}

// phaseBack is the undo of the gates: the phase they set (running) goes back to
// before. Only that phase: gates that refused set none, and the phase they found
// (switched, for a switch the gates refused) stays.
func (s *switcher) phaseBack(ctx context.Context, running, before string) (string, error) {
	if s.dry {
		return "", nil
	}
	tag, err := s.tgt.Exec(ctx, "UPDATE "+s.ctl.table("state")+" SET phase = $1, updated_at = now() WHERE phase = $2", before, running)
	if err != nil {
		return "", fmt.Errorf("target: set the phase back to %s: %w", before, err)
	}
	if tag.RowsAffected() == 0 {
		return "", nil
	}
	return "phase " + before + " again", nil
}

// waitApplied writes a marker into from's WAL and waits until the applier that
// replicates from it has committed past it: controlConn's state (the target's for
// forward replication, the source's for reverse) says so.
func (s *switcher) waitApplied(ctx context.Context, side string, from *pgx.Conn, controlConn *pgx.Conn, timeout time.Duration) (string, error) {
	if s.dry {
		fmt.Fprintf(s.out, "      %s: SELECT pg_logical_emit_message(true, 'cutover_sync', '%s'), then wait up to %v until it is applied\n", side, s.run.ID, timeout)
		return "", nil
	}
	var marker string
	if err := from.QueryRow(ctx, "SELECT pg_logical_emit_message(true, 'cutover_sync', $1)::text", s.run.ID).Scan(&marker); err != nil {
		return "", fmt.Errorf("%s: write the sync marker: %w", side, err)
	}
	deadline := time.Now().Add(timeout)
	q := "SELECT applied_position <> '' AND applied_position::pg_lsn >= $1::pg_lsn FROM " + pgx.Identifier{s.p.ControlSchema, "state"}.Sanitize()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var done bool
		if err := controlConn.QueryRow(ctx, q, marker).Scan(&done); err != nil {
			return marker, fmt.Errorf("read the applied position: %w", err)
		}
		if done {
			return marker, nil
		}
		if time.Now().After(deadline) {
			return marker, fmt.Errorf("replication did not apply the sync marker %s within %v (cutover.sync_timeout): is cutover start running and keeping up? (cutover status)", marker, timeout)
		}
		select {
		case <-ctx.Done():
			return marker, ctx.Err()
		case <-tick.C:
		}
	}
}

// waitSlotIdle waits until nothing streams from slot on conn's server.
func (s *switcher) waitSlotIdle(ctx context.Context, side string, conn *pgx.Conn, slot string) error {
	if s.dry {
		fmt.Fprintf(s.out, "      %s: wait until no walsender streams from slot %s\n", side, slot)
		return nil
	}
	return waitSlotFree(ctx, conn, side, slot, io.Discard)
}

// Runs: the runbook in the control schema (cutover.Runs).

// Begin makes r the run the steps record for.
func (s *switcher) Begin(r *cutover.Run) { s.run = r }

func (s *switcher) SaveRun(ctx context.Context, r *cutover.Run) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return err
	}
	var downtime, tool *time.Duration
	if r.UnlockedAt != nil {
		downtime, tool = &r.Downtime, &r.ToolDowntime
	}
	_, err = s.tgt.Exec(ctx, "INSERT INTO "+s.ctl.table("runs")+` (id, kind, started_at, ended_at, outcome, reason, blocked_at, unlocked_at, downtime, tool_downtime, runbook)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (id) DO UPDATE SET ended_at = excluded.ended_at, outcome = excluded.outcome, reason = excluded.reason,
		    blocked_at = excluded.blocked_at, unlocked_at = excluded.unlocked_at, downtime = excluded.downtime,
		    tool_downtime = excluded.tool_downtime, runbook = excluded.runbook`,
		r.ID, r.Kind, r.Started, r.Ended, r.Outcome, r.Reason, r.BlockedAt, r.UnlockedAt, downtime, tool, doc)
	return err
}

func (s *switcher) SaveStep(ctx context.Context, runID string, st *cutover.StepRecord) error {
	if err := s.SaveRun(ctx, s.run); err != nil {
		return err
	}
	_, err := s.tgt.Exec(ctx, "INSERT INTO "+s.ctl.table("runbook")+` (run_id, seq, step, title, started_at, ended_at, outcome, detail, error, operator_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (run_id, seq) DO UPDATE SET ended_at = excluded.ended_at, outcome = excluded.outcome, detail = excluded.detail, error = excluded.error`,
		runID, st.Seq, st.Name, st.Title, st.Started, st.Ended, string(st.Outcome), st.Detail, st.Error, st.Operator)
	return err
}

// Interrupted finds the last run of kind when the cutover process did not finish it
// (it crashed), or when an undo of its rollback failed: the next run of kind picks it
// up (the undos are recorded, so running them again is safe).
func (s *switcher) Interrupted(ctx context.Context, kind string) (*cutover.Run, error) {
	r, err := readRun(ctx, s.tgt, s.ctl, kind)
	if err != nil || r == nil {
		return nil, err
	}
	if r.Outcome == string(cutover.Running) || r.Outcome == cutover.OutcomeIncomplete {
		return r, nil
	}
	return nil, nil
}

// ExpectedDowntime is the write downtime the last run of kind measured: the rehearsal's.
// None (0) when there was none.
func (s *switcher) ExpectedDowntime(ctx context.Context, kind string) time.Duration {
	var d time.Duration
	_ = s.tgt.QueryRow(ctx, "SELECT downtime FROM "+s.ctl.table("runs")+" WHERE kind = $1 AND outcome = 'done' AND downtime IS NOT NULL ORDER BY started_at DESC LIMIT 1", kind).Scan(&d)
	return d
}
