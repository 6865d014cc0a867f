package apply

import (
	"slices"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/cdc"
)

// The tables of the tests: users is keyed by id; bio is a large value an update may
// leave out (Unchanged, written "~").
var (
	users  = table("users", "id*", "name", "bio")
	orders = table("orders", "id*", "total")
	items  = table("items", "id*", "qty")
)

// table describes a relation; a column named with a trailing * is in the key.
func table(name string, cols ...string) *cdc.Relation {
	rel := &cdc.Relation{Schema: "public", Name: name}
	for _, c := range cols {
		key := strings.HasSuffix(c, "*")
		rel.Columns = append(rel.Columns, cdc.Column{Name: strings.TrimSuffix(c, "*"), Key: key})
	}
	return rel
}

// row builds a row from its values' text: "NULL" is NULL, "~" unchanged.
func row(vals ...string) cdc.Row {
	r := make(cdc.Row, len(vals))
	for i, v := range vals {
		switch v {
		case "NULL":
			r[i] = cdc.Value{Null: true}
		case "~":
			r[i] = cdc.Value{Unchanged: true}
		default:
			r[i] = cdc.Value{Text: []byte(v)}
		}
	}
	return r
}

// show writes a row as row reads it, its values separated by commas.
func show(r cdc.Row) string {
	vals := make([]string, len(r))
	for i, v := range r {
		switch {
		case v.Unchanged:
			vals[i] = "~"
		case v.Null:
			vals[i] = "NULL"
		default:
			vals[i] = string(v.Text)
		}
	}
	return strings.Join(vals, ",")
}

func ins(rel *cdc.Relation, vals ...string) *cdc.Change {
	return &cdc.Change{Op: cdc.Insert, Rel: rel, New: row(vals...)}
}

func upd(rel *cdc.Relation, vals ...string) *cdc.Change {
	return &cdc.Change{Op: cdc.Update, Rel: rel, New: row(vals...)}
}

// del deletes by key: Old holds the key columns, the others NULL, as the stream sends.
func del(rel *cdc.Relation, vals ...string) *cdc.Change {
	return &cdc.Change{Op: cdc.Delete, Rel: rel, Old: row(vals...)}
}

// want is a table's net changes as text: the deletes' keys, the updates' and the
// inserts' images.
type want struct {
	deletes, updates, inserts []string
}

func got(tc *TableChanges) want {
	var w want
	for _, r := range tc.Deletes {
		w.deletes = append(w.deletes, show(r.Key))
	}
	for _, r := range tc.Updates {
		w.updates = append(w.updates, show(r.Image))
	}
	for _, r := range tc.Inserts {
		w.inserts = append(w.inserts, show(r.Image))
	}
	return w
}

