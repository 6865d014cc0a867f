package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/validate"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// validateOptions are the options of a validation pass, with those only the
// package sets.
type validateOptions struct {
	validate.Options
	beforeMarker func() // tests: runs between the source's snapshot and the marker
	// sourceSnapshot: a one-shot copy's exported snapshot, still open; the source is
	// read at it, so the comparison holds even if the source was written since.
	sourceSnapshot string
}

// validator holds the connections of a validation pass.
type validator struct {
	p            *plan.Plan
	src, tgt     *pgx.Conn
	flush        *pgx.Conn // a second connection to the source, outside the snapshot
	ctl          *Control
	slot         string
	own          *ownCDC   // the change data capture this validation runs, if any
	aliveAt      time.Time // when cutover start was last seen streaming
	pointAt      time.Time // when the current point's snapshots were taken; zero: none open
	pointPos     string    // the current point's position in the change stream
	inFlight     *[]string // the current point's tables with changes in flight (quoted); nil: any table
	points       int       // points taken
	beforeMarker func()
	// openPoint opens a new point when newPoint does not (from another engine), and
	// endSource ends its source's read view.
	openPoint func(context.Context) error
	endSource func()
	// copy: a one-shot copy, with no change stream: points are plain snapshots.
	copy           bool
	sourceSnapshot string                       // the copy's exported snapshot, when still held
	trackedFrom    string                       // state.changes_tracked_from: since when the applier records changed rows
	shapes         [2]map[[2]string]*tableShape // source's and target's, by schema and name
	listening      bool                         // for the applier's notifications of points
	pending        []validate.TableReport       // outcomes not recorded yet
	pendingSince   time.Time
}

// Validate compares every migrated table (or those matching opts.Tables) between
// source and target, records the outcome in the control schema and returns it.
func Validate(ctx context.Context, p *plan.Plan, opts validate.Options) (*validate.Report, error) {
	return validatePass(ctx, p, validateOptions{Options: opts})
}

func validatePass(ctx context.Context, p *plan.Plan, opts validateOptions) (*validate.Report, error) {
	start := time.Now()
	if opts.ChunkRows <= 0 {
		opts.ChunkRows = p.Validation.ChunkRows
	}
	if opts.ChunkRows <= 0 {
		opts.ChunkRows = validate.DefaultChunkRows
	}
	// The readers hold snapshots open: the control schema and the WAL flush for the
	// validation markers each have a connection of their own.
	canonical := canonicalSession()
	conns, err := connectAll(ctx, p, []connSpec{{"source", canonical}, {"target", canonical}, {side: "target"}, {side: "source"}})
	if err != nil {
		return nil, err
	}
	defer closeAll(ctx, conns)
	src, tgt, ctlConn, flush := conns[0], conns[1], conns[2], conns[3]
	ctl, ok, err := ReadControl(ctx, ctlConn, p.ControlSchema)
	if err != nil {
		return nil, fmt.Errorf("target: read the control schema %s: %w", p.ControlSchema, err)
	}
	if !ok {
		return nil, fmt.Errorf("nothing to validate: the target has no control schema %s; run cutover start first", p.ControlSchema)
	}
	if err := ctl.current(); err != nil {
		return nil, err
	}
	// The state, every table's row and since when changes are tracked: one round trip.
	var st control.State
	var stats []control.TableStat
	var trackedFrom, direction string
	if err := ctl.send(ctx, func(b *pgx.Batch) {
		ctl.queueState(b, &st)
		ctl.queueTableStats(b, &stats)
		b.Queue("SELECT changes_tracked_from, replication FROM " + ctl.table("state")).QueryRow(func(row pgx.Row) error { return row.Scan(&trackedFrom, &direction) })
	}); err != nil {
		return nil, fmt.Errorf("target: read the migration state and table_stats: %w", err)
	}
	switch st.Phase {
	case control.PhaseLoaded, control.PhaseCDC, control.PhaseSwitching, control.PhaseRolledBack:
	case control.PhaseSwitched, control.PhaseRollingBack:
		return nil, fmt.Errorf("the migration is %s: the target is live and replication runs from it to the source; validate compares while the source is live (before a switch or after a rollback)", st.Phase)
	default:
		return nil, fmt.Errorf("nothing to validate yet: the migration is in phase %q; the full load must complete first (cutover start)", st.Phase)
	}
	if st.Mode == control.ModeCopy {
		return validateCopy(ctx, p, opts, start, &validator{p: p, src: src, tgt: tgt, ctl: ctl, copy: true, sourceSnapshot: opts.sourceSnapshot}, stats)
	}
	if direction != control.ReplicateForward {
		// No change reaches the target now, and none may be streamed here.
		return nil, &StreamError{Reason: fmt.Sprintf("replication from the source to the target is held %s by a switch or a rollback (phase %s)", direction, st.Phase),
			Fix: "validate once the switch or rollback is done (cutover status)"}
	}
	v := &validator{p: p, src: src, tgt: tgt, flush: flush, ctl: ctl, slot: st.Slot, trackedFrom: trackedFrom, beforeMarker: opts.beforeMarker, aliveAt: time.Now()}
	running, err := slotActive(ctx, src, "source", st.Slot)
	if err != nil {
		return nil, err
	}
	if !running && opts.RunningOnly {
		return nil, errNotStreaming
	}
	if !running {
		// No task streams the changes: run change data capture here while validating,
		// so that the target follows the source and each comparison has its point.
		stop, err := v.replicate(ctx, opts.Out)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	rep, err := validate.Run(ctx, v, opts.Options, stats)
	if err != nil {
		return nil, err
	}
	rep.Live = running
	rep.Took, rep.Points = time.Since(start), v.points
	return rep, nil
}

// validateCopy validates a one-shot copy: there is no change stream, so no marker;
// each point is a snapshot of each side taken side by side, the source's at the
// copy's exported snapshot while cutover start holds it, or else now (the source is
// assumed quiet in a copy: rows written since the copy are reported as differences).
func validateCopy(ctx context.Context, p *plan.Plan, opts validateOptions, start time.Time, v *validator, stats []control.TableStat) (*validate.Report, error) {
	if opts.Repair {
		return nil, fmt.Errorf("--repair copies rows again through the change stream, and the migration %s is a one-shot copy (cdc.enabled: false) with none: copy the differing tables again (TRUNCATE them on the target, cutover finish, then cutover start)", p.ControlSchema)
	}
	if opts.RunningOnly {
		return nil, errNotStreaming
	}
	rep, err := validate.Run(ctx, v, opts.Options, stats)
	if err != nil {
		return nil, err
	}
	rep.Live = true // no change stream to run
	rep.Took, rep.Points = time.Since(start), v.points
	return rep, nil
}

// slotActive reports whether a process streams from the slot: the task is running and
// changes may be in flight between source and target.
func slotActive(ctx context.Context, conn *pgx.Conn, side, slot string) (bool, error) {
	var active bool
	err := conn.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&active)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: read the replication slot %s: %w", side, slot, err)
	}
	return active, nil
}

