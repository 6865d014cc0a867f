package mysql

import (
	"context"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/plan"
)

// Engine is MySQL and MariaDB as cutover's engine: the binary registers it.
type Engine struct{}

var (
	_ engine.Engine   = Engine{}
	_ engine.Assessor = Engine{}
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
