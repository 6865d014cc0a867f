package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/internal/failpoint"
	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// FinishTimeout is how long cutover finish waits for a running task to let go of the slot.
var FinishTimeout = 30 * time.Second

// Finish ends the migration: it stops a running cutover start, drops the replication
// slot and the publications on the source, and the control schema on the target
// unless keepControl. The target's data and schema stay as they are.
func Finish(ctx context.Context, p *plan.Plan, out io.Writer, keepControl bool) error {
	tgt, err := ConnectSide(ctx, "target", p.Target)
	if err != nil {
		return err
	}
	defer tgt.Close(context.WithoutCancel(ctx))
	ctl, ok, err := ReadControl(ctx, tgt, p.ControlSchema)
	if err != nil {
		return err
	}
	if !ok {
		fmt.Fprintf(out, "no migration on this target (no control schema %s): nothing to finish\n", p.ControlSchema)
		return nil
	}
	st, err := ctl.State(ctx)
	if err != nil {
		return err
	}
	src, err := ConnectSide(ctx, "source", p.Source)
	if err != nil {
		return err
	}
	defer src.Close(context.WithoutCancel(ctx))

	switch st.Phase {
	case control.PhaseSwitching, control.PhaseRollingBack:
		return fmt.Errorf("a cutover %s is in progress (phase %s): let it end, or rerun it to pick it up, then run cutover finish", map[string]string{control.PhaseSwitching: "switch", control.PhaseRollingBack: "rollback"}[st.Phase], st.Phase)
	}
	if st.Slot != "" {
		st.Phase = control.PhaseFinishing
		if err := ctl.SetState(ctx, st); err != nil {
			return err
		}
		failpoint.KillAt("finish:phase")
		if err := waitSlotFree(ctx, src, "source", st.Slot, out); err != nil {
			return err
		}
		rev := reverseSlot(st.Slot)
		if err := waitSlotFree(ctx, tgt, "target", rev, out); err != nil {
			return err
		}
		tag, err := tgt.Exec(ctx, dropSlotSQL, rev)
		if err != nil {
			return fmt.Errorf("drop reverse replication's slot %s on the target: %w", rev, err)
		}
		dropped := tag.RowsAffected() > 0
		if err := dropPublications(ctx, tgt, rev); err != nil {
			return fmt.Errorf("target: %w", err)
		}
		if dropped {
			fmt.Fprintf(out, "stopped reverse replication: dropped the slot %s and its publications on the target\n", rev)
		}
		failpoint.KillAt("finish:reverse")
		if _, err := src.Exec(ctx, dropSlotSQL, st.Slot); err != nil {
			return fmt.Errorf("drop the replication slot %s on the source: %w", st.Slot, err)
		}
		fmt.Fprintf(out, "dropped the replication slot %s on the source\n", st.Slot)
		failpoint.KillAt("finish:slot")
		if err := dropPublications(ctx, src, st.Slot); err != nil {
			return err
		}
		all, insertsOnly := publications(st.Slot)
		fmt.Fprintf(out, "dropped the publications %s and %s on the source\n", all, insertsOnly)
		failpoint.KillAt("finish:publications")
		if captured, err := ddlCaptured(ctx, src, st.Slot); err != nil {
			return fmt.Errorf("source: %w", err)
		} else if captured {
			if err := dropDDLCapture(ctx, src, p.ControlSchema, st.Slot); err != nil {
				return err
			}
			fmt.Fprintf(out, "dropped the event triggers %s_ddl_* (the capture of schema changes) and their function on the source\n", st.Slot)
		}
	}
	if err := sayLeftBlocked(ctx, tgt, ctl, out); err != nil {
		return err
	}
	if st.Mode != control.ModeCopy {
		live, other := "source", "target"
		if st.Phase == control.PhaseSwitched {
			live, other = "target", "source"
		}
		fmt.Fprintf(out, "the %s is live and stays writable; what cutover closed on the %s stays closed (the lines above, if any, say how to open it)\n", live, other)
	}
	if keepControl {
		st.Phase = control.PhaseFinished
		if err := ctl.SetState(ctx, st); err != nil {
			return err
		}
		fmt.Fprintf(out, "kept the control schema %s on the target (phase finished)\n", p.ControlSchema)
		return nil
	}
	// A switch kept reverse replication's position in a control schema on the source:
	// dropped first, while the target's still records the migration, so that a finish
	// that stops in between is run again.
	if _, ok, err := ReadControl(ctx, src, p.ControlSchema); err == nil && ok {
		if _, err := src.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{p.ControlSchema}.Sanitize()+" CASCADE"); err != nil {
			return fmt.Errorf("drop the control schema %s on the source: %w", p.ControlSchema, err)
		}
		fmt.Fprintf(out, "dropped the control schema %s on the source (reverse replication's position)\n", p.ControlSchema)
		failpoint.KillAt("finish:source-control")
	}
	if _, err := tgt.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{p.ControlSchema}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("drop the control schema %s on the target: %w", p.ControlSchema, err)
	}
	fmt.Fprintf(out, "dropped the control schema %s on the target\n", p.ControlSchema)
	return nil
}

