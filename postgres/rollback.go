package postgres

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/plan"
)

// Rollback returns a switched migration to the source: the target's users blocked,
// reverse replication caught up with a marker, sequences set back, the applications
// switched back (switch_back hooks), the source's users and jobs given back; then
// forward replication resumes, so the migration can switch again. The checklist
// (cutover.Rollback) runs as gated steps like the switch; before the unlock a failure
// undoes it (the target stays live).
func Rollback(ctx context.Context, p *plan.Plan, opts cutover.Options) (*cutover.Result, error) {
	s, err := openSwitcher(ctx, p, opts, "rollback")
	if err != nil {
		return nil, err
	}
	defer s.close(ctx)
	return cutover.Rollback(ctx, s, p, opts)
}

func (s *switcher) rollbackGates(ctx context.Context) (string, error) {
	var problems []string
	if s.st.Phase != control.PhaseSwitched {
		problems = append(problems, fmt.Sprintf("the migration is in phase %q: only a switched migration rolls back", s.st.Phase))
	}
	var inPlace bool
	if err := s.tgt.QueryRow(ctx, "SELECT reverse_slot <> '' AND EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1) FROM "+s.ctl.table("state"),
		reverseSlot(s.st.Slot)).Scan(&inPlace); err != nil {
		return "", fmt.Errorf("target: read reverse replication's slot: %w", err)
	}
	// Before a switch there is no reverse slot to expect: the phase says it all.
	if !inPlace && s.st.Phase == control.PhaseSwitched {
		problems = append(problems, fmt.Sprintf("reverse replication's slot %s is not on the target, so the writes made there since the switch cannot reach the source: "+
			"stay on the target (cutover finish), or bring those writes to the source by hand before going back", reverseSlot(s.st.Slot)))
	}
	// The source was closed by the switch: a role that can write there now would make
	// two live sides.
	if s.st.Phase == control.PhaseSwitched {
		open, err := s.openSide(ctx, s.source())
		if err != nil {
			return "", err
		}
		problems = append(problems, open...)
	}
	// The rollback blocks the target's users as the switch blocked the source's.
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

// syncReverse waits for reverse replication to apply a marker written on the target.
// Without a running cutover start it replicates here for the while.
func (s *switcher) syncReverse(ctx context.Context) (string, error) {
	slot := reverseSlot(s.st.Slot)
	active, err := slotActive(ctx, s.tgt, "target", slot)
	if err != nil {
		return "", err
	}
	detail := ""
	if !active && !s.dry {
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- replicate(rctx, reversed(s.p), engine.StartOptions{Out: io.Discard}, true) }()
		defer func() {
			cancel()
			<-done
		}()
		detail = " (no cutover start ran: reverse replication ran here)"
	}
	src, err := Connect(ctx, s.p.Source)
	if err != nil {
		return "", err
	}
	defer src.Close(context.WithoutCancel(ctx))
	marker, err := s.waitApplied(ctx, "target", s.tgt, src, s.p.Cutover.SyncTimeout.D())
	if err != nil {
		return "", err
	}
	return "the source applied the marker at " + marker + detail, nil
}

func (s *switcher) stopReverse(ctx context.Context) (string, error) {
	if err := s.setReplication(ctx, control.ReplicateStopped); err != nil {
		return "", err
	}
	slot := reverseSlot(s.st.Slot)
	if err := s.waitSlotIdle(ctx, "target", s.tgt, slot); err != nil {
		return "", err
	}
	return "slot " + slot + " is idle", nil
}

func (s *switcher) resumeReverse(ctx context.Context) (string, error) {
	return "reverse replication resumes", s.setReplication(ctx, control.ReplicateReverse)
}

// unlockSource ends the rollback's downtime: the source's users and jobs come back.
func (s *switcher) unlockSource(ctx context.Context) (string, error) {
	d1, err := s.unblock(ctx, s.source())
	if err != nil {
		return "", err
	}
	d2, err := s.resumeJobs(ctx, s.source(), s.target())
	if err != nil {
		return "", err
	}
	if err := s.setPhase(ctx, control.PhaseRolledBack); err != nil {
		return "", err
	}
	return d1 + "; " + d2, nil
}

// relockSource undoes an unlock of the source that failed, or was interrupted, before
// it was recorded done: the source is closed again and its jobs go back to the target,
// before the undos that follow open the target again. Without it both sides would take
// writes, and the jobs would run on both.
func (s *switcher) relockSource(ctx context.Context) (string, error) {
	d1, err := s.block(ctx, s.source())
	if err != nil {
		return "", err
	}
	d2, err := s.suspendJobs(ctx, s.source())
	if err != nil {
		return "", err
	}
	d3, err := s.moveJobs(ctx, s.source(), s.target())
	if err != nil {
		return "", err
	}
	// The phase the unlock set goes back to the rollback's, which the gates' undo ends.
	if _, err := s.phaseBack(ctx, control.PhaseRolledBack, control.PhaseRollingBack); err != nil {
		return "", err
	}
	return d1 + "; " + d2 + "; " + d3, nil
}

// EndReverse drops reverse replication and lets forward replication resume: it skips
// what reverse replication wrote into the source.
func (s *switcher) EndReverse(ctx context.Context) (string, error) {
	d, err := s.DropReverse(ctx)
	if err != nil {
		return "", err
	}
	// The writes made on the target while it was live were not tracked for incremental
	// validation: the next validation of each table is a full one. Before forward
	// replication resumes, whose applier updates these rows too.
	if err := s.exec(ctx, "target", s.tgt, "UPDATE "+s.ctl.table("table_stats")+" SET validated_position = ''"); err != nil {
		return "", err
	}
	if err := s.setReplication(ctx, control.ReplicateForward); err != nil {
		return "", err
	}
	return d + "; forward replication resumes; the next validation of each table is a full one", nil
}
