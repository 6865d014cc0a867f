package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/load"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/validate"
	"github.com/jackc/pgx/v5"
)

// Validation of a migration from another engine: each table read on both sides in
// canonical form (the source through its scanner, the target through the
// translation's converters back), in key ranges where both engines order the key alike
// (Chunks), compared by validate's CanonicalReader, at points of the change stream
// (newPairPoint) while the applications write.
//
// An incremental validation compares only the rows changed since a table's last
// validation: the applier records their keys (validation.track_changes) at the
// target's WAL position, and a point is the target's WAL position too, so the keys a
// validation covered are those recorded before its point, as between two PostgreSQL
// servers (validator's Tracked and Flush).

// ValidatePair runs cutover validate (or a copy's validation.after_load) for a
// migration from another engine.
func (Engine) ValidatePair(ctx context.Context, p *plan.Plan, opts validate.Options, src load.SourceHalf, scanner func() (*engine.SourceScanner, error)) (*validate.Report, error) {
	start := time.Now()
	if opts.ChunkRows <= 0 {
		opts.ChunkRows = p.Validation.ChunkRows
	}
	conns, err := connectAll(ctx, p, []connSpec{{"target", canonicalSession()}, {side: "target"}})
	if err != nil {
		return nil, err
	}
	defer closeAll(ctx, conns)
	tgt, ctlConn := conns[0], conns[1]
	ctl, ok, err := ReadControl(ctx, ctlConn, p.ControlSchema)
	if err != nil {
		return nil, fmt.Errorf("target: read the control schema %s: %w", p.ControlSchema, err)
	}
	if !ok {
		return nil, fmt.Errorf("nothing to validate: the target has no control schema %s; run cutover start first", p.ControlSchema)
	}
	st, err := ctl.State(ctx)
	if err != nil {
		return nil, err
	}
	switch st.Phase {
	case control.PhaseLoaded, control.PhaseCDC, control.PhaseRolledBack:
	case control.PhaseSwitching:
		// the switch's own, inside the window: the source is blocked and synced
	default:
		return nil, fmt.Errorf("nothing to validate now: the migration is in phase %q (between engines, validate runs once the full load is complete, before a switch or after a rollback)", st.Phase)
	}
	if opts.Repair && st.Mode == control.ModeCopy {
		return nil, fmt.Errorf("--repair copies rows again through the change stream, and the migration %s is a one-shot copy (cdc.enabled: false) with none: copy the differing tables again (TRUNCATE them on the target, cutover finish, then cutover start)", p.ControlSchema)
	}
	stats, err := ctl.TableStats(ctx)
	if err != nil {
		return nil, err
	}
	if err := src.Open(ctx); err != nil {
		return nil, err
	}
	if err := src.TableList(ctx); err != nil {
		return nil, err
	}
	s, err := src.ReadSchema(ctx, false)
	if err != nil {
		return nil, err
	}
	postgis, err := targetPostGIS(ctx, tgt)
	if err != nil {
		return nil, err
	}
	tr, err := translate(s, pairSchemaName(s), pairRules(p, s, postgis))
	if err != nil {
		return nil, err
	}
	sc, err := scanner()
	if err != nil {
		return nil, err
	}
	defer sc.Close()
	var trackedFrom string
	if err := ctlConn.QueryRow(ctx, "SELECT changes_tracked_from FROM "+ctl.table("state")).Scan(&trackedFrom); err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	v := &pairValidator{validator: &validator{p: p, tgt: tgt, ctl: ctl, copy: st.Mode == control.ModeCopy, trackedFrom: trackedFrom, endSource: sc.EndSnapshot}, tr: tr, src: sc}
	v.openPoint = v.newPairPoint
	rep, err := validate.Run(ctx, v, opts, stats)
	if err != nil {
		return nil, err
	}
	rep.Live = true
	rep.Took, rep.Points = time.Since(start), v.points
	return rep, nil
}

// pairValidator is validate.Engine for a migration from another engine; its
// outcomes are recorded as between two PostgreSQL servers (validator's Record).
type pairValidator struct {
	*validator // its ctl, points, Record and Flush
	tr         *translation
	src        *engine.SourceScanner
	tables     map[[2]string]*validate.Table
}

