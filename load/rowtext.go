package load

import (
	"bytes"
	"errors"
)

// Rows between two engines
//
// Between servers of one engine, a RowsOut and a RowsIn agree on the engine's own
// bytes (PostgreSQL's COPY format, MySQL's LOAD DATA format). Between two engines
// they meet in the form below: one line per row, its values in the canonical form of
// their columns' cdc.Kind, separated by a tab, NULL written "\N", and a backslash,
// tab, newline and carriage return inside a value escaped as "\\", "\t", "\n" and
// "\r". Nothing else is escaped: every other byte (a NUL of a binary value, say) is
// itself.

// AppendField appends a value to a row line: text (nil for NULL), escaped.
func AppendField(dst []byte, text []byte, null bool) []byte {
	if null {
		return append(dst, '\\', 'N')
	}
	for _, b := range text {
		switch b {
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, b)
		}
	}
	return dst
}

// Field is one value of a row line, unescaped: Null, or Text.
type Field struct {
	Text []byte
	Null bool
}

var errRowText = errors.New("a row between engines: a backslash before neither \\, t, n, r nor N")

// SplitRow reads a row line (without its newline) into fields, reusing fields' and
// buf's storage; the fields' Text point into line or buf, valid until the next call.
func SplitRow(line []byte, fields []Field, buf []byte) ([]Field, []byte, error) {
	fields, buf = fields[:0], buf[:0]
	for {
		end := bytes.IndexByte(line, '\t')
		if end < 0 {
			end = len(line)
		}
		f := line[:end]
		if len(f) == 2 && f[0] == '\\' && f[1] == 'N' {
			fields = append(fields, Field{Null: true})
		} else if bytes.IndexByte(f, '\\') < 0 {
			fields = append(fields, Field{Text: f})
		} else {
			start := len(buf)
			for i := 0; i < len(f); i++ {
				if f[i] != '\\' {
					buf = append(buf, f[i])
					continue
				}
				if i++; i == len(f) {
					return nil, nil, errRowText
				}
				switch f[i] {
				case '\\':
					buf = append(buf, '\\')
				case 't':
					buf = append(buf, '\t')
				case 'n':
					buf = append(buf, '\n')
				case 'r':
					buf = append(buf, '\r')
				default:
					return nil, nil, errRowText
				}
			}
			// capped: a later append to buf never writes into this field (when buf
			// moves, the field keeps the old array, which nothing writes again)
			fields = append(fields, Field{Text: buf[start:len(buf):len(buf)]})
		}
		if end == len(line) {
			break
		}
		line = line[end+1:]
	}
	return fields, buf, nil
}
