package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pgx/v5"
)

// Status is where a migration stands: what cutover status and /api/status show.
type Status struct {
	Phase    string      `json:"phase"`
	Slot     string      `json:"slot,omitempty"`
	Position string      `json:"position,omitempty"` // where the change stream starts
	Updated  *time.Time  `json:"updated_at,omitempty"`
	CDC      *CDCStatus  `json:"cdc,omitempty"`
	Source   *SlotStatus `json:"source,omitempty"`
	Tables   []TableStat `json:"-"`
	// ApplyExceptions counts the unresolved rows of apply_exceptions.
	ApplyExceptions int64 `json:"apply_exceptions"`
}

// CDCStatus is the change stream's state as the running task last recorded it.
type CDCStatus struct {
	Applied              string     `json:"applied_position"`
	AppliedCommitTime    *time.Time `json:"applied_commit_time,omitempty"`
	AppliedAt            *time.Time `json:"applied_at,omitempty"`
	SourceLatencySeconds float64    `json:"source_latency_seconds"`
	TargetLatencySeconds float64    `json:"target_latency_seconds"`
	Pending              int64      `json:"pending_transactions"`
	MeasuredAt           *time.Time `json:"measured_at,omitempty"`
}

// SlotStatus is the slot as the source sees it.
type SlotStatus struct {
	Exists           bool  `json:"slot_exists"`
	Active           bool  `json:"slot_active"` // a task is streaming from it
	RetainedWALBytes int64 `json:"retained_wal_bytes"`
}

// ReadStatus reads the control schema on tgt and, when src is not nil, the slot on
// the source. ok is false when no migration started on this target.
func ReadStatus(ctx context.Context, tgt, src *pgx.Conn, p *plan.Plan) (st Status, ok bool, err error) {
	ctl, ok, err := ReadControl(ctx, tgt, p.ControlSchema)
	if err != nil || !ok {
		return Status{Phase: "not started"}, ok, err
	}
	s, err := ctl.State(ctx)
	if err != nil {
		return st, true, err
	}
	st = Status{Phase: s.Phase, Slot: s.Slot, Position: s.Position, Updated: &s.Updated}
	if st.Tables, err = ctl.TableStats(ctx); err != nil {
		return st, true, err
	}
	if s.Phase == PhaseCDC || s.Applied != "" {
		c := &CDCStatus{Applied: s.Applied, AppliedCommitTime: s.AppliedCommitTime, AppliedAt: s.AppliedAt}
		var srcLat, tgtLat *time.Duration
		var pending *int64
		err := tgt.QueryRow(ctx, "SELECT source_latency, target_latency, pending, measured_at FROM "+ctl.table("state")).
			Scan(&srcLat, &tgtLat, &pending, &c.MeasuredAt)
		if err != nil {
			return st, true, err
		}
		if srcLat != nil {
			c.SourceLatencySeconds = srcLat.Seconds()
		}
		if tgtLat != nil {
			c.TargetLatencySeconds = tgtLat.Seconds()
		}
		if pending != nil {
			c.Pending = *pending
		}
		st.CDC = c
		if err := tgt.QueryRow(ctx, "SELECT count(*) FROM "+ctl.table("apply_exceptions")+" WHERE NOT resolved").Scan(&st.ApplyExceptions); err != nil {
			return st, true, err
		}
	}
	if src != nil && s.Slot != "" {
		ss := &SlotStatus{}
		err := src.QueryRow(ctx, `SELECT true, active, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint
			FROM pg_replication_slots WHERE slot_name = $1`, s.Slot).Scan(&ss.Exists, &ss.Active, &ss.RetainedWALBytes)
		if err != nil && err != pgx.ErrNoRows {
			return st, true, fmt.Errorf("read slot %s on the source: %w", s.Slot, err)
		}
		st.Source = ss
	}
	return st, true, nil
}

// recordLatency writes the change stream's figures to the control schema now and then,
// so cutover status shows them from another terminal. It has a connection of its own.
func recordLatency(ctx context.Context, ep plan.Endpoint, controlSchema string, lat *cdc.Latency) {
	t := time.NewTicker(reportEvery)
	defer t.Stop()
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.WithoutCancel(ctx))
		}
	}()
	state := pgx.Identifier{controlSchema, "state"}.Sanitize()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if conn == nil || conn.IsClosed() {
			var err error
			if conn, err = Connect(ctx, ep); err != nil {
				continue // the applier reports target faults
			}
		}
		s := lat.At(time.Now())
		_, _ = conn.Exec(ctx, "UPDATE "+state+" SET source_latency = $1, target_latency = $2, pending = $3, measured_at = now()",
			s.Source, s.Target, s.Pending)
	}
}

// reportEvery is how often the latency is written to the control schema.
var reportEvery = 2 * time.Second
