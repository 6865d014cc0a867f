package postgres

import (
	"regexp"
	"strings"
	"unicode"
)

// splitStatements splits SQL text into its statements at the semicolons outside
// quotes, dollar quotes and comments, as the server's lexer does. Each statement is
// trimmed; empty ones (and those holding only comments) are left out.
func splitStatements(sql string) []string {
	var out []string
	start := 0
	add := func(end int) {
		s := strings.TrimSpace(sql[start:end])
		if stripComments(s) != "" {
			out = append(out, s)
		}
	}
	for i := 0; i < len(sql); {
		switch c := sql[i]; {
		case c == ';':
			add(i)
			i++
			start = i
		case c == '\'':
			// E'...' takes backslash escapes; a standard string only ''.
			backslash := i > 0 && (sql[i-1] == 'E' || sql[i-1] == 'e') && (i == 1 || !isIdentByte(sql[i-2]))
			i = skipQuoted(sql, i+1, '\'', backslash)
		case c == '"':
			i = skipQuoted(sql, i+1, '"', false)
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			if j := strings.IndexByte(sql[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(sql)
			}
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			i = skipBlockComment(sql, i)
		case c == '$' && (i == 0 || !isIdentByte(sql[i-1])):
			if tag, ok := dollarTag(sql[i:]); ok {
				if j := strings.Index(sql[i+len(tag):], tag); j >= 0 {
					i += len(tag) + j + len(tag)
				} else {
					i = len(sql)
				}
			} else {
				i++
			}
		default:
			i++
		}
	}
	add(len(sql))
	return out
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 || unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c))
}

// skipQuoted returns the position after the quote that closes a quoted string or
// identifier begun before i (a doubled quote stands for itself).
func skipQuoted(sql string, i int, q byte, backslash bool) int {
	for i < len(sql) {
		switch sql[i] {
		case '\\':
			if backslash {
				i += 2
				continue
			}
		case q:
			if i+1 < len(sql) && sql[i+1] == q {
				i += 2
				continue
			}
			return i + 1
		}
		i++
	}
	return len(sql)
}

// skipBlockComment returns the position after a /* comment */ that starts at i;
// such comments nest.
func skipBlockComment(sql string, i int) int {
	depth := 0
	for i < len(sql) {
		switch {
		case strings.HasPrefix(sql[i:], "/*"):
			depth++
			i += 2
		case strings.HasPrefix(sql[i:], "*/"):
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		default:
			i++
		}
	}
	return len(sql)
}

// dollarTag reads the $tag$ that opens a dollar-quoted string at the start of s.
func dollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		c := s[j]
		if c == '$' {
			return s[:j+1], true
		}
		if !(c == '_' || c >= 0x80 || unicode.IsLetter(rune(c)) || (j > 1 && unicode.IsDigit(rune(c)))) {
			return "", false
		}
	}
	return "", false
}

// stripComments removes the comments around a statement's words (not inside them).
func stripComments(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "--"):
			if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(s)
			}
			b.WriteByte(' ')
		case strings.HasPrefix(s[i:], "/*"):
			i = skipBlockComment(s, i)
			b.WriteByte(' ')
		case s[i] == '\'' || s[i] == '"':
			j := skipQuoted(s, i+1, s[i], s[i] == '\'' && i > 0 && (s[i-1] == 'E' || s[i-1] == 'e'))
			b.WriteString(s[i:j])
			i = j
		case s[i] == '$' && (i == 0 || !isIdentByte(s[i-1])):
			tag, ok := dollarTag(s[i:])
			if !ok {
				b.WriteByte('$')
				i++
				continue
			}
			end := len(s)
			if j := strings.Index(s[i+len(tag):], tag); j >= 0 {
				end = i + len(tag) + j + len(tag)
			}
			b.WriteString(s[i:end])
			i = end
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return strings.TrimSpace(b.String())
}

// words returns a statement's first n keywords, upper-cased, comments left out.
func words(stmt string, n int) []string {
	f := strings.Fields(stripComments(stmt))
	if len(f) > n {
		f = f[:n]
	}
	for i := range f {
		f[i] = strings.ToUpper(f[i])
	}
	return f
}

// withoutConcurrently removes CONCURRENTLY from CREATE INDEX, DROP INDEX and
// DETACH PARTITION: replayed inside a transaction, they cannot run concurrently (and
// no application writes to the target to be spared a lock).
func withoutConcurrently(stmt string) string {
	for _, re := range concurrently {
		if m := re.FindStringSubmatchIndex(stmt); m != nil {
			return stmt[:m[2]] + stmt[m[3]:]
		}
	}
	return stmt
}

var concurrently = []*regexp.Regexp{
	regexp.MustCompile(`(?is)^\s*CREATE\s+(?:UNIQUE\s+)?INDEX(\s+CONCURRENTLY)\b`),
	regexp.MustCompile(`(?is)^\s*DROP\s+INDEX(\s+CONCURRENTLY)\b`),
	regexp.MustCompile(`(?is)\bDETACH\s+PARTITION\s+(?:"(?:[^"]|"")*"|[^\s"]+)(?:\.(?:"(?:[^"]|"")*"|[^\s"]+))?(\s+CONCURRENTLY)\s*$`),
}
