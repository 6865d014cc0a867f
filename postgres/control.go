package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/cutover-dev/cutover/control"
	"github.com/jackc/pgx/v5"
)

// controlVersion marks a control schema with every table and column this version
// needs; change it with the DDL below.
const controlVersion = "cutover control schema v12"

// Control is the control schema in the target: the state an operator must not lose.
type Control struct {
	mu      sync.Mutex // the connection serves one statement at a time; load workers share it
	conn    *pgx.Conn
	schema  string
	version string // as read by ReadControl
}

var _ control.Store = (*Control)(nil)

// readControlVersion reads the version a control schema was made at (the comment
// on its state table); nil when there is no control schema.
func readControlVersion(ctx context.Context, conn *pgx.Conn, schema string) (*string, error) {
	var version *string
	if err := conn.QueryRow(ctx, "SELECT obj_description(to_regclass($1), 'pg_class')", pgx.Identifier{schema, "state"}.Sanitize()).Scan(&version); err != nil {
		return nil, fmt.Errorf("read the control schema %s on the target: %w", schema, err)
	}
	return version, nil
}

// OpenControl creates the control schema in the target if needed and returns it.
func OpenControl(ctx context.Context, conn *pgx.Conn, schema string) (*Control, error) {
	c := &Control{conn: conn, schema: schema}
	q := func(t string) string { return pgx.Identifier{schema, t}.Sanitize() }
	// ALTER TABLE ... IF NOT EXISTS locks the table even when there is nothing to do,
	// and a running task writes these tables all the time: a control schema already at
	// this version is left alone.
	version, err := readControlVersion(ctx, conn, schema)
	if err != nil {
		return nil, err
	}
	if version != nil && *version == controlVersion {
		return c, nil
	}
	ddl := fmt.Sprintf(`
		CREATE SCHEMA IF NOT EXISTS %s;
		CREATE TABLE IF NOT EXISTS %s (
		    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
		    phase      text NOT NULL,
		    slot       text NOT NULL DEFAULT '',
		    position   text NOT NULL DEFAULT '',
		    updated_at timestamptz NOT NULL DEFAULT now());
		CREATE TABLE IF NOT EXISTS %s (
		    schema_name     text NOT NULL,
		    table_name      text NOT NULL,
		    state           text NOT NULL,
		    rows            bigint NOT NULL DEFAULT 0,
		    bytes           bigint NOT NULL DEFAULT 0,
		    estimated_bytes bigint NOT NULL DEFAULT 0,
		    started_at      timestamptz,
		    finished_at     timestamptz,
		    position        text NOT NULL DEFAULT '',
		    error           text NOT NULL DEFAULT '',
		    PRIMARY KEY (schema_name, table_name));
		INSERT INTO %s (phase) VALUES ('new') ON CONFLICT DO NOTHING;
		ALTER TABLE %[2]s
		    ADD COLUMN IF NOT EXISTS applied_position    text NOT NULL DEFAULT '',
		    ADD COLUMN IF NOT EXISTS applied_commit_time timestamptz,
		    ADD COLUMN IF NOT EXISTS applied_at          timestamptz,
		    ADD COLUMN IF NOT EXISTS source_latency      interval,
		    ADD COLUMN IF NOT EXISTS target_latency      interval,
		    ADD COLUMN IF NOT EXISTS pending             bigint,
		    ADD COLUMN IF NOT EXISTS measured_at         timestamptz;
		ALTER TABLE %[3]s
		    ADD COLUMN IF NOT EXISTS inserts   bigint NOT NULL DEFAULT 0,
		    ADD COLUMN IF NOT EXISTS updates   bigint NOT NULL DEFAULT 0,
		    ADD COLUMN IF NOT EXISTS deletes   bigint NOT NULL DEFAULT 0,
		    ADD COLUMN IF NOT EXISTS truncates bigint NOT NULL DEFAULT 0;
		CREATE TABLE IF NOT EXISTS %[5]s (
		    id          bigserial PRIMARY KEY,
		    task        text NOT NULL,
		    schema_name text NOT NULL,
		    table_name  text NOT NULL,
		    operation   text NOT NULL,
		    statement   text NOT NULL,
		    "values"    jsonb NOT NULL,
		    error       text NOT NULL,
		    position    text NOT NULL,
		    commit_time timestamptz,
		    policy      text NOT NULL,
		    created_at  timestamptz NOT NULL DEFAULT now(),
		    resolved    boolean NOT NULL DEFAULT false);
		ALTER TABLE %[3]s
		    ADD COLUMN IF NOT EXISTS validation_state      text NOT NULL DEFAULT 'pending',
		    ADD COLUMN IF NOT EXISTS validated_at          timestamptz,
		    ADD COLUMN IF NOT EXISTS validation_mismatches bigint NOT NULL DEFAULT 0,
		    ADD COLUMN IF NOT EXISTS validation_error      text NOT NULL DEFAULT '',
		    ADD COLUMN IF NOT EXISTS validated_position    text NOT NULL DEFAULT '';
		ALTER TABLE %[2]s ADD COLUMN IF NOT EXISTS changes_tracked_from text NOT NULL DEFAULT '';
		CREATE TABLE IF NOT EXISTS %[6]s (
		    id            bigserial PRIMARY KEY,
		    schema_name   text NOT NULL,
		    table_name    text NOT NULL,
		    kind          text NOT NULL,
		    key           jsonb NOT NULL,
		    columns       text[] NOT NULL DEFAULT '{}',
		    source_values jsonb,
		    target_values jsonb,
		    found_at      timestamptz NOT NULL DEFAULT now());
		CREATE TABLE IF NOT EXISTS %[7]s (
		    id         text PRIMARY KEY,
		    snapshot   text NOT NULL,
		    position   text NOT NULL,
		    error      text NOT NULL DEFAULT '',
		    created_at timestamptz NOT NULL DEFAULT now());
		DO $dirty$ BEGIN
		    -- Until v8 a changed key was a row of its own: the keys recorded that way are
		    -- dropped, and every table's next validation is a full one.
		    IF EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass(%[18]s) AND attname = 'key' AND NOT attisdropped) THEN
		        UPDATE %[3]s SET validated_position = '';
		        DROP TABLE %[8]s;
		    END IF;
		END $dirty$;
		CREATE TABLE IF NOT EXISTS %[8]s (
		    schema_name text NOT NULL,
		    table_name  text NOT NULL,
		    position    pg_lsn NOT NULL,
		    columns     text[] NOT NULL,
		    keys        text[]);
		CREATE INDEX IF NOT EXISTS validation_dirty_table ON %[8]s (schema_name, table_name, position);
		CREATE TABLE IF NOT EXISTS %[9]s (
		    id         text PRIMARY KEY,
		    statements text[] NOT NULL,
		    created_at timestamptz NOT NULL DEFAULT now(),
		    applied_at timestamptz,
		    error      text NOT NULL DEFAULT '');
		CREATE TABLE IF NOT EXISTS %[10]s (
		    repair      text NOT NULL,
		    schema_name text NOT NULL,
		    table_name  text NOT NULL,
		    key         jsonb NOT NULL,
		    row         jsonb);
		ALTER TABLE %[2]s
		    ADD COLUMN IF NOT EXISTS replication      text NOT NULL DEFAULT 'forward',
		    ADD COLUMN IF NOT EXISTS reverse_slot     text NOT NULL DEFAULT '',
		    ADD COLUMN IF NOT EXISTS reverse_position text NOT NULL DEFAULT '',
		    ADD COLUMN IF NOT EXISTS sync_marker      text NOT NULL DEFAULT '';
		CREATE TABLE IF NOT EXISTS %[11]s (
		    id            text PRIMARY KEY,
		    kind          text NOT NULL,
		    started_at    timestamptz NOT NULL,
		    ended_at      timestamptz,
		    outcome       text NOT NULL,
		    reason        text NOT NULL DEFAULT '',
		    blocked_at    timestamptz,
		    unlocked_at   timestamptz,
		    downtime      interval,
		    tool_downtime interval,
		    runbook       jsonb);
		CREATE TABLE IF NOT EXISTS %[12]s (
		    run_id        text NOT NULL,
		    seq           int NOT NULL,
		    step          text NOT NULL,
		    title         text NOT NULL,
		    started_at    timestamptz NOT NULL,
		    ended_at      timestamptz,
		    outcome       text NOT NULL,
		    detail        text NOT NULL DEFAULT '',
		    error         text NOT NULL DEFAULT '',
		    operator_time boolean NOT NULL DEFAULT false,
		    PRIMARY KEY (run_id, seq));
		CREATE TABLE IF NOT EXISTS %[13]s (
		    run_id      text NOT NULL,
		    side        text NOT NULL,
		    role        text NOT NULL,
		    blocked_at  timestamptz NOT NULL DEFAULT now(),
		    restored_at timestamptz,
		    PRIMARY KEY (run_id, side, role));
		CREATE TABLE IF NOT EXISTS %[14]s (
		    run_id      text NOT NULL,
		    side        text NOT NULL,
		    database    text NOT NULL,
		    previous    text,
		    blocked_at  timestamptz NOT NULL DEFAULT now(),
		    restored_at timestamptz,
		    PRIMARY KEY (run_id, side));
		CREATE TABLE IF NOT EXISTS %[15]s (
		    run_id      text NOT NULL,
		    side        text NOT NULL,
		    jobid       bigint NOT NULL,
		    jobname     text NOT NULL,
		    schedule    text NOT NULL,
		    command     text NOT NULL,
		    database    text NOT NULL,
		    username    text NOT NULL,
		    moved_jobid bigint,
		    suspended_at timestamptz NOT NULL DEFAULT now(),
		    restored_at timestamptz,
		    PRIMARY KEY (run_id, side, jobid));
		CREATE TABLE IF NOT EXISTS %[16]s (
		    run_id      text PRIMARY KEY,
		    approved_by text NOT NULL,
		    approved_at timestamptz NOT NULL DEFAULT now());
		CREATE TABLE IF NOT EXISTS %[17]s (
		    measured_at      timestamptz PRIMARY KEY,
		    source_latency   interval NOT NULL,
		    target_latency   interval NOT NULL,
		    pending          bigint NOT NULL,
		    retained_wal     bigint);
		ALTER TABLE %[7]s ADD COLUMN IF NOT EXISTS in_flight text[] DEFAULT '{}', ADD COLUMN IF NOT EXISTS recent jsonb;
		ALTER TABLE %[9]s ADD COLUMN IF NOT EXISTS in_flight text[] DEFAULT '{}', ADD COLUMN IF NOT EXISTS source_position text NOT NULL DEFAULT '';
		ALTER TABLE %[2]s
		    ADD COLUMN IF NOT EXISTS stopped_at  timestamptz,
		    ADD COLUMN IF NOT EXISTS stop_error  text NOT NULL DEFAULT '';
		ALTER TABLE %[2]s ADD COLUMN IF NOT EXISTS mode text NOT NULL DEFAULT 'cdc';
		ALTER TABLE %[3]s ADD COLUMN IF NOT EXISTS defined_at text NOT NULL DEFAULT '', ADD COLUMN IF NOT EXISTS source_oid oid,
		    ADD COLUMN IF NOT EXISTS copy_pending boolean NOT NULL DEFAULT false;`,
		pgx.Identifier{schema}.Sanitize(), q("state"), q("table_stats"), q("state"), q("apply_exceptions"), q("validation_failures"), q("validation_points"), q("validation_dirty"), q("validation_repairs"), q("validation_repair_rows"),
		q("runs"), q("runbook"), q("blocked_roles"), q("blocked_databases"), q("suspended_jobs"), q("approvals"), q("latency_history"),
		quoteLiteral(q("validation_dirty")))
	ddl += "; COMMENT ON TABLE " + q("state") + " IS " + quoteLiteral(controlVersion)
	if _, err := conn.Exec(ctx, ddl); err != nil {
		return nil, fmt.Errorf("create control schema %s on the target: %w", schema, err)
	}
	return c, nil
}

