package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/mytest"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/jackc/pgx/v5"
)

// Every column type of MariaDB and its edge values, copied into PostgreSQL by the
// binary (cutover check, then cutover start as a one-shot copy), and every value
// compared by queries of the test's own on both sides: the types are the server's own
// (the names of its help's type topics a CREATE TABLE takes, and the variants a name
// alone does not give), one table each, every sample value the column takes in strict
// mode a row; then the cases a type alone does not make (zero dates, generated
// columns, keys, a table without one, an AUTO_INCREMENT with a gap). Spatial types and
// INET4/INET6 have no canonical form: check names each column as an error.
func TestMySQLToPostgresEveryType(t *testing.T) {
	if !mytest.Installed() {
		t.Skip("MariaDB is not installed: make test installs it")
	}
	ctx := context.Background()
	src, tgt := mytest.NewDB(t, mytest.Source(t)), pgtest.NewDB(t, pgtest.Target(t))
	my := src.Open(t)
	conn, err := my.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := conn.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("SET SESSION time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'")

	// PostGIS on the target, when it is installed (make test installs it): MySQL's
	// spatial types are carried then, refused otherwise.
	postgis := pgtest.QueryVal[bool](t, tgt, "SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'postgis')")
	if postgis {
		tgt.Exec(t, "CREATE EXTENSION postgis")
	} else {
		t.Log("PostGIS is not installed (apt-get install postgresql-NN-postgis-3): the spatial types are checked refused")
	}

	// One table per type, every sample the column takes a row (and one NULL).
	types, refused := catalogColumnTypes(t, conn, postgis)
	values := 0
	for i, typ := range types {
		table := fmt.Sprintf("ty_%02d", i)
		exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, v %s) COMMENT %s", table, typ, sqlQuote(typ)))
		exec(fmt.Sprintf("INSERT INTO %s VALUES (0, NULL)", table))
		id, taken := 1, 0
		for _, s := range typeSamples(typ) {
			if _, err := conn.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s VALUES (%d, %s)", table, id, s)); err == nil {
				id, taken = id+1, taken+1
			}
		}
		if taken < 2 {
			t.Errorf("type %s (table %s) took %d of the samples", typ, table, taken)
		}
		values += taken
	}
	for i, typ := range refused {
		exec(fmt.Sprintf("CREATE TABLE refused_%02d (id int PRIMARY KEY, v %s) COMMENT %s", i, typ, sqlQuote(typ)))
	}
	// What a type alone does not make.
	exec(`CREATE TABLE composite_key (a int NOT NULL, b varchar(10) NOT NULL, c char(3) NOT NULL, email varchar(50), note text,
		PRIMARY KEY (a, b, c), UNIQUE KEY email (email))`)
	exec(`INSERT INTO composite_key VALUES (1, 'x', 'p', 'a@example.com', 'one'), (1, 'y', 'p', NULL, NULL), (1, 'y', 'q', NULL, ''),
		(2, 'x', 'p', 'b@example.com', 'two')`)
	exec(`CREATE TABLE no_key (a int, b varchar(10), c double)`)
	exec(`INSERT INTO no_key VALUES (1, 'a', 0.5), (1, 'a', 0.5), (NULL, NULL, NULL), (NULL, NULL, NULL), (2, 'b', -0e0)`)
	exec(`CREATE TABLE auto_gap (id int unsigned AUTO_INCREMENT PRIMARY KEY, v varchar(10))`)
	exec(`INSERT INTO auto_gap (v) VALUES ('a'), ('b'), ('c')`)
	exec(`INSERT INTO auto_gap VALUES (50, 'fifty'), (100, 'gone')`)
	exec(`DELETE FROM auto_gap WHERE id = 100`) // the counter stays at 101
	exec(`CREATE TABLE generated (id int PRIMARY KEY, a int, b int AS (a * 2) VIRTUAL, c varchar(30) AS (concat('x', a)) STORED,
		d double AS (a / 3) PERSISTENT, e date AS (makedate(2000, a)) VIRTUAL)`)
	exec(`INSERT INTO generated (id, a) VALUES (1, 1), (2, -7), (3, NULL), (4, 366)`)
	exec(`CREATE TABLE zero_dates (id int PRIMARY KEY, d_null date, d_nn date NOT NULL, dt_null datetime(3), dt_nn datetime NOT NULL,
		ts_null timestamp(6) NULL, ts_nn timestamp NOT NULL DEFAULT '2000-01-01 00:00:00', d_invalid date NOT NULL, d_clean date NOT NULL)`)
	exec("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
	exec(`INSERT INTO zero_dates VALUES
		(1, '0000-00-00', '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '2024-02-30', '1000-01-01'),
		(2, '2024-00-15', '2024-02-00', '2024-00-01 12:00:00.5', '0000-03-01 00:00:00', NULL, '2001-02-03 04:05:06', '2023-02-29', '9999-12-31'),
		(3, '2024-02-30', '2024-02-29', '2024-04-31 00:00:00', '9999-12-31 23:59:59', '2038-01-19 03:14:07.999999', '1970-01-01 00:00:01', '2024-02-29', '0000-01-01'),
		(4, NULL, '1000-01-01', NULL, '1000-01-01 00:00:00', '1970-01-01 00:00:01', '0000-00-00 00:00:00', '2021-06-31', '2024-02-29')`)
	exec("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'")
	// Keys of each kind both engines order alike, which validate reads in key ranges.
	keyKinds := []struct{ name, typ, value string }{
		{"key_bigint_unsigned", "bigint unsigned", "18446744073709551615 - seq * 1000000000000"},
		{"key_decimal", "decimal(12,3)", "seq * 1.125 - 30"},
		{"key_date", "date", "'1000-01-01' + INTERVAL seq * 97 DAY"},
		{"key_datetime", "datetime(6)", "'2024-02-29 23:59:59.999999' - INTERVAL seq * 1013 MINUTE"},
		{"key_timestamp", "timestamp(3)", "from_unixtime(2147483647.999 - seq * 86399.5)"},
		{"key_varbinary", "varbinary(8)", "unhex(concat(if(seq % 2, 'ff', '00'), lpad(hex(seq), 4, '0')))"},
	}
	for _, k := range keyKinds {
		exec(fmt.Sprintf("CREATE TABLE %s (k %s NOT NULL PRIMARY KEY, n int)", k.name, k.typ))
		exec(fmt.Sprintf("INSERT INTO %s SELECT %s, seq FROM seq_1_to_1000", k.name, k.value))
	}

	dir := t.TempDir()
	writePlan := func(name, extra string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(fmt.Sprintf("source: {url: '%s'}\ntarget: {url: '%s'}\ncdc: {enabled: false}\nvalidation: {after_load: false}\nfull_load: {parallel: 4}\n%s",
			src.URL(), tgt.URL(), extra)), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	// The refused types: each column an error, by name and type, and start refuses.
	all := writePlan("all.yaml", "")
	r := run(t, dir, nil, "check", "--json", "-c", all)
	var report struct {
		Findings []struct{ Severity, Check, Object, Problem, Fix string }
		Mapping  struct {
			Tables []struct {
				Source, Target string
				Columns        []struct {
					Source     string `json:"source"`
					SourceType string `json:"source_type"`
					Target     string `json:"target"`
					TargetType string `json:"target_type"`
					Note       string `json:"note"`
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &report); err != nil || r.code != 1 {
		t.Fatalf("check with the refused types: exit %d (%v)\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	for i, typ := range refused {
		object := fmt.Sprintf("column %s.refused_%02d.v", src.Name, i)
		found := false
		for _, f := range report.Findings {
			if f.Object == object {
				found = true
				base := strings.ToLower(strings.Fields(typ)[0])
				if f.Severity != "error" || !strings.Contains(f.Problem, "type "+base+" is not carried") || f.Fix == "" {
					t.Errorf("check's finding on %s (%s): %+v", object, typ, f)
				}
				if strings.HasPrefix(base, "inet") && (strings.Contains(f.Problem, "PostGIS") || !strings.Contains(f.Fix, "VARCHAR")) {
					t.Errorf("check's finding on %s (%s) speaks of PostGIS: %s", object, typ, f.Problem)
				}
			}
		}
		if !found {
			t.Errorf("check has no finding on %s (%s)", object, typ)
		}
	}
	for _, f := range report.Findings {
		if f.Severity == "error" && !strings.Contains(f.Object, ".refused_") {
			t.Errorf("check's error on a type that is carried: %+v", f)
		}
	}

	plan := writePlan("cutover.yaml", "tables: {include: ['*.*'], exclude: ['*.refused_*']}\n")
	r = run(t, dir, nil, "check", "--json", "-c", plan)
	report.Findings, report.Mapping.Tables = nil, nil
	if err := json.Unmarshal([]byte(r.stdout), &report); err != nil || r.code != 0 {
		t.Fatalf("check: exit %d (%v)\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	mapped := map[string]string{} // table.column: target type, and its notes
	for _, tm := range report.Mapping.Tables {
		for _, c := range tm.Columns {
			mapped[strings.TrimPrefix(tm.Source, src.Name+".")+"."+c.Source] = c.TargetType + " | " + c.Note
		}
	}
	if len(report.Mapping.Tables) != len(types)+5+len(keyKinds) {
		t.Errorf("check maps %d tables, want %d", len(report.Mapping.Tables), len(types)+5+len(keyKinds))
	}
	for i, typ := range types {
		if strings.EqualFold(typ, "tinyint(1)") {
			if got := mapped[fmt.Sprintf("ty_%02d.v", i)]; !strings.HasPrefix(got, "smallint CHECK") {
				t.Errorf("tinyint(1) maps to %q, want smallint (an integer by default)", got)
			}
		}
	}
	for _, c := range []string{"d_null", "d_nn", "dt_null", "dt_nn", "ts_null", "ts_nn", "d_invalid"} {
		if got := mapped["zero_dates."+c]; !strings.Contains(got, "zero dates become NULL") {
			t.Errorf("zero_dates.%s maps as %q, want its zero dates NULL", c, got)
		}
	}

	r = run(t, dir, nil, "start", "-c", plan)
	if r.code != 0 || !strings.Contains(r.stdout, "copy complete") {
		t.Fatalf("start: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	pg := tgt.Conn(t)
	schema := strings.ToLower(src.Name)
	if _, err := pg.Exec(ctx, "SET search_path = "+schema+"; SET TimeZone = 'UTC'; SET extra_float_digits = 3"); err != nil {
		t.Fatal(err)
	}
	// NOT NULL is dropped where zero dates became NULL, and only there.
	notNull := strings.Join(pgColumn(t, pg, `SELECT attname || '=' || attnotnull FROM pg_attribute
		WHERE attrelid = 'zero_dates'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`), " ")
	if want := "id=true d_null=false d_nn=false dt_null=false dt_nn=false ts_null=false ts_nn=false d_invalid=false d_clean=true"; notNull != want {
		t.Errorf("NOT NULL on zero_dates' columns: %s, want %s", notNull, want)
	}
	// The identity goes on at the source's AUTO_INCREMENT counter, past the gap.
	var next int64
	if err := pg.QueryRow(ctx, "INSERT INTO auto_gap (v) VALUES ('new') RETURNING id").Scan(&next); err != nil || next != 101 {
		t.Errorf("a new auto_gap row on the target got the id %d (%v), want 101 (the source's counter)", next, err)
	}
	if _, err := pg.Exec(ctx, "DELETE FROM auto_gap WHERE id = $1", next); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"INSERT INTO composite_key (a, b, c) VALUES (1, 'x', 'p')", "INSERT INTO composite_key (a, b, c, email) VALUES (9, 'x', 'p', 'a@example.com')"} {
		if _, err := pg.Exec(ctx, q); err == nil || !strings.Contains(err.Error(), "duplicate key") {
			t.Errorf("%s on the target: %v, want a duplicate key", q, err)
		}
	}
	// Spot checks of what the comparisons below could read the same on both sides if
	// both servers were wrong the same way: MySQL's latin1 is Windows-1252.
	latin1 := fmt.Sprintf("ty_%02d", slices.Index(types, "VARCHAR(300) CHARACTER SET latin1"))
	if got := strings.Join(pgColumn(t, pg, `SELECT DISTINCT substr(v, 97, 3) FROM `+latin1+` WHERE length(v) = 224`), ","); got != "€\u0081‚" {
		t.Errorf("latin1 0x80 to 0x82 on the target: %q, want %q", got, "€\u0081‚")
	}

	// Every value of every table, compared.
	tables := pgColumn(t, pg, `SELECT relname FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind = 'r' ORDER BY 1`, schema)
	if len(tables) != len(types)+5+len(keyKinds) {
		t.Errorf("%d tables on the target, want %d: %v", len(tables), len(types)+5+len(keyKinds), tables)
	}
	compared, columns := 0, 0
	for _, table := range tables {
		n, cols := compareTable(t, conn, pg, src.Name, table)
		compared, columns = compared+n, columns+cols
	}
	t.Logf("%d types, %d sample values taken; %d columns and %d values compared in %d tables; %d types refused", len(types), values, columns, compared, len(tables), len(refused))

	// cutover validate: every table equal in the canonical form, the tables keyed by a
	// kind both engines order alike in chunks of 100 rows.
	text, err := os.ReadFile(plan)
	if err != nil {
		t.Fatal(err)
	}
	chunked := filepath.Join(dir, "chunked.yaml")
	if err := os.WriteFile(chunked, []byte(strings.Replace(string(text), "validation: {after_load: false}", "validation: {after_load: false, chunk_rows: 100}", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	r = run(t, dir, nil, "validate", "-c", chunked)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("%d equal", len(tables))) {
		t.Errorf("validate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, k := range keyKinds {
		if m := regexp.MustCompile(k.name + ` +validated +1000 rows, (\d+) chunks`).FindStringSubmatch(r.stdout); m == nil || m[1] == "1" {
			t.Errorf("validate read %s (a key of %s) in %v chunks, want several", k.name, k.typ, m)
		}
	}
}

// catalogColumnTypes are the server's own column types as CREATE TABLE takes them:
// every name of its help's type topics that a CREATE TABLE takes, by the type the
// server makes of it, and the variants a name alone does not give. The types that
// have no canonical form (INET4, INET6; spatial ones without PostGIS) are refused,
// apart.
func catalogColumnTypes(t *testing.T, conn *sql.Conn, spatial bool) (types, refused []string) {
	t.Helper()
	ctx := context.Background()
	rows, err := conn.QueryContext(ctx, `SELECT t.name FROM mysql.help_topic t JOIN mysql.help_category c USING (help_category_id)
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
		names = append(names, strings.TrimSuffix(strings.ReplaceAll(n, `\_`, "_"), " Data Type"))
	}
	rows.Close()
	if len(names) < 30 {
		t.Fatalf("the server's help lists %d type topics: are its help tables filled (mariadb-install-db)?", len(names))
	}
	for _, b := range []string{"TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT", "DECIMAL(65,30)", "FLOAT", "DOUBLE"} {
		names = append(names, b+" UNSIGNED")
	}
	labels := make([]string, 64)
	for i := range labels {
		labels[i] = fmt.Sprintf("'m%d'", i)
	}
	names = append(names, "TINYINT(1)", "DECIMAL(65,30)", "DECIMAL(65,0)", "DECIMAL(10,2)", "DECIMAL(38,38)", "FLOAT(7,3)", "DOUBLE(20,5)",
		"BIT(1)", "BIT(7)", "BIT(64)", "DATETIME(6)", "DATETIME(3)", "TIME(6)", "TIME(3)", "TIMESTAMP(6)", "TIMESTAMP",
		"CHAR(10)", "CHAR(255)", "VARCHAR(20)", "BINARY(4)", "BINARY(255)", "VARBINARY(300)",
		"VARCHAR(300) CHARACTER SET latin1", "CHAR(10) CHARACTER SET latin1", "TEXT CHARACTER SET latin1", "VARCHAR(20) COLLATE utf8mb4_bin",
		"CHAR(5) CHARACTER SET ascii", "ENUM('x','y','')", "ENUM('x','y')", "SET('x','y','z')", "SET("+strings.Join(labels, ",")+")",
		"JSON", "UUID", "INET4", "INET6", "YEAR",
		"POINT", "GEOMETRY", "LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING", "MULTIPOLYGON", "GEOMETRYCOLLECTION")
	seen := map[string]bool{}
	for i, n := range names {
		if strings.ContainsAny(n, " ,") && !strings.ContainsAny(n, "()") && !strings.HasSuffix(n, "UNSIGNED") {
			continue // a topic, not a type
		}
		probe := fmt.Sprintf("probe_%d", i)
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("CREATE TABLE %s (v %s)", probe, n)); err != nil {
			continue
		}
		var dataType, columnType, charset string
		err := conn.QueryRowContext(ctx, `SELECT DATA_TYPE, COLUMN_TYPE, coalesce(CHARACTER_SET_NAME, '') FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`, probe).Scan(&dataType, &columnType, &charset)
		if _, derr := conn.ExecContext(ctx, "DROP TABLE "+probe); derr != nil {
			t.Fatal(derr)
		}
		if err != nil {
			t.Fatal(err)
		}
		def := columnType
		if strings.Contains(n, "CHARACTER SET") || strings.Contains(n, "COLLATE") {
			def = n
		}
		if strings.EqualFold(dataType, "timestamp") {
			def += " NULL"
		}
		if seen[strings.ToLower(def)] {
			continue
		}
		seen[strings.ToLower(def)] = true
		switch strings.ToLower(dataType) {
		case "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection":
			if spatial {
				types = append(types, def)
			} else {
				refused = append(refused, def)
			}
		case "inet4", "inet6":
			refused = append(refused, def)
		default:
			types = append(types, def)
		}
	}
	if len(types) < 40 || len(refused) < 2 {
		t.Fatalf("%d types and %d refused ones: %v %v", len(types), len(refused), types, refused)
	}
	return types, refused
}

func sqlQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(s) + "'"
}

// typeSamples are the values tried in a column of typ (SQL literals): those it takes
// in strict mode are its rows. Strings with a NUL are for binary types only
// (PostgreSQL's text refuses NUL: cutover refuses the row, as it should).
func typeSamples(typ string) []string {
	samples := []string{
		// integers: every width's signed minimum and maximum, unsigned maximum
		"0", "1", "2", "-1", "127", "-128", "255", "32767", "-32768", "65535", "8388607", "-8388608", "16777215",
		"2147483647", "-2147483648", "4294967295", "9223372036854775807", "-9223372036854775808", "18446744073709551615",
		// decimals and floats
		"99999999999999999999999999999999999.999999999999999999999999999999", "-99999999999999999999999999999999999.999999999999999999999999999999",
		"0.000000000000000000000000000001", "-0.000000000000000000000000000001", "0.99999999999999999999999999999999999999",
		"-1.5", "12345.675", "99999999.99", "-99999999.99",
		"0.1", "-0e0", "-0.0e0", "1e308", "1.7976931348623157e308", "-1.7976931348623157e308", "2.2250738585072014e-308",
		"4.9e-324", "1e-320", "1.401298464324817e-45", "1e-40", "1.1754943508222875e-38", "3.4028234663852886e38", "-3.4028234663852886e38",
		"0.30000000000000004", "1e-7", "123456789.123456789", "12345678.125", "1234.5678",
		// dates and times
		"'1000-01-01'", "'9999-12-31'", "'2024-02-29'", "'0000-01-01'", "'0000-03-01'", "'0001-01-01'", "'1582-10-10'",
		"'1000-01-01 00:00:00'", "'9999-12-31 23:59:59.999999'", "'2024-02-29 23:59:59.999999'", "'0000-01-01 00:00:00'",
		"'1970-01-01 00:00:01'", "'2038-01-19 03:14:07.999999'", "'2001-02-03 04:05:06.5'",
		"'838:59:59'", "'-838:59:59'", "'838:59:59.999999'", "'-838:59:59.999999'", "'00:00:00.5'", "'-00:00:00.5'", "'-00:00:01'",
		"'12:34:56.123456'", "'24:00:00'", "'100:00:00.000001'",
		"'0000'", "1901", "2155", "'2000'",
		// strings: trailing spaces, 4-byte UTF-8, escapes
		"''", "'a'", "'A'", "'a '", "'trail   '", "' a'", "'é'", "'😀'", "'𝄞 clef 𠜎 and 😀'", "'tab\\there'", "'line\\nbreak\\rreturn'",
		"'back\\\\slash'", "'\\\\N'", "'quote''s \"double\"'", "'x'", "'y'", "'z'", "'x,y'", "'x,z'", "'x,y,z'", "'m0'", "'m63'", "'m0,m31,m62,m63'",
		// every latin1 byte from 0x20 (MySQL's latin1 is Windows-1252)
		"_latin1 x'" + byteRange(0x20, 0xff) + "'", "_latin1 x'e9ff'", "_binary x'80'",
		// bits
		"b'1'", "b'1010'", "b'1111111'", "x'FFFFFFFFFFFFFFFF'",
		// JSON
		`'{"a": 1.0, "b": [1, 2.50, "x"], "c": null}'`, `'{"n": 12345678901234567890, "f": 1e-7, "g": -0.0}'`,
		`'{"d": 1.7976931348623157e308, "e": 5e-324, "big": 123456789012345678901234567890.123456789012345678901234567890}'`,
		`'{"nested": {"x": {"y": [1, {"z": "\\u00e9\\ud83d\\ude00 \\u20ac"}]}, "": {}}, "esc": "tab\\t \\"q\\" \\\\ \\/ \\u0001"}'`,
		`'[]'`, `'null'`, `'"a string"'`, `'-12.5e3'`, `'true'`, `'{"😀": "é"}'`,
		// UUID
		"'123e4567-e89b-12d3-a456-426614174000'", "'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF'", "'00000000-0000-0000-0000-000000000000'",
	}
	lower := strings.ToLower(typ)
	if spatialType(lower) {
		// each kind in SRID 0 and 4326, a hole, extremes and -0, empty collections: a
		// column takes its own kind (GEOMETRY every one)
		return []string{"ST_GeomFromText('POINT(1 2)')", "ST_GeomFromText('POINT(-0 1e308)', 4326)", "ST_GeomFromText('POINT(2.2945 48.8584)', 4326)",
			"ST_GeomFromText('POINT(-1.7976931348623157e308 4.9e-324)')",
			"ST_GeomFromText('LINESTRING(0 0, 1 1, 2 0.5)')", "ST_GeomFromText('LINESTRING(0 0, 1 1)', 3857)",
			"ST_GeomFromText('POLYGON((0 0, 10 0, 10 10, 0 10, 0 0), (2 2, 3 2, 3 3, 2 2))')", "ST_GeomFromText('POLYGON((0 0, 1 0, 1 1, 0 0))', 4326)",
			"ST_GeomFromText('MULTIPOINT(0 0, 1 1)')", "ST_GeomFromText('MULTIPOINT(-0 0.5)', 4326)",
			"ST_GeomFromText('MULTILINESTRING((0 0, 1 1), (2 2, 3 3))', 4326)", "ST_GeomFromText('MULTILINESTRING((0 0, 1e-300 1))')",
			"ST_GeomFromText('MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))')", "ST_GeomFromText('MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)))', 3857)",
			"ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 2), LINESTRING(0 0, 1 1))', 4326)", "ST_GeomFromText('GEOMETRYCOLLECTION EMPTY')"}
	}
	if strings.HasPrefix(lower, "enum") {
		// a number that is 0 (0, -0e0, 0.1, '0000'...) is the ENUM's error value, which
		// MariaDB stores even in strict mode: cutover refuses the row (toCanonical), as
		// it should. Labels and their indexes only.
		samples = append(slices.DeleteFunc(samples, func(s string) bool { return !strings.HasPrefix(s, "'") || s == "'0000'" }), "1", "2", "3")
	}
	if strings.Contains(lower, "ascii") {
		// MariaDB stores the byte 0x80 in an ascii column, which is no character:
		// cutover refuses the row (toCanonical), as it should
		samples = slices.DeleteFunc(samples, func(s string) bool { return s == "_binary x'80'" })
	}
	if strings.Contains(lower, "binary") || strings.Contains(lower, "blob") || strings.HasPrefix(lower, "bit") {
		samples = append(samples, "b'0'", "x'8000000000000001'")
	}
	if strings.Contains(lower, "binary") || strings.Contains(lower, "blob") {
		// every byte value, in one value and alone
		samples = append(samples, "x'"+byteRange(0, 0xff)+"'", "x'"+byteRange(1, 0xff)+"'", "x'00'", "x'0000ff00'", "x'ff'", "x'00000000'")
	}
	return samples
}

// byteRange is the hex of the bytes from lo to hi.
func byteRange(lo, hi int) string {
	var b []byte
	for c := lo; c <= hi; c++ {
		b = append(b, byte(c))
	}
	return hex.EncodeToString(b)
}

// column is a source column, as the comparison reads it.
type column struct {
	name, dataType, columnType string
	precision                  int
}

// compareExprs are the expressions that read a column as the same text on both sides
// when the value crossed right; float is 32 or 64 for a float, compared by its bits
// in Go (read as numbers, over MySQL's binary protocol), json a JSON text, compared
// by its meaning in Go.
func compareExprs(c column) (my, pg string, float int, isJSON bool) {
	q, p := "`"+c.name+"`", pgx.Identifier{c.name}.Sanitize()
	// a zero date, or a day the month does not have, is NULL on the target
	notDate := fmt.Sprintf("(month(%[1]s) = 0 OR dayofmonth(%[1]s) = 0 OR dayofmonth(%[1]s) > "+
		"elt(month(%[1]s), 31, if(year(%[1]s) %% 4 = 0 AND (year(%[1]s) %% 100 <> 0 OR year(%[1]s) %% 400 = 0), 29, 28), 31, 30, 31, 30, 31, 31, 30, 31, 30, 31))", q)
	// MySQL's year 0 is PostgreSQL's 1 BC; the day number (TO_DAYS: 0001-01-01 is
	// day 366, MySQL's year 0 having 365 days where PostgreSQL's 1 BC has 366) for
	// the years from 1
	myDays := fmt.Sprintf("if(year(%[1]s) = 0, '', to_days(%[1]s))", q)
	pgDate := fmt.Sprintf("CASE WHEN %[1]s < '0001-01-01' THEN '0000' || to_char(%[1]s, '-MM-DD') || ' ' "+
		"ELSE to_char(%[1]s, 'YYYY-MM-DD') || ' ' || (%[1]s::date - date '0001-01-01' + 366)::text END", p)
	switch c.dataType {
	case "tinyint", "smallint", "mediumint", "int", "bigint", "decimal":
		return "CAST(" + q + " AS CHAR)", p + "::text", 0, false
	case "year":
		return q + " + 0", p + "::text", 0, false
	case "float":
		return q, p, 32, false
	case "double":
		return q, p, 64, false
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
		return "hex(CONVERT(" + q + " USING utf8mb4))", "upper(encode(convert_to(" + p + ", 'UTF8'), 'hex'))", 0, false
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		return "hex(" + q + ")", "upper(encode(" + p + ", 'hex'))", 0, false
	case "enum":
		return "concat(" + q + " + 0, ':', hex(" + q + "))",
			"array_position(enum_range(" + p + "), " + p + ")::text || ':' || upper(encode(convert_to(" + p + "::text, 'UTF8'), 'hex'))", 0, false
	case "set":
		return "hex(" + q + ")", "upper(encode(convert_to(array_to_string(" + p + ", ','), 'UTF8'), 'hex'))", 0, false
	case "json", "longtext_json":
		return q, p + "::text", 0, true
	case "bit":
		return fmt.Sprintf("lpad(bin(%s + 0), %d, '0')", q, c.precision), p + "::text", 0, false
	case "date":
		return fmt.Sprintf("if(%s, NULL, concat(date_format(%s, '%%Y-%%m-%%d'), ' ', %s))", notDate, q, myDays), pgDate, 0, false
	case "datetime", "timestamp":
		return fmt.Sprintf("if(%s, NULL, concat(date_format(%s, '%%Y-%%m-%%d %%H:%%i:%%s.%%f'), ' ', %s))", notDate, q, myDays),
			strings.ReplaceAll(strings.ReplaceAll(pgDate, "'-MM-DD'", "'-MM-DD HH24:MI:SS.US'"), "'YYYY-MM-DD'", "'YYYY-MM-DD HH24:MI:SS.US'"), 0, false
	case "time":
		// the duration in microseconds
		return fmt.Sprintf("concat(if(%[1]s < 0, '-', ''), (hour(%[1]s) * 3600 + minute(%[1]s) * 60 + second(%[1]s)) * 1000000 + microsecond(%[1]s))", q),
			fmt.Sprintf("(extract(epoch from %[1]s) * 1000000)::numeric(20,0)::text || CASE WHEN extract(day from %[1]s) <> 0 OR extract(month from %[1]s) <> 0 THEN ' (days or months)' ELSE '' END", p), 0, false
	case "uuid":
		return "CAST(" + q + " AS CHAR)", p + "::text", 0, false
	}
	if spatialType(c.dataType) {
		// each server's own SRID and WKB
		return "concat(ST_SRID(" + q + "), ':', lower(hex(ST_AsWKB(" + q + "))))", "public.ST_SRID(" + p + ") || ':' || encode(public.ST_AsBinary(" + p + ", 'NDR'), 'hex')", 0, false
	}
	return "", "", 0, false
}

// spatialType says whether a MySQL type (lower case) is a spatial one.
func spatialType(typ string) bool {
	switch strings.Fields(typ + " ")[0] {
	case "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection":
		return true
	}
	return false
}

// compareTable compares every value of a table on both sides, as sets of rows:
// the number of values and of columns compared.
func compareTable(t *testing.T, conn *sql.Conn, pg *pgx.Conn, db, table string) (int, int) {
	t.Helper()
	ctx := context.Background()
	rows, err := conn.QueryContext(ctx, `SELECT c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, coalesce(c.NUMERIC_PRECISION, 0),
			EXISTS (SELECT 1 FROM information_schema.CHECK_CONSTRAINTS k WHERE k.CONSTRAINT_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME
				AND k.CHECK_CLAUSE = concat('json_valid(', char(96), c.COLUMN_NAME, char(96), ')'))
		FROM information_schema.COLUMNS c WHERE c.TABLE_SCHEMA = ? AND c.TABLE_NAME = ? ORDER BY c.ORDINAL_POSITION`, db, table)
	if err != nil {
		t.Fatal(err)
	}
	var myExprs, pgExprs []string
	var floats []int
	var jsons []bool
	var cols []column
	for rows.Next() {
		var c column
		var isJSON bool
		if err := rows.Scan(&c.name, &c.dataType, &c.columnType, &c.precision, &isJSON); err != nil {
			t.Fatal(err)
		}
		c.dataType = strings.ToLower(c.dataType)
		if isJSON && c.dataType == "longtext" {
			c.dataType = "json" // MariaDB's JSON
		}
		my, p, f, j := compareExprs(c)
		if my == "" {
			t.Errorf("table %s, column %s: no comparison for the type %s", table, c.name, c.columnType)
			continue
		}
		cols = append(cols, c)
		myExprs, pgExprs, floats, jsons = append(myExprs, my), append(pgExprs, p), append(floats, f), append(jsons, j)
	}
	rows.Close()
	if len(cols) == 0 {
		t.Errorf("table %s: not on the source", table)
		return 0, 0
	}
	// the source over the binary protocol (a parameter): floats as their bits
	myRows, err := conn.QueryContext(ctx, "SELECT "+strings.Join(myExprs, ", ")+" FROM `"+table+"` WHERE 1 = ?", 1)
	if err != nil {
		t.Fatalf("table %s: %v", table, err)
	}
	var want [][]string
	for myRows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := myRows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		want = append(want, cells(t, vals, floats, jsons))
	}
	if err := myRows.Err(); err != nil {
		t.Fatal(err)
	}
	myRows.Close()
	pgr, err := pg.Query(ctx, "SELECT "+strings.Join(pgExprs, ", ")+" FROM "+pgx.Identifier{table}.Sanitize())
	if err != nil {
		t.Fatalf("table %s: %v", table, err)
	}
	var got [][]string
	for pgr.Next() {
		vals, err := pgr.Values()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, cells(t, vals, floats, jsons))
	}
	if err := pgr.Err(); err != nil {
		t.Fatalf("table %s: %v", table, err)
	}
	sortRows(want)
	sortRows(got)
	if len(got) != len(want) {
		t.Errorf("table %s: %d rows on the target, %d on the source", table, len(got), len(want))
		return 0, len(cols)
	}
	bad := 0
	for i := range want {
		for j := range want[i] {
			if want[i][j] != got[i][j] {
				if bad++; bad <= 5 {
					t.Errorf("table %s (%s), column %s: source %s, target %s", table, cols[min(j, len(cols)-1)].columnType, cols[j].name, shorten(want[i][j]), shorten(got[i][j]))
				}
			}
		}
	}
	return len(want) * len(cols), len(cols)
}

const nullCell = "\x00NULL"

// cells writes a row's values as text: NULL apart, floats by their bits, JSON by its
// meaning.
func cells(t *testing.T, vals []any, floats []int, jsons []bool) []string {
	t.Helper()
	out := make([]string, len(vals))
	for i, v := range vals {
		if v == nil {
			out[i] = nullCell
			continue
		}
		switch floats[i] {
		case 32:
			f, ok := v.(float32)
			if !ok {
				t.Fatalf("a FLOAT read as %T %v", v, v)
			}
			out[i] = fmt.Sprintf("float32 %08x (%v)", math.Float32bits(f), f)
			continue
		case 64:
			f, ok := v.(float64)
			if !ok {
				t.Fatalf("a DOUBLE read as %T %v", v, v)
			}
			out[i] = fmt.Sprintf("float64 %016x (%v)", math.Float64bits(f), f)
			continue
		}
		var s string
		switch v := v.(type) {
		case []byte:
			s = string(v)
		case string:
			s = v
		default:
			s = fmt.Sprint(v)
		}
		if jsons[i] {
			s = jsonMeaning(t, s)
		}
		out[i] = s
	}
	return out
}

// jsonMeaning writes a JSON text in one spelling per meaning: keys sorted (the last
// of duplicates kept), numbers as exact fractions, strings as their characters.
func jsonMeaning(t *testing.T, s string) string {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return "not JSON: " + s
	}
	var b strings.Builder
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			b.WriteString("{")
			for _, k := range keys {
				fmt.Fprintf(&b, "%q:", k)
				walk(v[k])
				b.WriteString(",")
			}
			b.WriteString("}")
		case []any:
			b.WriteString("[")
			for _, e := range v {
				walk(e)
				b.WriteString(",")
			}
			b.WriteString("]")
		case json.Number:
			r, ok := new(big.Rat).SetString(string(v))
			if !ok {
				fmt.Fprintf(&b, "bad number %s", v)
				return
			}
			b.WriteString("n" + r.RatString())
		case string:
			fmt.Fprintf(&b, "%+q", v)
		default:
			fmt.Fprint(&b, v)
		}
	}
	walk(v)
	return b.String()
}

func sortRows(rows [][]string) {
	slices.SortFunc(rows, func(a, b []string) int {
		return bytes.Compare([]byte(strings.Join(a, "\x01")), []byte(strings.Join(b, "\x01")))
	})
}

func shorten(s string) string {
	if s == nullCell {
		return "NULL"
	}
	if len(s) > 120 {
		return fmt.Sprintf("%q... (%d bytes)", s[:120], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// pgColumn is a query's first column, as text.
func pgColumn(t *testing.T, conn *pgx.Conn, query string, args ...any) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
