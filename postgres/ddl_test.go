package postgres

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/pgtest"
)

// Every kind of schema change the issue names, made on the source during CDC with
// rows before and after each, in the same transactions and in others: the target
// ends with the same schema (by the catalog) and the same rows.
func TestSchemaChangesDuringCDC(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, `
		CREATE TABLE items (id int PRIMARY KEY, name text, qty int);
		CREATE TABLE gone (id int PRIMARY KEY);
		CREATE TABLE old_name (id int PRIMARY KEY, v text);
		CREATE TABLE measures (id int, region text, v int, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
		CREATE TABLE measures_eu PARTITION OF measures FOR VALUES IN ('eu');
		INSERT INTO items SELECT g, 'item ' || g, g FROM generate_series(1, 50) g;
		INSERT INTO gone VALUES (1); INSERT INTO old_name VALUES (1, 'a');
		INSERT INTO measures VALUES (1, 'eu', 1);`)
	fullLoad(t, src, tgt, "")
	r := startCDC(t, src, tgt, "")

	steps := []string{
		// Added with a default every row before it reads, NOT NULL, then written.
		`ALTER TABLE items ADD COLUMN price numeric(10,2) NOT NULL DEFAULT 9.99`,
		`INSERT INTO items (id, name, qty, price) VALUES (51, 'new', 1, 1.25); UPDATE items SET price = 2 WHERE id = 1`,
		// A default the source evaluates once: the rows before it read the source's value.
		`ALTER TABLE items ADD COLUMN added_at timestamptz DEFAULT now()`,
		`UPDATE items SET qty = qty + 1 WHERE id <= 5`,
		// Rewrites: the values are the source's (a sequence, a volatile default, USING).
		`ALTER TABLE items ADD COLUMN serial_no bigserial, ADD COLUMN token uuid DEFAULT gen_random_uuid()`,
		`UPDATE items SET name = 'after rewrite' WHERE id = 4`,
		`ALTER TABLE items ALTER COLUMN name TYPE varchar(40) USING upper(name)`,
		`ALTER TABLE items RENAME COLUMN qty TO quantity`,
		`UPDATE items SET quantity = 100 WHERE id = 2`,
		`ALTER TABLE items ALTER COLUMN quantity TYPE bigint`,
		`ALTER TABLE items ALTER COLUMN name SET DEFAULT 'unnamed', ALTER COLUMN name SET NOT NULL`,
		`INSERT INTO items (id, quantity, price) VALUES (52, 5, 3)`,
		`ALTER TABLE items ALTER COLUMN name DROP NOT NULL, ALTER COLUMN name DROP DEFAULT`,
		`CREATE INDEX CONCURRENTLY items_name ON items (name)`,
		`ALTER TABLE items ADD CONSTRAINT qty_positive CHECK (quantity >= 0)`,
		`CREATE UNIQUE INDEX items_name_qty ON items (name, quantity)`,
		`DROP INDEX items_name`,
		`ALTER TABLE items DROP CONSTRAINT qty_positive`,
		`ALTER TABLE items DROP COLUMN added_at`,
		`UPDATE items SET name = 'after drop' WHERE id = 3`,
		// A schema change between rows in one transaction.
		`BEGIN; INSERT INTO items (id, quantity, price) VALUES (53, 1, 1); ALTER TABLE items ADD COLUMN note text; INSERT INTO items (id, quantity, price, note) VALUES (54, 1, 1, 'noted'); COMMIT`,
		// Two schema changes in one query string, each replayed alone.
		`/* a migration file */ ALTER TABLE items ADD COLUMN a1 int DEFAULT 1; INSERT INTO items (id, quantity, price) VALUES (56, 1, 1); ALTER TABLE items ADD COLUMN "a;2" text DEFAULT 'x;y'`,
		// New tables: plain, with rows from the start, a partition; then written.
		`CREATE TABLE fresh (id serial PRIMARY KEY, v text, at timestamptz DEFAULT now())`,
		`INSERT INTO fresh (v) SELECT 'row ' || g FROM generate_series(1, 20) g`,
		`CREATE TABLE copied AS SELECT g AS id, g * 2 AS twice FROM generate_series(1, 30) g`,
		`ALTER TABLE copied ADD PRIMARY KEY (id)`,
		`UPDATE copied SET twice = 0 WHERE id = 1; DELETE FROM copied WHERE id = 2`,
		`CREATE TABLE measures_us PARTITION OF measures FOR VALUES IN ('us')`,
		`INSERT INTO measures VALUES (2, 'us', 2), (3, 'eu', 3)`,
		`ALTER TABLE fresh ADD COLUMN w int DEFAULT 7`,
		`UPDATE fresh SET v = 'changed' WHERE id = 1`,
		`ALTER TABLE old_name RENAME TO new_name`,
		`INSERT INTO new_name VALUES (2, 'b'); UPDATE new_name SET v = 'aa' WHERE id = 1`,
		`DROP TABLE gone`,
		`INSERT INTO items (id, quantity, price, note) VALUES (55, 1, 1, 'last')`,
	}
	for _, s := range steps {
		src.Exec(t, s)
	}
	caughtUp(t, src, tgt, r)
	r.waitTarget(t, tgt, "the copies", "SELECT NOT EXISTS (SELECT 1 FROM cutover.table_stats WHERE copy_pending)")
	sameObjects(t, src, tgt)
	sameTables(t, src, tgt)
	if got := pgtest.QueryVal[string](t, tgt, `SELECT string_agg(schema_name || '.' || table_name, ' ' ORDER BY table_name COLLATE "C") FROM cutover.table_stats`); got !=
		"public.copied public.fresh public.items public.measures_eu public.measures_us public.new_name" {
		t.Errorf("table_stats holds %s", got)
	}
	out := r.out.String()
	for _, want := range []string{"replayed on the target: ALTER TABLE items RENAME COLUMN qty TO quantity", "table \"public\".\"fresh\", created on the source", "copied ("} {
		if !strings.Contains(out, want) {
			t.Errorf("the log does not say %q:\n%s", want, out)
		}
	}
}

