package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/validate"
	"github.com/jackc/pgx/v5"
)

// switchPair is a source and a target on servers with pg_cron, for the switch tests,
// which run one at a time: a switch blocks every login role of a server.
func switchPair(t *testing.T) (src, tgt *pgtest.DB) {
	t.Helper()
	src, tgt = pgtest.NewDB(t, pgtest.CronServer(t, "source")), pgtest.NewDB(t, pgtest.CronServer(t, "target"))
	t.Cleanup(func() {
		// Jobs of a dropped database would fail every minute.
		for _, db := range []*pgtest.DB{src, tgt} {
			_ = db.Server.Exec(context.Background(), "postgres", "SELECT cron.unschedule(jobid) FROM cron.job WHERE database = $1", db.Name)
		}
	})
	return src, tgt
}

// appRole creates the application's login role, the same on both servers.
func appRole(t *testing.T, src, tgt *pgtest.DB) (name, pw string) {
	t.Helper()
	name, pw = pgtest.NewRole(t, src.Server, "")
	ctx := context.Background()
	if err := tgt.Server.Exec(ctx, "postgres", fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", name, pw)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = tgt.Server.Exec(ctx, "postgres", "DROP OWNED BY "+name)
		_ = tgt.Server.Exec(ctx, "postgres", "DROP ROLE IF EXISTS "+name)
	})
	return name, pw
}

const switchSchema = `
	CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL DEFAULT 0);
	CREATE TABLE history (id bigserial PRIMARY KEY, account int NOT NULL REFERENCES accounts, delta int NOT NULL,
	    at timestamptz NOT NULL DEFAULT now());
	CREATE INDEX history_account ON history (account);
	CREATE TABLE ticks (id serial PRIMARY KEY, at timestamptz DEFAULT now());
	CREATE TABLE audit (n bigserial PRIMARY KEY, op text);
	CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO audit (op) VALUES (TG_OP); RETURN NEW; END$$;
	CREATE TRIGGER audit AFTER INSERT OR UPDATE ON history FOR EACH ROW EXECUTE FUNCTION audit();
	INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 1000) g;
	INSERT INTO history (account, delta) SELECT g % 1000 + 1, 1 FROM generate_series(1, 5000) g;
	CREATE TABLE scratch (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text);
	INSERT INTO scratch (note) VALUES ('a table a plan may leave out, with its identity sequence');`

// migration is a source and target with a task replicating between them.
type migration struct {
	src, tgt *pgtest.DB
	app, pw  string
	plan     *plan.Plan
	task     *cdcRun
	dir      string // runbooks and hook files
}

// newMigration loads the switch schema, starts cutover start's CDC and validates, so
// that a switch's gates hold. extra is plan YAML; {{dir}} in it is the test's directory,
// {{src}} the source's URL.
func newMigration(t *testing.T, extra string) *migration {
	t.Helper()
	m := loadedMigration(t, extra)
	m.task = m.start(t)
	if _, err := Validate(context.Background(), m.plan, validate.Options{}); err != nil {
		t.Fatal(err)
	}
	return m
}

// loadedMigration is a migration whose full load is done, with no task running and
// nothing validated.
func loadedMigration(t *testing.T, extra string) *migration {
	t.Helper()
	src, tgt := switchPair(t)
	m := &migration{src: src, tgt: tgt, dir: t.TempDir()}
	m.app, m.pw = appRole(t, src, tgt)
	src.Exec(t, switchSchema+fmt.Sprintf(`;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %[1]s;
		GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO %[1]s`, m.app))
	if err := src.Server.Exec(context.Background(), "postgres", "SELECT cron.schedule_in_database('tick', '* * * * *', 'INSERT INTO ticks DEFAULT VALUES', $1)", src.Name); err != nil {
		t.Fatal(err)
	}
	extra = strings.ReplaceAll(strings.ReplaceAll(extra, "{{dir}}", m.dir), "{{src}}", src.URL())
	m.plan = planFor(t, src.URL(), tgt.URL(), extra)
	if err := FullLoad(context.Background(), m.plan, engine.StartOptions{Out: &bytes.Buffer{}}); err != nil {
		t.Fatalf("full load: %v", err)
	}
	return m
}

