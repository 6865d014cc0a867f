package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cutover-dev/cutover/mytest"
)

// mysqlAppWriter writes as the application's account on one side until stop is closed or
// its session is ended (the block): each transaction adds an order, which the trigger
// audits, and bumps a counter. It returns how many transactions it saw committed.
func mysqlAppWriter(t *testing.T, dsn string, stop <-chan struct{}) <-chan int64 {
	done := make(chan int64, 1)
	go func() {
		pool, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Error(err)
			done <- 0
			return
		}
		defer pool.Close()
		pool.SetMaxOpenConns(1)
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
				_, err = tx.Exec("INSERT INTO orders (total) VALUES (?)", n%97)
				if err == nil {
					_, err = tx.Exec("UPDATE counters SET v = v + 1 WHERE id = ?", n%10)
				}
				if err == nil {
					err = tx.Commit()
				} else {
					_ = tx.Rollback()
				}
			}
			if err != nil {
				done <- n // locked out: the block ended the session
				return
			}
			n++
		}
	}()
	return done
}

// canLogIn says whether dsn's account can log in.
func canLogIn(dsn string) error {
	pool, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	return pool.Ping()
}

// The cut over between two MariaDB servers with the binary, under the application's
// writes: cutover switch blocks the application's account on the source (its session
// ended mid-stream), waits for a marker through the binary log, validates what
// changed, moves the trigger and the event to the target, raises an auto-increment
// counter the target had lower, starts reverse replication and unlocks the account on
// the target; the application writes there; cutover rollback brings those writes
// back to the source through reverse replication and opens the source again; forward
// replication then goes on without applying reverse replication's writes twice, and a
// second switch works. Every table is compared with CHECKSUM TABLE at each end.
func TestMySQLSwitchAndRollback(t *testing.T) {
	if !mytest.Installed() {
		t.Skip("MariaDB is not installed: make test installs it")
	}
	src, tgt := mytest.NewDB(t, mytest.Source(t)), mytest.NewDB(t, mytest.Target(t))
	src.Exec(t, `CREATE TABLE counters (id int PRIMARY KEY, v bigint NOT NULL); INSERT INTO counters SELECT seq, 0 FROM seq_0_to_9;
		CREATE TABLE orders (id bigint AUTO_INCREMENT PRIMARY KEY, total int NOT NULL);
		CREATE TABLE audit (id bigint AUTO_INCREMENT PRIMARY KEY, order_id bigint NOT NULL, KEY (order_id));
		CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (order_id) VALUES (NEW.id);
		CREATE TABLE gaps (id int AUTO_INCREMENT PRIMARY KEY, v int);
		INSERT INTO gaps (v) SELECT seq FROM seq_1_to_10;
		CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01' DO DELETE FROM counters WHERE id < 0;`)
	dir := t.TempDir()
	control := "ctl_" + tgt.Name
	t.Cleanup(func() {
		_ = tgt.Server.Exec(context.Background(), "", "DROP DATABASE IF EXISTS `"+control+"`")
		_ = src.Server.Exec(context.Background(), "", "DROP DATABASE IF EXISTS `"+control+"`")
	})
	if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(fmt.Sprintf("source: {url: '%s'}\ntarget: {url: '%s'}\ncontrol_schema: %s\napi: {listen: ''}\n"+
		"cdc: {heartbeat: 1s}\ncutover: {exempt_roles: [root], max_downtime: 30s}\n",
		src.URL(), tgt.URL(), control)), 0o600); err != nil {
		t.Fatal(err)
	}
	// The application's account, as provisioning makes it on both servers.
	app := "app_" + strings.TrimPrefix(tgt.Name, "t")[:12]
	for _, db := range []*mytest.DB{src, tgt} {
		db.Exec(t, fmt.Sprintf("CREATE USER '%[1]s'@'%%' IDENTIFIED BY 'pw'; GRANT SELECT, INSERT, UPDATE, DELETE ON `%[2]s`.* TO '%[1]s'@'%%'", app, db.Name))
		t.Cleanup(func() {
			_ = db.Server.Exec(context.Background(), "", fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", app))
		})
	}
	dsn := func(db *mytest.DB) string {
		return fmt.Sprintf("%s:pw@tcp(127.0.0.1:%d)/%s", app, db.Server.Port, db.Name)
	}
	tables := []string{"counters", "orders", "audit", "gaps"}
	eventStatus := func(db *mytest.DB) string {
		return mytest.QueryVal[string](t, db, "SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() AND EVENT_NAME = 'nightly'")
	}
	triggers := func(db *mytest.DB) int64 {
		return mytest.QueryVal[int64](t, db, "SELECT count(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()")
	}
	counter := func(db *mytest.DB) int64 {
		return mytest.QueryVal[int64](t, db, "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'gaps'")
	}

	l := startMySQLTask(t, dir)
	if triggers(tgt) != 0 || eventStatus(tgt) != "DISABLED" {
		t.Fatalf("after the load: %d triggers on the target, its event %s; want none and DISABLED", triggers(tgt), eventStatus(tgt))
	}
	// A transaction that rolled back took auto-increment values on the source only.
	src.Exec(t, "BEGIN; INSERT INTO gaps (v) SELECT seq FROM seq_1_to_50; ROLLBACK")
	if a, b := counter(src), counter(tgt); a <= b {
		t.Fatalf("gaps' counter: %d on the source, %d on the target; want the source's ahead", a, b)
	}

	// The switch, under the application's writes on the source.
	stop := make(chan struct{})
	var stopped atomic.Bool
	defer func() {
		if !stopped.Load() {
			close(stop)
		}
	}()
	written := mysqlAppWriter(t, dsn(src), stop)
	waitForMySQL(t, tgt, l, "SELECT count(*) >= 200 FROM orders")
	// A dry run says what the switch would do, and does none of it.
	if r := run(t, dir, nil, "switch", "--dry-run"); r.code != 0 || !strings.Contains(r.stdout, "ALTER USER") || !strings.Contains(r.stdout, "ALTER EVENT") {
		t.Errorf("switch --dry-run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := mytest.QueryVal[int64](t, src, "SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", control); n != 0 || triggers(src) != 1 || eventStatus(src) != "ENABLED" {
		t.Errorf("after the dry run: the control database on the source %d, %d triggers there, its event %s", n, triggers(src), eventStatus(src))
	}
	r := run(t, dir, nil, "switch", "--yes")
	if r.code != 0 {
		t.Fatalf("switch: exit %d\n%s%s\ncutover start:\n%s", r.code, r.stdout, r.stderr, l.output())
	}
	n := <-written
	stopped.Store(true)
	close(stop)
	if n < 200 {
		t.Errorf("the application committed %d transactions on the source before the block", n)
	}
	t.Logf("switch:\n%s", r.stdout)
	if m := regexp.MustCompile(`write downtime: (\S+)`).FindStringSubmatch(r.stdout); m == nil {
		t.Errorf("switch says no write downtime:\n%s", r.stdout)
	}
	sameMySQLTables(t, src, tgt, tables...)
	if err := canLogIn(dsn(src)); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("the application's account on the source after the switch: %v, want it locked", err)
	}
	if err := canLogIn(dsn(tgt)); err != nil {
		t.Errorf("the application's account on the target after the switch: %v", err)
	}
	if triggers(src) != 0 || triggers(tgt) != 1 || eventStatus(src) != "DISABLED" || eventStatus(tgt) != "ENABLED" {
		t.Errorf("after the switch: triggers %d on the source, %d on the target; the event %s on the source, %s on the target",
			triggers(src), triggers(tgt), eventStatus(src), eventStatus(tgt))
	}
	if a, b := counter(src), counter(tgt); a != b {
		t.Errorf("gaps' counter after the switch: %d on the source, %d on the target", a, b)
	}
	// The changes applied, counted by table: every order an insert, every increment of
	// a counter an update.
	stat := func(table, col string) int64 {
		return mytest.QueryVal[int64](t, tgt, "SELECT "+col+" FROM `"+control+"`.table_stats WHERE table_name = ?", table)
	}
	if got, want := stat("orders", "inserts"), mytest.QueryVal[int64](t, tgt, "SELECT count(*) FROM orders"); got != want {
		t.Errorf("orders: %d inserts counted, %d rows", got, want)
	}
	if got, want := stat("counters", "updates"), mytest.QueryVal[int64](t, tgt, "SELECT sum(v) FROM counters"); got != want {
		t.Errorf("counters: %d updates counted, the counters sum to %d", got, want)
	}

	if r := run(t, dir, nil, "status", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"replication": "reverse"`) || !strings.Contains(r.stdout, `"live": "target"`) ||
		!strings.Contains(r.stdout, `"other_closed": true`) || !strings.Contains(r.stdout, `"kind": "switch"`) || !strings.Contains(r.stdout, `"downtime_seconds"`) {
		t.Errorf("status after the switch: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, dir, nil, "status"); r.code != 0 {
		t.Errorf("status after the switch: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	} else {
		t.Logf("status after the switch:\n%s", r.stdout)
	}
	// The application writes to the target; reverse replication brings it back.
	l.waitFor(t, "reverse replication", func(out string) bool { return strings.Contains(out, "reverse replication (target to source)") })
	before := mytest.QueryVal[int64](t, tgt, "SELECT max(id) FROM orders")
	stop2 := make(chan struct{})
	written = mysqlAppWriter(t, dsn(tgt), stop2)
	waitForMySQL(t, src, l, fmt.Sprintf("SELECT count(*) >= 100 FROM orders WHERE id > %d", before))
	r = run(t, dir, nil, "rollback")
	if r.code != 0 {
		close(stop2)
		t.Fatalf("rollback: exit %d\n%s%s\ncutover start:\n%s", r.code, r.stdout, r.stderr, l.output())
	}
	close(stop2)
	m := <-written
	t.Logf("rollback after %d transactions on the target:\n%s", m, r.stdout)
	sameMySQLTables(t, src, tgt, tables...)
	// Each order has its one audit row: the trigger fired on one side only.
	for _, db := range []*mytest.DB{src, tgt} {
		if got := mytest.QueryVal[int64](t, db, "SELECT count(*) FROM (SELECT o.id FROM orders o LEFT JOIN audit a ON a.order_id = o.id GROUP BY o.id HAVING count(a.id) <> 1) x"); got != 0 {
			t.Errorf("%s: an order without exactly one audit row", db.Name)
		}
	}
	if err := canLogIn(dsn(src)); err != nil {
		t.Errorf("the application's account on the source after the rollback: %v", err)
	}
	if err := canLogIn(dsn(tgt)); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("the application's account on the target after the rollback: %v, want it locked", err)
	}
	if triggers(src) != 1 || triggers(tgt) != 0 || eventStatus(src) != "ENABLED" || eventStatus(tgt) != "DISABLED" {
		t.Errorf("after the rollback: triggers %d on the source, %d on the target; the event %s on the source, %s on the target",
			triggers(src), triggers(tgt), eventStatus(src), eventStatus(tgt))
	}

	// Forward replication goes on from after reverse replication's writes.
	l.waitFor(t, "forward replication again", func(out string) bool {
		return strings.Count(out, "change data capture from the source's binary log") >= 2
	})
	src.Exec(t, "UPDATE counters SET v = v + 1000 WHERE id = 1; INSERT INTO orders (total) VALUES (-1)")
	waitForMySQL(t, tgt, l, "SELECT count(*) = 1 FROM orders WHERE total = -1")
	sameMySQLTables(t, src, tgt, tables...)
	// And a second switch.
	if r := run(t, dir, nil, "switch", "--yes"); r.code != 0 {
		t.Fatalf("second switch: exit %d\n%s%s\ncutover start:\n%s", r.code, r.stdout, r.stderr, l.output())
	}
	sameMySQLTables(t, src, tgt, tables...)
	if err := l.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, out := l.wait(t); code != 0 {
		t.Fatalf("SIGTERM: exit %d\n%s", code, out)
	}
	if r := run(t, dir, nil, "finish", "--yes"); r.code != 0 || !strings.Contains(r.stdout, "the target stays live; left locked on the source") ||
		!strings.Contains(r.stdout, "dropped the control database "+control+" on the source") {
		t.Errorf("finish: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, db := range []*mytest.DB{src, tgt} {
		if n := mytest.QueryVal[int64](t, db, "SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", control); n != 0 {
			t.Errorf("finish left the control database %s on %s", control, db.Name)
		}
	}
}
