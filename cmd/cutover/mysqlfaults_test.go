package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/internal/failpoint"
	"github.com/cutover-dev/cutover/mytest"
)

// The fault matrix of cutover switch and cutover rollback between MariaDB servers,
// the cases of TestFaultMatrix (faultCases: every step failed, killed, held past the
// budget inside the window, its undo failed) on one migration, under a writer that
// writes as the application's account on the side that is live. After each fault
// (and the rerun that picks a killed run up): the application's account logs in and
// writes on the live side only and is locked on the other, the trigger is on the live
// side only, the event is enabled on the live side only, the control state's phase and
// direction are the state's, both sides hold the same rows (CHECKSUM TABLE) with every
// transaction applied once (the counters it bumps, its order and the order's one audit
// row), and the next run finishes. Not parallel: a switch locks the accounts of its
// servers.
func TestMySQLFaultMatrix(t *testing.T) {
	if os.Getenv("CUTOVER_FAULTS") == "" {
		t.Skip("the fault matrix takes minutes: make test-faults runs it (CUTOVER_FAULTS=1)")
	}
	if !mytest.Installed() {
		t.Skip("MariaDB is not installed: make test installs it")
	}
	began := time.Now()
	r := newMyFaultRig(t)
	cases := faultCases()
	t.Logf("%d cases: %d steps of the switch and %d of the rollback, each failed and killed, the window's held past the budget, the undos failed",
		len(cases), len(cutover.Checklist("switch")), len(cutover.Checklist("rollback")))
	for _, c := range cases {
		if !t.Run(c.name(), func(t *testing.T) { r.fault(t, c) }) {
			t.Fatalf("stopped after %s: the cases after it start from the state it leaves", c.name())
		}
	}
	r.finish(t)
	t.Logf("the writer committed %d transactions; the matrix took %v", r.w.committed.Load(), time.Since(began).Round(time.Second))
}

// myFaultRig is a MariaDB migration under the application's writer, with cutover start
// running throughout.
type myFaultRig struct {
	src, tgt *mytest.DB
	dir      string
	control  string
	app      string
	task     *live
	w        *myAppWriter
	state    string          // "cdc" (the source is live) or "switched"
	said     strings.Builder // what the runs of the case said, for its failure
}

// run runs cutover in the rig's directory and keeps what it said.
func (r *myFaultRig) run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	res := run(t, r.dir, env, args...)
	fmt.Fprintf(&r.said, "$ cutover %s (%s): exit %d\n%s%s", strings.Join(args, " "), strings.Join(env, " "), res.code, res.stdout, res.stderr)
	return res
}

const myFaultSchema = `
	CREATE TABLE counters (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
	INSERT INTO counters SELECT seq, 0 FROM seq_1_to_50;
	CREATE TABLE orders (id bigint AUTO_INCREMENT PRIMARY KEY, counter int NOT NULL, at datetime(6) NOT NULL DEFAULT now(6));
	CREATE TABLE audit (id bigint AUTO_INCREMENT PRIMARY KEY, order_id bigint NOT NULL, KEY (order_id));
	CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (order_id) VALUES (NEW.id);
	CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01' DO DELETE FROM audit WHERE order_id < 0;`

