package mysql

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	driver "github.com/go-sql-driver/mysql"

	"github.com/cutover-dev/cutover/mytest"
)

// splitScript splits a SQL script as the mariadb client does: at the current
// delimiter (DELIMITER lines change it), outside strings, names and comments; the
// -- and # comments are left out, /* */ ones (MySQL's /*!NNNNN ... */ are code) kept.
func splitScript(text string) []string {
	var stmts []string
	var cur strings.Builder
	delim := ";"
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			stmts = append(stmts, s)
		}
		cur.Reset()
	}
	for i := 0; i < len(text); {
		if strings.TrimSpace(cur.String()) == "" && (i == 0 || text[i-1] == '\n') {
			line, _, _ := strings.Cut(text[i:], "\n")
			if f := strings.Fields(line); len(f) == 2 && strings.EqualFold(f[0], "DELIMITER") {
				delim = f[1]
				i += len(line) + 1
				continue
			}
		}
		rest := text[i:]
		switch {
		case strings.HasPrefix(rest, delim):
			flush()
			i += len(delim)
		case strings.HasPrefix(rest, "-- ") || strings.HasPrefix(rest, "--\n") || rest[0] == '#':
			line, _, _ := strings.Cut(rest, "\n")
			i += len(line)
		case strings.HasPrefix(rest, "/*"):
			end := strings.Index(rest[2:], "*/")
			if end < 0 {
				end = len(rest) - 4
			}
			cur.WriteString(rest[:end+4])
			i += end + 4
		case rest[0] == '\'' || rest[0] == '"' || rest[0] == '`':
			q := rest[0]
			j := 1
			for j < len(rest) && rest[j] != q {
				if rest[j] == '\\' && q != '`' {
					j++
				}
				j++
			}
			j = min(j+1, len(rest))
			cur.WriteString(rest[:j])
			i += j
		default:
			cur.WriteByte(rest[0])
			i++
		}
	}
	flush()
	return stmts
}

var (
	definer       = regexp.MustCompile("DEFINER=`(?:[^`]|``)*`@`(?:[^`]|``)*` ")
	otherDatabase = regexp.MustCompile(`(?i)^(USE|CREATE SCHEMA|DROP SCHEMA|CREATE DATABASE|DROP DATABASE)\b`)
	sakilaPrefix  = regexp.MustCompile(`\bsakila\.`)
)

// loadScript runs a script of testdata in the test's database: the statements that
// choose, create or drop a database are left out, and the names it qualifies with
// sakila are qualified with the test's database.
func loadScript(t *testing.T, db *mytest.DB, path string) {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, ".gz") { // the data file, kept small in git
		zr, err := gzip.NewReader(bytes.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		if text, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	conn, err := db.Open(t).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, stmt := range splitScript(string(text)) {
		if otherDatabase.MatchString(stmt) {
			continue
		}
		if !strings.HasPrefix(strings.ToUpper(stmt), "INSERT") {
			stmt = sakilaPrefix.ReplaceAllString(stmt, quote(db.Name)+".")
		}
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			var me *driver.MySQLError
			if errors.As(err, &me) && me.Number == 1065 { // only a comment the server skips
				continue
			}
			t.Fatalf("%s: %.200s", err, stmt)
		}
	}
}

