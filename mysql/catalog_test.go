package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/mytest"
	neutral "github.com/cutover-dev/cutover/schema"
)

func TestColumnType(t *testing.T) {
	n := func(v int64) sql.NullInt64 { return sql.NullInt64{Int64: v, Valid: true} }
	var none sql.NullInt64
	for _, c := range []struct {
		dataType, columnType string
		charLen, prec, scale sql.NullInt64
		dtPrec               sql.NullInt64
		want                 cdc.Type
	}{
		{"tinyint", "tinyint(1)", none, n(3), n(0), none, cdc.Type{Kind: cdc.KindInt, Name: "tinyint(1)", Width: 1}},
		{"tinyint", "tinyint(4)", none, n(3), n(0), none, cdc.Type{Kind: cdc.KindInt, Name: "tinyint", Width: 1}},
		{"tinyint", "tinyint(3) unsigned", none, n(3), n(0), none, cdc.Type{Kind: cdc.KindUint, Name: "tinyint unsigned", Width: 1}},
		{"mediumint", "mediumint(8) unsigned zerofill", none, n(7), n(0), none, cdc.Type{Kind: cdc.KindUint, Name: "mediumint unsigned", Width: 3}},
		{"int", "int", none, n(10), n(0), none, cdc.Type{Kind: cdc.KindInt, Name: "int", Width: 4}},
		{"bigint", "bigint(20) unsigned", none, n(20), n(0), none, cdc.Type{Kind: cdc.KindUint, Name: "bigint unsigned", Width: 8}},
		{"year", "year(4)", none, none, none, none, cdc.Type{Kind: cdc.KindUint, Name: "year", Width: 2}},
		{"decimal", "decimal(65,30) unsigned", none, n(65), n(30), none, cdc.Type{Kind: cdc.KindDecimal, Name: "decimal(65,30) unsigned", Precision: 65, Scale: 30}},
		{"float", "float(7,3)", none, n(7), n(3), none, cdc.Type{Kind: cdc.KindFloat32, Name: "float"}},
		{"double", "double unsigned", none, n(22), none, none, cdc.Type{Kind: cdc.KindFloat64, Name: "double unsigned"}},
		{"bit", "bit(64)", none, n(64), none, none, cdc.Type{Kind: cdc.KindBits, Name: "bit(64)", Width: 64, Fixed: true}},
		{"date", "date", none, none, none, none, cdc.Type{Kind: cdc.KindDate, Name: "date"}},
		{"datetime", "datetime(6)", none, none, none, n(6), cdc.Type{Kind: cdc.KindTimestamp, Name: "datetime(6)", Precision: 6}},
		{"timestamp", "timestamp", none, none, none, n(0), cdc.Type{Kind: cdc.KindTimestampTZ, Name: "timestamp"}},
		{"time", "time(3)", none, none, none, n(3), cdc.Type{Kind: cdc.KindTime, Name: "time(3)", Precision: 3}},
		{"varchar", "varchar(20)", n(20), none, none, none, cdc.Type{Kind: cdc.KindText, Name: "varchar(20)", Width: 20}},
		{"char", "char(5)", n(5), none, none, none, cdc.Type{Kind: cdc.KindText, Name: "char(5)", Width: 5, Fixed: true}},
		{"binary", "binary(4)", n(4), none, none, none, cdc.Type{Kind: cdc.KindBytes, Name: "binary(4)", Width: 4, Fixed: true}},
		{"varbinary", "varbinary(20)", n(20), none, none, none, cdc.Type{Kind: cdc.KindBytes, Name: "varbinary(20)", Width: 20}},
		{"mediumtext", "mediumtext", n(16777215), none, none, none, cdc.Type{Kind: cdc.KindText, Name: "mediumtext"}},
		{"longblob", "longblob", n(4294967295), none, none, none, cdc.Type{Kind: cdc.KindBytes, Name: "longblob"}},
		{"tinyblob", "tinyblob", n(255), none, none, none, cdc.Type{Kind: cdc.KindBytes, Name: "tinyblob", Width: 255}},
		{"enum", `enum('a','it''s','back\\slash','','x,y')`, n(10), none, none, none,
			cdc.Type{Kind: cdc.KindEnum, Name: `enum('a','it''s','back\\slash','','x,y')`, Labels: []string{"a", "it's", `back\slash`, "", "x,y"}}},
		{"set", "set('a','b')", n(3), none, none, none, cdc.Type{Kind: cdc.KindSet, Name: "set('a','b')", Labels: []string{"a", "b"}}},
		{"json", "json", none, none, none, none, cdc.Type{Kind: cdc.KindJSON, Name: "json"}},
		{"uuid", "uuid", none, none, none, none, cdc.Type{Kind: cdc.KindUUID, Name: "uuid"}},
		{"inet6", "inet6", none, none, none, none, cdc.Type{Kind: cdc.KindOther, Name: "inet6"}},
		{"point", "point", none, none, none, none, cdc.Type{Kind: cdc.KindGeometry, Name: "point"}},
		{"geomcollection", "geomcollection", none, none, none, none, cdc.Type{Kind: cdc.KindGeometry, Name: "geometrycollection"}},
		{"something", "something(3)", none, none, none, none, cdc.Type{Kind: cdc.KindOther, Name: "something(3)"}},
	} {
		got, err := columnType(c.dataType, c.columnType, c.charLen, c.prec, c.scale, c.dtPrec, "")
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("columnType(%s, %s) = %+v, %v; want %+v", c.dataType, c.columnType, got, err, c.want)
		}
	}
	if _, err := columnType("enum", "enum('a'", none, none, none, none, ""); err == nil {
		t.Error("columnType takes an ENUM whose labels do not end")
	}
}

