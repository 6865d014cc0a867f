package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/load"
	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// RunCDC is cutover start after the full load: it replicates in the direction the
// control schema says (state.replication) and follows it when a switch or a rollback
// changes it: source to target while the migration replicates, nothing while a switch
// holds replication stopped, target to source after the switch. It returns at the end
// of ctx (a clean stop), when cutover finish asks, or on an error.
func RunCDC(ctx context.Context, p *plan.Plan, opts engine.StartOptions) error {
	disp := opts.Display
	if disp == nil {
		disp = &load.Lines{W: opts.Out}
		opts.Display = disp
	}
	said := ""
	for {
		dir, phase, err := readDirection(ctx, p)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		switch {
		case phase == control.PhaseFinishing:
			return nil
		case phase == control.PhaseFinished:
			return load.ErrFinished(p)
		}
		if dir == control.ReplicateStopped && said != dir {
			disp.Step(fmt.Sprintf("replication is held stopped (phase %s): waiting for the switch or rollback to go on", phase))
		}
		said = dir
		run := func(ctx context.Context) error { return nil }
		switch dir {
		case control.ReplicateForward:
			run = func(ctx context.Context) error { return Replicate(ctx, p, opts) }
		case control.ReplicateReverse:
			run = func(ctx context.Context) error { return replicate(ctx, reversed(p), opts, true) }
		}
		changed, finishing, err := untilDirectionChanges(ctx, p, dir, run)
		if ctx.Err() != nil || finishing {
			// A clean stop, even from the middle of a (re)connection; cutover finish
			// drops the control schema as soon as the slots are free, so the task
			// must not read it again.
			return nil
		}
		if err != nil && changed {
			// Stopped from here because the direction changed: whatever the run was
			// doing (even recording that it runs) ended for that reason, and the
			// direction may already be back where it was (a switch that undid itself
			// within one poll).
			disp.Step(fmt.Sprintf("replication %s ended as the direction changed: %v", dir, err))
			continue
		}
		if err != nil {
			// cutover finish may have begun while replication started: it is a
			// clean stop, not the task's failure. A rollback may have stopped this
			// direction (and dropped its slot) while it started: follow the new one.
			if now, phase, rerr := readDirection(ctx, p); rerr == nil {
				switch {
				case phase == control.PhaseFinishing:
					return nil
				case now != dir:
					disp.Step(fmt.Sprintf("replication %s ended as the direction changed to %s: %v", dir, now, err))
					continue
				}
			}
			return err
		}
	}
}

// reversed is the plan of reverse replication: the target is its source, the source
// its target, where its control schema keeps its position.
func reversed(p *plan.Plan) *plan.Plan {
	r := *p
	r.Source, r.Target = p.Target, p.Source
	r.Validation.Continuous, r.Validation.TrackChanges = false, false
	return &r
}

// readDirection reads the replication direction and the phase from the target. A
// control schema that is gone (cutover finish dropped it) reads as finishing.
func readDirection(ctx context.Context, p *plan.Plan) (dir, phase string, err error) {
	tgt, err := ConnectSide(ctx, "target", p.Target)
	if err != nil {
		return "", "", err
	}
	defer tgt.Close(context.WithoutCancel(ctx))
	version, err := readControlVersion(ctx, tgt, p.ControlSchema)
	if err != nil {
		return "", "", err
	}
	if version == nil {
		return "", control.PhaseFinishing, nil
	}
	if *version != controlVersion {
		// Brings a control schema an older version made up to date.
		if _, err := OpenControl(ctx, tgt, p.ControlSchema); err != nil {
			return "", "", err
		}
	}
	err = tgt.QueryRow(ctx, "SELECT replication, phase FROM "+pgx.Identifier{p.ControlSchema, "state"}.Sanitize()).Scan(&dir, &phase)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000") {
		return "", control.PhaseFinishing, nil // dropped since the first read
	}
	return dir, phase, err
}

// directionPoll is how often a running task looks for a new direction: it bounds how
// long a switch waits for replication to stop.
const directionPoll = 50 * time.Millisecond

// untilDirectionChanges runs f until the direction in the control schema is no
// longer dir (changed) or the phase is finishing (finishing), or until f returns.
func untilDirectionChanges(ctx context.Context, p *plan.Plan, dir string, f func(context.Context) error) (changed, finishing bool, err error) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f(runCtx) }()
	tick := time.NewTicker(directionPoll)
	defer tick.Stop()
	var tgt *pgx.Conn
	defer func() {
		if tgt != nil {
			tgt.Close(context.WithoutCancel(ctx))
		}
	}()
	state := pgx.Identifier{p.ControlSchema, "state"}.Sanitize()
	for {
		select {
		case err := <-done:
			if dir == control.ReplicateStopped {
				// Nothing ran: wait for a change of direction here.
				done = nil
				continue
			}
			return false, false, err
		case <-ctx.Done():
			if done != nil {
				return false, false, <-done
			}
			return false, false, nil
		case <-tick.C:
		}
		if tgt == nil || tgt.IsClosed() {
			// A target that went away is the replication's fault to report and retry.
			if tgt, _ = Connect(ctx, p.Target); tgt == nil {
				continue
			}
		}
		var now, phase string
		if err := tgt.QueryRow(ctx, "SELECT replication, phase FROM "+state).Scan(&now, &phase); err != nil {
			tgt.Close(ctx)
			continue
		}
		if now != dir || phase == control.PhaseFinishing {
			cancel()
			if done != nil {
				err = <-done
			}
			return now != dir, phase == control.PhaseFinishing, err
		}
	}
}
