package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/validate"
	"github.com/jackc/pgx/v5"
)

// Validation while writers change the tables. A source transaction whose commit is
// under way as the validator's snapshot is taken reaches the target before the marker
// and not the snapshot: the applier names the tables it changed, the validator takes
// another point for them, and what still differs at such a point is compared again.

const loadSchema = `
	CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL, note text);
	INSERT INTO accounts SELECT i, 0, 'n' || i FROM generate_series(1, 100000) i;
	CREATE TABLE history (aid int, delta int, note text);
	ALTER TABLE history REPLICA IDENTITY FULL;
	INSERT INTO history SELECT i % 50, 1, 'dup' FROM generate_series(1, 1000) i;`

// writeMixed runs writers, each committing transactions of updates, inserts and
// deletes on accounts and of duplicate rows inserted into and deleted from history,
// until stopped. stop returns how many transactions they committed.
func writeMixed(t *testing.T, src *pgtest.DB, writers int) (stop func() int64) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var n atomic.Int64
	for w := range writers {
		conn := src.Conn(t)
		wg.Go(func() {
			for i := w * 1_000_000; ctx.Err() == nil; i++ {
				b := &pgx.Batch{}
				b.Queue("BEGIN")
				b.Queue("UPDATE accounts SET balance = balance + 1, note = md5(random()::text) WHERE id = $1", 1+(i*7919)%100000)
				b.Queue("INSERT INTO history VALUES ($1, 1, 'dup')", i%50)
				switch i % 6 {
				case 0, 3:
					b.Queue("DELETE FROM history WHERE ctid = (SELECT ctid FROM history WHERE aid = $1 LIMIT 1)", (i+25)%50)
				case 1:
					b.Queue("INSERT INTO accounts VALUES ($1, 0, 'new')", 100_000+i)
				case 2:
					b.Queue("DELETE FROM accounts WHERE id = $1", 100_000+i-7)
				}
				b.Queue("COMMIT")
				if err := conn.SendBatch(ctx, b).Close(); err != nil {
					if ctx.Err() == nil {
						t.Errorf("writer: %v", err)
					}
					return
				}
				n.Add(1)
			}
		})
	}
	var once sync.Once
	stop = func() int64 {
		once.Do(func() { cancel(); wg.Wait() })
		return n.Load()
	}
	t.Cleanup(func() { stop() })
	return stop
}

// inFlight commits a change to both tables on a connection of its own between the
// validator's snapshot and its marker, as many times as it is armed: at that point
// the change is on the target and not in the source's snapshot.
type inFlight struct {
	t     *testing.T
	conn  *pgx.Conn
	sql   string
	armed int
}

func (h *inFlight) run() {
	if h.armed == 0 {
		return
	}
	h.armed--
	if _, err := h.conn.Exec(context.Background(), h.sql); err != nil {
		h.t.Errorf("in flight: %v", err)
	}
}

