package main

// The benchmark's small steps: pgbench, markers, waits and the final comparison.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/cutover-dev/cutover/bench/internal/harness"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/jackc/pgx/v5"
)

func (b *bench) tool(name string, args ...string) *exec.Cmd {
	c := exec.Command(filepath.Join(b.src.BinDir, name), args...)
	c.Env = append(os.Environ(), "PGPASSWORD="+pgtest.Password)
	return c
}

func (b *bench) logPath() string { return filepath.Join(b.dir, "cutover.log") }

// pgbenchResult is what a pgbench run did.
type pgbenchResult struct {
	tps  float64
	txns int64
}

func (r pgbenchResult) String() string {
	return fmt.Sprintf("pgbench %d transactions, %.0f tps", r.txns, r.tps)
}

var (
	tpsLine  = regexp.MustCompile(`tps = ([0-9.]+)`)
	txnsLine = regexp.MustCompile(`number of transactions actually processed: ([0-9]+)`)
)

// pgbench runs the TPC-B-like load the issue names on the source for d.
func (b *bench) pgbench(d time.Duration) (pgbenchResult, error) {
	var r pgbenchResult
	out, err := b.tool("pgbench", "-c", "4", "-j", "2", "-T", strconv.Itoa(secs(d)),
		"-h", "127.0.0.1", "-p", strconv.Itoa(b.src.Port), "-U", "postgres", "bench").CombinedOutput()
	if err != nil {
		return r, fmt.Errorf("pgbench: %v\n%s", err, out)
	}
	if m := tpsLine.FindSubmatch(out); m != nil {
		r.tps, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	if m := txnsLine.FindSubmatch(out); m != nil {
		r.txns, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	return r, nil
}

// writeMarker inserts the next marker row on the source and returns its id and the
// source's WAL position after its commit.
func (b *bench) writeMarker(ctx context.Context) (int, int64, error) {
	b.marker++
	if _, err := b.srcConn.Exec(ctx, "INSERT INTO bench_marker VALUES ($1, clock_timestamp())", b.marker); err != nil {
		return 0, 0, fmt.Errorf("marker %d: %w", b.marker, err)
	}
	var lsn int64
	if err := b.srcConn.QueryRow(ctx, "SELECT (pg_current_wal_lsn() - '0/0')::bigint").Scan(&lsn); err != nil {
		return 0, 0, err
	}
	return b.marker, lsn, nil
}

// catchUp writes a marker on the source and waits until it is on db.
func (b *bench) catchUp(ctx context.Context, db string, p *harness.Process) (time.Duration, error) {
	start := time.Now()
	id, _, err := b.writeMarker(ctx)
	if err != nil {
		return 0, err
	}
	if err := b.waitMarker(ctx, db, id, p); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// waitMarker polls db on the target until marker id is there; p, when not nil, is the
// cutover that must stay up meanwhile.
func (b *bench) waitMarker(ctx context.Context, db string, id int, p *harness.Process) error {
	conn, err := b.tgt.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var died <-chan struct{}
	if p != nil {
		died = p.Done
	}
	deadline := time.After(b.timeout)
	for {
		var there bool
		err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM bench_marker WHERE id = $1)", id).Scan(&there)
		if err != nil {
			return fmt.Errorf("marker %d on %s: %w", id, db, err)
		}
		if there {
			return nil
		}
		select {
		case <-died:
			return p.Exited()
		case <-deadline:
			if p != nil {
				return fmt.Errorf("marker %d not on %s after %v\n%s", id, db, b.timeout, p.Tail())
			}
			return fmt.Errorf("marker %d not on %s after %v", id, db, b.timeout)
		case <-time.After(20 * time.Millisecond): // a benchmark's poll, not a test's wait
		}
	}
}

// waitSynced polls until every table of the subscription is ready.
func (b *bench) waitSynced(ctx context.Context) error {
	conn, err := b.tgt.Connect(ctx, byNative)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(b.timeout)
	for {
		var pending int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate NOT IN ('r', 's')").Scan(&pending); err != nil {
			return err
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the native subscription's initial sync did not finish in %v", b.timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitSlotsInactive waits until no walsender serves a slot on the source: both tools
// have stopped reading.
func (b *bench) waitSlotsInactive(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for {
		var active []string
		rows, err := b.srcConn.Query(ctx, "SELECT slot_name FROM pg_replication_slots WHERE active")
		if err == nil {
			active, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err != nil {
			return err
		}
		if len(active) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("slots %v still active a minute after both tools stopped", active)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// figures are what sameData compares: every table's rows and every balance.
var figures = []struct{ table, expr string }{
	{"pgbench_accounts", "count(*)"}, {"pgbench_accounts", "sum(abalance)"},
	{"pgbench_branches", "count(*)"}, {"pgbench_branches", "sum(bbalance)"},
	{"pgbench_tellers", "count(*)"}, {"pgbench_tellers", "sum(tbalance)"},
	{"pgbench_history", "count(*)"}, {"pgbench_history", "sum(delta)"},
	{"bench_marker", "count(*)"},
}

// sameData checks a caught-up target against the (idle) source, so a wrong copy cannot
// produce a good time.
func (b *bench) sameData(ctx context.Context, db string) error {
	tc, err := b.tgt.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer tc.Close(ctx)
	for _, f := range figures {
		var want, got int64
		q := "SELECT coalesce(" + f.expr + ", 0)::bigint FROM " + f.table
		if err := b.srcConn.QueryRow(ctx, q).Scan(&want); err != nil {
			return fmt.Errorf("source: %s of %s: %w", f.expr, f.table, err)
		}
		if err := tc.QueryRow(ctx, q).Scan(&got); err != nil {
			return fmt.Errorf("%s: %s of %s: %w", db, f.expr, f.table, err)
		}
		if got != want {
			return fmt.Errorf("%s: %s of %s is %d, the source has %d", db, f.expr, f.table, got, want)
		}
	}
	return nil
}

func secs(d time.Duration) int { return max(int(d.Round(time.Second)/time.Second), 1) }
