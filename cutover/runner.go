// Package cutover runs a cut over (or a rollback) as an ordered list of steps, each
// with an action and an undo, inside a write-downtime budget, and records every step
// in a runbook. It declares the checklists of cutover switch and cutover rollback and
// runs their hooks; it knows nothing of database engines: each engine implements the
// actions the steps call (Sides).
//
// Before the step that unlocks the users, a failed step, a run-out budget or an
// interrupt undoes every step begun, last first. After it, nothing is undone by
// itself: the runner stops and says what holds.
package cutover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Step is one step of a run.
type Step struct {
	Name  string // short and stable, recorded in the runbook: gates, block, sync, ...
	Title string // what it does, printed as it runs
	// Operator marks a step whose time belongs to the operator (their hooks, QA, an
	// approval): it counts in the downtime, not in the tool's own downtime.
	Operator bool
	// Gate marks a step that only checks: when it fails the run ends as not started; the
	// undos of the gates begun (their bookkeeping, such as the phase) run.
	Gate bool
	// Do acts, and says what it did. With a dry run it prints what it would do instead.
	Do func(ctx context.Context) (detail string, err error)
	// Undo reverts the step from what the engine recorded (not from memory: it may run
	// in another process, after a crash). Nil when there is nothing to undo.
	Undo func(ctx context.Context) (detail string, err error)
}

// Store keeps the runbook where the operator cannot lose it (the control schema).
type Store interface {
	SaveRun(ctx context.Context, r *Run) error
	SaveStep(ctx context.Context, runID string, s *StepRecord) error
}

// Runner runs steps.
type Runner struct {
	Run   *Run
	Steps []Step
	// Block and Unlock name the steps that open and close the write downtime: the
	// budget counts from the start of Block, and after Unlock succeeds the run is
	// never undone by itself.
	Block, Unlock string
	Budget        time.Duration
	Store         Store
	Out           io.Writer
	// UndoTimeout bounds each undo (they run even when ctx was interrupted).
	UndoTimeout time.Duration
	// Now is the clock (tests may set it); time.Now when nil.
	Now func() time.Time
	// BeforeUndo, when set, runs before the undos: a step interrupted by the budget
	// may have left a connection closed, which the undos need open again.
	BeforeUndo func(ctx context.Context) error
}

// OutcomeIncomplete is a run that failed before the unlock and whose undos did not all
// succeed: the next run of its kind runs them again.
const OutcomeIncomplete = "rollback incomplete"

// ErrBudget is the downtime budget running out before the users were unlocked.
var ErrBudget = errors.New("the downtime budget ran out")

// RolledBack is a run that failed before the unlock and was undone.
type RolledBack struct {
	Step  string // the step that failed
	Cause error
	// UndoErrors are the undos that failed: what the operator must fix by hand.
	UndoErrors []error
}

func (e *RolledBack) Error() string {
	msg := fmt.Sprintf("step %s failed: %v; rolled back", e.Step, e.Cause)
	if len(e.UndoErrors) > 0 {
		msg += fmt.Sprintf(", but %d undo(s) failed: %v", len(e.UndoErrors), errors.Join(e.UndoErrors...))
	}
	return msg
}
func (e *RolledBack) Unwrap() error { return e.Cause }

// Stopped is a run that failed after the unlock: nothing was undone.
type Stopped struct {
	Step  string
	Cause error
}

func (e *Stopped) Error() string {
	return fmt.Sprintf("step %s failed after the users were unlocked: %v; nothing was rolled back: the new side is live and its users log in there; "+
		"fix the cause and finish the step by hand (the runbook says what it does), or go back with cutover rollback", e.Step, e.Cause)
}
func (e *Stopped) Unwrap() error { return e.Cause }

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) index(name string) int {
	for i, s := range r.Steps {
		if s.Name == name {
			return i
		}
	}
	return -1
}

// Execute runs the steps from the first.
func (r *Runner) Execute(ctx context.Context) error {
	r.sayFailpoints()
	return r.from(ctx, 0)
}

