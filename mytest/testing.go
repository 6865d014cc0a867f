package mytest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Main runs a test package's tests and then destroys every server they started.
// Use it from TestMain: func TestMain(m *testing.M) { os.Exit(mytest.Main(m)) }
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

// Source returns the package's shared source server.
func Source(t testing.TB) *Server { return sharedServer(t, "source") }

// Target returns the package's shared target server.
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
	if err := s.Exec(ctx, "", "CREATE DATABASE `"+name+"`"); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	db := &DB{Server: s, Name: name}
	t.Cleanup(func() {
		if !s.running() {
			return
		}
		if err := s.Exec(ctx, "", "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return db
}

// URL is root's URL for the database.
func (d *DB) URL() string { return d.Server.URL(d.Name) }

// Open opens a pool of root connections to the database, closed when the test ends.
func (d *DB) Open(t testing.TB) *sql.DB {
	t.Helper()
	pool, err := d.Server.Open(d.Name)
	if err != nil {
		t.Fatalf("open %s: %v", d.Name, err)
	}
	t.Cleanup(func() { pool.Close() })
	return pool
}

// Exec runs SQL (several statements allowed) as root and fails the test on error.
func (d *DB) Exec(t testing.TB, query string, args ...any) {
	t.Helper()
	if err := d.Server.Exec(context.Background(), d.Name, query, args...); err != nil {
		t.Fatal(err)
	}
}

// QueryVal runs a query returning one value and scans it into a T.
func QueryVal[T any](t testing.TB, d *DB, query string, args ...any) T {
	t.Helper()
	var v T
	pool, err := d.Server.Open(d.Name)
	if err != nil {
		t.Fatalf("open %s: %v", d.Name, err)
	}
	defer pool.Close()
	if err := pool.QueryRowContext(context.Background(), query, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}
