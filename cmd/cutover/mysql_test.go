package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/mytest"
)

const mysqlSchema = `
	CREATE TABLE customer (id int unsigned AUTO_INCREMENT PRIMARY KEY, email varchar(100) NOT NULL, name varchar(50) CHARACTER SET latin1,
		tier enum('free','pro','') NOT NULL DEFAULT 'free', flags set('a','b','c'), born date, created timestamp(3) NULL,
		UNIQUE KEY email (email), KEY name (name));
	CREATE TABLE orders (id bigint AUTO_INCREMENT PRIMARY KEY, customer_id int unsigned NOT NULL, total decimal(12,2) NOT NULL,
		ratio float, score double, note text, payload blob, at datetime(6) NOT NULL,
		KEY at (at), CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES customer (id) ON DELETE CASCADE);
	CREATE TABLE tags (name varchar(20) NOT NULL, weight int NOT NULL, UNIQUE KEY name (name));
	CREATE VIEW big_orders AS SELECT o.id, c.email, o.total FROM orders o JOIN customer c ON c.id = o.customer_id WHERE o.total > 500;
	INSERT INTO customer (email, name, tier, flags, born, created)
		SELECT concat('c', seq, '@example.com'), if(seq % 7 = 0, NULL, concat('Zoë ', seq)), elt(1 + seq % 3, 'free', 'pro', ''),
			if(seq % 5 = 0, NULL, 'a,c'), if(seq % 11 = 0, '0000-00-00', '1990-01-01' + INTERVAL seq DAY), '2024-01-01 00:00:00.123' + INTERVAL seq MINUTE
		FROM seq_1_to_2000;
	INSERT INTO orders (customer_id, total, ratio, score, note, payload, at)
		SELECT 1 + seq % 2000, seq * 0.37, seq / 7, seq / 3, if(seq % 3 = 0, NULL, concat('tab\there\nand \\ back ', seq)), unhex(md5(seq)),
			'2024-02-29 12:00:00' + INTERVAL seq SECOND
		FROM seq_1_to_30000;
	INSERT INTO tags VALUES ('a', 1), ('b', 2);`

// sameTables compares every table of the two databases by CHECKSUM TABLE (the rows'
// contents, one server version on both sides) and row count, and their indexes and
// foreign keys by the catalog.
func sameMySQLTables(t *testing.T, src, tgt *mytest.DB, tables ...string) {
	t.Helper()
	for _, tb := range tables {
		q := fmt.Sprintf("SELECT concat((SELECT count(*) FROM `%s`), ' rows')", tb)
		a, b := mytest.QueryVal[string](t, src, q), mytest.QueryVal[string](t, tgt, q)
		sum := func(d *mytest.DB) string {
			pool := d.Open(t)
			var name string
			var v *int64
			if err := pool.QueryRow("CHECKSUM TABLE `"+tb+"` EXTENDED").Scan(&name, &v); err != nil || v == nil {
				t.Fatalf("CHECKSUM TABLE %s: %v", tb, err)
			}
			return fmt.Sprint(*v)
		}
		if a != b || sum(src) != sum(tgt) {
			t.Errorf("table %s: %s and checksum %s on the source, %s and %s on the target", tb, a, sum(src), b, sum(tgt))
		}
	}
	catalog := `SELECT group_concat(concat_ws(' ', table_name, index_name, non_unique, seq_in_index, column_name, index_type) ORDER BY 1 SEPARATOR '; ')
		FROM information_schema.STATISTICS WHERE table_schema = DATABASE()`
	if a, b := mytest.QueryVal[string](t, src, catalog), mytest.QueryVal[string](t, tgt, catalog); a != b {
		t.Errorf("indexes differ:\nsource %s\ntarget %s", a, b)
	}
	fks := `SELECT coalesce(group_concat(concat_ws(' ', constraint_name, table_name, referenced_table_name, delete_rule, update_rule) ORDER BY 1), '')
		FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE constraint_schema = DATABASE()`
	if a, b := mytest.QueryVal[string](t, src, fks), mytest.QueryVal[string](t, tgt, fks); a != b {
		t.Errorf("foreign keys differ:\nsource %s\ntarget %s", a, b)
	}
}

