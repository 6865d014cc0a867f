package cutover

import (
	"context"
	"fmt"

	"github.com/cutover-dev/cutover/internal/failpoint"
)

// A run's failpoints (failpoint.Env) are kind:step:fault, such as "switch:sync:kill".
// The faults strike once the step's action has run, before the step is recorded done:
// fail (the step fails), kill (SIGKILL: what a crash or kill -9 leaves), budget (the
// step holds until the downtime budget runs out; a step in the window), undo (the
// step's undo, when the run is undone, fails after it ran).

// sayFailpoints says that a test set failpoints.
func (r *Runner) sayFailpoints() {
	if v := failpoint.Set(); v != "" {
		fmt.Fprintf(r.Out, "test failpoints set (%s): %s\n", failpoint.Env, v)
	}
}

// strike runs the fault set for the step (undo: its undo), if any.
func (r *Runner) strike(ctx context.Context, step string, undo bool) error {
	if r.Run.DryRun {
		return nil
	}
	point := r.Run.Kind + ":" + step
	for _, fault := range failpoint.Faults(point) {
		switch {
		case undo && fault == failpoint.Undo, !undo && fault == failpoint.Fail:
			return fmt.Errorf("failpoint %s:%s", point, fault)
		case undo:
		case fault == failpoint.Kill:
			failpoint.Die()
		case fault == failpoint.Budget:
			if _, ok := ctx.Deadline(); !ok {
				return fmt.Errorf("failpoint %s:%s: the step is not in the downtime window, or there is no budget", point, fault)
			}
			<-ctx.Done()
			return context.Cause(ctx)
		}
	}
	return nil
}
