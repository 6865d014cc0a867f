package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/internal/failpoint"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/jackc/pgx/v5"
)

// The fault matrix of cutover switch and cutover rollback, generated from their step
// lists: every step fails once its action ran, every step is killed (SIGKILL) once its
// action ran, every step inside the downtime window holds until the budget runs out,
// and every step before the unlock that has an undo fails and then its undo fails (the
// next run runs the undos again). All of it under a writer that writes as the application, on the side that is
// live. After each fault (and the rerun that picks a killed run up): the side that
// should be live takes the application's writes and the other does not (issue 22: one
// writable side at every moment, before the first switch too), the roles and
// jobs are where the state says, the slots and publications are the ones that state
// has, both sides hold the same rows with every transaction applied once, and the next
// run finishes (or says why it will not). Not parallel: a switch blocks the login roles
// of its servers.
func TestFaultMatrix(t *testing.T) {
	if os.Getenv("CUTOVER_FAULTS") == "" {
		t.Skip("the fault matrix takes minutes: make test-faults runs it (CUTOVER_FAULTS=1)")
	}
	rig := newFaultRig(t)
	cases := faultCases()
	t.Logf("%d cases: %d steps of the switch and %d of the rollback, each failed and killed, the window's held past the budget, the undos failed",
		len(cases), len(cutover.Checklist("switch")), len(cutover.Checklist("rollback")))
	for _, c := range cases {
		if !t.Run(c.name(), func(t *testing.T) { rig.fault(t, c) }) {
			t.Fatalf("stopped after %s: the cases after it start from the state it leaves", c.name())
		}
	}
	rig.finish(t)
	t.Logf("the writer committed %d transactions", rig.w.committed.Load())
}

// finish ends the migration where the cases left it: the live side stays writable, the
// other stays closed, and finish says what it leaves closed.
func (r *faultRig) finish(t *testing.T) {
	t.Helper()
	r.w.stopWriting()
	res := run(t, r.dir, nil, "finish", "--yes")
	live, closed, other := r.src, r.tgt, "target"
	if r.state == "switched" {
		live, closed, other = r.tgt, r.src, "source"
	}
	if res.code != 0 || !strings.Contains(res.stdout, "left blocked on the "+other) {
		t.Fatalf("finish in state %s: exit %d, want it to say what it leaves blocked on the %s\n%s%s", r.state, res.code, other, res.stdout, res.stderr)
	}
	if err := r.w.probe(live.URLAs(r.app, r.pw)); err != nil {
		t.Errorf("after finish the live side does not take the application's writes: %v", err)
	}
	if err := r.w.probe(closed.URLAs(r.app, r.pw)); err == nil {
		t.Errorf("after finish the %s takes the application's writes too", other)
	}
}

// faultCase is one fault in one step of a switch or a rollback.
type faultCase struct {
	kind, step, fault string
	// afterUnlock: the step comes after the unlock (a fault leaves the run switched
	// or rolled back, not undone); unlock: it is the unlock.
	afterUnlock bool
	gate        bool // the step is a gate: a fault there means the run did not begin
}

func (c faultCase) name() string { return c.kind + ":" + c.step + ":" + c.fault }

// faultCases interleaves the switch's cases and the rollback's, so that the run that
// completes one case (a switch) leaves the migration where the next one (a rollback)
// starts.
func faultCases() []faultCase {
	list := func(kind string) []faultCase {
		var out []faultCase
		after := false
		for _, st := range cutover.Checklist(kind) {
			faults := []string{failpoint.Fail, failpoint.Kill}
			if st.Window {
				faults = append(faults, failpoint.Budget)
			}
			if st.Undo && !st.Gate && !after {
				faults = append(faults, failpoint.Undo) // the step fails, then its undo
			}
			for _, f := range faults {
				out = append(out, faultCase{kind: kind, step: st.Name, fault: f, afterUnlock: after, gate: st.Gate})
			}
			if st.Name == "unlock" {
				after = true
			}
		}
		return out
	}
	sw, rb := list("switch"), list("rollback")
	var out []faultCase
	for i := 0; i < max(len(sw), len(rb)); i++ {
		if i < len(sw) {
			out = append(out, sw[i])
		}
		if i < len(rb) {
			out = append(out, rb[i])
		}
	}
	return out
}

