package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// tableSum is what the comparison reads of a table: its rows and a hash of their text.
type tableSum struct {
	rows, hash int64
}

// compareTables reads every table on both sides (each partition on its own) and prints
// its row count and whether the hashes of its rows agree; an error if any differs.
func compareTables(ctx context.Context, sc, tc *pgx.Conn) error {
	src, err := sums(ctx, sc)
	if err != nil {
		return fmt.Errorf("the source: %w", err)
	}
	tgt, err := sums(ctx, tc)
	if err != nil {
		return fmt.Errorf("the target: %w", err)
	}
	var names []string
	width := len("TABLE")
	for _, m := range []map[string]tableSum{src, tgt} {
		for t := range m {
			if !slices.Contains(names, t) {
				names = append(names, t)
				width = max(width, len(t))
			}
		}
	}
	slices.Sort(names)
	say("  %-*s  %11s  %11s  %s\n", width, "TABLE", "SOURCE ROWS", "TARGET ROWS", "ROW HASHES")
	bad, rows := 0, int64(0)
	for _, t := range names {
		s, inSrc := src[t]
		g, inTgt := tgt[t]
		verdict := "same"
		switch {
		case !inTgt:
			verdict = "DIFFERENT: not on the target"
		case !inSrc:
			verdict = "DIFFERENT: not on the source"
		case s.rows != g.rows:
			verdict = "DIFFERENT: row counts"
		case s.hash != g.hash:
			verdict = "DIFFERENT: row contents"
		}
		if verdict != "same" {
			bad++
		}
		rows += s.rows
		say("  %-*s  %11d  %11d  %s\n", width, t, s.rows, g.rows, verdict)
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d tables differ between the source and the target", bad, len(names))
	}
	say("  %d tables, %d rows: the target holds exactly what the source holds\n", len(names), rows)
	return nil
}

// sums reads every table's count and row hash; the control schema is cutover's, not data.
func sums(ctx context.Context, conn *pgx.Conn) (map[string]tableSum, error) {
	rows, err := conn.Query(ctx, `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', $1) AND n.nspname NOT LIKE 'pg\_%' ORDER BY 1`, controlSchema)
	if err != nil {
		return nil, err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := make(map[string]tableSum, len(tables))
	for _, t := range tables {
		// t is quoted by the server's format('%I'). The hash covers every column as the
		// row's text, so a changed value anywhere shows.
		var s tableSum
		if err := conn.QueryRow(ctx, "SELECT count(*), coalesce(sum(hashtext(t::text)), 0) FROM ONLY "+t+" t").Scan(&s.rows, &s.hash); err != nil {
			return nil, fmt.Errorf("%s: %w", t, err)
		}
		out[t] = s
	}
	return out, nil
}
