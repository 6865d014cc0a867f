package mysql

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/load"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/validate"
)

// FullLoad runs the full load between two MySQL/MariaDB servers, or resumes it:
// load.FullLoad's checklist, each step of it run by a loadJob.
func FullLoad(ctx context.Context, p *plan.Plan, opts engine.StartOptions) error {
	disp := opts.Display
	if disp == nil {
		disp = &load.Lines{W: opts.Out}
	}
	job := &loadJob{p: p, out: opts.Out, disp: disp}
	_, err := load.FullLoad(ctx, p, job, opts.Out, disp, load.Words{Complete: func(st control.State) string {
		return fmt.Sprintf("full load complete. The change stream starts at position %s of the source's binary log;\n"+
			"the source must keep its binary log from there until cutover start goes on into change data capture.\n", st.Position)
	}, Stream: func(st control.State) string {
		return fmt.Sprintf("the change stream reads the binary log as %s from position %s", st.Slot, st.Position)
	}})
	return err
}

// loadJob is a full load between two MySQL/MariaDB servers: read views of one
// snapshot on the source, the schema from SHOW CREATE in two parts around the rows,
// the rows by LOAD DATA, the control state in its own database on the target.
type loadJob struct {
	p    *plan.Plan
	out  io.Writer
	disp load.Display

	src, tgt     *sql.DB
	srcDB, tgtDB string // the databases the URLs name
	mariadb      bool
	ctl          *Control
	tables       []tableName
	snap         *Snapshot
	position     string // the snapshot's, as the state records it
	schema       *schema
}

var _ load.Job = (*loadJob)(nil)

// Begin opens both sides and reads the control state.
func (l *loadJob) Begin(ctx context.Context) (control.State, error) {
	st := control.State{Phase: control.PhaseNew, Mode: control.ModeCopy}
	var err error
	if l.src, l.srcDB, err = openSide(ctx, "source", l.p.Source, l.p.FullLoad.Parallel+2); err != nil {
		return st, err
	}
	// a worker's connection, and one to build a loaded table's indexes
	if l.tgt, l.tgtDB, err = openSide(ctx, "target", l.p.Target, 2*l.p.FullLoad.Parallel+2); err != nil {
		return st, err
	}
	if l.mariadb, err = isMariaDB(ctx, "source", l.src); err != nil {
		return st, err
	}
	ctl, ok, err := readControl(ctx, l.tgt, l.p.ControlSchema)
	if err != nil || !ok {
		return st, err
	}
	l.ctl = ctl
	return ctl.State(ctx)
}

// openSide opens a pool of n connections to a side and names its database.
func openSide(ctx context.Context, side string, e plan.Endpoint, n int) (*sql.DB, string, error) {
	cfg, err := Config(e)
	if err != nil {
		return nil, "", fmt.Errorf("%s.url %w", side, err)
	}
	db, err := Open(ctx, side, e, n)
	return db, cfg.DBName, err
}

// ReadSourceAs has nothing to do: a copy and a load before change capture read the
// source the same way.
func (l *loadJob) ReadSourceAs(context.Context, bool) error { return nil }

func (l *loadJob) Assessment() *check.Report {
	return Assess(context.Background(), l.p, engine.AssessOptions{})
}

func (l *loadJob) SkipAssessment() {} // it runs only when Assessment is called

func (l *loadJob) OpenControl(ctx context.Context) (err error) {
	l.ctl, err = openControl(ctx, l.tgt, l.p.ControlSchema)
	return err
}

func (l *loadJob) SetState(ctx context.Context, st control.State) error {
	return l.ctl.SetState(ctx, st)
}

// Close ends the snapshot and the pools.
func (l *loadJob) Close(context.Context) {
	if l.snap != nil {
		l.snap.Close()
	}
	for _, db := range []*sql.DB{l.src, l.tgt} {
		if db != nil {
			db.Close()
		}
	}
}

// TableList reads the source database's tables the plan migrates.
func (l *loadJob) TableList(ctx context.Context, _ bool) (err error) {
	l.tables, err = listTables(ctx, l.src, l.srcDB, l.p)
	return err
}

