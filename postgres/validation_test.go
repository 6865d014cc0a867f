package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/validate"
)

const validationSchema = `
	CREATE TABLE items (
	    id int PRIMARY KEY, name text, tags text[], doc jsonb, big text, f float8, r real,
	    at timestamptz, d date, iv interval, b bytea, n numeric, m money);
	INSERT INTO items
	    SELECT i, 'name ' || i, ARRAY['a' || i, 'b', 'c'], jsonb_build_object('k', i, 'list', jsonb_build_array(1, 2, i)),
	           CASE WHEN i % 1000 = 0 THEN repeat(md5(i::text), 4000) END,
	           i / 3.0, i / 7.0, '2024-03-01 12:00:00+00'::timestamptz + i * interval '1 minute', '2024-01-01'::date + i % 365,
	           i * interval '1 second', decode(md5(i::text), 'hex'), i * 1.5, i
	    FROM generate_series(1, 20000) i;
	UPDATE items SET name = '' WHERE id = 9;
	CREATE TABLE pairs (a int, b text, v text, PRIMARY KEY (a, b));
	INSERT INTO pairs SELECT i / 10, 'k' || (i % 10), 'v' || i FROM generate_series(1, 3000) i;
	CREATE TABLE words (w text PRIMARY KEY, n int);
	INSERT INTO words SELECT chr(65 + i % 26) || chr(97 + (i / 26) % 26) || i, i FROM generate_series(1, 2000) i;
	INSERT INTO words SELECT lower(chr(65 + i % 26)) || i, i FROM generate_series(1, 2000) i;
	CREATE TABLE bag (a int, b text);
	INSERT INTO bag VALUES (1, 'x'), (1, 'x'), (2, NULL), (NULL, '');
	ALTER TABLE bag REPLICA IDENTITY FULL;`

func validatePlan(t *testing.T, src, tgt *pgtest.DB) *plan.Plan {
	return planFor(t, src.URL(), tgt.URL(), "")
}

func runValidate(t *testing.T, p *plan.Plan, tables ...string) *validate.Report {
	t.Helper()
	return validateWith(t, p, validate.Options{ChunkRows: 1000}, tables...)
}

// validateWith runs a validation with opts on the tables matching the patterns.
func validateWith(t *testing.T, p *plan.Plan, opts validate.Options, tables ...string) *validate.Report {
	t.Helper()
	return validateHooked(t, p, validateOptions{Options: opts}, tables...)
}

func validateHooked(t *testing.T, p *plan.Plan, opts validateOptions, tables ...string) *validate.Report {
	t.Helper()
	for _, s := range tables {
		opts.Tables = append(opts.Tables, plan.MustPattern(s))
	}
	rep, err := validatePass(context.Background(), p, opts)
	if err != nil {
		t.Fatalf("validate: %v", err)
	}
	return rep
}

func tableResult(t *testing.T, rep *validate.Report, name string) validate.TableReport {
	t.Helper()
	for _, tv := range rep.Tables {
		if tv.Schema+"."+tv.Table == name {
			return tv
		}
	}
	t.Fatalf("no result for %s in %+v", name, rep.Tables)
	return validate.TableReport{}
}

