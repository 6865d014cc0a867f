// Command mysqlpgswitch benchmarks cutover switch's write downtime from MariaDB to
// PostgreSQL, on throwaway servers (mytest, pgtest): sysbench's oltp tables on a
// MariaDB source (the 8 tables of 250,000 rows by default), copied into a
// PostgreSQL target (its schema named after the source's database) and followed by
// cutover start (full load, then change data capture); then -runs times: cutover
// validate while the source is quiet (the switch's window then compares only the rows
// changed since, which the applier records), sysbench
// oltp_read_write --threads=4 writes on the source as the application's account (the
// switch blocks it; root is exempt) for -write, cutover switch runs, and the runbook's
// write downtime (block to unlock) and its steps inside the window are read from its
// JSON; every table is then compared on its own (its row count, the sum of k, and the
// sum of a hash of each row: the first 32 bits of the MD5 of id, k, c and pad, each
// computed in its own server's SQL); the application's role on PostgreSQL must log in
// (a rollback blocked it: the switch's unlock gives it back); then cutover rollback
// brings the migration back to MariaDB (reverse replication, PostgreSQL to MariaDB,
// stops) and the still running cutover start resumes change data capture from the
// source for the next run.
//
// The median write downtime is printed against the goal (at most 1 s), with the
// median of each step inside the window. Run with: make bench-mysqlpg-switch (SCALE =
// rows per sysbench table, 250000; TABLES, 8; RUNS, 5; WRITE, 10s). sysbench must be
// on PATH (scripts/ensure-deps.sh mysqlpgcdc installs it on Debian/Ubuntu).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/bench/internal/harness"
	"github.com/cutover-dev/cutover/bench/internal/stat"
	"github.com/cutover-dev/cutover/mytest"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/jackc/pgx/v5"
)

// The source's database (and the target's schema cutover copies it into), the
// target's database, and the application's account on both servers.
const (
	sourceDB             = "sbtest"
	targetDB             = "by_cutover"
	appUser, appPassword = "bench_app", "bench-app-pw"
)

// goal is the issue's: the switch's write downtime.
const goal = time.Second

// What cutover start prints when forward replication (again) and reverse
// replication start.
const (
	forwardLine = "change data capture from the source ("
	reverseLine = "reverse replication (target to source)"
)

type config struct {
	scale, tables, runs, threads int
	write, maxDowntime, timeout  time.Duration
	bin                          string
}

func main() {
	var c config
	flag.IntVar(&c.scale, "scale", 250000, "rows per sysbench table")
	flag.IntVar(&c.tables, "tables", 8, "sysbench tables")
	flag.IntVar(&c.runs, "runs", 5, "switches; the median downtime is reported")
	flag.DurationVar(&c.write, "write", 10*time.Second, "how long sysbench writes before each switch")
	flag.IntVar(&c.threads, "threads", 4, "sysbench's threads")
	flag.DurationVar(&c.maxDowntime, "max-downtime", 5*time.Minute, "the plan's cutover.max_downtime (past it the switch rolls back by itself)")
	flag.DurationVar(&c.timeout, "timeout", 30*time.Minute, "longest wait for the full load, and for cutover start's replication to (re)start")
	flag.StringVar(&c.bin, "cutover", "bin/cutover", "cutover binary")
	flag.Parse()
	if c.scale < 1 || c.tables < 1 || c.runs < 1 || c.threads < 1 || c.write <= 0 {
		fmt.Fprintln(os.Stderr, "bench: -scale, -tables, -runs, -threads and -write must be positive")
		os.Exit(2)
	}
	harness.Exit(run(c))
}

type bench struct {
	config
	dir, plan string
	src       *mytest.Server
	tgt       *pgtest.Server
	start     *harness.Process
}