// from runs the steps from index first on.
func (r *Runner) from(ctx context.Context, first int) error {
	block, unlock := r.index(r.Block), r.index(r.Unlock)
	var dryErrs []error
	for i := first; i < len(r.Steps); i++ {
		s := r.Steps[i]
		if i == block && r.Run.BlockedAt == nil {
			t := r.now()
			r.Run.BlockedAt = &t
		}
		inWindow := r.Run.BlockedAt != nil && r.Run.UnlockedAt == nil && !r.Run.DryRun
		stepCtx, cancel := ctx, context.CancelFunc(func() {})
		if inWindow && r.Budget > 0 {
			stepCtx, cancel = context.WithDeadlineCause(ctx, r.Run.BlockedAt.Add(r.Budget), ErrBudget)
		}
		rec, err := r.do(stepCtx, i, s)
		cancel()
		if err == nil && inWindow && r.Budget > 0 && r.now().Sub(*r.Run.BlockedAt) > r.Budget {
			err = ErrBudget
		}
		if err != nil && errors.Is(context.Cause(stepCtx), ErrBudget) {
			err = fmt.Errorf("%w (%v) during step %s: %v", ErrBudget, r.Budget, s.Name, err)
		}
		if err != nil {
			r.end(ctx, rec, Failed, err.Error())
			if r.Run.DryRun {
				// A rehearsal on paper shows every step, even after one that would fail.
				dryErrs = append(dryErrs, fmt.Errorf("step %s: %w", s.Name, err))
				continue
			}
			if s.Gate {
				reason := err.Error()
				if undoErrs := r.undoSteps(ctx, i); len(undoErrs) > 0 {
					reason += "; " + errors.Join(undoErrs...).Error()
				}
				r.finish(ctx, "not started", reason)
				return err
			}
			if unlock >= 0 && i > unlock || (i == unlock && r.Run.UnlockedAt != nil) {
				r.finish(ctx, "stopped", err.Error())
				return &Stopped{Step: s.Name, Cause: err}
			}
			reason := fmt.Sprintf("step %s failed: %v", s.Name, err)
			undoErrs := r.Undo(ctx, i, reason)
			return &RolledBack{Step: s.Name, Cause: err, UndoErrors: undoErrs}
		}
		if i == unlock && !r.Run.DryRun {
			t := r.now()
			r.Run.UnlockedAt = &t
			r.Run.measure()
		}
	}
	if r.Run.DryRun {
		r.finish(ctx, "dry run", "")
		return errors.Join(dryErrs...)
	}
	r.finish(ctx, "done", "")
	return nil
}

// do runs one step and records it; the record is ended by the caller on failure.
func (r *Runner) do(ctx context.Context, i int, s Step) (*StepRecord, error) {
	rec := &StepRecord{Seq: len(r.Run.Steps) + 1, Name: s.Name, Title: s.Title, Started: r.now(), Outcome: Running, Operator: s.Operator}
	r.Run.Steps = append(r.Run.Steps, rec)
	r.save(ctx, rec)
	fmt.Fprintf(r.Out, "[%d/%d] %s ...\n", i+1, len(r.Steps), s.Title)
	detail, err := s.Do(ctx)
	if err == nil {
		err = r.strike(ctx, s.Name, false)
	}
	if !r.Run.DryRun {
		rec.Detail = detail
	}
	if err == nil {
		outcome := Done
		if r.Run.DryRun {
			outcome = Planned
		}
		r.end(ctx, rec, outcome, "")
	}
	return rec, err
}

func (r *Runner) end(ctx context.Context, rec *StepRecord, o Outcome, errText string) {
	t := r.now()
	rec.Ended, rec.Outcome = &t, o
	if errText != "" {
		rec.Error = errText
	}
	r.save(ctx, rec)
	took := t.Sub(rec.Started).Round(time.Millisecond)
	switch {
	case o == Failed || o == UndoFailed:
		fmt.Fprintf(r.Out, "      %s after %v: %s\n", o, took, errText)
	case rec.Detail != "" && o != Planned: // a dry run's detail says what it would have done
		fmt.Fprintf(r.Out, "      %s in %v: %s\n", o, took, rec.Detail)
	default:
		fmt.Fprintf(r.Out, "      %s in %v\n", o, took)
	}
}

// save records a step; a runbook that cannot be written is said, not fatal: the
// database is what the run must not leave half done.
func (r *Runner) save(ctx context.Context, rec *StepRecord) {
	if r.Store == nil || r.Run.DryRun {
		return
	}
	if err := r.Store.SaveStep(context.WithoutCancel(ctx), r.Run.ID, rec); err != nil {
		fmt.Fprintf(r.Out, "      warning: could not record the step in the runbook: %v\n", err)
	}
}

