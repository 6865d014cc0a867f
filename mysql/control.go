package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/cutover-dev/cutover/control"
)

// Control is the control state on a MySQL/MariaDB target: a database of its own
// (the plan's control_schema, cutover by default) on the target server, beside the
// migrated one, so that it is never mistaken for a migrated table. Each write
// commits when it returns.
type Control struct {
	db   *sql.DB
	name string // the database, unquoted
}

var _ control.Store = (*Control)(nil)

// controlTables are the control state's tables. `rows` is quoted: a reserved word
// of MySQL 8. A text column's default is an expression (”): MySQL takes no literal
// default there. table_stats.changed_position is the position of the last source
// transaction applied that changed the table (validation's points: see validate.go).
var controlTables = []string{
	`CREATE TABLE IF NOT EXISTS %s.state (
		id tinyint PRIMARY KEY CHECK (id = 1),
		phase varchar(20) NOT NULL,
		mode varchar(10) NOT NULL,
		slot varchar(64) NOT NULL,
		position text NOT NULL,
		applied_position text NOT NULL,
		applied_commit_time datetime(6) NULL,
		applied_at datetime(6) NULL,
		ddl_pending text NOT NULL,
		updated_at datetime(6) NOT NULL,
		replication varchar(10) NOT NULL DEFAULT 'forward',
		sync_marker varchar(64) NOT NULL DEFAULT '',
		reverse_slot varchar(64) NOT NULL DEFAULT '',
		resume_position text NOT NULL DEFAULT ('')
	) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin`,
	`CREATE TABLE IF NOT EXISTS %s.table_stats (
		schema_name varchar(64) NOT NULL,
		table_name varchar(64) NOT NULL,
		state varchar(20) NOT NULL,
		` + "`rows`" + ` bigint NOT NULL DEFAULT 0,
		bytes bigint NOT NULL DEFAULT 0,
		estimated_bytes bigint NOT NULL DEFAULT 0,
		started_at datetime(6) NULL,
		finished_at datetime(6) NULL,
		position text NOT NULL,
		error text NOT NULL,
		validation varchar(20) NOT NULL DEFAULT 'pending',
		validated_at datetime(6) NULL,
		validation_mismatches bigint NOT NULL DEFAULT 0,
		validation_error text NOT NULL DEFAULT (''),
		validated_position text NOT NULL DEFAULT (''),
		changed_position text NOT NULL DEFAULT (''),
		inserts bigint NOT NULL DEFAULT 0,
		updates bigint NOT NULL DEFAULT 0,
		deletes bigint NOT NULL DEFAULT 0,
		truncates bigint NOT NULL DEFAULT 0,
		PRIMARY KEY (schema_name, table_name)
	) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin`,
	// The points a validation asks the applier to hold at (see validpoints.go).
	`CREATE TABLE IF NOT EXISTS %s.validation_points (
		id varchar(32) PRIMARY KEY,
		position text NOT NULL,
		state varchar(10) NOT NULL,
		created_at datetime(6) NOT NULL DEFAULT now(6)
	) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin`,
	// The keys of the rows the applier changed (see dirty.go).
	`CREATE TABLE IF NOT EXISTS %s.validation_dirty (
		id bigint AUTO_INCREMENT PRIMARY KEY,
		schema_name varchar(64) NOT NULL,
		table_name varchar(64) NOT NULL,
		whole bool NOT NULL,
		` + "`keys`" + ` longtext NOT NULL,
		KEY (schema_name, table_name, id)
	) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin`,
	// The rows a table's last validation found differing (at most a thousand); key_hex
	// is the key as the validator reads it again (its columns' bytes in hex).
	`CREATE TABLE IF NOT EXISTS %s.validation_failures (
		id bigint AUTO_INCREMENT PRIMARY KEY,
		schema_name varchar(64) NOT NULL,
		table_name varchar(64) NOT NULL,
		kind varchar(20) NOT NULL,
		` + "`key`" + ` json NOT NULL,
		` + "`columns`" + ` json NOT NULL,
		source_values json NULL,
		target_values json NULL,
		key_hex json NOT NULL,
		found_at datetime(6) NOT NULL DEFAULT now(6),
		KEY (schema_name, table_name)
	) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin`,
	// The switch's and the rollback's runs, each with its runbook (see switch.go).
	`CREATE TABLE IF NOT EXISTS %s.runs (
		id varchar(40) PRIMARY KEY,
		kind varchar(10) NOT NULL,
		started_at datetime(6) NOT NULL,
		outcome varchar(30) NOT NULL,
		downtime_us bigint NULL,
		tool_downtime_us bigint NULL,
		runbook longtext NOT NULL
	) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin`,
	`CREATE TABLE IF NOT EXISTS %s.approvals (
		run_id varchar(40) PRIMARY KEY,
		approved_by varchar(255) NOT NULL,
		approved_at datetime(6) NOT NULL DEFAULT now(6)
	) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin`,
	// The markers the switch writes through the change stream (on the side the stream
	// reads); the applier records the last one it reached in state.sync_marker.
	`CREATE TABLE IF NOT EXISTS %s.sync_markers (
		id varchar(64) PRIMARY KEY,
		written_at datetime(6) NOT NULL DEFAULT now(6)
	) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin`,
	// The accounts a switch or a rollback locked, on either side (the load's are in
	// locked_accounts); a row goes once its account is unlocked.
	`CREATE TABLE IF NOT EXISTS %s.blocked_accounts (
		run varchar(40) NOT NULL,
		side varchar(10) NOT NULL,
		user_name varchar(255) NOT NULL,
		host_name varchar(255) NOT NULL,
		blocked_at datetime(6) NOT NULL DEFAULT now(6),
		PRIMARY KEY (run, side, user_name, host_name)
	) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin`,
	// The events a switch or a rollback disabled on a side (suspended), and those it
	// enabled on the other (moved); a row goes once given back.
	`CREATE TABLE IF NOT EXISTS %s.suspended_events (
		run varchar(40) NOT NULL,
		side varchar(10) NOT NULL,
		event_name varchar(64) NOT NULL,
		moved bool NOT NULL DEFAULT false,
		PRIMARY KEY (run, side, event_name)
	) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin`,
	// A side's server's read_only before cutover.block: read_only set it (see
	// readonly.go); a row goes once given back.
	`CREATE TABLE IF NOT EXISTS %s.read_only_servers (
		side varchar(10) PRIMARY KEY,
		was varchar(3) NOT NULL,
		set_at datetime(6) NOT NULL DEFAULT now(6)
	) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin`,
	// The source's triggers on the migrated tables as the switch read them: they live
	// on the side the applications write to, never on the side replication writes to.
	`CREATE TABLE IF NOT EXISTS %s.triggers (
		trigger_name varchar(64) PRIMARY KEY,
		table_name varchar(64) NOT NULL,
		seq int NOT NULL,
		statement longtext NOT NULL,
		sql_mode text NOT NULL,
		charset varchar(64) NOT NULL,
		collation_name varchar(64) NOT NULL
	) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin`,
}