// start runs cutover start's change data capture in the background, and waits until
// it has measured the target latency.
func (m *migration) start(t *testing.T) *cdcRun {
	t.Helper()
	r := m.startStreaming(t)
	r.waitTarget(t, m.tgt, "a latency measured", "SELECT coalesce(measured_at > now() - interval '3 seconds', false) FROM cutover.state")
	return r
}

// startStreaming runs cutover start's change data capture in the background, and
// waits until it streams from the slot.
func (m *migration) startStreaming(t *testing.T) *cdcRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &cdcRun{cancel: cancel, done: make(chan error, 1), out: &lockedWriter{w: &bytes.Buffer{}}}
	go func() { r.done <- RunCDC(ctx, m.plan, engine.StartOptions{Out: r.out}) }()
	t.Cleanup(func() { r.stop(t) })
	r.waitTarget(t, m.src, "the slot streaming", "SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE database = current_database()")
	return r
}

// pgbench writes as the application's role until its sessions are ended.
type pgbench struct {
	cmd  *exec.Cmd
	out  *lockedWriter // read while pgbench may still write
	done chan error
}

func (m *migration) pgbench(t *testing.T, clients int) *pgbench {
	t.Helper()
	dir, err := pgtest.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "write.sql")
	if err := os.WriteFile(script, []byte(`\set id random(1, 1000)
UPDATE accounts SET balance = balance + 1 WHERE id = :id;
INSERT INTO history (account, delta) VALUES (:id, 1);
`), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &pgbench{done: make(chan error, 1), out: &lockedWriter{w: &bytes.Buffer{}}}
	b.cmd = exec.Command(filepath.Join(dir, "pgbench"), "-n", "-c", fmt.Sprint(clients), "-T", "600", "-f", script,
		"-h", "127.0.0.1", "-p", fmt.Sprint(m.src.Server.Port), "-U", m.app, m.src.Name)
	b.cmd.Env = append(os.Environ(), "PGPASSWORD="+m.pw)
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	t.Cleanup(func() {
		_ = b.cmd.Process.Kill()
		<-b.done
	})
	start := pgtest.QueryVal[int64](t, m.src, "SELECT count(*) FROM history")
	m.task.waitTarget(t, m.src, "pgbench writing", "SELECT count(*) > $1 + 200 FROM history", start)
	return b
}

// wait waits for pgbench to end (its sessions were ended) and returns its output.
func (b *pgbench) wait(t *testing.T) string {
	t.Helper()
	select {
	case <-b.done:
		b.done <- nil
	case <-time.After(time.Minute):
		t.Fatalf("pgbench still runs a minute after the switch:\n%s", b.out.String())
	}
	return b.out.String()
}

func (m *migration) switchOpts(out *bytes.Buffer) cutover.Options {
	return cutover.Options{Out: out, RunbookDir: m.dir, Yes: true}
}

// canLogin reports whether the application's role can log in on db.
func (m *migration) canLogin(t *testing.T, db *pgtest.DB) bool {
	t.Helper()
	return pgtest.QueryVal[bool](t, db, "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", m.app)
}

// writeAsApp runs SQL on db as the application's role.
func (m *migration) writeAsApp(db *pgtest.DB, sql string) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.URLAs(m.app, m.pw)) // as the application does: not with cutover's settings
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func cronActive(t *testing.T, db *pgtest.DB) (active, inactive int64) {
	t.Helper()
	pg := &pgtest.DB{Server: db.Server, Name: "postgres"}
	active = pgtest.QueryVal[int64](t, pg, "SELECT count(*) FROM cron.job WHERE database = $1 AND active", db.Name)
	inactive = pgtest.QueryVal[int64](t, pg, "SELECT count(*) FROM cron.job WHERE database = $1 AND NOT active", db.Name)
	return active, inactive
}

