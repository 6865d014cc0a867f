package postgres

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/internal/humanize"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/redact"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

// assessOptions are the assessment's options, with those only the package sets.
type assessOptions struct {
	engine.AssessOptions
	// relations, when set, lists the source's relations in place of a query of the
	// assessment's own: the full load has them listed already (readSource).
	relations func(context.Context) ([]*relation, error)
}

// server is what the assessment learns about one side.
type server struct {
	side      string // "source" or "target"
	conn      *pgx.Conn
	version   string
	versionNo int
	user      string
	database  string
	super     bool
	repl      bool
	canCreate bool // CREATE on the database
	encoding  string
	collate   string
	sysid     string
	settings  map[string]string
}

func (s *server) major() int { return s.versionNo / 10000 }

// assessment runs the checks of one `cutover check`.
type assessment struct {
	plan     *plan.Plan
	opts     assessOptions
	report   *check.Report
	src, tgt *server
	mu       sync.Mutex  // guards report while both sides connect at once
	all      []*relation // every user relation on the source
	tables   []*relation // included source relations (plain tables, partitioned roots, their partitions)

	keywords     map[string]bool     // SQL keywords that need quoting as identifiers
	extColumns   map[string][]string // extension -> columns whose type it provides
	moneyColumns []string
}

// Assess runs the premigration assessment of a PostgreSQL to PostgreSQL plan.
func Assess(ctx context.Context, p *plan.Plan, opts engine.AssessOptions) *check.Report {
	return assessWith(ctx, p, assessOptions{AssessOptions: opts})
}

func assessWith(ctx context.Context, p *plan.Plan, opts assessOptions) *check.Report {
	a := &assessment{plan: p, opts: opts, report: &check.Report{
		Source: check.Endpoint{URL: redact.ConnString(p.Source.URL)},
		Target: check.Endpoint{URL: redact.ConnString(p.Target.URL)},
	}}
	a.connect(ctx)
	defer a.close()

	for _, s := range []*server{a.src, a.tgt} {
		if s != nil && a.keywords == nil {
			a.run(ctx, func(ctx context.Context) error { return a.loadKeywords(ctx, s.conn) })
		}
	}
	// A one-shot copy (cdc.enabled: false) has no slot, no publication, no change
	// stream and no switch: the checks of those are not run.
	stream := p.CDC.Enabled
	if !stream {
		a.add(check.Info, "cdc", "plan", "cdc.enabled is false: a one-shot copy from an exported snapshot, with no replication slot, publication or replica identity needed on the source; "+
			"wal_level, replication slots, WAL senders, the REPLICATION attribute, max_slot_wal_keep_size and reverse replication are not checked", "")
	}
	if !p.FullLoad.TargetBinlog {
		a.add(check.Error, "target_binlog", "plan", "full_load.target_binlog is false, and the target is PostgreSQL, which has no binary log: the key is for MySQL/MariaDB targets",
			"leave full_load.target_binlog out of the plan")
	}
	if a.src != nil {
		a.report.Source.Engine, a.report.Source.Version = "PostgreSQL", shortVersion(a.src.version)
		if stream {
			a.run(ctx, a.sourceVersion, a.walLevel, a.slotsAndSenders, a.replicationPrivilege, a.replicationConnection, a.walKeepSize)
		}
		a.run(ctx, a.longTransactions, a.preparedTransactions, a.largeObjects)
		a.run(ctx, a.loadTables)
		a.run(ctx, a.includedPatterns, a.tablePrivileges)
		if stream {
			a.run(ctx, a.publicationOwnership, a.ddlCapture)
		}
		a.run(ctx, a.replicaIdentity, a.unloggedAndForeign, a.columnTypes, a.sequencePrivileges, a.excludedDependencies, a.notCarried)
		if stream {
			a.run(ctx, a.reversePrivileges)
		}
		a.run(ctx, a.summary)
	}
	if a.tgt != nil {
		a.report.Target.Engine, a.report.Target.Version = "PostgreSQL", shortVersion(a.tgt.version)
		a.run(ctx, a.targetPrivileges)
		if stream {
			a.run(ctx, a.reverseReplication)
		}
		a.run(ctx, a.controlSchema)
	}
	if a.src != nil && a.tgt != nil {
		a.run(ctx, a.sameDatabase, a.versions, a.encodings, a.extensions, a.targetTables, a.roles, a.notCarriedToTarget, a.blockable)
	}
	a.report.Finish()
	return a.report
}

