package validate

import (
	"context"
	"errors"
	"time"

	"github.com/cutover-dev/cutover/plan"
)

// ErrNotStreaming: a validation that asked for RunningOnly found no cutover start
// streaming the changes.
var ErrNotStreaming = errors.New("no cutover start streams the changes")

// Continuously validates in the background of a running cutover start (validation.
// continuous): a full pass of every table, then, every validation.interval, a pass over
// the rows changed since, each through run with RunningOnly. disp is told each pass's
// outcome when it differs from the last. It returns when ctx ends.
func Continuously(ctx context.Context, p *plan.Plan, disp interface{ Step(string) }, run func(context.Context, Options) (*Report, error)) {
	wait := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	last := ""
	for {
		rep, err := run(ctx, Options{Incremental: true, RunningOnly: true, BusyPercent: p.Validation.BusyPercent})
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, ErrNotStreaming):
			if !wait(time.Second) { // the stream is starting
				return
			}
			continue
		case err != nil:
			if msg := "background validation: " + err.Error(); msg != last {
				disp.Step(msg)
				last = msg
			}
		default:
			if msg := Summary(rep); msg != last {
				disp.Step(msg)
				last = msg
			}
		}
		if !wait(p.Validation.Interval.D()) {
			return
		}
	}
}
