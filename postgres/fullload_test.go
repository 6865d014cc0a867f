package postgres

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/jackc/pgx/v5"
)

// userTables lists plain tables outside system schemas and the control schema.
const userTables = `SELECT format('%I.%I', n.nspname, c.relname)
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'cutover')
	  AND n.nspname NOT LIKE 'pg\_%' ORDER BY 1`

// checksums returns, per table, its row count and an md5 of its rows' text in order:
// computed with SQL of its own, independent of the code under test.
func checksums(t *testing.T, db *pgtest.DB) map[string]string {
	t.Helper()
	ctx := context.Background()
	conn := db.Conn(t)
	rows, err := conn.Query(ctx, userTables)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for _, tbl := range tables {
		var sum string
		q := fmt.Sprintf(`SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, E'\n' ORDER BY x::text)), '') FROM ONLY %s AS x`, tbl)
		if err := conn.QueryRow(ctx, q).Scan(&sum); err != nil {
			t.Fatalf("%s: %v", tbl, err)
		}
		sums[tbl] = sum
	}
	return sums
}

// objects lists the schema objects of a database, one line each, sorted.
func objects(t *testing.T, db *pgtest.DB) []string {
	t.Helper()
	const user = `NOT IN ('pg_catalog', 'information_schema', 'cutover', 'pg_toast')`
	q := `
	SELECT 'index ' || schemaname || '.' || indexname || ': ' || indexdef FROM pg_indexes WHERE schemaname ` + user + `
	UNION ALL SELECT 'INVALID index ' || indexrelid::regclass FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
	    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname ` + user + ` AND NOT (i.indisvalid AND i.indisready)
	UNION ALL SELECT 'constraint ' || conrelid::regclass || '.' || conname || ': ' || pg_get_constraintdef(c.oid) || ' validated=' || convalidated
	    FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname ` + user + `
	UNION ALL SELECT 'trigger ' || tgrelid::regclass || '.' || tgname || ' enabled=' || tgenabled::text FROM pg_trigger t
	    JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT tgisinternal AND n.nspname ` + user + `
	UNION ALL SELECT 'view ' || schemaname || '.' || viewname || ': ' || definition FROM pg_views WHERE schemaname ` + user + `
	UNION ALL SELECT 'matview ' || schemaname || '.' || matviewname || ' populated=' || ispopulated FROM pg_matviews WHERE schemaname ` + user + `
	UNION ALL SELECT 'rule ' || schemaname || '.' || tablename || '.' || rulename FROM pg_rules WHERE schemaname ` + user + `
	UNION ALL SELECT 'sequence ' || schemaname || '.' || sequencename || ' ' || data_type FROM pg_sequences WHERE schemaname ` + user + `
	UNION ALL SELECT 'function ' || p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname ` + user + `
	UNION ALL SELECT 'type ' || t.oid::regtype || ' ' || t.typtype::text FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
	    WHERE n.nspname ` + user + ` AND t.typtype IN ('e', 'd', 'c') AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
	UNION ALL SELECT 'column ' || attrelid::regclass || '.' || attname || ' ' || format_type(atttypid, atttypmod) || ' notnull=' || attnotnull
	    || ' identity=' || attidentity::text || ' generated=' || attgenerated::text || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
	    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
	    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	    WHERE n.nspname ` + user + ` AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
	UNION ALL SELECT 'comment ' || objoid::regclass || ': ' || description FROM pg_description d JOIN pg_class c ON c.oid = d.objoid
	    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE d.classoid = 'pg_class'::regclass AND n.nspname ` + user
	rows, err := db.Conn(t).Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	list, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(list)
	return list
}

func fullLoad(t *testing.T, src, tgt *pgtest.DB, extra string) string {
	t.Helper()
	var out bytes.Buffer
	p := planFor(t, src.URL(), tgt.URL(), extra)
	if err := FullLoad(context.Background(), p, engine.StartOptions{Out: &out}); err != nil {
		t.Fatalf("full load: %v\n%s", err, out.String())
	}
	return out.String()
}

