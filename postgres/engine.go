package postgres

import (
	"context"
	"fmt"
	"io"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/redact"
	"github.com/cutover-dev/cutover/validate"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Engine is PostgreSQL as cutover's engine: the binary registers it
// (engine.Register), and the commands reach the functions of this package through it.
type Engine struct{}

var _ engine.Mover = Engine{}

// Name is the engine's name for people.
func (Engine) Name() string { return "PostgreSQL" }

// Schemes are postgres:// and postgresql:// URLs, and key=value connection strings.
func (Engine) Schemes() []string { return []string{"postgres", "postgresql", ""} }

// CheckURL parses a connection string as libpq would.
func (Engine) CheckURL(url string) error {
	if _, err := pgconn.ParseConfig(url); err != nil {
		return fmt.Errorf("is not a valid PostgreSQL connection string: %s", redact.ConnString(err.Error()))
	}
	return nil
}

// Assess runs cutover check.
func (Engine) Assess(ctx context.Context, p *plan.Plan, opts engine.AssessOptions) *check.Report {
	return Assess(ctx, p, opts)
}

// Load runs the full load.
func (Engine) Load(ctx context.Context, p *plan.Plan, opts engine.StartOptions) error {
	return FullLoad(ctx, p, opts)
}

// IsCopy says whether the migration is a one-shot copy.
func (Engine) IsCopy(ctx context.Context, p *plan.Plan) (bool, error) { return IsCopy(ctx, p) }

// Replicate runs the change stream in the direction the control schema says.
func (Engine) Replicate(ctx context.Context, p *plan.Plan, opts engine.StartOptions) error {
	return RunCDC(ctx, p, opts)
}

// Status reads the control schema on the target and the slot on the source.
func (Engine) Status(ctx context.Context, p *plan.Plan) (control.Status, error) {
	return StatusOf(ctx, p)
}

// Dashboard reads the status and the dashboard's figures, on one connection to the
// target.
func (Engine) Dashboard(ctx context.Context, p *plan.Plan) (st control.Status, d control.Dashboard, err error) {
	st, err = statusWith(ctx, p, func(tgt *pgx.Conn) (err error) {
		d, err = ReadDashboard(ctx, tgt, p)
		return err
	})
	return st, d, err
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

// Approve approves the waiting switch.
func (Engine) Approve(ctx context.Context, p *plan.Plan, by string) (string, error) {
	return Approve(ctx, p, by)
}

// Finish runs cutover finish.
func (Engine) Finish(ctx context.Context, p *plan.Plan, out io.Writer, keepControl bool) error {
	return Finish(ctx, p, out, keepControl)
}
