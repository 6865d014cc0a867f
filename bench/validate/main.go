// Command validate benchmarks cutover validate in one run, on throwaway servers:
// pgbench scale 30 on a source, copied to a target by cutover start --full-load-only,
// then, each -runs times:
//
//   - the floor: one hashing scan of every table on both sides at once
//     (select count(*), sum(hashtext(t::text)) from t, source and target concurrently);
//   - a full cutover validate;
//
// and the medians compared. Then 1% of pgbench_accounts' rows change on the source and
// cutover validate --incremental rereads what changed, timed against the full pass, and
// against the changed rows alone read by key on both sides (after cutover's pass, pages
// warm; and once before it, on pages as fresh as cutover's runs find them). Last, 1%
// changes in two transactions, whose keys the applier records as two groups, and an
// incremental pass merges them.
// Run with: make bench-validate (SCALE, RUNS).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/bench/internal/stat"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/jackc/pgx/v5"
)

var tables = []string{"pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"}

func main() {
	scale := flag.Int("scale", 30, "pgbench scale of the source")
	bin := flag.String("cutover", "bin/cutover", "cutover binary")
	runs := flag.Int("runs", 3, "runs of each measure; medians are compared")
	hold := flag.Bool("hold", false, "keep the servers and cutover start running at the end, until interrupted (for experiments)")
	flag.Parse()
	if err := run(*scale, *runs, *bin, *hold); err != nil {
		pgtest.StopAll()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	pgtest.StopAll()
}

func run(scale, runs int, bin string, hold bool) error {
	ctx := context.Background()
	bin, _ = filepath.Abs(bin)
	settings := map[string]string{"shared_buffers": "512MB", "max_wal_size": "4GB"}
	src, err := pgtest.Start(ctx, pgtest.Options{Name: "bench-source", Settings: settings})
	if err != nil {
		return err
	}
	tgt, err := pgtest.Start(ctx, pgtest.Options{Name: "bench-target", Settings: settings})
	if err != nil {
		return err
	}
	for _, s := range []*pgtest.Server{src, tgt} {
		if err := s.Exec(ctx, "postgres", "CREATE DATABASE bench"); err != nil {
			return err
		}
	}
	fmt.Printf("building pgbench scale %d on the source ...\n", scale)
	pgbench := exec.Command(filepath.Join(src.BinDir, "pgbench"), "-i", "-q", "-s", strconv.Itoa(scale), "-h", "127.0.0.1", "-p", strconv.Itoa(src.Port), "-U", "postgres", "bench")
	pgbench.Env = append(os.Environ(), "PGPASSWORD="+pgtest.Password)
	if out, err := pgbench.CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %v\n%s", err, out)
	}
	dir, err := os.MkdirTemp("", "cutover-bench-validate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	plan := fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\nfull_load: {parallel: 2}\ncdc: {no_identity: replica_identity_full}\nvalidation: {track_changes: true}\napi: {listen: \"\"}\n",
		src.URL("bench"), tgt.URL("bench"))
	planFile := filepath.Join(dir, "cutover.yaml")
	if err := os.WriteFile(planFile, []byte(plan), 0o600); err != nil {
		return err
	}
	cutover := func(args ...string) (time.Duration, string, error) {
		c := exec.Command(bin, append(args, "-c", planFile)...)
		start := time.Now()
		out, err := c.CombinedOutput()
		return time.Since(start), string(out), err
	}
	if _, out, err := cutover("start", "--full-load-only"); err != nil {
		return fmt.Errorf("cutover start --full-load-only: %v\n%s", err, out)
	}
	// Both sides as the scans will find them: hint bits set, statistics there.
	for _, s := range []*pgtest.Server{src, tgt} {
		if err := s.Exec(ctx, "bench", "VACUUM ANALYZE"); err != nil {
			return err
		}
	}
	var floors, fulls []time.Duration
	for i := range runs {
		floor, err := floorScan(ctx, src, tgt)
		if err != nil {
			return err
		}
		full, out, err := cutover("validate")
		if err != nil {
			return fmt.Errorf("cutover validate: %v\n%s", err, out)
		}
		floors, fulls = append(floors, floor), append(fulls, full)
		fmt.Printf("run %d: floor %v, cutover validate %v\n", i+1, floor.Round(time.Millisecond), full.Round(time.Millisecond))
		if i == 0 {
			fmt.Print(indent(out))
		}
	}
	// Incremental: cutover start replicates while 1% of the accounts change.
	start := exec.Command(bin, "start", "-c", planFile)
	startLog, err := os.Create(filepath.Join(dir, "start.log"))
	if err != nil {
		return err
	}
	start.Stdout, start.Stderr = startLog, startLog
	if err := start.Start(); err != nil {
		return err
	}
	defer func() { _ = start.Process.Kill(); _, _ = start.Process.Wait() }()
	if err := waitFor(ctx, src, "bench", "SELECT active FROM pg_replication_slots WHERE slot_name LIKE 'cutover%'"); err != nil {
		return err
	}
	// change changes 1% of the accounts, the nth time, and waits for the target to have it.
	change := func(n int) error {
		if err := src.Exec(ctx, "bench", "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 100 = 0"); err != nil {
			return err
		}
		return waitFor(ctx, tgt, "bench", fmt.Sprintf("SELECT count(*) = %d FROM pgbench_accounts WHERE abalance = %d", scale*1000, n))
	}
	var incs, keyFloors []time.Duration
	for i := range runs {
		if err := change(i + 1); err != nil {
			return err
		}
		inc, out, err := cutover("validate", "--incremental")
		if err != nil {
			return fmt.Errorf("cutover validate --incremental: %v\n%s", err, out)
		}
		incs = append(incs, inc)
		kf, err := keysFloor(ctx, src, tgt, scale)
		if err != nil {
			return err
		}
		keyFloors = append(keyFloors, kf)
		fmt.Printf("run %d: 1%% of pgbench_accounts changed (%d rows); cutover validate --incremental %v; the changed rows read by key on both sides at once, after it: %v\n",
			i+1, scale*1000, inc.Round(time.Millisecond), kf.Round(time.Millisecond))
		if i == 0 {
			fmt.Print(indent(out))
		}
	}
	// Once more, the changed rows read by key first, on pages as fresh as cutover's
	// runs found them (the first reader prunes the old row versions and sets hint
	// bits); cutover's pass then reads them warm.
	if err := change(runs + 1); err != nil {
		return err
	}
	freshFloor, err := keysFloor(ctx, src, tgt, scale)
	if err != nil {
		return err
	}
	warmInc, out, err := cutover("validate", "--incremental")
	if err != nil {
		return fmt.Errorf("cutover validate --incremental: %v\n%s", err, out)
	}
	fmt.Printf("once more: the changed rows read by key first, on fresh pages: %v; then cutover validate --incremental on warm ones: %v\n",
		freshFloor.Round(time.Millisecond), warmInc.Round(time.Millisecond))
	// And 1% changed by two transactions: the applier records two groups of keys,
	// which the validation merges.
	for _, half := range []string{"aid % 200 = 0", "aid % 200 = 100"} {
		if err := src.Exec(ctx, "bench", "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE "+half); err != nil {
			return err
		}
	}
	if err := waitFor(ctx, tgt, "bench", fmt.Sprintf("SELECT count(*) = %d FROM pgbench_accounts WHERE abalance = %d", scale*1000, runs+2)); err != nil {
		return err
	}
	groups, err := queryInt(ctx, tgt, "SELECT count(*) FROM cutover.validation_dirty WHERE table_name = 'pgbench_accounts'")
	if err != nil {
		return err
	}
	mergedInc, out, err := cutover("validate", "--incremental")
	if err != nil {
		return fmt.Errorf("cutover validate --incremental: %v\n%s", err, out)
	}
	fmt.Printf("once more, 1%% changed by two transactions (%d groups of keys recorded, merged): cutover validate --incremental %v\n", groups, mergedInc.Round(time.Millisecond))
	if hold {
		fmt.Printf("holding: plan %s, source %s, target %s; interrupt to stop\n", planFile, src.URL("bench"), tgt.URL("bench"))
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
	}
	if err := start.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if err := start.Wait(); err != nil {
		return fmt.Errorf("cutover start: %v (log in %s)", err, startLog.Name())
	}

	f, v, n := stat.Median(floors), stat.Median(fulls), stat.Median(incs)
	fmt.Printf("\nmedians of %d runs (pgbench scale %d):\n", runs, scale)
	fmt.Printf("  floor: count(*), sum(hashtext(t::text)) of every table, both sides at once: %v\n", f.Round(time.Millisecond))
	fmt.Printf("  cutover validate (full):                                                 %v\n", v.Round(time.Millisecond))
	fmt.Printf("  cutover validate --incremental after 1%% of the rows changed:             %v\n", n.Round(time.Millisecond))
	fmt.Printf("ratio full validation / floor:      %.2f   (goal <= 1.50)\n", v.Seconds()/f.Seconds())
	fmt.Printf("  the changed rows alone, read by key (an index scan each) on both sides at once: %v\n", stat.Median(keyFloors).Round(time.Millisecond))
	fmt.Printf("ratio incremental / full validation: %.3f  (goal <= 0.05)\n", n.Seconds()/v.Seconds())
	fmt.Printf("ratio changed rows read by key / full validation: %.3f  (a floor for any comparison of those rows; pages warm)\n", stat.Median(keyFloors).Seconds()/v.Seconds())
	fmt.Printf("ratio changed rows read by key on fresh pages / full validation: %.3f  (the same floor as cutover's runs find the pages; one run)\n", freshFloor.Seconds()/v.Seconds())
	fmt.Printf("ratio incremental on warm pages / full validation: %.3f  (one run)\n", warmInc.Seconds()/v.Seconds())
	fmt.Printf("ratio incremental, %d groups of keys merged / full validation: %.3f  (one run)\n", groups, mergedInc.Seconds()/v.Seconds())
	return nil
}

