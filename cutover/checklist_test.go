package cutover

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/plan"
)

func names(steps []ChecklistStep, keep func(ChecklistStep) bool) []string {
	var out []string
	for _, s := range steps {
		if keep(s) {
			out = append(out, s.Name)
		}
	}
	return out
}

func all(ChecklistStep) bool { return true }

func TestChecklist(t *testing.T) {
	for _, c := range []struct {
		kind                      string
		order, gates, undo, inWin []string
	}{
		{kind: "switch",
			order: []string{"gates", "prevalidate", "publications", "notify", "block", "jobs", "sync", "validate", "stop", "sequences", "objects", "reverse", "switch", "qa", "unlock", "done"},
			gates: []string{"gates", "prevalidate"},
			undo:  []string{"gates", "publications", "notify", "block", "jobs", "stop", "reverse", "switch", "unlock"},
			inWin: []string{"block", "jobs", "sync", "validate", "stop", "sequences", "objects", "reverse", "switch", "qa", "unlock"}},
		{kind: "rollback",
			order: []string{"gates", "notify", "block", "jobs", "sync", "stop", "sequences", "switch", "unlock", "cleanup", "done"},
			gates: []string{"gates"},
			undo:  []string{"gates", "notify", "block", "jobs", "stop", "switch", "unlock"},
			inWin: []string{"block", "jobs", "sync", "stop", "sequences", "switch", "unlock"}},
	} {
		steps := Checklist(c.kind)
		for _, g := range []struct {
			what      string
			got, want []string
		}{
			{"order", names(steps, all), c.order},
			{"gates", names(steps, func(s ChecklistStep) bool { return s.Gate }), c.gates},
			{"undos", names(steps, func(s ChecklistStep) bool { return s.Undo }), c.undo},
			{"window", names(steps, func(s ChecklistStep) bool { return s.Window }), c.inWin},
		} {
			if !slices.Equal(g.got, g.want) {
				t.Errorf("%s %s: %v, want %v", c.kind, g.what, g.got, g.want)
			}
		}
	}
}

// TestChecklistTitles: the titles that depend on the plan and on whether the changes
// are tracked.
func TestChecklistTitles(t *testing.T) {
	p := &plan.Plan{}
	p.Cutover.Block = plan.BlockReadOnly
	steps := (&flow{kind: "switch", sides: trackedSides{}, p: p}).switchSteps()
	title := func(name string) string {
		i := slices.IndexFunc(steps, func(s Step) bool { return s.Name == name })
		return steps[i].Title
	}
	if got := title("block"); got != "block writes on the source: the database read-only, sessions ended" {
		t.Errorf("block: %q", got)
	}
	if got := title("validate"); got != "validate the rows changed since the validation before the block (incremental)" {
		t.Errorf("validate, changes tracked: %q", got)
	}
	steps = (&flow{kind: "switch", sides: listing{}, p: &plan.Plan{}}).switchSteps()
	if got := title("block"); got != "block writes on the source: login roles NOLOGIN, their sessions ended" {
		t.Errorf("block by roles: %q", got)
	}
	if got := title("prevalidate"); !strings.HasPrefix(got, "validate before the block: nothing (changes are not tracked") {
		t.Errorf("prevalidate, changes not tracked: %q", got)
	}
	for _, s := range steps {
		if s.Operator != (s.Name == "switch" || s.Name == "qa") {
			t.Errorf("step %s: operator %v", s.Name, s.Operator)
		}
	}
}

type trackedSides struct{ listing }

func (trackedSides) Tracked() bool { return true }

// recorder is an engine that records the actions called on it; the action named fail
// fails.
type recorder struct {
	calls []string
	fail  string
	run   *Run
}

func (r *recorder) act(name string, args ...any) (string, error) {
	for _, a := range args {
		name += " " + fmt.Sprint(a)
	}
	r.calls = append(r.calls, name)
	if name == r.fail {
		return "", errors.New("failed on purpose")
	}
	return "", nil
}

