package postgres

import (
	"context"
	"fmt"

	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Snapshot is an exported snapshot taken when a replication slot was created: every
// full-load worker imports it, so the copy and the change stream meet at one exact
// position with no gap and no duplicate. It lives as long as the replication
// connection that created it stays open and idle, so Close only after every worker
// has imported it.
type Snapshot struct {
	Name     string // for SET TRANSACTION SNAPSHOT and pg_dump --snapshot
	Slot     string
	Position string // the slot's consistent point (an LSN), opaque to callers
	conn     *pgconn.PgConn
}

// CreateSnapshot creates a logical replication slot with an exported snapshot.
// A temporary slot vanishes with the connection: it serves a resumed load, whose
// tables then start their change stream at this snapshot's position.
func CreateSnapshot(ctx context.Context, ep plan.Endpoint, slot string, temporary bool) (*Snapshot, error) {
	conn, err := ConnectReplication(ctx, ep)
	if err != nil {
		return nil, fmt.Errorf("replication connection to the source: %w", err)
	}
	// While the command ends, PostgreSQL (15 at least) lets go of the slot's hold on
	// old rows (ReplicationSlotRelease resets its effective_xmin) before it clears the
	// walsender's PROC_IN_LOGICAL_DECODING flag, while which the walsender's own
	// xmin, the exported snapshot's, counts for nothing: a page pruned in between
	// loses row versions the snapshot sees, and a hot-updated table is copied short
	// (seen once: 0 of 50 rows). A snapshot held on a plain connection from before the
	// command until it ends covers the gap: its xmin is no later than the exported
	// snapshot's. It takes no xid, so the slot does not wait for it.
	guard, err := Connect(ctx, ep)
	if err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("connect to the source: %w", err)
	}
	defer guard.Close(context.WithoutCancel(ctx))
	if _, err := guard.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SELECT 1"); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("source: hold a snapshot while the slot is made: %w", err)
	}
	res, err := pglogrepl.CreateReplicationSlot(ctx, conn, slot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{
		Temporary:      temporary,
		SnapshotAction: "EXPORT_SNAPSHOT",
		Mode:           pglogrepl.LogicalReplication,
	})
	if err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("create replication slot %s on the source: %w", slot, err)
	}
	return &Snapshot{Name: res.SnapshotName, Slot: res.SlotName, Position: res.ConsistentPoint, conn: conn}, nil
}

// Close ends the snapshot (and drops a temporary slot).
func (s *Snapshot) Close(ctx context.Context) error { return s.conn.Close(ctx) }

// DropSlot drops a replication slot on the source if it exists.
func DropSlot(ctx context.Context, ep plan.Endpoint, slot string) error {
	conn, err := Connect(ctx, ep)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, dropSlotSQL, slot)
	return err
}

// dropSlotSQL drops the slot named $1, if there is one.
const dropSlotSQL = "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1"

// ExportSnapshot exports the snapshot of a REPEATABLE READ transaction on a regular
// connection: a one-shot copy's snapshot, with no replication slot left on the source.
// Position is the source's WAL position then, for the record only (no stream starts
// there). The transaction stays open, and the snapshot importable, until Close.
func ExportSnapshot(ctx context.Context, ep plan.Endpoint) (*Snapshot, error) {
	conn, err := Connect(ctx, ep)
	if err != nil {
		return nil, fmt.Errorf("connection to the source for the snapshot: %w", err)
	}
	return exportOn(ctx, conn)
}

// exportOn is ExportSnapshot on a connection opened for it, which the snapshot owns
// from then on (closed with it, or here on an error).
func exportOn(ctx context.Context, conn *pgx.Conn) (*Snapshot, error) {
	s := &Snapshot{conn: conn.PgConn()}
	_, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
	if err == nil {
		err = conn.QueryRow(ctx, "SELECT pg_export_snapshot(), CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text").Scan(&s.Name, &s.Position)
	}
	if err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("source: export a snapshot (pg_export_snapshot in a REPEATABLE READ transaction): %w", err)
	}
	return s, nil
}

// sourceRead reads from the source what a load needs before it creates anything on
// the target: the relations, and for a one-shot copy also its snapshot and the schema
// dumped at it. None of that changes the source, so FullLoad starts it with the
// assessment and the two run at once: cutover start waits for the slower, not for
// both in turn. A replicating load's snapshot comes with its slot and publications,
// which change the source: those, and so its schema dump, wait for the assessment.
type sourceRead struct {
	copyOnly bool
	dir      string
	cancel   context.CancelFunc
	related  chan struct{} // closed once all is set, or relErr
	listed   chan struct{} // closed once src, major, all, tables (and snap, for a copy) are set, or listErr
	done     chan struct{} // closed when the goroutine ends: a copy's leave and dump set, or dumpErr

	src         *pgx.Conn // a copy's goroutine queries it until done
	major       int
	all, tables []*relation
	snap        *Snapshot // a copy's, until exportSnapshot hands it over
	relErr      error
	listErr     error

	leave   []leftOut
	dump    *SchemaDump
	dumpErr error
}