// describeDiffs prints differences as "KIND key [columns]" lines, sorted.
func describeDiffs(ds []validate.Difference) []string {
	var out []string
	for _, d := range ds {
		s := string(d.Kind) + " " + strings.Join(d.Key, ",")
		if len(d.Columns) > 0 {
			s += " [" + strings.Join(d.Columns, ",") + "]"
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func TestValidateFindsEveryKindOfDifference(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, validationSchema)
	fullLoad(t, src, tgt, "")
	// The target's defaults differ in every setting that changes a value's text.
	tgt.Exec(t, fmt.Sprintf(`ALTER DATABASE %q SET TimeZone = 'Asia/Tokyo'; ALTER DATABASE %q SET DateStyle = 'SQL, DMY';
		ALTER DATABASE %q SET extra_float_digits = 0; ALTER DATABASE %q SET bytea_output = 'escape';
		ALTER DATABASE %q SET IntervalStyle = 'sql_standard'`, tgt.Name, tgt.Name, tgt.Name, tgt.Name, tgt.Name))
	// words' key sorts one way on the source (C) and another on the target (ICU): the
	// chunks hold different rows on each side, and that is no difference.
	tgt.Exec(t, `ALTER TABLE words ALTER COLUMN w TYPE text COLLATE "en-x-icu"`)
	// The change data capture each validation runs here does not track changes.
	p := planFor(t, src.URL(), tgt.URL(), "validation: {track_changes: false}\n")

	rep := runValidate(t, p)
	if !rep.Equal {
		t.Fatalf("a fresh copy differs: %+v", rep.Tables)
	}
	items := tableResult(t, rep, "public.items")
	if items.State != control.ValidationValidated || items.Chunks < 10 || items.SourceRows != 20000 || items.RowsRead != 0 {
		t.Fatalf("items: %+v", items)
	}
	if bag := tableResult(t, rep, "public.bag"); bag.State != control.ValidationNoKey || bag.SourceRows != 4 {
		t.Fatalf("bag: %+v", bag)
	}
	if words := tableResult(t, rep, "public.words"); words.State != control.ValidationValidated || words.Chunks < 2 {
		t.Fatalf("words: %+v", words)
	}
	if n := pgtest.QueryVal[int64](t, tgt, `SELECT count(*) FROM cutover.table_stats WHERE validation_state NOT IN ('validated', 'no key') OR validated_at IS NULL`); n != 0 {
		t.Fatalf("%d tables not recorded as validated", n)
	}

	tgt.Exec(t, `
		UPDATE items SET name = 'changed' WHERE id = 5;
		DELETE FROM items WHERE id = 7;
		INSERT INTO items (id, name) VALUES (50000, 'extra');
		UPDATE items SET name = NULL WHERE id = 9;
		UPDATE items SET tags[2] = 'B' WHERE id = 11;
		UPDATE items SET doc = jsonb_set(doc, '{list,1}', '20') WHERE id = 13;
		UPDATE items SET big = overlay(big placing 'X' from 50000 for 1) WHERE id = 3000;
		UPDATE items SET f = f + 1e-12 WHERE id = 15;
		UPDATE pairs SET v = 'w' WHERE a = 100 AND b = 'k3';
		DELETE FROM pairs WHERE a = 200 AND b = 'k7';
		DELETE FROM words WHERE w = 'b1';
		DELETE FROM bag WHERE ctid = (SELECT min(ctid) FROM bag WHERE a = 1);
		INSERT INTO bag VALUES (3, 'y');`)
	rep = runValidate(t, p)
	if rep.Equal {
		t.Fatal("the corrupted target validated equal")
	}
	want := map[string][]string{
		"public.items": {"MISSING_SOURCE 50000", "MISSING_TARGET 7", "RECORD_DIFF 11 [tags]", "RECORD_DIFF 13 [doc]",
			"RECORD_DIFF 15 [f]", "RECORD_DIFF 3000 [big]", "RECORD_DIFF 5 [name]", "RECORD_DIFF 9 [name]"},
		"public.pairs": {"MISSING_TARGET 200,k7", "RECORD_DIFF 100,k3 [v]"},
		"public.words": {"MISSING_TARGET b1"},
		"public.bag":   {"MISSING_SOURCE (3,y)", "MISSING_TARGET (1,x)"},
	}
	for name, w := range want {
		tv := tableResult(t, rep, name)
		if got := describeDiffs(tv.Differences); !slices.Equal(got, w) {
			t.Errorf("%s: differences\n got %q\nwant %q", name, got, w)
		}
		if tv.State != control.ValidationMismatched || tv.Mismatches != int64(len(w)) {
			t.Errorf("%s: state %s, %d mismatches", name, tv.State, tv.Mismatches)
		}
	}
	items = tableResult(t, rep, "public.items")
	// Only the chunks holding a difference were read row by row.
	if items.Differing > 7 || items.RowsRead > 2*7*2000 {
		t.Errorf("items: %d of %d chunks differed, %d rows read one by one", items.Differing, items.Chunks, items.RowsRead)
	}
	// The NULL against the empty string is told apart, with both values.
	for _, d := range items.Differences {
		if strings.Join(d.Key, ",") == "9" && (d.Source[0] == nil || *d.Source[0] != "" || d.Target[0] != nil) {
			t.Errorf("id 9: source %v, target %v", d.Source[0], d.Target[0])
		}
	}
	// The control schema has them, read with independent SQL.
	got := pgtest.QueryVal[string](t, tgt, `SELECT string_agg(table_name || ' ' || kind || ' ' || (key->>0) || coalesce(' ' || array_to_string(nullif(columns, '{}'), ','), ''), '; ' ORDER BY 1)
		FROM cutover.validation_failures WHERE table_name = 'items'`)
	if !strings.Contains(got, "items RECORD_DIFF 3000 big") || !strings.Contains(got, "items MISSING_TARGET 7") || strings.Count(got, ";") != 7 {
		t.Errorf("validation_failures: %s", got)
	}
	if n := pgtest.QueryVal[int64](t, tgt, `SELECT validation_mismatches FROM cutover.table_stats WHERE table_name = 'items' AND validation_state = 'mismatched'`); n != 8 {
		t.Errorf("table_stats: %d mismatches on items", n)
	}

	// One table, after a repair by hand: equal again, and its failures are gone.
	rep = runValidate(t, p, "public.pairs")
	if len(rep.Tables) != 1 || rep.Tables[0].Table != "pairs" {
		t.Fatalf("--table public.pairs validated %+v", rep.Tables)
	}
	tgt.Exec(t, `UPDATE pairs SET v = 'v' || (a * 10 + substr(b, 2)::int) WHERE a = 100 AND b = 'k3'; INSERT INTO pairs VALUES (200, 'k7', 'v2007')`)
	if rep = runValidate(t, p, "public.pairs"); !rep.Equal {
		t.Fatalf("pairs after the repair: %+v", rep.Tables)
	}
	if n := pgtest.QueryVal[int64](t, tgt, `SELECT count(*) FROM cutover.validation_failures WHERE table_name = 'pairs'`); n != 0 {
		t.Errorf("%d failures left for pairs after it validated equal", n)
	}
	// Changes are not tracked (validation.track_changes: false): --incremental is a full pass.
	rep, err := Validate(context.Background(), p, validate.Options{ChunkRows: 1000, Incremental: true, Tables: []plan.Pattern{plan.MustPattern("public.pairs")}})
	if err != nil || rep.Tables[0].Incremental || rep.Tables[0].Chunks == 0 {
		t.Fatalf("--incremental without tracking: %v %+v", err, rep)
	}
}

// writeLoad changes rows of items on the source until stopped: updates across the
// table (never rows below 100), inserts and deletes of its own rows. stop returns how
// many transactions it committed; it also runs when the test ends.
func writeLoad(t *testing.T, src *pgtest.DB) (stop func() int) {
	conn := src.Conn(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	n := 0
	var once sync.Once
	stop = func() int {
		once.Do(func() { cancel(); <-done })
		return n
	}
	t.Cleanup(func() { stop() })
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			var err error
			switch i % 4 {
			case 0, 1:
				_, err = conn.Exec(ctx, `UPDATE items SET name = md5(random()::text), n = n + 1, tags[2] = 'x' || $1::int WHERE id = 100 + (random() * 19800)::int`, i)
			case 2:
				_, err = conn.Exec(ctx, `INSERT INTO items (id, name, doc) VALUES (100000 + $1, 'new', '{"new": true}')`, i)
			case 3:
				_, err = conn.Exec(ctx, `DELETE FROM items WHERE id = 100000 + $1 - 5`, i)
			}
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("writer: %v", err)
				}
				return
			}
			n++
		}
	}()
	return stop
}

