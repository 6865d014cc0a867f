package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// markerPrefix names the logical messages a validator writes into the source's WAL to
// ask for the target's state at that point.
const markerPrefix = "cutover.validate"

// exportHold is how long the applier keeps a validation point's snapshot exported for
// the validator to import (it needs a moment; a new marker replaces it sooner).
const exportHold = time.Minute

// points exports the target's snapshot at each validation marker: the state after
// every source transaction committed before the marker and none after it. The
// validator imports it with SET TRANSACTION SNAPSHOT while the applier goes on.
//
// The validator's snapshot of the source is not quite that state: a transaction
// whose commit is in the WAL before the marker may not be visible yet when the
// snapshot is taken (a backend writes its commit record, flushes it, and only then
// leaves the proc array), or may commit between the snapshot and the marker. The
// target has such a transaction at the marker and the source's snapshot does not.
// The marker carries the snapshot's transaction list; the applier, which knows the
// ID of every transaction it applied, records the tables such transactions changed
// (in_flight): the point is exact for every other table.
type points struct {
	connect func(context.Context) (*pgx.Conn, error)
	conn    *pgx.Conn // holds the exporting transaction open
	open    bool
	since   time.Time
	recent  recentTxns
	// covers compares another engine's positions (ChangeFeed.Covers): whether a
	// snapshot at snap holds the transaction at txn.
	covers func(snap, txn string) (bool, error)
}

// export exports the target's snapshot now (the applier has committed everything
// before the marker) and records it under the marker's ID, with the tables changed by
// the transactions applied before the marker that the source's snapshot does not see.
// A snapshot that cannot be exported is recorded with its error: the validator says
// so; the applier goes on.
func (p *points) export(ctx context.Context, main *pgconn.PgConn, control string, m *cdc.Marker) error {
	id, snap, _ := strings.Cut(m.ID, " ")
	return p.record(ctx, main, control, id, p.recent.inFlight(snap), m.Position, nil)
}

// pointMarker begins the ID of a validation's marker in the change stream of another
// engine (a sync marker, engine.SyncMarker).
const pointMarker = "point:"

// exportRecent is export for a migration from another engine: the validator does not
// know its read view's position yet when it writes the marker, so the applier records
// the last transactions it applied (recentTxns.last), and the validator tells those
// its view does not hold (pairValidator.inFlight). The point's position is the
// target's WAL position once everything before the marker is committed, where the
// applier records changed keys (see applier.dirtyAtTarget).
func (p *points) exportRecent(ctx context.Context, main *pgconn.PgConn, control, id string) error {
	return p.record(ctx, main, control, id, inFlightTables{}, "", p.recent.last(recentRecorded))
}

// recentRecorded is how many of the last transactions a point from another engine
// records: more than commit between a validator's read view and its marker, the
// next round trip.
const recentRecorded = 256

// recentTxn is a transaction applied, as a point records it.
type recentTxn struct {
	Position string   `json:"p"`
	Tables   []string `json:"t,omitempty"` // quoted
	Every    bool     `json:"e,omitempty"` // more than tablesKept tables
}

// last is the last n transactions applied, the newest first, as JSON.
func (r *recentTxns) last(n int) []byte {
	count := r.next
	if r.full {
		count = len(r.txns)
	}
	out := make([]recentTxn, 0, min(n, count))
	for i := range min(n, count) {
		t := &r.txns[(r.next-1-i+len(r.txns))%len(r.txns)]
		rt := recentTxn{Position: t.pos, Every: t.every}
		for _, table := range t.tables {
			rt.Tables = append(rt.Tables, pgx.Identifier{table[0], table[1]}.Sanitize())
		}
		out = append(out, rt)
	}
	b, _ := json.Marshal(out) // of strings and booleans: no error
	return b
}

