package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cutover-dev/cutover/mytest"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/jackc/pgx/v5"
)

// The switch from MariaDB to PostgreSQL and the failback, with the binary, as a user
// runs them: the switch under the application's writes on MariaDB (its account
// locked, its event disabled, its trigger dropped there), identities set past the
// source's counters, the application writing to PostgreSQL, reverse replication
// bringing those writes back to MariaDB, the rollback (PostgreSQL's role blocked),
// forward replication resuming after them, and finish. Every table compared with
// queries of the test's own on both sides after each. Not parallel: the rollback
// blocks every login role of the PostgreSQL server.
func TestMySQLToPostgresSwitchAndRollback(t *testing.T) {
	if !mytest.Installed() {
		t.Skip("MariaDB is not installed: make test installs it")
	}
	ctx := context.Background()
	src, tgt := mytest.NewDB(t, mytest.Source(t)), pgtest.NewDB(t, pgtest.CronServer(t, "target"))
	src.Exec(t, `
		CREATE TABLE counters (id int PRIMARY KEY, v bigint NOT NULL); INSERT INTO counters SELECT seq, 0 FROM seq_0_to_9;
		CREATE TABLE orders (id bigint AUTO_INCREMENT PRIMARY KEY, total decimal(12,2) NOT NULL, note varchar(40) CHARACTER SET latin1,
			tier enum('a','b') NOT NULL DEFAULT 'a', flags set('x','y'), at timestamp(3) NOT NULL DEFAULT current_timestamp(3), payload blob, spot point);
		CREATE TABLE audit (id int AUTO_INCREMENT PRIMARY KEY, order_id bigint NOT NULL);
		CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (order_id) VALUES (NEW.id);
		CREATE TABLE tags (name varchar(20) NOT NULL, weight int NOT NULL, UNIQUE KEY name (name));
		INSERT INTO tags VALUES ('a', 1), ('B', 2);
		INSERT INTO orders (total, note, tier, flags, spot) SELECT seq * 0.5, concat('Zoë ', seq), elt(1 + seq % 2, 'a', 'b'), if(seq % 3 = 0, NULL, 'x,y'),
			if(seq % 2 = 0, ST_GeomFromText(concat('POINT(', seq, ' -', seq, '.5)'), 4326), NULL) FROM seq_1_to_500;
		CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01' DO DELETE FROM counters WHERE id < 0;`)
	schema := strings.ToLower(src.Name)
	// The application's accounts, as provisioning makes them on both servers.
	app := "app_" + strings.TrimPrefix(src.Name, "t")[:12]
	src.Exec(t, fmt.Sprintf("CREATE USER '%[1]s'@'%%' IDENTIFIED BY 'pw'; GRANT SELECT, INSERT, UPDATE, DELETE ON `%[2]s`.* TO '%[1]s'@'%%'", app, src.Name))
	t.Cleanup(func() { _ = src.Server.Exec(ctx, "", fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", app)) })
	pgApp, pgPw := pgtest.NewRole(t, tgt.Server, "")
	mysqlDSN := fmt.Sprintf("%s:pw@tcp(127.0.0.1:%d)/%s", app, src.Server.Port, src.Name)
	t.Cleanup(func() { _ = src.Server.Exec(ctx, "", "DROP DATABASE IF EXISTS `cutover`") })

	tgt.Exec(t, "CREATE EXTENSION postgis") // orders.spot: a PostGIS point, both ways
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(fmt.Sprintf("source: {url: '%s'}\ntarget: {url: '%s'}\napi: {listen: ''}\n"+
		"cdc: {heartbeat: 1s}\ntranslation: {case_insensitive: icu}\ncutover: {exempt_roles: [root], max_downtime: 60s}\n",
		src.URL(), tgt.URL())), 0o600); err != nil {
		t.Fatal(err)
	}
	eventStatus := func() string {
		return mytest.QueryVal[string](t, src, "SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() AND EVENT_NAME = 'nightly'")
	}
	triggers := func() int64 {
		return mytest.QueryVal[int64](t, src, "SELECT count(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()")
	}
	counter := func() int64 {
		return mytest.QueryVal[int64](t, src, "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'orders'")
	}
	same := func(when string) {
		t.Helper()
		pg := tgt.Conn(t)
		defer pg.Close(ctx)
		if _, err := pg.Exec(ctx, "SET search_path = "+schema+"; SET TimeZone = 'UTC'"); err != nil {
			t.Fatal(err)
		}
		my := src.Open(t)
		defer my.Close()
		if _, err := my.Exec("SET time_zone = '+00:00'"); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ table, my, pg string }{
			{"counters", "SELECT id, v FROM counters ORDER BY id", "SELECT c.id::text, c.v::text FROM counters c ORDER BY c.id"},
			{"orders", `SELECT id, total, coalesce(note, 'NULL'), tier, coalesce(flags, 'NULL'), date_format(at, '%Y-%m-%d %H:%i:%s.%f'), coalesce(lower(hex(payload)), 'NULL'),
					coalesce(concat(ST_SRID(spot), ':', lower(hex(ST_AsWKB(spot)))), 'NULL') FROM orders ORDER BY id`,
				`SELECT o.id::text, o.total::text, coalesce(o.note, 'NULL'), o.tier::text, coalesce(array_to_string(o.flags, ','), 'NULL'), to_char(o.at, 'YYYY-MM-DD HH24:MI:SS.US'), coalesce(encode(o.payload, 'hex'), 'NULL'),
					coalesce(public.ST_SRID(o.spot) || ':' || encode(public.ST_AsBinary(o.spot, 'NDR'), 'hex'), 'NULL') FROM orders o ORDER BY o.id`},
			{"audit", "SELECT id, order_id FROM audit ORDER BY id", "SELECT a.id::text, a.order_id::text FROM audit a ORDER BY a.id"},
			{"tags", "SELECT name, weight FROM tags ORDER BY binary name", "SELECT name, weight::text FROM tags ORDER BY name COLLATE \"C\""},
		} {
			sameRows(t, when+": "+c.table, my, c.my, func() [][]string { return pgRows(t, pg, c.pg) }, nil)
		}
	}

	l := startLive(t, dir, false, "start")
	t.Cleanup(func() {
		if l.cmd.ProcessState == nil {
			_ = l.cmd.Process.Signal(syscall.SIGTERM)
			l.wait(t)
		}
	})
	l.waitFor(t, "change data capture", func(out string) bool { return strings.Contains(out, "change data capture from the source") })
	tgt.Exec(t, fmt.Sprintf("GRANT USAGE ON SCHEMA %[1]s TO %[2]s; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %[1]s TO %[2]s; GRANT USAGE ON ALL SEQUENCES IN SCHEMA %[1]s TO %[2]s", schema, pgApp))
	// A transaction that rolled back took auto-increment values on the source only.
	src.Exec(t, "BEGIN; INSERT INTO orders (total) SELECT seq FROM seq_1_to_50; ROLLBACK")
	gap := counter()
	// Validated while the source is quiet: the switch's window then compares only the
	// rows changed since (the applier records their keys).
	if r := run(t, dir, nil, "validate"); r.code != 0 {
		t.Fatalf("validate with the source quiet: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// The switch, under the application's writes on MariaDB.
	stop := make(chan struct{})
	var stopped atomic.Bool
	defer func() {
		if !stopped.Load() {
			close(stop)
		}
	}()
	written := mysqlAppWriter(t, mysqlDSN, stop)
	waitForTarget(t, tgt, l, fmt.Sprintf("SELECT count(*) >= 600 FROM %s.orders", schema))
	if r := run(t, dir, nil, "validate"); r.code != 0 && !strings.Contains(r.stdout+r.stderr, "needs the source to pause") {
		t.Errorf("validate under the writer: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, dir, nil, "switch", "--dry-run"); r.code != 0 || !strings.Contains(r.stdout, "ALTER USER") || !strings.Contains(r.stdout, "pg_create_logical_replication_slot") {
		t.Errorf("switch --dry-run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if triggers() != 1 || eventStatus() != "ENABLED" {
		t.Errorf("after the dry run: %d triggers on the source, its event %s", triggers(), eventStatus())
	}
	r := run(t, dir, nil, "switch", "--yes")
	if r.code != 0 {
		t.Fatalf("switch: exit %d\n%s%s\ncutover start:\n%s", r.code, r.stdout, r.stderr, l.output())
	}
	n := <-written
	stopped.Store(true)
	close(stop)
	t.Logf("switch after %d transactions on the source:\n%s", n, r.stdout)
	if m := regexp.MustCompile(`write downtime: (\S+)`).FindStringSubmatch(r.stdout); m == nil {
		t.Errorf("switch says no write downtime:\n%s", r.stdout)
	}
	// Inside the window: counters by its changed rows (orders and audit changed more
	// rows than a full pass reads, tags has no key: whole).
	if m := regexp.MustCompile(`4 tables equal in \S+: ([123]) by their (\d+) changed rows`).FindStringSubmatch(r.stdout); m == nil || m[2] == "0" {
		t.Errorf("the switch's validation did not compare the tables with a key by their changed rows:\n%s", r.stdout)
	}
	same("after the switch")
	if err := canLogIn(mysqlDSN); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("the application's account on the source after the switch: %v, want it locked", err)
	}
	if triggers() != 0 || eventStatus() != "DISABLED" {
		t.Errorf("after the switch: %d triggers on the source, its event %s; want none and DISABLED", triggers(), eventStatus())
	}
	// The target's identity goes on past the source's counter (the rolled back
	// transaction's values too).
	l.waitFor(t, "reverse replication", func(out string) bool { return strings.Contains(out, "reverse replication (target to source)") })
	appConn, err := pgx.Connect(ctx, tgt.URLAs(pgApp, pgPw))
	if err != nil {
		t.Fatal(err)
	}
	var first int64
	if err := appConn.QueryRow(ctx, "INSERT INTO "+schema+".orders (total, note, tier, flags, payload) VALUES (1.25, 'café', 'b', '{y}', '\\x00ff') RETURNING id").Scan(&first); err != nil {
		t.Fatal(err)
	}
	if first < gap {
		t.Errorf("the target's first order after the switch is %d; the source's counter was at %d", first, gap)
	}
	appConn.Close(ctx)

	// The application writes to PostgreSQL; reverse replication brings it to MariaDB.
	stop2 := make(chan struct{})
	done2 := pgAppWriter(t, tgt.URLAs(pgApp, pgPw), schema, stop2)
	waitForMySQL(t, src, l, fmt.Sprintf("SELECT count(*) >= 100 FROM orders WHERE id > %d", first))
	r = run(t, dir, nil, "rollback")
	close(stop2)
	m := <-done2
	if r.code != 0 {
		t.Fatalf("rollback: exit %d\n%s%s\ncutover start:\n%s", r.code, r.stdout, r.stderr, l.output())
	}
	t.Logf("rollback after %d transactions on the target:\n%s", m, r.stdout)
	same("after the rollback")
	if err := canLogIn(mysqlDSN); err != nil {
		t.Errorf("the application's account on the source after the rollback: %v", err)
	}
	if canLogin := pgtest.QueryVal[bool](t, tgt, "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", pgApp); canLogin {
		t.Errorf("the application's role on the target can log in after the rollback")
	}
	if triggers() != 1 || eventStatus() != "ENABLED" {
		t.Errorf("after the rollback: %d triggers on the source, its event %s; want 1 and ENABLED", triggers(), eventStatus())
	}
	maxID := pgtest.QueryVal[int64](t, tgt, "SELECT max(id) FROM "+schema+".orders")
	if c := counter(); c <= maxID {
		t.Errorf("the source's counter after the rollback is %d, the target's last order %d", c, maxID)
	}

	// Forward replication goes on after what reverse replication wrote.
	l.waitFor(t, "forward replication again", func(out string) bool {
		return strings.Count(out, "change data capture from the source") >= 2
	})
	src.Exec(t, "UPDATE counters SET v = v + 1000 WHERE id = 1; INSERT INTO orders (total) VALUES (-1); INSERT INTO tags VALUES ('c ', 3)")
	waitForTarget(t, tgt, l, fmt.Sprintf("SELECT count(*) = 1 FROM %s.orders WHERE total = -1", schema))
	same("forward again")
	// The PAD SPACE key's guard: the target refuses 'c' as MariaDB would.
	if _, err := tgt.Conn(t).Exec(ctx, "INSERT INTO "+schema+".tags VALUES ('c', 4)"); err == nil || !strings.Contains(err.Error(), "tags_pad") && !strings.Contains(err.Error(), "name_pad") {
		t.Errorf("'c' next to 'c ' on the target: %v, want the trailing spaces guard's unique violation", err)
	}
	if err := l.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, out := l.wait(t); code != 0 {
		t.Fatalf("SIGTERM: exit %d\n%s", code, out)
	}
	if r := run(t, dir, nil, "finish", "--yes"); r.code != 0 || !strings.Contains(r.stdout, "dropped the control schema cutover on the target") {
		t.Errorf("finish: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := mytest.QueryVal[int64](t, src, "SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'cutover'"); n != 0 {
		t.Errorf("finish left the control database on the source")
	}
}

// pgAppWriter is the application on PostgreSQL: each transaction inserts an order and
// counts it in counters, until stop or until its session is ended (the block).
func pgAppWriter(t *testing.T, url, schema string, stop <-chan struct{}) <-chan int64 {
	done := make(chan int64, 1)
	go func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Error(err)
			done <- 0
			return
		}
		defer conn.Close(ctx)
		var n int64
		for {
			select {
			case <-stop:
				done <- n
				return
			default:
			}
			err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "INSERT INTO "+schema+".orders (total, note, tier, flags, payload, spot) VALUES ($1, $2, 'b', '{x}', $3, $4)",
					fmt.Sprintf("%d.%02d", n%97, n%100), fmt.Sprintf("Åsa %d", n), []byte{byte(n), 0, 0xff}, fmt.Sprintf("SRID=4326;POINT(%d -0.25)", n)); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, "UPDATE "+schema+".counters SET v = v + 1 WHERE id = $1", n%10)
				return err
			})
			if err != nil {
				done <- n // blocked: the rollback ended the session
				return
			}
			n++
		}
	}()
	return done
}
