package mysql

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
)

// The stream lock: a process that applies a migration's changes (cutover start, or a
// cutover validate that runs change data capture itself while none does) holds a named
// lock (GET_LOCK) on the target. A second one is refused rather than applying the same
// transactions again, and a validation tells from the lock whether changes flow.

// streamLockName is the lock's name for a control database; names are at most 64
// characters.
func streamLockName(control string) string {
	name := "cutover.stream." + control
	if len(name) > 64 {
		sum := sha256.Sum256([]byte(control))
		name = "cutover.stream." + hex.EncodeToString(sum[:])[:40]
	}
	return name
}

// streamLock is the lock held, on a connection of its own.
type streamLock struct {
	db   *sql.DB
	name string
	conn *sql.Conn
}

// errStreamHeld: another process streams the migration's changes.
func errStreamHeld(control string) error {
	return fmt.Errorf("another process applies the changes of the migration %s to the target now (a cutover start, or a cutover validate running change data capture while none does): stop it first, or let it run", control)
}

// takeStreamLock takes the lock, or says who holds it.
func takeStreamLock(ctx context.Context, db *sql.DB, control string) (*streamLock, error) {
	l := &streamLock{db: db, name: streamLockName(control)}
	if err := l.take(ctx, control); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *streamLock) take(ctx context.Context, control string) error {
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return err
	}
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", l.name).Scan(&got); err != nil {
		discard(conn)
		return fmt.Errorf("target: take the lock %s: %w", l.name, err)
	}
	if got.Int64 != 1 {
		discard(conn)
		return errStreamHeld(control)
	}
	l.conn = conn
	return nil
}

// keep checks that the lock is still held, and takes it again when its connection
// was lost (the target restarted): an error when another process took it meanwhile.
func (l *streamLock) keep(ctx context.Context, control string) error {
	if l.conn != nil {
		if err := l.conn.PingContext(ctx); err == nil {
			return nil
		}
		discard(l.conn)
		l.conn = nil
	}
	err := l.take(ctx, control)
	if err != nil && l.conn == nil && ctx.Err() == nil {
		if held, herr := streamRunning(ctx, l.db, control); herr == nil && held {
			return err
		}
	}
	return nil // the target is away: the stream retries, and so does the lock
}

// release lets the lock go.
func (l *streamLock) release() {
	if l.conn != nil {
		discard(l.conn) // the lock ends with its session
		l.conn = nil
	}
}

// streamRunning says whether a process streams the migration's changes now.
func streamRunning(ctx context.Context, db *sql.DB, control string) (bool, error) {
	var holder sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?)", streamLockName(control)).Scan(&holder); err != nil {
		return false, fmt.Errorf("target: read the lock %s: %w", streamLockName(control), err)
	}
	return holder.Valid, nil
}
