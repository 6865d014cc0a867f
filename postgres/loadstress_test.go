package postgres

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/load"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/jackc/pgx/v5"
)

// The full load under a writer that updates the same few rows all the time (the
// crash tests' counters): every version of a row a snapshot sees is dead to everyone
// else within a few transactions, so the moment the snapshot is not protected
// (its exporter's xmin not counted, a worker bound to another snapshot or to none),
// pruning or VACUUM removes them and the copy loses rows silently. These tests wait
// for counts of commits, never for time.

// hotWriter runs transactions on the source until stopped and counts them; waitFor
// blocks until a count is reached.
type hotWriter struct {
	mu      sync.Mutex
	n       int64
	err     error
	waiters []hotWaiter
	stop    context.CancelFunc
	done    chan struct{}
}

type hotWaiter struct {
	at int64
	ch chan struct{}
}

// startHotWriter runs step(batch, n) for n = 1, 2, ... as one transaction each, on
// conns connections at once, until the test ends or stop is called.
func startHotWriter(t *testing.T, db *pgtest.DB, conns int, step func(b *pgx.Batch, n int64)) *hotWriter {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &hotWriter{stop: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	var next int64
	var nextMu sync.Mutex
	for range conns {
		conn, err := db.Server.Connect(context.Background(), db.Name)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close(context.Background())
			for ctx.Err() == nil {
				nextMu.Lock()
				next++
				n := next
				nextMu.Unlock()
				b := &pgx.Batch{}
				b.Queue("BEGIN")
				step(b, n)
				b.Queue("COMMIT")
				if err := conn.SendBatch(ctx, b).Close(); err != nil {
					if ctx.Err() == nil {
						w.fail(err)
					}
					return
				}
				w.committed()
			}
		}()
	}
	go func() { wg.Wait(); close(w.done) }()
	t.Cleanup(w.halt)
	return w
}

func (w *hotWriter) committed() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n++
	kept := w.waiters[:0]
	for _, wt := range w.waiters {
		if w.n >= wt.at {
			close(wt.ch)
		} else {
			kept = append(kept, wt)
		}
	}
	w.waiters = kept
}

func (w *hotWriter) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
	for _, wt := range w.waiters {
		close(wt.ch)
	}
	w.waiters = nil
}

func (w *hotWriter) count() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// waitFor waits until n transactions committed.
func (w *hotWriter) waitFor(t *testing.T, n int64) {
	t.Helper()
	w.mu.Lock()
	if w.err != nil || w.n >= n {
		err := w.err
		w.mu.Unlock()
		if err != nil {
			t.Fatalf("the writer: %v", err)
		}
		return
	}
	ch := make(chan struct{})
	w.waiters = append(w.waiters, hotWaiter{n, ch})
	w.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the writer did not reach %d transactions in 2 minutes (at %d)", n, w.count())
	}
	w.mu.Lock()
	err := w.err
	w.mu.Unlock()
	if err != nil {
		t.Fatalf("the writer: %v", err)
	}
}

// halt stops the writer and returns how many transactions it committed.
func (w *hotWriter) halt() {
	w.stop()
	<-w.done
}

// serverLog returns the end of the source server's log (pgtest keeps it next to the
// data directory), for a failure's message.
func serverLog(t *testing.T, db *pgtest.DB) string {
	dir := pgtest.QueryVal[string](t, db, "SELECT current_setting('data_directory')")
	b, err := os.ReadFile(filepath.Join(filepath.Dir(dir), "server.log"))
	if err != nil {
		return fmt.Sprintf("(server log not read: %v)", err)
	}
	if len(b) > 20000 {
		b = b[len(b)-20000:]
	}
	return string(b)
}

// vacuumLoop runs VACUUM on table until stopped; rounds counts the VACUUMs done, and
// waitRound waits until one began and ended after the call.
type vacuumLoop struct {
	mu     sync.Mutex
	rounds int64
	err    error
	cond   *sync.Cond
	stop   context.CancelFunc
	done   chan struct{}
}

