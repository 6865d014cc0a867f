// Command cdc benchmarks cutover's change data capture in one run, on throwaway servers,
// with pgbench scale 30 on the source. Run with: make bench-cdc (SCALE, LOAD, BACKLOG, RUNS).
//
//  1. Under load: pgbench -c 4 -j 2 for -load (60 s) on the source while cutover
//     replicates; the target latency (cutover's gauge, and the lag of the target's
//     applied position measured here) and the time to catch up once pgbench ends; then
//     the same with native logical replication alone, for comparison (-native-load).
//  2. Backlog: cutover and native logical replication (CREATE SUBSCRIPTION into a
//     second database) both caught up, then both stopped, pgbench for -backlog (30 s),
//     then each catches up alone, the order alternating over -runs; medians compared.
//
// "Caught up" is the same for both tools: a marker row written on the source after the
// load is visible on the tool's target. Both apply in source commit order, so the
// marker arrives last. Row counts and balances are compared with the source at the end.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/cutover-dev/cutover/bench/internal/harness"
	"github.com/cutover-dev/cutover/bench/internal/stat"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/jackc/pgx/v5"
)

// keptUpWithin is how soon after the load the target must catch up to have kept up.
const keptUpWithin = 5 * time.Second

// Databases on the target: one per tool.
const (
	byCutover = "by_cutover"
	byNative  = "by_native"
)

type config struct {
	scale         int
	load, backlog time.Duration
	runs          int
	bin           string
	timeout       time.Duration
	nativeLoad    bool
	timeline      string // a CSV file for cutover's latency through the load
	loadOnly      bool   // stop after cutover's run under load
	track         bool   // validation.track_changes on
}

func main() {
	var c config
	flag.IntVar(&c.scale, "scale", 30, "pgbench scale of the source")
	flag.DurationVar(&c.load, "load", 60*time.Second, "pgbench time while cutover replicates")
	flag.DurationVar(&c.backlog, "backlog", 30*time.Second, "pgbench time with replication stopped, building the backlog")
	flag.IntVar(&c.runs, "runs", 2, "backlog runs; which tool catches up first alternates, medians are compared")
	flag.StringVar(&c.bin, "cutover", "bin/cutover", "cutover binary")
	flag.BoolVar(&c.nativeLoad, "native-load", true, "also run the load with native logical replication alone, for comparison")
	flag.StringVar(&c.timeline, "timeline", "", "write cutover's latency through the load, a sample per line, to this CSV file")
	flag.BoolVar(&c.loadOnly, "load-only", false, "stop after cutover's run under load (to study its latency)")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Minute, "longest wait for a tool to catch up")
	flag.BoolVar(&c.track, "track", false, "cutover records the changed keys for incremental validation (validation.track_changes)")
	flag.Parse()
	if c.runs < 1 {
		fmt.Fprintln(os.Stderr, "bench: -runs must be at least 1")
		os.Exit(2)
	}
	if err := run(c); err != nil {
		pgtest.StopAll()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	pgtest.StopAll()
}

// bench is the servers, the benchmark's own connection to the source and the running cutover.
type bench struct {
	config
	src, tgt     *pgtest.Server
	srcConn      *pgx.Conn
	dir          string
	plan         string
	marker       int
	cutover      *harness.Process // the running cutover, nil when stopped
	cutoverTimed bool             // it timed a backlog catch-up: its peak RSS counts
	peakRSS      float64          // MB, of the cutover processes that timed a backlog catch-up
}

// results is what the summary prints.
type results struct {
	cutoverLoad  loadResult
	nativeLoad   *loadResult
	cutoverTimes []time.Duration
	nativeTimes  []time.Duration
}

