// Command mysqlcdc benchmarks cutover's change data capture between MariaDB servers
// against native replication, in one run, on throwaway servers (mytest), with
// sysbench's oltp tables on the source (8 tables of 250,000 rows by default). Run with:
// make bench-mysql-cdc (SCALE = rows per table, TABLES, LOAD, BACKLOG, RUNS).
//
// Three servers: the source; cutover's target, loaded by cutover start (full load,
// then change data capture); and a MariaDB replica of the source (CHANGE MASTER TO ...
// MASTER_USE_GTID = slave_pos), which starts empty and replays the source's binary log
// from its first transaction (the tables' creation and sysbench's prepare included): a
// consistent copy by construction.
//
//  1. Under load: sysbench oltp_read_write --threads=4 for -load (60 s) on the source
//     while cutover replicates alone (the replica stopped): the target's lag, sampled
//     every 200 ms, p50 and p99, and the time to catch up once sysbench ends; then the
//     same with the replica alone, for comparison (-replica-load).
//  2. Backlog: both consumers stopped (cutover by SIGTERM, the replica by STOP SLAVE),
//     sysbench oltp_read_write --threads=4 for -backlog (30 s), then both started at the
//     same moment (-together, the default; else each alone, the order alternating over
//     -runs), each timed until it has caught up; medians compared.
//
// "Caught up" is the same for both: after the load a marker row is written on the
// source, and the consumer's applied position (cutover's applied_position in its
// control database; the replica's gtid_slave_pos) covers the source's gtid_binlog_pos
// read after it. The lag is measured the same way for both: the time since the
// source's binary log first went past the position the consumer had applied (the
// source's position is sampled every 50 ms). At the end both copies are compared with
// the source: each table's row count and CHECKSUM TABLE.
//
// sysbench must be on PATH (scripts/ensure-deps.sh mysqlbench installs it on
// Debian/Ubuntu: apt-get install sysbench).
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/cutover-dev/cutover/bench/internal/harness"
	"github.com/cutover-dev/cutover/bench/internal/stat"
	"github.com/cutover-dev/cutover/mytest"
)

// keptUpWithin is how soon after the load the consumer must catch up to have kept up.
const keptUpWithin = 5 * time.Second

// Databases: the source's (the replica's too) and cutover's on its target.
const (
	sourceDB  = "sbtest"
	byCutover = "by_cutover"
	controlDB = "ctl_bench"
)

type config struct {
	scale, tables  int
	load, backlog  time.Duration
	runs           int
	bin            string
	timeout        time.Duration
	replicaLoad    bool
	together       bool
	replicaThreads int
	replicaLogs    bool
	loadOnly       bool
}

func main() {
	var c config
	flag.IntVar(&c.scale, "scale", 250000, "rows per sysbench table on the source")
	flag.IntVar(&c.tables, "tables", 8, "sysbench tables on the source")
	flag.DurationVar(&c.load, "load", 60*time.Second, "sysbench time while cutover replicates")
	flag.DurationVar(&c.backlog, "backlog", 30*time.Second, "sysbench time with both consumers stopped, building the backlog")
	flag.IntVar(&c.runs, "runs", 2, "backlog runs; medians are compared")
	flag.StringVar(&c.bin, "cutover", "bin/cutover", "cutover binary")
	flag.BoolVar(&c.replicaLoad, "replica-load", true, "also run the load with the replica alone, for comparison")
	flag.BoolVar(&c.together, "together", true, "both consumers catch up on the backlog at the same time (else each alone, the order alternating)")
	flag.IntVar(&c.replicaThreads, "replica-threads", 0, "the replica's slave_parallel_threads (0, MariaDB's default: one SQL thread)")
	flag.BoolVar(&c.replicaLogs, "replica-log-updates", true, "the replica writes what it applies to its own binary log (log_slave_updates), as cutover's target does (MySQL 8's default; MariaDB's is off)")
	flag.BoolVar(&c.loadOnly, "load-only", false, "stop after cutover's run under load (to study its latency)")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Minute, "longest wait for a consumer to catch up")
	flag.Parse()
	if c.runs < 1 {
		fmt.Fprintln(os.Stderr, "bench: -runs must be at least 1")
		os.Exit(2)
	}
	if err := run(c); err != nil {
		mytest.StopAll()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	mytest.StopAll()
}