// assessRun is an assessment running in the background.
type assessRun struct {
	cancel context.CancelFunc
	done   chan struct{}
	report *check.Report
}

// assessAsync starts an assessment. It only reads, so FullLoad starts it before it
// knows whether the load begins (and waits for it) or resumes (and stops it).
func assessAsync(ctx context.Context, p *plan.Plan, opts assessOptions) *assessRun {
	ctx, cancel := context.WithCancel(ctx)
	r := &assessRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.report = assessWith(ctx, p, opts)
	}()
	return r
}

// wait returns the assessment's report once it is complete.
func (r *assessRun) wait() *check.Report {
	<-r.done
	return r.report
}

// stop ends the assessment if it still runs; its report is dropped.
func (r *assessRun) stop() {
	r.cancel()
	<-r.done
}

// run runs checks in order; a check that fails to query becomes a finding of its own
// rather than ending the assessment, so one missing privilege does not hide the rest.
func (a *assessment) run(ctx context.Context, checks ...func(context.Context) error) {
	for _, c := range checks {
		if err := c(ctx); err != nil {
			a.add(check.Warning, "assessment", "cutover", "a check could not run: "+redact.ConnString(err.Error()),
				"grant the migration role the privileges check lists, or run cutover check as a role that can read the catalog")
		}
	}
}

// streamOnly are the findings that matter to the change stream only: with cdc.enabled
// false (a one-shot copy) they are information.
var streamOnly = map[string]bool{"replica_identity": true, "unlogged_table": true, "long_transaction": true, "prepared_transaction": true}

func (a *assessment) add(sev check.Severity, name, object, problem, fix string) {
	if !a.plan.CDC.Enabled && streamOnly[name] && sev != check.Info {
		sev, fix = check.Info, ""
		problem = "no matter with cdc.enabled: false (a one-shot copy needs no change stream): " + problem
	}
	a.report.Add(check.Finding{Severity: sev, Check: name, Object: object, Problem: problem, Fix: fix})
}

func (a *assessment) connect(ctx context.Context) {
	var wg sync.WaitGroup
	for _, side := range []struct {
		name string
		ep   plan.Endpoint
		dst  **server
	}{{"source", a.plan.Source, &a.src}, {"target", a.plan.Target, &a.tgt}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := Connect(ctx, side.ep)
			if err != nil {
				problem, fix := ConnectProblem(side.name, side.ep, err)
				a.addLocked(check.Error, "connection", side.name, problem, fix)
				return
			}
			s, err := describe(ctx, side.name, conn)
			if err != nil {
				conn.Close(ctx)
				a.addLocked(check.Error, "connection", side.name, "connected, but cannot read the server's settings: "+err.Error(), "check the role's privileges")
				return
			}
			*side.dst = s
		}()
	}
	wg.Wait()
}

func (a *assessment) addLocked(sev check.Severity, name, object, problem, fix string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.add(sev, name, object, problem, fix)
}

func (a *assessment) close() {
	for _, s := range []*server{a.src, a.tgt} {
		if s != nil {
			s.conn.Close(context.Background())
		}
	}
}

var settingNames = []string{"wal_level", "max_replication_slots", "max_wal_senders", "max_slot_wal_keep_size", "lc_monetary"}

func describe(ctx context.Context, side string, conn *pgx.Conn) (*server, error) {
	s := &server{side: side, conn: conn, settings: map[string]string{}}
	err := conn.QueryRow(ctx, `
		SELECT current_setting('server_version'), current_setting('server_version_num')::int,
		       current_user, current_database(), r.rolsuper, r.rolreplication,
		       has_database_privilege(current_database(), 'CREATE'),
		       pg_encoding_to_char(d.encoding), d.datcollate
		FROM pg_roles r, pg_database d
		WHERE r.rolname = current_user AND d.datname = current_database()`).
		Scan(&s.version, &s.versionNo, &s.user, &s.database, &s.super, &s.repl, &s.canCreate, &s.encoding, &s.collate)
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, `SELECT name, setting FROM pg_settings WHERE name = ANY($1)`, settingNames)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		s.settings[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// pg_control_system() may be closed to the role; the same-database check then does without.
	_ = conn.QueryRow(ctx, `SELECT system_identifier::text FROM pg_control_system()`).Scan(&s.sysid)
	return s, nil
}

func (s *server) setting(name string) int {
	n, _ := strconv.Atoi(s.settings[name])
	return n
}