func newMyFaultRig(t *testing.T) *myFaultRig {
	t.Helper()
	ctx := context.Background()
	r := &myFaultRig{src: mytest.NewDB(t, mytest.Source(t)), tgt: mytest.NewDB(t, mytest.Target(t)), dir: t.TempDir(), state: "cdc"}
	r.control = "ctl_" + r.tgt.Name
	r.app = "app_" + strings.TrimPrefix(r.tgt.Name, "t")[:12]
	if len(streamLock(r.control)) > 64 {
		t.Fatalf("the control database's name %s is too long for the lock names the test reads", r.control)
	}
	t.Cleanup(func() {
		for _, db := range []*mytest.DB{r.src, r.tgt} {
			_ = db.Server.Exec(ctx, "", "DROP DATABASE IF EXISTS `"+r.control+"`")
		}
	})
	r.src.Exec(t, myFaultSchema)
	// The application's account, as provisioning makes it on both servers.
	for _, db := range []*mytest.DB{r.src, r.tgt} {
		db.Exec(t, fmt.Sprintf("CREATE USER '%[1]s'@'%%' IDENTIFIED BY 'pw'; GRANT SELECT, INSERT, UPDATE, DELETE ON `%[2]s`.* TO '%[1]s'@'%%'", r.app, db.Name))
		t.Cleanup(func() { _ = db.Server.Exec(ctx, "", fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", r.app)) })
	}
	r.writePlan(t, "5m")
	r.task = startLive(t, r.dir, false, "start")
	r.task.waitFor(t, "change data capture", func(out string) bool {
		return strings.Contains(out, "change data capture from the source's binary log")
	})
	r.w = startMyAppWriter(t, r.dsn(r.src))
	r.check(t, "cdc")
	return r
}

// dsn is the application's data source name on db's side.
func (r *myFaultRig) dsn(db *mytest.DB) string {
	return fmt.Sprintf("%s:pw@tcp(127.0.0.1:%d)/%s?timeout=10s", r.app, db.Server.Port, db.Name)
}

// writePlan writes the plan with the downtime budget.
func (r *myFaultRig) writePlan(t *testing.T, budget string) {
	t.Helper()
	plan := fmt.Sprintf("source: {url: '%s'}\ntarget: {url: '%s'}\ncontrol_schema: %s\napi: {listen: ''}\ncdc: {heartbeat: 1s}\n"+
		"cutover: {exempt_roles: [root], max_downtime: %s}\n", r.src.URL(), r.tgt.URL(), r.control, budget)
	if err := os.WriteFile(filepath.Join(r.dir, "cutover.yaml"), []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
}

// fault runs one case from the state its kind starts in, and leaves the migration in
// the state its kind ends in (switched after a switch case, cdc after a rollback's).
func (r *myFaultRig) fault(t *testing.T, c faultCase) {
	from, to := "cdc", "switched"
	if c.kind == "rollback" {
		from, to = "switched", "cdc"
	}
	r.said.Reset()
	if r.state != from {
		r.complete(t, other(c.kind), r.state)
	}
	budget := "5m"
	if c.fault == failpoint.Budget {
		budget = "3s"
	}
	r.writePlan(t, budget)
	r.ready(t)
	points := c.name()
	if c.fault == failpoint.Undo {
		points = c.kind + ":" + c.step + ":" + failpoint.Fail + "," + c.name()
	}
	res := r.run(t, []string{failpoint.Env + "=" + points}, c.kind)
	out := res.stdout + res.stderr
	ends := from // where the fault leaves the migration
	if c.afterUnlock {
		ends = to
	}
	switch c.fault {
	case failpoint.Kill, failpoint.Undo:
		if c.fault == failpoint.Kill && res.code != -1 {
			t.Fatalf("%s with the failpoint: exit %d, want killed\n%s", c.kind, res.code, out)
		}
		if c.fault == failpoint.Undo && (res.code != 1 || !strings.Contains(out, "undo(s) failed") || !strings.Contains(out, "failpoint "+c.name())) {
			t.Fatalf("%s with the failpoints %s: exit %d, want 1 and the undo's failure\n%s", c.kind, points, res.code, out)
		}
		r.lockReleased(t)
		r.writePlan(t, "5m")
		rec := r.run(t, nil, c.kind)
		rout := rec.stdout + rec.stderr
		if !strings.Contains(rout, "picking it up from its runbook") {
			t.Fatalf("the next %s does not pick the interrupted one up: exit %d\n%s", c.kind, rec.code, rout)
		}
		if wantCode := map[bool]int{true: 0, false: 1}[c.afterUnlock]; rec.code != wantCode {
			t.Fatalf("the %s that picks the interrupted one up: exit %d, want %d\n%s", c.kind, rec.code, wantCode, rout)
		}
		if strings.Contains(rout, "undo(s) failed") || strings.Contains(rout, "rollback incomplete") || strings.Contains(rout, "undo failed after") {
			t.Fatalf("the %s that picks the interrupted one up: an undo failed\n%s", c.kind, rout)
		}
	default:
		want := "rolled back"
		if c.gate {
			want = "failpoint " + c.name()
		} else if c.afterUnlock {
			want = "after the users were unlocked"
		} else if c.fault == failpoint.Budget {
			want = "the downtime budget ran out"
		}
		if res.code != 1 || !strings.Contains(out, want) {
			t.Fatalf("%s with the failpoint: exit %d, want 1 and %q\n%s", c.kind, res.code, want, out)
		}
		if strings.Contains(out, "undo(s) failed") || strings.Contains(out, "rollback incomplete") {
			t.Fatalf("%s with the failpoint: an undo failed\n%s", c.kind, out)
		}
	}
	r.writePlan(t, "5m")
	r.check(t, ends)
	if ends == from {
		r.complete(t, c.kind, from)
		return
	}
	// The run is complete; another says why it does not run again.
	r.ready(t)
	again := r.run(t, nil, c.kind)
	why := map[string]string{"switch": "already switched to the target", "rollback": "only a switched migration rolls back"}[c.kind]
	if again.code != 1 || !strings.Contains(again.stdout+again.stderr, why) {
		t.Fatalf("%s after a complete one: exit %d, want 1 and %q\n%s%s", c.kind, again.code, why, again.stdout, again.stderr)
	}
}

// complete runs kind without a fault from state and checks where it leaves the migration.
func (r *myFaultRig) complete(t *testing.T, kind, from string) {
	t.Helper()
	if want := map[string]string{"switch": "cdc", "rollback": "switched"}[kind]; from != want {
		t.Fatalf("a %s from state %s", kind, from)
	}
	r.ready(t)
	res := r.run(t, nil, kind)
	if res.code != 0 {
		t.Fatalf("%s (no fault) from %s: exit %d\n%s%s", kind, from, res.code, res.stdout, res.stderr)
	}
	r.check(t, map[string]string{"switch": "switched", "rollback": "cdc"}[kind])
}

// streamLock is the lock cutover start's stream holds on the side it writes to, and
// switchLock the one a switch or a rollback holds on the target (mysql/streamlock.go).
func streamLock(control string) string { return "cutover.stream." + control }
func switchLock(control string) string { return "cutover.switch." + control }

// ready waits until the task streams in the direction of the state, what the gates of
// a switch or a rollback want: forward replication holds its lock on the target,
// reverse replication on the source.
func (r *myFaultRig) ready(t *testing.T) {
	t.Helper()
	on, what := r.tgt, "forward replication streaming"
	if r.state == "switched" {
		on, what = r.src, "reverse replication streaming"
	}
	r.wait(t, func() string { return what }, func() bool {
		return mysqlHolds(on, fmt.Sprintf("SELECT IS_USED_LOCK('%s') IS NOT NULL", streamLock(r.control)))
	})
}

// lockReleased waits until no session holds the switch lock: the killed run's session
// ends once the server sees its client gone.
func (r *myFaultRig) lockReleased(t *testing.T) {
	t.Helper()
	r.wait(t, func() string { return "the switch lock released" }, func() bool {
		return mysqlHolds(r.tgt, fmt.Sprintf("SELECT IS_USED_LOCK('%s') IS NULL", switchLock(r.control)))
	})
}

// wait polls cond until it holds; after a minute it fails, with what the task said.
func (r *myFaultRig) wait(t *testing.T, what func() string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Minute)
	for !cond() {
		select {
		case <-r.task.done:
			t.Fatalf("cutover start ended before %s:\n%s", what(), r.task.output())
		case <-deadline:
			out := r.task.output()
			said := r.said.String()
			t.Fatalf("no %s after a minute; cutover start said, last:\n%s\nthe case's runs said, last:\n%s", what(), out[max(0, len(out)-3000):], said[max(0, len(said)-12000):])
		case <-tick.C:
		}
	}
}

// tally is what the writer's transactions leave on a side: the increments, the
// orders, the audit rows, and the orders with an audit row.
const tally = `SELECT concat_ws(' ', (SELECT coalesce(sum(n), 0) FROM counters), (SELECT count(*) FROM orders),
	(SELECT count(*) FROM audit), (SELECT count(DISTINCT order_id) FROM audit))`

// check holds the writer, lets replication catch up, and checks the migration is in
// state: the application's account writes on the live side and is locked on the
// other, the trigger and the enabled event are on the live side only, the control
// state's phase and direction are the state's, and both sides hold the same rows,
// each transaction once. The writer goes on, on the live side.
func (r *myFaultRig) check(t *testing.T, state string) {
	t.Helper()
	r.w.hold()
	defer r.w.release()
	r.state = state
	live, closed := r.src, r.tgt
	if state == "switched" {
		live, closed = r.tgt, r.src
	}
	// Caught up: with the writer held, the other side reaches what the live side has.
	want := mytest.QueryVal[string](t, live, tally)
	var got string
	r.wait(t, func() string {
		return fmt.Sprintf("replication caught up: the live side's increments, orders, audit rows, orders audited %s, the other's %s; the target's state %s; %s; %s",
			want, got, mytest.QueryVal[string](t, r.tgt, "SELECT concat_ws(' ', phase, replication, reverse_slot) FROM `"+r.control+"`.state"),
			onlyOn(t, "orders", "id, at", r.src, r.tgt), onlyOn(t, "audit", "id, order_id", r.src, r.tgt))
	}, func() bool {
		pool, err := closed.Server.Open(closed.Name)
		if err != nil {
			return false
		}
		defer pool.Close()
		return pool.QueryRow(tally).Scan(&got) == nil && got == want
	})
	if f := strings.Fields(want); f[0] != f[1] || f[1] != f[2] || f[2] != f[3] {
		t.Errorf("the transactions are not each applied once (the increments, orders, audit rows, orders audited): %s", want)
	} else if n, _ := strconv.ParseInt(f[1], 10, 64); n < r.w.committed.Load() {
		t.Errorf("the writer committed %d transactions, the live side has %d orders", r.w.committed.Load(), n)
	}
	sameMySQLTables(t, r.src, r.tgt, "counters", "orders", "audit")

	ctl := "`" + r.control + "`.state"
	phase := mytest.QueryVal[string](t, r.tgt, "SELECT concat(phase, ' ', replication, ' ', reverse_slot <> '') FROM "+ctl+" WHERE id = 1")
	if want := map[string]string{"cdc": "cdc forward 0|rolled back forward 0", "switched": "switched reverse 1"}[state]; !strings.Contains("|"+want+"|", "|"+phase+"|") {
		t.Errorf("state %s: the phase, replication and whether reverse replication is recorded are %q, want %s", state, phase, want)
	}

	if err := r.w.probe(r.dsn(live)); err != nil {
		t.Errorf("state %s: the live side does not take the application's writes: %v", state, err)
	}
	if err := r.w.probe(r.dsn(closed)); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("state %s: the application's account on the closed side: %v, want it locked", state, err)
	}
	triggers := func(db *mytest.DB) int64 {
		return mytest.QueryVal[int64](t, db, "SELECT count(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()")
	}
	event := func(db *mytest.DB) string {
		return mytest.QueryVal[string](t, db, "SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() AND EVENT_NAME = 'nightly'")
	}
	if triggers(live) != 1 || triggers(closed) != 0 || event(live) != "ENABLED" || event(closed) != "DISABLED" {
		t.Errorf("state %s: triggers %d on the live side, %d on the other; the event %s on the live side, %s on the other; want 1, 0, ENABLED, DISABLED",
			state, triggers(live), triggers(closed), event(live), event(closed))
	}
	r.w.writeTo(r.dsn(live))
}

// finish ends the migration where the cases left it: the live side stays writable and
// the other stays closed.
func (r *myFaultRig) finish(t *testing.T) {
	t.Helper()
	r.w.stopWriting()
	res := run(t, r.dir, nil, "finish", "--yes")
	if res.code != 0 {
		t.Fatalf("finish in state %s: exit %d\n%s%s", r.state, res.code, res.stdout, res.stderr)
	}
	t.Logf("finish in state %s:\n%s", r.state, res.stdout)
	live, closed := r.src, r.tgt
	if r.state == "switched" {
		live, closed = r.tgt, r.src
	}
	if err := r.w.probe(r.dsn(live)); err != nil {
		t.Errorf("after finish the live side does not take the application's writes: %v", err)
	}
	if err := r.w.probe(r.dsn(closed)); err == nil {
		t.Errorf("after finish the closed side takes the application's writes too")
	}
}

// myAppWriter writes as the application's account: in each transaction an increment
// and an order, which the trigger audits. It goes on through blocks (its ended session
// and a refused login are retried) until stopped.
type myAppWriter struct {
	mu        sync.Mutex // held by a transaction, and by hold
	dsn       string
	db        *sql.DB
	committed atomic.Int64
	stop      chan struct{}
	done      chan struct{}
}

func startMyAppWriter(t *testing.T, dsn string) *myAppWriter {
	w := &myAppWriter{dsn: dsn, stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	t.Cleanup(w.stopWriting)
	return w
}

func (w *myAppWriter) loop() {
	defer close(w.done)
	pace := time.NewTicker(5 * time.Millisecond) // at most one transaction (or a retry) each
	defer pace.Stop()
	for n := int64(0); ; {
		select {
		case <-w.stop:
			return
		case <-pace.C:
		}
		if w.write(n) {
			n++
		}
	}
}

// write runs transaction n on the live side; false when it could not.
func (w *myAppWriter) write(n int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if w.db == nil {
		db, err := sql.Open("mysql", w.dsn)
		if err != nil {
			return false
		}
		db.SetMaxOpenConns(1)
		w.db = db
	}
	id := n%50 + 1
	err := func() error {
		tx, err := w.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, "UPDATE counters SET n = n + 1 WHERE id = ?", id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO orders (counter) VALUES (?)", id); err != nil {
			return err
		}
		return tx.Commit()
	}()
	if err != nil {
		w.db.Close()
		w.db = nil
		return false
	}
	w.committed.Add(1)
	return true
}

// hold waits for the transaction under way and keeps the writer from the next.
func (w *myAppWriter) hold() { w.mu.Lock() }

func (w *myAppWriter) release() { w.mu.Unlock() }

// writeTo moves the writer to dsn; called while held.
func (w *myAppWriter) writeTo(dsn string) {
	if dsn != w.dsn && w.db != nil {
		w.db.Close()
		w.db = nil
	}
	w.dsn = dsn
}

// probe writes as the application on dsn and rolls back: a write that leaves nothing
// (and takes no auto-increment value).
func (w *myAppWriter) probe(dsn string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, "UPDATE counters SET n = n + 1 WHERE id = 1")
	return err
}

func (w *myAppWriter) stopWriting() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.db != nil {
		w.db.Close()
		w.db = nil
	}
}

// onlyOn says which rows of table (by cols) one side has and the other lacks: how
// many, and the first and the last few.
func onlyOn(t *testing.T, table, cols string, src, tgt *mytest.DB) string {
	read := func(db *mytest.DB) []string {
		rows, err := db.Open(t).Query("SELECT concat_ws(' ', " + cols + ") FROM " + table + " ORDER BY id")
		if err != nil {
			return nil
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var v string
			if rows.Scan(&v) == nil {
				out = append(out, v)
			}
		}
		return out
	}
	a, b := read(src), read(tgt)
	diff := func(x, y []string) string {
		in := map[string]bool{}
		for _, v := range y {
			in[v] = true
		}
		var only []string
		for _, v := range x {
			if !in[v] {
				only = append(only, v)
			}
		}
		if len(only) > 6 {
			only = append(only[:3], append([]string{"..."}, only[len(only)-3:]...)...)
		}
		return strings.Join(only, ", ")
	}
	return fmt.Sprintf("%s only on the source: %s; only on the target: %s", table, diff(a, b), diff(b, a))
}
