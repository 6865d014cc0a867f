package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/redact"
)

// server is what the assessment learns about one side.
type server struct {
	side     string
	db       *sql.DB
	mariadb  bool
	version  string // as the server says it: 10.11.19-MariaDB-0+deb12u1
	major    int
	minor    int
	settings map[string]string // global variables, lower case names
}

// kind is the server's kind: MariaDB or MySQL.
func (s *server) kind() string {
	if s.mariadb {
		return "MariaDB"
	}
	return "MySQL"
}

// number is the server's version without its suffix: 10.11.19.
func (s *server) number() string { v, _, _ := strings.Cut(s.version, "-"); return v }

// flavour is the server's kind and version for people: "MariaDB 10.11.19".
func (s *server) flavour() string { return s.kind() + " " + s.number() }

// setOnline is how to change a global variable on this server, and keep it after a
// restart.
func (s *server) setOnline(name, value string) string {
	if !s.mariadb && s.major >= 8 {
		return fmt.Sprintf("SET PERSIST %s = %s", name, value)
	}
	return fmt.Sprintf("SET GLOBAL %s = %s, and %s = %s under [mysqld] in the server's configuration file", name, value, strings.ReplaceAll(name, "_", "-"), strings.Trim(value, "'"))
}

// assessment runs the checks of one cutover check.
type assessment struct {
	plan         *plan.Plan
	report       *check.Report
	src, tgt     *server
	srcDB, tgtDB string // the databases the URLs name
	// migrated are the plan's tables of the source's database, in name order, with
	// their size (data and indexes, as information_schema estimates it).
	migrated []migratedTable
}

// migratedTable is one of the plan's tables on the source.
type migratedTable struct {
	name  string
	bytes int64
}

// isMigrated says whether the plan migrates the source's table name.
func (a *assessment) isMigrated(name string) bool {
	for _, t := range a.migrated {
		if t.name == name {
			return true
		}
	}
	return false
}

// Assess runs the premigration assessment of a MySQL/MariaDB to MySQL/MariaDB plan:
// what the binary log must be for change capture, and the tables it cannot follow.
func Assess(ctx context.Context, p *plan.Plan, _ engine.AssessOptions) *check.Report {
	a := &assessment{plan: p, report: &check.Report{
		Source: check.Endpoint{URL: redact.ConnString(p.Source.URL)},
		Target: check.Endpoint{URL: redact.ConnString(p.Target.URL)},
	}}
	a.src = a.connect(ctx, "source", p.Source)
	a.tgt = a.connect(ctx, "target", p.Target)
	for _, s := range []*server{a.src, a.tgt} {
		if s != nil {
			defer s.db.Close()
		}
	}
	if cfg, err := Config(p.Source); err == nil {
		a.srcDB = cfg.DBName
	}
	if cfg, err := Config(p.Target); err == nil {
		a.tgtDB = cfg.DBName
	}
	if a.src != nil {
		a.sourceStream(ctx)
		a.sourceObjects(ctx)
	}
	if a.tgt != nil {
		a.report.Target.Engine, a.report.Target.Version = a.tgt.kind(), a.tgt.number()
		if a.tgt.settings["read_only"] == "ON" {
			a.add(check.Error, "target_read_only", "target", "the target is read-only (read_only = ON): the load cannot write to it",
				a.tgt.setOnline("read_only", "OFF"))
		}
		if !p.FullLoad.TargetBinlog {
			a.skipTargetBinlog(ctx)
		}
	}
	a.grantsFindings(ctx)
	if a.src != nil && a.tgt != nil {
		if a.src.settings["server_id"] == a.tgt.settings["server_id"] {
			a.add(check.Error, "server_id", "target", fmt.Sprintf("the source and the target have the same server_id (%s): reverse replication would drop the other's events as its own",
				a.src.settings["server_id"]), a.tgt.setOnline("server_id", "<a number no other server of the topology uses>"))
		}
		a.bothSides(ctx)
	}
	a.report.Finish()
	return a.report
}

