package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/pgtest"
)

// A one-shot copy needs no logical decoding at all: a source at wal_level = replica,
// with a keyless table, is checked, copied (cutover start exits 0 without going on into
// CDC), shown as a copy, refused a switch, and finished.
func TestOneShotCopyCommands(t *testing.T) {
	s := pgtest.StartServer(t, pgtest.Options{Name: "copy-replica", Settings: map[string]string{"wal_level": "replica"}})
	src, tgt := pgtest.NewDB(t, s), pgtest.NewDB(t, pgtest.Target(t))
	src.Exec(t, `CREATE TABLE log (line text); INSERT INTO log SELECT 'line ' || g FROM generate_series(1, 1000) g;
		CREATE TABLE t (id serial PRIMARY KEY, v text); INSERT INTO t (v) SELECT 'v' || g FROM generate_series(1, 100) g`)
	dir := t.TempDir()
	plan := fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\napi: {listen: \"\"}\ncdc: {enabled: false}\nvalidation: {after_load: true}\n", src.URL(), tgt.URL())
	if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run(t, dir, nil, "check"); r.code != 0 || strings.Contains(r.stdout, "wal_level is replica") {
		t.Fatalf("check: %+v", r)
	}
	r := run(t, dir, nil, "start")
	if r.code != 0 || !strings.Contains(r.stdout, "copy complete") || !strings.Contains(r.stdout, "validation: 2 tables equal") {
		t.Fatalf("start: %+v", r)
	}
	if got := pgtest.QueryVal[string](t, tgt, "SELECT count(*) || ' ' || (SELECT last_value FROM t_id_seq) FROM log"); got != "1000 100" {
		t.Errorf("target: %s rows and sequence value, want 1000 100", got)
	}
	if r := run(t, dir, nil, "status"); r.code != 0 || !strings.Contains(r.stdout, "a one-shot copy (cdc.enabled: false), complete") {
		t.Errorf("status: %+v", r)
	}
	if r := run(t, dir, nil, "start"); r.code != 0 || !strings.Contains(r.stdout, "the copy is complete already") {
		t.Errorf("start again: %+v", r)
	}
	if r := run(t, dir, nil, "switch", "--yes"); r.code == 0 || !strings.Contains(r.stderr, "nothing to switch") {
		t.Errorf("switch: %+v", r)
	}
	if r := run(t, dir, nil, "finish", "--yes"); r.code != 0 || !strings.Contains(r.stdout, "dropped the control schema cutover") {
		t.Errorf("finish: %+v", r)
	}
	if n := pgtest.QueryVal[int64](t, src, "SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_namespace WHERE nspname = 'cutover')"); n != 0 {
		t.Errorf("%d slots, publications or control schemas left on the source", n)
	}
}
