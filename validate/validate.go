// Package validate proves a migrated table equal on source and target, engine-neutrally.
//
// A table is split into key ranges (chunks). For each chunk both databases compute a
// row count and an order-independent hash of the rows themselves, so equal chunks never
// ship their rows. Only a chunk whose sums differ is compared row by row: first each
// row's key and hash, then, for the keys that differ, the rows themselves, to say which
// columns differ. A row missing from one side's range is looked up by key on that side
// before it is reported: two servers may order text keys differently (collations), so
// a row can sit in another chunk there.
//
// A table without a key is one chunk compared as a multiset of row hashes.
//
// Run validates tables one after the other through an Engine, which reads both sides
// at points of the change stream (each at the same position): the rows changed since
// a table's last validation when the engine tracks them, else every chunk; the rows
// that differ are read again at later points, as a change in flight at a point is
// not a difference, repaired when asked, and each table's outcome is recorded. The
// engine's driver, SQL and points stay in the engine.
package validate

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Kind is the kind of a difference, with AWS DMS's names.
type Kind string

// The kinds of difference.
const (
	MissingTarget Kind = "MISSING_TARGET" // the row is on the source only
	MissingSource Kind = "MISSING_SOURCE" // the row is on the target only
	RecordDiff    Kind = "RECORD_DIFF"    // the row is on both, with different values
)

// Table is a table as both sides compare it.
type Table struct {
	Schema, Name string
	Columns      []string // compared, in this order on both sides
	Key          []string // the key's columns; none: the table is compared as a multiset
}

func (t *Table) String() string { return t.Schema + "." + t.Name }

// Range is a chunk of a keyed table: the keys k with Lo <= k < Hi, in the key's order
// on the source. A nil bound is open.
type Range struct {
	Lo, Hi []string
}

// Bound is one end of a range of a key of one column: its value, and how a key in the
// range compares with it (">=" the low end, "<" the high one).
type Bound struct{ Value, Op string }

// Bounds are the ends of r, a range of a key of one column; an open end has none.
func (r Range) Bounds() []Bound {
	var out []Bound
	if r.Lo != nil {
		out = append(out, Bound{r.Lo[0], ">="})
	}
	if r.Hi != nil {
		out = append(out, Bound{r.Hi[0], "<"})
	}
	return out
}

// Sum is a chunk's row count and the sum of its rows' hashes.
type Sum struct {
	Rows int64
	Hash string
}

// KeyHash is one row's key and hash. For a table without a key, Key is the row itself.
type KeyHash struct {
	Key  []string
	Hash int64
}

// Row is a row read by key: its values as text (nil for NULL), in Table.Columns order.
type Row struct {
	Key    []string
	Values []*string
	Hash   int64
}

// Reader reads one side at one consistent point. It is used by one goroutine at a time.
type Reader interface {
	// Sums counts and hashes the rows of each range (for a table without a key, one
	// range: the whole table). The ranges are in order and cover every key.
	Sums(ctx context.Context, t *Table, rs []Range) ([]Sum, error)
	// Hashes returns the key and hash of each row in a range.
	Hashes(ctx context.Context, t *Table, r Range) ([]KeyHash, error)
	// SumKeys counts and hashes the rows with these keys.
	SumKeys(ctx context.Context, t *Table, keys KeySet) (Sum, error)
	// KeyHashes returns the key and hash of the rows with these keys.
	KeyHashes(ctx context.Context, t *Table, keys [][]string) ([]KeyHash, error)
	// Lookup returns the rows with these keys; keys without a row are left out.
	Lookup(ctx context.Context, t *Table, keys [][]string) ([]Row, error)
	// CountRows counts, in a table without a key, the rows equal to each of these
	// (a row as Hashes gives it for such a table: Key[0] of its KeyHash).
	CountRows(ctx context.Context, t *Table, rows []string) ([]int64, error)
}

