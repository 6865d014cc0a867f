package load

import (
	"bytes"
	"testing"
)

// Every byte value, and every escape, goes through a row line and back.
func TestRowLineRoundTrip(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	rows := [][]Field{
		{{Text: []byte("plain")}, {Null: true}, {Text: []byte{}}, {Text: []byte(`\N`)}},
		{{Text: all}, {Text: []byte("tab\there\nnew\rcr\\back")}},
		{{Null: true}},
		{{Text: []byte("")}},
		{{Text: bytes.Repeat([]byte("\\\t"), 1000)}, {Text: []byte("x")}},
	}
	var fields []Field
	var buf []byte
	for i, row := range rows {
		var line []byte
		for j, f := range row {
			if j > 0 {
				line = append(line, '\t')
			}
			line = AppendField(line, f.Text, f.Null)
		}
		if bytes.ContainsAny(line, "\n\r") {
			t.Errorf("row %d: the line holds a newline or carriage return: %q", i, line)
		}
		var err error
		fields, buf, err = SplitRow(line, fields, buf)
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if len(fields) != len(row) {
			t.Fatalf("row %d: %d fields back, want %d", i, len(fields), len(row))
		}
		for j, f := range row {
			if fields[j].Null != f.Null || !bytes.Equal(fields[j].Text, f.Text) {
				t.Errorf("row %d, field %d: got %q (null %t), want %q (null %t)", i, j, fields[j].Text, fields[j].Null, f.Text, f.Null)
			}
		}
	}
	for _, bad := range []string{`a\`, `a\x`, "\\0"} {
		if _, _, err := SplitRow([]byte(bad), nil, nil); err == nil {
			t.Errorf("%q: read without an error", bad)
		}
	}
}
