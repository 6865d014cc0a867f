package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The canonical forms against a real server: every type of the catalog that a
// column can have (pg_catalog's base, range and multirange types, as
// TestTypeMatrix reads them, plus an enum, a composite, a domain with a
// nondeterministic collation and citext), a domain over each and an array of each,
// and types with modifiers, with typeSamples' values and the edges below. Each
// value goes PostgreSQL text → canonical → PostgreSQL text, and the server must
// read the result as the same value (IS NOT DISTINCT FROM) and write it as the
// same text (= hides differences: numeric 1.0 and 1.00, float -0 and 0, a
// timestamptz's offset). The canonical form is checked against the documented
// rule with the server's own functions (extract, to_char, encode, float8send,
// IntervalStyle iso_8601, array_dims, unnest), not with the code under test.

// wantKinds is the Kind of each type of the catalog, by typname. A type of the
// catalog missing from both wantKinds and otherWhy fails the test.
var wantKinds = map[string]cdc.Kind{
	"bool": cdc.KindBool, "int2": cdc.KindInt, "int4": cdc.KindInt, "int8": cdc.KindInt,
	"oid": cdc.KindUint, "numeric": cdc.KindDecimal, "float4": cdc.KindFloat32, "float8": cdc.KindFloat64,
	"text": cdc.KindText, "varchar": cdc.KindText, "bpchar": cdc.KindText, "name": cdc.KindText,
	"bytea": cdc.KindBytes, "date": cdc.KindDate, "time": cdc.KindTime, "timestamp": cdc.KindTimestamp,
	"timestamptz": cdc.KindTimestampTZ, "interval": cdc.KindInterval, "json": cdc.KindJSON,
	"jsonb": cdc.KindJSON, "bit": cdc.KindBits, "varbit": cdc.KindBits, "uuid": cdc.KindUUID,
	// The test's own types.
	"mood": cdc.KindEnum, "v_label": cdc.KindEnum, "ci_text": cdc.KindText, "citext": cdc.KindText,
}

// otherWhy says why each type with no canonical form (cdc.KindOther) has none: its
// values move between PostgreSQL servers only.
var otherWhy = map[string]string{
	"aclitem":                      "privileges naming roles of this server",
	"char":                         `"char" is one byte, not always UTF-8 (its output escapes it as \ooo); an internal type`,
	"cid":                          "a command id inside one server's transaction",
	"xid":                          "a transaction id of one server",
	"xid8":                         "a transaction id of one server",
	"tid":                          "a row's physical place in one server's table",
	"pg_lsn":                       "a WAL position of one server",
	"pg_snapshot":                  "a snapshot of one server's transactions",
	"txid_snapshot":                "a snapshot of one server's transactions",
	"int2vector":                   "a catalog type (space-separated, not an array)",
	"oidvector":                    "a catalog type (space-separated, not an array)",
	"money":                        "its text follows lc_monetary (currency symbol, separators, digits): cast to numeric to move it elsewhere",
	"timetz":                       "a time of day with a zone: no other engine has one",
	"jsonpath":                     "a PostgreSQL query language",
	"xml":                          "no other engine has an XML type that checks its value",
	"refcursor":                    "a cursor name of one session",
	"tsvector":                     "text search: PostgreSQL's own",
	"tsquery":                      "text search: PostgreSQL's own",
	"gtsvector":                    "internal (its input refuses every value)",
	"cidr":                         "network types: no other engine has them",
	"inet":                         "network types: no other engine has them",
	"macaddr":                      "network types: no other engine has them",
	"macaddr8":                     "network types: no other engine has them",
	"point":                        "geometric: MySQL's spatial types are another model (SRID, WKB)",
	"line":                         "geometric: MySQL's spatial types are another model (SRID, WKB)",
	"lseg":                         "geometric: MySQL's spatial types are another model (SRID, WKB)",
	"box":                          "geometric: MySQL's spatial types are another model (SRID, WKB)",
	"path":                         "geometric: MySQL's spatial types are another model (SRID, WKB)",
	"polygon":                      "geometric: MySQL's spatial types are another model (SRID, WKB)",
	"circle":                       "geometric: MySQL's spatial types are another model (SRID, WKB)",
	"pair":                         "a composite: a row inside a value",
	"pg_node_tree":                 "internal (its input refuses every value)",
	"pg_ndistinct":                 "internal (its input refuses every value)",
	"pg_dependencies":              "internal (its input refuses every value)",
	"pg_mcv_list":                  "internal (its input refuses every value)",
	"pg_brin_bloom_summary":        "internal (its input refuses every value)",
	"pg_brin_minmax_multi_summary": "internal (its input refuses every value)",
}

// otherPattern: ranges, multiranges and the reg* types are Other as families.
var otherPattern = regexp.MustCompile(`^(reg.*|.*range|.*multirange)$`)

func otherReason(name string) string {
	if r, ok := otherWhy[name]; ok {
		return r
	}
	switch {
	case strings.HasPrefix(name, "reg"):
		return "an oid written as the name of an object of this server"
	case otherPattern.MatchString(name):
		return "ranges and multiranges: no other engine has them"
	}
	return ""
}

