package mysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/validate"
)

// The cut over between MySQL/MariaDB servers: the checklists of the cutover package
// (cutover.Switch, cutover.Rollback) on the migration's two databases.
//
//   - Writes are blocked by account: every account that may write to the migrated
//     tables is locked (ALTER USER ... ACCOUNT LOCK, recorded first in the target's
//     control database) and its sessions are ended; the target's were locked by the
//     load and are given back at the unlock.
//   - The sync marker is a row the switch inserts into the control database's
//     sync_markers on the side the stream reads: the stream passes it on as a marker,
//     and the applier records it (state.sync_marker) once everything before it is
//     committed.
//   - Events are the scheduled jobs: disabled on the side the applications leave,
//     enabled on the side they move to.
//   - Triggers live on the side the applications write to: the load does not create
//     them (MySQL cannot disable a trigger, and one on the side replication writes to
//     would fire on replicated rows); the switch records the source's, drops them
//     there and creates them on the target before reverse replication starts, and a
//     rollback does the opposite.
//   - Auto-increment counters: InnoDB raises a counter past every value inserted, so
//     replication keeps them; the switch checks each against the other side's and
//     raises one that is lower (a counter the source advanced past deleted rows).
//   - Reverse replication reads the target's binary log into the source, its position
//     in the control database on the source, from the target's position after the
//     forward stream stopped; a rollback records the source's position before its
//     unlock, where forward replication goes on from.

// switcher holds what the steps of a switch or a rollback share.
type switcher struct {
	p      *plan.Plan
	opts   cutover.Options
	out    io.Writer
	dry    bool
	src    side
	tgt    side
	ctl    *Control // on the target
	st     control.State
	run    *cutover.Run
	hooks  cutover.Hooks
	tables []string // the migrated tables, by name (the same on both sides)
	lock   *sql.Conn
	// gateLatency is how long the gates' marker took to be applied.
	gateLatency time.Duration
}

// side is one database of the migration, as a switch or rollback acts on it.
type side struct {
	name     string // source or target
	db       *sql.DB
	database string
	mariadb  bool
}

func (sd side) table(name string) string { return tableName{sd.database, name}.quoted() }

// The switcher does the steps of the checklists on the source and the target.
var (
	_ cutover.Runs        = (*switcher)(nil)
	_ cutover.Gates       = (*switcher)(nil)
	_ cutover.Validation  = (*switcher)(nil)
	_ cutover.Blocker     = (*switcher)(nil)
	_ cutover.Jobs        = (*switcher)(nil)
	_ cutover.Replication = (*switcher)(nil)
	_ cutover.Sequences   = (*switcher)(nil)
	_ cutover.Objects     = (*switcher)(nil)
	_ cutover.Reverse     = (*switcher)(nil)
	_ cutover.QA          = (*switcher)(nil)
	_ cutover.Unlocker    = (*switcher)(nil)
	_ cutover.Titler      = (*switcher)(nil)
)

// stepTitles are the checklists' steps in MySQL's terms.
var stepTitles = map[string]string{
	"switch publications": "prepare reverse replication: nothing to create before the block (it reads the target's binary log)",
	"switch block":        "block writes on the source: the accounts that may write to the migrated tables locked, their sessions ended",
	"switch jobs":         "suspend scheduled jobs on the source (events disabled, suspend_jobs hooks)",
	"switch sequences":    "check the target's auto-increment counters against the source's, raise the lower ones",
	"switch objects":      "secondary objects on the target: the source's indexes and foreign keys",
	"switch reverse":      "move the triggers to the target, then start reverse replication, target to source, from the target's position now",
	"switch unlock":       "unlock: the accounts log in to the target, the events run there",
	"rollback block":      "block writes on the target: the accounts that may write to the migrated tables locked, their sessions ended",
	"rollback jobs":       "suspend scheduled jobs on the target (events disabled, suspend_jobs hooks)",
	"rollback sequences":  "check the source's auto-increment counters against the target's, raise the lower ones",
	"rollback unlock":     "unlock the source: its triggers back, the position forward replication resumes from recorded, its accounts and events back",
	"rollback cleanup":    "drop the target's triggers; forward replication resumes after what reverse replication wrote",
}

