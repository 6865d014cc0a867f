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
		{col: myCol("a", cdc.Type{Kind: cdc.KindText, Name: "text"}, func(c *schema.Column) { c.Charset = "latin1" }), want: `text`},
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
	s := oneTable(myCol("id", intTy("int", 4, false), notNull), myCol("g", ty(cdc.KindOther, "geometry")))
	s.Tables[0].PrimaryKey = []string{"id"}
	s.Tables[0].Indexes = []schema.Index{{Name: "sp", Method: "spatial", Columns: []schema.IndexColumn{{Name: "g"}}}}
	tr := mustTranslate(t, s, translateRules{})
	if m := colMapping(t, tr, "app.T", "g"); m.Target != "(not carried)" || m.TargetType != "" {
		t.Errorf("geometry mapped to %+v", m)
	}
	if !hasFinding(tr, check.Error, "column app.T.g", "type geometry is not carried") {
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
		{check.Warning, "table app.t", "keys on columns name ignore trailing spaces"},
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
		{check.Warning, "view app.v", "not carried: create it by hand; its MySQL definition: select 1"},
		{check.Warning, "trigger app.trg on t", "CREATE TRIGGER trg ..."},
	} {
		if !hasFinding(tr, f.sev, f.object, f.problem) {
			t.Errorf("no %s finding on %s: %s", f.sev, f.object, f.problem)
		}
	}
	if len(tr.findings) != 19 {
		t.Errorf("%d findings, want 19: %+v", len(tr.findings), tr.findings)
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
