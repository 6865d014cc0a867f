package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/pgtest"
)

// The change applier's error paths (issue 21, item 3): each failure is recorded in
// cutover.apply_exceptions and handled by cdc.on_error (stop | log | suspend_table).
// A target missing a column is TestCDCOnErrorWhenAStatementCannotBePrepared's (shapes_test.go);
// an update of a row the target lacks is TestCDCApplyExceptions's (replicate_test.go).

// applyExceptionRows lists apply_exceptions, one line a row, in the order recorded:
// table operation key policy [statement] values: error.
func applyExceptionRows(t *testing.T, tgt *pgtest.DB) string {
	t.Helper()
	return pgtest.QueryVal[string](t, tgt, `SELECT coalesce(string_agg(format('%s %s %s %s [%s] %s: %s', table_name, operation,
		    coalesce("values"->'old'->>'id', "values"->'new'->>'id', '-'), policy, statement, "values", error), E'\n' ORDER BY id), '')
		FROM cutover.apply_exceptions`)
}

// rowsOf renders a table's rows (id=v), ordered by id.
func rowsOf(t *testing.T, db *pgtest.DB, table string) string {
	t.Helper()
	return pgtest.QueryVal[string](t, db, "SELECT coalesce(string_agg(id || '=' || v, ',' ORDER BY id), '') FROM "+table)
}

// tableState is a table's state and error in table_stats.
func tableState(t *testing.T, tgt *pgtest.DB, table string) string {
	t.Helper()
	return pgtest.QueryVal[string](t, tgt, "SELECT state || coalesce(': ' || nullif(error, ''), '') FROM cutover.table_stats WHERE table_name = $1", table)
}

// counters are a table's CDC counters in table_stats: inserts/updates/deletes/truncates.
func counters(t *testing.T, tgt *pgtest.DB, table string) string {
	t.Helper()
	return pgtest.QueryVal[string](t, tgt, "SELECT inserts || '/' || updates || '/' || deletes || '/' || truncates FROM cutover.table_stats WHERE table_name = $1", table)
}