func startVacuumLoop(t *testing.T, db *pgtest.DB, table string) *vacuumLoop {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	v := &vacuumLoop{stop: cancel, done: make(chan struct{})}
	v.cond = sync.NewCond(&v.mu)
	conn, err := db.Server.Connect(context.Background(), db.Name)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(v.done)
		defer conn.Close(context.Background())
		for ctx.Err() == nil {
			_, err := conn.Exec(ctx, "VACUUM "+table)
			v.mu.Lock()
			if err != nil && ctx.Err() == nil && v.err == nil {
				v.err = err
			}
			v.rounds++
			v.cond.Broadcast()
			v.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-v.done })
	return v
}

// waitRound waits for a VACUUM that started after the call to end.
func (v *vacuumLoop) waitRound(t *testing.T) {
	t.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	target := v.rounds + 2 // the one under way may have begun before the call
	for v.rounds < target && v.err == nil {
		v.cond.Wait()
	}
	if v.err != nil {
		t.Fatalf("VACUUM: %v", v.err)
	}
}

func stressIterations(t *testing.T, n int) int {
	if testing.Short() {
		return 1
	}
	if s := os.Getenv("CUTOVER_STRESS_ITERATIONS"); s != "" {
		var v int
		if _, err := fmt.Sscan(s, &v); err == nil && v > 0 {
			return v
		}
	}
	return n
}

// The snapshot a slot exports (permanent, as a first run takes it, or temporary, as a
// resumed one does) keeps every row of a hot table for the workers opened ahead, even
// when each row was updated many times and the table vacuumed between the export and
// the import, and even while slots are made under a VACUUM that never stops. Each
// worker sees the 50 rows, and the same sum as the others: one snapshot, taken when
// the slot was made (not a fresh one).
func TestExportedSnapshotKeepsHotRows(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, `CREATE TABLE counters (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
		INSERT INTO counters SELECT g, 0 FROM generate_series(1, 50) g;`)
	p := planFor(t, src.URL(), tgt.URL(), "full_load: {parallel: 2}\n")
	const writers = 3
	w := startHotWriter(t, src, writers, func(b *pgx.Batch, n int64) {
		b.Queue("UPDATE counters SET n = n + 1 WHERE id = $1", n%50+1)
	})
	vac := startVacuumLoop(t, src, "counters")
	w.waitFor(t, 200)
	ctx := context.Background()
	iterations := stressIterations(t, 10)
	for i := range iterations {
		temporary := i%2 == 1
		before := w.count()
		snap, err := CreateSnapshot(ctx, p.Source, fmt.Sprintf("stress_%d_%s", i, randomHex(3)), temporary)
		if err != nil {
			t.Fatal(err)
		}
		// A failure leaves no slot behind (the database could not be dropped).
		t.Cleanup(func() {
			snap.Close(ctx)
			if !temporary {
				_ = DropSlot(ctx, p.Source, snap.Slot)
			}
		})
		// Each connection of the writer may have committed one transaction it has not
		// counted yet.
		after := w.count() + writers
		// Every row updated twice since the export, and a VACUUM run from start to end,
		// before any worker imports the snapshot.
		w.waitFor(t, after+100)
		vac.waitRound(t)
		pool := openWorkers(ctx, p, snap.Name, 2)
		var sums []int64
		for range 2 {
			cw, err := pool.get(ctx, p, snap.Name, nil)
			if err != nil {
				t.Fatalf("iteration %d: a worker: %v", i, err)
			}
			var rows, sum int64
			if err := cw.out.conn.QueryRow(ctx, "SELECT count(*), coalesce(sum(n), 0) FROM counters").Scan(&rows, &sum); err != nil {
				t.Fatalf("iteration %d: %v", i, err)
			}
			cw.Close(ctx)
			if rows != 50 {
				t.Fatalf("iteration %d (temporary slot %v): a worker bound to snapshot %s at %s sees %d rows of counters, want 50\nserver log:\n%s",
					i, temporary, snap.Name, snap.Position, rows, serverLog(t, src))
			}
			sums = append(sums, sum)
		}
		pool.close(ctx)
		if sums[0] != sums[1] {
			t.Fatalf("iteration %d: the workers see sums %v: not one snapshot", i, sums)
		}
		// The snapshot is the slot's: it holds the updates committed before the slot was
		// asked for, and not those committed after it was made and before the import.
		if sums[0] < before || sums[0] > after {
			t.Fatalf("iteration %d: the snapshot holds %d updates; %d were committed before the slot, %d when it was made: not the slot's snapshot",
				i, sums[0], before, after)
		}
		if err := snap.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if !temporary {
			if err := DropSlot(ctx, p.Source, snap.Slot); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("%d snapshots, %d transactions of the writer", iterations, w.count())
}

// cancelAt is a Display that cancels the load's context at a chosen moment: once a
// table is loaded, or at a step whose message starts with a prefix; it keeps the lines.
type cancelAt struct {
	load.Lines
	cancel   context.CancelFunc
	loaded   string // the table whose load cancels, or ""
	step     string // the step that cancels, or ""
	canceled bool
	mu       sync.Mutex
}

func newCancelAt(out *lockedWriter, cancel context.CancelFunc) *cancelAt {
	return &cancelAt{Lines: load.Lines{W: out}, cancel: cancel}
}

func (c *cancelAt) Step(msg string) {
	c.Lines.Step(msg)
	if c.step != "" && strings.HasPrefix(msg, c.step) {
		c.fire()
	}
}

func (c *cancelAt) Loaded(t *load.Table, rows, bytes int64, took time.Duration) {
	c.Lines.Loaded(t, rows, bytes, took)
	if c.loaded != "" && t.String() == c.loaded {
		c.fire()
	}
}

func (c *cancelAt) fire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.canceled {
		c.canceled = true
		c.cancel()
	}
}

