package harness

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/cutover-dev/cutover/pgtest"
)

// TableFigures are what a copy of a sysbench table must match: a table's row count, and the count and MD5
// of its sample (the rows whose id is a multiple of the sample step).
type TableFigures struct {
	Rows, Sampled int64
	MD5           sql.NullString
}

// SourceFigures reads every sysbench table's figures on the source.
func SourceFigures(ctx context.Context, pool *sql.DB, tables, sample int) ([]TableFigures, error) {
	conn, err := pool.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET SESSION group_concat_max_len = 1073741824"); err != nil {
		return nil, err
	}
	out := make([]TableFigures, tables)
	for i := range tables {
		t := fmt.Sprintf("sbtest%d", i+1)
		if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM "+t).Scan(&out[i].Rows); err != nil {
			return nil, fmt.Errorf("count %s: %w", t, err)
		}
		q := "SELECT count(*), md5(group_concat(concat_ws(',', id, k, rtrim(c), rtrim(pad)) ORDER BY id SEPARATOR '\\n')) FROM " + t + " WHERE id % ? = 0"
		if err := conn.QueryRowContext(ctx, q, sample).Scan(&out[i].Sampled, &out[i].MD5); err != nil {
			return nil, fmt.Errorf("checksum %s: %w", t, err)
		}
	}
	return out, nil
}

// SameTables checks that a copy of the sysbench tables on a PostgreSQL target, in
// schema of database db, is complete and equal to the source (want, SourceFigures).
func SameTables(ctx context.Context, tgt *pgtest.Server, db, schema string, want []TableFigures, sample int) error {
	conn, err := tgt.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for i := range want {
		t := fmt.Sprintf("%s.sbtest%d", schema, i+1)
		var got TableFigures
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+t).Scan(&got.Rows); err != nil {
			return fmt.Errorf("%s in %s: %w", t, db, err)
		}
		q := "SELECT count(*), md5(string_agg(concat_ws(',', id, k, rtrim(c), rtrim(pad)), E'\\n' ORDER BY id)) FROM " + t + " WHERE id % $1 = 0"
		if err := conn.QueryRow(ctx, q, sample).Scan(&got.Sampled, &got.MD5); err != nil {
			return fmt.Errorf("checksum %s in %s: %w", t, db, err)
		}
		if got != want[i] {
			return fmt.Errorf("%s in %s: %d rows, sample of %d with MD5 %s; the source has %d rows, sample of %d with MD5 %s",
				t, db, got.Rows, got.Sampled, got.MD5.String, want[i].Rows, want[i].Sampled, want[i].MD5.String)
		}
	}
	return nil
}
