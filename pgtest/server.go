// Package pgtest starts throwaway PostgreSQL servers from the installed binaries,
// for tests and for `make demo`.
//
// Each server gets its own data directory (initdb into a temporary directory), a
// free port on 127.0.0.1 and wal_level=logical. When the caller runs as root the
// server runs as the postgres OS user. A server dies with the process that started
// it (a parent-death signal), and a later start sweeps what a killed run left, so
// no server outlives its tests.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/internal/pgbin"
	"github.com/cutover-dev/cutover/internal/proc"
	"github.com/jackc/pgx/v5"
)

// Password is the superuser password of every server this package starts.
const Password = "cutover-test-pw"

// Superuser is the name of the bootstrap superuser.
const Superuser = "postgres"

const dirPrefix = "cutover-pgtest-"

// Options configures a server.
type Options struct {
	// Name appears in the data directory and in messages ("source", "target").
	Name string
	// Settings are written to postgresql.conf after the defaults and override them.
	Settings map[string]string
}

// Server is one running (or stopped) PostgreSQL server.
type Server struct {
	Name    string
	Port    int
	BinDir  string
	baseDir string
	dataDir string
	logPath string
	cred    *syscall.Credential

	mu   sync.Mutex
	proc *os.Process
	done chan struct{} // closed when the postmaster exits
}

// defaultSettings suit tests: logical decoding on, fsync off (crash tests kill the
// process, not the machine, so the OS cache keeps what was written). Commits stay
// synchronous: a killed server must keep every commit it acknowledged.
var defaultSettings = map[string]string{
	"listen_addresses":          "'127.0.0.1'",
	"wal_level":                 "logical",
	"max_replication_slots":     "16",
	"max_wal_senders":           "16",
	"max_connections":           "100",
	"max_prepared_transactions": "10",
	"shared_buffers":            "64MB",
	"fsync":                     "off",
	"full_page_writes":          "off",
	"log_min_messages":          "warning",
	"log_line_prefix":           "'%m [%p] %q%u@%d '",
}

// BinDir finds the PostgreSQL server binaries (see pgbin.Dir).
func BinDir() (string, error) {
	d, err := pgbin.Dir("initdb")
	if err != nil {
		return "", errors.New("PostgreSQL server binaries (initdb, postgres) not found: run `make test`, which installs them " +
			"(as root: apt-get install postgresql), or set CUTOVER_PG_BINDIR to their directory")
	}
	return d, nil
}

// Start creates and starts a new server.
func Start(ctx context.Context, opts Options) (*Server, error) {
	sweepOnce.Do(sweepStale)
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	if opts.Name == "" {
		opts.Name = "pg"
	}
	s := &Server{Name: opts.Name, BinDir: bin}
	if err := s.prepareDirs(); err != nil {
		return nil, err
	}
	if err := s.initdb(ctx); err != nil {
		s.removeDirs()
		return nil, err
	}
	if err := s.pickPortAndStart(ctx, opts.Settings); err != nil {
		s.removeDirs()
		return nil, err
	}
	proc.Track(s)
	return s, nil
}

// prepareDirs makes the base directory, owned by the OS user the server runs as.
func (s *Server) prepareDirs() error {
	base, err := os.MkdirTemp("", dirPrefix+s.Name+"-")
	if err != nil {
		return fmt.Errorf("server %s: %w", s.Name, err)
	}
	s.baseDir = base
	s.dataDir = filepath.Join(base, "data")
	s.logPath = filepath.Join(base, "server.log")
	// The owner's pid lets a later run remove what a killed run left behind.
	if err := proc.WriteOwner(base); err != nil {
		return err
	}
	if err := os.Chmod(base, 0o755); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(Superuser)
	if err != nil {
		return fmt.Errorf("running as root, the server must run as the %q OS user, which does not exist: install the postgresql package (it creates the user) or run as another user", Superuser)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	return os.Chown(base, uid, gid)
}

func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(s.BinDir, name), args...)
	cmd.Dir = s.baseDir
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "PGTZ=UTC")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

func (s *Server) initdb(ctx context.Context) error {
	pwfile := filepath.Join(s.baseDir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(Password+"\n"), 0o644); err != nil {
		return err
	}
	if s.cred != nil {
		_ = os.Chown(pwfile, int(s.cred.Uid), int(s.cred.Gid))
	}
	defer os.Remove(pwfile)
	cmd := s.command(ctx, "initdb", "-D", s.dataDir, "-U", Superuser, "--pwfile", pwfile,
		"-E", "UTF8", "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("server %s: initdb: %w\n%s", s.Name, err, out)
	}
	return nil
}

func (s *Server) writeConfig(port int, extra map[string]string) error {
	settings := map[string]string{}
	for k, v := range defaultSettings {
		settings[k] = v
	}
	for k, v := range extra {
		settings[k] = v
	}
	settings["port"] = strconv.Itoa(port)
	settings["unix_socket_directories"] = "'" + s.baseDir + "'"
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("\n# written by pgtest\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, settings[k])
	}
	f, err := os.OpenFile(filepath.Join(s.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(b.String())
	return err
}

// pickPortAndStart starts the server on a free port, trying another one if a
// concurrent process took the port between the probe and the bind.
func (s *Server) pickPortAndStart(ctx context.Context, settings map[string]string) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var port int
		if port, err = proc.FreePort(); err != nil {
			return err
		}
		if err = s.writeConfig(port, settings); err != nil {
			return err
		}
		s.Port = port
		if err = s.Start(ctx); err == nil {
			return nil
		}
		if !strings.Contains(err.Error(), "Address already in use") {
			return err
		}
	}
	return err
}

