package mysql

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"
)

// Position is where the binary log stood at a snapshot: the file and the offset of
// the next event, and the GTID state when the server has one (MariaDB: the per-domain
// list of gtid_binlog_pos; MySQL: the gtid_executed set).
type Position struct {
	MariaDB bool
	File    string
	Offset  uint64
	GTID    string
}

// String is the position as the control state records it: the GTID state when there
// is one, with the file and offset after it for people.
func (p Position) String() string {
	if p.File == "" {
		return "none (no binary log position: a one-shot copy)"
	}
	if p.GTID != "" {
		return fmt.Sprintf("%s (%s:%d)", p.GTID, p.File, p.Offset)
	}
	return fmt.Sprintf("%s:%d", p.File, p.Offset)
}

// The ways a snapshot is aligned with the binary log, from the one that locks least
// to the one that needs fewest privileges. Each is tried in turn.
const (
	// ByGlobalLock: FLUSH TABLES WITH READ LOCK (the RELOAD privilege), held while
	// the read views open. Writes wait for milliseconds.
	ByGlobalLock = "FLUSH TABLES WITH READ LOCK"
	// ByTableLocks: LOCK TABLES ... READ on the migrated tables (the LOCK TABLES
	// privilege, as on Amazon RDS where the global lock is denied).
	ByTableLocks = "LOCK TABLES"
	// BySnapshotPosition: MariaDB's binlog_snapshot_file and _position, which each
	// read view reports for itself: no lock; the views are opened until they all
	// report one position.
	BySnapshotPosition = "binlog_snapshot_position"
	// ByOneView: a copy that needs no position (no change capture follows) and may
	// take no lock reads in one read view, consistent by itself, with one worker.
	ByOneView = "one read view"
)

// SnapshotOptions choose how a snapshot is taken.
type SnapshotOptions struct {
	// Tables are the migrated tables, quoted and qualified: what ByTableLocks locks.
	Tables []string
	// Workers is the number of read views to open.
	Workers int
	// Methods, when set, are the only ones tried (tests); the default is every
	// method, in the order above.
	Methods []string
	// LockWait bounds how long a lock is waited for (default 10 s): a lock request
	// that waits behind a long statement holds every writer behind it.
	LockWait time.Duration
	// KeepAlive is how often idle read views are pinged so that the server does not
	// end them (default half of the session's wait_timeout, at most 30 s).
	KeepAlive time.Duration
	// WithoutPosition: a one-shot copy, which needs the views consistent with each
	// other and no binary log position (the source may have no binary log).
	WithoutPosition bool
}

// Snapshot is a set of read views (REPEATABLE READ transactions, each on its own
// pinned connection) that see the database as it was at Pos. Workers take a view
// with Acquire and give it back with Release; the views waiting are kept alive.
type Snapshot struct {
	Pos    Position
	Method string
	// Held is how long writers were held (the lock, or nothing for
	// BySnapshotPosition).
	Held time.Duration
	// Tries is how many times the views were opened (BySnapshotPosition).
	Tries int

	idle   chan *sql.Conn
	conns  []*sql.Conn
	stop   context.CancelFunc
	done   chan struct{}
	pinged chan struct{} // a round of keep-alive pings ended (tests)
}

// errDenied is a lock the role may not take: the next method is tried.
var errDenied = errors.New("denied")

