package main

// The benchmark's small steps: sysbench, markers, waits and the final comparison.

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/bench/internal/harness"
)

// sysbenchRun runs the load the issue names on the source for d.
func (b *bench) sysbenchRun(d time.Duration) (harness.SysbenchResult, error) {
	return harness.SysbenchRun(context.Background(), b.src, sourceDB, b.tables, b.scale, 4, d)
}

// writeMarker inserts the next marker row on the source and returns the source's
// GTID state after its commit.
func (b *bench) writeMarker(ctx context.Context) (gtidState, error) {
	b.marker++
	if _, err := b.srcPool.ExecContext(ctx, "INSERT INTO bench_marker VALUES (?, now(6))", b.marker); err != nil {
		return nil, fmt.Errorf("marker %d: %w", b.marker, err)
	}
	return readGTID(ctx, b.srcPool, "SELECT @@gtid_binlog_pos")
}

// catchUp writes a marker on the source and waits until f has applied it.
func (b *bench) catchUp(ctx context.Context, f follower) (time.Duration, error) {
	start := time.Now()
	want, err := b.writeMarker(ctx)
	if err != nil {
		return 0, err
	}
	if err := b.waitCovers(ctx, f, want); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// waitCovers polls f's applied position until it covers want; a cutover must stay up
// meanwhile, a replica's threads must not stop on an error.
func (b *bench) waitCovers(ctx context.Context, f follower, want gtidState) error {
	var p *harness.Process
	var died <-chan struct{}
	if f.proc != nil {
		if p = f.proc(); p != nil {
			died = p.Done
		}
	}
	deadline := time.After(b.timeout)
	for i := 0; ; i++ {
		got, err := f.applied(ctx)
		if err != nil && p == nil {
			return fmt.Errorf("%s's applied position: %w", f.name, err)
		}
		if err == nil && got.covers(want) {
			return nil
		}
		if p == nil && i%50 == 0 {
			if e := b.replicaError(ctx); e != "" {
				return fmt.Errorf("the replica stopped: %s", e)
			}
		}
		select {
		case <-died:
			return p.Exited()
		case <-deadline:
			if p != nil {
				return fmt.Errorf("cutover did not reach %v within %v (at %v)\n%s", want, b.timeout, got, p.Tail())
			}
			return fmt.Errorf("%s did not reach %v within %v (at %v)", f.name, want, b.timeout, got)
		case <-time.After(20 * time.Millisecond): // a benchmark's poll, not a test's wait
		}
	}
}

// slaveStatus is SHOW SLAVE STATUS on the replica, by column.
func (b *bench) slaveStatus(ctx context.Context) (map[string]string, error) {
	rows, err := b.repl.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	if !rows.Next() {
		return out, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	for i, c := range cols {
		out[c] = vals[i].String
	}
	return out, rows.Err()
}

// replicaError is the error a replica's thread stopped on, or "".
func (b *bench) replicaError(ctx context.Context) string {
	s, err := b.slaveStatus(ctx)
	if err != nil {
		return ""
	}
	var e []string
	for _, k := range []string{"Last_IO_Error", "Last_SQL_Error"} {
		if s[k] != "" {
			e = append(e, k+": "+s[k])
		}
	}
	return strings.Join(e, "; ")
}

// stopReplica stops both of the replica's threads.
func (b *bench) stopReplica(ctx context.Context) error {
	return b.rep.Exec(ctx, "", "STOP SLAVE")
}

// waitNoReader waits until no connection reads the source's binary log: both
// consumers have stopped. A dump thread whose reader went away lingers on an idle
// source until its next heartbeat fails to send (the replica's comes every 30 s): one
// still there after a few seconds is killed, as both readers are known to be gone.
func (b *bench) waitNoReader(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	killAfter := time.Now().Add(5 * time.Second)
	for {
		rows, err := b.srcPool.QueryContext(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")
		if err != nil {
			return err
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d connections still read the binary log a minute after both consumers stopped", len(ids))
		}
		if time.Now().After(killAfter) {
			for _, id := range ids {
				_, _ = b.srcPool.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id)) // gone already: no matter
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// binlogBytes is the size of the source's binary logs.
func (b *bench) binlogBytes(ctx context.Context) (int64, error) {
	rows, err := b.srcPool.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var total int64
	for rows.Next() {
		var name string
		var size int64
		dest := []any{&name, &size}
		for len(dest) < len(cols) {
			dest = append(dest, new(sql.RawBytes))
		}
		if err := rows.Scan(dest...); err != nil {
			return 0, err
		}
		total += size
	}
	return total, rows.Err()
}

// sameData checks a caught-up copy against the (idle) source, so a wrong copy cannot
// produce a good time: each table's row count and CHECKSUM TABLE.
func (b *bench) sameData(ctx context.Context, f follower) error {
	pool, err := f.target.Open(f.db)
	if err != nil {
		return err
	}
	defer pool.Close()
	tables := []string{"bench_marker"}
	for i := range b.tables {
		tables = append(tables, fmt.Sprintf("sbtest%d", i+1))
	}
	for _, t := range tables {
		for _, q := range []string{"SELECT count(*) FROM " + t, "CHECKSUM TABLE " + t} {
			var want, got sql.NullInt64
			var name string
			read := func(p *sql.DB, v *sql.NullInt64) error {
				if strings.HasPrefix(q, "CHECKSUM") {
					return p.QueryRowContext(ctx, q).Scan(&name, v)
				}
				return p.QueryRowContext(ctx, q).Scan(v)
			}
			if err := read(b.srcPool, &want); err != nil {
				return fmt.Errorf("source: %s: %w", q, err)
			}
			if err := read(pool, &got); err != nil {
				return fmt.Errorf("%s's copy: %s: %w", f.name, q, err)
			}
			if got != want {
				return fmt.Errorf("%s's copy: %s is %d, the source's %d", f.name, q, got.Int64, want.Int64)
			}
		}
	}
	return nil
}

func secs(d time.Duration) int { return max(int(d.Round(time.Second)/time.Second), 1) }
