package main

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cutover-dev/cutover/mytest"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/jackc/pgx/v5"
)

// A one-shot copy from MariaDB into PostgreSQL with the binary, as a user runs it:
// check prints the mapping column by column, start (killed after copying a table,
// then run again) copies every row, and every value is compared by queries of the
// test's own on both sides.
func TestMySQLToPostgresOneShotCopy(t *testing.T) {
	if !mytest.Installed() {
		t.Skip("MariaDB is not installed: make test installs it")
	}
	src, tgt := mytest.NewDB(t, mytest.Source(t)), pgtest.NewDB(t, pgtest.Target(t))
	src.Exec(t, mysqlSchema)
	dir := t.TempDir()
	planFile := filepath.Join(dir, "cutover.yaml")
	// The plan's rules: enums as text with a CHECK, case-insensitive collations as
	// ICU's, a column's type overridden.
	if err := os.WriteFile(planFile, []byte(fmt.Sprintf("source: {url: '%s'}\ntarget: {url: '%s'}\ncdc: {enabled: false}\nfull_load: {parallel: 2}\n"+
		"translation: {enums: check, case_insensitive: icu}\ntypes: {orders.note: varchar(200)}\nvalidation: {after_load: true}\n",
		src.URL(), tgt.URL())), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, dir, nil, "check", "-c", planFile)
	if r.code != 0 {
		t.Fatalf("check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("check:\n%s", r.stdout)
	schema := strings.ToLower(src.Name)
	for _, want := range []string{
		"table " + src.Name + ".customer -> " + schema + ".customer",
		"bigint", // id int unsigned
		"numeric(12,2)",
		"timestamp(6) without time zone",
		`tier     enum('free','pro','')  -> tier     text CHECK`,
		`COLLATE "` + strings.ToLower(src.Name) + `"."cutover_ci_ai"`,
		"note         text           -> note         varchar(200)",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("check's mapping lacks %q:\n%s", want, r.stdout)
		}
	}
	killed := run(t, dir, []string{"CUTOVER_FAILPOINT=start:copied:" + src.Name + ".orders:kill"}, "start", "-c", planFile)
	if killed.code == 0 {
		t.Fatalf("the start that should have been killed after copying orders ended: %s%s", killed.stdout, killed.stderr)
	}
	r = run(t, dir, nil, "start", "-c", planFile)
	if r.code != 0 || !strings.Contains(r.stdout, "copy complete") || !strings.Contains(r.stdout, "validation: 3 tables equal") {
		t.Fatalf("start again: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("start:\n%s", r.stdout)
	pg, my := sameShopTables(t, src, tgt, schema)
	sameRows(t, "tags", my, `SELECT name, weight FROM tags ORDER BY name`,
		func() [][]string { return pgRows(t, pg, `SELECT name, weight::text FROM tags ORDER BY name`) }, nil)
	// The keys and references are there, and the identities go on past the rows.
	if got := pgtest.QueryVal[string](t, tgt, `SELECT string_agg(conname || ' ' || contype::text, ', ' ORDER BY conname) FROM pg_constraint
		WHERE connamespace = $1::regnamespace AND contype IN ('p', 'u', 'f')`, schema); !strings.Contains(got, "orders_customer f") {
		t.Errorf("constraints on the target: %s", got)
	}
	var id int64
	if err := pg.QueryRow(context.Background(), "INSERT INTO orders (customer_id, total, at) VALUES (1, 1, now()) RETURNING id").Scan(&id); err != nil || id <= 30000 {
		t.Errorf("a new order on the target got the id %d (%v), want one past the source's 30000", id, err)
	}
	// A value changed on the target behind the copy's back: validate names the row
	// and the column, with both values in the source's terms.
	if _, err := pg.Exec(context.Background(), "UPDATE orders SET note = note || '!' WHERE id = 4"); err != nil {
		t.Fatal(err)
	}
	if r := run(t, dir, nil, "validate", "-c", planFile); r.code != 1 || !strings.Contains(r.stdout, "(id) = (4)") || !strings.Contains(r.stdout, "note") {
		t.Errorf("validate a changed row: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := pg.Exec(context.Background(), "UPDATE orders SET note = left(note, -1) WHERE id = 4"); err != nil {
		t.Fatal(err)
	}
	// A copy has nothing to switch; finish drops the control schema, and leaves the
	// tables.
	if r := run(t, dir, nil, "switch", "-c", planFile); r.code == 0 || !strings.Contains(r.stderr, "nothing to switch: the migration cutover is a one-shot copy") {
		t.Errorf("switch: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, dir, nil, "finish", "--yes", "-c", planFile); r.code != 0 || !strings.Contains(r.stdout, "dropped the control schema cutover on the target") {
		t.Errorf("finish: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM pg_namespace WHERE nspname = 'cutover'"); n != 0 {
		t.Errorf("finish left the control schema")
	}
	if n := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM "+schema+".orders"); n != 30001 {
		t.Errorf("%d orders on the target after finish, want 30001", n)
	}
}

// sameRows compares a table's rows as the source's query and the target's give them,
// value by value; floats (the columns of floatBits: 32 or 64) by their bits.
func sameRows(t *testing.T, table string, my *sql.DB, query string, target func() [][]string, floatBits map[int]int) {
	t.Helper()
	rows, err := my.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var want [][]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = v.String
		}
		want = append(want, row)
	}
	got := target()
	if len(got) != len(want) {
		t.Fatalf("table %s: %d rows on the target, %d on the source", table, len(got), len(want))
	}
	bad := 0
	for i := range want {
		for j := range want[i] {
			a, b := want[i][j], got[i][j]
			if bits, ok := floatBits[j]; ok && a != "NULL" && b != "NULL" {
				fa, errA := strconv.ParseFloat(a, 64)
				fb, errB := strconv.ParseFloat(b, 64)
				if errA == nil && errB == nil && (bits == 32 && math.Float32bits(float32(fa)) == math.Float32bits(float32(fb)) || math.Float64bits(fa) == math.Float64bits(fb)) {
					continue
				}
			}
			if a != b {
				if bad++; bad <= 5 {
					t.Errorf("table %s, row %d, column %d: source %q, target %q", table, i, j, a, b)
				}
			}
		}
	}
}

// pgRows reads a query's rows as text.
func pgRows(t *testing.T, conn *pgx.Conn, query string) [][]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			row[i] = fmt.Sprint(v)
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// A live migration from MariaDB into PostgreSQL with the binary, under a writer:
// the load, then change data capture killed (SIGKILL) after a few groups and run
// again, changes of every kind to tables of many types while it runs (zero dates,
// sets, enums, latin1 text, blobs, deletes, a truncate), then stopped by SIGTERM once
// it caught up: every transaction the writer committed is on the target once (the
// counters sum to them), and every value is the source's, by queries of the test's
// own on both sides; finish ends it.
func TestMySQLToPostgresLive(t *testing.T) {
	if !mytest.Installed() {
		t.Skip("MariaDB is not installed: make test installs it")
	}
	src, tgt := mytest.NewDB(t, mytest.Source(t)), pgtest.NewDB(t, pgtest.Target(t))
	src.Exec(t, mysqlSchema+`
		CREATE TABLE counters (id int PRIMARY KEY, v bigint NOT NULL); INSERT INTO counters SELECT seq, 0 FROM seq_0_to_9;
		CREATE TABLE log (n bigint PRIMARY KEY, at datetime(6) NOT NULL DEFAULT now(6), pad text);
		CREATE TABLE scratch (id int PRIMARY KEY); INSERT INTO scratch SELECT seq FROM seq_1_to_10;`)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(fmt.Sprintf("source: {url: '%s'}\ntarget: {url: '%s'}\nfull_load: {parallel: 2}\napi: {listen: ''}\n",
		src.URL(), tgt.URL())), 0o600); err != nil {
		t.Fatal(err)
	}
	schema := strings.ToLower(src.Name)
	stopWriter := make(chan struct{})
	writerDone := mysqlWriter(t, src, stopWriter)
	applied := func() string {
		if !holds(tgt, "SELECT to_regclass('cutover.state') IS NOT NULL") {
			return ""
		}
		return pgtest.QueryVal[string](t, tgt, "SELECT applied_position FROM cutover.state")
	}
	started := func(out string) bool { return strings.Contains(out, "change data capture from the source") }

	// Killed during the load, once orders is being copied: the rerun copies the tables
	// not loaded at a new snapshot, and skips their changes before it.
	l := startLive(t, dir, false, "start")
	t.Cleanup(func() {
		if l.cmd.ProcessState == nil {
			_ = l.cmd.Process.Signal(syscall.SIGTERM)
			l.wait(t)
		}
	})
	waitForTarget(t, tgt, l, "SELECT to_regclass('cutover.table_stats') IS NOT NULL AND EXISTS (SELECT 1 FROM cutover.table_stats WHERE table_name = 'orders' AND state = 'loading')")
	if err := l.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	l.wait(t)
	l = startLive(t, dir, false, "start")
	l.waitFor(t, "change data capture", started)
	if !strings.Contains(l.output(), "resuming the loading phase with a new snapshot") {
		t.Errorf("the rerun did not resume the load:\n%s", l.output())
	}
	src.Exec(t, `UPDATE customer SET tier = 'pro', flags = 'b', born = '0000-00-00', name = 'Åsa ñ' WHERE id <= 20;
		UPDATE customer SET flags = '', tier = '' WHERE id BETWEEN 21 AND 30;
		DELETE FROM orders WHERE id % 100 = 0;
		UPDATE orders SET payload = unhex('00ff0a0d5c09'), note = 'tab\there', ratio = -0.0, score = 1e300 WHERE id <= 50;
		INSERT INTO orders (customer_id, total, ratio, score, note, payload, at) VALUES (5, 12.5, 0.1, -0.0, NULL, '', '2030-01-01 00:00:00.5');
		TRUNCATE TABLE scratch; INSERT INTO scratch VALUES (42);`)
	for steps := 3; steps > 0; steps-- {
		before := applied()
		waitForTarget(t, tgt, l, fmt.Sprintf("SELECT applied_position <> '%s' FROM cutover.state", before))
	}
	if err := l.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	l.wait(t)
	l = startLive(t, dir, false, "start")
	l.waitFor(t, "change data capture", started)
	src.Exec(t, `UPDATE customer SET created = '2038-01-19 03:14:07.999' WHERE id = 100; DELETE FROM customer WHERE id = 2000`)
	// cutover validate while the writer writes and the stream applies: every table
	// equal, the rows the writer changes between the source's view and the target's
	// snapshot rechecked, not reported.
	if r := run(t, dir, nil, "validate"); r.code != 0 || !strings.Contains(r.stdout, "6 equal") {
		t.Errorf("validate under the writer: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Rows changed on the target behind the stream's back, under the writer: named,
	// and nothing else; --repair copies them again from the source, at their place in
	// the change stream (one of them among orders' converted values: bytes, -0, 1e300).
	tgt.Exec(t, "UPDATE "+schema+".customer SET email = 'changed@example.com' WHERE id = 7; DELETE FROM "+schema+".orders WHERE id = 11; INSERT INTO "+schema+".scratch VALUES (999)")
	if r := run(t, dir, nil, "validate"); r.code != 1 || !strings.Contains(r.stdout, "(id) = (7)") || !strings.Contains(r.stdout, "(id) = (11)") ||
		!strings.Contains(r.stdout, "(id) = (999)") || !strings.Contains(r.stdout, "3 equal") {
		t.Errorf("validate changed rows under the writer: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, dir, nil, "validate", "--repair"); r.code != 0 || !strings.Contains(r.stdout, "6 equal") || strings.Count(r.stdout, "1 rows repaired, then equal") != 3 {
		t.Errorf("validate --repair under the writer: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, dir, nil, "validate", "--incremental"); r.code != 0 || !strings.Contains(r.stdout, "6 equal") {
		t.Errorf("validate --incremental after the repair: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	close(stopWriter)
	n := <-writerDone
	waitForTarget(t, tgt, l, fmt.Sprintf("SELECT (SELECT sum(v) FROM %s.counters) = %d AND NOT EXISTS (SELECT 1 FROM %[1]s.customer WHERE id = 2000)", schema, n))
	if r := run(t, dir, nil, "status"); r.code != 0 || !strings.Contains(r.stdout, "phase: cdc") || !strings.Contains(r.stdout, schema+".orders") {
		t.Errorf("status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The writer stopped, the stream caught up: every table equal, by validate.
	// orders (30,000 rows, an integer key) compared in chunks of its key's ranges.
	if r := run(t, dir, nil, "validate"); r.code != 0 || !strings.Contains(r.stdout, "6 tables validated") || !strings.Contains(r.stdout, "6 equal") ||
		!regexp.MustCompile(`orders +validated +\d+ rows, [2-9] chunks`).MatchString(r.stdout) {
		t.Errorf("validate once the writer stopped: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if err := l.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, out := l.wait(t); code != 0 || !strings.Contains(out, "change data capture stopped at position") {
		t.Fatalf("SIGTERM: exit %d\n%s", code, out)
	}
	t.Logf("%d source transactions", n)
	pg, my := sameShopTables(t, src, tgt, schema)
	sameRows(t, "log", my, `SELECT n, date_format(at, '%Y-%m-%d %H:%i:%s.%f'), pad FROM log ORDER BY n`,
		func() [][]string {
			return pgRows(t, pg, `SELECT n::text, to_char(at, 'YYYY-MM-DD HH24:MI:SS.US'), pad FROM log ORDER BY log.n`)
		}, nil)
	sameRows(t, "scratch", my, `SELECT id FROM scratch ORDER BY id`,
		func() [][]string { return pgRows(t, pg, `SELECT id::text FROM scratch ORDER BY scratch.id`) }, nil)
	if got := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM "+schema+".log"); got != n {
		t.Errorf("%d log rows on the target; %d transactions committed on the source", got, n)
	}
	if ex := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM cutover.apply_exceptions"); ex != 0 {
		t.Errorf("%d apply exceptions", ex)
	}
	if r := run(t, dir, nil, "finish", "--yes"); r.code != 0 || !strings.Contains(r.stdout, "dropped the control schema cutover on the target") {
		t.Errorf("finish: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// sameShopTables compares customer and orders (mysqlSchema's) on the MariaDB source and
// the PostgreSQL target, value by value, with queries of the test's own; it returns
// the connections it opened, set for more comparisons (the target's search_path is the
// tables' schema, both sides in UTC).
func sameShopTables(t *testing.T, src *mytest.DB, tgt *pgtest.DB, schema string) (*pgx.Conn, *sql.DB) {
	t.Helper()
	pg := tgt.Conn(t)
	if _, err := pg.Exec(context.Background(), "SET search_path = "+schema+"; SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	my := src.Open(t)
	if _, err := my.Exec("SET time_zone = '+00:00'"); err != nil {
		t.Fatal(err)
	}
	sameRows(t, "customer", my, `SELECT id, email, coalesce(name, 'NULL'), tier, coalesce(flags, 'NULL'),
			if(born IS NULL OR month(born) = 0, 'NULL', born), coalesce(date_format(created, '%Y-%m-%d %H:%i:%s.%f'), 'NULL')
		FROM customer ORDER BY id`,
		func() [][]string {
			return pgRows(t, pg, `SELECT id::text, email, coalesce(name, 'NULL'), tier::text, coalesce(array_to_string(flags, ','), 'NULL'),
				coalesce(born::text, 'NULL'), coalesce(to_char(created, 'YYYY-MM-DD HH24:MI:SS.US'), 'NULL')
			FROM customer ORDER BY customer.id`)
		}, nil)
	sameRows(t, "orders", my, `SELECT id, customer_id, total, coalesce(ratio * 1e0, 'NULL'), coalesce(score, 'NULL'), coalesce(note, 'NULL'),
			coalesce(lower(hex(payload)), 'NULL'), date_format(at, '%Y-%m-%d %H:%i:%s.%f')
		FROM orders ORDER BY id`,
		func() [][]string {
			return pgRows(t, pg, `SELECT id::text, customer_id::text, total::text, coalesce(ratio::float8::text, 'NULL'), coalesce(score::text, 'NULL'),
				coalesce(note, 'NULL'), coalesce(encode(payload, 'hex'), 'NULL'), to_char(at, 'YYYY-MM-DD HH24:MI:SS.US')
			FROM orders ORDER BY orders.id`)
		}, map[int]int{3: 32, 4: 64})
	return pg, my
}