// listTables reads the tables of the source database db that the plan migrates.
func listTables(ctx context.Context, src *sql.DB, db string, p *plan.Plan) ([]tableName, error) {
	rows, err := src.QueryContext(ctx, `SELECT TABLE_NAME FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME`, db)
	if err != nil {
		return nil, fmt.Errorf("list the source's tables: %w", err)
	}
	defer rows.Close()
	var tables []tableName
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		if p.Tables.Includes(db, name) {
			tables = append(tables, tableName{db, name})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(tables) == 0 {
		return nil, fmt.Errorf("the source database %s has no table the plan's tables.include takes", db)
	}
	return tables, nil
}

// Snapshot opens the workers' read views at one point of the binary log (a copy's
// at one point of time); the load begins there, a resumed one goes on from a new
// one (the tables it copies then start their change stream at its position).
func (l *loadJob) Snapshot(ctx context.Context, st *control.State, copyOnly bool) error {
	quoted := make([]string, len(l.tables))
	for i, t := range l.tables {
		quoted[i] = t.quoted()
	}
	var err error
	l.snap, err = TakeSnapshot(ctx, l.src, l.mariadb, SnapshotOptions{Tables: quoted, Workers: l.p.FullLoad.Parallel, WithoutPosition: copyOnly},
		func(f string, a ...any) { l.disp.Step(fmt.Sprintf(f, a...)) })
	if err != nil {
		return err
	}
	// A copy has no binary log position: its snapshot is named by when and how it
	// was taken.
	l.position = l.snap.Pos.String()
	mode, what := control.ModeCDC, "a full load, then change data capture,"
	if copyOnly {
		l.position = fmt.Sprintf("%s UTC (%s)", time.Now().UTC().Format("2006-01-02 15:04:05.000"), l.snap.Method)
		mode, what = control.ModeCopy, "a one-shot copy (cdc.enabled: false)"
	}
	switch st.Phase {
	case control.PhaseNew, control.PhaseSchema:
		slot := st.Slot
		if !copyOnly && slot == "" {
			slot = streamSlot + strconv.FormatUint(uint64(randomServerID()), 10)
		}
		*st = control.State{Phase: control.PhaseSchema, Mode: mode, Position: l.position, Slot: slot}
		if err := l.ctl.SetState(ctx, *st); err != nil {
			return err
		}
		if err := l.ctl.SetMode(ctx, mode); err != nil {
			return err
		}
		l.disp.Step(fmt.Sprintf("%s of %d tables from %s", what, len(l.tables), l.srcDB))
	default:
		l.disp.Step(fmt.Sprintf("resuming the %s phase with a new snapshot at %s", st.Phase, l.position))
	}
	return nil
}

// randomServerID is a server_id for the change stream, from the top of the range
// (servers are usually numbered from 1): unlikely to be another replica's.
func randomServerID() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return 1<<31 | binary.BigEndian.Uint32(b[:])>>1
}

// OpenWorkers has nothing to open: the snapshot's read views are the workers' source.
func (l *loadJob) OpenWorkers(context.Context) {}

// ReadSchema reads the tables' definitions at the snapshot; announce says what the
// copy does not create.
func (l *loadJob) ReadSchema(ctx context.Context, announce bool) error {
	view, err := l.snap.Acquire(ctx)
	if err != nil {
		return err
	}
	defer l.snap.Release(view)
	if l.schema, err = readSchema(ctx, view, l.srcDB, l.tables); err != nil {
		return err
	}
	if announce {
		for _, line := range l.schema.notCarried() {
			l.disp.Step(line)
		}
	}
	return nil
}

func (l *loadJob) TablesPresent(ctx context.Context) (int, int, error) {
	var n int
	names := make([]any, 0, len(l.tables)+1)
	names = append(names, l.tgtDB)
	for _, t := range l.tables {
		names = append(names, t.name)
	}
	err := l.tgt.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN ("+
		strings.TrimSuffix(strings.Repeat("?, ", len(l.tables)), ", ")+")", names...).Scan(&n)
	return n, len(l.tables), err
}

// withTarget runs f on a connection of the target of its own, closed after.
func (l *loadJob) withTarget(ctx context.Context, f func(*sql.Conn) error) error {
	conn, err := l.tgt.Conn(ctx)
	if err != nil {
		return err
	}
	defer discard(conn)
	return f(conn)
}

func (l *loadJob) CreateTables(ctx context.Context) error {
	return l.withTarget(ctx, func(c *sql.Conn) error { return l.schema.createTables(ctx, c, l.tgtDB) })
}

