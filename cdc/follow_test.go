package cdc

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A source of numbered transactions and a target that commits them: what Follow
// decides (where each stream starts, which faults it waits out, when it stops) with
// no server. Positions are the transactions' numbers.
type numbers struct {
	sent   int     // transactions in the source
	faults []error // the error each stream ends with, in turn (nil: it runs until ctx ends)
	every  int     // a stream that ends with a fault sends this many transactions first (0: all)
	opened []string
	// committed gets each position the target commits: a stream that ends with a
	// fault waits until the target committed what it sent, so that which streams open
	// where does not depend on how the goroutines are scheduled.
	committed chan int
}

type numberStream struct {
	from, to  int
	fault     error
	committed <-chan int
}

func (n *numbers) Open(_ context.Context, from string) (Stream, error) {
	n.opened = append(n.opened, from)
	var f error
	if len(n.faults) > 0 {
		f, n.faults = n.faults[0], n.faults[1:]
	}
	start := 0
	if from != "" {
		start = atoi(from)
	}
	to := n.sent
	if f != nil && n.every > 0 {
		to = min(to, start+n.every)
	}
	return &numberStream{from: start, to: to, fault: f, committed: n.committed}, nil
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func (s *numberStream) Run(ctx context.Context, events chan<- Event) error {
	for i := s.from + 1; i <= s.to; i++ {
		pos := itoa(i)
		for _, e := range []Event{&Begin{Position: pos}, &Commit{Position: pos}} {
			select {
			case events <- e:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if s.fault != nil {
		for last := s.from; last < s.to; {
			select {
			case last = <-s.committed:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return s.fault
	}
	<-ctx.Done()
	return ctx.Err()
}

func itoa(n int) string { return strconv.Itoa(n) }

type committer struct {
	committed string
	applied   []string
	stopAt    int // cancel once this transaction is committed
	cancel    context.CancelFunc
	progress  chan<- int
}

func (c *committer) Connect(context.Context) error { return nil }
func (c *committer) Apply(ctx context.Context, events <-chan Event) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-events:
			if !ok {
				return nil
			}
			if cm, ok := e.(*Commit); ok {
				c.committed = cm.Position
				c.applied = append(c.applied, cm.Position)
				c.progress <- atoi(cm.Position)
				if atoi(cm.Position) == c.stopAt {
					c.cancel()
				}
			}
		}
	}
}
func (c *committer) Committed() string          { return c.committed }
func (c *committer) Carefully(error) bool       { return false }
func (c *committer) Disconnect(context.Context) {}

var errCut = errors.New("connection cut")

func follow(t *testing.T, src *numbers, stopAt int, giveUp time.Duration) (*committer, []string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	src.committed = make(chan int, 100)
	tgt := &committer{stopAt: stopAt, cancel: cancel, progress: src.committed}
	var said []string
	r := &Retry{First: time.Millisecond, Max: time.Millisecond, GiveUp: giveUp,
		Retryable: func(err error) bool { return errors.Is(err, errCut) },
		Say:       func(s string) { said = append(said, s) }}
	err := Follow(ctx, src, tgt, r, func(pos string) string { return "stopped at " + pos }, func() {})
	return tgt, said, err
}

func TestFollowResumesFromWhatTheTargetCommitted(t *testing.T) {
	src := &numbers{sent: 5, faults: []error{errCut, errCut}, every: 2}
	tgt, said, err := follow(t, src, 5, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// Each stream after a fault starts where the target's last commit is: what it
	// sends from there is applied once.
	if strings.Join(src.opened, ",") != ",2,4" {
		t.Fatalf("streams opened at %q", src.opened)
	}
	if got := strings.Join(tgt.applied, ","); got != "1,2,3,4,5" {
		t.Fatalf("applied %q: each transaction once", got)
	}
	if len(said) != 3 || !strings.Contains(said[0], "the source: connection cut; retrying") || said[2] != "stopped at 5" {
		t.Fatalf("said %q", said)
	}
}

func TestFollowStopsOnAFaultThatCannotHeal(t *testing.T) {
	bad := errors.New("permission denied")
	_, _, err := follow(t, &numbers{sent: 1, faults: []error{bad}}, 0, time.Minute)
	if !errors.Is(err, bad) || strings.Contains(err.Error(), GiveUpFix) {
		t.Fatalf("got %v", err)
	}
}

func TestFollowGivesUpOnAFaultThatLasts(t *testing.T) {
	src := &numbers{faults: []error{errCut, errCut, errCut, errCut, errCut, errCut, errCut, errCut, errCut, errCut, errCut, errCut}}
	_, said, err := follow(t, src, 0, 5*time.Millisecond)
	if !errors.Is(err, errCut) || !strings.Contains(err.Error(), GiveUpFix) {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(said[len(said)-1], "giving up after 5ms of retries") {
		t.Fatalf("said %q", said)
	}
}