func run(c config) (err error) {
	ctx := context.Background()
	c.bin, _ = filepath.Abs(c.bin)
	b := &bench{config: c}
	settings := map[string]string{"shared_buffers": "512MB", "max_wal_size": "4GB", "max_worker_processes": "16",
		"max_logical_replication_workers": "8", "max_sync_workers_per_subscription": "2"}
	if b.src, err = pgtest.Start(ctx, pgtest.Options{Name: "bench-source", Settings: settings}); err != nil {
		return err
	}
	if b.tgt, err = pgtest.Start(ctx, pgtest.Options{Name: "bench-target", Settings: settings}); err != nil {
		return err
	}
	if b.dir, err = os.MkdirTemp("", "cutover-bench-cdc-"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: plan and cutover's log kept in %s\n", b.dir)
			return
		}
		os.RemoveAll(b.dir)
	}()
	if err := b.buildSource(ctx); err != nil {
		return err
	}
	defer b.srcConn.Close(ctx)
	defer func() { _ = b.stopCutover() }() // after an error

	var res results
	if err := b.startReplicating(ctx); err != nil {
		return err
	}
	f, err := cutoverFollower(b.cutover)
	if err != nil {
		return err
	}
	if res.cutoverLoad, err = b.underLoad(ctx, f); err != nil {
		return err
	}
	if b.loadOnly {
		return b.stopCutover()
	}
	if err := b.startNative(ctx); err != nil {
		return err
	}
	if b.nativeLoad {
		if res.nativeLoad, err = b.nativeUnderLoad(ctx); err != nil {
			return err
		}
	}
	fmt.Printf("\nbacklog: replication stopped, pgbench -c 4 -j 2 -T %d, then each tool catches up alone\n", secs(b.backlog))
	for i := range b.runs {
		ct, nt, err := b.backlogRun(ctx, i+1, i%2 == 0)
		if err != nil {
			return err
		}
		res.cutoverTimes, res.nativeTimes = append(res.cutoverTimes, ct), append(res.nativeTimes, nt)
	}
	for _, db := range []string{byCutover, byNative} {
		if err := b.sameData(ctx, db); err != nil {
			return err
		}
	}
	fmt.Println("both targets match the source: row counts of every table, sums of every balance and delta")
	if err := b.stopCutover(); err != nil {
		return err
	}
	res.print(b.config, b.peakRSS)
	return nil
}

func (r results) print(c config, peakRSS float64) {
	fmt.Printf("\nunder load (pgbench -c 4 -j 2 -T %d), each tool alone:\n", secs(c.load))
	fmt.Printf("  cutover p99 target latency: %.3fs by its gauge, %.3fs measured here   (goal <= 1.000s)\n", r.cutoverLoad.gauge.p99, r.cutoverLoad.lag.p99)
	if r.nativeLoad != nil {
		fmt.Printf("  native p99 target lag:      %.3fs measured here\n", r.nativeLoad.lag.p99)
	}
	fmt.Printf("  kept up: cutover %s (caught up %v after the load)", r.cutoverLoad.keptUp(), r.cutoverLoad.behind.Round(time.Millisecond))
	if r.nativeLoad != nil {
		fmt.Printf(", native %s (%v)", r.nativeLoad.keptUp(), r.nativeLoad.behind.Round(time.Millisecond))
	}
	ct, nt := stat.Median(r.cutoverTimes), stat.Median(r.nativeTimes)
	fmt.Printf("\nbacklog catch-up, medians of %d runs:\n", c.runs)
	fmt.Printf("  cutover (cutover start, resuming):                %v\n", ct.Round(time.Millisecond))
	fmt.Printf("  native logical replication (SUBSCRIPTION ENABLE): %v\n", nt.Round(time.Millisecond))
	fmt.Printf("  ratio cutover / native: %.2f   (goal <= 1.00)\n", ct.Seconds()/nt.Seconds())
	fmt.Printf("cutover peak RSS during catch-up: %.0f MB\n", peakRSS)
}

// startCutover runs cutover start in the background.
func (b *bench) startCutover() error {
	p, err := harness.StartCutover(b.bin, b.plan, b.logPath(), harness.CDCFromSlot)
	if err != nil {
		return err
	}
	b.cutover = p
	return nil
}

// stopCutover stops the running cutover, if any, and keeps its peak RSS when it timed a
// catch-up.
func (b *bench) stopCutover() error {
	p := b.cutover
	if p == nil {
		return nil
	}
	b.cutover = nil
	err := p.Stop()
	if b.cutoverTimed {
		b.cutoverTimed = false
		b.peakRSS = max(b.peakRSS, p.PeakRSSMB())
	}
	return err
}

