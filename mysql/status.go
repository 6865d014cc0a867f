package mysql

import (
	"context"
	"database/sql"
	"fmt"

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
	s.Tables, err = ctl.TableStats(ctx)
	return s, err
}

// Dashboard reads the status; the dashboard's history, exceptions and runs are not
// kept on MySQL/MariaDB yet.
func Dashboard(ctx context.Context, p *plan.Plan) (control.Status, control.Dashboard, error) {
	s, err := Status(ctx, p)
	return s, control.Dashboard{History: []control.LatencyPoint{}, Exceptions: []control.ApplyException{}}, err
}
