package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cutover-dev/cutover/mytest"
	"github.com/cutover-dev/cutover/pgtest"
)

// Oracle's sakila, a schema cutover's authors did not write, from MariaDB into
// PostgreSQL with the binary: check refuses the GEOMETRY column (PostGIS is not
// supported) and names it; once the source's column is dropped, check is ready and
// lists sakila's views, triggers and routines as not carried; the load, then change
// data capture of updates (one changing a key that film's foreign key follows by ON
// UPDATE CASCADE, which MySQL does not log), and every table validated equal.
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
	if r.code != 1 || !strings.Contains(r.stdout, "column sakila.address.location") {
		t.Fatalf("check with the GEOMETRY column: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	src.Exec(t, "ALTER TABLE address DROP INDEX idx_location, DROP COLUMN location")
	r = run(t, dir, nil, "check")
	if r.code != 0 {
		t.Fatalf("check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"view sakila.film_list", "trigger sakila.ins_film", "procedure sakila.rewards_report",
		"special_features", "text[]", "release_year"} {
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
		UPDATE customer SET active = 0, email = NULL WHERE customer_id % 50 = 0`)
	// the last change applied (validate compares everything, the cascade included)
	n := mytest.QueryVal[int64](t, src, "SELECT count(*) FROM customer WHERE active = 0 AND email IS NULL")
	waitForTarget(t, tgt, l, fmt.Sprintf("SELECT count(*) = %d FROM sakila.customer WHERE active = 0 AND email IS NULL", n))
	if r := run(t, dir, nil, "validate"); r.code != 0 || !strings.Contains(r.stdout, "16 tables validated") || !strings.Contains(r.stdout, "16 equal") {
		t.Errorf("validate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
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