func TestValidateUnderWriteLoad(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, validationSchema)
	fullLoad(t, src, tgt, "")
	p := validatePlan(t, src, tgt)
	r := startCDC(t, src, tgt, "")
	stopWriting := writeLoad(t, src)
	// A real difference the writers never touch: it must be found while they write.
	caughtUp(t, src, tgt, r)
	tgt.Exec(t, `UPDATE items SET name = 'corrupt' WHERE id = 42`)
	before := pgtest.QueryVal[int64](t, src, "SELECT sum(n) FROM items")
	// Besides the writers, a change committed between the validator's snapshot and its
	// marker at every point a pass tries: the pass compares at a point where the row
	// it changed differs, and must recheck that row, not report it.
	hook := &inFlight{t: t, conn: src.Conn(t), sql: `UPDATE items SET n = n + 1 WHERE id = 50`}
	for pass := 1; pass <= 3; pass++ {
		hook.armed = pointTries
		rep := validateHooked(t, p, validateOptions{Options: validate.Options{ChunkRows: 1000}, beforeMarker: hook.run}, "public.items")
		items := tableResult(t, rep, "public.items")
		if got := describeDiffs(items.Differences); !slices.Equal(got, []string{"RECORD_DIFF 42 [name]"}) || !rep.Live {
			t.Fatalf("pass %d under load: live %v, differences %q (%d of %d chunks differed)", pass, rep.Live, got, items.Differing, items.Chunks)
		}
		// Row 42 and the row in flight differed at the point, and were compared again.
		if !items.InFlight || items.Rechecked < 2 || hook.armed != 0 {
			t.Fatalf("pass %d under load: in flight %v, %d rows rechecked, the change in flight made %d times: want the row in flight rechecked",
				pass, items.InFlight, items.Rechecked, pointTries-hook.armed)
		}
	}
	n := stopWriting()
	if after := pgtest.QueryVal[int64](t, src, "SELECT sum(n) FROM items"); after == before || n < 10 {
		t.Fatalf("the writers did not write during the validation (%d transactions)", n)
	}
	t.Logf("%d source transactions during 3 validation passes", n)
	caughtUp(t, src, tgt, r)
	tgt.Exec(t, `UPDATE items SET name = 'name 42' WHERE id = 42`)
	if rep := runValidate(t, p); !rep.Equal {
		t.Fatalf("after the load: %+v", rep.Tables)
	}
}

