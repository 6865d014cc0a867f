package cutover

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cutover-dev/cutover/plan"
)

// action is what a step does, or undoes.
type action = func(ctx context.Context) (detail string, err error)

// on binds an action on a side to the side.
func on(act func(context.Context, Side) (string, error), sd Side) action {
	return func(ctx context.Context) (string, error) { return act(ctx, sd) }
}

// switchSteps is the cut over checklist.
func (f *flow) switchSteps() []Step {
	x := f.sides
	return []Step{
		{Name: "gates", Title: "check the gates: CDC running and caught up, no apply exceptions, no known differences, reverse replication possible",
			Gate: true, Do: f.gates, Undo: f.undoGates},
		{Name: "prevalidate", Title: prevalidateTitle(x.Tracked()), Gate: true, Do: x.ValidateBeforeBlock},
		{Name: "publications", Title: "create reverse replication's publications on the target, before the block (their table locks may wait for autovacuum)",
			Do: x.PrepareReverse, Undo: x.UnprepareReverse},
		{Name: "notify", Title: "notify: hooks and webhooks", Do: f.notifyStep("begin"), Undo: f.notifyStep("rolled back")},
		{Name: "block", Title: "block writes on the source: " + blockWhat(f.p.Cutover.Block), Do: on(x.Block, Source), Undo: on(x.Unblock, Source)},
		{Name: "jobs", Title: "suspend scheduled jobs on the source (pg_cron, suspend_jobs hooks)", Do: on(x.SuspendJobs, Source), Undo: on(x.ResumeJobs, Source)},
		{Name: "sync", Title: "wait until the target has applied every change: a marker through the change stream", Do: on(x.Sync, Source)},
		{Name: "validate", Title: validateTitle(x.Tracked()), Do: x.ValidateWindow},
		{Name: "stop", Title: "stop replication", Do: on(x.StopReplication, Source), Undo: on(x.ResumeReplication, Source)},
		{Name: "sequences", Title: "set every sequence on the target from the source", Do: on(x.CopySequences, Source)},
		{Name: "objects", Title: "secondary objects on the target: indexes valid, constraints validated, triggers enabled as on the source", Do: x.SecondaryObjects},
		{Name: "reverse", Title: "start reverse replication, target to source, from the target's position now", Do: x.StartReverse, Undo: x.DropReverse},
		{Name: "switch", Title: "switch the applications to the target (switch hooks)", Operator: true,
			Do: f.hooksStep(f.p.Cutover.Hooks.Switch, "switch"), Undo: f.hooksStep(f.p.Cutover.Hooks.SwitchBack, "switch_back")},
		{Name: "qa", Title: "QA on the target: SQL assertions, commands, approval", Operator: true, Do: x.QA},
		{Name: "unlock", Title: "unlock: the users log in to the target, jobs resume there", Do: on(x.Unlock, Target), Undo: on(x.Relock, Target)},
		{Name: "done", Title: "notify: done", Do: f.notifyStep("done")},
	}
}

// rollbackSteps is the checklist that returns a switched migration to the source.
func (f *flow) rollbackSteps() []Step {
	x := f.sides
	return []Step{
		{Name: "gates", Title: "check the gates: switched, reverse replication in place", Gate: true, Do: f.gates, Undo: f.undoGates},
		{Name: "notify", Title: "notify: hooks and webhooks", Do: f.notifyStep("begin"), Undo: f.notifyStep("rolled back")},
		{Name: "block", Title: "block writes on the target: " + blockWhat(f.p.Cutover.Block), Do: on(x.Block, Target), Undo: on(x.Unblock, Target)},
		{Name: "jobs", Title: "suspend scheduled jobs on the target (pg_cron, suspend_jobs hooks)", Do: on(x.SuspendJobs, Target), Undo: on(x.ResumeJobs, Target)},
		{Name: "sync", Title: "wait until the source has applied every write made on the target: a marker through reverse replication", Do: on(x.Sync, Target)},
		{Name: "stop", Title: "stop reverse replication", Do: on(x.StopReplication, Target), Undo: on(x.ResumeReplication, Target)},
		{Name: "sequences", Title: "set every sequence on the source from the target", Do: on(x.CopySequences, Target)},
		{Name: "switch", Title: "switch the applications back to the source (switch_back hooks)", Operator: true,
			Do: f.hooksStep(f.p.Cutover.Hooks.SwitchBack, "switch_back"), Undo: f.hooksStep(f.p.Cutover.Hooks.Switch, "switch")},
		{Name: "unlock", Title: "unlock the source: its users log in again, its jobs resume", Do: on(x.Unlock, Source), Undo: on(x.Relock, Source)},
		{Name: "cleanup", Title: "drop reverse replication's slot and publications on the target; forward replication resumes", Do: x.EndReverse},
		{Name: "done", Title: "notify: done", Do: f.notifyStep("done")},
	}
}

