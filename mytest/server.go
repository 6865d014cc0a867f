// Package mytest starts throwaway MariaDB (or MySQL) servers from the installed
// binaries, for tests and for `make demo`.
//
// Each server gets its own data directory (mariadb-install-db into a temporary
// directory), a free port on 127.0.0.1, a server_id of its own and the binary log in
// the form change capture reads (ROW format, FULL row image and metadata, GTIDs
// strict). When the caller runs as root the server runs as the mysql OS user. A
// server dies with the process that started it, and a later start sweeps what a
// killed run left, so no server outlives its tests.
package mytest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/internal/proc"
	"github.com/go-sql-driver/mysql"
)

// Password is the password of the root account every server this package starts has
// on 127.0.0.1.
const Password = "cutover-test-pw"

// Superuser is the administrative account.
const Superuser = "root"

const dirPrefix = "cutover-mytest-"

// Options configures a server.
type Options struct {
	// Name appears in the data directory and in messages ("source", "target").
	Name string
	// Settings are server options (without the leading --) after the defaults,
	// overriding them: {"binlog_format": "STATEMENT"}; the value "" leaves one out.
	Settings map[string]string
}

// Server is one running (or stopped) server.
type Server struct {
	Name     string
	Port     int
	ServerID int
	Binary   string // the server's executable
	baseDir  string
	dataDir  string
	logPath  string
	settings map[string]string
	cred     *syscall.Credential

	mu   sync.Mutex
	proc *os.Process
	done chan struct{} // closed when the server exits
}

// defaultSettings give the binary log change capture needs; durability is the OS
// cache's (crash tests kill the process, not the machine), and commits are written to
// it before they are acknowledged.
var defaultSettings = map[string]string{
	"bind-address":                   "127.0.0.1",
	"log-bin":                        "binlog",
	"binlog-format":                  "ROW",
	"binlog-row-image":               "FULL",
	"binlog-row-metadata":            "FULL",
	"gtid-strict-mode":               "ON",
	"log-slave-updates":              "ON",
	"max-connections":                "200",
	"innodb-buffer-pool-size":        "128M",
	"innodb-log-file-size":           "64M",
	"innodb-flush-log-at-trx-commit": "2",
	"sync-binlog":                    "0",
	"skip-name-resolve":              "ON",
	"character-set-server":           "utf8mb4",
	"collation-server":               "utf8mb4_general_ci",
	"default-time-zone":              "+00:00",
}

// serverIDs gives each server of the process its own server_id; the pid keeps two
// test processes apart.
var serverIDs atomic.Int64

// Binaries finds the server and its install script.
func Binaries() (server, install string, err error) {
	for _, pair := range [][2]string{{"mariadbd", "mariadb-install-db"}, {"mysqld", "mysql_install_db"}} {
		s, e1 := exec.LookPath(pair[0])
		if e1 != nil {
			if _, e := os.Stat("/usr/sbin/" + pair[0]); e == nil {
				s, e1 = "/usr/sbin/"+pair[0], nil
			}
		}
		i, e2 := exec.LookPath(pair[1])
		if e1 == nil && e2 == nil {
			return s, i, nil
		}
	}
	return "", "", errors.New("MariaDB server binaries (mariadbd, mariadb-install-db) not found: run `make test`, which installs them " +
		"(as root: apt-get install mariadb-server)")
}

// Installed reports whether the server binaries are installed.
func Installed() bool { _, _, err := Binaries(); return err == nil }

// Start creates and starts a new server.
func Start(ctx context.Context, opts Options) (*Server, error) {
	sweepOnce.Do(sweepStale)
	bin, install, err := Binaries()
	if err != nil {
		return nil, err
	}
	if opts.Name == "" {
		opts.Name = "mariadb"
	}
	s := &Server{Name: opts.Name, Binary: bin, ServerID: int(os.Getpid()%10000)*100 + int(serverIDs.Add(1)%100) + 1}
	s.settings = map[string]string{}
	for k, v := range defaultSettings {
		s.settings[k] = v
	}
	for k, v := range opts.Settings {
		s.settings[strings.ReplaceAll(k, "_", "-")] = v
	}
	if err := s.prepareDirs(); err != nil {
		return nil, err
	}
	if err := s.installDB(ctx, install); err != nil {
		s.removeDirs()
		return nil, err
	}
	if err := s.pickPortAndStart(ctx); err != nil {
		s.removeDirs()
		return nil, err
	}
	if err := s.bootstrap(ctx); err != nil {
		_ = s.Destroy()
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
	if err := proc.WriteOwner(base); err != nil {
		return err
	}
	if err := os.Chmod(base, 0o755); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("mysql")
	if err != nil {
		return errors.New("running as root, the server must run as the mysql OS user, which does not exist: install the mariadb-server package (it creates the user) or run as another user")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	return os.Chown(base, uid, gid)
}

func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = s.baseDir
	cmd.Env = append(os.Environ(), "TZ=UTC")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

func (s *Server) installDB(ctx context.Context, install string) error {
	cmd := s.command(ctx, install, "--no-defaults", "--datadir="+s.dataDir, "--auth-root-authentication-method=normal",
		"--skip-test-db", "--skip-name-resolve")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("server %s: %s: %w\n%s", s.Name, filepath.Base(install), err, out)
	}
	return nil
}

// socket is the server's Unix socket, where root connects before it has a password.
func (s *Server) socket() string { return filepath.Join(s.baseDir, "mysql.sock") }

// args are the server's command line.
func (s *Server) args() []string {
	args := []string{"--no-defaults", "--datadir=" + s.dataDir, "--port=" + strconv.Itoa(s.Port), "--socket=" + s.socket(),
		"--pid-file=" + filepath.Join(s.baseDir, "server.pid"), "--log-error=" + s.logPath,
		// its temporary tables in its own directory: a sweep of /tmp by another
		// process deleted one under a running query
		"--tmpdir=" + s.baseDir,
		"--server-id=" + strconv.Itoa(s.ServerID)}
	keys := make([]string, 0, len(s.settings))
	for k := range s.settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if v := s.settings[k]; v != "" {
			args = append(args, "--"+k+"="+v)
		}
	}
	return args
}