// CloseTarget closes the target to every account but the migration's until the
// switch (one writable side at every moment).
func (l *loadJob) CloseTarget(ctx context.Context) error {
	detail, stuck, err := closeTarget(ctx, l.p, l.tgt, l.ctl, l.tgtDB, l.tables)
	if err != nil {
		return err
	}
	if detail != "" {
		l.disp.Step("closed the target to the applications until the switch: " + detail)
	}
	for _, s := range stuck {
		l.disp.Step("the target stays open to the applications through " + s)
	}
	return nil
}

// CopyTables copies every table not loaded yet: a table a stopped run left loading is
// emptied and copied again whole.
func (l *loadJob) CopyTables(ctx context.Context) error {
	view, err := l.snap.Acquire(ctx)
	if err != nil {
		return err
	}
	cp, err := planCopy(ctx, view, l.tables, l.tgtDB, l.snap.Views())
	l.snap.Release(view)
	if err != nil {
		return err
	}
	cp.skipBinlog = !l.p.FullLoad.TargetBinlog
	stats := make([]control.TableStat, len(cp.tables))
	for i, t := range cp.tables {
		stats[i] = control.TableStat{Schema: t.Schema, Table: t.Name, EstimatedBytes: t.EstimatedBytes}
	}
	if err := l.ctl.QueueTables(ctx, stats); err != nil {
		return err
	}
	done, err := l.ctl.TableStats(ctx)
	if err != nil {
		return err
	}
	todo, partly := load.Pending(cp.tables, done)
	for _, t := range partly {
		if _, err := l.tgt.ExecContext(ctx, "TRUNCATE TABLE "+cp.specs[t].target); err != nil {
			return fmt.Errorf("table %s: empty it on the target before copying it again: %w", cp.specs[t].target, err)
		}
	}
	workers := l.snap.Views()
	how := ""
	if cp.skipBinlog {
		how = ", without the target's binary log (full_load.target_binlog: false)"
	}
	l.disp.Step(fmt.Sprintf("copying %d tables (%d loaded before) with %d workers%s", len(todo), len(cp.tables)-len(todo), workers, how))
	l.disp.Begin(todo)
	defer l.disp.End()
	return load.Run(ctx, todo, workers, func(ctx context.Context) (load.Worker, error) {
		in, err := openRowsIn(ctx, l.tgt, cp)
		if err != nil {
			return nil, err
		}
		in.finish = l.buildIndexes
		return &load.Pipe{Out: &rowsOut{snap: l.snap, plan: cp}, In: in}, nil
	}, &recorder{ctl: l.ctl, disp: l.disp, position: l.position})
}

// buildIndexes adds a loaded table's secondary indexes, while the other workers copy
// on: the server sorts one table's keys as the others' rows come in, where it would
// sort every table's after the last row (BuildObjects finds them made).
func (l *loadJob) buildIndexes(ctx context.Context, t *load.Table) error {
	for i := range l.schema.tables {
		if td := &l.schema.tables[i]; td.name == t.Name {
			return l.withTarget(ctx, func(c *sql.Conn) error {
				if err := setUpDDL(ctx, c); err != nil {
					return err
				}
				return td.buildIndexes(ctx, c, l.tgtDB)
			})
		}
	}
	return nil
}

// BuildObjects adds the secondary indexes tables lack, the foreign keys, then the
// views.
func (l *loadJob) BuildObjects(ctx context.Context) error {
	l.disp.Step("building secondary indexes, foreign keys and views")
	return l.withTarget(ctx, func(c *sql.Conn) error { return l.schema.buildObjects(ctx, c, l.tgtDB) })
}

// GiveAccess says what it leaves: MySQL's grants belong to accounts, which are the
// server's, not the database's.
func (l *loadJob) GiveAccess(context.Context) error {
	l.disp.Step("accounts and grants are not copied: they are the server's (SHOW GRANTS FOR each account on the source lists them); create them on the target before the applications use it")
	return nil
}

// CopySequences has nothing to set: each table was created with the source's
// AUTO_INCREMENT counter, and InnoDB raises it past every row loaded.
func (l *loadJob) CopySequences(context.Context) error {
	l.disp.Step("auto-increment counters: each table's as the source's when its definition was read")
	return nil
}