// StepTitle is a step's title in MySQL's terms.
func (s *switcher) StepTitle(kind, step string) string { return stepTitles[kind+" "+step] }

// Switch runs the cut over: the checklist (cutover.Switch) on the migration's two
// databases.
func Switch(ctx context.Context, p *plan.Plan, opts cutover.Options) (*cutover.Result, error) {
	s, err := openSwitcher(ctx, p, opts, "switch")
	if err != nil {
		return nil, err
	}
	defer s.close()
	return cutover.Switch(ctx, s, p, opts)
}

// Rollback returns a switched migration to the source (cutover.Rollback).
func Rollback(ctx context.Context, p *plan.Plan, opts cutover.Options) (*cutover.Result, error) {
	s, err := openSwitcher(ctx, p, opts, "rollback")
	if err != nil {
		return nil, err
	}
	defer s.close()
	return cutover.Rollback(ctx, s, p, opts)
}

// switchLockName is the named lock a switch or rollback holds on the target, so that
// two never run at once.
func switchLockName(control string) string {
	return strings.Replace(streamLockName(control), "cutover.stream.", "cutover.switch.", 1)
}

// openSwitcher connects to both sides and takes the switch lock.
func openSwitcher(ctx context.Context, p *plan.Plan, opts cutover.Options, kind string) (_ *switcher, err error) {
	s := &switcher{p: p, opts: opts, out: opts.Out, dry: opts.DryRun}
	if s.out == nil {
		s.out = io.Discard
	}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	for _, sd := range []struct {
		to   *side
		name string
		ep   plan.Endpoint
	}{{&s.tgt, "target", p.Target}, {&s.src, "source", p.Source}} {
		db, database, err := openSide(ctx, sd.name, sd.ep, 4)
		if err != nil {
			return nil, err
		}
		*sd.to = side{name: sd.name, db: db, database: database}
		if sd.to.mariadb, err = isMariaDB(ctx, sd.name, db); err != nil {
			return nil, err
		}
	}
	ctl, ok, err := readControl(ctx, s.tgt.db, p.ControlSchema)
	if err == nil && !ok {
		err = fmt.Errorf("no migration on this target (no control database %s): run cutover start first", p.ControlSchema)
	}
	if err == nil {
		ctl, err = openControl(ctx, s.tgt.db, p.ControlSchema) // the tables of the switch, on an older version's
	}
	if err != nil {
		return nil, err
	}
	s.ctl = ctl
	if s.st, err = ctl.State(ctx); err != nil {
		return nil, err
	}
	if s.st.Mode == control.ModeCopy {
		return nil, fmt.Errorf("nothing to %s: the migration %s is a one-shot copy (cdc.enabled: false) with no change stream; point the applications at the target yourself, and run cutover finish to drop its control database", kind, p.ControlSchema)
	}
	stats, err := ctl.TableStats(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range stats {
		s.tables = append(s.tables, t.Table)
	}
	if err := s.takeLock(ctx); err != nil {
		return nil, err
	}
	s.hooks = cutover.PlanHooks(p, s.out, s.dry)
	return s, nil
}

// takeLock takes the switch lock on a connection of its own.
func (s *switcher) takeLock(ctx context.Context) error {
	conn, err := s.tgt.db.Conn(ctx)
	if err != nil {
		return err
	}
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", switchLockName(s.p.ControlSchema)).Scan(&got); err != nil {
		discard(conn)
		return fmt.Errorf("target: take the switch lock: %w", err)
	}
	if got.Int64 != 1 && !s.dry {
		discard(conn)
		return errors.New("another cutover switch or rollback is running on this migration: wait for it (cutover status shows its steps)")
	}
	s.lock = conn
	return nil
}

