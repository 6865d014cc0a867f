package apply

import (
	"strconv"
	"strings"

	"github.com/cutover-dev/cutover/cdc"
)

// A group of source transactions commits as one target transaction, so only its net
// effect on each row is visible: a row updated a thousand times in the group is
// written once, a row inserted then deleted not at all, and the inserts of a table go
// in one statement. This is AWS DMS's batch apply, and what lets the applier keep up
// with a busy source.
//
// Tables are independent (foreign keys and user triggers do not fire for replicated
// rows), so each table's changes are applied together, in this order: deletes, then
// updates, then inserts. A row keyed the same way on the source cannot conflict with
// another under that order, except through a unique index outside the key (two rows
// swapping values); such a group fails, and is applied again change by change.
//
// Only changes that name their row by a key are netted: a table identified by its
// whole row (REPLICA IDENTITY FULL), an update that changes the key, and an update
// the target engine writes another way (PostgreSQL rewrites one that sets an identity
// column) go straight to the target, after what the table had netted so far.

// MaxNetRows bounds the rows netted before they are written: a huge source
// transaction is applied with bounded memory all the same.
const MaxNetRows = 5000

type netState byte

const (
	netInsert       netState = iota + 1 // not on the target before the group
	netUpdate                           // on the target, changed
	netDelete                           // on the target, deleted
	netDeleteInsert                     // on the target, deleted, inserted again
)

// Row is a row's net change.
type Row struct {
	Key   cdc.Row     // the key columns' values (other columns NULL)
	Image cdc.Row     // the row's values after the group (Unchanged where no change set one); nil for a delete
	Last  *cdc.Change // the last change netted into the row, for messages

	state netState
}

// TableChanges are a table's net changes, to be written in this order: Deletes
// (by Key), Updates (Image, found by its key), Inserts (Image). A row deleted and
// inserted again is in Deletes and in Inserts.
type TableChanges struct {
	Rel                       *cdc.Relation
	Deletes, Updates, Inserts []*Row
}

type netTable struct {
	rel   *cdc.Relation
	rows  map[string]*Row
	order []*Row // rows in the order of their first change, netted-away ones included
}

// Net holds the net changes of the open group, by table. The zero value is empty and
// ready to use.
type Net struct {
	tables map[*cdc.Relation]*netTable
	order  []*netTable // in the order of their first change
	rows   int
}

// Rows is how many rows the group has netted: each row once however often it
// changed, one inserted and deleted again included (it is held until drained). The
// caller drains at MaxNetRows.
func (n *Net) Rows() int { return n.rows }

// Reset forgets every netted change (the group was rolled back).
func (n *Net) Reset() { *n = Net{} }

// Put nets a change into the group. False when it cannot, and nothing changed: a
// change that does not name its row by a key (see nettable), a row whose key the
// stream left out (Unchanged), or a sequence the source cannot have produced (an
// insert of a row already there, an update or delete of one gone), which the target
// then judges change by change. The caller then drains the table and writes the
// change as it is.
func (n *Net) Put(c *cdc.Change) bool {
	if !nettable(c) {
		return false
	}
	ident := c.New
	if c.Op == cdc.Delete {
		ident = c.Old
	}
	key, ok := rowKey(c.Rel, ident)
	if !ok {
		return false
	}
	t := n.table(c.Rel)
	r := t.rows[key]
	switch {
	case r == nil:
		r = &Row{Key: keyOnly(c.Rel, ident)}
		switch c.Op {
		case cdc.Insert:
			r.state, r.Image = netInsert, c.New
		case cdc.Update:
			r.state, r.Image = netUpdate, c.New
		case cdc.Delete:
			r.state = netDelete
		}
		t.rows[key] = r
		t.order = append(t.order, r)
		n.rows++
	case c.Op == cdc.Update && r.state != netDelete:
		r.Image = merge(r.Image, c.New)
	case c.Op == cdc.Delete && r.state == netInsert:
		delete(t.rows, key) // inserted and deleted within the group: nothing to write
		r.state = 0
	case c.Op == cdc.Delete && (r.state == netUpdate || r.state == netDeleteInsert):
		r.state, r.Image = netDelete, nil
	case c.Op == cdc.Insert && r.state == netDelete:
		r.state, r.Image = netDeleteInsert, c.New
	default:
		return false
	}
	r.Last = c
	return true
}