// TakeSnapshot opens opts.Workers read views at one position of the binary log, by
// the first method the role's privileges and the server allow. logf says which
// method served and how long writers were held.
func TakeSnapshot(ctx context.Context, db *sql.DB, mariadb bool, opts SnapshotOptions, logf func(string, ...any)) (*Snapshot, error) {
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	if opts.LockWait == 0 {
		opts.LockWait = 10 * time.Second
	}
	methods := opts.Methods
	if len(methods) == 0 {
		methods = []string{ByGlobalLock, ByTableLocks, BySnapshotPosition, ByOneView}
	}
	var denied []string
	for _, m := range methods {
		if m == BySnapshotPosition && (!mariadb || opts.WithoutPosition) || m == ByOneView && !opts.WithoutPosition {
			continue // MySQL's read views do not report their position; one view has none
		}
		s, err := takeBy(ctx, db, mariadb, m, opts)
		if errors.Is(err, errDenied) {
			denied = append(denied, fmt.Sprintf("%s (%s)", m, strings.TrimPrefix(err.Error(), errDenied.Error()+": ")))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("snapshot by %s: %w", m, err)
		}
		s.keepAlive(ctx, opts.KeepAlive)
		if len(denied) > 0 {
			logf("snapshot: %s", strings.Join(denied, "; "))
		}
		if opts.WithoutPosition {
			logf("snapshot: %d read views by %s, writers held %v (a copy: no binary log position)", len(s.conns), s.Method, s.Held.Round(time.Microsecond))
		} else {
			logf("snapshot at %s: %d read views by %s, writers held %v", s.Pos, len(s.conns), s.Method, s.Held.Round(time.Microsecond))
		}
		return s, nil
	}
	fix := "GRANT RELOAD ON *.* (or GRANT LOCK TABLES ON the database) TO the source's role"
	if mariadb {
		fix += "; or turn the binary log on, which MariaDB's read views report their position from"
	}
	return nil, fmt.Errorf("no consistent snapshot of the source could be taken: %s: %s", strings.Join(denied, "; "), fix)
}

func takeBy(ctx context.Context, db *sql.DB, mariadb bool, method string, opts SnapshotOptions) (*Snapshot, error) {
	s := &Snapshot{Method: method}
	switch method {
	case BySnapshotPosition:
		return s, s.openUnlocked(ctx, db, opts.Workers)
	case ByOneView:
		c, err := openView(ctx, db)
		if err != nil {
			return nil, err
		}
		s.conns, s.Tries = []*sql.Conn{c}, 1
		return s, nil
	}
	lock, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer discard(lock)
	if _, err := lock.ExecContext(ctx, fmt.Sprintf("SET SESSION lock_wait_timeout = %d", max(1, int(opts.LockWait.Seconds())))); err != nil {
		return nil, err
	}
	if method == ByGlobalLock {
		// Tables closed first, outside the lock, so that the lock does not wait for
		// them with every writer queued behind it (as mydumper does).
		if _, err := lock.ExecContext(ctx, "FLUSH NO_WRITE_TO_BINLOG TABLES"); err != nil {
			return nil, denied(err)
		}
	}
	statement := "FLUSH TABLES WITH READ LOCK"
	if method == ByTableLocks {
		if len(opts.Tables) == 0 {
			return nil, fmt.Errorf("%w: no table to lock", errDenied)
		}
		statement = "LOCK TABLES " + strings.Join(opts.Tables, " READ, ") + " READ"
	}
	start := time.Now()
	if _, err := lock.ExecContext(ctx, statement); err != nil {
		return nil, denied(err)
	}
	unlocked := false
	unlock := func() error {
		if unlocked {
			return nil
		}
		unlocked = true
		_, err := lock.ExecContext(context.WithoutCancel(ctx), "UNLOCK TABLES")
		s.Held = time.Since(start)
		return err
	}
	defer func() { _ = unlock() }()
	for range opts.Workers {
		c, err := openView(ctx, db)
		if err != nil {
			s.closeConns()
			return nil, err
		}
		s.conns = append(s.conns, c)
	}
	// Under the lock nothing commits: the log's position now is every view's.
	if !opts.WithoutPosition {
		if s.Pos, err = logPosition(ctx, lock, mariadb); err != nil {
			s.closeConns()
			return nil, err
		}
	}
	if err := unlock(); err != nil {
		s.closeConns()
		return nil, err
	}
	s.Tries = 1
	return s, nil
}

