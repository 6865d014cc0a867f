package main

// These tests run the real cutover binary against real servers, as a user would.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/pgtest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cutover-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "cutover")
	if out, err := exec.Command("go", "build", "-race", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build cutover: %v\n%s", err, out)
		os.Exit(1)
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

func TestHelpAndVersion(t *testing.T) {
	dir := t.TempDir()
	if r := run(t, dir, nil, "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "cutover ") {
		t.Fatalf("version: %+v", r)
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
	if r.code != 2 || strings.TrimSpace(r.stderr) != `cutover: cutover.yaml:3:1: tabels: unknown key (did you mean "tables"?); expected one of: source, target, tables, full_load, cdc, api, control_schema, cutover` {
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