// streamOnly are the findings that matter to change capture only: with cdc.enabled
// false (a one-shot copy) they are information. (A table in an engine without
// transactions matters to a copy too: its rows are not in the snapshot.)
var streamOnly = map[string]bool{"log_bin": true, "binlog_format": true, "binlog_row_image": true, "binlog_row_metadata": true,
	"binlog_row_value_options": true, "log_bin_compress": true, "binlog_transaction_compression": true, "gtid_mode": true,
	"gtid_strict_mode": true, "binlog_retention": true, "primary_key": true, "server_id": true}

func (a *assessment) add(sev check.Severity, name, object, problem, fix string) {
	if !a.plan.CDC.Enabled && streamOnly[name] && sev != check.Info {
		sev, fix = check.Info, ""
		problem = "no matter with cdc.enabled: false (a one-shot copy needs no change stream): " + problem
	}
	a.report.Add(check.Finding{Severity: sev, Check: name, Object: object, Problem: problem, Fix: fix})
}

func (a *assessment) fail(side, what string, err error) {
	a.add(check.Error, "connection", side, fmt.Sprintf("could not read the %s's %s: %v", side, what, err), "")
}

// connect opens a side and reads its version and global variables; nil (with the
// finding) when it cannot.
func (a *assessment) connect(ctx context.Context, side string, e plan.Endpoint) *server {
	db, err := Open(ctx, side, e, 2)
	if err != nil {
		a.add(check.Error, "connection", side, err.Error(), "check the URL, that the server runs and that the user may connect from this host")
		return nil
	}
	s := &server{side: side, db: db, settings: map[string]string{}}
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&s.version); err != nil {
		a.fail(side, "version", err)
		db.Close()
		return nil
	}
	s.mariadb = strings.Contains(strings.ToLower(s.version), "mariadb")
	nums := strings.SplitN(strings.SplitN(s.version, "-", 2)[0], ".", 3)
	s.major, _ = strconv.Atoi(nums[0])
	if len(nums) > 1 {
		s.minor, _ = strconv.Atoi(nums[1])
	}
	rows, err := db.QueryContext(ctx, "SHOW GLOBAL VARIABLES")
	if err != nil {
		a.fail(side, "variables", err)
		db.Close()
		return nil
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			a.fail(side, "variables", err)
			db.Close()
			return nil
		}
		s.settings[strings.ToLower(k)] = v
	}
	if err := rows.Err(); err != nil {
		a.fail(side, "variables", err)
		db.Close()
		return nil
	}
	return s
}