// KeySet is the keys of the rows to compare. It may hold them in a form of the engine
// they were read from, which that engine's Reader uses as it is (the changed keys an
// applier recorded, say, thousands of them, sent on to the source without being
// parsed here); Keys decodes them, for the rows to be compared one by one.
type KeySet interface {
	Len() int
	Keys(ctx context.Context) ([][]string, error)
}

// KeyList is a KeySet of keys already decoded.
type KeyList [][]string

func (l KeyList) Len() int                                 { return len(l) }
func (l KeyList) Keys(context.Context) ([][]string, error) { return l, nil }

// Difference is one row that differs.
type Difference struct {
	Kind    Kind      `json:"kind"`
	Key     []string  `json:"key"`
	Columns []string  `json:"columns,omitempty"` // RECORD_DIFF: the columns that differ
	Source  []*string `json:"source,omitempty"`  // RECORD_DIFF: their values on the source (nil for NULL)
	Target  []*string `json:"target,omitempty"`  // and on the target
}

func (d Difference) String() string {
	s := fmt.Sprintf("%s key (%s)", d.Kind, strings.Join(d.Key, ", "))
	if len(d.Columns) > 0 {
		s += " columns " + strings.Join(d.Columns, ", ")
	}
	return s
}

// KeylessDiffRows is the most rows a table without a key may have for the validator
// to find which rows differ (it reads every row's hash from both sides).
const KeylessDiffRows = 1_000_000

// both runs f for the source (side 0) and the target (side 1) at once.
func both(f func(side int, rd Reader) error, src, tgt Reader) (srcErr, tgtErr error) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tgtErr = f(1, tgt)
	}()
	srcErr = f(0, src)
	wg.Wait()
	return srcErr, tgtErr
}

func sideErr(srcErr, tgtErr error) error {
	if srcErr != nil {
		return fmt.Errorf("source: %w", srcErr)
	}
	if tgtErr != nil {
		return fmt.Errorf("target: %w", tgtErr)
	}
	return nil
}

// TableResult is what comparing a table's chunks found.
type TableResult struct {
	Source, Target Sum // the whole table's
	Chunks         int
	Differing      int   // chunks whose sums differ
	RowsRead       int64 // rows whose key and hash were read from both sides
	Differences    []Difference
	// TooLarge: a table without a key differs but has too many rows to find which.
	TooLarge bool
}

// Add adds the outcome of more chunks of the same table.
func (r *TableResult) Add(o TableResult) {
	r.Source.Rows += o.Source.Rows
	r.Target.Rows += o.Target.Rows
	r.Chunks += o.Chunks
	r.Differing += o.Differing
	r.RowsRead += o.RowsRead
	r.Differences = append(r.Differences, o.Differences...)
	r.TooLarge = r.TooLarge || o.TooLarge
}

// Compare compares a table's chunks: their sums on both sides at once, then row by row
// where they differ.
func Compare(ctx context.Context, src, tgt Reader, t *Table, rs []Range) (TableResult, error) {
	var res TableResult
	res.Chunks = len(rs)
	var sums [2][]Sum
	se, te := both(func(i int, rd Reader) (err error) {
		sums[i], err = rd.Sums(ctx, t, rs)
		return err
	}, src, tgt)
	if err := sideErr(se, te); err != nil {
		return res, err
	}
	for i, r := range rs {
		s, g := sums[0][i], sums[1][i]
		res.Source.Rows += s.Rows
		res.Target.Rows += g.Rows
		if s == g {
			continue
		}
		res.Differing++
		if len(t.Key) == 0 && max(s.Rows, g.Rows) > KeylessDiffRows {
			res.TooLarge = true
			continue
		}
		diffs, read, err := diffChunk(ctx, src, tgt, t, r)
		if err != nil {
			return res, err
		}
		res.RowsRead += read
		res.Differences = append(res.Differences, diffs...)
	}
	return res, nil
}

