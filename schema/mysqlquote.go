package schema

import (
	"fmt"
	"strings"
)

// MySQLUnquote reads the MySQL literal or name quoted with q (', " or `) at the start
// of s and returns its text and the bytes it took. A doubled quote is one quote; in a
// string (not a name), a backslash escapes as MySQL's do: \0 \n \r \t \b \Z, and any
// other character as itself but \% and \_, which keep their backslash (MySQL keeps
// them, for LIKE).
func MySQLUnquote(s string, q byte) (string, int, error) {
	if s == "" || s[0] != q {
		return "", 0, fmt.Errorf("not quoted with %c", q)
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q && i+1 < len(s) && s[i+1] == q:
			b.WriteByte(q)
			i++
		case c == q:
			return b.String(), i + 1, nil
		case c == '\\' && q != '`' && i+1 < len(s):
			i++
			switch e := s[i]; e {
			case '0':
				b.WriteByte(0)
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'b':
				b.WriteByte('\b')
			case 'Z':
				b.WriteByte(0x1a)
			case '%', '_':
				b.WriteByte('\\')
				b.WriteByte(e)
			default:
				b.WriteByte(e) // \\ \' \" and any other character as itself
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("a quote (%c) is not closed", q)
}
