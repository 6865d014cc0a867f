// Package finish ends a migration, for any pair of engines: cutover finish stops the
// running cutover start, drops what the migration made on the servers to replicate
// (both directions), says what stays closed on the side that is not live, and drops
// the control state, or keeps it as finished. The target's data and schema stay as
// they are. A finish killed at any step is run again from the top: each step finds
// what the one before left.
package finish

import (
	"context"
	"fmt"
	"io"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/internal/failpoint"
	"github.com/cutover-dev/cutover/plan"
)

// Side names a server of the migration in what Ender does.
type Side string

// The sides.
const (
	Source Side = "source"
	Target Side = "target"
)

// Ender is what finishing asks of the engines.
type Ender interface {
	// State reads the migration's state on the target; ok is false when there is none.
	State(ctx context.Context) (st control.State, ok bool, err error)
	// SetState records it.
	SetState(ctx context.Context, st control.State) error
	// ReachSource connects to the source: finishing needs both sides.
	ReachSource(ctx context.Context) error
	// StopReplication waits until neither direction's stream is read any more: a
	// running cutover start sees the phase finishing and stops.
	StopReplication(ctx context.Context, st control.State) error
	// DropReplication drops what the stream out of side was read through (PostgreSQL:
	// the slot, its publications, the capture of schema changes), saying what it
	// dropped; what is not there is not an error.
	DropReplication(ctx context.Context, st control.State, side Side) error
	// SayLeftClosed says what the load, switches and rollbacks closed and did not give
	// back, with the statements that give it back: the control state that records it
	// is about to go.
	SayLeftClosed(ctx context.Context) error
	// DropControl drops the control state on side; false when there was none.
	DropControl(ctx context.Context, side Side) (bool, error)
}

// Finish ends the migration; keepControl keeps its control state, as finished.
func Finish(ctx context.Context, p *plan.Plan, e Ender, out io.Writer, keepControl bool) error {
	st, ok, err := e.State(ctx)
	if err != nil {
		return err
	}
	if !ok {
		fmt.Fprintf(out, "no migration on this target (no control schema %s): nothing to finish\n", p.ControlSchema)
		return nil
	}
	if err := e.ReachSource(ctx); err != nil {
		return err
	}
	switch st.Phase {
	case control.PhaseSwitching, control.PhaseRollingBack:
		return fmt.Errorf("a cutover %s is in progress (phase %s): let it end, or rerun it to pick it up, then run cutover finish", map[string]string{control.PhaseSwitching: "switch", control.PhaseRollingBack: "rollback"}[st.Phase], st.Phase)
	}
	if st.Slot != "" {
		if err := stopReplication(ctx, e, &st); err != nil {
			return err
		}
	}
	if err := e.SayLeftClosed(ctx); err != nil {
		return err
	}
	if st.Mode != control.ModeCopy {
		live, other := Source, Target
		if st.Phase == control.PhaseSwitched {
			live, other = Target, Source
		}
		fmt.Fprintf(out, "the %s is live and stays writable; what cutover closed on the %s stays closed (the lines above, if any, say how to open it)\n", live, other)
	}
	if keepControl {
		st.Phase = control.PhaseFinished
		if err := e.SetState(ctx, st); err != nil {
			return err
		}
		fmt.Fprintf(out, "kept the control schema %s on the target (phase finished)\n", p.ControlSchema)
		return nil
	}
	return dropControl(ctx, p, e, out)
}

// stopReplication stops the running task, then drops reverse replication (the
// target's stream), then forward replication (the source's).
func stopReplication(ctx context.Context, e Ender, st *control.State) error {
	phase := st.Phase
	st.Phase = control.PhaseFinishing
	if err := e.SetState(ctx, *st); err != nil {
		return err
	}
	failpoint.KillAt("finish:phase")
	if err := e.StopReplication(ctx, *st); err != nil {
		return err
	}
	if err := e.DropReplication(ctx, *st, Target); err != nil {
		return err
	}
	failpoint.KillAt("finish:reverse")
	if err := e.DropReplication(ctx, *st, Source); err != nil {
		return err
	}
	// The live side is said from the phase before finishing.
	st.Phase = phase
	return nil
}

// dropControl drops the control state: a switch kept reverse replication's position
// in one on the source, dropped first, while the target's still records the
// migration, so that a finish that stops in between is run again.
func dropControl(ctx context.Context, p *plan.Plan, e Ender, out io.Writer) error {
	dropped, err := e.DropControl(ctx, Source)
	if err != nil {
		return err
	}
	if dropped {
		fmt.Fprintf(out, "dropped the control schema %s on the source (reverse replication's position)\n", p.ControlSchema)
		failpoint.KillAt("finish:source-control")
	}
	if _, err := e.DropControl(ctx, Target); err != nil {
		return err
	}
	fmt.Fprintf(out, "dropped the control schema %s on the target\n", p.ControlSchema)
	return nil
}