func sameTables(t *testing.T, src, tgt *pgtest.DB) {
	t.Helper()
	a, b := checksums(t, src), checksums(t, tgt)
	if len(a) == 0 {
		t.Fatal("no tables to compare")
	}
	for tbl, sum := range a {
		if b[tbl] != sum {
			t.Errorf("table %s differs: source %s, target %s", tbl, sum, b[tbl])
		}
	}
	for tbl := range b {
		if _, ok := a[tbl]; !ok {
			t.Errorf("table %s is on the target only", tbl)
		}
	}
}

func sameObjects(t *testing.T, src, tgt *pgtest.DB) {
	t.Helper()
	a, b := objects(t, src), objects(t, tgt)
	want := map[string]bool{}
	for _, o := range a {
		want[o] = true
	}
	got := map[string]bool{}
	for _, o := range b {
		got[o] = true
		if strings.HasPrefix(o, "INVALID") {
			t.Errorf("target: %s", o)
		} else if !want[o] {
			t.Errorf("only on the target: %s", o)
		}
	}
	for _, o := range a {
		if !got[o] {
			t.Errorf("missing on the target: %s", o)
		}
	}
}

func TestFullLoadPagila(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	if err := pgtest.LoadPagila(context.Background(), src.Server, src.Name); err != nil {
		t.Fatal(err)
	}
	src.Exec(t, `ALTER TABLE public.country REPLICA IDENTITY DEFAULT;
		ALTER TABLE public.payment_p0000_default ADD PRIMARY KEY (payment_id);
		ALTER TABLE public.payment_p2007_07_max ADD PRIMARY KEY (payment_id);
		REFRESH MATERIALIZED VIEW public.nicer_but_slower_film_list;
		CREATE INDEX payment_customer_idx ON public.payment (customer_id);`)
	t.Cleanup(func() {
		_ = src.Server.Exec(context.Background(), "postgres",
			"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1", src.Name)
	})
	out := fullLoad(t, src, tgt, "")
	sameTables(t, src, tgt)
	sameObjects(t, src, tgt)
	if n := pgtest.QueryVal[int](t, tgt, `SELECT count(*) FROM public.nicer_but_slower_film_list`); n == 0 {
		t.Error("the populated materialized view is empty on the target")
	}

	// The control schema tells the story.
	if phase := pgtest.QueryVal[string](t, tgt, "SELECT phase FROM cutover.state"); phase != control.PhaseLoaded {
		t.Fatalf("phase = %s", phase)
	}
	var slot, position string
	if err := tgt.Conn(t).QueryRow(context.Background(), "SELECT slot, position FROM cutover.state").Scan(&slot, &position); err != nil {
		t.Fatal(err)
	}
	if n := pgtest.QueryVal[int](t, src, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND plugin = 'pgoutput'", slot); n != 1 {
		t.Fatalf("slot %s is not on the source", slot)
	}
	bad := pgtest.QueryVal[int](t, tgt, `SELECT count(*) FROM cutover.table_stats WHERE state <> 'loaded' OR position <> $1 OR finished_at IS NULL`, position)
	rows := pgtest.QueryVal[int64](t, tgt, `SELECT sum(rows) FROM cutover.table_stats`)
	if bad != 0 || rows != 46268 {
		t.Fatalf("table_stats: %d rows not loaded at the slot's position; %d rows in all\n%s", bad, rows, out)
	}

	// Rerunning a finished load changes nothing.
	if out := fullLoad(t, src, tgt, ""); !strings.Contains(out, "complete already") {
		t.Fatalf("rerun: %s", out)
	}

	// A run that stopped during the post-data left part of it: the rerun builds the rest.
	tgt.Exec(t, `UPDATE cutover.state SET phase = 'postdata';
		ALTER TABLE address DROP CONSTRAINT address_city_id_fkey;
		DROP TRIGGER last_updated ON rental;
		DROP INDEX idx_actor_last_name;
		DROP INDEX payment_customer_idx;
		CREATE INDEX payment_customer_idx ON ONLY payment (customer_id);
		CREATE INDEX idx_fk_payment_p2007_01_customer_id ON payment_p2007_01 (customer_id);
		ALTER INDEX payment_customer_idx ATTACH PARTITION idx_fk_payment_p2007_01_customer_id;`)
	if out := fullLoad(t, src, tgt, ""); !strings.Contains(out, "are on the target already") {
		t.Fatalf("post-data rerun: %s", out)
	}
	sameObjects(t, src, tgt)

	// A run that stopped after the pre-data committed, before any table was copied:
	// the rerun takes a new slot and copies every table into the schema it finds.
	tgt.Exec(t, `UPDATE cutover.state SET phase = 'schema'; DELETE FROM cutover.table_stats`)
	tgt.Exec(t, `DO $$ BEGIN EXECUTE (SELECT 'TRUNCATE ' || string_agg(format('%I.%I', schemaname, tablename), ', ')
		FROM pg_tables WHERE schemaname = 'public'); END $$`)
	if out := fullLoad(t, src, tgt, ""); !strings.Contains(out, "the schema (pre-data) is on the target already") {
		t.Fatalf("pre-data rerun: %s", out)
	}
	sameTables(t, src, tgt)
	sameObjects(t, src, tgt)
}

