package engine

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/validate"
)

// partial is the migration between two servers of an engine that runs some of the
// commands (a new engine, command by command): each command it lacks says so.
type partial struct{ e Engine }

var _ Migration = partial{}

func (m partial) lacks(command string) error {
	return fmt.Errorf("cutover %s does not run on %s yet: %s", command, m.e.Name(), m.runs())
}

// Runs says why command (cutover's: check, start, switch…) does not run on the
// migration's engines; nil when it does.
func Runs(m Migration, command string) error {
	if pm, ok := m.(pair); ok {
		return runsPair(pm, command)
	}
	pm, ok := m.(partial)
	if !ok {
		return nil
	}
	has := map[string]bool{
		// an engine that loads but does not replicate copies once: its Load says so for
		// a plan that asks for change capture
		"check": is[Assessor](pm.e), "start": is[Loader](pm.e),
		"status": is[StatusReader](pm.e), "validate": is[Validator](pm.e),
		"switch": is[Switcher](pm.e), "rollback": is[Switcher](pm.e), "approve": is[Switcher](pm.e), "finish": is[Finisher](pm.e),
	}
	if ok, known := has[command]; known && !ok {
		return pm.lacks(command)
	}
	return nil
}

// runs says which commands run on the engine.
func (m partial) runs() string {
	var runs []string
	for _, c := range []struct {
		name string
		has  bool
	}{
		{"check", is[Assessor](m.e)}, {"start", is[Loader](m.e) && is[Replicator](m.e)},
		{"start for a one-shot copy", is[Loader](m.e) && !is[Replicator](m.e)}, {"status", is[StatusReader](m.e)},
		{"validate", is[Validator](m.e)}, {"switch and rollback", is[Switcher](m.e)}, {"finish", is[Finisher](m.e)},
	} {
		if c.has {
			runs = append(runs, "cutover "+c.name)
		}
	}
	if len(runs) == 0 {
		return "no command runs there yet"
	}
	return "this cutover runs " + strings.Join(runs, ", ") + " there"
}

func is[T any](e Engine) bool { _, ok := e.(T); return ok }

func (m partial) Assess(ctx context.Context, p *plan.Plan, opts AssessOptions) *check.Report {
	if a, ok := m.e.(Assessor); ok {
		return a.Assess(ctx, p, opts)
	}
	r := &check.Report{}
	r.Add(check.Finding{Severity: check.Error, Check: "engine", Object: "source", Problem: m.lacks("check").Error()})
	r.Finish()
	return r
}

func (m partial) Load(ctx context.Context, p *plan.Plan, opts StartOptions) error {
	if l, ok := m.e.(Loader); ok {
		return l.Load(ctx, p, opts)
	}
	return m.lacks("start")
}

func (m partial) IsCopy(ctx context.Context, p *plan.Plan) (bool, error) {
	if l, ok := m.e.(Loader); ok {
		return l.IsCopy(ctx, p)
	}
	return false, m.lacks("start")
}

func (m partial) Replicate(ctx context.Context, p *plan.Plan, opts StartOptions) error {
	if r, ok := m.e.(Replicator); ok {
		return r.Replicate(ctx, p, opts)
	}
	return m.lacks("start")
}

func (m partial) Status(ctx context.Context, p *plan.Plan) (control.Status, error) {
	if s, ok := m.e.(StatusReader); ok {
		return s.Status(ctx, p)
	}
	return control.Status{}, m.lacks("status")
}

func (m partial) Dashboard(ctx context.Context, p *plan.Plan) (control.Status, control.Dashboard, error) {
	if s, ok := m.e.(StatusReader); ok {
		return s.Dashboard(ctx, p)
	}
	return control.Status{}, control.Dashboard{}, m.lacks("serve")
}

func (m partial) Validate(ctx context.Context, p *plan.Plan, opts validate.Options) (*validate.Report, error) {
	if v, ok := m.e.(Validator); ok {
		return v.Validate(ctx, p, opts)
	}
	return nil, m.lacks("validate")
}

func (m partial) Switch(ctx context.Context, p *plan.Plan, opts cutover.Options) (*cutover.Result, error) {
	if s, ok := m.e.(Switcher); ok {
		return s.Switch(ctx, p, opts)
	}
	return nil, m.lacks("switch")
}

func (m partial) Rollback(ctx context.Context, p *plan.Plan, opts cutover.Options) (*cutover.Result, error) {
	if s, ok := m.e.(Switcher); ok {
		return s.Rollback(ctx, p, opts)
	}
	return nil, m.lacks("rollback")
}

func (m partial) Approve(ctx context.Context, p *plan.Plan, by string) (string, error) {
	if s, ok := m.e.(Switcher); ok {
		return s.Approve(ctx, p, by)
	}
	return "", m.lacks("approve")
}

func (m partial) Finish(ctx context.Context, p *plan.Plan, out io.Writer, keepControl bool) error {
	if f, ok := m.e.(Finisher); ok {
		return f.Finish(ctx, p, out, keepControl)
	}
	return m.lacks("finish")
}