func TestNetRules(t *testing.T) {
	for _, tc := range []struct {
		name    string
		changes []*cdc.Change
		put     []bool // Put's answer per change; all true when nil
		rows    int    // Rows() before the drain
		want    *want  // users' net changes; nil: nothing to write
	}{{
		name:    "insert then delete is nothing",
		changes: []*cdc.Change{ins(users, "1", "ann", "x"), del(users, "1", "NULL", "NULL")},
		rows:    1, // held until drained
	}, {
		name:    "insert then updates is one insert of the last image",
		changes: []*cdc.Change{ins(users, "1", "ann", "x"), upd(users, "1", "bob", "y"), upd(users, "1", "cy", "z")},
		rows:    1,
		want:    &want{inserts: []string{"1,cy,z"}},
	}, {
		name:    "an unchanged value keeps the inserted one",
		changes: []*cdc.Change{ins(users, "1", "ann", "long"), upd(users, "1", "bob", "~")},
		rows:    1,
		want:    &want{inserts: []string{"1,bob,long"}},
	}, {
		name:    "an unchanged value keeps an earlier update's",
		changes: []*cdc.Change{upd(users, "1", "ann", "long"), upd(users, "1", "bob", "~")},
		rows:    1,
		want:    &want{updates: []string{"1,bob,long"}},
	}, {
		name:    "a value no update set stays unchanged",
		changes: []*cdc.Change{upd(users, "1", "ann", "~"), upd(users, "1", "bob", "~")},
		rows:    1,
		want:    &want{updates: []string{"1,bob,~"}},
	}, {
		name:    "update then delete is a delete",
		changes: []*cdc.Change{upd(users, "1", "ann", "x"), del(users, "1", "NULL", "NULL")},
		rows:    1,
		want:    &want{deletes: []string{"1,NULL,NULL"}},
	}, {
		name:    "delete then insert is a delete and an insert",
		changes: []*cdc.Change{del(users, "1", "NULL", "NULL"), ins(users, "1", "ann", "x")},
		rows:    1,
		want:    &want{deletes: []string{"1,NULL,NULL"}, inserts: []string{"1,ann,x"}},
	}, {
		name:    "delete, insert, update is a delete and an insert of the merged image",
		changes: []*cdc.Change{del(users, "1", "NULL", "NULL"), ins(users, "1", "ann", "x"), upd(users, "1", "bob", "~")},
		rows:    1,
		want:    &want{deletes: []string{"1,NULL,NULL"}, inserts: []string{"1,bob,x"}},
	}, {
		name:    "delete, insert, delete is a delete",
		changes: []*cdc.Change{del(users, "1", "NULL", "NULL"), ins(users, "1", "ann", "x"), del(users, "1", "NULL", "NULL")},
		rows:    1,
		want:    &want{deletes: []string{"1,NULL,NULL"}},
	}, {
		name:    "deleted and inserted again after an insert and a delete",
		changes: []*cdc.Change{ins(users, "1", "ann", "x"), del(users, "1", "NULL", "NULL"), ins(users, "1", "bob", "y")},
		rows:    2, // the first insert is held until drained
		want:    &want{inserts: []string{"1,bob,y"}},
	}, {
		name:    "the kinds come deletes, updates, inserts, each in first-change order",
		changes: []*cdc.Change{ins(users, "3", "c", "z"), upd(users, "2", "b", "y"), del(users, "5", "NULL", "NULL"), ins(users, "4", "d", "w"), del(users, "1", "NULL", "NULL"), upd(users, "6", "f", "v")},
		rows:    6,
		want:    &want{deletes: []string{"5,NULL,NULL", "1,NULL,NULL"}, updates: []string{"2,b,y", "6,f,v"}, inserts: []string{"3,c,z", "4,d,w"}},
	}, {
		name:    "a NULL key is a key",
		changes: []*cdc.Change{ins(users, "NULL", "ann", "x"), upd(users, "NULL", "bob", "~")},
		rows:    1,
		want:    &want{inserts: []string{"NULL,bob,x"}},
	}, {
		name:    "keys are told apart whatever their text",
		changes: []*cdc.Change{ins(table("pairs", "a*", "b*", "v"), "1:2", "3", "x"), ins(table("pairs", "a*", "b*", "v"), "1", "2:3", "y")},
		rows:    2,
	}, {
		name:    "insert after insert cannot be netted",
		changes: []*cdc.Change{ins(users, "1", "ann", "x"), ins(users, "1", "bob", "y")},
		put:     []bool{true, false},
		rows:    1,
		want:    &want{inserts: []string{"1,ann,x"}},
	}, {
		name:    "insert after update cannot be netted",
		changes: []*cdc.Change{upd(users, "1", "ann", "x"), ins(users, "1", "bob", "y")},
		put:     []bool{true, false},
		rows:    1,
		want:    &want{updates: []string{"1,ann,x"}},
	}, {
		name:    "update after delete cannot be netted",
		changes: []*cdc.Change{del(users, "1", "NULL", "NULL"), upd(users, "1", "ann", "x")},
		put:     []bool{true, false},
		rows:    1,
		want:    &want{deletes: []string{"1,NULL,NULL"}},
	}, {
		name:    "delete after delete cannot be netted",
		changes: []*cdc.Change{del(users, "1", "NULL", "NULL"), del(users, "1", "NULL", "NULL")},
		put:     []bool{true, false},
		rows:    1,
		want:    &want{deletes: []string{"1,NULL,NULL"}},
	}, {
		name:    "a row with an unchanged key is not netted",
		changes: []*cdc.Change{upd(users, "~", "ann", "x")},
		put:     []bool{false},
	}, {
		name:    "a table without a key is not netted",
		changes: []*cdc.Change{ins(table("log", "at", "msg"), "1", "x")},
		put:     []bool{false},
	}, {
		name:    "a table identified by its whole row is not netted",
		changes: []*cdc.Change{ins(table("tags", "a*", "b*"), "1", "x")},
		put:     []bool{false},
	}, {
		name: "an update of the key is not netted",
		changes: []*cdc.Change{ins(users, "1", "ann", "x"),
			{Op: cdc.Update, Rel: users, Old: row("1", "NULL", "NULL"), New: row("2", "ann", "x")}},
		put:  []bool{true, false},
		rows: 1,
		want: &want{inserts: []string{"1,ann,x"}},
	}, {
		name:    "a truncate is not netted",
		changes: []*cdc.Change{{Op: cdc.Truncate, Rel: users, Truncated: []*cdc.Relation{users}}},
		put:     []bool{false},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var n Net
			for i, c := range tc.changes {
				want := tc.put == nil || tc.put[i]
				if got := n.Put(c); got != want {
					t.Fatalf("Put of change %d (%s) = %v, want %v", i, c.Op, got, want)
				}
			}
			if n.Rows() != tc.rows {
				t.Errorf("Rows() = %d, want %d", n.Rows(), tc.rows)
			}
			var users []*TableChanges
			for _, d := range n.Drain(nil) {
				if d.Rel.Name == "users" {
					users = append(users, d)
				}
			}
			switch {
			case tc.want == nil && len(users) > 0:
				t.Errorf("net changes %+v, want none", got(users[0]))
			case tc.want != nil && len(users) != 1:
				t.Errorf("%d tables of net changes, want users'", len(users))
			case tc.want != nil && !equal(got(users[0]), *tc.want):
				t.Errorf("net changes\n%+v, want\n%+v", got(users[0]), *tc.want)
			}
			if n.Rows() != 0 {
				t.Errorf("Rows() after Drain(nil) = %d, want 0", n.Rows())
			}
		})
	}
}

