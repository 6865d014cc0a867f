package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/load"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/redact"
	neutral "github.com/cutover-dev/cutover/schema"
)

// The source's half of a migration from MySQL/MariaDB to another engine: the same
// read views of one snapshot as between two MySQL servers, the schema read from
// information_schema into a schema.Schema, and the rows as lines of canonical values
// (load.AppendField), each value read by an expression whose text toCanonical takes.

var _ engine.PairSource = Engine{}

// LoadSource is the source's half of a full load of p into another engine.
func (Engine) LoadSource(p *plan.Plan, disp load.Display) load.SourceHalf {
	return &pairSource{p: p, disp: disp}
}

type pairSource struct {
	p    *plan.Plan
	disp load.Display

	src     *sql.DB
	srcDB   string
	mariadb bool
	tables  []tableName
	snap    *Snapshot
	schema  *neutral.Schema
	plan    *copyPlan
	cols    map[*load.Table][]neutral.Column // the columns copied, in the SELECT's order
}

var _ load.SourceHalf = (*pairSource)(nil)

func (s *pairSource) Open(ctx context.Context) (err error) {
	if s.src != nil {
		return nil // open already
	}
	if s.src, s.srcDB, err = openSide(ctx, "source", s.p.Source, s.p.FullLoad.Parallel+2); err != nil {
		return err
	}
	s.mariadb, err = isMariaDB(ctx, "source", s.src)
	return err
}

// TableList reads the plan's tables of the source database.
func (s *pairSource) TableList(ctx context.Context) (err error) {
	s.tables, err = listTables(ctx, s.src, s.srcDB, s.p)
	return err
}

func (s *pairSource) Snapshot(ctx context.Context, copyOnly bool, stream string) (position, streamName string, err error) {
	quoted := make([]string, len(s.tables))
	for i, t := range s.tables {
		quoted[i] = t.quoted()
	}
	s.snap, err = TakeSnapshot(ctx, s.src, s.mariadb, SnapshotOptions{Tables: quoted, Workers: s.p.FullLoad.Parallel, WithoutPosition: copyOnly},
		func(f string, a ...any) { s.disp.Step(fmt.Sprintf(f, a...)) })
	if err != nil {
		return "", "", err
	}
	if copyOnly {
		return fmt.Sprintf("%s UTC (%s)", time.Now().UTC().Format("2006-01-02 15:04:05.000"), s.snap.Method), "", nil
	}
	if stream == "" {
		// the binary log is read as a replica with a server_id of its own, kept
		stream = streamSlot + strconv.FormatUint(uint64(randomServerID()), 10)
	}
	return s.snap.Pos.String(), stream, nil
}

// ReadSchema reads the tables at the snapshot (or, without one, as they are now),
// and with values which of their date columns hold zero dates.
func (s *pairSource) ReadSchema(ctx context.Context, values bool) (*neutral.Schema, error) {
	var view *sql.Conn
	var err error
	if s.snap != nil {
		if view, err = s.snap.Acquire(ctx); err != nil {
			return nil, err
		}
		defer s.snap.Release(view)
	} else {
		if view, err = s.src.Conn(ctx); err != nil {
			return nil, err
		}
		defer view.Close()
	}
	if s.schema, err = readTables(ctx, view, s.srcDB, s.tables); err != nil {
		return nil, err
	}
	for _, t := range s.schema.Tables {
		if !values {
			break
		}
		if err := findZeroDates(ctx, view, t); err != nil {
			return nil, err
		}
	}
	return s.schema, nil
}

// findZeroDates marks the date columns of t that hold a zero date: a date with a zero
// month or day (0000-00-00 has both), or a day its month does not have
// (ALLOW_INVALID_DATES), which no other engine has.
func findZeroDates(ctx context.Context, view *sql.Conn, t *neutral.Table) error {
	var cols []*neutral.Column
	var sums []string
	for i := range t.Columns {
		c := &t.Columns[i]
		switch c.Type.Kind {
		case cdc.KindDate, cdc.KindTimestamp, cdc.KindTimestampTZ:
			if c.Generated == "" {
				cols = append(cols, c)
				sums = append(sums, "coalesce(max("+notDateSQL(quote(c.Name))+"), 0)")
			}
		}
	}
	if len(cols) == 0 {
		return nil
	}
	q := "SELECT " + strings.Join(sums, ", ") + " FROM " + tableName{t.Schema, t.Name}.quoted()
	found := make([]bool, len(cols))
	ptrs := make([]any, len(cols))
	for i := range found {
		ptrs[i] = &found[i]
	}
	if err := view.QueryRowContext(ctx, q).Scan(ptrs...); err != nil {
		return fmt.Errorf("table %s: look for zero dates: %w", tableName{t.Schema, t.Name}.quoted(), err)
	}
	for i, c := range cols {
		c.ZeroDates = found[i]
	}
	return nil
}

