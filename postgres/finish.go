package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/finish"
	"github.com/cutover-dev/cutover/internal/failpoint"
	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// FinishTimeout is how long cutover finish waits for a running task to let go of the slot.
var FinishTimeout = 30 * time.Second

// Finish ends the migration: finish.Finish's steps, each run on PostgreSQL by an
// ender.
func Finish(ctx context.Context, p *plan.Plan, out io.Writer, keepControl bool) error {
	tgt, err := ConnectSide(ctx, "target", p.Target)
	if err != nil {
		return err
	}
	e := &ender{p: p, out: out, tgt: tgt}
	defer e.close(context.WithoutCancel(ctx))
	return finish.Finish(ctx, p, e, out, keepControl)
}

// ender ends a migration on PostgreSQL: the slots, publications and event triggers,
// the control schemas.
type ender struct {
	p        *plan.Plan
	out      io.Writer
	src, tgt *pgx.Conn
	ctl      *Control
}

var _ finish.Ender = (*ender)(nil)

func (e *ender) close(ctx context.Context) { closeAll(ctx, []*pgx.Conn{e.src, e.tgt}) }

func (e *ender) State(ctx context.Context) (control.State, bool, error) {
	ctl, ok, err := ReadControl(ctx, e.tgt, e.p.ControlSchema)
	if err != nil || !ok {
		return control.State{}, ok, err
	}
	e.ctl = ctl
	st, err := ctl.State(ctx)
	return st, true, err
}

func (e *ender) SetState(ctx context.Context, st control.State) error { return e.ctl.SetState(ctx, st) }

func (e *ender) ReachSource(ctx context.Context) (err error) {
	e.src, err = ConnectSide(ctx, "source", e.p.Source)
	return err
}

// StopReplication waits until no walsender streams from either slot.
func (e *ender) StopReplication(ctx context.Context, st control.State) error {
	if err := waitSlotFree(ctx, e.src, "source", st.Slot, e.out); err != nil {
		return err
	}
	return waitSlotFree(ctx, e.tgt, "target", reverseSlot(st.Slot), e.out)
}

// DropReplication drops reverse replication's slot and publications on the target,
// or the migration's slot, publications and capture of schema changes on the source.
func (e *ender) DropReplication(ctx context.Context, st control.State, side finish.Side) error {
	if side == finish.Target {
		rev := reverseSlot(st.Slot)
		tag, err := e.tgt.Exec(ctx, dropSlotSQL, rev)
		if err != nil {
			return fmt.Errorf("drop reverse replication's slot %s on the target: %w", rev, err)
		}
		if err := dropPublications(ctx, e.tgt, rev); err != nil {
			return fmt.Errorf("target: %w", err)
		}
		if tag.RowsAffected() > 0 {
			fmt.Fprintf(e.out, "stopped reverse replication: dropped the slot %s and its publications on the target\n", rev)
		}
		return nil
	}
	if _, err := e.src.Exec(ctx, dropSlotSQL, st.Slot); err != nil {
		return fmt.Errorf("drop the replication slot %s on the source: %w", st.Slot, err)
	}
	fmt.Fprintf(e.out, "dropped the replication slot %s on the source\n", st.Slot)
	failpoint.KillAt("finish:slot")
	if err := dropPublications(ctx, e.src, st.Slot); err != nil {
		return err
	}
	all, insertsOnly := publications(st.Slot)
	fmt.Fprintf(e.out, "dropped the publications %s and %s on the source\n", all, insertsOnly)
	failpoint.KillAt("finish:publications")
	if captured, err := ddlCaptured(ctx, e.src, st.Slot); err != nil {
		return fmt.Errorf("source: %w", err)
	} else if captured {
		if err := dropDDLCapture(ctx, e.src, e.p.ControlSchema, st.Slot); err != nil {
			return err
		}
		fmt.Fprintf(e.out, "dropped the event triggers %s_ddl_* (the capture of schema changes) and their function on the source\n", st.Slot)
	}
	return nil
}

func (e *ender) SayLeftClosed(ctx context.Context) error {
	return sayLeftBlocked(ctx, e.tgt, e.ctl, e.out)
}

// DropControl drops the control schema on side: on the source, the one a switch made
// for reverse replication's position, if there is one.
func (e *ender) DropControl(ctx context.Context, side finish.Side) (bool, error) {
	conn := e.tgt
	if side == finish.Source {
		conn = e.src
		if _, ok, err := ReadControl(ctx, conn, e.p.ControlSchema); err != nil || !ok {
			return false, nil
		}
	}
	if _, err := conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{e.p.ControlSchema}.Sanitize()+" CASCADE"); err != nil {
		return false, fmt.Errorf("drop the control schema %s on the %s: %w", e.p.ControlSchema, side, err)
	}
	return true, nil
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
