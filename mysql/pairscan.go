package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/plan"
	neutral "github.com/cutover-dev/cutover/schema"
	"github.com/cutover-dev/cutover/validate"
)

// Validation of a migration from MySQL/MariaDB to another engine: the source's rows
// read in canonical form (the copy's expressions and toCanonical; JSON normalized, as
// the other engine's JSON cannot keep MySQL's spelling), compared by the validate
// package's CanonicalReader with the target's, read the same way.

// Scanner reads the source's rows for a validation between engines.
func (Engine) Scanner(ctx context.Context, p *plan.Plan) (*engine.SourceScanner, error) {
	// the read view, the catalog, the marker
	db, name, err := openSide(ctx, "source", p.Source, 3)
	if err != nil {
		return nil, err
	}
	mariadb, err := isMariaDB(ctx, "source", db)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &pairScanner{db: db, name: name, control: p.ControlSchema}
	return &engine.SourceScanner{
		RowScanner:  s,
		Covers:      func(snap, txn string) (bool, error) { return covers(snap, txn, mariadb) },
		Point:       func(ctx context.Context, id string) (string, error) { return s.point(ctx, id, mariadb) },
		EndSnapshot: s.endSnapshot,
		Close: func() {
			s.endSnapshot()
			db.Close()
		},
	}, nil
}

type pairScanner struct {
	db     *sql.DB
	name   string
	tables map[string]*neutral.Table // read once, by name
	// control is the control database, whose sync_markers the change stream passes on
	control string
	ctl     *Control
	// the read view the scans read in, while one is open: a connection, or the
	// snapshot that holds it (MySQL's)
	view *sql.Conn
	snap *Snapshot
}

