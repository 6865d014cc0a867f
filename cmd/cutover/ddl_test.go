package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pgtest"
	"github.com/jackc/pgx/v5"
)

// Schema changes on the source while a writer runs and cutover start replicates: the
// process is killed with SIGKILL right after the target has each schema change and
// before (or while) the rows after it come; each rerun goes on, and the target ends
// with the source's schema and rows, no change lost or applied twice.
func TestSchemaChangesUnderAWriterWithKillNine(t *testing.T) {
	src, tgt := pgtest.NewDB(t, pgtest.Source(t)), pgtest.NewDB(t, pgtest.Target(t))
	src.Exec(t, `CREATE TABLE orders (id bigserial PRIMARY KEY, amount int NOT NULL, note text);
		CREATE TABLE counters (id int PRIMARY KEY, v bigint NOT NULL);
		INSERT INTO counters SELECT g, 0 FROM generate_series(0, 9) g;
		INSERT INTO orders (amount, note) SELECT g, 'n' || g FROM generate_series(1, 2000) g;`)
	dir := t.TempDir()
	plan := fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\n", src.URL(), tgt.URL())
	if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}

	// The writer: each transaction adds an order and bumps a counter, through every
	// schema change (it names only columns that stay), at most one a millisecond: the
	// stream keeps up, and each kill falls close to its schema change.
	stopWriter := make(chan struct{})
	writerDone := writeUntil(t, src, stopWriter, time.Millisecond, func(b *pgx.Batch, n int64) {
		b.Queue("INSERT INTO orders (amount) VALUES ($1)", n)
		b.Queue("UPDATE counters SET v = v + 1 WHERE id = $1", n%10)
		b.Queue("UPDATE orders SET amount = amount + 1 WHERE id = $1", n%2000+1)
	})

	l := startLive(t, dir, false, "start")
	l.waitFor(t, "change data capture", func(out string) bool { return strings.Contains(out, "change data capture from slot") })
	changes := []struct{ ddl, applied, after string }{
		{`ALTER TABLE orders ADD COLUMN status text NOT NULL DEFAULT 'new'`,
			`SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'status')`,
			`UPDATE orders SET status = 'paid' WHERE id % 7 = 0`},
		{`CREATE TABLE refunds (id int PRIMARY KEY, order_id bigint REFERENCES orders, at timestamptz DEFAULT now())`,
			`SELECT to_regclass('refunds') IS NOT NULL`,
			`INSERT INTO refunds (id, order_id) SELECT g, g FROM generate_series(1, 100) g`},
		{`ALTER TABLE orders RENAME COLUMN note TO remark`,
			`SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'remark')`,
			`UPDATE orders SET remark = 'renamed' WHERE id % 5 = 0`},
		{`ALTER TABLE orders ALTER COLUMN amount TYPE bigint USING amount * 10`,
			`SELECT format_type(atttypid, atttypmod) = 'bigint' FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'amount'`,
			`UPDATE orders SET amount = amount + 1000000 WHERE id % 11 = 0`},
		{`CREATE INDEX orders_status ON orders (status)`,
			`SELECT to_regclass('orders_status') IS NOT NULL`,
			`DELETE FROM refunds WHERE id > 90`},
	}
	for _, c := range changes {
		src.Exec(t, c.ddl)
		waitForTarget(t, tgt, l, c.applied)
		src.Exec(t, c.after)
		if err := l.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		l.wait(t)
		l = startLive(t, dir, false, "start")
	}
	n, code, out := catchUpAndStop(t, src, tgt, l, stopWriter, writerDone)
	if code != 0 {
		t.Fatalf("SIGTERM: exit %d\n%s", code, out)
	}
	t.Logf("%d writer transactions", n)
	if os.Getenv("CUTOVER_TEST_LOG") != "" {
		t.Log(l.output())
	}
	sameSums(t, src, tgt, "counters", "orders", "refunds")
	if got := pgtest.QueryVal[int64](t, tgt, "SELECT sum(v) FROM counters"); got != n {
		t.Errorf("counters sum to %d on the target; %d transactions committed on the source", got, n)
	}
	const columns = `SELECT string_agg(attrelid::regclass || '.' || attname || ' ' || format_type(atttypid, atttypmod) || ' ' || attnotnull
		|| ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), ''), ', ' ORDER BY attrelid::regclass::text, attnum)
		FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE attrelid IN ('orders'::regclass, 'refunds'::regclass) AND attnum > 0 AND NOT attisdropped`
	if s, g := pgtest.QueryVal[string](t, src, columns), pgtest.QueryVal[string](t, tgt, columns); s != g {
		t.Errorf("columns differ:\nsource %s\ntarget %s", s, g)
	}
	const indexes = `SELECT string_agg(indexdef, '; ' ORDER BY indexname) FROM pg_indexes WHERE tablename IN ('orders', 'refunds')`
	if s, g := pgtest.QueryVal[string](t, src, indexes), pgtest.QueryVal[string](t, tgt, indexes); s != g {
		t.Errorf("indexes differ:\nsource %s\ntarget %s", s, g)
	}
	if ex := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM cutover.apply_exceptions"); ex != 0 {
		t.Errorf("%d apply exceptions", ex)
	}
}