// readAt reads the schema of the source's tables in a read view of a snapshot.
func readAt(t *testing.T, src *sql.DB, source string, tables []string) *schema {
	t.Helper()
	ctx := context.Background()
	snap, err := TakeSnapshot(ctx, src, true, SnapshotOptions{Workers: 1}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	view, err := snap.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release(view)
	var names []tableName
	for _, n := range tables {
		names = append(names, tableName{source, n})
	}
	var before, after string
	if err := view.QueryRowContext(ctx, "SELECT @@SESSION.sql_mode").Scan(&before); err != nil {
		t.Fatal(err)
	}
	s, err := readSchema(ctx, view, source, names)
	if err != nil {
		t.Fatal(err)
	}
	if err := view.QueryRowContext(ctx, "SELECT @@SESSION.sql_mode").Scan(&after); err != nil || after != before {
		t.Errorf("the read view's sql_mode was %q, is %q after readSchema (%v)", before, after, err)
	}
	return s
}

// column is a query's rows, each as one string, NULL as NULL, the database's name
// as <db>, sorted.
func dump(t *testing.T, db *sql.DB, name, query string, args ...any) []string {
	t.Helper()
	ctx := context.Background()
	conn := bytesConn(t, db)
	defer discard(conn)
	rows, err := conn.QueryContext(ctx, query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(cols))
		for i, v := range vals {
			parts[i] = "NULL"
			if v != nil {
				parts[i] = fmt.Sprintf("%q", v)
			}
		}
		out = append(out, strings.ReplaceAll(strings.Join(parts, " | "), name, "<db>"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// catalog is what information_schema says of a database's tables, keys, constraints,
// partitions and views, its own name as <db>: compared between the source and the
// target, independently of SHOW CREATE TABLE.
func catalog(t *testing.T, db *sql.DB, name string) map[string][]string {
	t.Helper()
	queries := map[string]string{
		"TABLES": `SELECT TABLE_NAME, TABLE_TYPE, ENGINE, ROW_FORMAT, TABLE_COLLATION, CREATE_OPTIONS, TABLE_COMMENT, AUTO_INCREMENT
			FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?`,
		"COLUMNS": `SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_DEFAULT, IS_NULLABLE, COLUMN_TYPE, CHARACTER_SET_NAME,
			COLLATION_NAME, COLUMN_KEY, EXTRA, COLUMN_COMMENT, IS_GENERATED, GENERATION_EXPRESSION FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ?`,
		"STATISTICS": `SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART, INDEX_TYPE, NULLABLE, INDEX_COMMENT
			FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ?`,
		"KEY_COLUMN_USAGE": `SELECT CONSTRAINT_NAME, TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, POSITION_IN_UNIQUE_CONSTRAINT, REFERENCED_TABLE_SCHEMA,
			REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ?`,
		"REFERENTIAL_CONSTRAINTS": `SELECT CONSTRAINT_NAME, TABLE_NAME, UNIQUE_CONSTRAINT_SCHEMA, UNIQUE_CONSTRAINT_NAME, REFERENCED_TABLE_NAME,
			MATCH_OPTION, UPDATE_RULE, DELETE_RULE FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?`,
		"TABLE_CONSTRAINTS": `SELECT CONSTRAINT_NAME, TABLE_NAME, CONSTRAINT_TYPE FROM information_schema.TABLE_CONSTRAINTS WHERE TABLE_SCHEMA = ?`,
		"CHECK_CONSTRAINTS": `SELECT TABLE_NAME, CONSTRAINT_NAME, LEVEL, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?`,
		"PARTITIONS": `SELECT TABLE_NAME, PARTITION_NAME, PARTITION_ORDINAL_POSITION, PARTITION_METHOD, PARTITION_EXPRESSION, PARTITION_DESCRIPTION
			FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = ?`,
		"VIEWS": `SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, IS_UPDATABLE, SECURITY_TYPE, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, ALGORITHM
			FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?`,
	}
	out := map[string][]string{}
	for view, q := range queries {
		out[view] = dump(t, db, name, q, name)
	}
	return out
}

// definitions are SHOW CREATE TABLE of the tables and SHOW CREATE VIEW of the views
// (without DEFINER, names of the database as <db>).
func definitions(t *testing.T, db *sql.DB, name string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range dump(t, db, name, "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", name) {
		var table, typ string
		if _, err := fmt.Sscanf(r, "%q | %q", &table, &typ); err != nil {
			t.Fatal(err)
		}
		show := "SHOW CREATE TABLE "
		if typ == "VIEW" {
			show = "SHOW CREATE VIEW "
		}
		rows := dump(t, db, name, show+tableName{name, table}.quoted())
		out[table] = definer.ReplaceAllString(rows[0], "")
	}
	return out
}

// routinesAndEvents are a database's routines and events by SHOW CREATE, without
// DEFINER, its name as <db>; source: each event as the load creates it from the
// source's (disabled).
func routinesAndEvents(t *testing.T, db *sql.DB, name string, source bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range dump(t, db, name, `SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?
		UNION ALL SELECT 'EVENT', EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?`, name, name) {
		var kind, object string
		if _, err := fmt.Sscanf(r, "%q | %q", &kind, &object); err != nil {
			t.Fatal(err)
		}
		conn := bytesConn(t, db)
		row, ok, err := namedRow(context.Background(), conn, "SHOW CREATE "+kind+" "+tableName{name, object}.quoted())
		discard(conn)
		if err != nil || !ok {
			t.Fatalf("SHOW CREATE %s %s: %v", kind, object, err)
		}
		def := withoutDefinerClause(strings.ReplaceAll(row["Create "+kind[:1]+strings.ToLower(kind[1:])], name, "<db>"))
		if def == "" {
			t.Fatalf("SHOW CREATE %s %s: no definition in %q", kind, object, row)
		}
		if kind == "EVENT" && source {
			if def, err = disabledEvent(def); err != nil {
				t.Fatal(err)
			}
		}
		out[kind+" "+object] = def
	}
	return out
}

// compareSides fails the test where the target's tables and views differ from the
// source's, by SHOW CREATE and by information_schema.
func compareSides(t *testing.T, src, tgt *sql.DB, source, target string) {
	t.Helper()
	a, b := definitions(t, src, source), definitions(t, tgt, target)
	for name, def := range a {
		if b[name] != def {
			t.Errorf("%s differs:\nsource %s\ntarget %s", name, def, b[name])
		}
	}
	if len(a) != len(b) {
		t.Errorf("the source has %d tables and views, the target %d", len(a), len(b))
	}
	ca, cb := catalog(t, src, source), catalog(t, tgt, target)
	for view, rows := range ca {
		if !slices.Equal(rows, cb[view]) {
			for _, r := range rows {
				if !slices.Contains(cb[view], r) {
					t.Errorf("information_schema.%s: the target lacks %s", view, r)
				}
			}
			for _, r := range cb[view] {
				if !slices.Contains(rows, r) {
					t.Errorf("information_schema.%s: the target has %s, the source not", view, r)
				}
			}
		}
	}
}

// compareViewRows fails the test where a view selects other rows on the target.
func compareViewRows(t *testing.T, src, tgt *sql.DB, source, target string, views []objectDef) {
	t.Helper()
	for _, v := range views {
		a := dump(t, src, source, "SELECT * FROM "+tableName{source, v.name}.quoted())
		b := dump(t, tgt, target, "SELECT * FROM "+tableName{target, v.name}.quoted())
		if !slices.Equal(a, b) {
			t.Errorf("view %s: %d rows on the source, %d on the target, or other rows", v.name, len(a), len(b))
		}
		if len(a) == 0 {
			t.Errorf("view %s selects no rows on the source: the test compares nothing", v.name)
		}
	}
}

// preData fails the test where the target has, after createTables, other indexes
// than want (table -> index names) or any foreign key.
func preData(t *testing.T, tgt *sql.DB, target string, want map[string][]string) {
	t.Helper()
	got := map[string][]string{}
	for _, r := range dump(t, tgt, target, `SELECT DISTINCT TABLE_NAME, INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ?`, target) {
		var table, index string
		if _, err := fmt.Sscanf(r, "%q | %q", &table, &index); err != nil {
			t.Fatal(err)
		}
		got[table] = append(got[table], index)
	}
	for table, indexes := range want {
		slices.Sort(indexes)
		slices.Sort(got[table])
		if !slices.Equal(got[table], indexes) {
			t.Errorf("table %s before the rows: indexes %q, want %q", table, got[table], indexes)
		}
	}
	if fks := dump(t, tgt, target, "SELECT CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?", target); len(fks) > 0 {
		t.Errorf("foreign keys before the rows: %q", fks)
	}
}

// loadAndBuild runs the full load's schema and rows: the tables, the rows (the copy's
// halves), the indexes, foreign keys and views.
func loadAndBuild(t *testing.T, s *schema, src, tgt *sql.DB, source, target string, tables []string, beforeRows func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := tgt.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer discard(conn)
	if err := s.createTables(ctx, conn, target); err != nil {
		t.Fatal(err)
	}
	beforeRows()
	if _, err := copyAll(src, tgt, source, target, tables, nil, t.Logf); err != nil {
		t.Fatal(err)
	}
	if err := s.buildObjects(ctx, conn, target); err != nil {
		t.Fatal(err)
	}
}

// build runs buildObjects on a connection of its own.
func build(s *schema, tgt *sql.DB, target string) error {
	ctx := context.Background()
	conn, err := tgt.Conn(ctx)
	if err != nil {
		return err
	}
	defer discard(conn)
	return s.buildObjects(ctx, conn, target)
}

// baseTables lists a database's base tables.
func baseTables(t *testing.T, db *sql.DB, name string) []string {
	t.Helper()
	var tables []string
	for _, r := range dump(t, db, name, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'", name) {
		var n string
		if _, err := fmt.Sscanf(r, "%q", &n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	return tables
}

func mentions(lines []string, kind, name string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, kind+" "+quote(name)) {
			return true
		}
	}
	return false
}

// Sakila, loaded from Oracle's files, comes out on the target the same by SHOW CREATE
// and information_schema: its tables (created with their primary keys alone, the
// rows copied, then the 22 foreign keys and the indexes, FULLTEXT among them), and
// its 7 views, which select the same rows; its 6 triggers and 6 routines are
// reported. A second build changes nothing.
func TestSchemaSakila(t *testing.T) {
	srcDB, tgtDB := mytest.NewDB(t, mytest.Source(t)), mytest.NewDB(t, mytest.Target(t))
	src, tgt := srcDB.Open(t), tgtDB.Open(t)
	dir, err := mytest.SakilaDir()
	if err != nil {
		t.Fatal(err)
	}
	loadScript(t, srcDB, filepath.Join(dir, "sakila-schema.sql"))
	loadScript(t, srcDB, filepath.Join(dir, "sakila-data.sql.gz"))
	tables := baseTables(t, src, srcDB.Name)
	if len(tables) != 16 {
		t.Fatalf("sakila loaded %d tables, want 16: %q", len(tables), tables)
	}
	s := readAt(t, src, srcDB.Name, tables)
	fks := 0
	for _, td := range s.tables {
		fks += len(td.foreignKeys)
	}
	if fks != 22 || len(s.views) != 7 || len(s.triggers) != 6 || len(s.routines) != 6 || len(s.events) != 0 {
		t.Errorf("read %d foreign keys, %d views, %d triggers, %d routines, %d events; sakila has 22, 7, 6, 6, 0",
			fks, len(s.views), len(s.triggers), len(s.routines), len(s.events))
	}
	want := map[string][]string{}
	for _, n := range tables {
		want[n] = []string{"PRIMARY"}
	}
	loadAndBuild(t, s, src, tgt, srcDB.Name, tgtDB.Name, tables, func() { preData(t, tgt, tgtDB.Name, want) })
	compareSides(t, src, tgt, srcDB.Name, tgtDB.Name)
	compareViewRows(t, src, tgt, srcDB.Name, tgtDB.Name, s.views)

	report := s.notCarried()
	for _, tr := range []string{"ins_film", "upd_film", "del_film", "customer_create_date", "payment_date", "rental_date"} {
		if !mentions(report, "trigger", tr) {
			t.Errorf("the report does not name the trigger %s: %q", tr, report)
		}
	}
	for _, r := range []string{"procedure rewards_report", "procedure film_in_stock", "procedure film_not_in_stock",
		"function get_customer_balance", "function inventory_held_by_customer", "function inventory_in_stock"} {
		kind, name, _ := strings.Cut(r, " ")
		if !mentions(report, kind, name) {
			t.Errorf("the report does not name the %s: %q", r, report)
		}
	}
	for _, v := range s.views {
		if !mentions(report, "view", v.name) {
			t.Errorf("the report does not say who defines the view %s: %q", v.name, report)
		}
	}
	t.Logf("report:\n%s", strings.Join(report, "\n"))
	// The routines, created on the target as on the source (but their DEFINER).
	a, b := routinesAndEvents(t, src, srcDB.Name, true), routinesAndEvents(t, tgt, tgtDB.Name, false)
	if len(a) != 6 || !maps(a, b) {
		t.Errorf("routines:\nsource %q\ntarget %q", a, b)
	}

	before := definitions(t, tgt, tgtDB.Name)
	if err := build(s, tgt, tgtDB.Name); err != nil {
		t.Fatalf("a second build: %v", err)
	}
	if after := definitions(t, tgt, tgtDB.Name); !maps(before, after) {
		t.Errorf("a second build changed the target")
	}
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// shapes are tables and views made to be hard to carry: names with backquotes,
// spaces and non-ASCII letters; a composite foreign key (ON DELETE SET NULL) to
// columns in latin1_bin, one to a UNIQUE secondary key, one to the table itself, one
// to another database; a keyless table with UNIQUE NOT NULL keys; an AUTO_INCREMENT
// column second in the primary key; generated, invisible, binary-defaulted columns,
// CHECK constraints, a table option or three; FULLTEXT (two on a table) and SPATIAL
// indexes; RANGE partitions; views over views (named so that the one over sorts
// first), WITH CHECK OPTION, SQL SECURITY INVOKER, one in a latin1 connection.
const shapes = "CREATE TABLE `pa``rent tåble 表` (" + `
  a int NOT NULL, b varchar(20) CHARACTER SET latin1 COLLATE latin1_bin NOT NULL,
  note varchar(50) COMMENT 'prénom «x» \'q\'',
  code char(3) CHARACTER SET ascii NOT NULL,
  PRIMARY KEY (a, b), UNIQUE KEY ` + "`by code`" + ` (code)
) COMMENT='table ''quoted'' é';
CREATE TABLE child (
  id int AUTO_INCREMENT PRIMARY KEY,
  a int, b varchar(20) CHARACTER SET latin1 COLLATE latin1_bin,
  code char(3) CHARACTER SET ascii,
  boss int,
  CONSTRAINT ` + "`fk composite`" + ` FOREIGN KEY (a, b) REFERENCES ` + "`pa``rent tåble 表`" + ` (a, b) ON DELETE SET NULL ON UPDATE CASCADE,
  CONSTRAINT fk_code FOREIGN KEY (code) REFERENCES ` + "`pa``rent tåble 表`" + ` (code),
  CONSTRAINT fk_self FOREIGN KEY (boss) REFERENCES child (id) ON DELETE CASCADE,
  CONSTRAINT fk_other FOREIGN KEY (a) REFERENCES %[1]s.p (id)
) AUTO_INCREMENT=1000;
CREATE TABLE keyless (
  u int NOT NULL, v varchar(10) NOT NULL, w int,
  KEY plain (w, u), UNIQUE KEY uv (u, v), UNIQUE KEY w (w)
);
CREATE TABLE ai_second (
  k int NOT NULL, id bigint unsigned NOT NULL AUTO_INCREMENT, x int,
  PRIMARY KEY (k, id), KEY x (x), KEY id_too (id, x), KEY by_id (id)
) AUTO_INCREMENT=77;
CREATE TABLE gen (
  id int PRIMARY KEY,
  n int,
  v int AS (n * 2) VIRTUAL,
  s varchar(20) AS (concat('n=', n)) STORED,
  h int INVISIBLE DEFAULT 5,
  bin varbinary(4) DEFAULT x'ff00',
  d date DEFAULT '0000-00-00',
  ` + "`col ``x`` é`" + ` int COMMENT '😀',
  c int CHECK (c > 0),
  CONSTRAINT ` + "`pos n`" + ` CHECK (n >= 0 OR n IS NULL),
  KEY kv (v), KEY ks (s), UNIQUE KEY uh (h)
) ROW_FORMAT=COMPACT STATS_PERSISTENT=1;
CREATE TABLE docs (
  id int PRIMARY KEY, title varchar(100), body text, p point NOT NULL,
  FULLTEXT KEY ft_title (title), FULLTEXT KEY ft_both (title, body), SPATIAL KEY sp (p), KEY t10 (title(10))
) CHARSET=latin1;
CREATE TABLE parts (
  id int NOT NULL, at date NOT NULL, v int,
  PRIMARY KEY (id, at), KEY v (v)
) PARTITION BY RANGE (year(at)) (PARTITION p2020 VALUES LESS THAN (2021), PARTITION pmax VALUES LESS THAN MAXVALUE);
CREATE VIEW base_v AS SELECT c.id, c.a, p.note FROM child c JOIN ` + "`pa``rent tåble 表`" + ` p ON p.a = c.a AND p.b = c.b WHERE p.note <> 'x;y';
CREATE VIEW ` + "`vue é`" + ` AS SELECT id, note FROM base_v WHERE id > 1 WITH CHECK OPTION;
CREATE VIEW a_top AS SELECT count(*) AS n FROM ` + "`vue é`" + `;
CREATE SQL SECURITY INVOKER VIEW inv AS SELECT k, count(*) AS n FROM ai_second GROUP BY k;
CREATE VIEW qualified AS SELECT g.id, o.id AS o FROM %[2]s.gen g JOIN %[1]s.p o ON o.id = g.id;
CREATE TRIGGER tr BEFORE INSERT ON child FOR EACH ROW SET NEW.boss = NEW.boss;
CREATE PROCEDURE pr() SELECT 1;
CREATE EVENT ev ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM gen WHERE id < 0;
SET collation_connection = latin1_swedish_ci;
CREATE VIEW lat AS SELECT 'é' AS e, id FROM gen;
INSERT INTO ` + "`pa``rent tåble 表`" + ` VALUES (1, 'a', 'n1', 'AAA'), (2, 'B', 'n2', 'BBB'), (3, 'b', 'x;y', 'CCC');
INSERT INTO child (a, b, code, boss) VALUES (1, 'a', 'AAA', NULL), (2, 'B', 'BBB', 1000), (NULL, NULL, NULL, 1001), (1, NULL, 'CCC', NULL);
INSERT INTO keyless VALUES (1, 'x', NULL), (1, 'y', NULL), (2, 'x', 7);
INSERT INTO ai_second (k, x) VALUES (1, 10), (1, 11), (2, 12);
INSERT INTO gen (id, n, h, c) VALUES (1, 1, 1, 1), (2, NULL, NULL, NULL), (3, 3, 3, 3);
INSERT INTO gen (id, n, bin, d) VALUES (4, 4, DEFAULT, DEFAULT);
INSERT INTO docs VALUES (1, 'é title', 'body one', POINT(1, 2)), (2, 'second', 'body two', POINT(3, 4));
INSERT INTO parts VALUES (1, '2019-05-01', 1), (2, '2024-01-01', 2);`

// Tables and views made to be hard to carry come out on the target the same by SHOW
// CREATE and information_schema, each view selecting the same rows, whether the
// source's session names their database (SHOW CREATE VIEW then qualifies none of its
// names) or not; before the rows, the target has the primary keys, a keyless table's
// UNIQUE keys and the index an AUTO_INCREMENT column needs, and nothing else.
func TestSchemaShapes(t *testing.T) {
	srcServer, tgtServer := mytest.Source(t), mytest.Target(t)
	for _, session := range []string{"source", "none"} {
		t.Run(session, func(t *testing.T) {
			srcDB, tgtDB := mytest.NewDB(t, srcServer), mytest.NewDB(t, tgtServer)
			src, tgt := srcDB.Open(t), tgtDB.Open(t)
			other := "o" + srcDB.Name[1:] // does not contain the database's name, which dump replaces
			ctx := context.Background()
			for _, server := range []*mytest.Server{srcServer, tgtServer} {
				if err := server.Exec(ctx, "", fmt.Sprintf("CREATE DATABASE %[1]s; CREATE TABLE %[1]s.p (id int PRIMARY KEY); INSERT INTO %[1]s.p VALUES (1), (2)", quote(other))); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = server.Exec(ctx, "", "DROP DATABASE "+quote(other)) })
			}
			srcDB.Exec(t, fmt.Sprintf(shapes, quote(other), quote(srcDB.Name)))
			tables := baseTables(t, src, srcDB.Name)
			reader := src
			if session == "none" {
				pool, err := srcServer.Open("")
				if err != nil {
					t.Fatal(err)
				}
				defer pool.Close()
				reader = pool
			}
			s := readAt(t, reader, srcDB.Name, tables)
			// SHOW CREATE VIEW qualifies every name when the session's database is
			// not the view's, some when it is: both forms must be read.
			qualified := 0
			for _, v := range s.views {
				if strings.Contains(v.create, quote(srcDB.Name)+".") {
					qualified++
				}
			}
			if session == "none" && qualified != len(s.views) || session == "source" && qualified == len(s.views) {
				t.Errorf("with the session's database %s, %d of %d views read qualify names with the database's", session, qualified, len(s.views))
			}
			want := map[string][]string{"pa`rent tåble 表": {"PRIMARY"}, "child": {"PRIMARY"}, "keyless": {"uv", "w"},
				"ai_second": {"PRIMARY", "x", "id_too"}, "gen": {"PRIMARY"}, "docs": {"PRIMARY"}, "parts": {"PRIMARY"}}
			loadAndBuild(t, s, src, tgt, srcDB.Name, tgtDB.Name, tables, func() { preData(t, tgt, tgtDB.Name, want) })
			compareSides(t, src, tgt, srcDB.Name, tgtDB.Name)
			compareViewRows(t, src, tgt, srcDB.Name, tgtDB.Name, s.views)
			report := s.notCarried()
			for _, line := range []string{"trigger `tr` on `child`", "procedure `pr`", "event `ev` (DISABLED", "foreign key `fk_other` of `child`: references " + quote(other) + ".`p`"} {
				if !slices.ContainsFunc(report, func(l string) bool { return strings.HasPrefix(l, line) }) {
					t.Errorf("the report has no line %q...: %q", line, report)
				}
			}
			before := definitions(t, tgt, tgtDB.Name)
			if err := build(s, tgt, tgtDB.Name); err != nil {
				t.Fatalf("a second build: %v", err)
			}
			if after := definitions(t, tgt, tgtDB.Name); !maps(before, after) {
				t.Errorf("a second build changed the target")
			}
		})
	}
}

// Rows that break a foreign key stop its build with an error naming the table, the
// constraint and a row; the other keys and the views are built; once the rows are
// corrected, a rerun adds it. Tables already on the target stop createTables.
func TestSchemaForeignKeyViolated(t *testing.T) {
	srcDB, tgtDB := mytest.NewDB(t, mytest.Source(t)), mytest.NewDB(t, mytest.Target(t))
	src, tgt := srcDB.Open(t), tgtDB.Open(t)
	srcDB.Exec(t, "CREATE TABLE parent (id int PRIMARY KEY, k int NOT NULL, UNIQUE KEY k (k));"+
		"CREATE TABLE child (id int PRIMARY KEY, pid int, pk int, CONSTRAINT `fk pid` FOREIGN KEY (pid) REFERENCES parent (id), CONSTRAINT fk_k FOREIGN KEY (pk) REFERENCES parent (k));"+
		"CREATE VIEW v AS SELECT child.id FROM child JOIN parent ON parent.id = child.pid;"+
		"INSERT INTO parent VALUES (1, 10); INSERT INTO child VALUES (1, 1, 10), (2, NULL, NULL)")
	tables := []string{"parent", "child"}
	s := readAt(t, src, srcDB.Name, tables)
	loadAndBuildErr := func() error {
		ctx := context.Background()
		conn, err := tgt.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer discard(conn)
		if err := s.createTables(ctx, conn, tgtDB.Name); err != nil {
			t.Fatal(err)
		}
		if _, err := copyAll(src, tgt, srcDB.Name, tgtDB.Name, tables, nil, t.Logf); err != nil {
			t.Fatal(err)
		}
		tgtDB.Exec(t, "SET SESSION foreign_key_checks = 0; INSERT INTO child VALUES (3, 99, 10)")
		return s.buildObjects(ctx, conn, tgtDB.Name)
	}
	err := loadAndBuildErr()
	if err == nil || !strings.Contains(err.Error(), "table "+tableName{tgtDB.Name, "child"}.quoted()) || !strings.Contains(err.Error(), "foreign key `fk pid`") ||
		!strings.Contains(err.Error(), "(`pid`) = (99)") {
		t.Fatalf("the build said %v, want the table, the constraint `fk pid` and the row", err)
	}
	t.Logf("the build said: %v", err)
	fks := dump(t, tgt, tgtDB.Name, "SELECT CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?", tgtDB.Name)
	if !slices.Equal(fks, []string{`"fk_k"`}) {
		t.Errorf("foreign keys on the target after the failed build: %q, want fk_k alone", fks)
	}
	if views := dump(t, tgt, tgtDB.Name, "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?", tgtDB.Name); len(views) != 1 {
		t.Errorf("views on the target after the failed build: %q", views)
	}

	tgtDB.Exec(t, "DELETE FROM child WHERE id = 3")
	if err := build(s, tgt, tgtDB.Name); err != nil {
		t.Fatalf("the build once the rows are corrected: %v", err)
	}
	compareSides(t, src, tgt, srcDB.Name, tgtDB.Name)

	conn, err := tgt.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer discard(conn)
	err = s.createTables(context.Background(), conn, tgtDB.Name)
	if err == nil || !strings.Contains(err.Error(), "`parent`, `child`") {
		t.Errorf("createTables over the tables said %v, want both named", err)
	}
}

// The names of the source's database in a view's definition become the target's,
// outside strings and where they qualify a name; an alias with the database's name
// makes the definition ambiguous.
func TestSchemaRetarget(t *testing.T) {
	for _, c := range []struct{ in, out string }{
		{"select `src`.`t`.`a` AS `a` from `src`.`t`", "select `tgt`.`t`.`a` AS `a` from `tgt`.`t`"},
		{"select nextval(`src`.`s`) AS `src`, 'src.`src`.x' AS `b` from `t`", "select nextval(`tgt`.`s`) AS `src`, 'src.`src`.x' AS `b` from `t`"},
		{"select `t`.`src` AS `c` from `other`.`src`", "select `t`.`src` AS `c` from `other`.`src`"},
		{"select `src`.`a` AS `a` from `t` `src`", ""},
	} {
		got, err := retarget(c.in, "src", "tgt")
		if c.out == "" {
			if err == nil {
				t.Errorf("%s: %s, want an error", c.in, got)
			}
			continue
		}
		if err != nil || got != c.out {
			t.Errorf("%s:\n got %s, %v\nwant %s", c.in, got, err, c.out)
		}
	}
}

// An AUTO_INCREMENT column keeps in CREATE TABLE the first index it leads, or else
// the first it is in (MyISAM's second place in the primary key needs none kept), and
// the indexes before it; the parts are split outside strings, names and parentheses.
func TestSchemaSplitTable(t *testing.T) {
	for _, c := range []struct {
		create string
		kept   []string
	}{
		{"CREATE TABLE `t` (\n  `a` int(11) NOT NULL,\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  PRIMARY KEY (`a`,`id`)\n) ENGINE=MyISAM", nil},
		{"CREATE TABLE `t` (\n  `a` int(11) NOT NULL,\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  KEY `x` (`a`,`id`),\n  KEY `y` (`a`)\n) ENGINE=MyISAM", []string{"x"}},
		{"CREATE TABLE `t` (\n  `a` int(11) NOT NULL,\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  PRIMARY KEY (`a`,`id`),\n  KEY `x` (`a`,`id`),\n  KEY `y` (`id`,`a`),\n  KEY `z` (`id`)\n) ENGINE=InnoDB", []string{"x", "y"}},
		{"CREATE TABLE `t` (\n  `a,(` int(11) NOT NULL COMMENT 'KEY `k` (`a`),',\n  UNIQUE KEY `u` (`a,(`),\n  KEY `k` (`a,(`)\n) ENGINE=InnoDB", []string{"u"}},
	} {
		td, err := splitTable("t", c.create)
		if err != nil {
			t.Fatal(err)
		}
		var kept []string
		for _, line := range strings.Split(td.create, "\n") {
			if m := regexp.MustCompile("^  (?:UNIQUE )?KEY `([^`]+)`").FindStringSubmatch(line); m != nil {
				kept = append(kept, m[1])
			}
		}
		if !slices.Equal(kept, c.kept) || len(td.indexes)+len(kept) != strings.Count(c.create, "KEY `")-strings.Count(c.create, "'KEY `") {
			t.Errorf("%s:\nkept %q (%d built after), want %q\n%s", c.create, kept, len(td.indexes), c.kept, td.create)
		}
		if !strings.HasSuffix(td.create, "\n) ENGINE="+strings.SplitN(c.create, "ENGINE=", 2)[1]) || strings.Contains(td.create, ",\n)") {
			t.Errorf("%s: a CREATE TABLE not well formed:\n%s", c.create, td.create)
		}
	}
}

// Routines and events are created on the target after the load: the routines before
// the views that call them, each in the sql_mode it was created in, the names its body
// qualifies with the source's database changed to the target's; the events disabled,
// in their own time zone, whatever their status on the source. A second build changes
// nothing.
func TestSchemaRoutinesAndEvents(t *testing.T) {
	srcDB, tgtDB := mytest.NewDB(t, mytest.Source(t)), mytest.NewDB(t, mytest.Target(t))
	src, tgt := srcDB.Open(t), tgtDB.Open(t)
	q := quote(srcDB.Name)
	srcDB.Exec(t, fmt.Sprintf("CREATE TABLE t (id int PRIMARY KEY, n int); INSERT INTO t VALUES (1, 1), (2, 2);"+
		"SET SESSION sql_mode = 'PIPES_AS_CONCAT';"+
		"CREATE DEFINER = `nobody`@`%%` PROCEDURE bump(x int) SQL SECURITY INVOKER UPDATE %[1]s.t SET n = n + x;"+
		"CREATE FUNCTION f() RETURNS varchar(20) DETERMINISTIC READS SQL DATA RETURN 'n=' || (SELECT count(*) FROM %[1]s.t);"+
		"SET SESSION sql_mode = DEFAULT; SET SESSION time_zone = '+02:00';"+
		"CREATE EVENT e1 ON SCHEDULE EVERY 1 HOUR STARTS '2030-01-01 00:00:00' ON COMPLETION PRESERVE ENABLE COMMENT 'hourly | DO not' DO UPDATE t SET n = 0;"+
		"CREATE EVENT e2 ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE ON SLAVE DO DELETE FROM %[1]s.t;"+
		"CREATE EVENT e3 ON SCHEDULE AT '2031-01-01 00:00:00' ON COMPLETION PRESERVE DISABLE DO INSERT INTO t VALUES (3, 3);"+
		"SET SESSION time_zone = '+00:00';"+
		"CREATE VIEW v AS SELECT f() AS c", q))
	s := readAt(t, src, srcDB.Name, []string{"t"})
	loadAndBuild(t, s, src, tgt, srcDB.Name, tgtDB.Name, []string{"t"}, func() {})
	a, b := routinesAndEvents(t, src, srcDB.Name, true), routinesAndEvents(t, tgt, tgtDB.Name, false)
	if len(a) != 5 || !maps(a, b) {
		t.Errorf("routines and events:\nsource %q\ntarget %q", a, b)
	}
	if got := dump(t, tgt, tgtDB.Name, "SELECT EVENT_NAME, STATUS, TIME_ZONE FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY 1", tgtDB.Name); !slices.Equal(got,
		[]string{`"e1" | "DISABLED" | "+02:00"`, `"e2" | "DISABLED" | "+02:00"`, `"e3" | "DISABLED" | "+02:00"`}) {
		t.Errorf("the target's events: %q", got)
	}
	// The routines run on the target's tables, in their sql_mode (|| concatenates).
	if got := mytest.QueryVal[string](t, tgtDB, "SELECT c FROM v"); got != "n=2" {
		t.Errorf("the view calling the function on the target: %q, want n=2", got)
	}
	tgtDB.Exec(t, "CALL bump(10)")
	if got := mytest.QueryVal[int64](t, tgtDB, "SELECT sum(n) FROM t"); got != 23 {
		t.Errorf("bump(10) on the target: sum %d, want 23", got)
	}
	if got := mytest.QueryVal[int64](t, srcDB, "SELECT sum(n) FROM t"); got != 3 {
		t.Errorf("bump(10) on the target changed the source: sum %d", got)
	}
	report := s.notCarried()
	for _, e := range []string{"e1", "e2", "e3"} {
		if !mentions(report, "event", e) {
			t.Errorf("the report does not name the event %s: %q", e, report)
		}
	}
	if !mentions(report, "procedure", "bump") {
		t.Errorf("the report does not say who defines bump: %q", report)
	}
	if err := build(s, tgt, tgtDB.Name); err != nil {
		t.Fatalf("a second build: %v", err)
	}
	if again := routinesAndEvents(t, tgt, tgtDB.Name, false); !maps(b, again) {
		t.Errorf("a second build changed the target:\n%q\n%q", b, again)
	}
}
