package validate

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/plan"
)

// The validation's policy.
const (
	// failuresKept is the most differences of a table kept in its outcome (recorded
	// and printed); the count of differences is always exact.
	failuresKept = 1000
	// rechecks is how many times a difference seen while changes flow is read again,
	// at a later point, before it is reported.
	rechecks = 3
	// repairTries is how many times --repair copies rows that still differ.
	repairTries = 3
	// throttledChunks is how many chunks a throttled validation reads between pauses.
	throttledChunks = 10
)

// noKeyRepair is a keyless table's error when --repair finds it differing.
const noKeyRepair = "no key: --repair cannot tell which target rows to replace; add a primary key, or copy the table again (TRUNCATE it on the target, then INSERT from an export of the source)"

// Run validates the tables of stats that opts asks for, one after the other, records
// each outcome through e and returns them.
func Run(ctx context.Context, e Engine, opts Options, stats []control.TableStat) (*Report, error) {
	if opts.ChunkRows <= 0 {
		opts.ChunkRows = DefaultChunkRows
	}
	todo := selected(stats, opts.Tables)
	names := make([][2]string, len(todo))
	for i, ts := range todo {
		names[i] = [2]string{ts.Schema, ts.Table}
	}
	if err := e.Describe(ctx, names); err != nil {
		return nil, err
	}
	defer e.EndPoint(ctx)
	rep := &Report{Equal: true}
	for _, ts := range todo {
		tv, err := validateTable(ctx, e, opts, ts)
		if err != nil {
			// No point can be had for the next tables either: one message, now.
			_ = e.Flush(context.WithoutCancel(ctx)) // the tables done
			return nil, err
		}
		if err := e.Record(ctx, tv); err != nil {
			return nil, err
		}
		if tv.State != control.ValidationValidated && tv.State != control.ValidationNoKey {
			rep.Equal = false
		}
		rep.Tables = append(rep.Tables, tv)
		if opts.Progress != nil {
			opts.Progress(tv)
		}
	}
	if err := e.Flush(ctx); err != nil {
		return nil, err
	}
	if len(rep.Tables) == 0 && len(opts.Tables) > 0 {
		return nil, fmt.Errorf("no migrated table matches %v: cutover status lists them", opts.Tables)
	}
	return rep, nil
}

// selected is the tables asked for; not those the plan left out after their load
// (excluded).
func selected(stats []control.TableStat, patterns []plan.Pattern) []control.TableStat {
	var todo []control.TableStat
	for _, ts := range stats {
		if ts.State != control.TableExcluded && matchesAny(patterns, ts.Schema, ts.Table) {
			todo = append(todo, ts)
		}
	}
	return todo
}

func matchesAny(ps []plan.Pattern, schema, table string) bool {
	if len(ps) == 0 {
		return true
	}
	for _, p := range ps {
		if p.Match(schema, table) {
			return true
		}
	}
	return false
}

// tableRun is the validation of one table.
type tableRun struct {
	e         Engine
	opts      Options
	t         *Table
	src, tgt  Reader
	estimated int64        // the table's rows, as its load and the changes since count them
	tv        *TableReport // the outcome so far
}

