package postgres

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/schema"
	"github.com/jackc/pgx/v5"
)

// Translating a MySQL (or MariaDB) schema into PostgreSQL's
//
// translate reads a schema.Schema of dialect "mysql" and writes the PostgreSQL DDL
// that holds its tables, the converters from each column's canonical text to the
// text PostgreSQL's COPY reads, and what it does not carry (findings). The rules,
// and why (a plan's types: overrides any column's type):
//
//   - Names are folded to lower case (ASCII A-Z only, as PostgreSQL folds an
//     unquoted identifier, so applications can keep writing them unquoted) and
//     always quoted in the DDL. Two source names of one scope (tables of the target
//     schema, columns of a table, foreign keys of a table) that fold (or truncate,
//     at 63 bytes) to the same name are an error naming both. Names the translation
//     makes (enum types, indexes, constraints) take a suffix _2, _3... instead.
//     Every table goes into the one target schema.
//   - Integers by signedness and width, never by the display width: tinyint and
//     smallint to smallint, mediumint and int to integer, bigint to bigint;
//     unsigned ones one size up (tinyint unsigned to smallint, smallint and
//     mediumint unsigned to integer, int unsigned to bigint, bigint unsigned to
//     numeric(20)). Where the PostgreSQL type holds more than MySQL's, a CHECK keeps
//     MySQL's range (tinyint: -128 to 127, int unsigned: 0 to 4294967295...): a
//     value written to PostgreSQL after the switch then still fits MySQL on a
//     failback, and the application sees the errors it saw. An AUTO_INCREMENT
//     bigint unsigned is bigint (an identity column must be an integer type) with
//     CHECK >= 0, and so are the bigint unsigned columns whose foreign keys
//     reference it (PostgreSQL cannot compare numeric and bigint in a foreign key);
//     values above 9223372036854775807 are refused by the converter.
//   - tinyint(1) to boolean only with TinyintAsBoolean; its values must be 0 or 1.
//   - YEAR to smallint, CHECK 0 or 1901 to 2155.
//   - DECIMAL(p,s) to numeric(p,s); an unsigned DECIMAL, FLOAT or DOUBLE gets CHECK
//     >= 0 (MySQL refuses negative values there). FLOAT to real, DOUBLE to double
//     precision (by the canonical kind: FLOAT(p) with p > 24 is a DOUBLE).
//   - CHAR(n) and VARCHAR(n) to character varying(n): MySQL strips CHAR's trailing
//     spaces on output, so the values are the text MySQL gives, and PostgreSQL's
//     character(n) would pad them back (and return the padding to applications).
//     Comparisons in PostgreSQL are pad-sensitive ('a' <> 'a '): a finding names the
//     keys where MySQL's PAD SPACE collation made them equal. TEXT types to text,
//     with a CHECK on octet_length for TINYTEXT, TEXT and MEDIUMTEXT in a utf8
//     charset (their limits are bytes; char_length in latin1 and ascii). Charsets
//     become UTF-8, with a CHECK that keeps a latin1, ascii or utf8mb3 column's values
//     in its set (charsetCheck; a finding names those columns).
//   - Case-insensitive collations: with CaseInsensitive "icu" an ICU
//     nondeterministic collation made by the translation (cutover_ci: und-u-ks-level2,
//     case-insensitive and accent-sensitive, for MySQL's _as_ci collations;
//     cutover_ci_ai: und-u-ks-level1, case- and accent-insensitive, for the others:
//     MySQL's _ci collations are accent-insensitive unless _as_); with "citext" the
//     citext type (a length CHECK replaces varchar's n); otherwise the default,
//     deterministic collation and a finding that comparisons become case-sensitive.
//   - BINARY, VARBINARY and BLOB types to bytea, with CHECK octet_length <= the
//     MySQL maximum (below 1 GB).
//   - BIT(n) to bit(n), not bit varying(n): MySQL's values have exactly n bits
//     (right-aligned), so bit(n) holds each one exactly and compares them as MySQL
//     does; writes after the switch must give all n bits.
//   - DATE to date, DATETIME(p) to timestamp(p) without time zone, TIMESTAMP(p) to
//     timestamp(p) with time zone (the canonical form is UTC); TIME(p) to interval(p)
//     (MySQL's TIME is a duration of up to ±838:59:59, which PostgreSQL's time
//     refuses). Zero dates become NULL (ZeroDates "null", the default: the source
//     side turns them into NULL): NOT NULL is dropped on the columns listed in
//     ZeroDateColumns, and only there, each reported.
//   - ENUM to an enum type <table>_<column> with the labels in their order (the
//     order MySQL sorts by), or with EnumAs "check" text with CHECK (col IN (...)).
//     A label longer than 63 bytes (PostgreSQL's limit) makes that column a CHECK.
//   - SET to text[] with CHECK (col <@ ARRAY[labels]::text[]).
//   - JSON to jsonb (MySQL's JSON normalizes as jsonb does; jsonb refuses \u0000).
//   - UUID (MariaDB) to uuid.
//   - Spatial types to PostGIS's geometry when the target database has the postgis
//     extension (GEOMETRY and MariaDB's GEOMETRYCOLLECTION, which takes any geometry,
//     to plain geometry; POINT to geometry(Point), and so on), each value with its
//     SRID; without the extension they are not carried.
//   - Other types (MariaDB's INET4 and INET6) are not carried: the column is left out,
//     an error.
//   - AUTO_INCREMENT to GENERATED BY DEFAULT AS IDENTITY, restarted after the load
//     at the greater of the table's next AUTO_INCREMENT and max + 1 (identities).
//   - Defaults: a constant through the column's converter as a literal;
//     CURRENT_TIMESTAMP to CURRENT_TIMESTAMP(p) for timestamptz, LOCALTIMESTAMP(p)
//     for timestamp (MySQL's DATETIME default is the session time zone's wall clock,
//     as LOCALTIMESTAMP is the session TimeZone's), CURRENT_DATE for a date; other
//     expressions are not carried (a finding each).
//   - Generated columns become plain columns filled by the copy (their expression is
//     MySQL's: a finding each); ON UPDATE CURRENT_TIMESTAMP is a finding with the
//     trigger that does it.
//   - Indexes: btree (and hash) to btree; a prefix part of a unique index to the
//     exact left(col, n) (substring for bytes), of another index to the whole column
//     when its values are short enough for a btree entry, else left(col, n); FULLTEXT
//     to a GIN index on to_tsvector('simple', ...); SPATIAL to GiST (with PostGIS);
//     expression indexes are not carried. Foreign keys with their actions; CHECK constraints,
//     triggers, routines and events are MySQL SQL and are listed, not carried; views
//     are carried when PostgreSQL takes their SQL in its quoting (views.go).
type translateRules struct {
	// TinyintAsBoolean maps tinyint(1) to boolean.
	TinyintAsBoolean bool
	// CaseInsensitive is what a case-insensitive collation becomes: "" (the default
	// collation, case-sensitive), "icu" (an ICU nondeterministic collation) or
	// "citext".
	CaseInsensitive string
	// ZeroDates is what a zero date ('0000-00-00') becomes: "null" (the default) or
	// "error" (the load refuses it).
	ZeroDates string
	// ZeroDateColumns are the columns holding zero dates, "table.column" or
	// "schema.table.column" (the source's names, compared case-insensitively).
	ZeroDateColumns map[string]bool
	// EnumAs is "type" (the default: CREATE TYPE ... AS ENUM) or "check".
	EnumAs string
	// PostGIS: the target database has the postgis extension, and MySQL's spatial
	// types become its geometry (without it they are not carried).
	PostGIS bool
	// CDC: change data capture follows the load (cdc.enabled). A foreign key with an
	// action (CASCADE, SET NULL, SET DEFAULT) that is not carried is then an error:
	// MySQL does not log what the action does, and only the target's key would.
	CDC bool
	// Types overrides the PostgreSQL type of a column ("table.column",
	// "schema.table.column") or of a MySQL type ("tinyint(1)", "bigint unsigned",
	// "datetime"), most specific first. Values are then written as for the type the
	// rules would choose (as text for a text type, 0/1 as f/t for boolean) and read
	// by the override type's input function.
	Types map[string]string
}

// translation is a schema translated into PostgreSQL's.
type translation struct {
	schema   string // the target schema
	rules    translateRules
	dialect  string
	tables   []*translatedTable
	byName   map[string]*translatedTable // source schema.name
	pre      []string                    // schema, extension, collations, enum types
	views    []*translatedView
	types    []string // CREATE TYPE of the enums
	findings []check.Finding
}

// translatedTable is one table's translation.
type translatedTable struct {
	source    *schema.Table
	name      string // the target's name, folded
	qualified string // the target's schema-qualified name, quoted
	columns   []*translatedColumn
	// copyColumns are the target's columns the copy fills, quoted, in source order;
	// sourceColumns the source's names of the same columns; converters turn each
	// one's canonical text into the text PostgreSQL's COPY reads.
	copyColumns   []string
	sourceColumns []string
	converters    []func(canonical []byte) ([]byte, error)
	create        []string // CREATE TABLE and its comments
	indexes       []string
	foreignKeys   []string
	identity      []string
}

type translatedColumn struct {
	src       *schema.Column
	name      string // folded; "" when not carried
	pgType    string
	collation string // a quoted collation name, "" for the default
	checks    []string
	identity  bool
	notNull   bool
	def       string // the DEFAULT expression, "" for none
	conv      func([]byte) ([]byte, error)
	// back is conv's inverse, set on every carried column: it takes the column's
	// value as readExpr reads it in a session with canonicalSession()'s settings and
	// returns the canonical text of the source column's type (src.Type), exactly as
	// the source engine writes the same value (see "Reading values back").
	back  func(pgText []byte) ([]byte, error)
	notes []string
}

func (c *translatedColumn) carried() bool { return c.name != "" }

// readExpr is the SELECT expression a reader of the target reads the column with,
// quotedName its name quoted (and qualified if need be), for back: the value's text
// output, as text. See "Reading values back".
func (c *translatedColumn) readExpr(quotedName string) string { return quotedName + "::text" }

// maxIdent is PostgreSQL's longest identifier in bytes (NAMEDATALEN - 1).
const maxIdent = 63

// foldName folds a name as PostgreSQL folds an unquoted identifier in UTF-8: ASCII
// letters only.
func foldName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// truncName cuts a name to maxIdent bytes at a character boundary.
func truncName(s string) string { return cutName(s, maxIdent) }

