package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/internal/metrics"
	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pgx/v5"
)

// Status is where a migration stands: what cutover status and /api/status show.
type Status struct {
	Phase string `json:"phase"`
	// Mode is "cdc", or "copy" for a one-shot copy (cdc.enabled: false).
	Mode     string      `json:"mode"`
	Slot     string      `json:"slot,omitempty"`
	Position string      `json:"position,omitempty"` // where the change stream starts
	Updated  *time.Time  `json:"updated_at,omitempty"`
	CDC      *CDCStatus  `json:"cdc,omitempty"`
	Source   *SlotStatus `json:"source,omitempty"`
	Tables   []TableStat `json:"-"`
	// ApplyExceptions counts the unresolved rows of apply_exceptions.
	ApplyExceptions int64 `json:"apply_exceptions"`
	// Replication is the direction cutover start replicates in: forward, stopped, reverse.
	Replication string         `json:"replication,omitempty"`
	Cutover     *CutoverStatus `json:"cutover,omitempty"`
	// Sides says which side takes the applications' writes and whether the other is
	// closed to them; nil for a one-shot copy, or when the source could not be read.
	Sides *SidesStatus `json:"sides,omitempty"`
}

// SidesStatus is the one writable side: Live takes the applications' writes (source or
// target); Other should not. Open says how Other is open to them (empty: closed).
type SidesStatus struct {
	Live   string   `json:"live"`
	Other  string   `json:"other"`
	Closed bool     `json:"other_closed"`
	Open   []string `json:"other_open,omitempty"`
}

// CutoverStatus is where switches and rollbacks left the migration.
type CutoverStatus struct {
	ReverseSlot string `json:"reverse_slot,omitempty"`
	// LastRun is the latest switch or rollback; Step its step running or last run.
	LastRun *RunSummary `json:"last_run,omitempty"`
	// Blocked lists, per side, the roles a switch or rollback blocked and did not give back.
	BlockedSource []string `json:"blocked_on_source,omitempty"`
	BlockedTarget []string `json:"blocked_on_target,omitempty"`
}

// RunSummary is one switch or rollback, as status shows it.
type RunSummary struct {
	ID              string     `json:"id"`
	Kind            string     `json:"kind"`
	Outcome         string     `json:"outcome"`
	Reason          string     `json:"reason,omitempty"`
	Started         time.Time  `json:"started_at"`
	Ended           *time.Time `json:"ended_at,omitempty"`
	DowntimeSeconds *float64   `json:"downtime_seconds,omitempty"`
	Step            string     `json:"step,omitempty"`
}

