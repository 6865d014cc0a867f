package schema

import "testing"

func TestMySQLUnquote(t *testing.T) {
	for _, c := range []struct {
		in   string
		q    byte
		want string
		n    int
	}{
		{`'it''s' rest`, '\'', "it's", 7},
		{`'a\'b\\c\nd\%e\_f\zg' x`, '\'', "a'b\\c\nd\\%e\\_fzg", 21},
		{"`we``ird\\n`", '`', "we`ird\\n", 11},
		{`"say ""hi"""`, '"', `say "hi"`, 12},
	} {
		got, n, err := MySQLUnquote(c.in, c.q)
		if err != nil || got != c.want || n != c.n {
			t.Errorf("%s: %q %d (%v), want %q %d", c.in, got, n, err, c.want, c.n)
		}
	}
	for _, bad := range []string{`'open`, `x'a'`, ``, `'a\'`} {
		if got, _, err := MySQLUnquote(bad, '\''); err == nil {
			t.Errorf("%s: %q, want an error", bad, got)
		}
	}
}
