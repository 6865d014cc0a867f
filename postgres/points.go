package postgres

import (
	"context"
	"fmt"
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
type points struct {
	connect func(context.Context) (*pgx.Conn, error)
	conn    *pgx.Conn // holds the exporting transaction open
	open    bool
	since   time.Time
}

// export exports the target's snapshot now (the applier has committed everything
// before the marker) and records it under the marker's ID. A snapshot that cannot be
// exported is recorded with its error: the validator says so; the applier goes on.
func (p *points) export(ctx context.Context, main *pgconn.PgConn, control string, m *cdc.Marker) error {
	name, err := p.exportSnapshot(ctx)
	errText := ""
	if err != nil {
		errText = fmt.Sprintf("export the target's snapshot: %v", err)
		p.close(ctx)
	}
	// The validator waits for the notification (sent as this commits).
	return main.ExecParams(ctx, "WITH p AS (INSERT INTO "+control+`.validation_points (id, snapshot, position, error) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET snapshot = excluded.snapshot, position = excluded.position, error = excluded.error, created_at = now()
		RETURNING id) SELECT pg_notify('`+pointsChannel+`', id) FROM p`,
		[][]byte{[]byte(m.ID), []byte(name), []byte(m.Position), []byte(errText)}, nil, nil, nil).Read().Err
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