// Start starts the server (again, after Stop or Kill) and waits until it accepts connections.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running() {
		return nil
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	logStart, _ := logf.Seek(0, 2)
	cmd := s.command(context.Background(), "postgres", "-D", s.dataDir)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so Kill reaches every backend; and SIGQUIT (immediate
	// shutdown) when this process dies, so no server outlives its tests.
	done, err := proc.Start(cmd, syscall.SIGQUIT)
	if err != nil {
		return fmt.Errorf("server %s: start postgres: %w", s.Name, err)
	}
	s.proc, s.done = cmd.Process, done
	if err := s.waitReady(ctx, done); err != nil {
		_ = syscall.Kill(-s.proc.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("server %s: %w\n%s", s.Name, err, s.logSince(logStart))
	}
	return nil
}

func (s *Server) running() bool { return !proc.Exited(s.done) }

// waitReady connects until the server answers, the postmaster exits, or a minute passes.
func (s *Server) waitReady(ctx context.Context, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	delay := 5 * time.Millisecond
	for {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgx.Connect(cctx, s.URL("postgres"))
		ccancel()
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-done:
			return errors.New("postgres exited during startup")
		case <-ctx.Done():
			return fmt.Errorf("not ready after a minute: %w", err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

func (s *Server) logSince(offset int64) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	return string(b[offset:])
}

// Stop shuts the server down cleanly (fast shutdown) and waits for it.
func (s *Server) Stop() error { return s.signalAndWait(syscall.SIGINT, 2*time.Minute) }

// Kill kills the postmaster and every backend with SIGKILL, as a crash would;
// the next Start runs crash recovery.
func (s *Server) Kill() error { return s.signalAndWait(syscall.SIGKILL, time.Minute) }

// Restart stops the server cleanly and starts it again on the same port.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.Start(ctx)
}

func (s *Server) signalAndWait(sig syscall.Signal, timeout time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running() {
		return nil
	}
	target := s.proc.Pid
	var children []int
	if sig == syscall.SIGKILL {
		// Backends are process group leaders of their own (PostgreSQL calls setsid), so
		// the group kill misses them: with the postmaster stopped (it forks no more),
		// they are found while still its children, and killed with it.
		_ = syscall.Kill(s.proc.Pid, syscall.SIGSTOP)
		children = proc.Children(s.proc.Pid)
		target = -target // the whole process group
	}
	for _, pid := range children {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if err := syscall.Kill(target, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("server %s: signal %v: %w", s.Name, sig, err)
	}
	select {
	case <-s.done:
	case <-time.After(timeout):
		_ = syscall.Kill(-s.proc.Pid, syscall.SIGKILL)
		<-s.done
		return fmt.Errorf("server %s did not stop within %v after %v; killed", s.Name, timeout, sig)
	}
	if sig == syscall.SIGKILL {
		// A restart must wait until every backend is gone: while one lives, it holds the
		// shared memory and the new postmaster refuses to start.
		_ = syscall.Kill(-s.proc.Pid, syscall.SIGKILL)
		deadline := time.Now().Add(timeout)
		for _, pid := range children {
			for proc.Alive(pid) && time.Now().Before(deadline) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				time.Sleep(5 * time.Millisecond) // polling the kernel for the process's end; there is no event to wait on
			}
		}
	}
	return nil
}

// Destroy stops the server and removes its files.
func (s *Server) Destroy() error {
	err := s.Stop()
	if err != nil {
		_ = s.Kill()
	}
	proc.Untrack(s)
	s.removeDirs()
	return err
}

func (s *Server) removeDirs() {
	if s.baseDir != "" {
		_ = os.RemoveAll(s.baseDir)
	}
}

// URL returns a superuser connection URL for database db, password included.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", Superuser, Password, s.Port, db)
}

// Connect opens a superuser connection to database db.
func (s *Server) Connect(ctx context.Context, db string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, s.URL(db))
}

// Exec runs SQL as the superuser in database db.
func (s *Server) Exec(ctx context.Context, db, sql string, args ...any) error {
	conn, err := s.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("server %s, database %s: %w", s.Name, db, err)
	}
	return nil
}

// Psql runs psql as the superuser on database db with ON_ERROR_STOP, passing args through.
func (s *Server) Psql(ctx context.Context, db string, args ...string) ([]byte, error) {
	all := append([]string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", Superuser, "-d", db}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(s.BinDir, "psql"), all...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+Password, "PGSSLMODE=disable")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("server %s: psql %s: %w\n%s", s.Name, strings.Join(args, " "), err, out)
	}
	return out, nil
}

// StopAll destroys every server this process started.
func StopAll() { proc.DestroyAll() }

var sweepOnce sync.Once

// sweepStale removes the directories (and kills the servers, should any still run)
// of earlier runs whose owning process is gone.
func sweepStale() {
	proc.SweepStale(dirPrefix, func(dir string) { proc.KillIf(filepath.Join(dir, "data", "postmaster.pid"), "postgres") })
}