// ident quotes names for SQL the way quote_ident does: only where needed, so the
// fixes read like SQL a person writes.
func (a *assessment) ident(names ...string) string {
	parts := make([]string, len(names))
	for i, n := range names {
		if plainIdent.MatchString(n) && !a.keywords[n] {
			parts[i] = n
		} else {
			parts[i] = pgx.Identifier{n}.Sanitize()
		}
	}
	return strings.Join(parts, ".")
}

var plainIdent = regexp.MustCompile(`^[a-z_][a-z0-9_$]*$`)

// loadKeywords reads the words quote_ident quotes (every keyword that is not unreserved).
func (a *assessment) loadKeywords(ctx context.Context, conn *pgx.Conn) error {
	rows, err := conn.Query(ctx, `SELECT word FROM pg_get_keywords() WHERE catcode <> 'U'`)
	if err != nil {
		return err
	}
	words, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	a.keywords = map[string]bool{}
	for _, w := range words {
		a.keywords[w] = true
	}
	return nil
}

// minStreamMajor is the oldest PostgreSQL whose change stream cutover reads: pgoutput
// sends logical messages (the heartbeat, the switch's markers) from 14 on.
const minStreamMajor = 14

func (a *assessment) sourceVersion(ctx context.Context) error {
	if a.src.major() < minStreamMajor {
		a.add(check.Error, "version", "source", fmt.Sprintf("PostgreSQL %s: cutover reads the change stream with pgoutput's logical messages, which need PostgreSQL %d or later", a.src.version, minStreamMajor),
			fmt.Sprintf("upgrade the source to PostgreSQL %d or later first (pg_upgrade), or migrate with pg_dump/pg_restore", minStreamMajor))
	}
	if a.tgt != nil && a.tgt.major() < minStreamMajor {
		a.add(check.Warning, "version", "target", fmt.Sprintf("PostgreSQL %s: the switch's reverse replication (target to source) needs PostgreSQL %d or later on the target; cutover switch will refuse", a.tgt.version, minStreamMajor),
			fmt.Sprintf("use a target of PostgreSQL %d or later", minStreamMajor))
	}
	return nil
}

func (a *assessment) versions(ctx context.Context) error {
	src, tgt := a.src.major(), a.tgt.major()
	switch {
	case tgt < src:
		a.add(check.Warning, "version", "target", fmt.Sprintf("the target (PostgreSQL %s) is older than the source (%s): a downgrade; objects that use newer features will not load", a.tgt.version, a.src.version),
			"use a target of the same or a newer major version")
	default:
		a.add(check.Info, "version", "servers", fmt.Sprintf("source PostgreSQL %s, target PostgreSQL %s", shortVersion(a.src.version), shortVersion(a.tgt.version)), "")
	}
	return nil
}

func (a *assessment) walLevel(ctx context.Context) error {
	if lvl := a.src.settings["wal_level"]; lvl != "logical" {
		a.add(check.Error, "wal_level", "source", fmt.Sprintf("wal_level is %s: change data capture needs logical", lvl),
			"ALTER SYSTEM SET wal_level = logical; then restart the source server\n"+
				"(Amazon RDS/Aurora: rds.logical_replication = 1 in the parameter group, then reboot; Cloud SQL: cloudsql.logical_decoding = on)")
	}
	return nil
}

func (a *assessment) reverseReplication(ctx context.Context) error {
	if lvl := a.tgt.settings["wal_level"]; lvl != "logical" {
		a.add(check.Warning, "wal_level", "target", fmt.Sprintf("wal_level is %s: reverse replication (the rollback that keeps writes made after the switch) needs logical on the target", lvl),
			"ALTER SYSTEM SET wal_level = logical; then restart the target server, before the switch")
	}
	return a.freeSlots(ctx, a.tgt, check.Warning, "reverse replication at the switch")
}

// reversePrivileges: the switch refuses to begin when the source's role could not
// apply reverse replication there. Say so now, with the grants.
func (a *assessment) reversePrivileges(ctx context.Context) error {
	for _, problem := range applyPrivileges(ctx, a.src.conn, "source", a.tables) {
		a.add(check.Warning, "reverse_privilege", "role "+a.src.user, problem+" (the switch's gates refuse until then)", "")
	}
	return nil
}