func run(c config) (err error) {
	ctx := context.Background()
	b := &bench{config: c}
	b.bin, _ = filepath.Abs(c.bin)
	if _, err := os.Stat(b.bin); err != nil {
		return fmt.Errorf("no cutover binary: %w (go build -o bin/cutover ./cmd/cutover, or make build)", err)
	}
	source, err := harness.SysbenchSource(ctx, "bench-source", sourceDB, c.tables, c.scale)
	if err != nil {
		return err
	}
	source.Pool.Close()
	b.src = source.Server
	for _, q := range []string{fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", appUser, appPassword),
		fmt.Sprintf("GRANT SELECT, INSERT, UPDATE, DELETE ON %s.* TO '%s'@'%%'", sourceDB, appUser)} {
		if err := b.src.Exec(ctx, "", q); err != nil {
			return err
		}
	}
	if b.tgt, err = pgtest.Start(ctx, pgtest.Options{Name: "bench-target", Settings: harness.PostgresSettings}); err != nil {
		return err
	}
	// The application's role on the target, as provisioning makes it: a rollback blocks
	// it there (only root and the migration's own role, postgres, are exempt).
	for _, q := range []string{"CREATE DATABASE " + targetDB, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", appUser, appPassword)} {
		if err := b.tgt.Exec(ctx, "postgres", q); err != nil {
			return err
		}
	}
	var pgVersion string
	if out, err := b.tgt.Psql(ctx, "postgres", "-At", "-c", "SHOW server_version"); err == nil {
		pgVersion = strings.TrimSpace(string(out))
	}
	fmt.Printf("source: %d tables of %d rows, %.0f MB (data and indexes), MariaDB %s; target PostgreSQL %s; %d CPUs shared by both servers, sysbench and cutover\n",
		c.tables, c.scale, source.Size/1e6, source.Version, pgVersion, runtime.NumCPU())

	if b.dir, err = os.MkdirTemp("", "cutover-bench-mysqlpgswitch-"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: the plan, the runbooks and cutover start's log are kept in %s\n", b.dir)
			return
		}
		os.RemoveAll(b.dir)
	}()
	b.plan = filepath.Join(b.dir, "cutover.yaml")
	plan := fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\nfull_load: {parallel: 2}\napi: {listen: \"\"}\ncdc: {heartbeat: 1s}\n"+
		"cutover: {exempt_roles: [%s], max_downtime: %s}\n", b.src.URL(sourceDB), b.tgt.URL(targetDB), mytest.Superuser, c.maxDowntime)
	if err := os.WriteFile(b.plan, []byte(plan), 0o600); err != nil {
		return err
	}
	fmt.Println("cutover start: full load, then change data capture ...")
	began := time.Now()
	if b.start, err = harness.StartCutover(b.bin, b.plan, filepath.Join(b.dir, "cutover-start.log"), harness.CDCFromOtherEngine); err != nil {
		return err
	}
	defer func() {
		if serr := b.start.Stop(); err == nil {
			err = serr
		}
	}()
	if err := b.start.WaitCDC(c.timeout); err != nil {
		return err
	}
	fmt.Printf("full load done, change data capture from the source after %v\n", time.Since(began).Round(time.Millisecond))
	if err := b.tgt.Exec(ctx, targetDB, fmt.Sprintf("GRANT USAGE ON SCHEMA %[1]s TO %[2]s; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %[1]s TO %[2]s",
		sourceDB, appUser)); err != nil {
		return err
	}

	var w stat.Windows
	for i := range c.runs {
		// Validated while the source is quiet (between engines a validation needs it
		// to pause): the switch's window then compares only the rows changed since.
		start := time.Now()
		if out, err := b.cutover("validate"); err != nil {
			return fmt.Errorf("run %d: validate before the writes: %w\n%s", i+1, err, out)
		}
		fmt.Printf("run %d: cutover validate with the source quiet: every table equal in %v\n", i+1, time.Since(start).Round(time.Millisecond))
		rb, err := b.switchUnderLoad(ctx)
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		if err := b.sameTables(ctx); err != nil {
			return fmt.Errorf("run %d: after the switch %w", i+1, err)
		}
		if err := b.appOnTarget(ctx); err != nil {
			return fmt.Errorf("run %d: after the switch %w", i+1, err)
		}
		d, inside := w.Add(rb)
		fmt.Printf("run %d: write downtime %v (%s); every table the same on both sides\n", i+1, d.Round(time.Millisecond), inside)
		if err := b.rollback(); err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
	}

	med := stat.Median(w.Downtimes)
	verdict := "met"
	if med > goal {
		verdict = "NOT met"
	}
	fmt.Printf("\nswitch MariaDB -> PostgreSQL under sysbench oltp_read_write --threads=%d (%d tables of %d rows), %d runs:\n", c.threads, c.tables, c.scale, c.runs)
	fmt.Printf("  write downtime, block to unlock: median %v (runs: %v)\n", med.Round(time.Millisecond), stat.Rounded(w.Downtimes))
	fmt.Printf("  goal: at most %v: %s, the median is %.2fx the goal\n", goal, verdict, med.Seconds()/goal.Seconds())
	fmt.Printf("  inside the window, median per step: %s\n", w.Steps())
	return nil
}