// record exports the snapshot and records the point: at position, or at the
// target's WAL position when position is "", with the recent transactions' JSON when
// given.
func (p *points) record(ctx context.Context, main *pgconn.PgConn, control, id string, inFlight inFlightTables, position string, recent []byte) error {
	name, err := p.exportSnapshot(ctx)
	errText := ""
	if err != nil {
		errText = fmt.Sprintf("export the target's snapshot: %v", err)
		p.close(ctx)
	}
	// The validator waits for the notification (sent as this commits).
	return main.ExecParams(ctx, "WITH p AS (INSERT INTO "+control+`.validation_points (id, snapshot, position, error, in_flight, recent) VALUES ($1, $2, coalesce(nullif($3, ''), pg_current_wal_insert_lsn()::text), $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET snapshot = excluded.snapshot, position = excluded.position, error = excluded.error, in_flight = excluded.in_flight, recent = excluded.recent, created_at = now()
		RETURNING id) SELECT pg_notify('`+pointsChannel+`', id) FROM p`,
		[][]byte{[]byte(id), []byte(name), []byte(position), []byte(errText), inFlight.text(), recent}, nil, nil, nil).Read().Err
}

// recentTxnsKept is how many of the last source transactions applied the applier
// remembers: those a validator's snapshot may not see yet committed moments before
// its marker, a handful even under load.
const recentTxnsKept = 1 << 14

// tablesKept is the most tables remembered of one transaction; one that changed more
// is taken to have changed every table.
const tablesKept = 32

// recentTxns is the last source transactions applied: their IDs and the tables they
// changed, in a ring.
type recentTxns struct {
	txns []appliedTxn
	next int
	full bool // the ring went round: older transactions are forgotten
}

type appliedTxn struct {
	id     uint32
	pos    string // its position in the source's stream (another engine's has no ID)
	tables [][2]string
	every  bool // more than tablesKept tables
}

// note remembers the transaction an event belongs to and the tables it changes.
func (r *recentTxns) note(ev cdc.Event) {
	switch e := ev.(type) {
	case *cdc.Begin:
		if r.txns == nil {
			r.txns = make([]appliedTxn, recentTxnsKept)
		}
		t := &r.txns[r.next]
		t.id, t.pos, t.tables, t.every = uint32(e.TxnID), e.Position, t.tables[:0], false
		r.next++
		if r.next == len(r.txns) {
			r.next, r.full = 0, true
		}
	case *cdc.Change:
		if r.txns == nil {
			return
		}
		t := &r.txns[(r.next+len(r.txns)-1)%len(r.txns)]
		rels := e.Truncated
		if e.Op != cdc.Truncate {
			rels = []*cdc.Relation{e.Rel}
		}
		for _, rel := range rels {
			t.add([2]string{rel.Schema, rel.Name})
		}
	}
}

func (t *appliedTxn) add(table [2]string) {
	if t.every || slices.Contains(t.tables, table) {
		return
	}
	if len(t.tables) == tablesKept {
		t.every = true
		return
	}
	t.tables = append(t.tables, table)
}

// inFlightTables is the tables changed by transactions applied before a marker that
// the validator's snapshot does not see; every is true when they cannot be told (any
// table may hold such a change).
type inFlightTables struct {
	tables [][2]string
	every  bool
}

// touches reports whether changes to one of these tables were in flight.
func (f inFlightTables) touches(tables [][2]string) bool {
	if f.every {
		return true
	}
	for _, t := range tables {
		if slices.Contains(f.tables, t) {
			return true
		}
	}
	return false
}

// text is the tables as a text array of quoted names; NULL for every table.
func (f inFlightTables) text() []byte {
	if f.every {
		return nil
	}
	return textArray(len(f.tables), func(i int) cdc.Value {
		return cdc.Value{Text: []byte(pgx.Identifier{f.tables[i][0], f.tables[i][1]}.Sanitize())}
	})
}

// inFlight checks the transactions applied against a snapshot of the source
// (pg_current_snapshot()'s text).
func (r *recentTxns) inFlight(snapshot string) inFlightTables {
	snap, err := parseSnapshot(snapshot)
	if err != nil {
		return inFlightTables{every: true}
	}
	n, oldest := r.next, 0
	if r.full {
		n, oldest = len(r.txns), r.next
	}
	// Nothing applied since the applier started, or the oldest transaction remembered
	// not seen: the transactions before, applied by an earlier run or forgotten, may
	// not be either.
	if n == 0 || !snap.sees(r.txns[oldest].id) {
		return inFlightTables{every: true}
	}
	var f inFlightTables
	for i := range n {
		t := &r.txns[i]
		if snap.sees(t.id) {
			continue
		}
		if t.every {
			return inFlightTables{every: true}
		}
		for _, table := range t.tables {
			if !slices.Contains(f.tables, table) {
				f.tables = append(f.tables, table)
			}
		}
	}
	return f
}