// blockable: the switch's gates refuse when the source's users could not be blocked
// as cutover.block says. Say so now, with what to do.
func (a *assessment) blockable(ctx context.Context) error {
	found, err := blockFindings(ctx, side{name: "source", conn: a.src.conn}, a.tgt.conn, a.plan.Cutover)
	if err != nil {
		return err
	}
	for _, f := range found {
		a.add(check.Warning, "block", f.object, f.problem+" (the switch's gates refuse until then)", f.fix)
	}
	// The load closes the target to the applications, and a rollback blocks its users,
	// the same way.
	if found, err = blockFindings(ctx, side{name: "target", conn: a.tgt.conn}, nil, a.plan.Cutover); err != nil {
		return err
	}
	for _, f := range found {
		a.add(check.Warning, "block", f.object, f.problem+" (the target cannot be closed to the applications during replication, and a rollback's gates refuse until then)", f.fix)
	}
	if a.plan.CDC.Enabled {
		how := "the roles that may write to the migrated tables there lose their login (recorded; the switch's unlock gives it back)"
		if a.plan.Cutover.Block == plan.BlockReadOnly {
			how = "its database is read-only for new sessions and the other roles' sessions end"
		}
		a.add(check.Info, "sides", "the source is live",
			"the source takes the applications' writes until the switch; from the load on the target is closed to them: "+how, "")
	}
	return nil
}

// slotsAndSenders checks the source has a free replication slot and WAL sender for the change stream.
func (a *assessment) slotsAndSenders(ctx context.Context) error {
	if err := a.freeSlots(ctx, a.src, check.Error, "the change stream"); err != nil {
		return err
	}
	var senders int
	if err := a.src.conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_replication`).Scan(&senders); err != nil {
		return err
	}
	if max := a.src.setting("max_wal_senders"); max-senders < 1 {
		a.add(check.Error, "wal_senders", "source", fmt.Sprintf("all %d WAL senders are in use (max_wal_senders = %d); the change stream needs one", senders, max),
			fmt.Sprintf("ALTER SYSTEM SET max_wal_senders = %d; then restart the source server", max+2))
	}
	// Inactive slots retain WAL for a consumer that is not there.
	rows, err := a.src.conn.Query(ctx, `
		SELECT slot_name, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint
		FROM pg_replication_slots WHERE NOT active AND (database = current_database() OR database IS NULL)
		ORDER BY slot_name`)
	if err != nil {
		return err
	}
	type slot struct {
		name     string
		retained int64
	}
	var idle []slot
	for rows.Next() {
		var s slot
		if err := rows.Scan(&s.name, &s.retained); err != nil {
			return err
		}
		idle = append(idle, s)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, s := range idle {
		a.add(check.Warning, "replication_slots", "slot "+s.name, fmt.Sprintf("replication slot %s is inactive and retains %s of WAL on the source", s.name, humanize.Bytes(s.retained)),
			fmt.Sprintf("if nothing will consume it again: SELECT pg_drop_replication_slot('%s');", s.name))
	}
	return nil
}

func (a *assessment) freeSlots(ctx context.Context, s *server, sev check.Severity, purpose string) error {
	var used int
	if err := s.conn.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots`).Scan(&used); err != nil {
		return err
	}
	if max := s.setting("max_replication_slots"); max-used < 1 {
		a.add(sev, "replication_slots", s.side, fmt.Sprintf("no free replication slot (%d of max_replication_slots = %d in use); %s needs one", used, max, purpose),
			fmt.Sprintf("ALTER SYSTEM SET max_replication_slots = %d; then restart the %s server (or drop a slot that is no longer used)", max+2, s.side))
	}
	return nil
}

func (a *assessment) replicationPrivilege(ctx context.Context) error {
	if a.src.super || a.src.repl {
		return nil
	}
	var rds bool
	if err := a.src.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_replication') AND pg_has_role('rds_replication', 'MEMBER')`).Scan(&rds); err != nil {
		return err
	}
	if rds {
		return nil
	}
	a.add(check.Error, "replication_privilege", "role "+a.src.user,
		fmt.Sprintf("role %s has no REPLICATION attribute: it cannot create the replication slot or stream changes", a.src.user),
		fmt.Sprintf("ALTER ROLE %s REPLICATION;  (Amazon RDS: GRANT rds_replication TO %s;)", a.ident(a.src.user), a.ident(a.src.user)))
	return nil
}

// replicationConnection opens the kind of connection the change stream uses and runs
// IDENTIFY_SYSTEM: it proves privilege, pg_hba.conf and WAL sender availability at once.
func (a *assessment) replicationConnection(ctx context.Context) error {
	conn, err := ConnectReplication(ctx, a.plan.Source)
	if err == nil {
		defer conn.Close(ctx)
		_, err = pglogrepl.IdentifySystem(ctx, conn)
		if err == nil {
			return nil
		}
	}
	if a.report.Has("replication_privilege", "role "+a.src.user) || a.report.Has("wal_senders", "source") {
		return nil // already explained
	}
	problem, fix := ConnectProblem("source", a.plan.Source, err)
	a.add(check.Error, "replication_connection", "source", "replication connection (replication=database) failed: "+problem, fix)
	return nil
}