// A DELETE whose row the target lacks (item 1): recorded as a delete exception with
// its key, and handled by each policy. stop applies nothing of the transaction and
// stops; log applies the rest of it and what follows; suspend_table applies nothing
// more to the table and the rest to the others.
func TestApplyMissingDeleteUnderEachPolicy(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{"stop", "log", "suspend_table"} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			src, tgt := pair(t)
			src.Exec(t, `CREATE TABLE a (id int PRIMARY KEY, v text); CREATE TABLE b (id int PRIMARY KEY, v text);
				INSERT INTO a VALUES (1, 'one'), (2, 'two'); INSERT INTO b VALUES (1, 'one');`)
			extra := "cdc: {on_error: " + policy + "}\n"
			fullLoad(t, src, tgt, extra)
			tgt.Exec(t, `DELETE FROM a WHERE id = 1`) // the target drifted
			r := startCDC(t, src, tgt, extra)
			// One transaction: the delete that fails between changes that apply.
			src.Exec(t, `BEGIN; UPDATE b SET v = 'first'; DELETE FROM a WHERE id = 1; UPDATE a SET v = 'after' WHERE id = 2; COMMIT;
				INSERT INTO a VALUES (3, 'later'); INSERT INTO b VALUES (2, 'later');`)
			wantEx := `a delete 1 ` + policy + ` [DELETE FROM ONLY "public"."a" WHERE "id" = $1::integer] {"old": {"id": "1"}}: the row is not on the target`
			if policy == "stop" {
				err := r.stopped(t)
				var ae *cdc.ApplyError
				if !errors.As(err, &ae) || !strings.Contains(err.Error(), `delete on "public"."a" (id=1)`) || !strings.Contains(err.Error(), "the row is not on the target") ||
					!strings.Contains(err.Error(), "apply_exceptions") {
					t.Fatalf("err = %v", err)
				}
				if a, b := rowsOf(t, tgt, "a"), rowsOf(t, tgt, "b"); a != "2=two" || b != "1=one" {
					t.Fatalf("after the stop: a %s, b %s: something of the failed transaction or later was applied", a, b)
				}
				if ex := applyExceptionRows(t, tgt); ex != wantEx {
					t.Fatalf("exceptions:\n%s\nwant\n%s", ex, wantEx)
				}
				if e := pgtest.QueryVal[string](t, tgt, "SELECT stop_error FROM cutover.state"); !strings.Contains(e, "the row is not on the target") {
					t.Errorf("state.stop_error = %q", e)
				}
				// Run again unfixed: it stops at the same change, recorded once more.
				r = startCDC(t, src, tgt, extra)
				if err := r.stopped(t); !errors.As(err, &ae) {
					t.Fatalf("rerun, unfixed: %v", err)
				}
				if n := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM cutover.apply_exceptions WHERE operation = 'delete'"); n != 2 {
					t.Fatalf("%d delete exceptions after two runs, want 2", n)
				}
				// Fixed by hand (the row put back for the delete to delete), the rerun applies everything.
				tgt.Exec(t, `INSERT INTO a VALUES (1, 'one')`)
				r = startCDC(t, src, tgt, extra)
				caughtUp(t, src, tgt, r)
				sameTables(t, src, tgt)
				return
			}
			caughtUp(t, src, tgt, r)
			if ex := applyExceptionRows(t, tgt); ex != wantEx {
				t.Fatalf("exceptions:\n%s\nwant\n%s\n%s", ex, wantEx, r.out.String())
			}
			want := map[string]string{"log": "2=after,3=later", "suspend_table": "2=two"}[policy]
			if a, b := rowsOf(t, tgt, "a"), rowsOf(t, tgt, "b"); a != want || b != "1=first,2=later" {
				t.Fatalf("a %s (want %s), b %s (want 1=first,2=later)", a, want, b)
			}
			wantState := "loaded"
			if policy == "suspend_table" {
				wantState = control.TableSuspended + ": the row is not on the target"
			}
			if st := tableState(t, tgt, "a"); st != wantState {
				t.Fatalf("table a: %q, want %q", st, wantState)
			}
			if st := tableState(t, tgt, "b"); st != "loaded" {
				t.Fatalf("table b: %q", st)
			}
			// The counters are the source's changes: the failed delete is one of them,
			// and a suspended table's later changes are not.
			wantCounts := map[string]string{"log": "1/1/1/0", "suspend_table": "0/0/1/0"}[policy]
			if c := counters(t, tgt, "a"); c != wantCounts {
				t.Errorf("a counters %s, want %s", c, wantCounts)
			}
			st, ok, err := ReadStatus(context.Background(), tgt.Conn(t), src.Conn(t), planFor(t, src.URL(), tgt.URL(), extra))
			if err != nil || !ok || st.ApplyExceptions != 1 {
				t.Fatalf("status: %v %v, %d apply exceptions, want 1", ok, err, st.ApplyExceptions)
			}
		})
	}
}