func (f *flow) gates(ctx context.Context) (string, error)     { return f.sides.CheckGates(ctx, f.kind) }
func (f *flow) undoGates(ctx context.Context) (string, error) { return f.sides.UndoGates(ctx, f.kind) }

func blockWhat(m plan.BlockMode) string {
	if m == plan.BlockReadOnly {
		return "the database read-only, sessions ended"
	}
	return "login roles NOLOGIN, their sessions ended"
}

func prevalidateTitle(tracked bool) string {
	if !tracked {
		return "validate before the block: nothing (changes are not tracked: the validate step compares every table in full inside the downtime window)"
	}
	return "validate before the block, while the users still write: a full pass of each table never validated or not tracked since, the changed rows of the others"
}

func validateTitle(tracked bool) string {
	if !tracked {
		return "validate every table in full, inside the downtime window (changes are not tracked)"
	}
	return "validate the rows changed since the validation before the block (incremental)"
}

// hooksStep runs the hooks that point the applications at one side.
func (f *flow) hooksStep(cmds []string, kind string) action {
	return func(ctx context.Context) (string, error) {
		if len(cmds) == 0 {
			return "no " + kind + " hooks in the plan", nil
		}
		if err := f.hooks.Commands(ctx, kind, cmds, "CUTOVER_STEP="+kind, "CUTOVER_RUN="+f.run.ID); err != nil {
			return "", err
		}
		return fmt.Sprintf("%d %s hook(s) ran", len(cmds), kind), nil
	}
}

// notifyStep notifies step, and only warns when that fails: a webhook that is down
// must not decide a migration.
func (f *flow) notifyStep(step string) action {
	return func(ctx context.Context) (string, error) {
		if err := f.notify(ctx, step); err != nil {
			fmt.Fprintf(f.out, "      warning: %v\n", err)
			return "warning: " + err.Error(), nil
		}
		return "", nil
	}
}

// notify runs the notify hooks and posts the webhooks for a step of the run.
func (f *flow) notify(ctx context.Context, step string) error {
	r := f.run
	env := []string{"CUTOVER_STEP=" + step, "CUTOVER_RUN=" + r.ID, "CUTOVER_KIND=" + r.Kind}
	payload := map[string]any{"run": r.ID, "kind": r.Kind, "step": step, "time": time.Now().UTC()}
	if r.Expected > 0 {
		env = append(env, fmt.Sprintf("CUTOVER_EXPECTED_DOWNTIME=%.3f", r.Expected.Seconds()))
		payload["expected_downtime_seconds"] = r.Expected.Seconds()
	}
	if r.UnlockedAt != nil {
		env = append(env, fmt.Sprintf("CUTOVER_DOWNTIME=%.3f", r.Downtime.Seconds()))
		payload["downtime_seconds"] = r.Downtime.Seconds()
	}
	return errors.Join(f.hooks.Commands(ctx, "notify", f.p.Cutover.Hooks.Notify, env...), f.hooks.Webhooks(ctx, f.p.Cutover.Webhooks, payload))
}

// ChecklistStep is a step of the switch's or the rollback's checklist, as the fault
// matrix tests read it.
type ChecklistStep struct {
	Name string
	// Window: the step runs inside the write downtime (from the block to the unlock),
	// where the budget counts.
	Window bool
	Gate   bool
	Undo   bool // the step has an undo
}

// Checklist lists the steps of kind (switch or rollback) in order. It needs no
// database.
func Checklist(kind string) []ChecklistStep {
	f := &flow{kind: kind, sides: listing{}, p: &plan.Plan{}}
	var out []ChecklistStep
	in := false
	for _, st := range f.steps() {
		if st.Name == "block" {
			in = true
		}
		out = append(out, ChecklistStep{Name: st.Name, Window: in, Gate: st.Gate, Undo: st.Undo != nil})
		if st.Name == "unlock" {
			in = false
		}
	}
	return out
}

// listing stands in for an engine when the steps are only listed: the steps bind its
// actions, which are never called.
type listing struct{ Sides }

func (listing) Tracked() bool { return false }