func TestSwitchAndRollbackUnderLoad(t *testing.T) {
	// max_latency: the suite runs this beside other packages' servers on 2 cores, where
	// pgbench -c 4 may hold CDC seconds behind after the validation before the block;
	// the latency gate has tests of its own.
	m := newMigration(t, `cutover: {max_downtime: 60s, max_latency: 30s, hooks: {switch: ["echo \"$CUTOVER_STEP $CUTOVER_TARGET_URL\" > {{dir}}/switched"], switch_back: ["echo back > {{dir}}/back"]}, qa: {sql: ["SELECT count(*) = 1000 FROM accounts"]}}`)
	bench := m.pgbench(t, 4)

	var out bytes.Buffer
	res, err := Switch(context.Background(), m.plan, m.switchOpts(&out))
	if err != nil {
		t.Fatalf("switch: %v\n%s", err, out.String())
	}
	t.Logf("switch:\n%s", out.String())
	benchOut := bench.wait(t)
	if !strings.Contains(benchOut, "terminat") && !strings.Contains(benchOut, "abort") {
		t.Errorf("pgbench was not cut off by the block:\n%s", benchOut)
	}
	if res.Run.Outcome != "done" || res.Run.Downtime <= 0 {
		t.Fatalf("run outcome %q, downtime %v", res.Run.Outcome, res.Run.Downtime)
	}
	// Every transaction committed on the source before the block is on the target.
	sameTables(t, m.src, m.tgt)
	if got := pgtest.QueryVal[string](t, m.tgt, "SELECT phase FROM cutover.state"); got != control.PhaseSwitched {
		t.Errorf("phase %q, want %q", got, control.PhaseSwitched)
	}
	if m.canLogin(t, m.src) || !m.canLogin(t, m.tgt) {
		t.Errorf("after the switch the application's role logs in to the source: %v, to the target: %v", m.canLogin(t, m.src), m.canLogin(t, m.tgt))
	}
	if a, i := cronActive(t, m.src); a != 0 || i != 1 {
		t.Errorf("source pg_cron jobs: %d active, %d inactive; want the job suspended", a, i)
	}
	if a, _ := cronActive(t, m.tgt); a != 1 {
		t.Errorf("target pg_cron jobs active: %d, want the job moved there", a)
	}
	hook, err := os.ReadFile(filepath.Join(m.dir, "switched"))
	if err != nil || !strings.HasPrefix(string(hook), "switch postgres://") || strings.Contains(string(hook), pgtest.Password) {
		t.Errorf("switch hook wrote %q (%v): want the step and the target URL without its password", hook, err)
	}
	for _, f := range []string{res.Markdown, res.JSON} {
		if b, err := os.ReadFile(f); err != nil || !bytes.Contains(b, []byte("unlock")) {
			t.Errorf("runbook %s: %v %.200s", f, err, b)
		}
	}
	if n := pgtest.QueryVal[int64](t, m.tgt, "SELECT count(*) FROM cutover.runbook WHERE run_id = $1 AND outcome = 'done'", res.Run.ID); n != 16 {
		t.Errorf("%d steps done in the runbook, want 16", n)
	}
	// The source's trigger wrote audit rows, which were replicated; had the target's
	// fired for the replicated rows, sameTables would have found more there.
	auditBefore := pgtest.QueryVal[int64](t, m.tgt, "SELECT count(*) FROM audit")

	// Writes on the target: the sequence was set past the source's values, the
	// trigger fires, and reverse replication brings them to the source.
	maxID := pgtest.QueryVal[int64](t, m.src, "SELECT max(id) FROM history")
	if err := m.writeAsApp(m.tgt, "INSERT INTO history (account, delta) SELECT g, 7 FROM generate_series(1, 50) g; UPDATE accounts SET balance = -1 WHERE id = 1"); err != nil {
		t.Fatalf("write on the target after the switch: %v", err)
	}
	if got := pgtest.QueryVal[int64](t, m.tgt, "SELECT min(id) FROM history WHERE delta = 7"); got <= maxID {
		t.Errorf("a new row on the target took id %d, not past the source's %d", got, maxID)
	}
	if got := pgtest.QueryVal[int64](t, m.tgt, "SELECT count(*) FROM audit"); got != auditBefore+50 {
		t.Errorf("the target's trigger fired %d times for 50 inserts after the switch", got-auditBefore)
	}
	m.task.waitTarget(t, m.src, "reverse replication", "SELECT count(*) = 50 FROM history WHERE delta = 7")
	if err := m.writeAsApp(m.src, "SELECT 1"); err == nil {
		t.Error("the application's role still logs in to the source after the switch")
	}

	// Rollback: the writes made on the target are on the source, which is live again.
	out.Reset()
	if _, err := Rollback(context.Background(), m.plan, m.switchOpts(&out)); err != nil {
		t.Fatalf("rollback: %v\n%s", err, out.String())
	}
	t.Logf("rollback:\n%s", out.String())
	sameTables(t, m.src, m.tgt)
	if !m.canLogin(t, m.src) || m.canLogin(t, m.tgt) {
		t.Errorf("after the rollback the application's role logs in to the source: %v, to the target: %v", m.canLogin(t, m.src), m.canLogin(t, m.tgt))
	}
	if a, _ := cronActive(t, m.src); a != 1 {
		t.Errorf("source pg_cron jobs active after the rollback: %d, want 1", a)
	}
	if a, _ := cronActive(t, m.tgt); a != 0 {
		t.Errorf("target pg_cron jobs active after the rollback: %d, want 0", a)
	}
	if b, err := os.ReadFile(filepath.Join(m.dir, "back")); err != nil || string(b) != "back\n" {
		t.Errorf("switch_back hook: %q %v", b, err)
	}
	// Forward replication resumes, without sending the reverse-replicated rows back.
	if err := m.writeAsApp(m.src, "INSERT INTO history (account, delta) VALUES (2, 9)"); err != nil {
		t.Fatalf("write on the source after the rollback: %v", err)
	}
	caughtUp(t, m.src, m.tgt, m.task)
	sameTables(t, m.src, m.tgt)
	if got := pgtest.QueryVal[string](t, m.tgt, "SELECT phase FROM cutover.state"); got != control.PhaseRolledBack {
		t.Errorf("phase %q, want %q", got, control.PhaseRolledBack)
	}
}

