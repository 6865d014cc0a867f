package validate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/plan"
)

func TestState(t *testing.T) {
	for _, c := range []struct {
		mismatches      int64
		tooLarge, keyed bool
		want            string
	}{
		{0, false, true, control.ValidationValidated},
		{0, false, false, control.ValidationNoKey},
		{2, false, true, control.ValidationMismatched},
		{2, false, false, control.ValidationMismatched},
		// A keyless table too large to list its rows differs with none listed.
		{0, true, false, control.ValidationMismatched},
	} {
		if got := state(c.mismatches, c.tooLarge, c.keyed); got != c.want {
			t.Errorf("state(%d, %v, %v) = %q, want %q", c.mismatches, c.tooLarge, c.keyed, got, c.want)
		}
	}
}

func TestKept(t *testing.T) {
	if got := kept(nil); got != nil {
		t.Errorf("kept(nil) = %v, want nil (no differences in the JSON)", got)
	}
	diffs := make([]Difference, failuresKept+5)
	for i := range diffs {
		diffs[i] = Difference{Kind: MissingTarget, Key: []string{fmt.Sprint(i)}}
	}
	got := kept(diffs)
	if len(got) != failuresKept || got[0].Key[0] != "0" || got[failuresKept-1].Key[0] != fmt.Sprint(failuresKept-1) {
		t.Errorf("kept %d differences from %v to %v, want the first %d", len(got), got[0].Key, got[len(got)-1].Key, failuresKept)
	}
	if got := kept(diffs[:3]); len(got) != 3 {
		t.Errorf("kept %d of 3 differences", len(got))
	}
}

func TestSelected(t *testing.T) {
	stats := []control.TableStat{
		{Schema: "public", Table: "a"},
		{Schema: "public", Table: "b", State: control.TableExcluded},
		{Schema: "sales", Table: "a"},
	}
	names := func(ts []control.TableStat) (n []string) {
		for _, s := range ts {
			n = append(n, s.Schema+"."+s.Table)
		}
		return n
	}
	if got := names(selected(stats, nil)); !slices.Equal(got, []string{"public.a", "sales.a"}) {
		t.Errorf("every table: %v, want the migrated ones, excluded left out", got)
	}
	if got := names(selected(stats, []plan.Pattern{plan.MustPattern("sales.*")})); !slices.Equal(got, []string{"sales.a"}) {
		t.Errorf("sales.*: %v", got)
	}
	if got := names(selected(stats, []plan.Pattern{plan.MustPattern("public.b")})); len(got) != 0 {
		t.Errorf("an excluded table asked for: %v, want none", got)
	}
}

func TestIncremental(t *testing.T) {
	at := time.Now()
	validated := control.TableStat{Validation: control.ValidationValidated, ValidatedAt: &at, ValidatedPosition: "0/10"}
	tracked := func(string) bool { return true }
	untracked := func(string) bool { return false }
	on := Options{Incremental: true}
	if !incremental(on, validated, tracked) {
		t.Error("a validated table with its changes tracked: want incremental")
	}
	if incremental(Options{}, validated, tracked) {
		t.Error("incremental not asked for: want a full pass")
	}
	if incremental(on, validated, untracked) {
		t.Error("changes not tracked since: want a full pass")
	}
	for _, st := range []string{control.ValidationPending, control.ValidationError} {
		ts := validated
		ts.Validation = st
		if incremental(on, ts, tracked) {
			t.Errorf("last validation %s: want a full pass", st)
		}
	}
	never := validated
	never.ValidatedAt = nil
	if incremental(on, never, tracked) {
		t.Error("never validated: want a full pass")
	}
	for _, st := range []string{control.ValidationMismatched, control.ValidationNoKey} {
		ts := validated
		ts.Validation = st
		if !incremental(on, ts, tracked) {
			t.Errorf("last validation %s: want incremental (its differences are compared again)", st)
		}
	}
}

type stopErr struct{}

func (stopErr) Error() string    { return "the stream stopped" }
func (stopErr) StopsValidation() {}

func TestStops(t *testing.T) {
	if !stops(fmt.Errorf("table x: %w", stopErr{})) {
		t.Error("a wrapped Stopping error: want it to stop the validation")
	}
	if stops(errors.New("table x: columns missing")) || stops(context.Canceled) {
		t.Error("an error about a table stops the validation")
	}
}

// TestCompareChunksThrottled: a throttled pass compares every chunk, a few at a time,
// with the same outcome as an unthrottled one.
func TestCompareChunksThrottled(t *testing.T) {
	tbl := &Table{Schema: "public", Name: "t", Columns: []string{"id"}, Key: []string{"id"}}
	ranges := make([]Range, throttledChunks*2+3)
	src, tgt := &countingReader{}, &countingReader{}
	res, err := compareChunks(context.Background(), src, tgt, tbl, ranges, 99)
	if err != nil {
		t.Fatal(err)
	}
	if res.Chunks != len(ranges) || src.calls != 3 || tgt.calls != 3 {
		t.Errorf("%d chunks in %d and %d reads of sums, want %d in 3 on each side", res.Chunks, src.calls, tgt.calls, len(ranges))
	}
}

// countingReader is one side of a table whose chunks are all equal (and empty): it
// counts the reads of sums, the only reads such chunks need.
type countingReader struct {
	Reader
	calls int
}

func (r *countingReader) Sums(_ context.Context, _ *Table, rs []Range) ([]Sum, error) {
	r.calls++
	return make([]Sum, len(rs)), nil
}