// buildSource makes the pgbench database, the marker table and the publication native
// logical replication uses, and dumps the schema the native target starts from.
func (b *bench) buildSource(ctx context.Context) error {
	if err := b.src.Exec(ctx, "postgres", "CREATE DATABASE bench"); err != nil {
		return err
	}
	fmt.Printf("building pgbench scale %d on the source ...\n", b.scale)
	if out, err := b.tool("pgbench", "-i", "-q", "-s", strconv.Itoa(b.scale), "-h", "127.0.0.1", "-p", strconv.Itoa(b.src.Port), "-U", "postgres", "bench").CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %v\n%s", err, out)
	}
	for _, sql := range []string{
		"CREATE TABLE bench_marker (id int PRIMARY KEY, at timestamptz NOT NULL)",
		"CREATE PUBLICATION bench_pub FOR ALL TABLES",
		"VACUUM ANALYZE",
	} {
		if err := b.src.Exec(ctx, "bench", sql); err != nil {
			return err
		}
	}
	var err error
	if b.srcConn, err = b.src.Connect(ctx, "bench"); err != nil {
		return err
	}
	var size int64
	if err := b.srcConn.QueryRow(ctx, "SELECT pg_database_size('bench')").Scan(&size); err != nil {
		return err
	}
	var version string
	if err := b.srcConn.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		return err
	}
	fmt.Printf("source database: %.0f MB; PostgreSQL %s, %d CPUs shared by both servers, pgbench and the tools\n",
		float64(size)/1e6, version, runtime.NumCPU())
	schema := filepath.Join(b.dir, "schema.sql")
	if out, err := b.tool("pg_dump", "--schema-only", "--no-publications", "--no-subscriptions", "-f", schema, "-d", b.src.URL("bench")).CombinedOutput(); err != nil {
		return fmt.Errorf("pg_dump --schema-only: %v\n%s", err, out)
	}
	for _, db := range []string{byCutover, byNative} {
		if err := b.tgt.Exec(ctx, "postgres", "CREATE DATABASE "+db); err != nil {
			return err
		}
	}
	if _, err := b.tgt.Psql(ctx, byNative, "-f", schema); err != nil {
		return err
	}
	b.plan = filepath.Join(b.dir, "cutover.yaml")
	plan := fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\nfull_load: {parallel: 2}\ncdc: {no_identity: replica_identity_full}\napi: {listen: \"127.0.0.1:0\"}\nvalidation: {track_changes: %t}\n",
		b.src.URL("bench"), b.tgt.URL(byCutover), b.track)
	return os.WriteFile(b.plan, []byte(plan), 0o600)
}

// startReplicating runs cutover's full load and change data capture until the target
// has caught up.
func (b *bench) startReplicating(ctx context.Context) error {
	start := time.Now()
	if err := b.startCutover(); err != nil {
		return err
	}
	if err := b.cutover.WaitCDC(b.timeout); err != nil {
		return err
	}
	loaded := time.Since(start)
	if _, err := b.catchUp(ctx, byCutover, b.cutover); err != nil {
		return err
	}
	fmt.Printf("cutover: full load %v, change data capture caught up after %v\n",
		loaded.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	return nil
}

// follower is one tool replicating into its target database, as the load phase sees it.
type follower struct {
	name    string
	db      string
	applied string           // SQL on the target: the source position (bigint) of the last transaction it committed
	metrics string           // cutover's /metrics URL; "" for native
	proc    *harness.Process // cutover's process; nil for native
}

// cutoverFollower is the running cutover, its gauge read from /metrics.
func cutoverFollower(p *harness.Process) (follower, error) {
	addr, err := p.MetricsAddr()
	if err != nil {
		return follower{}, err
	}
	return follower{name: "cutover", db: byCutover, proc: p, metrics: "http://" + addr + "/metrics",
		applied: "SELECT coalesce((nullif(applied_position, '')::pg_lsn - '0/0')::bigint, 0) FROM cutover.state"}, nil
}

// nativeFollower is the subscription: its replication origin holds the end of the last
// source transaction it committed, as cutover.state's applied_position does.
var nativeFollower = follower{name: "native logical replication", db: byNative,
	applied: `SELECT coalesce((pg_replication_origin_progress(roname, false) - '0/0')::bigint, 0) FROM pg_replication_origin
		WHERE roname = (SELECT 'pg_' || oid FROM pg_subscription WHERE subname = 'bench_sub')`}

// loadResult is how one tool followed the load.
type loadResult struct {
	gauge, lag dist
	behind     time.Duration // from pgbench's end to caught up
}

func (r loadResult) keptUp() string {
	if r.behind > keptUpWithin {
		return "no"
	}
	return "yes"
}

// underLoad runs pgbench while f replicates alone, sampling its target's lag (and
// cutover's gauge), then times the catch-up once pgbench has stopped.
func (b *bench) underLoad(ctx context.Context, f follower) (loadResult, error) {
	var r loadResult
	fmt.Printf("\nunder load: pgbench -c 4 -j 2 -T %d on the source while %s replicates\n", secs(b.load), f.name)
	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan samples, 1)
	sampleErr := make(chan error, 1)
	go func() {
		s, err := sampler(sctx, b.src, b.tgt, f)
		sampled <- s
		sampleErr <- err
	}()
	from := time.Now()
	res, err := b.pgbench(b.load)
	to := time.Now()
	if err == nil {
		_, err = b.catchUp(ctx, f.db, f.proc)
		r.behind = time.Since(to)
	}
	stopSampling()
	s, serr := <-sampled, <-sampleErr
	if err != nil {
		return r, err
	}
	if serr != nil {
		return r, serr
	}
	fmt.Printf("  source: %s\n", res)
	if f.metrics != "" {
		target, source, failed := s.gauges(from, to)
		r.gauge = distOf(target)
		fmt.Printf("  target latency, cutover_cdc_latency_target_seconds: %v\n", r.gauge)
		fmt.Printf("  source latency, cutover_cdc_latency_source_seconds: %v\n", distOf(source))
		if failed > 0 {
			fmt.Printf("  (%d scrapes of /metrics failed)\n", failed)
		}
	}
	r.lag = distOf(s.lags(from, to))
	if b.timeline != "" && f.metrics != "" {
		if err := s.writeTimeline(b.timeline, from, to); err != nil {
			return r, err
		}
	}
	fmt.Printf("  target lag, measured here (applied position against the source's WAL): %v\n", r.lag)
	fmt.Printf("  kept up: %s, caught up %v after pgbench stopped (kept up: within %v)\n", r.keptUp(), r.behind.Round(time.Millisecond), keptUpWithin)
	if err := b.sameData(ctx, f.db); err != nil {
		return r, err
	}
	fmt.Println("  the target matches the source")
	return r, nil
}