var _ validate.Engine = (*pairValidator)(nil)

func (v *pairValidator) Describe(_ context.Context, tables [][2]string) error {
	v.tables = map[[2]string]*validate.Table{}
	for _, k := range tables {
		tt := v.tr.byTarget(k[0], k[1])
		if tt == nil {
			continue
		}
		t := &validate.Table{Schema: k[0], Name: k[1]}
		for _, c := range tt.columns {
			if c.carried() {
				t.Columns = append(t.Columns, c.name)
			}
		}
		for _, name := range tt.source.PrimaryKey {
			if c := tt.column(name); c != nil && c.carried() {
				t.Key = append(t.Key, c.name)
			}
		}
		v.tables[k] = t
	}
	return nil
}

func (v *pairValidator) Table(schema, name string) (*validate.Table, validate.Reader, validate.Reader, error) {
	t := v.tables[[2]string{schema, name}]
	if t == nil {
		return nil, nil, nil, fmt.Errorf("table %s.%s is not in the schema translated from the source", schema, name)
	}
	tt := v.tr.byTarget(schema, name)
	return t, validate.CanonicalReader(&sourceNames{v.src, tt}), validate.CanonicalReader(&pairTargetScanner{conn: v.tgt, tt: tt}), nil
}

// Chunks splits a table whose key is one column of a kind both engines order alike
// (integers, decimals, dates, timestamps, bytes: see orderedKey) into about n ranges,
// which each reads by its index. The boundaries are quantiles of the target's keys at
// the point (of a sample of a large table); the first and last ranges are open, so
// that the ranges hold every row of either side. A table with another key is compared
// whole: the engines order text by their own collations, and a binary order both agree
// on would read no index.
func (v *pairValidator) Chunks(ctx context.Context, t *validate.Table, estimatedRows int64, n int) ([]validate.Range, error) {
	whole := []validate.Range{{}}
	tt := v.tr.byTarget(t.Schema, t.Name)
	if n < 2 || len(t.Key) != 1 || tt == nil {
		return whole, nil
	}
	c := tt.targetColumn(t.Key[0])
	if c == nil || !c.orderedKey() {
		return whole, nil
	}
	fractions := make([]float64, n-1)
	for i := range fractions {
		fractions[i] = float64(i+1) / float64(n)
	}
	sample := ""
	if estimatedRows > sampleAbove {
		sample = fmt.Sprintf(" TABLESAMPLE SYSTEM (%g)", min(100, 100*float64(n)*16/float64(estimatedRows)))
	}
	key := pgx.Identifier{c.name}.Sanitize()
	var bounds []*string
	if err := v.tgt.QueryRow(ctx, "SELECT (percentile_disc($1::float8[]) WITHIN GROUP (ORDER BY "+key+"))::text[] FROM "+tt.qualified+sample, fractions).Scan(&bounds); err != nil {
		return nil, fmt.Errorf("target: table %s: the key's quantiles: %w", tt.qualified, err)
	}
	var ranges []validate.Range
	var lo []string
	for _, b := range bounds {
		if b == nil {
			continue // an empty table (or sample)
		}
		hi, err := c.back([]byte(*b))
		if err != nil {
			return nil, fmt.Errorf("target: table %s, a key %s: %w", tt.qualified, *b, err)
		}
		if lo != nil && lo[0] == string(hi) {
			continue
		}
		ranges = append(ranges, validate.Range{Lo: lo, Hi: []string{string(hi)}})
		lo = []string{string(hi)}
	}
	return append(ranges, validate.Range{Lo: lo}), nil
}

