package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/validate"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Repair: the rows that differ are copied again from the source through the applier,
// at their place in the change stream. The validator writes a marker into the source's
// WAL; in the same snapshot it reads the rows, and stores them with the statements that
// write them in the control schema (validation_repairs). The applier, on reaching the
// marker, applies them in a transaction of its own: the target then holds the source's
// rows as of the marker, and the changes after it apply on top.
//
// A source transaction whose commit was under way as the validator's snapshot was
// taken may be on the target at the marker and not in the rows read (see points):
// written over, its change would be lost. The applier does not apply a repair of a
// table such a transaction changed; the validator tries again with a new marker.

// repairPrefix starts the ID of a repair marker.
const repairPrefix = "repair:"

// repairWait is how long the applier waits at a repair marker for the rows to arrive.
const repairWait = 30 * time.Second

// repairAt applies the repair of marker m: it waits for the validator to store it.
func (a *applier) repairAt(ctx context.Context, m *cdc.Marker) error {
	id, snapshot, _ := strings.Cut(strings.TrimPrefix(m.ID, repairPrefix), " ")
	repairs := a.control + ".validation_repairs"
	deadline := time.Now().Add(repairWait)
	var stmts []string
	var tables [][2]string
	var at string // another engine's: the position the validator's read view held
	for {
		rr := a.conn.ExecParams(ctx, "SELECT array_to_json(statements)::text, (SELECT jsonb_agg(DISTINCT jsonb_build_array(schema_name, table_name))::text FROM "+
			a.control+".validation_repair_rows WHERE repair = $1), source_position FROM "+repairs+" WHERE id = $1 AND applied_at IS NULL AND error = ''",
			[][]byte{[]byte(id)}, nil, nil, nil)
		var text, names []byte
		for rr.NextRow() {
			text, names, at = append([]byte(nil), rr.Values()[0]...), append([]byte(nil), rr.Values()[1]...), string(rr.Values()[2])
		}
		if _, err := rr.Close(); err != nil {
			return err
		}
		if text != nil {
			if err := json.Unmarshal(text, &stmts); err != nil {
				return fmt.Errorf("repair %s: %w", id, err)
			}
			if names != nil {
				if err := json.Unmarshal(names, &tables); err != nil {
					return fmt.Errorf("repair %s: %w", id, err)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			return nil // the validator gave up; it says so
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	inFlight := a.points.recent.inFlight(snapshot)
	if at != "" && a.points.covers != nil {
		inFlight = a.points.recent.inFlightPast(at, a.points.covers)
	}
	if inFlight.touches(tables) {
		return a.conn.ExecParams(ctx, "UPDATE "+repairs+" SET in_flight = $2 WHERE id = $1", [][]byte{[]byte(id), inFlight.text()}, nil, nil, nil).Read().Err
	}
	b := &pgconn.Batch{}
	b.ExecParams("BEGIN", nil, nil, nil, nil)
	for _, s := range stmts {
		b.ExecParams(s, nil, nil, nil, nil)
	}
	b.ExecParams("UPDATE "+repairs+" SET applied_at = now() WHERE id = $1", [][]byte{[]byte(id)}, nil, nil, nil)
	b.ExecParams("COMMIT", nil, nil, nil, nil)
	if _, err := a.conn.ExecBatch(ctx, b).ReadAll(); err != nil {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			return err // the connection: retried as any fault
		}
		if _, rerr := a.conn.Exec(ctx, "ROLLBACK").ReadAll(); rerr != nil {
			return rerr
		}
		return a.conn.ExecParams(ctx, "UPDATE "+repairs+" SET error = $2 WHERE id = $1", [][]byte{[]byte(id), []byte(err.Error())}, nil, nil, nil).Read().Err
	}
	return nil
}

// repairStatements writes the source's rows over the target's for a table: the rows
// with these keys are deleted, then the source's (those it has) inserted, every value
// cast from its text on the target.
func repairStatements(control, id string, t *validate.Table, g *tableShape) []string {
	rows := pgx.Identifier{control, "validation_repair_rows"}.Sanitize()
	from := fmt.Sprintf(" FROM %s r WHERE r.repair = %s AND r.schema_name = %s AND r.table_name = %s",
		rows, quoteLiteral(id), quoteLiteral(t.Schema), quoteLiteral(t.Name))
	keyCols := make([]string, len(t.Key))
	keyVals := make([]string, len(t.Key))
	for i, k := range t.Key {
		keyCols[i] = pgx.Identifier{k}.Sanitize()
		keyVals[i] = fmt.Sprintf("(r.key->>%d)::%s", i, g.types[k])
	}
	del := fmt.Sprintf("DELETE FROM ONLY %s WHERE (%s) IN (SELECT %s%s)", g.qname, strings.Join(keyCols, ", "), strings.Join(keyVals, ", "), from)
	var cols, vals []string
	for _, c := range t.Columns {
		if g.generated[c] {
			continue
		}
		cols = append(cols, pgx.Identifier{c}.Sanitize())
		vals = append(vals, fmt.Sprintf("(r.row->>%s)::%s", quoteLiteral(c), g.types[c]))
	}
	ins := fmt.Sprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s%s AND r.row IS NOT NULL",
		g.qname, strings.Join(cols, ", "), strings.Join(vals, ", "), from)
	return []string{del, ins}
}

// Repair copies the rows with these keys from the source to the target through
// the applier, and waits until it has applied them. repaired is false when changes
// to the table were in flight at each of pointTries markers: nothing was written.
func (v *validator) Repair(ctx context.Context, t *validate.Table, keys [][]string) (repaired bool, err error) {
	if err := v.EndPoint(ctx); err != nil {
		return false, err
	}
	s, g := v.shapesOf(t)
	for range pointTries {
		deferred, err := v.repairOnce(ctx, t, s, g, keys)
		if err != nil || !deferred {
			return err == nil, err
		}
	}
	return false, nil
}

// repairOnce is one try of Repair; deferred: the applier did not apply it, as
// changes to the table were in flight at its marker.
func (v *validator) repairOnce(ctx context.Context, t *validate.Table, s, g *tableShape, keys [][]string) (deferred bool, err error) {
	id := randomHex(8)
	src, _ := v.readers(t, s, g)
	if _, err := v.src.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return false, fmt.Errorf("source: %w", err)
	}
	defer v.src.Exec(context.WithoutCancel(ctx), "COMMIT")
	// The snapshot is taken as the marker is written: the rows read in it are the
	// source's at the marker (but for changes in flight, which the applier checks).
	if _, err := v.src.Exec(ctx, "SELECT pg_logical_emit_message(false, $1, $2 || ' ' || pg_current_snapshot()::text)", markerPrefix, repairPrefix+id); err != nil {
		return false, fmt.Errorf("source: write a repair marker into the WAL: %w", err)
	}
	if err := flushWAL(ctx, v.flush); err != nil {
		return false, err
	}
	rows, err := src.Lookup(ctx, t, keys)
	if err != nil {
		return false, err
	}
	return v.applyRepair(ctx, t, g, id, keys, rows, "")
}

// applyRepair stores the source's rows with these keys (rows, their values as the
// target's text; a key not among them is deleted) for the applier, which applies them
// at repair marker id, and waits until it has. at is another engine's source position
// the rows were read at ("": the marker carries the snapshot).
func (v *validator) applyRepair(ctx context.Context, t *validate.Table, g *tableShape, id string, keys [][]string, rows []validate.Row, at string) (deferred bool, err error) {
	onSource := map[string]validate.Row{}
	for _, r := range rows {
		onSource[strings.Join(r.Key, "\x00")] = r
	}
	c := v.ctl
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	for _, k := range keys {
		key, _ := json.Marshal(k)
		var row any
		if r, ok := onSource[strings.Join(k, "\x00")]; ok {
			obj := map[string]*string{}
			for i, col := range t.Columns {
				obj[col] = r.Values[i]
			}
			j, _ := json.Marshal(obj)
			row = string(j)
		}
		b.Queue("INSERT INTO "+c.table("validation_repair_rows")+" (repair, schema_name, table_name, key, row) VALUES ($1, $2, $3, $4, $5)",
			id, t.Schema, t.Name, string(key), row)
	}
	b.Queue("INSERT INTO "+c.table("validation_repairs")+" (id, statements, source_position) VALUES ($1, $2, $3)", id, repairStatements(v.p.ControlSchema, id, t, g), at)
	b.Queue("COMMIT")
	if err := c.conn.SendBatch(ctx, b).Close(); err != nil {
		return false, fmt.Errorf("target: store the rows to repair: %w", err)
	}
	defer c.conn.Exec(context.WithoutCancel(ctx), "DELETE FROM "+c.table("validation_repair_rows")+" WHERE repair = $1", id)
	defer c.conn.Exec(context.WithoutCancel(ctx), "DELETE FROM "+c.table("validation_repairs")+" WHERE id = $1", id)
	deadline := time.Now().Add(repairWait + 10*time.Second)
	for {
		var applied bool
		var rerr string
		if err := c.conn.QueryRow(ctx, "SELECT applied_at IS NOT NULL, error, in_flight IS DISTINCT FROM '{}' FROM "+c.table("validation_repairs")+" WHERE id = $1", id).Scan(&applied, &rerr, &deferred); err != nil {
			return false, cmp.Or(ctx.Err(), fmt.Errorf("target: read the repair: %w", err))
		}
		switch {
		case rerr != "":
			return false, fmt.Errorf("table %s: the repair failed on the target: %s", g.qname, rerr)
		case applied || deferred:
			return deferred, nil
		case time.Now().After(deadline):
			return false, fmt.Errorf("table %s: change data capture did not apply the repair within %v: is cutover start keeping up? (cutover status)", g.qname, repairWait)
		}
		if err := v.streaming(ctx); err != nil {
			return false, err
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