func (s *switcher) close() {
	if s.lock != nil {
		discard(s.lock)
	}
	for _, db := range []*sql.DB{s.src.db, s.tgt.db} {
		if db != nil {
			db.Close()
		}
	}
}

// sideOf is the database of the checklist's side sd.
func (s *switcher) sideOf(sd cutover.Side) side {
	if sd == cutover.Target {
		return s.tgt
	}
	return s.src
}

// exec runs a statement that changes a database, or prints it in a dry run.
func (s *switcher) exec(ctx context.Context, sd side, q string, args ...any) error {
	if s.dry {
		fmt.Fprintf(s.out, "      %s: %s", sd.name, q)
		if len(args) > 0 {
			fmt.Fprintf(s.out, "  -- with %v", args)
		}
		fmt.Fprintln(s.out)
		return nil
	}
	if _, err := sd.db.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("%s: %s: %w", sd.name, firstLine(q), err)
	}
	return nil
}

// record writes to the control database what an undo needs; nothing in a dry run.
func (s *switcher) record(ctx context.Context, q string, args ...any) error {
	if s.dry {
		return nil
	}
	if _, err := s.tgt.db.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("target: record in the control database: %w", err)
	}
	return nil
}

func firstLine(q string) string {
	q = strings.TrimSpace(q)
	if i := strings.IndexByte(q, '\n'); i >= 0 {
		return q[:i] + " ..."
	}
	return q
}

// setState sets columns of the target's state row (set: "phase = ?").
func (s *switcher) setState(ctx context.Context, set string, args ...any) error {
	return s.exec(ctx, s.tgt, "UPDATE "+s.ctl.table("state")+" SET "+set+", updated_at = now(6) WHERE id = 1", args...)
}

func (s *switcher) setPhase(ctx context.Context, phase string) error {
	return s.setState(ctx, "phase = ?", phase)
}

