package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/apply"
	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/internal/failpoint"
	"github.com/cutover-dev/cutover/internal/metrics"
	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Small source transactions are applied in one target transaction, which commits as
// apply.DefaultGrouping says. A large source transaction is applied as it streams,
// pipelined in batches, and commits at its end.
const (
	batchSize  = 1000    // statements sent in one pipeline round trip, at most
	batchBytes = 4 << 20 // and values
)

// applier applies change events to the target. Each target transaction ends with the
// position of the last source transaction in it written to the control schema, so a
// restart knows exactly what was applied: every change lands once.
type applier struct {
	conn     *pgconn.PgConn
	pgx      *pgx.Conn // the same connection
	control  string    // the control schema, quoted
	prepared map[string]string
	targets  map[*cdc.Relation]*targetTable

	batch      *pgconn.Batch
	queued     []queued // what each statement in batch is, to read its result
	batchBytes int      // the values in batch

	policy    plan.ErrorPolicy
	task      string
	suspended map[[2]string]bool // tables no change is applied to any more (suspended or excluded)
	// careful, when set, is the position of a source transaction that failed: up to
	// and including it, each change runs on its own behind a savepoint, so the one
	// that fails is recorded and handled by the policy while the others are applied.
	// pastCareful: that transaction has begun (the next one ends careful's hold).
	// Positions are compared for equality only: any source engine's serve.
	careful     string
	pastCareful bool
	// txnPos is the position of the source transaction being applied; txnLSN is the
	// same read as a PostgreSQL LSN (0 for a source of another engine), which only
	// schema changes captured on a PostgreSQL source are ordered by.
	txnPos  string
	txnLSN  pglogrepl.LSN
	txnTime time.Time
	// group is the open target transaction's bookkeeping: the source transactions in
	// it, the position it commits with, the last one committed.
	group       *apply.Group
	counts      map[[2]string]*opCounts
	onCommitted func(position string, txns int)
	metrics     *metrics.Metrics
	net         netBuffer
	points      points   // the target's state at validation markers
	dirty       dirtySet // the rows the open group changed, by table
	track       bool     // record the rows changed (validation.track_changes)
	// dirtyAtTarget: the changed keys are recorded at the target's WAL position (a
	// source of another engine has no LSN), which the pair validation's points read
	dirtyAtTarget bool
	mark          bool // mark each transaction as cutover's (appliedPrefix)

	ddl      ddlOptions
	migrated map[[2]string]bool // the tables in table_stats, but the excluded ones
	// rowsFrom holds the tables whose rows were copied during CDC (created, or
	// rewritten by the source), with the position of the copy: their row changes
	// before it are in the copy. definedAt holds the tables created during CDC, with
	// the position their definition was read at: their schema changes before it are
	// in it.
	rowsFrom, definedAt map[[2]string]pglogrepl.LSN
	// sourceOIDs names the migrated tables by their oid on the source, which a
	// rename keeps.
	sourceOIDs map[uint32][2]string
	roots      map[[2]string]bool // the partitioned tables of the migrated partitions
	// pending holds the tables to be copied again (see pendCopy): their row changes
	// wait for the copy.
	pending      map[[2]string]bool
	pendingRetry map[[2]string]time.Time
	// cascades are the tables whose deletes and key updates the source's foreign keys
	// carry on to other tables without logging it (a MySQL source): they are applied
	// in source order, with the target's foreign keys firing (see cascadeParents).
	cascades map[[2]string]bool
}

type queued struct {
	op     cdc.Op
	rel    *cdc.Relation
	pos    string      // the source transaction's position
	change *cdc.Change // for messages
	rows   int64       // rows a multi-row insert must insert
}

// retryCarefully asks for the stream to be read again from the last committed
// position, applying the transaction at lsn change by change.
type retryCarefully struct {
	pos   string
	cause error
}

func (r *retryCarefully) Error() string { return "retry carefully: " + r.cause.Error() }

type opCounts struct{ inserts, updates, deletes, truncates int64 }

func newApplier(ctx context.Context, conn *pgx.Conn, controlSchema, task string, policy plan.ErrorPolicy, from string) (*applier, error) {
	a := &applier{control: pgx.Identifier{controlSchema}.Sanitize(), prepared: map[string]string{},
		targets: map[*cdc.Relation]*targetTable{}, batch: &pgconn.Batch{}, counts: map[[2]string]*opCounts{}, dirty: dirtySet{}, onCommitted: func(string, int) {},
		policy: policy, task: task, group: apply.NewGroup(apply.DefaultGrouping, from), suspended: map[[2]string]bool{}}
	return a, a.attach(ctx, conn)
}

// suspendedTables reads the tables no change is applied to, as committed: a table
// suspended in a group rolled back since (a lost connection) is not, and its change
// is applied again, or recorded again.
func (a *applier) suspendedTables(ctx context.Context, conn *pgx.Conn) error {
	rows, err := conn.Query(ctx, "SELECT schema_name, table_name FROM "+a.control+".table_stats WHERE state IN ($1, $2)", control.TableSuspended, control.TableExcluded)
	if err != nil {
		return err
	}
	clear(a.suspended)
	var k [2]string
	_, err = pgx.ForEachRow(rows, []any{&k[0], &k[1]}, func() error {
		a.suspended[k] = true
		return nil
	})
	return err
}