// trackedAndValidated loads the target, starts change data capture recording the
// changed keys, and validates every table once: what an incremental pass starts from.
func trackedAndValidated(t *testing.T, src, tgt *pgtest.DB) (*plan.Plan, *cdcRun) {
	t.Helper()
	fullLoad(t, src, tgt, "")
	p := validatePlan(t, src, tgt)
	r := startCDC(t, src, tgt, "validation: {track_changes: true}\n")
	caughtUp(t, src, tgt, r)
	if rep := runValidate(t, p); !rep.Equal {
		t.Fatalf("first pass: %+v", rep.Tables)
	}
	return p, r
}

func TestValidateIncremental(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, validationSchema)
	p, r := trackedAndValidated(t, src, tgt)
	incremental := func(tables ...string) *validate.Report {
		t.Helper()
		return validateWith(t, p, validate.Options{ChunkRows: 1000, Incremental: true}, tables...)
	}
	// Nothing changed: nothing is read.
	if items := tableResult(t, incremental("public.items"), "public.items"); !items.Incremental || items.RowsRead != 0 || items.State != control.ValidationValidated {
		t.Fatalf("incremental pass with nothing changed: %+v", items)
	}
	// Two groups of the applier, with a key in both: each key is compared once.
	src.Exec(t, `UPDATE items SET name = 'x' WHERE id IN (1, 2)`)
	caughtUp(t, src, tgt, r)
	src.Exec(t, `UPDATE items SET name = 'x' WHERE id IN (1, 3); DELETE FROM items WHERE id = 4;
		INSERT INTO items (id, name) VALUES (60000, 'new'); UPDATE items SET id = 60001 WHERE id = 5;
		TRUNCATE pairs; UPDATE words SET n = n + 1 WHERE w = 'b1'`)
	caughtUp(t, src, tgt, r)
	src.Exec(t, `TRUNCATE words`)
	caughtUp(t, src, tgt, r)
	if n := pgtest.QueryVal[int64](t, tgt, `SELECT count(*) FROM cutover.validation_dirty WHERE table_name = 'items'`); n != 2 {
		t.Fatalf("%d groups of changed keys recorded, want 2", n)
	}
	tgt.Exec(t, `UPDATE items SET name = 'bad' WHERE id = 2`)
	rep := incremental()
	items := tableResult(t, rep, "public.items")
	if got := describeDiffs(items.Differences); !items.Incremental || items.RowsRead != 7 || !slices.Equal(got, []string{"RECORD_DIFF 2 [name]"}) {
		t.Fatalf("incremental pass: incremental %v, %d rows read, differences %q", items.Incremental, items.RowsRead, got)
	}
	for _, name := range []string{"public.pairs", "public.words"} {
		if tv := tableResult(t, rep, name); tv.Incremental || tv.State != control.ValidationValidated || tv.SourceRows != 0 {
			t.Fatalf("a truncated table gets a full pass: %+v", tv)
		}
	}
	// Repaired: the next incremental pass rereads the row that differed, and only it.
	tgt.Exec(t, `UPDATE items SET name = 'x' WHERE id = 2`)
	items = tableResult(t, incremental("public.items"), "public.items")
	if items.State != control.ValidationValidated || items.RowsRead != 1 {
		t.Fatalf("after the repair: %+v", items)
	}
	if n := pgtest.QueryVal[int64](t, tgt, `SELECT count(*) FROM cutover.validation_dirty WHERE table_name = 'items'`); n != 0 {
		t.Errorf("%d changed keys left after the pass", n)
	}
	// A key of two columns; a table without one (replica identity full) is compared whole.
	src.Exec(t, `INSERT INTO pairs VALUES (1, 'a', 'x'), (1, 'b', 'y'), (2, 'a,"b', 'z'); UPDATE pairs SET v = 'w' WHERE a = 1 AND b = 'b';
		INSERT INTO bag VALUES (3, 'y')`)
	caughtUp(t, src, tgt, r)
	tgt.Exec(t, `UPDATE pairs SET v = 'bad' WHERE a = 2; DELETE FROM bag WHERE a = 1`)
	rep = incremental("public.pairs", "public.bag")
	pairs := tableResult(t, rep, "public.pairs")
	if got := describeDiffs(pairs.Differences); !pairs.Incremental || pairs.RowsRead != 3 || !slices.Equal(got, []string{`RECORD_DIFF 2,a,"b [v]`}) {
		t.Fatalf("incremental pass on a key of two columns: incremental %v, %d rows read, differences %q", pairs.Incremental, pairs.RowsRead, got)
	}
	if bag := tableResult(t, rep, "public.bag"); bag.Incremental || bag.Mismatches != 2 {
		t.Fatalf("a table without a key changed: %+v", bag)
	}
}