// validateTable validates one table: its rows changed since its last validation
// when they are tracked, else all of them, at a point of the change stream; the
// differences seen compared again at later points (a change in flight is not one),
// and repaired when asked. An error about the table is part of its outcome; the error
// returned is the validation's: it was interrupted, or it cannot go on (Stopping).
func validateTable(ctx context.Context, e Engine, opts Options, ts control.TableStat) (TableReport, error) {
	start := time.Now()
	tv := TableReport{Schema: ts.Schema, Table: ts.Table}
	fail := func(err error) (TableReport, error) {
		if ctx.Err() != nil || stops(err) {
			return tv, cmp.Or(ctx.Err(), err)
		}
		tv.State, tv.Error = control.ValidationError, err.Error()
		tv.Seconds = time.Since(start).Seconds()
		return tv, nil
	}
	t, src, tgt, err := e.Table(ts.Schema, ts.Table)
	if err != nil {
		return fail(err)
	}
	tv.Key = t.Key
	r := &tableRun{e: e, opts: opts, t: t, src: src, tgt: tgt, estimated: max(ts.Rows+ts.Inserts-ts.Deletes, 0), tv: &tv}
	diffs, pt, err := r.first(ctx, incremental(opts, ts, e.Tracked))
	if err != nil {
		return fail(err)
	}
	if diffs, err = r.recountInFlight(ctx, diffs); err != nil {
		return fail(err)
	}
	if len(diffs) > 0 {
		tv.Rechecked = int64(len(diffs))
		if diffs, err = r.recheck(ctx, diffs); err != nil {
			return fail(err)
		}
	}
	if opts.Repair && len(diffs) > 0 {
		if diffs, err = r.repair(ctx, diffs); err != nil {
			return fail(err)
		}
	}
	tv.Mismatches = int64(len(diffs))
	tv.State = state(tv.Mismatches, tv.State == control.ValidationMismatched, len(t.Key) > 0)
	tv.Differences = kept(diffs)
	tv.Seconds = time.Since(start).Seconds()
	tv.Position = pt.Position // the first comparison's: the rechecks read at later points
	return tv, nil
}

// incremental says whether a table's changed rows may be compared alone: asked for,
// and tracked since its last validation, which ran to an outcome.
func incremental(opts Options, ts control.TableStat, tracked func(position string) bool) bool {
	return opts.Incremental && ts.ValidatedAt != nil && ts.Validation != control.ValidationPending &&
		ts.Validation != control.ValidationError && tracked(ts.ValidatedPosition)
}

// state is a table's final state: mismatched when rows differ (or the pass found it
// differing but too large to list its rows: tooLarge), else validated, or no key for
// a table compared as a whole.
func state(mismatches int64, tooLarge, keyed bool) string {
	switch {
	case mismatches > 0 || tooLarge:
		return control.ValidationMismatched
	case !keyed:
		return control.ValidationNoKey
	default:
		return control.ValidationValidated
	}
}

// kept is the differences a table's outcome keeps: the first failuresKept.
func kept(diffs []Difference) []Difference { return diffs[:min(len(diffs), failuresKept)] }

// first is the table's first comparison: the changed rows alone when incremental
// allows and they are few enough, else a full pass. pt is the point it read at.
func (r *tableRun) first(ctx context.Context, incremental bool) (diffs []Difference, pt Point, err error) {
	if incremental {
		var done bool
		if diffs, done, pt, err = r.changedRows(ctx); err != nil || done {
			return diffs, pt, err
		}
	}
	return r.pass(ctx, false)
}

// changedRows compares the rows changed since the table's last validation (and those
// that differed then), at one point: done is false when a full pass is the better way
// (a table without a key, a truncate, more than a tenth of the rows changed).
func (r *tableRun) changedRows(ctx context.Context) (diffs []Difference, done bool, pt Point, err error) {
	if len(r.t.Key) == 0 {
		return nil, false, pt, nil
	}
	pt, err = r.e.AtPoint(ctx, r.t, false, func() error {
		// The point holds exactly the keys changed before it.
		keys, whole, err := r.e.ChangedKeys(ctx, r.t, max(r.estimated/10, 1000))
		if err != nil || whole {
			return err
		}
		r.tv.Incremental, r.tv.RowsRead = true, int64(keys.Len())
		diffs, _, err = Keys(ctx, r.src, r.tgt, r.t, keys)
		done = true
		return err
	})
	r.tv.InFlight = !pt.Exact
	return diffs, done, pt, err
}

