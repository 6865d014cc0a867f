package main

// These tests run the real cutover binary against real servers, as a user would.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/jackc/pgx/v5"
)

// binary is built with the race detector; plainBinary without, for measuring memory
// (the race detector multiplies it).
var binary, plainBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cutover-bin-")
	if err != nil {
		panic(err)
	}
	binary, plainBinary = filepath.Join(dir, "cutover"), filepath.Join(dir, "cutover-plain")
	for _, args := range [][]string{{"build", "-race", "-o", binary, "."}, {"build", "-o", plainBinary, "."}} {
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build cutover: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	code := pgtest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String()}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		r.code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

// startBinary starts cutover in dir in the background: the process, its exit on done,
// and its output (read once it ended).
func startBinary(t *testing.T, dir string, args ...string) (*exec.Cmd, <-chan error, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return cmd, done, &out
}

func TestHelpAndVersion(t *testing.T) {
	dir := t.TempDir()
	if r := run(t, dir, nil, "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "cutover ") {
		t.Fatalf("version: %+v", r)
	}
	var v struct{ Version, Go string }
	if r := run(t, dir, nil, "version", "--json"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil || v.Version == "" || !strings.HasPrefix(v.Go, "go") {
		t.Fatalf("version --json: %+v", r)
	}
	for _, cmd := range [][]string{{"--help"}, {"init", "--help"}, {"check", "--help"}, {"version", "--help"}} {
		if r := run(t, dir, nil, cmd...); r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("%v: %+v", cmd, r)
		}
	}
	if r := run(t, dir, nil, "check", "--no-such-flag"); r.code != 2 || !strings.Contains(r.stderr, "unknown flag: --no-such-flag") {
		t.Errorf("bad flag: %+v", r)
	}
	if r := run(t, dir, nil, "frobnicate"); r.code != 2 {
		t.Errorf("unknown command: %+v", r)
	}
	if r := run(t, dir, nil, "check"); r.code != 2 || !strings.Contains(r.stderr, "cutover init --source URL --target URL -o cutover.yaml") {
		t.Errorf("missing plan: %+v", r)
	}
	// ~/.pgpass is libpq's: init offers it for a PostgreSQL plan only.
	for _, c := range []struct {
		scheme string
		pgpass bool
	}{{"postgres", true}, {"mysql", false}} {
		r := run(t, dir, nil, "init", "--source", c.scheme+"://u:pw@h:1/a", "--target", c.scheme+"://u:pw@h:2/a")
		if r.code != 0 || !strings.Contains(r.stderr, "export CUTOVER_SOURCE_PASSWORD") || strings.Contains(r.stderr, "~/.pgpass") != c.pgpass {
			t.Errorf("init with %s URLs: %+v", c.scheme, r)
		}
	}
}