// diffChunk finds the rows that differ in a chunk whose sums differ.
func diffChunk(ctx context.Context, src, tgt Reader, t *Table, r Range) ([]Difference, int64, error) {
	var hashes [2][]KeyHash
	se, te := both(func(i int, rd Reader) (err error) {
		hashes[i], err = rd.Hashes(ctx, t, r)
		return err
	}, src, tgt)
	if err := sideErr(se, te); err != nil {
		return nil, 0, err
	}
	read := int64(len(hashes[0]) + len(hashes[1]))
	if len(t.Key) == 0 {
		return multisetDiff(hashes[0], hashes[1]), read, nil
	}
	diffs, err := Rows(ctx, src, tgt, t, hashes[0], hashes[1])
	return diffs, read, err
}

// Keys compares the rows with these keys (rows changed since a validation, say): their
// sums first, each row's hash when the sums differ. read is the rows whose hashes were
// read one by one.
func Keys(ctx context.Context, src, tgt Reader, t *Table, keys KeySet) (diffs []Difference, read int64, err error) {
	if keys.Len() == 0 {
		return nil, 0, nil
	}
	var sums [2]Sum
	se, te := both(func(i int, rd Reader) (err error) {
		sums[i], err = rd.SumKeys(ctx, t, keys)
		return err
	}, src, tgt)
	if err := sideErr(se, te); err != nil {
		return nil, 0, err
	}
	if sums[0] == sums[1] {
		return nil, 0, nil
	}
	list, err := keys.Keys(ctx)
	if err != nil {
		return nil, 0, err
	}
	var hashes [2][]KeyHash
	se, te = both(func(i int, rd Reader) (err error) {
		hashes[i], err = rd.KeyHashes(ctx, t, list)
		return err
	}, src, tgt)
	if err := sideErr(se, te); err != nil {
		return nil, 0, err
	}
	diffs, err = Rows(ctx, src, tgt, t, hashes[0], hashes[1])
	return diffs, int64(len(hashes[0]) + len(hashes[1])), err
}

func keyString(k []string) string { return strings.Join(k, "\x00") }

// Rows compares rows known by key and hash on each side: the keys on one side only are
// looked up on the other, the keys whose hashes differ are read on both to name the
// columns that differ.
func Rows(ctx context.Context, src, tgt Reader, t *Table, source, target []KeyHash) ([]Difference, error) {
	onTarget := make(map[string]int64, len(target))
	for _, kh := range target {
		onTarget[keyString(kh.Key)] = kh.Hash
	}
	var srcOnly, changed [][]string
	for _, kh := range source {
		k := keyString(kh.Key)
		h, ok := onTarget[k]
		switch {
		case !ok:
			srcOnly = append(srcOnly, kh.Key)
		case h != kh.Hash:
			changed = append(changed, kh.Key)
		}
		delete(onTarget, k)
	}
	var tgtOnly [][]string
	for _, kh := range target {
		if _, ok := onTarget[keyString(kh.Key)]; ok {
			tgtOnly = append(tgtOnly, kh.Key)
		}
	}
	var diffs []Difference
	// A key on one side only may be in another chunk on the other side: look it up there.
	found, err := lookupKeys(ctx, tgt, t, srcOnly)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	for _, k := range srcOnly {
		if _, ok := found[keyString(k)]; ok {
			changed = append(changed, k)
			continue
		}
		diffs = append(diffs, Difference{Kind: MissingTarget, Key: k})
	}
	if found, err = lookupKeys(ctx, src, t, tgtOnly); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	for _, k := range tgtOnly {
		if _, ok := found[keyString(k)]; ok {
			changed = append(changed, k)
			continue
		}
		diffs = append(diffs, Difference{Kind: MissingSource, Key: k})
	}
	recordDiffs, err := columnDiffs(ctx, src, tgt, t, changed)
	if err != nil {
		return nil, err
	}
	diffs = append(diffs, recordDiffs...)
	slices.SortFunc(diffs, func(a, b Difference) int { return strings.Compare(keyString(a.Key), keyString(b.Key)) })
	return diffs, nil
}

func lookupKeys(ctx context.Context, rd Reader, t *Table, keys [][]string) (map[string]Row, error) {
	found := map[string]Row{}
	if len(keys) == 0 {
		return found, nil
	}
	rows, err := rd.Lookup(ctx, t, keys)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		found[keyString(r.Key)] = r
	}
	return found, nil
}

