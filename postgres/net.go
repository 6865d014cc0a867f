package postgres

import (
	"context"
	"fmt"
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
// rewritten for an identity column go straight to the target, after what the table
// had netted so far.

// netMaxRows bounds the rows netted before they are written: a huge source
// transaction is applied with bounded memory all the same.
const netMaxRows = 5000

type netState byte

const (
	netInsert       netState = iota + 1 // not on the target before the group
	netUpdate                           // on the target, changed
	netDelete                           // on the target, deleted
	netDeleteInsert                     // on the target, deleted, inserted again
)

type netRow struct {
	state netState
	key   cdc.Row // the key columns' values (other columns NULL)
	image cdc.Row // the row's values after the group (Unchanged where no change set one)
	last  *cdc.Change
}

type netTable struct {
	rel   *cdc.Relation
	tt    *targetTable
	rows  map[string]*netRow
	order []*netRow
}

// netBuffer holds the net changes of the open group.
type netBuffer struct {
	tables map[*cdc.Relation]*netTable
	order  []*netTable
	rows   int
}

func (n *netBuffer) reset() {
	n.tables, n.order, n.rows = nil, nil, 0
}

// nettable says whether a change can be netted.
func nettable(c *cdc.Change, tt *targetTable) bool {
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
		return c.Old == nil && !needsRewrite(c, tt)
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

// add nets a change into the group, or queues it as it is.
func (a *applier) add(ctx context.Context, c *cdc.Change, pos string) error {
	if c.Op == cdc.Truncate {
		if err := a.net.drain(ctx, a, c.Truncated); err != nil {
			return err
		}
		return a.queue(ctx, c, pos)
	}
	tt, err := a.target(ctx, c.Rel)
	if err != nil {
		return err
	}
	if !nettable(c, tt) || !a.net.put(c, tt) {
		if err := a.net.drain(ctx, a, []*cdc.Relation{c.Rel}); err != nil {
			return err
		}
		return a.queue(ctx, c, pos)
	}
	if a.net.rows >= netMaxRows {
		return a.net.drain(ctx, a, nil)
	}
	return nil
}

// put nets a change; false when it cannot (a sequence the source cannot have
// produced, which the target then judges change by change).
func (n *netBuffer) put(c *cdc.Change, tt *targetTable) bool {
	ident := c.New
	if c.Op == cdc.Delete {
		ident = c.Old
	}
	key, ok := rowKey(c.Rel, ident)
	if !ok {
		return false
	}
	if n.tables == nil {
		n.tables = map[*cdc.Relation]*netTable{}
	}
	t := n.tables[c.Rel]
	if t == nil {
		t = &netTable{rel: c.Rel, tt: tt, rows: map[string]*netRow{}}
		n.tables[c.Rel] = t
		n.order = append(n.order, t)
	}
	r := t.rows[key]
	switch {
	case r == nil:
		r = &netRow{key: keyOnly(c.Rel, ident)}
		switch c.Op {
		case cdc.Insert:
			r.state, r.image = netInsert, c.New
		case cdc.Update:
			r.state, r.image = netUpdate, c.New
		case cdc.Delete:
			r.state = netDelete
		}
		t.rows[key] = r
		t.order = append(t.order, r)
		n.rows++
	case c.Op == cdc.Update && r.state != netDelete:
		r.image = merge(r.image, c.New)
	case c.Op == cdc.Delete && r.state == netInsert:
		delete(t.rows, key) // inserted and deleted within the group: nothing to write
		r.state = 0
	case c.Op == cdc.Delete && (r.state == netUpdate || r.state == netDeleteInsert):
		r.state, r.image = netDelete, nil
	case c.Op == cdc.Insert && r.state == netDelete:
		r.state, r.image = netDeleteInsert, c.New
	default:
		return false
	}
	r.last = c
	return true
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

// drain queues the netted changes of the given tables (all when nil) and forgets them.
func (n *netBuffer) drain(ctx context.Context, a *applier, only []*cdc.Relation) error {
	if n.rows == 0 {
		return nil
	}
	var tables []*netTable
	if only == nil {
		tables, n.order, n.tables, n.rows = n.order, nil, nil, 0
	} else {
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
		n.order = kept
	}
	pos := a.txnLSN.String() // a failure sends the group up to here to be applied change by change
	for _, t := range tables {
		if err := t.queue(ctx, a, pos); err != nil {
			return err
		}
	}
	return nil
}

// queue writes a table's net changes: deletes, updates, then inserts.
func (t *netTable) queue(ctx context.Context, a *applier, pos string) error {
	var inserts []*netRow
	one := func(c *cdc.Change) error {
		if err := a.queue(ctx, c, pos); err != nil {
			return err
		}
		return a.flushIfFull(ctx)
	}
	var deletes, updates []*netRow
	for _, r := range t.order {
		switch r.state {
		case netDelete:
			deletes = append(deletes, r)
		case netDeleteInsert:
			deletes, inserts = append(deletes, r), append(inserts, r)
		case netUpdate:
			updates = append(updates, r)
		case netInsert:
			inserts = append(inserts, r)
		}
	}
	if len(deletes) > 1 {
		if err := a.queueDeletes(ctx, t, deletes, pos); err != nil {
			return err
		}
	} else {
		for _, r := range deletes {
			if err := one(&cdc.Change{Op: cdc.Delete, Rel: t.rel, Old: r.key}); err != nil {
				return err
			}
		}
	}
	if len(updates) > 1 {
		if err := a.queueUpdates(ctx, t, updates, pos); err != nil {
			return err
		}
	} else {
		for _, r := range updates {
			if err := one(&cdc.Change{Op: cdc.Update, Rel: t.rel, New: r.image}); err != nil {
				return err
			}
		}
	}
	if len(inserts) == 1 {
		return one(&cdc.Change{Op: cdc.Insert, Rel: t.rel, New: inserts[0].image})
	}
	if len(inserts) > 0 {
		return a.queueInserts(ctx, t, inserts, pos)
	}
	return nil
}

// unnestArg is a column's parameter to unnest(): an array of its type, or, for a type
// that cannot be an element of one (targetTable.viaText), an array of text.
func (tt *targetTable) unnestArg(param, i int) string {
	if tt.viaText[i] {
		return fmt.Sprintf("$%d::text[]", param)
	}
	return fmt.Sprintf("$%d::%s[]", param, tt.types[i])
}

// unnested is a column of unnest()'s rows as a value of its type.
func (tt *targetTable) unnested(name string, i int) string {
	if tt.viaText[i] {
		return name + "::" + tt.types[i]
	}
	return name
}

// arrays renders, for each given column, the rows' values (their keys, with key) as
// one array's text.
func arrays(rows []*netRow, cols []int, key bool) [][]byte {
	params := make([][]byte, len(cols))
	for p, i := range cols {
		params[p] = textArray(len(rows), func(j int) cdc.Value {
			if key {
				return rows[j].key[i]
			}
			return rows[j].image[i]
		})
	}
	return params
}

// queueMulti queues a statement over many rows, prepared once per shape.
func (a *applier) queueMulti(ctx context.Context, t *netTable, shape string, sql func() string, params [][]byte, op cdc.Op, rows []*netRow, pos string) error {
	name, ok := t.tt.prepared[shape]
	if !ok {
		q := sql()
		var err error
		if name, err = a.prepare(ctx, q); err != nil {
			return &changeError{fmt.Errorf("%s on %s: prepare %s: %w", op, t.tt.qname, q, err)}
		}
		t.tt.prepared[shape] = name
	}
	a.batch.ExecPrepared(name, params, nil, nil)
	a.queued = append(a.queued, queued{op: op, rel: t.rel, pos: pos, change: rows[0].last, rows: int64(len(rows))})
	for _, p := range params {
		a.batchBytes += len(p)
	}
	return a.flushIfFull(ctx)
}

// keyColumns lists the key columns' indexes.
func keyColumns(rel *cdc.Relation) []int {
	var ks []int
	for i, c := range rel.Columns {
		if c.Key {
			ks = append(ks, i)
		}
	}
	return ks
}

// unnestFrom renders unnest($n::type[], ...) AS v(v0, v1, ...) for the columns, the
// parameters numbered from first.
func unnestFrom(tt *targetTable, cols []int, first int) string {
	casts, names := make([]string, len(cols)), make([]string, len(cols))
	for p, i := range cols {
		casts[p] = tt.unnestArg(first+p, i)
		names[p] = fmt.Sprintf("v%d", i)
	}
	return fmt.Sprintf("unnest(%s) AS v(%s)", strings.Join(casts, ", "), strings.Join(names, ", "))
}

// queueDeletes deletes rows by key in one statement.
func (a *applier) queueDeletes(ctx context.Context, t *netTable, rows []*netRow, pos string) error {
	keys := keyColumns(t.rel)
	sql := func() string {
		conds := make([]string, len(keys))
		for p, i := range keys {
			conds[p] = t.tt.keyEquals(i, t.tt.cols[i], fmt.Sprintf("v.v%d", i))
		}
		return fmt.Sprintf("DELETE FROM ONLY %s USING %s WHERE %s", t.tt.qname, unnestFrom(t.tt, keys, 1), strings.Join(conds, " AND "))
	}
	return a.queueMulti(ctx, t, "multi-delete", sql, arrays(rows, keys, true), cdc.Delete, rows, pos)
}

// queueUpdates updates rows by key, one statement per set of columns they change (a
// TOASTed value an update left unchanged is not set).
func (a *applier) queueUpdates(ctx context.Context, t *netTable, rows []*netRow, pos string) error {
	keys := keyColumns(t.rel)
	type group struct {
		sets []int
		rows []*netRow
	}
	var order []string
	groups := map[string]*group{}
	for _, r := range rows {
		var sets []int
		mask := make([]byte, len(r.image))
		for i, v := range r.image {
			mask[i] = '-'
			if !v.Unchanged && !t.tt.always[i] {
				sets = append(sets, i)
				mask[i] = 's'
			}
		}
		g := groups[string(mask)]
		if g == nil {
			g = &group{sets: sets}
			groups[string(mask)] = g
			order = append(order, string(mask))
		}
		g.rows = append(g.rows, r)
	}
	for _, mask := range order {
		g := groups[mask]
		if len(g.sets) == 0 {
			continue // nothing to set: the row keeps what it has
		}
		cols := append(append([]int(nil), g.sets...), keys...)
		sql := func() string {
			sets := make([]string, len(g.sets))
			for p, i := range g.sets {
				sets[p] = fmt.Sprintf("%s = %s", t.tt.cols[i], t.tt.unnested(fmt.Sprintf("v.v%d", i), i))
			}
			conds := make([]string, len(keys))
			for p, i := range keys {
				conds[p] = t.tt.keyEquals(i, t.tt.qname+"."+t.tt.cols[i], fmt.Sprintf("v.k%d", i))
			}
			// The key columns come twice when they are also set: unnest names them apart.
			return fmt.Sprintf("UPDATE ONLY %s SET %s FROM %s WHERE %s", t.tt.qname, strings.Join(sets, ", "),
				unnestFromNamed(t.tt, g.sets, keys), strings.Join(conds, " AND "))
		}
		if err := a.queueMulti(ctx, t, "multi-update "+mask, sql, arrays(g.rows, cols, false), cdc.Update, g.rows, pos); err != nil {
			return err
		}
	}
	return nil
}

// unnestFromNamed is unnestFrom for an update: the set columns as v<i>, the key
// columns as k<i>.
func unnestFromNamed(tt *targetTable, sets, keys []int) string {
	var casts, names []string
	for _, i := range sets {
		casts = append(casts, tt.unnestArg(len(casts)+1, i))
		names = append(names, fmt.Sprintf("v%d", i))
	}
	for _, i := range keys {
		casts = append(casts, tt.unnestArg(len(casts)+1, i))
		names = append(names, fmt.Sprintf("k%d", i))
	}
	return fmt.Sprintf("unnest(%s) AS v(%s)", strings.Join(casts, ", "), strings.Join(names, ", "))
}

// queueInserts inserts rows in one statement: each column's values go as one array.
func (a *applier) queueInserts(ctx context.Context, t *netTable, rows []*netRow, pos string) error {
	tt := t.tt
	name, ok := tt.prepared["multi-insert"]
	if !ok {
		all := make([]int, len(tt.cols))
		selected := make([]string, len(tt.cols))
		for i := range tt.cols {
			all[i] = i
			selected[i] = tt.unnested(fmt.Sprintf("v.v%d", i), i)
		}
		// The columns named, not *: unnest() expands a composite value into its fields.
		sql := fmt.Sprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s", tt.qname, strings.Join(tt.cols, ", "),
			strings.Join(selected, ", "), unnestFrom(tt, all, 1))
		var err error
		if name, err = a.prepare(ctx, sql); err != nil {
			return &changeError{fmt.Errorf("insert on %s: prepare %s: %w", tt.qname, sql, err)}
		}
		tt.prepared["multi-insert"] = name
	}
	params := make([][]byte, len(tt.cols))
	for i := range tt.cols {
		params[i] = textArray(len(rows), func(j int) cdc.Value { return rows[j].image[i] })
	}
	a.batch.ExecPrepared(name, params, nil, nil)
	a.queued = append(a.queued, queued{op: cdc.Insert, rel: t.rel, pos: pos, change: rows[0].last, rows: int64(len(rows))})
	for _, p := range params {
		a.batchBytes += len(p)
	}
	return a.flushIfFull(ctx)
}

// textArray renders n values as an array's text.
func textArray(n int, value func(i int) cdc.Value) []byte {
	b := []byte{'{'}
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendArrayElement(b, value(i))
	}
	return append(b, '}')
}

// appendArrayElement writes a value as an element of an array's text: NULL, or the
// text double-quoted with backslashes and quotes escaped.
func appendArrayElement(b []byte, v cdc.Value) []byte {
	if v.Null || v.Unchanged {
		return append(b, "NULL"...)
	}
	b = append(b, '"')
	for _, c := range v.Text {
		if c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return append(b, '"')
}