// validate.Run runs the validation of tables on the validator; a StreamError stops it.
var (
	_ validate.Engine   = (*validator)(nil)
	_ validate.Stopping = (*StreamError)(nil)
)

// Table is a described table as the validator compares it, and its readers.
func (v *validator) Table(schema, name string) (t *validate.Table, src, tgt validate.Reader, err error) {
	t, s, g, err := v.describe(schema, name)
	if err != nil {
		return nil, nil, nil, err
	}
	rs, rg := v.readers(t, s, g)
	return t, rs, rg, nil
}

// shapesOf is a described table's shape on each side.
func (v *validator) shapesOf(t *validate.Table) (s, g *tableShape) {
	k := [2]string{t.Schema, t.Name}
	return v.shapes[0][k], v.shapes[1][k]
}

// Chunks splits a table into ranges from a sample of its keys on the source.
func (v *validator) Chunks(ctx context.Context, t *validate.Table, estimatedRows int64, n int) ([]validate.Range, error) {
	s, _ := v.shapesOf(t)
	src := newReader(v.src)
	src.add(t, s)
	return src.boundaries(ctx, t, estimatedRows, n)
}

// ChangedKeys reads the changed keys in the target's snapshot of the point: a key of
// one column as the text of an array, others one by one.
func (v *validator) ChangedKeys(ctx context.Context, t *validate.Table, most int64) (validate.KeySet, bool, error) {
	if len(t.Key) == 1 {
		return v.dirtyKeyArray(ctx, t, most)
	}
	keys, whole, err := v.dirtyKeys(ctx, t, most)
	return validate.KeyList(keys), whole, err
}

// readers reads a table on each side.
func (v *validator) readers(t *validate.Table, s, g *tableShape) (src, tgt *pgReader) {
	src, tgt = newReader(v.src), newReader(v.tgt)
	src.add(t, s)
	tgt.add(t, g)
	return src, tgt
}