// switchUnderLoad runs sysbench as the application on the source for -write, then
// cutover switch while it still writes; the switch's block ends its sessions. It
// returns the switch's runbook, once reverse replication runs in cutover start.
func (b *bench) switchUnderLoad(ctx context.Context) (stat.Runbook, error) {
	var rb stat.Runbook
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// sysbench's own limit is past the switch's longest (the block ends it before).
	limit := int((b.write + b.maxDowntime + 10*time.Minute) / time.Second)
	load, err := harness.SysbenchAs(lctx, b.src, sourceDB, appUser, appPassword, b.tables, b.scale,
		"--threads="+strconv.Itoa(b.threads), "--time="+strconv.Itoa(limit), "--report-interval=0", "run")
	if err != nil {
		return rb, err
	}
	var loadOut bytes.Buffer
	load.Stdout, load.Stderr = &loadOut, &loadOut
	if err := load.Start(); err != nil {
		return rb, fmt.Errorf("sysbench: %w", err)
	}
	loadDone := make(chan error, 1)
	go func() { loadDone <- load.Wait() }()
	// sysbench writes for -write: the switch is measured under load.
	select {
	case err := <-loadDone:
		return rb, fmt.Errorf("sysbench stopped before the switch (%v):\n%s", err, loadOut.String())
	case <-b.start.Done:
		return rb, b.start.Exited()
	case <-time.After(b.write):
	}
	reverse := b.start.Lines(reverseLine)
	out, err := b.cutover("switch", "--yes", "--json", "--runbook-dir", b.dir)
	// The block ended sysbench's sessions and locked its account: it stops by itself;
	// after a switch that failed before the block, it is stopped here.
	select {
	case <-loadDone:
	case <-time.After(10 * time.Second):
		cancel()
		<-loadDone
		if err == nil {
			return rb, fmt.Errorf("sysbench still wrote on the source 10s after the switch blocked its account:\n%s", loadOut.String())
		}
	}
	if err != nil {
		return rb, fmt.Errorf("cutover switch: %v\n%s\n%s", err, out, b.start.Tail())
	}
	if err := json.Unmarshal(out, &rb); err != nil || rb.Outcome != "done" {
		return rb, fmt.Errorf("cutover switch --json: %v, outcome %q %s\n%s", err, rb.Outcome, rb.Reason, out)
	}
	if !strings.Contains(loadOut.String(), "FATAL") {
		// sysbench says FATAL when the block ends its session; without it, it may not
		// have been writing when the switch came.
		fmt.Printf("(sysbench did not report its session ended by the block:\n%s)\n", loadOut.String())
	}
	return rb, b.start.WaitLines(reverseLine, reverse+1, b.timeout)
}

