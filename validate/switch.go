package validate

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/plan"
)

// The switch validates before the block and inside the window. Before the block, while
// the users still write, every table gets what it needs to be trusted (a full pass when
// it was never validated or its changed keys were not all recorded since, the changed
// rows otherwise), then passes over what changed meanwhile, each shorter than the last.
// Inside the downtime window only the rows changed since the last of them are compared,
// so the window grows with the writes of those moments, not with the database.

// A pass before the block compares what changed since each table's last pass, and
// the window compares what changed since the last of them: the passes go on while
// one takes longer than settledPass (so the window inherits less than that of writes
// to compare) and shorter than the one before (else the writes outrun them), at most
// maxPassesBeforeBlock; the first over every table, the others over the tables with a
// key (the window compares the others whole anyway).
const (
	settledPass          = 300 * time.Millisecond
	maxPassesBeforeBlock = 5
)

// Quote names a table as its engine writes it.
type Quote func(schema, table string) string

// PassesBeforeBlock runs the switch's validation passes before the block with run (an
// engine's cutover validate), and says what each compared; a pass that finds a
// difference ends them with its error (control names the control schema).
func PassesBeforeBlock(ctx context.Context, run func(context.Context, Options) (*Report, error), q Quote, controlSchema string) ([]string, error) {
	var details []string
	var keyed []plan.Pattern
	var last time.Duration
	for pass := 1; ; pass++ {
		rep, err := run(ctx, Options{Incremental: true, RunningOnly: true, Tables: keyed})
		if err != nil {
			return nil, fmt.Errorf("the validation before the block could not run: %w", err)
		}
		if err := Differences(rep, "the validation before the block", q, controlSchema); err != nil {
			return nil, err
		}
		d := Detail(rep, q)
		if pass > 1 {
			d = fmt.Sprintf("pass %d (the tables with a key): %s", pass, d)
		}
		details = append(details, d)
		if rep.Took < settledPass || pass == maxPassesBeforeBlock || (pass > 1 && rep.Took >= last) {
			return details, nil
		}
		last = rep.Took
		if pass == 1 {
			for _, t := range rep.Tables {
				if t.State != control.ValidationNoKey {
					keyed = append(keyed, plan.MustPattern(ExactPattern(t.Schema, t.Table)))
				}
			}
			if len(keyed) == 0 {
				return details, nil
			}
		}
	}
}

// ExactPattern is the plan pattern that matches schema.table alone.
func ExactPattern(schema, table string) string {
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	return q(schema) + "." + q(table)
}

// Differences is the error of a validation that found tables not equal; nil when
// every table is.
func Differences(rep *Report, what string, q Quote, controlSchema string) error {
	var differ []string
	for _, t := range rep.Tables {
		if t.State == control.ValidationValidated || t.State == control.ValidationNoKey {
			continue
		}
		d := fmt.Sprintf("%s (%s", q(t.Schema, t.Table), t.State)
		if t.Mismatches > 0 {
			d += fmt.Sprintf(", %d rows", t.Mismatches)
		}
		if t.Error != "" {
			d += ": " + t.Error
		}
		differ = append(differ, d+")")
	}
	if len(differ) == 0 {
		return nil
	}
	return fmt.Errorf("%s found differences: %s (%s.validation_failures lists them): cutover validate --repair, then cutover switch again",
		what, ListText(differ, 5), controlSchema)
}

// Detail says what a validation compared: tables by their changed rows, and tables in
// full.
func Detail(rep *Report, q Quote) string {
	var byKey int
	var changed int64
	var whole []string
	for _, t := range rep.Tables {
		if t.Incremental {
			byKey++
			changed += t.RowsRead
			continue
		}
		name := q(t.Schema, t.Table)
		if t.State == control.ValidationNoKey {
			name += " (no key)"
		}
		whole = append(whole, name)
	}
	d := fmt.Sprintf("%d tables equal in %v: %d by their %d changed rows", len(rep.Tables), rep.Took.Round(time.Millisecond), byKey, changed)
	if len(whole) > 0 {
		d += fmt.Sprintf(", %d in full (%s)", len(whole), ListText(whole, 5))
	}
	return d
}

// ListText names at most max of names, sorted, and how many more there are.
func ListText(names []string, max int) string {
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	if len(sorted) <= max {
		return strings.Join(sorted, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(sorted[:max], ", "), len(sorted)-max)
}
