// Command mysqlpgfullload benchmarks cutover's full load from MariaDB into PostgreSQL
// against pgloader, on throwaway servers (mytest, pgtest): sysbench's oltp tables (8
// tables of 250,000 rows by default, as bench/mysqlfullload) prepared on a MariaDB
// source, then each tool copies them into a fresh database on a PostgreSQL target.
// Run with: make bench-mysqlpg-fullload (SCALE = rows per table, 250000 by default;
// TABLES, 8; RUNS, 3).
//
// Rows: cutover's one-shot copy (cdc: {enabled: false}, validation.after_load false,
// full_load.parallel = -jobs) and pgloader from a load command file written here
// (create tables, create indexes, reset sequences, as it does by default) with the
// same parallelism: pgloader's workers (its threads, readers and writers together) =
// -jobs, concurrency = 1 (one writer a table), max parallel create index = -jobs
// (-pgloader-workers and -pgloader-concurrency set others; workers = 2 x jobs, a
// reader and a writer for each of cutover's workers, was no faster). Both put the tables
// into the target schema named after the source database (sbtest). Every copy is
// checked before its time counts: each table's row count and the MD5 of a sample of
// its rows (every -sample'th id, the values as text, CHAR's trailing blanks trimmed)
// equal the source's. Between tools the copy's database is dropped, PostgreSQL
// checkpoints and InnoDB flushes, so that no tool pays for the one before it.
//
// sysbench and pgloader must be on PATH (scripts/ensure-deps.sh mysqlpgbench installs
// them on Debian/Ubuntu: apt-get install sysbench pgloader).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/bench/internal/harness"
	"github.com/cutover-dev/cutover/bench/internal/stat"
	"github.com/cutover-dev/cutover/mytest"
	"github.com/cutover-dev/cutover/pgtest"
)

func main() {
	var c config
	flag.IntVar(&c.scale, "scale", 250000, "rows per sysbench table on the source")
	flag.IntVar(&c.tables, "tables", 8, "sysbench tables on the source")
	flag.IntVar(&c.jobs, "jobs", 2, "tables copied at a time by each tool (cutover's full_load.parallel)")
	flag.IntVar(&c.runs, "runs", 3, "runs of each tool; medians are compared")
	flag.IntVar(&c.sample, "sample", 100, "the checksum covers the rows whose id is a multiple of this (1: every row)")
	flag.IntVar(&c.pgloaderWorkers, "pgloader-workers", 0, "pgloader's workers, its threads (0: jobs)")
	flag.IntVar(&c.pgloaderConcurrency, "pgloader-concurrency", 1, "pgloader's concurrency (writers for each table)")
	flag.StringVar(&c.bin, "cutover", "bin/cutover", "cutover binary")
	flag.Parse()
	if c.runs < 1 || c.jobs < 1 || c.sample < 1 {
		fmt.Fprintln(os.Stderr, "bench: -runs, -jobs and -sample must be at least 1")
		os.Exit(2)
	}
	if c.pgloaderWorkers == 0 {
		c.pgloaderWorkers = c.jobs
	}
	harness.Exit(run(c))
}

type config struct {
	scale, tables, jobs, runs, sample    int
	pgloaderWorkers, pgloaderConcurrency int
	bin                                  string
}

// sourceDB is the source's database, and the target schema both tools copy into.
const sourceDB = "sbtest"

// tool is one row of the benchmark.
type tool struct {
	name, db string
	times    []time.Duration
	cpu      []time.Duration // the tool's own
	srcCPU   []time.Duration // the MariaDB server's during the copy
	rss      float64         // the tool's peak, MB
}