// crashSchema is the crash tests' source (cmd/cutover/crash_test.go).
const crashSchema = `CREATE TABLE counters (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
	INSERT INTO counters SELECT g, 0 FROM generate_series(1, 50) g;
	CREATE TABLE events (id bigserial PRIMARY KEY, counter int NOT NULL REFERENCES counters, pad text);
	INSERT INTO events (counter, pad) SELECT g % 50 + 1, repeat('e', 100) FROM generate_series(1, 20000) g;
	CREATE INDEX events_counter ON events (counter);
	CREATE TABLE journal (note text NOT NULL);
	ALTER TABLE journal REPLICA IDENTITY FULL;
	INSERT INTO journal SELECT 'seed-' || g FROM generate_series(1, 20000) g;`

func crashWriterStep(b *pgx.Batch, n int64) {
	b.Queue("UPDATE counters SET n = n + 1 WHERE id = $1", n%50+1)
	b.Queue("INSERT INTO events (counter) VALUES ($1)", n%50+1)
	b.Queue("INSERT INTO journal (note) VALUES ($1)", fmt.Sprintf("w-%d", n))
}

// tableStatRows returns table_stats' state and rows of each table.
func tableStatRows(t *testing.T, tgt *pgtest.DB) map[string]string {
	t.Helper()
	rows, err := tgt.Conn(t).Query(context.Background(), "SELECT table_name, state || ' ' || rows FROM cutover.table_stats")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for rows.Next() {
		var name, v string
		if err := rows.Scan(&name, &v); err != nil {
			t.Fatal(err)
		}
		out[name] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// copiedAsRecorded checks, for each table, that the target holds the rows table_stats
// says were copied (no CDC ran: nothing else wrote them), and that counters has its 50.
func copiedAsRecorded(t *testing.T, src, tgt *pgtest.DB, run string, out string) {
	t.Helper()
	stats := tableStatRows(t, tgt)
	for _, tbl := range []string{"counters", "events", "journal"} {
		n := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM "+tbl)
		if want := fmt.Sprintf("loaded %d", n); stats[tbl] != want {
			t.Errorf("%s: table_stats of %s says %q, the target holds %d rows\n%s", run, tbl, stats[tbl], n, out)
		}
	}
	if n := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM counters"); n != 50 {
		t.Fatalf("%s: counters holds %d rows on the target, want 50\n%s\nsource server log:\n%s", run, n, out, serverLog(t, src))
	}
}

// A first run's full load under the crash tests' writer is one snapshot: the 50
// counters, and the writer's transactions in it counted alike in the three tables
// (each transaction adds 1 to a counter, an event and a journal row).
func TestFullLoadUnderHotWriter(t *testing.T) {
	t.Parallel()
	for i := range stressIterations(t, 2) {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			src, tgt := pair(t)
			src.Exec(t, crashSchema)
			w := startHotWriter(t, src, 1, crashWriterStep)
			w.waitFor(t, 50)
			out := fullLoad(t, src, tgt, "full_load: {parallel: 2}\n")
			copiedAsRecorded(t, src, tgt, "the load", out)
			sum := pgtest.QueryVal[int64](t, tgt, "SELECT sum(n) FROM counters")
			events := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) - 20000 FROM events")
			journal := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM journal WHERE note LIKE 'w-%'")
			if sum != events || sum != journal || sum < 50 {
				t.Fatalf("not one snapshot: the counters sum to %d, %d events and %d journal rows of the writer\n%s", sum, events, journal, out)
			}
			if orphans := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM counters c WHERE c.id = e.counter)"); orphans != 0 {
				t.Fatalf("%d events without their counter", orphans)
			}
		})
	}
}

