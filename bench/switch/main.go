// Command switch benchmarks cutover switch's write downtime on throwaway servers:
// pgbench scale 30 on a source, replicated to a target by cutover start; then, for each
// plan (the one cutover init writes, with only what a benchmark needs changed, none of
// its validation keys; then a tuned one), -runs times: pgbench -c 4 writes on the source
// as the application's role until the switch blocks it, cutover switch runs, and the
// runbook's write downtime (block to unlock, without the operator's hooks and QA) and
// its steps inside the window are read from its JSON; a rollback brings the migration
// back for the next run. Every run checks that the target has every transaction
// pgbench committed. The switch validates by itself before the block (in full after
// the load and after each rollback: the target's own writes were not tracked). Run
// with: make bench-switch (SCALE, RUNS).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/bench/internal/stat"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/jackc/pgx/v5"
)

const appRole, appPassword = "bench_app", "bench-app-pw"

func main() {
	scale := flag.Int("scale", 30, "pgbench scale of the source")
	bin := flag.String("cutover", "bin/cutover", "cutover binary")
	runs := flag.Int("runs", 5, "switches; the median downtime is reported")
	write := flag.Duration("write", 10*time.Second, "how long pgbench writes before each switch")
	flag.Parse()
	err := run(*scale, *runs, *write, *bin)
	pgtest.StopAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type bench struct {
	bin, dir, plan string
	src, tgt       *pgtest.Server
}

func run(scale, runs int, write time.Duration, bin string) error {
	ctx := context.Background()
	b := &bench{}
	b.bin, _ = filepath.Abs(bin)
	var err error
	if b.dir, err = os.MkdirTemp("", "cutover-bench-switch-"); err != nil {
		return err
	}
	defer os.RemoveAll(b.dir)
	settings := map[string]string{"shared_buffers": "512MB", "max_wal_size": "4GB"}
	if b.src, err = pgtest.Start(ctx, pgtest.Options{Name: "bench-source", Settings: settings}); err != nil {
		return err
	}
	if b.tgt, err = pgtest.Start(ctx, pgtest.Options{Name: "bench-target", Settings: settings}); err != nil {
		return err
	}
	for _, s := range []*pgtest.Server{b.src, b.tgt} {
		for _, q := range []string{"CREATE DATABASE bench", fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", appRole, appPassword)} {
			if err := s.Exec(ctx, "postgres", q); err != nil {
				return err
			}
		}
	}
	fmt.Printf("building pgbench scale %d on the source ...\n", scale)
	if out, err := b.pgbench("postgres", pgtest.Password, "-i", "-q", "-s", strconv.Itoa(scale)).CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %v\n%s", err, out)
	}
	if err := b.src.Exec(ctx, "bench", "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "+appRole); err != nil {
		return err
	}
	plans := []struct{ name, file string }{{"cutover init's plan", "init.yaml"}, {"tuned plan", "tuned.yaml"}}
	if err := b.initPlan(filepath.Join(b.dir, plans[0].file)); err != nil {
		return err
	}
	tuned := fmt.Sprintf(`source: {url: %q}
target: {url: %q}
full_load: {parallel: 2}
cdc: {no_identity: replica_identity_full}
validation: {track_changes: true}
api: {listen: ""}
cutover: {max_downtime: 30s}
`, b.src.URL("bench"), b.tgt.URL("bench"))
	if err := os.WriteFile(filepath.Join(b.dir, plans[1].file), []byte(tuned), 0o600); err != nil {
		return err
	}
	var results []result
	for _, pl := range plans {
		b.plan = filepath.Join(b.dir, pl.file)
		fmt.Printf("\n%s (%s)\n", pl.name, pl.file)
		r, err := b.runPlan(ctx, runs, write)
		if err != nil {
			return fmt.Errorf("%s: %w", pl.name, err)
		}
		r.plan = pl.name
		results = append(results, r)
	}
	fmt.Printf("\nswitch under pgbench -c 4 (scale %d), %d runs each:\n", scale, runs)
	for _, r := range results {
		fmt.Printf("  %s:\n", r.plan)
		fmt.Printf("    write downtime, block to unlock: median %v (runs: %v)   (goal <= 1s)\n", stat.Median(r.downtimes).Round(time.Millisecond), stat.Rounded(r.downtimes))
		fmt.Printf("    without the operator's hooks and QA: median %v\n", stat.Median(r.tools).Round(time.Millisecond))
		fmt.Printf("    inside the window, median per step: %s\n", r.windowSteps())
	}
	return nil
}