// attach makes conn the applier's connection to the target (a new one after a fault):
// nothing prepared on the old one is known to it.
func (a *applier) attach(ctx context.Context, conn *pgx.Conn) error {
	for _, q := range []string{"SET session_replication_role = replica", "SET statement_timeout = 0"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("target: %s: %w", q, err)
		}
	}
	a.conn, a.pgx = conn.PgConn(), conn
	clear(a.prepared)
	clear(a.targets)
	a.batch, a.queued, a.batchBytes = &pgconn.Batch{}, nil, 0
	a.net.Reset()
	a.group.Abandon()
	clear(a.counts)
	clear(a.dirty)
	return nil
}

// Run applies events until the channel closes or ctx ends. A transaction left open
// then is rolled back: the stream resends it after a restart. A change whose statement
// could not be built or prepared sends the group back to be applied change by change,
// where the policy handles it.
func (a *applier) Run(ctx context.Context, events <-chan cdc.Event) error {
	// The tables as committed: a schema change of a group rolled back since (a retry,
	// a lost connection) changed them in memory only.
	if err := a.migratedTables(ctx, a.pgx); err != nil {
		return fmt.Errorf("target: read the migrated tables: %w", err)
	}
	if err := a.suspendedTables(ctx, a.pgx); err != nil {
		return fmt.Errorf("target: read the suspended tables: %w", err)
	}
	err := a.run(ctx, events)
	var ce *changeError
	var retry *retryCarefully
	// A statement that could not be prepared on a connection since closed (a FATAL
	// error: the backend terminated) is the connection's fault, retried as such.
	if a.careful == "" && errors.As(err, &ce) && !errors.As(err, &retry) && !a.conn.IsClosed() && a.txnPos != "" {
		return &retryCarefully{pos: a.txnPos, cause: err}
	}
	return err
}

func (a *applier) run(ctx context.Context, events <-chan cdc.Event) error {
	defer func() {
		if a.group.Open() {
			a.rollback(context.WithoutCancel(ctx))
		}
	}()
	var txnPos string
	for {
		var ev cdc.Event
		var ok bool
		select {
		case ev, ok = <-events:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			return nil
		}
		a.points.recent.note(ev)
		switch e := ev.(type) {
		case *cdc.Begin:
			txnPos = e.Position
			a.txnPos = e.Position
			a.txnLSN, _ = pglogrepl.ParseLSN(e.Position)
			a.txnTime = e.CommitTime
			if a.careful != "" {
				switch {
				case a.pastCareful:
					a.careful, a.pastCareful = "", false // past the transaction that failed: back to batches
				case e.Position == a.careful:
					a.pastCareful = true
				}
			}
			if a.group.Begin(time.Now()) {
				a.batch.ExecParams("BEGIN", nil, nil, nil, nil)
				a.queued = append(a.queued, queued{})
				if a.mark {
					a.batch.ExecParams("SELECT pg_logical_emit_message(true, '"+appliedPrefix+"', '')", nil, nil, nil, nil)
					a.queued = append(a.queued, queued{})
				}
			}
		case *cdc.Change:
			if e.Op == cdc.Truncate {
				if e = a.withoutSuspended(e); e == nil {
					continue
				}
			}
			k := [2]string{e.Rel.Schema, e.Rel.Name}
			if a.suspended[k] {
				continue
			}
			if e.Op != cdc.Truncate {
				if err := a.addedColumns(ctx, e.Rel); err != nil {
					return err
				}
			}
			if at, ok := a.rowsFrom[k]; (ok && a.txnLSN < at) || a.pending[k] {
				continue // in the table's copy (see copyNewTable, pendCopy)
			}
			a.countChange(e)
			if a.track {
				a.dirty.markChange(e)
				if k := [2]string{e.Rel.Schema, e.Rel.Name}; e.Op != cdc.Truncate && a.dirty.size(k) >= dirtyFlushKeys {
					a.queueDirty(k, txnPos)
				}
			}
			var err error
			if a.careful != "" {
				err = a.applyCarefully(ctx, e, txnPos)
			} else {
				err = a.add(ctx, e, txnPos)
			}
			if err != nil {
				return err
			}
			a.group.Change()
		case *cdc.SchemaChange:
			if err := a.schemaChange(ctx, e, txnPos); err != nil {
				return err
			}
		case *cdc.Marker:
			if a.group.Open() {
				if err := a.commit(ctx); err != nil {
					return err
				}
			}
			if id, ok := strings.CutPrefix(e.ID, engine.SyncMarker(repairPrefix)); ok {
				// a repair's, from another engine's feed
				if err := a.repairAt(ctx, &cdc.Marker{ID: repairPrefix + id, Position: e.Position}); err != nil {
					return err
				}
				continue
			}
			if id, ok := strings.CutPrefix(e.ID, engine.SyncMarker(pointMarker)); ok {
				// a validation's, from another engine's feed
				if err := a.points.exportRecent(ctx, a.conn, a.control, id); err != nil {
					return err
				}
				continue
			}
			if id, ok := strings.CutPrefix(e.ID, engine.SyncMarker("")); ok {
				// a switch's from another engine's feed: everything before it is committed
				if err := a.conn.ExecParams(ctx, "UPDATE "+a.control+".state SET sync_marker = $1", [][]byte{[]byte(id)}, nil, nil, nil).Read().Err; err != nil {
					return fmt.Errorf("target: record the sync marker %s: %w", id, err)
				}
				continue
			}
			if strings.HasPrefix(e.ID, repairPrefix) {
				if err := a.repairAt(ctx, e); err != nil {
					return err
				}
				continue
			}
			if err := a.points.export(ctx, a.conn, a.control, e); err != nil {
				return err
			}
		case *cdc.Commit:
			if a.group.End(e.Position, e.CommitTime, len(events) == 0, time.Now()) {
				if err := a.commit(ctx); err != nil {
					return err
				}
			}
		}
		if err := a.flushIfFull(ctx); err != nil {
			return err
		}
	}
}

