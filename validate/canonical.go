package validate

import (
	"context"
	"encoding/binary"
	"hash/fnv"
	"strconv"
	"strings"
)

// Between two engines the servers cannot hash rows alike (each spells a value its
// own way), so each side's rows are read in the canonical form of their columns'
// Kinds (cdc.Kind) and hashed here: a CanonicalReader is a Reader over a RowScanner,
// which reads a side's rows, converted, and leaves the counting, hashing and
// comparing to this package. Every row crosses the network, where the servers'
// own sums would spare it: the price of comparing two engines value by value.

// RowScanner reads the rows of one side in canonical form, at one consistent point.
type RowScanner interface {
	// Scan calls f with every row of t in r (all of them for a table without a
	// key), its values in Table.Columns order, nil for NULL. f must not keep them.
	Scan(ctx context.Context, t *Table, r Range, f func(values [][]byte) error) error
	// ScanKeys calls f with the rows whose keys are among keys.
	ScanKeys(ctx context.Context, t *Table, keys [][]string, f func(values [][]byte) error) error
}

// CanonicalReader is a Reader of the rows s reads.
func CanonicalReader(s RowScanner) Reader { return canonicalReader{s} }

type canonicalReader struct{ s RowScanner }

var _ Reader = canonicalReader{}

// rowHash hashes a row's canonical values: each one's length (-1 for NULL) and bytes.
func rowHash(values [][]byte) int64 {
	h := fnv.New64a()
	var n [8]byte
	for _, v := range values {
		l := int64(len(v))
		if v == nil {
			l = -1
		}
		binary.LittleEndian.PutUint64(n[:], uint64(l))
		h.Write(n[:])
		h.Write(v)
	}
	return int64(h.Sum64())
}

// keyOf is a row's key: its key columns' values, or for a table without a key the
// whole row in one string.
func keyOf(t *Table, idx []int, values [][]byte) []string {
	if len(t.Key) == 0 {
		return []string{rowText(values)}
	}
	k := make([]string, len(idx))
	for i, j := range idx {
		k[i] = string(values[j])
	}
	return k
}

// rowText is a row as one string, each value quoted (NULL unquoted).
func rowText(values [][]byte) string {
	var b strings.Builder
	for i, v := range values {
		if i > 0 {
			b.WriteByte(',')
		}
		if v == nil {
			b.WriteString("NULL")
			continue
		}
		b.WriteString(strconv.Quote(string(v)))
	}
	return b.String()
}

// keyIndexes are the positions of t's key columns among its columns.
func keyIndexes(t *Table) []int {
	idx := make([]int, len(t.Key))
	for i, k := range t.Key {
		for j, c := range t.Columns {
			if c == k {
				idx[i] = j
			}
		}
	}
	return idx
}

func (r canonicalReader) Sums(ctx context.Context, t *Table, rs []Range) ([]Sum, error) {
	out := make([]Sum, len(rs))
	for i, rg := range rs {
		var n int64
		var sum uint64
		if err := r.s.Scan(ctx, t, rg, func(values [][]byte) error {
			n++
			sum += uint64(rowHash(values))
			return nil
		}); err != nil {
			return nil, err
		}
		out[i] = Sum{Rows: n, Hash: strconv.FormatUint(sum, 16)}
	}
	return out, nil
}

func (r canonicalReader) Hashes(ctx context.Context, t *Table, rg Range) ([]KeyHash, error) {
	idx := keyIndexes(t)
	var out []KeyHash
	err := r.s.Scan(ctx, t, rg, func(values [][]byte) error {
		out = append(out, KeyHash{Key: keyOf(t, idx, values), Hash: rowHash(values)})
		return nil
	})
	return out, err
}

func (r canonicalReader) SumKeys(ctx context.Context, t *Table, keys KeySet) (Sum, error) {
	list, err := keys.Keys(ctx)
	if err != nil {
		return Sum{}, err
	}
	var n int64
	var sum uint64
	err = r.s.ScanKeys(ctx, t, list, func(values [][]byte) error {
		n++
		sum += uint64(rowHash(values))
		return nil
	})
	return Sum{Rows: n, Hash: strconv.FormatUint(sum, 16)}, err
}

func (r canonicalReader) KeyHashes(ctx context.Context, t *Table, keys [][]string) ([]KeyHash, error) {
	idx := keyIndexes(t)
	var out []KeyHash
	err := r.s.ScanKeys(ctx, t, keys, func(values [][]byte) error {
		out = append(out, KeyHash{Key: keyOf(t, idx, values), Hash: rowHash(values)})
		return nil
	})
	return out, err
}

func (r canonicalReader) Lookup(ctx context.Context, t *Table, keys [][]string) ([]Row, error) {
	idx := keyIndexes(t)
	var out []Row
	err := r.s.ScanKeys(ctx, t, keys, func(values [][]byte) error {
		row := Row{Key: keyOf(t, idx, values), Hash: rowHash(values), Values: make([]*string, len(values))}
		for i, v := range values {
			if v != nil {
				s := string(v)
				row.Values[i] = &s
			}
		}
		out = append(out, row)
		return nil
	})
	return out, err
}

// CountRows counts, in a table without a key, the rows equal to each of rows (as
// rowText writes them): one pass over the table.
func (r canonicalReader) CountRows(ctx context.Context, t *Table, rows []string) ([]int64, error) {
	at := make(map[string]int, len(rows))
	for i, row := range rows {
		at[row] = i
	}
	counts := make([]int64, len(rows))
	err := r.s.Scan(ctx, t, Range{}, func(values [][]byte) error {
		if i, ok := at[rowText(values)]; ok {
			counts[i]++
		}
		return nil
	})
	return counts, err
}
