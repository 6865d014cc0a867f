package mysql

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"

	"github.com/cutover-dev/cutover/cdc"
)

// Changed keys: the applier records, in the same target transaction as a group's
// changes, the keys of the rows it changed in each table (validation_dirty), so that
// an incremental validation compares those rows alone, and a crash loses none. A key
// is its columns' values as the stream reads them (the bytes, or the number of an ENUM,
// SET, BIT or YEAR: the text the validator's keys are read as), each in hex. A table
// whose rows cannot be told by a key (no key, a truncate, a schema change, more than
// dirtyMostKeys in a group) is recorded whole.

// dirtyMostKeys is the most keys of one table a group records; more, and the table
// is recorded whole (a validation would compare all of it anyway).
const dirtyMostKeys = 10_000

// dirtyTable is what a group changed in one table.
type dirtyTable struct {
	columns []string        // the key's columns, as the stream names them
	keys    map[string]bool // each key's columns in hex, joined by commas
	whole   bool
	// the source's changes applied, by kind, for table_stats (cutover status)
	inserts, updates, deletes, truncates int64
}

// dirtySet is what a group changed, by table (source database, name).
type dirtySet map[[2]string]*dirtyTable

func (d dirtySet) table(k [2]string) *dirtyTable {
	t := d[k]
	if t == nil {
		t = &dirtyTable{keys: map[string]bool{}}
		d[k] = t
	}
	return t
}

func (t *dirtyTable) markWhole() {
	t.whole = true
	clear(t.keys)
}

// mark records the rows a change touches.
func (d dirtySet) mark(c *cdc.Change) {
	if c.Op == cdc.Truncate {
		for _, r := range c.Truncated {
			t := d.table([2]string{r.Schema, r.Name})
			t.markWhole()
			t.truncates++
		}
		return
	}
	t := d.table([2]string{c.Rel.Schema, c.Rel.Name})
	switch c.Op {
	case cdc.Insert:
		t.inserts++
	case cdc.Update:
		t.updates++
	case cdc.Delete:
		t.deletes++
	}
	if t.whole {
		return
	}
	for _, row := range []cdc.Row{c.Old, c.New} {
		if row == nil {
			continue
		}
		var parts, cols []string
		for i, col := range c.Rel.Columns {
			if !col.Key {
				continue
			}
			if row[i].Null || row[i].Unchanged {
				t.markWhole()
				return
			}
			parts, cols = append(parts, hex.EncodeToString(row[i].Text)), append(cols, col.Name)
		}
		if t.columns == nil {
			t.columns = cols
		}
		if len(parts) == 0 || len(t.keys) >= dirtyMostKeys || !slices.Equal(cols, t.columns) {
			t.markWhole()
			return
		}
		t.keys[strings.Join(parts, ",")] = true
	}
}

// dirtyRow is a table's row of validation_dirty: its keys, and the key's columns (a
// validation that takes another key for the table takes the row for the whole table).
type dirtyRow struct {
	Columns []string   `json:"columns"`
	Keys    [][]string `json:"keys"`
}

// recordDirty writes the set into validation_dirty, in one statement.
func (a *applier) recordDirty(ctx context.Context, ex execer, d dirtySet) error {
	if len(d) == 0 {
		return nil
	}
	args := make([]any, 0, 4*len(d))
	for k, t := range d {
		row := dirtyRow{Columns: t.columns, Keys: make([][]string, 0, len(t.keys))}
		for key := range t.keys {
			row.Keys = append(row.Keys, strings.Split(key, ","))
		}
		text, err := json.Marshal(row)
		if err != nil {
			return err
		}
		args = append(args, k[0], k[1], t.whole, string(text))
	}
	_, err := ex.ExecContext(ctx, "INSERT INTO "+a.ctl.table("validation_dirty")+" (schema_name, table_name, whole, `keys`) VALUES "+
		strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?), ", len(d)), ", "), args...)
	return err
}