// sayLeftBlocked says what a switch or rollback blocked and did not give back — after
// a rollback, the target's users, read-only setting and jobs stay blocked so that
// nothing writes to the abandoned side — with the statements that give it back: the
// control schema that records it is about to go.
func sayLeftBlocked(ctx context.Context, tgt *pgx.Conn, ctl *Control, out io.Writer) error {
	var has bool
	if err := tgt.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", ctl.table("blocked_roles")).Scan(&has); err != nil || !has {
		return err
	}
	rows, err := tgt.Query(ctx, `SELECT side, 'role ' || quote_ident(role) || ' has NOLOGIN: ALTER ROLE ' || quote_ident(role) || ' LOGIN'
		    FROM `+ctl.table("blocked_roles")+` WHERE restored_at IS NULL
		UNION ALL
		SELECT side, 'database ' || quote_ident(database) || ' is read-only: ALTER DATABASE ' || quote_ident(database) ||
		       coalesce(' SET default_transaction_read_only = ' || quote_literal(previous), ' RESET default_transaction_read_only')
		    FROM `+ctl.table("blocked_databases")+` WHERE restored_at IS NULL
		UNION ALL
		SELECT side, 'pg_cron job ' || jobname || ' (' || jobid || ') is inactive: SELECT cron.alter_job(' || coalesce(moved_jobid, jobid) || ', active => true)'
		    FROM `+ctl.table("suspended_jobs")+` WHERE restored_at IS NULL
		ORDER BY 1, 2`)
	if err == nil {
		var left []string
		left, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (string, error) {
			var side, what string
			err := row.Scan(&side, &what)
			return "left blocked on the " + side + " (closed by cutover: the load, a switch or a rollback): " + what, err
		})
		for _, l := range left {
			fmt.Fprintln(out, l)
		}
	}
	if err != nil {
		return fmt.Errorf("target: read what switches and rollbacks left blocked (%s, %s, %s): %w",
			ctl.table("blocked_roles"), ctl.table("blocked_databases"), ctl.table("suspended_jobs"), err)
	}
	return nil
}

// waitSlotFree waits until no walsender streams from the slot: a running cutover start
// sees the new phase or direction and stops.
// dropSlotWhenFree waits until nothing streams from slot on conn's server and drops
// it. A cutover start that read its direction just before it changed may attach to the
// slot again between the wait and the drop: then it waits again.
func dropSlotWhenFree(ctx context.Context, conn *pgx.Conn, side, slot string, out io.Writer) error {
	for {
		if err := waitSlotFree(ctx, conn, side, slot, out); err != nil {
			return err
		}
		_, err := conn.Exec(ctx, dropSlotSQL, slot)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55006" { // object in use: attached meanwhile
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: drop the replication slot %s: %w", side, slot, err)
		}
		return nil
	}
}

func waitSlotFree(ctx context.Context, src *pgx.Conn, side, slot string, out io.Writer) error {
	deadline := time.Now().Add(FinishTimeout)
	said := false
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var pid *int32
		err := src.QueryRow(ctx, "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&pid)
		if err == pgx.ErrNoRows || (err == nil && pid == nil) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: read slot %s: %w", side, slot, err)
		}
		if !said {
			fmt.Fprintf(out, "waiting for the running cutover start (walsender pid %d on the %s) to stop ...\n", *pid, side)
			said = true
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the slot %s is still in use by pid %d on the %s after %v: stop that cutover start (Ctrl-C or SIGTERM), then run this command again", slot, *pid, side, FinishTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