// A control schema made before v8 recorded each changed key as a row of its own: its
// keys are dropped, and every table's next validation is a full one.
func TestControlDropsOldChangedKeys(t *testing.T) {
	t.Parallel()
	tgt := pgtest.NewDB(t, pgtest.Target(t))
	ctx := context.Background()
	conn := tgt.Conn(t)
	if _, err := OpenControl(ctx, conn, "cutover"); err != nil {
		t.Fatal(err)
	}
	tgt.Exec(t, `DROP TABLE cutover.validation_dirty;
		CREATE TABLE cutover.validation_dirty (schema_name text NOT NULL, table_name text NOT NULL, key jsonb NOT NULL, position pg_lsn NOT NULL,
		    PRIMARY KEY (schema_name, table_name, key));
		INSERT INTO cutover.validation_dirty VALUES ('public', 'items', '{"id": "1"}', '0/10');
		INSERT INTO cutover.table_stats (schema_name, table_name, state, validation_state, validated_position) VALUES ('public', 'items', 'loaded', 'validated', '0/5');
		COMMENT ON TABLE cutover.state IS 'cutover control schema v7'`)
	if _, err := OpenControl(ctx, conn, "cutover"); err != nil {
		t.Fatal(err)
	}
	if got := pgtest.QueryVal[string](t, tgt, `SELECT validated_position FROM cutover.table_stats WHERE table_name = 'items'`); got != "" {
		t.Errorf("validated_position %q after the upgrade: the next incremental pass would miss the dropped keys", got)
	}
	if got := pgtest.QueryVal[string](t, tgt, `SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'cutover.validation_dirty'::regclass AND attnum > 0 AND NOT attisdropped`); got != "schema_name,table_name,position,columns,keys" {
		t.Errorf("validation_dirty has columns %s", got)
	}
}