func (c *Control) table(name string) string { return pgx.Identifier{c.schema, name}.Sanitize() }

// State reads the migration state.
func (c *Control) State(ctx context.Context) (control.State, error) {
	var s control.State
	err := c.send(ctx, func(b *pgx.Batch) { c.queueState(b, &s) })
	if errors.Is(err, pgx.ErrNoRows) {
		err = c.errNoState()
	}
	return s, err
}

// errNoState is a control schema whose state table lost its row.
func (c *Control) errNoState() error {
	return fmt.Errorf("the control schema %s has no migration state (its table %s is empty): drop the control schema and run cutover start again, or restore the row from a backup",
		c.schema, c.table("state"))
}

// send sends the statements queue puts in a batch, in one round trip.
func (c *Control) send(ctx context.Context, queue func(*pgx.Batch)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := &pgx.Batch{}
	queue(b)
	return c.conn.SendBatch(ctx, b).Close()
}

// queueState queues the read of the migration state into s.
func (c *Control) queueState(b *pgx.Batch, s *control.State) {
	// The mode through to_jsonb: a control schema made before v10 has no such column
	// (status reads it as it is), and its migration replicates.
	b.Queue("SELECT phase, slot, position, updated_at, applied_position, applied_commit_time, applied_at, coalesce(to_jsonb(s)->>'mode', 'cdc') FROM " + c.table("state") + " s").
		QueryRow(func(row pgx.Row) error {
			return row.Scan(&s.Phase, &s.Slot, &s.Position, &s.Updated, &s.Applied, &s.AppliedCommitTime, &s.AppliedAt, &s.Mode)
		})
}

