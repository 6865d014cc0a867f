package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/validate"
	"github.com/jackc/pgx/v5"
)

// The switch validates before the block and inside the window. Before the block, while
// the users still write, every table gets what it needs to be trusted (a full pass when
// it was never validated or its changed keys were not all recorded since, the changed
// rows otherwise), then passes over what changed meanwhile, each shorter than the last.
// Inside the downtime window only the rows changed since the last of them are compared,
// so the window grows with the writes of those moments, not with the database. Without
// tracked changes there is nothing to compare by key: the window holds a full pass.

// tracked reports whether the running task records the keys it changes.
func (s *switcher) tracked() bool { return s.trackedFrom != "" }

// untracked says why the changes are not tracked.
func (s *switcher) untracked() string {
	if s.p.Validation.Tracking() {
		return "the running cutover start does not record the rows it changes (it was started with validation.track_changes: false): restart it with this plan"
	}
	return "changes are not tracked (validation.track_changes: false in the plan)"
}

// validateBeforeBlock brings every table's validation up to the moment before the
// block, so that the validation inside the window has only the last seconds' changes
// to compare. It is a gate: when it fails, nothing was blocked.
func (s *switcher) validateBeforeBlock(ctx context.Context) (string, error) {
	return s.validateBeforeBlockBy(ctx, s.passesBeforeBlock, s.latencyGate)
}

// validateBeforeBlockBy is validateBeforeBlock with the passes run by passes, and
// the change stream's lag after them checked by caughtUp (a problem, or "").
func (s *switcher) validateBeforeBlockBy(ctx context.Context, passes func(context.Context) ([]string, error), caughtUp func(context.Context) (string, error)) (string, error) {
	if !s.tracked() {
		msg := s.untracked() + ": the validate step will compare every table in full inside the downtime window" + s.expectedFullPass(ctx)
		if s.dry {
			fmt.Fprintf(s.out, "      warning: %s\n", msg)
		}
		return msg, nil
	}
	if s.dry {
		fmt.Fprintln(s.out, "      cutover validate --incremental while the users still write: a full pass of each table never validated (or whose changes were not all recorded since), the changed rows of the others; every table must be equal")
		return "", nil
	}
	details, err := passes(ctx)
	if err == nil {
		// The passes may have taken long (a full pass of a large table): the latency the
		// gates saw may have grown since, and the sync inside the window waits it out.
		var problem string
		if problem, err = caughtUp(ctx); err == nil && problem != "" {
			err = fmt.Errorf("after the validation before the block, %s", problem)
		}
	}
	if err != nil {
		// Nothing was blocked: the migration goes back to change data capture.
		if perr := s.setPhase(context.WithoutCancel(ctx), control.PhaseCDC); perr != nil {
			err = errors.Join(err, perr)
		}
		return "", fmt.Errorf("%w: %w", cutover.ErrGates, err)
	}
	return strings.Join(details, "; "), nil
}

// passesBeforeBlock runs the validation passes before the block, and says what each
// compared.
func (s *switcher) passesBeforeBlock(ctx context.Context) ([]string, error) {
	return validate.PassesBeforeBlock(ctx, func(ctx context.Context, opts validate.Options) (*validate.Report, error) {
		return Validate(ctx, s.p, opts)
	}, quoteTable, s.p.ControlSchema)
}

// quoteTable names a table as PostgreSQL writes it.
func quoteTable(schema, table string) string { return pgx.Identifier{schema, table}.Sanitize() }

// validateChanged compares, inside the window, the rows changed since the validation
// before the block (every row, when changes are not tracked).
func (s *switcher) validateChanged(ctx context.Context) (string, error) {
	if s.dry {
		if s.tracked() {
			fmt.Fprintf(s.out, "      cutover validate --incremental (while CDC still runs): only the rows changed since the validation before the block%s; every table must be equal\n", s.wholeTables(ctx))
		} else {
			fmt.Fprintf(s.out, "      warning: cutover validate of EVERY TABLE IN FULL inside the downtime window: %s%s\n", s.untracked(), s.expectedFullPass(ctx))
		}
		return "", nil
	}
	rep, err := Validate(ctx, s.p, validate.Options{Incremental: true, RunningOnly: true})
	if err != nil {
		return "", fmt.Errorf("validation: %w", err)
	}
	if err := s.differences(rep, "the validation"); err != nil {
		return "", err
	}
	if !s.tracked() {
		return fullPassDetail + " (" + s.untracked() + "): " + validationDetail(rep), nil
	}
	return validationDetail(rep), nil
}

// fullPassDetail begins the runbook's detail of a validate step that compared every
// table in full: expectedFullPass finds the last one by it.
const fullPassDetail = "full pass inside the window"

// differences is the error of a validation that found tables not equal.
func (s *switcher) differences(rep *validate.Report, what string) error {
	return validate.Differences(rep, what, quoteTable, s.p.ControlSchema)
}

// validationDetail says what a validation compared.
func validationDetail(rep *validate.Report) string { return validate.Detail(rep, quoteTable) }

// wholeTables names, for a dry run, the tables an incremental pass still compares in
// full: those without a key.
func (s *switcher) wholeTables(ctx context.Context) string {
	stats, err := s.ctl.TableStats(ctx)
	if err != nil {
		return ""
	}
	var names []string
	for _, t := range stats {
		if t.Validation == control.ValidationNoKey {
			names = append(names, pgx.Identifier{t.Schema, t.Table}.Sanitize())
		}
	}
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf(" (tables without a key are compared whole: %s)", listText(names, 5))
}

// expectedFullPass says how long the last full pass inside a switch's window took, as
// its runbook recorded it.
func (s *switcher) expectedFullPass(ctx context.Context) string {
	var took *time.Duration
	var when *time.Time
	err := s.tgt.QueryRow(ctx, "SELECT b.ended_at - b.started_at, b.started_at FROM "+s.ctl.table("runbook")+" b JOIN "+s.ctl.table("runs")+
		` r ON r.id = b.run_id WHERE r.kind = 'switch' AND b.step = 'validate' AND b.outcome = 'done' AND b.ended_at IS NOT NULL AND b.detail LIKE $1
		ORDER BY b.started_at DESC LIMIT 1`, fullPassDetail+"%").Scan(&took, &when)
	if err != nil || took == nil || when == nil {
		return "; how long it takes is not known yet: a rehearsal (cutover switch, then cutover rollback) measures it, and a full cutover validate takes about as long"
	}
	return fmt.Sprintf("; it took %v in the switch of %s", took.Round(time.Millisecond), when.UTC().Format(time.RFC3339))
}