func TestFullLoadAwkwardSchema(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	long := strings.Repeat("x", 63)
	src.Exec(t, fmt.Sprintf(`
		CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
		CREATE DOMAIN positive AS numeric CHECK (VALUE > 0);
		CREATE SCHEMA "Odd ""Schema""";
		CREATE TABLE "Odd ""Schema"""."Order" ("select" int PRIMARY KEY, "Mixed Case" text, "from" text);
		INSERT INTO "Odd ""Schema"""."Order" SELECT g, 'v' || g, 'quote '' and "dq"' FROM generate_series(1, 50) g;
		CREATE TABLE %s (%s int PRIMARY KEY);
		INSERT INTO %s VALUES (1), (2);
		CREATE TABLE kinds (
		    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		    m mood, p positive, tags text[], grid int[][], doc jsonb, raw bytea,
		    n numeric, f float8, r real, ts timestamptz, d date,
		    big text, twice int GENERATED ALWAYS AS (id * 2) STORED);
		INSERT INTO kinds (m, p, tags, grid, doc, raw, n, f, r, ts, d, big) VALUES
		    ('happy', 1.5, '{a,"b c",NULL,"d\"e"}', '{{1,2},{3,4}}', '{"k": [1, "x", null, {"z": 1.0}]}', '\x00ff10', 'NaN', 'Infinity', '-0', 'infinity', '-infinity', repeat('toast me ', 100000)),
		    ('sad', 2, '{}', NULL, 'null', '', '-12345678901234567890.123456789', '-Infinity', 'NaN', '-infinity', 'infinity', ''),
		    (NULL, NULL, NULL, NULL, NULL, NULL, NULL, '-0', '1e-38', '2024-02-29 12:34:56.789+05:30', '0001-01-01 BC', NULL),
		    ('ok', 3, '{x}', '{{5}}', '[]', decode(repeat('ab', 300000), 'hex'), '0.000000000000000000001', 1.7976931348623157e308, 3.4e38, '1970-01-01 00:00:00+00', '2000-01-01', repeat(md5('y'), 50000));
		CREATE TABLE parts (id int, region text, v text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
		CREATE TABLE parts_eu PARTITION OF parts FOR VALUES IN ('eu');
		CREATE TABLE parts_us PARTITION OF parts FOR VALUES IN ('us') PARTITION BY RANGE (id);
		CREATE TABLE parts_us_low PARTITION OF parts_us FOR VALUES FROM (0) TO (100);
		CREATE TABLE parts_us_high PARTITION OF parts_us FOR VALUES FROM (100) TO (MAXVALUE);
		INSERT INTO parts SELECT g, CASE WHEN g %% 2 = 0 THEN 'eu' ELSE 'us' END, 'v' FROM generate_series(1, 300) g;
		CREATE TABLE animal (id int PRIMARY KEY, name text);
		CREATE TABLE dog (bark text) INHERITS (animal);
		ALTER TABLE dog ADD PRIMARY KEY (id);
		INSERT INTO animal VALUES (1, 'generic');
		INSERT INTO dog VALUES (2, 'rex', 'woof');
		CREATE TABLE nokey (a int, b text);
		ALTER TABLE nokey REPLICA IDENTITY FULL;
		INSERT INTO nokey VALUES (1, 'x'), (1, 'x'), (NULL, NULL);
		CREATE INDEX ON kinds USING gin (doc);
		CREATE UNIQUE INDEX ON "Odd ""Schema"""."Order" (lower("Mixed Case"));
		CREATE VIEW happy AS SELECT id FROM kinds WHERE m = 'happy';
		COMMENT ON TABLE kinds IS 'every awkward type';`,
		long, long, long))
	fullLoad(t, src, tgt, "")
	sameTables(t, src, tgt)
	sameObjects(t, src, tgt)
	// Identity values were kept (sequences are synced at the switch), and generated columns still work.
	tgt.Exec(t, "INSERT INTO kinds (id, m) OVERRIDING SYSTEM VALUE VALUES (100, 'ok')")
	if twice := pgtest.QueryVal[int](t, tgt, "SELECT twice FROM kinds WHERE id = 100"); twice != 200 {
		t.Fatalf("generated column = %d", twice)
	}
}

