package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/internal/metrics"
	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pgx/v5"
)

// readCutover reads the switches' traces in the control schema.
func readCutover(ctx context.Context, tgt *pgx.Conn, ctl *Control) (*control.CutoverStatus, string, error) {
	var has bool
	if err := tgt.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", ctl.table("runs")).Scan(&has); err != nil || !has {
		return nil, "", err
	}
	c := &control.CutoverStatus{}
	var dir string
	if err := tgt.QueryRow(ctx, "SELECT replication, reverse_slot FROM "+ctl.table("state")).Scan(&dir, &c.ReverseSlot); err != nil {
		return nil, "", err
	}
	r := &control.RunSummary{}
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

// StatusOf connects to both sides and reads the status: the target must answer; a
// source that does not is said in SourceError.
func StatusOf(ctx context.Context, p *plan.Plan) (control.Status, error) {
	return statusWith(ctx, p, nil)
}

// statusWith is StatusOf, then more on the same target connection.
func statusWith(ctx context.Context, p *plan.Plan, more func(tgt *pgx.Conn) error) (control.Status, error) {
	tgt, err := ConnectSide(ctx, "target", p.Target)
	if err != nil {
		return control.Status{}, &engine.Unreachable{Side: "target", Err: err}
	}
	defer tgt.Close(context.WithoutCancel(ctx))
	src, srcErr := Connect(ctx, p.Source)
	if srcErr == nil {
		defer src.Close(context.WithoutCancel(ctx))
	}
	st, _, err := ReadStatus(ctx, tgt, src, p)
	if err != nil {
		return st, err
	}
	if srcErr != nil && st.Slot != "" {
		st.SourceError, _ = ConnectProblem("source", p.Source, srcErr)
	}
	if more != nil {
		return st, more(tgt)
	}
	return st, nil
}

// ReadStatus reads the control schema on tgt and, when src is not nil, the slot on
// the source. ok is false when no migration started on this target.
func ReadStatus(ctx context.Context, tgt, src *pgx.Conn, p *plan.Plan) (st control.Status, ok bool, err error) {
	ctl, ok, err := ReadControl(ctx, tgt, p.ControlSchema)
	if err != nil || !ok {
		return control.Status{Phase: "not started"}, ok, err
	}
	s, err := ctl.State(ctx)
	if err != nil {
		return st, true, err
	}
	st = control.Status{Phase: s.Phase, Mode: s.Mode, Slot: s.Slot, Position: s.Position, Updated: &s.Updated}
	if st.Tables, err = ctl.TableStats(ctx); err != nil {
		return st, true, fmt.Errorf("target: read %s: %w", ctl.table("table_stats"), err)
	}
	if st.Cutover, st.Replication, err = readCutover(ctx, tgt, ctl); err != nil {
		return st, true, err
	}
	if s.Phase == control.PhaseCDC || s.Applied != "" {
		c := &control.CDCStatus{Applied: s.Applied, AppliedCommitTime: s.AppliedCommitTime, AppliedAt: s.AppliedAt}
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
	if src != nil && s.Mode != control.ModeCopy {
		if st.Sides, err = readSides(ctx, p, src, tgt, s.Phase); err != nil {
			return st, true, err
		}
	}
	if src != nil && s.Slot != "" {
		ss := &control.SlotStatus{}
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
			if err == nil && phase == control.PhaseFinishing {
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
