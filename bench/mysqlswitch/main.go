// Command mysqlswitch benchmarks cutover switch's write downtime between two MariaDB
// servers: sysbench's oltp tables on a source (the 8 tables of 250,000 rows by
// default), replicated to a target by cutover start; then -runs times: sysbench
// oltp_read_write --threads=4 writes on the source as the application's account until
// the switch blocks it, cutover switch runs, and the runbook's write downtime (block to
// unlock) and its steps inside the window are read from its JSON; every table is then
// compared (CHECKSUM TABLE on both servers), and a rollback brings the migration back
// for the next run. Run with: make bench-mysql-switch (SCALE, TABLES, RUNS).
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/bench/internal/stat"
	"github.com/cutover-dev/cutover/mytest"
)

const (
	database             = "sbtest"
	appUser, appPassword = "bench_app", "bench-app-pw"
)

var settings = map[string]string{"innodb_buffer_pool_size": "1G", "innodb_log_file_size": "512M", "max_allowed_packet": "256M"}

func main() {
	scale := flag.Int("scale", 250000, "rows per sysbench table")
	tables := flag.Int("tables", 8, "sysbench tables")
	runs := flag.Int("runs", 5, "switches; the median downtime is reported")
	write := flag.Duration("write", 10*time.Second, "how long sysbench writes before each switch")
	bin := flag.String("cutover", "bin/cutover", "cutover binary")
	flag.Parse()
	err := run(*scale, *tables, *runs, *write, *bin)
	mytest.StopAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type bench struct {
	bin, dir, plan string
	src, tgt       *mytest.Server
	scale, tables  int
}

func run(scale, tables, runs int, write time.Duration, bin string) (err error) {
	ctx := context.Background()
	b := &bench{scale: scale, tables: tables}
	b.bin, _ = filepath.Abs(bin)
	if _, err := exec.LookPath("sysbench"); err != nil {
		return fmt.Errorf("sysbench is not on PATH: run scripts/ensure-deps.sh mysqlbench, or apt-get install sysbench (Debian/Ubuntu)")
	}
	if b.dir, err = os.MkdirTemp("", "cutover-bench-mysqlswitch-"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: the plan and cutover start's log are kept in %s\n", b.dir)
			return
		}
		os.RemoveAll(b.dir)
	}()
	if b.src, err = mytest.Start(ctx, mytest.Options{Name: "bench-source", Settings: settings}); err != nil {
		return err
	}
	if b.tgt, err = mytest.Start(ctx, mytest.Options{Name: "bench-target", Settings: settings}); err != nil {
		return err
	}
	for _, s := range []*mytest.Server{b.src, b.tgt} {
		for _, q := range []string{"CREATE DATABASE " + database,
			fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", appUser, appPassword),
			fmt.Sprintf("GRANT SELECT, INSERT, UPDATE, DELETE ON %s.* TO '%s'@'%%'", database, appUser)} {
			if err := s.Exec(ctx, "", q); err != nil {
				return err
			}
		}
	}
	fmt.Printf("sysbench oltp prepare on the source: %d tables of %d rows ...\n", tables, scale)
	if out, err := b.sysbench(mytest.Superuser, mytest.Password, "--threads=2", "prepare").CombinedOutput(); err != nil {
		return fmt.Errorf("sysbench prepare: %v\n%s", err, out)
	}
	b.plan = filepath.Join(b.dir, "cutover.yaml")
	plan := fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\nfull_load: {parallel: 2}\napi: {listen: \"\"}\ncdc: {heartbeat: 1s}\n"+
		"cutover: {exempt_roles: [%s], max_downtime: 30s}\n", b.src.URL(database), b.tgt.URL(database), mytest.Superuser)
	if err := os.WriteFile(b.plan, []byte(plan), 0o600); err != nil {
		return err
	}
	start := exec.Command(b.bin, "start", "-c", b.plan)
	log, err := os.Create(b.plan + ".start.log")
	if err != nil {
		return err
	}
	defer log.Close()
	start.Stdout, start.Stderr = log, log
	if err := start.Start(); err != nil {
		return err
	}
	defer func() { _ = start.Process.Signal(syscall.SIGTERM); _, _ = start.Process.Wait() }()
	fmt.Println("cutover start: full load, then change data capture ...")
	if err := b.ready(ctx); err != nil {
		return err
	}
	var w stat.Windows
	for i := range runs {
		load := b.sysbench(appUser, appPassword, "--threads=4", "--time=600", "--report-interval=0", "run")
		if err := load.Start(); err != nil {
			return err
		}
		time.Sleep(write) // sysbench writes meanwhile: the switch is measured under load
		out, err := b.cutover("switch", "--yes", "--json", "--runbook-dir", b.dir)
		_ = load.Wait() // ended when the switch ended its sessions
		if err != nil {
			return fmt.Errorf("cutover switch: %v\n%s\ncutover start's log: %s", err, out, log.Name())
		}
		var rb stat.Runbook
		if err := json.Unmarshal(out, &rb); err != nil || rb.Outcome != "done" {
			return fmt.Errorf("cutover switch --json: %v, outcome %q\n%s", err, rb.Outcome, out)
		}
		if err := b.sameTables(ctx); err != nil {
			return err
		}
		d, inside := w.Add(rb)
		fmt.Printf("run %d: write downtime %v (%s)\n", i+1, d.Round(time.Millisecond), inside)
		if out, err := b.cutover("rollback", "--runbook-dir", b.dir); err != nil {
			return fmt.Errorf("cutover rollback: %v\n%s", err, out)
		}
		if err := b.ready(ctx); err != nil {
			return err
		}
	}
	fmt.Printf("\nswitch under sysbench oltp_read_write --threads=4 (%d tables of %d rows), %d runs:\n", tables, scale, runs)
	fmt.Printf("  write downtime, block to unlock: median %v (runs: %v)   (goal <= 1s)\n", stat.Median(w.Downtimes).Round(time.Millisecond), stat.Rounded(w.Downtimes))
	fmt.Printf("  inside the window, median per step: %s\n", w.Steps())
	return nil
}

