package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/mytest"
)

const mysqlSchema = `
	CREATE TABLE customer (id int unsigned AUTO_INCREMENT PRIMARY KEY, email varchar(100) NOT NULL, name varchar(50) CHARACTER SET latin1,
		tier enum('free','pro','') NOT NULL DEFAULT 'free', flags set('a','b','c'), born date, created timestamp(3) NULL,
		UNIQUE KEY email (email), KEY name (name));
	CREATE TABLE orders (id bigint AUTO_INCREMENT PRIMARY KEY, customer_id int unsigned NOT NULL, total decimal(12,2) NOT NULL,
		ratio float, score double, note text, payload blob, at datetime(6) NOT NULL,
		KEY at (at), CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES customer (id) ON DELETE CASCADE);
	CREATE TABLE tags (name varchar(20) NOT NULL, weight int NOT NULL, UNIQUE KEY name (name));
	CREATE VIEW big_orders AS SELECT o.id, c.email, o.total FROM orders o JOIN customer c ON c.id = o.customer_id WHERE o.total > 500;
	INSERT INTO customer (email, name, tier, flags, born, created)
		SELECT concat('c', seq, '@example.com'), if(seq % 7 = 0, NULL, concat('Zoë ', seq)), elt(1 + seq % 3, 'free', 'pro', ''),
			if(seq % 5 = 0, NULL, 'a,c'), if(seq % 11 = 0, '0000-00-00', '1990-01-01' + INTERVAL seq DAY), '2024-01-01 00:00:00.123' + INTERVAL seq MINUTE
		FROM seq_1_to_2000;
	INSERT INTO orders (customer_id, total, ratio, score, note, payload, at)
		SELECT 1 + seq % 2000, seq * 0.37, seq / 7, seq / 3, if(seq % 3 = 0, NULL, concat('tab\there\nand \\ back ', seq)), unhex(md5(seq)),
			'2024-02-29 12:00:00' + INTERVAL seq SECOND
		FROM seq_1_to_30000;
	INSERT INTO tags VALUES ('a', 1), ('b', 2);`

// sameTables compares every table of the two databases by CHECKSUM TABLE (the rows'
// contents, one server version on both sides) and row count, and their indexes and
// foreign keys by the catalog.
func sameMySQLTables(t *testing.T, src, tgt *mytest.DB, tables ...string) {
	t.Helper()
	for _, tb := range tables {
		q := fmt.Sprintf("SELECT concat((SELECT count(*) FROM `%s`), ' rows')", tb)
		a, b := mytest.QueryVal[string](t, src, q), mytest.QueryVal[string](t, tgt, q)
		sum := func(d *mytest.DB) string {
			pool := d.Open(t)
			var name string
			var v *int64
			if err := pool.QueryRow("CHECKSUM TABLE `"+tb+"` EXTENDED").Scan(&name, &v); err != nil || v == nil {
				t.Fatalf("CHECKSUM TABLE %s: %v", tb, err)
			}
			return fmt.Sprint(*v)
		}
		if a != b || sum(src) != sum(tgt) {
			t.Errorf("table %s: %s and checksum %s on the source, %s and %s on the target", tb, a, sum(src), b, sum(tgt))
		}
	}
	catalog := `SELECT group_concat(concat_ws(' ', table_name, index_name, non_unique, seq_in_index, column_name, index_type) ORDER BY 1 SEPARATOR '; ')
		FROM information_schema.STATISTICS WHERE table_schema = DATABASE()`
	if a, b := mytest.QueryVal[string](t, src, catalog), mytest.QueryVal[string](t, tgt, catalog); a != b {
		t.Errorf("indexes differ:\nsource %s\ntarget %s", a, b)
	}
	fks := `SELECT coalesce(group_concat(concat_ws(' ', constraint_name, table_name, referenced_table_name, delete_rule, update_rule) ORDER BY 1), '')
		FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE constraint_schema = DATABASE()`
	if a, b := mytest.QueryVal[string](t, src, fks), mytest.QueryVal[string](t, tgt, fks); a != b {
		t.Errorf("foreign keys differ:\nsource %s\ntarget %s", a, b)
	}
}

// A one-shot copy between two MariaDB servers with the binary, as a user runs it:
// check, start (killed after copying a table, then run again), the copy exact by
// the servers' own checksums, the indexes, foreign keys and view there, status, the
// commands that do not run on MySQL/MariaDB yet saying so, and finish leaving nothing.
func TestMySQLOneShotCopy(t *testing.T) {
	if !mytest.Installed() {
		t.Skip("MariaDB is not installed: make test installs it")
	}
	src, tgt := mytest.NewDB(t, mytest.Source(t)), mytest.NewDB(t, mytest.Target(t))
	src.Exec(t, mysqlSchema)
	dir := t.TempDir()
	control := "ctl_" + tgt.Name
	t.Cleanup(func() { _ = tgt.Server.Exec(context.Background(), "", "DROP DATABASE IF EXISTS `"+control+"`") })
	planFile := filepath.Join(dir, "cutover.yaml")
	if err := os.WriteFile(planFile, []byte(fmt.Sprintf("source: {url: '%s'}\ntarget: {url: '%s'}\ncdc: {enabled: false}\nfull_load: {parallel: 2}\ncontrol_schema: %s\n",
		src.URL(), tgt.URL(), control)), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run(t, dir, nil, "check", "-c", planFile); r.code != 0 || !strings.Contains(r.stdout, "MariaDB") {
		t.Fatalf("check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	killed := run(t, dir, []string{"CUTOVER_FAILPOINT=start:copied:" + src.Name + ".orders:kill"}, "start", "-c", planFile)
	if killed.code == 0 {
		t.Fatalf("the start that should have been killed after copying orders ended: %s%s", killed.stdout, killed.stderr)
	}
	r := run(t, dir, nil, "start", "-c", planFile)
	if r.code != 0 || !strings.Contains(r.stdout, "copy complete") {
		t.Fatalf("start again: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	sameMySQLTables(t, src, tgt, "customer", "orders", "tags")
	view := "SELECT concat(count(*), ' ', sum(total)) FROM big_orders"
	if a, b := mytest.QueryVal[string](t, src, view), mytest.QueryVal[string](t, tgt, view); a != b {
		t.Errorf("the view selects %s on the source, %s on the target", a, b)
	}
	if n := mytest.QueryVal[int64](t, tgt, "SELECT count(*) FROM `"+control+"`.table_stats WHERE state = 'loaded'"); n != 3 {
		t.Errorf("%d tables recorded as loaded, want 3", n)
	}
	if r := run(t, dir, nil, "start", "-c", planFile); r.code != 0 || !strings.Contains(r.stdout, "complete already") {
		t.Errorf("start after the copy: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, dir, nil, "status", "-c", planFile); r.code != 0 || !strings.Contains(r.stdout, "phase: loaded") || !strings.Contains(r.stdout, src.Name+".orders") {
		t.Errorf("status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, dir, nil, "switch", "-c", planFile); r.code != 2 || !strings.Contains(r.stderr, "does not run on MySQL/MariaDB yet") {
		t.Errorf("switch: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, dir, nil, "finish", "--yes", "-c", planFile); r.code != 0 {
		t.Fatalf("finish: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := mytest.QueryVal[int64](t, tgt, "SELECT count(*) FROM information_schema.SCHEMATA WHERE schema_name = ?", control); n != 0 {
		t.Errorf("finish left the control database %s", control)
	}
}