// A TRUNCATE the target refuses (item 2): a trigger made ENABLE ALWAYS (replicated
// changes run with session_replication_role = replica, which skips ordinary ones),
// or a foreign key from a table only the target has.
func TestApplyRefusedTruncateUnderEachPolicy(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, policy, refuse, fix, errText string }{
		{"stop", "stop", "trigger", "DROP TRIGGER refuse ON a", "no truncate here"},
		{"log", "log", "trigger", "", "no truncate here"},
		{"suspend_table", "suspend_table", "trigger", "", "no truncate here"},
		{"log_foreign_key", "log", "fk", "", `cannot truncate a table referenced in a foreign key constraint`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			src, tgt := pair(t)
			src.Exec(t, `CREATE TABLE a (id int PRIMARY KEY, v text); CREATE TABLE b (id int PRIMARY KEY, v text);
				INSERT INTO a VALUES (1, 'one'), (2, 'two'); INSERT INTO b VALUES (1, 'one');`)
			extra := "cdc: {on_error: " + c.policy + "}\n"
			fullLoad(t, src, tgt, extra)
			if c.refuse == "trigger" {
				tgt.Exec(t, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'no truncate here'; END$$;
					CREATE TRIGGER refuse BEFORE TRUNCATE ON a FOR EACH STATEMENT EXECUTE FUNCTION refuse();
					ALTER TABLE a ENABLE ALWAYS TRIGGER refuse;`)
			} else {
				tgt.Exec(t, `CREATE TABLE target_only (id int REFERENCES a)`)
			}
			r := startCDC(t, src, tgt, extra)
			src.Exec(t, `BEGIN; UPDATE b SET v = 'first'; TRUNCATE a; INSERT INTO a VALUES (5, 'refilled'); COMMIT;
				INSERT INTO a VALUES (3, 'later'); INSERT INTO b VALUES (2, 'later');`)
			wantEx := `a truncate - ` + c.policy + ` [TRUNCATE] {}: `
			checkEx := func() {
				t.Helper()
				if ex := applyExceptionRows(t, tgt); !strings.HasPrefix(ex, wantEx) || !strings.Contains(ex, c.errText) || strings.Contains(ex, "\n") {
					t.Fatalf("exceptions:\n%s\nwant one: %s...%s\n%s", ex, wantEx, c.errText, r.out.String())
				}
			}
			if c.policy == "stop" {
				err := r.stopped(t)
				var ae *cdc.ApplyError
				if !errors.As(err, &ae) || !strings.Contains(err.Error(), `truncate on "public"."a"`) || !strings.Contains(err.Error(), c.errText) {
					t.Fatalf("err = %v", err)
				}
				checkEx()
				if a, b := rowsOf(t, tgt, "a"), rowsOf(t, tgt, "b"); a != "1=one,2=two" || b != "1=one" {
					t.Fatalf("after the stop: a %s, b %s", a, b)
				}
				tgt.Exec(t, c.fix)
				r = startCDC(t, src, tgt, extra)
				caughtUp(t, src, tgt, r)
				sameTables(t, src, tgt)
				return
			}
			caughtUp(t, src, tgt, r)
			checkEx()
			// log: the truncate is skipped, the rest of its transaction applied (5 goes
			// in beside the rows the truncate should have removed).
			want := map[string]string{"log": "1=one,2=two,3=later,5=refilled", "suspend_table": "1=one,2=two"}[c.policy]
			if a, b := rowsOf(t, tgt, "a"), rowsOf(t, tgt, "b"); a != want || b != "1=first,2=later" {
				t.Fatalf("a %s (want %s), b %s", a, want, b)
			}
			wantState := "loaded"
			if c.policy == "suspend_table" {
				wantState = control.TableSuspended + ": ERROR: no truncate here (SQLSTATE P0001)"
			}
			if st := tableState(t, tgt, "a"); st != wantState {
				t.Fatalf("table a: %q, want %q", st, wantState)
			}
		})
	}
}

// The target connection lost while the applier applies change by change (item 3):
// the applier reconnects and applies the transaction again from the last commit,
// nothing lost and nothing twice: the rows of a table without a key, its counters,
// and one exception row.
//
// The batch of the transaction fails on its first change (a delete of a row the
// target lacks), before it reaches table l; change by change, the applier then waits
// for l, which the test holds locked on the target, and its backend is terminated
// there. (Under stop the task ends at the failing change, before l.) It found that a
// FATAL error was taken for the change's failure (suspend_table suspended l in memory
// and lost its row) and that a suspension made in the rolled-back group stayed in
// memory (bad's exception and state were lost with the group, its change skipped).
func TestApplyLostTargetWhileCareful(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{"log", "suspend_table"} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			src, tgt := pair(t)
			src.Exec(t, `CREATE TABLE k (n int, v text); ALTER TABLE k REPLICA IDENTITY FULL;
				CREATE TABLE bad (id int, v text); ALTER TABLE bad REPLICA IDENTITY FULL; INSERT INTO bad VALUES (0, 'gone');
				CREATE TABLE l (id int PRIMARY KEY, v text);`)
			extra := "cdc: {on_error: " + policy + "}\n"
			fullLoad(t, src, tgt, extra)
			tgt.Exec(t, `DELETE FROM bad`)
			ctx := context.Background()
			lock := tgt.Conn(t)
			if _, err := lock.Exec(ctx, "BEGIN; LOCK TABLE l IN ACCESS EXCLUSIVE MODE"); err != nil {
				t.Fatal(err)
			}
			r := startCDC(t, src, tgt, extra)
			// More than a batch (1000 statements) before l: the batch is sent, and fails,
			// before l is reached.
			src.Exec(t, `BEGIN; DELETE FROM bad; INSERT INTO k SELECT g, 'v' FROM generate_series(1, 1500) g; INSERT INTO l VALUES (1, 'one'); COMMIT`)
			const waiter = `FROM pg_stat_activity s JOIN pg_locks k ON k.pid = s.pid
				WHERE s.application_name = 'cutover' AND NOT k.granted AND k.relation = 'public.l'::regclass`
			r.waitTarget(t, tgt, "the applier waiting for l", "SELECT EXISTS (SELECT "+waiter+")")
			if out := r.out.String(); !strings.Contains(out, "change by change") {
				t.Fatalf("the applier waits for l, but not change by change:\n%s", out)
			}
			if !pgtest.QueryVal[bool](t, tgt, "SELECT bool_and(pg_terminate_backend(s.pid)) "+waiter) {
				t.Fatal("the applier's backend was not terminated")
			}
			if _, err := lock.Exec(ctx, "ROLLBACK"); err != nil {
				t.Fatal(err)
			}
			src.Exec(t, `UPDATE k SET v = 'u' WHERE n <= 10; DELETE FROM k WHERE n > 1490; INSERT INTO l VALUES (2, 'two')`)
			caughtUp(t, src, tgt, r)
			// Logged as the connection's fault, with its cause, not taken for the change's.
			if out := r.out.String(); !strings.Contains(out, "terminating connection due to administrator command (SQLSTATE 57P01); retrying in") {
				t.Errorf("the lost connection was not logged:\n%s", out)
			}
			sameTables(t, src, tgt)
			if n := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM k"); n != 1490 {
				t.Errorf("k holds %d rows, want 1490", n)
			}
			if c := counters(t, tgt, "k"); c != "1500/10/10/0" {
				t.Errorf("k counters %s, want 1500/10/10/0", c)
			}
			if c := counters(t, tgt, "l"); c != "2/0/0/0" {
				t.Errorf("l counters %s, want 2/0/0/0", c)
			}
			if ex := applyExceptionRows(t, tgt); !strings.HasPrefix(ex, "bad delete 0 "+policy+" ") || strings.Contains(ex, "\n") {
				t.Errorf("exceptions (want one, of bad):\n%s\n%s", ex, r.out.String())
			}
			wantState := map[string]string{"log": "loaded", "suspend_table": control.TableSuspended + ": the row is not on the target"}[policy]
			if st := tableState(t, tgt, "bad"); st != wantState {
				t.Errorf("table bad: %q, want %q", st, wantState)
			}
			for _, tbl := range []string{"k", "l"} {
				if st := tableState(t, tgt, tbl); st != "loaded" {
					t.Errorf("table %s: %q", tbl, st)
				}
			}
		})
	}
}

// applierPID returns the pid of the applier's backend on the target, once idle: the
// one that waits for table l (id int PRIMARY KEY, v text) while the test holds it
// locked and the source inserts id into it.
func applierPID(t *testing.T, src, tgt *pgtest.DB, r *cdcRun, id int) int32 {
	t.Helper()
	ctx := context.Background()
	lock := tgt.Conn(t)
	if _, err := lock.Exec(ctx, "BEGIN; LOCK TABLE l IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	src.Exec(t, "INSERT INTO l VALUES ($1, 'locked')", id)
	const waiter = `FROM pg_stat_activity s JOIN pg_locks k ON k.pid = s.pid
		WHERE s.application_name = 'cutover' AND NOT k.granted AND k.relation = 'public.l'::regclass`
	r.waitTarget(t, tgt, "the applier waiting for l", "SELECT EXISTS (SELECT "+waiter+")")
	pid := pgtest.QueryVal[int32](t, tgt, "SELECT s.pid "+waiter)
	if _, err := lock.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, src, tgt, r)
	return pid
}

// The applier's retry limit (item 4). A failed transaction is applied change by change
// once (retryCarefully, then the policy decides: no loop to limit); pendingRetry only
// spaces the copies of tables to be copied again. What is limited is the retry of a
// connection fault: RetryFor, after which the task stops with the state saved, and
// the next run resumes, nothing lost or applied twice. The fault here: the applier's
// target backend terminated while it was idle.
//
// Not parallel: it sets RetryFor, which every CDC run reads; parallel tests start only
// once it is done.
func TestApplyGivesUpAfterRetryFor(t *testing.T) {
	saved := RetryFor
	RetryFor = 0 // the first fault is past the limit
	t.Cleanup(func() { RetryFor = saved })
	src, tgt := pair(t)
	src.Exec(t, `CREATE TABLE k (n int, v text); ALTER TABLE k REPLICA IDENTITY FULL; CREATE TABLE l (id int PRIMARY KEY, v text);`)
	const extra = "cdc: {on_error: log}\n"
	fullLoad(t, src, tgt, extra)
	r := startCDC(t, src, tgt, extra)
	src.Exec(t, `INSERT INTO k SELECT g, 'v' FROM generate_series(1, 1500) g`)
	pid := applierPID(t, src, tgt, r, 1)
	if !pgtest.QueryVal[bool](t, tgt, "SELECT pg_terminate_backend($1)", pid) {
		t.Fatal("the applier's backend was not terminated")
	}
	src.Exec(t, `UPDATE k SET v = 'u' WHERE n <= 10; DELETE FROM k WHERE n > 1490; INSERT INTO l VALUES (2, 'two')`)
	err := r.stopped(t)
	if err == nil || !strings.Contains(err.Error(), "terminating connection due to administrator command") || !strings.Contains(err.Error(), cdc.GiveUpFix) {
		t.Fatalf("err = %v, want the fault and %q\n%s", err, cdc.GiveUpFix, r.out.String())
	}
	if out := r.out.String(); !strings.Contains(out, "giving up after 0s of retries") {
		t.Fatalf("the give-up was not logged:\n%s", out)
	}
	if e := pgtest.QueryVal[string](t, tgt, "SELECT stop_error FROM cutover.state"); !strings.Contains(e, cdc.GiveUpFix) {
		t.Errorf("state.stop_error = %q", e)
	}
	// The state is the last commit: the first transaction, not the second.
	if n, c := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM k"), counters(t, tgt, "k"); n != 1500 || c != "1500/0/0/0" {
		t.Fatalf("after the give-up k holds %d rows, counters %s; want 1500, 1500/0/0/0", n, c)
	}
	RetryFor = saved
	r = startCDC(t, src, tgt, extra)
	caughtUp(t, src, tgt, r)
	sameTables(t, src, tgt)
	if c := counters(t, tgt, "k"); c != "1500/10/10/0" {
		t.Errorf("k counters %s, want 1500/10/10/0", c)
	}
	if ex := applyExceptionRows(t, tgt); ex != "" {
		t.Errorf("exceptions: %s", ex)
	}
}

// A fault that heals starts the retry limit anew: a second fault, long after the
// first one healed, is retried too. RetryFor is 500ms here, and the first retry waits
// 1s: the second fault always comes later than RetryFor after the first, which gave up
// at once before the backoff was started anew by the transactions applied between.
//
// Not parallel: it sets RetryFor.
func TestApplyRetriesASecondFault(t *testing.T) {
	saved := RetryFor
	RetryFor = 500 * time.Millisecond
	t.Cleanup(func() { RetryFor = saved })
	src, tgt := pair(t)
	src.Exec(t, `CREATE TABLE l (id int PRIMARY KEY, v text);`)
	fullLoad(t, src, tgt, "")
	r := startCDC(t, src, tgt, "")
	for i := 1; i <= 2; i++ {
		pid := applierPID(t, src, tgt, r, i)
		if !pgtest.QueryVal[bool](t, tgt, "SELECT pg_terminate_backend($1)", pid) {
			t.Fatal("the applier's backend was not terminated")
		}
		src.Exec(t, "INSERT INTO l VALUES ($1, 'after')", 100+i)
		caughtUp(t, src, tgt, r) // fails the test if CDC stopped
	}
	sameTables(t, src, tgt)
	if n := strings.Count(r.out.String(), "retrying in"); n != 2 {
		t.Errorf("%d retries logged, want 2\n%s", n, r.out.String())
	}
}

// A table suspended by suspend_table stays suspended when CDC starts again (item 5):
// its later changes are not applied, its exception is not recorded again, the other
// tables go on; a TRUNCATE naming it with other tables empties the others only. It
// found that such a truncate was skipped whole when it named the suspended table
// first, and emptied the suspended table when it named another first.
func TestApplySuspendedTableStaysSuspended(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, `CREATE TABLE a (id int PRIMARY KEY, v text); CREATE TABLE b (id int PRIMARY KEY, v text); CREATE TABLE c (id int PRIMARY KEY, v text);
		INSERT INTO a VALUES (1, 'one'), (2, 'two'); INSERT INTO b VALUES (1, 'one'); INSERT INTO c VALUES (1, 'one');`)
	const extra = "cdc: {on_error: suspend_table}\n"
	fullLoad(t, src, tgt, extra)
	tgt.Exec(t, `DELETE FROM a WHERE id = 1`)
	r := startCDC(t, src, tgt, extra)
	src.Exec(t, `UPDATE a SET v = 'lost' WHERE id = 1; UPDATE b SET v = 'b1'`)
	caughtUp(t, src, tgt, r)
	if st := tableState(t, tgt, "a"); !strings.HasPrefix(st, control.TableSuspended) {
		t.Fatalf("table a: %q", st)
	}
	exBefore := applyExceptionRows(t, tgt)
	if !strings.HasPrefix(exBefore, "a update 1 suspend_table") || strings.Contains(exBefore, "\n") {
		t.Fatalf("exceptions: %s", exBefore)
	}
	r.stop(t)

	r = startCDC(t, src, tgt, extra)
	src.Exec(t, `UPDATE a SET v = 'later' WHERE id = 2; INSERT INTO a VALUES (3, 'three'); UPDATE a SET v = 'again' WHERE id = 1;
		UPDATE b SET v = 'b2'; INSERT INTO c VALUES (2, 'two')`)
	caughtUp(t, src, tgt, r)
	if got := rowsOf(t, tgt, "a") + " | " + rowsOf(t, tgt, "b") + " | " + rowsOf(t, tgt, "c"); got != "2=two | 1=b2 | 1=one,2=two" {
		t.Fatalf("after the restart: %s, want 2=two | 1=b2 | 1=one,2=two", got)
	}
	if ex := applyExceptionRows(t, tgt); ex != exBefore {
		t.Fatalf("exceptions after the restart:\n%s\nwant as before:\n%s", ex, exBefore)
	}
	if c := counters(t, tgt, "a"); c != "0/1/0/0" {
		t.Errorf("a counters %s, want 0/1/0/0 (the suspended table's later changes are not counted)", c)
	}
	// A truncate of the suspended table with others: the others are emptied, the
	// suspended one is left as it is, whichever the statement names first.
	src.Exec(t, `TRUNCATE a, b; INSERT INTO b VALUES (7, 'b7')`)
	caughtUp(t, src, tgt, r)
	src.Exec(t, `TRUNCATE c, a; INSERT INTO c VALUES (8, 'c8')`)
	caughtUp(t, src, tgt, r)
	if got := rowsOf(t, tgt, "a") + " | " + rowsOf(t, tgt, "b") + " | " + rowsOf(t, tgt, "c"); got != "2=two | 7=b7 | 8=c8" {
		t.Errorf("after the truncates: %s, want 2=two | 7=b7 | 8=c8", got)
	}
	if st := tableState(t, tgt, "a"); !strings.HasPrefix(st, control.TableSuspended) {
		t.Errorf("table a: %q", st)
	}
}

// cdc.no_identity: inserts_only at run time (item 6): a keyless table's inserts
// arrive; its updates and deletes are not published by the source at all (its
// publication has insert and truncate only), so the applier never sees them: no
// exception, counters of inserts only.
func TestApplyInsertsOnlyAtRunTime(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, `CREATE TABLE logs (id int, v text); INSERT INTO logs VALUES (1, 'one'), (2, 'two');
		CREATE TABLE keyed (id int PRIMARY KEY, v text); INSERT INTO keyed VALUES (1, 'one');`)
	const extra = "cdc: {no_identity: inserts_only}\n"
	fullLoad(t, src, tgt, extra)
	r := startCDC(t, src, tgt, extra)
	src.Exec(t, `INSERT INTO logs VALUES (3, 'three'); UPDATE logs SET v = 'changed' WHERE id = 1; DELETE FROM logs WHERE id = 2;
		INSERT INTO logs VALUES (4, 'four'); UPDATE keyed SET v = 'changed'`)
	caughtUp(t, src, tgt, r)
	if got := rowsOf(t, tgt, "logs"); got != "1=one,2=two,3=three,4=four" {
		t.Fatalf("logs on the target: %s, want 1=one,2=two,3=three,4=four (inserts only)", got)
	}
	if got := rowsOf(t, tgt, "keyed"); got != "1=changed" {
		t.Fatalf("keyed: %s", got)
	}
	if c := counters(t, tgt, "logs"); c != "2/0/0/0" {
		t.Errorf("logs counters %s, want 2/0/0/0", c)
	}
	if ex := applyExceptionRows(t, tgt); ex != "" {
		t.Errorf("exceptions: %s", ex)
	}
	// What the user is told at run time: the assessment says it before (the
	// replica_identity finding: "only its inserts are replicated"), and CDC names the
	// table as it starts. The applier cannot count the dropped changes: the source's
	// publication does not send them.
	if !strings.Contains(r.out.String(), `tables replicated inserts only (cdc.no_identity: inserts_only, no replica identity): public.logs: their updates and deletes on the source are not applied`) {
		t.Errorf("CDC does not say which tables it replicates inserts only\n%s", r.out.String())
	}
}