func TestColumnDefault(t *testing.T) {
	v := func(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }
	var null sql.NullString
	for _, c := range []struct {
		mariadb bool
		raw     sql.NullString
		extra   string
		typ     cdc.Type
		want    *neutral.Default
	}{
		{true, null, "", tText, nil},
		{true, v("NULL"), "", tText, nil},
		{true, v("'NULL'"), "", tText, &neutral.Default{Value: "NULL"}},
		{true, v(`'it''s \\ x\n'`), "", tText, &neutral.Default{Value: "it's \\ x\n"}},
		{true, v("1.50"), "", tDec52, &neutral.Default{Value: "1.50"}},
		{true, v("-5"), "", tInt1, &neutral.Default{Value: "-5"}},
		{true, v("0.1"), "", tFloat, &neutral.Default{Value: "0.1"}},
		{true, v("b'101'"), "", tBit5, &neutral.Default{Value: "00101"}},
		{true, v("'y'"), "", tEnum, &neutral.Default{Value: "y"}},
		{true, v("'c,a'"), "", tSet3, &neutral.Default{Value: "a,c"}},
		{true, v("current_timestamp(3)"), "on update current_timestamp(3)", tTS6, &neutral.Default{Now: true, Precision: 3}},
		{true, v("current_timestamp()"), "", tDT0, &neutral.Default{Now: true}},
		{true, v("'2020-01-01 00:00:00'"), "", tTS6, &neutral.Default{Value: "2020-01-01 00:00:00Z"}},
		{true, v("'0000-00-00 00:00:00'"), "", tDT0, &neutral.Default{Expr: "'0000-00-00 00:00:00'"}},
		{true, v("(1 + 2)"), "", tInt8, &neutral.Default{Expr: "(1 + 2)"}},
		{true, v("uuid()"), "", tText, &neutral.Default{Expr: "uuid()"}},
		{true, v("2020"), "", tYear, &neutral.Default{Value: "2020"}},
		{false, null, "", tText, nil},
		{false, v(""), "", tText, &neutral.Default{Value: ""}},
		{false, v("NULL"), "", tText, &neutral.Default{Value: "NULL"}},
		{false, v("it's"), "", tText, &neutral.Default{Value: "it's"}},
		{false, v("1.50"), "", tDec52, &neutral.Default{Value: "1.50"}},
		{false, v("b'101'"), "", tBit5, &neutral.Default{Value: "00101"}},
		{false, v("CURRENT_TIMESTAMP"), "DEFAULT_GENERATED", tTS6, &neutral.Default{Now: true}},
		{false, v("CURRENT_TIMESTAMP(6)"), "DEFAULT_GENERATED on update CURRENT_TIMESTAMP(6)", tDT6, &neutral.Default{Now: true, Precision: 6}},
		{false, v("CURRENT_TIMESTAMP"), "", tDT0, &neutral.Default{Now: true}}, // MySQL 5.7
		{false, v("CURRENT_TIMESTAMP"), "", tText, &neutral.Default{Value: "CURRENT_TIMESTAMP"}},
		{false, v("(rand() * 10)"), "DEFAULT_GENERATED", tDouble, &neutral.Default{Expr: "(rand() * 10)"}},
		{false, v("0000-00-00"), "", tDate, &neutral.Default{Expr: "'0000-00-00'"}},
	} {
		got := columnDefault(c.mariadb, c.raw, c.extra, c.typ)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("columnDefault(mariadb %v, %v, %q, %s) = %+v, want %+v", c.mariadb, c.raw, c.extra, c.typ.Name, got, c.want)
		}
	}
}