// sysbench is sysbench's oltp_read_write on the source's tables as user, with more
// arguments (the command last).
func (b *bench) sysbench(user, password string, args ...string) *exec.Cmd {
	base := []string{"oltp_read_write", "--db-driver=mysql", "--mysql-host=127.0.0.1", "--mysql-port=" + strconv.Itoa(b.src.Port),
		"--mysql-user=" + user, "--mysql-password=" + password, "--mysql-db=" + database,
		"--tables=" + strconv.Itoa(b.tables), "--table-size=" + strconv.Itoa(b.scale)}
	return exec.Command("sysbench", append(base, args...)...)
}

func (b *bench) cutover(args ...string) ([]byte, error) {
	c := exec.Command(b.bin, append(args, "-c", b.plan)...)
	if args[0] != "switch" {
		return c.CombinedOutput()
	}
	c.Stderr = os.Stderr // the steps, as they run
	return c.Output()
}

// ready waits until cutover start replicates forward and streams: what the switch's
// gates ask.
func (b *bench) ready(ctx context.Context) error {
	pool, err := b.tgt.Open("")
	if err != nil {
		return err
	}
	defer pool.Close()
	deadline := time.Now().Add(30 * time.Minute)
	for {
		var ok sql.NullBool
		err := pool.QueryRowContext(ctx, "SELECT phase IN ('cdc', 'rolled back') AND replication = 'forward' AND IS_USED_LOCK('cutover.stream.cutover') IS NOT NULL FROM cutover.state").Scan(&ok)
		if err == nil && ok.Bool {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cutover start did not replicate within 30 minutes (last: %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sameTables compares every sysbench table on both servers: the source is blocked, so
// its tables are final.
func (b *bench) sameTables(ctx context.Context) error {
	var names []string
	for i := 1; i <= b.tables; i++ {
		names = append(names, database+".sbtest"+strconv.Itoa(i))
	}
	sums := [2]map[string]int64{{}, {}}
	for i, s := range []*mytest.Server{b.src, b.tgt} {
		pool, err := s.Open("")
		if err != nil {
			return err
		}
		rows, err := pool.QueryContext(ctx, "CHECKSUM TABLE "+strings.Join(names, ", "))
		if err != nil {
			pool.Close()
			return err
		}
		for rows.Next() {
			var n string
			var sum sql.NullInt64
			if err := rows.Scan(&n, &sum); err != nil {
				rows.Close()
				pool.Close()
				return err
			}
			sums[i][n] = sum.Int64
		}
		rows.Close()
		pool.Close()
	}
	for _, n := range names {
		if sums[0][n] != sums[1][n] {
			return fmt.Errorf("after the switch %s differs: CHECKSUM TABLE %d on the source, %d on the target", n, sums[0][n], sums[1][n])
		}
	}
	return nil
}