// Deliverable: many validation points while writers change a keyed table and a
// table without a key; not one false mismatch, the points where changes were in flight
// rechecked, and the tables equal by SQL of the test's own once the writers stop.
func TestValidateUnderLoadNoFalseMismatches(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, loadSchema)
	fullLoad(t, src, tgt, "")
	extra := "validation: {track_changes: true}\n"
	p := planFor(t, src.URL(), tgt.URL(), extra)
	r := startCDC(t, src, tgt, extra)
	caughtUp(t, src, tgt, r)
	hook := &inFlight{t: t, conn: src.Conn(t),
		sql: `BEGIN; INSERT INTO history VALUES (7, 1, 'dup'), (7, 1, 'dup'); UPDATE accounts SET balance = balance + 1 WHERE id = 1; COMMIT`}
	stopWriting := writeMixed(t, src, 2)

	points := 0
	rechecked := map[string]int64{}
	inFlightSeen := map[string]int{}
	for run := range 12 {
		// Armed, the first table a run compares (accounts, or history alone) has a
		// change in flight at every point it tries: it is compared at such a point.
		opts := validateOptions{Options: validate.Options{ChunkRows: 10000}, beforeMarker: hook.run}
		first := "accounts"
		switch run % 4 {
		case 0:
			hook.armed = pointTries
		case 1:
			hook.armed, first = pointTries, "history"
			opts.Tables = append(opts.Tables, plan.MustPattern("public.history"))
		case 3:
			// Right after the full pass of accounts before: fewer rows changed since
			// than a tenth of them (then it would be a full pass).
			hook.armed, opts.Incremental = pointTries, true
		}
		armed := hook.armed > 0
		rep, err := validatePass(context.Background(), p, opts)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		points += rep.Points
		if hook.armed != 0 {
			t.Fatalf("run %d: the change in flight was made %d times, not %d", run, pointTries-hook.armed, pointTries)
		}
		for _, tv := range rep.Tables {
			what := fmt.Sprintf("run %d, %s (incremental %v, in flight %v, %d rechecked, %d points)", run, tv.Table, tv.Incremental, tv.InFlight, tv.Rechecked, rep.Points)
			t.Log(what)
			if tv.Mismatches != 0 || (tv.State != control.ValidationValidated && tv.State != control.ValidationNoKey) {
				t.Errorf("%s: %s, %q", what, tv.State, describeDiffs(tv.Differences))
			}
			// At a point without changes in flight, source and target hold the same
			// transactions: nothing differs there.
			if !tv.InFlight && tv.Rechecked != 0 {
				t.Errorf("%s: rows differed at an exact point", what)
			}
			if armed && tv.Table == first && (!tv.InFlight || tv.Rechecked == 0) {
				t.Errorf("%s: the change in flight at each of its points was not seen and rechecked", what)
			}
			if run%4 == 3 && tv.Table == "accounts" && !tv.Incremental {
				t.Errorf("%s: not an incremental pass", what)
			}
			rechecked[tv.Table] += tv.Rechecked
			if tv.InFlight {
				inFlightSeen[tv.Table]++
			}
		}
	}
	n := stopWriting()
	t.Logf("%d points, %d source transactions; in flight at the point compared: %v; rows rechecked: %v", points, n, inFlightSeen, rechecked)
	if points < 30 || n < int64(points) {
		t.Fatalf("%d points, %d source transactions meanwhile: want 30 points or more, with transactions between them", points, n)
	}
	if rechecked["accounts"] == 0 || rechecked["history"] == 0 {
		t.Fatalf("rows rechecked: %v", rechecked)
	}
	caughtUp(t, src, tgt, r)
	// Equal by SQL of the test's own: each row of accounts, and history as a multiset.
	for _, q := range []string{
		`SELECT count(*) || ' ' || md5(string_agg(a::text, ',' ORDER BY id)) FROM accounts a`,
		`SELECT count(*) || ' ' || md5(string_agg(h::text, ',' ORDER BY h::text)) FROM history h`,
	} {
		if s, g := pgtest.QueryVal[string](t, src, q), pgtest.QueryVal[string](t, tgt, q); s != g {
			t.Errorf("%s: source %s, target %s", q, s, g)
		}
	}
}

