package mysql

import (
	"context"
	"io"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/validate"
)

// Engine is MySQL and MariaDB as cutover's engine: the binary registers it.
type Engine struct{}

var (
	_ engine.Engine       = Engine{}
	_ engine.Assessor     = Engine{}
	_ engine.Loader       = Engine{}
	_ engine.Finisher     = Engine{}
	_ engine.StatusReader = Engine{}
	_ engine.Replicator   = Engine{}
	_ engine.Validator    = Engine{}
	_ engine.Switcher     = Engine{}
)

// Name is the engine's name for people.
func (Engine) Name() string { return "MySQL/MariaDB" }

// Schemes are mysql:// and mariadb:// URLs.
func (Engine) Schemes() []string { return []string{"mysql", "mariadb"} }

// CheckURL parses a URL as Config does.
func (Engine) CheckURL(url string) error {
	_, err := Config(plan.Endpoint{URL: url})
	return err
}

// Assess runs cutover check.
func (Engine) Assess(ctx context.Context, p *plan.Plan, opts engine.AssessOptions) *check.Report {
	return Assess(ctx, p, opts)
}

// Load runs cutover start's full load.
func (Engine) Load(ctx context.Context, p *plan.Plan, opts engine.StartOptions) error {
	return FullLoad(ctx, p, opts)
}

// IsCopy says whether the migration is a one-shot copy: recorded so, or about to
// begin as one.
func (Engine) IsCopy(ctx context.Context, p *plan.Plan) (bool, error) {
	tgt, _, err := openSide(ctx, "target", p.Target, 1)
	if err != nil {
		return false, err
	}
	defer tgt.Close()
	ctl, ok, err := readControl(ctx, tgt, p.ControlSchema)
	if err != nil || !ok {
		return !p.CDC.Enabled, err
	}
	st, err := ctl.State(ctx)
	if err != nil || st.Phase == control.PhaseNew {
		return !p.CDC.Enabled, err
	}
	return st.Mode == control.ModeCopy, nil
}

// Replicate runs cutover start's change data capture.
func (Engine) Replicate(ctx context.Context, p *plan.Plan, opts engine.StartOptions) error {
	return Replicate(ctx, p, opts)
}

// Finish runs cutover finish.
func (Engine) Finish(ctx context.Context, p *plan.Plan, out io.Writer, keepControl bool) error {
	return Finish(ctx, p, out, keepControl)
}

// Status runs cutover status.
func (Engine) Status(ctx context.Context, p *plan.Plan) (control.Status, error) {
	return Status(ctx, p)
}

// Dashboard serves the dashboard's status.
func (Engine) Dashboard(ctx context.Context, p *plan.Plan) (control.Status, control.Dashboard, error) {
	return Dashboard(ctx, p)
}

// Validate runs cutover validate.
func (Engine) Validate(ctx context.Context, p *plan.Plan, opts validate.Options) (*validate.Report, error) {
	return Validate(ctx, p, opts)
}

// Switch runs cutover switch.
func (Engine) Switch(ctx context.Context, p *plan.Plan, opts cutover.Options) (*cutover.Result, error) {
	return Switch(ctx, p, opts)
}

// Rollback runs cutover rollback.
func (Engine) Rollback(ctx context.Context, p *plan.Plan, opts cutover.Options) (*cutover.Result, error) {
	return Rollback(ctx, p, opts)
}

// Approve approves the running switch.
func (Engine) Approve(ctx context.Context, p *plan.Plan, by string) (string, error) {
	return Approve(ctx, p, by)
}
