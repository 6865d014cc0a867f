// Command mysqlfullload benchmarks cutover's full load between MariaDB servers against
// its peer in one run, on throwaway servers (mytest): sysbench's oltp tables (8 tables
// of 250,000 rows by default) prepared on a source, then each tool copies them into a
// fresh database on a target. Run with: make bench-mysql-fullload (SCALE = rows per
// table, 250000 by default; TABLES, 8; RUNS, 3).
//
// Rows: cutover start --full-load-only (the load that precedes change data capture:
// a snapshot at a binary log position), the same with full_load.target_binlog false,
// cutover's one-shot copy (cdc: {enabled: false}), and the peer mydumper -t 2 into a
// directory + myloader -t 2 from it, timed together (dump and load), with and without
// myloader --enable-binlog. Every tool copies into a fresh empty database on the
// target, and every copy is checked: each table's row count and CHECKSUM TABLE equal
// the source's. cutover's load writes the rows to the target's binary log by default
// (the target's replicas get them), myloader's does not: the ratios compare like with
// like (both write it, or neither), and each tool's defaults.
//
// sysbench and mydumper (with myloader) must be on PATH (scripts/ensure-deps.sh
// mysqlbench installs them on Debian/Ubuntu: apt-get install sysbench mydumper).
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/bench/internal/harness"
	"github.com/cutover-dev/cutover/bench/internal/stat"
	"github.com/cutover-dev/cutover/mytest"
)