// binlog checks that the source's binary log holds what change capture reads: every
// row change whole, with its columns' names and types. It says whether the binary log
// is on.
func (a *assessment) binlog(s *server) bool {
	set := s.settings
	if set["log_bin"] != "ON" {
		a.add(check.Error, "log_bin", "source", "the binary log is off (log_bin = OFF): changes cannot be captured",
			"log-bin = binlog under [mysqld] in the server's configuration file, then restart the server (on RDS and Aurora: turn on automated backups)")
		return false
	}
	for _, want := range []struct{ name, value, why string }{
		{"binlog_format", "ROW", "change capture reads row events; with STATEMENT or MIXED some changes arrive as SQL that cannot be applied exactly"},
		{"binlog_row_image", "FULL", "every column of every changed row is needed to apply and validate it"},
		{"binlog_row_metadata", "FULL", "the row events must carry the columns' names, signedness and charsets, or a change made while the schema changes is decoded against the wrong columns"},
	} {
		got, ok := set[want.name]
		if !ok && want.name == "binlog_row_metadata" {
			a.add(check.Error, want.name, "source", fmt.Sprintf("%s has no binlog_row_metadata (MySQL 8.0.1 and MariaDB 10.5 added it): %s", s.flavour(), want.why),
				"upgrade the source to MySQL 8.0 or MariaDB 10.5 or later")
			continue
		}
		if !strings.EqualFold(got, want.value) {
			a.add(check.Error, want.name, "source", fmt.Sprintf("%s is %s: %s", want.name, got, want.why), s.setOnline(want.name, "'"+want.value+"'"))
		}
	}
	if v := set["binlog_row_value_options"]; v != "" {
		a.add(check.Error, "binlog_row_value_options", "source", fmt.Sprintf("binlog_row_value_options is %s: JSON columns are logged as partial updates, which cannot be applied to another engine's copy", v),
			s.setOnline("binlog_row_value_options", "''"))
	}
	for _, name := range []string{"log_bin_compress", "binlog_transaction_compression"} {
		if set[name] == "ON" {
			a.add(check.Warning, name, "source", fmt.Sprintf("%s is ON: the compressed events are read, but at a cost on every change", name), s.setOnline(name, "OFF"))
		}
	}
	if !s.mariadb && set["gtid_mode"] != "ON" {
		a.add(check.Warning, "gtid_mode", "source", fmt.Sprintf("gtid_mode is %s: positions are file:offset, which do not survive a failover of the source to a replica", set["gtid_mode"]),
			"SET PERSIST enforce_gtid_consistency = ON, then gtid_mode = OFF_PERMISSIVE, ON_PERMISSIVE and ON in turn")
	}
	if s.mariadb && set["gtid_strict_mode"] != "ON" {
		a.add(check.Warning, "gtid_strict_mode", "source", "gtid_strict_mode is OFF: a GTID out of order in the binary log is taken as it comes rather than refused",
			s.setOnline("gtid_strict_mode", "ON"))
	}
	if set["server_id"] == "0" {
		a.add(check.Error, "server_id", "source", "the source's server_id is 0: it refuses to stream its binary log", s.setOnline("server_id", "<a number no other server of the topology uses>"))
	}
	return true
}

// loadRate is the rate at which the retention check assumes the full load copies
// the tables' data and indexes: a conservative 20 MiB/s (a small target, a remote
// network, the indexes built after the rows), so that the estimate errs long.
const loadRate = 20 << 20

// minRetention is the shortest binary log retention that is not reported whatever
// the load's estimate: a day, for a pause of cutover start or a slow night.
const minRetention = 86400

// retention reports a binary log kept too short for the stream to read it from the
// load's snapshot on: shorter than the load's estimate (loadRate) is an error, shorter
// than twice that or than minRetention a warning. On RDS, the setting that counts is
// the 'binlog retention hours' of mysql.rds_configuration.
func (a *assessment) retention(ctx context.Context, s *server) {
	var bytes int64
	for _, t := range a.migrated {
		bytes += t.bytes
	}
	estimate := (bytes + loadRate - 1) / loadRate
	need := max(minRetention, 2*estimate)
	keep := (max(604800, need) + 3599) / 3600 * 3600 // what the fix sets: a week, or more, in whole hours
	rdsFix := fmt.Sprintf("CALL mysql.rds_set_configuration('binlog retention hours', %d)", keep/3600)
	load := fmt.Sprintf("the load of the plan's tables (%s of data and indexes) is estimated at %s at %d MiB/s", size(bytes), duration(estimate), loadRate>>20)

	rds, err := isRDS(ctx, s)
	if err != nil {
		a.add(check.Warning, "binlog_retention", "source", fmt.Sprintf("could not tell whether the source is RDS (%v): its binary log retention was not read", err), "")
		return
	}
	var secs int64
	var what, fix string
	if rds {
		var hours sql.NullInt64
		err := s.db.QueryRowContext(ctx, "SELECT value FROM mysql.rds_configuration WHERE name = 'binlog retention hours'").Scan(&hours)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			a.add(check.Warning, "binlog_retention", "source", fmt.Sprintf("the source is RDS, and its 'binlog retention hours' could not be read (%v)", err),
				"CALL mysql.rds_show_configuration to read it; "+rdsFix)
			return
		}
		if !hours.Valid || hours.Int64 <= 0 {
			a.add(check.Error, "binlog_retention", "source", "the source is RDS and its 'binlog retention hours' is not set (NULL): RDS purges the binary log as soon as it is backed up, before the stream reads it; "+load, rdsFix)
			return
		}
		secs, what, fix = hours.Int64*3600, fmt.Sprintf("'binlog retention hours' is %d", hours.Int64), rdsFix
	} else {
		if v, ok := s.settings["binlog_expire_logs_seconds"]; ok {
			secs, _ = strconv.ParseInt(v, 10, 64)
		}
		what = fmt.Sprintf("the binary log is kept %d s", secs)
		if secs == 0 {
			if days, err := strconv.ParseFloat(s.settings["expire_logs_days"], 64); err == nil {
				secs = int64(days * 86400)
				what = fmt.Sprintf("the binary log is kept %s days (expire_logs_days)", s.settings["expire_logs_days"])
			}
		}
		fix = s.setOnline("binlog_expire_logs_seconds", strconv.FormatInt(keep, 10)) + " (on RDS and Aurora: " + rdsFix + ")"
	}
	switch {
	case secs <= 0: // kept until purged by hand
	case secs < estimate:
		a.add(check.Error, "binlog_retention", "source", fmt.Sprintf("%s, and %s: the changes made during the load are purged before the stream reads them", what, load), fix)
	case secs < need:
		a.add(check.Warning, "binlog_retention", "source", fmt.Sprintf("%s, and %s: keep it at least twice the load, and a day, or a slow load or a pause of cutover start loses the changes it needs", what, load), fix)
	}
}

