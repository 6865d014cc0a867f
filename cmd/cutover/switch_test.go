package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pgtest"
)

// The switch as a user runs it: a dry run changes nothing; a switch killed (-9) during
// its switch hook is undone by the next cutover switch; a switch waits for cutover
// approve; cutover status says where the migration stands at each point; rollback and
// finish end it. Not parallel: a switch blocks every login role of its servers.
func TestSwitchCommand(t *testing.T) {
	src, tgt := pgtest.NewDB(t, pgtest.CronServer(t, "source")), pgtest.NewDB(t, pgtest.CronServer(t, "target"))
	ctx := context.Background()
	app, pw := pgtest.NewRole(t, src.Server, "")
	if err := tgt.Server.Exec(ctx, "postgres", fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", app, pw)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = tgt.Server.Exec(ctx, "postgres", "DROP OWNED BY "+app)
		_ = tgt.Server.Exec(ctx, "postgres", "DROP ROLE "+app)
		for _, db := range []*pgtest.DB{src, tgt} {
			_ = db.Server.Exec(ctx, "postgres", "SELECT cron.unschedule(jobid) FROM cron.job WHERE database = $1", db.Name)
		}
	})
	src.Exec(t, fmt.Sprintf(`CREATE TABLE t (id serial PRIMARY KEY, v text); INSERT INTO t (v) SELECT 'v' || i FROM generate_series(1, 1000) i;
		GRANT ALL ON t, t_id_seq TO %s`, app))
	if err := src.Server.Exec(ctx, "postgres", "SELECT cron.schedule_in_database('nightly', '0 3 * * *', 'VACUUM t', $1)", src.Name); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writePlan := func(cutover string) {
		plan := fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\napi: {listen: \"\"}\ncutover: %s\n", src.URL(), tgt.URL(), cutover)
		if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(plan), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writePlan(`{hook_timeout: 5m, hooks: {switch: ["touch switching; sleep 30"]}}`)
	task := startLive(t, dir, false, "start")
	task.waitFor(t, "change data capture", func(out string) bool { return strings.Contains(out, "change data capture from slot") })
	if r := run(t, dir, nil, "validate"); r.code != 0 {
		t.Fatalf("validate: %+v", r)
	}
	canLogin := func(db *pgtest.DB) bool {
		return pgtest.QueryVal[bool](t, db, "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", app)
	}
	cronActive := func(db *pgtest.DB) int64 {
		return pgtest.QueryVal[int64](t, &pgtest.DB{Server: db.Server, Name: "postgres"}, "SELECT count(*) FROM cron.job WHERE database = $1 AND active", db.Name)
	}
	// streaming waits until the task streams again after an undone switch: the
	// switch's first gate wants its walsender, and a fresh latency.
	taskEnded := make(chan error, 1)
	go func() {
		<-task.done
		taskEnded <- fmt.Errorf("the task ended:\n%s", task.output())
	}()
	streaming := func() {
		t.Helper()
		waitFor(t, src, "SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE database = current_database()", task.cmd, taskEnded)
		waitFor(t, tgt, "SELECT measured_at > now() - interval '3 seconds' FROM cutover.state", task.cmd, taskEnded)
	}
	streaming()

	// A dry run prints the statements and changes nothing.
	r := run(t, dir, nil, "switch", "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, `ALTER ROLE "`+app+`" NOLOGIN`) || !strings.Contains(r.stdout, "cron.alter_job") ||
		!strings.Contains(r.stdout, "pg_create_logical_replication_slot") || !strings.Contains(r.stdout, "would run the switch hook") {
		t.Fatalf("switch --dry-run: %+v", r)
	}
	if !canLogin(src) || cronActive(src) != 1 || pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM cutover.runs") != 0 {
		t.Fatal("switch --dry-run changed something")
	}
	if r := run(t, dir, nil, "status"); r.code != 0 || !strings.Contains(r.stdout, "phase: cdc (replicating source to target)") ||
		!strings.Contains(r.stdout, "live: the source takes the applications' writes; the target is closed to the applications") {
		t.Fatalf("status before the switch: %+v", r)
	}
	if canLogin(tgt) {
		t.Fatal("the application's role can log in to the target during replication: the load did not close it")
	}

	// Killed during its switch hook: users are blocked on the source, and status says so.
	sw := startLive(t, dir, false, "switch")
	sw.waitFor(t, "the switch hook", func(out string) bool { return strings.Contains(out, "switch the applications to the target") })
	waitFile(t, filepath.Join(dir, "switching"), sw)
	if err := sw.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	sw.wait(t)
	r = run(t, dir, nil, "status")
	if r.code != 0 || !strings.Contains(r.stdout, "phase: switching (switching to the target: switch the applications") || !regexp.MustCompile(`blocked on the source: [^\n]*\b`+app+`\b`).MatchString(r.stdout) {
		t.Fatalf("status after a crash during the switch: %+v", r)
	}
	if canLogin(src) || cronActive(src) != 0 {
		t.Fatal("the crashed switch had not blocked the source")
	}
	// The next switch undoes it first, and says so.
	r = run(t, dir, nil, "switch")
	if r.code != 1 || !strings.Contains(r.stderr, "was rolled back") || !strings.Contains(r.stdout, "[undo] block writes on the source") {
		t.Fatalf("switch after a crash: %+v", r)
	}
	if !canLogin(src) || cronActive(src) != 1 || cronActive(tgt) != 0 {
		t.Fatalf("after the undo: login on the source %v, jobs active on the source %d, on the target %d", canLogin(src), cronActive(src), cronActive(tgt))
	}
	streaming() // the task follows the undo: replication forward again
	if r := run(t, dir, nil, "status"); !strings.Contains(r.stdout, "phase: cdc (replicating source to target)") || !strings.Contains(r.stdout, "rolled back") {
		t.Fatalf("status after the undo: %+v", r)
	}
	src.Exec(t, "INSERT INTO t (v) VALUES ('after the undo')")

	// Interrupted (Ctrl-C) during its switch hook: it rolls back by itself.
	if err := os.Remove(filepath.Join(dir, "switching")); err != nil {
		t.Fatal(err)
	}
	streaming()
	sw = startLive(t, dir, false, "switch")
	waitFile(t, filepath.Join(dir, "switching"), sw)
	if err := sw.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code, out := sw.wait(t); code != 1 || !strings.Contains(out, "[undo] block writes on the source") || !canLogin(src) || cronActive(src) != 1 {
		t.Fatalf("switch interrupted: exit %d, login on the source %v, jobs %d\n%s", code, canLogin(src), cronActive(src), out)
	}

	// With approval: the switch waits for cutover approve.
	writePlan(`{approval: true, hooks: {switch: ["true"]}}`)
	streaming()
	sw = startLive(t, dir, false, "switch")
	sw.waitFor(t, "the approval", func(out string) bool { return strings.Contains(out, "waiting for the approval") })
	var approved struct {
		RunID string `json:"run_id"`
	}
	if r := run(t, dir, nil, "approve", "--json"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &approved) != nil || !strings.HasPrefix(approved.RunID, "sw-") {
		t.Fatalf("approve --json: %+v", r)
	}
	if code, out := sw.wait(t); code != 0 || !strings.Contains(out, "write downtime") {
		t.Fatalf("switch: exit %d\n%s", code, out)
	}
	if pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM t WHERE v = 'after the undo'") != 1 || canLogin(src) || !canLogin(tgt) || cronActive(tgt) != 1 {
		t.Fatal("after the switch: a row is missing, or the users or jobs are not on the target")
	}
	if r := run(t, dir, nil, "status", "--json"); !strings.Contains(r.stdout, `"phase": "switched"`) || !strings.Contains(r.stdout, `"replication": "reverse"`) ||
		!strings.Contains(r.stdout, `"live": "target"`) || !strings.Contains(r.stdout, `"other_closed": true`) {
		t.Fatalf("status --json after the switch: %+v", r)
	}
	tgt.Exec(t, "INSERT INTO t (v) VALUES ('written on the target')")
	if r := run(t, dir, nil, "rollback"); r.code != 0 || !strings.Contains(r.stdout, "write downtime") {
		t.Fatalf("rollback: %+v", r)
	}
	if pgtest.QueryVal[int64](t, src, "SELECT count(*) FROM t WHERE v = 'written on the target'") != 1 || !canLogin(src) || cronActive(src) != 1 {
		t.Fatal("after the rollback: the target's write is not on the source, or the users or jobs are not back")
	}
	if r := run(t, dir, nil, "status"); !strings.Contains(r.stdout, "phase: rolled back (rolled back: the source is live") {
		t.Fatalf("status after the rollback: %+v", r)
	}
	var finished struct {
		Finished bool
		Actions  []string
	}
	if r := run(t, dir, nil, "finish", "--yes", "--json"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &finished) != nil || !finished.Finished ||
		!slices.ContainsFunc(finished.Actions, func(a string) bool { return strings.HasPrefix(a, "dropped the replication slot") }) ||
		!slices.Contains(finished.Actions, "left blocked on the target (closed by cutover: the load, a switch or a rollback): role "+app+" has NOLOGIN: ALTER ROLE "+app+" LOGIN") {
		t.Fatalf("finish --json: %+v", r)
	}
	if code, out := task.wait(t); code != 0 {
		t.Fatalf("the task: exit %d\n%s", code, out)
	}
	for _, db := range []*pgtest.DB{src, tgt} {
		if n := pgtest.QueryVal[int64](t, db, "SELECT (SELECT count(*) FROM pg_replication_slots WHERE database = current_database()) + (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_namespace WHERE nspname = 'cutover')"); n != 0 {
			t.Errorf("%s: %d slots, publications or control schemas left", db.Name, n)
		}
	}
}

// waitFile waits until the hook of a running cutover made the file.
func waitFile(t *testing.T, file string, l *live) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(file); err == nil {
			return
		}
		select {
		case <-tick.C:
		case <-l.done:
			t.Fatalf("cutover ended before its hook made %s:\n%s", file, l.output())
		}
	}
}
