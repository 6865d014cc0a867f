package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/cutover-dev/cutover/mytest"
	"github.com/cutover-dev/cutover/pgtest"
)

// Oracle's sakila, a schema cutover's authors did not write, from MariaDB into
// PostgreSQL with the binary: check refuses the GEOMETRY column while the target has
// no PostGIS, and names it; once the target has the extension, check is ready, maps
// the column to geometry and its SPATIAL key to a GiST index, and lists sakila's views,
// triggers and routines as not carried; the load, then change data capture of updates
// (one changing a key that film's foreign key follows by ON UPDATE CASCADE, which
// MySQL does not log; points moved, in another SRID too), every table validated equal,
// and every address's point compared by each server's own WKB.
func TestSakilaToPostgres(t *testing.T) {
	if !mytest.Installed() {
		t.Skip("MariaDB is not installed: make test installs it")
	}
	s := mytest.StartServer(t, mytest.Options{Name: "sakila"})
	if err := mytest.LoadSakila(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	src := &mytest.DB{Server: s, Name: "sakila"}
	tgt := pgtest.NewDB(t, pgtest.Target(t))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(fmt.Sprintf("source: {url: '%s'}\ntarget: {url: '%s'}\nfull_load: {parallel: 2}\napi: {listen: ''}\n",
		src.URL(), tgt.URL())), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, dir, nil, "check")
	if r.code != 1 || !strings.Contains(r.stdout, "column sakila.address.location") || !strings.Contains(r.stdout, "CREATE EXTENSION postgis") {
		t.Fatalf("check with the GEOMETRY column: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	tgt.Exec(t, "CREATE EXTENSION postgis")
	r = run(t, dir, nil, "check")
	// The views whose SQL PostgreSQL takes in its quoting are carried; the others
	// (MySQL's GROUP_CONCAT ... SEPARATOR, IF()) are named with PostgreSQL's error.
	for _, want := range []string{`INFO +view sakila.sales_by_film_category\s+carried`, `INFO +view sakila.staff_list\s+carried`,
		`WARNING +view sakila.film_list\s+not carried: PostgreSQL refuses its SQL \(ERROR: syntax error at or near "separator"`,
		`WARNING +view sakila.customer_list\s+not carried: PostgreSQL refuses its SQL \(ERROR: function if\(`} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("check does not say %s:\n%s", want, r.stdout)
		}
	}
	if r.code != 0 {
		t.Fatalf("check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"view sakila.film_list", "trigger sakila.ins_film", "procedure sakila.rewards_report",
		"special_features", "text[]", "release_year", "GiST index"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("check does not mention %q:\n%s", want, r.stdout)
		}
	}
	l := startLive(t, dir, false, "start")
	t.Cleanup(func() {
		if l.cmd.ProcessState == nil {
			_ = l.cmd.Process.Signal(syscall.SIGTERM)
			l.wait(t)
		}
	})
	l.waitFor(t, "change data capture", func(out string) bool { return strings.Contains(out, "change data capture from the source") })
	src.Exec(t, `UPDATE language SET language_id = 100 WHERE language_id = 1;
		UPDATE film SET rental_rate = rental_rate + 1, special_features = 'Trailers,Deleted Scenes' WHERE film_id <= 10;
		INSERT INTO actor (first_name, last_name) VALUES ('ZOË', 'ÅSTRÖM');
		DELETE FROM film_actor WHERE film_id = 1;
		UPDATE customer SET active = 0, email = NULL WHERE customer_id % 50 = 0;
		UPDATE address SET location = ST_GeomFromText('POINT(-0.5 1e300)') WHERE address_id = 1;
		UPDATE address SET location = ST_GeomFromText('POINT(2.2945 48.8584)', 4326) WHERE address_id = 2;
		INSERT INTO address (address, district, city_id, phone, location) VALUES ('1 Rue', 'Paris', 1, '', ST_GeomFromText('POINT(2.35 48.85)', 4326));
		UPDATE customer SET active = 0, email = NULL WHERE customer_id % 50 = 0`)
	// the last change applied (validate compares everything, the cascade included)
	n := mytest.QueryVal[int64](t, src, "SELECT count(*) FROM customer WHERE active = 0 AND email IS NULL")
	waitForTarget(t, tgt, l, fmt.Sprintf("SELECT count(*) = %d FROM sakila.customer WHERE active = 0 AND email IS NULL", n))
	if r := run(t, dir, nil, "validate"); r.code != 0 || !strings.Contains(r.stdout, "16 tables validated") || !strings.Contains(r.stdout, "16 equal") {
		t.Errorf("validate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Every point, by each server's own functions: its SRID and its WKB.
	my := src.Open(t)
	// A carried view reads on PostgreSQL what it reads on MariaDB.
	sameRows(t, "sales_by_film_category", my, `SELECT category, total_sales FROM sales_by_film_category ORDER BY category`,
		func() [][]string {
			return pgRows(t, tgt.Conn(t), `SELECT category, total_sales::text FROM sakila.sales_by_film_category ORDER BY category COLLATE "C"`)
		}, nil)
	sameRows(t, "address", my, `SELECT address_id, concat(ST_SRID(location), ':', lower(hex(ST_AsWKB(location)))) FROM address ORDER BY address_id`,
		func() [][]string {
			return pgRows(t, tgt.Conn(t), `SELECT address_id::text, ST_SRID(location) || ':' || encode(ST_AsBinary(location, 'NDR'), 'hex') FROM sakila.address ORDER BY address.address_id`)
		}, nil)
	if got := pgtest.QueryVal[string](t, tgt, "SELECT ST_AsText(location) || ' ' || ST_SRID(location) FROM sakila.address WHERE address_id = 2"); got != "POINT(2.2945 48.8584) 4326" {
		t.Errorf("address 2's location on the target: %s", got)
	}
	if got := pgtest.QueryVal[string](t, tgt, "SELECT indexdef FROM pg_indexes WHERE schemaname = 'sakila' AND indexname = 'idx_location'"); !strings.Contains(got, "USING gist (location)") {
		t.Errorf("the SPATIAL key on the target: %s", got)
	}
	if got := pgtest.QueryVal[int64](t, tgt, "SELECT count(*) FROM sakila.film WHERE language_id = 100"); got != 1000 {
		t.Errorf("%d films follow their language's new key on the target, want 1000 (ON UPDATE CASCADE)", got)
	}
	if err := l.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, out := l.wait(t); code != 0 {
		t.Fatalf("SIGTERM: exit %d\n%s", code, out)
	}
	if r := run(t, dir, nil, "finish", "--yes"); r.code != 0 {
		t.Errorf("finish: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