func main() {
	scale := flag.Int("scale", 250000, "rows per sysbench table on the source")
	tables := flag.Int("tables", 8, "sysbench tables on the source")
	jobs := flag.Int("jobs", 2, "workers (threads) for every tool")
	bin := flag.String("cutover", "bin/cutover", "cutover binary")
	runs := flag.Int("runs", 3, "runs of each tool; medians are compared")
	flag.Parse()
	if *runs < 1 {
		fmt.Fprintln(os.Stderr, "bench: -runs must be at least 1")
		os.Exit(2)
	}
	if err := run(*scale, *tables, *jobs, *runs, *bin); err != nil {
		mytest.StopAll()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	mytest.StopAll()
}

const sourceDB = "sbtest"

func run(scale, tables, jobs, runs int, bin string) error {
	ctx := context.Background()
	bin, _ = filepath.Abs(bin)
	mydumper, err := exec.LookPath("mydumper")
	if err != nil {
		return fmt.Errorf("mydumper is not on PATH: run scripts/ensure-deps.sh mysqlbench, or apt-get install mydumper (Debian/Ubuntu)")
	}
	myloader, err := exec.LookPath("myloader")
	if err != nil {
		return fmt.Errorf("myloader is not on PATH: run scripts/ensure-deps.sh mysqlbench, or apt-get install mydumper (Debian/Ubuntu)")
	}
	source, err := harness.SysbenchSource(ctx, "bench-source", sourceDB, tables, scale)
	if err != nil {
		return err
	}
	src, srcPool, version, size := source.Server, source.Pool, source.Version, source.Size
	defer srcPool.Close()
	tgt, err := mytest.Start(ctx, mytest.Options{Name: "bench-target", Settings: harness.MariaDBSettings})
	if err != nil {
		return err
	}
	want, err := figures(ctx, srcPool, tables)
	if err != nil {
		return err
	}
	fmt.Printf("source database: %d tables of %d rows, %.0f MB (data and indexes); MariaDB %s\n\n", tables, scale, size/1e6, version)

	dir, err := os.MkdirTemp("", "cutover-bench-mysql-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	check := func(db string) error {
		if err := sameTables(ctx, tgt, db, tables, want); err != nil {
			return err
		}
		return dropAndSettle(ctx, src, tgt, db)
	}
	plan := func(db, cdc, binlog string) string {
		return fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\nfull_load: {parallel: %d, target_binlog: %s}\ncontrol_schema: ctl_%s\ncdc: {%s}\n",
			src.URL(sourceDB), tgt.URL(db), jobs, binlog, db, cdc)
	}
	// The rows, each copying into a fresh database every run. Whether the target's
	// binary log gets the rows is what sets them apart: cutover's load writes it by
	// default, myloader's does not.
	tools := []*tool{
		{name: "cutover start --full-load-only", db: "by_cutover", cutover: true, binlog: true},
		{name: "  the same, full_load.target_binlog false", db: "by_cutover_nolog", cutover: true},
		{name: "cutover one-shot copy (cdc.enabled false)", db: "by_oneshot", cutover: true, binlog: true},
		{name: fmt.Sprintf("mydumper -t %d + myloader -t %d", jobs, jobs), db: "by_mydumper"},
		{name: "  the same, myloader --enable-binlog", db: "by_mydumper_binlog", binlog: true},
	}
	cutover, nolog, oneshot, peer, peerBinlog := tools[0], tools[1], tools[2], tools[3], tools[4]
	for i := range runs {
		var line []string
		for _, tl := range tools {
			db := fmt.Sprintf("%s_%d", tl.db, i)
			var t time.Duration
			var err error
			switch {
			case tl.cutover:
				cdc, args := "enabled: true", []string{"--full-load-only"}
				if tl == oneshot {
					cdc, args = "enabled: false", nil
				}
				var r harness.Run
				r, err = runCutover(ctx, bin, dir, tgt, db, plan(db, cdc, strconv.FormatBool(tl.binlog)), args...)
				t, tl.cpu, tl.rss = r.Elapsed, append(tl.cpu, r.CPU), max(tl.rss, r.RSSMB)
			case tl.binlog:
				t, err = runPeer(ctx, mydumper, myloader, dir, src, tgt, db, jobs, "--enable-binlog")
			default:
				t, err = runPeer(ctx, mydumper, myloader, dir, src, tgt, db, jobs)
			}
			if err != nil {
				return err
			}
			if err := check(db); err != nil {
				return err
			}
			tl.times = append(tl.times, t)
			line = append(line, fmt.Sprintf("%s %v", tl.db, t.Round(time.Millisecond)))
		}
		fmt.Printf("run %d: %s\n", i+1, strings.Join(line, ", "))
	}
	fmt.Printf("\nmedians of %d runs (%d workers each; binlog: the rows written to the target's binary log):\n", runs, jobs)
	for _, tl := range tools {
		extra := ""
		if tl.cutover {
			extra = fmt.Sprintf("   (its own CPU %v, peak RSS %.0f MB)", stat.Median(tl.cpu).Round(10*time.Millisecond), tl.rss)
		}
		fmt.Printf("  %-44s binlog %-3s %8v%s\n", tl.name, map[bool]string{true: "yes", false: "no"}[tl.binlog], stat.Median(tl.times).Round(time.Millisecond), extra)
	}
	ratio := func(a, b *tool) float64 { return stat.Median(a.times).Seconds() / stat.Median(b.times).Seconds() }
	fmt.Println("\nratios, like for like (both write the target's binary log, or neither):   (goal <= 0.80)")
	fmt.Printf("  cutover / (mydumper + myloader --enable-binlog):                 %.2f\n", ratio(cutover, peerBinlog))
	fmt.Printf("  one-shot copy / (mydumper + myloader --enable-binlog):           %.2f\n", ratio(oneshot, peerBinlog))
	fmt.Printf("  cutover, target_binlog false / (mydumper + myloader):            %.2f\n", ratio(nolog, peer))
	fmt.Println("each tool's default (cutover writes the target's binary log, myloader does not):")
	fmt.Printf("  cutover / (mydumper + myloader):                                 %.2f\n", ratio(cutover, peer))
	return nil
}

// tool is one row of the benchmark.
type tool struct {
	name, db string
	cutover  bool // cutover (else mydumper + myloader)
	binlog   bool // the rows go into the target's binary log
	times    []time.Duration
	cpu      []time.Duration // cutover's own
	rss      float64         // cutover's peak, MB
}

// connArgs are the mydumper/myloader options that reach a server as root.
func connArgs(s *mytest.Server) []string {
	return []string{"-h", "127.0.0.1", "-P", strconv.Itoa(s.Port), "-u", mytest.Superuser, "-p", mytest.Password}
}

