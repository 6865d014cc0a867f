package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/cutover-dev/cutover/mytest"
)

// openAs opens a pool on the server's database db as user with password.
func openAs(t *testing.T, s *mytest.Server, db, user, password string) *sql.DB {
	t.Helper()
	cfg := driver.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = user, password, "tcp", fmt.Sprintf("127.0.0.1:%d", s.Port), db
	pool, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	return pool
}

// domainSeq is the sequence number of domain 0 in a MariaDB GTID list ("0-1-42").
func domainSeq(t *testing.T, gtid string) int64 {
	t.Helper()
	for _, g := range strings.Split(gtid, ",") {
		if f := strings.Split(strings.TrimSpace(g), "-"); len(f) == 3 && f[0] == "0" {
			n, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no domain 0 in the GTID list %q", gtid)
	return 0
}

// Every method opens read views that see exactly the transactions before the
// position it reports, under a writer: on a server of the test's own, where each of
// the writer's inserts is one GTID, the rows every view sees are the GTIDs between
// the table's creation and the position. The role decides the method: one with
// RELOAD takes the global lock, one with LOCK TABLES alone locks the tables, one
// with neither gets views that report their own position (MariaDB).
func TestSnapshotAlignedWithTheBinaryLog(t *testing.T) {
	s := mytest.StartServer(t, mytest.Options{Name: "snapshot"})
	db := mytest.NewDB(t, s)
	db.Exec(t, "CREATE TABLE t (id bigint AUTO_INCREMENT PRIMARY KEY, at datetime(6) NOT NULL DEFAULT now(6)); CREATE TABLE u (id int PRIMARY KEY)")
	db.Exec(t, fmt.Sprintf(`CREATE USER reloader IDENTIFIED BY 'pw'; GRANT RELOAD, REPLICATION CLIENT ON *.* TO reloader; GRANT SELECT ON %[1]s.* TO reloader;
		CREATE USER locker IDENTIFIED BY 'pw'; GRANT REPLICATION CLIENT ON *.* TO locker; GRANT SELECT, LOCK TABLES ON %[1]s.* TO locker;
		CREATE USER reader IDENTIFIED BY 'pw'; GRANT SELECT ON %[1]s.* TO reader;`, "`"+db.Name+"`"))
	before := domainSeq(t, mytest.QueryVal[string](t, db, "SELECT @@global.gtid_binlog_pos"))

	// The writer: one row per transaction, as fast as it can.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var written atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		w := db.Open(t)
		for ctx.Err() == nil {
			if _, err := w.ExecContext(ctx, "INSERT INTO t () VALUES ()"); err == nil {
				written.Add(1)
			}
		}
	}()
	defer func() { stop(); wg.Wait() }()

	for _, c := range []struct{ user, method string }{
		{"reloader", ByGlobalLock}, {"locker", ByTableLocks}, {"reader", BySnapshotPosition},
	} {
		t.Run(c.user, func(t *testing.T) {
			at := written.Load()
			for written.Load() < at+50 { // the writer is writing
				runtime.Gosched()
			}
			var log []string
			snap, err := TakeSnapshot(context.Background(), openAs(t, s, db.Name, c.user, "pw"), true,
				SnapshotOptions{Tables: []string{"`" + db.Name + "`.`t`", "`" + db.Name + "`.`u`"}, Workers: 3},
				func(f string, a ...any) { log = append(log, fmt.Sprintf(f, a...)) })
			if err != nil {
				t.Fatal(err)
			}
			defer snap.Close()
			if snap.Method != c.method {
				t.Errorf("method %s, want %s (log: %q)", snap.Method, c.method, log)
			}
			if !strings.Contains(strings.Join(log, "\n"), "read views by "+c.method) {
				t.Errorf("the log does not say how: %q", log)
			}
			want := domainSeq(t, snap.Pos.GTID) - before
			for i := range snap.Views() {
				conn, err := snap.Acquire(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				defer snap.Release(conn)
				var n int64
				if err := conn.QueryRowContext(context.Background(), "SELECT count(*) FROM t").Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != want {
					t.Errorf("view %d sees %d rows; the position %s is %d transactions after the table's creation", i, n, snap.Pos, want)
				}
			}
			if want == 0 {
				t.Errorf("the snapshot at %s saw nothing of the writer", snap.Pos)
			}
			t.Logf("%s: %d views at %s, writers held %v, %d tries", snap.Method, snap.Views(), snap.Pos, snap.Held, snap.Tries)
		})
	}
}

// A role that may take no lock on MySQL, or a MariaDB source without the binary log,
// gets one message naming the grants that would serve; for a one-shot copy, which
// needs no position, one read view serves.
func TestSnapshotSaysWhichGrantServes(t *testing.T) {
	s := mytest.Source(t)
	db := mytest.NewDB(t, s)
	user := "nolock_" + strconv.Itoa(int(time.Now().UnixNano()%100000))
	db.Exec(t, fmt.Sprintf("CREATE TABLE t (id int PRIMARY KEY); CREATE USER %[1]s IDENTIFIED BY 'pw'; GRANT SELECT ON `%[2]s`.* TO %[1]s", user, db.Name))
	t.Cleanup(func() { _ = s.Exec(context.Background(), "", "DROP USER "+user) })
	_, err := TakeSnapshot(context.Background(), openAs(t, s, db.Name, user, "pw"), false,
		SnapshotOptions{Tables: []string{"`" + db.Name + "`.`t`"}, Workers: 2}, t.Logf)
	if err == nil || !strings.Contains(err.Error(), "GRANT RELOAD ON *.*") || !strings.Contains(err.Error(), "LOCK TABLES") {
		t.Fatalf("err %v, want the grants that would serve", err)
	}
	// A one-shot copy needs no position: the role reads in one view.
	snap, err := TakeSnapshot(context.Background(), openAs(t, s, db.Name, user, "pw"), false,
		SnapshotOptions{Tables: []string{"`" + db.Name + "`.`t`"}, Workers: 2, WithoutPosition: true}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if snap.Method != ByOneView || snap.Views() != 1 {
		t.Errorf("a copy without locks: %s with %d views, want %s with 1", snap.Method, snap.Views(), ByOneView)
	}
}

// Views that wait are pinged: with a wait_timeout shorter than the wait, a view
// acquired after it still reads its snapshot.
func TestSnapshotKeepsIdleViewsAlive(t *testing.T) {
	s := mytest.Source(t)
	db := mytest.NewDB(t, s)
	db.Exec(t, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)")
	cfg := driver.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = mytest.Superuser, mytest.Password, "tcp", fmt.Sprintf("127.0.0.1:%d", s.Port), db.Name
	cfg.Params = map[string]string{"wait_timeout": "1"}
	pool, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	snap, err := TakeSnapshot(context.Background(), pool, true, SnapshotOptions{Workers: 2, KeepAlive: 300 * time.Millisecond, Methods: []string{ByGlobalLock}}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	db.Exec(t, "INSERT INTO t VALUES (3)")
	// Past the server's timeout of 1 s: at least 5 rounds of pings 300 ms apart.
	for range 5 {
		<-snap.pinged
	}
	for range snap.Views() {
		conn, err := snap.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer snap.Release(conn)
		var n int
		if err := conn.QueryRowContext(context.Background(), "SELECT count(*) FROM t").Scan(&n); err != nil {
			t.Fatalf("a view that waited past wait_timeout: %v", err)
		}
		if n != 2 {
			t.Errorf("a view sees %d rows, want the snapshot's 2", n)
		}
	}
}