func TestValidateContinuously(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, validationSchema)
	fullLoad(t, src, tgt, "")
	r := startCDC(t, src, tgt, "cdc: {on_error: log}\nvalidation: {continuous: true, interval: 1s, chunk_rows: 1000, busy_percent: 50}\n")
	r.waitTarget(t, tgt, "first full pass", `SELECT bool_and(validation_state IN ('validated', 'no key')) FROM cutover.table_stats`)
	// The target loses a row the source then changes: the change cannot be applied
	// (logged), and the next background pass finds the row missing.
	tgt.Exec(t, `DELETE FROM items WHERE id = 42`)
	src.Exec(t, `UPDATE items SET n = n + 1 WHERE id = 42`)
	r.waitTarget(t, tgt, "mismatch found in the background", `SELECT EXISTS (SELECT FROM cutover.validation_failures WHERE table_name = 'items' AND kind = 'MISSING_TARGET' AND key = '["42"]')
		AND (SELECT validation_state = 'mismatched' AND validation_mismatches = 1 FROM cutover.table_stats WHERE table_name = 'items')`)
	caughtUp(t, src, tgt, r)
	// The pass reports once it has recorded every table.
	deadline := time.Now().Add(time.Minute)
	for out := r.out.String(); !strings.Contains(out, "validation: 4 tables equal") || !strings.Contains(out, "1 differ (1 rows"); out = r.out.String() {
		if time.Now().After(deadline) {
			t.Fatalf("the run's report does not say what the background validation found:\n%s", out)
		}
		select {
		case err := <-r.done:
			r.cancel = nil
			t.Fatalf("cdc stopped: %v\n%s", err, out)
		case <-time.After(20 * time.Millisecond): // polls the output, as waitTarget polls the target
		}
	}
}

func TestValidateRepair(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, validationSchema+`;
		CREATE TABLE ids (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text, twice int GENERATED ALWAYS AS (length(v) * 2) STORED);
		INSERT INTO ids (v) SELECT 'v' || i FROM generate_series(1, 100) i`)
	fullLoad(t, src, tgt, "")
	// A trigger on the target must not fire for repaired rows either.
	tgt.Exec(t, `CREATE TABLE fired (n int);
		CREATE FUNCTION fire() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN INSERT INTO fired VALUES (1); RETURN NEW; END';
		CREATE TRIGGER fire AFTER INSERT OR UPDATE OR DELETE ON items FOR EACH ROW EXECUTE FUNCTION fire()`)
	p := validatePlan(t, src, tgt)
	r := startCDC(t, src, tgt, "")
	stopWriting := writeLoad(t, src)
	caughtUp(t, src, tgt, r)
	tgt.Exec(t, `SET session_replication_role = replica;
		UPDATE items SET name = 'changed', doc = '{"x": 1}' WHERE id = 5;
		DELETE FROM items WHERE id = 7;
		INSERT INTO items (id, name) VALUES (70000, 'extra');
		UPDATE items SET big = overlay(big placing 'X' from 50000 for 1) WHERE id = 3000;
		UPDATE items SET name = NULL WHERE id = 9;
		DELETE FROM ids WHERE id = 50;
		UPDATE ids SET v = 'other' WHERE id = 60;
		DELETE FROM pairs WHERE a = 200 AND b = 'k7'`)
	rep, err := Validate(context.Background(), p, validate.Options{ChunkRows: 1000, Repair: true})
	if err != nil {
		t.Fatalf("validate --repair: %v", err)
	}
	if !rep.Equal {
		t.Fatalf("after --repair: %+v", rep.Tables)
	}
	repaired := map[string]int64{}
	for _, tv := range rep.Tables {
		repaired[tv.Table] = tv.Repaired
	}
	if repaired["items"] < 5 || repaired["ids"] < 2 || repaired["pairs"] < 1 {
		t.Errorf("rows repaired: %v", repaired)
	}
	stopWriting()
	caughtUp(t, src, tgt, r)
	// Independent of the validator: every row of the repaired tables, hashed.
	for _, q := range []string{
		`SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM items t`,
		`SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM ids t`,
		`SELECT md5(string_agg(t::text, '|' ORDER BY a, b)) FROM pairs t`,
	} {
		if s, g := pgtest.QueryVal[string](t, src, q), pgtest.QueryVal[string](t, tgt, q); s != g {
			t.Errorf("%s: source %s, target %s", q, s, g)
		}
	}
	if n := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM fired"); n != 0 {
		t.Errorf("the target's trigger fired %d times for repaired rows", n)
	}
	// The identity goes on from the source's values: a new row on the target does not collide.
	if n := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM ids WHERE id = 50 AND twice = length(v) * 2"); n != 1 {
		t.Errorf("ids 50 on the target: %d rows with its generated column computed", n)
	}
}

