package mysql

import (
	"context"
	"database/sql"
)

// scanStrings scans the row rows is at as strings, NULL as "".
func scanStrings(rows *sql.Rows, n int) ([]string, error) {
	vals := make([]sql.NullString, n)
	ptrs := make([]any, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	out := make([]string, n)
	for i, v := range vals {
		out[i] = v.String
	}
	return out, nil
}

// queryRows returns a query's rows as strings (NULL as "").
func queryRows(ctx context.Context, c querier, query string, args ...any) ([][]string, error) {
	rows, err := c.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out [][]string
	for rows.Next() {
		row, err := scanStrings(rows, len(cols))
		if err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// namedRow returns a query's first row by column name (NULL as ""); ok is false when
// it has none. For the SHOW statements, whose columns differ by server and version.
func namedRow(ctx context.Context, c *sql.Conn, query string) (row map[string]string, ok bool, err error) {
	rows, err := c.QueryContext(ctx, query)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, false, err
	}
	if !rows.Next() {
		return nil, false, rows.Err()
	}
	vals, err := scanStrings(rows, len(cols))
	if err != nil {
		return nil, false, err
	}
	row = make(map[string]string, len(cols))
	for i, col := range cols {
		row[col] = vals[i]
	}
	return row, true, rows.Close()
}