// The README's path: init writes a plan, check reports pagila's country table, the fix clears it.
func TestInitAndCheckPagila(t *testing.T) {
	ctx := context.Background()
	src, tgt := pgtest.NewDB(t, pgtest.Source(t)), pgtest.NewDB(t, pgtest.Target(t))
	if err := pgtest.LoadPagila(ctx, src.Server, src.Name); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := run(t, dir, nil, "init", "--source", src.URL(), "--target", tgt.URL(), "-o", "cutover.yaml")
	if r.code != 0 || !strings.Contains(r.stderr, "CUTOVER_SOURCE_PASSWORD and CUTOVER_TARGET_PASSWORD") {
		t.Fatalf("init: %+v", r)
	}
	written, err := os.ReadFile(filepath.Join(dir, "cutover.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(written), pgtest.Password) {
		t.Fatal("init wrote the password into the plan")
	}
	if r := run(t, dir, nil, "init", "--source", src.URL(), "--target", tgt.URL(), "-o", "cutover.yaml"); r.code != 2 || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("init overwrote a plan: %+v", r)
	}

	// Without the password variables the plan names what is missing.
	r = run(t, dir, []string{"CUTOVER_SOURCE_PASSWORD=", "CUTOVER_TARGET_PASSWORD="}, "check")
	if r.code != 1 {
		t.Fatalf("check with empty passwords: %+v", r)
	}
	env := []string{"CUTOVER_SOURCE_PASSWORD=" + pgtest.Password, "CUTOVER_TARGET_PASSWORD=" + pgtest.Password}
	r = run(t, dir, env, "check")
	if r.code != 1 || !strings.Contains(r.stdout, "ERROR    table public.country") ||
		!strings.Contains(r.stdout, "fix: ALTER TABLE public.country REPLICA IDENTITY DEFAULT;") {
		t.Fatalf("check: code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, pgtest.Password) {
		t.Fatal("check printed a password")
	}
	r = run(t, dir, env, "check", "--json")
	var report struct {
		Findings []struct{ Severity, Check, Object, Problem, Fix string }
		Counts   struct{ Errors int }
	}
	if err := json.Unmarshal([]byte(r.stdout), &report); err != nil {
		t.Fatalf("--json output: %v\n%s", err, r.stdout)
	}
	if r.code != 1 || report.Counts.Errors != 3 || report.Findings[0].Object != "table public.country" || report.Findings[0].Severity != "error" {
		t.Fatalf("json report: %+v", report)
	}

	src.Exec(t, "ALTER TABLE public.country REPLICA IDENTITY DEFAULT")
	src.Exec(t, "ALTER TABLE public.payment_p0000_default ADD PRIMARY KEY (payment_id)")
	src.Exec(t, "ALTER TABLE public.payment_p2007_07_max ADD PRIMARY KEY (payment_id)")
	if r := run(t, dir, env, "check"); r.code != 0 || !strings.Contains(r.stdout, "0 error(s)") {
		t.Fatalf("check after the fixes: code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestBadInputsGetOneClearMessage(t *testing.T) {
	src, tgt := pgtest.NewDB(t, pgtest.Source(t)), pgtest.NewDB(t, pgtest.Target(t))
	dir := t.TempDir()
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	urls := fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\n", src.URL(), tgt.URL())

	write(urls + "tabels: {include: [public.*]}\n")
	r := run(t, dir, nil, "check")
	if r.code != 2 || strings.TrimSpace(r.stderr) != `cutover: cutover.yaml:3:1: tabels: unknown key (did you mean "tables"?); expected one of: source, target, tables, full_load, cdc, validation, api, control_schema, cutover, types, translation` {
		t.Fatalf("typo: %+v", r)
	}
	if r.stdout != "" || strings.Contains(r.stderr, pgtest.Password) {
		t.Fatalf("typo output: %+v", r)
	}

	write(urls + "full_load: {parallel: lots}\n")
	if r := run(t, dir, nil, "check"); r.code != 2 || !strings.Contains(r.stderr, `cutover.yaml:3:23: full_load.parallel: expected a whole number, got "lots"`) {
		t.Fatalf("wrong type: %+v", r)
	}

	wrong := "Wr0ng-Passw0rd"
	write(fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\n", src.URLAs(pgtest.Superuser, wrong), tgt.URL()))
	r = run(t, dir, nil, "check")
	if r.code != 1 || !strings.Contains(r.stdout, "password authentication failed for role \"postgres\"") {
		t.Fatalf("wrong password: %+v", r)
	}
	if strings.Contains(r.stdout+r.stderr, wrong) || strings.Contains(r.stdout+r.stderr, pgtest.Password) {
		t.Fatalf("a password was printed:\n%s%s", r.stdout, r.stderr)
	}

	write(fmt.Sprintf("source: {url: \"postgres://postgres@127.0.0.1:1/app?connect_timeout=5\"}\ntarget: {url: %q}\n", tgt.URL()))
	r = run(t, dir, nil, "check")
	if r.code != 1 || !strings.Contains(r.stdout, "cannot connect to 127.0.0.1:1: connection refused") {
		t.Fatalf("unreachable: %+v", r)
	}
}

func TestWalLevelReplica(t *testing.T) {
	s := pgtest.StartServer(t, pgtest.Options{Name: "replica", Settings: map[string]string{"wal_level": "replica"}})
	src, tgt := pgtest.NewDB(t, s), pgtest.NewDB(t, pgtest.Target(t))
	src.Exec(t, "CREATE TABLE t (id int PRIMARY KEY)")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "plan.yaml"), []byte(fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\n", src.URL(), tgt.URL())), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, dir, nil, "check", "-c", "plan.yaml")
	if r.code != 1 || !strings.Contains(r.stdout, "wal_level is replica: change data capture needs logical") ||
		!strings.Contains(r.stdout, "fix: ALTER SYSTEM SET wal_level = logical; then restart the source server") {
		t.Fatalf("wal_level: %+v", r)
	}
}

// tableSums is each table's row count and a sum of row hashes, by independent SQL.
// sameSums checks that each table holds the same rows on both sides.
func sameSums(t *testing.T, src, tgt *pgtest.DB, tables ...string) {
	t.Helper()
	a, b := tableSums(t, src, tables...), tableSums(t, tgt, tables...)
	for _, tbl := range tables {
		if a[tbl] != b[tbl] {
			t.Errorf("table %s differs: source %s, target %s", tbl, a[tbl], b[tbl])
		}
	}
}

func tableSums(t *testing.T, db *pgtest.DB, tables ...string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	for _, tbl := range tables {
		sums[tbl] = pgtest.QueryVal[string](t, db, fmt.Sprintf("SELECT count(*) || ':' || coalesce(sum(hashtext(x::text)::bigint), 0) FROM %s x", tbl))
	}
	return sums
}

// holds says whether cond, a boolean query, is true on db now.
func holds(db *pgtest.DB, cond string) bool {
	ctx := context.Background()
	conn, err := db.Server.Connect(ctx, db.Name)
	if err != nil {
		return false
	}
	defer conn.Close(ctx)
	var ok bool
	return conn.QueryRow(ctx, cond).Scan(&ok) == nil && ok
}

// waitFor polls the target until cond holds or the process ends.
func waitFor(t *testing.T, db *pgtest.DB, cond string, proc *exec.Cmd, done <-chan error) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !holds(db, cond) {
		select {
		case err := <-done:
			t.Fatalf("cutover ended (%v) before %s", err, cond)
		case <-tick.C:
		}
	}
}

// A crash (kill -9) and an interrupt (Ctrl-C) in the middle of the load: the rerun keeps
// the tables already loaded, redoes the rest, and the copy ends identical.
func TestResumeAfterCrashAndInterrupt(t *testing.T) {
	src, tgt := pgtest.NewDB(t, pgtest.Source(t)), pgtest.NewDB(t, pgtest.Target(t))
	tables := []string{"t1", "t2", "t3", "t4"}
	for i, tbl := range tables {
		src.Exec(t, fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, pad text); INSERT INTO %s SELECT g, repeat('x', 100) FROM generate_series(1, %d) g",
			tbl, tbl, 400000-i*50000))
	}
	dir := t.TempDir()
	plan := fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\nfull_load: {parallel: 1}\n", src.URL(), tgt.URL())
	if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func() (*exec.Cmd, <-chan error, *bytes.Buffer) {
		return startBinary(t, dir, "start", "--full-load-only")
	}

	// Crash once the first (largest) table is loaded and the next one is being copied.
	cmd, done, _ := start()
	waitFor(t, tgt, "SELECT count(*) FILTER (WHERE state = 'loaded') = 1 AND count(*) FILTER (WHERE state = 'loading') = 1 FROM cutover.table_stats", cmd, done)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-done
	firstLoaded := pgtest.QueryVal[string](t, tgt, "SELECT table_name || ' ' || finished_at::text FROM cutover.table_stats WHERE state = 'loaded'")

	// Interrupt the rerun once it has loaded one more table.
	cmd, done, out := start()
	waitFor(t, tgt, "SELECT count(*) FILTER (WHERE state = 'loaded') = 2 FROM cutover.table_stats", cmd, done)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := <-done
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(out.String(), "interrupted: run cutover start --full-load-only again to resume") {
		t.Fatalf("interrupt: %v\n%s", err, out.String())
	}
	if phase := pgtest.QueryVal[string](t, tgt, "SELECT phase FROM cutover.state"); phase != "loading" {
		t.Fatalf("phase after the interrupt = %s", phase)
	}

	r := run(t, dir, nil, "start", "--full-load-only")
	if r.code != 0 || !strings.Contains(r.stdout, "resuming the loading phase") || !strings.Contains(r.stdout, "(2 loaded before)") {
		t.Fatalf("resume: %+v", r)
	}
	if got := pgtest.QueryVal[string](t, tgt, "SELECT table_name || ' ' || finished_at::text FROM cutover.table_stats WHERE table_name = $1", strings.Fields(firstLoaded)[0]); got != firstLoaded {
		t.Fatalf("the table loaded before the crash was copied again: %s, then %s", firstLoaded, got)
	}
	sameSums(t, src, tgt, tables...)
	// The resumed runs' temporary slots went with their connections; the migration's slot stays.
	slot := pgtest.QueryVal[string](t, tgt, "SELECT slot FROM cutover.state")
	if got := pgtest.QueryVal[string](t, src, "SELECT string_agg(slot_name, ',') FROM pg_replication_slots WHERE slot_name LIKE 'cutover%'"); got != slot {
		t.Fatalf("slots on the source: %s, want only %s", got, slot)
	}
	src.Exec(t, "SELECT pg_drop_replication_slot('"+slot+"')")
	if r := run(t, dir, nil, "status", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"phase": "loaded"`) {
		t.Fatalf("status: %+v", r)
	}
}

// live is cutover running in the background, on a pseudo-terminal as on a person's
// screen, or with its output in a pipe; its output is read as it comes.
type live struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	more chan struct{} // a read came in
	done chan struct{} // the output ended: the program and its terminal or pipe are gone
}

func startLive(t *testing.T, dir string, terminal bool, args ...string) *live {
	t.Helper()
	return startLiveEnv(t, dir, terminal, nil, args...)
}

// startLiveEnv is startLive with env added to the environment.
func startLiveEnv(t *testing.T, dir string, terminal bool, env []string, args ...string) *live {
	t.Helper()
	bin := binary
	if len(args) > 0 && args[0] == "plain" {
		bin, args = plainBinary, args[1:]
	}
	l := &live{cmd: exec.Command(bin, args...), more: make(chan struct{}, 1), done: make(chan struct{})}
	l.cmd.Dir = dir
	if env != nil {
		l.cmd.Env = append(os.Environ(), env...)
	}
	var out io.ReadCloser
	var err error
	if terminal {
		out, err = pty.StartWithSize(l.cmd, &pty.Winsize{Rows: 40, Cols: 120})
	} else {
		// Both streams, in one pipe: what failed is on stderr.
		var pw *os.File
		if out, pw, err = os.Pipe(); err == nil {
			l.cmd.Stdout, l.cmd.Stderr = pw, pw
			err = l.cmd.Start()
			pw.Close()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(l.done)
		buf := make([]byte, 4096)
		for {
			n, err := out.Read(buf)
			l.mu.Lock()
			l.out.Write(buf[:n])
			l.mu.Unlock()
			select {
			case l.more <- struct{}{}:
			default:
			}
			if err != nil {
				return // EOF, or EIO from a terminal whose program exited
			}
		}
	}()
	t.Cleanup(func() {
		_ = l.cmd.Process.Kill()
		<-l.done
		out.Close()
	})
	return l
}

func (l *live) output() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.out.String()
}

// waitFor waits until the output satisfies cond.
func (l *live) waitFor(t *testing.T, what string, cond func(out string) bool) {
	t.Helper()
	for !cond(l.output()) {
		select {
		case <-l.more:
		case <-l.done:
			if !cond(l.output()) {
				t.Fatalf("cutover ended before %s:\n%q", what, l.output())
			}
		}
	}
}

// wait waits for the program to end and returns its exit code and whole output.
func (l *live) wait(t *testing.T) (int, string) {
	t.Helper()
	<-l.done
	err := l.cmd.Wait()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return l.cmd.ProcessState.ExitCode(), l.output()
}

// cursorUp is how the bars are redrawn: cursor up over the last frame, clear below.
var cursorUp = regexp.MustCompile(`\x1b\[\d+A\x1b\[J`)

// On a terminal cutover start draws progress bars and cutover status a bar per table;
// status --watch redraws until Ctrl-C, and in a pipe prints the plain status again.
func TestProgressOnATerminal(t *testing.T) {
	src, tgt := pgtest.NewDB(t, pgtest.Source(t)), pgtest.NewDB(t, pgtest.Target(t))
	for i, tbl := range []string{"t1", "t2", "t3"} {
		src.Exec(t, fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, pad text); INSERT INTO %s SELECT g, repeat('x', 50) FROM generate_series(1, %d) g",
			tbl, tbl, 30000-i*10000))
	}
	dir := t.TempDir()
	plan := fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\nfull_load: {parallel: 2}\n", src.URL(), tgt.URL())
	if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}

	code, out := startLive(t, dir, true, "start", "--full-load-only").wait(t)
	if code != 0 || !strings.Contains(out, "full load complete") {
		t.Fatalf("start: exit %d\n%s", code, out)
	}
	for _, want := range []string{"loaded public.t1: 30000 rows", "loaded public.t3: 10000 rows", "3/3 tables", "100%"} {
		if !strings.Contains(out, want) {
			t.Errorf("start on a terminal: no %q in\n%q", want, out)
		}
	}
	if !cursorUp.MatchString(out) {
		t.Errorf("start on a terminal: the bars were not redrawn:\n%q", out)
	}
	if strings.Contains(out, pgtest.Password) {
		t.Fatal("start printed a password")
	}

	code, out = startLive(t, dir, true, "status").wait(t)
	bar := regexp.MustCompile(`public\.t2 +\[#{20}\] 100% +loaded +20000 `)
	if code != 0 || !strings.Contains(out, "PROGRESS") || !bar.MatchString(out) || !strings.Contains(out, "3/3 loaded") {
		t.Fatalf("status on a terminal: exit %d\n%s", code, out)
	}

	watch := startLive(t, dir, true, "status", "--watch", "--interval", "50ms")
	watch.waitFor(t, "a redraw", func(out string) bool { return strings.Count(out, "cutover status every 50ms") >= 2 })
	if err := watch.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code, out := watch.wait(t); code != 0 || strings.Count(out, "\x1b[H\x1b[2J") < 2 || !bar.MatchString(out) {
		t.Fatalf("status --watch on a terminal: exit %d\n%q", code, out)
	}

	watch = startLive(t, dir, false, "status", "--watch", "--interval", "50ms")
	watch.waitFor(t, "a second status", func(out string) bool { return strings.Count(out, "phase: loaded") >= 2 })
	if err := watch.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	code, out = watch.wait(t)
	plain := regexp.MustCompile(`(?m)^public\.t2 +loaded +20000 `)
	if code != 0 || !strings.Contains(out, "\n\nphase: loaded\n") || !plain.MatchString(out) || strings.Contains(out, "\x1b[") {
		t.Fatalf("status --watch in a pipe: exit %d\n%q", code, out)
	}
}

// kill -9 at several points during the load and during CDC, with a writer running all
// along: every rerun resumes, and in the end the target holds exactly the source's
// rows, each source transaction applied once (a duplicate would hit the log's key, a
// lost or doubled transaction would show in the counters).
func TestKillNineDuringLoadAndCDC(t *testing.T) {
	src, tgt := pgtest.NewDB(t, pgtest.Source(t)), pgtest.NewDB(t, pgtest.Target(t))
	src.Exec(t, `CREATE TABLE counters (id int PRIMARY KEY, v bigint NOT NULL);
		INSERT INTO counters SELECT g, 0 FROM generate_series(0, 9) g;
		CREATE TABLE log (n bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), pad text);
		CREATE TABLE big (id int PRIMARY KEY, pad text);
		INSERT INTO big SELECT g, repeat('b', 200) FROM generate_series(1, 300000) g;`)
	dir := t.TempDir()
	plan := fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\nfull_load: {parallel: 2}\napi: {listen: \"127.0.0.1:0\"}\n", src.URL(), tgt.URL())
	if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}

	// The writer: each source transaction adds one log row and bumps one counter.
	stopWriter := make(chan struct{})
	writerDone := writeUntil(t, src, stopWriter, 0, func(b *pgx.Batch, n int64) {
		b.Queue("INSERT INTO log (n, pad) VALUES ($1, repeat('p', 50))", n)
		b.Queue("UPDATE counters SET v = v + 1 WHERE id = $1", n%10)
	})

	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d", seed)
	applied := func() string {
		return pgtest.QueryVal[string](t, tgt, "SELECT CASE WHEN to_regclass('cutover.state') IS NULL THEN '' ELSE (SELECT applied_position FROM cutover.state) END")
	}
	// Kill 1: during the load, once the big table is being copied.
	l := startLive(t, dir, false, "start")
	waitForTarget(t, tgt, l, "SELECT to_regclass('cutover.table_stats') IS NOT NULL AND EXISTS (SELECT 1 FROM cutover.table_stats WHERE table_name = 'big' AND state = 'loading')")
	if err := l.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	l.wait(t)
	// Kills 2 to 4: during CDC, each after the target applied a random number of commits.
	for kill := 2; kill <= 4; kill++ {
		l = startLive(t, dir, false, "start")
		for steps := 1 + rng.Intn(4); steps > 0; steps-- {
			before := applied()
			waitForTarget(t, tgt, l, fmt.Sprintf("SELECT applied_position <> %s FROM cutover.state", quoteLiteral(before)))
		}
		if err := l.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		l.wait(t)
	}
	// The last run catches up and stops cleanly on SIGTERM.
	l = startLive(t, dir, false, "start")
	n, code, out := catchUpAndStop(t, src, tgt, l, stopWriter, writerDone)
	if code != 0 || !strings.Contains(out, "change data capture stopped at position") {
		t.Fatalf("SIGTERM: exit %d\n%s", code, out)
	}
	t.Logf("%d source transactions", n)
	sameSums(t, src, tgt, "counters", "log", "big")
	if got := pgtest.QueryVal[int64](t, tgt, "SELECT sum(v) FROM counters"); got != n {
		t.Errorf("counters sum to %d on the target; %d transactions committed on the source", got, n)
	}
	if ex := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM cutover.apply_exceptions"); ex != 0 {
		t.Errorf("%d apply exceptions", ex)
	}
}

// catchUpAndStop stops the writer once the last cutover start streams, waits until the
// target has applied everything the writer committed (and copied again any table a
// schema change rewrote), and stops cutover with SIGTERM: the writer's transactions,
// and cutover's exit code and output.
func catchUpAndStop(t *testing.T, src, tgt *pgtest.DB, l *live, stopWriter chan struct{}, writerDone <-chan int64) (int64, int, string) {
	t.Helper()
	l.waitFor(t, "change data capture", func(out string) bool { return strings.Contains(out, "change data capture from slot") })
	close(stopWriter)
	n := <-writerDone
	marker := pgtest.QueryVal[string](t, src, "SELECT pg_logical_emit_message(true, 'test', 'end')::text")
	waitForTarget(t, tgt, l, fmt.Sprintf("SELECT applied_position::pg_lsn >= '%s'::pg_lsn FROM cutover.state", marker))
	waitForTarget(t, tgt, l, "SELECT NOT EXISTS (SELECT 1 FROM cutover.table_stats WHERE copy_pending)")
	if err := l.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, out := l.wait(t)
	return n, code, out
}

// writeUntil runs a writer on db until stop is closed: transaction n holds what queue
// puts in it, at most one every pace (0: as fast as it goes). The channel gets the
// number of transactions committed.
func writeUntil(t *testing.T, db *pgtest.DB, stop <-chan struct{}, pace time.Duration, queue func(b *pgx.Batch, n int64)) <-chan int64 {
	done := make(chan int64, 1)
	go func() {
		ctx := context.Background()
		conn, err := db.Server.Connect(ctx, db.Name)
		if err != nil {
			t.Error(err)
			done <- 0
			return
		}
		defer conn.Close(ctx)
		var tick <-chan time.Time
		if pace > 0 {
			ticker := time.NewTicker(pace)
			defer ticker.Stop()
			tick = ticker.C
		}
		var n int64
		for {
			if tick != nil {
				select {
				case <-stop:
					done <- n
					return
				case <-tick:
				}
			} else {
				select {
				case <-stop:
					done <- n
					return
				default:
				}
			}
			b := &pgx.Batch{}
			b.Queue("BEGIN")
			queue(b, n+1)
			b.Queue("COMMIT")
			if err := conn.SendBatch(ctx, b).Close(); err != nil {
				t.Error(err)
				done <- n
				return
			}
			n++
		}
	}()
	return done
}

// waitForTarget polls the target until cond holds or the program ends.
func waitForTarget(t *testing.T, db *pgtest.DB, l *live, cond string) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	give := time.After(3 * time.Minute)
	for !holds(db, cond) {
		select {
		case <-l.done:
			t.Fatalf("cutover ended before %s:\n%s", cond, l.output())
		case <-give:
			t.Fatalf("no %s after 3 minutes; cutover says:\n%s", cond, l.output())
		case <-tick.C:
		}
	}
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// A source transaction of a million rows is applied with bounded memory, and while
// CDC runs the API serves the metrics and the status.
func TestMillionRowTransactionAndMetrics(t *testing.T) {
	src, tgt := pgtest.NewDB(t, pgtest.Source(t)), pgtest.NewDB(t, pgtest.Target(t))
	src.Exec(t, `CREATE TABLE big (id int PRIMARY KEY, pad text)`)
	dir := t.TempDir()
	plan := fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\napi: {listen: \"127.0.0.1:0\"}\n", src.URL(), tgt.URL())
	if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
	l := startLive(t, dir, false, "plain", "start") // without the race detector, to measure its memory
	l.waitFor(t, "change data capture", func(out string) bool { return strings.Contains(out, "change data capture from slot") })
	addr := regexp.MustCompile(`serving /metrics and /api/status on (http://\S+)`).FindStringSubmatch(l.output())
	if addr == nil {
		t.Fatalf("no API address:\n%s", l.output())
	}
	src.Exec(t, `INSERT INTO big SELECT g, repeat('m', 100) FROM generate_series(1, 1000000) g`)
	marker := pgtest.QueryVal[string](t, src, "SELECT pg_logical_emit_message(true, 'test', 'end')::text")
	waitForTarget(t, tgt, l, fmt.Sprintf("SELECT applied_position::pg_lsn >= '%s'::pg_lsn FROM cutover.state", marker))

	get := func(path string) string {
		resp, err := http.Get(addr[1] + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	metrics := get("/metrics")
	// Which side is live is read a tick after the change stream starts: wait for it.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for ; !strings.Contains(metrics, "cutover_side_live"); metrics = get("/metrics") {
		select {
		case <-l.done:
			t.Fatalf("cutover ended before /metrics said which side is live:\n%s", l.output())
		case <-tick.C:
		}
	}
	for _, want := range []string{`cutover_applied_changes_total{op="insert",table="public.big"} 1e+06`, "cutover_cdc_latency_source_seconds ",
		"cutover_cdc_latency_target_seconds ", "cutover_slot_retained_wal_bytes ", "cutover_apply_exceptions_total 0",
		`cutover_side_live{side="source"} 1`, `cutover_side_live{side="target"} 0`, `cutover_side_closed{side="target"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	var st struct {
		Phase string `json:"phase"`
		CDC   struct {
			Applied string `json:"applied_position"`
		} `json:"cdc"`
		Tables []struct {
			Table   string `json:"table"`
			Inserts int64  `json:"inserts"`
		} `json:"tables"`
		Sides struct {
			Live, Other string
			Closed      bool `json:"other_closed"`
		} `json:"sides"`
	}
	if err := json.Unmarshal([]byte(get("/api/status")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Phase != "cdc" || st.CDC.Applied == "" || len(st.Tables) != 1 || st.Tables[0].Inserts != 1000000 ||
		st.Sides.Live != "source" || st.Sides.Other != "target" || !st.Sides.Closed {
		t.Errorf("/api/status: %+v", st)
	}
	if err := l.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, out := l.wait(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if n := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM big"); n != 1000000 {
		t.Fatalf("%d rows on the target", n)
	}
	rss := l.cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss / 1024
	t.Logf("peak RSS %d MB", rss)
	if rss > 200 {
		t.Errorf("peak RSS %d MB applying a million-row transaction: memory is not bounded", rss)
	}
}

// cutover finish stops a running task, and leaves no slot, publication or control
// schema behind; the target keeps its data.
func TestFinishStopsTheTaskAndCleansUp(t *testing.T) {
	src, tgt := pgtest.NewDB(t, pgtest.Source(t)), pgtest.NewDB(t, pgtest.Target(t))
	src.Exec(t, `CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)`)
	dir := t.TempDir()
	plan := fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\napi: {listen: \"\"}\n", src.URL(), tgt.URL())
	if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
	l := startLive(t, dir, false, "start")
	l.waitFor(t, "change data capture", func(out string) bool { return strings.Contains(out, "change data capture from slot") })

	if r := run(t, dir, nil, "finish"); r.code != 2 || !strings.Contains(r.stderr, "run cutover finish --yes") {
		t.Fatalf("finish without --yes: %+v", r)
	}
	r := run(t, dir, nil, "finish", "--yes")
	if r.code != 0 || !strings.Contains(r.stdout, "dropped the replication slot") || !strings.Contains(r.stdout, "dropped the control schema cutover") {
		t.Fatalf("finish: %+v", r)
	}
	if code, out := l.wait(t); code != 0 || !strings.Contains(out, "stopped at position") {
		t.Fatalf("the task: exit %d\n%s", code, out)
	}
	if n := pgtest.QueryVal[int64](t, src, "SELECT (SELECT count(*) FROM pg_replication_slots WHERE database = current_database()) + (SELECT count(*) FROM pg_publication)"); n != 0 {
		t.Errorf("%d slots and publications left on the source", n)
	}
	if n := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM t"); n != 2 {
		t.Errorf("the target lost its rows: %d", n)
	}
	if pgtest.QueryVal[bool](t, tgt, "SELECT to_regnamespace('cutover') IS NOT NULL") {
		t.Error("the control schema is still on the target")
	}
}

func TestValidateCommand(t *testing.T) {
	src, tgt := pgtest.NewDB(t, pgtest.Source(t)), pgtest.NewDB(t, pgtest.Target(t))
	src.Exec(t, `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 5000) i;
		CREATE TABLE u (k text PRIMARY KEY); INSERT INTO u VALUES ('a'), ('b')`)
	dir := t.TempDir()
	plan := fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\napi: {listen: \"\"}\n", src.URL(), tgt.URL())
	if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run(t, dir, nil, "validate"); r.code != 3 || !strings.Contains(r.stderr, "run cutover start first") {
		t.Fatalf("validate before any load: %+v", r)
	}
	if r := run(t, dir, nil, "start", "--full-load-only"); r.code != 0 {
		t.Fatalf("start --full-load-only: %+v", r)
	}
	// No task runs: validate runs change data capture itself for its points.
	src.Exec(t, `UPDATE t SET v = 'changed after the load' WHERE id = 10`)
	r := run(t, dir, nil, "validate")
	if r.code != 0 || !strings.Contains(r.stdout, "public.t") || !strings.Contains(r.stdout, "2 tables validated") || !strings.Contains(r.stdout, "2 equal") {
		t.Fatalf("validate after the load: %+v", r)
	}
	if got := pgtest.QueryVal[string](t, tgt, "SELECT v FROM t WHERE id = 10"); got != "changed after the load" {
		t.Fatalf("the change made after the load is not on the target: %q", got)
	}

	l := startLive(t, dir, false, "start")
	l.waitFor(t, "change data capture", func(out string) bool { return strings.Contains(out, "change data capture from slot") })
	tgt.Exec(t, `DELETE FROM t WHERE id = 77; UPDATE u SET k = 'c' WHERE k = 'b'`)
	src.Exec(t, `INSERT INTO t VALUES (6000, 'new')`)
	r = run(t, dir, nil, "validate", "--json")
	if r.code != 1 {
		t.Fatalf("validate of a corrupted target: %+v", r)
	}
	var rep struct {
		Equal, Live bool
		Tables      []struct {
			Table, State string
			Mismatches   int
			Differences  []struct {
				Kind string
				Key  []string
			}
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("validate --json: %v\n%s", err, r.stdout)
	}
	got := map[string]string{}
	for _, tb := range rep.Tables {
		var ds []string
		for _, d := range tb.Differences {
			ds = append(ds, d.Kind+" "+strings.Join(d.Key, ","))
		}
		got[tb.Table] = tb.State + ": " + strings.Join(ds, "; ")
	}
	want := map[string]string{"t": "mismatched: MISSING_TARGET 77", "u": "mismatched: MISSING_TARGET b; MISSING_SOURCE c"}
	if rep.Equal || !rep.Live || got["t"] != want["t"] || got["u"] != want["u"] {
		t.Fatalf("validate --json: equal %v live %v %v\n%s", rep.Equal, rep.Live, got, r.stdout)
	}
	r = run(t, dir, nil, "status")
	if r.code != 0 || !regexp.MustCompile(`public\.t\s.*mismatched \(1 rows\)`).MatchString(r.stdout) || !strings.Contains(r.stdout, "VALIDATION") {
		t.Fatalf("status after the validation: %+v", r)
	}
	r = run(t, dir, nil, "validate", "--table", "public.u")
	if r.code != 1 || !strings.Contains(r.stdout, "MISSING_SOURCE") || strings.Contains(r.stdout, "public.t ") {
		t.Fatalf("validate --table public.u: %+v", r)
	}
	if r = run(t, dir, nil, "validate", "--table", "public.nothing"); r.code != 3 || !strings.Contains(r.stderr, "no migrated table matches") {
		t.Fatalf("validate --table public.nothing: %+v", r)
	}
	if err := l.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, out := l.wait(t); code != 0 {
		t.Fatalf("start after SIGTERM: exit %d\n%s", code, out)
	}
}