// The rows of a table without a key that differ at a point are counted again at a
// later one: those in flight settle, the real differences stay, as many times as
// they differ then.
func TestValidateRecountsRowsWithoutKey(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, `CREATE TABLE bag (v text, n int); ALTER TABLE bag REPLICA IDENTITY FULL;
		INSERT INTO bag VALUES ('x', 1), ('x', 1), ('x', 1), ('w', NULL)`)
	fullLoad(t, src, tgt, "")
	p := validatePlan(t, src, tgt)
	r := startCDC(t, src, tgt, "")
	// The target really differs: two of the three x are gone, it has two y of its own.
	tgt.Exec(t, `SET session_replication_role = replica; DELETE FROM bag WHERE ctid IN (SELECT ctid FROM bag WHERE v = 'x' LIMIT 2);
		INSERT INTO bag VALUES ('y', 2), ('y', 2)`)
	caughtUp(t, src, tgt, r)
	// At each point tried, two z and one more x commit between the snapshot and the
	// marker. At the last one, the source's snapshot has two z fewer than the target
	// and five x against four: one x short where two are, once the x in flight lands.
	hook := &inFlight{t: t, conn: src.Conn(t), sql: `INSERT INTO bag VALUES ('z', 3), ('z', 3), ('x', 1)`, armed: pointTries}
	rep := validateHooked(t, p, validateOptions{beforeMarker: hook.run}, "public.bag")
	bag := tableResult(t, rep, "public.bag")
	want := []string{"MISSING_SOURCE (y,2)", "MISSING_SOURCE (y,2)", "MISSING_TARGET (x,1)", "MISSING_TARGET (x,1)"}
	if got := describeDiffs(bag.Differences); !slices.Equal(got, want) || bag.Mismatches != 4 || bag.State != control.ValidationMismatched {
		t.Fatalf("differences %q (%d, %s), want %q", got, bag.Mismatches, bag.State, want)
	}
	if !bag.InFlight || bag.Rechecked != 5 || rep.Points < pointTries+1 {
		t.Fatalf("in flight %v, %d rows rechecked, %d points: want the 5 rows differing at the point counted again at a later one", bag.InFlight, bag.Rechecked, rep.Points)
	}
	// The validator's count of each row, by the test's own SQL.
	if got := pgtest.QueryVal[string](t, src, `SELECT string_agg(v || '=' || c, ',' ORDER BY v) FROM (SELECT v, count(*) c FROM bag GROUP BY v) s`); got != "w=1,x=6,z=6" {
		t.Fatalf("source: %s", got)
	}
	if got := pgtest.QueryVal[string](t, tgt, `SELECT string_agg(v || '=' || c, ',' ORDER BY v) FROM (SELECT v, count(*) c FROM bag GROUP BY v) s`); got != "w=1,x=4,y=2,z=6" {
		t.Fatalf("target: %s", got)
	}
}

// A table with a change in flight at the current point is compared at another: the
// table compared before it keeps the first point, the next one is exact at the
// second, and nothing is rechecked.
func TestValidateTakesAnotherPoint(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, loadSchema)
	fullLoad(t, src, tgt, "")
	p := validatePlan(t, src, tgt)
	r := startCDC(t, src, tgt, "")
	caughtUp(t, src, tgt, r)
	hook := &inFlight{t: t, conn: src.Conn(t), sql: `INSERT INTO history VALUES (1, 1, 'dup')`, armed: 1}
	rep := validateHooked(t, p, validateOptions{beforeMarker: hook.run})
	a, h := tableResult(t, rep, "public.accounts"), tableResult(t, rep, "public.history")
	if !rep.Equal || rep.Points != 2 || a.InFlight || h.InFlight || a.Rechecked+h.Rechecked != 0 {
		t.Fatalf("%d points; accounts %+v; history %+v", rep.Points, a, h)
	}
}

