// Command mysqlpgcdc measures how far cutover's change data capture from MariaDB into
// PostgreSQL stays behind a live load, on throwaway servers (mytest, pgtest): issue
// 20's goal, "CDC keeps up with sysbench oltp_read_write --threads=4 with p99 target
// latency at most 1 s". Run with: make bench-mysqlpg-cdc (SCALE = rows per sysbench
// table, 250000 by default; TABLES, 8; TIME, sysbench's seconds, 60; THREADS, 4).
//
// sysbench's oltp tables are prepared on a MariaDB source (as bench/mysqlcdc); cutover
// start (full load, then change data capture) copies them into a fresh database on a
// PostgreSQL target and follows the binary log. Then sysbench oltp_read_write runs on
// the source for -time while cutover applies.
//
// The target latency is measured without cutover's help, by heartbeats: a small table
// on the source (bench_beat, made before the full load, so copied with the rest) gets a
// row every -beat (100 ms), and the time its INSERT returned is noted here; a poller
// reads the highest beat on the target every -poll (20 ms), and a beat's latency is the
// start of the first poll that saw it minus its commit on the source (both servers run
// on this machine, on one clock: this process's). It errs on the high side by at most
// -poll. The latencies of the beats written during sysbench's run are reported (p50,
// p95, p99, max, and the highest of each 10 s), with sysbench's transactions per
// second; after sysbench stops a last beat is written, and the catch-up is the time
// until the target holds it. Then the sysbench tables on the target are checked
// against the source: each table's row count and the MD5 of a sample of its rows, each
// computed in its own server's SQL.
//
// The CPU each process used during sysbench's run is printed (cutover, the MariaDB
// server, the PostgreSQL server's processes, sysbench, and the machine in all: what
// else ran shows there), and the time cutover's threads and PostgreSQL's processes
// (cutover's sessions apart) spent runnable but waiting for a CPU (the kernel's
// schedstat): on a busy machine, where the latency goes. With -cpuprofile PREFIX,
// cutover is restarted once the full load is done with CUTOVER_CPUPROFILE=PREFIX, so
// that its profile (PREFIX.PID, written when it stops) covers change data capture
// only; -beats FILE writes every heartbeat's times to a CSV file.
//
// sysbench must be on PATH (scripts/ensure-deps.sh mysqlpgbench installs it on
// Debian/Ubuntu: apt-get install sysbench).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/bench/internal/harness"
	"github.com/cutover-dev/cutover/pgtest"
)

// Databases: the source's (and the target schema cutover copies it into), and the
// target's.
const (
	sourceDB  = "sbtest"
	byCutover = "by_cutover"
)

// goal is issue 20's: the p99 target latency under the load.
const goal = time.Second

type config struct {
	scale, tables, threads, sample, parallel int
	load, beat, poll, timeout                time.Duration
	bin, cpuprofile, beatsCSV                string
}

func main() {
	var c config
	flag.IntVar(&c.scale, "scale", 250000, "rows per sysbench table on the source")
	flag.IntVar(&c.tables, "tables", 8, "sysbench tables on the source")
	flag.IntVar(&c.threads, "threads", 4, "sysbench's threads")
	flag.DurationVar(&c.load, "time", 60*time.Second, "sysbench's run while cutover applies")
	flag.DurationVar(&c.beat, "beat", 100*time.Millisecond, "time between heartbeats written on the source")
	flag.DurationVar(&c.poll, "poll", 20*time.Millisecond, "time between reads of the target's last heartbeat")
	flag.IntVar(&c.sample, "sample", 100, "the final check's MD5 covers the rows whose id is a multiple of this (1: every row)")
	flag.IntVar(&c.parallel, "parallel", 2, "cutover's full_load.parallel")
	flag.StringVar(&c.bin, "cutover", "bin/cutover", "cutover binary")
	flag.StringVar(&c.cpuprofile, "cpuprofile", "", "restart cutover for change data capture with CUTOVER_CPUPROFILE set to this prefix")
	flag.StringVar(&c.beatsCSV, "beats", "", "write every heartbeat (written, arrived, latency; seconds from sysbench's start) to this CSV file")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Minute, "longest wait for the full load, and for the target to catch up")
	flag.Parse()
	if c.sample < 1 || c.threads < 1 || c.tables < 1 || c.beat <= 0 || c.poll <= 0 {
		fmt.Fprintln(os.Stderr, "bench: -sample, -threads, -tables, -beat and -poll must be positive")
		os.Exit(2)
	}
	harness.Exit(run(c))
}