// Tracked reports whether the applier has recorded every row changed since a
// table's last validation (read at position validated).
func (v *validator) Tracked(validated string) bool {
	if v.trackedFrom == "" || validated == "" {
		return false
	}
	from, err1 := pglogrepl.ParseLSN(v.trackedFrom)
	at, err2 := pglogrepl.ParseLSN(validated)
	return err1 == nil && err2 == nil && at >= from
}

// dirtyKeyArray is dirtyKeys for a key of one column: the keys stay the text of an
// array, which the target writes and the source casts. Several groups' arrays (and
// the keys that differed last time) are joined as text; a key in more than one is
// harmless (an index scan reads each value of an array once) but counted once.
func (v *validator) dirtyKeyArray(ctx context.Context, t *validate.Table, most int64) (keys validate.KeySet, whole bool, err error) {
	// NULL keys: a truncate, or a table the stream names no key of. A key whose
	// columns do not hold the validator's: the stream's replica identity is another.
	// A key of the last differences is a JSON array of its columns. Merging the arrays
	// in SQL (unnest, DISTINCT, array_agg) costs several times writing them.
	var total int64
	var texts []string
	var failed *string
	err = v.tgt.QueryRow(ctx, `
		WITH d AS MATERIALIZED (
		    SELECT keys, array_position(columns, $3) AS p, cardinality(columns) AS n
		    FROM `+v.ctl.table("validation_dirty")+` WHERE schema_name = $1 AND table_name = $2),
		f AS (
		    SELECT key->>0 AS k FROM `+v.ctl.table("validation_failures")+`
		    WHERE schema_name = $1 AND table_name = $2 AND CASE WHEN jsonb_typeof(key) = 'array' THEN jsonb_array_length(key) = 1 END),
		w AS (
		    SELECT coalesce(bool_or(keys IS NULL OR p IS NULL OR coalesce(cardinality(keys) % nullif(n, 0) <> 0, true) OR array_position(keys, NULL) IS NOT NULL), false) AS whole,
		           coalesce(sum(cardinality(keys) / nullif(n, 0)), 0) + (SELECT count(*) FROM f) AS total
		    FROM d)
		SELECT w.whole, w.total,
		    CASE WHEN NOT w.whole AND w.total <= $4 THEN (
		        SELECT array_agg(CASE WHEN n = 1 THEN keys
		            ELSE ARRAY(SELECT u.k FROM unnest(keys) WITH ORDINALITY AS u(k, i) WHERE (u.i - 1) % n = p - 1 ORDER BY u.i) END::text)
		        FROM d WHERE cardinality(keys) > 0) END,
		    CASE WHEN NOT w.whole AND w.total <= $4 THEN (SELECT array_agg(k)::text FROM f) END
		FROM w`, t.Schema, t.Name, t.Key[0], most).Scan(&whole, &total, &texts, &failed)
	if err != nil {
		return nil, false, fmt.Errorf("target: read the changed keys: %w", err)
	}
	if whole || total > most {
		return nil, true, nil
	}
	oneGroup := len(texts) == 1 && failed == nil // its keys each once
	if failed != nil {
		texts = append(texts, *failed)
	}
	a := &keyArray{conn: v.tgt}
	switch {
	case len(texts) == 0:
		return validate.KeyList(nil), false, nil
	case oneGroup:
		a.text, a.n = texts[0], int(total)
	default:
		if a.text, a.n, err = joinArrays(texts, int(total)); err != nil {
			return nil, false, fmt.Errorf("target: read the changed keys: %w", err)
		}
	}
	return a, false, nil
}