// openUnlocked opens the read views without a lock until they all report the same
// binary log position (MariaDB's binlog_snapshot_file and _position), at most 50
// times; then it keeps one view alone, whose position is exact by itself.
func (s *Snapshot) openUnlocked(ctx context.Context, db *sql.DB, n int) error {
	for try := 1; ; try++ {
		s.Tries = try
		var first Position
		same := true
		for i := range n {
			c, err := openView(ctx, db)
			if err != nil {
				s.closeConns()
				return err
			}
			s.conns = append(s.conns, c)
			p, err := viewPosition(ctx, c)
			if err != nil {
				s.closeConns()
				return err
			}
			if i == 0 {
				first = p
			} else if p != first {
				same = false
				break
			}
		}
		if same || try == 50 {
			if !same {
				for _, c := range s.conns[1:] {
					discard(c)
				}
				s.conns = s.conns[:1]
			}
			s.Pos = first
			return s.Pos.fillGTID(ctx, s.conns[0])
		}
		s.closeConns()
	}
}

// openView opens a read view on a connection of its own.
func openView(ctx context.Context, db *sql.DB) (*sql.Conn, error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	for _, q := range []string{
		"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
		// a long copy's stream must not be cut by the server's write timeout
		"SET SESSION net_write_timeout = 3600",
		// values as they are stored, in their column's character set: the copy
		// loads them as bytes
		"SET SESSION character_set_results = binary",
		"START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
	} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			discard(c)
			return nil, err
		}
	}
	return c, nil
}

// viewPosition is the binary log position a MariaDB read view was opened at.
func viewPosition(ctx context.Context, c *sql.Conn) (Position, error) {
	p := Position{MariaDB: true}
	rows, err := c.QueryContext(ctx, "SHOW STATUS LIKE 'binlog_snapshot_%'")
	if err != nil {
		return p, err
	}
	defer rows.Close()
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return p, err
		}
		switch strings.ToLower(name) {
		case "binlog_snapshot_file":
			p.File = value
		case "binlog_snapshot_position":
			if _, err := fmt.Sscan(value, &p.Offset); err != nil {
				return p, fmt.Errorf("binlog_snapshot_position %q: %w", value, err)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return p, err
	}
	if p.File == "" {
		return p, fmt.Errorf("%w: the binary log is off (binlog_snapshot_file is empty)", errDenied)
	}
	return p, nil
}

// fillGTID adds MariaDB's GTID state at the position's file and offset. When the
// server's binary log ends there still (nothing logged since: the source idle, or
// blocked in the switch's window), that is its gtid_binlog_pos; else BINLOG_GTID_POS
// reads it from the file, from the file's start: as long as the file is large.
func (p *Position) fillGTID(ctx context.Context, c *sql.Conn) error {
	if gtid, ok, err := gtidAtEnd(ctx, c, p.File, p.Offset); err == nil && ok {
		p.GTID = gtid // else (a role that may not read the log's end, too) from the file
		return nil
	}
	var gtid sql.NullString
	if err := c.QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, ?)", p.File, p.Offset).Scan(&gtid); err != nil {
		return err
	}
	p.GTID = gtid.String
	return nil
}

// gtidAtEnd reads MariaDB's gtid_binlog_pos when the binary log ends at file and
// offset before and after it is read: then it is the GTID state there.
func gtidAtEnd(ctx context.Context, c *sql.Conn, file string, offset uint64) (string, bool, error) {
	before, err := binlogStatus(ctx, c)
	if err != nil || before.File != file || before.Offset != offset {
		return "", false, err
	}
	var gtid string
	if err := c.QueryRowContext(ctx, "SELECT @@global.gtid_binlog_pos").Scan(&gtid); err != nil {
		return "", false, err
	}
	after, err := binlogStatus(ctx, c)
	if err != nil || after.File != file || after.Offset != offset {
		return "", false, err
	}
	return gtid, true, nil
}

// logPosition reads the binary log's position while nothing commits: SHOW BINLOG
// STATUS (MariaDB 10.5.2+, MySQL 8.2+; SHOW MASTER STATUS before, and MySQL 8.4
// knows only the new name), and the GTID state.
func logPosition(ctx context.Context, c *sql.Conn, mariadb bool) (Position, error) {
	p, err := binlogStatus(ctx, c)
	p.MariaDB = mariadb
	if err != nil || !mariadb {
		return p, err
	}
	return p, p.fillGTID(ctx, c)
}