// addedColumns are the columns later versions added to the control tables: a control
// database an older version made gets them.
var addedColumns = []struct{ table, column, def string }{
	{"state", "replication", "varchar(10) NOT NULL DEFAULT 'forward'"},
	{"state", "sync_marker", "varchar(64) NOT NULL DEFAULT ''"},
	{"state", "reverse_slot", "varchar(64) NOT NULL DEFAULT ''"},
	{"state", "resume_position", "text NOT NULL DEFAULT ('')"},
	{"table_stats", "inserts", "bigint NOT NULL DEFAULT 0"},
	{"table_stats", "updates", "bigint NOT NULL DEFAULT 0"},
	{"table_stats", "deletes", "bigint NOT NULL DEFAULT 0"},
	{"table_stats", "truncates", "bigint NOT NULL DEFAULT 0"},
}

// readControl opens the control state when the target has one.
func readControl(ctx context.Context, db *sql.DB, name string) (*Control, bool, error) {
	var n int
	err := db.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'state'", name).Scan(&n)
	if err != nil {
		return nil, false, fmt.Errorf("read the control state on the target: %w", err)
	}
	return &Control{db: db, name: name}, n > 0, nil
}

// openControl creates the control database and its tables, or keeps them.
func openControl(ctx context.Context, db *sql.DB, name string) (*Control, error) {
	c := &Control{db: db, name: name}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+quote(name)+" DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		return nil, controlError(name, err)
	}
	for _, q := range controlTables {
		if _, err := db.ExecContext(ctx, fmt.Sprintf(q, quote(name))); err != nil {
			return nil, controlError(name, err)
		}
	}
	if err := c.addColumns(ctx); err != nil {
		return nil, controlError(name, err)
	}
	if _, err := db.ExecContext(ctx, "INSERT IGNORE INTO "+c.table("state")+` (id, phase, mode, slot, position, applied_position, applied_commit_time, applied_at, ddl_pending, updated_at)
		VALUES (1, ?, ?, '', '', '', NULL, NULL, '', now(6))`, control.PhaseNew, control.ModeCDC); err != nil {
		return nil, controlError(name, err)
	}
	return c, nil
}