// columnDiffs reads rows on both sides and reports the ones that differ, and how.
func columnDiffs(ctx context.Context, src, tgt Reader, t *Table, keys [][]string) ([]Difference, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	var rows [2]map[string]Row
	se, te := both(func(i int, rd Reader) (err error) {
		rows[i], err = lookupKeys(ctx, rd, t, keys)
		return err
	}, src, tgt)
	if err := sideErr(se, te); err != nil {
		return nil, err
	}
	var diffs []Difference
	for _, k := range keys {
		ks := keyString(k)
		s, inSrc := rows[0][ks]
		g, inTgt := rows[1][ks]
		switch {
		case !inSrc && !inTgt:
			continue // deleted on both since it was seen: equal
		case !inTgt:
			diffs = append(diffs, Difference{Kind: MissingTarget, Key: k})
			continue
		case !inSrc:
			diffs = append(diffs, Difference{Kind: MissingSource, Key: k})
			continue
		}
		d := Difference{Kind: RecordDiff, Key: k}
		for i, c := range t.Columns {
			if !sameValue(s.Values[i], g.Values[i]) {
				d.Columns = append(d.Columns, c)
				d.Source = append(d.Source, s.Values[i])
				d.Target = append(d.Target, g.Values[i])
			}
		}
		if len(d.Columns) > 0 || s.Hash != g.Hash {
			diffs = append(diffs, d)
		}
	}
	return diffs, nil
}

func sameValue(a, b *string) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// Recount compares again the rows of a table without a key that differed: each
// distinct row's count on both sides (a row may be in the table several times). A row
// counted n times more on one side is n differences, as multisetDiff reports them.
func Recount(ctx context.Context, src, tgt Reader, t *Table, diffs []Difference) ([]Difference, error) {
	var rows []string
	seen := map[string]bool{}
	for _, d := range diffs {
		if r := keyString(d.Key); !seen[r] {
			seen[r] = true
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return nil, nil
	}
	var counts [2][]int64
	se, te := both(func(i int, rd Reader) (err error) {
		counts[i], err = rd.CountRows(ctx, t, rows)
		return err
	}, src, tgt)
	if err := sideErr(se, te); err != nil {
		return nil, err
	}
	var out []Difference
	for i, r := range rows {
		kind, n := MissingTarget, counts[0][i]-counts[1][i]
		if n < 0 {
			kind, n = MissingSource, -n
		}
		for range n {
			out = append(out, Difference{Kind: kind, Key: []string{r}})
		}
	}
	sortMultiset(out)
	return out, nil
}

// multisetDiff compares two multisets of rows (a table without a key): each row present
// more times on one side is a difference, keyed by the row itself.
func multisetDiff(source, target []KeyHash) []Difference {
	type entry struct {
		n   int
		row []string
	}
	count := map[int64]*entry{}
	for _, kh := range source {
		e := count[kh.Hash]
		if e == nil {
			e = &entry{row: kh.Key}
			count[kh.Hash] = e
		}
		e.n++
	}
	for _, kh := range target {
		e := count[kh.Hash]
		if e == nil {
			e = &entry{row: kh.Key}
			count[kh.Hash] = e
		}
		e.n--
	}
	var diffs []Difference
	for _, e := range count {
		for ; e.n > 0; e.n-- {
			diffs = append(diffs, Difference{Kind: MissingTarget, Key: e.row})
		}
		for ; e.n < 0; e.n++ {
			diffs = append(diffs, Difference{Kind: MissingSource, Key: e.row})
		}
	}
	sortMultiset(diffs)
	return diffs
}

// sortMultiset orders a table's differences without a key by kind, then row.
func sortMultiset(diffs []Difference) {
	slices.SortFunc(diffs, func(a, b Difference) int {
		if c := strings.Compare(string(a.Kind), string(b.Kind)); c != 0 {
			return c
		}
		return strings.Compare(keyString(a.Key), keyString(b.Key))
	})
}