// ValidateAtSnapshot validates every table of a copy (validation.after_load), the
// source read in a view of the copy's snapshot while the load holds it.
func (l *loadJob) ValidateAtSnapshot(ctx context.Context) error {
	l.disp.Step("validating every table (validation.after_load)")
	rep, err := validatePass(ctx, l.p, validate.Options{BusyPercent: 100}, l.snap)
	if err != nil {
		return fmt.Errorf("validation after the load: %w", err)
	}
	l.disp.Step(validate.Summary(rep))
	if !rep.Equal {
		return fmt.Errorf("validation after the load: %w", validate.ErrNotEqual)
	}
	return nil
}

// recorder keeps table_stats current and shows each table's progress.
type recorder struct {
	ctl      *Control
	disp     load.Display
	position string
}

var _ load.Recorder = (*recorder)(nil)

func (r *recorder) Started(ctx context.Context, t *load.Table) error {
	r.disp.Started(t)
	return r.ctl.tableStarted(ctx, t.Schema, t.Name)
}

func (r *recorder) Progress(ctx context.Context, t *load.Table, rows, bytes int64) error {
	r.disp.Progress(t, rows, bytes)
	return r.ctl.tableProgress(ctx, t.Schema, t.Name, rows, bytes)
}

func (r *recorder) Loaded(ctx context.Context, t *load.Table, rows, bytes int64, took time.Duration) error {
	if err := r.ctl.tableLoaded(ctx, t.Schema, t.Name, rows, bytes, r.position); err != nil {
		return err
	}
	r.disp.Loaded(t, rows, bytes, took)
	return nil
}

func (r *recorder) Failed(ctx context.Context, t *load.Table, err error) error {
	r.disp.Failed(t, err)
	return r.ctl.tableFailed(ctx, t.Schema, t.Name, err)
}

// Finish ends a migration: a running cutover start is asked to stop (and waited for,
// a few seconds), the control database is dropped (keepControl: its phase set to
// finished), and what stays as it was is said: the source stays live, the accounts
// the load locked on the target stay locked. The binary log stream leaves nothing on
// the source to drop.
func Finish(ctx context.Context, p *plan.Plan, out io.Writer, keepControl bool) error {
	tgt, _, err := openSide(ctx, "target", p.Target, 2)
	if err != nil {
		return err
	}
	defer tgt.Close()
	ctl, ok, err := readControl(ctx, tgt, p.ControlSchema)
	if err != nil {
		return err
	}
	if !ok {
		fmt.Fprintf(out, "no migration to finish: the target has no control database %s\n", p.ControlSchema)
		return nil
	}
	st, err := ctl.State(ctx)
	if err != nil {
		return err
	}
	switch st.Phase {
	case control.PhaseSwitching, control.PhaseRollingBack:
		kind := map[string]string{control.PhaseSwitching: "switch", control.PhaseRollingBack: "rollback"}[st.Phase]
		return fmt.Errorf("a cutover %s is running, or was interrupted (phase %s): let it end, or run cutover %[1]s again, which picks an interrupted one up, before cutover finish", kind, st.Phase)
	}
	live, closed := "source", "target"
	if st.Phase == control.PhaseSwitched {
		live, closed = "target", "source"
	}
	if st.Mode == control.ModeCDC && st.Phase != control.PhaseFinished {
		if err := stopTask(ctx, ctl, st); err != nil {
			return err
		}
		fmt.Fprintln(out, "stopped change data capture (a running cutover start ends)")
	}
	locked, err := lockedAccounts(ctx, ctl)
	if err != nil {
		return err
	}
	if len(locked[closed]) > 0 {
		fmt.Fprintf(out, "the %s stays live; left locked on the %s, as cutover locked them so that only the %[1]s takes the applications' writes: %[3]s (ALTER USER ... ACCOUNT UNLOCK on the %[2]s when it is to take them)\n",
			live, closed, strings.Join(locked[closed], ", "))
	}
	readOnly, err := readOnlyLeft(ctx, ctl)
	if err != nil {
		return err
	}
	if was, ok := readOnly[closed]; ok {
		fmt.Fprintf(out, "the %s stays live; the %s's server is left read-only (read_only = ON, which cutover.block: read_only set; it was %s), so that only the %[1]s takes the applications' writes: SET GLOBAL read_only = %[3]s on the %[2]s when it is to take them\n",
			live, closed, was)
	}
	if live == "target" {
		fmt.Fprintln(out, "the migrated tables' triggers are on the target (the switch moved them), and the events run there (disabled on the source)")
	}
	if err := dropSourceControl(ctx, p, out); err != nil {
		fmt.Fprintf(out, "warning: %v\n", err) // a source retired after the switch does not stop the finish
	}
	if keepControl {
		st.Phase = control.PhaseFinished
		if err := ctl.SetState(ctx, st); err != nil {
			return err
		}
		fmt.Fprintf(out, "finished; the control database %s is kept on the target. Nothing of the migration is left on the source.\n", p.ControlSchema)
		return nil
	}
	if err := ctl.drop(ctx); err != nil {
		return fmt.Errorf("drop the control database %s on the target: %w", p.ControlSchema, err)
	}
	fmt.Fprintf(out, "finished: dropped the control database %s on the target. Nothing of the migration is left on the source.\n", p.ControlSchema)
	return nil
}

