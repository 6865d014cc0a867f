package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cutover-dev/cutover/mytest"
)

// cutover.block: read_only between two MariaDB servers of the test's own (read_only is
// the whole server's): the load closes the target's server; the switch, under the
// application's writes, makes the source's read-only (the application's next write is
// refused) and gives the target's its value back; the rollback does the reverse, with
// the writes made on the target brought back. Each server's read_only and every
// table are checked at each end.
func TestMySQLSwitchReadOnly(t *testing.T) {
	if !mytest.Installed() {
		t.Skip("MariaDB is not installed: make test installs it")
	}
	src := mytest.NewDB(t, mytest.StartServer(t, mytest.Options{Name: "ro-source"}))
	tgt := mytest.NewDB(t, mytest.StartServer(t, mytest.Options{Name: "ro-target"}))
	src.Exec(t, `CREATE TABLE counters (id int PRIMARY KEY, v bigint NOT NULL); INSERT INTO counters SELECT seq, 0 FROM seq_0_to_9;
		CREATE TABLE orders (id bigint AUTO_INCREMENT PRIMARY KEY, total int NOT NULL)`)
	dir := t.TempDir()
	control := "ctl_" + tgt.Name
	if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(fmt.Sprintf("source: {url: '%s'}\ntarget: {url: '%s'}\ncontrol_schema: %s\napi: {listen: ''}\n"+
		"cdc: {heartbeat: 1s}\ncutover: {block: read_only, exempt_roles: [root], max_downtime: 30s}\n",
		src.URL(), tgt.URL(), control)), 0o600); err != nil {
		t.Fatal(err)
	}
	app := "app_ro"
	for _, db := range []*mytest.DB{src, tgt} {
		db.Exec(t, fmt.Sprintf("CREATE USER '%[1]s'@'%%' IDENTIFIED BY 'pw'; GRANT SELECT, INSERT, UPDATE, DELETE ON `%[2]s`.* TO '%[1]s'@'%%'", app, db.Name))
	}
	dsn := func(db *mytest.DB) string {
		return fmt.Sprintf("%s:pw@tcp(127.0.0.1:%d)/%s", app, db.Server.Port, db.Name)
	}
	readOnly := func(db *mytest.DB) bool { return mytest.QueryVal[int64](t, db, "SELECT @@GLOBAL.read_only") == 1 }
	tables := []string{"counters", "orders"}

	l := startMySQLTask(t, dir)
	if !readOnly(tgt) || readOnly(src) {
		t.Fatalf("after the load: read_only %v on the source, %v on the target; want the target's alone", readOnly(src), readOnly(tgt))
	}
	if st := mytest.QueryVal[string](t, tgt, "SELECT was FROM `"+control+"`.read_only_servers WHERE side = 'target'"); st != "OFF" {
		t.Errorf("the target's read_only recorded as %q, want OFF", st)
	}

	stop := make(chan struct{})
	written := mysqlAppWriter(t, dsn(src), stop)
	waitForMySQL(t, tgt, l, "SELECT count(*) >= 100 FROM orders")
	r := run(t, dir, nil, "switch", "--yes")
	close(stop)
	if r.code != 0 {
		t.Fatalf("switch: exit %d\n%s%s\ncutover start:\n%s", r.code, r.stdout, r.stderr, l.output())
	}
	if n := <-written; n < 100 {
		t.Errorf("the application committed %d transactions on the source before the block", n)
	}
	t.Logf("switch:\n%s", r.stdout)
	sameMySQLTables(t, src, tgt, tables...)
	if !readOnly(src) || readOnly(tgt) {
		t.Errorf("after the switch: read_only %v on the source, %v on the target; want the source's alone", readOnly(src), readOnly(tgt))
	}
	if _, err := openAppDB(t, dsn(src)).Exec("INSERT INTO orders (total) VALUES (1)"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("the application's insert on the source after the switch: %v, want it refused (read-only)", err)
	}

	l.waitFor(t, "reverse replication", func(out string) bool { return strings.Contains(out, "reverse replication (target to source)") })
	before := mytest.QueryVal[int64](t, tgt, "SELECT max(id) FROM orders")
	stop2 := make(chan struct{})
	written = mysqlAppWriter(t, dsn(tgt), stop2)
	waitForMySQL(t, src, l, fmt.Sprintf("SELECT count(*) >= 50 FROM orders WHERE id > %d", before))
	r = run(t, dir, nil, "rollback")
	close(stop2)
	<-written
	if r.code != 0 {
		t.Fatalf("rollback: exit %d\n%s%s\ncutover start:\n%s", r.code, r.stdout, r.stderr, l.output())
	}
	t.Logf("rollback:\n%s", r.stdout)
	sameMySQLTables(t, src, tgt, tables...)
	if readOnly(src) || !readOnly(tgt) {
		t.Errorf("after the rollback: read_only %v on the source, %v on the target; want the target's alone", readOnly(src), readOnly(tgt))
	}
	if _, err := openAppDB(t, dsn(src)).Exec("INSERT INTO orders (total) VALUES (2)"); err != nil {
		t.Errorf("the application's insert on the source after the rollback: %v", err)
	}
	_ = l.cmd.Process.Signal(syscall.SIGTERM)
	l.wait(t)
	if r := run(t, dir, nil, "finish", "--yes"); r.code != 0 || !strings.Contains(r.stdout, "read_only") {
		t.Errorf("finish: exit %d, want it to name the target's read_only\n%s%s", r.code, r.stdout, r.stderr)
	}
	_ = tgt.Server.Exec(context.Background(), "", "SET GLOBAL read_only = OFF")
}

// openAppDB opens a pool of one connection on dsn, closed when the test ends.
func openAppDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}
