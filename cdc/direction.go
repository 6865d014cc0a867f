package cdc

import (
	"context"
	"fmt"
	"time"

	"github.com/cutover-dev/cutover/control"
)

// Directions runs cutover start's replication after the load in the direction the
// control state says, and follows it when a switch or a rollback changes it: source to
// target while the migration replicates (forward), nothing while a switch holds it
// (stopped), target to source after the switch (reverse).
type Directions struct {
	// Read reads the direction and the migration's phase; a control state that is
	// gone (cutover finish dropped it) reads as the phase finishing.
	Read func(ctx context.Context) (dir, phase string, err error)
	// Run replicates in dir (forward or reverse) until ctx ends.
	Run func(ctx context.Context, dir string) error
	// Say tells the operator.
	Say func(string)
	// Poll is how often the direction is read while replication runs: it bounds how
	// long a switch waits for replication to stop.
	Poll time.Duration
	// Finished is the error for a migration cutover finish ended.
	Finished error
}

// Follow replicates until ctx ends (a clean stop), cutover finish asks, or an error.
func (d Directions) Follow(ctx context.Context) error {
	said := ""
	for {
		dir, phase, err := d.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		switch phase {
		case control.PhaseFinishing:
			return nil
		case control.PhaseFinished:
			return d.Finished
		}
		if dir == control.ReplicateStopped && said != dir {
			d.Say(fmt.Sprintf("replication is held stopped (phase %s): waiting for the switch or rollback to go on", phase))
		}
		said = dir
		changed, finishing, err := d.until(ctx, dir)
		if ctx.Err() != nil || finishing {
			return nil
		}
		if err != nil && changed {
			// Stopped from here because the direction changed: whatever the run was
			// doing ended for that reason.
			d.Say(fmt.Sprintf("replication %s ended as the direction changed: %v", dir, err))
			continue
		}
		if err != nil {
			// A rollback may have stopped this direction while it started: follow the
			// new one; cutover finish may have begun: a clean stop.
			if now, phase, rerr := d.Read(ctx); rerr == nil {
				switch {
				case phase == control.PhaseFinishing:
					return nil
				case now != dir:
					d.Say(fmt.Sprintf("replication %s ended as the direction changed to %s: %v", dir, now, err))
					continue
				}
			}
			return err
		}
	}
}

// until runs dir until the direction is no longer dir (changed) or the phase is
// finishing (finishing), or until the run returns.
func (d Directions) until(ctx context.Context, dir string) (changed, finishing bool, err error) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var done chan error
	if dir != control.ReplicateStopped {
		done = make(chan error, 1)
		go func() { done <- d.Run(runCtx, dir) }()
	}
	tick := time.NewTicker(d.Poll)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return false, false, err
		case <-ctx.Done():
			if done != nil {
				return false, false, <-done
			}
			return false, false, nil
		case <-tick.C:
		}
		now, phase, rerr := d.Read(ctx)
		if rerr != nil {
			continue // a target that went away is the run's fault to report and retry
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