// cutName cuts s to at most n bytes at a character boundary.
func cutName(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// nameScope is one scope of PostgreSQL names: name to what holds it.
type nameScope map[string]string

// claim takes name for who; false (and the holder) when it is taken.
func (n nameScope) claim(name, who string) (string, bool) {
	if h, ok := n[name]; ok {
		return h, false
	}
	n[name] = who
	return "", true
}

// unique returns base (truncated), or base with a suffix _2, _3... that is free,
// and claims it.
func (n nameScope) unique(base, who string) string {
	name := truncName(base)
	for i := 2; ; i++ {
		if _, ok := n.claim(name, who); ok {
			return name
		}
		suffix := "_" + strconv.Itoa(i)
		name = cutName(base, maxIdent-len(suffix)) + suffix
	}
}

func qident(name string) string { return pgx.Identifier{name}.Sanitize() }

// myIdent quotes a name as MySQL does, for the fixes run on the source.
func myIdent(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

var overrideType = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_ .,()\[\]"]*$`)

// translate translates s (dialect "mysql") into PostgreSQL's schema targetSchema.
func translate(s *schema.Schema, targetSchema string, rules translateRules) (*translation, error) {
	if rules.ZeroDates == "" {
		rules.ZeroDates = "null"
	}
	if rules.EnumAs == "" {
		rules.EnumAs = "type"
	}
	var errs []error
	if rules.ZeroDates != "null" && rules.ZeroDates != "error" {
		errs = append(errs, fmt.Errorf("zero dates %q: null or error", rules.ZeroDates))
	}
	if rules.EnumAs != "type" && rules.EnumAs != "check" {
		errs = append(errs, fmt.Errorf("enum as %q: type or check", rules.EnumAs))
	}
	if rules.CaseInsensitive != "" && rules.CaseInsensitive != "icu" && rules.CaseInsensitive != "citext" {
		errs = append(errs, fmt.Errorf("case insensitive %q: icu, citext or nothing", rules.CaseInsensitive))
	}
	if targetSchema == "" {
		errs = append(errs, errors.New("no target schema"))
	}
	zero, types := map[string]bool{}, map[string]string{}
	for k, v := range rules.ZeroDateColumns {
		zero[strings.ToLower(k)] = v
	}
	for k, v := range rules.Types {
		if !overrideType.MatchString(v) {
			errs = append(errs, fmt.Errorf("type for %s: %q is not a type name", k, v))
		}
		types[normalizeTypeKey(k)] = strings.TrimSpace(v)
	}
	rules.ZeroDateColumns, rules.Types = zero, types
	if len(errs) > 0 {
		return nil, fmt.Errorf("translation rules: %w", errors.Join(errs...))
	}
	tr := &translation{schema: targetSchema, rules: rules, dialect: s.Dialect, byName: map[string]*translatedTable{}}
	if err := tr.nameTables(s); err != nil {
		return nil, err
	}
	narrow := narrowedColumns(s, rules)
	rels, typeNames := nameScope{}, nameScope{}
	for _, t := range tr.tables {
		rels[t.name], typeNames[t.name] = "table "+t.source.String(), "table "+t.source.String()
	}
	for _, t := range tr.tables {
		for _, c := range t.columns {
			if c.identity {
				rels.unique(t.name+"_"+c.name+"_seq", "the identity of "+t.name+"."+c.name)
			}
		}
	}
	needCI, needCIAI, needCitext := false, false, false
	for _, t := range tr.tables {
		for _, c := range t.columns {
			tr.mapColumn(t, c, narrow[t.source.String()+"."+c.src.Name], typeNames)
			switch c.collation {
			case qident(targetSchema) + "." + qident("cutover_ci"):
				needCI = true
			case qident(targetSchema) + "." + qident("cutover_ci_ai"):
				needCIAI = true
			}
			if c.pgType == "citext" {
				needCitext = true
			}
		}
	}
	tr.pre = []string{"CREATE SCHEMA IF NOT EXISTS " + qident(targetSchema)}
	if needCitext {
		tr.pre = append(tr.pre, "CREATE EXTENSION IF NOT EXISTS citext")
	}
	for _, c := range []struct {
		need         bool
		name, locale string
	}{{needCI, "cutover_ci", "und-u-ks-level2"}, {needCIAI, "cutover_ci_ai", "und-u-ks-level1"}} {
		if c.need {
			tr.pre = append(tr.pre, fmt.Sprintf("CREATE COLLATION IF NOT EXISTS %s.%s (provider = icu, locale = '%s', deterministic = false)",
				qident(targetSchema), qident(c.name), c.locale))
		}
	}
	if needCI || needCIAI {
		tr.finding(check.Info, "translate_collation", "schema "+targetSchema,
			"case-insensitive columns use an ICU nondeterministic collation: PostgreSQL before 18 refuses LIKE, ILIKE and regular expressions on them "+
				"(\"nondeterministic collations are not supported for LIKE\"), and it ignores trailing spaces nowhere (MySQL's PAD SPACE does)",
			`match patterns on the column with a deterministic collation: col COLLATE "default" ILIKE 'abc%'`)
	}
	tr.pre = append(tr.pre, tr.types...)
	for _, t := range tr.tables {
		tr.buildTable(t, rels)
	}
	indexNames := indexNameCounts(s)
	for _, t := range tr.tables {
		tr.buildIndexes(t, rels, indexNames)
	}
	for _, t := range tr.tables {
		tr.buildForeignKeys(t)
		tr.reportChecks(t)
	}
	for _, o := range s.Objects {
		if o.Kind == "view" {
			tr.views = append(tr.views, tr.translateView(o)) // tried on the target (views.go)
			continue
		}
		what := o.Kind + " " + o.Schema + "." + o.Name
		if o.Table != "" {
			what += " on " + o.Table
		}
		tr.finding(check.Warning, "translate_object", what,
			"not carried: create it by hand; its MySQL definition: "+o.Definition,
			"write it in PostgreSQL's SQL ("+objectWhen(o.Kind)+")")
	}
	return tr, nil
}

func objectWhen(kind string) string {
	switch kind {
	case "view":
		return "before the switch, once the tables are loaded"
	case "trigger", "event":
		return "after the switch: a trigger fired during the copy or the replication would act twice"
	}
	return "before the switch"
}

func (tr *translation) finding(sev check.Severity, chk, object, problem, fix string) {
	tr.findings = append(tr.findings, check.Finding{Severity: sev, Check: chk, Object: object, Problem: problem, Fix: fix})
}

// nameTables folds the tables' and columns' names, refusing collisions.
func (tr *translation) nameTables(s *schema.Schema) error {
	tables := nameScope{}
	var errs []error
	for _, st := range s.Tables {
		name := truncName(foldName(st.Name))
		if name != foldName(st.Name) {
			tr.finding(check.Info, "translate_name", "table "+st.String(), fmt.Sprintf("the name is longer than %d bytes: it becomes %q", maxIdent, name), "")
		}
		if h, ok := tables.claim(name, st.String()); !ok {
			errs = append(errs, fmt.Errorf("tables %s and %s both become %s.%s in PostgreSQL (names are folded to lower case and cut at %d bytes): "+
				"rename one on the source (RENAME TABLE), or leave one out of the plan's tables", h, st.String(), tr.schema, name, maxIdent))
			continue
		}
		t := &translatedTable{source: st, name: name, qualified: quoteQualified(tr.schema, name)}
		cols := nameScope{}
		for i := range st.Columns {
			c := &st.Columns[i]
			cname := truncName(foldName(c.Name))
			if h, ok := cols.claim(cname, c.Name); !ok {
				errs = append(errs, fmt.Errorf("columns %q and %q of table %s both become %q in PostgreSQL (names are folded to lower case and cut at %d bytes): "+
					"rename one on the source (ALTER TABLE ... RENAME COLUMN)", h, c.Name, st.String(), cname, maxIdent))
			}
			t.columns = append(t.columns, &translatedColumn{src: c, name: cname, identity: c.AutoIncrement})
		}
		tr.tables = append(tr.tables, t)
		tr.byName[st.String()] = t
	}
	return errors.Join(errs...)
}

// table is the translation of a source table; nil when it has none.
func (tr *translation) table(t *schema.Table) *translatedTable { return tr.byName[t.String()] }

// narrowedColumns are the bigint unsigned columns (schema.table.column) that become
// bigint rather than numeric(20): AUTO_INCREMENT ones (an identity is an integer
// type) and, transitively, those whose foreign keys reference one.
func narrowedColumns(s *schema.Schema, rules translateRules) map[string]bool {
	isBigUnsigned := func(t *schema.Table, c *schema.Column) bool {
		_, over := typeOverride(rules, t, c)
		return c.Type.Kind == cdc.KindUint && c.Type.Width == 8 && !over
	}
	out := map[string]bool{}
	tables := map[string]*schema.Table{}
	for _, t := range s.Tables {
		tables[t.String()] = t
		for i := range t.Columns {
			if c := &t.Columns[i]; c.AutoIncrement && isBigUnsigned(t, c) {
				out[t.String()+"."+c.Name] = true
			}
		}
	}
	for changed := true; changed; {
		changed = false
		for _, t := range s.Tables {
			for _, fk := range t.ForeignKeys {
				rt := tables[refName(t, fk)]
				if rt == nil || len(fk.Columns) != len(fk.RefColumns) {
					continue
				}
				for i, name := range fk.Columns {
					c, key := t.Column(name), t.String()+"."+name
					if c != nil && !out[key] && isBigUnsigned(t, c) && out[rt.String()+"."+fk.RefColumns[i]] {
						out[key], changed = true, true
					}
				}
			}
		}
	}
	return out
}

func refName(t *schema.Table, fk schema.ForeignKey) string {
	s := fk.RefSchema
	if s == "" {
		s = t.Schema
	}
	return s + "." + fk.RefTable
}

// mysqlBase is a MySQL type's name without its modifiers: "int" for "int(10) unsigned".
func mysqlBase(name string) string {
	name = strings.ToLower(strings.TrimSpace(name))
	if i := strings.IndexAny(name, "( "); i >= 0 {
		name = name[:i]
	}
	return name
}

var displayWidth = regexp.MustCompile(`^(tinyint|smallint|mediumint|int|integer|bigint)\(\d+\)`)

// normalizeTypeKey spells a type (or a column's key) as the overrides compare it:
// lower case, single spaces, no zerofill, no integer display width but tinyint(1)'s.
func normalizeTypeKey(s string) string {
	s = strings.Join(strings.Fields(strings.ToLower(s)), " ")
	s = strings.ReplaceAll(s, " zerofill", "")
	if !strings.HasPrefix(s, "tinyint(1)") {
		s = displayWidth.ReplaceAllString(s, "$1")
	}
	return s
}

// typeOverride is the plan's type for a column, most specific first.
func typeOverride(rules translateRules, t *schema.Table, c *schema.Column) (string, bool) {
	for _, k := range []string{
		strings.ToLower(t.Schema + "." + t.Name + "." + c.Name), strings.ToLower(t.Name + "." + c.Name),
		normalizeTypeKey(c.Type.Name), mysqlBase(c.Type.Name),
	} {
		if v, ok := rules.Types[k]; ok && k != "" {
			return v, true
		}
	}
	return "", false
}

// intRange is the values a MySQL integer type holds, and the PostgreSQL type that
// holds them.
func intRange(t cdc.Type) (pgType, lo, hi string) {
	if t.Kind == cdc.KindUint {
		switch t.Width {
		case 1:
			return "smallint", "0", "255"
		case 2:
			return "integer", "0", "65535"
		case 3:
			return "integer", "0", "16777215"
		case 4:
			return "bigint", "0", "4294967295"
		}
		return "numeric(20,0)", "0", "18446744073709551615"
	}
	switch t.Width {
	case 1:
		return "smallint", "-128", "127"
	case 2:
		return "smallint", "", ""
	case 3:
		return "integer", "-8388608", "8388607"
	case 4:
		return "integer", "", ""
	}
	return "bigint", "", ""
}

// mapColumn decides a column's PostgreSQL type, checks, default and converter.
func (tr *translation) mapColumn(t *translatedTable, c *translatedColumn, narrow bool, typeNames nameScope) {
	st, src := t.source, c.src
	ct := src.Type
	q := qident(c.name)
	base := mysqlBase(ct.Name)
	what := "column " + st.String() + "." + src.Name
	note := func(s string) { c.notes = append(c.notes, s) }
	c.notNull = src.NotNull
	var conv func([]byte) ([]byte, error)
	natural := func(b []byte) ([]byte, error) { return fromCanonicalKind(ct, b) }
	conv = natural
	switch k := ct.Kind; {
	case (k == cdc.KindInt || k == cdc.KindUint) && base == "year":
		c.pgType = "smallint"
		c.checks = append(c.checks, fmt.Sprintf("%[1]s = 0 OR %[1]s BETWEEN 1901 AND 2155", q))
		conv = yearText
	case (k == cdc.KindInt || k == cdc.KindUint) && tr.rules.TinyintAsBoolean && strings.HasPrefix(normalizeTypeKey(ct.Name), "tinyint(1)"):
		c.pgType, conv = "boolean", zeroOneBool
		note("tinyint(1) as boolean: 0 and 1 only")
	case k == cdc.KindInt || k == cdc.KindUint:
		if strings.HasPrefix(normalizeTypeKey(ct.Name), "tinyint(1)") {
			note("tinyint(1): an integer (boolean when the plan says tinyint_as_boolean)")
		}
		pg, lo, hi := intRange(ct)
		switch {
		case narrow:
			c.pgType, lo, hi = "bigint", "0", ""
			conv = func(b []byte) ([]byte, error) { return bigintFromUnsigned(ct, b) }
			if src.AutoIncrement {
				note("bigint, not numeric(20): an identity is an integer type; values above 9223372036854775807 are refused")
			} else {
				note("bigint, not numeric(20): its foreign key references an AUTO_INCREMENT bigint unsigned")
			}
		default:
			c.pgType = pg
		}
		switch {
		case lo != "" && hi != "":
			c.checks = append(c.checks, fmt.Sprintf("%s BETWEEN %s AND %s", q, lo, hi))
		case lo != "":
			c.checks = append(c.checks, fmt.Sprintf("%s >= %s", q, lo))
		}
	case k == cdc.KindBool:
		c.pgType = "boolean"
	case k == cdc.KindDecimal:
		c.pgType = "numeric"
		if ct.Precision > 0 {
			c.pgType = fmt.Sprintf("numeric(%d,%d)", ct.Precision, ct.Scale)
		}
		if strings.Contains(strings.ToLower(ct.Name), "unsigned") {
			c.checks = append(c.checks, q+" >= 0")
		}
	case k == cdc.KindFloat32 || k == cdc.KindFloat64:
		c.pgType = map[bool]string{true: "real", false: "double precision"}[k == cdc.KindFloat32]
		if strings.Contains(strings.ToLower(ct.Name), "unsigned") {
			c.checks = append(c.checks, q+" >= 0")
		}
	case k == cdc.KindText:
		tr.mapText(t, c, src)
	case k == cdc.KindBytes:
		c.pgType = "bytea"
		if n := bytesLimit(ct, base); n > 0 {
			c.checks = append(c.checks, fmt.Sprintf("octet_length(%s) <= %d", q, n))
		}
	case k == cdc.KindDate:
		c.pgType = "date"
	case k == cdc.KindTimestamp:
		c.pgType = fmt.Sprintf("timestamp(%d) without time zone", ct.Precision)
	case k == cdc.KindTimestampTZ:
		c.pgType = fmt.Sprintf("timestamp(%d) with time zone", ct.Precision)
		note("an instant (TIMESTAMP is stored in UTC)")
	case k == cdc.KindTime && tr.dialect == "mysql":
		c.pgType, conv = fmt.Sprintf("interval(%d)", ct.Precision), durationInterval
		note("interval: MySQL's TIME is a duration of up to ±838:59:59")
	case k == cdc.KindTime:
		c.pgType = fmt.Sprintf("time(%d) without time zone", ct.Precision)
	case k == cdc.KindInterval:
		c.pgType = fmt.Sprintf("interval(%d)", ct.Precision)
	case k == cdc.KindJSON:
		c.pgType, conv = "jsonb", jsonbText
	case k == cdc.KindEnum:
		tr.mapEnum(t, c, src, typeNames)
	case k == cdc.KindSet:
		c.pgType, conv = "text[]", func(b []byte) ([]byte, error) { return setArray(ct, b) }
		c.checks = append(c.checks, fmt.Sprintf("%s <@ %s::text[]", q, labelArray(ct.Labels)))
	case k == cdc.KindBits && ct.Fixed && ct.Width > 0:
		c.pgType = fmt.Sprintf("bit(%d)", ct.Width)
		note("bit(n): MySQL's values have all n bits; writes must give them all")
	case k == cdc.KindBits:
		c.pgType = "bit varying"
		if ct.Width > 0 {
			c.pgType = fmt.Sprintf("bit varying(%d)", ct.Width)
		}
	case k == cdc.KindUUID:
		c.pgType = "uuid"
	case k == cdc.KindGeometry && tr.rules.PostGIS:
		c.pgType = "geometry"
		if sub := postgisTypes[base]; sub != "" {
			c.pgType = "geometry(" + sub + ")"
		}
		note("PostGIS: each value with its SRID")
		if base == "geometrycollection" || base == "geomcollection" {
			note("any geometry, as MariaDB's GEOMETRYCOLLECTION takes any")
		}
	default:
		why := "it has no canonical form: its values cannot cross to another engine"
		fix := "drop the column on the source, or leave the table out of the plan's tables"
		switch {
		case k == cdc.KindArray:
			why = "arrays are not translated"
		case base == "inet4" || base == "inet6":
			why = "MariaDB's " + strings.ToUpper(base) + " has no canonical form in this version (PostgreSQL's inet would hold its values)"
			fix = fmt.Sprintf("make it a string on the source (ALTER TABLE %s MODIFY %s VARCHAR(%d)), or leave the table out of the plan's tables",
				myIdent(st.Name), myIdent(src.Name), map[string]int{"inet4": 15, "inet6": 39}[base])
		case k == cdc.KindGeometry:
			why = "spatial types become PostGIS's geometry, and the target has no postgis extension"
			fix = "CREATE EXTENSION postgis in the target database (the package postgresql-NN-postgis-3), or drop the column on the source, or leave the table out of the plan's tables"
		}
		tr.finding(check.Error, "translate_column", what, fmt.Sprintf("type %s is not carried: %s; the column is left out of the target", ct.Name, why), fix)
		note("not carried")
		c.name, c.identity = "", false
		return
	}
	if conv != nil && c.conv == nil {
		c.conv = conv
	}
	read, readable := pgReadType(c.pgType)
	if ct.Kind == cdc.KindEnum && c.pgType != "text" {
		read, readable = cdc.Type{Kind: cdc.KindText}, true // the translation's enum type: its labels' text
	}
	if over, ok := typeOverride(tr.rules, st, src); ok {
		c.pgType, c.collation, c.checks = over, "", nil
		c.conv = overrideConverter(ct, over, c.conv)
		c.notes = []string{"type from the plan"}
		read, readable = pgReadType(over)
	}
	c.back = wrapBack(st, src, c.pgType, backConverter(ct, c.pgType, read, readable))
	if c.identity && !slices.Contains([]string{"smallint", "integer", "bigint", "int", "int2", "int4", "int8"}, strings.ToLower(c.pgType)) {
		c.identity = false
		tr.finding(check.Warning, "translate_column", what, "AUTO_INCREMENT is not carried: an identity column must be smallint, integer or bigint, not "+c.pgType,
			"number it with a sequence by hand: CREATE SEQUENCE ...; ALTER TABLE ... ALTER COLUMN ... SET DEFAULT nextval(...)")
	}
	if c.identity {
		note("identity, restarted after the load at the next AUTO_INCREMENT")
	}
	tr.mapDefault(t, c, src)
	tr.zeroDates(t, c, src)
	if src.Generated != "" {
		tr.finding(check.Warning, "translate_column", what,
			"generated column: its MySQL expression ("+src.Generated+") is not translated: the column is a plain column, filled by the copy and the replication; after the switch nothing computes it",
			fmt.Sprintf("after the switch: ALTER TABLE %s DROP COLUMN %s, ADD COLUMN %s %s GENERATED ALWAYS AS (<the expression in PostgreSQL's SQL>) STORED", t.qualified, q, q, c.pgType))
		note("generated in MySQL: a plain column")
	}
	if src.OnUpdateNow {
		fn := quoteQualified(tr.schema, truncName(t.name+"_"+c.name+"_on_update"))
		now := "CURRENT_TIMESTAMP"
		if strings.Contains(c.pgType, "without time zone") {
			now = "LOCALTIMESTAMP"
		}
		tr.finding(check.Warning, "translate_column", what,
			"ON UPDATE CURRENT_TIMESTAMP is not carried: after the switch an update leaves the column as it is",
			fmt.Sprintf("after the switch: CREATE FUNCTION %[1]s() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN IF NEW IS DISTINCT FROM OLD AND NEW.%[2]s IS NOT DISTINCT FROM OLD.%[2]s THEN NEW.%[2]s := %[3]s; END IF; RETURN NEW; END$$; "+
				"CREATE TRIGGER %[4]s BEFORE UPDATE ON %[5]s FOR EACH ROW EXECUTE FUNCTION %[1]s()", fn, q, now, qident(truncName(t.name+"_"+c.name+"_on_update")), t.qualified))
		note("ON UPDATE CURRENT_TIMESTAMP: not carried")
	}
}

// postgisTypes are PostGIS's geometry subtypes of MySQL's spatial types. GEOMETRY
// takes any geometry, and so does MariaDB's GEOMETRYCOLLECTION: plain geometry.
var postgisTypes = map[string]string{"point": "Point", "linestring": "LineString", "polygon": "Polygon", "multipoint": "MultiPoint",
	"multilinestring": "MultiLineString", "multipolygon": "MultiPolygon"}

// mapText decides a text column: varchar(n) or text, its collation.
func (tr *translation) mapText(t *translatedTable, c *translatedColumn, src *schema.Column) {
	ct, q, base := src.Type, qident(c.name), mysqlBase(src.Type.Name)
	varchar := (base == "char" || base == "varchar" || base == "character" || base == "nchar" || base == "nvarchar") && ct.Width > 0
	if varchar {
		c.pgType = fmt.Sprintf("character varying(%d)", ct.Width)
		if ct.Fixed {
			c.notes = append(c.notes, "CHAR(n) as varchar(n): MySQL gives CHAR's values without their trailing spaces")
		}
	} else {
		c.pgType = "text"
		if n := map[string]int{"tinytext": 255, "text": 65535, "mediumtext": 16777215}[base]; n > 0 {
			switch cs := strings.ToLower(src.Charset); {
			case strings.HasPrefix(cs, "utf8"):
				c.checks = append(c.checks, fmt.Sprintf("octet_length(%s) <= %d", q, n))
			case cs == "latin1" || cs == "ascii": // a byte a character
				c.checks = append(c.checks, fmt.Sprintf("char_length(%s) <= %d", q, n))
			}
		}
	}
	if check := charsetCheck(q, src.Charset); check != "" {
		c.checks = append(c.checks, check)
	}
	if !src.CaseInsensitive {
		return
	}
	switch tr.rules.CaseInsensitive {
	case "icu":
		name := "cutover_ci_ai"
		if strings.Contains(strings.ToLower(src.Collation), "_as_") {
			name = "cutover_ci"
		}
		c.collation = qident(tr.schema) + "." + qident(name)
		c.notes = append(c.notes, "case-insensitive: ICU collation "+name)
	case "citext":
		if varchar {
			c.checks = append(c.checks, fmt.Sprintf("char_length(%s) <= %d", q, ct.Width))
		}
		c.pgType = "citext"
		c.notes = append(c.notes, "case-insensitive: citext")
	default:
		c.notes = append(c.notes, "case-sensitive in PostgreSQL (MySQL: "+src.Collation+")")
	}
}

// charsetCheck is the CHECK that keeps a text column's values inside its MySQL
// character set, so that PostgreSQL takes no value that reverse replication could not
// write back (as MySQL refuses it in strict mode): ascii, latin1 (schema.Latin1High
// for 0x80 to 0x9f) and utf8mb3 (no character of 4 bytes in UTF-8). "" for utf8mb4
// and the sets change data capture does not read. The value is matched as text in
// the "C" collation: a citext column's case-insensitive match would let a character
// in by its other case, and a nondeterministic collation refuses regular expressions.
func charsetCheck(q, charset string) string {
	switch strings.ToLower(charset) {
	case "ascii":
		return q + `::text COLLATE "C" !~ '[^\x01-\x7f]'`
	case "utf8mb3", "utf8":
		return q + `::text COLLATE "C" !~ '[\U00010000-\U0010ffff]'`
	case "latin1":
		var b strings.Builder
		b.WriteString(q + `::text COLLATE "C" !~ '[^\x01-\x7f\xa0-\xff`)
		for _, r := range schema.Latin1High {
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		b.WriteString("]'")
		return b.String()
	}
	return ""
}

// bytesLimit is the most bytes a MySQL binary type holds, 0 for none below 1 GB.
func bytesLimit(t cdc.Type, base string) int {
	if n := map[string]int{"tinyblob": 255, "blob": 65535, "mediumblob": 16777215}[base]; n > 0 {
		return n
	}
	if t.Width > 0 && t.Width < 1<<30 && base != "longblob" {
		return t.Width
	}
	return 0
}

// mapEnum makes an enum column an enum type or a CHECK.
func (tr *translation) mapEnum(t *translatedTable, c *translatedColumn, src *schema.Column, typeNames nameScope) {
	ct, q := src.Type, qident(c.name)
	long := ""
	for _, l := range ct.Labels {
		if len(l) > maxIdent {
			long = l
		}
	}
	if tr.rules.EnumAs == "type" && long == "" {
		if _, over := typeOverride(tr.rules, t.source, src); over {
			c.pgType = "text"
			return
		}
		name := typeNames.unique(t.name+"_"+c.name, "the enum of "+t.name+"."+c.name)
		c.pgType = quoteQualified(tr.schema, name)
		labels := make([]string, len(ct.Labels))
		for i, l := range ct.Labels {
			labels[i] = quoteLiteral(l)
		}
		tr.types = append(tr.types, fmt.Sprintf("CREATE TYPE %s AS ENUM (%s)", c.pgType, strings.Join(labels, ", ")))
		c.notes = append(c.notes, "enum type, labels in MySQL's order")
		return
	}
	c.pgType = "text"
	labels := make([]string, len(ct.Labels))
	for i, l := range ct.Labels {
		labels[i] = quoteLiteral(l)
	}
	c.checks = append(c.checks, fmt.Sprintf("%s IN (%s)", q, strings.Join(labels, ", ")))
	if long != "" && tr.rules.EnumAs == "type" {
		tr.finding(check.Info, "translate_column", "column "+t.source.String()+"."+src.Name,
			fmt.Sprintf("ENUM label %q is longer than PostgreSQL's enum labels (%d bytes): the column is text with a CHECK of its labels, sorted as text, not in the labels' order", long, maxIdent), "")
	}
	c.notes = append(c.notes, "text with a CHECK of the labels: sorts as text, not in the labels' order")
}

// mapDefault translates a column's default.
func (tr *translation) mapDefault(t *translatedTable, c *translatedColumn, src *schema.Column) {
	d := src.Default
	if d == nil || c.identity {
		return
	}
	what := "column " + t.source.String() + "." + src.Name
	fix := fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT <the default in PostgreSQL's SQL>", t.qualified, qident(c.name))
	switch {
	case d.Now:
		typ := strings.ToLower(c.pgType)
		switch {
		case strings.Contains(typ, "with time zone") || typ == "timestamptz":
			c.def = fmt.Sprintf("CURRENT_TIMESTAMP(%d)", d.Precision)
		case strings.HasPrefix(typ, "timestamp"):
			c.def = fmt.Sprintf("LOCALTIMESTAMP(%d)", d.Precision)
		case typ == "date":
			c.def = "CURRENT_DATE"
		default:
			tr.finding(check.Warning, "translate_default", what, "default CURRENT_TIMESTAMP is not carried to a column of type "+c.pgType, fix)
		}
	case d.Expr != "":
		tr.finding(check.Warning, "translate_default", what, "default "+d.Expr+" is not carried: it is MySQL's SQL", fix)
	default:
		v, err := c.conv([]byte(d.Value))
		if err != nil {
			tr.finding(check.Warning, "translate_default", what, fmt.Sprintf("default %q is not carried: %v", d.Value, err), fix)
			return
		}
		c.def = quoteLiteral(string(v))
	}
}

// zeroDates relaxes NOT NULL on a date column listed as holding zero dates.
func (tr *translation) zeroDates(t *translatedTable, c *translatedColumn, src *schema.Column) {
	st := t.source
	if !tr.rules.ZeroDateColumns[strings.ToLower(st.Name+"."+src.Name)] && !tr.rules.ZeroDateColumns[strings.ToLower(st.Schema+"."+st.Name+"."+src.Name)] {
		return
	}
	switch src.Type.Kind {
	case cdc.KindDate, cdc.KindTimestamp, cdc.KindTimestampTZ:
	default:
		return
	}
	what := "column " + st.String() + "." + src.Name
	if tr.rules.ZeroDates == "error" {
		tr.finding(check.Error, "translate_column", what, "holds zero dates ('0000-00-00'), which PostgreSQL has no date for, and the plan refuses them",
			fmt.Sprintf("replace them on the source (UPDATE %s SET %s = NULL WHERE %s = '0000-00-00'), or let them become NULL (zero dates: null)", myIdent(st.Name), myIdent(src.Name), myIdent(src.Name)))
		return
	}
	if slices.Contains(st.PrimaryKey, src.Name) {
		tr.finding(check.Error, "translate_column", what, "holds zero dates ('0000-00-00'), which become NULL, and is in the primary key, which PostgreSQL keeps NOT NULL",
			fmt.Sprintf("replace them on the source: UPDATE %s SET %s = '1000-01-01' WHERE %s = '0000-00-00' (any date that is not taken)", myIdent(st.Name), myIdent(src.Name), myIdent(src.Name)))
		return
	}
	c.notes = append(c.notes, "zero dates become NULL")
	if !c.notNull {
		return
	}
	c.notNull = false
	c.notes = append(c.notes, "NOT NULL dropped")
	tr.finding(check.Warning, "translate_column", what, "holds zero dates ('0000-00-00'), which become NULL in PostgreSQL: its NOT NULL is dropped",
		fmt.Sprintf("to keep NOT NULL, replace them on the source before the load (UPDATE %s SET %s = '1000-01-01' WHERE %s = '0000-00-00')", myIdent(st.Name), myIdent(src.Name), myIdent(src.Name)))
}

// buildTable writes a table's CREATE TABLE and its comments.
func (tr *translation) buildTable(t *translatedTable, rels nameScope) {
	st := t.source
	cons := nameScope{}
	for _, fk := range st.ForeignKeys {
		cons[truncName(foldName(fk.Name))] = "foreign key " + fk.Name
	}
	var lines, checks []string
	var ci, pad, narrowCharset []string
	keyCols := map[string]bool{}
	for _, k := range st.PrimaryKey {
		keyCols[k] = true
	}
	for _, ix := range st.Indexes {
		if ix.Unique {
			for _, p := range ix.Columns {
				keyCols[p.Name] = true
			}
		}
	}
	for _, c := range t.columns {
		src := c.src
		if !c.carried() {
			continue
		}
		t.copyColumns = append(t.copyColumns, qident(c.name))
		t.sourceColumns = append(t.sourceColumns, src.Name)
		t.converters = append(t.converters, wrapConverter(st, src, c.pgType, c.conv))
		line := qident(c.name) + " " + c.pgType
		if c.collation != "" {
			line += " COLLATE " + c.collation
		}
		if c.identity {
			line += " GENERATED BY DEFAULT AS IDENTITY"
			n := st.NextAutoIncrement
			if c.pgType == "bigint" && n > math.MaxInt64 {
				tr.finding(check.Error, "translate_column", "column "+st.String()+"."+src.Name,
					fmt.Sprintf("the next AUTO_INCREMENT %d is beyond bigint, the largest identity", n),
					"map the column to numeric(20) in the plan's types and number it by hand")
				n = math.MaxInt64
			}
			t.identity = append(t.identity, fmt.Sprintf("SELECT setval(pg_get_serial_sequence(%s, %s), greatest(%d, (SELECT coalesce(max(%s) + 1, 1) FROM %s)), false)",
				quoteLiteral(t.qualified), quoteLiteral(c.name), max(n, 1), qident(c.name), t.qualified))
		}
		if c.notNull {
			line += " NOT NULL"
		}
		if c.def != "" {
			line += " DEFAULT " + c.def
		}
		lines = append(lines, line)
		for i, chk := range c.checks {
			base := t.name + "_" + c.name + "_check"
			if i > 0 {
				base += strconv.Itoa(i + 1)
			}
			checks = append(checks, fmt.Sprintf("CONSTRAINT %s CHECK (%s)", qident(cons.unique(base, "check")), chk))
		}
		isText := src.Type.Kind == cdc.KindText
		if isText && src.CaseInsensitive && tr.rules.CaseInsensitive == "" {
			ci = append(ci, src.Name)
		}
		if isText && src.PadInsensitive && keyCols[src.Name] {
			pad = append(pad, src.Name)
		}
		if cs := strings.ToLower(src.Charset); isText && cs != "" && !strings.HasPrefix(cs, "utf8mb4") {
			narrowCharset = append(narrowCharset, src.Name+" ("+src.Charset+")")
		}
	}
	if len(ci) > 0 {
		tr.finding(check.Warning, "translate_collation", "table "+st.String(),
			"columns "+strings.Join(ci, ", ")+" compare case-insensitively in MySQL; in PostgreSQL they compare case-sensitively: WHERE, ORDER BY, GROUP BY and unique keys see 'A' and 'a' as different, and a unique key accepts values MySQL refuses (a switch refuses such keys: reverse replication could not write them back)",
			"in the plan, case_insensitive: icu (an ICU nondeterministic collation) or citext")
	}
	if len(pad) > 0 {
		tr.finding(check.Info, "translate_collation", "table "+st.String(),
			"keys on columns "+strings.Join(pad, ", ")+" ignore trailing spaces in MySQL (PAD SPACE): each unique one also gets a unique index on the values without them (rtrim), so that PostgreSQL refuses the keys MySQL refuses ('a' and 'a ')", "")
	}
	if len(narrowCharset) > 0 {
		tr.finding(check.Info, "translate_column", "table "+st.String(),
			"columns "+strings.Join(narrowCharset, ", ")+" become UTF-8, with a CHECK that keeps their values in their MySQL character set (PostgreSQL refuses what MySQL would, so a failback can write every value back)", "")
	}
	if len(st.PrimaryKey) > 0 {
		var cols []string
		for _, k := range st.PrimaryKey {
			if c := t.column(k); c != nil && c.carried() {
				cols = append(cols, qident(c.name))
			}
		}
		if len(cols) == len(st.PrimaryKey) {
			name := rels.unique(t.name+"_pkey", "the primary key of "+st.String())
			cons[name] = "primary key"
			checks = append(checks, fmt.Sprintf("CONSTRAINT %s PRIMARY KEY (%s)", qident(name), strings.Join(cols, ", ")))
		} else {
			tr.finding(check.Error, "translate_index", "table "+st.String(), "the primary key is not carried: one of its columns is not", "")
		}
	}
	t.create = append(t.create, fmt.Sprintf("CREATE TABLE %s (\n\t%s\n)", t.qualified, strings.Join(append(lines, checks...), ",\n\t")))
	if st.Comment != "" {
		t.create = append(t.create, fmt.Sprintf("COMMENT ON TABLE %s IS %s", t.qualified, quoteLiteral(st.Comment)))
	}
	for _, c := range t.columns {
		if c.carried() && c.src.Comment != "" {
			t.create = append(t.create, fmt.Sprintf("COMMENT ON COLUMN %s.%s IS %s", t.qualified, qident(c.name), quoteLiteral(c.src.Comment)))
		}
	}
}

// column is a table's translated column by its source name.
func (t *translatedTable) column(name string) *translatedColumn {
	for _, c := range t.columns {
		if strings.EqualFold(c.src.Name, name) {
			return c
		}
	}
	return nil
}

// indexNameCounts counts each folded index name over the source.
func indexNameCounts(s *schema.Schema) map[string]int {
	n := map[string]int{}
	for _, t := range s.Tables {
		for _, ix := range t.Indexes {
			n[foldName(ix.Name)]++
		}
	}
	return n
}

// buildIndexes writes a table's secondary indexes.
func (tr *translation) buildIndexes(t *translatedTable, rels nameScope, counts map[string]int) {
	st := t.source
	if len(st.PrimaryKey) > 0 {
		var cols []schema.IndexColumn
		for _, k := range st.PrimaryKey {
			cols = append(cols, schema.IndexColumn{Name: k})
		}
		tr.padGuard(t, rels, t.name+"_pkey", cols)
	}
	for _, ix := range st.Indexes {
		what := "index " + st.String() + "." + ix.Name
		method := strings.ToLower(ix.Method)
		if method == "spatial" && !tr.rules.PostGIS {
			tr.finding(check.Warning, "translate_index", what, "SPATIAL index is not carried (spatial types are not without PostGIS)", "")
			continue
		}
		var parts, replaced []string
		carried := true
		for _, p := range ix.Columns {
			if p.Expr != "" {
				tr.finding(check.Warning, "translate_index", what, "not carried: its part ("+p.Expr+") is a MySQL expression",
					fmt.Sprintf("CREATE INDEX ON %s ((<the expression in PostgreSQL's SQL>))", t.qualified))
				carried = false
				break
			}
			c := t.column(p.Name)
			if c == nil || !c.carried() {
				tr.finding(check.Warning, "translate_index", what, "not carried: its column "+p.Name+" is not", "")
				carried = false
				break
			}
			part := qident(c.name)
			if method == "fulltext" {
				parts = append(parts, fmt.Sprintf("coalesce(%s::text, '')", part))
				continue
			}
			if p.Prefix > 0 && !(c.src.Type.Width > 0 && p.Prefix >= c.src.Type.Width) {
				expr := prefixExpr(c, p.Prefix)
				switch {
				case ix.Unique:
					part = "(" + expr + ")"
					replaced = append(replaced, fmt.Sprintf("%s(%d) by %s, exact", p.Name, p.Prefix, expr))
				case shortValues(c.src.Type):
					replaced = append(replaced, fmt.Sprintf("%s(%d) by the whole column", p.Name, p.Prefix))
				default:
					part = "(" + expr + ")"
					replaced = append(replaced, fmt.Sprintf("%s(%d) by %s (the whole value may be too long for a btree entry): a query uses it when it compares %s", p.Name, p.Prefix, expr, expr))
				}
			}
			if p.Desc {
				part += " DESC"
			}
			parts = append(parts, part)
		}
		if !carried {
			continue
		}
		base := foldName(ix.Name)
		if counts[base] > 1 || rels[truncName(base)] != "" {
			base = t.name + "_" + base
		}
		name := qident(rels.unique(base, what))
		switch {
		case method == "spatial":
			t.indexes = append(t.indexes, fmt.Sprintf("CREATE INDEX %s ON %s USING gist (%s)", name, t.qualified, strings.Join(parts, ", ")))
			tr.finding(check.Info, "translate_index", what, "SPATIAL index replaced by a GiST index: MBRContains(a, b) becomes a ~ b, ST_Contains and the other ST_ functions keep their names", "")
		case method == "fulltext":
			expr := fmt.Sprintf("to_tsvector('simple', %s)", strings.Join(parts, " || ' ' || "))
			t.indexes = append(t.indexes, fmt.Sprintf("CREATE INDEX %s ON %s USING gin (%s)", name, t.qualified, expr))
			tr.finding(check.Info, "translate_index", what,
				"FULLTEXT index replaced by a GIN index on "+expr+": MATCH ... AGAINST becomes "+expr+" @@ websearch_to_tsquery('simple', ...), which uses it (ranking and stopwords differ)", "")
		default:
			unique := ""
			if ix.Unique {
				unique = "UNIQUE "
			}
			t.indexes = append(t.indexes, fmt.Sprintf("CREATE %sINDEX %s ON %s (%s)", unique, name, t.qualified, strings.Join(parts, ", ")))
			if ix.Unique {
				tr.padGuard(t, rels, base, ix.Columns)
			}
			if len(replaced) > 0 {
				tr.finding(check.Info, "translate_index", what, "prefix parts replaced: "+strings.Join(replaced, "; "), "")
			}
		}
	}
}

// padGuard adds, for a unique key with a text column of a PAD SPACE collation, a
// unique index on its values without their trailing spaces: MySQL's key compares them
// so ('a' and 'a ' are the same key), and PostgreSQL then refuses what MySQL refuses,
// which keeps a failback able to write every row back. The key's own index stays (a
// foreign key may reference it).
func (tr *translation) padGuard(t *translatedTable, rels nameScope, base string, cols []schema.IndexColumn) {
	var parts []string
	padded := false
	for _, p := range cols {
		c := t.column(p.Name)
		if c == nil || !c.carried() || p.Expr != "" {
			return
		}
		part := qident(c.name)
		if p.Prefix > 0 && !(c.src.Type.Width > 0 && p.Prefix >= c.src.Type.Width) {
			part = prefixExpr(c, p.Prefix)
		}
		if c.src.Type.Kind == cdc.KindText && c.src.PadInsensitive {
			padded = true
			part = "rtrim(" + part + ", ' ')"
		}
		parts = append(parts, "("+part+")")
	}
	if !padded {
		return
	}
	name := qident(rels.unique(base+"_pad", "the trailing spaces guard of "+t.source.String()+"."+base))
	t.indexes = append(t.indexes, fmt.Sprintf("CREATE UNIQUE INDEX %s ON %s (%s)", name, t.qualified, strings.Join(parts, ", ")))
}

// prefixExpr is the first n characters (text) or bytes (bytea) of a column.
func prefixExpr(c *translatedColumn, n int) string {
	q := qident(c.name)
	switch {
	case c.src.Type.Kind == cdc.KindBytes:
		return fmt.Sprintf("substring(%s from 1 for %d)", q, n)
	case c.pgType == "citext":
		return fmt.Sprintf("left(%s, %d)::citext", q, n)
	}
	return fmt.Sprintf("left(%s, %d)", q, n)
}

// shortValues says every value of a type fits a btree entry (2704 bytes).
func shortValues(t cdc.Type) bool {
	switch t.Kind {
	case cdc.KindText:
		return t.Width > 0 && t.Width*4 <= 2000
	case cdc.KindBytes:
		return t.Width > 0 && t.Width <= 2000
	}
	return true
}

// hasAction reports whether a foreign key action changes the referencing rows.
func hasAction(a string) bool {
	switch schema.Action(a) {
	case "CASCADE", "SET NULL", "SET DEFAULT":
		return true
	}
	return false
}

// typeFamily groups the types a foreign key can compare.
func typeFamily(pgType string) string {
	t := strings.ToLower(pgType)
	switch {
	case t == "smallint" || t == "integer" || t == "bigint":
		return "integer"
	case strings.HasPrefix(t, "numeric"):
		return "numeric"
	case strings.HasPrefix(t, "character varying") || t == "text":
		return "text"
	case strings.HasPrefix(t, "timestamp(") || strings.HasPrefix(t, "interval(") || strings.HasPrefix(t, "bit("):
		return t[:strings.IndexByte(t, '(')] + t[strings.IndexByte(t, ')')+1:]
	}
	return t
}

// buildForeignKeys writes a table's foreign keys.
func (tr *translation) buildForeignKeys(t *translatedTable) {
	st := t.source
	for _, fk := range st.ForeignKeys {
		what := "foreign key " + st.String() + "." + fk.Name
		// notCarried says why the key is not carried: an error for a key whose action
		// change data capture would miss.
		notCarried := func(problem, fix string) {
			if tr.rules.CDC && (hasAction(fk.OnDelete) || hasAction(fk.OnUpdate)) {
				tr.finding(check.Error, "translate_foreign_key", what, "not carried ("+problem+"), and its ON DELETE "+schema.Action(fk.OnDelete)+" ON UPDATE "+schema.Action(fk.OnUpdate)+
					" changes rows that the binary log does not show: change data capture would leave them on the target", cmp.Or(fix, "migrate the tables it joins together")+", or copy once (cdc.enabled: false)")
				return
			}
			tr.finding(check.Warning, "translate_foreign_key", what, "not carried: "+problem, fix)
		}
		rt := tr.byName[refName(st, fk)]
		if rt == nil {
			notCarried("it references "+refName(st, fk)+", which is not migrated", "")
			continue
		}
		var cols, refs []string
		problem := ""
		for i, name := range fk.Columns {
			c := t.column(name)
			var r *translatedColumn
			if i < len(fk.RefColumns) {
				r = rt.column(fk.RefColumns[i])
			}
			switch {
			case c == nil || r == nil || !c.carried() || !r.carried():
				problem = "one of its columns is not carried"
			case typeFamily(c.pgType) != typeFamily(r.pgType) || c.collation != r.collation:
				problem = fmt.Sprintf("PostgreSQL cannot compare %s (%s) and %s.%s (%s)", c.name, c.pgType, rt.name, r.name, r.pgType)
			default:
				cols, refs = append(cols, qident(c.name)), append(refs, qident(r.name))
			}
		}
		if problem != "" || len(cols) == 0 {
			notCarried(problem, "map both columns to one type in the plan's types")
			continue
		}
		t.foreignKeys = append(t.foreignKeys, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s) ON DELETE %s ON UPDATE %s",
			t.qualified, qident(truncName(foldName(fk.Name))), strings.Join(cols, ", "), rt.qualified, strings.Join(refs, ", "),
			schema.Action(fk.OnDelete), schema.Action(fk.OnUpdate)))
	}
}

var jsonValid = regexp.MustCompile("^json_valid\\(`?([^`()]+)`?\\)$")

// reportChecks lists a table's CHECK constraints: MySQL's SQL, not carried.
func (tr *translation) reportChecks(t *translatedTable) {
	for _, ck := range t.source.Checks {
		what := "check " + t.source.String() + "." + ck.Name
		expr := strings.TrimSpace(ck.Expr)
		if m := jsonValid.FindStringSubmatch(expr); m != nil {
			if c := t.column(m[1]); c != nil && c.pgType == "jsonb" {
				tr.finding(check.Info, "translate_check", what, "CHECK ("+expr+") is not needed: the column is jsonb, which holds valid JSON only", "")
				continue
			}
		}
		tr.finding(check.Warning, "translate_check", what, "CHECK ("+expr+") is not carried: it is MySQL's SQL",
			fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (<the expression in PostgreSQL's SQL>)", t.qualified, qident(truncName(foldName(ck.Name)))))
	}
}

// preData is the statements that create the schema, its types and its tables, for
// one transaction, before the load.
func (tr *translation) preData() []string {
	out := slices.Clone(tr.pre)
	for _, t := range tr.tables {
		out = append(out, t.create...)
	}
	return out
}

// tableIndexes is one table's secondary and unique indexes, built once its rows are in.
func (tr *translation) tableIndexes(t *schema.Table) []string {
	if tt := tr.table(t); tt != nil {
		return slices.Clone(tt.indexes)
	}
	return nil
}

// postData is what follows every table's load: the foreign keys (then the checks
// the translation carries: none yet, MySQL's are reported).
func (tr *translation) postData() []string {
	var out []string
	for _, t := range tr.tables {
		out = append(out, t.foreignKeys...)
	}
	return out
}

// identities restarts every identity at the greater of its table's next
// AUTO_INCREMENT and max + 1: one statement per column, computed on the target.
func (tr *translation) identities() []string {
	var out []string
	for _, t := range tr.tables {
		out = append(out, t.identity...)
	}
	return out
}

// mapping is the translation table by table, column by column, as cutover check
// prints it (its findings are tr.findings).
func (tr *translation) mapping() *check.Mapping {
	m := &check.Mapping{}
	for _, t := range tr.tables {
		tm := check.TableMapping{Source: t.source.String(), Target: tr.schema + "." + t.name}
		for _, c := range t.columns {
			cm := check.ColumnMapping{Source: c.src.Name, SourceType: c.src.Type.Name, Target: c.name, Note: strings.Join(c.notes, "; ")}
			if !c.carried() {
				cm.Target = "(not carried)"
			} else {
				cm.TargetType = c.pgType
				if c.collation != "" {
					cm.TargetType += " COLLATE " + c.collation
				}
				if c.identity {
					cm.TargetType += " identity"
				}
				if len(c.checks) > 0 {
					cm.TargetType += " CHECK (" + strings.Join(c.checks, ") CHECK (") + ")"
				}
			}
			tm.Columns = append(tm.Columns, cm)
		}
		m.Tables = append(m.Tables, tm)
	}
	return m
}

// wrapConverter names the column, the types and the value in a converter's error.
func wrapConverter(t *schema.Table, c *schema.Column, pgType string, conv func([]byte) ([]byte, error)) func([]byte) ([]byte, error) {
	return func(b []byte) ([]byte, error) {
		out, err := conv(b)
		if err != nil {
			return nil, fmt.Errorf("column %s.%s: %s value %s to PostgreSQL %s: %w", t.String(), c.Name, c.Type.Name, shortValue(b), pgType, err)
		}
		return out, nil
	}
}

// shortValue quotes a value for a message, cut after 100 bytes.
func shortValue(b []byte) string {
	if len(b) <= 100 {
		return strconv.Quote(string(b))
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(string(b[:100])), len(b))
}

// overrideConverter is the converter for a column whose type the plan sets: as
// text for a text type, 0/1 to f/t for boolean, MySQL's durations for time, and
// the rules' own converter otherwise (the override type's input reads it).
func overrideConverter(src cdc.Type, pgType string, natural func([]byte) ([]byte, error)) func([]byte) ([]byte, error) {
	t := strings.ToLower(strings.TrimSpace(pgType))
	base := t
	if i := strings.IndexAny(t, "(["); i >= 0 {
		base = strings.TrimSpace(t[:i])
	}
	switch {
	case strings.HasSuffix(t, "[]"):
		return natural
	case base == "boolean" || base == "bool":
		if src.Kind == cdc.KindInt || src.Kind == cdc.KindUint || src.Kind == cdc.KindBits {
			return zeroOneBool
		}
	case slices.Contains([]string{"text", "character varying", "varchar", "character", "char", "bpchar", "citext"}, base):
		return func(b []byte) ([]byte, error) { return b, checkPGText(b) }
	case base == "time" || strings.HasPrefix(t, "time without time zone"):
		if src.Kind == cdc.KindTime {
			return func(b []byte) ([]byte, error) { return clockText(string(b)) }
		}
	}
	return natural
}

// zeroOneBool writes MySQL's 0 and 1 (tinyint(1), bit(1)) as boolean.
func zeroOneBool(b []byte) ([]byte, error) {
	switch string(b) {
	case "0":
		return []byte("f"), nil
	case "1":
		return []byte("t"), nil
	}
	return nil, errors.New("boolean holds 0 and 1 only: map the column to smallint in the plan's types")
}

// yearText checks a YEAR value (an integer).
func yearText(b []byte) ([]byte, error) {
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 0 || n > 9999 {
		return nil, errors.New("not a year")
	}
	return []byte(strconv.Itoa(n)), nil
}

// bigintFromUnsigned checks a bigint unsigned value fits bigint.
func bigintFromUnsigned(t cdc.Type, b []byte) ([]byte, error) {
	if err := checkInteger(t, string(b)); err != nil {
		return nil, err
	}
	if _, err := strconv.ParseInt(string(b), 10, 64); err != nil {
		return nil, errors.New("beyond bigint (9223372036854775807), which this column is for its AUTO_INCREMENT or foreign key")
	}
	return b, nil
}

// durationInterval writes MySQL's TIME ("[-]H+:MM:SS[.f]", a duration) as an interval.
func durationInterval(b []byte) ([]byte, error) {
	s := string(b)
	neg := strings.HasPrefix(s, "-")
	h, m, sec, us, err := cdc.ParseClock(strings.TrimPrefix(s, "-"))
	if err != nil {
		return nil, err
	}
	if h > 838 {
		return nil, errors.New("beyond MySQL's TIME range (838:59:59)")
	}
	micros := int64(h)*3600e6 + int64(m)*60e6 + int64(sec)*1e6 + int64(us)
	if neg {
		micros = -micros
	}
	return canonicalToPGInterval(cdc.Interval{Micros: micros}.String())
}

// jsonbText checks a JSON text jsonb can hold: no NUL, no \u0000 escape.
func jsonbText(b []byte) ([]byte, error) {
	if err := checkPGText(b); err != nil {
		return nil, err
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) && string(b[i+2:i+6]) == "0000" {
			return nil, errors.New(`PostgreSQL's jsonb cannot hold the character \u0000`)
		}
		i++ // the escaped character
	}
	return b, nil
}

// setArray writes a SET's "a,b" as the text[] literal {"a","b"}.
func setArray(t cdc.Type, b []byte) ([]byte, error) {
	if err := checkPGText(b); err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return []byte("{}"), nil
	}
	var out bytes.Buffer
	out.WriteByte('{')
	for i, l := range strings.Split(string(b), ",") {
		if len(t.Labels) > 0 && !slices.Contains(t.Labels, l) {
			return nil, fmt.Errorf("%q is not one of the set's labels %q", l, t.Labels)
		}
		if i > 0 {
			out.WriteByte(',')
		}
		out.WriteByte('"')
		for _, c := range []byte(l) {
			if c == '"' || c == '\\' {
				out.WriteByte('\\')
			}
			out.WriteByte(c)
		}
		out.WriteByte('"')
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

// labelArray is ARRAY['a', 'b'].
func labelArray(labels []string) string {
	q := make([]string, len(labels))
	for i, l := range labels {
		q[i] = quoteLiteral(l)
	}
	return "ARRAY[" + strings.Join(q, ", ") + "]"
}

// Reading values back
//
// Validation across engines (and a failback) reads the target's values and compares
// them with the source's canonical texts: each carried column's back converter is
// the inverse of its conv. The reader selects the column as readExpr gives it,
// `"col"::text`, the type's text output (a boolean's ::text is "true" or "false", a
// char(n)'s is without its trailing spaces), in a session with canonicalSession()'s
// settings: DateStyle ISO, IntervalStyle postgres, extra_float_digits 3 (a float's
// shortest exact digits), TimeZone UTC, bytea_output hex (escape is read too). back
// returns the canonical text of the source column's cdc.Type, exactly as the MySQL
// engine's toCanonical writes the same value:
//
//   - Integers (smallint, integer, bigint, numeric(20,0) of a bigint unsigned) as
//     the source's KindInt or KindUint in its range (YEAR's smallint: "0", "1901");
//     a boolean of a tinyint(1) (or of an override) as "1" or "0".
//   - numeric(p,s) as the source's decimal at its scale (trailing zeros added, or
//     cut when they are zeros only); real as the float32's shortest digits, double
//     precision as the float64's, -0 kept, NaN and ±Infinity as the canonical form
//     names them (no MySQL value equals them).
//   - Text, varchar, citext, an enum type's or a CHECKed text's label as it is; a
//     SET's text[] as its labels in the order of Type.Labels, joined by "," (a label
//     written twice is one, as in a MySQL SET; NULL elements and other labels are
//     errors); bytea (\x hex) as its raw bytes; bit(n) as its bits; uuid as it is.
//   - date, timestamp and timestamptz in their canonical forms (UTC, "Z"); an
//     interval of a MySQL TIME in the extended KindTime form ("-838:59:59.5",
//     "00:00:00"), a day as 24 hours; months and durations beyond ±838:59:59.999999
//     are errors.
//   - jsonb as cdc.NormalJSON of its text: jsonb and MySQL's JSON spell a document
//     differently, so a validation compares NormalJSON of both sides.
//
// A type from the plan's overrides is read by its own kind, then converted to the
// source's kind where the text allows, and is an error otherwise: an integer from
// integers, a numeric without fraction digits, a whole float or a boolean ("1" and
// "0"); a decimal from numbers (at the source's scale); a float from numbers (the
// nearest float32 for a FLOAT, a real's exact value for a DOUBLE); a date from a
// timestamp at midnight; a timestamp from an instant (its UTC wall clock) or a
// date; an instant from a timestamp (as UTC) or a date; a MySQL TIME from a time of
// day or an interval; bits from a boolean or an integer of the source's width, or
// shorter bits (zeros added on the left); a SET from text[] or "a,b" text; and from
// text of any type (char, varchar, text, citext) the source kind's canonical text
// that conv wrote there, checked (a JSON text through NormalJSON). A type back does
// not know (a domain, another extension's) is an error.

// pgReadType is the cdc.Type whose text toCanonicalKind reads for a PostgreSQL
// column type as the translation or the plan writes it ("numeric(20,0)",
// "timestamp(3) with time zone", "text[]"); false for a type it does not know.
func pgReadType(pgType string) (cdc.Type, bool) {
	t := strings.ToLower(strings.TrimSpace(pgType))
	if m := arraySuffix.FindStringIndex(t); m != nil {
		elem, ok := pgReadType(t[:m[0]])
		return cdc.Type{Kind: cdc.KindArray, Elem: &elem}, ok
	}
	mod := ""
	if m := typeModifier.FindStringSubmatch(t); m != nil {
		mod = strings.TrimSpace(m[1])
	}
	base := strings.Join(strings.Fields(typeModifier.ReplaceAllString(t, " ")), " ")
	switch base {
	case "smallint", "int2":
		return cdc.Type{Kind: cdc.KindInt, Width: 2}, true
	case "integer", "int", "int4":
		return cdc.Type{Kind: cdc.KindInt, Width: 4}, true
	case "bigint", "int8":
		return cdc.Type{Kind: cdc.KindInt, Width: 8}, true
	case "numeric", "decimal":
		return cdc.Type{Kind: cdc.KindDecimal}, true
	case "real", "float4":
		return cdc.Type{Kind: cdc.KindFloat32}, true
	case "float":
		if p, err := strconv.Atoi(mod); err == nil && p >= 1 && p <= 24 {
			return cdc.Type{Kind: cdc.KindFloat32}, true
		}
		return cdc.Type{Kind: cdc.KindFloat64}, true
	case "double precision", "float8":
		return cdc.Type{Kind: cdc.KindFloat64}, true
	case "boolean", "bool":
		return cdc.Type{Kind: cdc.KindBool}, true
	case "text", "character varying", "varchar", "character", "char", "bpchar", "citext", "name":
		return cdc.Type{Kind: cdc.KindText}, true
	case "bytea":
		return cdc.Type{Kind: cdc.KindBytes}, true
	case "date":
		return cdc.Type{Kind: cdc.KindDate}, true
	case "timestamp", "timestamp without time zone":
		return cdc.Type{Kind: cdc.KindTimestamp}, true
	case "timestamptz", "timestamp with time zone":
		return cdc.Type{Kind: cdc.KindTimestampTZ}, true
	case "time", "time without time zone":
		return cdc.Type{Kind: cdc.KindTime}, true
	case "json", "jsonb":
		return cdc.Type{Kind: cdc.KindJSON}, true
	case "bit", "bit varying", "varbit":
		return cdc.Type{Kind: cdc.KindBits}, true // any length: back checks the source's
	case "uuid":
		return cdc.Type{Kind: cdc.KindUUID}, true
	case "geometry", "public.geometry":
		return cdc.Type{Kind: cdc.KindGeometry}, true
	}
	if strings.HasPrefix(base, "interval") { // interval(p), interval day to second
		return cdc.Type{Kind: cdc.KindInterval}, true
	}
	return cdc.Type{Kind: cdc.KindOther}, false
}

var (
	arraySuffix  = regexp.MustCompile(`\s*\[\s*\d*\s*\]$`)
	typeModifier = regexp.MustCompile(`\s*\(([^)]*)\)`)
)

// wrapBack names the column, the types and the value in a back converter's error.
func wrapBack(t *schema.Table, c *schema.Column, pgType string, back func([]byte) ([]byte, error)) func([]byte) ([]byte, error) {
	return func(b []byte) ([]byte, error) {
		out, err := back(b)
		if err != nil {
			return nil, fmt.Errorf("column %s.%s: PostgreSQL %s value %s to the canonical text of %s: %w", t.String(), c.Name, pgType, shortValue(b), c.Type.Name, err)
		}
		return out, nil
	}
}

// backConverter reads a value of PostgreSQL's read type (its ::text) as the
// canonical text of src.
func backConverter(src cdc.Type, pgType string, read cdc.Type, readable bool) func([]byte) ([]byte, error) {
	switch {
	case !readable:
		return func([]byte) ([]byte, error) {
			return nil, fmt.Errorf("values of type %s are not read back (a type from the plan that is not one of PostgreSQL's own)", pgType)
		}
	case read.Kind == cdc.KindArray:
		if src.Kind != cdc.KindSet || read.Elem.Kind != cdc.KindText {
			return func([]byte) ([]byte, error) {
				return nil, fmt.Errorf("an array (%s) is read back only as a SET", pgType)
			}
		}
		return func(b []byte) ([]byte, error) { return setFromArray(src, b) }
	case read.Kind == cdc.KindBool:
		return func(b []byte) ([]byte, error) {
			v, err := pick(string(b), map[string]string{"true": "true", "false": "false", "t": "true", "f": "false"})
			if err != nil {
				return nil, err
			}
			return toSourceKind(src, cdc.KindBool, v)
		}
	}
	return func(b []byte) ([]byte, error) {
		c, err := toCanonicalKind(read, b)
		if err != nil {
			return nil, err
		}
		return toSourceKind(src, read.Kind, c)
	}
}

// toSourceKind converts a canonical value of kind from (the PostgreSQL column's) to
// the canonical text of src, as "Reading values back" says.
func toSourceKind(src cdc.Type, from cdc.Kind, c []byte) ([]byte, error) {
	s := string(c)
	refuse := func() ([]byte, error) {
		return nil, fmt.Errorf("a %s value does not convert to the source's %s", from, src.Kind)
	}
	switch src.Kind {
	case cdc.KindInt, cdc.KindUint:
		switch from {
		case cdc.KindBool:
			s = map[string]string{"true": "1", "false": "0"}[s]
		case cdc.KindInt, cdc.KindUint, cdc.KindText:
		case cdc.KindDecimal:
			whole, frac, _ := strings.Cut(s, ".")
			if strings.Trim(frac, "0") != "" {
				return nil, errors.New("not an integer")
			}
			if s = whole; s == "-0" {
				s = "0"
			}
		case cdc.KindFloat32, cdc.KindFloat64:
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || f != math.Trunc(f) || math.Abs(f) >= 1<<64 {
				return nil, errors.New("not an integer")
			}
			s = strconv.FormatFloat(math.Abs(f), 'f', -1, 64)
			if f < 0 {
				s = "-" + s
			}
		default:
			return refuse()
		}
		return []byte(s), checkInteger(src, s)
	case cdc.KindBool:
		switch {
		case from == cdc.KindBool || from == cdc.KindText:
		case (from == cdc.KindInt || from == cdc.KindUint) && (s == "0" || s == "1"):
			s = map[string]string{"0": "false", "1": "true"}[s]
		default:
			return refuse()
		}
		return pick(s, map[string]string{"true": "true", "false": "false"})
	case cdc.KindDecimal:
		switch from {
		case cdc.KindDecimal, cdc.KindInt, cdc.KindUint, cdc.KindText:
		case cdc.KindFloat32, cdc.KindFloat64:
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, err
			}
			if !math.IsNaN(f) && !math.IsInf(f, 0) {
				s = strconv.FormatFloat(f, 'f', -1, map[bool]int{true: 32, false: 64}[from == cdc.KindFloat32])
			}
		default:
			return refuse()
		}
		return decimalAtScale(src, s)
	case cdc.KindFloat32, cdc.KindFloat64:
		switch from {
		case cdc.KindFloat32, cdc.KindFloat64, cdc.KindDecimal, cdc.KindInt, cdc.KindUint, cdc.KindText:
		default:
			return refuse()
		}
		if from == cdc.KindFloat32 && src.Kind == cdc.KindFloat64 {
			// The real's own value, not the double its shortest digits name: a
			// DOUBLE's 0.1 in a real is 0.10000000149011612, and differs.
			f, err := cdc.ParseFloat(s, 32)
			if err != nil {
				return nil, err
			}
			return []byte(cdc.FormatFloat(f, 64)), nil
		}
		return floatText(src, s)
	case cdc.KindText:
		return c, nil // any text: what conv wrote or the type's own canonical text
	case cdc.KindBytes:
		if from != cdc.KindBytes && from != cdc.KindText {
			return refuse()
		}
		return c, nil
	case cdc.KindDate, cdc.KindTimestamp, cdc.KindTimestampTZ:
		return timeToSource(src.Kind, from, s)
	case cdc.KindTime:
		switch from {
		case cdc.KindTime, cdc.KindText:
			return durationText(s)
		case cdc.KindInterval:
			return durationFromInterval(s)
		}
		return refuse()
	case cdc.KindInterval:
		if from != cdc.KindInterval && from != cdc.KindText {
			return refuse()
		}
		if s == "infinity" || s == "-infinity" {
			return c, nil
		}
		iv, err := cdc.ParseInterval(s)
		return []byte(iv.String()), err
	case cdc.KindJSON:
		if from != cdc.KindJSON && from != cdc.KindText {
			return refuse()
		}
		return cdc.NormalJSON(c)
	case cdc.KindEnum:
		if from != cdc.KindText && from != cdc.KindEnum {
			return refuse()
		}
		return c, checkLabel(src, s)
	case cdc.KindSet:
		if from != cdc.KindText {
			return refuse()
		}
		var labels []string
		if s != "" {
			labels = strings.Split(s, ",")
		}
		return setText(src, labels)
	case cdc.KindBits:
		return bitsToSource(src, from, s)
	case cdc.KindUUID:
		if from != cdc.KindUUID && from != cdc.KindText {
			return refuse()
		}
		s = strings.ToLower(s)
		return []byte(s), checkUUID(s)
	case cdc.KindGeometry:
		if from != cdc.KindGeometry {
			return refuse()
		}
		return c, nil
	}
	return nil, fmt.Errorf("the source's %s has no canonical form", src.Kind)
}

// decimalAtScale writes a decimal (plain notation) at the scale of t: Scale digits
// after the point, none when it is 0 or below; more digits than that must be zeros.
// Without a declared precision the value keeps its own scale.
func decimalAtScale(t cdc.Type, s string) ([]byte, error) {
	if err := checkDecimal(s); err != nil {
		return nil, err
	}
	if t.Precision == 0 || s == "NaN" || s == "Infinity" || s == "-Infinity" {
		return []byte(s), nil
	}
	neg := strings.HasPrefix(s, "-")
	whole, frac, _ := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	scale := max(t.Scale, 0)
	switch {
	case len(frac) < scale:
		frac += strings.Repeat("0", scale-len(frac))
	case strings.Trim(frac[scale:], "0") != "":
		return nil, fmt.Errorf("more digits after the point than the source's scale (%d)", t.Scale)
	default:
		frac = frac[:scale]
	}
	out := whole
	if frac != "" {
		out += "." + frac
	}
	if neg && strings.Trim(whole+frac, "0") != "" {
		out = "-" + out
	}
	return []byte(out), nil
}

// timeToSource converts a date, timestamp or instant (or text in the source's form)
// to the source's date, timestamp or instant.
func timeToSource(to, from cdc.Kind, s string) ([]byte, error) {
	if s == "infinity" || s == "-infinity" {
		return []byte(s), nil
	}
	var t time.Time
	var err error
	switch from {
	case cdc.KindDate:
		t, err = cdc.ParseDate(s)
	case cdc.KindTimestamp:
		t, err = cdc.ParseTimestamp(s)
	case cdc.KindTimestampTZ:
		if !strings.HasSuffix(s, "Z") {
			return nil, errors.New("an instant ends in Z")
		}
		t, err = cdc.ParseTimestamp(s)
	case cdc.KindText:
		switch to {
		case cdc.KindDate:
			t, err = cdc.ParseDate(s)
		case cdc.KindTimestamp:
			t, err = cdc.ParseTimestamp(s)
			if err == nil && strings.HasSuffix(s, "Z") {
				err = errors.New("a timestamp does not end in Z")
			}
		default:
			if !strings.HasSuffix(s, "Z") {
				return nil, errors.New("an instant ends in Z")
			}
			t, err = cdc.ParseTimestamp(s)
		}
	default:
		return nil, fmt.Errorf("a %s value does not convert to the source's %s", from, to)
	}
	if err != nil {
		return nil, err
	}
	switch to {
	case cdc.KindDate:
		if t.Hour()|t.Minute()|t.Second()|t.Nanosecond() != 0 {
			return nil, errors.New("a time of day other than midnight, which a date does not hold")
		}
		return []byte(cdc.FormatDate(t)), nil
	case cdc.KindTimestamp:
		return []byte(cdc.FormatTimestamp(t)), nil
	}
	return []byte(cdc.FormatInstant(t)), nil
}

// durationText writes a MySQL TIME ("[-]H+:MM:SS[.f]", or a PostgreSQL time of
// day) in the extended KindTime form.
func durationText(s string) ([]byte, error) {
	neg := strings.HasPrefix(s, "-")
	h, m, sec, us, err := cdc.ParseClock(strings.TrimPrefix(s, "-"))
	if err != nil {
		return nil, err
	}
	if h > 838 {
		return nil, errors.New("beyond MySQL's TIME range (838:59:59.999999)")
	}
	micros := int64(h)*3600e6 + int64(m)*60e6 + int64(sec)*1e6 + int64(us)
	if neg {
		micros = -micros
	}
	return durationMicros(micros)
}

// durationFromInterval writes a canonical interval as a MySQL TIME: a day is 24
// hours; months (of no fixed length) are an error.
func durationFromInterval(s string) ([]byte, error) {
	if s == "infinity" || s == "-infinity" {
		return nil, errors.New("an infinite interval, which a TIME does not hold")
	}
	iv, err := cdc.ParseInterval(s)
	if err != nil {
		return nil, err
	}
	if iv.Months != 0 {
		return nil, errors.New("an interval of months, which a TIME does not hold")
	}
	if iv.Micros > math.MaxInt64/2 || iv.Micros < math.MinInt64/2 {
		return nil, errors.New("beyond MySQL's TIME range (838:59:59)")
	}
	return durationMicros(int64(iv.Days)*86400e6 + iv.Micros)
}

// durationMicros writes a duration in the extended KindTime form, refusing what
// is beyond MySQL's TIME (838:59:59.999999).
func durationMicros(micros int64) ([]byte, error) {
	neg := micros < 0
	if neg {
		micros = -micros
	}
	if micros >= 839*3600e6 {
		return nil, errors.New("beyond MySQL's TIME range (838:59:59.999999)")
	}
	out := cdc.FormatClock(int(micros/3600e6), int(micros/60e6%60), int(micros/1e6%60), int(micros%1e6))
	if neg {
		out = "-" + out
	}
	return []byte(out), nil
}

// setFromArray reads a SET's text[] (its text output) as the SET's labels.
func setFromArray(t cdc.Type, b []byte) ([]byte, error) {
	if bytes.HasPrefix(b, []byte("[")) {
		return nil, errors.New("an array whose indexes do not start at 1")
	}
	elems, rest, err := parsePGArray(b)
	if err == nil && len(rest) > 0 {
		err = errors.New("text after the array")
	}
	if err != nil {
		return nil, err
	}
	labels := make([]string, len(elems))
	for i, e := range elems {
		l, ok := e.([]byte)
		if !ok {
			return nil, fmt.Errorf("element %d is NULL or an array, not a label", i+1)
		}
		labels[i] = string(l)
	}
	return setText(t, labels)
}

// setText writes a SET's labels in the order of t.Labels, each once, joined by ",";
// a label not among them is an error. Without t.Labels they stay in their order.
func setText(t cdc.Type, labels []string) ([]byte, error) {
	if len(t.Labels) == 0 {
		return []byte(strings.Join(labels, ",")), nil
	}
	for _, l := range labels {
		if !slices.Contains(t.Labels, l) {
			return nil, fmt.Errorf("%q is not one of the set's labels %q", l, t.Labels)
		}
	}
	out := []byte{}
	for _, l := range t.Labels {
		if slices.Contains(labels, l) {
			if len(out) > 0 {
				out = append(out, ',')
			}
			out = append(out, l...)
		}
	}
	return out, nil
}

// bitsToSource writes bits (or a boolean, an integer, text of bits) as the source's
// bit string: fewer bits than a fixed width are zeros added on the left (the same
// number, as MySQL's BIT holds it).
func bitsToSource(t cdc.Type, from cdc.Kind, s string) ([]byte, error) {
	switch from {
	case cdc.KindBits, cdc.KindText:
	case cdc.KindBool:
		s = map[string]string{"true": "1", "false": "0"}[s]
	case cdc.KindInt, cdc.KindUint:
		var n uint64
		if strings.HasPrefix(s, "-") {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, err
			}
			if t.Width < 64 {
				return nil, fmt.Errorf("a negative integer, which is no bit(%d)", t.Width)
			}
			n = uint64(v) // bit(64) as bigint: the same 64 bits
		} else {
			var err error
			if n, err = strconv.ParseUint(s, 10, 64); err != nil {
				return nil, err
			}
		}
		s = strconv.FormatUint(n, 2)
	default:
		return nil, fmt.Errorf("a %s value does not convert to the source's bits", from)
	}
	if t.Fixed && len(s) < t.Width {
		s = strings.Repeat("0", t.Width-len(s)) + s
	}
	return []byte(s), checkBits(t, s)
}