// dropSourceControl drops the control database a switch made on the source (where its
// sync markers went and reverse replication kept its position), when there is one.
func dropSourceControl(ctx context.Context, p *plan.Plan, out io.Writer) error {
	src, _, err := openSide(ctx, "source", p.Source, 1)
	if err != nil {
		return fmt.Errorf("%w: the source's control database %s (made by the switch) could not be dropped: cutover finish again once the source answers, or DROP DATABASE it there", err, p.ControlSchema)
	}
	defer src.Close()
	var n int
	if err := src.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", p.ControlSchema).Scan(&n); err != nil {
		return fmt.Errorf("source: %w", err)
	}
	if n == 0 {
		return nil
	}
	if _, err := src.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quote(p.ControlSchema)); err != nil {
		return fmt.Errorf("source: drop the control database %s the switch made there: %w", p.ControlSchema, err)
	}
	fmt.Fprintf(out, "dropped the control database %s on the source (the switch's markers, reverse replication's position)\n", p.ControlSchema)
	return nil
}

// stopTask asks a running cutover start to stop (the finishing phase, which it reads
// every second) and waits until it says it stopped, or, when none runs, a few seconds.
func stopTask(ctx context.Context, ctl *Control, st control.State) error {
	st.Phase = control.PhaseFinishing
	if err := ctl.SetState(ctx, st); err != nil {
		return err
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if cur, err := ctl.State(ctx); err == nil && cur.Phase == control.PhaseFinished {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// readOnlyLeft are the sides whose server cutover.block: read_only left read-only,
// each with its read_only before.
func readOnlyLeft(ctx context.Context, ctl *Control) (map[string]string, error) {
	out := map[string]string{}
	rows, err := queryRows(ctx, ctl.db, "SELECT side, was FROM "+ctl.table("read_only_servers"))
	var me *driver.MySQLError
	if errors.As(err, &me) && me.Number == 1146 {
		return out, nil // a control database of an older version: none
	}
	if err != nil {
		return nil, fmt.Errorf("read the read-only servers in the control database %s: %w", ctl.name, err)
	}
	for _, r := range rows {
		out[r[0]] = r[1]
	}
	return out, nil
}

// lockedAccounts are the accounts cutover left locked, by side: those the load locked
// on the target, and those a switch or a rollback locked.
func lockedAccounts(ctx context.Context, ctl *Control) (map[string][]string, error) {
	out := map[string][]string{}
	for _, q := range []struct{ table, query string }{
		{"locked_accounts", "SELECT 'target', user_name, host_name FROM %s WHERE run = '" + loadRun + "'"},
		{"blocked_accounts", "SELECT DISTINCT side, user_name, host_name FROM %s"},
	} {
		var n int
		if err := ctl.db.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", ctl.name, q.table).Scan(&n); err != nil {
			return nil, err
		}
		if n == 0 {
			continue
		}
		rows, err := ctl.db.QueryContext(ctx, fmt.Sprintf(q.query, ctl.table(q.table)))
		if err != nil {
			return nil, fmt.Errorf("read the locked accounts in the control database %s: %w", ctl.name, err)
		}
		for rows.Next() {
			var side string
			var a account
			if err := rows.Scan(&side, &a.user, &a.host); err != nil {
				rows.Close()
				return nil, err
			}
			out[side] = append(out[side], a.String())
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	for _, l := range out {
		slices.Sort(l)
	}
	return out, nil
}
