package postgres

import (
	"slices"
	"strings"

	"github.com/cutover-dev/cutover/cdc"
)

// Dirty keys: the applier records, in the same target transaction as the changes, the
// keys of the rows a group changed (validation_dirty), so an incremental validation
// rereads exactly those rows, and a crash loses none of them. A group writes one row
// per table: the key's column names and every key's values in one flat array (key i's
// column j at i*len(columns)+j). A row whose keys are NULL marks the whole table (a
// truncate, or a table without a key the stream names).

// dirtyFlushKeys: a table's keys are written once this many gather in the open target
// transaction (a huge source transaction is applied with bounded memory all the same:
// a few megabytes). A validation reads one group's keys as they are, several merged.
const dirtyFlushKeys = 50_000

// dirtyTable is the keys of one table a group changed.
type dirtyTable struct {
	rel     *cdc.Relation       // the relation the keys were taken with
	columns []string            // its key columns
	keys    map[string]struct{} // each key's values joined by NUL (text holds none)
	whole   bool                // every row: the keys are not kept
}

type dirtySet map[[2]string]*dirtyTable

func (d dirtySet) table(k [2]string) *dirtyTable {
	t := d[k]
	if t == nil {
		t = &dirtyTable{keys: map[string]struct{}{}}
		d[k] = t
	}
	return t
}

// size is how many keys of a table are kept.
func (d dirtySet) size(k [2]string) int {
	if t := d[k]; t != nil {
		return len(t.keys)
	}
	return 0
}

func (t *dirtyTable) markWhole() {
	t.whole = true
	clear(t.keys)
}

// markChange records the rows a change touches.
func (d dirtySet) markChange(c *cdc.Change) {
	if c.Op == cdc.Truncate {
		for _, r := range c.Truncated {
			d.table([2]string{r.Schema, r.Name}).markWhole()
		}
		return
	}
	t := d.table([2]string{c.Rel.Schema, c.Rel.Name})
	for _, row := range []cdc.Row{c.Old, c.New} {
		if row != nil {
			t.add(c.Rel, row)
		}
	}
}

// add records a row's key; a row without a usable key marks the whole table.
func (t *dirtyTable) add(rel *cdc.Relation, row cdc.Row) {
	if t.whole {
		return
	}
	if rel != t.rel {
		var cols []string
		for _, col := range rel.Columns {
			if col.Key {
				cols = append(cols, col.Name)
			}
		}
		// No key, or every column (replica identity full): the rows cannot be told
		// apart by a key. A key that changed within the group: the rows are recorded
		// whole rather than under two keys.
		if len(cols) == 0 || len(cols) == len(rel.Columns) || (t.rel != nil && !slices.Equal(cols, t.columns)) {
			t.markWhole()
			return
		}
		t.rel, t.columns = rel, cols
	}
	var b strings.Builder
	n := 0
	for i, col := range rel.Columns {
		if !col.Key {
			continue
		}
		v := row[i]
		if v.Null || v.Unchanged {
			t.markWhole()
			return
		}
		if n > 0 {
			b.WriteByte(0)
		}
		b.Write(v.Text)
		n++
	}
	t.keys[b.String()] = struct{}{}
}

// flatKeys is the table's keys, key after key, each one's values in column order; nil
// when the whole table is marked.
func (t *dirtyTable) flatKeys() []string {
	if t.whole {
		return nil
	}
	out := make([]string, 0, len(t.keys)*len(t.columns))
	for k := range t.keys {
		if len(t.columns) == 1 {
			out = append(out, k)
			continue
		}
		out = append(out, strings.Split(k, "\x00")...)
	}
	return out
}
