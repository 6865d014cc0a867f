// Package harness is what the benchmarks share to run their tools: cutover start (or a
// peer) timed with its CPU and peak RSS, or running in the background; on MariaDB
// sources sysbench's oltp tables prepared and its load run, the servers' settings for a
// load, InnoDB settled between tools, and a PostgreSQL copy of the tables checked.
package harness

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/mytest"
	"github.com/cutover-dev/cutover/pgtest"
)

// Run is what one cutover start took.
type Run struct {
	Elapsed time.Duration // wall clock
	CPU     time.Duration // its own user and system time
	RSSMB   float64       // its peak resident set, MB
}

// Cutover times bin start with the plan in planFile (args before -c), into a target
// database the caller created. With BENCH_VERBOSE set, cutover's output is printed,
// headed by label; otherwise only its log (stderr), when it wrote one.
func Cutover(bin, planFile, label string, args ...string) (Run, error) {
	return Timed(exec.Command(bin, append(append([]string{"start"}, args...), "-c", planFile)...), "cutover "+label)
}

// Timed runs c and times it. With BENCH_VERBOSE set, its output is printed, headed
// by label; otherwise only its standard error, when it wrote some. A failure carries
// both.
func Timed(c *exec.Cmd, label string) (Run, error) {
	var stderr strings.Builder
	c.Stderr = &stderr
	start := time.Now()
	out, err := c.Output()
	elapsed := time.Since(start)
	if err != nil {
		return Run{}, fmt.Errorf("%s: %v\n%s%s", label, err, out, stderr.String())
	}
	if os.Getenv("BENCH_VERBOSE") != "" {
		fmt.Printf("%s: started %s, took %v\n%s%s\n", label, start.Format("15:04:05.000"), elapsed.Round(time.Millisecond), out, stderr.String())
	} else if stderr.Len() > 0 {
		fmt.Fprint(os.Stderr, stderr.String())
	}
	return Run{
		Elapsed: elapsed,
		CPU:     c.ProcessState.UserTime() + c.ProcessState.SystemTime(),
		RSSMB:   float64(c.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024,
	}, nil
}

// MariaDBSettings are the MariaDB servers' options over mytest's for a load: room
// for the whole data set in the buffer pool and a redo log that does not force
// flushing in the middle of a load.
var MariaDBSettings = map[string]string{"innodb_buffer_pool_size": "1G", "innodb_log_file_size": "512M", "max_allowed_packet": "256M"}

// PostgresSettings are the PostgreSQL targets' options over pgtest's for a load.
var PostgresSettings = map[string]string{"shared_buffers": "512MB", "max_wal_size": "4GB"}

// Source is a MariaDB source server with sysbench's oltp tables in a database.
type Source struct {
	Server  *mytest.Server
	Pool    *sql.DB // root's, on the database
	Version string  // the server's
	Size    float64 // the database's data and indexes, bytes
}

// SysbenchSource starts a MariaDB server (name, MariaDBSettings) and prepares
// sysbench's oltp tables (tables of scale rows) in db, a new database on it. Its
// servers go with mytest.StopAll; the caller closes Pool.
func SysbenchSource(ctx context.Context, name, db string, tables, scale int) (*Source, error) {
	src, err := mytest.Start(ctx, mytest.Options{Name: name, Settings: MariaDBSettings})
	if err != nil {
		return nil, err
	}
	if err := PrepareSysbench(ctx, src, db, tables, scale); err != nil {
		return nil, err
	}
	pool, err := src.Open(db)
	if err != nil {
		return nil, err
	}
	s := &Source{Server: src, Pool: pool}
	if err := pool.QueryRowContext(ctx, "SELECT VERSION()").Scan(&s.Version); err != nil {
		pool.Close()
		return nil, err
	}
	if err := pool.QueryRowContext(ctx, "SELECT coalesce(sum(data_length + index_length), 0) FROM information_schema.TABLES WHERE table_schema = ?", db).Scan(&s.Size); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// PrepareSysbench makes sysbench's oltp tables (tables of scale rows) in db, a new
// database on the source.
func PrepareSysbench(ctx context.Context, src *mytest.Server, db string, tables, scale int) error {
	if _, err := exec.LookPath("sysbench"); err != nil {
		return fmt.Errorf("sysbench is not on PATH: run scripts/ensure-deps.sh mysqlbench, or apt-get install sysbench (Debian/Ubuntu)")
	}
	if err := src.Exec(ctx, "", "CREATE DATABASE "+db); err != nil {
		return err
	}
	fmt.Printf("sysbench oltp prepare on the source: %d tables of %d rows ...\n", tables, scale)
	start := time.Now()
	if out, err := Sysbench(ctx, src, db, tables, scale, "--threads=2", "prepare"); err != nil {
		return fmt.Errorf("sysbench prepare: %v\n%s", err, out)
	}
	fmt.Printf("prepared in %v\n", time.Since(start).Round(time.Second))
	return nil
}

// Sysbench runs sysbench's oltp_read_write on the sysbench tables in db on src with
// more arguments (the command last), and returns its output.
func Sysbench(ctx context.Context, src *mytest.Server, db string, tables, scale int, args ...string) ([]byte, error) {
	c, err := sysbenchCmd(ctx, src, db, tables, scale, args...)
	if err != nil {
		return nil, err
	}
	return c.CombinedOutput()
}

func sysbenchCmd(ctx context.Context, src *mytest.Server, db string, tables, scale int, args ...string) (*exec.Cmd, error) {
	return SysbenchAs(ctx, src, db, mytest.Superuser, mytest.Password, tables, scale, args...)
}

// SysbenchAs is the command of sysbench's oltp_read_write on the sysbench tables in
// db on src as user (an application's account, say), with more arguments (the
// command last): the caller runs it, and ctx's end kills it.
func SysbenchAs(ctx context.Context, src *mytest.Server, db, user, password string, tables, scale int, args ...string) (*exec.Cmd, error) {
	if _, err := exec.LookPath("sysbench"); err != nil {
		return nil, fmt.Errorf("sysbench is not on PATH: run scripts/ensure-deps.sh mysqlbench, or apt-get install sysbench (Debian/Ubuntu)")
	}
	base := []string{"oltp_read_write", "--db-driver=mysql", "--mysql-host=127.0.0.1", "--mysql-port=" + strconv.Itoa(src.Port),
		"--mysql-user=" + user, "--mysql-password=" + password, "--mysql-db=" + db,
		"--tables=" + strconv.Itoa(tables), "--table-size=" + strconv.Itoa(scale)}
	return exec.CommandContext(ctx, "sysbench", append(base, args...)...), nil
}

// SysbenchResult is what a sysbench run did.
type SysbenchResult struct {
	TPS  float64
	Txns int64
	CPU  time.Duration // sysbench's own
}

func (r SysbenchResult) String() string {
	return fmt.Sprintf("sysbench %d transactions, %.0f tps", r.Txns, r.TPS)
}

var txnsLine = regexp.MustCompile(`transactions:\s+([0-9]+)\s+\(([0-9.]+) per sec`)

// SysbenchRun runs sysbench oltp_read_write with threads for d (whole seconds) on the
// sysbench tables in db on src.
func SysbenchRun(ctx context.Context, src *mytest.Server, db string, tables, scale, threads int, d time.Duration) (SysbenchResult, error) {
	var r SysbenchResult
	secs := max(int(d.Round(time.Second)/time.Second), 1)
	c, err := sysbenchCmd(ctx, src, db, tables, scale, "--threads="+strconv.Itoa(threads), "--time="+strconv.Itoa(secs), "--report-interval=0", "run")
	if err != nil {
		return r, err
	}
	out, err := c.CombinedOutput()
	if err != nil {
		return r, fmt.Errorf("sysbench run: %v\n%s", err, out)
	}
	r.CPU = c.ProcessState.UserTime() + c.ProcessState.SystemTime()
	if m := txnsLine.FindSubmatch(out); m != nil {
		r.Txns, _ = strconv.ParseInt(string(m[1]), 10, 64)
		r.TPS, _ = strconv.ParseFloat(string(m[2]), 64)
	}
	return r, nil
}

// SettleInnoDB makes InnoDB flush every dirty page, and waits (a minute at most)
// until it has: the flushing goal at 0% and, meanwhile, an I/O capacity that does not
// pace it (the default, 200 pages a second, takes a minute over the pages of one
// copy). A tool that follows then starts on a server with no flushing left by the one
// before.
func SettleInnoDB(ctx context.Context, s *mytest.Server) error {
	pool, err := s.Open("")
	if err != nil {
		return err
	}
	defer pool.Close()
	pool.SetMaxOpenConns(1)
	var pct, capacity, capacityMax string
	if err := pool.QueryRowContext(ctx, "SELECT @@innodb_max_dirty_pages_pct, @@innodb_io_capacity, @@innodb_io_capacity_max").Scan(&pct, &capacity, &capacityMax); err != nil {
		return err
	}
	if _, err := pool.ExecContext(ctx, "SET GLOBAL innodb_io_capacity_max = 100000; SET GLOBAL innodb_io_capacity = 50000; SET GLOBAL innodb_max_dirty_pages_pct = 0"); err != nil {
		return err
	}
	defer pool.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("SET GLOBAL innodb_max_dirty_pages_pct = %s; SET GLOBAL innodb_io_capacity = %s; SET GLOBAL innodb_io_capacity_max = %s", //nolint:errcheck
		pct, capacity, capacityMax))
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var name string
		var dirty int64
		if err := pool.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'").Scan(&name, &dirty); err != nil {
			return err
		}
		if dirty < 64 {
			return nil
		}
		time.Sleep(100 * time.Millisecond) // a benchmark's poll, not a test's wait
	}
	fmt.Printf("(server %s still had dirty pages a minute after the copy: going on)\n", s.Name)
	return nil
}

// Exit ends a benchmark that started MariaDB and PostgreSQL servers: it stops them
// all, then exits with status 1 after printing err, if any.
func Exit(err error) {
	mytest.StopAll()
	pgtest.StopAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