// result is one plan's runs.
type result struct {
	plan             string
	downtimes, tools []time.Duration
	steps            map[string][]time.Duration // the window's steps, by name
	order            []string
}

// windowSteps lists the window's steps by their median time, longest first.
func (r result) windowSteps() string {
	names := slices.Clone(r.order)
	slices.SortStableFunc(names, func(a, b string) int { return int(stat.Median(r.steps[b]) - stat.Median(r.steps[a])) })
	var out []string
	for _, n := range names {
		out = append(out, fmt.Sprintf("%s %v", n, stat.Median(r.steps[n]).Round(time.Millisecond)))
	}
	return strings.Join(out, ", ")
}

// initPlan writes the plan cutover init writes, changing only what the benchmark needs:
// pgbench_history has no key (cdc.no_identity), and the API's port may be taken.
func (b *bench) initPlan(file string) error {
	if out, err := exec.Command(b.bin, "init", "--source", b.src.URL("bench"), "--target", b.tgt.URL("bench"), "-o", file).CombinedOutput(); err != nil {
		return fmt.Errorf("cutover init: %v\n%s", err, out)
	}
	text, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	plan := string(text)
	for _, c := range []struct{ from, to string }{
		{"\n  no_identity: error\n", "\n  no_identity: replica_identity_full\n"},
		{"\n  listen: 127.0.0.1:8420\n", "\n  listen: \"\"\n"},
	} {
		if !strings.Contains(plan, c.from) {
			return fmt.Errorf("cutover init's plan has no %q to change", strings.TrimSpace(c.from))
		}
		plan = strings.Replace(plan, c.from, c.to, 1)
	}
	return os.WriteFile(file, []byte(plan), 0o600)
}

// runPlan starts cutover start with b.plan, then switches and rolls back runs times.
func (b *bench) runPlan(ctx context.Context, runs int, write time.Duration) (result, error) {
	r := result{steps: map[string][]time.Duration{}}
	start := exec.Command(b.bin, "start", "-c", b.plan)
	start.Env = b.env()
	log, err := os.Create(b.plan + ".start.log")
	if err != nil {
		return r, err
	}
	defer log.Close()
	start.Stdout, start.Stderr = log, log
	if err := start.Start(); err != nil {
		return r, err
	}
	defer func() { _ = start.Process.Signal(syscall.SIGTERM); _, _ = start.Process.Wait() }()
	fmt.Println("cutover start: full load (the first time), then change data capture ...")
	if err := b.ready(ctx); err != nil {
		return r, err
	}
	for i := range runs {
		load := b.pgbench(appRole, appPassword, "-n", "-c", "4", "-j", "2", "-T", "600")
		if err := load.Start(); err != nil {
			return r, err
		}
		time.Sleep(write) // pgbench writes meanwhile: the switch is measured under load
		out, err := b.cutover("switch", "--json", "--runbook-dir", b.dir)
		if err != nil {
			_ = load.Process.Kill()
			_ = load.Wait()
			return r, fmt.Errorf("cutover switch: %v\n%s\ncutover start's output:\n%s", err, out, tail(log.Name(), 40))
		}
		_ = load.Wait() // ended when the switch ended its sessions
		var rb struct {
			Outcome  string    `json:"outcome"`
			Blocked  time.Time `json:"blocked_at"`
			Unlocked time.Time `json:"unlocked_at"`
			Downtime float64   `json:"downtime_seconds"`
			Tool     float64   `json:"tool_downtime_seconds"`
			Steps    []struct {
				Name    string     `json:"step"`
				Started time.Time  `json:"started_at"`
				Ended   *time.Time `json:"ended_at"`
			} `json:"steps"`
		}
		if err := json.Unmarshal(out, &rb); err != nil || rb.Outcome != "done" {
			return r, fmt.Errorf("cutover switch --json: %v, outcome %q\n%s", err, rb.Outcome, out)
		}
		if err := b.sameHistory(ctx); err != nil {
			return r, err
		}
		d, tool := time.Duration(rb.Downtime*float64(time.Second)), time.Duration(rb.Tool*float64(time.Second))
		r.downtimes, r.tools = append(r.downtimes, d), append(r.tools, tool)
		var longest string
		var most time.Duration
		for _, st := range rb.Steps {
			if st.Ended == nil || st.Started.Before(rb.Blocked) || st.Ended.After(rb.Unlocked) {
				continue
			}
			took := st.Ended.Sub(st.Started)
			if _, ok := r.steps[st.Name]; !ok {
				r.order = append(r.order, st.Name)
			}
			r.steps[st.Name] = append(r.steps[st.Name], took)
			if took > most {
				longest, most = st.Name, took
			}
		}
		fmt.Printf("run %d: write downtime %v (without hooks and QA: %v; longest step inside: %s %v)\n", i+1, d.Round(time.Millisecond), tool.Round(time.Millisecond),
			longest, most.Round(time.Millisecond))
		if out, err := b.cutover("rollback", "--runbook-dir", b.dir); err != nil {
			return r, fmt.Errorf("cutover rollback: %v\n%s", err, out)
		}
		if err := b.ready(ctx); err != nil {
			return r, err
		}
	}
	return r, nil
}