// Without the capture (a role that may not create event triggers), a column the
// source adds still reaches the target, from the change stream's description of the
// table, with the value the rows before it have on the source; a renamed column stops
// CDC and names it.
func TestColumnsAddedWithoutCapture(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, `CREATE TABLE t (id int PRIMARY KEY, v text);
		INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 20) g;`)
	fullLoad(t, src, tgt, "")
	slot := pgtest.QueryVal[string](t, tgt, "SELECT slot FROM cutover.state")
	src.Exec(t, fmt.Sprintf("DROP EVENT TRIGGER %s_ddl_end; DROP EVENT TRIGGER %[1]s_ddl_drop; DROP EVENT TRIGGER %[1]s_ddl_rewrite", slot))
	r := startCDC(t, src, tgt, "")
	src.Exec(t, `ALTER TABLE t ADD COLUMN n int NOT NULL DEFAULT 5;
		ALTER TABLE t ADD COLUMN at timestamptz DEFAULT now();`)
	src.Exec(t, `INSERT INTO t (id, v, n) VALUES (21, 'new', 6)`)
	src.Exec(t, `ALTER TABLE t ADD COLUMN token uuid DEFAULT gen_random_uuid()`)
	src.Exec(t, `UPDATE t SET v = 'after' WHERE id = 1`)
	caughtUp(t, src, tgt, r)
	r.waitTarget(t, tgt, "the copy of t", "SELECT NOT EXISTS (SELECT 1 FROM cutover.table_stats WHERE copy_pending)")
	sameTables(t, src, tgt)
	sameObjects(t, src, tgt)
	src.Exec(t, `ALTER TABLE t RENAME COLUMN v TO w; UPDATE t SET w = 'renamed' WHERE id = 2`)
	err := r.stopped(t)
	if err == nil || !strings.Contains(err.Error(), `has no column "w"`) || !strings.Contains(err.Error(), `ALTER TABLE "public"."t" RENAME COLUMN "v" TO "w"`) {
		t.Fatalf("a renamed column without the capture: %v\n%s", err, r.out.String())
	}
}

// A schema change made in a DO block is not replayed: CDC stops with the statement and
// the position, the operator makes the change on the target, and cutover start
// --schema-applied goes on with the rows after it. With cdc.ddl: stop, every schema
// change of a migrated table stops CDC the same way.
func TestSchemaChangeAppliedByHand(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a');
		CREATE TABLE other (id int PRIMARY KEY)`)
	fullLoad(t, src, tgt, "")
	r := startCDC(t, src, tgt, "")
	src.Exec(t, `INSERT INTO t VALUES (2, 'before')`)
	src.Exec(t, `BEGIN; INSERT INTO other VALUES (1);
		DO $$ BEGIN EXECUTE 'ALTER TABLE t ADD COLUMN w int DEFAULT 7'; END $$;
		INSERT INTO t VALUES (3, 'after', 8); COMMIT`)
	src.Exec(t, `INSERT INTO t VALUES (4, 'later', 9)`)
	err := r.stopped(t)
	if err == nil || !strings.Contains(err.Error(), "a function, a procedure or a DO block") {
		t.Fatalf("a schema change in a DO block: %v\n%s", err, r.out.String())
	}
	m := regexp.MustCompile(`--schema-applied (\S+)`).FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("no --schema-applied in: %v", err)
	}
	if n := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM other"); n != 0 {
		t.Fatalf("the stopped transaction's rows are on the target (%d), so it was applied in part", n)
	}
	tgt.Exec(t, `ALTER TABLE t ADD COLUMN w int DEFAULT 7`)
	r = startCDCWith(t, src, tgt, "", engine.StartOptions{SchemaApplied: m[1]})
	caughtUp(t, src, tgt, r)
	sameTables(t, src, tgt)
	if !strings.Contains(r.out.String(), "was made on the target by hand (--schema-applied)") {
		t.Errorf("the run does not say it skipped the schema change:\n%s", r.out.String())
	}
	r.stop(t)

	// cdc.ddl: stop.
	r = startCDCWith(t, src, tgt, "cdc: {ddl: stop}\n", engine.StartOptions{})
	src.Exec(t, `CREATE INDEX t_v ON t (v)`)
	err = r.stopped(t)
	if err == nil || !strings.Contains(err.Error(), "cdc.ddl is stop") || !strings.Contains(err.Error(), "CREATE INDEX t_v ON t (v)") {
		t.Fatalf("cdc.ddl: stop: %v\n%s", err, r.out.String())
	}
}

// startCDCWith is startCDC with options.
func startCDCWith(t *testing.T, src, tgt *pgtest.DB, extra string, opts engine.StartOptions) *cdcRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &cdcRun{cancel: cancel, done: make(chan error, 1), out: &lockedWriter{w: &bytes.Buffer{}}}
	p := planFor(t, src.URL(), tgt.URL(), extra)
	opts.Out = r.out
	go func() { r.done <- Replicate(ctx, p, opts) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}