// addColumns adds the columns of addedColumns a control database lacks (MySQL has no
// ADD COLUMN IF NOT EXISTS).
func (c *Control) addColumns(ctx context.Context) error {
	present, err := c.db.QueryContext(ctx, "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ?", c.name)
	if err != nil {
		return err
	}
	have := map[[2]string]bool{}
	for present.Next() {
		var t, col string
		if err := present.Scan(&t, &col); err != nil {
			present.Close()
			return err
		}
		have[[2]string{t, col}] = true
	}
	present.Close()
	if err := present.Err(); err != nil {
		return err
	}
	for _, a := range addedColumns {
		if !have[[2]string{a.table, a.column}] {
			if _, err := c.db.ExecContext(ctx, "ALTER TABLE "+c.table(a.table)+" ADD COLUMN "+a.column+" "+a.def); err != nil {
				return err
			}
		}
	}
	return nil
}

// controlError says what the migration role needs to keep the control state.
func controlError(name string, err error) error {
	var me *driver.MySQLError
	if errors.As(err, &me) && (me.Number == 1044 || me.Number == 1142) {
		return fmt.Errorf("create the control database %s on the target: %w: GRANT ALL ON %s.* TO the target's role (or name another database with control_schema in the plan)", name, err, quote(name))
	}
	return fmt.Errorf("create the control database %s on the target: %w", name, err)
}

func (c *Control) table(t string) string { return quote(c.name) + "." + t }

// State reads the migration's state.
func (c *Control) State(ctx context.Context) (control.State, error) {
	var s control.State
	var updated sql.NullString
	err := c.db.QueryRowContext(ctx, "SELECT phase, mode, slot, position, applied_position, updated_at FROM "+c.table("state")+" WHERE id = 1").
		Scan(&s.Phase, &s.Mode, &s.Slot, &s.Position, &s.Applied, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("the control database %s on the target has no state row: cutover finish, then cutover start, to begin again", c.name)
	}
	if err != nil {
		return s, err
	}
	if t := parseTime(updated); t != nil {
		s.Updated = *t
	}
	return s, nil
}

// parseTime reads a DATETIME as the driver gives it without parseTime (which the
// copy cannot have: it reads every value as its bytes); the sessions run in UTC.
func parseTime(v sql.NullString) *time.Time {
	if !v.Valid {
		return nil
	}
	t, err := time.ParseInLocation("2006-01-02 15:04:05.999999", v.String, time.UTC)
	if err != nil {
		return nil
	}
	return &t
}

// SetState records the state's phase, slot and position.
func (c *Control) SetState(ctx context.Context, s control.State) error {
	_, err := c.db.ExecContext(ctx, "UPDATE "+c.table("state")+" SET phase = ?, slot = ?, position = ?, updated_at = now(6) WHERE id = 1", s.Phase, s.Slot, s.Position)
	return err
}

// SetMode records the migration's mode.
func (c *Control) SetMode(ctx context.Context, mode string) error {
	_, err := c.db.ExecContext(ctx, "UPDATE "+c.table("state")+" SET mode = ? WHERE id = 1", mode)
	return err
}