// Writes during the load must not leak into the copy: every table reflects the one snapshot.
func TestFullLoadIsOneSnapshot(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, `CREATE TABLE big (id bigint PRIMARY KEY, pad text);
		INSERT INTO big SELECT g, repeat('p', 200) FROM generate_series(1, 400000) g;
		CREATE TABLE a (id bigint PRIMARY KEY);
		CREATE TABLE b (id bigint PRIMARY KEY);
		CREATE TABLE counter (k int PRIMARY KEY, n bigint);
		INSERT INTO counter VALUES (1, 0);`)

	// One writer, one transaction per step: insert step n into a and b, set counter to n,
	// and delete a row of big. Any consistent snapshot sees exactly steps 1..K everywhere.
	ctx, stop := context.WithCancel(context.Background())
	var committed atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	writerErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		conn, err := src.Server.Connect(context.Background(), src.Name)
		if err != nil {
			writerErr <- err
			return
		}
		defer conn.Close(context.Background())
		for n := int64(1); ctx.Err() == nil; n++ {
			_, err := conn.Exec(context.Background(), fmt.Sprintf(`BEGIN;
				INSERT INTO a VALUES (%[1]d); INSERT INTO b VALUES (%[1]d);
				UPDATE counter SET n = %[1]d WHERE k = 1; DELETE FROM big WHERE id = %[1]d;
				COMMIT;`, n))
			if err != nil {
				writerErr <- err
				return
			}
			committed.Store(n)
		}
	}()
	// Deterministic start: the writer has committed before the snapshot is taken.
	for committed.Load() < 20 {
		select {
		case err := <-writerErr:
			t.Fatal(err)
		case <-time.After(time.Millisecond):
		}
	}
	fullLoad(t, src, tgt, "full_load: {parallel: 4}")
	afterLoad := committed.Load()
	stop()
	wg.Wait()
	select {
	case err := <-writerErr:
		t.Fatal(err)
	default:
	}

	k := pgtest.QueryVal[int64](t, tgt, "SELECT n FROM counter")
	for _, q := range []string{
		"SELECT count(*) FROM a", "SELECT count(*) FROM b", "SELECT max(id) FROM a", "SELECT max(id) FROM b",
		"SELECT 400000 - count(*) FROM big", "SELECT coalesce(min(id) - 1, 0) FROM big",
	} {
		if got := pgtest.QueryVal[int64](t, tgt, q); got != k {
			t.Errorf("%s = %d on the target; the counter says the snapshot holds %d steps", q, got, k)
		}
	}
	if k < 20 || k >= afterLoad {
		t.Fatalf("snapshot at step %d: the writer had committed 20 before the load and %d when it ended", k, afterLoad)
	}
	// big was split across workers: its chunks came from one snapshot too.
	if n := pgtest.QueryVal[int64](t, tgt, "SELECT count(DISTINCT id) FROM big"); n != 400000-k {
		t.Fatalf("big has %d distinct ids, want %d", n, 400000-k)
	}
}

