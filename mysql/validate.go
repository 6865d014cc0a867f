package mysql

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/validate"
)

// cutover validate between MySQL/MariaDB servers: validate.Run's comparison, each
// table read on both sides at one point of the change stream.
//
// A point: a read view of the source at a binary log position P (MariaDB's read views
// report theirs; on MySQL a lock of the table held for the moment the view opens, as
// the load's snapshot does), then, once the target's applied position covers P, a read
// view of the target. The target's view holds whole groups of source transactions:
// every one up to P, and maybe some after it. In that same view the validator reads,
// from table_stats, the position of the last group that changed each table (the
// applier writes it in the group's own transaction): a table whose last change is
// within P holds on the target exactly what it held on the source at P, and its
// comparison is exact. A table changed after P is compared all the same; the rows that
// differ are read again at later points (validate's rechecks), as a change in flight
// is not a difference.
//
// No process streams the changes (cutover start is not running): the validation runs
// change data capture itself meanwhile, as cutover start would, so that the target
// follows the source to each point. The stream lock (streamlock.go) tells.

// The policy of points.
const (
	// maxPointAge is how long a point serves the tables validated after it: the
	// source's read view holds back its purge meanwhile.
	maxPointAge = time.Minute
	// pointTries is how many points are taken for a table before it is compared at
	// one where changes to it were in flight.
	pointTries = 3
	// pointPoll is how often the validator reads the target's applied position while
	// it waits for it to cover a point's.
	pointPoll = 20 * time.Millisecond
	// pointWait is how long the applied position may stand still before the wait
	// for a point gives up.
	pointWait = time.Minute
	// recordEvery: tables' outcomes are recorded together when they come this close.
	recordEvery = time.Second
)

// Validate runs cutover validate.
func Validate(ctx context.Context, p *plan.Plan, opts validate.Options) (*validate.Report, error) {
	return validatePass(ctx, p, opts, nil)
}

// validator is a validation pass between two MySQL/MariaDB servers.
type validator struct {
	p            *plan.Plan
	src, tgt     *sql.DB
	srcDB, tgtDB string
	srcMaria     bool
	tgtMaria     bool
	ctl          *Control
	copy         bool      // a one-shot copy: no change stream, every point exact
	copySnap     *Snapshot // a copy's snapshot still open: the source is read in one of its views
	shapes       [2]map[string]*valShape
	stats        map[string]control.TableStat // by table name
	chunkRows    int

	// the current point
	source, target pointSide
	view           *Snapshot              // the source's read view, when it holds one of its own
	pointAt        time.Time              // zero: no point open
	pointPos       string                 // its position
	changed        map[string]string      // each table's last change (table_stats.changed_position) in the target's view
	dirtyMax       map[string]int64       // each table's last row of validation_dirty in the target's view
	dirtyAt        map[string]int64       // and at the table's first point: the rows its outcome accounts for
	own            chan error             // the change data capture this validation runs, if any: its end
	ownErr         error                  // and how it ended
	points         int                    // points taken
	pending        []validate.TableReport // outcomes not recorded yet
	pendingSince   time.Time
	keepHold       bool   // a point's hold of the applier is kept until EndPoint (repair)
	release        func() // and lets it go
}

var _ validate.Engine = (*validator)(nil)

