package finish

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/plan"
)

// steps records what Finish asked for, in order, with no server: the order that makes
// a finish killed at any step safe to run again.
type steps struct {
	st            control.State
	none          bool // no migration on the target
	sourceControl bool
	calls         []string
}

func (s *steps) State(context.Context) (control.State, bool, error) { return s.st, !s.none, nil }
func (s *steps) SetState(_ context.Context, st control.State) error {
	s.calls = append(s.calls, "phase "+st.Phase)
	return nil
}
func (s *steps) ReachSource(context.Context) error { return nil }
func (s *steps) StopReplication(context.Context, control.State) error {
	s.calls = append(s.calls, "stop")
	return nil
}
func (s *steps) DropReplication(_ context.Context, _ control.State, side Side) error {
	s.calls = append(s.calls, "drop replication "+string(side))
	return nil
}
func (s *steps) SayLeftClosed(context.Context) error { return nil }
func (s *steps) DropControl(_ context.Context, side Side) (bool, error) {
	if side == Source && !s.sourceControl {
		return false, nil
	}
	s.calls = append(s.calls, "drop control "+string(side))
	return true, nil
}

func TestFinishOrder(t *testing.T) {
	p := plan.Defaults()
	cases := []struct {
		name  string
		s     steps
		keep  bool
		calls string
		live  string
	}{
		{"replicating", steps{st: control.State{Phase: control.PhaseCDC, Slot: "s", Mode: control.ModeCDC}},
			false, "phase finishing, stop, drop replication target, drop replication source, drop control target", "the source is live"},
		{"switched: reverse replication dropped first, the source's control state before the target's", steps{st: control.State{Phase: control.PhaseSwitched, Slot: "s", Mode: control.ModeCDC}, sourceControl: true},
			false, "phase finishing, stop, drop replication target, drop replication source, drop control source, drop control target", "the target is live"},
		{"kept control", steps{st: control.State{Phase: control.PhaseCDC, Slot: "s", Mode: control.ModeCDC}},
			true, "phase finishing, stop, drop replication target, drop replication source, phase finished", "the source is live"},
		{"a one-shot copy has no stream and no live side to say", steps{st: control.State{Phase: control.PhaseLoaded, Mode: control.ModeCopy}},
			false, "drop control target", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			s := c.s
			if err := Finish(context.Background(), p, &s, &out, c.keep); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(s.calls, ", "); got != c.calls {
				t.Fatalf("steps\n  %s\nwant\n  %s", got, c.calls)
			}
			if c.live != "" && !strings.Contains(out.String(), c.live) || c.live == "" && strings.Contains(out.String(), "is live") {
				t.Fatalf("said:\n%s\nwant %q", out.String(), c.live)
			}
		})
	}
}

func TestFinishRefusesDuringASwitch(t *testing.T) {
	for _, phase := range []string{control.PhaseSwitching, control.PhaseRollingBack} {
		s := steps{st: control.State{Phase: phase, Slot: "s", Mode: control.ModeCDC}}
		var out bytes.Buffer
		err := Finish(context.Background(), plan.Defaults(), &s, &out, false)
		if err == nil || !strings.Contains(err.Error(), "in progress") || len(s.calls) > 0 {
			t.Fatalf("phase %s: %v, did %v", phase, err, s.calls)
		}
	}
}

func TestFinishWithNoMigration(t *testing.T) {
	s := steps{none: true}
	var out bytes.Buffer
	if err := Finish(context.Background(), plan.Defaults(), &s, &out, false); err != nil || !strings.Contains(out.String(), "nothing to finish") || len(s.calls) > 0 {
		t.Fatalf("%v, said %q, did %v", err, out.String(), s.calls)
	}
}
