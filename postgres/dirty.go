package postgres

import (
	"encoding/json"
	"slices"

	"github.com/cutover-dev/cutover/cdc"
)

// Dirty keys: the applier records, in the same target transaction as the changes, the
// key of every row a group changed (validation_dirty), so an incremental validation
// rereads exactly those rows, and a crash loses none of them. A key is a JSON object
// of the key columns' text values; the empty object marks the whole table (a truncate,
// or a table without a key).

// wholeTable is the dirty key that stands for every row of a table.
const wholeTable = "{}"

// dirtyFlushKeys: a table's keys are written once this many gather in the open target
// transaction (a huge source transaction is applied with bounded memory all the same).
const dirtyFlushKeys = 5000

type dirtySet map[[2]string]map[string]struct{}

func (d dirtySet) table(k [2]string) map[string]struct{} {
	s := d[k]
	if s == nil {
		s = map[string]struct{}{}
		d[k] = s
	}
	return s
}

func (d dirtySet) mark(k [2]string, key string) {
	s := d.table(k)
	if _, whole := s[wholeTable]; whole {
		return
	}
	if key == wholeTable {
		clear(s)
	}
	s[key] = struct{}{}
}

// markChange records the rows a change touches.
func (d dirtySet) markChange(c *cdc.Change) {
	if c.Op == cdc.Truncate {
		for _, r := range c.Truncated {
			d.mark([2]string{r.Schema, r.Name}, wholeTable)
		}
		return
	}
	k := [2]string{c.Rel.Schema, c.Rel.Name}
	for _, row := range []cdc.Row{c.Old, c.New} {
		if row == nil {
			continue
		}
		d.mark(k, dirtyKey(c.Rel, row))
	}
}

// dirtyKey is a row's key as JSON, or wholeTable when the row has no usable key.
func dirtyKey(rel *cdc.Relation, row cdc.Row) string {
	obj := map[string]*string{}
	keyed, full := false, true
	for i, col := range rel.Columns {
		full = full && col.Key
		if !col.Key {
			continue
		}
		keyed = true
		v := row[i]
		switch {
		case v.Unchanged:
			return wholeTable
		case v.Null:
			obj[col.Name] = nil
		default:
			s := string(v.Text)
			obj[col.Name] = &s
		}
	}
	if !keyed || full {
		return wholeTable
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return wholeTable
	}
	return string(b)
}

// keys returns a table's dirty keys, sorted.
func (d dirtySet) keys(k [2]string) []string {
	s := d[k]
	out := make([]string, 0, len(s))
	for key := range s {
		out = append(out, key)
	}
	slices.Sort(out)
	return out
}