// settings are the servers' options over mytest's: room for the whole data set in the
// buffer pool and a redo log that does not force flushing in the middle of a load.
var settings = map[string]string{"innodb_buffer_pool_size": "1G", "innodb_log_file_size": "512M", "max_allowed_packet": "256M"}

// bench is the servers, the benchmark's pools and the running cutover.
type bench struct {
	config
	src, tgt, rep          *mytest.Server
	srcPool, tgtPool, repl *sql.DB // the source's sbtest, the target's control database, the replica
	dir, plan              string
	marker                 int
	cutover                *harness.Process // the running cutover, nil when stopped
	cutoverTimed           bool             // it timed a backlog catch-up: its peak RSS counts
	peakRSS                float64          // MB, of the cutover processes that timed a backlog catch-up
	cpu                    time.Duration
}

// results is what the summary prints.
type results struct {
	cutoverLoad  loadResult
	replicaLoad  *loadResult
	cutoverTimes []time.Duration
	replicaTimes []time.Duration
}

func run(c config) (err error) {
	ctx := context.Background()
	c.bin, _ = filepath.Abs(c.bin)
	b := &bench{config: c}
	repSettings := map[string]string{}
	for k, v := range settings {
		repSettings[k] = v
	}
	if c.replicaThreads > 0 {
		repSettings["slave_parallel_threads"] = fmt.Sprint(c.replicaThreads)
	}
	if c.replicaLogs {
		repSettings["log_slave_updates"] = "ON"
	}
	if b.src, err = mytest.Start(ctx, mytest.Options{Name: "bench-source", Settings: settings}); err != nil {
		return err
	}
	if b.tgt, err = mytest.Start(ctx, mytest.Options{Name: "bench-target", Settings: settings}); err != nil {
		return err
	}
	if b.rep, err = mytest.Start(ctx, mytest.Options{Name: "bench-replica", Settings: repSettings}); err != nil {
		return err
	}
	if b.dir, err = os.MkdirTemp("", "cutover-bench-mysqlcdc-"); err != nil {
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
	defer b.closePools()
	defer func() { _ = b.stopCutover() }() // after an error

	if err := b.startReplica(ctx); err != nil {
		return err
	}
	if err := b.stopReplica(ctx); err != nil {
		return err
	}
	var res results
	if err := b.startReplicating(ctx); err != nil {
		return err
	}
	if res.cutoverLoad, err = b.underLoad(ctx, b.cutoverFollower()); err != nil {
		return err
	}
	if b.loadOnly {
		return b.stopCutover()
	}
	if b.replicaLoad {
		if res.replicaLoad, err = b.replicaUnderLoad(ctx); err != nil {
			return err
		}
	}
	how := "then both start at the same moment"
	if !b.together {
		how = "then each catches up alone"
	}
	fmt.Printf("\nbacklog: both consumers stopped, sysbench oltp_read_write --threads=4 --time=%d, %s\n", secs(b.backlog), how)
	for i := range b.runs {
		ct, rt, err := b.backlogRun(ctx, i+1, i%2 == 0)
		if err != nil {
			return err
		}
		res.cutoverTimes, res.replicaTimes = append(res.cutoverTimes, ct), append(res.replicaTimes, rt)
	}
	for _, f := range []follower{b.cutoverFollower(), b.replicaFollower()} {
		if err := b.sameData(ctx, f); err != nil {
			return err
		}
	}
	fmt.Println("both copies match the source: row count and CHECKSUM TABLE of every table")
	if err := b.stopCutover(); err != nil {
		return err
	}
	res.print(b.config, b.peakRSS)
	return nil
}

func (r results) print(c config, peakRSS float64) {
	fmt.Printf("\nunder load (sysbench oltp_read_write --threads=4 --time=%d), each consumer alone:\n", secs(c.load))
	fmt.Printf("  cutover p99 target latency: %.3fs measured here (p50 %.3fs)   (goal <= 1.000s)\n", r.cutoverLoad.lag.P99, r.cutoverLoad.lag.P50)
	if r.replicaLoad != nil {
		fmt.Printf("  replica p99 lag:            %.3fs measured here (p50 %.3fs)\n", r.replicaLoad.lag.P99, r.replicaLoad.lag.P50)
	}
	fmt.Printf("  kept up: cutover %s (caught up %v after the load)", r.cutoverLoad.keptUp(), r.cutoverLoad.behind.Round(time.Millisecond))
	if r.replicaLoad != nil {
		fmt.Printf(", replica %s (%v)", r.replicaLoad.keptUp(), r.replicaLoad.behind.Round(time.Millisecond))
	}
	ct, rt := stat.Median(r.cutoverTimes), stat.Median(r.replicaTimes)
	how := "both at the same time"
	if !c.together {
		how = "each alone"
	}
	fmt.Printf("\nbacklog catch-up (%s), medians of %d runs:\n", how, c.runs)
	fmt.Printf("  cutover (cutover start, resuming):      %v\n", ct.Round(time.Millisecond))
	fmt.Printf("  MariaDB replica (START SLAVE, GTID):    %v\n", rt.Round(time.Millisecond))
	fmt.Printf("  ratio cutover / replica: %.2f   (goal <= 1.00)\n", ct.Seconds()/rt.Seconds())
	fmt.Printf("cutover peak RSS during catch-up: %.0f MB\n", peakRSS)
}

// buildSource makes sysbench's tables and the marker table on the source, and opens
// the benchmark's pools.
func (b *bench) buildSource(ctx context.Context) error {
	if err := harness.PrepareSysbench(ctx, b.src, sourceDB, b.tables, b.scale); err != nil {
		return err
	}
	if err := b.src.Exec(ctx, sourceDB, "CREATE TABLE bench_marker (id int PRIMARY KEY, at datetime(6) NOT NULL)"); err != nil {
		return err
	}
	var err error
	if b.srcPool, err = b.src.Open(sourceDB); err != nil {
		return err
	}
	if b.tgtPool, err = b.tgt.Open(""); err != nil {
		return err
	}
	if b.repl, err = b.rep.Open(""); err != nil {
		return err
	}
	var version string
	var size float64
	if err := b.srcPool.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return err
	}
	if err := b.srcPool.QueryRowContext(ctx, "SELECT coalesce(sum(data_length + index_length), 0) FROM information_schema.TABLES WHERE table_schema = ?", sourceDB).Scan(&size); err != nil {
		return err
	}
	fmt.Printf("source database: %.0f MB (data and indexes); MariaDB %s, %d CPUs shared by the three servers, sysbench and cutover\n",
		size/1e6, version, runtime.NumCPU())
	if b.replicaLogs {
		fmt.Println("the replica writes what it applies to its binary log (log_slave_updates = ON), as cutover's target does; -replica-log-updates=false for MariaDB's default")
	} else {
		fmt.Println("the replica does not write what it applies to its binary log (log_slave_updates = OFF, MariaDB's default); cutover's target does")
	}
	if err := b.tgt.Exec(ctx, "", "CREATE DATABASE "+byCutover); err != nil {
		return err
	}
	b.plan = filepath.Join(b.dir, "cutover.yaml")
	plan := fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\nfull_load: {parallel: 2}\ncontrol_schema: %s\napi: {listen: \"127.0.0.1:0\"}\n",
		b.src.URL(sourceDB), b.tgt.URL(byCutover), controlDB)
	return os.WriteFile(b.plan, []byte(plan), 0o600)
}

