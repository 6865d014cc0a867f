package postgres

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/cutover-dev/cutover/schema"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The MySQL to PostgreSQL translation: its decisions on hand-built schemas, and a
// real server that runs its DDL, reads its converters' output through COPY and
// is asked, with SQL of the test's own, what it holds.

func myCol(name string, t cdc.Type, opts ...func(*schema.Column)) schema.Column {
	c := schema.Column{Name: name, Type: t}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func notNull(c *schema.Column) { c.NotNull = true }
func autoInc(c *schema.Column) { c.AutoIncrement = true }
func ci(c *schema.Column) {
	c.CaseInsensitive, c.PadInsensitive, c.Charset, c.Collation = true, true, "utf8mb4", "utf8mb4_general_ci"
}
func onUpdate(c *schema.Column) { c.OnUpdateNow = true }
func withDefault(v string) func(*schema.Column) {
	return func(c *schema.Column) { c.Default = &schema.Default{Value: v} }
}

func ty(k cdc.Kind, name string) cdc.Type { return cdc.Type{Kind: k, Name: name} }
func intTy(name string, width int, unsigned bool) cdc.Type {
	k := cdc.KindInt
	if unsigned {
		k = cdc.KindUint
	}
	return cdc.Type{Kind: k, Name: name, Width: width}
}

func oneTable(cols ...schema.Column) *schema.Schema {
	return &schema.Schema{Dialect: "mysql", Tables: []*schema.Table{{Schema: "app", Name: "T", Columns: cols}}}
}

func mustTranslate(t *testing.T, s *schema.Schema, rules translateRules) *translation {
	t.Helper()
	tr, err := translate(s, "dst", rules)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// colMapping finds a column's mapping.
func colMapping(t *testing.T, tr *translation, table, column string) check.ColumnMapping {
	t.Helper()
	for _, tm := range tr.mapping().Tables {
		if tm.Source != table {
			continue
		}
		for _, c := range tm.Columns {
			if c.Source == column {
				return c
			}
		}
	}
	t.Fatalf("no mapping of %s.%s", table, column)
	return check.ColumnMapping{}
}

func hasFinding(tr *translation, sev check.Severity, object, problem string) bool {
	for _, f := range tr.findings {
		if f.Severity == sev && f.Object == object && strings.Contains(f.Problem, problem) {
			return true
		}
	}
	return false
}

func TestTranslateTypes(t *testing.T) {
	for _, tc := range []struct {
		col   schema.Column
		rules translateRules
		want  string // the mapping's target type, checks included
		note  string // in the note
	}{
		{col: myCol("a", intTy("tinyint(4)", 1, false)), want: `smallint CHECK ("a" BETWEEN -128 AND 127)`},
		{col: myCol("a", intTy("tinyint(3) unsigned", 1, true)), want: `smallint CHECK ("a" BETWEEN 0 AND 255)`},
		{col: myCol("a", intTy("smallint", 2, false)), want: `smallint`},
		{col: myCol("a", intTy("smallint unsigned", 2, true)), want: `integer CHECK ("a" BETWEEN 0 AND 65535)`},
		{col: myCol("a", intTy("mediumint", 3, false)), want: `integer CHECK ("a" BETWEEN -8388608 AND 8388607)`},
		{col: myCol("a", intTy("mediumint unsigned", 3, true)), want: `integer CHECK ("a" BETWEEN 0 AND 16777215)`},
		{col: myCol("a", intTy("int(11)", 4, false)), want: `integer`},
		// The display width never widens: int(20) is an int.
		{col: myCol("a", intTy("int(20)", 4, false)), want: `integer`},
		{col: myCol("a", intTy("int unsigned", 4, true)), want: `bigint CHECK ("a" BETWEEN 0 AND 4294967295)`},
		{col: myCol("a", intTy("bigint(20)", 8, false)), want: `bigint`},
		{col: myCol("a", intTy("bigint(20) unsigned", 8, true)), want: `numeric(20,0) CHECK ("a" BETWEEN 0 AND 18446744073709551615)`},
		{col: myCol("a", intTy("bigint unsigned", 8, true), autoInc, notNull), want: `bigint identity CHECK ("a" >= 0)`, note: "identity is an integer type"},
		{col: myCol("a", intTy("int", 4, false), autoInc), want: `integer identity`},
		{col: myCol("a", intTy("tinyint(1)", 1, false)), want: `smallint CHECK ("a" BETWEEN -128 AND 127)`, note: "boolean when the plan says"},
		{col: myCol("a", intTy("tinyint(1)", 1, false)), rules: translateRules{TinyintAsBoolean: true}, want: `boolean`},
		{col: myCol("a", intTy("tinyint(4)", 1, false)), rules: translateRules{TinyintAsBoolean: true}, want: `smallint CHECK ("a" BETWEEN -128 AND 127)`},
		{col: myCol("a", intTy("year", 2, true)), want: `smallint CHECK ("a" = 0 OR "a" BETWEEN 1901 AND 2155)`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindDecimal, Name: "decimal(10,2)", Precision: 10, Scale: 2}), want: `numeric(10,2)`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindDecimal, Name: "decimal(65,30) unsigned", Precision: 65, Scale: 30}), want: `numeric(65,30) CHECK ("a" >= 0)`},
		{col: myCol("a", ty(cdc.KindFloat32, "float")), want: `real`},
		{col: myCol("a", ty(cdc.KindFloat64, "double")), want: `double precision`},
		{col: myCol("a", ty(cdc.KindFloat64, "double unsigned")), want: `double precision CHECK ("a" >= 0)`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindText, Name: "varchar(20)", Width: 20}), want: `character varying(20)`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindText, Name: "char(3)", Width: 3, Fixed: true}), want: `character varying(3)`, note: "CHAR(n) as varchar(n)"},
		{col: myCol("a", cdc.Type{Kind: cdc.KindText, Name: "text", Width: 16383}, func(c *schema.Column) { c.Charset = "utf8mb4" }), want: `text CHECK (octet_length("a") <= 65535)`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindText, Name: "text"}, func(c *schema.Column) { c.Charset = "latin1" }), want: `text CHECK (char_length("a") <= 65535) CHECK ("a"::text COLLATE "C" !~ '[^\x01-\x7f\xa0-\xff` + latin1High() + `]')`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindText, Name: "varchar(3)", Width: 3}, func(c *schema.Column) { c.Charset = "ascii" }), want: `character varying(3) CHECK ("a"::text COLLATE "C" !~ '[^\x01-\x7f]')`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindText, Name: "char(3)", Width: 3, Fixed: true}, func(c *schema.Column) { c.Charset = "utf8mb3" }), want: `character varying(3) CHECK ("a"::text COLLATE "C" !~ '[\U00010000-\U0010ffff]')`, note: "CHAR(n)"},
		{col: myCol("a", ty(cdc.KindText, "longtext"), func(c *schema.Column) { c.Charset = "utf8mb4" }), want: `text`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindText, Name: "varchar(20)", Width: 20}, ci), want: `character varying(20)`, note: "case-sensitive in PostgreSQL"},
		{col: myCol("a", cdc.Type{Kind: cdc.KindText, Name: "varchar(20)", Width: 20}, ci), rules: translateRules{CaseInsensitive: "icu"},
			want: `character varying(20) COLLATE "dst"."cutover_ci_ai"`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindText, Name: "varchar(20)", Width: 20}, ci, func(c *schema.Column) { c.Collation = "utf8mb4_0900_as_ci" }),
			rules: translateRules{CaseInsensitive: "icu"}, want: `character varying(20) COLLATE "dst"."cutover_ci"`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindText, Name: "varchar(20)", Width: 20}, ci), rules: translateRules{CaseInsensitive: "citext"},
			want: `citext CHECK (char_length("a") <= 20)`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindBytes, Name: "varbinary(16)", Width: 16}), want: `bytea CHECK (octet_length("a") <= 16)`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindBytes, Name: "binary(4)", Width: 4, Fixed: true}), want: `bytea CHECK (octet_length("a") <= 4)`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindBytes, Name: "blob", Width: 65535}), want: `bytea CHECK (octet_length("a") <= 65535)`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindBytes, Name: "longblob", Width: 4294967295}), want: `bytea`},
		{col: myCol("a", ty(cdc.KindDate, "date")), want: `date`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindTimestamp, Name: "datetime(6)", Precision: 6}), want: `timestamp(6) without time zone`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindTimestamp, Name: "datetime"}), want: `timestamp(0) without time zone`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindTimestampTZ, Name: "timestamp(3)", Precision: 3}), want: `timestamp(3) with time zone`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindTime, Name: "time(1)", Precision: 1}), want: `interval(1)`, note: "838:59:59"},
		{col: myCol("a", ty(cdc.KindJSON, "json")), want: `jsonb`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindEnum, Name: "enum('x','y')", Labels: []string{"x", "y"}}), want: `"dst"."t_a"`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindEnum, Name: "enum('x','y')", Labels: []string{"x", "y"}}), rules: translateRules{EnumAs: "check"},
			want: `text CHECK ("a" IN ('x', 'y'))`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindEnum, Name: "enum(...)", Labels: []string{"x", strings.Repeat("l", 64)}}),
			want: `text CHECK ("a" IN ('x', '` + strings.Repeat("l", 64) + `'))`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindSet, Name: "set('a','b')", Labels: []string{"a", "b"}}), want: `text[] CHECK ("a" <@ ARRAY['a', 'b']::text[])`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindBits, Name: "bit(5)", Width: 5, Fixed: true}), want: `bit(5)`},
		{col: myCol("a", ty(cdc.KindUUID, "uuid")), want: `uuid`},
		{col: myCol("a", ty(cdc.KindBool, "boolean")), want: `boolean`},
		// Overrides: by column, by type with modifiers, by base type.
		{col: myCol("a", intTy("tinyint(1)", 1, false)), rules: translateRules{Types: map[string]string{"T.A": "boolean"}}, want: `boolean`},
		{col: myCol("a", intTy("bigint(20) unsigned", 8, true)), rules: translateRules{Types: map[string]string{"bigint unsigned": "bigint"}}, want: `bigint`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindTimestamp, Name: "datetime(3)", Precision: 3}), rules: translateRules{Types: map[string]string{"datetime": "timestamptz"}}, want: `timestamptz`},
		{col: myCol("a", cdc.Type{Kind: cdc.KindBits, Name: "bit(1)", Width: 1, Fixed: true}), rules: translateRules{Types: map[string]string{"bit(1)": "boolean"}}, want: `boolean`},
	} {
		t.Run(tc.col.Type.Name+"/"+tc.want, func(t *testing.T) {
			tr := mustTranslate(t, oneTable(tc.col), tc.rules)
			m := colMapping(t, tr, "app.T", "a")
			if m.TargetType != tc.want || m.Target != "a" || m.SourceType != tc.col.Type.Name {
				t.Errorf("mapped to %q %q, want %q", m.Target, m.TargetType, tc.want)
			}
			if !strings.Contains(m.Note, tc.note) {
				t.Errorf("note %q, want %q in it", m.Note, tc.note)
			}
		})
	}
}

func TestTranslateNotCarried(t *testing.T) {
	s := oneTable(myCol("id", intTy("int", 4, false), notNull), myCol("g", ty(cdc.KindGeometry, "point")))
	s.Tables[0].PrimaryKey = []string{"id"}
	s.Tables[0].Indexes = []schema.Index{{Name: "sp", Method: "spatial", Columns: []schema.IndexColumn{{Name: "g"}}}}
	tr := mustTranslate(t, s, translateRules{})
	if m := colMapping(t, tr, "app.T", "g"); m.Target != "(not carried)" || m.TargetType != "" {
		t.Errorf("geometry mapped to %+v", m)
	}
	if !hasFinding(tr, check.Error, "column app.T.g", "type point is not carried: spatial types become PostGIS's geometry, and the target has no postgis extension") {
		t.Errorf("no error finding for the geometry column: %+v", tr.findings)
	}
	if !hasFinding(tr, check.Warning, "index app.T.sp", "SPATIAL") {
		t.Errorf("no finding for the spatial index: %+v", tr.findings)
	}
	tt := tr.table(s.Tables[0])
	if fmt.Sprint(tt.copyColumns, tt.sourceColumns, len(tt.converters)) != `["id"] [id] 1` {
		t.Errorf("copy columns %v %v %d", tt.copyColumns, tt.sourceColumns, len(tt.converters))
	}
	if got := tr.tableIndexes(s.Tables[0]); len(got) != 0 {
		t.Errorf("indexes %q", got)
	}
	// With PostGIS on the target: a geometry of its subtype, the SPATIAL key GiST.
	tr = mustTranslate(t, s, translateRules{PostGIS: true})
	if m := colMapping(t, tr, "app.T", "g"); m.TargetType != "geometry(Point)" {
		t.Errorf("geometry mapped to %+v with PostGIS", m)
	}
	if got := tr.tableIndexes(s.Tables[0]); len(got) != 1 || !strings.Contains(got[0], `USING gist ("g")`) {
		t.Errorf("indexes with PostGIS %q", got)
	}
}