// valueEdges are values beyond typeSamples', at the edges of each type.
var valueEdges = map[string][]string{
	"int2":        {"32767", "-32768"},
	"int4":        {"2147483647", "-2147483648"},
	"int8":        {"-9223372036854775808", "9223372036854775807"},
	"oid":         {"4294967295"},
	"numeric":     {"123456789012345678901234567890.123456789", "-0.000001", "-Infinity", "1e300", "0.000"},
	"float4":      {"1e-45", "1.17549435e-38", "-3.4028235e+38", "0.1", "16777217", "1e21", "100000"},
	"float8":      {"5e-324", "2.2250738585072014e-308", "1.7976931348623157e+308", "1e21", "123456789012345680000", "0.0001", "0.00001", "-1.5e-7"},
	"text":        {"NULL", "{brace}", "a,b", `q"uote'`, " lead", "trail ", "日本語 🎉", "\u200b"},
	"varchar":     {"", "NULL"},
	"name":        {strings.Repeat("x", 63)},
	"bytea":       {allBytes(), `\x00`, `\x5c`},
	"date":        {"-infinity", "0001-01-01", "0001-01-01 BC", "0001-12-31 BC", "4713-01-01 BC", "5874897-12-31", "9999-12-31", "10000-01-01", "2024-02-29"},
	"time":        {"23:59:59.999999", "00:00:00.000001", "12:00:00.5"},
	"timestamp":   {"294276-12-31 23:59:59.999999", "4713-01-01 00:00:00 BC", "10000-01-01 00:00:00", "1999-12-31 23:59:59.000001", "-infinity", "0001-12-31 23:59:59.5 BC"},
	"timestamptz": {"2026-03-01 12:00:00.123456+05:30", "1900-01-01 00:00:00+00", "1850-06-01 12:00:00+00", "4713-01-01 00:00:00+00 BC", "294276-12-31 23:59:59.999999+00", "infinity", "2026-10-25 01:30:00+00", "0001-01-01 00:00:00+00"},
	"interval":    {"1 year 2 mons 3 days 04:05:06.5", "-1 years -2 mons +3 days -04:05:06", "0", "178000000 years", "-178000000 years", "2562047788:00:54.775807", "-2562047788:00:54.775807", "1 day -1 hours", "-0.000001 seconds", "1 mon -30 days", "2147483647 days", "-2147483648 days -2147483648 mons"},
	"json":        {` {"b" : 1, "a":[1, 2.50, "x"]} `, `{"a":1,"a":2}`, `"\u00e9\u0000"`, `1e400`, `null`},
	"jsonb":       {`{"b":1,"a":2}`, `"é"`, `1e-400`, `{}`},
	"uuid":        {"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "{a0eebc99-9c0b4ef8-bb6d6bb9bd380a11}", "ffffffff-ffff-ffff-ffff-ffffffffffff"},
	"varbit":      {strings.Repeat("10", 100)},
	"bpchar":      {"", " "},
	"v_label":     {"a b", "NULL", "x,y", `q"u`, "é"},
}

func allBytes() string {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return `\x` + hex.EncodeToString(b)
}

// modded are column types with modifiers, and their values (the server rounds or
// pads some on input: that text is what must round trip).
var modded = []struct {
	typ     string
	kind    cdc.Kind
	want    cdc.Type // the fields the modifier sets
	samples []string
}{
	{"numeric(10,2)", cdc.KindDecimal, cdc.Type{Precision: 10, Scale: 2}, []string{"1.5", "-0.001", "99999999.99", "0"}},
	{"numeric(3,5)", cdc.KindDecimal, cdc.Type{Precision: 3, Scale: 5}, []string{"0.00123", "-0.00999"}},
	{"numeric(2,-3)", cdc.KindDecimal, cdc.Type{Precision: 2, Scale: -3}, []string{"12345", "-99000"}},
	{"timestamp(0)", cdc.KindTimestamp, cdc.Type{Precision: 0}, []string{"2026-03-01 12:00:00.6", "0044-03-15 23:59:59.5 BC"}},
	{"timestamptz(3)", cdc.KindTimestampTZ, cdc.Type{Precision: 3}, []string{"2026-03-01 12:00:00.123456+02"}},
	{"time(2)", cdc.KindTime, cdc.Type{Precision: 2}, []string{"23:59:59.999", "12:00:00.126"}},
	{"interval(0)", cdc.KindInterval, cdc.Type{Precision: 0}, []string{"1 day 00:00:00.7"}},
	{"interval year to month", cdc.KindInterval, cdc.Type{Precision: 6}, []string{"1 year 2 mons", "-3 mons"}},
	{"interval day to second(3)", cdc.KindInterval, cdc.Type{Precision: 3}, []string{"1 day 00:00:00.12345"}},
	{"bit(5)", cdc.KindBits, cdc.Type{Width: 5, Fixed: true}, []string{"10101", "00000"}},
	{"varbit(8)", cdc.KindBits, cdc.Type{Width: 8}, []string{"1", ""}},
	{"varchar(3)", cdc.KindText, cdc.Type{Width: 3}, []string{"abc", "é", ""}},
	{"char(3)", cdc.KindText, cdc.Type{Width: 3, Fixed: true}, []string{"a", "", "abc"}},
	{"numeric(10,2)[]", cdc.KindArray, cdc.Type{}, []string{"{1.5,NULL,-2}", "{{1,2},{3,4}}"}},
	{"text[]", cdc.KindArray, cdc.Type{}, []string{`{"NULL",NULL,"a,b","q\"u","","{}"," x "}`, "{}", `{{a,b},{c,NULL}}`, `{{{1}},{{2}}}`}},
	{"bytea[]", cdc.KindArray, cdc.Type{}, []string{`{"\\x00ff",NULL,"\\x"}`}},
	{"bool[]", cdc.KindArray, cdc.Type{}, []string{"{t,f,NULL}"}},
	{"date[]", cdc.KindArray, cdc.Type{}, []string{`{infinity,"0044-03-15 BC"}`}},
	{"int4[]", cdc.KindArray, cdc.Type{}, []string{"[0:1]={1,2}", "[2:2][1:1]={{3}}"}},
}

// refused are values that have no canonical form, and why: the test expects
// toCanonical to refuse them with an error saying so.
var refused = map[string]string{
	"[0:1]={1,2}":      "do not start at 1",
	"[2:2][1:1]={{3}}": "do not start at 1",
}

// valueColumn is a column type under test and its values' input texts.
type valueColumn struct {
	typ     string // the type as SQL writes it
	base    string // the catalog type it tests: typname, of the element for an array
	samples []string
}

func TestValueCanonical(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, pgtest.Source(t))
	db.Exec(t, matrixUserTypes+`
		CREATE TYPE v_label AS ENUM ('a b', 'NULL', 'x,y', 'q"u', 'é');
		CREATE EXTENSION citext;`)
	conn := valueConn(t, db, nil)
	cols := valueColumns(t, conn)
	types := columnTypes(t, conn, cols)
	var r valueReport
	for i, c := range cols {
		r.column(t, conn, c, types[i])
		r.equalButDifferent(conn, c)
	}
	// timestamptz's text is in the session's zone, bytea's in its bytea_output.
	for _, s := range []map[string]string{
		{"TimeZone": "Asia/Kolkata"}, {"TimeZone": "America/St_Johns"}, {"TimeZone": "Europe/Amsterdam"},
		{"TimeZone": "Pacific/Chatham"}, {"TimeZone": "Etc/GMT+12"}, {"bytea_output": "escape"},
	} {
		other := valueConn(t, db, s)
		for i, c := range cols {
			if k := leafKind(types[i]); k == cdc.KindTimestampTZ || k == cdc.KindBytes {
				r.column(t, other, c, types[i])
			}
		}
	}
	r.log(t)
}