// withoutSuspended leaves the suspended (and excluded) tables out of a truncate: the
// others it names are emptied, whichever it names first. nil when none is left.
func (a *applier) withoutSuspended(c *cdc.Change) *cdc.Change {
	kept := slices.DeleteFunc(slices.Clone(c.Truncated), func(r *cdc.Relation) bool { return a.suspended[[2]string{r.Schema, r.Name}] })
	switch len(kept) {
	case len(c.Truncated):
		return c
	case 0:
		return nil
	}
	t := *c
	t.Truncated, t.Rel = kept, kept[0]
	return &t
}

// queue adds a change's statement to the batch.
func (a *applier) queue(ctx context.Context, c *cdc.Change, pos string) error {
	if c.Op == cdc.Truncate {
		names := make([]string, len(c.Truncated))
		for i, r := range c.Truncated {
			names[i] = pgx.Identifier{r.Schema, r.Name}.Sanitize()
		}
		// No CASCADE: the stream names every table the source's truncate emptied.
		sql := "TRUNCATE ONLY " + strings.Join(names, ", ")
		if c.Restart {
			sql += " RESTART IDENTITY"
		}
		a.batch.ExecParams(sql, nil, nil, nil, nil)
		a.queued = append(a.queued, queued{op: c.Op, rel: c.Rel, pos: pos})
		return nil
	}
	tt, err := a.target(ctx, c.Rel)
	if err != nil {
		return err
	}
	if c.Op == cdc.Update && len(c.Rel.Columns) == 0 {
		return nil // a table without columns: an update changes nothing
	}
	if a.cascadesFrom(c) {
		// the foreign keys' actions fire for this statement (origin), and only for it
		a.batch.ExecParams("SET LOCAL session_replication_role = origin", nil, nil, nil, nil)
		a.queued = append(a.queued, queued{})
		defer func() {
			a.batch.ExecParams("SET LOCAL session_replication_role = replica", nil, nil, nil, nil)
			a.queued = append(a.queued, queued{})
		}()
	}
	rewrite := c.Op == cdc.Update && needsRewrite(c, tt)
	shape := shapeKey(c, tt, rewrite)
	name, ok := tt.prepared[shape]
	if !ok {
		sql, err := statementSQL(c, tt, rewrite)
		if err != nil {
			return &changeError{err}
		}
		if name, err = a.prepare(ctx, sql); err != nil {
			return &changeError{fmt.Errorf("%s on %s: prepare %s: %w", c.Op, tt.qname, sql, err)}
		}
		tt.prepared[shape] = name
	}
	ps := params(c, tt, rewrite)
	a.batch.ExecPrepared(name, ps, nil, nil)
	a.queued = append(a.queued, queued{op: c.Op, rel: c.Rel, pos: pos, change: c})
	for _, p := range ps {
		a.batchBytes += len(p)
	}
	return nil
}

// flushIfFull sends the batch once it holds enough statements or values.
func (a *applier) flushIfFull(ctx context.Context) error {
	if len(a.queued) >= batchSize || a.batchBytes >= batchBytes {
		if err := a.flush(ctx); err != nil {
			return err
		}
		failpoint.KillAt("start:apply:inside") // a target transaction open, part of it sent
	}
	return nil
}

// countChange adds a source change to its table's counters.
func (a *applier) countChange(c *cdc.Change) {
	switch c.Op {
	case cdc.Insert:
		a.count([2]string{c.Rel.Schema, c.Rel.Name}).inserts++
	case cdc.Update:
		a.count([2]string{c.Rel.Schema, c.Rel.Name}).updates++
	case cdc.Delete:
		a.count([2]string{c.Rel.Schema, c.Rel.Name}).deletes++
	case cdc.Truncate:
		for _, r := range c.Truncated {
			a.count([2]string{r.Schema, r.Name}).truncates++
		}
	}
}

func (a *applier) count(k [2]string) *opCounts {
	c := a.counts[k]
	if c == nil {
		c = &opCounts{}
		a.counts[k] = c
	}
	return c
}

// targetTable is what the applier needs to know of a table on the target.
type targetTable struct {
	qname    string            // schema.table, quoted
	cols     []string          // per stream column: its name, quoted
	always   []bool            // per stream column: a GENERATED ALWAYS identity column
	types    []string          // per stream column: its type, for casts
	viaText  []bool            // per stream column: sent to unnest() as text, cast row by row (see targetColumns)
	bases    []string          // per stream column: the base type of a domain, "" for other types
	prepared map[string]string // shape of change -> prepared statement
	// generatedKey names a generated column of the table's replica identity: the
	// stream does not send it, so a change keyed by the rest cannot find its row.
	generatedKey string
}