func (r *Runner) finish(ctx context.Context, outcome, reason string) {
	t := r.now()
	r.Run.Ended, r.Run.Outcome, r.Run.Reason = &t, outcome, reason
	if r.Store == nil || r.Run.DryRun {
		return
	}
	if err := r.Store.SaveRun(context.WithoutCancel(ctx), r.Run); err != nil {
		fmt.Fprintf(r.Out, "warning: could not record the run in the runbook: %v\n", err)
	}
}

// Undo reverts the steps up to and including index last, last first, and records
// the run as rolled back for reason. Every undo runs even when one fails; the
// failures are returned.
func (r *Runner) Undo(ctx context.Context, last int, reason string) []error {
	ctx = context.WithoutCancel(ctx)
	fmt.Fprintf(r.Out, "rolling back: %s\n", reason)
	errs := r.undoSteps(ctx, last)
	if r.Run.BlockedAt != nil && r.Run.UnlockedAt == nil {
		// The downtime ends when the undo has given the source back.
		t := r.now()
		r.Run.UnlockedAt = &t
		r.Run.measure()
	}
	outcome := "rolled back"
	if len(errs) > 0 {
		outcome = OutcomeIncomplete
		reason += "; " + errors.Join(errs...).Error()
	}
	r.finish(ctx, outcome, reason)
	return errs
}

// undoSteps runs the undos of the steps up to and including index last, last first,
// each recorded. Every undo runs even when one fails; the failures are returned.
func (r *Runner) undoSteps(ctx context.Context, last int) []error {
	ctx = context.WithoutCancel(ctx)
	var errs []error
	if r.BeforeUndo != nil {
		if err := r.BeforeUndo(ctx); err != nil {
			errs = append(errs, fmt.Errorf("before the undos: %w", err))
		}
	}
	for i := last; i >= 0; i-- {
		s := r.Steps[i]
		if s.Undo == nil {
			continue
		}
		rec := &StepRecord{Seq: len(r.Run.Steps) + 1, Name: "undo " + s.Name, Title: "undo: " + s.Title, Started: r.now(), Outcome: Running}
		r.Run.Steps = append(r.Run.Steps, rec)
		r.save(ctx, rec)
		fmt.Fprintf(r.Out, "[undo] %s ...\n", s.Title)
		uctx, cancel := ctx, context.CancelFunc(func() {})
		if r.UndoTimeout > 0 {
			uctx, cancel = context.WithTimeout(ctx, r.UndoTimeout)
		}
		detail, err := s.Undo(uctx)
		if err == nil {
			err = r.strike(uctx, s.Name, true)
		}
		cancel()
		rec.Detail = detail
		if err != nil {
			errs = append(errs, fmt.Errorf("undo %s: %w", s.Name, err))
			r.end(ctx, rec, UndoFailed, err.Error())
			continue
		}
		r.end(ctx, rec, Undone, "")
	}
	return errs
}

// Recover picks up a run a crash interrupted (its records in r.Run.Steps): before the
// unlock every step it began is undone; after it, the remaining steps run.
func (r *Runner) Recover(ctx context.Context) error {
	r.sayFailpoints()
	r.Run.measure() // the durations are not in the stored runbook
	last := -1
	for _, rec := range r.Run.Steps {
		if i := r.index(rec.Name); i > last && rec.Outcome != Planned {
			last = i
		}
	}
	unlock := r.index(r.Unlock)
	for _, rec := range r.Run.Steps {
		if rec.Name == r.Unlock && rec.Outcome == Done {
			fmt.Fprintf(r.Out, "the %s %s was interrupted after the users were unlocked: finishing its last steps\n", r.Run.Kind, r.Run.ID)
			return r.from(ctx, unlock+1)
		}
	}
	if last < 0 {
		r.finish(ctx, "rolled back", "interrupted before any step")
		return nil
	}
	reason := fmt.Sprintf("the %s was interrupted (the cutover process stopped) during step %s", r.Run.Kind, r.Steps[last].Name)
	if r.Run.Outcome == OutcomeIncomplete {
		reason = fmt.Sprintf("the %s failed at step %s and an undo failed, so its undos run again", r.Run.Kind, r.Steps[last].Name)
	}
	if errs := r.Undo(ctx, last, reason); len(errs) > 0 {
		return &RolledBack{Step: r.Steps[last].Name, Cause: errors.New("interrupted"), UndoErrors: errs}
	}
	return nil
}