// phaseBack sets the phase back to before when it is still running: only the phase
// the gates set.
func (s *switcher) phaseBack(ctx context.Context, running, before string) (string, error) {
	if s.dry {
		return "", nil
	}
	res, err := s.tgt.db.ExecContext(ctx, "UPDATE "+s.ctl.table("state")+" SET phase = ?, updated_at = now(6) WHERE id = 1 AND phase = ?", before, running)
	if err != nil {
		return "", fmt.Errorf("target: set the phase back to %s: %w", before, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", nil
	}
	return "phase " + before + " again", nil
}

// Runs: the runbook in the control database (cutover.Runs).

// Begin makes r the run the steps record for.
func (s *switcher) Begin(r *cutover.Run) { s.run = r }

// SaveRun records the run, its runbook whole.
func (s *switcher) SaveRun(ctx context.Context, r *cutover.Run) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return err
	}
	var downtime, tool *int64
	if r.UnlockedAt != nil {
		d, t := r.Downtime.Microseconds(), r.ToolDowntime.Microseconds()
		downtime, tool = &d, &t
	}
	// REPLACE: the one upsert MySQL and MariaDB write alike
	_, err = s.tgt.db.ExecContext(ctx, "REPLACE INTO "+s.ctl.table("runs")+` (id, kind, started_at, outcome, downtime_us, tool_downtime_us, runbook)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, r.ID, r.Kind, r.Started.UTC().Format("2006-01-02 15:04:05.999999"), r.Outcome, downtime, tool, doc)
	if err != nil {
		return fmt.Errorf("target: record the run %s: %w", r.ID, err)
	}
	return nil
}

// SaveStep records a step: the run's runbook holds its steps.
func (s *switcher) SaveStep(ctx context.Context, _ string, _ *cutover.StepRecord) error {
	return s.SaveRun(ctx, s.run)
}

// Interrupted finds the last run of kind when the cutover process did not finish it,
// or when an undo of its rollback failed: the next run of kind picks it up.
func (s *switcher) Interrupted(ctx context.Context, kind string) (*cutover.Run, error) {
	r, err := lastRun(ctx, s.ctl, kind)
	if err != nil || r == nil {
		return nil, err
	}
	if r.Outcome == string(cutover.Running) || r.Outcome == cutover.OutcomeIncomplete {
		return r, nil
	}
	return nil, nil
}

// lastRun reads the last run of kind ("" for any).
func lastRun(ctx context.Context, ctl *Control, kind string) (*cutover.Run, error) {
	var doc string
	err := ctl.db.QueryRowContext(ctx, "SELECT runbook FROM "+ctl.table("runs")+" WHERE ? = '' OR kind = ? ORDER BY started_at DESC, id DESC LIMIT 1", kind, kind).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("target: read the last cutover run from %s: %w", ctl.table("runs"), err)
	}
	r := &cutover.Run{}
	if err := json.Unmarshal([]byte(doc), r); err != nil {
		return nil, fmt.Errorf("read the runbook of a cutover run in %s: %w", ctl.table("runs"), err)
	}
	return r, nil
}

// ExpectedDowntime is the write downtime the last run of kind measured.
func (s *switcher) ExpectedDowntime(ctx context.Context, kind string) time.Duration {
	var us sql.NullInt64
	_ = s.tgt.db.QueryRowContext(ctx, "SELECT downtime_us FROM "+s.ctl.table("runs")+" WHERE kind = ? AND outcome = 'done' AND downtime_us IS NOT NULL ORDER BY started_at DESC LIMIT 1", kind).Scan(&us)
	return time.Duration(us.Int64) * time.Microsecond
}

// Reconnect takes the switch lock again when its session was lost; the pools open new
// connections by themselves.
func (s *switcher) Reconnect(ctx context.Context) error {
	if s.lock != nil && s.lock.PingContext(ctx) == nil {
		return nil
	}
	if s.lock != nil {
		discard(s.lock)
		s.lock = nil
	}
	return s.takeLock(ctx)
}

// CheckGates runs the gates of kind; they set the phase of the run when they hold.
func (s *switcher) CheckGates(ctx context.Context, kind string) (string, error) {
	if kind == "rollback" {
		return s.rollbackGates(ctx)
	}
	return s.switchGates(ctx)
}

// UndoGates sets the phase the gates of kind set back to the one before the run.
func (s *switcher) UndoGates(ctx context.Context, kind string) (string, error) {
	if kind == "rollback" {
		return s.phaseBack(ctx, control.PhaseRollingBack, control.PhaseSwitched)
	}
	return s.phaseBack(ctx, control.PhaseSwitching, control.PhaseCDC)
}

// switchGates checks that the switch can begin; it changes nothing but the phase (and
// creates the control database on the source, which its markers and reverse
// replication need).
func (s *switcher) switchGates(ctx context.Context) (string, error) {
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	switch s.st.Phase {
	case control.PhaseCDC, control.PhaseRolledBack:
	case control.PhaseSwitched:
		fail("the migration is already switched to the target: cutover rollback goes back, cutover finish ends it")
	default:
		fail("the migration is in phase %q: a switch needs change data capture running (cutover start, past the full load)", s.st.Phase)
	}
	running, err := streamRunning(ctx, s.tgt.db, s.p.ControlSchema)
	if err != nil {
		return "", err
	}
	if !running {
		fail("no cutover start is streaming the changes: run cutover start and let it catch up")
	}
	if s.dry {
		fmt.Fprintf(s.out, "      source: CREATE DATABASE IF NOT EXISTS %s and its tables (the switch's markers go there, reverse replication keeps its position there)\n", quote(s.p.ControlSchema))
	} else if _, err := openControl(ctx, s.src.db, s.p.ControlSchema); err != nil {
		fail("source: %v (the switch writes its sync markers there, and reverse replication keeps its position there)", err)
	} else if running {
		if took, err := s.waitMarker(ctx, s.src, s.tgt, "gate", s.p.Cutover.MaxLatency.D()); err != nil {
			fail("the target did not apply a marker written on the source within cutover.max_latency (%v): wait for change data capture to catch up (cutover status)", s.p.Cutover.MaxLatency)
		} else {
			s.gateLatency = took
		}
	}
	stats, err := s.ctl.TableStats(ctx)
	if err != nil {
		return "", fmt.Errorf("target: read table_stats: %w", err)
	}
	var mismatched []string
	for _, t := range stats {
		if t.Validation == control.ValidationMismatched {
			mismatched = append(mismatched, tableName{t.Schema, t.Table}.quoted())
		}
	}
	if len(mismatched) > 0 {
		fail("the last validation found differences in %s: cutover validate --repair, then cutover validate", validate.ListText(mismatched, 5))
	}
	problems = append(problems, s.reverseGates(ctx)...)
	problems = append(problems, s.blockGates(ctx, s.src, &s.tgt)...)
	open, err := openToApps(ctx, s.p, s.tgt.db, s.tgt.database, s.tableNames(s.tgt))
	if err != nil {
		return "", err
	}
	problems = append(problems, open...)
	if missing, err := s.missingObjects(ctx); err != nil {
		return "", err
	} else if len(missing) > 0 {
		fail("missing on the target: %s: create them there (they are on the source)", validate.ListText(missing, 8))
	}
	if len(problems) > 0 {
		return "", fmt.Errorf("%w:\n  - %s", cutover.ErrGates, strings.Join(problems, "\n  - "))
	}
	return fmt.Sprintf("every gate holds; a marker written on the source was applied in %v", s.gateLatency.Round(time.Millisecond)), s.setPhase(ctx, control.PhaseSwitching)
}

// tableNames are the migrated tables in sd's database.
func (s *switcher) tableNames(sd side) []tableName {
	out := make([]tableName, len(s.tables))
	for i, t := range s.tables {
		out[i] = tableName{sd.database, t}
	}
	return out
}

// reverseGates checks that reverse replication can read the target's binary log and
// write to the source.
func (s *switcher) reverseGates(ctx context.Context) []string {
	var problems []string
	vars := map[string]string{}
	rows, err := s.tgt.db.QueryContext(ctx, "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', 'binlog_row_image', 'binlog_row_metadata', 'server_id')")
	if err != nil {
		return []string{fmt.Sprintf("target: read what reverse replication needs there (the binary log's settings): %v", err)}
	}
	for rows.Next() {
		var k, v string
		if rows.Scan(&k, &v) == nil {
			vars[strings.ToLower(k)] = v
		}
	}
	rows.Close()
	want := []struct{ name, value string }{{"log_bin", "ON"}, {"binlog_format", "ROW"}, {"binlog_row_image", "FULL"}, {"binlog_row_metadata", "FULL"}}
	for _, w := range want {
		if !strings.EqualFold(vars[w.name], w.value) {
			problems = append(problems, fmt.Sprintf("the target's %s is %q: reverse replication reads the target's binary log, which needs %s = %s (SET GLOBAL %[3]s = '%[4]s' and in the configuration file, or log-bin and a restart for log_bin)",
				w.name, vars[w.name], w.name, w.value))
		}
	}
	var srcID string
	if err := s.src.db.QueryRowContext(ctx, "SELECT @@server_id").Scan(&srcID); err == nil && srcID == vars["server_id"] {
		problems = append(problems, fmt.Sprintf("the source and the target have the same server_id (%s): reverse replication would drop the target's events as the source's own: SET GLOBAL server_id on one of them", srcID))
	}
	return problems
}

// Tracked: the applier records the keys of the rows it changes (validation_dirty).
func (s *switcher) Tracked() bool { return true }

// ValidateBeforeBlock brings every table's validation up to the moment before the
// block; it is a gate: when it fails, nothing was blocked.
func (s *switcher) ValidateBeforeBlock(ctx context.Context) (string, error) {
	if s.dry {
		fmt.Fprintln(s.out, "      cutover validate --incremental while the users still write: a full pass of each table never validated, the changed rows of the others; every table must be equal")
		return "", nil
	}
	details, err := validate.PassesBeforeBlock(ctx, func(ctx context.Context, opts validate.Options) (*validate.Report, error) {
		return Validate(ctx, s.p, opts)
	}, quoteTable, s.p.ControlSchema)
	if err != nil {
		if perr := s.setPhase(context.WithoutCancel(ctx), control.PhaseCDC); perr != nil {
			err = errors.Join(err, perr)
		}
		return "", fmt.Errorf("%w: %w", cutover.ErrGates, err)
	}
	return strings.Join(details, "; "), nil
}

// ValidateWindow compares, inside the window, the rows changed since the validation
// before the block.
func (s *switcher) ValidateWindow(ctx context.Context) (string, error) {
	if s.dry {
		fmt.Fprintln(s.out, "      cutover validate --incremental: only the rows changed since the validation before the block; every table must be equal")
		return "", nil
	}
	rep, err := Validate(ctx, s.p, validate.Options{Incremental: true, RunningOnly: true})
	if err != nil {
		return "", fmt.Errorf("validation: %w", err)
	}
	if err := validate.Differences(rep, "the validation", quoteTable, s.p.ControlSchema); err != nil {
		return "", err
	}
	return validate.Detail(rep, quoteTable), nil
}

// quoteTable names a table as MySQL writes it.
func quoteTable(schema, table string) string { return tableName{schema, table}.quoted() }

// QA runs the plan's assertions against the target, then waits for the approval.
func (s *switcher) QA(ctx context.Context) (string, error) {
	qa := s.p.Cutover.QA
	for _, q := range qa.SQL {
		if s.dry {
			fmt.Fprintf(s.out, "      target: %s  -- must return true\n", q)
			continue
		}
		var ok sql.NullBool
		if err := s.tgt.db.QueryRowContext(ctx, q).Scan(&ok); err != nil {
			return "", fmt.Errorf("QA query %q on the target: %w (it must return one boolean)", q, err)
		}
		if !ok.Valid || !ok.Bool {
			got := "NULL"
			if ok.Valid {
				got = "false"
			}
			return "", fmt.Errorf("QA query %q on the target returned %s, not true", q, got)
		}
	}
	if err := s.hooks.Commands(ctx, "qa", qa.Commands, "CUTOVER_STEP=qa", "CUTOVER_RUN="+s.run.ID); err != nil {
		return "", err
	}
	detail := fmt.Sprintf("%d queries and %d commands passed", len(qa.SQL), len(qa.Commands))
	switch {
	case !s.p.Cutover.Approval:
		return detail, nil
	case s.opts.Yes:
		return detail + "; approved in advance (--yes)", nil
	case s.dry:
		fmt.Fprintf(s.out, "      wait for cutover approve\n")
		return detail, nil
	}
	fmt.Fprintf(s.out, "      waiting for the approval: run cutover approve (the downtime budget keeps counting)\n")
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		var by string
		err := s.tgt.db.QueryRowContext(ctx, "SELECT approved_by FROM "+s.ctl.table("approvals")+" WHERE run_id = ?", s.run.ID).Scan(&by)
		if err == nil {
			return detail + "; approved by " + by, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no approval: %w", context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// Approve approves the running switch (cutover.approval).
func Approve(ctx context.Context, p *plan.Plan, by string) (string, error) {
	tgt, _, err := openSide(ctx, "target", p.Target, 1)
	if err != nil {
		return "", err
	}
	defer tgt.Close()
	ctl, ok, err := readControl(ctx, tgt, p.ControlSchema)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("no migration on this target (no control database %s)", p.ControlSchema)
	}
	r, err := lastRun(ctx, ctl, "switch")
	if err != nil {
		return "", err
	}
	if r == nil || r.Outcome != string(cutover.Running) {
		return "", errors.New("no switch is running: nothing to approve")
	}
	_, err = tgt.ExecContext(ctx, "INSERT IGNORE INTO "+ctl.table("approvals")+" (run_id, approved_by) VALUES (?, ?)", r.ID, by)
	return r.ID, err
}