// waitValidatorMarker waits until a validator holds its snapshot of the source with
// its marker written: it waits for the applier to reach the marker.
func waitValidatorMarker(t *testing.T, src *pgtest.DB, done <-chan error) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !pgtest.QueryVal[bool](t, src, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = current_database()
		AND state = 'idle in transaction' AND query LIKE '%pg_logical_emit_message(false, ''cutover.validate''%')`) {
		select {
		case err := <-done:
			t.Fatalf("the validation ended before it waited for its marker: %v", err)
		case <-tick.C:
		}
	}
}

// No cutover start runs; the change data capture validate runs in its place stops on
// an apply error: validate says so at once, once, and does not go on to wait for a
// point per table.
func TestValidateSaysWhyItsStreamStopped(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	schema := `CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a VALUES (1, 'one'), (2, 'two');`
	for i := range 20 {
		schema += fmt.Sprintf("CREATE TABLE t%02d (id int PRIMARY KEY); INSERT INTO t%02d VALUES (1);", i, i)
	}
	src.Exec(t, schema)
	extra := "cdc: {on_error: stop}\n"
	fullLoad(t, src, tgt, extra)
	p := planFor(t, src.URL(), tgt.URL(), extra)
	tgt.Exec(t, `DELETE FROM a WHERE id = 1`) // the target drifted
	src.Exec(t, `UPDATE a SET v = 'lost' WHERE id = 1`)

	start := time.Now()
	rep, err := Validate(context.Background(), p, validate.Options{})
	var se *StreamError
	var ae *cdc.ApplyError
	if !errors.As(err, &se) || !errors.As(err, &ae) {
		t.Fatalf("validate with a stream that stops on an apply error: report %+v, err %v", rep, err)
	}
	msg := err.Error()
	for _, want := range []string{"change data capture, which validate runs as no cutover start does, stopped", "update on \"public\".\"a\" (id=1)",
		"the row is not on the target", "apply_exceptions", "run cutover validate again"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the message does not say %q:\n%s", want, msg)
		}
	}
	// The stream's own error ended it (an ApplyError, not the wait for a marker); no
	// table was given up on one by one.
	if n := pgtest.QueryVal[int64](t, tgt, `SELECT count(*) FROM cutover.table_stats WHERE validation_state <> 'pending'`); n != 0 {
		t.Errorf("%d tables have a validation outcome", n)
	}
	t.Logf("returned in %v:\n%s", time.Since(start), msg)

	// Replication held stopped (a switch or a rollback under way): said at once.
	tgt.Exec(t, `UPDATE cutover.state SET replication = 'stopped'`)
	_, err = Validate(context.Background(), p, validate.Options{})
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "held stopped by a switch or a rollback") {
		t.Fatalf("validate with replication held stopped: %v", err)
	}
}

// A cutover start streaming when the validation began stops on an apply error while
// the validator waits for its marker: the validator says so, with the error the task
// recorded.
func TestValidateSaysWhyTheTaskStopped(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, `CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a VALUES (1, 'one'), (2, 'two');
		CREATE TABLE b (id int PRIMARY KEY)`)
	extra := "cdc: {on_error: stop}\n"
	fullLoad(t, src, tgt, extra)
	p := planFor(t, src.URL(), tgt.URL(), extra)
	r := startCDC(t, src, tgt, extra)
	tgt.Exec(t, `DELETE FROM a WHERE id = 1`) // the target drifted
	caughtUp(t, src, tgt, r)
	// The applier waits on a lock of b until the validator has written its marker, then
	// reaches the update it cannot apply, before the marker.
	ctx := context.Background()
	lock := tgt.Conn(t)
	if _, err := lock.Exec(ctx, "BEGIN; LOCK TABLE b IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	src.Exec(t, `INSERT INTO b VALUES (1); UPDATE a SET v = 'lost' WHERE id = 1`)
	done := make(chan error, 1)
	go func() {
		_, err := Validate(ctx, p, validate.Options{Tables: []plan.Pattern{plan.MustPattern("public.a")}})
		done <- err
	}()
	waitValidatorMarker(t, src, done)
	if _, err := lock.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	var ae *cdc.ApplyError
	if err := <-r.done; !errors.As(err, &ae) {
		t.Fatalf("the task: %v", err)
	}
	r.cancel = nil
	err := <-done
	var se *StreamError
	if !errors.As(err, &se) {
		t.Fatalf("validate: %v", err)
	}
	for _, want := range []string{"cutover start stopped on an error at", "the row is not on the target", "run cutover start again"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the message does not say %q:\n%s", want, err)
		}
	}
}
