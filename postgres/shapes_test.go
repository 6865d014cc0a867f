package postgres

import (
	"errors"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/pgtest"
)

// Table shapes the catalog allows and a migration must carry: tables with no column
// at all (created so, or every column dropped) or only generated ones, and keys with
// a generated column, which the change stream does not send.
const shapesSchema = `
	CREATE TABLE nocols ();
	INSERT INTO nocols DEFAULT VALUES; INSERT INTO nocols DEFAULT VALUES;
	CREATE TABLE dropped (a int, b text);
	INSERT INTO dropped VALUES (1, 'x'), (2, 'y'), (3, 'z');
	ALTER TABLE dropped DROP COLUMN a, DROP COLUMN b;
	CREATE TABLE genonly (g int GENERATED ALWAYS AS (7) STORED);
	INSERT INTO genonly DEFAULT VALUES;
	-- b repeats: the stream's key (b) alone names both rows.
	CREATE TABLE genkey (a int, b int, g int GENERATED ALWAYS AS (a * 10) STORED, v text, PRIMARY KEY (b, g));
	INSERT INTO genkey (a, b, v) VALUES (1, 1, 'one'), (2, 1, 'two'), (3, 2, 'three');
	CREATE TABLE genpk (a int, g int GENERATED ALWAYS AS (a + 1) STORED PRIMARY KEY, v text);
	INSERT INTO genpk (a, v) VALUES (1, 'one'), (2, 'two');`

func TestTableShapes(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, shapesSchema)

	// The default policy refuses every table whose rows the stream cannot identify,
	// naming the generated column of the key.
	rep := assess(t, planFor(t, src.URL(), tgt.URL(), ""))
	for _, tbl := range []string{"nocols", "dropped", "genonly"} {
		mustFind(t, rep, "replica_identity", "table public."+tbl, check.Error)
	}
	if f := mustFind(t, rep, "replica_identity", "table public.genkey", check.Error); !strings.Contains(f.Problem, "generated column(s) g") ||
		!strings.Contains(f.Fix, "REPLICA IDENTITY FULL") {
		t.Errorf("genkey: %s\nfix: %s", f.Problem, f.Fix)
	}
	mustFind(t, rep, "replica_identity", "table public.genpk", check.Error)

	const extra = "cdc: {no_identity: replica_identity_full}\n"
	out := fullLoad(t, src, tgt, extra)
	sameTables(t, src, tgt)
	for _, tbl := range []string{"nocols", "dropped", "genonly"} {
		if !strings.Contains(out, tbl) {
			t.Errorf("the load's log does not name %s:\n%s", tbl, out)
		}
	}
	if n := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM dropped"); n != 3 {
		t.Fatalf("dropped holds %d rows on the target, want 3", n)
	}

	r := startCDC(t, src, tgt, extra)
	src.Exec(t, `
		INSERT INTO nocols DEFAULT VALUES; INSERT INTO nocols DEFAULT VALUES;
		DELETE FROM nocols WHERE ctid = (SELECT min(ctid) FROM nocols);
		DELETE FROM dropped WHERE ctid = (SELECT min(ctid) FROM dropped);
		INSERT INTO genonly DEFAULT VALUES; INSERT INTO genonly DEFAULT VALUES;
		DELETE FROM genonly WHERE ctid = (SELECT min(ctid) FROM genonly);
		UPDATE genkey SET v = 'changed' WHERE a = 1;
		DELETE FROM genkey WHERE a = 3;
		UPDATE genkey SET a = 5 WHERE a = 2;
		UPDATE genpk SET v = 'changed' WHERE a = 1;
		UPDATE genpk SET a = 9 WHERE a = 2;
		INSERT INTO genkey (a, b, v) VALUES (4, 1, 'four');`)
	caughtUp(t, src, tgt, r)
	if n := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM cutover.apply_exceptions"); n != 0 {
		t.Fatalf("%d apply exceptions", n)
	}
	sameTables(t, src, tgt)

	rv := runValidate(t, planFor(t, src.URL(), tgt.URL(), extra))
	seen := map[string]bool{}
	for _, tv := range rv.Tables {
		seen[tv.Table] = true
	}
	for _, tbl := range []string{"nocols", "dropped", "genonly", "genkey", "genpk"} {
		if !seen[tbl] {
			t.Errorf("validate does not report %s: %+v", tbl, rv.Tables)
		}
	}
	if !rv.Equal {
		t.Errorf("validate: not equal: %+v", rv.Tables)
	}
	// A row missing on the target is found in a table without columns too.
	tgt.Exec(t, "SET session_replication_role = replica; DELETE FROM dropped WHERE ctid = (SELECT min(ctid) FROM dropped)")
	if rv := runValidate(t, planFor(t, src.URL(), tgt.URL(), extra), "public.dropped"); rv.Equal {
		t.Errorf("validate finds no difference in dropped, which has a row less on the target: %+v", rv.Tables)
	}
}