func (r *recorder) SaveRun(context.Context, *Run) error                    { return nil }
func (r *recorder) SaveStep(context.Context, string, *StepRecord) error    { return nil }
func (r *recorder) Begin(run *Run)                                         { r.run = run }
func (r *recorder) Interrupted(context.Context, string) (*Run, error)      { return nil, nil }
func (r *recorder) ExpectedDowntime(context.Context, string) time.Duration { return 0 }
func (r *recorder) Reconnect(context.Context) error                        { return nil }
func (r *recorder) CheckGates(_ context.Context, kind string) (string, error) {
	return r.act("gates", kind)
}
func (r *recorder) UndoGates(_ context.Context, kind string) (string, error) {
	return r.act("undo gates", kind)
}
func (r *recorder) Tracked() bool { return true }
func (r *recorder) ValidateBeforeBlock(context.Context) (string, error) {
	return r.act("prevalidate")
}
func (r *recorder) ValidateWindow(context.Context) (string, error) { return r.act("validate") }
func (r *recorder) Block(_ context.Context, sd Side) (string, error) {
	return r.act("block", sd)
}
func (r *recorder) Unblock(_ context.Context, sd Side) (string, error) {
	return r.act("unblock", sd)
}
func (r *recorder) SuspendJobs(_ context.Context, sd Side) (string, error) {
	return r.act("suspend jobs", sd)
}
func (r *recorder) ResumeJobs(_ context.Context, sd Side) (string, error) {
	return r.act("resume jobs", sd)
}
func (r *recorder) Sync(_ context.Context, from Side) (string, error) {
	return r.act("sync from", from)
}
func (r *recorder) StopReplication(_ context.Context, from Side) (string, error) {
	return r.act("stop from", from)
}
func (r *recorder) ResumeReplication(_ context.Context, from Side) (string, error) {
	return r.act("resume from", from)
}
func (r *recorder) CopySequences(_ context.Context, from Side) (string, error) {
	return r.act("sequences from", from)
}
func (r *recorder) SecondaryObjects(context.Context) (string, error) { return r.act("objects") }
func (r *recorder) PrepareReverse(context.Context) (string, error)   { return r.act("prepare reverse") }
func (r *recorder) UnprepareReverse(context.Context) (string, error) {
	return r.act("unprepare reverse")
}
func (r *recorder) StartReverse(context.Context) (string, error) { return r.act("start reverse") }
func (r *recorder) DropReverse(context.Context) (string, error)  { return r.act("drop reverse") }
func (r *recorder) EndReverse(context.Context) (string, error)   { return r.act("end reverse") }
func (r *recorder) QA(context.Context) (string, error)           { return r.act("qa") }
func (r *recorder) Unlock(_ context.Context, sd Side) (string, error) {
	return r.act("unlock", sd)
}
func (r *recorder) Relock(_ context.Context, sd Side) (string, error) {
	return r.act("relock", sd)
}

var _ Sides = (*recorder)(nil)

// TestFlowSides: each step acts on the side the checklist says, and a failure before
// the unlock undoes the steps begun, last first.
func TestFlowSides(t *testing.T) {
	for _, c := range []struct {
		kind, fail string
		want       []string
		err        bool
	}{
		{kind: "switch", want: []string{"gates switch", "prevalidate", "prepare reverse", "block source", "suspend jobs source", "sync from source", "validate",
			"stop from source", "sequences from source", "objects", "start reverse", "qa", "unlock target"}},
		{kind: "switch", fail: "sync from source", err: true, want: []string{"gates switch", "prevalidate", "prepare reverse", "block source", "suspend jobs source",
			"sync from source", "resume jobs source", "unblock source", "unprepare reverse", "undo gates switch"}},
		{kind: "rollback", want: []string{"gates rollback", "block target", "suspend jobs target", "sync from target", "stop from target", "sequences from target",
			"unlock source", "end reverse"}},
		{kind: "rollback", fail: "unlock source", err: true, want: []string{"gates rollback", "block target", "suspend jobs target", "sync from target",
			"stop from target", "sequences from target", "unlock source", "relock source", "resume from target", "resume jobs target", "unblock target",
			"undo gates rollback"}},
	} {
		rec := &recorder{fail: c.fail}
		run := Switch
		if c.kind == "rollback" {
			run = Rollback
		}
		var out strings.Builder
		res, err := run(context.Background(), rec, &plan.Plan{}, Options{RunbookDir: t.TempDir(), Out: &out})
		if (err != nil) != c.err {
			t.Errorf("%s failing at %q: error %v\n%s", c.kind, c.fail, err, out.String())
		}
		if !slices.Equal(rec.calls, c.want) {
			t.Errorf("%s failing at %q: called\n  %v\nwant\n  %v", c.kind, c.fail, rec.calls, c.want)
		}
		if res == nil || rec.run != res.Run || res.Run.Kind != c.kind || !strings.HasPrefix(res.Run.ID, c.kind[:2]+"-") {
			t.Fatalf("%s: the run the engine got is not the run's result", c.kind)
		}
		if _, err := os.Stat(res.Markdown); err != nil {
			t.Errorf("%s: the runbook: %v", c.kind, err)
		}
	}
}
