package pgtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Main runs a test package's tests and then destroys every server they started.
// Use it from TestMain: func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	StopAll()
	return code
}

// shared servers, started on first use and kept for the whole test package.
var (
	sharedMu sync.Mutex
	shared   = map[string]*Server{}
)

func sharedServer(t testing.TB, name string) *Server {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if s := shared[name]; s != nil {
		return s
	}
	s, err := Start(context.Background(), Options{Name: name})
	if err != nil {
		t.Fatalf("start the %s server: %v", name, err)
	}
	shared[name] = s
	return s
}

// CronInstalled reports whether pg_cron is installed for the server binaries.
func CronInstalled() bool {
	dir, err := BinDir()
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(dir, "..", "lib", "pg_cron.so"))
	return err == nil
}

// CronServer returns one of the package's shared servers with pg_cron preloaded (its
// jobs live in the postgres database). A switch blocks every login role of a server:
// tests that switch use these servers, and run one at a time (not t.Parallel).
func CronServer(t testing.TB, name string) *Server {
	t.Helper()
	if !CronInstalled() {
		t.Fatal("pg_cron is not installed: run make test (as root it installs postgresql-NN-cron), or apt-get install postgresql-15-cron")
	}
	sharedMu.Lock()
	defer sharedMu.Unlock()
	key := "cron-" + name
	if s := shared[key]; s != nil {
		return s
	}
	ctx := context.Background()
	s, err := Start(ctx, Options{Name: key, Settings: map[string]string{"shared_preload_libraries": "'pg_cron'", "cron.database_name": "'postgres'"}})
	if err == nil {
		err = s.Exec(ctx, "postgres", "CREATE EXTENSION pg_cron")
	}
	if err != nil {
		t.Fatalf("start the %s server with pg_cron: %v", name, err)
	}
	shared[key] = s
	return s
}

// Source returns the package's shared source server (wal_level=logical).
func Source(t testing.TB) *Server { return sharedServer(t, "source") }

// Target returns the package's shared target server (wal_level=logical).
func Target(t testing.TB) *Server { return sharedServer(t, "target") }

// StartServer starts a server of the test's own, destroyed when the test ends.
// Use it for settings the shared servers must not have, or to restart or kill freely.
func StartServer(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("start server %s: %v", opts.Name, err)
	}
	t.Cleanup(func() {
		if err := s.Destroy(); err != nil {
			t.Errorf("destroy server %s: %v", s.Name, err)
		}
	})
	return s
}

// DB is a fresh database on a server, dropped when the test ends.
type DB struct {
	Server *Server
	Name   string
}

var dbSeq atomic.Int64

var nonIdent = regexp.MustCompile(`[^a-z0-9_]+`)

// NewDB creates a fresh, empty database for the test on server s.
func NewDB(t testing.TB, s *Server) *DB {
	t.Helper()
	name := nonIdent.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	name = fmt.Sprintf("t%d_%d_%s", os.Getpid()%10000, dbSeq.Add(1), name)
	ctx := context.Background()
	if err := s.Exec(ctx, "postgres", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	db := &DB{Server: s, Name: name}
	t.Cleanup(func() {
		if !s.running() {
			return
		}
		if err := s.Exec(ctx, "postgres", "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return db
}

// URL is a superuser URL for the database.
func (d *DB) URL() string { return d.Server.URL(d.Name) }

// URLAs is a URL for the database as role user with password pw ("" for none).
func (d *DB) URLAs(user, pw string) string {
	if pw == "" {
		return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", user, d.Server.Port, d.Name)
	}
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", user, pw, d.Server.Port, d.Name)
}

// Conn opens a superuser connection, closed when the test ends.
func (d *DB) Conn(t testing.TB) *pgx.Conn {
	t.Helper()
	conn, err := d.Server.Connect(context.Background(), d.Name)
	if err != nil {
		t.Fatalf("connect to %s: %v", d.Name, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Exec runs SQL as the superuser and fails the test on error.
func (d *DB) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if err := d.Server.Exec(context.Background(), d.Name, sql, args...); err != nil {
		t.Fatal(err)
	}
}

// QueryVal runs a query returning one value and scans it into a T.
func QueryVal[T any](t testing.TB, d *DB, sql string, args ...any) T {
	t.Helper()
	var v T
	ctx := context.Background()
	conn, err := d.Server.Connect(ctx, d.Name)
	if err != nil {
		t.Fatalf("connect to %s: %v", d.Name, err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// NewRole creates a login role with a password, dropped (with what it owns) when the test ends.
// Roles are cluster-wide, so the name is made unique per test.
func NewRole(t testing.TB, s *Server, attrs string) (name, password string) {
	t.Helper()
	name = fmt.Sprintf("r%d_%d", os.Getpid()%10000, dbSeq.Add(1))
	password = "pw-" + name
	ctx := context.Background()
	if err := s.Exec(ctx, "postgres", fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s' %s", name, password, attrs)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !s.running() {
			return
		}
		// A role owning objects in a test database goes when that database is dropped;
		// this runs after the database cleanups (cleanups run last-in first-out) only if
		// the role was created first, so drop what it owns wherever it is left.
		_ = s.Exec(ctx, "postgres", "DROP OWNED BY "+name)
		_ = s.Exec(ctx, "postgres", "DROP ROLE IF EXISTS "+name)
	})
	return name, password
}
