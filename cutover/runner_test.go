package cutover

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/internal/failpoint"
)

// trace records what the steps did, in order.
type trace []string

func (tr *trace) step(name string, fail error) Step {
	return Step{Name: name, Title: name,
		Do: func(ctx context.Context) (string, error) {
			*tr = append(*tr, "do "+name)
			return "", fail
		},
		Undo: func(ctx context.Context) (string, error) {
			*tr = append(*tr, "undo "+name)
			return "", nil
		}}
}

func newRunner(steps ...Step) *Runner {
	return &Runner{Run: &Run{ID: "t", Kind: "switch"}, Steps: steps, Block: "block", Unlock: "unlock", Budget: time.Minute, Out: io.Discard}
}

func TestAFailureBeforeTheUnlockUndoesEveryStepBegun(t *testing.T) {
	var tr trace
	boom := errors.New("boom")
	r := newRunner(tr.step("gates", nil), tr.step("block", nil), tr.step("sync", boom), tr.step("unlock", nil))
	err := r.Execute(context.Background())
	var rb *RolledBack
	if !errors.As(err, &rb) || rb.Step != "sync" || !errors.Is(err, boom) {
		t.Fatalf("Execute: %v", err)
	}
	if got := strings.Join(tr, ", "); got != "do gates, do block, do sync, undo sync, undo block, undo gates" {
		t.Errorf("steps: %s", got)
	}
	if r.Run.Outcome != "rolled back" || r.Run.UnlockedAt == nil || r.Run.Downtime <= 0 {
		t.Errorf("run: outcome %q, unlocked %v, downtime %v", r.Run.Outcome, r.Run.UnlockedAt, r.Run.Downtime)
	}
}

// A gate that fails ends the run as not started: nothing was blocked, and only the
// gates' own undos (their bookkeeping) run.
func TestAFailedGateUndoesOnlyTheGates(t *testing.T) {
	var tr trace
	first, second := tr.step("gates", nil), tr.step("prevalidate", errors.New("differences"))
	first.Gate, second.Gate = true, true
	r := newRunner(first, second, tr.step("block", nil), tr.step("unlock", nil))
	if err := r.Execute(context.Background()); err == nil {
		t.Fatal("no error from a failed gate")
	}
	if got := strings.Join(tr, ", "); got != "do gates, do prevalidate, undo prevalidate, undo gates" || r.Run.Outcome != "not started" {
		t.Errorf("steps %q, outcome %q", got, r.Run.Outcome)
	}
}

// CUTOVER_FAILPOINT fails a step once its action ran (the step itself is undone), fails
// an undo, or holds a step until the downtime budget runs out.
func TestFailpoints(t *testing.T) {
	for _, c := range []struct {
		failpoints, want, outcome string
	}{
		{"switch:sync:fail", "do block, do sync, undo sync, undo block", "rolled back"},
		{"switch:sync:fail,switch:block:undo", "do block, do sync, undo sync, undo block", "rollback incomplete"},
		{"switch:sync:budget", "do block, do sync, undo sync, undo block", "rolled back"},
		{"rollback:sync:fail", "do block, do sync, do unlock", "done"}, // another kind's
		{"switch:unlock:fail", "do block, do sync, do unlock, undo unlock, undo sync, undo block", "rolled back"},
	} {
		t.Run(c.failpoints, func(t *testing.T) {
			t.Setenv(failpoint.Env, c.failpoints)
			var tr trace
			r := newRunner(tr.step("block", nil), tr.step("sync", nil), tr.step("unlock", nil))
			r.Budget = 50 * time.Millisecond
			var out strings.Builder
			r.Out = &out
			err := r.Execute(context.Background())
			if got := strings.Join(tr, ", "); got != c.want || r.Run.Outcome != c.outcome {
				t.Errorf("steps %q, outcome %q (%v); want %q, %q", got, r.Run.Outcome, err, c.want, c.outcome)
			}
			if strings.HasSuffix(c.failpoints, "budget") && !errors.Is(err, ErrBudget) {
				t.Errorf("error %v, want the budget's", err)
			}
			if !strings.Contains(out.String(), "test failpoints set (CUTOVER_FAILPOINT): "+c.failpoints) {
				t.Errorf("the run does not say failpoints are set:\n%s", out.String())
			}
		})
	}
}

func TestAFailureAfterTheUnlockIsNotUndone(t *testing.T) {
	var tr trace
	r := newRunner(tr.step("block", nil), tr.step("unlock", nil), tr.step("done", errors.New("notify failed")))
	var st *Stopped
	if err := r.Execute(context.Background()); !errors.As(err, &st) {
		t.Fatalf("Execute: %v", err)
	}
	if got := strings.Join(tr, ", "); got != "do block, do unlock, do done" || r.Run.Outcome != "stopped" {
		t.Errorf("steps %q, outcome %q", got, r.Run.Outcome)
	}
}