func (a *assessment) walKeepSize(ctx context.Context) error {
	v := a.src.settings["max_slot_wal_keep_size"]
	if v == "-1" {
		a.add(check.Warning, "max_slot_wal_keep_size", "source",
			"max_slot_wal_keep_size is -1 (unlimited): if the migration stops and is not resumed or finished, its slot keeps WAL until the source's disk is full",
			"cap it below the free space of the WAL disk: ALTER SYSTEM SET max_slot_wal_keep_size = '100GB'; SELECT pg_reload_conf();\n"+
				"(cutover status shows the WAL the slot retains; cutover finish drops the slot)")
		return nil
	}
	mb, _ := strconv.ParseInt(v, 10, 64)
	sev := check.Info
	if mb < 1024 {
		sev = check.Warning
	}
	a.add(sev, "max_slot_wal_keep_size", "source",
		fmt.Sprintf("max_slot_wal_keep_size is %s: a slot that falls further behind is invalidated and the migration must start over", humanize.Bytes(mb<<20)),
		"make sure it covers the WAL written during the full load and the longest pause you expect: ALTER SYSTEM SET max_slot_wal_keep_size = '...'; SELECT pg_reload_conf();")
	return nil
}

func (a *assessment) longTransactions(ctx context.Context) error {
	rows, err := a.src.conn.Query(ctx, `
		SELECT pid, coalesce(usename, ''), coalesce(datname, ''), coalesce(state, ''),
		       extract(epoch FROM now() - xact_start)::float8, backend_xid IS NOT NULL,
		       left(regexp_replace(coalesce(query, ''), '\s+', ' ', 'g'), 100)
		FROM pg_stat_activity
		WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND backend_type = 'client backend'
		  AND now() - xact_start > make_interval(secs => $1)
		ORDER BY xact_start`, a.opts.LongTransaction.Seconds())
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		var user, db, state, query string
		var age float64
		var hasXid bool
		if err := rows.Scan(&pid, &user, &db, &state, &age, &hasXid, &query); err != nil {
			return err
		}
		what := fmt.Sprintf("transaction open for %s (pid %d, role %s, database %s, %s; last statement: %s)",
			time.Duration(age*float64(time.Second)).Round(time.Second), pid, user, db, state, query)
		if hasXid {
			a.add(check.Warning, "long_transaction", fmt.Sprintf("pid %d", pid),
				what+": creating the replication slot waits until every transaction that has written ends, so cutover start would wait for this one",
				fmt.Sprintf("let it finish, or end it: SELECT pg_terminate_backend(%d);", pid))
		} else {
			a.add(check.Info, "long_transaction", fmt.Sprintf("pid %d", pid),
				what+": it has not written, so it does not delay the snapshot (if it writes before cutover start, it will)", "")
		}
	}
	return rows.Err()
}

func (a *assessment) preparedTransactions(ctx context.Context) error {
	rows, err := a.src.conn.Query(ctx, `SELECT gid, owner, database, prepared::text FROM pg_prepared_xacts ORDER BY prepared`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var gid, owner, db, at string
		if err := rows.Scan(&gid, &owner, &db, &at); err != nil {
			return err
		}
		lit := "'" + strings.ReplaceAll(gid, "'", "''") + "'"
		a.add(check.Error, "prepared_transaction", "prepared transaction "+lit,
			fmt.Sprintf("prepared transaction %s (role %s, database %s, since %s) blocks the creation of the replication slot until it is committed or rolled back", lit, owner, db, at),
			fmt.Sprintf("in database %s: COMMIT PREPARED %s; or ROLLBACK PREPARED %s;", db, lit, lit))
	}
	return rows.Err()
}

func (a *assessment) largeObjects(ctx context.Context) error {
	var n int64
	if err := a.src.conn.QueryRow(ctx, `SELECT count(*) FROM pg_largeobject_metadata`).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		a.add(check.Warning, "large_objects", "database "+a.src.database,
			fmt.Sprintf("%d large objects: the full load creates them on the target empty (their OIDs, owners and comments), and logical decoding does not carry their contents, so their data would not reach the target", n),
			"copy their contents into them once they no longer change, before the switch:\n"+
				"pg_dump -Fc --data-only --blobs --exclude-table-data='*' -f lo.dump \"$SOURCE_URL\"; pg_restore -l lo.dump | grep ' BLOBS ' > lo.list; pg_restore -L lo.list -d \"$TARGET_URL\" lo.dump\n"+
				"or move the data into bytea columns before migrating")
	}
	return nil
}