// point opens a read view and writes a sync marker into the control database right
// after (the stream passes it on), then reads the view's position. On MariaDB the view
// reports its position itself: one round trip (the marker's) between the view and the
// marker. On MySQL the view is opened under a global read lock, or the migrated
// tables' locks, for milliseconds, and the marker follows the unlock.
func (s *pairScanner) point(ctx context.Context, id string, mariadb bool) (string, error) {
	s.endSnapshot()
	if s.ctl == nil {
		ctl, err := openControl(ctx, s.db, s.control)
		if err != nil {
			return "", fmt.Errorf("source: %w", err)
		}
		s.ctl = ctl
	}
	marker := func() error {
		if _, err := s.db.ExecContext(ctx, "INSERT INTO "+s.ctl.table("sync_markers")+" (id) VALUES (?)", id); err != nil {
			return fmt.Errorf("source: write a validation marker into %s: %w", s.ctl.table("sync_markers"), err)
		}
		return nil
	}
	if !mariadb {
		pos, err := s.lockedView(ctx)
		if err == nil {
			err = marker()
		}
		if err != nil {
			s.endSnapshot()
		}
		return pos, err
	}
	view, err := s.db.Conn(ctx)
	if err != nil {
		return "", fmt.Errorf("source: %w", err)
	}
	s.view = view
	if _, err = view.ExecContext(ctx, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err == nil {
		_, err = view.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
	}
	if err != nil {
		s.endSnapshot()
		return "", fmt.Errorf("source: open a read view: %w", err)
	}
	if err := marker(); err != nil {
		s.endSnapshot()
		return "", err
	}
	pos, err := viewPosition(ctx, view)
	if err == nil {
		err = pos.fillGTID(ctx, view)
	}
	if err != nil {
		s.endSnapshot()
		return "", fmt.Errorf("source: the read view's binary log position: %w", err)
	}
	return pos.String(), nil
}

// lockedView opens the read view by a lock (MySQL's views do not report their
// position).
func (s *pairScanner) lockedView(ctx context.Context) (string, error) {
	opts := SnapshotOptions{Workers: 1, Methods: []string{ByGlobalLock, ByTableLocks}, LockWait: 5 * time.Second}
	if err := s.readTables(ctx); err != nil {
		return "", err
	}
	for name := range s.tables {
		opts.Tables = append(opts.Tables, tableName{s.name, name}.quoted())
	}
	slices.Sort(opts.Tables)
	snap, err := TakeSnapshot(ctx, s.db, false, opts, func(string, ...any) {})
	if err != nil {
		return "", fmt.Errorf("source: %w", err)
	}
	view, err := snap.Acquire(ctx)
	if err == nil {
		// text in UTF-8, as the pool's connections read it (crossSelectExpr)
		_, err = view.ExecContext(ctx, "SET SESSION character_set_results = utf8mb4")
	}
	if err != nil {
		snap.Close()
		return "", fmt.Errorf("source: %w", err)
	}
	s.snap, s.view = snap, view
	return snap.Pos.String(), nil
}

// endSnapshot ends the read view, if one is open.
func (s *pairScanner) endSnapshot() {
	switch {
	case s.snap != nil:
		s.snap.Close()
	case s.view != nil:
		_, err := s.view.ExecContext(context.Background(), "COMMIT")
		if err != nil {
			discard(s.view)
		} else {
			s.view.Close()
		}
	}
	s.snap, s.view = nil, nil
}

// table is t's definition on the source, read from the catalog once.
func (s *pairScanner) table(ctx context.Context, t *validate.Table) (*neutral.Table, error) {
	if err := s.readTables(ctx); err != nil {
		return nil, err
	}
	if tb := s.tables[t.Name]; tb != nil {
		return tb, nil
	}
	return nil, fmt.Errorf("source: no table %s", tableName{s.name, t.Name}.quoted())
}

// readTables reads the definitions of the database's tables, once.
func (s *pairScanner) readTables(ctx context.Context) error {
	if s.tables != nil {
		return nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	tables, err := listTables(ctx, s.db, s.name, &plan.Plan{Tables: plan.Tables{Include: []plan.Pattern{plan.MustPattern("*.*")}}})
	if err != nil {
		return err
	}
	sch, err := readTables(ctx, conn, s.name, tables)
	if err != nil {
		return err
	}
	s.tables = map[string]*neutral.Table{}
	for _, tb := range sch.Tables {
		s.tables[tb.Name] = tb
	}
	return nil
}

// columns are t's columns on the source, in t's order.
func (s *pairScanner) columns(ctx context.Context, t *validate.Table) ([]neutral.Column, error) {
	tb, err := s.table(ctx, t)
	if err != nil {
		return nil, err
	}
	cols := make([]neutral.Column, len(t.Columns))
	for i, name := range t.Columns {
		c := tb.Column(name)
		if c == nil {
			return nil, fmt.Errorf("source: table %s has no column %s", tableName{s.name, t.Name}.quoted(), quote(name))
		}
		cols[i] = *c
	}
	return cols, nil
}

func (s *pairScanner) Scan(ctx context.Context, t *validate.Table, r validate.Range, f func([][]byte) error) error {
	if r.Lo == nil && r.Hi == nil {
		return s.query(ctx, t, "", nil, f)
	}
	// a range of a key of one column both engines order alike
	cols, err := s.columns(ctx, &validate.Table{Name: t.Name, Columns: t.Key[:1]})
	if err != nil {
		return err
	}
	var conds []string
	var args []any
	for _, b := range r.Bounds() {
		text, err := fromCanonical(cols[0].Type, []byte(b.Value))
		if err != nil {
			return fmt.Errorf("source: key of %s: %w", tableName{s.name, t.Name}.quoted(), err)
		}
		args = append(args, keyArg(cols[0].Type, text))
		conds = append(conds, quote(cols[0].Name)+" "+b.Op+" ?")
	}
	return s.query(ctx, t, strings.Join(conds, " AND "), args, f)
}

func (s *pairScanner) ScanKeys(ctx context.Context, t *validate.Table, keys [][]string, f func([][]byte) error) error {
	cols, err := s.columns(ctx, t)
	if err != nil {
		return err
	}
	keyCols := make([]neutral.Column, len(t.Key))
	quoted := make([]string, len(t.Key))
	for i, k := range t.Key {
		for _, c := range cols {
			if c.Name == k {
				keyCols[i] = c
			}
		}
		quoted[i] = quote(k)
	}
	const batch = 500
	for len(keys) > 0 {
		n := min(len(keys), batch)
		var tuples []string
		var args []any
		for _, k := range keys[:n] {
			marks := make([]string, len(k))
			for i, v := range k {
				text, err := fromCanonical(keyCols[i].Type, []byte(v))
				if err != nil {
					return fmt.Errorf("source: key of %s: %w", tableName{s.name, t.Name}.quoted(), err)
				}
				marks[i] = "?"
				if keyCols[i].Type.Kind == cdc.KindBits {
					marks[i] = "CAST(? AS UNSIGNED)"
				}
				args = append(args, keyArg(keyCols[i].Type, text))
			}
			tuples = append(tuples, "("+strings.Join(marks, ", ")+")")
		}
		where := "(" + strings.Join(quoted, ", ") + ") IN (" + strings.Join(tuples, ", ") + ")"
		if err := s.query(ctx, t, where, args, f); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// query reads t's rows (where, when given), each value converted to its canonical
// form: a zero date is NULL, JSON normalized.
func (s *pairScanner) query(ctx context.Context, t *validate.Table, where string, args []any, f func([][]byte) error) error {
	cols, err := s.columns(ctx, t)
	if err != nil {
		return err
	}
	reads := make([]string, len(cols))
	for i, c := range cols {
		reads[i] = crossSelectExpr(quote(c.Name), c.Type, c.Charset)
	}
	q := "SELECT " + strings.Join(reads, ", ") + " FROM " + tableName{s.name, t.Name}.quoted()
	if where != "" {
		q += " WHERE " + where
	}
	var rows *sql.Rows
	if s.view != nil {
		rows, err = s.view.QueryContext(ctx, q, args...)
	} else {
		rows, err = s.db.QueryContext(ctx, q, args...)
	}
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	defer rows.Close()
	raw := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	values := make([][]byte, len(cols))
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		for i, v := range raw {
			values[i] = nil
			if v == nil {
				continue
			}
			text, err := toCanonical(cols[i].Type, v)
			switch {
			case errors.Is(err, errZeroDate):
				continue
			case err != nil:
				return fmt.Errorf("source: table %s, column %s: %w", tableName{s.name, t.Name}.quoted(), quote(cols[i].Name), err)
			case cols[i].Type.Kind == cdc.KindJSON:
				if text, err = cdc.NormalJSON(text); err != nil {
					return fmt.Errorf("source: table %s, column %s: %w", tableName{s.name, t.Name}.quoted(), quote(cols[i].Name), err)
				}
			}
			values[i] = text
		}
		if err := f(values); err != nil {
			return err
		}
	}
	return rows.Err()
}

// keyArg is a key's value as a statement's parameter: bytes as bytes (the driver
// writes _binary'...', which a binary column compares byte by byte), text otherwise.
func keyArg(t cdc.Type, text []byte) any {
	if t.Kind == cdc.KindBytes {
		return text
	}
	return string(text)
}
