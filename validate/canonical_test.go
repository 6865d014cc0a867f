package validate

import (
	"context"
	"strings"
	"testing"
)

// memory is a side's rows in memory, in canonical form.
type memory [][][]byte

func (m memory) Scan(_ context.Context, _ *Table, _ Range, f func([][]byte) error) error {
	for _, r := range m {
		if err := f(r); err != nil {
			return err
		}
	}
	return nil
}

func (m memory) ScanKeys(_ context.Context, t *Table, keys [][]string, f func([][]byte) error) error {
	want := map[string]bool{}
	for _, k := range keys {
		want[keyString(k)] = true
	}
	idx := keyIndexes(t)
	for _, r := range m {
		if want[keyString(keyOf(t, idx, r))] {
			if err := f(r); err != nil {
				return err
			}
		}
	}
	return nil
}

func row(vals ...any) [][]byte {
	out := make([][]byte, len(vals))
	for i, v := range vals {
		if v != nil {
			out[i] = []byte(v.(string))
		}
	}
	return out
}

// Two sides compared by their canonical rows: equal ones are equal whatever their
// order; a changed value (NULL against empty, too), a missing row and an extra one
// are named; a table without a key is compared as a multiset.
func TestCanonicalReaderCompare(t *testing.T) {
	ctx := context.Background()
	tb := &Table{Schema: "s", Name: "t", Columns: []string{"id", "v", "w"}, Key: []string{"id"}}
	src := memory{row("1", "a", nil), row("2", "b", ""), row("3", "c", "x"), row("4", "d", "y")}
	same := memory{row("4", "d", "y"), row("3", "c", "x"), row("2", "b", ""), row("1", "a", nil)}
	res, err := Compare(ctx, CanonicalReader(src), CanonicalReader(same), tb, []Range{{}})
	if err != nil || res.Differing != 0 || res.Source.Rows != 4 || res.Target.Rows != 4 {
		t.Fatalf("equal sides: %+v, %v", res, err)
	}
	tgt := memory{row("1", "a", ""), row("2", "b", nil), row("3", "c", "x"), row("5", "e", "z")}
	res, err = Compare(ctx, CanonicalReader(src), CanonicalReader(tgt), tb, []Range{{}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range res.Differences {
		got = append(got, d.String())
	}
	want := "RECORD_DIFF key (1) columns w; RECORD_DIFF key (2) columns w; MISSING_TARGET key (4); MISSING_SOURCE key (5)"
	if strings.Join(got, "; ") != want {
		t.Errorf("differences:\n%s\nwant\n%s", strings.Join(got, "; "), want)
	}
	keyless := &Table{Schema: "s", Name: "k", Columns: []string{"a"}}
	res, err = Compare(ctx, CanonicalReader(memory{row("x"), row("x"), row("y")}), CanonicalReader(memory{row("x"), row("y"), row("y")}), keyless, []Range{{}})
	if err != nil || len(res.Differences) != 2 {
		t.Fatalf("keyless: %+v, %v", res, err)
	}
	counts, err := CanonicalReader(memory{row("x"), row("x"), row("y")}).CountRows(ctx, keyless, []string{res.Differences[0].Key[0], res.Differences[1].Key[0]})
	if err != nil || counts[0]+counts[1] != 3 {
		t.Errorf("counts %v, %v", counts, err)
	}
}
