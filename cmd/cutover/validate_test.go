package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pgtest"
)

// validate waits for its point of the change stream while the applier is held up: a
// SIGTERM stops it at once (exit 3). Once the task has stopped on an apply error,
// validate says so, once, and exits 3 without waiting.
func TestValidateStopsAtOnce(t *testing.T) {
	src, tgt := pgtest.NewDB(t, pgtest.Source(t)), pgtest.NewDB(t, pgtest.Target(t))
	src.Exec(t, `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one'), (2, 'two');
		CREATE TABLE u (id int PRIMARY KEY)`)
	dir := t.TempDir()
	plan := fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\napi: {listen: \"\"}\ncdc: {on_error: stop}\n", src.URL(), tgt.URL())
	if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
	task := startLive(t, dir, false, "start")
	task.waitFor(t, "change data capture", func(out string) bool { return strings.Contains(out, "change data capture from slot") })

	// The applier waits on a lock of u: the stream does not reach validate's marker.
	ctx := context.Background()
	lock := tgt.Conn(t)
	if _, err := lock.Exec(ctx, "BEGIN; LOCK TABLE u IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	src.Exec(t, `INSERT INTO u VALUES (1)`)
	cmd, done, out := startBinary(t, dir, "validate", "--table", "public.t")
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	// It holds its snapshot of the source, its marker written: it waits for the applier.
	waitFor(t, src, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = current_database()
		AND state = 'idle in transaction' AND query LIKE '%pg_logical_emit_message(false, ''cutover.validate''%')`, cmd, done)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("validate still runs 20 s after SIGTERM (its wait for the marker lasts 2 minutes):\n%s", out.String())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(out.String(), "cutover: interrupted: the validation stopped before it finished") {
		t.Fatalf("validate after SIGTERM: %v\n%s", err, out.String())
	}
	if holds(src, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%cutover.validate%' AND pid <> pg_backend_pid())`) {
		t.Error("validate's snapshot of the source is still open")
	}
	if _, err := lock.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}

	// The target drifted: the task stops on the change it cannot apply.
	tgt.Exec(t, `DELETE FROM t WHERE id = 1`)
	src.Exec(t, `UPDATE t SET v = 'lost' WHERE id = 1`)
	if code, out := task.wait(t); code != 1 || !strings.Contains(out, "the row is not on the target") {
		t.Fatalf("the task: exit %d\n%s", code, out)
	}
	// validate runs change data capture itself, which stops on the same change.
	r := run(t, dir, nil, "validate")
	if r.code != 3 || strings.Count(r.stderr, "cutover:") != 1 ||
		!strings.Contains(r.stderr, "cutover: change data capture, which validate runs as no cutover start does, stopped, so the validation cannot reach its point of the change stream") ||
		!strings.Contains(r.stderr, `update on "public"."t" (id=1)`) || !strings.Contains(r.stderr, "the row is not on the target") {
		t.Fatalf("validate with the stream stopped on an error: %+v", r)
	}
}