// faultRig is a migration under a writer, with cutover start running throughout.
type faultRig struct {
	src, tgt *pgtest.DB
	dir      string
	app, pw  string
	task     *live
	w        *appWriter
	state    string            // "cdc" (the source is live) or "switched"
	expect   map[string]string // state -> the slots and publications it has
}

const faultSchema = `
	CREATE TABLE counters (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
	INSERT INTO counters SELECT g, 0 FROM generate_series(1, 50) g;
	CREATE TABLE events (id bigserial PRIMARY KEY, counter int NOT NULL REFERENCES counters, at timestamptz NOT NULL DEFAULT now());
	CREATE TABLE journal (note text NOT NULL);
	ALTER TABLE journal REPLICA IDENTITY FULL;`

func newFaultRig(t *testing.T) *faultRig {
	t.Helper()
	ctx := context.Background()
	r := &faultRig{src: pgtest.NewDB(t, pgtest.CronServer(t, "source")), tgt: pgtest.NewDB(t, pgtest.CronServer(t, "target")),
		dir: t.TempDir(), state: "cdc", expect: map[string]string{}}
	r.app, r.pw = pgtest.NewRole(t, r.src.Server, "")
	if err := r.tgt.Server.Exec(ctx, "postgres", fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", r.app, r.pw)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = r.tgt.Server.Exec(ctx, "postgres", "DROP OWNED BY "+r.app)
		_ = r.tgt.Server.Exec(ctx, "postgres", "DROP ROLE "+r.app)
		for _, db := range []*pgtest.DB{r.src, r.tgt} {
			_ = db.Server.Exec(ctx, "postgres", "SELECT cron.unschedule(jobid) FROM cron.job WHERE database = $1", db.Name)
		}
	})
	r.src.Exec(t, faultSchema+fmt.Sprintf("GRANT SELECT, INSERT, UPDATE ON counters, events, journal TO %[1]s; GRANT USAGE ON SEQUENCE events_id_seq TO %[1]s", r.app))
	if err := r.src.Server.Exec(ctx, "postgres", "SELECT cron.schedule_in_database('nightly', '0 3 * * *', 'SELECT 1', $1)", r.src.Name); err != nil {
		t.Fatal(err)
	}
	r.writePlan(t, "5m")
	r.task = startLive(t, r.dir, false, "start")
	r.task.waitFor(t, "change data capture", func(out string) bool { return strings.Contains(out, "change data capture from slot") })
	if res := run(t, r.dir, nil, "validate"); res.code != 0 {
		t.Fatalf("validate: %+v", res)
	}
	r.w = startAppWriter(t, r.src.URLAs(r.app, r.pw))
	r.check(t, "cdc")
	return r
}