// orderedKey says whether both engines order a key column's values alike: numbers by
// their value, dates and times by their time (TIMESTAMP's instants in UTC on both),
// bytes byte by byte then by length. Not floats (-0, NaN), TIME (a duration on one
// side), text (collations), nor a column whose PostgreSQL type the plan set.
func (c *translatedColumn) orderedKey() bool {
	read, ok := pgReadType(c.pgType)
	if !ok || slices.Contains(c.notes, "type from the plan") {
		return false
	}
	switch c.src.Type.Kind {
	case cdc.KindInt, cdc.KindUint:
		return read.Kind == cdc.KindInt || read.Kind == cdc.KindDecimal
	case cdc.KindDecimal, cdc.KindDate, cdc.KindTimestamp, cdc.KindTimestampTZ, cdc.KindBytes:
		return read.Kind == c.src.Type.Kind
	}
	return false
}

// AtPoint reads both sides at one point: at once for a copy (no stream); during
// change data capture, as between two PostgreSQL servers (validator's AtPoint), at
// the points newPairPoint opens.
func (v *pairValidator) AtPoint(ctx context.Context, t *validate.Table, later bool, read func() error) (validate.Point, error) {
	if v.copy {
		v.points++
		return validate.Point{Exact: true}, read()
	}
	return v.validator.AtPoint(ctx, t, later, read)
}

// newPairPoint opens a point: a read view of the source at a position P of its change
// stream, and a marker written into the stream right after it. The applier, reaching
// the marker, has committed every source transaction before it, exports the target's
// snapshot there and records the last transactions it applied: those past P (that
// committed between the view and the marker, a round trip) are in flight, and the
// point is exact for every table they did not change, as between two PostgreSQL
// servers. The point's position is the target's WAL position at the marker, where the
// applier records changed keys.
func (v *pairValidator) newPairPoint(ctx context.Context) (err error) {
	if !v.listening {
		if _, err := v.ctl.conn.Exec(ctx, "LISTEN "+pointsChannel); err != nil {
			return fmt.Errorf("target: %w", err)
		}
		v.listening = true
	}
	id := randomHex(8)
	at, err := v.src.Point(ctx, pointMarker+id)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			v.src.EndSnapshot()
		}
	}()
	pt, err := v.waitPoint(ctx, id)
	if err != nil {
		return err
	}
	if _, err := v.tgt.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT "+quoteLiteral(pt.snapshot)); err != nil {
		v.tgt.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		return fmt.Errorf("%w: %v", errPointGone, err)
	}
	inFlight := v.pastView(at, pt.recent)
	v.pointAt, v.pointPos, v.inFlight = time.Now(), pt.position, inFlight
	return nil
}

// pastView is the tables changed by the transactions the applier applied before the
// marker past position at (recent, the newest first): nil (any table) when the oldest
// of them is past it too, or they cannot be read.
func (v *pairValidator) pastView(at string, recent []byte) *[]string {
	var txns []recentTxn
	if err := json.Unmarshal(recent, &txns); err != nil {
		return nil
	}
	tables := []string{}
	for _, t := range txns {
		held, err := v.src.Covers(at, t.Position)
		switch {
		case err != nil || t.Every:
			return nil
		case held:
			return &tables
		}
		for _, name := range t.Tables {
			if !slices.Contains(tables, name) {
				tables = append(tables, name)
			}
		}
	}
	return nil
}

// ChangedKeys are the keys the applier recorded, in the canonical text of the
// source's types, and those that differed at the last validation (canonical
// already). The applier wrote each value as the target's input text: the target reads
// it back through its own input and output of the column's type, as the target's
// reader reads values, and the column's back converter makes it canonical.
func (v *pairValidator) ChangedKeys(ctx context.Context, t *validate.Table, most int64) (validate.KeySet, bool, error) {
	keys, whole, err := v.changedKeys(ctx, t, most)
	if err != nil || whole {
		return nil, whole, err
	}
	tt := v.tr.byTarget(t.Schema, t.Name)
	if tt == nil {
		return nil, true, nil
	}
	texts := make([]string, len(keys))
	for i, name := range t.Key {
		c := tt.targetColumn(name)
		if c == nil {
			return nil, true, nil
		}
		for j, k := range keys {
			texts[j] = k[i]
		}
		var out []string
		if err := v.tgt.QueryRow(ctx, "SELECT coalesce(array_agg("+c.readExpr("u::"+c.pgType)+" ORDER BY n), '{}') FROM unnest($1::text[]) WITH ORDINALITY AS x(u, n)", texts).Scan(&out); err != nil {
			return nil, false, fmt.Errorf("target: read the changed keys of %s: %w", tt.qualified, err)
		}
		for j := range keys {
			canonical, err := c.back([]byte(out[j]))
			if err != nil {
				return nil, false, fmt.Errorf("target: a changed key of %s: %w", tt.qualified, err)
			}
			keys[j][i] = string(canonical)
		}
	}
	if keys, err = v.withFailedKeys(ctx, t, keys); err != nil {
		return nil, false, err
	}
	return validate.KeyList(keys), int64(len(keys)) > most, nil
}