// TestReadTablesEveryType reads a table with every column type the server has.
func TestReadTablesEveryType(t *testing.T) {
	d := mytest.NewDB(t, mytest.Source(t))
	pool := d.Open(t)
	// JSON's COLUMN_TYPE is longtext on MariaDB: the JSON alias itself
	types := append(columnTypes(t, pool), "JSON")
	defs := make([]string, len(types))
	for i, typ := range types {
		defs[i] = fmt.Sprintf("c%d %s", i, typ)
	}
	d.Exec(t, "CREATE TABLE every (id int PRIMARY KEY, "+strings.Join(defs, ", ")+")")
	ctx := context.Background()
	conn, err := pool.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s, err := readTables(ctx, conn, d.Name, []tableName{{d.Name, "every"}})
	if err != nil {
		t.Fatal(err)
	}
	other := map[string]bool{"inet4": true, "inet6": true}
	spatial := map[string]bool{"geometry": true, "point": true, "linestring": true, "polygon": true, "multipoint": true,
		"multilinestring": true, "multipolygon": true, "geometrycollection": true}
	kinds := map[cdc.Kind]int{}
	for i, typ := range types {
		c := s.Tables[0].Columns[i+1]
		kinds[c.Type.Kind]++
		if (c.Type.Kind == cdc.KindOther) != other[c.Type.Name] || (c.Type.Kind == cdc.KindGeometry) != spatial[c.Type.Name] {
			t.Errorf("%s: %+v", typ, c.Type)
		}
		lower := strings.ToLower(typ)
		switch {
		case strings.HasPrefix(lower, "json") || strings.HasPrefix(lower, "longtext") && strings.Contains(lower, "json"):
			if c.Type.Kind != cdc.KindJSON {
				t.Errorf("%s: %+v, want JSON", typ, c.Type)
			}
		case strings.Contains(lower, "unsigned") && strings.Contains(lower, "int"):
			if c.Type.Kind != cdc.KindUint {
				t.Errorf("%s: %+v, want an unsigned integer", typ, c.Type)
			}
		}
		if c.Type.Kind != cdc.KindOther && c.Type.Kind != cdc.KindGeometry && c.Type.Kind != cdc.KindJSON && c.Type.Kind != cdc.KindUUID && !strings.HasPrefix(strings.ToLower(c.Type.Name), strings.Fields(lower)[0][:3]) &&
			!(strings.HasPrefix(lower, "bool") || strings.HasPrefix(lower, "year")) {
			t.Errorf("%s: named %q", typ, c.Type.Name)
		}
	}
	if len(s.Tables[0].Checks) != 0 {
		t.Errorf("checks %+v: MariaDB's JSON checks are kept", s.Tables[0].Checks)
	}
	for _, k := range []cdc.Kind{cdc.KindInt, cdc.KindUint, cdc.KindDecimal, cdc.KindFloat32, cdc.KindFloat64, cdc.KindText, cdc.KindBytes,
		cdc.KindDate, cdc.KindTime, cdc.KindTimestamp, cdc.KindTimestampTZ, cdc.KindJSON, cdc.KindEnum, cdc.KindSet, cdc.KindBits, cdc.KindUUID, cdc.KindOther, cdc.KindGeometry} {
		if kinds[k] == 0 {
			t.Errorf("no column of kind %s among %d types", k, len(types))
		}
	}
	t.Logf("%d types, by kind %v", len(types), kinds)
}

