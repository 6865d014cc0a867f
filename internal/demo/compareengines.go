package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// compareEngines compares every base table of sakila on MariaDB and in the schema
// sakila on PostgreSQL with the demo's own SQL. The engines write values their own ways
// (dates, text collations), so each table is compared by its row count and a digest of
// its key, integer and decimal columns, whose text is the same on both: the sum of the
// first 32 bits of each row's md5. An error if any table differs.
func compareEngines(ctx context.Context, my *sql.DB, pg *pgx.Conn) error {
	rows, err := my.QueryContext(ctx, `SELECT c.table_name, group_concat(c.column_name ORDER BY c.ordinal_position)
		FROM information_schema.COLUMNS c JOIN information_schema.TABLES t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
		WHERE c.table_schema = 'sakila' AND t.table_type = 'BASE TABLE'
		  AND c.data_type IN ('tinyint', 'smallint', 'mediumint', 'int', 'bigint', 'decimal', 'year')
		GROUP BY c.table_name ORDER BY c.table_name`)
	if err != nil {
		return err
	}
	type table struct{ name, columns string }
	var tables []table
	for rows.Next() {
		var t table
		if err := rows.Scan(&t.name, &t.columns); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	say("  %-14s  %12s  %15s  %s\n", "TABLE", "MARIADB ROWS", "POSTGRESQL ROWS", "DIGEST OF THE KEY AND NUMBER COLUMNS")
	bad, total := 0, int64(0)
	for _, t := range tables {
		cols := strings.Split(t.columns, ",")
		myCols, pgCols := make([]string, len(cols)), make([]string, len(cols))
		for i, c := range cols {
			myCols[i] = fmt.Sprintf("coalesce(%s, '-')", quoteName(c))
			pgCols[i] = fmt.Sprintf("coalesce(%s::text, '-')", pgx.Identifier{c}.Sanitize())
		}
		var counts [2]int64
		var sums [2]string
		q := fmt.Sprintf("SELECT count(*), CAST(coalesce(sum(CAST(conv(substr(md5(concat_ws(',', %s)), 1, 8), 16, 10) AS UNSIGNED)), 0) AS CHAR) FROM sakila.%s",
			strings.Join(myCols, ", "), quoteName(t.name))
		if err := my.QueryRowContext(ctx, q).Scan(&counts[0], &sums[0]); err != nil {
			return fmt.Errorf("MariaDB: %s: %w", t.name, err)
		}
		q = fmt.Sprintf("SELECT count(*), coalesce(sum(('x' || substr(md5(concat_ws(',', %s)), 1, 8))::bit(32)::bigint), 0)::text FROM sakila.%s",
			strings.Join(pgCols, ", "), pgx.Identifier{t.name}.Sanitize())
		if err := pg.QueryRow(ctx, q).Scan(&counts[1], &sums[1]); err != nil {
			return fmt.Errorf("PostgreSQL: %s: %w", t.name, err)
		}
		verdict := fmt.Sprintf("same over %d column(s): %s", len(cols), sums[0])
		if counts[0] != counts[1] || sums[0] != sums[1] {
			verdict = fmt.Sprintf("DIFFERENT: %s on MariaDB, %s on PostgreSQL", sums[0], sums[1])
			bad++
		}
		total += counts[0]
		say("  %-14s  %12d  %15d  %s\n", t.name, counts[0], counts[1], verdict)
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d tables differ between MariaDB and PostgreSQL", bad, len(tables))
	}
	say("  %d tables, %d rows: PostgreSQL holds what MariaDB holds\n", len(tables), total)
	return nil
}
