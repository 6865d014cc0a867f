package cdc

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Following a change stream, for any pair of engines: Follow opens the stream at the
// position the target committed last, applies it until it stops, and opens it again
// after a fault that may heal (a server restarted, a connection cut), for as long as
// Retry allows. The position the target commits with each transaction's changes is
// where every new stream starts: nothing is skipped, nothing applied twice.

// A Source opens the change stream.
type Source interface {
	// Open starts the stream after from: the position of the last source
	// transaction the target committed.
	Open(ctx context.Context, from string) (Stream, error)
}

// A Stream sends the source's events, a transaction at a time, until ctx ends or it
// fails.
type Stream interface {
	Run(ctx context.Context, events chan<- Event) error
}

// A Target applies the events and commits, with each group of source transactions,
// the position of the last one.
type Target interface {
	// Connect opens the target's connection when it is not open.
	Connect(ctx context.Context) error
	// Apply applies events until the channel closes, ctx ends or a change fails.
	Apply(ctx context.Context, events <-chan Event) error
	// Committed is the position of the last source transaction the target committed.
	Committed() string
	// Carefully reports whether err asks for the stream to be read again, the failed
	// transaction applied change by change (so that the change that fails is handled
	// by cdc.on_error while the others are applied); it says so itself.
	Carefully(err error) bool
	// Disconnect drops the connection after a fault: the next Connect opens another.
	Disconnect(ctx context.Context)
}

// Retry says which faults may heal, and how long to wait for them.
type Retry struct {
	First, Max time.Duration // the first wait, and the longest
	// GiveUp is how long a fault may last (with no change applied since) before
	// Follow stops on it.
	GiveUp time.Duration
	// Retryable says whether an error is a fault that may heal.
	Retryable func(error) bool
	// Say tells the operator about each fault and retry.
	Say func(string)

	next  time.Duration
	since time.Time
	pos   string // the position committed at the last fault
}

// GiveUpFix ends the message of a fault Follow gave up on.
const GiveUpFix = "the state is saved: once the server is reachable again, run cutover start to resume"

// Follow follows the stream from src into tgt until ctx ends (a clean stop: nil), or
// until a change fails for good or a fault lasts too long. stopped is what to say
// when ctx ended, with the position the target committed; afterRun runs after each
// stream ends.
func Follow(ctx context.Context, src Source, tgt Target, r *Retry, stopped func(position string) string, afterRun func()) error {
	for {
		if err := tgt.Connect(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.healed(tgt.Committed())
			if !r.wait(ctx, "the target", err) {
				return fmt.Errorf("the target: %w\n%s", err, GiveUpFix)
			}
			continue
		}
		s, err := src.Open(ctx, tgt.Committed())
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.healed(tgt.Committed())
			if r.Retryable(err) && r.wait(ctx, "the source", err) {
				continue
			}
			return err
		}
		applyErr, streamErr := run(ctx, s, tgt)
		if ctx.Err() != nil {
			r.Say(stopped(tgt.Committed()))
			return nil
		}
		switch {
		case tgt.Carefully(applyErr):
		case applyErr != nil && !errors.Is(applyErr, context.Canceled):
			if err := r.fault(ctx, tgt, "the target", applyErr); err != nil {
				return err
			}
			tgt.Disconnect(ctx)
		case streamErr != nil && !errors.Is(streamErr, context.Canceled):
			if err := r.fault(ctx, tgt, "the source", streamErr); err != nil {
				return err
			}
		default:
			r.reset()
		}
		afterRun()
	}
}

// run runs one stream into the target: the stream in its own goroutine, the target
// applying what it sends. When one stops, so does the other.
func run(ctx context.Context, s Stream, tgt Target) (applyErr, streamErr error) {
	runCtx, stop := context.WithCancel(ctx)
	events := make(chan Event, 10000)
	done := make(chan error, 1)
	go func() {
		err := s.Run(runCtx, events)
		stop() // the target must not wait for events that will not come
		done <- err
	}()
	applyErr = tgt.Apply(runCtx, events)
	stop()
	return applyErr, <-done
}

// fault waits before the next try of a fault that may heal; the error to stop on
// when it may not, or has lasted too long.
func (r *Retry) fault(ctx context.Context, tgt Target, what string, err error) error {
	r.healed(tgt.Committed())
	retryable := r.Retryable(err)
	if retryable && r.wait(ctx, what, err) {
		return nil
	}
	if retryable {
		return fmt.Errorf("%w\n%s", err, GiveUpFix)
	}
	return err
}

func (r *Retry) reset() { r.next, r.since = 0, time.Time{} }

// healed starts the waits anew when a change was applied since the last fault (pos
// moved): the fault before healed, and the give-up time counts from this one.
func (r *Retry) healed(pos string) {
	if pos != r.pos {
		r.reset()
		r.pos = pos
	}
}

// wait says the fault and waits before the next try; false when it is time to give up.
func (r *Retry) wait(ctx context.Context, what string, err error) bool {
	if r.since.IsZero() {
		r.since, r.next = time.Now(), r.First
	}
	if time.Since(r.since) > r.GiveUp {
		r.Say(fmt.Sprintf("%s: %v; giving up after %v of retries", what, err, r.GiveUp))
		return false
	}
	r.Say(fmt.Sprintf("%s: %v; retrying in %v", what, err, r.next))
	t := time.NewTimer(r.next)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	}
	r.next = min(r.next*2, r.Max)
	return true
}
