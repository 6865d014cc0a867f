package cutover

import (
	"context"
	"fmt"
	"os"
	"strings"
)

// FailpointEnv names the environment variable that makes a run fail inside a step, for
// the fault matrix tests: a comma-separated list of kind:step:fault, such as
// "switch:sync:kill". The faults strike once the step's action has run, before the
// step is recorded done:
//
//	fail    the step fails
//	kill    the process kills itself (SIGKILL): what a crash or kill -9 leaves
//	budget  the step waits until the downtime budget runs out (a step in the window)
//	undo    the step's undo, when the run is undone, fails after it ran
//
// Nobody sets it but a test; a run with it set says so.
const FailpointEnv = "CUTOVER_FAILPOINT"

// Faults of FailpointEnv.
const (
	FaultFail   = "fail"
	FaultKill   = "kill"
	FaultBudget = "budget"
	FaultUndo   = "undo"
)

// failpoints reads FailpointEnv: kind:step -> faults.
func failpoints() map[string][]string {
	v := os.Getenv(FailpointEnv)
	if v == "" {
		return nil
	}
	fp := map[string][]string{}
	for _, f := range strings.Split(v, ",") {
		if i := strings.LastIndexByte(f, ':'); i > 0 {
			fp[f[:i]] = append(fp[f[:i]], f[i+1:])
		}
	}
	return fp
}

// sayFailpoints says that a test set failpoints.
func (r *Runner) sayFailpoints() {
	if v := os.Getenv(FailpointEnv); v != "" {
		fmt.Fprintf(r.Out, "test failpoints set (%s): %s\n", FailpointEnv, v)
	}
}

// strike runs the fault set for the step (undo: its undo), if any.
func (r *Runner) strike(ctx context.Context, step string, undo bool) error {
	if r.Run.DryRun {
		return nil
	}
	for _, fault := range failpoints()[r.Run.Kind+":"+step] {
		switch {
		case undo && fault == FaultUndo:
			return fmt.Errorf("failpoint %s:%s:%s", r.Run.Kind, step, fault)
		case undo:
		case fault == FaultFail:
			return fmt.Errorf("failpoint %s:%s:%s", r.Run.Kind, step, fault)
		case fault == FaultKill:
			if p, err := os.FindProcess(os.Getpid()); err == nil {
				_ = p.Kill() // SIGKILL
			}
			select {} // the signal is on its way
		case fault == FaultBudget:
			if _, ok := ctx.Deadline(); !ok {
				return fmt.Errorf("failpoint %s:%s:%s: the step is not in the downtime window, or there is no budget", r.Run.Kind, step, fault)
			}
			<-ctx.Done()
			return context.Cause(ctx)
		}
	}
	return nil
}