// leafKind is a type's kind, or its elements' for an array.
func leafKind(ct cdc.Type) cdc.Kind {
	for ct.Kind == cdc.KindArray {
		ct = *ct.Elem
	}
	return ct.Kind
}

// valueConn connects with the settings every cutover connection has (Config), and
// session settings on top.
func valueConn(t *testing.T, db *pgtest.DB, settings map[string]string) *pgx.Conn {
	conn, err := connectSideWith(context.Background(), "source", plan.Endpoint{URL: db.URL()}, settings)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// valueColumns makes the columns under test from the catalog: each type, a domain
// over it, an array of it; then the modded ones. A catalog type with neither a
// wanted Kind nor a reason to be Other fails the test.
func valueColumns(t *testing.T, conn *pgx.Conn) []valueColumn {
	ctx := context.Background()
	rows, err := conn.Query(ctx, `
		SELECT t.typname, t.typarray <> 0 FROM pg_type t
		WHERE (t.typnamespace = 'pg_catalog'::regnamespace AND t.typtype IN ('b', 'r', 'm')
		       AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid))
		   OR t.typname IN ('mood', 'pair', 'ci_text', 'v_label', 'citext')
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var name string
	var hasArray bool
	var names []string
	arrays := map[string]bool{}
	if _, err := pgx.ForEachRow(rows, []any{&name, &hasArray}, func() error {
		names, arrays[name] = append(names, name), hasArray
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var cols []valueColumn
	var unknown []string
	for _, name := range names {
		if _, ok := wantKinds[name]; !ok && otherReason(name) == "" {
			unknown = append(unknown, name)
		}
		samples := append(slices.Clone(typeSamples[name]), valueEdges[name]...)
		qt := pgx.Identifier{name}.Sanitize()
		dom := pgx.Identifier{"v_dom_" + name}.Sanitize()
		if _, err := conn.Exec(ctx, "CREATE DOMAIN "+dom+" AS "+qt); err != nil {
			t.Fatalf("domain over %s: %v", name, err)
		}
		cols = append(cols, valueColumn{qt, name, samples}, valueColumn{dom, name, samples})
		if arrays[name] {
			cols = append(cols, valueColumn{qt + "[]", name, arraySamples(t, conn, qt, samples)})
		}
	}
	if len(unknown) > 0 {
		t.Fatalf("types of the catalog with no Kind in wantKinds nor a reason in otherWhy (decide which): %v", unknown)
	}
	for _, m := range modded {
		cols = append(cols, valueColumn{m.typ, m.typ, m.samples})
	}
	return cols
}

// arraySamples are array texts of a type's samples: all of them in one array with a
// NULL, and each alone.
func arraySamples(t *testing.T, conn *pgx.Conn, qt string, samples []string) []string {
	if len(samples) == 0 {
		return nil
	}
	out := []string{}
	lit := "ARRAY[NULL"
	for _, s := range samples {
		lit += ", '" + strings.ReplaceAll(s, "'", "''") + "'::" + qt
	}
	rows, err := rawRows(conn, "SELECT ("+lit+"])::text UNION ALL SELECT ARRAY[v::"+qt+"]::text FROM unnest($1::text[]) v", pgTextArray(samples))
	if err != nil {
		t.Fatalf("arrays of %s: %v", qt, err)
	}
	for _, r := range rows {
		out = append(out, string(r[0]))
	}
	return out
}

// pgTextArray writes strings as a text[] literal.
func pgTextArray(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
	}
	return "{" + strings.Join(q, ",") + "}"
}

// columnTypes adds a column of each type to a table and reads each one's cdc.Type
// from its pg_attribute row, as a relation would be read.
func columnTypes(t *testing.T, conn *pgx.Conn, cols []valueColumn) []cdc.Type {
	ctx := context.Background()
	types := make([]cdc.Type, len(cols))
	for i, c := range cols {
		tbl := fmt.Sprintf("v_col_%d", i)
		if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (v %s)", tbl, c.typ)); err != nil {
			t.Errorf("a column of type %s: %v", c.typ, err)
			continue
		}
		var oid uint32
		var mod int32
		if err := conn.QueryRow(ctx, "SELECT atttypid, atttypmod FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'v'", tbl).Scan(&oid, &mod); err != nil {
			t.Fatal(err)
		}
		ct, err := columnType(ctx, conn, oid, mod)
		if err != nil {
			t.Fatalf("%s: %v", c.typ, err)
		}
		types[i] = ct
		checkKind(t, c, ct)
	}
	return types
}

// checkKind checks a column's Kind (and a modded one's modifier fields) is the
// one wanted, and that its Name is the column's type.
func checkKind(t *testing.T, c valueColumn, ct cdc.Type) {
	want, ok := wantKinds[c.base]
	if !ok {
		want = cdc.KindOther
	}
	if strings.HasSuffix(c.typ, "[]") && want != cdc.KindOther {
		if ct.Kind != cdc.KindArray || ct.Elem == nil || ct.Elem.Kind != want {
			t.Errorf("%s: kind %v, want an array of %v", c.typ, ct.Kind, want)
		}
		return
	}
	for _, m := range modded {
		if m.typ == c.typ {
			want = m.kind
			if m.kind != cdc.KindArray && (ct.Precision != m.want.Precision || ct.Scale != m.want.Scale ||
				ct.Width != m.want.Width || ct.Fixed != m.want.Fixed) {
				t.Errorf("%s: %+v, want the modifier's fields of %+v", c.typ, ct, m.want)
			}
		}
	}
	if ct.Kind != want {
		t.Errorf("%s: kind %v, want %v", c.typ, ct.Kind, want)
	}
	if ct.Name == "" {
		t.Errorf("%s: no Name", c.typ)
	}
}

// valueReport counts what the test checked, for its log.
type valueReport struct {
	types   map[string]bool
	values  int
	byKind  map[cdc.Kind]int
	other   map[string]string
	refused []string
	twins   []string
}

// equalButDifferent notes pairs of a type's samples that its = calls equal but
// that the server writes differently: the values a canonical form must not merge.
func (r *valueReport) equalButDifferent(conn *pgx.Conn, c valueColumn) {
	if strings.HasSuffix(c.typ, "[]") || strings.HasPrefix(c.typ, `"v_dom_`) || len(c.samples) < 2 {
		return
	}
	rows, err := rawRows(conn, fmt.Sprintf(`
		SELECT a.v::%s::text || '  =  ' || b.v::%[1]s::text
		FROM unnest($1::text[]) WITH ORDINALITY a(v, i) JOIN unnest($1::text[]) WITH ORDINALITY b(v, j) ON a.i < b.j
		WHERE a.v::%[1]s = b.v::%[1]s AND a.v::%[1]s::text COLLATE "C" <> b.v::%[1]s::text COLLATE "C"`, c.typ), pgTextArray(c.samples))
	if err != nil {
		return // no = operator (json, xml, point, ...)
	}
	for _, row := range rows {
		r.twins = append(r.twins, fmt.Sprintf("%s: %s", c.typ, row[0]))
	}
}

// column round-trips each of a column's values.
func (r *valueReport) column(t *testing.T, conn *pgx.Conn, c valueColumn, ct cdc.Type) {
	t.Helper()
	if r.types == nil {
		r.types, r.byKind, r.other = map[string]bool{}, map[cdc.Kind]int{}, map[string]string{}
	}
	r.types[c.typ] = true
	if ct.Kind == cdc.KindOther {
		r.other[c.base] = otherReason(c.base)
	}
	for _, s := range c.samples {
		pgText, err := rawValue(conn, "SELECT $1::"+c.typ, s)
		if err != nil {
			t.Errorf("%s %q: the server refuses the sample: %v", c.typ, s, err)
			continue
		}
		r.values++
		r.byKind[ct.Kind]++
		if err := roundTrip(conn, c.typ, ct, pgText); err != nil {
			if why, ok := refused[s]; ok && strings.Contains(err.Error(), why) {
				r.refused = append(r.refused, fmt.Sprintf("%s %q: %v", c.typ, s, err))
				continue
			}
			t.Errorf("%s %q: %v", c.typ, pgText, err)
		}
	}
}

// roundTrip checks one value: PostgreSQL text → canonical (as documented) →
// PostgreSQL text that the server reads as the same value and writes as the same text.
func roundTrip(conn *pgx.Conn, typ string, ct cdc.Type, pgText []byte) error {
	canonical, err := toCanonical(ct, pgText)
	if ct.Kind == cdc.KindOther {
		if !errors.Is(err, errNoCanonical) {
			return fmt.Errorf("a KindOther type converted: %q, %v", canonical, err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	back, err := fromCanonical(ct, canonical)
	if err != nil {
		return err
	}
	if err := sameValue(conn, typ, pgText, back); err != nil {
		return fmt.Errorf("canonical %q: %w", canonical, err)
	}
	if err := checkCanonical(conn, typ, ct, pgText, canonical); err != nil {
		return fmt.Errorf("canonical %q: %w", canonical, err)
	}
	return nil
}

// sameValue checks the server reads back as the value of pgText: equal by the
// type's equality where it has one, and written as the same text.
func sameValue(conn *pgx.Conn, typ string, pgText, back []byte) error {
	eq, err := rawValue(conn, fmt.Sprintf("SELECT $1::%s IS NOT DISTINCT FROM $2::%[1]s", typ), string(pgText), string(back))
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "42883": // no equality (json, xml, ...): the text decides
	case err != nil:
		return fmt.Errorf("read back %q: %w", back, err)
	case string(eq) != "t":
		return fmt.Errorf("read back %q: not the same value", back)
	}
	out, err := rawValue(conn, "SELECT $1::"+typ, string(back))
	if err != nil {
		return err
	}
	if string(out) != string(pgText) {
		return fmt.Errorf("read back %q: written as %q, not as the original", back, out)
	}
	return nil
}

// checkCanonical checks a canonical form against the Kind's rule, from what the
// server says of the value.
func checkCanonical(conn *pgx.Conn, typ string, ct cdc.Type, pgText, canonical []byte) error {
	v, c := string(pgText), string(canonical)
	ask := func(expr string) (string, error) { // expr over $1, the value of typ
		out, err := rawValue(conn, "SELECT "+strings.ReplaceAll(expr, "$1", "$1::"+typ), v)
		return string(out), err
	}
	want := c
	var err error
	switch ct.Kind {
	case cdc.KindBool:
		want, err = ask("$1::bool::text")
	case cdc.KindInt, cdc.KindUint:
		want, err = ask("$1::text::numeric::text")
	case cdc.KindDecimal:
		return checkDecimalForm(ct, c, ask)
	case cdc.KindFloat32, cdc.KindFloat64:
		return checkFloatForm(conn, typ, ct, v, c)
	case cdc.KindText, cdc.KindJSON, cdc.KindEnum, cdc.KindBits:
		want = v
	case cdc.KindBytes:
		want, err = ask("encode($1::bytea, 'hex')")
		c = hex.EncodeToString(canonical)
	case cdc.KindUUID:
		want, err = ask("lower($1::uuid::text)")
	case cdc.KindDate:
		want, err = ask(`CASE WHEN isfinite($1) THEN concat_ws('|', extract(year from $1), to_char(extract(month from $1), 'FM00') || '-' || to_char(extract(day from $1), 'FM00')) ELSE $1::text END`)
		want = astronomical(want, "")
	case cdc.KindTimestamp, cdc.KindTimestampTZ:
		utc, suffix := "$1", ""
		if ct.Kind == cdc.KindTimestampTZ {
			utc, suffix = "($1 AT TIME ZONE 'UTC')", "Z"
		}
		want, err = ask(strings.ReplaceAll(`CASE WHEN isfinite($t) THEN concat_ws('|', extract(year from $t), to_char($t, 'MM-DD HH24:MI:SS.US')) ELSE $1::text END`, "$t", utc))
		want = astronomical(want, suffix)
	case cdc.KindTime:
		want, err = ask("to_char(extract(hour from $1), 'FM00') || ':' || to_char(extract(minute from $1), 'FM00') || ':' || to_char(extract(second from $1), 'FM00.000000')")
		want = trimFraction(want)
	case cdc.KindInterval:
		want, err = isoInterval(conn, typ, v)
	case cdc.KindArray:
		return checkArrayForm(conn, typ, ct, v, canonical)
	}
	if err != nil {
		return err
	}
	if c != want {
		return fmt.Errorf("the rule of %v says %q", ct.Kind, want)
	}
	return nil
}

// astronomical turns "year|MM-DD[ HH:MM:SS.ffffff]" (extract's year: -44 is 44 BC)
// into the canonical date or timestamp; "infinity" stays.
func astronomical(s, suffix string) string {
	year, rest, ok := strings.Cut(s, "|")
	if !ok {
		return s
	}
	y, _ := strconv.Atoi(year)
	if y < 0 {
		y++ // 1 BC is year 0
	}
	sign := ""
	if y < 0 {
		sign, y = "-", -y
	}
	return fmt.Sprintf("%s%04d-%s", sign, y, trimFraction(rest)) + suffix
}

// trimFraction drops trailing zeros of a ".ffffff", and the point if nothing is left.
func trimFraction(s string) string {
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// checkDecimalForm: plain notation, the same number, and the value's scale as
// numeric's scale() says (the declared one for a typmod).
func checkDecimalForm(ct cdc.Type, c string, ask func(string) (string, error)) error {
	if c == "NaN" || c == "Infinity" || c == "-Infinity" {
		return nil
	}
	if !regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?$`).MatchString(c) || regexp.MustCompile(`^-0(\.0*)?$`).MatchString(c) {
		return errors.New("not plain notation")
	}
	scale, err := ask("scale($1::numeric)")
	if err != nil {
		return err
	}
	_, frac, _ := strings.Cut(c, ".")
	if strconv.Itoa(len(frac)) != scale {
		return fmt.Errorf("%d digits after the point, scale() says %s", len(frac), scale)
	}
	if ct.Precision > 0 && len(frac) != max(ct.Scale, 0) {
		return fmt.Errorf("%d digits after the point, declared scale %d", len(frac), ct.Scale)
	}
	return nil
}

// checkFloatForm: the same bits (float8send), the digits of PostgreSQL's own
// shortest output (extra_float_digits 3), laid out by the rule's exponent range.
func checkFloatForm(conn *pgx.Conn, typ string, ct cdc.Type, v, c string) error {
	same, err := rawValue(conn, fmt.Sprintf("SELECT float8send($1::%s::float8) = float8send($2::%[1]s::float8)", typ), v, c)
	if err != nil {
		return err
	}
	if string(same) != "t" {
		return errors.New("not the same bits")
	}
	if v == "NaN" || strings.HasSuffix(v, "Infinity") {
		if c != v {
			return fmt.Errorf("special value %q written %q", v, c)
		}
		return nil
	}
	if digits(c) != digits(v) {
		return fmt.Errorf("digits %s, PostgreSQL's shortest are %s", digits(c), digits(v))
	}
	plain := !strings.Contains(c, "e")
	mag, _ := strconv.ParseFloat(strings.TrimPrefix(c, "-"), 64)
	wantPlain := mag == 0 || (mag >= 1e-4 && mag < 1e21)
	if plain != wantPlain || regexp.MustCompile(`e[+-]0|e[0-9]|\.[0-9]*0e|\.0*$|\.$`).MatchString(c) {
		return fmt.Errorf("not laid out as the rule says (plain for 1e-4 <= |x| < 1e21)")
	}
	return nil
}

// digits are a number's significant digits: no sign, point, exponent or outer zeros.
func digits(s string) string {
	s, _, _ = strings.Cut(strings.ToLower(strings.TrimPrefix(s, "-")), "e")
	s = strings.Replace(s, ".", "", 1)
	return strings.TrimRight(strings.TrimLeft(s, "0"), "0")
}

// isoInterval is the server's output of an interval with IntervalStyle iso_8601.
func isoInterval(conn *pgx.Conn, typ, v string) (string, error) {
	// Several statements take no parameters: the value is quoted.
	res, err := conn.PgConn().Exec(context.Background(), "SET IntervalStyle = iso_8601; SELECT '"+strings.ReplaceAll(v, "'", "''")+"'::"+typ+"; SET IntervalStyle = postgres").ReadAll()
	if err != nil {
		return "", err
	}
	return string(res[1].Rows[0][0]), nil
}

// checkArrayForm: the dimensions of the JSON arrays are array_dims', and each
// element is the canonical form of unnest's element (row-major order), hex for bytes.
func checkArrayForm(conn *pgx.Conn, typ string, ct cdc.Type, v string, canonical []byte) error {
	elems, err := cdc.ParseArray(canonical)
	if err != nil {
		return err
	}
	dims, err := rawValue(conn, "SELECT coalesce(array_dims($1::"+typ+"), '')", v)
	if err != nil {
		return err
	}
	var flat []any
	if got := jsonDims(elems, 0, &flat); got != string(dims) {
		return fmt.Errorf("dimensions %s, array_dims says %s", got, dims)
	}
	rows, err := rawRows(conn, "SELECT u FROM unnest($1::"+typ+") u", v)
	if err != nil {
		return err
	}
	if len(rows) != len(flat) {
		return fmt.Errorf("%d elements, unnest gives %d", len(flat), len(rows))
	}
	for i, row := range rows {
		if row[0] == nil {
			if flat[i] != nil {
				return fmt.Errorf("element %d: %v, unnest gives NULL", i+1, flat[i])
			}
			continue
		}
		want, err := toCanonical(*ct.Elem, row[0])
		if err != nil {
			return err
		}
		w := string(want)
		if ct.Elem.Kind == cdc.KindBytes {
			w = hex.EncodeToString(want)
		}
		if flat[i] != w {
			return fmt.Errorf("element %d: %v, want %q", i+1, flat[i], w)
		}
	}
	return nil
}

// jsonDims writes nested JSON arrays' dimensions as array_dims does ("[1:2][1:3]",
// "" for an empty array), flattening the elements in row-major order into flat.
func jsonDims(elems []any, depth int, flat *[]any) string {
	if len(elems) == 0 {
		return ""
	}
	dims := fmt.Sprintf("[1:%d]", len(elems))
	inner := ""
	for _, e := range elems {
		if sub, ok := e.([]any); ok {
			inner = jsonDims(sub, depth+1, flat)
		} else {
			*flat = append(*flat, e)
		}
	}
	return dims + inner
}

// rawValue runs a one-row, one-column query and returns the column's text output
// exactly as the type's output function wrote it (the text format of the protocol).
func rawValue(conn *pgx.Conn, sql string, args ...string) ([]byte, error) {
	rows, err := rawRows(conn, sql, args...)
	if err != nil {
		return nil, err
	}
	if len(rows) != 1 || len(rows[0]) != 1 {
		return nil, fmt.Errorf("%s: %d rows", sql, len(rows))
	}
	return rows[0][0], nil
}

func rawRows(conn *pgx.Conn, sql string, args ...string) ([][][]byte, error) {
	params := make([][]byte, len(args))
	for i, a := range args {
		params[i] = append([]byte{}, a...)
	}
	res := conn.PgConn().ExecParams(context.Background(), sql, params, nil, nil, nil).Read()
	if res.Err != nil {
		return nil, res.Err
	}
	return res.Rows, nil
}

func (r *valueReport) log(t *testing.T) {
	var kinds []string
	for k, n := range r.byKind {
		kinds = append(kinds, fmt.Sprintf("%v %d", k, n))
	}
	sort.Strings(kinds)
	var others []string
	for name, why := range r.other {
		others = append(others, name+": "+why)
	}
	sort.Strings(others)
	t.Logf("%d column types, %d values checked (by kind: %s)", len(r.types), r.values, strings.Join(kinds, ", "))
	t.Logf("%d types are KindOther, PostgreSQL to PostgreSQL only:\n  %s", len(others), strings.Join(others, "\n  "))
	t.Logf("equal by = but written differently (kept apart by the round trip):\n  %s", strings.Join(r.twins, "\n  "))
	t.Logf("refused, as they should be:\n  %s", strings.Join(r.refused, "\n  "))
}

// The most negative interval: PostgreSQL writes it in a text its input refuses, so
// a value of it cannot travel in PostgreSQL's text even between PostgreSQL servers;
// through the canonical form it does.
func TestValueIntervalMin(t *testing.T) {
	t.Parallel()
	conn := valueConn(t, pgtest.NewDB(t, pgtest.Source(t)), nil)
	const input = "-9223372036854775808 microseconds"
	pgText, err := rawValue(conn, "SELECT $1::interval", input)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rawValue(conn, "SELECT $1::interval", string(pgText)); err == nil {
		t.Logf("this server reads its output %q of the most negative interval back (PostgreSQL 15 does not)", pgText)
	}
	ct := cdc.Type{Kind: cdc.KindInterval, Name: "interval", Precision: 6}
	canonical, err := toCanonical(ct, pgText)
	if err != nil || string(canonical) != "PT-2562047788H-54.775808S" {
		t.Fatalf("canonical %q, %v", canonical, err)
	}
	back, err := fromCanonical(ct, canonical)
	if err != nil {
		t.Fatal(err)
	}
	if eq, err := rawValue(conn, "SELECT $1::interval = $2::interval", input, string(back)); err != nil || string(eq) != "t" {
		t.Errorf("%q reads back as %s, %v", back, eq, err)
	}
}

// What the conversions refuse, without a server: values a PostgreSQL column cannot
// hold, and texts in neither form.
func TestCanonicalRefuses(t *testing.T) {
	labels := []string{"sad", "happy"}
	to := []struct {
		typ  cdc.Type
		text string
	}{
		{cdc.Type{Kind: cdc.KindBool}, "true"}, // PostgreSQL writes t
		{cdc.Type{Kind: cdc.KindInt, Width: 2}, "32768"},
		{cdc.Type{Kind: cdc.KindDecimal}, "1e5"},
		{cdc.Type{Kind: cdc.KindDate}, "2026-02-30"},
		{cdc.Type{Kind: cdc.KindDate}, "03/01/2026"}, // DateStyle not ISO
		{cdc.Type{Kind: cdc.KindTimestampTZ}, "2026-03-01 12:00:00"},
		{cdc.Type{Kind: cdc.KindInterval}, "P1D"}, // IntervalStyle iso_8601
		{cdc.Type{Kind: cdc.KindArray, Elem: &cdc.Type{Kind: cdc.KindInt, Width: 4}}, "{1,2"},
		{cdc.Type{Kind: cdc.KindArray, Elem: &cdc.Type{Kind: cdc.KindInt, Width: 4}}, "[0:0]={1}"},
		{cdc.Type{Kind: cdc.KindOther, Name: "point"}, "(0,0)"},
	}
	for _, c := range to {
		if out, err := toCanonical(c.typ, []byte(c.text)); err == nil {
			t.Errorf("toCanonical(%v, %q) = %q, want an error", c.typ.Kind, c.text, out)
		}
	}
	from := []struct {
		typ  cdc.Type
		text string
	}{
		{cdc.Type{Kind: cdc.KindBool}, "t"},
		{cdc.Type{Kind: cdc.KindInt, Width: 8}, "+1"},
		{cdc.Type{Kind: cdc.KindInt, Width: 8}, "007"},
		{cdc.Type{Kind: cdc.KindUint, Width: 4}, "-1"},
		{cdc.Type{Kind: cdc.KindDecimal}, "-0.00"},
		{cdc.Type{Kind: cdc.KindDecimal}, ".5"},
		{cdc.Type{Kind: cdc.KindFloat64}, "1e999"},
		{cdc.Type{Kind: cdc.KindText}, "a\x00b"},
		{cdc.Type{Kind: cdc.KindText}, "\xff"},
		{cdc.Type{Kind: cdc.KindEnum, Labels: labels}, "angry"},
		{cdc.Type{Kind: cdc.KindDate}, "0000-00-00"}, // MySQL's zero date
		{cdc.Type{Kind: cdc.KindDate}, "44-03-15"},
		{cdc.Type{Kind: cdc.KindTimestamp}, "2026-03-01T12:00:00"},
		{cdc.Type{Kind: cdc.KindTimestampTZ}, "2026-03-01 12:00:00+01"},
		{cdc.Type{Kind: cdc.KindTime}, "-100:00:00"}, // MySQL's TIME as a duration
		{cdc.Type{Kind: cdc.KindTime}, "24:00:01"},
		{cdc.Type{Kind: cdc.KindInterval}, "1 day"},
		{cdc.Type{Kind: cdc.KindBits, Width: 5, Fixed: true}, "101"},
		{cdc.Type{Kind: cdc.KindBits}, "12"},
		{cdc.Type{Kind: cdc.KindUUID}, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"},
		{cdc.Type{Kind: cdc.KindArray, Elem: &cdc.Type{Kind: cdc.KindInt, Width: 4}}, `[1]`},
		{cdc.Type{Kind: cdc.KindArray, Elem: &cdc.Type{Kind: cdc.KindBytes}}, `["zz"]`},
		{cdc.Type{Kind: cdc.KindSet, Labels: labels}, "sad"}, // PostgreSQL has no set type
	}
	for _, c := range from {
		if out, err := fromCanonical(c.typ, []byte(c.text)); err == nil {
			t.Errorf("fromCanonical(%v, %q) = %q, want an error", c.typ.Kind, c.text, out)
		}
	}
	if _, err := toCanonical(cdc.Type{Kind: cdc.KindOther, Name: "point"}, []byte("(0,0)")); !errors.Is(err, errNoCanonical) {
		t.Errorf("KindOther: %v, want errNoCanonical", err)
	}
}

// typeOf without a server: the modifiers' decoding.
func TestValueKindModifiers(t *testing.T) {
	base := func(name string) catalogType {
		return catalogType{oid: 20, name: name, typtype: 'b', format: name}
	}
	cases := []struct {
		name   string
		typmod int32
		want   cdc.Type
	}{
		{"numeric", -1, cdc.Type{Kind: cdc.KindDecimal}},
		{"numeric", 10<<16 | 2 + 4, cdc.Type{Kind: cdc.KindDecimal, Precision: 10, Scale: 2}},
		{"numeric", 2<<16 | (-3 & 0x7ff) + 4, cdc.Type{Kind: cdc.KindDecimal, Precision: 2, Scale: -3}},
		{"varchar", 20 + 4, cdc.Type{Kind: cdc.KindText, Width: 20}},
		{"bpchar", -1, cdc.Type{Kind: cdc.KindText}},
		{"timestamptz", -1, cdc.Type{Kind: cdc.KindTimestampTZ, Precision: 6}},
		{"timestamp", 0, cdc.Type{Kind: cdc.KindTimestamp}},
		{"interval", 0x7fff<<16 | 3, cdc.Type{Kind: cdc.KindInterval, Precision: 3}},
		{"interval", 6<<16 | 0xffff, cdc.Type{Kind: cdc.KindInterval, Precision: 6}},
		{"bit", 8, cdc.Type{Kind: cdc.KindBits, Width: 8, Fixed: true}},
		{"varbit", -1, cdc.Type{Kind: cdc.KindBits}},
		{"money", -1, cdc.Type{Kind: cdc.KindOther}},
	}
	for _, c := range cases {
		got := typeOf(base(c.name), c.typmod, cdc.Type{})
		c.want.Name = c.name
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s(%d): %+v, want %+v", c.name, c.typmod, got, c.want)
		}
	}
}