func equal(a, b want) bool {
	return slices.Equal(a.deletes, b.deletes) && slices.Equal(a.updates, b.updates) && slices.Equal(a.inserts, b.inserts)
}

// TestNetLast checks that a row remembers its last change, which messages name.
func TestNetLast(t *testing.T) {
	var n Net
	first, last := ins(users, "1", "ann", "x"), upd(users, "1", "bob", "~")
	n.Put(first)
	n.Put(last)
	n.Put(ins(users, "1", "cy", "z")) // refused: not the row's last change
	d := n.Drain(nil)
	if len(d) != 1 || len(d[0].Inserts) != 1 || d[0].Inserts[0].Last != last {
		t.Fatalf("the row's last change is not the update")
	}
}

// names lists drained tables' names.
func names(tcs []*TableChanges) []string {
	var s []string
	for _, tc := range tcs {
		s = append(s, tc.Rel.Name)
	}
	return s
}

func TestNetDrain(t *testing.T) {
	// Rows netted per table: users 2, orders 1, items 3.
	fill := func(n *Net) {
		for _, c := range []*cdc.Change{
			ins(users, "1", "ann", "x"), ins(orders, "1", "10"), upd(users, "2", "bob", "y"),
			ins(items, "1", "1"), ins(items, "2", "1"), del(items, "3", "NULL"), upd(users, "1", "cy", "~"),
		} {
			if !n.Put(c) {
				t.Fatalf("Put(%s on %s) = false", c.Op, c.Rel.Name)
			}
		}
	}
	for _, tc := range []struct {
		name    string
		only    []*cdc.Relation
		drained []string // in order
		rows    int      // left
		rest    []string // what a later Drain(nil) gives, in order
	}{
		{name: "all", only: nil, drained: []string{"users", "orders", "items"}, rows: 0},
		{name: "one", only: []*cdc.Relation{orders}, drained: []string{"orders"}, rows: 5, rest: []string{"users", "items"}},
		{name: "some, in the order asked", only: []*cdc.Relation{items, users}, drained: []string{"items", "users"}, rows: 1, rest: []string{"orders"}},
		{name: "a table with nothing netted", only: []*cdc.Relation{table("other", "id*", "v")}, rows: 6, rest: []string{"users", "orders", "items"}},
		{name: "none", only: []*cdc.Relation{}, rows: 6, rest: []string{"users", "orders", "items"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n Net
			fill(&n)
			if n.Rows() != 6 {
				t.Fatalf("Rows() = %d after the fill, want 6", n.Rows())
			}
			if got := names(n.Drain(tc.only)); !slices.Equal(got, tc.drained) {
				t.Errorf("Drain = %v, want %v", got, tc.drained)
			}
			if n.Rows() != tc.rows {
				t.Errorf("Rows() = %d after the drain, want %d", n.Rows(), tc.rows)
			}
			if got := names(n.Drain(nil)); !slices.Equal(got, tc.rest) {
				t.Errorf("then Drain(nil) = %v, want %v", got, tc.rest)
			}
		})
	}
}