func (b *bench) closePools() {
	for _, p := range []*sql.DB{b.srcPool, b.tgtPool, b.repl} {
		if p != nil {
			p.Close()
		}
	}
}

// startReplica makes the third server a replica of the source from the source's first
// transaction, and waits until it has caught up.
func (b *bench) startReplica(ctx context.Context) error {
	start := time.Now()
	// The replica's own binary log (its accounts' set-up) is cleared: in strict mode a
	// replicated GTID must follow the last one of its domain there.
	sql := fmt.Sprintf("RESET MASTER; SET GLOBAL gtid_slave_pos = ''; CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = %d, "+
		"MASTER_USER = '%s', MASTER_PASSWORD = '%s', MASTER_USE_GTID = slave_pos; START SLAVE", b.src.Port, mytest.Superuser, mytest.Password)
	if err := b.rep.Exec(ctx, "", sql); err != nil {
		return err
	}
	if _, err := b.catchUp(ctx, b.replicaFollower()); err != nil {
		return err
	}
	fmt.Printf("replica: replayed the source's binary log from its start (sysbench prepare included) in %v\n", time.Since(start).Round(time.Millisecond))
	return nil
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
	if _, err := b.catchUp(ctx, b.cutoverFollower()); err != nil {
		return err
	}
	fmt.Printf("cutover: full load %v, change data capture caught up after %v\n",
		loaded.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	return nil
}

// startCutover runs cutover start in the background.
func (b *bench) startCutover() error {
	p, err := harness.StartCutover(b.bin, b.plan, filepath.Join(b.dir, "cutover.log"), harness.CDCFromBinlog)
	if err != nil {
		return err
	}
	b.cutover = p
	return nil
}

// stopCutover stops the running cutover, if any, and keeps its peak RSS and CPU time
// when it timed a catch-up.
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

// follower is one consumer of the source's binary log.
type follower struct {
	name    string
	applied func(context.Context) (gtidState, error) // the GTID state it has applied
	target  *mytest.Server                           // where its copy is
	db      string                                   // the copy's database there
	proc    func() *harness.Process                  // cutover's running process; nil for the replica
}

// cutoverFollower is cutover: its applied position is in its control database.
func (b *bench) cutoverFollower() follower {
	return follower{name: "cutover", target: b.tgt, db: byCutover, proc: func() *harness.Process { return b.cutover },
		applied: func(ctx context.Context) (gtidState, error) {
			return readGTID(ctx, b.tgtPool, "SELECT applied_position FROM "+controlDB+".state WHERE id = 1")
		}}
}

// replicaFollower is the MariaDB replica: gtid_slave_pos is what its SQL thread committed.
func (b *bench) replicaFollower() follower {
	return follower{name: "replica", target: b.rep, db: sourceDB,
		applied: func(ctx context.Context) (gtidState, error) {
			return readGTID(ctx, b.repl, "SELECT @@gtid_slave_pos")
		}}
}

// loadResult is how one consumer followed the load.
type loadResult struct {
	lag    stat.Dist
	behind time.Duration // from sysbench's end to caught up
}

func (r loadResult) keptUp() string {
	if r.behind > keptUpWithin {
		return "no"
	}
	return "yes"
}

// underLoad runs sysbench while f follows alone, sampling its lag, then times the
// catch-up once sysbench has stopped.
func (b *bench) underLoad(ctx context.Context, f follower) (loadResult, error) {
	var r loadResult
	fmt.Printf("\nunder load: sysbench oltp_read_write --threads=4 --time=%d on the source while %s follows\n", secs(b.load), f.name)
	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan samples, 1)
	sampleErr := make(chan error, 1)
	go func() {
		s, err := sampler(sctx, b.srcPool, f)
		sampled <- s
		sampleErr <- err
	}()
	from := time.Now()
	res, err := b.sysbenchRun(b.load)
	to := time.Now()
	if err == nil {
		_, err = b.catchUp(ctx, f)
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
	r.lag = stat.DistOf(s.lags(from, to))
	fmt.Printf("  lag, measured here (applied position against the source's gtid_binlog_pos): %v\n", r.lag)
	fmt.Printf("  kept up: %s, caught up %v after sysbench stopped (kept up: within %v)\n", r.keptUp(), r.behind.Round(time.Millisecond), keptUpWithin)
	if err := b.sameData(ctx, f); err != nil {
		return r, err
	}
	fmt.Printf("  %s's copy matches the source\n", f.name)
	return r, nil
}

// replicaUnderLoad runs the load with the replica alone, for comparison; cutover,
// stopped meanwhile, then catches up on it (untimed), and the replica stops again.
func (b *bench) replicaUnderLoad(ctx context.Context) (*loadResult, error) {
	if err := b.stopCutover(); err != nil {
		return nil, err
	}
	if err := b.rep.Exec(ctx, "", "START SLAVE"); err != nil {
		return nil, err
	}
	if _, err := b.catchUp(ctx, b.replicaFollower()); err != nil {
		return nil, err
	}
	r, err := b.underLoad(ctx, b.replicaFollower())
	if err != nil {
		return nil, err
	}
	if err := b.stopReplica(ctx); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := b.startCutover(); err != nil {
		return nil, err
	}
	if _, err := b.catchUp(ctx, b.cutoverFollower()); err != nil {
		return nil, err
	}
	fmt.Printf("  (cutover, stopped meanwhile, caught up on that load in %v)\n", time.Since(start).Round(time.Millisecond))
	return &r, nil
}

// backlogRun stops both consumers, builds a backlog, then times each catching up.
func (b *bench) backlogRun(ctx context.Context, run int, cutoverFirst bool) (cutover, replica time.Duration, err error) {
	if err := b.stopCutover(); err != nil {
		return 0, 0, err
	}
	if err := b.stopReplica(ctx); err != nil {
		return 0, 0, err
	}
	if err := b.waitNoReader(ctx); err != nil {
		return 0, 0, err
	}
	fromPos, err := readGTID(ctx, b.srcPool, "SELECT @@gtid_binlog_pos")
	if err != nil {
		return 0, 0, err
	}
	fromBytes, err := b.binlogBytes(ctx)
	if err != nil {
		return 0, 0, err
	}
	res, err := b.sysbenchRun(b.backlog)
	if err != nil {
		return 0, 0, err
	}
	want, err := b.writeMarker(ctx)
	if err != nil {
		return 0, 0, err
	}
	toBytes, err := b.binlogBytes(ctx)
	if err != nil {
		return 0, 0, err
	}
	mb := float64(toBytes-fromBytes) / 1e6
	var cutoverCPU, targetCPU, replicaCPU time.Duration
	txns := want.seq() - fromPos.seq()

	catchUpCutover := func() error {
		start, serverCPU := time.Now(), b.tgt.CPU()
		if err := b.startCutover(); err != nil {
			return err
		}
		b.cutoverTimed = true
		if err := b.waitCovers(ctx, b.cutoverFollower(), want); err != nil {
			return err
		}
		cutover = time.Since(start)
		cutoverCPU, targetCPU = b.cutover.CPUSoFar(), b.tgt.CPU()-serverCPU
		return nil
	}
	catchUpReplica := func() error {
		start, serverCPU := time.Now(), b.rep.CPU()
		if err := b.rep.Exec(ctx, "", "START SLAVE"); err != nil {
			return err
		}
		if err := b.waitCovers(ctx, b.replicaFollower(), want); err != nil {
			return err
		}
		replica = time.Since(start)
		replicaCPU = b.rep.CPU() - serverCPU
		return nil
	}
	order := "together"
	if b.together {
		errs := make(chan error, 2)
		go func() { errs <- catchUpCutover() }()
		go func() { errs <- catchUpReplica() }()
		for range 2 {
			if e := <-errs; e != nil && err == nil {
				err = e
			}
		}
		if err != nil {
			return 0, 0, err
		}
	} else {
		order = "cutover first"
		steps := []func() error{catchUpCutover, catchUpReplica}
		if !cutoverFirst {
			order, steps = "replica first", []func() error{catchUpReplica, catchUpCutover}
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return 0, 0, err
			}
		}
	}
	startup := ""
	if t := b.cutover.CDCStarted(); !t.IsZero() {
		startup = fmt.Sprintf(", of which %v before change data capture started", t.Sub(b.cutover.Started).Round(time.Millisecond))
	}
	fmt.Printf("  run %d (%s): backlog %d transactions, %.0f MB of binary log; %s\n", run, order, txns, mb, res)
	fmt.Printf("    cutover %v (%.0f transactions/s%s; its own CPU %v, the target server's %v)\n", cutover.Round(time.Millisecond), float64(txns)/cutover.Seconds(), startup,
		cutoverCPU.Round(10*time.Millisecond), targetCPU.Round(10*time.Millisecond))
	fmt.Printf("    replica %v (%.0f transactions/s; the replica server's CPU %v)\n", replica.Round(time.Millisecond), float64(txns)/replica.Seconds(), replicaCPU.Round(10*time.Millisecond))
	return cutover, replica, nil
}