func TestTranslateNames(t *testing.T) {
	two := &schema.Schema{Dialect: "mysql", Tables: []*schema.Table{
		{Schema: "app", Name: "Users", Columns: []schema.Column{myCol("id", intTy("int", 4, false))}},
		{Schema: "app", Name: "users", Columns: []schema.Column{myCol("id", intTy("int", 4, false))}},
	}}
	_, err := translate(two, "dst", translateRules{})
	if err == nil || !strings.Contains(err.Error(), "app.Users and app.users both become dst.users") || !strings.Contains(err.Error(), "RENAME TABLE") {
		t.Errorf("collision of tables: %v", err)
	}
	long := strings.Repeat("é", 40) // 80 bytes
	cols := oneTable(myCol(long+"a", intTy("int", 4, false)), myCol(long+"b", intTy("int", 4, false)))
	if _, err := translate(cols, "dst", translateRules{}); err == nil || !strings.Contains(err.Error(), "of table app.T both become") {
		t.Errorf("collision of columns cut at 63 bytes: %v", err)
	}

	// Folded and quoted; generated names (enum types, indexes) take a suffix.
	s := &schema.Schema{Dialect: "mysql", Tables: []*schema.Table{
		{Schema: "app", Name: "Order", PrimaryKey: []string{"ID"}, Columns: []schema.Column{
			myCol("ID", intTy("int", 4, false), notNull, autoInc),
			myCol("Status", cdc.Type{Kind: cdc.KindEnum, Name: "enum('a')", Labels: []string{"a"}}),
			myCol("ÉtatX", intTy("int", 4, false)),
		}, Indexes: []schema.Index{{Name: "idx_status", Columns: []schema.IndexColumn{{Name: "Status"}}}, {Name: "Dup", Columns: []schema.IndexColumn{{Name: "ID", Desc: true}}}}},
		{Schema: "app", Name: "order_status", Columns: []schema.Column{myCol("x", intTy("int", 4, false))},
			Indexes: []schema.Index{{Name: "dup", Columns: []schema.IndexColumn{{Name: "x"}}}}},
	}}
	tr := mustTranslate(t, s, translateRules{})
	pre := strings.Join(tr.preData(), ";\n")
	for _, want := range []string{
		`CREATE SCHEMA IF NOT EXISTS "dst"`,
		`CREATE TYPE "dst"."order_status_2" AS ENUM ('a')`, // "order_status" is a table
		`CREATE TABLE "dst"."order" (`,
		`"id" integer GENERATED BY DEFAULT AS IDENTITY`,
		`"status" "dst"."order_status_2"`,
		`"Étatx" integer`, // ASCII letters only, as PostgreSQL folds
		`CONSTRAINT "order_pkey" PRIMARY KEY ("id")`,
	} {
		if !strings.Contains(pre, want) {
			t.Errorf("pre-data lacks %s:\n%s", want, pre)
		}
	}
	idx := strings.Join(append(tr.tableIndexes(s.Tables[0]), tr.tableIndexes(s.Tables[1])...), "\n")
	for _, want := range []string{
		`CREATE INDEX "idx_status" ON "dst"."order" ("status")`,
		`CREATE INDEX "order_dup" ON "dst"."order" ("id" DESC)`,
		`CREATE INDEX "order_status_dup" ON "dst"."order_status" ("x")`,
	} {
		if !strings.Contains(idx, want) {
			t.Errorf("indexes lack %s:\n%s", want, idx)
		}
	}
	if got := (nameScope{}).unique(strings.Repeat("x", 70), ""); len(got) != 63 {
		t.Errorf("unique of a long name: %d bytes", len(got))
	}
	n := nameScope{}
	n.unique(strings.Repeat("x", 70), "")
	if got := n.unique(strings.Repeat("x", 70), ""); got != strings.Repeat("x", 61)+"_2" {
		t.Errorf("second long name %q", got)
	}
}

func TestTranslateRulesRefused(t *testing.T) {
	for _, r := range []translateRules{
		{ZeroDates: "zero"}, {EnumAs: "varchar"}, {CaseInsensitive: "lower"},
		{Types: map[string]string{"t.a": "int; DROP TABLE x"}},
	} {
		if _, err := translate(oneTable(), "dst", r); err == nil {
			t.Errorf("rules %+v accepted", r)
		}
	}
}

func TestTranslateIdentities(t *testing.T) {
	s := &schema.Schema{Dialect: "mysql", Tables: []*schema.Table{
		{Schema: "app", Name: "parent", PrimaryKey: []string{"id"}, NextAutoIncrement: 1 << 40, Columns: []schema.Column{
			myCol("id", intTy("bigint unsigned", 8, true), notNull, autoInc)}},
		{Schema: "app", Name: "child", PrimaryKey: []string{"id"}, Columns: []schema.Column{
			myCol("id", intTy("int", 4, false), notNull, autoInc),
			myCol("parent_id", intTy("bigint unsigned", 8, true)),
			myCol("other", intTy("bigint unsigned", 8, true)),
		}, ForeignKeys: []schema.ForeignKey{{Name: "FK_parent", Columns: []string{"parent_id"}, RefTable: "parent", RefColumns: []string{"id"}, OnDelete: "cascade"}}},
		{Schema: "app", Name: "big", PrimaryKey: []string{"id"}, NextAutoIncrement: math.MaxUint64, Columns: []schema.Column{
			myCol("id", intTy("bigint unsigned", 8, true), notNull, autoInc)}},
	}}
	tr := mustTranslate(t, s, translateRules{})
	ids := tr.identities()
	want := []string{
		`SELECT setval(pg_get_serial_sequence('"dst"."parent"', 'id'), greatest(1099511627776, (SELECT coalesce(max("id") + 1, 1) FROM "dst"."parent")), false)`,
		`SELECT setval(pg_get_serial_sequence('"dst"."child"', 'id'), greatest(1, (SELECT coalesce(max("id") + 1, 1) FROM "dst"."child")), false)`,
		`SELECT setval(pg_get_serial_sequence('"dst"."big"', 'id'), greatest(9223372036854775807, (SELECT coalesce(max("id") + 1, 1) FROM "dst"."big")), false)`,
	}
	if strings.Join(ids, "\n") != strings.Join(want, "\n") {
		t.Errorf("identities:\n%s\nwant\n%s", strings.Join(ids, "\n"), strings.Join(want, "\n"))
	}
	if !hasFinding(tr, check.Error, "column app.big.id", "beyond bigint") {
		t.Errorf("no finding for a counter beyond bigint: %+v", tr.findings)
	}
	// The foreign key's column follows the narrowed key; the other stays numeric(20).
	if m := colMapping(t, tr, "app.child", "parent_id"); m.TargetType != `bigint CHECK ("parent_id" >= 0)` {
		t.Errorf("parent_id: %s", m.TargetType)
	}
	if m := colMapping(t, tr, "app.child", "other"); !strings.HasPrefix(m.TargetType, "numeric(20,0)") {
		t.Errorf("other: %s", m.TargetType)
	}
	if got := tr.postData(); len(got) != 1 || got[0] != `ALTER TABLE "dst"."child" ADD CONSTRAINT "fk_parent" FOREIGN KEY ("parent_id") REFERENCES "dst"."parent" ("id") ON DELETE CASCADE ON UPDATE NO ACTION` {
		t.Errorf("post-data %q", got)
	}
	conv := tr.table(s.Tables[1]).converters[1]
	if _, err := conv([]byte("9223372036854775808")); err == nil || !strings.Contains(err.Error(), "app.child.parent_id") {
		t.Errorf("a value beyond bigint: %v", err)
	}
}