// writePlan writes the plan with the downtime budget.
func (r *faultRig) writePlan(t *testing.T, budget string) {
	t.Helper()
	plan := fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\napi: {listen: \"\"}\ncutover: {max_downtime: %s}\n", r.src.URL(), r.tgt.URL(), budget)
	if err := os.WriteFile(filepath.Join(r.dir, "cutover.yaml"), []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
}

// fault runs one case from the state its kind starts in, and leaves the migration in
// the state its kind ends in (switched after a switch case, cdc after a rollback's).
func (r *faultRig) fault(t *testing.T, c faultCase) {
	from, to := "cdc", "switched"
	if c.kind == "rollback" {
		from, to = "switched", "cdc"
	}
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
	res := run(t, r.dir, []string{failpoint.Env + "=" + points}, c.kind)
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
		rec := run(t, r.dir, nil, c.kind)
		rout := rec.stdout + rec.stderr
		if !strings.Contains(rout, "picking it up from its runbook") {
			t.Fatalf("the next %s does not pick the killed one up: exit %d\n%s", c.kind, rec.code, rout)
		}
		if wantCode := map[bool]int{true: 0, false: 1}[c.afterUnlock]; rec.code != wantCode {
			t.Fatalf("the %s that picks the killed one up: exit %d, want %d\n%s", c.kind, rec.code, wantCode, rout)
		}
		if strings.Contains(rout, "undo(s) failed") || strings.Contains(rout, "rollback incomplete") || strings.Contains(rout, "undo failed after") {
			t.Fatalf("the %s that picks the killed one up: an undo failed\n%s", c.kind, rout)
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
	again := run(t, r.dir, nil, c.kind)
	why := map[string]string{"switch": "already switched to the target", "rollback": "only a switched migration rolls back"}[c.kind]
	if again.code != 1 || !strings.Contains(again.stdout+again.stderr, why) {
		t.Fatalf("%s after a complete one: exit %d, want 1 and %q\n%s%s", c.kind, again.code, why, again.stdout, again.stderr)
	}
}

func other(kind string) string {
	if kind == "switch" {
		return "rollback"
	}
	return "switch"
}

// complete runs kind without a fault from state and checks where it leaves the migration.
func (r *faultRig) complete(t *testing.T, kind, from string) {
	t.Helper()
	if want := map[string]string{"switch": "cdc", "rollback": "switched"}[kind]; from != want {
		t.Fatalf("a %s from state %s", kind, from)
	}
	r.ready(t)
	res := run(t, r.dir, nil, kind)
	if res.code != 0 {
		t.Fatalf("%s (no fault) from %s: exit %d\n%s%s", kind, from, res.code, res.stdout, res.stderr)
	}
	r.check(t, map[string]string{"switch": "switched", "rollback": "cdc"}[kind])
}

// ready waits until the task streams in the direction of the state and has measured
// the latency: what a switch's or rollback's gates want.
func (r *faultRig) ready(t *testing.T) {
	t.Helper()
	if r.state == "cdc" {
		r.wait(t, r.src, "the change stream", "SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE database = current_database()")
		r.wait(t, r.tgt, "a latency measured", "SELECT measured_at > now() - interval '3 seconds' FROM cutover.state")
	} else {
		r.wait(t, r.tgt, "reverse replication streaming", "SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE database = current_database()")
	}
}

// lockReleased waits until no session holds the switch lock: the killed run's
// sessions end once the server sees their client gone.
func (r *faultRig) lockReleased(t *testing.T) {
	t.Helper()
	const lock = int64(7_413_502_931)
	r.wait(t, r.tgt, "the switch lock released", fmt.Sprintf(`SELECT NOT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND classid = %d AND objid = %d
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))`, lock>>32, lock&0xffffffff))
}

// wait polls db until cond holds; after a minute it fails, with what the task said.
func (r *faultRig) wait(t *testing.T, db *pgtest.DB, what, cond string) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Minute)
	for !holds(db, cond) {
		select {
		case <-r.task.done:
			t.Fatalf("cutover start ended before %s:\n%s", what, r.task.output())
		case <-deadline:
			out := r.task.output()
			t.Fatalf("no %s after a minute (%s); cutover start said, last:\n%s", what, cond, out[max(0, len(out)-3000):])
		case <-tick.C:
		}
	}
}