// A step that fails before the unlock rolls the switch back by itself: the source is
// writable, with its users and jobs as they were, and replication goes on.
func TestSwitchRollsBackByItself(t *testing.T) {
	for _, c := range []struct {
		name, extra string
		prepare     func(t *testing.T, m *migration)
		want        string
	}{
		{name: "hook fails", extra: `cutover: {hooks: {switch: ["echo repointing; exit 3"], switch_back: ["touch {{dir}}/back"]}}`, want: "exit status 3"},
		{name: "sync times out", want: "did not apply the sync marker",
			prepare: func(t *testing.T, m *migration) {
				// The applier waits on a row lock held on the target until the test
				// ends, for the change the notify hook makes on the source after the
				// validation before the block (which reads past row locks).
				conn := m.tgt.Conn(t)
				if _, err := conn.Exec(context.Background(), "BEGIN; SELECT FROM accounts WHERE id = 5 FOR UPDATE"); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _, _ = conn.Exec(context.Background(), "ROLLBACK") })
			}},
		{name: "budget exceeded", extra: `cutover: {max_downtime: 2s, hook_timeout: 1m, hooks: {switch: ["sleep 4"]}}`, want: "downtime budget"},
		{name: "validation fails", want: "the validation found differences",
			prepare: func(t *testing.T, m *migration) {
				// The target damages every change to the row: the one the notify hook
				// makes on the source, after the validation before the block, differs
				// inside the window.
				m.tgt.Exec(t, `CREATE FUNCTION damage() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN IF NEW.id = 7 THEN NEW.balance := 42; END IF; RETURN NEW; END$$;
					CREATE TRIGGER damage BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION damage();
					ALTER TABLE accounts ENABLE ALWAYS TRIGGER damage`)
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			extra := c.extra
			switch c.name {
			case "sync times out":
				extra = notifyWrites(t, "UPDATE accounts SET balance = 5 WHERE id = 5", "sync_timeout: 1s")
			case "validation fails":
				extra = notifyWrites(t, "UPDATE accounts SET balance = 41 WHERE id = 7")
			}
			m := newMigration(t, extra)
			if c.prepare != nil {
				c.prepare(t, m)
			}
			var out bytes.Buffer
			res, err := Switch(context.Background(), m.plan, m.switchOpts(&out))
			var rb *cutover.RolledBack
			if !errors.As(err, &rb) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("switch: %v, want a rollback for %q\n%s", err, c.want, out.String())
			}
			if len(rb.UndoErrors) > 0 || res.Run.Outcome != "rolled back" {
				t.Fatalf("outcome %q, undo errors %v\n%s", res.Run.Outcome, rb.UndoErrors, out.String())
			}
			if !m.canLogin(t, m.src) {
				t.Error("the application's role cannot log in to the source after the rollback")
			}
			if err := m.writeAsApp(m.src, "INSERT INTO history (account, delta) VALUES (3, 11)"); err != nil {
				t.Errorf("the source is not writable after the rollback: %v", err)
			}
			if a, i := cronActive(t, m.src); a != 1 || i != 0 {
				t.Errorf("source pg_cron jobs: %d active, %d inactive; want the job as it was", a, i)
			}
			if a, _ := cronActive(t, m.tgt); a != 0 {
				t.Errorf("target pg_cron jobs active: %d", a)
			}
			if got := pgtest.QueryVal[string](t, m.tgt, "SELECT phase || ' ' || replication FROM cutover.state"); got != "cdc forward" {
				t.Errorf("state %q, want cdc forward", got)
			}
			if n := pgtest.QueryVal[int64](t, m.tgt, "SELECT count(*) FROM pg_replication_slots"); n != 0 {
				t.Errorf("%d replication slots left on the target", n)
			}
			if c.name == "hook fails" {
				if _, err := os.Stat(filepath.Join(m.dir, "back")); err != nil {
					t.Errorf("the switch_back hook did not run: %v", err)
				}
			}
			switch c.name {
			case "sync times out": // the applier waits for the lock until the test ends
			case "validation fails": // the damaged row stays damaged
				caughtUp(t, m.src, m.tgt, m.task)
			default:
				caughtUp(t, m.src, m.tgt, m.task)
				sameTables(t, m.src, m.tgt)
			}
		})
	}
}