// PlanCopy splits the tables as between two MySQL servers; each row is read whole,
// every column by the expression toCanonical takes.
func (s *pairSource) PlanCopy(ctx context.Context) ([]*load.Table, error) {
	view, err := s.snap.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	cp, err := planCopy(ctx, view, s.tables, s.srcDB, s.snap.Views())
	s.snap.Release(view)
	if err != nil {
		return nil, err
	}
	s.plan, s.cols = cp, map[*load.Table][]neutral.Column{}
	byName := map[string]*neutral.Table{}
	for _, t := range s.schema.Tables {
		byName[t.Name] = t
	}
	for _, t := range cp.tables {
		st, spec := byName[t.Name], cp.specs[t]
		if st == nil {
			return nil, fmt.Errorf("table %s: not in the schema read at the snapshot", spec.qname)
		}
		// every column, generated ones too: the target computes them by its own
		// expressions or holds the source's values (translate decides)
		spec.cols = spec.cols[:0]
		for _, c := range st.Columns {
			spec.cols = append(spec.cols, copyColumn{name: quote(c.Name), read: crossSelectExpr(quote(c.Name), c.Type, c.Charset), raw: c.Name})
		}
		s.cols[t] = st.Columns
	}
	return cp.tables, nil
}

func (s *pairSource) Workers() int { return s.snap.Views() }

func (s *pairSource) RowsOut(context.Context) (load.RowsOut, error) {
	return &canonicalRowsOut{snap: s.snap, plan: s.plan, cols: s.cols}, nil
}

func (s *pairSource) Close(context.Context) {
	if s.snap != nil {
		s.snap.Close()
	}
	if s.src != nil {
		s.src.Close()
	}
}

// canonicalRowsOut reads chunks in a read view of the snapshot and writes their rows
// as lines of canonical values; a zero date is written NULL.
type canonicalRowsOut struct {
	snap *Snapshot
	plan *copyPlan
	cols map[*load.Table][]neutral.Column
}

var _ load.RowsOut = (*canonicalRowsOut)(nil)

func (o *canonicalRowsOut) CopyOut(ctx context.Context, t *load.Table, chunk int, w *load.RowWriter) error {
	spec, cols := o.plan.specs[t], o.cols[t]
	return spec.readChunk(ctx, o.snap, t, chunk, w, func(line []byte, _ int64, vals []sql.RawBytes) ([]byte, error) {
		for i, v := range vals {
			if i > 0 {
				line = append(line, '\t')
			}
			if v == nil {
				line = load.AppendField(line, nil, true)
				continue
			}
			text, err := toCanonical(cols[i].Type, v)
			if errors.Is(err, errZeroDate) {
				line = load.AppendField(line, nil, true)
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("table %s, column %s: %w", spec.qname, quote(cols[i].Name), err)
			}
			line = load.AppendField(line, text, false)
		}
		return line, nil
	})
}

func (o *canonicalRowsOut) Close(context.Context) error { return nil } // the snapshot's owner closes it

// Feed is the source's binary log for a migration into another engine, read as the
// replica the state names, from the tables the plan migrates.
func (Engine) Feed(ctx context.Context, p *plan.Plan, st control.State) (*engine.ChangeFeed, error) {
	serverID, err := strconv.ParseUint(strings.TrimPrefix(st.Slot, streamSlot), 10, 32)
	if err != nil || !strings.HasPrefix(st.Slot, streamSlot) {
		return nil, fmt.Errorf("the control state names no stream (slot %q): cutover finish, then cutover start, to begin again", st.Slot)
	}
	db, name, err := openSide(ctx, "source", p.Source, 1)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	mariadb, err := isMariaDB(ctx, "source", db)
	if err != nil {
		return nil, err
	}
	tables, err := listTables(ctx, db, name, p)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.name
	}
	src, err := newBinlogSource(p.Source, mariadb, uint32(serverID), names, p.CDC.Heartbeat.D())
	if err != nil {
		return nil, err
	}
	src.control = p.ControlSchema // a switch's sync markers (SwitchSource.Marker)
	return &engine.ChangeFeed{
		Source:    src,
		Value:     feedValue,
		Covers:    func(snap, txn string) (bool, error) { return covers(snap, txn, mariadb) },
		Retryable: retryable,
	}, nil
}

// feedValue converts a column's values from the binary log's text (binlogColumn.text:
// the copy's, but strings in the column's character set) to the canonical form; a
// zero date is NULL.
func feedValue(c neutral.Column) func([]byte) (cdc.Value, error) {
	return func(b []byte) (cdc.Value, error) {
		switch c.Type.Kind {
		case cdc.KindText, cdc.KindJSON:
			if c.Charset == "" {
				break // MySQL 8's JSON: its text is UTF-8
			}
			var err error
			if b, err = decodeText(c.Charset, b); err != nil {
				return cdc.Value{}, err
			}
		}
		text, err := toCanonical(c.Type, b)
		if errors.Is(err, errZeroDate) {
			return cdc.Value{Null: true}, nil
		}
		if err != nil {
			return cdc.Value{}, err
		}
		return cdc.Value{Text: text}, nil
	}
}

// AssessSource runs the source's half of cutover check for a migration into another
// engine: the tables, the binary log change capture needs, the role's privileges.
// (The objects a target does not carry are the target's translation to say.)
func (Engine) AssessSource(ctx context.Context, p *plan.Plan, _ engine.AssessOptions) *check.Report {
	a := &assessment{plan: p, report: &check.Report{Source: check.Endpoint{URL: redact.ConnString(p.Source.URL)}}}
	a.src = a.connect(ctx, "source", p.Source)
	if cfg, err := Config(p.Source); err == nil {
		a.srcDB = cfg.DBName
	}
	if a.src != nil {
		defer a.src.db.Close()
		a.sourceStream(ctx)
	}
	a.grantsFindings(ctx)
	a.report.Finish()
	return a.report
}