func run(c config) (err error) {
	ctx := context.Background()
	c.bin, _ = filepath.Abs(c.bin)
	if c.cpuprofile != "" {
		c.cpuprofile, _ = filepath.Abs(c.cpuprofile)
	}
	source, err := harness.SysbenchSource(ctx, "bench-source", sourceDB, c.tables, c.scale)
	if err != nil {
		return err
	}
	src, srcPool := source.Server, source.Pool
	defer srcPool.Close()
	if err := src.Exec(ctx, sourceDB, "CREATE TABLE bench_beat (id bigint PRIMARY KEY, at datetime(6) NOT NULL)"); err != nil {
		return err
	}
	tgt, err := pgtest.Start(ctx, pgtest.Options{Name: "bench-target", Settings: harness.PostgresSettings})
	if err != nil {
		return err
	}
	if err := tgt.Exec(ctx, "postgres", "CREATE DATABASE "+byCutover); err != nil {
		return err
	}
	var pgVersion string
	if out, err := tgt.Psql(ctx, "postgres", "-At", "-c", "SHOW server_version"); err == nil {
		pgVersion = strings.TrimSpace(string(out))
	}
	fmt.Printf("source database: %d tables of %d rows, %.0f MB (data and indexes); MariaDB %s; target PostgreSQL %s; %d CPUs shared by both servers, sysbench and cutover\n",
		c.tables, c.scale, source.Size/1e6, source.Version, pgVersion, runtime.NumCPU())

	dir, err := os.MkdirTemp("", "cutover-bench-mysqlpgcdc-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: plan and cutover's log kept in %s\n", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	planFile := filepath.Join(dir, "cutover.yaml")
	plan := fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\nfull_load: {parallel: %d}\napi: {listen: \"127.0.0.1:0\"}\n",
		src.URL(sourceDB), tgt.URL(byCutover), c.parallel)
	if err := os.WriteFile(planFile, []byte(plan), 0o600); err != nil {
		return err
	}
	logPath := filepath.Join(dir, "cutover.log")

	start := time.Now()
	p, err := harness.StartCutover(c.bin, planFile, logPath, harness.CDCFromOtherEngine)
	if err != nil {
		return err
	}
	defer func() {
		if p != nil {
			_ = p.Stop()
		}
	}()
	if err := p.WaitCDC(c.timeout); err != nil {
		return err
	}
	loaded := time.Since(start)
	b, err := newBeats(ctx, srcPool, tgt, c.poll)
	if err != nil {
		return err
	}
	defer b.close()
	first, err := b.write(ctx)
	if err != nil {
		return err
	}
	if err := b.waitArrived(first, c.timeout, p); err != nil {
		return err
	}
	fmt.Printf("cutover: full load %v, change data capture started and caught up after %v\n",
		loaded.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if c.cpuprofile != "" {
		if err := p.Stop(); err != nil {
			return err
		}
		p = nil
		if p, err = harness.StartCutover(c.bin, planFile, logPath, harness.CDCFromOtherEngine, "CUTOVER_CPUPROFILE="+c.cpuprofile); err != nil {
			return err
		}
		id, err := b.write(ctx)
		if err != nil {
			return err
		}
		if err := b.waitArrived(id, c.timeout, p); err != nil {
			return err
		}
		fmt.Printf("cutover restarted with CUTOVER_CPUPROFILE=%s (pid %d): its profile covers change data capture only\n", c.cpuprofile, p.Pid())
	}

	res, err := underLoad(ctx, c, src, tgt, p, b)
	if err != nil {
		return err
	}
	pid := p.Pid()
	stopErr := p.Stop()
	cpuAll := p.CPUSoFar()
	p = nil
	if stopErr != nil {
		return stopErr
	}
	want, err := harness.SourceFigures(ctx, srcPool, c.tables, c.sample)
	if err != nil {
		return err
	}
	if err := harness.SameTables(ctx, tgt, byCutover, sourceDB, want, c.sample); err != nil {
		return fmt.Errorf("the target differs from the source: %w", err)
	}
	fmt.Printf("\nthe target matches the source: every sysbench table's row count and the MD5 of every %d'th row (computed by MariaDB and by PostgreSQL)\n", c.sample)
	res.print(c)
	if c.cpuprofile != "" {
		fmt.Printf("cutover's CPU profile of change data capture: %s.%d (CPU %v in all): go tool pprof -top %s %s.%d\n",
			c.cpuprofile, pid, cpuAll.Round(10*time.Millisecond), c.bin, c.cpuprofile, pid)
	}
	return nil
}