// runPeer times mydumper into a directory and myloader from it into db, a new
// database on the target.
func runPeer(ctx context.Context, mydumper, myloader, dir string, src, tgt *mytest.Server, db string, jobs int, loaderArgs ...string) (time.Duration, error) {
	if err := tgt.Exec(ctx, "", "CREATE DATABASE "+db); err != nil {
		return 0, err
	}
	dumpDir := filepath.Join(dir, db)
	defer os.RemoveAll(dumpDir)
	start := time.Now()
	if out, err := exec.Command(mydumper, append(connArgs(src), "-B", sourceDB, "-t", strconv.Itoa(jobs), "-o", dumpDir)...).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("mydumper: %v\n%s", err, out)
	}
	dumped := time.Since(start)
	args := append(connArgs(tgt), "-B", db, "-t", strconv.Itoa(jobs), "-d", dumpDir)
	if out, err := exec.Command(myloader, append(args, loaderArgs...)...).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("myloader: %v\n%s", err, out)
	}
	took := time.Since(start)
	if os.Getenv("BENCH_VERBOSE") != "" {
		fmt.Printf("%s: mydumper %v, myloader %v\n", db, dumped.Round(time.Millisecond), (took - dumped).Round(time.Millisecond))
	}
	return took, nil
}

// runCutover writes the plan and times cutover start with it into db, a new database
// on the target.
func runCutover(ctx context.Context, bin, dir string, tgt *mytest.Server, db, plan string, args ...string) (harness.Run, error) {
	if err := tgt.Exec(ctx, "", "CREATE DATABASE "+db); err != nil {
		return harness.Run{}, err
	}
	planFile := filepath.Join(dir, db+".yaml")
	if err := os.WriteFile(planFile, []byte(plan), 0o600); err != nil {
		return harness.Run{}, err
	}
	return harness.Cutover(bin, planFile, db, args...)
}

// tableFigures are what a copy must match: a table's row count and CHECKSUM TABLE.
type tableFigures struct {
	rows     int64
	checksum sql.NullInt64
}

// figures reads every sysbench table's row count and checksum in pool's database.
func figures(ctx context.Context, pool *sql.DB, tables int) ([]tableFigures, error) {
	out := make([]tableFigures, tables)
	for i := range tables {
		t := fmt.Sprintf("sbtest%d", i+1)
		if err := pool.QueryRowContext(ctx, "SELECT count(*) FROM "+t).Scan(&out[i].rows); err != nil {
			return nil, fmt.Errorf("count %s: %w", t, err)
		}
		var name string
		if err := pool.QueryRowContext(ctx, "CHECKSUM TABLE "+t).Scan(&name, &out[i].checksum); err != nil {
			return nil, fmt.Errorf("checksum %s: %w", t, err)
		}
	}
	return out, nil
}

// sameTables checks that a copy is complete and equal to the source before its time counts.
func sameTables(ctx context.Context, tgt *mytest.Server, db string, tables int, want []tableFigures) error {
	pool, err := tgt.Open(db)
	if err != nil {
		return err
	}
	defer pool.Close()
	got, err := figures(ctx, pool, tables)
	if err != nil {
		return fmt.Errorf("%s: %w", db, err)
	}
	for i := range want {
		if got[i] != want[i] {
			return fmt.Errorf("sbtest%d in %s: %d rows, checksum %v; the source has %d rows, checksum %v",
				i+1, db, got[i].rows, got[i].checksum.Int64, want[i].rows, want[i].checksum.Int64)
		}
	}
	return nil
}

// dropAndSettle clears the way for the next tool: the copy's database and its control
// database are dropped, and both servers write their dirty pages out, so that each tool
// starts on servers with no flushing left by the one before.
func dropAndSettle(ctx context.Context, src, tgt *mytest.Server, db string) error {
	if err := tgt.Exec(ctx, "", "DROP DATABASE "+db+"; DROP DATABASE IF EXISTS ctl_"+db); err != nil {
		return err
	}
	for _, s := range []*mytest.Server{src, tgt} {
		if err := harness.SettleInnoDB(ctx, s); err != nil {
			return err
		}
	}
	return nil
}
