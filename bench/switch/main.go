// Command switch benchmarks cutover switch's write downtime on throwaway servers:
// pgbench scale 30 on a source, replicated to a target by cutover start; then, -runs
// times, pgbench -c 4 writes on the source as the application's role until the
// switch blocks it, cutover switch runs, and the runbook's write downtime (block to
// unlock, without the operator's hooks and QA) is read from its JSON; a rollback
// brings the migration back for the next run. Every run checks that the target has
// every transaction pgbench committed. Run with: make bench-switch (SCALE, RUNS).
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
	"syscall"
	"time"

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
	b.plan = filepath.Join(b.dir, "cutover.yaml")
	plan := fmt.Sprintf(`source: {url: %q}
target: {url: %q}
full_load: {parallel: 2}
cdc: {no_identity: replica_identity_full}
validation: {track_changes: true}
api: {listen: ""}
cutover: {max_downtime: 30s}
`, b.src.URL("bench"), b.tgt.URL("bench"))
	if err := os.WriteFile(b.plan, []byte(plan), 0o600); err != nil {
		return err
	}
	start := exec.Command(b.bin, "start", "-c", b.plan)
	log, err := os.Create(filepath.Join(b.dir, "start.log"))
	if err != nil {
		return err
	}
	start.Stdout, start.Stderr = log, log
	if err := start.Start(); err != nil {
		return err
	}
	defer func() { _ = start.Process.Signal(syscall.SIGTERM); _, _ = start.Process.Wait() }()
	fmt.Println("cutover start: full load, then change data capture ...")
	if err := b.ready(ctx); err != nil {
		return err
	}
	if out, err := b.cutover("validate"); err != nil {
		return fmt.Errorf("cutover validate: %v\n%s", err, out)
	}
	var downtimes, tools []time.Duration
	for i := range runs {
		load := b.pgbench(appRole, appPassword, "-n", "-c", "4", "-j", "2", "-T", "600")
		if err := load.Start(); err != nil {
			return err
		}
		time.Sleep(write) // pgbench writes meanwhile: the switch is measured under load
		out, err := b.cutover("switch", "--json", "--runbook-dir", b.dir)
		if err != nil {
			_ = load.Process.Kill()
			_ = load.Wait()
			return fmt.Errorf("cutover switch: %v\n%s", err, out)
		}
		_ = load.Wait() // ended when the switch ended its sessions
		var rb struct {
			Outcome  string  `json:"outcome"`
			Downtime float64 `json:"downtime_seconds"`
			Tool     float64 `json:"tool_downtime_seconds"`
		}
		if err := json.Unmarshal(out, &rb); err != nil || rb.Outcome != "done" {
			return fmt.Errorf("cutover switch --json: %v, outcome %q\n%s", err, rb.Outcome, out)
		}
		if err := b.sameHistory(ctx); err != nil {
			return err
		}
		d, tool := time.Duration(rb.Downtime*float64(time.Second)), time.Duration(rb.Tool*float64(time.Second))
		downtimes, tools = append(downtimes, d), append(tools, tool)
		fmt.Printf("run %d: write downtime %v (without hooks and QA: %v)\n", i+1, d.Round(time.Millisecond), tool.Round(time.Millisecond))
		if out, err := b.cutover("rollback", "--runbook-dir", b.dir); err != nil {
			return fmt.Errorf("cutover rollback: %v\n%s", err, out)
		}
		if err := b.ready(ctx); err != nil {
			return err
		}
		// The writes made on the target since the switch were not tracked: validate
		// in full once, as an operator would before switching again.
		if out, err := b.cutover("validate"); err != nil {
			return fmt.Errorf("cutover validate: %v\n%s", err, out)
		}
	}
	fmt.Printf("\nswitch under pgbench -c 4 (scale %d), %d runs:\n", scale, runs)
	fmt.Printf("  write downtime, block to unlock: median %v (runs: %v)\n", median(downtimes).Round(time.Millisecond), rounded(downtimes))
	fmt.Printf("  without the operator's hooks and QA: median %v   (goal <= 2s)\n", median(tools).Round(time.Millisecond))
	return nil
}

func (b *bench) pgbench(user, pw string, args ...string) *exec.Cmd {
	c := exec.Command(filepath.Join(b.src.BinDir, "pgbench"), append(args, "-h", "127.0.0.1", "-p", strconv.Itoa(b.src.Port), "-U", user, "bench")...)
	c.Env = append(os.Environ(), "PGPASSWORD="+pw)
	return c
}

func (b *bench) cutover(args ...string) ([]byte, error) {
	c := exec.Command(b.bin, append(args, "-c", b.plan)...)
	if args[0] != "switch" {
		return c.CombinedOutput()
	}
	c.Stderr = os.Stderr // the steps, as they run
	return c.Output()
}

// ready waits until cutover start replicates forward and has measured its latency
// lately: what the switch's gates ask.
func (b *bench) ready(ctx context.Context) error {
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

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func rounded(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
