package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/internal/failpoint"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/jackc/pgx/v5"
)

// Crash and resume per phase: cutover start killed (-9) at each point of the load and
// of the change stream, under a writer. The rerun ends exact: both sides hold the same
// rows, and the counters of table_stats (rows copied plus inserts applied) equal each
// table's rows, with no journal row twice: every transaction was applied once.
func TestCrashAndResumePerPhase(t *testing.T) {
	for _, point := range []string{
		"start:slot",                   // the slot made (publications, capture, slot), its position not recorded
		"start:snapshot",               // the slot and its snapshot taken, nothing on the target
		"start:pre-data",               // the schema made, the state not yet moved on
		"start:copied:public.counters", // each table's rows in (its primary key not built) ...
		"start:copied:public.events",
		"start:copied:public.journal",
		"start:finished:public.counters", // ... each table's primary key built, the table not recorded loaded
		"start:finished:public.events",
		"start:finished:public.journal", // no primary key: copied, not recorded loaded
		"start:post-data",               // indexes and constraints built, owners and grants not given
		"start:grants",                  // owners and grants given, the load not recorded done
		"start:apply:committed",         // a target transaction committed, the source's slot not told
		"start:apply:inside",            // inside a large transaction, part of it sent to the target
	} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			crashAndResume(t, point)
		})
	}
}

func crashAndResume(t *testing.T, point string) {
	src, tgt := pgtest.NewDB(t, pgtest.Source(t)), pgtest.NewDB(t, pgtest.Target(t))
	src.Exec(t, `CREATE TABLE counters (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
		INSERT INTO counters SELECT g, 0 FROM generate_series(1, 50) g;
		CREATE TABLE events (id bigserial PRIMARY KEY, counter int NOT NULL REFERENCES counters, pad text);
		INSERT INTO events (counter, pad) SELECT g % 50 + 1, repeat('e', 100) FROM generate_series(1, 20000) g;
		CREATE INDEX events_counter ON events (counter);
		CREATE TABLE journal (note text NOT NULL);
		ALTER TABLE journal REPLICA IDENTITY FULL;
		INSERT INTO journal SELECT 'seed-' || g FROM generate_series(1, 20000) g;`)
	dir := t.TempDir()
	plan := fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\nfull_load: {parallel: 2}\napi: {listen: \"\"}\n", src.URL(), tgt.URL())
	if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
	stopWriter := make(chan struct{})
	writerDone := writeUntil(t, src, stopWriter, 0, func(b *pgx.Batch, n int64) {
		b.Queue("UPDATE counters SET n = n + 1 WHERE id = $1", n%50+1)
		b.Queue("INSERT INTO events (counter) VALUES ($1)", n%50+1)
		b.Queue("INSERT INTO journal (note) VALUES ($1)", fmt.Sprintf("w-%d", n))
	})

	first := startLiveEnv(t, dir, false, []string{failpoint.Env + "=" + point + ":kill"}, "start")
	if point == "start:apply:inside" {
		first.waitFor(t, "change data capture", func(out string) bool { return strings.Contains(out, "change data capture from slot") })
		src.Exec(t, "INSERT INTO journal SELECT 'large-' || g FROM generate_series(1, 30000) g")
	}
	if code, out := first.wait(t); code != -1 {
		t.Fatalf("cutover start with the failpoint %s: exit %d, want killed (the failpoint never struck?)\n%s", point, code, out)
	}

	again := startLive(t, dir, false, "start")
	n, code, out := catchUpAndStop(t, src, tgt, again, stopWriter, writerDone)
	if code != 0 {
		t.Fatalf("the rerun: exit %d\n%s", code, out)
	}
	sameSums(t, src, tgt, "counters", "events", "journal")
	if got := pgtest.QueryVal[int64](t, tgt, "SELECT sum(n) FROM counters"); got != n {
		t.Errorf("the counters sum to %d on the target; the writer committed %d transactions", got, n)
	}
	if dup := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) - count(DISTINCT note) FROM journal"); dup != 0 {
		t.Errorf("%d journal rows twice on the target", dup)
	}
	for _, tbl := range []string{"events", "journal"} { // tables the writer only inserts into
		var rows, inserts int64
		if err := tgt.Conn(t).QueryRow(context.Background(), "SELECT rows, inserts FROM cutover.table_stats WHERE table_name = $1", tbl).Scan(&rows, &inserts); err != nil {
			t.Fatal(err)
		}
		if count := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM "+tbl); rows+inserts != count {
			t.Errorf("table_stats of %s: %d rows copied + %d inserts applied, but the table holds %d rows", tbl, rows, inserts, count)
		}
	}
	if ex := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM cutover.apply_exceptions"); ex != 0 {
		t.Errorf("%d apply exceptions", ex)
	}
	// Nothing of the killed run is left on the source: one slot, its two publications,
	// its three event triggers.
	if left := pgtest.QueryVal[string](t, src, `SELECT format('%s slots, %s publications, %s event triggers',
		(SELECT count(*) FROM pg_replication_slots WHERE database = current_database()), (SELECT count(*) FROM pg_publication),
		(SELECT count(*) FROM pg_event_trigger))`); left != "1 slots, 2 publications, 3 event triggers" {
		t.Errorf("on the source after the rerun: %s, want the migration's alone (1 slot, 2 publications, 3 event triggers)", left)
	}
}

// cutover finish killed (-9) after each of its steps: the rerun finishes, and nothing
// of the migration is left on either side.
func TestFinishKilledAndRunAgain(t *testing.T) {
	for _, point := range []string{"finish:phase", "finish:reverse", "finish:slot", "finish:publications"} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			src, tgt := pgtest.NewDB(t, pgtest.Source(t)), pgtest.NewDB(t, pgtest.Target(t))
			src.Exec(t, `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' FROM generate_series(1, 100) g`)
			dir := t.TempDir()
			plan := fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\napi: {listen: \"\"}\n", src.URL(), tgt.URL())
			if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(plan), 0o600); err != nil {
				t.Fatal(err)
			}
			task := startLive(t, dir, false, "start")
			task.waitFor(t, "change data capture", func(out string) bool { return strings.Contains(out, "change data capture from slot") })
			if r := run(t, dir, []string{failpoint.Env + "=" + point + ":kill"}, "finish", "--yes"); r.code != -1 {
				t.Fatalf("finish with the failpoint %s: exit %d, want killed\n%s%s", point, r.code, r.stdout, r.stderr)
			}
			if r := run(t, dir, nil, "finish", "--yes"); r.code != 0 {
				t.Fatalf("finish again: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			if code, out := task.wait(t); code != 0 {
				t.Fatalf("the task: exit %d\n%s", code, out)
			}
			for _, db := range []*pgtest.DB{src, tgt} {
				left := pgtest.QueryVal[string](t, db, `SELECT format('%s slots, %s publications, %s control schemas, %s event triggers',
					(SELECT count(*) FROM pg_replication_slots WHERE database = current_database()), (SELECT count(*) FROM pg_publication),
					(SELECT count(*) FROM pg_namespace WHERE nspname = 'cutover'), (SELECT count(*) FROM pg_event_trigger))`)
				if left != "0 slots, 0 publications, 0 control schemas, 0 event triggers" {
					t.Errorf("%s after the finish: %s", db.Name, left)
				}
			}
		})
	}
}
