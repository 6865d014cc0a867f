package load

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/plan"
)

// steps records which of a Job's steps FullLoad asked for, in order: the checklist's
// decisions (what a resumed load skips, what a copy never does) without a database.
type steps struct {
	state          control.State
	present, total int
	failed         bool // the assessment found an error
	calls          []string
}

func (s *steps) call(name string) { s.calls = append(s.calls, name) }

func (s *steps) Begin(context.Context) (control.State, error) { s.call("begin"); return s.state, nil }
func (s *steps) ReadSourceAs(context.Context, bool) error     { return nil }
func (s *steps) Assessment() *check.Report {
	s.call("assess")
	r := &check.Report{}
	if s.failed {
		r.Add(check.Finding{Severity: check.Error, Check: "x", Problem: "p", Fix: "f"})
	}
	r.Finish()
	return r
}
func (s *steps) SkipAssessment()                   {}
func (s *steps) OpenControl(context.Context) error { return nil }
func (s *steps) SetState(_ context.Context, st control.State) error {
	s.call("phase " + st.Phase)
	return nil
}
func (s *steps) Close(context.Context)                 { s.call("close") }
func (s *steps) TableList(context.Context, bool) error { return nil }
func (s *steps) Snapshot(_ context.Context, st *control.State, copyOnly bool) error {
	s.call("snapshot")
	if st.Phase == control.PhaseNew {
		st.Phase = control.PhaseSchema
	}
	return nil
}
func (s *steps) ReadSchema(context.Context, bool) error { return nil }
func (s *steps) TablesPresent(context.Context) (int, int, error) {
	return s.present, s.total, nil
}
func (s *steps) CreateTables(context.Context) error       { s.call("create"); return nil }
func (s *steps) BuildObjects(context.Context) error       { s.call("build"); return nil }
func (s *steps) GiveAccess(context.Context) error         { s.call("access"); return nil }
func (s *steps) OpenWorkers(context.Context)              { s.call("workers") }
func (s *steps) CopyTables(context.Context) error         { s.call("copy"); return nil }
func (s *steps) CloseTarget(context.Context) error        { s.call("close target"); return nil }
func (s *steps) CopySequences(context.Context) error      { s.call("sequences"); return nil }
func (s *steps) ValidateAtSnapshot(context.Context) error { s.call("validate"); return nil }

func TestFullLoadChecklist(t *testing.T) {
	replicating := plan.Defaults()
	copying := plan.Defaults()
	copying.CDC.Enabled = false
	copying.Validation.AfterLoad = true
	cases := []struct {
		name  string
		p     *plan.Plan
		steps steps
		want  string
	}{
		{"a load that begins", replicating, steps{state: control.State{Phase: control.PhaseNew}, total: 3},
			"begin, assess, snapshot, workers, create, close target, phase loading, copy, phase postdata, build, access, close target, phase loaded, close"},
		{"a one-shot copy never closes the target, sets its sequences and validates", copying, steps{state: control.State{Phase: control.PhaseNew}, total: 3},
			"begin, assess, snapshot, workers, create, phase loading, copy, phase postdata, build, access, sequences, phase loaded, validate, close"},
		{"resumed with the tables made: not made again, not assessed", replicating,
			steps{state: control.State{Phase: control.PhaseSchema, Mode: control.ModeCDC}, present: 3, total: 3},
			"begin, snapshot, workers, phase loading, copy, phase postdata, build, access, close target, phase loaded, close"},
		{"resumed in the copy", replicating, steps{state: control.State{Phase: control.PhaseLoading, Mode: control.ModeCDC}, total: 3},
			"begin, snapshot, workers, copy, phase postdata, build, access, close target, phase loaded, close"},
		{"resumed after the copy: no workers", replicating, steps{state: control.State{Phase: control.PhasePostData, Mode: control.ModeCDC}, total: 3},
			"begin, snapshot, build, access, close target, phase loaded, close"},
		{"complete already", replicating, steps{state: control.State{Phase: control.PhaseCDC, Mode: control.ModeCDC}},
			"begin, close"},
		{"the assessment found an error: nothing made", replicating, steps{state: control.State{Phase: control.PhaseNew}, failed: true},
			"begin, assess, close"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			s := c.steps
			_, err := FullLoad(context.Background(), c.p, &s, &out, &Lines{W: &out}, Words{Complete: func(control.State) string { return "complete\n" }})
			if c.steps.failed != errors.Is(err, check.ErrNotReady) || (!c.steps.failed && err != nil) {
				t.Fatalf("error %v", err)
			}
			if got := strings.Join(s.calls, ", "); got != c.want {
				t.Fatalf("steps\n  %s\nwant\n  %s", got, c.want)
			}
		})
	}
}

func TestFullLoadRefusesTablesItDidNotMake(t *testing.T) {
	for _, s := range []steps{
		{state: control.State{Phase: control.PhaseNew}, present: 1, total: 3},                           // some there before cutover
		{state: control.State{Phase: control.PhaseSchema, Mode: control.ModeCDC}, present: 2, total: 3}, // part of a pre-data cannot be
	} {
		var out bytes.Buffer
		_, err := FullLoad(context.Background(), plan.Defaults(), &s, &out, &Lines{W: &out}, Words{})
		if err == nil || !strings.Contains(err.Error(), "but cutover did not create them") {
			t.Fatalf("phase %s, %d of %d tables present: %v", s.state.Phase, s.present, s.total, err)
		}
		if slices.Contains(s.calls, "create") || slices.Contains(s.calls, "copy") {
			t.Fatalf("made or copied tables: %v", s.calls)
		}
	}
}

func TestFullLoadOfAFinishedMigration(t *testing.T) {
	var out bytes.Buffer
	s := steps{state: control.State{Phase: control.PhaseFinished, Mode: control.ModeCDC}}
	_, err := FullLoad(context.Background(), plan.Defaults(), &s, &out, &Lines{W: &out}, Words{})
	if err == nil || !strings.Contains(err.Error(), "ended by cutover finish") {
		t.Fatalf("got %v", err)
	}
}

// Pending keeps the loaded tables, copies the others, and empties first the ones a
// stopped run was copying or failed on.
func TestPending(t *testing.T) {
	a, b, c, d, e := &Table{Schema: "s", Name: "a"}, &Table{Schema: "s", Name: "b"}, &Table{Schema: "s", Name: "c"}, &Table{Schema: "s", Name: "d"}, &Table{Schema: "s", Name: "e"}
	stats := []control.TableStat{{Schema: "s", Table: "a", State: control.TableLoaded}, {Schema: "s", Table: "b", State: control.TableLoading},
		{Schema: "s", Table: "c", State: control.TableError}, {Schema: "s", Table: "d", State: control.TableQueued}}
	todo, partly := Pending([]*Table{a, b, c, d, e}, stats)
	if !slices.Equal(todo, []*Table{b, c, d, e}) || !slices.Equal(partly, []*Table{b, c}) {
		t.Errorf("todo %v, partly %v", todo, partly)
	}
}
