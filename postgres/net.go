package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/cutover-dev/cutover/apply"
	"github.com/cutover-dev/cutover/cdc"
)

// netBuffer holds the net changes of the open group (apply.Net explains netting) and
// writes them as PostgreSQL statements: a table's deletes, updates and inserts each
// as one statement over arrays of the rows' values.
type netBuffer struct{ apply.Net }

// netTable is a table whose net changes are written: the stream's relation and the
// target's table.
type netTable struct {
	rel *cdc.Relation
	tt  *targetTable
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
	// A change whose foreign keys' actions the target makes goes in source order:
	// after every change netted before it.
	if a.cascadesFrom(c) {
		if err := a.net.drain(ctx, a, nil); err != nil {
			return err
		}
		return a.queue(ctx, c, pos)
	}
	// An update rewritten as a delete and insert (an identity column) is not netted.
	rewrite := c.Op == cdc.Update && needsRewrite(c, tt)
	if rewrite || !a.net.Put(c) {
		if err := a.net.drain(ctx, a, []*cdc.Relation{c.Rel}); err != nil {
			return err
		}
		return a.queue(ctx, c, pos)
	}
	if a.net.Rows() >= apply.MaxNetRows {
		return a.net.drain(ctx, a, nil)
	}
	return nil
}

// drain queues the netted changes of the given tables (all when nil) and forgets them.
func (n *netBuffer) drain(ctx context.Context, a *applier, only []*cdc.Relation) error {
	tables := n.Drain(only)
	if len(tables) == 0 {
		return nil
	}
	pos := a.txnPos // a failure sends the group up to here to be applied change by change
	for _, tc := range tables {
		// The table as when its changes were netted: the targets are forgotten only
		// with the netted changes (attach).
		tt, err := a.target(ctx, tc.Rel)
		if err != nil {
			return err
		}
		if err := a.queueNet(ctx, &netTable{rel: tc.Rel, tt: tt}, tc, pos); err != nil {
			return err
		}
	}
	return nil
}

// queueNet writes a table's net changes: deletes, updates, then inserts, a kind of
// change with more than one row as one statement.
func (a *applier) queueNet(ctx context.Context, t *netTable, tc *apply.TableChanges, pos string) error {
	one := func(c *cdc.Change) error {
		if err := a.queue(ctx, c, pos); err != nil {
			return err
		}
		return a.flushIfFull(ctx)
	}
	if len(tc.Deletes) > 1 {
		if err := a.queueDeletes(ctx, t, tc.Deletes, pos); err != nil {
			return err
		}
	} else {
		for _, r := range tc.Deletes {
			if err := one(&cdc.Change{Op: cdc.Delete, Rel: t.rel, Old: r.Key}); err != nil {
				return err
			}
		}
	}
	if len(tc.Updates) > 1 {
		if err := a.queueUpdates(ctx, t, tc.Updates, pos); err != nil {
			return err
		}
	} else {
		for _, r := range tc.Updates {
			if err := one(&cdc.Change{Op: cdc.Update, Rel: t.rel, New: r.Image}); err != nil {
				return err
			}
		}
	}
	if len(tc.Inserts) == 1 {
		return one(&cdc.Change{Op: cdc.Insert, Rel: t.rel, New: tc.Inserts[0].Image})
	}
	if len(tc.Inserts) > 0 {
		return a.queueInserts(ctx, t, tc.Inserts, pos)
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
func arrays(rows []*apply.Row, cols []int, key bool) [][]byte {
	params := make([][]byte, len(cols))
	for p, i := range cols {
		params[p] = textArray(len(rows), func(j int) cdc.Value {
			if key {
				return rows[j].Key[i]
			}
			return rows[j].Image[i]
		})
	}
	return params
}

// queueMulti queues a statement over many rows, prepared once per shape.
func (a *applier) queueMulti(ctx context.Context, t *netTable, shape string, sql func() string, params [][]byte, op cdc.Op, rows []*apply.Row, pos string) error {
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
	a.queued = append(a.queued, queued{op: op, rel: t.rel, pos: pos, change: rows[0].Last, rows: int64(len(rows))})
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
func (a *applier) queueDeletes(ctx context.Context, t *netTable, rows []*apply.Row, pos string) error {
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
func (a *applier) queueUpdates(ctx context.Context, t *netTable, rows []*apply.Row, pos string) error {
	keys := keyColumns(t.rel)
	type group struct {
		sets []int
		rows []*apply.Row
	}
	var order []string
	groups := map[string]*group{}
	for _, r := range rows {
		var sets []int
		mask := make([]byte, len(r.Image))
		for i, v := range r.Image {
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
func (a *applier) queueInserts(ctx context.Context, t *netTable, rows []*apply.Row, pos string) error {
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
		params[i] = textArray(len(rows), func(j int) cdc.Value { return rows[j].Image[i] })
	}
	a.batch.ExecPrepared(name, params, nil, nil)
	a.queued = append(a.queued, queued{op: cdc.Insert, rel: t.rel, pos: pos, change: rows[0].Last, rows: int64(len(rows))})
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