// inFlightPast is inFlight for another engine's source: the tables changed by the
// transactions applied past position at, the newest first until one that at holds;
// every table when none does (older ones, forgotten, may be past at too).
func (r *recentTxns) inFlightPast(at string, covers func(snap, txn string) (bool, error)) inFlightTables {
	n := r.next
	if r.full {
		n = len(r.txns)
	}
	var f inFlightTables
	for i := range n {
		t := &r.txns[(r.next-1-i+len(r.txns))%len(r.txns)]
		held, err := covers(at, t.pos)
		switch {
		case err != nil || t.every:
			return inFlightTables{every: true}
		case held:
			return f
		}
		for _, table := range t.tables {
			if !slices.Contains(f.tables, table) {
				f.tables = append(f.tables, table)
			}
		}
	}
	return inFlightTables{every: true}
}

// sourceSnapshot is which transactions a snapshot of the source sees: those before
// xmin, and those before xmax not in progress (xip). Transaction IDs are compared as
// the stream sends them, 32 bits wide, modulo 2^32.
type sourceSnapshot struct {
	xmin, xmax uint32
	xip        map[uint32]bool
}

// parseSnapshot reads pg_snapshot's text, "xmin:xmax:xip,...".
func parseSnapshot(text string) (sourceSnapshot, error) {
	parts := strings.Split(text, ":")
	if len(parts) != 3 {
		return sourceSnapshot{}, fmt.Errorf("snapshot %q: not xmin:xmax:xip", text)
	}
	xid := func(s string) (uint32, error) {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("snapshot %q: %w", text, err)
		}
		return uint32(n), nil // the epoch is dropped: the stream's IDs have none
	}
	var s sourceSnapshot
	var err error
	if s.xmin, err = xid(parts[0]); err != nil {
		return s, err
	}
	if s.xmax, err = xid(parts[1]); err != nil {
		return s, err
	}
	s.xip = map[uint32]bool{}
	if parts[2] != "" {
		for _, x := range strings.Split(parts[2], ",") {
			id, err := xid(x)
			if err != nil {
				return s, err
			}
			s.xip[id] = true
		}
	}
	return s, nil
}

// sees reports whether the snapshot sees a committed transaction.
func (s sourceSnapshot) sees(id uint32) bool {
	switch {
	case int32(id-s.xmin) < 0:
		return true
	case int32(id-s.xmax) >= 0:
		return false
	}
	return !s.xip[id]
}

// exportSnapshot ends the export held, if any, and exports the target's snapshot now,
// in one round trip.
func (p *points) exportSnapshot(ctx context.Context) (string, error) {
	if p.conn == nil || p.conn.IsClosed() {
		if p.connect == nil {
			return "", fmt.Errorf("no connection for snapshots")
		}
		c, err := p.connect(ctx)
		if err != nil {
			return "", err
		}
		p.conn, p.open = c, false
	}
	sql := "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_export_snapshot()"
	if p.open {
		sql = "COMMIT; " + sql
	}
	p.open = false
	res, err := p.conn.PgConn().Exec(ctx, sql).ReadAll()
	if err != nil {
		return "", err
	}
	p.open, p.since = true, time.Now()
	last := res[len(res)-1]
	if len(last.Rows) != 1 || len(last.Rows[0]) != 1 {
		return "", fmt.Errorf("pg_export_snapshot() returned %d rows", len(last.Rows))
	}
	return string(last.Rows[0][0]), nil
}

// expire ends an export held long enough.
func (p *points) expire(ctx context.Context) {
	if p.open && time.Since(p.since) > exportHold {
		if _, err := p.conn.Exec(ctx, "COMMIT"); err != nil {
			p.close(ctx)
		}
		p.open = false
	}
}

func (p *points) close(ctx context.Context) {
	if p.conn != nil {
		p.conn.Close(context.WithoutCancel(ctx))
	}
	p.conn, p.open = nil, false
}