// QueueTables records the tables to load; the ones recorded before keep their state.
func (c *Control) QueueTables(ctx context.Context, tables []control.TableStat) error {
	if len(tables) == 0 {
		return nil
	}
	q := "INSERT IGNORE INTO " + c.table("table_stats") + " (schema_name, table_name, state, estimated_bytes, position, error) VALUES " +
		strings.TrimSuffix(strings.Repeat("(?, ?, 'queued', ?, '', ''), ", len(tables)), ", ")
	args := make([]any, 0, 3*len(tables))
	for _, t := range tables {
		args = append(args, t.Schema, t.Table, t.EstimatedBytes)
	}
	_, err := c.db.ExecContext(ctx, q, args...)
	return err
}

// TableStats reads every table's progress, by schema and name.
func (c *Control) TableStats(ctx context.Context) ([]control.TableStat, error) {
	counts := "inserts, updates, deletes, truncates"
	q := "SELECT schema_name, table_name, state, `rows`, bytes, estimated_bytes, started_at, finished_at, position, error, " +
		"validation, validated_at, validation_mismatches, validation_error, validated_position, %s FROM " + c.table("table_stats") + " ORDER BY schema_name, table_name"
	rows, err := c.db.QueryContext(ctx, fmt.Sprintf(q, counts))
	var me *driver.MySQLError
	if errors.As(err, &me) && me.Number == 1054 {
		// An older version's control database, until cutover start adds the counts.
		rows, err = c.db.QueryContext(ctx, fmt.Sprintf(q, "0, 0, 0, 0"))
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []control.TableStat
	for rows.Next() {
		var t control.TableStat
		var started, ended, validated sql.NullString
		if err := rows.Scan(&t.Schema, &t.Table, &t.State, &t.Rows, &t.Bytes, &t.EstimatedBytes, &started, &ended, &t.Position, &t.Error,
			&t.Validation, &validated, &t.ValidationMismatches, &t.ValidationError, &t.ValidatedPosition, &t.Inserts, &t.Updates, &t.Deletes, &t.Truncates); err != nil {
			return nil, err
		}
		t.Started, t.Ended, t.ValidatedAt = parseTime(started), parseTime(ended), parseTime(validated)
		out = append(out, t)
	}
	return out, rows.Err()
}

// tableStarted, tableProgress, tableLoaded and tableFailed keep a table's row current
// as it is copied.
func (c *Control) tableStarted(ctx context.Context, schema, table string) error {
	return c.tableUpdate(ctx, schema, table, "state = 'loading', `rows` = 0, bytes = 0, started_at = now(6), finished_at = NULL, error = ''")
}

// tableProgress only touches a table still loading: a late report must not undo the
// final counts of a table loaded meanwhile.
func (c *Control) tableProgress(ctx context.Context, schema, table string, rows, bytes int64) error {
	_, err := c.db.ExecContext(ctx, "UPDATE "+c.table("table_stats")+" SET `rows` = ?, bytes = ? WHERE schema_name = ? AND table_name = ? AND state = 'loading'",
		rows, bytes, schema, table)
	return err
}

func (c *Control) tableLoaded(ctx context.Context, schema, table string, rows, bytes int64, position string) error {
	return c.tableUpdate(ctx, schema, table, "state = 'loaded', `rows` = ?, bytes = ?, finished_at = now(6), position = ?", rows, bytes, position)
}

func (c *Control) tableFailed(ctx context.Context, schema, table string, failure error) error {
	return c.tableUpdate(ctx, schema, table, "state = 'error', error = ?, finished_at = now(6)", failure.Error())
}

func (c *Control) tableUpdate(ctx context.Context, schema, table, set string, args ...any) error {
	_, err := c.db.ExecContext(ctx, "UPDATE "+c.table("table_stats")+" SET "+set+" WHERE schema_name = ? AND table_name = ?",
		append(args, schema, table)...)
	return err
}

// drop removes the control database.
func (c *Control) drop(ctx context.Context) error {
	_, err := c.db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quote(c.name))
	return err
}
