package mysql

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/validate"
)

// Repair copies rows again from the source to the target (cutover validate --repair):
// at a new point whose hold of the applier is kept while it writes, the rows with
// these keys are read in the source's view and written over the target's (deleted by
// key, inserted as the source has them: a row the source does not have stays
// deleted). The applier, held at the point, goes on after: the changes made on the
// source since land on top. In the same transaction the target's state row is locked,
// so that an applier that did not answer the hold (idle) cannot commit meanwhile, and
// the table's last change is read again: a table changed after the point is not
// repaired this time (repaired false).
func (v *validator) Repair(ctx context.Context, t *validate.Table, keys [][]string) (repaired bool, err error) {
	if len(t.Key) == 0 {
		return false, fmt.Errorf("table %s: no key to find the rows to repair by", t.Name)
	}
	v.keepHold = true
	defer func() {
		v.keepHold = false
		if eerr := v.EndPoint(context.WithoutCancel(ctx)); err == nil {
			err = eerr
		}
	}()
	if err := v.newPoint(ctx, t); err != nil {
		return false, err
	}
	// The columns as the copy reads and writes them: generated ones left out.
	view := v.source.conn
	cp, err := planCopy(ctx, view, []tableName{{v.srcDB, t.Name}}, v.tgtDB, 1)
	if err != nil {
		return false, fmt.Errorf("source: table %s: read its columns: %w", t.Name, err)
	}
	spec := cp.specs[cp.tables[0]]
	rel := &cdc.Relation{Schema: t.Schema, Name: t.Name}
	reads := make([]string, len(spec.cols))
	for i, c := range spec.cols {
		reads[i] = c.read
		rel.Columns = append(rel.Columns, cdc.Column{Name: c.raw, Key: slices.Contains(t.Key, c.raw)})
	}
	src := &myReader{side: &v.source, sql: newReaderSQL(t, v.shapes[0][t.Name])}
	var images []cdc.Row
	for start := 0; start < len(keys); start += keysPerStatement {
		in, args := src.sql.inKeys(keys[start:min(start+keysPerStatement, len(keys))])
		rows, err := view.QueryContext(ctx, "SELECT "+strings.Join(reads, ", ")+" FROM "+spec.qname+" WHERE "+in, args...)
		if err != nil {
			return false, fmt.Errorf("source: table %s: read the rows to repair: %w", t.Name, err)
		}
		for rows.Next() {
			vals := make([]*[]byte, len(reads))
			dest := make([]any, len(reads))
			for i := range vals {
				dest[i] = &vals[i]
			}
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return false, err
			}
			row := make(cdc.Row, len(vals))
			for i, b := range vals {
				if b == nil {
					row[i] = cdc.Value{Null: true}
				} else {
					row[i] = cdc.Value{Text: *b}
				}
			}
			images = append(images, row)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return false, err
		}
	}
	a := newApplier(v.tgt, v.tgtDB, v.tgtMaria, v.ctl, "")
	if err := a.Connect(ctx); err != nil {
		return false, err
	}
	defer a.Disconnect(ctx)
	if a.tx, err = a.conn.BeginTx(ctx, nil); err != nil {
		return false, err
	}
	var changed string
	if err := a.tx.QueryRowContext(ctx, "SELECT s.changed_position FROM "+v.ctl.table("state")+" st JOIN "+v.ctl.table("table_stats")+
		" s ON s.schema_name = ? AND s.table_name = ? WHERE st.id = 1 FOR UPDATE", t.Schema, t.Name).Scan(&changed); err != nil {
		return false, fmt.Errorf("target: lock the applied position: %w", err)
	}
	if changed != "" {
		if in, err := covers(v.pointPos, changed, v.srcMaria); err != nil || !in {
			return false, err // changed after the point
		}
	}
	tt, err := a.table(ctx, rel)
	if err != nil {
		return false, err
	}
	for start := 0; start < len(keys); start += keysPerStatement {
		batch := keys[start:min(start+keysPerStatement, len(keys))]
		var match []string
		var args []any
		for _, k := range batch {
			key := make(cdc.Row, len(rel.Columns))
			for j, name := range t.Key {
				key[slices.IndexFunc(rel.Columns, func(c cdc.Column) bool { return c.Name == name })] = cdc.Value{Text: []byte(k[j])}
			}
			m, margs := tt.matchKey(key)
			match, args = append(match, "("+m+")"), append(args, margs...)
		}
		if _, err := a.tx.ExecContext(ctx, "DELETE FROM "+tt.qname+" WHERE "+strings.Join(match, " OR "), args...); err != nil {
			return false, fmt.Errorf("target: table %s: delete the rows to repair: %w", t.Name, err)
		}
	}
	for start := 0; start < len(images); start += keysPerStatement {
		if err := a.insert(ctx, tt, images[start:min(start+keysPerStatement, len(images))]); err != nil {
			return false, fmt.Errorf("target: table %s: write the rows repaired: %w", t.Name, err)
		}
	}
	if err := a.tx.Commit(); err != nil {
		return false, err
	}
	a.tx = nil
	return true, nil
}
