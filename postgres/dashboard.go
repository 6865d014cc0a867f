package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pgx/v5"
)

// dashboardExceptions is how many apply exceptions the dashboard lists, newest first.
const dashboardExceptions = 50

// ReadDashboard reads the dashboard's figures from the control schema on tgt.
func ReadDashboard(ctx context.Context, tgt *pgx.Conn, p *plan.Plan) (control.Dashboard, error) {
	d := control.Dashboard{History: []control.LatencyPoint{}, Exceptions: []control.ApplyException{}}
	ctl, ok, err := ReadControl(ctx, tgt, p.ControlSchema)
	if err != nil || !ok {
		return d, err
	}
	var has bool
	if err := tgt.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", ctl.table("latency_history")).Scan(&has); err != nil || !has {
		return d, err // a control schema from an older version: nothing recorded yet
	}
	rows, err := tgt.Query(ctx, `SELECT measured_at, extract(epoch FROM source_latency)::float8, extract(epoch FROM target_latency)::float8, pending, retained_wal
		FROM `+ctl.table("latency_history")+` WHERE measured_at >= now() - $1::interval ORDER BY measured_at`, LatencyHistory)
	if err != nil {
		return d, err
	}
	if d.History, err = pgx.CollectRows(rows, pgx.RowToStructByPos[control.LatencyPoint]); err != nil {
		return d, fmt.Errorf("read %s: %w", ctl.table("latency_history"), err)
	}
	rows, err = tgt.Query(ctx, `SELECT id, schema_name || '.' || table_name, operation, error, position, commit_time, policy, created_at
		FROM `+ctl.table("apply_exceptions")+` WHERE NOT resolved ORDER BY id DESC LIMIT $1`, dashboardExceptions)
	if err != nil {
		return d, err
	}
	if d.Exceptions, err = pgx.CollectRows(rows, pgx.RowToStructByPos[control.ApplyException]); err != nil {
		return d, fmt.Errorf("read %s: %w", ctl.table("apply_exceptions"), err)
	}
	d.Run, err = readRun(ctx, tgt, ctl, "")
	return d, err
}

// readRun reads the latest switch or rollback (of kind, or of any kind when kind is
// "") whose outcome is in outcomes (any when none), with its steps. Nil when there
// is none.
func readRun(ctx context.Context, tgt *pgx.Conn, ctl *Control, kind string, outcomes ...string) (*cutover.Run, error) {
	var doc []byte
	// A run recorded without its runbook document (by another version, or by hand)
	// is read from its columns: its steps are in the runbook table anyway.
	err := tgt.QueryRow(ctx, "SELECT coalesce(runbook, jsonb_build_object('id', id, 'kind', kind, 'started_at', started_at, 'outcome', outcome, 'reason', reason)) FROM "+
		ctl.table("runs")+` WHERE ($1 = '' OR kind = $1) AND (coalesce(cardinality($2::text[]), 0) = 0 OR outcome = ANY($2))
		ORDER BY started_at DESC LIMIT 1`, kind, outcomes).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("target: read the last cutover run from %s: %w", ctl.table("runs"), err)
	}
	r := &cutover.Run{}
	if err := json.Unmarshal(doc, r); err != nil {
		return nil, fmt.Errorf("read the runbook of a cutover run in %s: %w", ctl.table("runs"), err)
	}
	// The steps table is written at each step: it is the latest word.
	rows, err := tgt.Query(ctx, "SELECT seq, step, title, started_at, ended_at, outcome, detail, error, operator_time FROM "+ctl.table("runbook")+" WHERE run_id = $1 ORDER BY seq", r.ID)
	if err != nil {
		return nil, fmt.Errorf("target: read the steps of run %s from %s: %w", r.ID, ctl.table("runbook"), err)
	}
	r.Steps, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (*cutover.StepRecord, error) {
		st := &cutover.StepRecord{}
		var outcome string
		err := row.Scan(&st.Seq, &st.Name, &st.Title, &st.Started, &st.Ended, &outcome, &st.Detail, &st.Error, &st.Operator)
		st.Outcome = cutover.Outcome(outcome)
		return st, err
	})
	return r, err
}