// validatePass validates; copySnap is a copy's snapshot when the load still holds it
// (validation.after_load).
func validatePass(ctx context.Context, p *plan.Plan, opts validate.Options, copySnap *Snapshot) (*validate.Report, error) {
	start := time.Now()
	if opts.ChunkRows <= 0 {
		opts.ChunkRows = cmp.Or(p.Validation.ChunkRows, validate.DefaultChunkRows)
	}
	v := &validator{p: p, copySnap: copySnap, chunkRows: opts.ChunkRows, dirtyAt: map[string]int64{}, source: pointSide{name: "source"}, target: pointSide{name: "target"}}
	var err error
	if v.src, v.srcDB, err = openSide(ctx, "source", p.Source, 3); err != nil {
		return nil, err
	}
	defer v.src.Close()
	if v.tgt, v.tgtDB, err = openSide(ctx, "target", p.Target, 4); err != nil {
		return nil, err
	}
	defer v.tgt.Close()
	ctl, ok, err := readControl(ctx, v.tgt, p.ControlSchema)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("nothing to validate: the target has no control database %s; run cutover start first", p.ControlSchema)
	}
	v.ctl = ctl
	st, err := ctl.State(ctx)
	if err != nil {
		return nil, err
	}
	switch st.Phase {
	case control.PhaseLoaded, control.PhaseCDC, control.PhaseSwitching, control.PhaseRolledBack:
	case control.PhaseSwitched, control.PhaseRollingBack:
		return nil, fmt.Errorf("the migration is switched to the target (phase %q): the target takes the writes, and validation compares the source with it while forward replication runs; cutover rollback goes back first", st.Phase)
	default:
		return nil, fmt.Errorf("nothing to validate yet: the migration is in phase %q; the full load must complete first (cutover start)", st.Phase)
	}
	stats, err := ctl.TableStats(ctx)
	if err != nil {
		return nil, fmt.Errorf("target: read table_stats: %w", err)
	}
	v.stats = map[string]control.TableStat{}
	for _, ts := range stats {
		v.stats[ts.Table] = ts
	}
	if v.srcMaria, err = isMariaDB(ctx, "source", v.src); err != nil {
		return nil, err
	}
	v.copy = st.Mode == control.ModeCopy
	if v.copy && opts.Repair {
		return nil, fmt.Errorf("--repair copies rows again while the applier holds still, and the migration %s is a one-shot copy (cdc.enabled: false) with none: copy the differing tables again (cutover finish, then cutover start)", p.ControlSchema)
	}
	if v.tgtMaria, err = isMariaDB(ctx, "target", v.tgt); err != nil {
		return nil, err
	}
	defer v.EndPoint(context.WithoutCancel(ctx))
	live := true
	if !v.copy {
		running, err := streamRunning(ctx, v.tgt, p.ControlSchema)
		if err != nil {
			return nil, err
		}
		if !running && opts.RunningOnly {
			return nil, validate.ErrNotStreaming
		}
		if !running {
			// No task streams the changes: run change data capture here while
			// validating, so that the target follows the source to each point.
			live = false
			stop := v.replicate(ctx, opts)
			defer stop()
		}
	}
	rep, err := validate.Run(ctx, v, opts, stats)
	if err != nil {
		return nil, err
	}
	rep.Live = live
	rep.Took, rep.Points = time.Since(start), v.points
	return rep, nil
}

// replicate runs change data capture until the returned stop is called.
func (v *validator) replicate(ctx context.Context, opts validate.Options) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	v.own = make(chan error, 1)
	go func() {
		out := opts.Out
		if out == nil {
			out = io.Discard
		}
		v.own <- replicate(ctx, v.p, engine.StartOptions{Out: out}, false)
	}()
	return func() {
		cancel()
		if v.ownErr == nil {
			<-v.own
		}
	}
}

// Describe reads the tables' columns and keys on both sides. A table whose columns
// differ may be a schema change the applier has not made yet: the target is brought to
// the source's position now, and both read again.
func (v *validator) Describe(ctx context.Context, tables [][2]string) error {
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t[1]
	}
	if err := v.describe(ctx, names); err != nil || v.copy {
		return err
	}
	for _, n := range names {
		if s, g := v.shapes[0][n], v.shapes[1][n]; s != nil && g != nil && !slices.Equal(s.order, g.order) {
			if err := v.newPoint(ctx, &validate.Table{Name: n}); err != nil {
				return err
			}
			return v.describe(ctx, names)
		}
	}
	return nil
}

func (v *validator) describe(ctx context.Context, names []string) error {
	for side, c := range []struct {
		db   *sql.DB
		name string
	}{{v.src, v.srcDB}, {v.tgt, v.tgtDB}} {
		shapes, err := describeTables(ctx, c.db, c.name, names)
		if err != nil {
			return fmt.Errorf("%s: read the tables' columns and keys: %w", []string{"source", "target"}[side], err)
		}
		v.shapes[side] = shapes
	}
	return nil
}