// startNative subscribes the second target database and waits until it has caught up.
func (b *bench) startNative(ctx context.Context) error {
	start := time.Now()
	sql := fmt.Sprintf("CREATE SUBSCRIPTION bench_sub CONNECTION 'host=127.0.0.1 port=%d dbname=bench user=postgres password=%s' PUBLICATION bench_pub WITH (copy_data = true)",
		b.src.Port, pgtest.Password)
	if err := b.tgt.Exec(ctx, byNative, sql); err != nil {
		return err
	}
	if err := b.waitSynced(ctx); err != nil {
		return err
	}
	if _, err := b.catchUp(ctx, byNative, nil); err != nil {
		return err
	}
	fmt.Printf("\nnative logical replication: initial sync and catch-up in %v\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// nativeUnderLoad runs the load with native logical replication alone, for comparison;
// cutover, stopped meanwhile, then catches up on it (untimed).
func (b *bench) nativeUnderLoad(ctx context.Context) (*loadResult, error) {
	if err := b.stopCutover(); err != nil {
		return nil, err
	}
	r, err := b.underLoad(ctx, nativeFollower)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := b.startCutover(); err != nil {
		return nil, err
	}
	if _, err := b.catchUp(ctx, byCutover, b.cutover); err != nil {
		return nil, err
	}
	fmt.Printf("  (cutover, stopped meanwhile, caught up on that load in %v)\n", time.Since(start).Round(time.Millisecond))
	return &r, nil
}

// backlogRun stops both tools, builds a backlog, then times each catching up alone.
func (b *bench) backlogRun(ctx context.Context, run int, cutoverFirst bool) (cutover, native time.Duration, err error) {
	if err := b.stopCutover(); err != nil {
		return 0, 0, err
	}
	if err := b.tgt.Exec(ctx, byNative, "ALTER SUBSCRIPTION bench_sub DISABLE"); err != nil {
		return 0, 0, err
	}
	if err := b.waitSlotsInactive(ctx); err != nil {
		return 0, 0, err
	}
	var from int64
	if err := b.srcConn.QueryRow(ctx, "SELECT (pg_current_wal_lsn() - '0/0')::bigint").Scan(&from); err != nil {
		return 0, 0, err
	}
	res, err := b.pgbench(b.backlog)
	if err != nil {
		return 0, 0, err
	}
	id, to, err := b.writeMarker(ctx)
	if err != nil {
		return 0, 0, err
	}
	mb := float64(to-from) / 1e6

	catchUpCutover := func() error {
		start := time.Now()
		if err := b.startCutover(); err != nil {
			return err
		}
		b.cutoverTimed = true
		if err := b.waitMarker(ctx, byCutover, id, b.cutover); err != nil {
			return err
		}
		cutover = time.Since(start)
		return nil
	}
	catchUpNative := func() error {
		start := time.Now()
		if err := b.tgt.Exec(ctx, byNative, "ALTER SUBSCRIPTION bench_sub ENABLE"); err != nil {
			return err
		}
		if err := b.waitMarker(ctx, byNative, id, nil); err != nil {
			return err
		}
		native = time.Since(start)
		return nil
	}
	order, steps := "cutover first", []func() error{catchUpCutover, catchUpNative}
	if !cutoverFirst {
		order, steps = "native first", []func() error{catchUpNative, catchUpCutover}
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return 0, 0, err
		}
	}
	startup := ""
	if t := b.cutover.CDCStarted(); !t.IsZero() {
		startup = fmt.Sprintf(", of which %v before change data capture started", t.Sub(b.cutover.Started).Round(time.Millisecond))
	}
	fmt.Printf("  run %d (%s): backlog %.0f MB, %v\n", run, order, mb, res)
	fmt.Printf("    cutover %v (%.0f MB/s%s)\n", cutover.Round(time.Millisecond), mb/cutover.Seconds(), startup)
	fmt.Printf("    native  %v (%.0f MB/s)\n", native.Round(time.Millisecond), mb/native.Seconds())
	return cutover, native, nil
}