// SetState records the migration state.
func (c *Control) SetState(ctx context.Context, s control.State) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.conn.Exec(ctx, "UPDATE "+c.table("state")+" SET phase = $1, slot = $2, position = $3, updated_at = now()", s.Phase, s.Slot, s.Position)
	return err
}

// SetMode records whether the migration is a one-shot copy or replicates (ModeCopy,
// ModeCDC): SetState leaves it alone, so the other steps need not carry it.
func (c *Control) SetMode(ctx context.Context, mode string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.conn.Exec(ctx, "UPDATE "+c.table("state")+" SET mode = $1", mode); err != nil {
		return fmt.Errorf("target: record the migration's mode (%s) in %s: %w", mode, c.table("state"), err)
	}
	return nil
}

// QueueTables records the tables of the load (keeping any already loaded).
func (c *Control) QueueTables(ctx context.Context, tables []control.TableStat) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := &pgx.Batch{}
	for _, t := range tables {
		b.Queue("INSERT INTO "+c.table("table_stats")+` (schema_name, table_name, state, estimated_bytes, source_oid)
			VALUES ($1, $2, 'queued', $3, nullif($4, 0)) ON CONFLICT (schema_name, table_name) DO UPDATE SET estimated_bytes = excluded.estimated_bytes, source_oid = excluded.source_oid`,
			t.Schema, t.Table, t.EstimatedBytes, t.SourceOID)
	}
	return c.conn.SendBatch(ctx, b).Close()
}

