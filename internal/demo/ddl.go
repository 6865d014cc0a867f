package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The migration the application deploys in the middle of the demo: a column with a
// default on a table the writer updates, an index, a new table with rows and a foreign
// key, each followed by writes that use it.
var deployment = []string{
	`ALTER TABLE public.customer ADD COLUMN loyalty_points integer NOT NULL DEFAULT 0`,
	`UPDATE public.customer SET loyalty_points = customer_id % 50 WHERE customer_id % 3 = 0`,
	`CREATE INDEX customer_loyalty_points ON public.customer (loyalty_points)`,
	`CREATE TABLE public.review (review_id serial PRIMARY KEY, film_id integer NOT NULL REFERENCES public.film,
		stars smallint NOT NULL CHECK (stars BETWEEN 1 AND 5), created_at timestamptz NOT NULL DEFAULT now())`,
	`INSERT INTO public.review (film_id, stars) SELECT film_id, 1 + film_id % 5 FROM public.film WHERE film_id <= 200`,
}

// schemaChange runs the deployment on the source under the writer and waits until the
// target has the schema and the rows after it, reading cutover's report of each step.
func schemaChange(ctx context.Context, c *capture, sc, tc *pgx.Conn) error {
	for _, q := range deployment {
		say("  source$ %s\n", strings.Join(strings.Fields(q), " "))
		if _, err := sc.Exec(ctx, q); err != nil {
			return fmt.Errorf("the source: %s: %w", q, err)
		}
	}
	var lsn string
	if err := sc.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, cmp, err := applied(ctx, tc, lsn)
		if err != nil {
			return err
		}
		if cmp >= 0 {
			break
		}
		if err := c.exitErr(); err != nil || time.Now().After(deadline) {
			return fmt.Errorf("the target did not apply the schema change within 2 minutes (cutover start: %v)", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	say("\n  cutover start's report:\n")
	for _, l := range c.linesWith("schema change", "created on the source") {
		say("  | %s\n", l)
	}
	const columns = `SELECT string_agg(format('%s %s', attname, format_type(atttypid, atttypmod)) || CASE WHEN attnotnull THEN ' not null' ELSE '' END, ', ' ORDER BY attnum)
		FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`
	for _, t := range []string{"public.customer", "public.review"} {
		var s, g string
		if err := sc.QueryRow(ctx, columns, t).Scan(&s); err != nil {
			return err
		}
		if err := tc.QueryRow(ctx, columns, t).Scan(&g); err != nil {
			return fmt.Errorf("the target: %s: %w", t, err)
		}
		if s != g {
			return fmt.Errorf("%s: the source has columns %s, the target %s", t, s, g)
		}
		say("  %s on both sides: %s\n", t, s)
	}
	var rows int64
	if err := tc.QueryRow(ctx, "SELECT count(*) FROM public.review").Scan(&rows); err != nil {
		return err
	}
	say("  public.review on the target: %d rows; the writer went on all along\n", rows)
	return nil
}