// pickPortAndStart starts the server on a free port, trying another one if a
// concurrent process took the port between the probe and the bind.
func (s *Server) pickPortAndStart(ctx context.Context) error {
	var err error
	for range 5 {
		if s.Port, err = proc.FreePort(); err != nil {
			return err
		}
		if err = s.Start(ctx); err == nil {
			return nil
		}
		if !strings.Contains(err.Error(), "Address already in use") && !strings.Contains(err.Error(), "Do you already have another") {
			return err
		}
	}
	return err
}

// bootstrap gives root a password on 127.0.0.1, through the socket.
func (s *Server) bootstrap(ctx context.Context) error {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = Superuser, "unix", s.socket()
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	for _, q := range []string{
		"CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'", // mariadb-install-db --skip-name-resolve makes it, without a password
		"ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '" + Password + "'",
		"GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("server %s: %s: %w", s.Name, q, err)
		}
	}
	return nil
}

// Start starts the server (again, after Stop or Kill) and waits until it accepts connections.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !proc.Exited(s.done) {
		return nil
	}
	logStart := int64(0)
	if fi, err := os.Stat(s.logPath); err == nil {
		logStart = fi.Size()
	}
	args := s.args()
	if s.cred != nil {
		args = append(args, "--user=mysql")
	}
	cmd := exec.Command(s.Binary, args...)
	cmd.Dir = s.baseDir
	cmd.Env = append(os.Environ(), "TZ=UTC")
	// SIGKILL when this process dies: no server outlives its tests.
	done, err := proc.Start(cmd, syscall.SIGKILL)
	if err != nil {
		return fmt.Errorf("server %s: start %s: %w", s.Name, filepath.Base(s.Binary), err)
	}
	s.proc, s.done = cmd.Process, done
	if err := s.waitReady(ctx); err != nil {
		_ = syscall.Kill(-s.proc.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("server %s: %w\n%s", s.Name, err, s.logSince(logStart))
	}
	return nil
}

// waitReady connects through the socket (root has no password there) until the
// server answers, it exits, or a minute passes.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.Timeout = Superuser, "unix", s.socket(), 5*time.Second
	delay := 5 * time.Millisecond
	for {
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err == nil {
			err = db.PingContext(ctx)
			db.Close()
		}
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return errors.New("the server exited during startup")
		case <-ctx.Done():
			return fmt.Errorf("not ready after a minute: %w", err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !proc.Exited(s.done)
}

func (s *Server) logSince(offset int64) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	return string(b[offset:])
}

// CPU is the CPU time the running server has used so far (0 when it is not
// running): for benchmarks.
func (s *Server) CPU() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return proc.CPU(s.proc.Pid)
}

// Stop shuts the server down cleanly and waits for it.
func (s *Server) Stop() error { return s.signalAndWait(syscall.SIGTERM, 2*time.Minute) }

// Kill kills the server with SIGKILL, as a crash would; the next Start recovers.
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
	if proc.Exited(s.done) {
		return nil
	}
	if err := syscall.Kill(-s.proc.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("server %s: signal %v: %w", s.Name, sig, err)
	}
	select {
	case <-s.done:
		return nil
	case <-time.After(timeout):
		_ = syscall.Kill(-s.proc.Pid, syscall.SIGKILL)
		<-s.done
		return fmt.Errorf("server %s did not stop within %v after %v; killed", s.Name, timeout, sig)
	}
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

// URL returns root's connection URL for database db, password included.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("mysql://%s:%s@127.0.0.1:%d/%s", Superuser, Password, s.Port, db)
}

// DSN is root's data source name for go-sql-driver/mysql, for database db.
func (s *Server) DSN(db string) string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = Superuser, Password, "tcp", fmt.Sprintf("127.0.0.1:%d", s.Port), db
	cfg.MultiStatements = true
	return cfg.FormatDSN()
}

// Open opens a pool of root connections to database db.
func (s *Server) Open(db string) (*sql.DB, error) { return sql.Open("mysql", s.DSN(db)) }

// Exec runs SQL (several statements allowed) as root in database db.
func (s *Server) Exec(ctx context.Context, db, query string, args ...any) error {
	pool, err := s.Open(db)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := pool.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("server %s, database %s: %w", s.Name, db, err)
	}
	return nil
}

// StopAll destroys every server this process started.
func StopAll() { proc.DestroyAll() }

var sweepOnce sync.Once

// sweepStale removes the directories (and kills the servers, should any still run)
// of earlier runs whose owning process is gone.
func sweepStale() {
	proc.SweepStale(dirPrefix, func(dir string) { proc.KillIf(filepath.Join(dir, "server.pid"), "mariadbd") })
}