func TestTranslateFindings(t *testing.T) {
	text20 := cdc.Type{Kind: cdc.KindText, Name: "varchar(200)", Width: 200}
	s := &schema.Schema{Dialect: "mysql", Tables: []*schema.Table{
		{Schema: "app", Name: "t", PrimaryKey: []string{"id", "d0"}, Columns: []schema.Column{
			myCol("id", intTy("int", 4, false), notNull),
			myCol("d0", ty(cdc.KindDate, "date"), notNull),
			myCol("d1", ty(cdc.KindDate, "date"), notNull),
			myCol("d2", cdc.Type{Kind: cdc.KindTimestamp, Name: "datetime"}, notNull),
			myCol("d3", ty(cdc.KindDate, "date"), notNull),
			myCol("name", text20, ci),
			myCol("body", ty(cdc.KindText, "text")),
			myCol("bin", ty(cdc.KindBytes, "blob")),
			myCol("total", intTy("int", 4, false), func(c *schema.Column) { c.Generated, c.Stored = "`id` * 2", true }),
			myCol("changed", cdc.Type{Kind: cdc.KindTimestampTZ, Name: "timestamp"}, onUpdate, func(c *schema.Column) { c.Default = &schema.Default{Now: true} }),
			myCol("local", cdc.Type{Kind: cdc.KindTimestamp, Name: "datetime(3)", Precision: 3}, func(c *schema.Column) { c.Default = &schema.Default{Now: true, Precision: 3} }),
			myCol("u", ty(cdc.KindUUID, "uuid"), func(c *schema.Column) { c.Default = &schema.Default{Expr: "uuid()"} }),
			myCol("n", intTy("int", 4, false), withDefault("42")),
			myCol("j", ty(cdc.KindJSON, "longtext")),
		}, Indexes: []schema.Index{
			{Name: "uname", Unique: true, Columns: []schema.IndexColumn{{Name: "name", Prefix: 10}}},
			{Name: "iname", Columns: []schema.IndexColumn{{Name: "name", Prefix: 10}}},
			{Name: "ibody", Columns: []schema.IndexColumn{{Name: "body", Prefix: 100}}},
			{Name: "ubin", Unique: true, Columns: []schema.IndexColumn{{Name: "bin", Prefix: 8}}},
			{Name: "ft", Method: "FULLTEXT", Columns: []schema.IndexColumn{{Name: "name"}, {Name: "body"}}},
			{Name: "fx", Columns: []schema.IndexColumn{{Expr: "(`id` + 1)"}}},
		}, Checks: []schema.Check{{Name: "c1", Expr: "`id` > 0"}, {Name: "j_valid", Expr: "json_valid(`j`)"}},
			ForeignKeys: []schema.ForeignKey{{Name: "gone", Columns: []string{"id"}, RefTable: "nowhere", RefColumns: []string{"id"}}}},
	}, Objects: []schema.Object{{Kind: "view", Schema: "app", Name: "v", Definition: "select 1"}, {Kind: "trigger", Schema: "app", Name: "trg", Table: "t", Definition: "CREATE TRIGGER trg ..."}}}
	rules := translateRules{ZeroDateColumns: map[string]bool{"t.d0": true, "T.D1": true, "app.t.d2": true}}
	tr := mustTranslate(t, s, rules)
	for _, f := range []struct {
		sev             check.Severity
		object, problem string
	}{
		{check.Error, "column app.t.d0", "in the primary key"},
		{check.Warning, "column app.t.d1", "its NOT NULL is dropped"},
		{check.Warning, "column app.t.d2", "its NOT NULL is dropped"},
		{check.Warning, "table app.t", "columns name compare case-insensitively in MySQL"},
		{check.Info, "table app.t", "keys on columns name ignore trailing spaces"},
		{check.Warning, "column app.t.total", "generated column: its MySQL expression (`id` * 2)"},
		{check.Warning, "column app.t.changed", "ON UPDATE CURRENT_TIMESTAMP is not carried"},
		{check.Warning, "column app.t.u", "default uuid() is not carried"},
		{check.Info, "index app.t.uname", `name(10) by left("name", 10), exact`},
		{check.Info, "index app.t.iname", `name(10) by the whole column`},
		{check.Info, "index app.t.ibody", `body(100) by left("body", 100)`},
		{check.Info, "index app.t.ubin", `bin(8) by substring("bin" from 1 for 8), exact`},
		{check.Info, "index app.t.ft", `GIN index on to_tsvector('simple', coalesce("name"::text, '') || ' ' || coalesce("body"::text, ''))`},
		{check.Warning, "index app.t.fx", "MySQL expression"},
		{check.Warning, "check app.t.c1", "CHECK (`id` > 0) is not carried"},
		{check.Info, "check app.t.j_valid", "not needed: the column is jsonb"},
		{check.Warning, "foreign key app.t.gone", "app.nowhere, which is not migrated"},
		{check.Warning, "trigger app.trg on t", "CREATE TRIGGER trg ..."},
	} {
		if !hasFinding(tr, f.sev, f.object, f.problem) {
			t.Errorf("no %s finding on %s: %s", f.sev, f.object, f.problem)
		}
	}
	if len(tr.findings) != 18 || len(tr.views) != 1 { // the view is tried on the target (TestTranslateViews)
		t.Errorf("%d findings, want 18, and %d views: %+v", len(tr.findings), len(tr.views), tr.findings)
	}
	pre := strings.Join(tr.preData(), "\n")
	for _, want := range []string{`"d0" date NOT NULL,`, `"d1" date,`, `"d2" timestamp(0) without time zone,`, `"d3" date NOT NULL`,
		`"changed" timestamp(0) with time zone DEFAULT CURRENT_TIMESTAMP(0)`, `"local" timestamp(3) without time zone DEFAULT LOCALTIMESTAMP(3)`,
		`"n" integer DEFAULT '42'`, `"u" uuid,`, `"total" integer,`} {
		if !strings.Contains(pre, want) {
			t.Errorf("pre-data lacks %s:\n%s", want, pre)
		}
	}
	idx := strings.Join(tr.tableIndexes(s.Tables[0]), "\n")
	for _, want := range []string{
		`CREATE UNIQUE INDEX "uname" ON "dst"."t" ((left("name", 10)))`,
		`CREATE UNIQUE INDEX "uname_pad" ON "dst"."t" ((rtrim(left("name", 10), ' ')))`,
		`CREATE INDEX "iname" ON "dst"."t" ("name")`,
		`CREATE INDEX "ibody" ON "dst"."t" ((left("body", 100)))`,
		`CREATE UNIQUE INDEX "ubin" ON "dst"."t" ((substring("bin" from 1 for 8)))`,
		`CREATE INDEX "ft" ON "dst"."t" USING gin (to_tsvector('simple', coalesce("name"::text, '') || ' ' || coalesce("body"::text, '')))`,
	} {
		if !strings.Contains(idx, want) {
			t.Errorf("indexes lack %s:\n%s", want, idx)
		}
	}

	rules.ZeroDates = "error"
	tr = mustTranslate(t, s, rules)
	if !hasFinding(tr, check.Error, "column app.t.d1", "the plan refuses them") || !strings.Contains(strings.Join(tr.preData(), "\n"), `"d1" date NOT NULL`) {
		t.Errorf("zero dates refused: %+v", tr.findings)
	}

	// The mapping as JSON and as text.
	report := &check.Report{Mapping: tr.mapping(), Findings: tr.findings}
	report.Finish()
	var b, compact bytes.Buffer
	if err := report.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if err := json.Compact(&compact, b.Bytes()); err != nil || !bytes.Contains(compact.Bytes(), []byte(`{"source":"d1","source_type":"date","target":"d1","target_type":"date"}`)) ||
		!bytes.Contains(compact.Bytes(), []byte(`"findings":[{"severity":"error"`)) {
		t.Errorf("mapping JSON %s: %v", b.Bytes(), err)
	}
	var text bytes.Buffer
	if err := report.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(text.String(), "\n")
	if lines[3] != "table app.t -> dst.t" || !strings.HasPrefix(lines[4], "  id  ") || strings.Index(lines[4], "->") != strings.Index(lines[5], "->") ||
		!strings.Contains(text.String(), "ERROR    column app.t.d1") {
		t.Errorf("text mapping:\n%s", text.String())
	}

	// A foreign key with an action the binary log does not show, not carried: an error
	// when change data capture follows the load (its cascades would be missed), a
	// warning for a copy.
	s.Tables[0].ForeignKeys = append(s.Tables[0].ForeignKeys, schema.ForeignKey{Name: "gone_cascade", Columns: []string{"n"}, RefTable: "nowhere", RefColumns: []string{"id"}, OnDelete: "cascade"})
	tr = mustTranslate(t, s, rules)
	if !hasFinding(tr, check.Warning, "foreign key app.t.gone_cascade", "not carried: it references app.nowhere") {
		t.Errorf("a cascading key not carried, for a copy: %+v", tr.findings)
	}
	rules.CDC = true
	tr = mustTranslate(t, s, rules)
	if !hasFinding(tr, check.Error, "foreign key app.t.gone_cascade", "ON DELETE CASCADE ON UPDATE NO ACTION changes rows that the binary log does not show") ||
		!hasFinding(tr, check.Warning, "foreign key app.t.gone", "which is not migrated") {
		t.Errorf("a cascading key not carried, with change data capture: %+v", tr.findings)
	}
}

func TestTranslateConverters(t *testing.T) {
	conv := func(ct cdc.Type, rules translateRules) func([]byte) ([]byte, error) {
		tr := mustTranslate(t, oneTable(myCol("c", ct)), rules)
		return tr.tables[0].converters[0]
	}
	setT := cdc.Type{Kind: cdc.KindSet, Name: "set", Labels: []string{"a", `q"x`, `b\s`}}
	enumT := cdc.Type{Kind: cdc.KindEnum, Name: "enum", Labels: []string{"", "x"}}
	for _, tc := range []struct {
		ct       cdc.Type
		rules    translateRules
		in, want string // want "error: ..." for an error containing it
	}{
		{ct: intTy("bigint unsigned", 8, true), in: "18446744073709551615", want: "18446744073709551615"},
		{ct: intTy("tinyint", 1, false), in: "128", want: "error: out of range"},
		{ct: intTy("tinyint(1)", 1, false), rules: translateRules{TinyintAsBoolean: true}, in: "1", want: "t"},
		{ct: intTy("tinyint(1)", 1, false), rules: translateRules{TinyintAsBoolean: true}, in: "0", want: "f"},
		{ct: intTy("tinyint(1)", 1, false), rules: translateRules{TinyintAsBoolean: true}, in: "2", want: `error: column app.T.c: tinyint(1) value "2" to PostgreSQL boolean: boolean holds 0 and 1 only`},
		{ct: intTy("year", 2, true), in: "2155", want: "2155"},
		{ct: cdc.Type{Kind: cdc.KindDecimal, Name: "decimal(5,2)", Precision: 5, Scale: 2}, in: "-1.50", want: "-1.50"},
		{ct: ty(cdc.KindFloat32, "float"), in: "-0", want: "-0"},
		{ct: ty(cdc.KindFloat64, "double"), in: "1e+300", want: "1e+300"},
		{ct: ty(cdc.KindText, "text"), in: "a\x00b", want: "error: NUL"},
		{ct: ty(cdc.KindText, "text"), in: "\xff", want: "error: not UTF-8"},
		{ct: ty(cdc.KindBytes, "blob"), in: "\x00\xff\\", want: `\x00ff5c`},
		{ct: ty(cdc.KindDate, "date"), in: "1000-01-01", want: "1000-01-01"},
		{ct: ty(cdc.KindDate, "date"), in: "0000-00-00", want: "error: "},
		{ct: cdc.Type{Kind: cdc.KindTimestamp, Name: "datetime(6)", Precision: 6}, in: "2026-03-01 12:00:00.5", want: "2026-03-01 12:00:00.5"},
		{ct: cdc.Type{Kind: cdc.KindTimestampTZ, Name: "timestamp"}, in: "2038-01-19 03:14:07Z", want: "2038-01-19 03:14:07+00"},
		{ct: cdc.Type{Kind: cdc.KindTimestampTZ, Name: "timestamp"}, in: "2038-01-19 03:14:07", want: "error: an instant ends in Z"},
		{ct: cdc.Type{Kind: cdc.KindTime, Name: "time(1)", Precision: 1}, in: "-838:59:59.5", want: "0 mons 0 days -838 hours -59 mins -59.500000 secs"},
		{ct: cdc.Type{Kind: cdc.KindTime, Name: "time"}, in: "12:00:00", want: "0 mons 0 days 12 hours 0 mins 0.000000 secs"},
		{ct: cdc.Type{Kind: cdc.KindTime, Name: "time"}, in: "839:00:00", want: "error: beyond"},
		{ct: cdc.Type{Kind: cdc.KindTime, Name: "time"}, rules: translateRules{Types: map[string]string{"time": "time"}}, in: "12:00:00", want: "12:00:00"},
		{ct: cdc.Type{Kind: cdc.KindTime, Name: "time"}, rules: translateRules{Types: map[string]string{"time": "time"}}, in: "-01:00:00", want: "error: "},
		{ct: ty(cdc.KindJSON, "json"), in: `{"a": "\\u0000", "b": 1.0}`, want: `{"a": "\\u0000", "b": 1.0}`},
		{ct: ty(cdc.KindJSON, "json"), in: `{"a": "\u0000"}`, want: `error: cannot hold the character \u0000`},
		{ct: enumT, in: "", want: ""},
		{ct: enumT, in: "y", want: "error: not one of the enum's labels"},
		{ct: setT, in: "", want: "{}"},
		{ct: setT, in: `a,q"x,b\s`, want: `{"a","q\"x","b\\s"}`},
		{ct: setT, in: "a,z", want: `error: "z" is not one of the set's labels`},
		{ct: setT, rules: translateRules{Types: map[string]string{"set": "text"}}, in: "a,z", want: "a,z"},
		{ct: cdc.Type{Kind: cdc.KindBits, Name: "bit(5)", Width: 5, Fixed: true}, in: "00101", want: "00101"},
		{ct: cdc.Type{Kind: cdc.KindBits, Name: "bit(5)", Width: 5, Fixed: true}, in: "101", want: "error: 3 bits in a bit(5)"},
		{ct: cdc.Type{Kind: cdc.KindBits, Name: "bit(1)", Width: 1, Fixed: true}, rules: translateRules{Types: map[string]string{"bit(1)": "boolean"}}, in: "1", want: "t"},
		{ct: ty(cdc.KindUUID, "uuid"), in: "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", want: "error: lower-case"},
		{ct: ty(cdc.KindBytes, "varbinary(10)"), rules: translateRules{Types: map[string]string{"varbinary": "text"}}, in: "é", want: "é"},
	} {
		got, err := conv(tc.ct, tc.rules)([]byte(tc.in))
		if want, isErr := strings.CutPrefix(tc.want, "error: "); isErr {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s %q: %q, %v; want an error with %q", tc.ct.Name, tc.in, got, err, want)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("%s %q: %q, %v; want %q", tc.ct.Name, tc.in, got, err, tc.want)
		}
	}
}

// copyRow writes one row of COPY's text format (\N for NULL) as the load does.
func copyRow(b *bytes.Buffer, row [][]byte) {
	var line []byte
	for i, v := range row {
		if i > 0 {
			line = append(line, '\t')
		}
		if v == nil {
			line = append(line, '\\', 'N')
			continue
		}
		line = appendCopyText(line, v)
	}
	b.Write(append(line, '\n'))
}

// serverCase is one column of the server test: its values (canonical, nil for
// NULL), the SQL that reads each back as text ("%s" is the column) and what it must
// read.
type serverCase struct {
	col  schema.Column
	vals []any // string or nil
	sql  string
	want []string
}

func floatBits32(s string) string {
	f, _ := cdc.ParseFloat(s, 32)
	return fmt.Sprintf("%08x", math.Float32bits(float32(f)))
}

