package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	driver "github.com/go-sql-driver/mysql"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/plan"
)

// Status reads where a migration between MySQL/MariaDB servers stands: its state and
// each table's progress, from the control database on the target.
func Status(ctx context.Context, p *plan.Plan) (control.Status, error) {
	tgt, _, err := openSide(ctx, "target", p.Target, 2)
	if err != nil {
		return control.Status{}, err
	}
	defer tgt.Close()
	return readStatus(ctx, p, tgt)
}

func readStatus(ctx context.Context, p *plan.Plan, tgt *sql.DB) (control.Status, error) {
	ctl, ok, err := readControl(ctx, tgt, p.ControlSchema)
	if err != nil {
		return control.Status{}, err
	}
	if !ok {
		return control.Status{}, fmt.Errorf("the target has no control database %s: no migration has started there (cutover start begins one)", p.ControlSchema)
	}
	st, err := ctl.State(ctx)
	if err != nil {
		return control.Status{}, err
	}
	s := control.Status{Phase: st.Phase, Mode: st.Mode, Position: st.Position, Updated: &st.Updated}
	if st.Mode == control.ModeCDC && st.Applied != "" {
		var commitTime, appliedAt sql.NullString
		if err := tgt.QueryRowContext(ctx, "SELECT applied_commit_time, applied_at FROM "+ctl.table("state")+" WHERE id = 1").Scan(&commitTime, &appliedAt); err != nil {
			return s, err
		}
		s.CDC = &control.CDCStatus{Applied: st.Applied, AppliedCommitTime: parseTime(commitTime), AppliedAt: parseTime(appliedAt)}
	}
	if s.Tables, err = ctl.TableStats(ctx); err != nil {
		return s, err
	}
	if st.Mode != control.ModeCDC {
		return s, nil
	}
	return s, readCutoverStatus(ctx, p, tgt, ctl, &s)
}

// readCutoverStatus reads which way replication runs, the last switch or rollback,
// the accounts left locked and which side is live. A control database of an older
// version, without the switch's tables, has none of it.
func readCutoverStatus(ctx context.Context, p *plan.Plan, tgt *sql.DB, ctl *Control, s *control.Status) error {
	c := &control.CutoverStatus{}
	err := tgt.QueryRowContext(ctx, "SELECT replication, reverse_slot FROM "+ctl.table("state")+" WHERE id = 1").Scan(&s.Replication, &c.ReverseSlot)
	var me *driver.MySQLError
	if errors.As(err, &me) && me.Number == 1054 { // an older version's: no switch ran
		return nil
	}
	if err != nil {
		return err
	}
	if r, err := lastRun(ctx, ctl, ""); err == nil && r != nil {
		sum := &control.RunSummary{ID: r.ID, Kind: r.Kind, Outcome: r.Outcome, Reason: r.Reason, Started: r.Started, Ended: r.Ended}
		if r.BlockedAt != nil && r.UnlockedAt != nil {
			d := r.UnlockedAt.Sub(*r.BlockedAt).Seconds()
			sum.DowntimeSeconds = &d
		}
		if n := len(r.Steps); n > 0 && r.Outcome == "running" {
			sum.Step = r.Steps[n-1].Name
		}
		c.LastRun = sum
	}
	locked, err := lockedAccounts(ctx, ctl)
	if err != nil {
		return err
	}
	readOnly, err := readOnlyLeft(ctx, ctl)
	if err != nil {
		return err
	}
	for side, was := range readOnly {
		locked[side] = append(locked[side], fmt.Sprintf("the server's read_only (ON; it was %s)", was))
	}
	c.BlockedSource, c.BlockedTarget = locked["source"], locked["target"]
	s.Cutover = c
	live, other := "source", "target"
	if s.Phase == control.PhaseSwitched || s.Phase == control.PhaseRollingBack {
		live, other = "target", "source"
	}
	sides := &control.SidesStatus{Live: live, Other: other}
	if other == "target" {
		open, err := openToApps(ctx, p, tgt, targetDatabase(p), tableNamesOf(s.Tables, targetDatabase(p)))
		if err != nil {
			s.SourceError = err.Error()
			return nil
		}
		sides.Open = open
	} else {
		open, err := sourceOpen(ctx, p, s.Tables)
		if err != nil {
			s.SourceError = err.Error()
			return nil
		}
		sides.Open = open
	}
	sides.Closed = len(sides.Open) == 0
	s.Sides = sides
	return nil
}

// sourceOpen says how the source is open to the applications after a switch: the
// accounts that may write to the migrated tables there and are not locked.
func sourceOpen(ctx context.Context, p *plan.Plan, stats []control.TableStat) ([]string, error) {
	src, database, err := openSide(ctx, "source", p.Source, 1)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	g, err := readGrants(ctx, src, database, tableNamesOf(stats, database))
	if err != nil {
		return nil, err
	}
	if p.Cutover.Block == plan.BlockReadOnly {
		return readOnlyOpen(ctx, src, "source", g, p.Cutover.ExemptRoles)
	}
	var open []string
	for _, a := range g.writers(p.Cutover.ExemptRoles) {
		if !g.accounts[a].locked {
			open = append(open, fmt.Sprintf("the source is open to the applications: %s may log in there and write to the migrated tables while the target takes the writes: ALTER USER %[1]s ACCOUNT LOCK on the source", a))
		}
	}
	return open, nil
}

// targetDatabase is the database of the plan's target URL.
func targetDatabase(p *plan.Plan) string {
	cfg, err := Config(p.Target)
	if err != nil {
		return ""
	}
	return cfg.DBName
}

// tableNamesOf names the tables of stats in database.
func tableNamesOf(stats []control.TableStat, database string) []tableName {
	out := make([]tableName, len(stats))
	for i, t := range stats {
		out[i] = tableName{database, t.Table}
	}
	return out
}

// Dashboard reads the status and the last switch or rollback; the latency history and
// apply exceptions are not kept on MySQL/MariaDB.
func Dashboard(ctx context.Context, p *plan.Plan) (control.Status, control.Dashboard, error) {
	d := control.Dashboard{History: []control.LatencyPoint{}, Exceptions: []control.ApplyException{}}
	tgt, _, err := openSide(ctx, "target", p.Target, 2)
	if err != nil {
		return control.Status{}, d, err
	}
	defer tgt.Close()
	s, err := readStatus(ctx, p, tgt)
	if err != nil {
		return s, d, err
	}
	d.Run, _ = lastRun(ctx, &Control{db: tgt, name: p.ControlSchema}, "")
	return s, d, nil
}