func TestTheBudgetEndsAStepAndRollsBack(t *testing.T) {
	var tr trace
	slow := Step{Name: "switch", Title: "switch", Operator: true, Do: func(ctx context.Context) (string, error) {
		<-ctx.Done() // a hook that hangs until the budget ends it
		return "", ctx.Err()
	}}
	r := newRunner(tr.step("block", nil), slow, tr.step("unlock", nil))
	r.Budget = 50 * time.Millisecond
	err := r.Execute(context.Background())
	if !errors.Is(err, ErrBudget) {
		t.Fatalf("Execute: %v, want the budget", err)
	}
	if got := strings.Join(tr, ", "); got != "do block, undo block" {
		t.Errorf("steps: %s", got)
	}
}

// The hook before the undos runs once, before the first undo (it reopens what a
// cancelled step closed); its failure is one of the undo errors, and the undos run.
func TestBeforeUndoRunsFirst(t *testing.T) {
	var tr trace
	r := newRunner(tr.step("block", nil), tr.step("sync", errors.New("boom")), tr.step("unlock", nil))
	r.BeforeUndo = func(context.Context) error {
		tr = append(tr, "reconnect")
		return errors.New("no server")
	}
	err := r.Execute(context.Background())
	var rb *RolledBack
	if !errors.As(err, &rb) || len(rb.UndoErrors) != 1 || !strings.Contains(rb.UndoErrors[0].Error(), "no server") {
		t.Fatalf("Execute: %v", err)
	}
	if got := strings.Join(tr, ", "); got != "do block, do sync, reconnect, undo sync, undo block" {
		t.Errorf("steps: %s", got)
	}
	if r.Run.Outcome != "rollback incomplete" {
		t.Errorf("outcome %q", r.Run.Outcome)
	}
}

func TestADryRunGoesThroughEveryStep(t *testing.T) {
	var tr trace
	r := newRunner(tr.step("gates", errors.New("not validated")), tr.step("block", nil), tr.step("unlock", nil))
	r.Run.DryRun = true
	if err := r.Execute(context.Background()); err == nil || !strings.Contains(err.Error(), "not validated") {
		t.Fatalf("Execute: %v", err)
	}
	if got := strings.Join(tr, ", "); got != "do gates, do block, do unlock" {
		t.Errorf("steps: %s", got)
	}
}

func TestRecoverUndoesBeforeTheUnlockAndFinishesAfter(t *testing.T) {
	var tr trace
	steps := []Step{tr.step("gates", nil), tr.step("block", nil), tr.step("sync", nil), tr.step("unlock", nil), tr.step("done", nil)}
	// Crashed during sync.
	r := newRunner(steps...)
	r.Run.Steps = []*StepRecord{{Name: "gates", Outcome: Done}, {Name: "block", Outcome: Done}, {Name: "sync", Outcome: Running}}
	if err := r.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tr, ", "); got != "undo sync, undo block, undo gates" || r.Run.Outcome != "rolled back" {
		t.Errorf("steps %q, outcome %q", got, r.Run.Outcome)
	}
	// Crashed after the unlock.
	tr = nil
	r = newRunner(steps...)
	r.Run.Steps = []*StepRecord{{Name: "gates", Outcome: Done}, {Name: "block", Outcome: Done}, {Name: "sync", Outcome: Done}, {Name: "unlock", Outcome: Done}}
	if err := r.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tr, ", "); got != "do done" || r.Run.Outcome != "done" {
		t.Errorf("steps %q, outcome %q", got, r.Run.Outcome)
	}
}

// The runbook kept in the control schema reads back with its downtime figures.
func TestARunbookReadsBackWithItsDowntime(t *testing.T) {
	blocked := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	unlocked := blocked.Add(1500 * time.Millisecond)
	r := &Run{ID: "sw-1", Kind: "switch", Started: blocked.Add(-time.Second), Outcome: "done", BlockedAt: &blocked, UnlockedAt: &unlocked,
		Expected: 2 * time.Second, Steps: []*StepRecord{{Seq: 1, Name: "switch", Started: blocked, Ended: &unlocked, Operator: true, Outcome: Done}}}
	r.measure()
	doc, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Run
	if err := json.Unmarshal(doc, &back); err != nil {
		t.Fatal(err)
	}
	if back.Downtime != 1500*time.Millisecond || back.ToolDowntime != 0 || back.Expected != 2*time.Second || back.ID != "sw-1" || len(back.Steps) != 1 {
		t.Fatalf("read back %+v from %s", back, doc)
	}
}
