package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/load"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/validate"
	"github.com/jackc/pgx/v5"
)

// Validation of a migration from another engine: each table read whole on both sides
// in canonical form (the source through its scanner, the target through the
// translation's converters back), compared row by row by validate's CanonicalReader,
// at points where both hold exactly what the source had (see AtPoint).
//
// An incremental validation compares only the rows changed since a table's last
// validation: the applier records their keys (validation.track_changes) at the
// target's WAL position, and a point is the target's WAL position too, so the keys a
// validation covered are those recorded before its point, as between two PostgreSQL
// servers (validator's Tracked and Flush).

// pairCatchUp is how long a point waits for the target to apply what the source had.
var pairCatchUp = 2 * time.Minute

// ValidatePair runs cutover validate (or a copy's validation.after_load) for a
// migration from another engine.
func (Engine) ValidatePair(ctx context.Context, p *plan.Plan, opts validate.Options, src load.SourceHalf, scanner func() (*engine.SourceScanner, error)) (*validate.Report, error) {
	start := time.Now()
	if opts.Repair {
		return nil, fmt.Errorf("--repair is not available between engines in this version: the report names the rows that differ")
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
	tr, err := translate(s, pairSchemaName(s), pairRules(p, s))
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
	v := &pairValidator{validator: &validator{p: p, tgt: tgt, ctl: ctl, copy: st.Mode == control.ModeCopy, trackedFrom: trackedFrom}, tr: tr, src: sc}
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

// Chunks: a table is compared whole (two engines order text keys their own ways).
func (v *pairValidator) Chunks(context.Context, *validate.Table, int64, int) ([]validate.Range, error) {
	return []validate.Range{{}}, nil
}

// AtPoint reads both sides at one point: at once for a copy (no stream). During
// change data capture, once the target has applied everything the source had
// committed at position P, and only if the source committed nothing more while both
// were read (its position still P): then both hold exactly what the source had at P.
// A source that keeps changing gets a few tries, then the validation stops and says
// why: a comparison that cannot tell a row in flight from one that differs reports
// nothing rather than rows that do not differ.
func (v *pairValidator) AtPoint(ctx context.Context, t *validate.Table, _ bool, read func() error) (validate.Point, error) {
	v.points++
	if v.copy {
		return validate.Point{Exact: true}, read()
	}
	for range pairPointTries {
		pos, err := v.src.Position(ctx)
		if err != nil {
			return validate.Point{}, fmt.Errorf("source: %w", err)
		}
		if err := v.catchUp(ctx, pos); err != nil {
			return validate.Point{}, err
		}
		// The point is the target's WAL position once it holds what the source had:
		// the keys the applier recorded before it are of changes the read sees.
		var at string
		if err := v.tgt.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&at); err != nil {
			return validate.Point{}, fmt.Errorf("target: %w", err)
		}
		err = read()
		after, perr := v.src.Position(ctx)
		if perr != nil {
			return validate.Point{}, fmt.Errorf("source: %w", perr)
		}
		if after == pos || err != nil {
			return validate.Point{Exact: true, Position: at}, err
		}
	}
	return validate.Point{}, &StreamError{Reason: fmt.Sprintf("the source committed changes while table %s was read, %d times: between engines, a comparison during change data capture needs the source to pause while a table is read (the applier holds no point for it in this version)", t, pairPointTries),
		Fix: "validate while the applications' writes pause"}
}

// pairPointTries is how many times a point is tried while the source changes.
const pairPointTries = 5

// catchUp waits until the target has applied the source's changes up to pos.
func (v *pairValidator) catchUp(ctx context.Context, pos string) error {
	deadline := time.Now().Add(pairCatchUp)
	for {
		st, err := v.ctl.State(ctx)
		if err != nil {
			return err
		}
		applied := st.Applied
		if applied == "" {
			applied = st.Position
		}
		done, err := v.src.Covers(applied, pos)
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return &StreamError{Reason: fmt.Sprintf("the target did not apply the source's changes up to %s within %v (applied: %s)", pos, pairCatchUp, applied),
				Fix: "run cutover start, which applies them, and validate again"}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (v *pairValidator) EndPoint(context.Context) error { return nil }

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

func (v *pairValidator) Repair(context.Context, *validate.Table, [][]string) (bool, error) {
	return false, nil
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
	if r.Lo != nil || r.Hi != nil {
		return fmt.Errorf("target: a range of keys is not read between engines: the table is compared whole")
	}
	return s.query(ctx, t, "", nil, f)
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