// targetColumns reads a table's columns on the target. viatext: a value of the type
// cannot be an element of the typed array unnest() reads rows from. A composite (or
// a domain over one) would be expanded into its fields, an array flattened, and a
// type whose array delimiter is not a comma (box) misread.
const targetColumns = `
	SELECT a.attname, a.attidentity = 'a', format_type(a.atttypid, a.atttypmod),
	       bt.typtype = 'c' OR bt.typcategory = 'A' OR bt.typdelim <> ',',
	       a.attgenerated <> '' AND a.attnum = ANY (coalesce(
	           (SELECT i.indkey::int2[] FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisreplident),
	           (SELECT i.indkey::int2[] FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
	            WHERE i.indrelid = a.attrelid AND i.indisprimary AND c.relreplident = 'd'))),
	       CASE WHEN bt.oid <> a.atttypid THEN format_type(bt.oid, NULL) ELSE '' END,
	       a.attgenerated <> ''
	FROM pg_attribute a
	CROSS JOIN LATERAL (
	    WITH RECURSIVE base(oid) AS (
	        SELECT a.atttypid
	      UNION ALL
	        SELECT t.typbasetype FROM pg_type t JOIN base ON t.oid = base.oid WHERE t.typtype = 'd')
	    SELECT bt.* FROM base JOIN pg_type bt ON bt.oid = base.oid WHERE bt.typtype <> 'd') bt
	WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
	ORDER BY a.attnum`

func (a *applier) target(ctx context.Context, rel *cdc.Relation) (*targetTable, error) {
	if tt, ok := a.targets[rel]; ok {
		return tt, nil
	}
	q := pgx.Identifier{rel.Schema, rel.Name}.Sanitize()
	res := a.conn.ExecParams(ctx, targetColumns, [][]byte{[]byte(q)}, nil, nil, nil).Read()
	if res.Err != nil {
		return nil, &changeError{fmt.Errorf("table %s on the target: %w", q, res.Err)}
	}
	type col struct {
		always, viaText bool
		typ, base       string
	}
	cols := map[string]col{}
	tt := &targetTable{qname: q, cols: make([]string, len(rel.Columns)), always: make([]bool, len(rel.Columns)),
		types: make([]string, len(rel.Columns)), viaText: make([]bool, len(rel.Columns)), bases: make([]string, len(rel.Columns)),
		prepared: map[string]string{}}
	for _, r := range res.Rows {
		cols[string(r[0])] = col{string(r[1]) == "t", string(r[3]) == "t", string(r[2]), string(r[5])}
		if string(r[4]) == "t" && tt.generatedKey == "" {
			tt.generatedKey = pgx.Identifier{string(r[0])}.Sanitize()
		}
	}
	for i, c := range rel.Columns {
		tt.cols[i] = pgx.Identifier{c.Name}.Sanitize()
		tc, ok := cols[c.Name]
		if !ok {
			// A column of the target the source no longer sends was renamed, or dropped.
			var gone []string
			for _, r := range res.Rows {
				if !slices.ContainsFunc(rel.Columns, func(sc cdc.Column) bool { return sc.Name == string(r[0]) }) && string(r[6]) != "t" {
					gone = append(gone, pgx.Identifier{string(r[0])}.Sanitize())
				}
			}
			fix := fmt.Sprintf("add it on the target (ALTER TABLE %s ADD COLUMN ...)", q)
			if len(gone) == 1 {
				fix = fmt.Sprintf("if the source renamed %[1]s, ALTER TABLE %[2]s RENAME COLUMN %[1]s TO %[3]s on the target; if it added the column, ALTER TABLE %[2]s ADD COLUMN ...", gone[0], q, tt.cols[i])
			}
			return nil, &changeError{fmt.Errorf("table %s on the target has no column %s, which the source sends: %s, then run cutover start again",
				q, tt.cols[i], fix)}
		}
		tt.always[i], tt.types[i], tt.viaText[i], tt.bases[i] = tc.always, tc.typ, tc.viaText, tc.base
	}
	a.targets[rel] = tt
	return tt, nil
}

// keyEquals renders the key column i equal to a value. Both sides are cast: = does not
// resolve for a parameter of unknown type against a domain over an enum, nor between
// two values of such a domain, so a domain is compared as its base type (the index
// on the column still serves).
func (tt *targetTable) keyEquals(i int, col, value string) string {
	if tt.bases[i] != "" {
		return col + "::" + tt.bases[i] + " = " + value + "::" + tt.bases[i]
	}
	return col + " = " + value + "::" + tt.types[i]
}

// changeError is an error of one change rather than of the connection: building or
// preparing its statement failed. The change goes to apply_exceptions and the
// cdc.on_error policy decides, as when the statement itself fails.
type changeError struct{ err error }

func (e *changeError) Error() string { return e.err.Error() }
func (e *changeError) Unwrap() error { return e.err }