func floatBits64(s string) string {
	f, _ := cdc.ParseFloat(s, 64)
	return fmt.Sprintf("%016x", math.Float64bits(f))
}

func TestTranslateServer(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	bigJSON := `{"big": 12345678901234567890.123456789012345678901234567890, "d": 1.5e300, "s": "😀\n\t\\"}`
	enumT := cdc.Type{Kind: cdc.KindEnum, Name: "enum('','x','it''s')", Labels: []string{"", "x", "it's"}}
	setT := cdc.Type{Kind: cdc.KindSet, Name: "set(...)", Labels: []string{"a", `q"x`, `b\s`, "d e"}}
	v := func(s ...any) []any { return s }
	cases := []serverCase{
		{myCol("id", intTy("bigint unsigned", 8, true), notNull, autoInc), v("1", "2", "3"), "%s::text", []string{"1", "2", "3"}},
		{myCol("i1", intTy("tinyint(4)", 1, false)), v("-128", "127", nil), "%s::text", []string{"-128", "127", "NULL"}},
		{myCol("u1", intTy("tinyint(3) unsigned", 1, true)), v("0", "255", nil), "%s::text", []string{"0", "255", "NULL"}},
		{myCol("u2", intTy("smallint unsigned", 2, true)), v("65535", "0", nil), "%s::text", []string{"65535", "0", "NULL"}},
		{myCol("i3", intTy("mediumint", 3, false)), v("-8388608", "8388607", nil), "%s::text", []string{"-8388608", "8388607", "NULL"}},
		{myCol("u3", intTy("mediumint unsigned", 3, true)), v("16777215", "0", nil), "%s::text", []string{"16777215", "0", "NULL"}},
		{myCol("u4", intTy("int unsigned", 4, true)), v("4294967295", "0", nil), "%s::text", []string{"4294967295", "0", "NULL"}},
		{myCol("i8", intTy("bigint", 8, false)), v("-9223372036854775808", "9223372036854775807", nil), "%s::text", []string{"-9223372036854775808", "9223372036854775807", "NULL"}},
		{myCol("u8", intTy("bigint unsigned", 8, true)), v("18446744073709551615", "0", nil), "%s::text", []string{"18446744073709551615", "0", "NULL"}},
		{myCol("flag", intTy("tinyint(1)", 1, false)), v("1", "0", nil), "%s::text", []string{"true", "false", "NULL"}},
		{myCol("yr", intTy("year", 2, true)), v("1901", "2155", "0"), "%s::text", []string{"1901", "2155", "0"}},
		{myCol("dec", cdc.Type{Kind: cdc.KindDecimal, Name: "decimal(65,30)", Precision: 65, Scale: 30}),
			v("-12345678901234567890123456789012345.123456789012345678901234567890", "0.000000000000000000000000000000", nil), "%s::text",
			[]string{"-12345678901234567890123456789012345.123456789012345678901234567890", "0.000000000000000000000000000000", "NULL"}},
		{myCol("f4", ty(cdc.KindFloat32, "float")), v("0.1", "-0", "3.4028235e+38"), "encode(float4send(%s), 'hex')",
			[]string{floatBits32("0.1"), floatBits32("-0"), floatBits32("3.4028235e+38")}},
		{myCol("f8", ty(cdc.KindFloat64, "double")), v("-0", "5e-324", "1.7976931348623157e+308"), "encode(float8send(%s), 'hex')",
			[]string{floatBits64("-0"), floatBits64("5e-324"), floatBits64("1.7976931348623157e+308")}},
		{myCol("name", cdc.Type{Kind: cdc.KindText, Name: "varchar(10)", Width: 10}, ci), v("Ab", "😀𝄞x\ty", "ÀÉ\\\n\r"), "encode(convert_to(%s, 'UTF8'), 'hex')",
			[]string{hex.EncodeToString([]byte("Ab")), hex.EncodeToString([]byte("😀𝄞x\ty")), hex.EncodeToString([]byte("ÀÉ\\\n\r"))}},
		{myCol("code", cdc.Type{Kind: cdc.KindText, Name: "char(3)", Width: 3, Fixed: true}), v("ab", "", "abc"), "'[' || %s || ']'", []string{"[ab]", "[]", "[abc]"}},
		{myCol("body", ty(cdc.KindText, "longtext")), v(strings.Repeat("x", 3000)+"😀", nil, ""), "md5(%s)",
			[]string{fmt.Sprintf("%x", md5sum(strings.Repeat("x", 3000)+"😀")), "NULL", fmt.Sprintf("%x", md5sum(""))}},
		{myCol("bin", cdc.Type{Kind: cdc.KindBytes, Name: "blob", Width: 65535}), v(string(all), "", nil), "encode(%s, 'hex')", []string{hex.EncodeToString(all), "", "NULL"}},
		{myCol("bin4", cdc.Type{Kind: cdc.KindBytes, Name: "binary(4)", Width: 4, Fixed: true}), v("\x00\x00ab", "\t\n\\\x00", nil), "encode(%s, 'hex')", []string{"00006162", "090a5c00", "NULL"}},
		{myCol("d", ty(cdc.KindDate, "date"), notNull), v("1000-01-01", "9999-12-31", nil), "%s::text", []string{"1000-01-01", "9999-12-31", "NULL"}},
		{myCol("dt", cdc.Type{Kind: cdc.KindTimestamp, Name: "datetime(6)", Precision: 6}), v("2026-03-01 12:00:00.123456", "1000-01-01 00:00:00", nil), "%s::text",
			[]string{"2026-03-01 12:00:00.123456", "1000-01-01 00:00:00", "NULL"}},
		{myCol("ts", cdc.Type{Kind: cdc.KindTimestampTZ, Name: "timestamp(3)", Precision: 3}), v("2038-01-19 03:14:07.999Z", "1970-01-01 00:00:01Z", nil),
			"to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS')", []string{"2038-01-19 03:14:07.999", "1970-01-01 00:00:01.000", "NULL"}},
		{myCol("dur", cdc.Type{Kind: cdc.KindTime, Name: "time(1)", Precision: 1}), v("-838:59:59.5", "838:59:59", "00:00:00.5"), "extract(epoch from %s)::text",
			[]string{"-3020399.500000", "3020399.000000", "0.500000"}},
		{myCol("doc", ty(cdc.KindJSON, "json")), v(bigJSON, `[]`, nil), "(%s->'big')::text || ' ' || ((%s->'d') = '1.5e300'::jsonb)::text || ' ' || (%s->>'s')",
			[]string{"12345678901234567890.123456789012345678901234567890 true 😀\n\t\\", "NULL", "NULL"}},
		{myCol("mood", enumT), v("", "it's", "x"), "%s::text || ':' || (SELECT array_position(enum_range(NULL::" + `"dst"."all_types_mood"` + "), %s))", []string{":1", "it's:3", "x:2"}},
		{myCol("tags", setT), v("", `a,q"x,b\s,d e`, "b\\s"), "cardinality(%s) || ':' || array_to_string(%s, '|')", []string{"0:", `4:a|q"x|b\s|d e`, `1:b\s`}},
		{myCol("bits", cdc.Type{Kind: cdc.KindBits, Name: "bit(5)", Width: 5, Fixed: true}), v("00101", "11111", nil), "%s::text", []string{"00101", "11111", "NULL"}},
		{myCol("bits64", cdc.Type{Kind: cdc.KindBits, Name: "bit(64)", Width: 64, Fixed: true}), v(strings.Repeat("1", 64), strings.Repeat("0", 63)+"1", nil), "%s::bigint::text",
			[]string{"-1", "1", "NULL"}},
		{myCol("uid", ty(cdc.KindUUID, "uuid")), v("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", nil, nil), "%s::text", []string{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "NULL", "NULL"}},
		{myCol("geom", ty(cdc.KindOther, "geometry")), nil, "", nil},
		{myCol("twice", intTy("bigint", 8, false), func(c *schema.Column) { c.Generated, c.Stored = "`i8` * 2", false }), v("4", "5", nil), "%s::text", []string{"4", "5", "NULL"}},
		{myCol("dflt", cdc.Type{Kind: cdc.KindText, Name: "varchar(10)", Width: 10}, notNull, withDefault("it's")), v("a", "b", "c"), "%s", []string{"a", "b", "c"}},
	}
	parentCols := []schema.Column{myCol("ID", intTy("bigint unsigned", 8, true), notNull, autoInc), myCol("Label", cdc.Type{Kind: cdc.KindText, Name: "varchar(100)", Width: 100}, ci)}
	src := &schema.Schema{Dialect: "mysql", Tables: []*schema.Table{
		{Schema: "app", Name: "Parent", PrimaryKey: []string{"ID"}, NextAutoIncrement: 1000, Columns: parentCols,
			Indexes: []schema.Index{{Name: "ulabel", Unique: true, Columns: []schema.IndexColumn{{Name: "Label", Prefix: 3}}}}},
		{Schema: "app", Name: "All_Types", PrimaryKey: []string{"id"}, NextAutoIncrement: 3,
			ForeignKeys: []schema.ForeignKey{{Name: "fk_u8", Columns: []string{"id"}, RefTable: "Parent", RefColumns: []string{"ID"}, OnDelete: "CASCADE"}},
			Indexes: []schema.Index{{Name: "uname", Unique: true, Columns: []schema.IndexColumn{{Name: "name"}}},
				{Name: "ft", Method: "fulltext", Columns: []schema.IndexColumn{{Name: "body"}, {Name: "name"}}}}},
	}}
	for _, c := range cases {
		src.Tables[1].Columns = append(src.Tables[1].Columns, c.col)
	}
	tr := mustTranslate(t, src, translateRules{TinyintAsBoolean: true, CaseInsensitive: "icu", ZeroDateColumns: map[string]bool{"All_Types.d": true}})
	var mapping bytes.Buffer
	if err := (&check.Report{Mapping: tr.mapping(), Findings: tr.findings}).WriteText(&mapping); err != nil {
		t.Fatal(err)
	}
	t.Logf("mapping:\n%s", mapping.String())

	db := pgtest.NewDB(t, pgtest.Target(t))
	conn := db.Conn(t)
	ctx := context.Background()
	exec := func(stmts []string) {
		t.Helper()
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	exec(tr.preData())

	// The target's types are the mapping's (format_type, the server's own spelling).
	m := tr.mapping()
	for i, tm := range m.Tables {
		for _, cm := range tm.Columns {
			if cm.Target == "(not carried)" {
				continue
			}
			want, _, _ := strings.Cut(cm.TargetType, " CHECK (")
			want, _, _ = strings.Cut(strings.TrimSuffix(want, " identity"), " COLLATE ")
			want = strings.ReplaceAll(strings.ReplaceAll(want, `"dst".`, "dst."), `"`, "")
			var got string
			if err := conn.QueryRow(ctx, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2`,
				tr.tables[i].qualified, cm.Target).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%s.%s is %s, the mapping says %s", tm.Target, cm.Target, got, want)
			}
		}
	}

	copyRows := func(tt *translatedTable, rows [][]any) {
		t.Helper()
		var b bytes.Buffer
		for _, r := range rows {
			out := make([][]byte, len(r))
			for i, v := range r {
				if v == nil {
					continue
				}
				pg, err := tt.converters[i]([]byte(v.(string)))
				if err != nil {
					t.Fatal(err)
				}
				out[i] = pg
			}
			copyRow(&b, out)
		}
		sql := fmt.Sprintf("COPY %s (%s) FROM STDIN", tt.qualified, strings.Join(tt.copyColumns, ", "))
		if _, err := conn.PgConn().CopyFrom(ctx, &b, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	parent, allTypes := tr.table(src.Tables[0]), tr.table(src.Tables[1])
	copyRows(parent, [][]any{{"1", "Abc-1"}, {"2", "Abd"}, {"3", nil}, {"9223372036854775806", nil}})
	var rows [][]any
	for r := range 3 {
		var row []any
		for _, c := range cases {
			if c.vals != nil {
				row = append(row, c.vals[r])
			}
		}
		rows = append(rows, row)
	}
	if len(allTypes.converters) != len(cases)-1 || allTypes.sourceColumns[len(allTypes.sourceColumns)-2] != "twice" {
		t.Fatalf("copy columns %v", allTypes.sourceColumns)
	}
	copyRows(allTypes, rows)

	for _, tt := range tr.tables {
		exec(tr.tableIndexes(tt.source))
	}
	exec(tr.postData())
	for _, s := range tr.identities() {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}

	// Every value, read back by the server's own functions.
	for _, c := range cases {
		if c.sql == "" {
			continue
		}
		name := qident(foldName(c.col.Name))
		expr := strings.ReplaceAll(c.sql, "%s", name)
		r, err := conn.Query(ctx, fmt.Sprintf(`SELECT coalesce((%s)::text, 'NULL') FROM %s ORDER BY "id"`, expr, allTypes.qualified))
		if err != nil {
			t.Fatalf("%s: %v", c.col.Name, err)
		}
		got, err := pgx.CollectRows(r, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%s: %v", c.col.Name, err)
		}
		if strings.Join(got, "\x00") != strings.Join(c.want, "\x00") {
			t.Errorf("%s (%s): read %q, want %q", c.col.Name, c.col.Type.Name, got, c.want)
		}
	}

	// The rules the server now enforces, and the ones it relaxed.
	for _, tc := range []struct{ sql, code string }{
		{`INSERT INTO "dst"."all_types" (id, i1) VALUES (10, 128)`, "23514"},              // tinyint's range
		{`INSERT INTO "dst"."all_types" (id, u8) VALUES (10, -1)`, "23514"},               // unsigned
		{`INSERT INTO "dst"."all_types" (id, tags) VALUES (10, '{zz}')`, "23514"},         // a set's labels
		{`INSERT INTO "dst"."all_types" (id, bin4) VALUES (10, '\x0102030405')`, "23514"}, // binary(4)
		{`INSERT INTO "dst"."all_types" (id, name) VALUES (10, 'AB')`, "23505"},           // case-insensitive unique
		{`INSERT INTO "dst"."all_types" (id) VALUES (12345)`, "23503"},                    // the foreign key
		{`INSERT INTO "dst"."parent" (label) VALUES ('abc-2')`, "23505"},                  // unique prefix, case-insensitive
		{`INSERT INTO "dst"."all_types" (id, mood) VALUES (10, 'y')`, "22P02"},            // enum labels
		{`INSERT INTO "dst"."all_types" (id, bits) VALUES (10, B'101')`, "22026"},         // bit(5) wants 5 bits
		{`INSERT INTO "dst"."parent" (id, label) VALUES (-1, 'neg')`, "23514"},            // narrowed bigint unsigned
		{`INSERT INTO "dst"."all_types" (id, yr) VALUES (10, 1900)`, "23514"},             // year
		{`INSERT INTO "dst"."all_types" (id, name) VALUES (10, '12345678901')`, "22001"},  // varchar(10)
		{`INSERT INTO "dst"."all_types" (id, dflt) VALUES (10, NULL)`, "23502"},           // NOT NULL kept
	} {
		_, err := conn.Exec(ctx, tc.sql)
		var pgErr *pgconn.PgError
		code := ""
		if errors.As(err, &pgErr) {
			code = pgErr.Code
		} else if err != nil {
			t.Fatalf("%s: %v", tc.sql, err)
		}
		if code != tc.code {
			t.Errorf("%s: SQLSTATE %q (%v), want %q", tc.sql, code, err, tc.code)
		}
	}
	// Identities restarted: parent at max + 1 past its counter, all_types at its counter.
	var next string
	if err := conn.QueryRow(ctx, `SELECT nextval(pg_get_serial_sequence('"dst"."all_types"', 'id'))::text || ' ' || (SELECT last_value FROM "dst"."parent_id_seq")::text`).Scan(&next); err != nil {
		t.Fatal(err)
	}
	if next != "4 9223372036854775807" {
		t.Errorf("identities: %s", next)
	}
	var defaulted string
	if _, err := conn.Exec(ctx, `INSERT INTO "dst"."parent" (id, label) VALUES (100, 'zzz')`); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `INSERT INTO "dst"."all_types" (id) VALUES (100) RETURNING dflt || ' ' || (SELECT count(*) FROM "dst"."all_types" WHERE name = 'ab')`).Scan(&defaulted); err != nil {
		t.Fatal(err)
	}
	if defaulted != "it's 1" {
		t.Errorf("default and case-insensitive lookup: %q", defaulted)
	}
	var fts string
	if err := conn.QueryRow(ctx, `SELECT string_agg(id::text, ',') FROM "dst"."all_types" WHERE to_tsvector('simple', coalesce("body"::text, '') || ' ' || coalesce("name"::text, '')) @@ websearch_to_tsquery('simple', 'ab')`).Scan(&fts); err != nil || fts != "1" {
		t.Errorf("full text query: %v %v", fts, err)
	}
	// The pattern match the finding gives for nondeterministic collations.
	if n := pgtest.QueryVal[int64](t, db, `SELECT count(*) FROM "dst"."parent" WHERE label COLLATE "default" ILIKE 'abc%'`); n != 1 {
		t.Errorf("ILIKE with COLLATE \"default\": %d rows", n)
	}
}

func md5sum(s string) [16]byte { return md5.Sum([]byte(s)) }

// latin1High is the CHECK's escapes of schema.Latin1High.
func latin1High() string {
	var b strings.Builder
	for _, r := range schema.Latin1High {
		fmt.Fprintf(&b, `\u%04x`, r)
	}
	return b.String()
}

// The CHECKs that keep a column's values in its MySQL character set, against the
// server: every character of latin1 (each byte decoded as MySQL does), of ascii and of
// utf8mb3's range goes in; a character outside, or a latin1 TINYTEXT of 256
// characters, is refused, as MySQL refuses it (so reverse replication can write back
// every value PostgreSQL takes).
func TestTranslateServerCharsets(t *testing.T) {
	src := oneTable(
		myCol("id", intTy("int", 4, false), notNull),
		myCol("l1", ty(cdc.KindText, "text"), func(c *schema.Column) { ci(c); c.Charset = "latin1" }),
		myCol("tiny", ty(cdc.KindText, "tinytext"), func(c *schema.Column) { c.Charset = "latin1" }),
		myCol("ascii7", cdc.Type{Kind: cdc.KindText, Name: "varchar(300)", Width: 300}, func(c *schema.Column) { c.Charset = "ascii" }),
		myCol("mb3", cdc.Type{Kind: cdc.KindText, Name: "varchar(300)", Width: 300}, func(c *schema.Column) { c.Charset = "utf8mb3"; ci(c); c.Charset = "utf8mb3" }),
		myCol("mb4", ty(cdc.KindText, "text"), func(c *schema.Column) { c.Charset = "utf8mb4" }),
	)
	src.Tables[0].PrimaryKey = []string{"id"}
	for _, rule := range []string{"citext", "icu"} {
		t.Run(rule, func(t *testing.T) { charsetChecks(t, src, rule) })
	}
}

func charsetChecks(t *testing.T, src *schema.Schema, caseInsensitive string) {
	tr := mustTranslate(t, src, translateRules{CaseInsensitive: caseInsensitive})
	db := pgtest.NewDB(t, pgtest.Target(t))
	conn := db.Conn(t)
	ctx := context.Background()
	for _, s := range tr.preData() {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	var latin1 []rune
	for c := 1; c < 256; c++ {
		switch {
		case c >= 0x80 && c < 0xa0:
			latin1 = append(latin1, schema.Latin1High[c-0x80])
		default:
			latin1 = append(latin1, rune(c))
		}
	}
	var ascii, bmp []rune
	for c := rune(1); c < 0x80; c++ {
		ascii = append(ascii, c)
	}
	for _, c := range []rune{'é', 'ı', 'Ÿ', '日', 0xfffd, 0xffff} {
		bmp = append(bmp, c)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO "dst"."t" VALUES (1, $1, $2, $3, $4, $5)`, string(latin1), strings.Repeat("é", 255), string(ascii), string(bmp), "😀"); err != nil {
		t.Fatalf("every character of each set: %v", err)
	}
	for _, tc := range []struct{ col, value string }{
		{"l1", "日"}, {"l1", ""}, {"l1", "ı"}, {"tiny", strings.Repeat("a", 256)},
		{"ascii7", "é"}, {"mb3", "😀"}, {"mb3", "I😀"},
	} {
		_, err := conn.Exec(ctx, `INSERT INTO "dst"."t" (id, `+tc.col+`) VALUES (2, $1)`, tc.value)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "23514" {
			t.Errorf("%s = %q: %v, want a check violation", tc.col, tc.value, err)
		}
	}
}

// The other rules against the server: citext for case-insensitive columns, enums
// as CHECK constraints, and overrides.
func TestTranslateServerCitext(t *testing.T) {
	src := oneTable(
		myCol("id", intTy("int", 4, false), notNull, autoInc),
		myCol("email", cdc.Type{Kind: cdc.KindText, Name: "varchar(5)", Width: 5}, ci),
		myCol("kind", cdc.Type{Kind: cdc.KindEnum, Name: "enum('b','a')", Labels: []string{"b", "a"}}, withDefault("a")),
		myCol("yes", cdc.Type{Kind: cdc.KindBits, Name: "bit(1)", Width: 1, Fixed: true}),
		myCol("tags", cdc.Type{Kind: cdc.KindSet, Name: "set('a','b')", Labels: []string{"a", "b"}}),
		myCol("at", cdc.Type{Kind: cdc.KindTime, Name: "time"}),
	)
	tb := src.Tables[0]
	tb.PrimaryKey, tb.NextAutoIncrement = []string{"id"}, 50
	tb.Indexes = []schema.Index{{Name: "uemail", Unique: true, Columns: []schema.IndexColumn{{Name: "email", Prefix: 3}}}}
	tr := mustTranslate(t, src, translateRules{CaseInsensitive: "citext", EnumAs: "check",
		Types: map[string]string{"bit(1)": "boolean", "t.tags": "text", "time": "time"}})
	db := pgtest.NewDB(t, pgtest.Target(t))
	conn := db.Conn(t)
	ctx := context.Background()
	stmts := append(tr.preData(), tr.tableIndexes(tb)...)
	stmts = append(append(stmts, tr.postData()...), tr.identities()...)
	var b bytes.Buffer
	tt := tr.table(tb)
	for _, row := range [][]string{{"1", "Ab@x", "b", "1", "a,b", "23:59:59"}, {"2", "ZZZZZ", "a", "0", "", "00:00:00.5"}} {
		out := make([][]byte, len(row))
		for i, v := range row {
			var err error
			if out[i], err = tt.converters[i]([]byte(v)); err != nil {
				t.Fatal(err)
			}
		}
		copyRow(&b, out)
	}
	for i, s := range stmts {
		if i == len(stmts)-len(tr.identities())-len(tr.postData())-len(tr.tableIndexes(tb)) {
			if _, err := conn.PgConn().CopyFrom(ctx, &b, fmt.Sprintf("COPY %s (%s) FROM STDIN", tt.qualified, strings.Join(tt.copyColumns, ", "))); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	got := pgtest.QueryVal[string](t, db, `SELECT string_agg(concat_ws('|', id, email, kind, yes, tags, at, pg_typeof(email), pg_typeof(at)), ';' ORDER BY id) FROM "dst"."t" WHERE email = 'ab@X' OR kind = 'a'`)
	if got != "1|Ab@x|b|t|a,b|23:59:59|citext|time without time zone;2|ZZZZZ|a|f||00:00:00.5|citext|time without time zone" {
		t.Errorf("read %q", got)
	}
	if got := pgtest.QueryVal[string](t, db, `INSERT INTO "dst"."t" (email) VALUES ('new') RETURNING id || kind`); got != "50a" {
		t.Errorf("identity and default: %q", got)
	}
	for _, tc := range []struct{ sql, code string }{
		{`INSERT INTO "dst"."t" (email) VALUES ('123456')`, "23514"}, // varchar(5) as a CHECK on citext
		{`INSERT INTO "dst"."t" (email) VALUES ('ab@y')`, "23505"},   // the unique prefix, case-insensitive
		{`INSERT INTO "dst"."t" (kind) VALUES ('c')`, "23514"},       // the enum as a CHECK
	} {
		_, err := conn.Exec(ctx, tc.sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != tc.code {
			t.Errorf("%s: %v, want SQLSTATE %s", tc.sql, err, tc.code)
		}
	}
}

// back on PostgreSQL's texts written by hand: what a reader reads with readExpr in
// a canonicalSession, to the canonical text of the source's type.
func TestTranslateBackTexts(t *testing.T) {
	back := func(ct cdc.Type, rules translateRules) func([]byte) ([]byte, error) {
		tr := mustTranslate(t, oneTable(myCol("c", ct)), rules)
		c := tr.tables[0].columns[0]
		if got := c.readExpr(`"c"`); got != `"c"::text` {
			t.Fatalf("readExpr %q", got)
		}
		return c.back
	}
	over := func(mysqlType, pgType string) translateRules {
		return translateRules{Types: map[string]string{mysqlType: pgType}}
	}
	asBool := translateRules{TinyintAsBoolean: true}
	dec := func(name string, p, s int) cdc.Type {
		return cdc.Type{Kind: cdc.KindDecimal, Name: name, Precision: p, Scale: s}
	}
	setT := cdc.Type{Kind: cdc.KindSet, Name: "set", Labels: []string{"a", `q"x`, `b\s`, "d e"}}
	enumT := cdc.Type{Kind: cdc.KindEnum, Name: "enum", Labels: []string{"", "x", "it's"}}
	longEnum := cdc.Type{Kind: cdc.KindEnum, Name: "enum", Labels: []string{"x", strings.Repeat("l", 64)}}
	timeT := func(p int) cdc.Type {
		return cdc.Type{Kind: cdc.KindTime, Name: fmt.Sprintf("time(%d)", p), Precision: p}
	}
	bitT := func(n int) cdc.Type {
		return cdc.Type{Kind: cdc.KindBits, Name: fmt.Sprintf("bit(%d)", n), Width: n, Fixed: true}
	}
	for _, tc := range []struct {
		ct       cdc.Type
		rules    translateRules
		in, want string // want "error: ..." for an error containing it
	}{
		// Integers, each in its source's range.
		{ct: intTy("tinyint", 1, false), in: "-128", want: "-128"},
		{ct: intTy("tinyint", 1, false), in: "128", want: "error: out of range"},
		{ct: intTy("tinyint unsigned", 1, true), in: "-1", want: "error: invalid syntax"},
		{ct: intTy("int unsigned", 4, true), in: "4294967295", want: "4294967295"},
		{ct: intTy("int unsigned", 4, true), in: "4294967296", want: `error: column app.T.c: PostgreSQL bigint value "4294967296" to the canonical text of int unsigned`},
		{ct: intTy("bigint unsigned", 8, true), in: "18446744073709551615", want: "18446744073709551615"},
		{ct: intTy("bigint unsigned", 8, true), in: "18446744073709551616", want: "error: out of range"},
		{ct: intTy("bigint unsigned", 8, true), in: "1.5", want: "error: not an integer"},
		{ct: intTy("bigint", 8, false), in: "-9223372036854775808", want: "-9223372036854775808"},
		{ct: intTy("year", 2, true), in: "0", want: "0"},
		{ct: intTy("year", 2, true), in: "2155", want: "2155"},
		// tinyint(1) as boolean: ::text writes true and false (the output function t and f).
		{ct: intTy("tinyint(1)", 1, false), rules: asBool, in: "true", want: "1"},
		{ct: intTy("tinyint(1)", 1, false), rules: asBool, in: "false", want: "0"},
		{ct: intTy("tinyint(1)", 1, false), rules: asBool, in: "t", want: "1"},
		{ct: intTy("tinyint(1)", 1, false), rules: asBool, in: "yes", want: "error: not one of the type's values"},
		{ct: intTy("tinyint(1)", 1, false), in: "1", want: "1"},
		{ct: ty(cdc.KindBool, "boolean"), in: "true", want: "true"},
		// Decimals at their scale.
		{ct: dec("decimal(5,2)", 5, 2), in: "-1.50", want: "-1.50"},
		{ct: dec("decimal(5,2)", 5, 2), in: "0.00", want: "0.00"},
		{ct: dec("decimal(10,0)", 10, 0), in: "-1234567890", want: "-1234567890"},
		{ct: dec("decimal(5,2)", 5, 2), in: "1e5", want: "error: plain notation"},
		{ct: dec("decimal(5,2)", 5, 2), in: "NaN", want: "NaN"},
		// Floats: shortest digits of their width, -0 kept.
		{ct: ty(cdc.KindFloat32, "float"), in: "0.1", want: "0.1"},
		{ct: ty(cdc.KindFloat32, "float"), in: "-0", want: "-0"},
		{ct: ty(cdc.KindFloat32, "float"), in: "3.4028235e+38", want: "3.4028235e+38"},
		{ct: ty(cdc.KindFloat32, "float"), in: "1e-45", want: "1e-45"},
		{ct: ty(cdc.KindFloat32, "float"), in: "16777216", want: "16777216"},
		{ct: ty(cdc.KindFloat32, "float"), in: "Infinity", want: "Infinity"},
		{ct: ty(cdc.KindFloat64, "double"), in: "-0", want: "-0"},
		{ct: ty(cdc.KindFloat64, "double"), in: "5e-324", want: "5e-324"},
		{ct: ty(cdc.KindFloat64, "double"), in: "1e+21", want: "1e+21"},
		{ct: ty(cdc.KindFloat64, "double"), in: "123456789012345680000", want: "123456789012345680000"},
		{ct: ty(cdc.KindFloat64, "double"), in: "1.7976931348623157e+308", want: "1.7976931348623157e+308"},
		{ct: ty(cdc.KindFloat64, "double"), in: "NaN", want: "NaN"},
		{ct: ty(cdc.KindFloat64, "double"), in: "x", want: "error: invalid syntax"},
		// Text, bytes.
		{ct: cdc.Type{Kind: cdc.KindText, Name: "varchar(10)", Width: 10}, in: "a \t😀\\", want: "a \t😀\\"},
		{ct: ty(cdc.KindText, "text"), in: "", want: ""},
		{ct: ty(cdc.KindText, "text"), in: "\xff", want: "error: not UTF-8"},
		{ct: ty(cdc.KindBytes, "blob"), in: `\x00ff5c`, want: "\x00\xff\\"},
		{ct: ty(cdc.KindBytes, "blob"), in: `\x`, want: ""},
		{ct: ty(cdc.KindBytes, "blob"), in: `\000\377\\a`, want: "\x00\xff\\a"}, // bytea_output escape
		{ct: ty(cdc.KindBytes, "blob"), in: `\xzz`, want: "error: invalid byte"},
		// Dates and times.
		{ct: ty(cdc.KindDate, "date"), in: "1000-01-01", want: "1000-01-01"},
		{ct: ty(cdc.KindDate, "date"), in: "0001-03-01 BC", want: "0000-03-01"},
		{ct: ty(cdc.KindDate, "date"), in: "infinity", want: "infinity"},
		{ct: ty(cdc.KindDate, "date"), in: "01/02/2020", want: "error: DateStyle ISO"},
		{ct: cdc.Type{Kind: cdc.KindTimestamp, Name: "datetime(6)", Precision: 6}, in: "9999-12-31 23:59:59.999999", want: "9999-12-31 23:59:59.999999"},
		{ct: cdc.Type{Kind: cdc.KindTimestamp, Name: "datetime(6)", Precision: 6}, in: "2026-03-01 12:00:00.5", want: "2026-03-01 12:00:00.5"},
		{ct: cdc.Type{Kind: cdc.KindTimestampTZ, Name: "timestamp(3)", Precision: 3}, in: "2038-01-19 03:14:07.999+00", want: "2038-01-19 03:14:07.999Z"},
		{ct: cdc.Type{Kind: cdc.KindTimestampTZ, Name: "timestamp"}, in: "2026-03-01 12:00:00+05:30", want: "2026-03-01 06:30:00Z"},
		{ct: cdc.Type{Kind: cdc.KindTimestampTZ, Name: "timestamp"}, in: "2026-03-01 12:00:00", want: "error: no offset"},
		// MySQL's TIME from interval (IntervalStyle postgres).
		{ct: timeT(1), in: "-838:59:59.5", want: "-838:59:59.5"},
		{ct: timeT(0), in: "838:59:59", want: "838:59:59"},
		{ct: timeT(0), in: "00:00:00", want: "00:00:00"},
		{ct: timeT(1), in: "-00:00:00.5", want: "-00:00:00.5"},
		{ct: timeT(6), in: "838:59:59.999999", want: "838:59:59.999999"},
		{ct: timeT(0), in: "-100:00:00", want: "-100:00:00"},
		{ct: timeT(0), in: "1 day 02:00:00", want: "26:00:00"},
		{ct: timeT(0), in: "-1 days +01:00:00", want: "-23:00:00"},
		{ct: timeT(0), in: "839:00:00", want: "error: beyond MySQL's TIME range"},
		{ct: timeT(0), in: "1 mon", want: "error: an interval of months"},
		{ct: timeT(0), in: "-2562047788:00:54.775808", want: "error: beyond"},
		{ct: timeT(0), in: "infinity", want: "error: infinite"},
		{ct: timeT(0), in: "P1D", want: "error: "},
		// JSON: jsonb's text, normal.
		{ct: ty(cdc.KindJSON, "json"), in: `{"a": [1.0, 1e2, "é"], "B": null, "a2": {"y": -0, "x": "\ud83d\ude00"}}`,
			want: `{"B":null,"a":[1,100,"é"],"a2":{"x":"😀","y":0}}`},
		{ct: ty(cdc.KindJSON, "json"), in: `{"a": 1`, want: "error: not closed"},
		// Enums, sets, bits, uuid.
		{ct: enumT, in: "it's", want: "it's"},
		{ct: enumT, in: "", want: ""},
		{ct: enumT, in: "y", want: "error: not one of the enum's labels"},
		{ct: longEnum, in: strings.Repeat("l", 64), want: strings.Repeat("l", 64)}, // text with a CHECK
		{ct: enumT, rules: translateRules{EnumAs: "check"}, in: "x", want: "x"},
		{ct: setT, in: "{}", want: ""},
		{ct: setT, in: `{a,"q\"x","b\\s","d e"}`, want: `a,q"x,b\s,d e`},
		{ct: setT, in: `{"d e",a,a}`, want: "a,d e"}, // the labels' order, each once
		{ct: setT, in: `{z}`, want: `error: "z" is not one of the set's labels`},
		{ct: setT, in: `{a,NULL}`, want: "error: element 2 is NULL"},
		{ct: setT, in: `{{a}}`, want: "error: element 1 is NULL or an array"},
		{ct: setT, in: `[0:0]={a}`, want: "error: indexes do not start at 1"},
		{ct: setT, in: `a`, want: "error: does not start with {"},
		{ct: bitT(5), in: "00101", want: "00101"},
		{ct: bitT(5), in: "101", want: "00101"}, // bit varying written after a switch: the same number
		{ct: bitT(5), in: "1010101", want: "error: 7 bits"},
		{ct: bitT(5), in: "0012", want: "error: not a string of 0 and 1"},
		{ct: ty(cdc.KindUUID, "uuid"), in: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", want: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{ct: ty(cdc.KindUUID, "uuid"), in: "a0eebc99", want: "error: not a UUID"},
		// Types from the plan: read by their own kind, converted to the source's.
		{ct: intTy("bigint unsigned", 8, true), rules: over("bigint unsigned", "bigint"), in: "9223372036854775807", want: "9223372036854775807"},
		{ct: intTy("bigint unsigned", 8, true), rules: over("bigint unsigned", "bigint"), in: "-1", want: "error: invalid syntax"},
		{ct: intTy("int unsigned", 4, true), rules: over("int unsigned", "numeric"), in: "4294967295.000", want: "4294967295"},
		{ct: intTy("int unsigned", 4, true), rules: over("int unsigned", "numeric"), in: "1.5", want: "error: not an integer"},
		{ct: intTy("int", 4, false), rules: over("int", "double precision"), in: "-3", want: "-3"},
		{ct: intTy("int", 4, false), rules: over("int", "double precision"), in: "-0", want: "0"},
		{ct: intTy("int", 4, false), rules: over("int", "double precision"), in: "0.5", want: "error: not an integer"},
		{ct: intTy("tinyint(1)", 1, false), rules: over("tinyint(1)", "boolean"), in: "true", want: "1"},
		{ct: intTy("int", 4, false), rules: over("int", "text"), in: "-42", want: "-42"},
		{ct: intTy("int", 4, false), rules: over("int", "text"), in: "042", want: "error: canonical form"},
		{ct: dec("decimal(5,2)", 5, 2), rules: over("decimal", "numeric(10,4)"), in: "1.5000", want: "1.50"},
		{ct: dec("decimal(5,2)", 5, 2), rules: over("decimal", "numeric"), in: "1.5", want: "1.50"},
		{ct: dec("decimal(5,2)", 5, 2), rules: over("decimal", "numeric"), in: "-0.001", want: "error: more digits after the point"},
		{ct: dec("decimal(5,2)", 5, 2), rules: over("decimal", "numeric"), in: "0.000", want: "0.00"},
		{ct: dec("decimal(5,0)", 5, 0), rules: over("decimal", "numeric"), in: "12.0", want: "12"},
		{ct: dec("decimal(5,2)", 5, 2), rules: over("decimal", "double precision"), in: "1e-2", want: "0.01"},
		{ct: dec("decimal(5,2)", 5, 2), rules: over("decimal", "integer"), in: "7", want: "7.00"},
		{ct: ty(cdc.KindFloat32, "float"), rules: over("float", "double precision"), in: "0.1", want: "0.1"},
		{ct: ty(cdc.KindFloat32, "float"), rules: over("float", "numeric"), in: "0.100000001490116119384765625", want: "0.1"},
		{ct: ty(cdc.KindFloat64, "double"), rules: over("double", "real"), in: "0.1", want: "0.10000000149011612"},
		{ct: ty(cdc.KindFloat64, "double"), rules: over("double", "float(10)"), in: "0.5", want: "0.5"},
		{ct: cdc.Type{Kind: cdc.KindTimestamp, Name: "datetime(3)", Precision: 3}, rules: over("datetime", "timestamptz"), in: "2026-03-01 12:00:00.5+00", want: "2026-03-01 12:00:00.5"},
		{ct: cdc.Type{Kind: cdc.KindTimestamp, Name: "datetime"}, rules: over("datetime", "date"), in: "2026-03-01", want: "2026-03-01 00:00:00"},
		{ct: cdc.Type{Kind: cdc.KindTimestamp, Name: "datetime"}, rules: over("datetime", "text"), in: "2026-03-01 00:00:00", want: "2026-03-01 00:00:00"},
		{ct: cdc.Type{Kind: cdc.KindTimestampTZ, Name: "timestamp"}, rules: over("timestamp", "timestamp"), in: "2026-03-01 12:00:00", want: "2026-03-01 12:00:00Z"},
		{ct: cdc.Type{Kind: cdc.KindTimestampTZ, Name: "timestamp"}, rules: over("timestamp", "varchar(30)"), in: "2026-03-01 12:00:00Z", want: "2026-03-01 12:00:00Z"},
		{ct: cdc.Type{Kind: cdc.KindTimestampTZ, Name: "timestamp"}, rules: over("timestamp", "text"), in: "2026-03-01 12:00:00", want: "error: an instant ends in Z"},
		{ct: ty(cdc.KindDate, "date"), rules: over("date", "timestamp"), in: "1000-01-01 00:00:00", want: "1000-01-01"},
		{ct: ty(cdc.KindDate, "date"), rules: over("date", "timestamp"), in: "1000-01-01 00:00:01", want: "error: other than midnight"},
		{ct: ty(cdc.KindDate, "date"), rules: over("date", "integer"), in: "1", want: "error: a int value does not convert"},
		{ct: timeT(0), rules: over("time", "time"), in: "23:59:59", want: "23:59:59"},
		{ct: timeT(0), rules: over("time", "text"), in: "-838:59:59", want: "-838:59:59"},
		{ct: bitT(1), rules: over("bit(1)", "boolean"), in: "true", want: "1"},
		{ct: bitT(3), rules: over("bit(3)", "boolean"), in: "true", want: "001"},
		{ct: bitT(64), rules: over("bit(64)", "bigint"), in: "-1", want: strings.Repeat("1", 64)},
		{ct: bitT(8), rules: over("bit(8)", "integer"), in: "5", want: "00000101"},
		{ct: bitT(8), rules: over("bit(8)", "integer"), in: "256", want: "error: 9 bits"},
		{ct: bitT(8), rules: over("bit(8)", "bit varying"), in: "11", want: "00000011"},
		{ct: setT, rules: over("set", "text"), in: "d e,a", want: "a,d e"},
		{ct: setT, rules: over("set", "varchar(100)[]"), in: `{a}`, want: "a"},
		{ct: ty(cdc.KindBytes, "varbinary(10)"), rules: over("varbinary", "text"), in: "é", want: "é"},
		{ct: ty(cdc.KindJSON, "json"), rules: over("json", "json"), in: `{"b": 1, "a": 2, "a": 3}`, want: `{"a":3,"b":1}`},
		{ct: ty(cdc.KindJSON, "json"), rules: over("json", "text"), in: `[1.0]`, want: `[1]`},
		{ct: enumT, rules: over("enum", "varchar(10)"), in: "x", want: "x"},
		{ct: ty(cdc.KindUUID, "uuid"), rules: over("uuid", "char(36)"), in: "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", want: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{ct: cdc.Type{Kind: cdc.KindText, Name: "varchar(5)", Width: 5}, rules: over("varchar", "char(5)"), in: "ab", want: "ab"},
		{ct: ty(cdc.KindText, "text"), rules: over("text", "citext"), in: "Ab", want: "Ab"},
		{ct: ty(cdc.KindText, "text"), rules: over("text", "tsvector"), in: "'a'", want: "error: not read back"},
		{ct: ty(cdc.KindText, "text"), rules: over("text", "int[]"), in: "{1}", want: "error: read back only as a SET"},
	} {
		got, err := back(tc.ct, tc.rules)([]byte(tc.in))
		if want, isErr := strings.CutPrefix(tc.want, "error: "); isErr {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s %v %q: %q, %v; want an error with %q", tc.ct.Name, tc.rules.Types, tc.in, got, err, want)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("%s %v %q: %q, %v; want %q", tc.ct.Name, tc.rules.Types, tc.in, got, err, tc.want)
		}
	}
	// Every carried column has one; a column not carried has none.
	tr := mustTranslate(t, oneTable(myCol("a", intTy("int", 4, false)), myCol("g", ty(cdc.KindOther, "inet6"))), translateRules{})
	if cols := tr.tables[0].columns; cols[0].back == nil || cols[1].back != nil {
		t.Errorf("back set on %v %v", cols[0].back != nil, cols[1].back != nil)
	}
}

// Every kind's edge values through the translation and back: canonical, conv,
// COPY into a server, read with readExpr in a session with canonicalSession()'s
// settings, back: the original canonical text (of JSON: its NormalJSON).
func TestTranslateBack(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	f32 := func(f float64) string { return cdc.FormatFloat(float64(float32(f)), 32) }
	enumT := cdc.Type{Kind: cdc.KindEnum, Name: "enum('','x','it''s')", Labels: []string{"", "x", "it's"}}
	longEnum := cdc.Type{Kind: cdc.KindEnum, Name: "enum(...)", Labels: []string{"x", strings.Repeat("é", 40)}}
	setT := cdc.Type{Kind: cdc.KindSet, Name: "set(...)", Labels: []string{"a", `q"x`, `b\s`, "d e", "{}", "NULL"}}
	dec := func(p, s int) cdc.Type {
		return cdc.Type{Kind: cdc.KindDecimal, Name: fmt.Sprintf("decimal(%d,%d)", p, s), Precision: p, Scale: s}
	}
	tm := func(p int) cdc.Type {
		return cdc.Type{Kind: cdc.KindTime, Name: fmt.Sprintf("time(%d)", p), Precision: p}
	}
	bits := func(n int) cdc.Type {
		return cdc.Type{Kind: cdc.KindBits, Name: fmt.Sprintf("bit(%d)", n), Width: n, Fixed: true}
	}
	type col struct {
		col  schema.Column
		vals []any // canonical texts (string) or nil for NULL; the rows
	}
	v := func(s ...any) []any { return s }
	cols := []col{
		{myCol("i1", intTy("tinyint(4)", 1, false)), v("-128", "127", "0", nil)},
		{myCol("u1", intTy("tinyint(3) unsigned", 1, true)), v("0", "255")},
		{myCol("i2", intTy("smallint", 2, false)), v("-32768", "32767")},
		{myCol("u2", intTy("smallint unsigned", 2, true)), v("65535", "0")},
		{myCol("i3", intTy("mediumint", 3, false)), v("-8388608", "8388607")},
		{myCol("u3", intTy("mediumint unsigned", 3, true)), v("16777215", "0")},
		{myCol("i4", intTy("int(11)", 4, false)), v("-2147483648", "2147483647")},
		{myCol("u4", intTy("int unsigned", 4, true)), v("4294967295", "0")},
		{myCol("i8", intTy("bigint", 8, false)), v("-9223372036854775808", "9223372036854775807")},
		{myCol("u8", intTy("bigint unsigned", 8, true)), v("18446744073709551615", "0", "9223372036854775808")},
		{myCol("flag", intTy("tinyint(1)", 1, false)), v("1", "0", nil)},
		{myCol("yr", intTy("year", 2, true)), v("0", "1901", "2155")},
		{myCol("dbig", dec(65, 30)), v("-12345678901234567890123456789012345.123456789012345678901234567890", "0.000000000000000000000000000000",
			"0.000000000000000000000000000001")},
		{myCol("d52", dec(5, 2)), v("-999.99", "0.00", "1.50", "-0.01")},
		{myCol("d100", dec(10, 0)), v("-1234567890", "0", "9999999999")},
		{myCol("f4", ty(cdc.KindFloat32, "float")), v("0.1", "-0", "3.4028235e+38", "1e-45", "1.1754944e-38", "16777216", f32(1.0/3), "-1.5e-7", "0")},
		{myCol("f8", ty(cdc.KindFloat64, "double")), v("-0", "5e-324", "1.7976931348623157e+308", "0.1", "1e+21", "123456789012345680000",
			"2.2250738585072014e-308", "0.30000000000000004", "-1e-5", "0.0001")},
		{myCol("vc", cdc.Type{Kind: cdc.KindText, Name: "varchar(10)", Width: 10}, ci), v("Ab", "😀𝄞x\ty", "ÀÉ\\\n\r", "a  ", "", `\N`)},
		{myCol("ch", cdc.Type{Kind: cdc.KindText, Name: "char(3)", Width: 3, Fixed: true}), v("ab", "", "abc")},
		{myCol("body", ty(cdc.KindText, "longtext")), v(strings.Repeat("x", 3000)+"😀", "", nil, "NULL")},
		{myCol("bin", cdc.Type{Kind: cdc.KindBytes, Name: "blob", Width: 65535}), v(string(all), "", nil, "\\x00", "\x00")},
		{myCol("bin4", cdc.Type{Kind: cdc.KindBytes, Name: "binary(4)", Width: 4, Fixed: true}), v("\x00\x00ab", "\t\n\\\x00")},
		{myCol("d", ty(cdc.KindDate, "date")), v("1000-01-01", "9999-12-31", "0000-03-01", "2000-02-29", "0001-01-01")},
		{myCol("dt", cdc.Type{Kind: cdc.KindTimestamp, Name: "datetime(6)", Precision: 6}), v("2026-03-01 12:00:00.123456", "1000-01-01 00:00:00",
			"9999-12-31 23:59:59.999999", "0000-01-01 00:00:00.5")},
		{myCol("dt0", cdc.Type{Kind: cdc.KindTimestamp, Name: "datetime"}), v("2026-03-01 12:00:00", "2024-02-29 23:59:59")},
		{myCol("ts", cdc.Type{Kind: cdc.KindTimestampTZ, Name: "timestamp(3)", Precision: 3}), v("2038-01-19 03:14:07.999Z", "1970-01-01 00:00:01Z", "2000-01-01 00:00:00.5Z")},
		{myCol("ts6", cdc.Type{Kind: cdc.KindTimestampTZ, Name: "timestamp(6)", Precision: 6}), v("2038-01-19 03:14:07.999999Z", "1970-01-01 00:00:01.000001Z")},
		{myCol("dur1", tm(1)), v("-838:59:59.5", "838:59:59", "00:00:00.5", "00:00:00", "-00:00:00.5", "-100:00:00", "24:00:00")},
		{myCol("dur6", tm(6)), v("838:59:59.999999", "-838:59:59.999999", "12:34:56.000001", "-00:00:00.000001")},
		{myCol("dur0", tm(0)), v("-01:00:00", "23:59:59", "100:00:00")},
		{myCol("doc", ty(cdc.KindJSON, "json")), v(`{"big": 12345678901234567890.123456789012345678901234567890, "d": 1.5e300, "s": "😀\n\t\\"}`,
			`[]`, nil, `{"b": 1, "a": [1.0, 1e2, 10E-1, "\u00e9\ud83d\ude00", {"z": null, "y": true}], "a": -0.0, "": "\u001f"}`,
			`"x"`, `1E400`, `-0`, `{"k": 1e-400}`, `[0.1, 100, 1e21, 1.0e-5]`, `"\u2028/<>&"`)},
		{myCol("mood", enumT), v("", "it's", "x")},
		{myCol("longmood", longEnum), v("x", strings.Repeat("é", 40))},
		{myCol("tags", setT), v("", `a,q"x,b\s,d e,{},NULL`, `b\s`, "a,d e", "NULL", "{}")},
		{myCol("b5", bits(5)), v("00101", "11111", "00000")},
		{myCol("b64", bits(64)), v(strings.Repeat("1", 64), strings.Repeat("0", 63)+"1")},
		{myCol("b1", bits(1)), v("1", "0")},
		{myCol("uid", ty(cdc.KindUUID, "uuid")), v("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "00000000-0000-0000-0000-000000000000")},
		// Types from the plan.
		{myCol("ov_u8", intTy("bigint unsigned", 8, true)), v("9223372036854775807", "0")},
		{myCol("ov_u4", intTy("int unsigned", 4, true)), v("4294967295", "0")},
		{myCol("ov_bool", intTy("tinyint(1) unsigned", 1, true)), v("1", "0")},
		{myCol("ov_dec", dec(5, 2)), v("1.50", "-999.99", "0.00")},
		{myCol("ov_decf", dec(5, 2)), v("1.25", "-0.50")},
		{myCol("ov_f", ty(cdc.KindFloat32, "float")), v("0.1", "-0", "3.4028235e+38", "1e-45")},
		{myCol("ov_f8", ty(cdc.KindFloat64, "double")), v("0.1", "1e+300")},
		{myCol("ov_dt", cdc.Type{Kind: cdc.KindTimestamp, Name: "datetime(3)", Precision: 3}), v("2026-03-01 12:00:00.5", "1000-01-01 00:00:00")},
		{myCol("ov_ts", cdc.Type{Kind: cdc.KindTimestampTZ, Name: "timestamp"}), v("2026-03-01 12:00:00Z", "1970-01-01 00:00:01Z")},
		{myCol("ov_date", ty(cdc.KindDate, "date")), v("1000-01-01", "0000-03-01")},
		{myCol("ov_time", tm(0)), v("23:59:59", "00:00:00", "24:00:00")},
		{myCol("ov_ttext", tm(0)), v("-838:59:59", "00:00:00")},
		{myCol("ov_set", setT), v("a,d e", "")},
		{myCol("ov_bit", bits(1)), v("1", "0")},
		{myCol("ov_bit8", bits(8)), v("11111111", "00000001")},
		{myCol("ov_vb", cdc.Type{Kind: cdc.KindBytes, Name: "varbinary(10)", Width: 10}), v("é", "", "abc")},
		{myCol("ov_json", ty(cdc.KindJSON, "json")), v(`{"b": 1, "a": 2, "a": 3}`, `[1.0, "\u00e9"]`)},
		{myCol("ov_jtext", ty(cdc.KindJSON, "json")), v(`{"b": 1, "a": 2}`, `1e2`)},
		{myCol("ov_enum", enumT), v("it's", "")},
		{myCol("ov_uuid", ty(cdc.KindUUID, "uuid")), v("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")},
		{myCol("ov_char", cdc.Type{Kind: cdc.KindText, Name: "varchar(5)", Width: 5}), v("ab", "", "abcde")},
		{myCol("ov_citext", ty(cdc.KindText, "text")), v("Ab", "é")},
	}
	overrides := map[string]string{
		"all.ov_u8": "bigint", "all.ov_u4": "numeric", "all.ov_bool": "boolean", "all.ov_dec": "numeric(10,4)", "all.ov_decf": "double precision",
		"all.ov_f": "double precision", "all.ov_f8": "numeric", "all.ov_dt": "timestamptz", "all.ov_ts": "timestamp(0)", "all.ov_date": "timestamp",
		"all.ov_time": "time", "all.ov_ttext": "text", "all.ov_set": "text", "all.ov_bit": "boolean", "all.ov_bit8": "bit varying(8)", "all.ov_vb": "text",
		"all.ov_json": "json", "all.ov_jtext": "text", "all.ov_enum": "varchar(10)", "all.ov_uuid": "uuid", "all.ov_char": "char(5)", "all.ov_citext": "citext",
	}
	rows := 0
	for _, c := range cols {
		rows = max(rows, len(c.vals))
	}
	table := &schema.Table{Schema: "app", Name: "all", PrimaryKey: []string{"id"},
		Columns: []schema.Column{myCol("id", intTy("int", 4, false), notNull)}}
	for _, c := range cols {
		table.Columns = append(table.Columns, c.col)
	}
	tr := mustTranslate(t, &schema.Schema{Dialect: "mysql", Tables: []*schema.Table{table}},
		translateRules{TinyintAsBoolean: true, CaseInsensitive: "icu", Types: overrides})
	tt := tr.tables[0]
	if len(tt.converters) != len(cols)+1 {
		t.Fatalf("%d columns carried, want %d", len(tt.converters), len(cols)+1)
	}
	for i, c := range cols {
		if _, isOver := overrides["all."+c.col.Name]; isOver != slices.Contains(tt.columns[i+1].notes, "type from the plan") {
			t.Fatalf("%s: override %v, notes %q", c.col.Name, isOver, tt.columns[i+1].notes)
		}
	}

	db := pgtest.NewDB(t, pgtest.Target(t))
	conn := db.Conn(t)
	ctx := context.Background()
	for _, s := range tr.preData() {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	// The load writes instants with +00 and a timestamptz from the plan takes its
	// wall clock in the session's zone: UTC here, as back reads it.
	if _, err := conn.Exec(ctx, "SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for r := range rows {
		out := [][]byte{[]byte(fmt.Sprint(r + 1))}
		for i, c := range cols {
			var pg []byte
			if r < len(c.vals) && c.vals[r] != nil {
				var err error
				if pg, err = tt.converters[i+1]([]byte(c.vals[r].(string))); err != nil {
					t.Fatal(err)
				}
			}
			out = append(out, pg)
		}
		copyRow(&b, out)
	}
	sql := fmt.Sprintf("COPY %s (%s) FROM STDIN", tt.qualified, strings.Join(tt.copyColumns, ", "))
	if _, err := conn.PgConn().CopyFrom(ctx, &b, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}

	// A reader's session: whatever the URL set, canonicalSession's settings on top.
	for _, s := range []string{"SET DateStyle = 'SQL, DMY'", "SET IntervalStyle = 'sql_standard'", "SET TimeZone = 'Asia/Kolkata'",
		"SET extra_float_digits = 0", "SET bytea_output = 'escape'"} {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	for k, val := range canonicalSession() {
		if _, err := conn.Exec(ctx, "SELECT set_config($1, $2, false)", k, val); err != nil {
			t.Fatalf("%s = %s: %v", k, val, err)
		}
	}
	var reads []string
	carried := tt.columns[1:]
	for _, c := range carried {
		reads = append(reads, c.readExpr(qident(c.name)))
	}
	got, err := conn.Query(ctx, fmt.Sprintf(`SELECT %s FROM %s ORDER BY "id"`, strings.Join(reads, ", "), tt.qualified))
	if err != nil {
		t.Fatal(err)
	}
	texts, err := pgx.CollectRows(got, func(row pgx.CollectableRow) ([][]byte, error) {
		vals := make([][]byte, len(reads))
		ptrs := make([]any, len(reads))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		return vals, row.Scan(ptrs...)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(texts) != rows {
		t.Fatalf("%d rows read, want %d", len(texts), rows)
	}
	checked := 0
	for i, c := range cols {
		for r := range rows {
			var want any
			if r < len(c.vals) {
				want = c.vals[r]
			}
			pg := texts[r][i]
			if want == nil {
				if pg != nil {
					t.Errorf("%s row %d: read %q, want NULL", c.col.Name, r+1, pg)
				}
				continue
			}
			w := want.(string)
			if c.col.Type.Kind == cdc.KindJSON {
				n, err := cdc.NormalJSON([]byte(w))
				if err != nil {
					t.Fatal(err)
				}
				w = string(n)
			}
			if pg == nil {
				t.Errorf("%s row %d: read NULL, want %q", c.col.Name, r+1, w)
				continue
			}
			back, err := carried[i].back(pg)
			if err != nil || string(back) != w {
				t.Errorf("%s (%s as %s) row %d: read %q, back %q, %v; want %q", c.col.Name, c.col.Type.Name, carried[i].pgType, r+1, pg, back, err, w)
			}
			checked++
		}
	}
	t.Logf("%d values of %d columns read back", checked, len(cols))
}

// A view's SQL in PostgreSQL's quoting: names folded, strings without introducers and
// backslash escapes; what does not read is a problem, not a statement.
func TestTranslateViews(t *testing.T) {
	for _, c := range []struct{ mysql, pg string }{
		{"select `Shop`.`Customer`.`customer_ID` AS `ID`,concat(`Shop`.`Customer`.`first`,_utf8mb4' ',`Shop`.`Customer`.`last`) AS `Full Name` from `Shop`.`Customer`",
			`select "shop"."customer"."customer_id" AS "id",concat("shop"."customer"."first",' ',"shop"."customer"."last") AS "full name" from "shop"."customer"`},
		{"select 'it\\'s' AS `a`,'tab\\there' AS `b`,'x''y' AS `c`,`t`.`my_col` AS `we``ird` from `t` where `t`.`v` like 'a\\_b'",
			`select 'it''s' AS "a",'tab` + "\t" + `here' AS "b",'x''y' AS "c","t"."my_col" AS "we` + "`" + `ird" from "t" where "t"."v" like 'a\_b'`},
		{"select _latin1'caf\xc3\xa9' AS `x`, my_func(1) AS `_y`", `select 'café' AS "x", my_func(1) AS "_y"`},
	} {
		got, err := mysqlQuoting(c.mysql)
		if err != nil || got != c.pg {
			t.Errorf("%s:\n got %s (%v)\nwant %s", c.mysql, got, err, c.pg)
		}
	}
	for _, bad := range []string{"select 'open", "select `open", "select 'nul\\0'"} {
		if got, err := mysqlQuoting(bad); err == nil {
			t.Errorf("%s: %s, want an error", bad, got)
		}
	}
	s := oneTable(myCol("id", intTy("int", 4, false)))
	s.Objects = []schema.Object{{Kind: "view", Schema: "app", Name: "V1", Definition: "select `app`.`t`.`id` AS `id` from `app`.`t`"},
		{Kind: "view", Schema: "app", Name: "bad", Definition: "select 'open"}}
	tr := mustTranslate(t, s, translateRules{})
	if len(tr.views) != 2 || tr.views[0].create != `CREATE OR REPLACE VIEW "dst"."v1" AS select "app"."t"."id" AS "id" from "app"."t"` || tr.views[1].problem == "" {
		t.Errorf("views %+v %+v", tr.views[0], tr.views[1])
	}
	fs := tr.viewFindings(map[string]error{"bad": errors.New("syntax error")}, nil)
	if len(fs) != 2 || fs[0].Severity != check.Info || !strings.Contains(fs[0].Problem, "carried: created after the load") ||
		fs[1].Severity != check.Warning || !strings.Contains(fs[1].Problem, "PostgreSQL refuses its SQL (syntax error)") {
		t.Errorf("findings %+v", fs)
	}
}