// pass compares the table chunk by chunk, at one point of the change stream (a new
// one when later is set).
func (r *tableRun) pass(ctx context.Context, later bool) ([]Difference, Point, error) {
	var res TableResult
	pt, err := r.e.AtPoint(ctx, r.t, later, func() error {
		ranges, err := r.e.Chunks(ctx, r.t, r.estimated, int(r.estimated/int64(r.opts.ChunkRows)))
		if err != nil {
			return err
		}
		res, err = compareChunks(ctx, r.src, r.tgt, r.t, ranges, r.opts.BusyPercent)
		return err
	})
	tv := r.tv
	tv.Chunks, tv.Differing, tv.RowsRead = res.Chunks, res.Differing, res.RowsRead
	tv.SourceRows, tv.TargetRows = res.Source.Rows, res.Target.Rows
	tv.InFlight = !pt.Exact
	if res.TooLarge {
		tv.State = control.ValidationMismatched
		tv.Error = fmt.Sprintf("no key and %d rows: too many to find the rows that differ (count %d on the source, %d on the target)",
			max(res.Source.Rows, res.Target.Rows), res.Source.Rows, res.Target.Rows)
	}
	return res.Differences, pt, err
}

// compareChunks compares the chunks; below a busy percent of 100, a few at a time
// with a pause after each few, so that reading takes that share of the time.
func compareChunks(ctx context.Context, src, tgt Reader, t *Table, ranges []Range, busy int) (TableResult, error) {
	if busy <= 0 || busy >= 100 {
		return Compare(ctx, src, tgt, t, ranges)
	}
	var res TableResult
	for start := 0; start < len(ranges); start += throttledChunks {
		began := time.Now()
		part, err := Compare(ctx, src, tgt, t, ranges[start:min(start+throttledChunks, len(ranges))])
		if err != nil {
			return res, err
		}
		res.Add(part)
		pause := time.Since(began) * time.Duration(100-busy) / time.Duration(busy)
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(pause):
		}
	}
	return res, nil
}

// recountInFlight compares a table without a key whole again, at later points, while
// it differs too much to list its rows and changes to it were in flight at its point:
// they may be all the difference.
func (r *tableRun) recountInFlight(ctx context.Context, diffs []Difference) ([]Difference, error) {
	var err error
	for i := 0; i < rechecks && r.tv.InFlight && r.tv.State == control.ValidationMismatched && len(r.t.Key) == 0; i++ {
		r.tv.State, r.tv.Error = "", ""
		if diffs, _, err = r.pass(ctx, true); err != nil {
			return nil, err
		}
	}
	return diffs, nil
}

// recheck reads differing rows again at later points of the stream and keeps the
// differences that stay: a change in flight is not a difference. A table without a
// key has each differing row counted again on both sides, as often as it is there.
func (r *tableRun) recheck(ctx context.Context, diffs []Difference) ([]Difference, error) {
	for range rechecks {
		var next []Difference
		_, err := r.e.AtPoint(ctx, r.t, true, func() (err error) {
			if len(r.t.Key) == 0 {
				next, err = Recount(ctx, r.src, r.tgt, r.t, diffs)
			} else {
				next, _, err = Keys(ctx, r.src, r.tgt, r.t, KeyList(diffKeys(diffs)))
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if len(next) == 0 {
			return nil, nil
		}
		diffs = next
	}
	return diffs, nil
}

// repair copies the differing rows again from the source, then compares them again;
// it tries repairTries times. It returns the rows that still differ. A table without
// a key cannot be repaired: which target rows to replace is not known.
func (r *tableRun) repair(ctx context.Context, diffs []Difference) ([]Difference, error) {
	if len(r.t.Key) == 0 {
		r.tv.Error = noKeyRepair
		return diffs, nil
	}
	for range repairTries {
		keys := diffKeys(diffs)
		repaired, err := r.e.Repair(ctx, r.t, keys)
		if err != nil {
			return nil, err
		}
		if repaired {
			r.tv.Repaired += int64(len(keys))
		}
		_, err = r.e.AtPoint(ctx, r.t, true, func() (err error) {
			diffs, _, err = Keys(ctx, r.src, r.tgt, r.t, KeyList(keys))
			return err
		})
		if err != nil || len(diffs) == 0 {
			return diffs, err
		}
	}
	return diffs, nil
}

func diffKeys(diffs []Difference) [][]string {
	keys := make([][]string, len(diffs))
	for i, d := range diffs {
		keys[i] = d.Key
	}
	return keys
}