// joinArrays joins the texts of one-dimensional arrays (as PostgreSQL writes them)
// into one, and counts its distinct elements: the same value is written the same
// way in each. elements is about how many there are.
func joinArrays(texts []string, elements int) (joined string, distinct int, err error) {
	seen := make(map[string]struct{}, elements)
	var b strings.Builder
	size := 0
	for _, text := range texts {
		size += len(text)
	}
	b.Grow(size)
	b.WriteByte('{')
	for _, text := range texts {
		if len(text) < 2 || text[0] != '{' || text[len(text)-1] != '}' {
			return "", 0, fmt.Errorf("not the text of an array: %.40q", text)
		}
		inner := text[1 : len(text)-1]
		if inner == "" {
			continue
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.WriteString(inner)
		start, quoted := 0, false
		for i := 0; i <= len(inner); i++ {
			switch {
			case i == len(inner) || (!quoted && inner[i] == ','):
				seen[inner[start:i]] = struct{}{}
				start = i + 1
			case inner[i] == '"':
				quoted = !quoted
			case inner[i] == '\\' && quoted:
				i++ // the escaped character
			}
		}
	}
	b.WriteByte('}')
	return b.String(), len(seen), nil
}

// dirtyKeys reads, in the target's snapshot, the keys of the rows changed since the
// table's last validation and of the rows that differed then, in the validator's key
// order; whole is true when the table must be compared whole instead. Keys of one
// column take dirtyKeyArray's way.
func (v *validator) dirtyKeys(ctx context.Context, t *validate.Table, most int64) (keys [][]string, whole bool, err error) {
	keys, whole, err = v.changedKeys(ctx, t, most)
	if err != nil || whole {
		return nil, whole, err
	}
	keys, err = v.withFailedKeys(ctx, t, keys)
	return keys, int64(len(keys)) > most, err
}

// changedKeys reads the keys the applier recorded for t, each once, as the applier
// wrote them (the target's text of each value); whole is true when the table must be
// compared whole instead.
func (v *validator) changedKeys(ctx context.Context, t *validate.Table, most int64) (keys [][]string, whole bool, err error) {
	rows, err := v.tgt.Query(ctx, "SELECT columns, keys FROM "+v.ctl.table("validation_dirty")+" WHERE schema_name = $1 AND table_name = $2", t.Schema, t.Name)
	if err != nil {
		return nil, false, fmt.Errorf("target: read the changed keys: %w", err)
	}
	seen := map[string]bool{}
	var cols []string
	var flat []*string
	idx := make([]int, len(t.Key))
	_, err = pgx.ForEachRow(rows, []any{&cols, &flat}, func() error {
		// NULL keys: a truncate, or a table the stream names no key of. A key whose
		// columns are not the validator's: the stream's replica identity is another.
		whole = whole || flat == nil || len(cols) == 0 || len(flat)%len(cols) != 0 || int64(len(keys)) > most
		for j, c := range t.Key {
			idx[j] = slices.Index(cols, c)
			whole = whole || idx[j] < 0
		}
		if whole {
			return nil
		}
		for i := 0; i < len(flat); i += len(cols) {
			k := make([]string, len(idx))
			for j, at := range idx {
				if flat[i+at] == nil {
					whole = true
					return nil
				}
				k[j] = *flat[i+at]
			}
			if ks := strings.Join(k, "\x00"); !seen[ks] {
				seen[ks] = true
				keys = append(keys, k)
			}
		}
		return nil
	})
	if err != nil || whole {
		return nil, whole, err
	}
	return keys, int64(len(keys)) > most, nil
}

// withFailedKeys adds to keys those of the rows that differed at t's last validation
// (as the validation wrote them), each key once.
func (v *validator) withFailedKeys(ctx context.Context, t *validate.Table, keys [][]string) ([][]string, error) {
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		seen[strings.Join(k, "\x00")] = true
	}
	var text string
	rows, err := v.tgt.Query(ctx, "SELECT key::text FROM "+v.ctl.table("validation_failures")+" WHERE schema_name = $1 AND table_name = $2",
		t.Schema, t.Name)
	if err != nil {
		return nil, fmt.Errorf("target: read the last differences: %w", err)
	}
	_, err = pgx.ForEachRow(rows, []any{&text}, func() error {
		var k []string
		if err := json.Unmarshal([]byte(text), &k); err != nil || len(k) != len(t.Key) {
			return nil
		}
		if ks := strings.Join(k, "\x00"); !seen[ks] {
			seen[ks] = true
			keys = append(keys, k)
		}
		return nil
	})
	return keys, err
}

// Describe reads the shapes of the tables on both sides at once, for describe.
func (v *validator) Describe(ctx context.Context, tables [][2]string) error {
	var shapes [2]map[[2]string]*tableShape
	var errs [2]error
	var wg sync.WaitGroup
	for i, c := range []*pgx.Conn{v.src, v.tgt} {
		wg.Go(func() { shapes[i], errs[i] = describeTables(ctx, c, tables) })
	}
	wg.Wait()
	for i, side := range []string{"source", "target"} {
		if errs[i] != nil {
			return fmt.Errorf("%s: describe the tables: %w", side, errs[i])
		}
	}
	v.shapes = shapes
	return nil
}