// cutover.block: read_only, webhooks, the jobs hooks, sequence headroom, and a trigger
// the target has disabled: enabled by the switch as on the source.
func TestSwitchReadOnlyWebhooksAndObjects(t *testing.T) {
	var mu sync.Mutex
	var posted []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Kind, Step string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		mu.Lock()
		posted = append(posted, body.Kind+" "+body.Step)
		mu.Unlock()
	}))
	defer hook.Close()
	m := newMigration(t, fmt.Sprintf(`cutover: {block: read_only, sequence_headroom: 1000, webhooks: [%q],
		hooks: {suspend_jobs: ["echo $CUTOVER_SIDE >> {{dir}}/suspended"], resume_jobs: ["echo $CUTOVER_SIDE >> {{dir}}/resumed"]}}`, hook.URL))
	// The target is read-only since the load (issue 22): the application cannot write
	// there, and a DBA's change there says READ WRITE.
	if err := m.writeAsApp(m.tgt, "INSERT INTO history (account, delta) VALUES (1, 1)"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("a write on the target during replication with block: read_only: %v, want a read-only error", err)
	}
	m.tgt.Exec(t, "BEGIN READ WRITE; ALTER TABLE history DISABLE TRIGGER audit; COMMIT")
	session, err := pgx.Connect(context.Background(), m.src.URLAs(m.app, m.pw)) // ended by the block
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close(context.Background())
	var out bytes.Buffer
	if _, err := Switch(context.Background(), m.plan, m.switchOpts(&out)); err != nil {
		t.Fatalf("switch: %v\n%s", err, out.String())
	}
	if err := session.Ping(context.Background()); err == nil {
		t.Error("a session on the source survived the block")
	}
	if err := m.writeAsApp(m.src, "INSERT INTO history (account, delta) VALUES (1, 1)"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("a write on the source after a read_only switch: %v, want a read-only error", err)
	}
	if got := pgtest.QueryVal[string](t, m.tgt, "SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'audit'"); got != "O" {
		t.Errorf("the target's trigger is %q after the switch, want enabled (O) as on the source", got)
	}
	srcNext := pgtest.QueryVal[int64](t, m.src, "SELECT last_value FROM history_id_seq")
	if got := pgtest.QueryVal[int64](t, m.tgt, "SELECT last_value FROM history_id_seq"); got != srcNext+1000 {
		t.Errorf("target sequence at %d, want the source's %d + 1000", got, srcNext)
	}
	if _, err := Rollback(context.Background(), m.plan, m.switchOpts(&out)); err != nil {
		t.Fatalf("rollback: %v\n%s", err, out.String())
	}
	if err := m.writeAsApp(m.src, "INSERT INTO history (account, delta) VALUES (1, 1)"); err != nil {
		t.Errorf("the source is not writable after the rollback: %v", err)
	}
	if err := m.writeAsApp(m.tgt, "INSERT INTO history (account, delta) VALUES (1, 1)"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("a write on the target after the rollback: %v, want a read-only error", err)
	}
	for file, want := range map[string]string{"suspended": "source\ntarget\n", "resumed": "target\nsource\n"} {
		if b, err := os.ReadFile(filepath.Join(m.dir, file)); err != nil || string(b) != want {
			t.Errorf("%s hooks ran for %q (%v), want %q", file, b, err, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "switch begin,switch done,rollback begin,rollback done"; strings.Join(posted, ",") != want {
		t.Errorf("webhooks got %q, want %q", strings.Join(posted, ","), want)
	}
}

// cutover finish on a switched migration stops reverse replication and removes
// everything cutover made on both sides; the target keeps its data.
func TestFinishAfterSwitch(t *testing.T) {
	// The identity sequence of a table left out stays out of the switch's sequences.
	m := newMigration(t, `tables: {exclude: ["public.scratch"]}`)
	var out bytes.Buffer
	if _, err := Switch(context.Background(), m.plan, m.switchOpts(&out)); err != nil {
		t.Fatalf("switch: %v\n%s", err, out.String())
	}
	m.task.waitTarget(t, m.tgt, "reverse replication", "SELECT EXISTS (SELECT FROM pg_replication_slots WHERE active AND slot_name LIKE '%_rev')")
	// A cutover start rerun after the switch does not load again.
	var again bytes.Buffer
	if err := FullLoad(context.Background(), m.plan, engine.StartOptions{Out: &again}); err != nil || !strings.Contains(again.String(), "the full load is complete already") {
		t.Fatalf("the full load after a switch: %v\n%s", err, again.String())
	}
	out.Reset()
	if err := Finish(context.Background(), m.plan, &out, false); err != nil {
		t.Fatalf("finish: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "the target is live and stays writable") {
		t.Errorf("finish after a switch does not say the target is live:\n%s", out.String())
	}
	select {
	case err := <-m.task.done:
		m.task.cancel = nil
		if err != nil {
			t.Fatalf("the task: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the task still runs a minute after cutover finish")
	}
	for _, db := range []*pgtest.DB{m.src, m.tgt} {
		if n := pgtest.QueryVal[int64](t, db, `SELECT (SELECT count(*) FROM pg_replication_slots WHERE database = current_database())
			+ (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_namespace WHERE nspname = 'cutover')`); n != 0 {
			t.Errorf("%s: %d slots, publications or control schemas left", db.Name, n)
		}
	}
	if n := pgtest.QueryVal[int64](t, m.tgt, "SELECT count(*) FROM accounts"); n != 1000 {
		t.Errorf("the target has %d accounts after finish, want 1000", n)
	}
}
