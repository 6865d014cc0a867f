package mysql

import (
	"context"
	"io"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/plan"
)

// Engine is MySQL and MariaDB as cutover's engine: the binary registers it.
type Engine struct{}

var (
	_ engine.Engine       = Engine{}
	_ engine.Assessor     = Engine{}
	_ engine.Loader       = Engine{}
	_ engine.Finisher     = Engine{}
	_ engine.StatusReader = Engine{}
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

// Load runs cutover start: a one-shot copy (change capture does not run yet).
func (Engine) Load(ctx context.Context, p *plan.Plan, opts engine.StartOptions) error {
	return FullLoad(ctx, p, opts)
}

// IsCopy: every migration between MySQL/MariaDB servers is a one-shot copy so far.
func (Engine) IsCopy(context.Context, *plan.Plan) (bool, error) { return true, nil }

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
