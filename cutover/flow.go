package cutover

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/plan"
)

// undoTimeout bounds each undo of a rollback.
const undoTimeout = 2 * time.Minute

// Switch runs the cut over on sides: the checklist as gated steps, with the downtime
// budget, rolled back by itself when a step before the unlock fails. A switch a crash
// interrupted is undone (or, past the unlock, finished) first.
func Switch(ctx context.Context, sides Sides, p *plan.Plan, opts Options) (*Result, error) {
	return execute(ctx, newFlow("switch", sides, p, opts))
}

// Rollback returns a switched migration to the source, as gated steps like the switch;
// before the unlock a failure undoes it (the target stays live).
func Rollback(ctx context.Context, sides Sides, p *plan.Plan, opts Options) (*Result, error) {
	return execute(ctx, newFlow("rollback", sides, p, opts))
}

// flow is a switch or a rollback: what its steps share.
type flow struct {
	kind  string // switch or rollback
	sides Sides
	p     *plan.Plan
	opts  Options
	out   io.Writer
	hooks Hooks
	run   *Run
}

func newFlow(kind string, sides Sides, p *plan.Plan, opts Options) *flow {
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	return &flow{kind: kind, sides: sides, p: p, opts: opts, out: out, hooks: PlanHooks(p, out, opts.DryRun), run: NewRun(kind, opts.DryRun)}
}

// NewRun is a run of kind that begins now.
func NewRun(kind string, dry bool) *Run {
	id := make([]byte, 2)
	_, _ = rand.Read(id)
	return &Run{ID: kind[:2] + "-" + time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(id), Kind: kind, DryRun: dry,
		Started: time.Now(), Outcome: "running"}
}

func (f *flow) steps() []Step {
	steps := f.switchSteps()
	if f.kind == "rollback" {
		steps = f.rollbackSteps()
	}
	if t, ok := f.sides.(Titler); ok {
		for i := range steps {
			if title := t.StepTitle(f.kind, steps[i].Name); title != "" {
				steps[i].Title = title
			}
		}
	}
	return steps
}

// execute runs the checklist: a run of its kind a crash interrupted is picked up first.
func execute(ctx context.Context, f *flow) (*Result, error) {
	f.sides.Begin(f.run)
	if !f.opts.DryRun {
		if prev, err := f.sides.Interrupted(ctx, f.kind); err != nil {
			return nil, err
		} else if prev != nil {
			return f.recoverRun(ctx, prev)
		}
	}
	f.run.Expected = f.sides.ExpectedDowntime(ctx, f.kind)
	if f.run.Expected > 0 {
		fmt.Fprintf(f.out, "%s %s: the last %s measured a write downtime of %v\n", f.kind, f.run.ID, f.kind, f.run.Expected.Round(time.Millisecond))
	} else {
		fmt.Fprintf(f.out, "%s %s\n", f.kind, f.run.ID)
	}
	err := f.runner().Execute(ctx)
	return f.result(err)
}

func (f *flow) runner() *Runner {
	return &Runner{Run: f.run, Steps: f.steps(), Block: "block", Unlock: "unlock", Budget: f.p.Cutover.MaxDowntime.D(),
		Store: f.sides, Out: f.out, UndoTimeout: undoTimeout, BeforeUndo: f.sides.Reconnect}
}

// recoverRun undoes (or finishes) a run a crash interrupted.
func (f *flow) recoverRun(ctx context.Context, prev *Run) (*Result, error) {
	if prev.Outcome == OutcomeIncomplete {
		fmt.Fprintf(f.out, "the %s %s was not rolled back completely (%s): picking it up from its runbook, its undos run again\n", prev.Kind, prev.ID, prev.Reason)
	} else {
		fmt.Fprintf(f.out, "the %s %s did not finish (the cutover process stopped during it): picking it up from its runbook\n", prev.Kind, prev.ID)
	}
	f.run = prev
	f.sides.Begin(prev)
	err := f.runner().Recover(ctx)
	res, rerr := f.result(err)
	if rerr == nil && f.run.Outcome == "rolled back" {
		rerr = fmt.Errorf("the interrupted %s %s was rolled back: %s; nothing else was done: run cutover %s again", prev.Kind, prev.ID, f.run.Reason, prev.Kind)
	}
	return res, rerr
}

// result writes the runbook files and turns the run's outcome into the error.
func (f *flow) result(err error) (*Result, error) {
	res := &Result{Run: f.run}
	if !f.opts.DryRun {
		md, js, werr := f.writeRunbook()
		if werr != nil {
			fmt.Fprintf(f.out, "warning: %v\n", werr)
		} else {
			res.Markdown, res.JSON = md, js
			fmt.Fprintf(f.out, "runbook: %s and %s\n", md, js)
		}
	}
	if f.run.UnlockedAt != nil {
		fmt.Fprintf(f.out, "write downtime: %v (the tool's own: %v)\n", f.run.Downtime.Round(time.Millisecond), f.run.ToolDowntime.Round(time.Millisecond))
	}
	return res, err
}

// writeRunbook writes the run's runbook as Markdown and JSON files.
func (f *flow) writeRunbook() (md, js string, err error) {
	dir := f.opts.RunbookDir
	if dir == "" {
		dir = "."
	}
	base := filepath.Join(dir, "cutover-runbook-"+f.run.ID)
	var b strings.Builder
	if err := f.run.WriteMarkdown(&b); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(base+".md", []byte(b.String()), 0o644); err != nil {
		return "", "", fmt.Errorf("write the runbook: %w", err)
	}
	doc, err := json.MarshalIndent(f.run, "", "  ")
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(base+".json", append(doc, '\n'), 0o644); err != nil {
		return "", "", fmt.Errorf("write the runbook: %w", err)
	}
	return base + ".md", base + ".json", nil
}
