package plan

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Duration is a time.Duration written in the plan as "60s", "5m" or "1h30m".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String prints the duration the way a plan writes it: 60s as 1m, 90s as 1m30s.
func (d Duration) String() string {
	v := time.Duration(d)
	switch {
	case v == 0:
		return "0s"
	case v%time.Hour == 0:
		return fmt.Sprintf("%dh", v/time.Hour)
	case v%time.Minute == 0:
		return fmt.Sprintf("%dm", v/time.Minute)
	}
	return v.String()
}

func (d *Duration) setScalar(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("expected a duration such as 60s, 5m or 1h30m, got %q", s)
	}
	*d = Duration(v)
	return nil
}

// Pattern is a schema.table glob. Unquoted letters fold to lower case as in SQL;
// * matches any run of characters and ? one character; a "double-quoted" part
// matches exactly (case kept, * and ? literal, "" is a quote).
type Pattern struct {
	text           string
	schema, table  *regexp.Regexp
	schemaWildcard bool
	tableWildcard  bool
}

// ParsePattern parses a schema.table pattern.
func ParsePattern(s string) (Pattern, error) {
	p := Pattern{text: s}
	parts, wild, err := splitPattern(s)
	if err != nil {
		return p, err
	}
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return p, fmt.Errorf("pattern %q: expected schema.table, for example public.orders, sales.* or \"Sales\".\"Order*\"", s)
	}
	p.schema = regexp.MustCompile("^(?:" + parts[0] + ")$")
	p.table = regexp.MustCompile("^(?:" + parts[1] + ")$")
	p.schemaWildcard, p.tableWildcard = wild[0], wild[1]
	return p, nil
}

// MustPattern is ParsePattern for constants; it panics on a bad pattern.
func MustPattern(s string) Pattern {
	p, err := ParsePattern(s)
	if err != nil {
		panic(err)
	}
	return p
}

// splitPattern turns a pattern into one regular expression per dot-separated part.
func splitPattern(s string) (parts []string, wild []bool, err error) {
	var cur strings.Builder
	curWild := false
	inQuote := false
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case inQuote && r == '"' && i+1 < len(rs) && rs[i+1] == '"':
			cur.WriteString(regexp.QuoteMeta(`"`))
			i++
		case r == '"':
			inQuote = !inQuote
		case inQuote:
			cur.WriteString(regexp.QuoteMeta(string(r)))
		case r == '.':
			parts, wild = append(parts, cur.String()), append(wild, curWild)
			cur.Reset()
			curWild = false
		case r == '*':
			cur.WriteString(".*")
			curWild = true
		case r == '?':
			cur.WriteString(".")
			curWild = true
		case r >= 'A' && r <= 'Z':
			cur.WriteRune(r + ('a' - 'A'))
		case r == ' ' || r == '\t':
			return nil, nil, fmt.Errorf("pattern %q: a name with spaces must be double-quoted, for example \"My Schema\".orders", s)
		default:
			cur.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	if inQuote {
		return nil, nil, fmt.Errorf("pattern %q: a double quote is not closed", s)
	}
	parts, wild = append(parts, cur.String()), append(wild, curWild)
	return parts, wild, nil
}

func (p *Pattern) setScalar(s string) error {
	v, err := ParsePattern(s)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// String returns the pattern as written.
func (p Pattern) String() string { return p.text }

// Match reports whether the pattern matches schema.table (names as stored in the catalog).
func (p Pattern) Match(schema, table string) bool {
	return p.schema.MatchString(schema) && p.table.MatchString(table)
}

// Exact reports whether the pattern names one table (no wildcard).
func (p Pattern) Exact() bool { return !p.schemaWildcard && !p.tableWildcard }

// Includes reports whether the plan migrates schema.table.
func (t Tables) Includes(schema, table string) bool {
	in := false
	for _, p := range t.Include {
		if p.Match(schema, table) {
			in = true
			break
		}
	}
	if !in {
		return false
	}
	for _, p := range t.Exclude {
		if p.Match(schema, table) {
			return false
		}
	}
	return true
}