// describeTables reads the shapes of the named tables of database db; a table that
// does not exist is not in the map.
func describeTables(ctx context.Context, pool *sql.DB, db string, names []string) (map[string]*valShape, error) {
	if len(names) == 0 {
		return map[string]*valShape{}, nil
	}
	in := strings.TrimSuffix(strings.Repeat("?, ", len(names)), ", ")
	args := []any{db}
	for _, n := range names {
		args = append(args, n)
	}
	rows, err := pool.QueryContext(ctx, `SELECT TABLE_NAME, COLUMN_NAME, LOWER(DATA_TYPE), COLUMN_TYPE, coalesce(CHARACTER_SET_NAME, ''), coalesce(COLLATION_NAME, ''),
		IS_NULLABLE = 'YES'
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (`+in+`) ORDER BY TABLE_NAME, ORDINAL_POSITION`, args...)
	if err != nil {
		return nil, err
	}
	shapes := map[string]*valShape{}
	nullable := map[[2]string]bool{}
	for rows.Next() {
		var table, columnType string
		var null bool
		c := &valColumn{}
		if err := rows.Scan(&table, &c.name, &c.dataType, &columnType, &c.charset, &c.collation, &null); err != nil {
			rows.Close()
			return nil, err
		}
		c.unsigned = strings.Contains(strings.ToLower(columnType), "unsigned")
		s := shapes[table]
		if s == nil {
			s = &valShape{qname: tableName{db, table}.quoted(), columns: map[string]*valColumn{}}
			shapes[table] = s
		}
		s.columns[c.name] = c
		s.order = append(s.order, c.name)
		nullable[[2]string{table, c.name}] = null
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// The key: the primary key, else the unique index of the fewest columns, all NOT
	// NULL and whole (no prefix). Filtered here: a join of information_schema's tables,
	// which MariaDB builds anew for each row of a subquery, took a second.
	rows, err = pool.QueryContext(ctx, `SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME, SUB_PART IS NOT NULL
		FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (`+in+`) AND NON_UNIQUE = 0
		ORDER BY TABLE_NAME, INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	indexes := map[string]map[string][]string{} // table -> index -> columns
	unusable := map[[2]string]bool{}            // table, index: a nullable or prefix column
	var order []string
	for rows.Next() {
		var table, index, column string
		var prefix bool
		if err := rows.Scan(&table, &index, &column, &prefix); err != nil {
			return nil, err
		}
		if indexes[table] == nil {
			indexes[table] = map[string][]string{}
		}
		if indexes[table][index] == nil {
			order = append(order, table+"\x00"+index)
		}
		indexes[table][index] = append(indexes[table][index], column)
		if prefix || nullable[[2]string{table, column}] {
			unusable[[2]string{table, index}] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for table := range indexes {
		if s := shapes[table]; s != nil && indexes[table]["PRIMARY"] != nil {
			s.primary = true
		}
	}
	order = slices.DeleteFunc(order, func(ti string) bool {
		table, index, _ := strings.Cut(ti, "\x00")
		return unusable[[2]string{table, index}]
	})
	for _, ti := range order {
		table, index, _ := strings.Cut(ti, "\x00")
		s := shapes[table]
		cols := indexes[table][index]
		switch {
		case s == nil:
		case index == "PRIMARY":
			s.key, s.index = cols, index
		case s.key == nil || len(cols) < len(s.key) && indexes[table]["PRIMARY"] == nil:
			s.key, s.index = cols, index
		}
	}
	return shapes, nil
}

// Table is a described table as both sides compare it, with their readers: the
// source's columns and key, each column on the target too.
func (v *validator) Table(schema, name string) (*validate.Table, validate.Reader, validate.Reader, error) {
	s, g := v.shapes[0][name], v.shapes[1][name]
	switch {
	case s == nil:
		return nil, nil, nil, fmt.Errorf("the table is not on the source (%s.%s): dropped since it was loaded?", quote(v.srcDB), quote(name))
	case g == nil:
		return nil, nil, nil, fmt.Errorf("the table is not on the target (%s.%s)", quote(v.tgtDB), quote(name))
	}
	t := &validate.Table{Schema: schema, Name: name, Columns: s.order, Key: s.key}
	for _, c := range s.order {
		if g.columns[c] == nil {
			return nil, nil, nil, fmt.Errorf("column %s is on the source, not on the target: make the target's table %s.%s match the source's", quote(c), quote(v.tgtDB), quote(name))
		}
	}
	for _, c := range g.order {
		if s.columns[c] == nil {
			return nil, nil, nil, fmt.Errorf("column %s is on the target, not on the source: make the target's table %s.%s match the source's", quote(c), quote(v.tgtDB), quote(name))
		}
	}
	return t, &myReader{side: &v.source, sql: newReaderSQL(t, s)}, &myReader{side: &v.target, sql: newReaderSQL(t, g)}, nil
}

// Chunks splits a table into ranges of its key on the source, at the current point.
// The rows the load counted do not count those the changes added since (the applier
// does not count them): the server's estimate is taken when it is larger.
func (v *validator) Chunks(ctx context.Context, t *validate.Table, estimatedRows int64, n int) ([]validate.Range, error) {
	r := &myReader{side: &v.source, sql: newReaderSQL(t, v.shapes[0][t.Name])}
	var tableRows int64
	if err := v.source.conn.QueryRowContext(ctx, "SELECT coalesce(TABLE_ROWS, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
		v.srcDB, t.Name).Scan(&tableRows); err != nil {
		return nil, fmt.Errorf("source: table %s: read its estimated rows: %w", t.Name, err)
	}
	if tableRows > estimatedRows {
		estimatedRows, n = tableRows, int(tableRows/int64(v.chunkRows))
	}
	return r.boundaries(ctx, t, estimatedRows, n)
}

// Tracked: every applier records the keys it changes (validation_dirty), from the
// load's snapshot on: every table validated once is tracked since.
func (v *validator) Tracked(validated string) bool { return validated != "" }

// ChangedKeys reads, in the target's view of the point, the keys the applier recorded
// for the table and those that differed at its last validation.
func (v *validator) ChangedKeys(ctx context.Context, t *validate.Table, most int64) (validate.KeySet, bool, error) {
	seen := map[string]bool{}
	var keys validate.KeyList
	add := func(hexKey []string) error {
		if len(hexKey) != len(t.Key) {
			return errWhole
		}
		k := make([]string, len(hexKey))
		for i, h := range hexKey {
			b, err := hex.DecodeString(h)
			if err != nil {
				return fmt.Errorf("a changed key %q: %w", h, err)
			}
			k[i] = string(b)
		}
		if j := strings.Join(hexKey, ","); !seen[j] {
			seen[j] = true
			keys = append(keys, k)
		}
		if int64(len(keys)) > most {
			return errWhole
		}
		return nil
	}
	err := v.readChanged(ctx, t, add)
	if errors.Is(err, errWhole) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("target: table %s: read the changed keys: %w", t.Name, err)
	}
	return keys, false, nil
}

// errWhole: the changed rows are the whole table.
var errWhole = errors.New("whole")

func (v *validator) readChanged(ctx context.Context, t *validate.Table, add func([]string) error) error {
	rows, err := v.target.conn.QueryContext(ctx, "SELECT whole, `keys` FROM "+v.ctl.table("validation_dirty")+" WHERE schema_name = ? AND table_name = ? ORDER BY id",
		t.Schema, t.Name)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var whole bool
		var text string
		if err := rows.Scan(&whole, &text); err != nil {
			return err
		}
		var d dirtyRow
		if err := json.Unmarshal([]byte(text), &d); err != nil {
			return err
		}
		if whole || !slices.Equal(d.Columns, t.Key) {
			return errWhole
		}
		for _, k := range d.Keys {
			if err := add(k); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	failed, err := v.target.conn.QueryContext(ctx, "SELECT key_hex FROM "+v.ctl.table("validation_failures")+" WHERE schema_name = ? AND table_name = ?", t.Schema, t.Name)
	if err != nil {
		return err
	}
	defer failed.Close()
	for failed.Next() {
		var text string
		if err := failed.Scan(&text); err != nil {
			return err
		}
		var k []string
		if err := json.Unmarshal([]byte(text), &k); err != nil {
			return err
		}
		if err := add(k); err != nil {
			return err
		}
	}
	return failed.Err()
}

// AtPoint runs read with both sides in read views of one point: the current one while
// it is recent, later is false and the table had no change in flight there; else a
// new one, up to pointTries times for a table with changes in flight.
func (v *validator) AtPoint(ctx context.Context, t *validate.Table, later bool, read func() error) (validate.Point, error) {
	var exact bool
	for try := 1; ; try++ {
		if v.pointAt.IsZero() || later || time.Since(v.pointAt) > maxPointAge {
			if err := v.newPoint(ctx, t); err != nil {
				return validate.Point{Position: v.pointPos}, err
			}
		}
		var err error
		if exact, err = v.exact(t); err != nil {
			return validate.Point{Position: v.pointPos}, err
		}
		if exact || try >= pointTries {
			break
		}
		later = true
	}
	if _, ok := v.dirtyAt[t.Name]; !ok {
		v.dirtyAt[t.Name] = v.dirtyMax[t.Name] // the table's first point
	}
	pt := validate.Point{Position: v.pointPos, Exact: exact}
	if err := read(); err != nil {
		_ = v.EndPoint(ctx)
		return pt, err
	}
	return pt, nil
}

// exact says whether the target's view holds the table as the source's does: its last
// change (or, never changed since, its copy) is within the point's position.
func (v *validator) exact(t *validate.Table) (bool, error) {
	if v.copy {
		return true, nil
	}
	last := v.changed[t.Name]
	if last == "" {
		last = v.stats[t.Name].Position
	}
	if last == "" {
		return false, nil
	}
	in, err := covers(v.pointPos, last, v.srcMaria)
	if err != nil {
		return false, fmt.Errorf("table %s: compare its last change's position (%s) with the point's (%s): %w", t.Name, last, v.pointPos, err)
	}
	return in, nil
}

// newPoint ends the current point and opens a new one, locking t on a MySQL source
// for the moment its read view opens.
func (v *validator) newPoint(ctx context.Context, t *validate.Table) (err error) {
	if err := v.EndPoint(ctx); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = v.EndPoint(context.WithoutCancel(ctx))
		}
	}()
	if v.copy {
		if v.copySnap != nil {
			if v.source.conn, err = v.copySnap.Acquire(ctx); err != nil {
				return err
			}
		} else if v.source.conn, err = openView(ctx, v.src); err != nil {
			return fmt.Errorf("source: open a read view: %w", err)
		}
		if v.target.conn, err = openView(ctx, v.tgt); err != nil {
			return fmt.Errorf("target: open a read view: %w", err)
		}
		v.pointAt, v.pointPos = time.Now(), ""
		v.points++
		return nil
	}
	var pos string
	for attempt := 1; ; attempt++ {
		var state string
		var release func()
		if pos, state, release, err = v.holdPoint(ctx, t.Name); err != nil {
			return err
		}
		if state == pointPassed && attempt < pointTries {
			release()
			v.view.Close() // the applier was beyond the point already: a later one
			v.view, v.source.conn = nil, nil
			continue
		}
		v.target.conn, err = openView(ctx, v.tgt)
		if v.keepHold {
			v.release = release
		} else {
			release()
		}
		if err != nil {
			return fmt.Errorf("target: open a read view: %w", err)
		}
		break
	}
	rows, err := v.target.conn.QueryContext(ctx, "SELECT table_name, changed_position FROM "+v.ctl.table("table_stats"))
	if err != nil {
		return fmt.Errorf("target: read the tables' last changes: %w", err)
	}
	defer rows.Close()
	v.changed = map[string]string{}
	for rows.Next() {
		var name, changed string
		if err := rows.Scan(&name, &changed); err != nil {
			return err
		}
		v.changed[name] = changed
	}
	if err := rows.Err(); err != nil {
		return err
	}
	dirty, err := v.target.conn.QueryContext(ctx, "SELECT table_name, MAX(id) FROM "+v.ctl.table("validation_dirty")+" GROUP BY table_name")
	if err != nil {
		return fmt.Errorf("target: read the changed keys recorded: %w", err)
	}
	defer dirty.Close()
	v.dirtyMax = map[string]int64{}
	for dirty.Next() {
		var name string
		var id int64
		if err := dirty.Scan(&name, &id); err != nil {
			return err
		}
		v.dirtyMax[name] = id
	}
	if err := dirty.Err(); err != nil {
		return err
	}
	v.pointAt, v.pointPos = time.Now(), pos
	v.points++
	return nil
}

// sourceView opens the source's read view of a new point and returns its position.
func (v *validator) sourceView(ctx context.Context, table string) (string, error) {
	methods := []string{BySnapshotPosition}
	if !v.srcMaria {
		methods = []string{ByTableLocks, ByGlobalLock}
	}
	var err error
	v.view, err = TakeSnapshot(ctx, v.src, v.srcMaria, SnapshotOptions{Tables: []string{tableName{v.srcDB, table}.quoted()}, Workers: 1, Methods: methods},
		func(string, ...any) {})
	if err != nil {
		return "", fmt.Errorf("source: a read view at a binary log position: %w", err)
	}
	if v.source.conn, err = v.view.Acquire(ctx); err != nil {
		return "", err
	}
	return v.view.Pos.String(), nil
}

// StreamError says why the change stream does not reach a validation's point: the
// validation stops at the first.
type StreamError struct{ Reason, Fix string }

func (e *StreamError) Error() string {
	return e.Reason + ", so the validation cannot reach its point of the change stream\n" + e.Fix
}

// StopsValidation: no table after it can reach its point either.
func (e *StreamError) StopsValidation() {}

var _ validate.Stopping = (*StreamError)(nil)

// waitApplied waits until the target's applied position covers pos, or done says
// so: while the applied position moves, and while a process streams the changes.
func (v *validator) waitApplied(ctx context.Context, pos string, done func() (bool, error)) error {
	applied, movedAt, checked := "", time.Now(), time.Now()
	for {
		var now string
		if err := v.tgt.QueryRowContext(ctx, "SELECT applied_position FROM "+v.ctl.table("state")+" WHERE id = 1").Scan(&now); err != nil {
			return cmp.Or(ctx.Err(), fmt.Errorf("target: read the applied position: %w", err))
		}
		if now != "" {
			in, err := covers(now, pos, v.srcMaria)
			if err != nil {
				return fmt.Errorf("compare the target's applied position (%s) with the point's (%s): %w", now, pos, err)
			}
			if in {
				return nil
			}
		}
		if ok, err := done(); err != nil || ok {
			return err
		}
		if now != applied {
			applied, movedAt = now, time.Now()
		}
		if time.Since(movedAt) > pointWait {
			return &StreamError{Reason: fmt.Sprintf("change data capture applied nothing for %v (the target is at %s, the point at %s)", pointWait, cmp.Or(applied, "the load's snapshot"), pos),
				Fix: "something holds the applier back (a lock on the target?): cutover status shows its position and latency; validate again once it moves"}
		}
		if time.Since(checked) >= time.Second {
			checked = time.Now()
			if err := v.streaming(ctx); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pointPoll):
		}
	}
}

// streaming returns why no change reaches the target, or nil while they may.
func (v *validator) streaming(ctx context.Context) error {
	if v.own != nil {
		if v.ownErr == nil {
			select {
			case err := <-v.own:
				v.ownErr = cmp.Or(err, errors.New("it ended"))
			default:
				return nil
			}
		}
		return &StreamError{Reason: "the change data capture this validation runs (no cutover start was running) stopped: " + v.ownErr.Error(),
			Fix: "run cutover start, which says more, then cutover validate"}
	}
	running, err := streamRunning(ctx, v.tgt, v.p.ControlSchema)
	if err != nil {
		return cmp.Or(ctx.Err(), err)
	}
	if !running {
		return &StreamError{Reason: "cutover start stopped streaming the changes during the validation",
			Fix: "run cutover start again, then cutover validate (or cutover validate alone: with no cutover start running, it streams the changes itself)"}
	}
	return nil
}

// EndPoint ends the read views of the current point.
func (v *validator) EndPoint(ctx context.Context) error {
	if v.release != nil {
		v.release()
		v.release = nil
	}
	if v.source.conn != nil {
		if v.copySnap != nil {
			v.copySnap.Release(v.source.conn)
		} else if v.view == nil {
			discard(v.source.conn)
		}
		v.source.conn = nil
	}
	if v.view != nil {
		v.view.Close()
		v.view = nil
	}
	if v.target.conn != nil {
		discard(v.target.conn)
		v.target.conn = nil
	}
	v.pointAt = time.Time{}
	return nil
}

// Record records a table's outcome, with those that follow within recordEvery.
func (v *validator) Record(ctx context.Context, tv validate.TableReport) error {
	if len(v.pending) == 0 {
		v.pendingSince = time.Now()
	}
	v.pending = append(v.pending, tv)
	if time.Since(v.pendingSince) < recordEvery {
		return nil
	}
	return v.Flush(ctx)
}

// Flush records the outcomes waiting in table_stats and their differences in
// validation_failures, in one transaction.
func (v *validator) Flush(ctx context.Context) error {
	if len(v.pending) == 0 {
		return nil
	}
	if err := v.flush(ctx); err != nil {
		names := make([]string, len(v.pending))
		for i, tv := range v.pending {
			names[i] = tv.Table
		}
		return fmt.Errorf("target: record the validation of %s: %w", strings.Join(names, ", "), err)
	}
	v.pending = v.pending[:0]
	return nil
}

// flush writes the outcomes in one transaction. The applier writes table_stats then
// validation_dirty in each group: so does flush (every table's row first, in the
// table's order), so that one waits for the other rather than both for each other; a
// deadlock all the same is tried again.
func (v *validator) flush(ctx context.Context) error {
	slices.SortFunc(v.pending, func(a, b validate.TableReport) int {
		return cmp.Or(strings.Compare(a.Schema, b.Schema), strings.Compare(a.Table, b.Table))
	})
	var err error
	for range 3 {
		if err = v.flushOnce(ctx); !isDeadlock(err) {
			return err
		}
	}
	return err
}

// isDeadlock says whether err is InnoDB's deadlock (its transaction rolled back).
func isDeadlock(err error) bool {
	var me *driver.MySQLError
	return errors.As(err, &me) && me.Number == 1213
}

func (v *validator) flushOnce(ctx context.Context) error {
	tx, err := v.tgt.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, tv := range v.pending {
		if _, err := tx.ExecContext(ctx, "UPDATE "+v.ctl.table("table_stats")+" SET validation = ?, validated_at = now(6), validation_mismatches = ?, validation_error = ?, validated_position = ? WHERE schema_name = ? AND table_name = ?",
			tv.State, tv.Mismatches, tv.Error, tv.Position, tv.Schema, tv.Table); err != nil {
			return err
		}
	}
	for _, tv := range v.pending {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+v.ctl.table("validation_failures")+" WHERE schema_name = ? AND table_name = ?", tv.Schema, tv.Table); err != nil {
			return err
		}
		for _, d := range tv.Differences {
			key, _ := json.Marshal(d.Key)
			hexKey := make([]string, len(d.Key))
			for i, k := range d.Key {
				hexKey[i] = hex.EncodeToString([]byte(k))
			}
			keyHex, _ := json.Marshal(hexKey)
			cols := []byte("[]")
			if len(d.Columns) > 0 {
				cols, _ = json.Marshal(d.Columns)
			}
			var sv, gv any
			if d.Kind == validate.RecordDiff {
				s, _ := json.Marshal(d.Source)
				g, _ := json.Marshal(d.Target)
				sv, gv = string(s), string(g)
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO "+v.ctl.table("validation_failures")+" (schema_name, table_name, kind, `key`, `columns`, source_values, target_values, key_hex) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
				tv.Schema, tv.Table, string(d.Kind), string(key), string(cols), sv, gv, string(keyHex)); err != nil {
				return err
			}
		}
		if upTo := v.dirtyAt[tv.Table]; upTo > 0 && (tv.State == control.ValidationValidated || tv.State == control.ValidationMismatched) {
			// Every change recorded before the table's first point is compared now.
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+v.ctl.table("validation_dirty")+" WHERE schema_name = ? AND table_name = ? AND id <= ?", tv.Schema, tv.Table, upTo); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}