// A validation marker reaches the change stream only once the source's WAL is flushed
// past it. flushWAL must flush at once, not leave it to the WAL writer (a commit that
// wrote no WAL of its own, such as txid_current()'s, is asynchronous): the WAL writer
// here sleeps 10 s, so only a synchronous flush passes.
func TestFlushWALFlushesAtOnce(t *testing.T) {
	s := pgtest.StartServer(t, pgtest.Options{Name: "lazy-walwriter", Settings: map[string]string{
		"wal_writer_delay": "10000ms", "wal_writer_flush_after": "0"}})
	db := pgtest.NewDB(t, s)
	ctx := context.Background()
	writer, flusher := db.Conn(t), db.Conn(t)
	for i := range 5 {
		var marker string
		if err := writer.QueryRow(ctx, "SELECT pg_logical_emit_message(false, 'test', 'x')::text").Scan(&marker); err != nil {
			t.Fatal(err)
		}
		if err := flushWAL(ctx, flusher); err != nil {
			t.Fatal(err)
		}
		var flushed bool
		if err := writer.QueryRow(ctx, "SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn", marker).Scan(&flushed); err != nil {
			t.Fatal(err)
		}
		if !flushed {
			t.Fatalf("try %d: the WAL is not flushed past the marker at %s after flushWAL", i, marker)
		}
	}
}

// The validator's key: the primary key, else the replica identity index, else the
// unique index on the fewest NOT NULL columns; its INCLUDE columns are not part of it.
func TestDescribeTablesKey(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, pgtest.Source(t))
	db.Exec(t, `
		CREATE TABLE pk (a int NOT NULL, b int NOT NULL, c int PRIMARY KEY, UNIQUE (a));
		CREATE TABLE ident (a int NOT NULL, b int NOT NULL, c int NOT NULL);
		CREATE UNIQUE INDEX ident_ab ON ident (a, b); CREATE UNIQUE INDEX ident_c ON ident (c);
		ALTER TABLE ident REPLICA IDENTITY USING INDEX ident_ab;
		CREATE TABLE fewest (a int NOT NULL, b int NOT NULL, c int NOT NULL, d int);
		CREATE UNIQUE INDEX fewest_ab ON fewest (a, b); CREATE UNIQUE INDEX fewest_c ON fewest (c) INCLUDE (a, b);
		CREATE UNIQUE INDEX fewest_d ON fewest (d); CREATE UNIQUE INDEX fewest_expr ON fewest ((a + 1));
		CREATE TABLE nullable (a int, b int UNIQUE);
		CREATE TABLE "Odd ""name""" (id text PRIMARY KEY, x int);
		ALTER TABLE pk DROP COLUMN b;`)
	shapes, err := describeTables(context.Background(), db.Conn(t), [][2]string{
		{"public", "pk"}, {"public", "ident"}, {"public", "fewest"}, {"public", "nullable"}, {"public", `Odd "name"`}, {"public", "absent"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"pk": "[a c] key [c]", "ident": "[a b c] key [a b]", "fewest": "[a b c d] key [c]", "nullable": "[a b] key []", `Odd "name"`: "[id x] key [id]"}
	for name, w := range want {
		s := shapes[[2]string{"public", name}]
		if s == nil {
			t.Errorf("%s: not described", name)
			continue
		}
		if got := fmt.Sprintf("%v key %v", s.columns, s.key); got != w {
			t.Errorf("%s: %s, want %s", name, got, w)
		}
	}
	if _, ok := shapes[[2]string{"public", "absent"}]; ok || len(shapes) != 5 {
		t.Errorf("shapes of %d tables, absent one among them: %v", len(shapes), ok)
	}
	if s := shapes[[2]string{"public", "fewest"}]; s != nil && fmt.Sprint(s.keyTypes) != "[integer]" {
		t.Errorf("fewest: key types %v", s.keyTypes)
	}
}

// A control schema another version made: validate says so, and how to fix it.
func TestValidateRefusesAnotherControlVersion(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	if _, err := OpenControl(context.Background(), tgt.Conn(t), "cutover"); err != nil {
		t.Fatal(err)
	}
	tgt.Exec(t, `COMMENT ON TABLE cutover.state IS 'cutover control schema v7'`)
	_, err := Validate(context.Background(), validatePlan(t, src, tgt), validate.Options{})
	if err == nil || !strings.Contains(err.Error(), `made by another version of cutover ("cutover control schema v7"`) || !strings.Contains(err.Error(), "run cutover start with this version") {
		t.Fatalf("validate with a control schema of v7: %v", err)
	}
}

func TestJoinArrays(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, pgtest.Target(t))
	for _, c := range []struct {
		in       []string
		joined   string
		distinct int
	}{
		{[]string{"{1,2}", "{2,3}"}, "{1,2,2,3}", 3},
		{[]string{"{}", "{a}", "{}"}, "{a}", 1},
		{[]string{`{"a,b",c}`, `{"a,b","x\"y"}`, `{"x\"y","b\\\\"}`}, `{"a,b",c,"a,b","x\"y","x\"y","b\\\\"}`, 4},
		{[]string{`{"\\",",",a}`, `{"\\"}`}, `{"\\",",",a,"\\"}`, 3},
	} {
		joined, n, err := joinArrays(c.in, 2)
		if err != nil || joined != c.joined || n != c.distinct {
			t.Errorf("joinArrays(%q) = %q, %d, %v; want %q, %d", c.in, joined, n, err, c.joined, c.distinct)
		}
		// The server reads the joined text as the arrays' elements, in order.
		var want []string
		for _, text := range c.in {
			want = append(want, pgtest.QueryVal[[]string](t, db, "SELECT $1::text::text[]", text)...)
		}
		if got := pgtest.QueryVal[[]string](t, db, "SELECT $1::text::text[]", joined); !slices.Equal(got, want) {
			t.Errorf("joinArrays(%q): the server reads %q, want %q", c.in, got, want)
		}
	}
	if _, _, err := joinArrays([]string{"1,2"}, 0); err == nil {
		t.Error("joinArrays took a text that is no array")
	}
}

