package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

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
	db, name, err := openSide(ctx, "source", p.Source, 2)
	if err != nil {
		return nil, err
	}
	mariadb, err := isMariaDB(ctx, "source", db)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &pairScanner{db: db, name: name}
	return &engine.SourceScanner{
		RowScanner: s,
		Position: func(ctx context.Context) (string, error) {
			c, err := db.Conn(ctx)
			if err != nil {
				return "", err
			}
			defer c.Close()
			pos, err := logPosition(ctx, c, mariadb)
			return pos.String(), err
		},
		Covers: func(snap, txn string) (bool, error) { return covers(snap, txn, mariadb) },
		Close:  func() { db.Close() },
	}, nil
}

type pairScanner struct {
	db     *sql.DB
	name   string
	tables map[string]*neutral.Table // read once, by name
}

var _ validate.RowScanner = (*pairScanner)(nil)

// table is t's definition on the source, read from the catalog once.
func (s *pairScanner) table(ctx context.Context, t *validate.Table) (*neutral.Table, error) {
	if s.tables == nil {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		tables, err := listTables(ctx, s.db, s.name, &plan.Plan{Tables: plan.Tables{Include: []plan.Pattern{plan.MustPattern("*.*")}}})
		if err != nil {
			return nil, err
		}
		sch, err := readTables(ctx, conn, s.name, tables)
		if err != nil {
			return nil, err
		}
		s.tables = map[string]*neutral.Table{}
		for _, tb := range sch.Tables {
			s.tables[tb.Name] = tb
		}
	}
	if tb := s.tables[t.Name]; tb != nil {
		return tb, nil
	}
	return nil, fmt.Errorf("source: no table %s", tableName{s.name, t.Name}.quoted())
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
	if r.Lo != nil || r.Hi != nil {
		return errors.New("source: a range of keys is not read between engines: the table is compared whole")
	}
	return s.query(ctx, t, "", nil, f)
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
				args = append(args, string(text))
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
	rows, err := s.db.QueryContext(ctx, q, args...)
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
