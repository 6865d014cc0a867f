package postgres

import (
	"context"
	"fmt"

	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pglogrepl"
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
	s := &Snapshot{conn: conn.PgConn()}
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"); err == nil {
		err = conn.QueryRow(ctx, "SELECT pg_export_snapshot(), CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text").Scan(&s.Name, &s.Position)
	}
	if err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("source: export a snapshot (pg_export_snapshot in a REPEATABLE READ transaction): %w", err)
	}
	return s, nil
}