// Repair copies the rows with these keys again from the source through the applier,
// at their place in the change stream, as between two PostgreSQL servers: read in a
// read view of the source, converted to the target's text, and applied at the marker
// written right after the view, unless a transaction the applier applied before the
// marker, past the view, changed the table (then again, at a new marker).
func (v *pairValidator) Repair(ctx context.Context, t *validate.Table, keys [][]string) (repaired bool, err error) {
	if err := v.EndPoint(ctx); err != nil {
		return false, err
	}
	tt := v.tr.byTarget(t.Schema, t.Name)
	if tt == nil {
		return false, fmt.Errorf("table %s.%s is not in the schema translated from the source", t.Schema, t.Name)
	}
	g := &tableShape{qname: tt.qualified, types: map[string]string{}}
	for _, c := range tt.columns {
		if c.carried() {
			g.types[c.name] = c.pgType
		}
	}
	for range pointTries {
		deferred, err := v.repairOnce(ctx, t, tt, g, keys)
		if err != nil || !deferred {
			return err == nil, err
		}
	}
	return false, nil
}

// repairOnce is one try of Repair; deferred: changes to the table were in flight.
func (v *pairValidator) repairOnce(ctx context.Context, t *validate.Table, tt *translatedTable, g *tableShape, keys [][]string) (deferred bool, err error) {
	id := randomHex(8)
	at, err := v.src.Point(ctx, repairPrefix+id)
	if err != nil {
		return false, err
	}
	defer v.src.EndSnapshot()
	rows, err := validate.CanonicalReader(&sourceNames{v.src, tt}).Lookup(ctx, t, keys)
	if err != nil {
		return false, err
	}
	// The values as the target's text: the rows'; the keys' (the rows' keys among them).
	toTarget := func(col string, canonical string) (string, error) {
		text, err := tt.targetColumn(col).conv([]byte(canonical))
		if err != nil {
			return "", fmt.Errorf("table %s, column %s: %w", tt.qualified, col, err)
		}
		return string(text), nil
	}
	targetKey := func(k []string) ([]string, error) {
		out := make([]string, len(k))
		for i, val := range k {
			if out[i], err = toTarget(t.Key[i], val); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	for _, r := range rows {
		for i, val := range r.Values {
			if val != nil {
				text, err := toTarget(t.Columns[i], *val)
				if err != nil {
					return false, err
				}
				r.Values[i] = &text
			}
		}
		if r.Key, err = targetKey(r.Key); err != nil {
			return false, err
		}
	}
	tkeys := make([][]string, len(keys))
	for i, k := range keys {
		if tkeys[i], err = targetKey(k); err != nil {
			return false, err
		}
	}
	return v.applyRepair(ctx, t, g, id, tkeys, rows, at)
}

// sourceNames reads a table on the source by the source's names.
type sourceNames struct {
	src *engine.SourceScanner
	tt  *translatedTable
}

func (s *sourceNames) table(t *validate.Table) *validate.Table {
	st := &validate.Table{Schema: s.tt.source.Schema, Name: s.tt.source.Name}
	for _, name := range t.Columns {
		st.Columns = append(st.Columns, s.tt.sourceName(name))
	}
	for _, name := range t.Key {
		st.Key = append(st.Key, s.tt.sourceName(name))
	}
	return st
}

func (s *sourceNames) Scan(ctx context.Context, t *validate.Table, r validate.Range, f func([][]byte) error) error {
	return s.src.Scan(ctx, s.table(t), r, f)
}

func (s *sourceNames) ScanKeys(ctx context.Context, t *validate.Table, keys [][]string, f func([][]byte) error) error {
	return s.src.ScanKeys(ctx, s.table(t), keys, f)
}

// sourceName is the source's name of the target's column name.
func (t *translatedTable) sourceName(name string) string {
	for _, c := range t.columns {
		if c.name == name {
			return c.src.Name
		}
	}
	return name
}

// targetColumn is the translated column the target names name.
func (t *translatedTable) targetColumn(name string) *translatedColumn {
	for _, c := range t.columns {
		if c.name == name {
			return c
		}
	}
	return nil
}

// pairTargetScanner reads a translated table on the target, each value converted
// back to the canonical form of the source's type.
type pairTargetScanner struct {
	conn *pgx.Conn
	tt   *translatedTable
}

func (s *pairTargetScanner) Scan(ctx context.Context, t *validate.Table, r validate.Range, f func([][]byte) error) error {
	if r.Lo == nil && r.Hi == nil {
		return s.query(ctx, t, "", nil, f)
	}
	// a range of a key of one column both engines order alike (Chunks)
	c := s.tt.targetColumn(t.Key[0])
	var conds []string
	var args []any
	for _, b := range r.Bounds() {
		text, err := c.conv([]byte(b.Value))
		if err != nil {
			return fmt.Errorf("target: key of %s: %w", s.tt.qualified, err)
		}
		args = append(args, string(text))
		conds = append(conds, fmt.Sprintf("%s %s $%d::%s", pgx.Identifier{c.name}.Sanitize(), b.Op, len(args), c.pgType))
	}
	return s.query(ctx, t, strings.Join(conds, " AND "), args, f)
}

func (s *pairTargetScanner) ScanKeys(ctx context.Context, t *validate.Table, keys [][]string, f func([][]byte) error) error {
	keyCols := make([]*translatedColumn, len(t.Key))
	quoted := make([]string, len(t.Key))
	for i, k := range t.Key {
		keyCols[i] = s.tt.targetColumn(k)
		quoted[i] = pgx.Identifier{k}.Sanitize()
	}
	const batch = 500
	for len(keys) > 0 {
		n := min(len(keys), batch)
		var tuples []string
		var args []any
		for _, k := range keys[:n] {
			marks := make([]string, len(k))
			for i, val := range k {
				text, err := keyCols[i].conv([]byte(val))
				if err != nil {
					return fmt.Errorf("target: key of %s: %w", s.tt.qualified, err)
				}
				args = append(args, string(text))
				marks[i] = fmt.Sprintf("$%d::%s", len(args), keyCols[i].pgType)
			}
			tuples = append(tuples, "("+strings.Join(marks, ", ")+")")
		}
		if err := s.query(ctx, t, "("+strings.Join(quoted, ", ")+") IN ("+strings.Join(tuples, ", ")+")", args, f); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

func (s *pairTargetScanner) query(ctx context.Context, t *validate.Table, where string, args []any, f func([][]byte) error) error {
	cols := make([]*translatedColumn, len(t.Columns))
	reads := make([]string, len(t.Columns))
	for i, name := range t.Columns {
		cols[i] = s.tt.targetColumn(name)
		reads[i] = "(" + cols[i].readExpr(pgx.Identifier{name}.Sanitize()) + ")::text" // text, whatever format pgx asks the result in
	}
	q := "SELECT " + strings.Join(reads, ", ") + " FROM " + s.tt.qualified
	if where != "" {
		q += " WHERE " + where
	}
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	defer rows.Close()
	values := make([][]byte, len(cols))
	for rows.Next() {
		raw := rows.RawValues()
		for i, b := range raw {
			values[i] = nil
			if b == nil {
				continue
			}
			text, err := cols[i].back(b)
			if err != nil {
				return fmt.Errorf("target: table %s, column %s: %w", s.tt.qualified, t.Columns[i], err)
			}
			values[i] = text
		}
		if err := f(values); err != nil {
			return err
		}
	}
	return rows.Err()
}
