package postgres

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"testing"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/engine"
)

func TestSourceSnapshotSees(t *testing.T) {
	snap, err := parseSnapshot("100:110:100,104,107")
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[uint32]bool{3: true, 99: true, 100: false, 101: true, 104: false, 109: true, 110: false, 5000: false} {
		if got := snap.sees(id); got != want {
			t.Errorf("sees(%d) = %v, want %v", id, got, want)
		}
	}
	// xid8 values carry an epoch the stream's IDs have not; around the wrap of 32 bits
	// the order is modulo 2^32.
	snap, err = parseSnapshot("8589934590:8589934600:8589934595")
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[uint32]bool{4294967294: true, 4294967295: true, 0: true, 3: false, 7: true, 8: false} {
		if got := snap.sees(id); got != want {
			t.Errorf("across the wrap: sees(%d) = %v, want %v", id, got, want)
		}
	}
	for _, bad := range []string{"", "1:2", "a:2:", "1:2:x"} {
		if _, err := parseSnapshot(bad); err == nil {
			t.Errorf("parseSnapshot(%q) took it", bad)
		}
	}
}

func TestRecentTxnsInFlight(t *testing.T) {
	a := &cdc.Relation{Schema: "public", Name: "a"}
	b := &cdc.Relation{Schema: "s", Name: `B "x"`}
	c := &cdc.Relation{Schema: "public", Name: "c"}
	var r recentTxns
	if f := r.inFlight("10:10:"); !f.every {
		t.Fatal("nothing applied yet: the transactions of an earlier run cannot be told")
	}
	apply := func(id uint64, rels ...*cdc.Relation) {
		r.note(&cdc.Begin{TxnID: id})
		for _, rel := range rels {
			r.note(&cdc.Change{Op: cdc.Insert, Rel: rel})
		}
		r.note(&cdc.Commit{})
	}
	apply(5, a)
	apply(11, a, b)
	apply(12, c)
	r.note(&cdc.Begin{TxnID: 13})
	r.note(&cdc.Change{Op: cdc.Truncate, Rel: a, Truncated: []*cdc.Relation{a, c}})

	tables := func(f inFlightTables) []string {
		var out []string
		for _, t := range f.tables {
			out = append(out, t[0]+"."+t[1])
		}
		slices.Sort(out)
		return out
	}
	// Every transaction seen: the point is exact for every table.
	if f := r.inFlight("14:14:"); f.every || len(f.tables) != 0 {
		t.Fatalf("all seen: %+v", f)
	}
	// 11 in progress for the snapshot, 13 after its xmax: their tables are in flight.
	f := r.inFlight("11:13:11")
	if got := tables(f); f.every || !slices.Equal(got, []string{"public.a", "public.c", `s.B "x"`}) {
		t.Fatalf("in flight: %v (every %v)", got, f.every)
	}
	if string(f.text()) != `{"\"public\".\"a\"","\"s\".\"B \"\"x\"\"\"","\"public\".\"c\""}` {
		t.Fatalf("as text: %s", f.text())
	}
	if !f.touches([][2]string{{"public", "c"}}) || f.touches([][2]string{{"public", "b"}}) {
		t.Fatal("touches")
	}
	// The oldest transaction remembered not seen: older ones may not be either.
	if f := r.inFlight("3:6:5"); !f.every {
		t.Fatalf("oldest not seen: %+v", f)
	}
	if f := r.inFlight("not a snapshot"); !f.every || f.text() != nil {
		t.Fatalf("no snapshot: %+v", f)
	}

	// A transaction of more tables than are kept is taken to change every table.
	var many []*cdc.Relation
	for i := range tablesKept + 1 {
		many = append(many, &cdc.Relation{Schema: "public", Name: string(rune('a' + i))})
	}
	apply(20, many...)
	if f := r.inFlight("20:21:20"); !f.every {
		t.Fatalf("a transaction of %d tables: %+v", len(many), f)
	}

	// The ring goes round: the oldest remembered is the boundary.
	for i := range recentTxnsKept {
		apply(uint64(100+i), a)
	}
	if !r.full {
		t.Fatal("the ring did not go round")
	}
	if f := r.inFlight("100:200:100"); !f.every {
		t.Fatalf("forgotten transactions may be in flight: %+v", f)
	}
	if f := r.inFlight("100:100000:"); f.every || len(f.tables) != 0 {
		t.Fatalf("after the wrap, all seen: %+v", f)
	}
}

// Another engine's transactions are told by their positions: those a read view's
// position does not hold are in flight, found from the newest back; the recent ones
// as a point records them for the validator (last), newest first.
func TestRecentTxnsPast(t *testing.T) {
	a := &cdc.Relation{Schema: "s", Name: "a"}
	b := &cdc.Relation{Schema: "s", Name: "b"}
	// positions as numbers: a view at n holds the transactions at n and before
	covers := func(snap, txn string) (bool, error) {
		s, err1 := strconv.Atoi(snap)
		x, err2 := strconv.Atoi(txn)
		if err1 != nil || err2 != nil {
			return false, errors.New("not a position")
		}
		return x <= s, nil
	}
	var r recentTxns
	if f := r.inFlightPast("1", covers); !f.every {
		t.Fatal("nothing applied: an earlier run's transactions cannot be told")
	}
	apply := func(pos string, rels ...*cdc.Relation) {
		r.note(&cdc.Begin{Position: pos})
		for _, rel := range rels {
			r.note(&cdc.Change{Op: cdc.Insert, Rel: rel})
		}
		r.note(&cdc.Commit{Position: pos})
	}
	apply("10", a)
	apply("11", b)
	apply("12", a)
	apply("13") // the marker's own, no table
	for _, c := range []struct {
		at    string
		every bool
		want  []string
	}{
		{"13", false, nil},
		{"12", false, nil},
		{"11", false, []string{"s.a"}},
		{"10", false, []string{"s.a", "s.b"}},
		{"9", true, nil}, // the oldest remembered is past the view: older ones may be too
		{"x", true, nil},
	} {
		f := r.inFlightPast(c.at, covers)
		var got []string
		for _, tb := range f.tables {
			got = append(got, tb[0]+"."+tb[1])
		}
		slices.Sort(got)
		if f.every != c.every || !slices.Equal(got, c.want) {
			t.Errorf("past %s: %v (every %v), want %v (every %v)", c.at, got, f.every, c.want, c.every)
		}
	}
	var recent []recentTxn
	if err := json.Unmarshal(r.last(2), &recent); err != nil {
		t.Fatal(err)
	}
	if len(recent) != 2 || recent[0].Position != "13" || recent[1].Position != "12" || !slices.Equal(recent[1].Tables, []string{`"s"."a"`}) {
		t.Errorf("the last 2: %+v", recent)
	}
	// The validator tells them from what the point recorded.
	v := &pairValidator{src: &engine.SourceScanner{Covers: covers}}
	if got := v.pastView("11", r.last(recentRecorded)); got == nil || !slices.Equal(*got, []string{`"s"."a"`}) {
		t.Errorf("past the view at 11: %v", got)
	}
	if got := v.pastView("12", r.last(recentRecorded)); got == nil || len(*got) != 0 {
		t.Errorf("past the view at 12: %v", got)
	}
	if got := v.pastView("11", r.last(1)); got != nil {
		t.Errorf("past the view at 11, with only the newest recorded: %v, want any table", *got)
	}
}
