package postgres

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/finish"
	"github.com/cutover-dev/cutover/internal/metrics"
	"github.com/cutover-dev/cutover/load"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/schema"
	"github.com/jackc/pgx/v5"
)

// The target's half of a migration from another engine into PostgreSQL: the control
// schema as for PostgreSQL to PostgreSQL, the source's schema.Schema translated into
// PostgreSQL's DDL (translate.go), and the rows of canonical values converted to
// COPY's text format column by column.

var _ engine.PairTarget = Engine{}

// LoadTarget is the target's half of a full load of p from another engine.
func (Engine) LoadTarget(p *plan.Plan, opts engine.StartOptions, disp load.Display) load.TargetHalf {
	return &pairTarget{p: p, disp: disp, metrics: opts.Metrics}
}

type pairTarget struct {
	p       *plan.Plan
	disp    load.Display
	metrics *metrics.Metrics

	tgt *pgx.Conn
	ctl *Control
	tr  *translation
}

var _ load.TargetHalf = (*pairTarget)(nil)

func (t *pairTarget) Begin(ctx context.Context) (control.State, error) {
	st := control.State{Phase: control.PhaseNew, Mode: control.ModeCopy}
	var err error
	if t.tgt, err = ConnectSide(ctx, "target", t.p.Target); err != nil {
		return st, err
	}
	if _, ok, err := ReadControl(ctx, t.tgt, t.p.ControlSchema); err != nil || !ok {
		return st, err
	}
	// Upgraded first: the state is read with this version's columns.
	if t.ctl, err = OpenControl(ctx, t.tgt, t.p.ControlSchema); err != nil {
		return st, err
	}
	return t.ctl.State(ctx)
}

func (t *pairTarget) OpenControl(ctx context.Context) (err error) {
	t.ctl, err = OpenControl(ctx, t.tgt, t.p.ControlSchema)
	return err
}

func (t *pairTarget) Store() control.Store { return t.ctl }

func (t *pairTarget) Recorder(disp load.Display, position string) load.Recorder {
	return &recorder{ctl: t.ctl, position: position, disp: disp, metrics: t.metrics}
}

// Translate makes PostgreSQL's schema from the source's (translate.go): the tables go
// into a schema named after the source's database. What it cannot carry as it is is
// said; what it cannot carry at all stops the load.
func (t *pairTarget) Translate(ctx context.Context, s *schema.Schema, announce func(string)) (err error) {
	postgis, err := targetPostGIS(ctx, t.tgt)
	if err != nil {
		return err
	}
	if t.tr, err = translate(s, pairSchemaName(s), pairRules(t.p, s, postgis)); err != nil {
		return err
	}
	var refused []string
	for _, f := range t.tr.findings {
		if f.Severity == check.Error {
			refused = append(refused, fmt.Sprintf("%s: %s (fix: %s)", f.Object, f.Problem, f.Fix))
			continue
		}
		announce(fmt.Sprintf("%s: %s", f.Object, f.Problem))
	}
	if len(refused) > 0 {
		return fmt.Errorf("the source's schema cannot be made on PostgreSQL as it is (cutover check lists it all):\n  %s", strings.Join(refused, "\n  "))
	}
	return nil
}

// pairRules are the translation's rules for a plan (its types and translation), with
// the columns where the source holds zero dates.
func pairRules(p *plan.Plan, s *schema.Schema, postgis bool) translateRules {
	r := translateRules{ZeroDateColumns: map[string]bool{}, Types: p.Types, EnumAs: p.Translation.Enums, ZeroDates: p.Translation.ZeroDates, CDC: p.CDC.Enabled, PostGIS: postgis}
	if ci := p.Translation.CaseInsensitive; ci != "none" {
		r.CaseInsensitive = ci
	}
	for _, tb := range s.Tables {
		for _, c := range tb.Columns {
			if c.ZeroDates {
				r.ZeroDateColumns[tb.Schema+"."+tb.Name+"."+c.Name] = true
			}
		}
	}
	return r
}

// targetPostGIS says whether the target database has the postgis extension: MySQL's
// spatial types are carried then. The answer does not change during a migration that
// carried one (the extension cannot be dropped under its columns), nor for one that did
// not (without it, a spatial column stops the load).
func targetPostGIS(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var has bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'postgis')").Scan(&has); err != nil {
		return false, fmt.Errorf("target: read whether the postgis extension is there: %w", err)
	}
	return has, nil
}

// pairSchemaName is the schema the source's tables go into: their own schema's name
// (MySQL's database), folded as the tables' names are.
func pairSchemaName(s *schema.Schema) string {
	if len(s.Tables) == 0 {
		return "public"
	}
	return foldName(s.Tables[0].Schema)
}