// A change whose statement the target cannot prepare (a key column's type without
// =, a column the target lacks) is an apply exception like any other: cdc.on_error
// decides. A table the plan leaves out after its load no longer stops the task.
func TestCDCOnErrorWhenAStatementCannotBePrepared(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{"log", "stop"} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			src, tgt := pair(t)
			src.Exec(t, `CREATE TABLE keyed (id int PRIMARY KEY, v text); CREATE TABLE lacking (id int PRIMARY KEY, v text, w text);
				CREATE TABLE fine (id int PRIMARY KEY, v text);
				INSERT INTO keyed VALUES (1, 'one'); INSERT INTO lacking VALUES (1, 'one', 'x');`)
			extra := "cdc: {on_error: " + policy + "}\n"
			fullLoad(t, src, tgt, extra)
			tgt.Exec(t, `ALTER TABLE keyed DROP CONSTRAINT keyed_pkey; ALTER TABLE keyed ALTER COLUMN id TYPE json USING to_json(id);
				ALTER TABLE lacking DROP COLUMN w;`)
			r := startCDC(t, src, tgt, extra)
			src.Exec(t, `UPDATE keyed SET v = 'changed'; INSERT INTO lacking VALUES (2, 'two', 'y'); INSERT INTO fine VALUES (1, 'after');`)
			exceptions := func() string {
				return pgtest.QueryVal[string](t, tgt, `SELECT coalesce(string_agg(table_name || ' ' || operation || ' ' || policy, ', ' ORDER BY id), '') FROM cutover.apply_exceptions`)
			}
			if policy == "log" {
				caughtUp(t, src, tgt, r)
				if ex := exceptions(); ex != "keyed update log, lacking insert log" {
					t.Fatalf("exceptions: %q\n%s", ex, r.out.String())
				}
				if v := pgtest.QueryVal[string](t, tgt, "SELECT v FROM fine"); v != "after" {
					t.Fatalf("fine: %q", v)
				}
				return
			}
			err := r.stopped(t)
			var ae *cdc.ApplyError
			if !errors.As(err, &ae) || !strings.Contains(err.Error(), "operator does not exist: json = json") {
				t.Fatalf("err = %v", err)
			}
			if ex := exceptions(); ex != "keyed update stop" {
				t.Fatalf("exceptions: %q", ex)
			}
			// Left out of the plan, the tables no longer stop the task.
			extra += `tables: {exclude: ["public.keyed", "public.lacking"]}` + "\n"
			r = startCDC(t, src, tgt, extra)
			caughtUp(t, src, tgt, r)
			if v := pgtest.QueryVal[string](t, tgt, "SELECT v FROM fine"); v != "after" {
				t.Fatalf("fine: %q", v)
			}
			if s := pgtest.QueryVal[string](t, tgt, "SELECT string_agg(table_name || '=' || state, ',' ORDER BY table_name) FROM cutover.table_stats"); s != "fine=loaded,keyed=excluded,lacking=excluded" {
				t.Fatalf("table_stats: %s", s)
			}
			if !strings.Contains(r.out.String(), `table "public"."keyed" is left out by the plan now`) {
				t.Fatalf("output: %s", r.out.String())
			}
			// Validation leaves them out too: the other tables are equal.
			rep := runValidate(t, planFor(t, src.URL(), tgt.URL(), extra))
			if len(rep.Tables) != 1 || rep.Tables[0].Table != "fine" || !rep.Equal {
				t.Fatalf("validation: %+v", rep.Tables)
			}
		})
	}
}

// A change whose stream does not name its whole key is refused with the fix, never
// applied by part of the key (which may name several rows) or by no condition at all.
func TestStatementRefusesAPartialKey(t *testing.T) {
	rel := &cdc.Relation{Schema: "public", Name: "t", Columns: []cdc.Column{{Name: "b", Key: true}, {Name: "v"}}}
	tt := &targetTable{qname: `"public"."t"`, cols: []string{`"b"`, `"v"`}, always: make([]bool, 2), types: []string{"integer", "text"},
		viaText: make([]bool, 2), bases: make([]string, 2), generatedKey: `"g"`}
	upd := &cdc.Change{Op: cdc.Update, Rel: rel, New: cdc.Row{{Text: []byte("1")}, {Text: []byte("x")}}}
	if _, err := statementSQL(upd, tt, false); err == nil || !strings.Contains(err.Error(), `generated column "g"`) || !strings.Contains(err.Error(), "REPLICA IDENTITY FULL") {
		t.Errorf("update keyed by part of a key with a generated column: %v", err)
	}
	tt.generatedKey = ""
	sql, err := statementSQL(upd, tt, false)
	if err != nil || sql != `UPDATE ONLY "public"."t" SET "b" = $1, "v" = $2 WHERE "b" = $3::integer` {
		t.Errorf("update by the whole key: %q, %v", sql, err)
	}
	rel.Columns[0].Key = false
	del := &cdc.Change{Op: cdc.Delete, Rel: rel, Old: cdc.Row{{Null: true}, {Null: true}}}
	if _, err := statementSQL(del, tt, false); err == nil || !strings.Contains(err.Error(), "names no column") {
		t.Errorf("delete without a key: %v", err)
	}
}
