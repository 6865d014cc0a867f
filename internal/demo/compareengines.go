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
// its key, integer, decimal and spatial columns, each written as the same text on both
// (columnDigest): the sum of the first 32 bits of each row's md5. An error if any table
// differs.
func compareEngines(ctx context.Context, my *sql.DB, pg *pgx.Conn) error {
	rows, err := my.QueryContext(ctx, `SELECT c.table_name, c.column_name, c.data_type
		FROM information_schema.COLUMNS c JOIN information_schema.TABLES t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
		WHERE c.table_schema = 'sakila' AND t.table_type = 'BASE TABLE'
		  AND c.data_type IN ('tinyint', 'smallint', 'mediumint', 'int', 'bigint', 'decimal', 'year',
		    'geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon', 'geometrycollection')
		ORDER BY c.table_name, c.ordinal_position`)
	if err != nil {
		return err
	}
	type table struct {
		name           string
		myCols, pgCols []string // each column's text on MariaDB and on PostgreSQL
	}
	var tables []table
	for rows.Next() {
		var name, column, dataType string
		if err := rows.Scan(&name, &column, &dataType); err != nil {
			rows.Close()
			return err
		}
		if n := len(tables); n == 0 || tables[n-1].name != name {
			tables = append(tables, table{name: name})
		}
		t := &tables[len(tables)-1]
		myCol, pgCol := columnDigest(column, dataType)
		t.myCols, t.pgCols = append(t.myCols, myCol), append(t.pgCols, pgCol)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	say("  %-14s  %12s  %15s  %s\n", "TABLE", "MARIADB ROWS", "POSTGRESQL ROWS", "DIGEST OF THE KEY, NUMBER AND SPATIAL COLUMNS")
	bad, total := 0, int64(0)
	for _, t := range tables {
		var counts [2]int64
		var sums [2]string
		q := fmt.Sprintf("SELECT count(*), CAST(coalesce(sum(CAST(conv(substr(md5(concat_ws(',', %s)), 1, 8), 16, 10) AS UNSIGNED)), 0) AS CHAR) FROM sakila.%s",
			strings.Join(t.myCols, ", "), quoteName(t.name))
		if err := my.QueryRowContext(ctx, q).Scan(&counts[0], &sums[0]); err != nil {
			return fmt.Errorf("MariaDB: %s: %w", t.name, err)
		}
		q = fmt.Sprintf("SELECT count(*), coalesce(sum(('x' || substr(md5(concat_ws(',', %s)), 1, 8))::bit(32)::bigint), 0)::text FROM sakila.%s",
			strings.Join(t.pgCols, ", "), pgx.Identifier{t.name}.Sanitize())
		if err := pg.QueryRow(ctx, q).Scan(&counts[1], &sums[1]); err != nil {
			return fmt.Errorf("PostgreSQL: %s: %w", t.name, err)
		}
		verdict := fmt.Sprintf("same over %d column(s): %s", len(t.myCols), sums[0])
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

// columnDigest is a column's text in the digest, on MariaDB and on PostgreSQL (where
// the column is PostGIS's geometry), NULL written '-'. A number is its text; a spatial
// value is its SRID and its WKB (little-endian, as MariaDB writes it) in hex.
func columnDigest(column, dataType string) (my, pg string) {
	myCol, pgCol := quoteName(column), pgx.Identifier{column}.Sanitize()
	switch dataType {
	case "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection":
		my = fmt.Sprintf("concat(ST_SRID(%[1]s), ':', lower(hex(ST_AsWKB(%[1]s))))", myCol)
		pg = fmt.Sprintf("ST_SRID(%[1]s) || ':' || encode(ST_AsBinary(%[1]s, 'NDR'), 'hex')", pgCol)
	default:
		my, pg = myCol, pgCol+"::text"
	}
	return fmt.Sprintf("coalesce(%s, '-')", my), fmt.Sprintf("coalesce(%s, '-')", pg)
}