// readSource starts reading the source in the background; dir receives the schema dump.
func readSource(ctx context.Context, p *plan.Plan, copyOnly bool, dir string) *sourceRead {
	ctx, cancel := context.WithCancel(ctx)
	rs := &sourceRead{copyOnly: copyOnly, dir: dir, cancel: cancel, related: make(chan struct{}), listed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(rs.done)
		rs.listErr = rs.list(ctx, p)
		snap := rs.snap // exportSnapshot hands it over once listed is closed
		close(rs.listed)
		if rs.listErr == nil && copyOnly {
			rs.leave, rs.dump, rs.dumpErr = dumpAt(ctx, p, rs.src, snap.Name, rs.all, rs.tables, rs.major, dir)
		}
	}()
	return rs
}

// list lists the relations and, for a copy, then exports its snapshot, on a connection
// of its own opened meanwhile.
func (rs *sourceRead) list(ctx context.Context, p *plan.Plan) error {
	type opened struct {
		conn *pgx.Conn
		err  error
	}
	snapConn := make(chan opened, 1)
	if rs.copyOnly {
		go func() {
			conn, err := Connect(ctx, p.Source)
			snapConn <- opened{conn, err}
		}()
	}
	err := rs.relations(ctx, p)
	rs.relErr = err
	close(rs.related)
	if !rs.copyOnly {
		return err
	}
	o := <-snapConn
	switch {
	case err != nil:
		if o.conn != nil {
			o.conn.Close(ctx)
		}
		return err
	case o.err != nil:
		return fmt.Errorf("connection to the source for the snapshot: %w", o.err)
	}
	rs.snap, err = exportOn(ctx, o.conn)
	return err
}

// relations connects to the source and lists its relations and the plan's tables.
func (rs *sourceRead) relations(ctx context.Context, p *plan.Plan) (err error) {
	if rs.src, err = ConnectSide(ctx, "source", p.Source); err != nil {
		return err
	}
	if err := rs.src.QueryRow(ctx, "SELECT current_setting('server_version_num')::int / 10000").Scan(&rs.major); err != nil {
		return err
	}
	if rs.all, err = listRelations(ctx, rs.src); err != nil {
		return err
	}
	rs.tables, _ = selectTables(rs.all, p)
	return nil
}

// allRelations returns every relation of the source once listed: the assessment's
// (assessOptions.relations), which then need not list them again.
func (rs *sourceRead) allRelations(ctx context.Context) ([]*relation, error) {
	select {
	case <-rs.related:
		return rs.all, rs.relErr
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// waitListed waits for the relations (and a copy's snapshot).
func (rs *sourceRead) waitListed() error {
	<-rs.listed
	return rs.listErr
}

// schema returns the objects left out and the schema dumped at snap:
// a copy's, dumped in the background; for a replicating load, dumped now.
func (rs *sourceRead) schema(ctx context.Context, p *plan.Plan, snap *Snapshot, tables []*relation) ([]leftOut, *SchemaDump, error) {
	if rs.copyOnly {
		<-rs.done
		return rs.leave, rs.dump, rs.dumpErr
	}
	return dumpAt(ctx, p, rs.src, snap.Name, rs.all, tables, rs.major, rs.dir)
}

// close stops the reading, if it still runs, and closes what it holds.
func (rs *sourceRead) close(ctx context.Context) {
	rs.cancel()
	<-rs.done
	if rs.snap != nil {
		rs.snap.Close(ctx)
	}
	if rs.src != nil {
		rs.src.Close(ctx)
	}
}

// dumpAt reads the primary keys and the objects left out with the excluded tables, and
// dumps the schema at the snapshot; an object the plan's tables need but cannot have
// stops it.
func dumpAt(ctx context.Context, p *plan.Plan, src *pgx.Conn, snapshot string, all, tables []*relation, major int, dir string) ([]leftOut, *SchemaDump, error) {
	pks, err := primaryKeys(ctx, src, tables)
	if err != nil {
		return nil, nil, err
	}
	leave, err := dependentsOfExcluded(ctx, src, excluded(all, tables), tables)
	if err != nil {
		return nil, nil, err
	}
	for _, l := range leave {
		if l.blocks {
			return nil, nil, fmt.Errorf("%s needs %s, which the plan excludes\nfix: include %[2]s in tables.include, or exclude %[1]s too", l.object, l.excluded)
		}
	}
	dump, err := DumpSchema(ctx, p.Source, snapshot, dir, major, excluded(all, tables), p.ControlSchema, pks, leave)
	if err != nil {
		return nil, nil, err
	}
	return leave, dump, nil
}