// start refuses to begin when the assessment finds errors, and changes nothing.
func TestFullLoadRefusesWhenNotReady(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
	tgt.Exec(t, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (42)")
	var out bytes.Buffer
	err := FullLoad(context.Background(), planFor(t, src.URL(), tgt.URL(), ""), engine.StartOptions{Out: &out})
	if err != check.ErrNotReady || !strings.Contains(out.String(), "TRUNCATE public.t;") {
		t.Fatalf("err = %v\n%s", err, out.String())
	}
	if n := pgtest.QueryVal[int](t, tgt, "SELECT count(*) FROM pg_namespace WHERE nspname = 'cutover'"); n != 0 {
		t.Fatal("the control schema was created although nothing may start")
	}
	if n := pgtest.QueryVal[int](t, src, "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"); n != 0 {
		t.Fatal("a slot was created although nothing may start")
	}
}

// The target goes away in the middle of the load: the error names what failed, no table is
// reported loaded that is not, and a rerun after the restart completes the copy.
func TestFullLoadTargetGoesAway(t *testing.T) {
	t.Parallel()
	s := pgtest.StartServer(t, pgtest.Options{Name: "dying-target"})
	src, tgt := pgtest.NewDB(t, pgtest.Source(t)), pgtest.NewDB(t, s)
	for i := 1; i <= 3; i++ {
		src.Exec(t, fmt.Sprintf("CREATE TABLE t%d (id int PRIMARY KEY, pad text); INSERT INTO t%d SELECT g, repeat('y', 100) FROM generate_series(1, %d) g", i, i, 500000-i*100000))
	}
	p := planFor(t, src.URL(), tgt.URL(), "full_load: {parallel: 1}\n")
	ctx := context.Background()
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- FullLoad(ctx, p, engine.StartOptions{Out: &lockedWriter{w: &out}}) }()
	// Wait until the first table is loading, then kill the target.
	for {
		conn, err := s.Connect(ctx, tgt.Name)
		if err == nil {
			var loading bool
			err = conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM cutover.table_stats WHERE state = 'loading')").Scan(&loading)
			conn.Close(ctx)
			if err == nil && loading {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("the load ended before the target was killed: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "table public.t1") {
		t.Fatalf("err = %v", err)
	}
	t.Logf("the error a user sees: %v", err)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if n := pgtest.QueryVal[int](t, tgt, "SELECT count(*) FROM cutover.table_stats WHERE state = 'loaded'"); n != 0 {
		t.Fatalf("%d tables reported loaded after the target died during the first one", n)
	}
	if out := fullLoad(t, src, tgt, "full_load: {parallel: 1}\n"); !strings.Contains(out, "resuming") {
		t.Fatalf("rerun: %s", out)
	}
	sameTables(t, src, tgt)
}

// lockedWriter lets the test read output a concurrent load writes.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Objects that need an excluded table are left out, said so by check and start; the
// rest of the schema, views over included tables among it, is created.
func TestFullLoadLeavesOutWhatNeedsAnExcludedTable(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, `
		CREATE TABLE secret (id int PRIMARY KEY, v text);
		INSERT INTO secret VALUES (1, 'hidden');
		CREATE TABLE item (id int PRIMARY KEY, secret_id int REFERENCES secret, name text);
		INSERT INTO item VALUES (1, 1, 'kept');
		CREATE VIEW secret_v AS SELECT * FROM secret;
		CREATE VIEW secret_vv AS SELECT v FROM secret_v;
		COMMENT ON VIEW secret_vv IS 'goes with its view';
		CREATE MATERIALIZED VIEW secret_mv AS SELECT count(*) FROM secret;
		CREATE FUNCTION secret_count() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) FROM secret; END;
		CREATE FUNCTION row_of() RETURNS SETOF secret_v LANGUAGE sql AS 'SELECT * FROM secret_v';
		CREATE VIEW item_v AS SELECT name FROM item;
		CREATE FUNCTION plain() RETURNS int LANGUAGE sql AS 'SELECT 1';`)
	const extra = `tables: {exclude: ["public.secret"]}`
	r := assess(t, planFor(t, src.URL(), tgt.URL(), extra))
	for _, obj := range []string{"view public.secret_v", "view public.secret_vv", "materialized view public.secret_mv",
		"function public.secret_count()", "function public.row_of()", "table constraint item_secret_id_fkey on public.item"} {
		f := mustFind(t, r, "excluded_dependency", obj, "warning")
		if !strings.Contains(f.Problem, "secret") {
			t.Errorf("%s: %s", obj, f.Problem)
		}
	}
	out := fullLoad(t, src, tgt, extra)
	if !strings.Contains(out, "not created on the target: view public.secret_vv (it needs public.secret, which the plan excludes)") {
		t.Errorf("start did not say what it left out:\n%s", out)
	}
	got := objects(t, tgt)
	have := strings.Join(got, "\n")
	for _, want := range []string{"view public.item_v", "function plain()", "index public.item_pkey"} {
		if !strings.Contains(have, want) {
			t.Errorf("missing on the target: %s\n%s", want, have)
		}
	}
	for _, gone := range []string{"secret_v", "secret_mv", "secret_count", "row_of", "item_secret_id_fkey", "public.secret:"} {
		if strings.Contains(have, gone) {
			t.Errorf("created although it needs the excluded table: %s\n%s", gone, have)
		}
	}
	if n := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM item WHERE name = 'kept'"); n != 1 {
		t.Fatalf("item rows = %d", n)
	}
}