// rollback runs cutover rollback and waits until cutover start replicates forward
// again.
func (b *bench) rollback() error {
	forward := b.start.Lines(forwardLine)
	if out, err := b.cutover("rollback", "--runbook-dir", b.dir); err != nil {
		return fmt.Errorf("cutover rollback: %v\n%s\n%s", err, out, b.start.Tail())
	}
	return b.start.WaitLines(forwardLine, forward+1, b.timeout)
}

// cutover runs cutover with args on the plan; a switch's steps go to stderr as they
// run, its runbook (--json) to the output returned.
func (b *bench) cutover(args ...string) ([]byte, error) {
	c := exec.Command(b.bin, append(args, "-c", b.plan)...)
	if args[0] != "switch" {
		return c.CombinedOutput()
	}
	c.Stderr = os.Stderr
	return c.Output()
}

// figures are a table's: its row count, the sum of k, and the sum of the first 32
// bits of each row's MD5 (of id, k, c and pad), as text.
type figures struct{ rows, sumK, sumHash string }

// The figures' queries on each engine: the same text for a row on both
// (concat_ws of the integers' decimal forms and the strings without their padding),
// the sums exact (DECIMAL, numeric).
const (
	mariadbFigures  = "SELECT count(*), coalesce(sum(k), 0), coalesce(sum(CAST(conv(substr(md5(concat_ws(',', id, k, rtrim(c), rtrim(pad))), 1, 8), 16, 10) AS UNSIGNED)), 0) FROM %s"
	postgresFigures = "SELECT count(*)::text, coalesce(sum(k), 0)::text, coalesce(sum(('x' || substr(md5(concat_ws(',', id, k, rtrim(c), rtrim(pad))), 1, 8))::bit(32)::bigint), 0)::text FROM %s"
)

// sameTables compares every sysbench table on both servers, each on its own: the
// source is blocked, and nothing writes on the target, so both are final.
func (b *bench) sameTables(ctx context.Context) error {
	my, err := b.src.Open(sourceDB)
	if err != nil {
		return err
	}
	defer my.Close()
	pg, err := b.tgt.Connect(ctx, targetDB)
	if err != nil {
		return err
	}
	defer pg.Close(ctx)
	var diffs []string
	for i := 1; i <= b.tables; i++ {
		t := "sbtest" + strconv.Itoa(i)
		var src, tgt figures
		if err := my.QueryRowContext(ctx, fmt.Sprintf(mariadbFigures, t)).Scan(&src.rows, &src.sumK, &src.sumHash); err != nil {
			return fmt.Errorf("%s on the source: %w", t, err)
		}
		if err := pg.QueryRow(ctx, fmt.Sprintf(postgresFigures, pgx.Identifier{sourceDB, t}.Sanitize())).Scan(&tgt.rows, &tgt.sumK, &tgt.sumHash); err != nil {
			return fmt.Errorf("%s.%s on the target: %w", sourceDB, t, err)
		}
		if src != tgt {
			diffs = append(diffs, fmt.Sprintf("%s: %s rows, sum(k) %s, sum of row hashes %s on the source; %s rows, sum(k) %s, sum of row hashes %s on the target",
				t, src.rows, src.sumK, src.sumHash, tgt.rows, tgt.sumK, tgt.sumHash))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("the tables differ:\n  %s", strings.Join(diffs, "\n  "))
	}
	return nil
}

// appOnTarget checks that the application's role logs in to the target and reads
// its tables: after a rollback blocked it there, the switch's unlock gives it back.
func (b *bench) appOnTarget(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", appUser, appPassword, b.tgt.Port, targetDB))
	if err != nil {
		return fmt.Errorf("the application's role on the target cannot log in: %w", err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+sourceDB+".sbtest1 WHERE id = 1").Scan(&n); err != nil {
		return fmt.Errorf("the application's role on the target: %w", err)
	}
	return nil
}
