package mytest

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/internal/proc"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// A server has the binary log change capture reads, a server_id of its own, and
// databases apart.
func TestServerForChangeCapture(t *testing.T) {
	src, tgt := Source(t), Target(t)
	if src.ServerID == tgt.ServerID {
		t.Fatalf("two servers share server_id %d", src.ServerID)
	}
	a, b := NewDB(t, src), NewDB(t, src)
	a.Exec(t, "CREATE TABLE t (id int PRIMARY KEY)")
	if n := QueryVal[int](t, b, "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE()"); n != 0 {
		t.Fatal("databases share tables")
	}
	for setting, want := range map[string]string{
		"@@log_bin": "1", "@@binlog_format": "ROW", "@@binlog_row_image": "FULL", "@@binlog_row_metadata": "FULL",
		"@@gtid_strict_mode": "1", "@@time_zone": "+00:00", "@@server_id = " + itoa(src.ServerID): "1",
	} {
		if got := QueryVal[string](t, a, "SELECT "+setting); got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
	if v := QueryVal[string](t, a, "SELECT VERSION()"); !strings.Contains(v, "MariaDB") && !strings.HasPrefix(v, "8.") {
		t.Errorf("version %q", v)
	}
}

// A killed server loses no committed row, and a restart keeps them too.
func TestKillAndRestart(t *testing.T) {
	ctx := context.Background()
	s := StartServer(t, Options{Name: "crash", Settings: map[string]string{"binlog_row_metadata": "MINIMAL"}})
	db := NewDB(t, s)
	db.Exec(t, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
	if v := QueryVal[string](t, db, "SELECT @@binlog_row_metadata"); v != "MINIMAL" {
		t.Fatalf("settings not applied: binlog_row_metadata = %s", v)
	}
	pid := s.proc.Pid
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if proc.Exists(pid) {
		t.Fatal("the server survived Kill")
	}
	if err := s.Exec(ctx, db.Name, "SELECT 1"); err == nil {
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

func itoa(n int) string { return strconv.Itoa(n) }

// LoadSakila loads Oracle's sakila as MySQL has it: its 16 tables and their rows, the
// views, triggers and routines, and address.location (GEOMETRY, with its SPATIAL index
// and the data file's points), which MariaDB skips in the scripts.
func TestLoadSakila(t *testing.T) {
	s := StartServer(t, Options{Name: "sakila"})
	if err := LoadSakila(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	db := &DB{Server: s, Name: "sakila"}
	for q, want := range map[string]int64{
		"SELECT count(*) FROM information_schema.TABLES WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'": 16,
		"SELECT count(*) FROM information_schema.VIEWS WHERE table_schema = DATABASE()":                                7,
		"SELECT count(*) FROM information_schema.TRIGGERS WHERE trigger_schema = DATABASE()":                           6,
		"SELECT count(*) FROM information_schema.ROUTINES WHERE routine_schema = DATABASE()":                           6,
		"SELECT count(*) FROM rental":                                                                                   16044,
		"SELECT count(*) FROM address WHERE ST_GeometryType(location) = 'POINT'":                                        603,
		"SELECT count(*) FROM address WHERE last_update > '2015-01-01'":                                                 0,
		"SELECT count(*) FROM information_schema.STATISTICS WHERE table_schema = DATABASE() AND index_type = 'SPATIAL'": 1,
	} {
		if got := QueryVal[int64](t, db, q); got != want {
			t.Errorf("%s: %d, want %d", q, got, want)
		}
	}
}