// TestValidateIncrementalWiderIdentity: the stream names a key of two columns (the
// replica identity index) and the validator compares by the primary key, one of them:
// each group's keys are taken from its column of the recorded pairs.
func TestValidateIncrementalWiderIdentity(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, `CREATE TABLE wide (id int PRIMARY KEY, code text NOT NULL, v text);
		CREATE UNIQUE INDEX wide_id_code ON wide (id, code);
		ALTER TABLE wide REPLICA IDENTITY USING INDEX wide_id_code;
		INSERT INTO wide SELECT g, 'c' || g, 'v' FROM generate_series(1, 100) g`)
	p, r := trackedAndValidated(t, src, tgt)
	src.Exec(t, `UPDATE wide SET v = 'x' WHERE id IN (3, 4)`)
	caughtUp(t, src, tgt, r)
	src.Exec(t, `UPDATE wide SET v = 'y' WHERE id IN (4, 5)`)
	caughtUp(t, src, tgt, r)
	if cols := pgtest.QueryVal[[]string](t, tgt, `SELECT DISTINCT columns FROM cutover.validation_dirty WHERE table_name = 'wide'`); !slices.Equal(cols, []string{"id", "code"}) {
		t.Fatalf("the stream's key: %q, want [id code]", cols)
	}
	tgt.Exec(t, `UPDATE wide SET v = 'bad' WHERE id = 5; UPDATE wide SET v = 'bad too' WHERE id = 6`)
	wide := tableResult(t, validateWith(t, p, validate.Options{Incremental: true}), "public.wide")
	if got := describeDiffs(wide.Differences); !wide.Incremental || wide.RowsRead != 3 || !slices.Equal(got, []string{"RECORD_DIFF 5 [v]"}) {
		t.Fatalf("incremental pass: incremental %v, %d rows read, differences %q", wide.Incremental, wide.RowsRead, got)
	}
}