func (a *applier) prepare(ctx context.Context, sql string) (string, error) {
	if name, ok := a.prepared[sql]; ok {
		return name, nil
	}
	name := fmt.Sprintf("cutover_%d", len(a.prepared)+1)
	if _, err := a.conn.Prepare(ctx, name, sql, nil); err != nil {
		return "", err
	}
	a.prepared[sql] = name
	return name, nil
}

// flush sends the batch and checks every statement's result.
func (a *applier) flush(ctx context.Context) error {
	if len(a.queued) == 0 {
		return nil
	}
	results, err := a.conn.ExecBatch(ctx, a.batch).ReadAll()
	queued := a.queued
	a.batch, a.queued, a.batchBytes = &pgconn.Batch{}, a.queued[:0], 0
	for i, r := range results {
		q := queued[i]
		if r.Err != nil {
			return q.fail(r.Err)
		}
		if (q.op == cdc.Update || q.op == cdc.Delete) && r.CommandTag.RowsAffected() == 0 {
			return q.fail(errNotOnTarget)
		}
		if q.rows > 0 && r.CommandTag.RowsAffected() != q.rows {
			return q.fail(fmt.Errorf("%d rows inserted of %d", r.CommandTag.RowsAffected(), q.rows))
		}
	}
	if err != nil {
		return queued[min(len(results), len(queued)-1)].fail(err)
	}
	return nil
}

func (q queued) fail(err error) error {
	if q.rel == nil {
		return fmt.Errorf("target: %w", err)
	}
	if q.pos != "" {
		return &retryCarefully{pos: q.pos, cause: q.describe(err)}
	}
	return q.describe(err)
}

func (q queued) describe(err error) error {
	what := fmt.Sprintf("%s on %s", q.op, pgx.Identifier{q.rel.Schema, q.rel.Name}.Sanitize())
	if q.change != nil {
		if k := keyText(q.change); k != "" {
			what += " (" + k + ")"
		}
	}
	return fmt.Errorf("apply the %s of the source transaction at %s: %w", what, q.pos, err)
}

// commit writes the checkpoint and the table counters, and commits. The changes'
// results are read first: an update that found no row is no error to the server, and
// must not be committed.
func (a *applier) commit(ctx context.Context) error {
	if err := a.net.drain(ctx, a, nil); err != nil {
		return err
	}
	if err := a.flush(ctx); err != nil {
		return err
	}
	if len(a.pending) > 0 {
		if err := a.copyPending(ctx); err != nil {
			return err
		}
	}
	// In the order a validation records its tables in (compareNames).
	for _, k := range slices.SortedFunc(maps.Keys(a.counts), compareNames) {
		c := a.counts[k]
		a.batch.ExecParams("UPDATE "+a.control+`.table_stats SET inserts = inserts + $3, updates = updates + $4, deletes = deletes + $5, truncates = truncates + $6
			WHERE schema_name = $1 AND table_name = $2`,
			[][]byte{[]byte(k[0]), []byte(k[1]), itoa(c.inserts), itoa(c.updates), itoa(c.deletes), itoa(c.truncates)}, nil, nil, nil)
		a.queued = append(a.queued, queued{})
	}
	pos, commitTime := a.group.Position()
	for k := range a.dirty {
		a.queueDirty(k, pos)
	}
	// The position goes in the transaction of the changes: exactly once.
	a.batch.ExecParams("UPDATE "+a.control+".state SET applied_position = $1, applied_commit_time = $2, applied_at = now()",
		[][]byte{[]byte(pos), []byte(commitTime.Format(time.RFC3339Nano))}, nil, nil, nil)
	a.queued = append(a.queued, queued{})
	a.batch.ExecParams("COMMIT", nil, nil, nil, nil)
	a.queued = append(a.queued, queued{})
	if err := a.flush(ctx); err != nil {
		return err
	}
	failpoint.KillAt("start:apply:committed") // before the source's slot hears of it
	txns := a.group.Done()
	a.points.expire(ctx)
	clear(a.dirty)
	for k, c := range a.counts {
		table := k[0] + "." + k[1]
		a.metrics.Applied(table, "insert", c.inserts)
		a.metrics.Applied(table, "update", c.updates)
		a.metrics.Applied(table, "delete", c.deletes)
		a.metrics.Applied(table, "truncate", c.truncates)
	}
	clear(a.counts)
	a.onCommitted(pos, txns)
	return nil
}

// queueDirty writes a table's dirty keys, in the open target transaction: one row,
// its keys in one array.
func (a *applier) queueDirty(k [2]string, pos string) {
	t := a.dirty[k]
	delete(a.dirty, k)
	if t == nil || (!t.whole && len(t.keys) == 0) {
		return
	}
	cols := textArray(len(t.columns), func(i int) cdc.Value { return cdc.Value{Text: []byte(t.columns[i])} })
	var keys []byte // NULL: the whole table
	if flat := t.flatKeys(); flat != nil {
		keys = textArray(len(flat), func(i int) cdc.Value { return cdc.Value{Text: []byte(flat[i])} })
	}
	if a.dirtyAtTarget {
		a.batch.ExecParams("INSERT INTO "+a.control+`.validation_dirty (schema_name, table_name, position, columns, keys) VALUES ($1, $2, pg_current_wal_insert_lsn(), $3, $4)`,
			[][]byte{[]byte(k[0]), []byte(k[1]), cols, keys}, nil, nil, nil)
	} else {
		a.batch.ExecParams("INSERT INTO "+a.control+`.validation_dirty (schema_name, table_name, position, columns, keys) VALUES ($1, $2, $3, $4, $5)`,
			[][]byte{[]byte(k[0]), []byte(k[1]), []byte(pos), cols, keys}, nil, nil, nil)
	}
	a.queued = append(a.queued, queued{})
	a.batchBytes += len(keys)
}