// isRDS says whether the server is Amazon RDS or Aurora: its base directory is RDS's,
// or it has RDS's configuration table.
func isRDS(ctx context.Context, s *server) (bool, error) {
	if strings.HasPrefix(s.settings["basedir"], "/rdsdbbin/") {
		return true, nil
	}
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'rds_configuration'").Scan(&n)
	return n > 0, err
}

// size is a number of bytes for people: 12.3 MiB.
func size(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", (b+1023)/1024)
}

// duration is a number of seconds for people: 2h05m, 40s.
func duration(secs int64) string { return (time.Duration(secs) * time.Second).String() }

// tables reports the plan's tables change capture cannot follow: without a key to
// find their rows by, or in an engine without transactions.
func (a *assessment) tables(ctx context.Context) error {
	rows, err := a.src.db.QueryContext(ctx, `SELECT table_schema, table_name, coalesce(engine, ''), coalesce(data_length, 0) + coalesce(index_length, 0)
		FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY table_name`)
	if err != nil {
		return err
	}
	type table struct {
		schema, name, engine string
		bytes                int64
	}
	var tables []table
	var names []string
	for rows.Next() {
		var t table
		if err := rows.Scan(&t.schema, &t.name, &t.engine, &t.bytes); err != nil {
			rows.Close()
			return err
		}
		if a.plan.Tables.Includes(t.schema, t.name) {
			tables = append(tables, t)
			names = append(names, t.name)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(tables) == 0 {
		return nil
	}
	shapes, err := describeTables(ctx, a.src.db, tables[0].schema, names)
	if err != nil {
		return err
	}
	for _, t := range tables {
		a.migrated = append(a.migrated, migratedTable{t.name, t.bytes})
		object := "table " + t.name
		if !strings.EqualFold(t.engine, "InnoDB") {
			a.add(check.Error, "storage_engine", object, fmt.Sprintf("the table is %s, which has no transactions: no snapshot of it is consistent with the binary log position", t.engine),
				fmt.Sprintf("ALTER TABLE %s ENGINE = InnoDB", quote(t.name)))
		}
		var index string
		if s := shapes[t.name]; s != nil {
			index = s.index
			if s.primary {
				index = "PRIMARY"
			}
		}
		switch index {
		case "PRIMARY":
		case "":
			a.add(check.Error, "primary_key", object, "the table has no primary key and no unique index of NOT NULL columns: a change to one of two equal rows cannot be applied to the right one",
				fmt.Sprintf("ALTER TABLE %s ADD PRIMARY KEY (<columns>), or ADD COLUMN id bigint AUTO_INCREMENT PRIMARY KEY", quote(t.name)))
		default:
			a.add(check.Info, "primary_key", object, fmt.Sprintf("the table has no primary key: its rows are found by the unique index %s, whose columns are all NOT NULL", index), "")
		}
	}
	return nil
}

// quote quotes an identifier with backquotes.
func quote(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

// skipTargetBinlog checks full_load.target_binlog: false, a load that leaves the rows
// out of the target's binary log: the migration's account may do it, and no replica
// reads that log (the rows would not reach it).
func (a *assessment) skipTargetBinlog(ctx context.Context) {
	t := a.tgt
	if t.settings["log_bin"] != "ON" {
		a.add(check.Info, "target_binlog", "target", "full_load.target_binlog is false, and the target writes no binary log (log_bin = OFF): there is nothing to leave out", "")
		return
	}
	if err := tryWithoutBinlog(ctx, t.db); err != nil {
		grant := "SUPER"
		switch {
		case t.mariadb && (t.major > 10 || t.major == 10 && t.minor >= 5):
			grant = "BINLOG ADMIN"
		case !t.mariadb && t.major >= 8:
			grant = "SYSTEM_VARIABLES_ADMIN"
		}
		a.add(check.Error, "target_binlog", "target", fmt.Sprintf("full_load.target_binlog is false, and the migration's account cannot leave its sessions out of the binary log (SET SESSION sql_log_bin = 0: %v)", err),
			fmt.Sprintf("GRANT %s ON *.* TO the migration's account on the target, or leave full_load.target_binlog out of the plan (it writes the binary log)", grant))
		return
	}
	replicas, err := binlogReaders(ctx, t)
	switch {
	case err != nil:
		a.add(check.Warning, "target_binlog", "target", fmt.Sprintf("full_load.target_binlog is false, and whether a replica reads the target's binary log cannot be told (%v): a replica would not get the rows loaded", err),
			"make sure no replica reads the target's binary log before the load ends (or grant PROCESS to the migration's account, so that cutover check sees them), or leave full_load.target_binlog out of the plan")
	case len(replicas) > 0:
		a.add(check.Error, "target_binlog", "target", fmt.Sprintf("full_load.target_binlog is false, and replicas read the target's binary log (%s): they would not get the rows loaded", strings.Join(replicas, "; ")),
			"leave full_load.target_binlog out of the plan (the load writes the binary log, and the replicas get the rows), or attach the replicas after the load from a backup taken after it")
	default:
		a.add(check.Info, "target_binlog", "target", "full_load.target_binlog is false: the rows are loaded without the target's binary log (no replica reads it now); a replica attached later must start from a backup taken after the load", "")
	}
}

// tryWithoutBinlog says whether a session of db may turn its binary log off.
func tryWithoutBinlog(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer discard(conn) // never back in the pool with the log off
	_, err = conn.ExecContext(ctx, "SET SESSION sql_log_bin = 0")
	return err
}

// binlogReaders lists the sessions that read the server's binary log (replicas, and
// tools that read it as one): the process list's binary log dumps.
func binlogReaders(ctx context.Context, s *server) ([]string, error) {
	rows, err := queryRows(ctx, s.db, "SELECT ID, USER, HOST, COMMAND FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range rows {
		out = append(out, fmt.Sprintf("session %s of %s from %s", r[0], r[1], r[2]))
	}
	if len(out) == 0 {
		// without PROCESS the list holds the account's own sessions alone
		p, err := readPrivileges(ctx, s)
		if err != nil {
			return nil, err
		}
		if !p.has("", "PROCESS", "SUPER") {
			return nil, errors.New("the migration's account lacks PROCESS, and sees its own sessions alone")
		}
	}
	return out, nil
}

// sourceStream assesses the source's tables and the binary log change capture reads.
func (a *assessment) sourceStream(ctx context.Context) {
	a.report.Source.Engine, a.report.Source.Version = a.src.kind(), a.src.number()
	tablesErr := a.tables(ctx)
	if tablesErr != nil {
		a.fail("source", "tables", tablesErr)
	}
	if a.binlog(a.src) && tablesErr == nil {
		a.retention(ctx, a.src)
	}
}