// table is the netted changes of rel, new when it has none.
func (n *Net) table(rel *cdc.Relation) *netTable {
	if n.tables == nil {
		n.tables = map[*cdc.Relation]*netTable{}
	}
	t := n.tables[rel]
	if t == nil {
		t = &netTable{rel: rel, rows: map[string]*Row{}}
		n.tables[rel] = t
		n.order = append(n.order, t)
	}
	return t
}

// nettable says whether a change names its row by a key: the table has a key that is
// not its whole row, and an update does not change it.
func nettable(c *cdc.Change) bool {
	keyed, full := false, true
	for _, col := range c.Rel.Columns {
		keyed = keyed || col.Key
		full = full && col.Key
	}
	if !keyed || full {
		return false
	}
	switch c.Op {
	case cdc.Insert, cdc.Delete:
		return true
	case cdc.Update:
		return c.Old == nil
	}
	return false
}

// rowKey is the key columns' values, unambiguous (each length-prefixed).
func rowKey(rel *cdc.Relation, r cdc.Row) (string, bool) {
	var b strings.Builder
	for i, col := range rel.Columns {
		if !col.Key {
			continue
		}
		v := r[i]
		switch {
		case v.Unchanged:
			return "", false
		case v.Null:
			b.WriteString("N;")
		default:
			b.WriteString(strconv.Itoa(len(v.Text)))
			b.WriteByte(':')
			b.Write(v.Text)
		}
	}
	return b.String(), true
}

// keyOnly keeps a row's key columns.
func keyOnly(rel *cdc.Relation, r cdc.Row) cdc.Row {
	k := make(cdc.Row, len(r))
	for i, col := range rel.Columns {
		if col.Key {
			k[i] = r[i]
		} else {
			k[i] = cdc.Value{Null: true}
		}
	}
	return k
}

// merge lays a later image over an earlier one: a value the later change left
// unchanged keeps the earlier one.
func merge(earlier, later cdc.Row) cdc.Row {
	out := make(cdc.Row, len(later))
	for i, v := range later {
		if v.Unchanged && earlier != nil {
			out[i] = earlier[i]
		} else {
			out[i] = v
		}
	}
	return out
}

// Drain takes the net changes of the given tables (every table when only is nil)
// and forgets them; the other tables keep theirs, in their order. The tables come in
// the order of only, or, for all, in the order of their first change; a table with
// nothing left to write (its rows inserted and deleted again) is left out.
func (n *Net) Drain(only []*cdc.Relation) []*TableChanges {
	if n.rows == 0 {
		return nil
	}
	var tables []*netTable
	if only == nil {
		tables = n.order
		n.Reset()
	} else {
		tables = n.take(only)
	}
	var out []*TableChanges
	for _, t := range tables {
		if tc := t.split(); tc != nil {
			out = append(out, tc)
		}
	}
	return out
}

// take removes the given tables from the group, returning those it had.
func (n *Net) take(only []*cdc.Relation) []*netTable {
	var tables []*netTable
	for _, rel := range only {
		if t := n.tables[rel]; t != nil {
			tables = append(tables, t)
			delete(n.tables, rel)
			n.rows -= len(t.order)
		}
	}
	if len(tables) == 0 {
		return nil
	}
	kept := n.order[:0]
	for _, t := range n.order {
		if n.tables[t.rel] != nil {
			kept = append(kept, t)
		}
	}
	clear(n.order[len(kept):]) // drop the taken tables' references
	n.order = kept
	return tables
}

// split sorts a table's rows into deletes, updates and inserts, each in the order of
// the rows' first change; nil when there is nothing to write.
func (t *netTable) split() *TableChanges {
	tc := &TableChanges{Rel: t.rel}
	for _, r := range t.order {
		switch r.state {
		case netDelete:
			tc.Deletes = append(tc.Deletes, r)
		case netDeleteInsert:
			tc.Deletes, tc.Inserts = append(tc.Deletes, r), append(tc.Inserts, r)
		case netUpdate:
			tc.Updates = append(tc.Updates, r)
		case netInsert:
			tc.Inserts = append(tc.Inserts, r)
		}
	}
	if len(tc.Deletes)+len(tc.Updates)+len(tc.Inserts) == 0 {
		return nil
	}
	return tc
}