func (a *applier) rollback(ctx context.Context) {
	a.net.Reset()
	a.batch, a.queued, a.batchBytes = &pgconn.Batch{}, a.queued[:0], 0
	_, _ = a.conn.Exec(ctx, "ROLLBACK").ReadAll()
	a.group.Abandon()
	clear(a.counts)
	clear(a.dirty)
}

func itoa(n int64) []byte { return []byte(fmt.Sprint(n)) }

// A statement binds its values in the order binds walks them: the SQL (built once per
// shape of change) and the parameters (built for every change) both follow it.
type bindKind byte

const (
	bindValue bindKind = 'v' // a column's new value
	bindWhere bindKind = 'w' // a key column's value, to find the row
)

// binds walks the values a change's statement binds, in parameter order.
func binds(c *cdc.Change, tt *targetTable, rewrite bool, visit func(k bindKind, i int, v cdc.Value)) {
	ident := c.Old
	if ident == nil {
		ident = c.New
	}
	where := func() {
		for i, col := range c.Rel.Columns {
			if col.Key && !ident[i].Unchanged {
				visit(bindWhere, i, ident[i])
			}
		}
	}
	switch {
	case c.Op == cdc.Insert:
		for i := range c.Rel.Columns {
			visit(bindValue, i, c.New[i])
		}
	case c.Op == cdc.Update && rewrite:
		where()
		for i := range c.Rel.Columns {
			if !c.New[i].Unchanged {
				visit(bindValue, i, c.New[i])
			}
		}
	case c.Op == cdc.Update:
		for i := range c.Rel.Columns {
			// An unchanged TOASTed value keeps what the target has; an identity column
			// that is the unchanged key keeps its value.
			if !c.New[i].Unchanged && !tt.always[i] {
				visit(bindValue, i, c.New[i])
			}
		}
		where()
	case c.Op == cdc.Delete:
		where()
	}
}

// shapeKey identifies the SQL of a change: its operation and which values it binds.
func shapeKey(c *cdc.Change, tt *targetTable, rewrite bool) string {
	var b [128]byte
	key := append(b[:0], byte(c.Op))
	if rewrite {
		key = append(key, 'r')
	}
	binds(c, tt, rewrite, func(k bindKind, i int, _ cdc.Value) {
		key = append(key, byte(k), byte(i), byte(i>>8))
	})
	return string(key)
}

// params returns a change's parameters: text as the source wrote it (the server parses
// it with each column's type), NULL as nil.
func params(c *cdc.Change, tt *targetTable, rewrite bool) [][]byte {
	ps := make([][]byte, 0, len(c.Rel.Columns))
	binds(c, tt, rewrite, func(_ bindKind, _ int, v cdc.Value) {
		if v.Null {
			ps = append(ps, nil)
		} else {
			ps = append(ps, v.Text)
		}
	})
	return ps
}