func (a *assessment) targetPrivileges(ctx context.Context) error {
	t := a.tgt
	if t.super {
		return nil
	}
	if !t.canCreate {
		a.add(check.Error, "target_privilege", "role "+t.user,
			fmt.Sprintf("role %s cannot create schemas in database %s on the target", t.user, t.database),
			fmt.Sprintf("GRANT CREATE ON DATABASE %s TO %s;", a.ident(t.database), a.ident(t.user)))
	}
	// The applier sets session_replication_role = replica so target triggers and
	// foreign keys do not fire for replicated rows; that needs superuser before 15.
	can := false
	if t.major() >= 15 {
		if err := t.conn.QueryRow(ctx, `SELECT has_parameter_privilege('session_replication_role', 'SET')`).Scan(&can); err != nil {
			return err
		}
	}
	if !can {
		fix := fmt.Sprintf("GRANT SET ON PARAMETER session_replication_role TO %s;", a.ident(t.user))
		if t.major() < 15 {
			fix = fmt.Sprintf("ALTER ROLE %s SUPERUSER; (before PostgreSQL 15 only a superuser may set it; Amazon RDS: GRANT rds_superuser TO %s;)", a.ident(t.user), a.ident(t.user))
		}
		a.add(check.Error, "target_privilege", "role "+t.user,
			fmt.Sprintf("role %s cannot SET session_replication_role, which the applier needs so that target triggers and foreign keys do not fire for replicated rows", t.user), fix)
	}
	return nil
}

func (a *assessment) controlSchema(ctx context.Context) error {
	var exists bool
	if err := a.tgt.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, a.plan.ControlSchema).Scan(&exists); err != nil {
		return err
	}
	if exists {
		a.add(check.Info, "control_schema", "schema "+a.plan.ControlSchema,
			fmt.Sprintf("the control schema %s exists on the target: a migration was started into this database before; cutover start resumes it", a.plan.ControlSchema), "")
	}
	return nil
}

func (a *assessment) sameDatabase(ctx context.Context) error {
	if a.src.sysid != "" && a.src.sysid == a.tgt.sysid && a.src.database == a.tgt.database {
		a.add(check.Error, "same_database", "target",
			fmt.Sprintf("source and target are the same database (%s on server %s)", a.src.database, a.src.sysid),
			"point target.url at the new database")
	}
	return nil
}

func (a *assessment) encodings(ctx context.Context) error {
	s, t := a.src, a.tgt
	switch {
	case s.encoding == t.encoding:
	case s.encoding == "SQL_ASCII":
		a.add(check.Warning, "encoding", "database "+t.database,
			fmt.Sprintf("the source database is SQL_ASCII (bytes unchecked) and the target %s: rows holding bytes that are not valid %s will fail to load", t.encoding, t.encoding),
			"find invalid rows first, or create the target database WITH ENCODING 'SQL_ASCII' (not recommended)")
	case t.encoding == "UTF8":
		a.add(check.Info, "encoding", "database "+t.database, fmt.Sprintf("source encoding %s, target UTF8: every character converts", s.encoding), "")
	default:
		a.add(check.Error, "encoding", "database "+t.database,
			fmt.Sprintf("source encoding %s, target %s: characters the target's encoding lacks fail to load", s.encoding, t.encoding),
			fmt.Sprintf("create the target database with the source's encoding: CREATE DATABASE %s WITH ENCODING '%s' TEMPLATE template0;", a.ident(t.database), s.encoding))
	}
	if s.collate != t.collate {
		a.add(check.Warning, "collation", "database "+t.database,
			fmt.Sprintf("default collation differs (source %s, target %s): text sorts differently, so ORDER BY results and the order of text indexes change", s.collate, t.collate),
			fmt.Sprintf("create the target database with LC_COLLATE '%s' LC_CTYPE '%s' TEMPLATE template0, unless the change is intended", s.collate, s.collate))
	}
	return nil
}

// shortVersion drops a packager's suffix: "15.18 (Debian 15.18-0+deb12u1)" -> "15.18".
func shortVersion(v string) string {
	if i := strings.IndexByte(v, ' '); i > 0 {
		return v[:i]
	}
	return v
}