// TestNetDrainedTableAgain checks that a table drained and changed again comes after
// the tables that kept their changes, and nets afresh (its row inserted again is not
// an insert after an insert).
func TestNetDrainedTableAgain(t *testing.T) {
	var n Net
	n.Put(ins(users, "1", "ann", "x"))
	n.Put(ins(orders, "1", "10"))
	n.Put(ins(items, "1", "1"))
	n.Drain([]*cdc.Relation{users})
	if !n.Put(ins(users, "1", "bob", "y")) {
		t.Fatal("Put of a drained row = false")
	}
	d := n.Drain(nil)
	if got, want := names(d), []string{"orders", "items", "users"}; !slices.Equal(got, want) {
		t.Fatalf("Drain(nil) = %v, want %v", got, want)
	}
	if got := show(d[2].Inserts[0].Image); got != "1,bob,y" {
		t.Errorf("users' insert = %s, want 1,bob,y", got)
	}
}

func TestNetRows(t *testing.T) {
	var n Net
	steps := []struct {
		do   func()
		rows int
	}{
		{func() { n.Put(ins(users, "1", "ann", "x")) }, 1},
		{func() { n.Put(upd(users, "1", "bob", "y")) }, 1},       // the same row
		{func() { n.Put(ins(users, "1", "cy", "z")) }, 1},        // refused
		{func() { n.Put(ins(orders, "1", "10")) }, 2},            // another table
		{func() { n.Put(del(users, "1", "NULL", "NULL")) }, 2},   // netted away, held until drained
		{func() { n.Put(ins(users, "1", "dee", "w")) }, 3},       // a new row for the same key
		{func() { n.Drain([]*cdc.Relation{orders}) }, 2},         // orders' one row
		{func() { n.Put(upd(users, "~", "eve", "v")) }, 2},       // refused: unchanged key
		{func() { n.Reset() }, 0},                                //
		{func() { n.Put(del(users, "2", "NULL", "NULL")) }, 1},   // after a reset
		{func() { n.Drain(nil) }, 0},                             //
		{func() { n.Drain([]*cdc.Relation{users, orders}) }, 0},  // nothing to drain
		{func() { n.Put(upd(users, "3", "fay", "~")) }, 1},       // after a drain
		{func() { n.Put(upd(items, "3", "4")) }, 2},              //
		{func() { n.Drain([]*cdc.Relation{items, users}) }, 0},   //
		{func() { n.Put(del(orders, "1", "NULL")) }, 1},          //
		{func() { n.Put(ins(orders, "1", "11")) }, 1},            // deleted and inserted: one row
		{func() { n.Put(upd(orders, "1", "12")) }, 1},            //
		{func() { n.Put(del(orders, "1", "NULL")) }, 1},          //
		{func() { n.Put(del(orders, "1", "NULL")) }, 1},          // refused
		{func() { n.Drain([]*cdc.Relation{orders, orders}) }, 0}, // named twice
	}
	for i, s := range steps {
		s.do()
		if n.Rows() != s.rows {
			t.Fatalf("step %d: Rows() = %d, want %d", i, n.Rows(), s.rows)
		}
	}
}

func TestNetZeroDrain(t *testing.T) {
	var n Net
	if d := n.Drain(nil); d != nil {
		t.Errorf("Drain(nil) of an empty Net = %v, want nil", names(d))
	}
	if d := n.Drain([]*cdc.Relation{users}); d != nil {
		t.Errorf("Drain(users) of an empty Net = %v, want nil", names(d))
	}
}
