// Package engine is what cutover asks of a database engine, and the engines a binary
// was built with, found by the schemes of the plan's URLs.
//
// The commands (internal/cli) name no engine and no driver: they load the plan, ask
// Open for the migration between its source and its target, and run it through the
// capability interfaces below. An engine is a folder (postgres/ today) that
// implements them and asserts so at compile time; the binary registers it (see
// cmd/cutover). docs/design.md draws the pipeline and says how to add an engine.
package engine

import (
	"context"
	"io"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/validate"
)

// Engine is a database engine cutover migrates from or to.
type Engine interface {
	// Name is the engine's name for people: "PostgreSQL".
	Name() string
	// Schemes are the URL schemes of its connection strings ("postgres"); "" stands
	// for a connection string without one (PostgreSQL's key=value form).
	Schemes() []string
	// CheckURL says what is wrong with a connection string of the engine, without
	// connecting; nil when nothing is.
	CheckURL(url string) error
}

// Assessor runs cutover check: the premigration assessment, each finding with its fix.
type Assessor interface {
	Assess(ctx context.Context, p *plan.Plan, opts AssessOptions) *check.Report
}

// Loader runs cutover start up to the end of the full load: the schema, the tables
// from one consistent snapshot, the objects built after them. A rerun resumes.
type Loader interface {
	Load(ctx context.Context, p *plan.Plan, opts StartOptions) error
	// IsCopy says whether the migration is a one-shot copy (no change stream).
	IsCopy(ctx context.Context, p *plan.Plan) (bool, error)
}

// Replicator runs cutover start after the load: the change stream, in the direction
// the control state says, until ctx ends or cutover finish asks it to stop.
type Replicator interface {
	Replicate(ctx context.Context, p *plan.Plan, opts StartOptions) error
}

// StatusReader reads where a migration stands, whether or not cutover start runs.
type StatusReader interface {
	// Status reads the control state from the target, and what it can of the source
	// (a source that does not answer is said in Status.SourceError).
	Status(ctx context.Context, p *plan.Plan) (control.Status, error)
	// Dashboard reads the status and what the web dashboard draws besides it.
	Dashboard(ctx context.Context, p *plan.Plan) (control.Status, control.Dashboard, error)
}

// Validator runs cutover validate: source and target compared, chunk by chunk.
type Validator interface {
	Validate(ctx context.Context, p *plan.Plan, opts validate.Options) (*validate.Report, error)
}

// Switcher runs the cut over's checklists: cutover switch, cutover rollback, and the
// approval a switch may wait for.
type Switcher interface {
	Switch(ctx context.Context, p *plan.Plan, opts cutover.Options) (*cutover.Result, error)
	Rollback(ctx context.Context, p *plan.Plan, opts cutover.Options) (*cutover.Result, error)
	// Approve approves the waiting switch; it returns the run approved.
	Approve(ctx context.Context, p *plan.Plan, by string) (string, error)
}

// Finisher runs cutover finish: what the migration made on both servers is removed
// (keepControl: but the control state).
type Finisher interface {
	Finish(ctx context.Context, p *plan.Plan, out io.Writer, keepControl bool) error
}

// Migration is every command's work for one plan.
type Migration interface {
	Assessor
	Loader
	Replicator
	StatusReader
	Validator
	Switcher
	Finisher
}

// Mover is an engine that runs a whole migration between two servers of its own
// kind. PostgreSQL is one: its phases move into the engine-neutral packages (cdc,
// apply, validate, cutover, control) behind narrower interfaces, and a migration
// between two engines (MySQL to PostgreSQL) is put together from those.
type Mover interface {
	Engine
	Migration
}

// Unreachable is a side (source or target) that could not be connected to.
type Unreachable struct {
	Side string
	Err  error
}

func (e *Unreachable) Error() string { return e.Err.Error() }
func (e *Unreachable) Unwrap() error { return e.Err }