// check holds the writer, lets replication catch up, and checks the migration is in
// state: the live side takes the application's writes and the other does not, the
// application's role and the job are on the live side, the slots and publications
// are the state's, and both sides hold the same rows, each transaction once. The
// writer goes on, on the live side.
func (r *faultRig) check(t *testing.T, state string) {
	t.Helper()
	r.w.hold()
	defer r.w.release()
	r.state = state
	live, closed := r.src, r.tgt
	if state == "switched" {
		live, closed = r.tgt, r.src
	}
	// Caught up: a marker from the live side applied on the other.
	marker := pgtest.QueryVal[string](t, live, "SELECT pg_logical_emit_message(true, 'test', 'check')::text")
	r.wait(t, closed, "replication caught up", fmt.Sprintf("SELECT applied_position <> '' AND applied_position::pg_lsn >= '%s'::pg_lsn FROM cutover.state", marker))

	phase := pgtest.QueryVal[string](t, r.tgt, "SELECT phase || ' ' || replication FROM cutover.state")
	if want := map[string]string{"cdc": "cdc forward|rolled back forward", "switched": "switched reverse"}[state]; !strings.Contains("|"+want+"|", "|"+phase+"|") {
		t.Errorf("state %s: the phase and replication are %q, want %s", state, phase, want)
	}
	sameSums(t, r.src, r.tgt, "counters", "events", "journal")
	once := pgtest.QueryVal[string](t, live, `SELECT format('%s %s %s %s', (SELECT sum(n) FROM counters), (SELECT count(*) FROM events),
		(SELECT count(*) FROM journal), (SELECT count(DISTINCT note) FROM journal))`)
	if f := strings.Fields(once); f[0] != f[1] || f[1] != f[2] || f[2] != f[3] {
		t.Errorf("the transactions are not each applied once (the increments, events, journal rows, distinct journal rows): %s", once)
	}

	if err := r.w.probe(live.URLAs(r.app, r.pw)); err != nil {
		t.Errorf("the live side (%s) does not take the application's writes: %v", live.Server.Name, err)
	}
	if err := r.w.probe(closed.URLAs(r.app, r.pw)); err == nil {
		t.Errorf("state %s: the %s takes the application's writes too", state, closed.Server.Name)
	}
	login := func(db *pgtest.DB) bool {
		return pgtest.QueryVal[bool](t, db, "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", r.app)
	}
	jobs := func(db *pgtest.DB) int64 {
		return pgtest.QueryVal[int64](t, &pgtest.DB{Server: db.Server, Name: "postgres"}, "SELECT count(*) FROM cron.job WHERE database = $1 AND active", db.Name)
	}
	if !login(live) || jobs(live) != 1 || jobs(closed) != 0 || login(closed) {
		t.Errorf("state %s: the application logs in to the live side %v, to the other %v; active jobs on the live side %d, on the other %d",
			state, login(live), login(closed), jobs(live), jobs(closed))
	}
	objects := pgtest.QueryVal[string](t, r.src, `SELECT format('source slots %s, publications %s', (SELECT string_agg(slot_name, ',' ORDER BY 1) FROM pg_replication_slots WHERE database = current_database()),
		(SELECT string_agg(pubname, ',' ORDER BY 1) FROM pg_publication))`) + "; " +
		pgtest.QueryVal[string](t, r.tgt, `SELECT format('target slots %s, publications %s', (SELECT string_agg(slot_name, ',' ORDER BY 1) FROM pg_replication_slots WHERE database = current_database()),
		(SELECT string_agg(pubname, ',' ORDER BY 1) FROM pg_publication))`)
	if want, ok := r.expect[state]; !ok {
		r.expect[state] = objects
	} else if objects != want {
		t.Errorf("state %s: %s; want %s", state, objects, want)
	}
	r.w.writeTo(live.URLAs(r.app, r.pw))
}

// appWriter writes as the application: in each transaction an increment, an event and
// a journal row (a table without a key, where a transaction applied twice would leave
// two). It goes on through blocks (a refused login is retried) until stopped.
type appWriter struct {
	mu        sync.Mutex // held by a transaction, and by hold
	url       string
	conn      *pgx.Conn
	committed atomic.Int64
	stop      chan struct{}
	done      chan struct{}
}

func startAppWriter(t *testing.T, url string) *appWriter {
	w := &appWriter{url: url, stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	t.Cleanup(w.stopWriting)
	return w
}

func (w *appWriter) loop() {
	defer close(w.done)
	pace := time.NewTicker(5 * time.Millisecond) // the writer's pace: at most one transaction (or a retry) each
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
func (w *appWriter) write(n int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if w.conn == nil {
		conn, err := pgx.Connect(ctx, w.url)
		if err != nil {
			return false
		}
		w.conn = conn
	}
	id := n%50 + 1
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue("UPDATE counters SET n = n + 1 WHERE id = $1", id)
	b.Queue("INSERT INTO events (counter) VALUES ($1)", id)
	b.Queue("INSERT INTO journal (note) VALUES ($1)", fmt.Sprintf("w-%d-%d", time.Now().UnixNano(), n))
	b.Queue("COMMIT")
	if err := w.conn.SendBatch(ctx, b).Close(); err != nil {
		w.conn.Close(context.Background())
		w.conn = nil
		return false
	}
	w.committed.Add(1)
	return true
}

// hold waits for the transaction under way and keeps the writer from the next.
func (w *appWriter) hold() { w.mu.Lock() }

func (w *appWriter) release() { w.mu.Unlock() }

// writeTo moves the writer to url; called while held.
func (w *appWriter) writeTo(url string) {
	if url != w.url && w.conn != nil {
		w.conn.Close(context.Background())
		w.conn = nil
	}
	w.url = url
}

// probe writes as the application on url and rolls back: a write that leaves nothing.
func (w *appWriter) probe(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, "INSERT INTO journal (note) VALUES ('probe')")
	return err
}

func (w *appWriter) stopWriting() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn != nil {
		w.conn.Close(context.Background())
		w.conn = nil
	}
}