// binlogStatus reads where the binary log ends (and MySQL's GTID set): SHOW BINLOG
// STATUS, or the older and newer names of the statement.
func binlogStatus(ctx context.Context, c *sql.Conn) (Position, error) {
	var p Position
	var row map[string]string
	var ok bool
	var err error
	for _, q := range []string{"SHOW BINLOG STATUS", "SHOW BINARY LOG STATUS", "SHOW MASTER STATUS"} {
		if row, ok, err = namedRow(ctx, c, q); err == nil {
			break
		}
		var me *driver.MySQLError
		if !errors.As(err, &me) || me.Number != 1064 { // 1064: a syntax error, the name unknown here
			return p, err
		}
	}
	if err != nil {
		return p, err
	}
	if !ok {
		return p, fmt.Errorf("%w: the binary log is off (SHOW BINLOG STATUS returns no row)", errDenied)
	}
	return p, p.readStatus(row)
}

// readStatus reads the row of SHOW BINLOG STATUS or its other names: the file, the
// offset, and MySQL's GTID set (Executed_Gtid_Set, a line for each server after the
// first).
func (p *Position) readStatus(row map[string]string) error {
	for col, v := range row {
		switch strings.ToLower(col) {
		case "file":
			p.File = v
		case "position":
			if _, err := fmt.Sscan(v, &p.Offset); err != nil {
				return fmt.Errorf("binary log position %q: %w", v, err)
			}
		case "executed_gtid_set":
			p.GTID = strings.ReplaceAll(v, "\n", "")
		}
	}
	return nil
}

// denied tells a privilege the role lacks (the next method is tried) from any other
// failure.
func denied(err error) error {
	var me *driver.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1044, 1045, 1142, 1227: // access denied to the database, the user, the table; the privilege needed
			return fmt.Errorf("%w: %s", errDenied, me.Message)
		}
	}
	return err
}

// Acquire takes a read view for a worker; Release gives it back.
func (s *Snapshot) Acquire(ctx context.Context) (*sql.Conn, error) {
	select {
	case c := <-s.idle:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Release gives a read view back.
func (s *Snapshot) Release(c *sql.Conn) { s.idle <- c }

// Views is the number of read views.
func (s *Snapshot) Views() int { return len(s.conns) }

// keepAlive pings the views that wait, so that the server does not end them for
// their silence (wait_timeout; Aurora's is 600 s).
func (s *Snapshot) keepAlive(ctx context.Context, every time.Duration) {
	s.idle = make(chan *sql.Conn, len(s.conns))
	for _, c := range s.conns {
		s.idle <- c
	}
	if every == 0 {
		var timeout int
		if err := s.conns[0].QueryRowContext(ctx, "SELECT @@session.wait_timeout").Scan(&timeout); err != nil || timeout <= 0 {
			timeout = 60
		}
		every = min(time.Duration(timeout)*time.Second/2, 30*time.Second)
	}
	ctx, s.stop = context.WithCancel(context.WithoutCancel(ctx))
	s.done = make(chan struct{})
	s.pinged = make(chan struct{}, 1)
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			for range len(s.idle) {
				select {
				case c := <-s.idle:
					_ = c.PingContext(ctx)
					s.idle <- c
				default:
				}
			}
			select {
			case s.pinged <- struct{}{}:
			default:
			}
		}
	}()
}

// Close ends the read views.
func (s *Snapshot) Close() {
	if s.stop != nil {
		s.stop()
		<-s.done
	}
	s.closeConns()
}

// closeConns ends the views' connections: closed, not given back to the pool, which
// would keep their session settings for its next user.
func (s *Snapshot) closeConns() {
	for _, c := range s.conns {
		discard(c)
	}
	s.conns = nil
}

// discard closes a connection taken from a pool for good.
func discard(c *sql.Conn) {
	_ = c.Raw(func(any) error { return sqldriver.ErrBadConn })
	_ = c.Close()
}