// readCutover reads the switches' traces in the control schema.
func readCutover(ctx context.Context, tgt *pgx.Conn, ctl *Control) (*CutoverStatus, string, error) {
	var has bool
	if err := tgt.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", ctl.table("runs")).Scan(&has); err != nil || !has {
		return nil, "", err
	}
	c := &CutoverStatus{}
	var dir string
	if err := tgt.QueryRow(ctx, "SELECT replication, reverse_slot FROM "+ctl.table("state")).Scan(&dir, &c.ReverseSlot); err != nil {
		return nil, "", err
	}
	r := &RunSummary{}
	var downtime *time.Duration
	err := tgt.QueryRow(ctx, `SELECT r.id, r.kind, r.outcome, r.reason, r.started_at, r.ended_at, r.downtime,
		    coalesce((SELECT title FROM `+ctl.table("runbook")+` b WHERE b.run_id = r.id ORDER BY seq DESC LIMIT 1), '')
		FROM `+ctl.table("runs")+` r ORDER BY r.started_at DESC LIMIT 1`).Scan(&r.ID, &r.Kind, &r.Outcome, &r.Reason, &r.Started, &r.Ended, &downtime, &r.Step)
	switch {
	case err == nil:
		if downtime != nil {
			s := downtime.Seconds()
			r.DowntimeSeconds = &s
		}
		c.LastRun = r
	case err != pgx.ErrNoRows:
		return nil, "", err
	}
	for _, side := range []struct {
		name string
		to   *[]string
	}{{"source", &c.BlockedSource}, {"target", &c.BlockedTarget}} {
		if err := tgt.QueryRow(ctx, "SELECT coalesce(array_agg(DISTINCT role), '{}') FROM "+ctl.table("blocked_roles")+" WHERE side = $1 AND restored_at IS NULL",
			side.name).Scan(side.to); err != nil {
			return nil, "", err
		}
	}
	return c, dir, nil
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
	st = Status{Phase: s.Phase, Mode: s.Mode, Slot: s.Slot, Position: s.Position, Updated: &s.Updated}
	if st.Tables, err = ctl.TableStats(ctx); err != nil {
		return st, true, fmt.Errorf("target: read %s: %w", ctl.table("table_stats"), err)
	}
	if st.Cutover, st.Replication, err = readCutover(ctx, tgt, ctl); err != nil {
		return st, true, err
	}
	if s.Phase == PhaseCDC || s.Applied != "" {
		c := &CDCStatus{Applied: s.Applied, AppliedCommitTime: s.AppliedCommitTime, AppliedAt: s.AppliedAt}
		var srcLat, tgtLat *time.Duration
		var pending *int64
		err := tgt.QueryRow(ctx, "SELECT source_latency, target_latency, pending, measured_at FROM "+ctl.table("state")).
			Scan(&srcLat, &tgtLat, &pending, &c.MeasuredAt)
		if err != nil {
			return st, true, fmt.Errorf("target: read the latency from %s: %w", ctl.table("state"), err)
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
			return st, true, fmt.Errorf("target: read %s: %w", ctl.table("apply_exceptions"), err)
		}
	}
	if src != nil && s.Mode != ModeCopy {
		if st.Sides, err = readSides(ctx, p, src, tgt, s.Phase); err != nil {
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

// recordLatency writes the change stream's figures to the control schema and the
// metrics now and then, so cutover status shows them from another terminal, with the
// WAL the slot retains on the source. It has connections of its own.
// It also stops the task (finish) when cutover finish asks it to, and has report
// print where the task stands every reportInterval.
func recordLatency(ctx context.Context, p *plan.Plan, slot string, lat *cdc.Latency, m *metrics.Metrics, finish func(), report func(cdc.Snapshot)) {
	t := time.NewTicker(reportEvery)
	defer t.Stop()
	reported := time.Now()
	var sidesRead time.Time
	var tgt, src *pgx.Conn
	defer func() { closeAll(ctx, []*pgx.Conn{tgt, src}) }()
	state := pgx.Identifier{p.ControlSchema, "state"}.Sanitize()
	history := pgx.Identifier{p.ControlSchema, "latency_history"}.Sanitize()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := lat.At(time.Now())
		if time.Since(reported) >= reportInterval {
			report(s)
			reported = time.Now()
		}
		// Faults are reported by the stream and the applier; here they only skip a tick.
		if tgt == nil || tgt.IsClosed() {
			tgt, _ = Connect(ctx, p.Target)
		}
		if src == nil || src.IsClosed() {
			src, _ = Connect(ctx, p.Source)
		}
		var retained *int64
		if src != nil && !src.IsClosed() {
			var r int64
			if src.QueryRow(ctx, `SELECT coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint FROM pg_replication_slots WHERE slot_name = $1`,
				slot).Scan(&r) == nil {
				m.RetainedWAL(r)
				retained = &r
			}
		}
		if tgt != nil && !tgt.IsClosed() {
			// The state row, and a point of the last hour's history the dashboard draws.
			var phase string
			err := tgt.QueryRow(ctx, `WITH h AS (INSERT INTO `+history+` VALUES (now(), $1, $2, $3, $4) ON CONFLICT DO NOTHING),
				    d AS (DELETE FROM `+history+` WHERE measured_at < now() - $5::interval)
				UPDATE `+state+` SET source_latency = $1, target_latency = $2, pending = $3, measured_at = now() RETURNING phase`,
				s.Source, s.Target, s.Pending, retained, LatencyHistory).Scan(&phase)
			if err == nil && phase == PhaseFinishing {
				finish()
			}
			// Which side is live and whether the other is closed, now and then.
			if err == nil && m != nil && src != nil && !src.IsClosed() && time.Since(sidesRead) >= sidesEvery {
				if sd, err := readSides(ctx, p, src, tgt, phase); err == nil {
					m.Sides(sd.Live, sd.Other, sd.Closed)
				}
				sidesRead = time.Now()
			}
			// A validation may run in another process (cutover validate): its outcome
			// reaches /metrics through table_stats.
			if m != nil {
				rows, err := tgt.Query(ctx, "SELECT schema_name || '.' || table_name, validation_mismatches FROM "+
					pgx.Identifier{p.ControlSchema, "table_stats"}.Sanitize())
				if err == nil {
					var table string
					var n int64
					_, _ = pgx.ForEachRow(rows, []any{&table, &n}, func() error {
						m.Mismatched(table, n)
						return nil
					})
				}
			}
		}
	}
}

// LatencyHistory is how long latency_history keeps the figures recordLatency writes.
const LatencyHistory = time.Hour

// reportEvery is how often the latency is written to the control schema, and
// reportInterval how often a running CDC prints where it stands.
const (
	reportEvery    = 2 * time.Second
	reportInterval = 10 * time.Second
	sidesEvery     = 10 * time.Second // readSides lists the tables: not at every tick
)