// TableName is the name of the source's table lt on the target.
func (t *pairTarget) TableName(lt *load.Table) (string, string) {
	if tt := t.tr.byName[lt.String()]; tt != nil {
		return t.tr.schema, tt.name
	}
	return lt.Schema, lt.Name
}

// table is the translation of the load's table lt, named as on the target.
func (t *pairTarget) table(lt *load.Table) *translatedTable { return t.tr.byTarget(lt.Schema, lt.Name) }

func (t *pairTarget) TablesPresent(ctx context.Context) (int, int, error) {
	names := t.tr.tableNames()
	var n int
	err := t.tgt.QueryRow(ctx, `SELECT count(to_regclass(t)) FROM unnest($1::text[]) t`, names).Scan(&n)
	return n, len(names), err
}

// CreateTables runs the translation's pre-data in one transaction.
func (t *pairTarget) CreateTables(ctx context.Context) error {
	return pgx.BeginFunc(ctx, t.tgt, func(tx pgx.Tx) error {
		for _, q := range t.tr.preData() {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("create the schema on the target: %s: %w", q, err)
			}
		}
		return nil
	})
}

func (t *pairTarget) Empty(ctx context.Context, lt *load.Table) error {
	tt := t.table(lt)
	if _, err := t.tgt.Exec(ctx, "TRUNCATE ONLY "+tt.qualified); err != nil {
		return fmt.Errorf("table %s: empty it on the target before copying it again: %w", tt.qualified, err)
	}
	return nil
}

func (t *pairTarget) RowsIn(ctx context.Context) (load.RowsIn, error) {
	conn, err := openRowsIn(ctx, t.p.Target)
	if err != nil {
		return nil, err
	}
	return &canonicalRowsIn{conn: conn, target: t}, nil
}

// BuildObjects adds the foreign keys and checks (each table's indexes were built as
// soon as its rows were in).
func (t *pairTarget) BuildObjects(ctx context.Context) error {
	t.disp.Step("adding foreign keys and checks")
	for _, q := range t.tr.postData() {
		if _, err := t.tgt.Exec(ctx, q); err != nil {
			return fmt.Errorf("post-data: %s: %w", q, err)
		}
	}
	return t.buildViews(ctx)
}

// buildViews creates the views PostgreSQL takes (views.go), in one transaction, and
// names the others with PostgreSQL's error.
func (t *pairTarget) buildViews(ctx context.Context) error {
	if len(t.tr.views) == 0 {
		return nil
	}
	if _, err := t.tgt.Exec(ctx, "BEGIN"); err != nil {
		return err
	}
	failed, err := t.tr.createViews(ctx, t.tgt)
	if err == nil {
		_, err = t.tgt.Exec(ctx, "COMMIT")
	}
	if err != nil {
		t.tgt.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		return fmt.Errorf("target: create the views: %w", err)
	}
	t.disp.Step(fmt.Sprintf("views: %d of %d created from their SQL in PostgreSQL's quoting", len(t.tr.views)-len(failed), len(t.tr.views)))
	for _, v := range t.tr.views {
		if err := failed[v.source.Name]; err != nil {
			t.disp.Step(fmt.Sprintf("warning: view %s.%s not carried: PostgreSQL refuses its SQL (%v): write it in PostgreSQL's SQL before the switch", v.source.Schema, v.source.Name, err))
		}
	}
	return nil
}

// CloseTarget closes the target's migrated tables to every role but the migration's
// until the switch (closeTarget, as between two PostgreSQL servers).
func (t *pairTarget) CloseTarget(ctx context.Context) error {
	rels, err := t.tr.relations(ctx, t.tgt)
	if err != nil {
		return err
	}
	detail, stuck, err := closeTarget(ctx, t.p, t.tgt, t.ctl, rels)
	if err != nil {
		return err
	}
	sayClosed(detail, stuck, t.disp.Step)
	return nil
}

// SetSequences restarts each identity past the source's counter and the rows copied.
func (t *pairTarget) SetSequences(ctx context.Context) error {
	qs := t.tr.identities()
	for _, q := range qs {
		if _, err := t.tgt.Exec(ctx, q); err != nil {
			return fmt.Errorf("set the identities: %s: %w", q, err)
		}
	}
	t.disp.Step(fmt.Sprintf("identities: %d set past the source's AUTO_INCREMENT counters and the rows copied", len(qs)))
	return nil
}

func (t *pairTarget) Close(ctx context.Context) {
	if t.tgt != nil {
		t.tgt.Close(ctx)
	}
}

// canonicalRowsIn writes chunks of rows of canonical values with COPY FROM, each
// value converted by its column's converter.
type canonicalRowsIn struct {
	conn   *pgx.Conn
	target *pairTarget
}