// describe is a table's shape on both sides and what the validator compares: the
// source's columns (all must exist on the target) and key.
func (v *validator) describe(schema, name string) (*validate.Table, *tableShape, *tableShape, error) {
	obj := pgx.Identifier{schema, name}.Sanitize()
	s := v.shapes[0][[2]string{schema, name}]
	if s == nil {
		return nil, nil, nil, fmt.Errorf("table %s is no longer on the source", obj)
	}
	g := v.shapes[1][[2]string{schema, name}]
	if g == nil {
		return nil, nil, nil, fmt.Errorf("table %s is not on the target", obj)
	}
	var missing []string
	for _, c := range s.columns {
		if _, ok := g.types[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return nil, nil, nil, fmt.Errorf("table %s: columns %v are on the source only: add them on the target", obj, missing)
	}
	return &validate.Table{Schema: schema, Name: name, Columns: s.columns, Key: s.key}, s, g, nil
}

// markerWait is how long the validator waits for the applier to reach its marker
// while the applied position does not move: past it, the stream is blocked, and the
// validation stops.
const markerWait = 2 * time.Minute

// maxPointAge is how long one point serves the tables validated after it: the source's
// snapshot holds back its vacuum meanwhile. A table being compared keeps its point.
const maxPointAge = time.Minute

// pointTries is how many points the validator takes for a table before it compares
// the table at one where changes to it were in flight (the rows they changed are then
// compared again at later points).
const pointTries = 3

// AtPoint runs read with the source and the target each in a repeatable-read snapshot
// of the same point of the change stream: the current point when it is recent enough,
// later is false and no change to t was in flight there, else a new one. The source's
// snapshot is taken as a marker goes into its WAL; the applier, reaching the marker,
// has committed every transaction the source committed before it and exports the
// target's snapshot there. A transaction whose commit was under way as the source's
// snapshot was taken is on the target only (see points): the point is not exact when
// one changed t at each of pointTries points; the rows it changed differ, and a
// recheck at a later point settles them.
func (v *validator) AtPoint(ctx context.Context, t *validate.Table, later bool, read func() error) (validate.Point, error) {
	table := pgx.Identifier{t.Schema, t.Name}.Sanitize()
	var exact bool
	for try := 1; ; try++ {
		if v.pointAt.IsZero() || later || time.Since(v.pointAt) > maxPointAge {
			if err := v.takePoint(ctx); err != nil {
				return validate.Point{Position: v.pointPos}, err
			}
		}
		exact = v.inFlight != nil && !slices.Contains(*v.inFlight, table)
		if exact || try >= pointTries {
			break
		}
		later = true
	}
	pt := validate.Point{Position: v.pointPos, Exact: exact}
	if err := read(); err != nil {
		_ = v.EndPoint(ctx) // a failed statement aborted the transactions
		return pt, err
	}
	return pt, nil
}

// takePoint ends the current point and opens a new one.
func (v *validator) takePoint(ctx context.Context) error {
	if err := v.EndPoint(ctx); err != nil {
		return err
	}
	open := v.newPoint
	if v.openPoint != nil {
		open = v.openPoint
	}
	for attempt := 1; ; attempt++ {
		err := open(ctx)
		if err == nil {
			v.points++
			return nil
		}
		if !errors.Is(err, errPointGone) || attempt == 3 {
			return err
		}
	}
}

// EndPoint ends the snapshots of the current point.
func (v *validator) EndPoint(ctx context.Context) error {
	if v.pointAt.IsZero() {
		return nil
	}
	v.pointAt = time.Time{}
	if v.endSource != nil {
		v.endSource()
	}
	var err error
	for _, c := range []*pgx.Conn{v.src, v.tgt} {
		if c == nil {
			continue // another engine's source (endSource)
		}
		if _, cerr := c.Exec(context.WithoutCancel(ctx), "COMMIT"); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

var errNotStreaming = validate.ErrNotStreaming

var errPointGone = errors.New("the target's snapshot at the marker is no longer exported")

// StreamError says why the change stream does not reach a validation's points. Every
// table needs one: the validation stops at the first.
type StreamError struct {
	Reason string // what does not hold
	Err    error  // the error the stream stopped on, when known
	Fix    string
}

func (e *StreamError) Error() string {
	msg := e.Reason + ", so the validation cannot reach its point of the change stream"
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg + "\n" + e.Fix
}

func (e *StreamError) Unwrap() error { return e.Err }

// StopsValidation: no table after it can reach its point either.
func (e *StreamError) StopsValidation() {}

// newPoint opens the snapshots of a new point.
func (v *validator) newPoint(ctx context.Context) (err error) {
	if v.copy {
		return v.newCopyPoint(ctx)
	}
	id := randomHex(8)
	if !v.listening {
		if _, err := v.ctl.conn.Exec(ctx, "LISTEN "+pointsChannel); err != nil {
			return fmt.Errorf("target: %w", err)
		}
		v.listening = true
	}
	defer func() {
		if err != nil {
			v.src.Exec(context.WithoutCancel(ctx), "ROLLBACK")
			v.tgt.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	// The snapshot is taken as the SELECT starts: the marker follows it in the WAL,
	// with the snapshot's transactions for the applier to check (see points).
	begin := "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
	if v.beforeMarker != nil {
		if _, err := v.src.Exec(ctx, begin+"SELECT pg_current_snapshot()"); err != nil {
			return fmt.Errorf("source: take a snapshot: %w", err)
		}
		v.beforeMarker()
		begin = ""
	}
	if _, err := v.src.Exec(ctx, begin+"SELECT pg_logical_emit_message(false, "+quoteLiteral(markerPrefix)+", "+quoteLiteral(id+" ")+" || pg_current_snapshot()::text)"); err != nil {
		return fmt.Errorf("source: write a validation marker into the WAL: %w", err)
	}
	if err := flushWAL(ctx, v.flush); err != nil {
		return err
	}
	pt, err := v.waitPoint(ctx, id)
	if err != nil {
		return err
	}
	if _, err := v.tgt.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT "+quoteLiteral(pt.snapshot)); err != nil {
		return fmt.Errorf("%w: %v", errPointGone, err)
	}
	v.pointAt, v.pointPos, v.inFlight = time.Now(), pt.position, pt.inFlight
	return nil
}

// newCopyPoint opens a point of a one-shot copy: no change stream reaches the target,
// so its snapshot now is the copy's; the source's is the copy's snapshot when held.
// No table has a change in flight: every comparison is exact.
func (v *validator) newCopyPoint(ctx context.Context) error {
	begin := "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
	if v.sourceSnapshot != "" {
		begin += "; SET TRANSACTION SNAPSHOT " + quoteLiteral(v.sourceSnapshot)
	}
	if _, err := v.src.Exec(ctx, begin); err != nil {
		v.src.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		return fmt.Errorf("source: take a snapshot to validate at: %w", err)
	}
	if _, err := v.tgt.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1"); err != nil {
		v.src.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		v.tgt.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		return fmt.Errorf("target: take a snapshot to validate at: %w", err)
	}
	v.pointAt, v.pointPos, v.inFlight = time.Now(), "", &[]string{}
	return nil
}

// flushWAL flushes the source's WAL past what was written before it: the change stream
// sends only flushed WAL, and a non-transactional message is not flushed of its own.
// A heartbeat is (see writeHeartbeat). Padded past the stream's low-water mark, it
// wakes the stream's reader as it arrives, with the marker before it.
func flushWAL(ctx context.Context, conn *pgx.Conn) error {
	if err := writeHeartbeat(ctx, conn, readLowWater); err != nil {
		return fmt.Errorf("source: flush the WAL: %w", err)
	}
	return nil
}

// pointsChannel is the channel the applier notifies with a marker's ID once it has
// recorded the target's snapshot there.
const pointsChannel = "cutover_validation_points"

// How often the validator looks for its point without a notification (an applier of
// an earlier version sends none).
const pointPoll = 50 * time.Millisecond

// liveCheck is how often a validator waiting for its marker checks that the change
// stream runs and moves.
const liveCheck = time.Second

// pointRecord is what the applier recorded at a marker.
type pointRecord struct {
	snapshot, position string
	inFlight           *[]string // the tables changed in flight; nil: any table
	recent             []byte    // from another engine: the last transactions applied (JSON)
}

// waitPoint waits for the applier to record the target's snapshot at marker id. It
// stops as soon as the change stream cannot get there: ctx ends, the stream stopped,
// or it applied nothing for markerWait.
func (v *validator) waitPoint(ctx context.Context, id string) (pt pointRecord, err error) {
	// A point costs no more round trips than it takes while the stream keeps up: the
	// checks come after liveCheck.
	deadline, checked := time.Now().Add(markerWait), time.Now()
	applied := ""
	points := v.ctl.table("validation_points")
	for {
		var perr string
		err := v.ctl.conn.QueryRow(ctx, "DELETE FROM "+points+" WHERE id = $1 RETURNING snapshot, position, error, in_flight, recent", id).Scan(&pt.snapshot, &pt.position, &perr, &pt.inFlight, &pt.recent)
		switch {
		case err == nil && perr != "":
			return pt, fmt.Errorf("target: %s", perr)
		case err == nil:
			return pt, nil
		case ctx.Err() != nil:
			return pt, ctx.Err()
		case !errors.Is(err, pgx.ErrNoRows):
			return pt, fmt.Errorf("target: read the validation point: %w", err)
		}
		if err := v.streaming(ctx); err != nil {
			return pt, err
		}
		if time.Since(checked) >= liveCheck {
			checked = time.Now()
			var now string
			if err := v.ctl.conn.QueryRow(ctx, "SELECT applied_position FROM "+v.ctl.table("state")).Scan(&now); err != nil {
				return pt, cmp.Or(ctx.Err(), fmt.Errorf("target: read the applied position: %w", err))
			}
			if now != applied {
				applied, deadline = now, time.Now().Add(markerWait)
			}
		}
		if time.Now().After(deadline) {
			return pt, &StreamError{Reason: fmt.Sprintf("change data capture runs but applied nothing for %v", markerWait),
				Fix: "something holds the applier back (a lock on the target?): cutover status shows its position and latency; validate again once it moves"}
		}
		if err := waitNotification(v.ctl.conn, id, pointPoll); err != nil {
			return pt, fmt.Errorf("target: wait for the validation point: %w", err)
		}
	}
}

// streaming returns why the change stream does not run, or nil while it may. It
// reads the slot and the task's record once every liveCheck.
func (v *validator) streaming(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if v.own != nil {
		return v.own.check()
	}
	if time.Since(v.aliveAt) < liveCheck {
		return nil
	}
	if v.flush == nil {
		// From another engine: cutover start holds the stream's lock while it runs.
		running, err := lockHeld(ctx, v.ctl.conn, pairStreamLock(v.p))
		if err != nil || running {
			v.aliveAt = time.Now()
			return cmp.Or(ctx.Err(), err)
		}
		if err := v.taskStopped(ctx); err != nil {
			return err
		}
		return &StreamError{Reason: "no cutover start applies the source's changes", Fix: "run cutover start, then cutover validate"}
	}
	active, err := slotActive(ctx, v.flush, "source", v.slot)
	if err != nil {
		return cmp.Or(ctx.Err(), err)
	}
	if active {
		v.aliveAt = time.Now()
		return nil
	}
	return v.taskStopped(ctx)
}

// taskSilence is how long cutover start may go without recording its latency (it does
// every reportEvery) before a validator takes it for gone.
const taskSilence = 5 * reportEvery

// taskStopped says why cutover start, which streamed the changes when the validation
// began, no longer does, as it recorded it; nil while it may be reconnecting.
func (v *validator) taskStopped(ctx context.Context) error {
	var stoppedAt, measuredAt *time.Time
	var stopError string
	var now time.Time
	err := v.ctl.conn.QueryRow(ctx, "SELECT stopped_at, stop_error, measured_at, now() FROM "+v.ctl.table("state")).Scan(&stoppedAt, &stopError, &measuredAt, &now)
	if err != nil {
		return cmp.Or(ctx.Err(), fmt.Errorf("target: read the task's state: %w", err))
	}
	again := "run cutover start again, then cutover validate (or cutover validate alone: with no cutover start running, it streams the changes itself)"
	if v.slot == "" { // from another engine, whose change stream only cutover start applies
		again = "run cutover start again, then cutover validate"
	}
	switch {
	case stoppedAt != nil && stopError != "":
		return &StreamError{Reason: "cutover start stopped on an error at " + stoppedAt.UTC().Format(time.DateTime) + " UTC",
			Err: errors.New(stopError), Fix: "once it is fixed, " + again}
	case stoppedAt != nil:
		return &StreamError{Reason: "cutover start stopped at " + stoppedAt.UTC().Format(time.DateTime) + " UTC (SIGINT or SIGTERM)", Fix: again}
	// From another engine the task records no latency: a killed one is seen by its
	// applied position, which stays behind.
	case v.slot != "" && (measuredAt == nil || now.Sub(*measuredAt) > taskSilence):
		last := "never"
		if measuredAt != nil {
			last = measuredAt.UTC().Format(time.DateTime) + " UTC"
		}
		return &StreamError{Reason: fmt.Sprintf("cutover start is no longer running (nothing reads the replication slot %s, and the task last reported at %s: killed?)", v.slot, last),
			Fix: again}
	}
	return nil
}

// waitNotification waits up to d for a notification with this payload.
func waitNotification(conn *pgx.Conn, payload string, d time.Duration) error {
	// The connection's read deadline bounds the wait: a context's end would send the
	// server a cancel request, which could hit the next statement.
	nc := conn.PgConn().Conn()
	if err := nc.SetReadDeadline(time.Now().Add(d)); err != nil {
		return err
	}
	defer nc.SetReadDeadline(time.Time{})
	for {
		n, err := conn.WaitForNotification(context.Background())
		switch {
		case pgconn.Timeout(err):
			return nil
		case err != nil:
			return err
		case n.Payload == payload:
			return nil
		}
	}
}

// ownCDC is the change data capture a validation runs while no cutover start does.
type ownCDC struct {
	finished chan struct{} // closed when it returned, with err
	err      error
}

// check returns why it stopped, once it has.
func (o *ownCDC) check() error {
	select {
	case <-o.finished:
	default:
		return nil
	}
	err := o.err
	if err == nil {
		err = errors.New("it ended (cutover finish?)")
	}
	return &StreamError{Reason: "change data capture, which validate runs as no cutover start does, stopped", Err: err,
		Fix: "once it is fixed, run cutover validate again (with or without cutover start running)"}
}

// replicate runs change data capture in this process for the validation's duration.
func (v *validator) replicate(ctx context.Context, out io.Writer) (stop func(), err error) {
	if out == nil {
		out = io.Discard
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	own := &ownCDC{finished: make(chan struct{})}
	go func() {
		own.err = Replicate(rctx, v.p, engine.StartOptions{Out: out})
		close(own.finished)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-own.finished }) }
	deadline := time.Now().Add(markerWait)
	for {
		active, err := slotActive(ctx, v.src, "source", v.slot)
		if err != nil {
			stop()
			return nil, cmp.Or(ctx.Err(), err)
		}
		if active {
			v.own = own
			return stop, nil
		}
		select {
		case <-own.finished:
			cancel()
			return nil, own.check()
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, errors.New("change data capture did not start streaming within 2 minutes")
		}
	}
}

// quoteLiteral quotes a string as an SQL literal (for statements without parameters).
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// recordEvery is how long a table's outcome may wait to be recorded with the next
// ones' (each recording is a round trip and a commit on the target).
const recordEvery = time.Second

// record writes a table's outcome to table_stats and its differences to
// validation_failures, with the outcomes of the tables after it when they follow soon.
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

// Flush records the outcomes waiting, in one transaction.
func (v *validator) Flush(ctx context.Context) error {
	if len(v.pending) == 0 {
		return nil
	}
	c := v.ctl
	err := c.send(ctx, func(b *pgx.Batch) {
		b.Queue("BEGIN")
		for _, tv := range v.pending {
			b.Queue("DELETE FROM "+c.table("validation_failures")+" WHERE schema_name = $1 AND table_name = $2", tv.Schema, tv.Table)
			for _, d := range tv.Differences {
				key, _ := json.Marshal(d.Key)
				var sv, gv []byte
				if d.Kind == validate.RecordDiff {
					sv, _ = json.Marshal(d.Source)
					gv, _ = json.Marshal(d.Target)
				}
				cols := d.Columns
				if cols == nil {
					cols = []string{}
				}
				b.Queue("INSERT INTO "+c.table("validation_failures")+" (schema_name, table_name, kind, key, columns, source_values, target_values) VALUES ($1, $2, $3, $4, $5, $6, $7)",
					tv.Schema, tv.Table, string(d.Kind), string(key), cols, nullJSON(sv), nullJSON(gv))
			}
			if tv.Position != "" {
				// Every change applied before the pass's point is validated now.
				b.Queue("DELETE FROM "+c.table("validation_dirty")+" WHERE schema_name = $1 AND table_name = $2 AND position < $3::pg_lsn",
					tv.Schema, tv.Table, tv.Position)
			}
			b.Queue("UPDATE "+c.table("table_stats")+" SET validation_state = $3, validated_at = now(), validation_mismatches = $4, validation_error = $5, validated_position = $6 WHERE schema_name = $1 AND table_name = $2",
				tv.Schema, tv.Table, tv.State, tv.Mismatches, tv.Error, tv.Position)
		}
		b.Queue("COMMIT")
	})
	if err != nil {
		names := make([]string, len(v.pending))
		for i, tv := range v.pending {
			names[i] = pgx.Identifier{tv.Schema, tv.Table}.Sanitize()
		}
		return fmt.Errorf("target: record the validation of %s: %w", strings.Join(names, ", "), err)
	}
	v.pending = v.pending[:0]
	return nil
}

func nullJSON(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// validateContinuously validates in the background of a running cutover start.
func validateContinuously(ctx context.Context, p *plan.Plan, disp interface{ Step(string) }) {
	validate.Continuously(ctx, p, disp, func(ctx context.Context, opts validate.Options) (*validate.Report, error) {
		return Validate(ctx, p, opts)
	})
}