// The resumed load under the writer: a first run stopped once events is loaded (the
// other tables partly copied or queued) resumes at a new snapshot from a temporary
// slot, empties what was partly copied and copies it again whole; a run stopped after
// the owners and grants (the crash point start:grants) resumes without copying any
// row, and the post-data it built before is not built again.
func TestFullLoadResumedUnderHotWriter(t *testing.T) {
	t.Parallel()
	for i := range stressIterations(t, 2) {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			src, tgt := pair(t)
			src.Exec(t, crashSchema)
			w := startHotWriter(t, src, 1, crashWriterStep)
			w.waitFor(t, 50)
			p := planFor(t, src.URL(), tgt.URL(), "full_load: {parallel: 2}\n")

			run := func(loaded, step string) (string, error) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var buf bytes.Buffer
				out := &lockedWriter{w: &buf}
				disp := newCancelAt(out, cancel)
				disp.loaded, disp.step = loaded, step
				err := FullLoad(ctx, p, engine.StartOptions{Out: out, Display: disp})
				return out.String(), err
			}

			// 1. Stopped in the copy, once events is loaded.
			out1, err := run("public.events", "")
			if err == nil {
				// The copy ended before the cancel was seen: nothing to resume.
				copiedAsRecorded(t, src, tgt, "the load not stopped", out1)
				return
			}
			// 2. Resumed, stopped after the owners and grants.
			out2, err := run("", "owners and grants:")
			if err == nil {
				t.Fatalf("the second run was not stopped after the grants:\n%s", out2)
			}
			if !strings.Contains(out2, "resuming the loading phase") && !strings.Contains(out2, "resuming the postdata phase") {
				t.Fatalf("the second run did not resume:\n%s", out2)
			}
			copiedAsRecorded(t, src, tgt, "after the resumed copy", out1+out2)
			if n := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM pg_constraint WHERE conname = 'events_counter_fkey'"); n != 1 {
				t.Fatalf("the foreign key events_counter_fkey is not on the target after the post-data\n%s", out2)
			}
			// 3. Resumed after the grants: nothing is copied.
			out3, err := run("", "")
			if err != nil {
				t.Fatalf("the third run: %v\n%s", err, out3)
			}
			if !strings.Contains(out3, "resuming the postdata phase") || strings.Contains(out3, "loaded public.") || strings.Contains(out3, "copying ") {
				t.Fatalf("the run after the grants copied rows or did not resume the post-data:\n%s", out3)
			}
			copiedAsRecorded(t, src, tgt, "after the run that completed", out1+out2+out3)
			if orphans := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM counters c WHERE c.id = e.counter)"); orphans != 0 {
				t.Fatalf("%d events without their counter", orphans)
			}
		})
	}
}