// statementSQL renders the SQL of a change's shape.
//
// A row is found by its key with the key's =, which a unique index makes exact: one
// row at most is equal. A table whose whole row is its identity (REPLICA IDENTITY
// FULL) has no such index, and = is not identity there: 1.0 = 1.00, '1 day' =
// '24 hours', boxes of equal areas, 0 = -0, text under a nondeterministic collation;
// and some types have no = at all (json, jsonpath, xml, point). Its row is found by the
// exact image of its values (record_image_eq: NULLs match NULLs), one row of identical
// ones by ctid.
func statementSQL(c *cdc.Change, tt *targetTable, rewrite bool) (string, error) {
	q, cols := tt.qname, tt.cols
	full := true // every column is the key: REPLICA IDENTITY FULL
	for _, col := range c.Rel.Columns {
		full = full && col.Key
	}
	var values, conds, fullCols, fullParams []string
	valueOf := map[int]string{}
	binds(c, tt, rewrite, func(k bindKind, i int, _ cdc.Value) {
		p := fmt.Sprintf("$%d", len(values)+len(conds)+len(fullParams)+1)
		switch {
		case k == bindValue:
			values = append(values, p)
			valueOf[i] = p
		case !full:
			conds = append(conds, tt.keyEquals(i, cols[i], p))
		default:
			fullCols = append(fullCols, cols[i])
			fullParams = append(fullParams, p+"::"+tt.types[i])
		}
	})
	if c.Op != cdc.Insert && !full {
		switch {
		case tt.generatedKey != "":
			return "", fmt.Errorf("%s on %s: the change stream identifies its rows by %d of its columns, not by its whole key: its replica identity has the generated column %s, which PostgreSQL does not publish. Fix on the source: ALTER TABLE %s REPLICA IDENTITY FULL (or USING INDEX on a unique index without generated columns), then run cutover start again",
				c.Op, q, len(conds), tt.generatedKey, q)
		case len(conds) == 0:
			return "", fmt.Errorf("%s on %s: the change stream names no column that identifies its row (no key, REPLICA IDENTITY NOTHING). Fix on the source: add a primary key, or ALTER TABLE %s REPLICA IDENTITY FULL, then run cutover start again",
				c.Op, q, q)
		}
	}
	where := strings.Join(conds, " AND ")
	if full {
		// Rows may repeat: one row is matched, by ctid.
		match := ""
		if len(fullCols) > 0 {
			match = fmt.Sprintf(" WHERE record_image_eq(ROW(%s), ROW(%s))", strings.Join(fullCols, ", "), strings.Join(fullParams, ", "))
		}
		where = fmt.Sprintf("ctid = (SELECT ctid FROM ONLY %s%s LIMIT 1)", q, match)
	}
	switch {
	case c.Op == cdc.Insert && len(cols) == 0:
		return fmt.Sprintf("INSERT INTO %s DEFAULT VALUES", q), nil // no column the stream sends
	case c.Op == cdc.Insert:
		// OVERRIDING SYSTEM VALUE keeps the source's values of GENERATED ALWAYS identity columns.
		return fmt.Sprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE VALUES (%s)", q, strings.Join(cols, ", "), strings.Join(values, ", ")), nil
	case c.Op == cdc.Update && rewrite:
		// A GENERATED ALWAYS identity column cannot be set by UPDATE: when its value may
		// have changed, the row is deleted and inserted again in one statement, unchanged
		// TOASTed values taken from the deleted row.
		vals := make([]string, len(cols))
		for i := range cols {
			if p, ok := valueOf[i]; ok {
				vals[i] = p + "::" + tt.types[i]
			} else {
				vals[i] = "old." + cols[i]
			}
		}
		return fmt.Sprintf("WITH old AS (DELETE FROM ONLY %s WHERE %s RETURNING *) INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM old",
			q, where, q, strings.Join(cols, ", "), strings.Join(vals, ", ")), nil
	case c.Op == cdc.Update:
		sets := make([]string, 0, len(valueOf))
		for i := range cols {
			if p, ok := valueOf[i]; ok {
				sets = append(sets, cols[i]+" = "+p)
			}
		}
		// ONLY: an inheritance parent's row, not its children's.
		return fmt.Sprintf("UPDATE ONLY %s SET %s WHERE %s", q, strings.Join(sets, ", "), where), nil
	default:
		return fmt.Sprintf("DELETE FROM ONLY %s WHERE %s", q, where), nil
	}
}

// keyText describes the row a change is about, for messages.
func keyText(c *cdc.Change) string {
	ident := c.Old
	if ident == nil {
		ident = c.New
	}
	var keys []string
	full := true
	for i, col := range c.Rel.Columns {
		full = full && col.Key
		if col.Key && ident != nil && !ident[i].Unchanged {
			v := "NULL"
			if !ident[i].Null {
				v = string(ident[i].Text)
			}
			keys = append(keys, col.Name+"="+v)
		}
	}
	if full && len(c.Rel.Columns) > 1 {
		return "whole row"
	}
	return strings.Join(keys, ", ")
}

// statement renders a change as SQL, for the record of an exception.
func statement(c *cdc.Change, tt *targetTable) string {
	rewrite := c.Op == cdc.Update && needsRewrite(c, tt)
	sql, err := statementSQL(c, tt, rewrite)
	if err != nil {
		return ""
	}
	return sql
}

// needsRewrite says whether an update must be a delete and insert: it touches a
// GENERATED ALWAYS identity column whose value may have changed (one outside the key,
// or in a key the update changed), or every column is an identity column.
func needsRewrite(c *cdc.Change, tt *targetTable) bool {
	settable := false
	for i, col := range c.Rel.Columns {
		switch {
		case tt.always[i] && (!col.Key || c.Old != nil):
			return true
		case !tt.always[i] && !c.New[i].Unchanged:
			settable = true
		}
	}
	return !settable
}

var errNotOnTarget = errors.New("the row is not on the target")