var _ load.RowsIn = (*canonicalRowsIn)(nil)

func (in *canonicalRowsIn) CopyIn(ctx context.Context, lt *load.Table, _ int, r io.Reader) (int64, error) {
	tt := in.target.table(lt)
	conv := &copyText{r: bufio.NewReaderSize(r, load.PipeBuffer), t: tt, fields: sourceFields(tt)}
	sql := fmt.Sprintf("COPY %s (%s) FROM STDIN", tt.qualified, strings.Join(tt.copyColumns, ", "))
	tag, err := in.conn.PgConn().CopyFrom(ctx, conv, sql)
	if conv.err != nil && conv.err != io.EOF {
		return 0, conv.err // the cause, not COPY's report of the abort
	}
	return tag.RowsAffected(), err
}

// Finish builds the table's indexes now that its rows are in.
func (in *canonicalRowsIn) Finish(ctx context.Context, lt *load.Table) error {
	for _, q := range in.target.tr.tableIndexes(in.target.table(lt).source) {
		if _, err := in.conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

func (in *canonicalRowsIn) Close(ctx context.Context) error { return in.conn.Close(ctx) }

// copyText reads row lines of canonical values from r and gives them in COPY's text
// format, each value converted for its column.
type copyText struct {
	r *bufio.Reader
	t *translatedTable
	// fields maps the row's values (every column of the source's table) to the
	// target's copy columns: -1 for a value the target does not hold
	fields []int
	out    []byte
	off    int
	values []load.Field
	buf    []byte
	row    int64
	err    error
}

// sourceFields maps each of the source table's columns, in the order the rows carry
// them, to its place among the target's copy columns (-1: not carried).
func sourceFields(tt *translatedTable) []int {
	at := map[string]int{}
	for i, name := range tt.sourceColumns {
		at[name] = i
	}
	fields := make([]int, len(tt.source.Columns))
	for i, c := range tt.source.Columns {
		if j, ok := at[c.Name]; ok {
			fields[i] = j
		} else {
			fields[i] = -1
		}
	}
	return fields
}

func (c *copyText) Read(p []byte) (int, error) {
	for c.off == len(c.out) {
		if c.err != nil {
			return 0, c.err
		}
		c.out, c.off = c.out[:0], 0
		// a batch of lines at a time: one Read of COPY's is many rows
		for len(c.out) < 64<<10 {
			line, err := c.r.ReadSlice('\n')
			if errors.Is(err, bufio.ErrBufferFull) {
				// a row longer than the buffer: gather it
				whole := append([]byte(nil), line...)
				for errors.Is(err, bufio.ErrBufferFull) {
					line, err = c.r.ReadSlice('\n')
					whole = append(whole, line...)
				}
				line = whole
			}
			if len(line) > 0 {
				if cerr := c.convert(line); cerr != nil {
					c.err = cerr
					return 0, cerr
				}
			}
			if err == io.EOF {
				c.err = io.EOF
				break
			}
			if err != nil {
				c.err = err
				return 0, err
			}
		}
		if len(c.out) == 0 && c.err != nil {
			return 0, c.err
		}
	}
	n := copy(p, c.out[c.off:])
	c.off += n
	return n, nil
}

// convert adds one row line, converted, to the output.
func (c *copyText) convert(line []byte) error {
	c.row++
	line = line[:len(line)-1] // the newline (the source ends every row with one)
	var err error
	if c.values, c.buf, err = load.SplitRow(line, c.values, c.buf); err != nil {
		return fmt.Errorf("table %s, row %d: %w", c.t.qualified, c.row, err)
	}
	if len(c.values) != len(c.fields) {
		return fmt.Errorf("table %s, row %d: %d values for %d columns", c.t.qualified, c.row, len(c.values), len(c.fields))
	}
	first := true
	for i, f := range c.values {
		j := c.fields[i]
		if j < 0 {
			continue
		}
		if !first {
			c.out = append(c.out, '\t')
		}
		first = false
		if f.Null {
			c.out = append(c.out, '\\', 'N')
			continue
		}
		v, err := c.t.converters[j](f.Text)
		if err != nil {
			return fmt.Errorf("row %d: %w", c.row, err)
		}
		c.out = appendCopyText(c.out, v)
	}
	c.out = append(c.out, '\n')
	return nil
}

// appendCopyText escapes a value for COPY's text format, whose escapes are the row
// lines' (load.AppendField).
func appendCopyText(dst, v []byte) []byte { return load.AppendField(dst, v, false) }

// tableNames are the target's tables, qualified and quoted.
func (tr *translation) tableNames() []string {
	names := make([]string, len(tr.tables))
	for i, t := range tr.tables {
		names[i] = t.qualified
	}
	return names
}

// FinishPair runs cutover finish for a migration from another engine: the source
// holds nothing of the migration's (its change stream is read as a replica), so
// finishing stops the running task and drops (or keeps) the control schema on the
// target.
func (Engine) FinishPair(ctx context.Context, p *plan.Plan, out io.Writer, keepControl bool, src func() (engine.SwitchSource, error)) error {
	tgt, err := ConnectSide(ctx, "target", p.Target)
	if err != nil {
		return err
	}
	e := &pairEnder{ender: &ender{p: p, out: out, tgt: tgt}, source: src}
	defer e.close(context.WithoutCancel(ctx))
	return finish.Finish(ctx, p, e, out, keepControl)
}

// pairEnder is an ender for a migration from another engine.
type pairEnder struct {
	*ender
	source func() (engine.SwitchSource, error)
	src    engine.SwitchSource
}

// ReachSource opens the source's half of a switch: a switch made the control
// database there.
func (e *pairEnder) ReachSource(context.Context) (err error) {
	e.src, err = e.source()
	return err
}

func (e *pairEnder) close(ctx context.Context) {
	if e.src != nil {
		e.src.Close()
	}
	e.ender.close(ctx)
}

// StopReplication waits for the running cutover start, which sees the phase
// finishing within a second.
func (e *pairEnder) StopReplication(ctx context.Context, _ control.State) error {
	return waitStreamStopped(ctx, e.tgt, e.p, time.Minute)
}

// DropReplication drops reverse replication's slot and publications on the target; the
// source's change stream was read as a replica, with nothing made on the source.
func (e *pairEnder) DropReplication(ctx context.Context, st control.State, side finish.Side) error {
	if side == finish.Source {
		fmt.Fprintf(e.out, "the source's change stream was read as a replica (%s): nothing to drop there\n", st.Slot)
		return nil
	}
	var slot string
	if err := e.tgt.QueryRow(ctx, "SELECT reverse_slot FROM "+pgx.Identifier{e.p.ControlSchema, "state"}.Sanitize()).Scan(&slot); err != nil {
		return fmt.Errorf("target: read reverse replication's slot: %w", err)
	}
	if slot == "" {
		return nil
	}
	if err := dropSlotWhenFree(ctx, e.tgt, "target", slot, e.out); err != nil {
		return err
	}
	if err := dropPublications(ctx, e.tgt, slot); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "dropped reverse replication's slot %s and its publications on the target\n", slot)
	return nil
}

func (e *pairEnder) DropControl(ctx context.Context, side finish.Side) (bool, error) {
	if side == finish.Source {
		return e.src.DropControl(ctx)
	}
	return e.ender.DropControl(ctx, side)
}

// byTarget is the translation of the table the target names schema.name; nil for
// none.
func (tr *translation) byTarget(schema, name string) *translatedTable {
	if schema != tr.schema {
		return nil
	}
	for _, t := range tr.tables {
		if t.name == name {
			return t
		}
	}
	return nil
}

// relations reads the translated tables from the target's catalog.
func (tr *translation) relations(ctx context.Context, tgt *pgx.Conn) ([]*relation, error) {
	all, err := listRelations(ctx, tgt)
	if err != nil {
		return nil, fmt.Errorf("target: list the tables: %w", err)
	}
	var rels []*relation
	for _, r := range all {
		if tr.byTarget(r.schema, r.name) != nil {
			rels = append(rels, r)
		}
	}
	return rels, nil
}

// StatusPair reads where a migration from another engine stands, from the target's
// control schema (the source holds nothing of it).
func (Engine) StatusPair(ctx context.Context, p *plan.Plan) (control.Status, error) {
	st, _, err := pairStatus(ctx, p, false)
	return st, err
}

// DashboardPair is StatusPair and what the web dashboard draws besides it.
func (Engine) DashboardPair(ctx context.Context, p *plan.Plan) (control.Status, control.Dashboard, error) {
	return pairStatus(ctx, p, true)
}

func pairStatus(ctx context.Context, p *plan.Plan, dashboard bool) (control.Status, control.Dashboard, error) {
	tgt, err := ConnectSide(ctx, "target", p.Target)
	if err != nil {
		return control.Status{}, control.Dashboard{}, &engine.Unreachable{Side: "target", Err: err}
	}
	defer tgt.Close(context.WithoutCancel(ctx))
	st, _, err := ReadStatus(ctx, tgt, nil, p)
	if err != nil || !dashboard {
		return st, control.Dashboard{}, err
	}
	d, err := ReadDashboard(ctx, tgt, p)
	return st, d, err
}