// A one-shot copy between two MariaDB servers with the binary, as a user runs it:
// check, start (killed after copying a table, then run again), the copy exact by
// the servers' own checksums, the indexes, foreign keys and view there, status, the
// commands that do not run on MySQL/MariaDB yet saying so, and finish leaving nothing.
func TestMySQLOneShotCopy(t *testing.T) {
	if !mytest.Installed() {
		t.Skip("MariaDB is not installed: make test installs it")
	}
	src, tgt := mytest.NewDB(t, mytest.Source(t)), mytest.NewDB(t, mytest.Target(t))
	src.Exec(t, mysqlSchema)
	dir := t.TempDir()
	control := "ctl_" + tgt.Name
	t.Cleanup(func() { _ = tgt.Server.Exec(context.Background(), "", "DROP DATABASE IF EXISTS `"+control+"`") })
	planFile := filepath.Join(dir, "cutover.yaml")
	if err := os.WriteFile(planFile, []byte(fmt.Sprintf("source: {url: '%s'}\ntarget: {url: '%s'}\ncdc: {enabled: false}\nfull_load: {parallel: 2}\ncontrol_schema: %s\nvalidation: {after_load: true}\n",
		src.URL(), tgt.URL(), control)), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run(t, dir, nil, "check", "-c", planFile); r.code != 0 || !strings.Contains(r.stdout, "MariaDB") {
		t.Fatalf("check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	killed := run(t, dir, []string{"CUTOVER_FAILPOINT=start:copied:" + src.Name + ".orders:kill"}, "start", "-c", planFile)
	if killed.code == 0 {
		t.Fatalf("the start that should have been killed after copying orders ended: %s%s", killed.stdout, killed.stderr)
	}
	r := run(t, dir, nil, "start", "-c", planFile)
	if r.code != 0 || !strings.Contains(r.stdout, "copy complete") || !strings.Contains(r.stdout, "validation: 3 tables equal") {
		t.Fatalf("start again: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	sameMySQLTables(t, src, tgt, "customer", "orders", "tags")
	view := "SELECT concat(count(*), ' ', sum(total)) FROM big_orders"
	if a, b := mytest.QueryVal[string](t, src, view), mytest.QueryVal[string](t, tgt, view); a != b {
		t.Errorf("the view selects %s on the source, %s on the target", a, b)
	}
	if n := mytest.QueryVal[int64](t, tgt, "SELECT count(*) FROM `"+control+"`.table_stats WHERE state = 'loaded'"); n != 3 {
		t.Errorf("%d tables recorded as loaded, want 3", n)
	}
	if r := run(t, dir, nil, "start", "-c", planFile); r.code != 0 || !strings.Contains(r.stdout, "complete already") {
		t.Errorf("start after the copy: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, dir, nil, "status", "-c", planFile); r.code != 0 || !strings.Contains(r.stdout, "phase: loaded") || !strings.Contains(r.stdout, src.Name+".orders") ||
		strings.Contains(r.stdout, "does not run on MySQL/MariaDB yet") {
		t.Errorf("status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// A row changed on the target behind the copy's back: validate names it, and
	// the column; once it is put back, the tables are equal again.
	tgt.Exec(t, "UPDATE orders SET note = concat(note, '!') WHERE id = 4")
	if r := run(t, dir, nil, "validate", "-c", planFile); r.code != 1 || !strings.Contains(r.stdout, "(id) = (4)") || !strings.Contains(r.stdout, `note: source "tab\there\nand \\ back 4", target "tab\there\nand \\ back 4!"`) {
		t.Errorf("validate a changed row: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := mytest.QueryVal[int64](t, tgt, "SELECT count(*) FROM `"+control+"`.validation_failures WHERE table_name = 'orders' AND kind = 'RECORD_DIFF'"); n != 1 {
		t.Errorf("%d differences recorded in validation_failures, want 1", n)
	}
	tgt.Exec(t, "UPDATE orders SET note = left(note, length(note) - 1) WHERE id = 4")
	if r := run(t, dir, nil, "validate", "-c", planFile); r.code != 0 || !strings.Contains(r.stdout, "equal") {
		t.Errorf("validate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, dir, nil, "switch", "-c", planFile); r.code == 0 || !strings.Contains(r.stderr, "nothing to switch: the migration "+control+" is a one-shot copy") {
		t.Errorf("switch: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, dir, nil, "finish", "--yes", "-c", planFile); r.code != 0 {
		t.Fatalf("finish: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := mytest.QueryVal[int64](t, tgt, "SELECT count(*) FROM information_schema.SCHEMATA WHERE schema_name = ?", control); n != 0 {
		t.Errorf("finish left the control database %s", control)
	}
}

// mysqlHolds reports whether a condition (a query of one boolean) holds on db; an
// error (a table not made yet) is false.
func mysqlHolds(db *mytest.DB, cond string) bool {
	pool, err := db.Server.Open(db.Name)
	if err != nil {
		return false
	}
	defer pool.Close()
	var ok bool
	return pool.QueryRow(cond).Scan(&ok) == nil && ok
}

// waitForMySQL polls db until cond holds or the program ends.
func waitForMySQL(t *testing.T, db *mytest.DB, l *live, cond string) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	give := time.After(3 * time.Minute)
	for !mysqlHolds(db, cond) {
		select {
		case <-l.done:
			t.Fatalf("cutover ended before %s:\n%s", cond, l.output())
		case <-give:
			t.Fatalf("no %s after 3 minutes; cutover says:\n%s", cond, l.output())
		case <-tick.C:
		}
	}
}

// mysqlWriter runs transactions on db until stop is closed, as fast as they go: each
// adds a log row and bumps a counter (applied twice, the sum would be off). The
// channel gets the number committed.
func mysqlWriter(t *testing.T, db *mytest.DB, stop <-chan struct{}) <-chan int64 {
	done := make(chan int64, 1)
	go func() {
		pool, err := db.Server.Open(db.Name)
		if err != nil {
			t.Error(err)
			done <- 0
			return
		}
		defer pool.Close()
		var n int64
		for {
			select {
			case <-stop:
				done <- n
				return
			default:
			}
			tx, err := pool.Begin()
			if err == nil {
				_, err = tx.Exec("INSERT INTO log (n, pad) VALUES (?, repeat('p', 50))", n+1)
			}
			if err == nil {
				_, err = tx.Exec("UPDATE counters SET v = v + 1 WHERE id = ?", (n+1)%10)
			}
			if err == nil {
				err = tx.Commit()
			}
			if err != nil {
				t.Error(err)
				done <- n
				return
			}
			n++
		}
	}()
	return done
}

// A live migration between two MariaDB servers with the binary, under a writer:
// cutover start killed (SIGKILL) during the load, right after the target made a
// schema change the application deployed (before it recorded it), and at a random
// point of change data capture, then run to the end and stopped by SIGTERM; every
// transaction the writer committed is on the target once (the counters sum to the
// transactions), every table is equal by CHECKSUM TABLE, and the schema changes
// (columns added, renamed, dropped; indexes) made the same table. cutover validate
// finds every table equal under the writer, and a row changed on the target behind the
// stream's back, which --repair copies again.
func TestMySQLLiveMigrationWithKillNine(t *testing.T) {
	if !mytest.Installed() {
		t.Skip("MariaDB is not installed: make test installs it")
	}
	src, tgt := mytest.NewDB(t, mytest.Source(t)), mytest.NewDB(t, mytest.Target(t))
	src.Exec(t, `CREATE TABLE counters (id int PRIMARY KEY, v bigint NOT NULL); INSERT INTO counters SELECT seq, 0 FROM seq_0_to_9;
		CREATE TABLE log (n bigint PRIMARY KEY, at datetime(6) NOT NULL DEFAULT now(6), pad text);
		CREATE TABLE big (id int PRIMARY KEY, pad varchar(200)); INSERT INTO big SELECT seq, repeat('b', 200) FROM seq_1_to_200000;
		CREATE TABLE shape (id int PRIMARY KEY, a int); INSERT INTO shape SELECT seq, seq FROM seq_1_to_100;`)
	dir := t.TempDir()
	control := "ctl_" + tgt.Name
	t.Cleanup(func() { _ = tgt.Server.Exec(context.Background(), "", "DROP DATABASE IF EXISTS `"+control+"`") })
	if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(fmt.Sprintf("source: {url: '%s'}\ntarget: {url: '%s'}\nfull_load: {parallel: 2}\ncontrol_schema: %s\napi: {listen: ''}\n"+
		"validation: {continuous: true, interval: 1s}\n"+
		// the test servers' administrator, which every test shares
		"cutover: {exempt_roles: [root]}\n",
		src.URL(), tgt.URL(), control)), 0o600); err != nil {
		t.Fatal(err)
	}
	// The application's account on the target, as provisioning makes it on both.
	app := "app_" + strings.TrimPrefix(tgt.Name, "t")[:12]
	tgt.Exec(t, fmt.Sprintf("CREATE USER '%[1]s'@'%%' IDENTIFIED BY 'pw'; GRANT SELECT, INSERT, UPDATE, DELETE ON `%[2]s`.* TO '%[1]s'@'%%'", app, tgt.Name))
	t.Cleanup(func() {
		_ = tgt.Server.Exec(context.Background(), "", fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", app))
	})
	stopWriter := make(chan struct{})
	writerDone := mysqlWriter(t, src, stopWriter)
	state := "`" + control + "`.state"
	applied := func() string {
		if !mysqlHolds(tgt, "SELECT count(*) > 0 FROM "+state) {
			return ""
		}
		return mytest.QueryVal[string](t, tgt, "SELECT applied_position FROM "+state)
	}
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d", seed)

	// Kill 1: during the load, once big is being copied.
	l := startLive(t, dir, false, "start")
	waitForMySQL(t, tgt, l, "SELECT count(*) > 0 FROM `"+control+"`.table_stats WHERE table_name = 'big' AND state = 'loading'")
	if err := l.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	l.wait(t)
	// Kill 2: the application deploys schema changes; the run dies right after the
	// target made the first, before it recorded it. The next run finds it made.
	l = startLiveEnv(t, dir, false, []string{"CUTOVER_FAILPOINT=start:ddl:made:kill"}, "start")
	l.waitFor(t, "change data capture", func(out string) bool {
		return strings.Contains(out, "change data capture from the source's binary log")
	})
	src.Exec(t, `ALTER TABLE shape ADD COLUMN b varchar(10) NOT NULL DEFAULT 'x';
		INSERT INTO shape (id, a, b) VALUES (101, 101, 'new');
		ALTER TABLE shape RENAME COLUMN a TO a2, ADD INDEX a2 (a2);
		UPDATE shape SET a2 = -a2 WHERE id % 10 = 0;
		CREATE INDEX b ON shape (b); DROP INDEX a2 ON shape;
		ALTER TABLE shape DROP COLUMN b;
		INSERT INTO shape VALUES (102, 102);`)
	if code, out := l.wait(t); code == 0 {
		t.Fatalf("the run with the failpoint after the schema change ended: %s", out)
	}
	// Kill 3: during CDC, after the target committed a random number of groups.
	for range 1 {
		l = startLive(t, dir, false, "start")
		for steps := 1 + rng.Intn(4); steps > 0; steps-- {
			before := applied()
			waitForMySQL(t, tgt, l, fmt.Sprintf("SELECT applied_position <> '%s' FROM %s", before, state))
		}
		if err := l.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		l.wait(t)
	}
	// The last run catches up with everything the writer committed and stops on SIGTERM.
	l = startLive(t, dir, false, "start")
	l.waitFor(t, "change data capture", func(out string) bool {
		return strings.Contains(out, "change data capture from the source's binary log")
	})
	// One writable side: the application cannot log in to the target.
	appDSN := fmt.Sprintf("%s:pw@tcp(127.0.0.1:%d)/%s", app, tgt.Server.Port, tgt.Name)
	if pool, err := sql.Open("mysql", appDSN); err == nil {
		if err := pool.Ping(); err == nil || !strings.Contains(err.Error(), "locked") {
			t.Errorf("the application's account on the target during replication: %v, want it locked", err)
		}
		pool.Close()
	}
	// The background validation of cutover start, and cutover validate, while the
	// writer writes: every table equal at its point of the
	// stream, the counters each transaction bumps included.
	l.waitFor(t, "the background validation", func(out string) bool { return strings.Contains(out, "validation: 4 tables equal") })
	if r := run(t, dir, nil, "validate"); r.code != 0 || !strings.Contains(r.stdout, "4 tables validated") || !strings.Contains(r.stdout, "4 equal") {
		t.Errorf("validate under the writer: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	close(stopWriter)
	n := <-writerDone
	waitForMySQL(t, tgt, l, fmt.Sprintf("SELECT (SELECT sum(v) FROM counters) = %d", n))
	if err := l.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, out := l.wait(t); code != 0 || !strings.Contains(out, "change data capture stopped at position") {
		t.Fatalf("SIGTERM: exit %d\n%s", code, out)
	}
	t.Logf("%d source transactions", n)
	sameMySQLTables(t, src, tgt, "counters", "log", "big", "shape")
	create := func(db *mytest.DB) string {
		var name, ddl string
		if err := db.Open(t).QueryRow("SHOW CREATE TABLE shape").Scan(&name, &ddl); err != nil {
			t.Fatal(err)
		}
		return ddl
	}
	if a, b := create(src), create(tgt); a != b {
		t.Errorf("the table the schema changes made differs:\nsource %s\ntarget %s", a, b)
	}
	if got := mytest.QueryVal[int64](t, tgt, "SELECT count(*) FROM log"); got != n {
		t.Errorf("%d log rows on the target; %d transactions committed on the source", got, n)
	}
	// No cutover start running: validate streams the changes itself. A row changed
	// on the target behind the stream's back is found.
	tgt.Exec(t, "UPDATE big SET pad = 'changed' WHERE id = 7")
	src.Exec(t, "UPDATE counters SET v = v + 1 WHERE id = 3; UPDATE counters SET v = v - 1 WHERE id = 3")
	if r := run(t, dir, nil, "validate"); r.code != 1 || !strings.Contains(r.stdout, "RECORD_DIFF    (id) = (7)") || !strings.Contains(r.stdout, `target "changed"`) || !strings.Contains(r.stdout, "validate ran change data capture itself") {
		t.Errorf("validate without cutover start, a row changed on the target: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// --repair copies it again from the source (change data capture run here meanwhile).
	if r := run(t, dir, nil, "validate", "--repair"); r.code != 0 || !strings.Contains(r.stdout, "1 rows repaired, then equal") {
		t.Errorf("validate --repair: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	sameMySQLTables(t, src, tgt, "big")
	// finish says what it leaves: the source live, the application locked on the target.
	if r := run(t, dir, nil, "finish", "--yes"); r.code != 0 || !strings.Contains(r.stdout, "the source stays live") ||
		!strings.Contains(r.stdout, "takes the applications' writes: '"+app+"'@'%' (ALTER USER") {
		t.Errorf("finish: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// startMySQLTask starts cutover start with the plan in dir and waits until change data
// capture runs; a task still running when the test ends is stopped.
func startMySQLTask(t *testing.T, dir string) *live {
	t.Helper()
	l := startLive(t, dir, false, "start")
	t.Cleanup(func() {
		if l.cmd.ProcessState == nil {
			_ = l.cmd.Process.Signal(syscall.SIGTERM)
			l.wait(t)
		}
	})
	l.waitFor(t, "change data capture", func(out string) bool {
		return strings.Contains(out, "change data capture from the source's binary log")
	})
	return l
}
