package pgtest

import (
	"context"
	"os"
	"testing"

	"github.com/cutover-dev/cutover/internal/proc"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestSharedServersAndDatabases(t *testing.T) {
	src, tgt := Source(t), Target(t)
	if src == tgt || src.Port == tgt.Port {
		t.Fatal("source and target must be different servers")
	}
	a, b := NewDB(t, src), NewDB(t, src)
	if a.Name == b.Name {
		t.Fatal("databases must be fresh per call")
	}
	if lvl := QueryVal[string](t, a, "SHOW wal_level"); lvl != "logical" {
		t.Fatalf("wal_level = %s", lvl)
	}
	a.Exec(t, "CREATE TABLE x (id int primary key)")
	if n := QueryVal[int](t, b, "SELECT count(*) FROM pg_class WHERE relname = 'x'"); n != 0 {
		t.Fatal("databases share tables")
	}
}

func TestKillAndRestart(t *testing.T) {
	ctx := context.Background()
	s := StartServer(t, Options{Name: "crash", Settings: map[string]string{"wal_level": "replica"}})
	db := NewDB(t, s)
	db.Exec(t, "CREATE TABLE t (id int)")
	db.Exec(t, "INSERT INTO t VALUES (1)")
	if lvl := QueryVal[string](t, db, "SHOW wal_level"); lvl != "replica" {
		t.Fatalf("settings not applied: wal_level = %s", lvl)
	}
	pid := s.proc.Pid
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if proc.Exists(pid) {
		t.Fatal("postmaster survived Kill")
	}
	if _, err := s.Connect(ctx, db.Name); err == nil {
		t.Fatal("connected to a killed server")
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if n := QueryVal[int](t, db, "SELECT count(*) FROM t"); n != 1 {
		t.Fatalf("after crash recovery count = %d", n)
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if n := QueryVal[int](t, db, "SELECT count(*) FROM t"); n != 1 {
		t.Fatalf("after restart count = %d", n)
	}
}

func TestDestroyRemovesEverything(t *testing.T) {
	s, err := Start(context.Background(), Options{Name: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	pid, dir := s.proc.Pid, s.baseDir
	if err := s.Destroy(); err != nil {
		t.Fatal(err)
	}
	if proc.Exists(pid) {
		t.Fatal("server still running after Destroy")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("directory %s left behind", dir)
	}
}