func run(c config) error {
	ctx := context.Background()
	bin, _ := filepath.Abs(c.bin)
	pgloader, err := exec.LookPath("pgloader")
	if err != nil {
		return fmt.Errorf("pgloader is not on PATH: run scripts/ensure-deps.sh mysqlpgbench, or apt-get install pgloader (Debian/Ubuntu)")
	}
	source, err := harness.SysbenchSource(ctx, "bench-source", sourceDB, c.tables, c.scale)
	if err != nil {
		return err
	}
	src, srcPool, version, size := source.Server, source.Pool, source.Version, source.Size
	defer srcPool.Close()
	tgt, err := pgtest.Start(ctx, pgtest.Options{Name: "bench-target", Settings: harness.PostgresSettings})
	if err != nil {
		return err
	}
	var pgVersion, pgloaderVersion string
	if out, err := tgt.Psql(ctx, "postgres", "-At", "-c", "SHOW server_version"); err == nil {
		pgVersion = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command(pgloader, "--version").Output(); err == nil {
		pgloaderVersion = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	want, err := harness.SourceFigures(ctx, srcPool, c.tables, c.sample)
	if err != nil {
		return err
	}
	fmt.Printf("source database: %d tables of %d rows, %.0f MB (data and indexes); MariaDB %s; target PostgreSQL %s; %s\n\n",
		c.tables, c.scale, size/1e6, version, pgVersion, pgloaderVersion)

	dir, err := os.MkdirTemp("", "cutover-bench-mysqlpg-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	oneshot := &tool{name: fmt.Sprintf("cutover one-shot copy (parallel %d)", c.jobs), db: "by_cutover"}
	peer := &tool{name: fmt.Sprintf("pgloader (workers %d, concurrency %d)", c.pgloaderWorkers, c.pgloaderConcurrency), db: "by_pgloader"}
	for i := range c.runs {
		var line []string
		for _, tl := range []*tool{oneshot, peer} {
			db := fmt.Sprintf("%s_%d", tl.db, i)
			if err := tgt.Exec(ctx, "postgres", "CREATE DATABASE "+db); err != nil {
				return err
			}
			cpuBefore := src.CPU()
			var r harness.Run
			if tl == oneshot {
				r, err = runCutover(c, bin, dir, src, tgt, db)
			} else {
				r, err = runPgloader(c, pgloader, dir, src, tgt, db)
			}
			if err != nil {
				return err
			}
			tl.srcCPU = append(tl.srcCPU, src.CPU()-cpuBefore)
			if err := harness.SameTables(ctx, tgt, db, sourceDB, want, c.sample); err != nil {
				return err
			}
			if err := dropAndSettle(ctx, src, tgt, db); err != nil {
				return err
			}
			tl.times, tl.cpu, tl.rss = append(tl.times, r.Elapsed), append(tl.cpu, r.CPU), max(tl.rss, r.RSSMB)
			line = append(line, fmt.Sprintf("%s %v", tl.db, r.Elapsed.Round(time.Millisecond)))
		}
		fmt.Printf("run %d: %s\n", i+1, strings.Join(line, ", "))
	}
	fmt.Printf("\nmedians of %d runs (each copy checked: row counts and the MD5 of every %d'th row equal the source's):\n", c.runs, c.sample)
	for _, tl := range []*tool{oneshot, peer} {
		fmt.Printf("  %-40s %8v   (its own CPU %v, peak RSS %.0f MB; MariaDB's CPU %v)\n", tl.name, stat.Median(tl.times).Round(time.Millisecond),
			stat.Median(tl.cpu).Round(10*time.Millisecond), tl.rss, stat.Median(tl.srcCPU).Round(10*time.Millisecond))
	}
	fmt.Printf("\nratio cutover / pgloader: %.2f   (goal <= 0.50)\n", stat.Median(oneshot.times).Seconds()/stat.Median(peer.times).Seconds())
	return nil
}

// runCutover writes the plan of a one-shot copy into db and times cutover start with it.
func runCutover(c config, bin, dir string, src *mytest.Server, tgt *pgtest.Server, db string) (harness.Run, error) {
	plan := fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\nfull_load: {parallel: %d}\ncdc: {enabled: false}\nvalidation: {after_load: false}\n",
		src.URL(sourceDB), tgt.URL(db), c.jobs)
	planFile := filepath.Join(dir, db+".yaml")
	if err := os.WriteFile(planFile, []byte(plan), 0o600); err != nil {
		return harness.Run{}, err
	}
	return harness.Cutover(bin, planFile, db)
}

// runPgloader writes pgloader's load command file for a copy of the source database
// into db and times pgloader with it.
func runPgloader(c config, pgloader, dir string, src *mytest.Server, tgt *pgtest.Server, db string) (harness.Run, error) {
	load := fmt.Sprintf(`LOAD DATABASE
     FROM mysql://%s:%s@127.0.0.1:%d/%s
     INTO postgresql://%s:%s@127.0.0.1:%d/%s?sslmode=disable

 WITH include drop, create tables, create indexes, reset sequences, foreign keys,
      workers = %d, concurrency = %d, max parallel create index = %d;
`, mytest.Superuser, mytest.Password, src.Port, sourceDB, pgtest.Superuser, pgtest.Password, tgt.Port, db,
		c.pgloaderWorkers, c.pgloaderConcurrency, c.jobs)
	loadFile := filepath.Join(dir, db+".load")
	if err := os.WriteFile(loadFile, []byte(load), 0o600); err != nil {
		return harness.Run{}, err
	}
	root := filepath.Join(dir, db)
	defer os.RemoveAll(root)
	// --on-error-stop: a row pgloader cannot load fails the run (by default it logs
	// the row as rejected and goes on, and exits 0).
	return harness.Timed(exec.Command(pgloader, "--on-error-stop", "--root-dir", root, "--no-ssl-cert-verification", loadFile), "pgloader "+db)
}

// dropAndSettle clears the way for the next tool: the copy's database is dropped
// (with it the autovacuum of the rows just loaded), PostgreSQL checkpoints and InnoDB
// writes its dirty pages out.
func dropAndSettle(ctx context.Context, src *mytest.Server, tgt *pgtest.Server, db string) error {
	if err := tgt.Exec(ctx, "postgres", "DROP DATABASE "+db+" WITH (FORCE)"); err != nil {
		return err
	}
	if err := tgt.Exec(ctx, "postgres", "CHECKPOINT"); err != nil {
		return err
	}
	return harness.SettleInnoDB(ctx, src)
}