// waitFor polls a query until it returns true (two minutes at most).
func waitFor(ctx context.Context, s *pgtest.Server, db, query string) error {
	c, err := s.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var ok bool
		if err := c.QueryRow(ctx, query).Scan(&ok); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited two minutes for: %s", query)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// queryInt reads one number from the bench database.
func queryInt(ctx context.Context, s *pgtest.Server, query string) (n int64, err error) {
	c, err := s.Connect(ctx, "bench")
	if err != nil {
		return 0, err
	}
	defer c.Close(ctx)
	err = c.QueryRow(ctx, query).Scan(&n)
	return n, err
}

// floorScan hashes every row of every table, the source and the target at once.
func floorScan(ctx context.Context, src, tgt *pgtest.Server) (time.Duration, error) {
	queries := make([]string, len(tables))
	for i, t := range tables {
		queries[i] = fmt.Sprintf("SELECT count(*), sum(hashtext(t::text))::text FROM %s t", t)
	}
	return bothSides(ctx, src, tgt, queries)
}

// keysFloor hashes the changed rows of pgbench_accounts, found by key (an index scan for
// each), the source and the target at once: what any comparison of those rows must read.
func keysFloor(ctx context.Context, src, tgt *pgtest.Server, scale int) (time.Duration, error) {
	return bothSides(ctx, src, tgt, []string{fmt.Sprintf(
		"SELECT count(*), sum(hashtext(t::text))::text FROM pgbench_accounts t WHERE aid = ANY (ARRAY(SELECT generate_series(100, %d, 100)))", scale*100000)})
}

// bothSides runs each query on the source and the target at once, one after the other,
// on connections opened beforehand, and times them.
func bothSides(ctx context.Context, src, tgt *pgtest.Server, queries []string) (time.Duration, error) {
	var conns [2]*pgx.Conn
	for i, s := range []*pgtest.Server{src, tgt} {
		c, err := s.Connect(ctx, "bench")
		if err != nil {
			return 0, err
		}
		defer c.Close(ctx)
		conns[i] = c
	}
	start := time.Now()
	for _, q := range queries {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, c := range conns {
			wg.Go(func() {
				var n int64
				var sum *string
				errs[i] = c.QueryRow(ctx, q).Scan(&n, &sum)
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}