// tail is the last n lines of a file.
func tail(file string, n int) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// env is the environment of cutover's commands: cutover init's plan reads the
// passwords from it.
func (b *bench) env() []string {
	return append(os.Environ(), "CUTOVER_SOURCE_PASSWORD="+pgtest.Password, "CUTOVER_TARGET_PASSWORD="+pgtest.Password)
}

func (b *bench) pgbench(user, pw string, args ...string) *exec.Cmd {
	c := exec.Command(filepath.Join(b.src.BinDir, "pgbench"), append(args, "-h", "127.0.0.1", "-p", strconv.Itoa(b.src.Port), "-U", user, "bench")...)
	c.Env = append(os.Environ(), "PGPASSWORD="+pw)
	return c
}

func (b *bench) cutover(args ...string) ([]byte, error) {
	c := exec.Command(b.bin, append(args, "-c", b.plan)...)
	c.Env = b.env()
	if args[0] != "switch" {
		return c.CombinedOutput()
	}
	c.Stderr = os.Stderr // the steps, as they run
	return c.Output()
}

// ready waits until cutover start streams from the source, replicates forward and has
// measured its latency lately: what the switch's gates ask.
func (b *bench) ready(ctx context.Context) error {
	if err := waitFor(ctx, b.src, "SELECT bool_or(active) FROM pg_replication_slots WHERE database = 'bench'", 10*time.Minute); err != nil {
		return err
	}
	return waitFor(ctx, b.tgt, `SELECT s.replication = 'forward' AND s.measured_at > now() - interval '3 seconds'
		FROM cutover.state s`, 10*time.Minute)
}

// sameHistory checks that the target has every pgbench transaction the source
// committed: the source is blocked, so its tables are final.
func (b *bench) sameHistory(ctx context.Context) error {
	q := "SELECT count(*), coalesce(sum(delta), 0), (SELECT sum(abalance) FROM pgbench_accounts) FROM pgbench_history"
	var a, c [3]int64
	for i, s := range []*pgtest.Server{b.src, b.tgt} {
		conn, err := s.Connect(ctx, "bench")
		if err != nil {
			return err
		}
		dst := &a
		if i == 1 {
			dst = &c
		}
		err = conn.QueryRow(ctx, q).Scan(&dst[0], &dst[1], &dst[2])
		conn.Close(ctx)
		if err != nil {
			return err
		}
	}
	if a != c {
		return fmt.Errorf("after the switch the target differs from the source: history rows, deltas, balances %v on the source, %v on the target", a, c)
	}
	return nil
}

func waitFor(ctx context.Context, s *pgtest.Server, query string, limit time.Duration) error {
	c, err := s.Connect(ctx, "bench")
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	deadline := time.Now().Add(limit)
	for {
		var ok *bool
		err := c.QueryRow(ctx, query).Scan(&ok)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) && !isUndefinedTable(err) {
			return err
		}
		if ok != nil && *ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %v for: %s", limit, query)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func isUndefinedTable(err error) bool {
	var e interface{ SQLState() string }
	return errors.As(err, &e) && (e.SQLState() == "42P01" || e.SQLState() == "3F000")
}