// TestReadTables reads keys, indexes, foreign keys, checks, generated columns,
// defaults, collations and objects.
func TestReadTables(t *testing.T) {
	d := mytest.NewDB(t, mytest.Source(t))
	d.Exec(t, `CREATE TABLE parent (a int NOT NULL, b varchar(10) NOT NULL, PRIMARY KEY (a, b), UNIQUE KEY u (b)) COMMENT 'the parent'`)
	d.Exec(t, "CREATE TABLE child (\n"+
		"id bigint unsigned NOT NULL AUTO_INCREMENT,\n"+
		"pa int, pb varchar(10),\n"+
		"name varchar(40) CHARACTER SET latin1 COLLATE latin1_swedish_nopad_ci NOT NULL DEFAULT 'it''s \\\\ x' COMMENT 'a name',\n"+
		"bin_name varchar(20) COLLATE utf8mb4_bin,\n"+
		"body text,\n"+
		"doc json,\n"+
		"amount decimal(10,2) DEFAULT 1.5,\n"+
		"ratio float DEFAULT 0.1,\n"+
		"flags bit(3) DEFAULT b'101',\n"+
		"kind enum('a','b') NOT NULL DEFAULT 'b',\n"+
		"tags set('x','y','z') DEFAULT 'z,x',\n"+
		"created timestamp(3) NOT NULL DEFAULT current_timestamp(3) ON UPDATE current_timestamp(3),\n"+
		"day date DEFAULT '2020-02-29',\n"+
		"n int DEFAULT (1 + 2),\n"+
		"nul int DEFAULT NULL,\n"+
		"twice int AS (n * 2) VIRTUAL,\n"+
		"thrice int AS (n * 3) PERSISTENT,\n"+
		"geo point NOT NULL,\n"+
		"PRIMARY KEY (id),\n"+
		"KEY prefix (name(5), body(10)),\n"+
		"KEY desc_idx (amount DESC, id),\n"+
		"UNIQUE KEY u_bin (bin_name),\n"+
		"FULLTEXT KEY ft (body),\n"+
		"SPATIAL KEY sp (geo),\n"+
		"CONSTRAINT fk_parent FOREIGN KEY (pa, pb) REFERENCES parent (a, b) ON DELETE CASCADE ON UPDATE SET NULL,\n"+
		"CONSTRAINT positive CHECK (amount >= 0),\n"+
		"CONSTRAINT n_small CHECK (n < 100)\n"+
		") ENGINE=InnoDB AUTO_INCREMENT=42 COMMENT 'the child'")
	d.Exec(t, "CREATE VIEW kids AS SELECT id, name FROM child")
	d.Exec(t, "CREATE TRIGGER child_bi BEFORE INSERT ON child FOR EACH ROW SET NEW.n = NEW.n + 1")
	d.Exec(t, "CREATE PROCEDURE p() SELECT 1")
	d.Exec(t, "CREATE FUNCTION f() RETURNS int DETERMINISTIC RETURN 1")
	d.Exec(t, "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO SELECT 1")

	ctx := context.Background()
	pool := d.Open(t)
	conn, err := pool.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var modeBefore string
	if err := conn.QueryRowContext(ctx, "SELECT @@SESSION.sql_mode").Scan(&modeBefore); err != nil {
		t.Fatal(err)
	}
	s, err := readTables(ctx, conn, d.Name, []tableName{{d.Name, "parent"}, {d.Name, "child"}})
	if err != nil {
		t.Fatal(err)
	}
	var modeAfter string
	if err := conn.QueryRowContext(ctx, "SELECT @@SESSION.sql_mode").Scan(&modeAfter); err != nil || modeAfter != modeBefore {
		t.Errorf("the session's sql_mode is %q after, %q before (%v)", modeAfter, modeBefore, err)
	}
	if s.Dialect != "mysql" || len(s.Tables) != 2 {
		t.Fatalf("%+v", s)
	}
	parent, child := s.Tables[0], s.Tables[1]
	if !reflect.DeepEqual(parent.PrimaryKey, []string{"a", "b"}) || parent.Comment != "the parent" || parent.NextAutoIncrement != 0 ||
		len(parent.Indexes) != 1 || !parent.Indexes[0].Unique || parent.Indexes[0].Name != "u" {
		t.Errorf("parent: %+v", parent)
	}
	if !reflect.DeepEqual(child.PrimaryKey, []string{"id"}) || child.NextAutoIncrement != 42 || child.Comment != "the child" {
		t.Errorf("child: key %v, next %d, comment %q", child.PrimaryKey, child.NextAutoIncrement, child.Comment)
	}
	col := func(name string) neutral.Column {
		c := child.Column(name)
		if c == nil {
			t.Fatalf("no column %s", name)
		}
		return *c
	}
	wantCols := map[string]neutral.Column{
		"id": {Name: "id", Type: cdc.Type{Kind: cdc.KindUint, Name: "bigint unsigned", Width: 8}, NotNull: true, AutoIncrement: true},
		"pa": {Name: "pa", Type: cdc.Type{Kind: cdc.KindInt, Name: "int", Width: 4}},
		"name": {Name: "name", Type: cdc.Type{Kind: cdc.KindText, Name: "varchar(40)", Width: 40}, NotNull: true,
			Default: &neutral.Default{Value: `it's \ x`}, Charset: "latin1", Collation: "latin1_swedish_nopad_ci", CaseInsensitive: true, Comment: "a name"},
		"bin_name": {Name: "bin_name", Type: cdc.Type{Kind: cdc.KindText, Name: "varchar(20)", Width: 20}, Charset: "utf8mb4", Collation: "utf8mb4_bin", PadInsensitive: true},
		"doc":      {Name: "doc", Type: cdc.Type{Kind: cdc.KindJSON, Name: "json"}, Charset: "utf8mb4", Collation: "utf8mb4_bin", PadInsensitive: true},
		"amount":   {Name: "amount", Type: cdc.Type{Kind: cdc.KindDecimal, Name: "decimal(10,2)", Precision: 10, Scale: 2}, Default: &neutral.Default{Value: "1.50"}},
		"ratio":    {Name: "ratio", Type: cdc.Type{Kind: cdc.KindFloat32, Name: "float"}, Default: &neutral.Default{Value: "0.1"}},
		"flags":    {Name: "flags", Type: cdc.Type{Kind: cdc.KindBits, Name: "bit(3)", Width: 3, Fixed: true}, Default: &neutral.Default{Value: "101"}},
		"created": {Name: "created", Type: cdc.Type{Kind: cdc.KindTimestampTZ, Name: "timestamp(3)", Precision: 3}, NotNull: true,
			Default: &neutral.Default{Now: true, Precision: 3}, OnUpdateNow: true},
		"day":    {Name: "day", Type: cdc.Type{Kind: cdc.KindDate, Name: "date"}, Default: &neutral.Default{Value: "2020-02-29"}},
		"n":      {Name: "n", Type: cdc.Type{Kind: cdc.KindInt, Name: "int", Width: 4}, Default: &neutral.Default{Expr: "(1 + 2)"}},
		"nul":    {Name: "nul", Type: cdc.Type{Kind: cdc.KindInt, Name: "int", Width: 4}},
		"twice":  {Name: "twice", Type: cdc.Type{Kind: cdc.KindInt, Name: "int", Width: 4}, Generated: "`n` * 2"},
		"thrice": {Name: "thrice", Type: cdc.Type{Kind: cdc.KindInt, Name: "int", Width: 4}, Generated: "`n` * 3", Stored: true},
		"geo":    {Name: "geo", Type: cdc.Type{Kind: cdc.KindGeometry, Name: "point"}, NotNull: true},
	}
	for name, want := range wantCols {
		if got := col(name); !reflect.DeepEqual(got, want) {
			t.Errorf("column %s:\n got %+v\nwant %+v", name, got, want)
		}
	}
	if c := col("kind"); c.Type.Kind != cdc.KindEnum || c.Default == nil || c.Default.Value != "b" || !c.CaseInsensitive || !c.PadInsensitive {
		t.Errorf("kind: %+v", c)
	}
	if c := col("tags"); c.Type.Kind != cdc.KindSet || c.Default == nil || c.Default.Value != "x,z" {
		t.Errorf("tags: %+v", c)
	}
	var names []string
	for _, c := range child.Columns {
		names = append(names, c.Name)
	}
	if strings.Join(names, " ") != "id pa pb name bin_name body doc amount ratio flags kind tags created day n nul twice thrice geo" {
		t.Errorf("columns in the order %v", names)
	}
	wantIndexes := []neutral.Index{
		{Name: "u_bin", Unique: true, Method: "btree", Columns: []neutral.IndexColumn{{Name: "bin_name"}}},
		{Name: "prefix", Method: "btree", Columns: []neutral.IndexColumn{{Name: "name", Prefix: 5}, {Name: "body", Prefix: 10}}},
		{Name: "desc_idx", Method: "btree", Columns: []neutral.IndexColumn{{Name: "amount", Desc: true}, {Name: "id"}}},
		{Name: "sp", Method: "spatial", Columns: []neutral.IndexColumn{{Name: "geo", Prefix: 32}}},
		{Name: "fk_parent", Method: "btree", Columns: []neutral.IndexColumn{{Name: "pa"}, {Name: "pb"}}},
		{Name: "ft", Method: "fulltext", Columns: []neutral.IndexColumn{{Name: "body"}}},
	}
	byName := map[string]neutral.Index{}
	for _, ix := range child.Indexes {
		byName[ix.Name] = ix
	}
	if len(child.Indexes) != len(wantIndexes) {
		t.Errorf("indexes %+v", child.Indexes)
	}
	for _, want := range wantIndexes {
		got := byName[want.Name]
		if want.Name == "sp" && len(got.Columns) == 1 {
			want.Columns[0].Prefix = got.Columns[0].Prefix // the server's own prefix of a spatial part
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("index %s:\n got %+v\nwant %+v", want.Name, got, want)
		}
	}
	wantFK := []neutral.ForeignKey{{Name: "fk_parent", Columns: []string{"pa", "pb"}, RefSchema: d.Name, RefTable: "parent",
		RefColumns: []string{"a", "b"}, OnDelete: "CASCADE", OnUpdate: "SET NULL"}}
	if !reflect.DeepEqual(child.ForeignKeys, wantFK) {
		t.Errorf("foreign keys %+v", child.ForeignKeys)
	}
	wantChecks := []neutral.Check{{Name: "positive", Expr: "`amount` >= 0"}, {Name: "n_small", Expr: "`n` < 100"}}
	if !reflect.DeepEqual(child.Checks, wantChecks) {
		t.Errorf("checks %+v", child.Checks)
	}
	objects := map[string]neutral.Object{}
	for _, o := range s.Objects {
		objects[o.Kind+" "+o.Name] = o
	}
	if len(s.Objects) != 5 {
		t.Errorf("objects %+v", s.Objects)
	}
	if v := objects["view kids"]; !strings.Contains(v.Definition, "select") || !strings.Contains(v.Definition, "`child`") {
		t.Errorf("view: %+v", v)
	}
	if tr := objects["trigger child_bi"]; tr.Table != "child" || !strings.Contains(tr.Definition, "CREATE") || !strings.Contains(tr.Definition, "NEW.n + 1") {
		t.Errorf("trigger: %+v", tr)
	}
	for _, k := range []string{"procedure p", "function f", "event e"} {
		if o := objects[k]; !strings.Contains(o.Definition, "CREATE") || o.Schema != d.Name {
			t.Errorf("%s: %+v", k, o)
		}
	}
	if _, err := readTables(ctx, conn, d.Name, []tableName{{d.Name, "kids"}}); err == nil || !strings.Contains(err.Error(), "not a base table") {
		t.Errorf("a view read as a table: %v", err)
	}
	if _, err := readTables(ctx, conn, d.Name, []tableName{{d.Name, "missing"}}); err == nil {
		t.Error("a missing table read")
	}
}