// applyCarefully runs one change behind a savepoint. When it fails, the change is
// recorded in apply_exceptions and the policy decides: log goes on, suspend_table
// goes on without the table, stop ends the task with nothing of the transaction
// applied but the record of the exception.
func (a *applier) applyCarefully(ctx context.Context, c *cdc.Change, pos string) error {
	if err := a.net.drain(ctx, a, nil); err != nil {
		return err
	}
	if err := a.flush(ctx); err != nil {
		return err
	}
	// The savepoint first: preparing the change's statement may fail, and that aborts
	// the transaction as much as running it.
	if _, err := a.conn.Exec(ctx, "SAVEPOINT cutover_change").ReadAll(); err != nil {
		return err
	}
	err := a.queue(ctx, c, pos)
	if err == nil && len(a.queued) == 0 {
		_, err := a.conn.Exec(ctx, "RELEASE SAVEPOINT cutover_change").ReadAll()
		return err // nothing to run (an update of a table without columns)
	}
	var described error
	if err == nil {
		var results []*pgconn.Result
		results, err = a.conn.ExecBatch(ctx, a.batch).ReadAll()
		sent := a.queued
		a.batch, a.queued, a.batchBytes = &pgconn.Batch{}, nil, 0
		if err == nil && len(results) == len(sent) {
			last := results[len(results)-1]
			for i := len(sent) - 1; i > 0 && sent[i].rel == nil; i-- {
				last = results[i-1] // the change's, not a setting's after it
			}
			if (c.Op == cdc.Update || c.Op == cdc.Delete) && last.CommandTag.RowsAffected() == 0 {
				err = errNotOnTarget
			}
		}
		if err == nil {
			_, err := a.conn.Exec(ctx, "RELEASE SAVEPOINT cutover_change").ReadAll()
			return err
		}
		var pgErr *pgconn.PgError
		if !errors.Is(err, errNotOnTarget) && !errors.As(err, &pgErr) || a.conn.IsClosed() {
			return err // the connection, not the change (a FATAL error, say: the backend terminated)
		}
		described = sent[len(sent)-1].describe(err)
	} else {
		var ce *changeError
		if !errors.As(err, &ce) || a.conn.IsClosed() {
			return err // the connection lost while the statement was prepared
		}
		a.batch, a.queued, a.batchBytes = &pgconn.Batch{}, nil, 0
		described = queued{op: c.Op, rel: c.Rel, pos: pos, change: c}.describe(err)
	}
	ex := a.exception(c, err)
	a.metrics.Exception()
	if a.policy == plan.OnErrorStop {
		// Nothing of the transaction stays applied; the exception alone is committed.
		a.rollback(ctx)
		if _, xerr := a.conn.ExecParams(ctx, ex.sql, ex.params, nil, nil, nil).Close(); xerr != nil {
			return fmt.Errorf("record the apply exception: %w (the change: %v)", xerr, err)
		}
		return &cdc.ApplyError{Err: fmt.Errorf("%w\nthe change is recorded in %s.apply_exceptions; fix the target (or set cdc.on_error: log or suspend_table), then run cutover start again",
			described, a.control)}
	}
	a.batch.ExecParams("ROLLBACK TO SAVEPOINT cutover_change", nil, nil, nil, nil)
	a.batch.ExecParams(ex.sql, ex.params, nil, nil, nil)
	a.queued = append(a.queued, queued{}, queued{})
	if a.policy == plan.OnErrorSuspendTable {
		a.suspended[[2]string{c.Rel.Schema, c.Rel.Name}] = true
		a.batch.ExecParams("UPDATE "+a.control+".table_stats SET state = $3, error = $4 WHERE schema_name = $1 AND table_name = $2",
			[][]byte{[]byte(c.Rel.Schema), []byte(c.Rel.Name), []byte(control.TableSuspended), []byte(err.Error())}, nil, nil, nil)
		a.queued = append(a.queued, queued{})
	}
	return a.flush(ctx)
}

type exceptionRow struct {
	sql    string
	params [][]byte
}

// exception renders the apply_exceptions row of a change that failed.
func (a *applier) exception(c *cdc.Change, cause error) exceptionRow {
	values := map[string]map[string]*string{}
	for name, row := range map[string]cdc.Row{"old": c.Old, "new": c.New} {
		if row == nil {
			continue
		}
		m := map[string]*string{}
		for i, v := range row {
			switch {
			case v.Unchanged:
			case name == "old" && !c.Rel.Columns[i].Key:
				// Not sent: the old row holds the identity's columns alone (all of them
				// with REPLICA IDENTITY FULL). Recorded as null, it would read as a NULL.
			case v.Null:
				m[c.Rel.Columns[i].Name] = nil
			default:
				t := string(v.Text)
				m[c.Rel.Columns[i].Name] = &t
			}
		}
		values[name] = m
	}
	js, _ := json.Marshal(values)
	stmt := ""
	if c.Op == cdc.Truncate {
		stmt = "TRUNCATE"
	} else if tt, err := a.target(context.Background(), c.Rel); err == nil {
		stmt = statement(c, tt)
	}
	return exceptionRow{
		sql: "INSERT INTO " + a.control + `.apply_exceptions (task, schema_name, table_name, operation, statement, "values", error, position, commit_time, policy)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		params: [][]byte{[]byte(a.task), []byte(c.Rel.Schema), []byte(c.Rel.Name), []byte(c.Op.String()), []byte(stmt), js,
			[]byte(cause.Error()), []byte(a.txnPos), []byte(a.txnTime.Format(time.RFC3339Nano)), []byte(a.policy)},
	}
}

// cascadesFrom says whether a change is one whose foreign keys' actions the source
// made without logging them: a delete, or an update of the key, of a table in
// a.cascades.
func (a *applier) cascadesFrom(c *cdc.Change) bool {
	if !a.cascades[[2]string{c.Rel.Schema, c.Rel.Name}] {
		return false
	}
	switch c.Op {
	case cdc.Delete:
		return true
	case cdc.Update:
		if c.Old == nil {
			return false
		}
		for i, col := range c.Rel.Columns {
			if col.Key && i < len(c.Old) && i < len(c.New) && !c.New[i].Unchanged &&
				(c.Old[i].Null != c.New[i].Null || string(c.Old[i].Text) != string(c.New[i].Text)) {
				return true
			}
		}
	}
	return false
}