// TableStats reads every table's row.
func (c *Control) TableStats(ctx context.Context) ([]control.TableStat, error) {
	var stats []control.TableStat
	return stats, c.send(ctx, func(b *pgx.Batch) { c.queueTableStats(b, &stats) })
}

// compareNames orders tables by schema, then name, byte by byte: the order table_stats
// is read in, and so the order a validation records its tables in. The applier updates
// their counters in that order too: two transactions that lock table_stats rows in
// different orders deadlock, and the server ends one of them.
func compareNames(a, b [2]string) int {
	return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
}

// queueTableStats queues the read of every table's row into stats, in compareNames's
// order.
func (c *Control) queueTableStats(b *pgx.Batch, stats *[]control.TableStat) {
	b.Queue(`SELECT schema_name, table_name, state, rows, bytes, estimated_bytes, started_at, finished_at, position, error,
		inserts, updates, deletes, truncates, validation_state, validated_at, validation_mismatches, validation_error, validated_position
		FROM ` + c.table("table_stats") + ` ORDER BY schema_name COLLATE "C", table_name COLLATE "C"`).Query(func(rows pgx.Rows) (err error) {
		*stats, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (control.TableStat, error) {
			var t control.TableStat
			err := row.Scan(&t.Schema, &t.Table, &t.State, &t.Rows, &t.Bytes, &t.EstimatedBytes, &t.Started, &t.Ended, &t.Position, &t.Error,
				&t.Inserts, &t.Updates, &t.Deletes, &t.Truncates, &t.Validation, &t.ValidatedAt, &t.ValidationMismatches, &t.ValidationError, &t.ValidatedPosition)
			return t, err
		})
		return err
	})
}

// ReadControl opens the control schema read-only; ok is false when it does not exist.
func ReadControl(ctx context.Context, conn *pgx.Conn, schema string) (c *Control, ok bool, err error) {
	var exists bool
	var version *string
	err = conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL, obj_description(to_regclass($1), 'pg_class')`, pgx.Identifier{schema, "state"}.Sanitize()).Scan(&exists, &version)
	if err != nil || !exists {
		return nil, false, err
	}
	c = &Control{conn: conn, schema: schema}
	if version != nil {
		c.version = *version
	}
	return c, true, nil
}

// current returns an error unless the control schema is at this version's layout.
func (c *Control) current() error {
	if c.version == controlVersion {
		return nil
	}
	return fmt.Errorf("the control schema %s was made by another version of cutover (%q; this one needs %q): run cutover start with this version (it upgrades the control schema), then try again", c.schema, c.version, controlVersion)
}

var errNoRow = errors.New("no such table in table_stats")

// tableUpdate changes one table's row.
func (c *Control) tableUpdate(ctx context.Context, schema, table, set string, args ...any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	args = append([]any{schema, table}, args...)
	tag, err := c.conn.Exec(ctx, "UPDATE "+c.table("table_stats")+" SET "+set+" WHERE schema_name = $1 AND table_name = $2", args...)
	if err == nil && tag.RowsAffected() == 0 {
		err = errNoRow
	}
	return err
}

// tableProgress records the rows and bytes copied so far of a table still loading.
func (c *Control) tableProgress(ctx context.Context, schema, table string, rows, bytes int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.conn.Exec(ctx, "UPDATE "+c.table("table_stats")+" SET rows = $3, bytes = $4 WHERE schema_name = $1 AND table_name = $2 AND state = 'loading'",
		schema, table, rows, bytes)
	return err
}