// An included table that cannot exist without an excluded one is an error before anything changes.
func TestFullLoadRefusesAnIncludedTableNeedingAnExcludedOne(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, `CREATE TABLE base (id int PRIMARY KEY); CREATE TABLE child (x int) INHERITS (base); ALTER TABLE child ADD PRIMARY KEY (id);`)
	const extra = `tables: {exclude: ["public.base"]}`
	r := assess(t, planFor(t, src.URL(), tgt.URL(), extra))
	mustFind(t, r, "excluded_dependency", "table public.child", "error")
	err := FullLoad(context.Background(), planFor(t, src.URL(), tgt.URL(), extra), engine.StartOptions{Out: io.Discard})
	if err != check.ErrNotReady {
		t.Fatalf("err = %v", err)
	}
	if n := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM pg_class WHERE relname = 'child'"); n != 0 {
		t.Fatal("child was created")
	}
}

// Objects get their source owners and grants where the roles exist on the target; a
// role the target lacks is reported by check and by start, and its objects stay with
// the migration role.
func TestFullLoadOwnersAndGrants(t *testing.T) {
	t.Parallel()
	owner, _ := pgtest.NewRole(t, pgtest.Source(t), "")
	reader, _ := pgtest.NewRole(t, pgtest.Source(t), "")
	tgtServer := pgtest.Target(t)
	if err := tgtServer.Exec(context.Background(), "postgres", "CREATE ROLE "+owner); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tgtServer.Exec(context.Background(), "postgres", "DROP ROLE IF EXISTS "+owner) })
	src, tgt := pair(t)
	src.Exec(t, fmt.Sprintf(`
		CREATE TABLE owned (id int PRIMARY KEY); ALTER TABLE owned OWNER TO %[1]s;
		GRANT SELECT ON owned TO %[2]s;
		CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'; ALTER FUNCTION f() OWNER TO %[1]s;
		CREATE TABLE plain (id int PRIMARY KEY); GRANT SELECT, UPDATE ON plain TO %[1]s;
		ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO %[1]s;`, owner, reader))
	t.Cleanup(func() { tgt.Exec(t, "DROP OWNED BY "+owner) })

	r := assess(t, planFor(t, src.URL(), tgt.URL(), ""))
	f := mustFind(t, r, "roles", "roles "+reader, "warning")
	if strings.Contains(f.Object, owner) {
		t.Errorf("%s exists on the target: %s", owner, f.Object)
	}
	out := fullLoad(t, src, tgt, "")
	if !strings.Contains(out, fmt.Sprintf(`role "%s" does not exist (1 statements)`, reader)) {
		t.Errorf("start did not report the missing role:\n%s", out)
	}
	for q, want := range map[string]string{
		"SELECT tableowner FROM pg_tables WHERE tablename = 'owned'":                              owner,
		"SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'f'":                       owner,
		fmt.Sprintf("SELECT has_table_privilege('%s', 'plain', 'UPDATE')::text", owner):           "true",
		"SELECT coalesce(array_to_string(relacl, ','), '') FROM pg_class WHERE relname = 'owned'": "",
		"SELECT count(*)::text FROM pg_default_acl":                                               "1",
	} {
		got := pgtest.QueryVal[string](t, tgt, q)
		if want == "" {
			if strings.Contains(got, reader) {
				t.Errorf("%s: %s", q, got)
			}
		} else if got != want {
			t.Errorf("%s = %q, want %q", q, got, want)
		}
	}
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
