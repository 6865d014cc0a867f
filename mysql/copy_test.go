package mysql

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/load"
	"github.com/cutover-dev/cutover/mytest"
)

// columnTypes are the server's own column types: every name of its help's "Data
// Types", "Geographic Features" and "Geometry Constructors" topics that a CREATE
// TABLE takes as a column's type, by the column type the server makes of it, and the
// variants a name alone does not give (unsigned, fractional seconds, character sets,
// ENUM and SET labels).
func columnTypes(t *testing.T, db *sql.DB) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := db.QueryContext(ctx, `SELECT t.name FROM mysql.help_topic t JOIN mysql.help_category c USING (help_category_id)
		WHERE c.name IN ('Data Types', 'Geographic Features', 'Geometry Constructors') ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		// "YEAR Data Type" in some releases' help, "YEAR" in others
		names = append(names, strings.TrimSuffix(strings.ReplaceAll(n, `\_`, "_"), " Data Type"))
	}
	rows.Close()
	if len(names) < 30 {
		t.Fatalf("the server's help lists %d type topics: are its help tables filled (mariadb-install-db)?", len(names))
	}
	for _, base := range []string{"TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT", "DECIMAL(65,30)", "DECIMAL(10,2)", "FLOAT", "DOUBLE"} {
		names = append(names, base+" UNSIGNED")
	}
	names = append(names, "DECIMAL(65,30)", "DECIMAL(10,2)", "FLOAT(7,3)", "DOUBLE(20,5)", "BIT(1)", "BIT(64)",
		"DATETIME(6)", "TIME(6)", "TIMESTAMP(6) NULL", "TIMESTAMP NULL", "CHAR(10)", "BINARY(4)", "VARBINARY(20)",
		"VARCHAR(20) CHARACTER SET latin1", "VARCHAR(20) COLLATE utf8mb4_bin", "CHAR(5) CHARACTER SET ascii",
		"TEXT CHARACTER SET latin1", "ENUM('x','y','')", "ENUM('x','y')", "SET('x','y','z')", "JSON", "POINT", "GEOMETRY",
		// the help of some releases names these as functions or in a topic's title only
		"LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING", "MULTIPOLYGON", "GEOMETRYCOLLECTION", "YEAR")
	seen := map[string]bool{}
	var types []string
	for i, n := range names {
		if strings.ContainsAny(n, " ,") && !strings.ContainsAny(n, "()") && !strings.HasSuffix(n, "UNSIGNED") && !strings.HasSuffix(n, "NULL") {
			continue // a topic, not a type
		}
		probe := fmt.Sprintf("probe_%d", i)
		if _, err := db.ExecContext(ctx, fmt.Sprintf("CREATE TABLE %s (v %s)", probe, n)); err != nil {
			continue
		}
		var ct string
		err := db.QueryRowContext(ctx, "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", probe).Scan(&ct)
		if _, derr := db.ExecContext(ctx, "DROP TABLE "+probe); derr != nil {
			t.Fatal(derr)
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(strings.ToUpper(n), "TIMESTAMP") {
			ct += " NULL"
		}
		if strings.Contains(n, "CHARACTER SET") || strings.Contains(n, "COLLATE") {
			ct = n
		}
		if !seen[ct] {
			seen[ct] = true
			types = append(types, ct)
		}
	}
	return types
}

// samples are values tried in every column; the ones the column takes (in strict mode,
// and the few below without it) are its rows. Values equal by = but not the same are
// among them: 'a', 'A' and 'a ' in case- and pad-insensitive collations, -0 and 0,
// the ENUM's empty error value, zero dates.
var samples = []string{
	"0", "1", "-1", "127", "-128", "255", "32767", "65535", "8388607", "16777215", "2147483647", "-2147483648",
	"4294967295", "9223372036854775807", "-9223372036854775808", "18446744073709551615",
	"0.1", "-0.0e0", "1e308", "-1.7976931348623157e308", "2.2250738585072014e-308", "4.9e-324", "1.401298464324817e-45",
	"3.4028234663852886e38", "0.30000000000000004", "123456789.123456789", "12345678.125",
	"99999999999999999999999999999999999.999999999999999999999999999999", "0.000000000000000000000000000001",
	"'2024-02-29'", "'2024-02-29 23:59:59.999999'", "'1970-01-01 00:00:01'", "'2038-01-19 03:14:07.999999'",
	"'1000-01-01 00:00:00'", "'9999-12-31 23:59:59.999999'", "'838:59:59'", "'-838:59:59.000000'", "'00:00:00.5'",
	"1901", "2155", "''", "'a'", "'A'", "'a '", "' a'", "'é'", "'😀'", "'tab\there'", "'line\nbreak'", "'back\\\\slash'",
	"'\\\\N'", "x'00'", "x'00ff00'", "x'ff'", "x'e9'", "b'1'", "b'1010'", "'x'", "'y'", "'x,y'", "'x,z'", "_latin1 x'e9ff'", "_binary x'80'",
	`'{"a": 1.0, "b": [1, 2.50, "x"], "c": null}'`, `'{"n": 12345678901234567890, "f": 1e-7}'`,
	"'::1'", "'192.168.0.1'", "'123e4567-e89b-12d3-a456-426614174000'",
	"ST_GeomFromText('POINT(1 2)')", "ST_GeomFromText('POINT(-0.5 1e10)', 4326)", "ST_GeomFromText('LINESTRING(0 0,1 1,2 5)')",
	"ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))')", "ST_GeomFromText('MULTIPOINT(0 0,1 1)')",
	"ST_GeomFromText('MULTILINESTRING((0 0,1 1),(2 2,3 3))')", "ST_GeomFromText('MULTIPOLYGON(((0 0,1 0,1 1,0 0)))')",
	"ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 1),LINESTRING(0 0,1 1))')", "ST_GeomFromText('LINESTRING(-1 -1,2.5 3)', 3857)",
	"ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 10,0 0),(1 1,2 1,2 2,1 1))')", "ST_GeomFromText('MULTIPOINT(5 5)')",
	"ST_GeomFromText('MULTILINESTRING((0 0,1 1))')", "ST_GeomFromText('MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((5 5,6 5,6 6,5 5)))')",
}

// laxSamples are taken without strict mode: the values an older application stored.
var laxSamples = []string{"'0000-00-00'", "'0000-00-00 00:00:00'", "'2024-00-15'", "'2024-02-30'", "'not a label'"}

// bytesConn is a connection that reads strings as the bytes stored: converted to
// the connection's character set, two strings that differ could read the same ('?'
// for what the set does not have). The caller discards it.
func bytesConn(t *testing.T, db *sql.DB) *sql.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "SET SESSION character_set_results = binary"); err != nil {
		discard(conn)
		t.Fatal(err)
	}
	return conn
}

// image reads a table's rows over the binary protocol (a prepared statement): numbers
// as their bits, temporal values as the server sends them, strings as bytes. The load
// reads text, so the two paths are independent.
func image(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	ctx := context.Background()
	conn := bytesConn(t, db)
	defer discard(conn)
	rows, err := conn.QueryContext(ctx, "SELECT * FROM "+table+" WHERE 1 = ? ORDER BY 1", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, v := range vals {
			switch v := v.(type) {
			case float64:
				parts = append(parts, fmt.Sprintf("f64:%016x", math.Float64bits(v)))
			case float32:
				parts = append(parts, fmt.Sprintf("f32:%08x", math.Float32bits(v)))
			case []byte:
				parts = append(parts, "x:"+hex.EncodeToString(v))
			case nil:
				parts = append(parts, "NULL")
			default:
				parts = append(parts, fmt.Sprintf("%T:%v", v, v))
			}
		}
		out = append(out, strings.Join(parts, " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// copyTables copies the tables from src (at a snapshot) into tgt, where they exist
// empty, through a load.Pipe of the engine's halves; chunks splits a table by hand
// (the plan splits only large ones) into that many key ranges.
func copyTables(t *testing.T, src, tgt *sql.DB, schema, target string, tables []string, chunks map[string]int) *copyPlan {
	t.Helper()
	cp, err := copyAll(src, tgt, schema, target, tables, chunks, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func copyAll(src, tgt *sql.DB, schema, target string, tables []string, chunks map[string]int, logf func(string, ...any)) (*copyPlan, error) {
	ctx := context.Background()
	snap, err := TakeSnapshot(ctx, src, true, SnapshotOptions{Workers: 1}, logf)
	if err != nil {
		return nil, err
	}
	defer snap.Close()
	view, err := snap.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	var names []tableName
	for _, n := range tables {
		names = append(names, tableName{schema, n})
	}
	cp, err := planCopy(ctx, view, names, target, 2)
	snap.Release(view)
	if err != nil {
		return nil, err
	}
	in, err := openRowsIn(ctx, tgt, cp)
	if err != nil {
		return nil, err
	}
	pipe := &load.Pipe{Out: &rowsOut{snap: snap, plan: cp}, In: in}
	defer pipe.Close(ctx)
	for _, tb := range cp.tables {
		if n, ok := chunks[tb.Name]; ok {
			spec := cp.specs[tb]
			var lo, hi string
			if err := src.QueryRow(fmt.Sprintf("SELECT MIN(%[1]s), MAX(%[1]s) FROM %[2]s", spec.key[0], spec.qname)).Scan(&lo, &hi); err != nil {
				return nil, err
			}
			spec.lo, _ = new(big.Int).SetString(lo, 10)
			spec.hi, _ = new(big.Int).SetString(hi, 10)
			tb.Chunks = n
		}
		for i := range tb.Chunks {
			if _, _, err := pipe.Copy(ctx, tb, i, func(int64, int64) {}); err != nil {
				return nil, fmt.Errorf("copy %s chunk %d: %w", tb.Name, i, err)
			}
		}
	}
	return cp, nil
}

// createLike makes the source's tables on the target with SHOW CREATE TABLE.
func createLike(t *testing.T, src, tgt *sql.DB, tables []string) {
	t.Helper()
	for _, n := range tables {
		var name, ddl string
		if err := src.QueryRow("SHOW CREATE TABLE "+quote(n)).Scan(&name, &ddl); err != nil {
			t.Fatal(err)
		}
		if _, err := tgt.Exec(ddl); err != nil {
			t.Fatalf("%s on the target: %v", ddl, err)
		}
	}
}

var nonWord = regexp.MustCompile(`[^a-z0-9]+`)

// typeTables makes a table (id int PRIMARY KEY, v <type>) on db for each type, named
// after it, and returns their names.
func typeTables(t *testing.T, db *sql.DB, types []string) []string {
	t.Helper()
	tables := make([]string, len(types))
	for i, typ := range types {
		name := fmt.Sprintf("t%02d_%s", i, strings.Trim(nonWord.ReplaceAllString(strings.ToLower(typ), "_"), "_"))
		tables[i] = name[:min(len(name), 60)]
		if _, err := db.Exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, v %s)", quote(tables[i]), typ)); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
	}
	return tables
}

// Every column type of the server, with the values it takes, loaded into another
// server comes out the same by the binary protocol's image of each row.
func TestCopyEveryColumnType(t *testing.T) {
	srcDB, tgtDB := mytest.NewDB(t, mytest.Source(t)), mytest.NewDB(t, mytest.Target(t))
	src, tgt := srcDB.Open(t), tgtDB.Open(t)
	ctx := context.Background()
	types := columnTypes(t, src)
	tables := typeTables(t, src, types)
	for i, typ := range types {
		name := tables[i]
		conn, err := src.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		id, taken := 0, 0
		for _, mode := range []string{"STRICT_ALL_TABLES", ""} {
			if _, err := conn.ExecContext(ctx, "SET SESSION sql_mode = ?", mode); err != nil {
				t.Fatal(err)
			}
			values := samples
			if mode == "" {
				values = laxSamples
			}
			for _, v := range values {
				id++
				if _, err := conn.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s VALUES (%d, %s)", quote(name), id, v)); err == nil {
					taken++
				}
			}
		}
		id++
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s VALUES (%d, NULL)", quote(name), id)); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		if taken < 2 {
			t.Errorf("type %s takes %d of the samples: give it samples", typ, taken)
		}
	}
	createLike(t, src, tgt, tables)
	copyTables(t, src, tgt, srcDB.Name, tgtDB.Name, tables, nil)
	for i, n := range tables {
		a, b := image(t, src, quote(n)), image(t, tgt, quote(n))
		if !slices.Equal(a, b) {
			for j := range max(len(a), len(b)) {
				if j >= len(a) || j >= len(b) || a[j] != b[j] {
					t.Errorf("type %s: rows differ from row %d: source %q, target %q", types[i], j, a[j:min(j+1, len(a))], b[j:min(j+1, len(b))])
					break
				}
			}
		}
	}
	t.Logf("%d column types from the server's catalog, copied and compared", len(types))
}

// A table split into key ranges is copied whole, each row once, across the key's
// whole domain (an unsigned BIGINT's top half included), and generated and invisible
// columns come out as on the source.
func TestCopyChunks(t *testing.T) {
	srcDB, tgtDB := mytest.NewDB(t, mytest.Source(t)), mytest.NewDB(t, mytest.Target(t))
	src, tgt := srcDB.Open(t), tgtDB.Open(t)
	srcDB.Exec(t, `CREATE TABLE wide (id bigint unsigned PRIMARY KEY, v varchar(10), g int AS (length(v)) VIRTUAL, s int AS (length(v) * 2) STORED, h int INVISIBLE DEFAULT 7);
		INSERT INTO wide (id, v, h) VALUES (0, 'a', 1), (1, 'bb', 2), (9223372036854775807, 'c', 3), (9223372036854775808, 'dd', 4), (18446744073709551614, 'e', 5), (18446744073709551615, NULL, NULL);
		CREATE TABLE neg (id int PRIMARY KEY, k int); INSERT INTO neg VALUES (-2147483648, 1), (-1, 2), (0, 3), (2147483647, 4);`)
	createLike(t, src, tgt, []string{"wide", "neg"})
	cp := copyTables(t, src, tgt, srcDB.Name, tgtDB.Name, []string{"wide", "neg"}, map[string]int{"wide": 3, "neg": 4})
	// Every split reads each row once.
	for tb, spec := range cp.specs {
		var total int
		if err := src.QueryRow("SELECT count(*) FROM " + quote(tb.Name)).Scan(&total); err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{2, 3, 7} {
			seen := 0
			for i := range n {
				q := spec.selectSQL(i, n)
				rows, err := src.Query(q)
				if err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				for rows.Next() {
					seen++
				}
				rows.Close()
			}
			if seen != total {
				t.Errorf("%s in %d chunks: %d rows read, the table has %d", tb.Name, n, seen, total)
			}
		}
	}
	for _, n := range []string{"wide", "neg"} {
		q := "(SELECT * , h FROM " + quote(n) + ")"
		if n == "neg" {
			q = quote(n)
		}
		if a, b := image(t, src, q+" x"), image(t, tgt, q+" x"); !slices.Equal(a, b) {
			t.Errorf("%s: source %q, target %q", n, a, b)
		}
	}
}

// A value the target would change as it loads it stops the copy with the table and
// the server's warning, although LOAD DATA took it (in strict mode too): an ENUM whose
// labels differ on the target (its error value, which loads as it is, passes), a
// string longer than the target's column.
func TestCopyRefusesAChangedValue(t *testing.T) {
	srcDB, tgtDB := mytest.NewDB(t, mytest.Source(t)), mytest.NewDB(t, mytest.Target(t))
	src, tgt := srcDB.Open(t), tgtDB.Open(t)
	srcDB.Exec(t, `SET SESSION sql_mode = ''; CREATE TABLE e (id int PRIMARY KEY, v enum('x','y')); INSERT INTO e VALUES (1, 'x'), (2, 'bad'), (3, 'y');
		CREATE TABLE s (id int PRIMARY KEY, v varchar(10)); INSERT INTO s VALUES (1, 'abcdef')`)
	tgtDB.Exec(t, `CREATE TABLE e (id int PRIMARY KEY, v enum('x')); CREATE TABLE s (id int PRIMARY KEY, v varchar(3))`)
	for table, want := range map[string]string{"e": "Warning 1265: Data truncated for column 'v' at row 3", "s": "Warning 1265: Data truncated for column 'v' at row 1"} {
		_, err := copyAll(src, tgt, srcDB.Name, tgtDB.Name, []string{table}, nil, t.Logf)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "`"+tgtDB.Name+"`.`"+table+"`") {
			t.Errorf("the copy of %s said %v, want the table and %q", table, err, want)
		}
	}
}
