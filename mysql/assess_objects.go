package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	driver "github.com/go-sql-driver/mysql"

	"github.com/cutover-dev/cutover/check"
)

// The assessment of what the load carries of the source's database besides its
// tables' rows, and of how the two servers differ. What the load does is schema.go's:
// the tables (each CREATE TABLE names its character set and collation), then the
// secondary indexes, the foreign keys (the rows checked against each first) and the
// views, with the migration role as their definer, then the routines and the events,
// the events disabled (objects.go). Triggers are not created: cutover switch moves
// them, and the events, when the applications move (the operator, after a one-shot copy).

// query runs a query on a side and returns its rows as strings (NULL as "").
func query(ctx context.Context, s *server, q string, args ...any) ([][]string, error) {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return queryRows(ctx, c, q, args...)
}

// unread is the finding for a check that could not read what it checks.
func (a *assessment) unread(name, side, what string, err error) {
	a.add(check.Warning, name, side, fmt.Sprintf("could not read the %s's %s: %v", side, what, err), "")
}

// sourceObjects reports the triggers, routines and events of the source's database:
// what the load does with each.
func (a *assessment) sourceObjects(ctx context.Context) {
	a.sourceTriggers(ctx)
	a.sourceRoutines(ctx)
	a.sourceEvents(ctx)
}

// afterLastChange is when a trigger or an event is created on the target: after the
// last change from the source, before the applications write there.
func (a *assessment) afterLastChange() string {
	if a.plan.CDC.Enabled {
		return "at the switch, once the last change is applied and before the applications write to the target"
	}
	return "after the copy, before the applications write to the target"
}

// sourceTriggers reports the triggers on the migrated tables (information_schema
// lists those on tables the role holds TRIGGER on).
func (a *assessment) sourceTriggers(ctx context.Context) {
	rows, err := query(ctx, a.src, `SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION FROM information_schema.TRIGGERS
		WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY EVENT_OBJECT_TABLE, TRIGGER_NAME`)
	if err != nil {
		a.unread("trigger", "source", "triggers", err)
		return
	}
	for _, r := range rows {
		if !a.isMigrated(r[1]) {
			continue
		}
		if a.plan.CDC.Enabled {
			a.add(check.Info, "trigger", "trigger "+r[0], fmt.Sprintf("the trigger (%s %s on table %s) is not created by the load, where it would fire on the rows cutover writes: "+
				"cutover switch creates it on the target once the last change is applied, before the applications may write there, and drops it on the source (cutover rollback moves it back)",
				r[2], r[3], r[1]), "")
			continue
		}
		a.add(check.Warning, "trigger", "trigger "+r[0], fmt.Sprintf("the trigger (%s %s on table %s) is not created by the load: without it, the applications' writes on the target do not run it",
			r[2], r[3], r[1]),
			fmt.Sprintf("%s, run there the statement SHOW CREATE TRIGGER %s gives on the source (created earlier, it fires on the rows cutover writes, and what the source's trigger wrote is written twice)",
				a.afterLastChange(), quote(r[0])))
	}
}

// sourceRoutines reports the stored procedures and functions (and MariaDB's packages).
func (a *assessment) sourceRoutines(ctx context.Context) {
	rows, err := query(ctx, a.src, `SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES
		WHERE ROUTINE_SCHEMA = DATABASE() ORDER BY ROUTINE_TYPE, ROUTINE_NAME`)
	if err != nil {
		a.unread("routine", "source", "routines", err)
		return
	}
	for _, r := range rows {
		kind := strings.ToLower(r[1])
		a.add(check.Info, "routine", kind+" "+r[0], fmt.Sprintf("the %s is created on the target after the load, in the sql_mode it was created in, with the migration role as its DEFINER", kind), "")
	}
}

// sourceEvents reports the events: on both servers, an enabled event runs on both.
func (a *assessment) sourceEvents(ctx context.Context) {
	rows, err := query(ctx, a.src, `SELECT EVENT_NAME, STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() ORDER BY EVENT_NAME`)
	if err != nil {
		a.unread("event", "source", "events", err)
		return
	}
	for _, r := range rows {
		name, status := r[0], r[1]
		if status != "ENABLED" {
			a.add(check.Info, "event", "event "+name, fmt.Sprintf("the event (%s on the source) is created DISABLED on the target after the load", status), "")
			continue
		}
		scheduler := ""
		if a.tgt != nil && a.tgt.settings["event_scheduler"] != "ON" {
			scheduler = fmt.Sprintf("SET GLOBAL event_scheduler = ON on the target (it is %s)", a.tgt.settings["event_scheduler"])
		}
		if a.plan.CDC.Enabled {
			// The switch disables it on the source and enables it on the target.
			sev, problem := check.Info, "the event (ENABLED on the source) is created DISABLED on the target after the load: cutover switch disables it on the source and enables it on the target (cutover rollback the other way round)"
			if scheduler != "" {
				sev, problem = check.Warning, problem+"; the target's event scheduler is off, so it would not run there"
			}
			a.add(sev, "event", "event "+name, problem, scheduler)
			continue
		}
		fix := fmt.Sprintf("%s: ALTER EVENT %s DISABLE on the source, and ALTER EVENT %[2]s ENABLE on the target", a.afterLastChange(), quote(name))
		if scheduler != "" {
			fix += ", and " + scheduler
		}
		a.add(check.Warning, "event", "event "+name, "the event (ENABLED on the source) is created DISABLED on the target after the load: enabled on both servers, it would run on both, and before the switch its writes on the target would mix with the replicated rows", fix)
	}
}

// bothSides runs the checks that read both servers.
func (a *assessment) bothSides(ctx context.Context) {
	a.targetTriggers(ctx)
	a.views(ctx)
	a.foreignKeys(ctx)
	a.collations(ctx)
	a.defaults(ctx)
	a.zeroDates(ctx)
	a.streamID(ctx)
}

// targetTriggers reports triggers on the target on the migrated tables: they fire on
// the rows the load and the stream write.
func (a *assessment) targetTriggers(ctx context.Context) {
	rows, err := query(ctx, a.tgt, `SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY TRIGGER_NAME`, a.tgtDB)
	if err != nil {
		a.unread("target_trigger", "target", "triggers", err)
		return
	}
	for _, r := range rows {
		if !a.isMigrated(r[1]) {
			continue
		}
		q := tableName{a.tgtDB, r[0]}.quoted()
		a.add(check.Error, "target_trigger", "trigger "+r[0], fmt.Sprintf("the target has the trigger %s on the migrated table %s: it fires on every row the load and the stream write, which already hold what the source's triggers did", q, quote(r[1])),
			fmt.Sprintf("DROP TRIGGER %s on the target (SHOW CREATE TRIGGER %[1]s there first), and create it again %s", q, a.afterLastChange()))
	}
}

// splitDefiner is a DEFINER as information_schema writes it (user@host, or a role's name)
// quoted as SQL writes it.
func splitDefiner(d string) (user, host, quoted string) {
	i := strings.LastIndexByte(d, '@')
	if i < 0 {
		return d, "", quote(d)
	}
	user, host = d[:i], d[i+1:]
	return user, host, quote(user) + "@" + quote(host)
}

// views reports the views of the source's database: created after the load, each
// with the target's migration role as its definer (schema.go drops the DEFINER
// clause: the source's may not exist on the target, and naming another needs SET
// USER) and SQL SECURITY as on the source. A view of SQL SECURITY DEFINER then runs
// with the migration role's privileges, and fails once that role is dropped.
func (a *assessment) views(ctx context.Context) {
	rows, err := query(ctx, a.src, `SELECT TABLE_NAME, DEFINER, SECURITY_TYPE FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME`)
	if err != nil {
		a.unread("view", "source", "views", err)
		return
	}
	if len(rows) == 0 {
		return
	}
	users := map[string]bool{} // user@host on the target
	known := true
	if list, err := query(ctx, a.tgt, "SELECT User, Host FROM mysql.user"); err != nil {
		known = false
	} else {
		for _, u := range list {
			users[u[0]+"@"+u[1]] = true
		}
	}
	var role string // the target's migration role, which defines the views there
	if err := a.tgt.db.QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&role); err != nil {
		a.unread("view", "target", "role", err)
		return
	}
	for _, r := range rows {
		name, def, security := r[0], r[1], r[2]
		_, _, who := splitDefiner(def)
		if def == role {
			a.add(check.Info, "view", "view "+name, fmt.Sprintf("created after the load, with its definer %s (the target's migration role) and SQL SECURITY %s, as on the source", who, security), "")
			continue
		}
		if security != "DEFINER" {
			a.add(check.Info, "view", "view "+name, fmt.Sprintf("created after the load, with the target's migration role as its definer (%s on the source); SQL SECURITY %s: it runs with its caller's privileges, as on the source", who, security), "")
			continue
		}
		problem := fmt.Sprintf("created after the load with the target's migration role as its definer, not %s: with SQL SECURITY DEFINER it runs with the migration role's privileges, and fails once that role is dropped", who)
		fix := fmt.Sprintf("after the load, on the target: ALTER DEFINER = %s VIEW %s AS <its SELECT, as SHOW CREATE VIEW %[2]s prints it>", who, tableName{a.tgtDB, name}.quoted())
		switch {
		case !known:
			problem += fmt.Sprintf(" (whether %s exists on the target is not known: the target's role may not read mysql.user)", who)
		case !users[def]:
			problem += fmt.Sprintf("; %s does not exist on the target", who)
			fix = fmt.Sprintf("CREATE USER %s on the target with its privileges (SHOW CREATE USER %[1]s and SHOW GRANTS FOR %[1]s on the source give them), then %s", who, fix)
		}
		a.add(check.Warning, "view", "view "+name, problem, fix)
	}
}

// foreignKeys reports the foreign keys of the migrated tables: each is added after
// the load, once the rows are checked against it, which needs the table it
// references on the target.
func (a *assessment) foreignKeys(ctx context.Context) {
	rows, err := query(ctx, a.src, `SELECT CONSTRAINT_NAME, TABLE_NAME, UNIQUE_CONSTRAINT_SCHEMA, REFERENCED_TABLE_NAME
		FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() ORDER BY TABLE_NAME, CONSTRAINT_NAME`)
	if err != nil {
		a.unread("foreign_key", "source", "foreign keys", err)
		return
	}
	carried := 0
	for _, r := range rows {
		name, table, refSchema, refTable := r[0], r[1], r[2], r[3]
		if !a.isMigrated(table) {
			continue
		}
		if refSchema == a.srcDB && a.isMigrated(refTable) {
			carried++
			continue
		}
		// on the target, the key references the table of the target's database, or
		// the other database's as written
		onTarget, ref := a.tgtDB, quote(refTable)
		what := ref + ", which the plan leaves out"
		if refSchema != a.srcDB {
			onTarget, ref = refSchema, tableName{refSchema, refTable}.quoted()
			what = ref + ", a table of another database (the load keeps the reference as written)"
		}
		var n int
		if err := a.tgt.db.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", onTarget, refTable).Scan(&n); err != nil {
			a.unread("foreign_key", "target", "tables", err)
			return
		}
		drop := fmt.Sprintf("ALTER TABLE %s DROP FOREIGN KEY %s", quote(table), quote(name))
		object := "foreign key " + name
		if n > 0 {
			a.add(check.Warning, "foreign_key", object, fmt.Sprintf("the foreign key of table %s references %s; the target has %s, which the rows are checked against after the load and which the key then references",
				table, what, tableName{onTarget, refTable}.quoted()), fmt.Sprintf("keep that table's rows on the target in step with the source's, or on the source: %s", drop))
			continue
		}
		fix := fmt.Sprintf("include %s in the plan's tables, or on the source: %s", refTable, drop)
		if refSchema != a.srcDB {
			fix = fmt.Sprintf("create %s on the target with its rows before the load ends, or on the source: %s", ref, drop)
		}
		a.add(check.Error, "foreign_key", object, fmt.Sprintf("the foreign key of table %s references %s, and the target does not have it: the load cannot add the key, and fails at its end", table, what), fix)
	}
	if carried > 0 {
		a.add(check.Info, "foreign_key", "foreign keys", fmt.Sprintf("the migrated tables' foreign keys (%d) are added after the load, each once the rows are checked against it (a row without its parent is an error that names it)", carried), "")
	}
}

// charsetOf is the character set of a collation: the name up to its first '_'
// (utf8mb4_general_ci, latin1_bin; no character set's name has one), or binary.
func charsetOf(collation string) string {
	cs, _, _ := strings.Cut(collation, "_")
	return cs
}

// hasCollation says whether the target knows a collation (under its name or as an
// alias: MariaDB takes utf8_general_ci for utf8mb3_general_ci), by using it: closer
// than information_schema.COLLATIONS, whose names differ between servers and
// versions (MariaDB 10.10's utf8mb4_uca1400_ai_ci is listed as uca1400_ai_ci).
func hasCollation(ctx context.Context, s *server, collation string) (bool, error) {
	_, err := s.db.ExecContext(ctx, fmt.Sprintf("DO CONVERT('' USING %s) COLLATE %s", quote(charsetOf(collation)), quote(collation)))
	var me *driver.MySQLError
	if errors.As(err, &me) && (me.Number == 1273 || me.Number == 1115 || me.Number == 1253) { // unknown collation, unknown character set, not of the set
		return false, nil
	}
	return err == nil, err
}

// collations reports the migrated tables whose collation (the table's default or a
// column's) the target does not have: the table's CREATE TABLE, which names them,
// fails there.
func (a *assessment) collations(ctx context.Context) {
	rows, err := query(ctx, a.src, `
		SELECT TABLE_NAME, '', TABLE_COLLATION FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' AND TABLE_COLLATION IS NOT NULL
		UNION ALL
		SELECT TABLE_NAME, COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = DATABASE() AND COLLATION_NAME IS NOT NULL`)
	if err != nil {
		a.unread("collation", "source", "collations", err)
		return
	}
	have := map[string]bool{}
	uses := map[string]map[string][]string{} // table -> missing collation -> its columns ("" the table's default)
	var tables []string
	for _, r := range rows {
		table, column, collation := r[0], r[1], r[2]
		if !a.isMigrated(table) {
			continue
		}
		ok, seen := have[collation]
		if !seen {
			if ok, err = hasCollation(ctx, a.tgt, collation); err != nil {
				a.unread("collation", "target", "collation "+collation, err)
				return
			}
			have[collation] = ok
		}
		if ok {
			continue
		}
		if uses[table] == nil {
			uses[table] = map[string][]string{}
			tables = append(tables, table)
		}
		uses[table][collation] = append(uses[table][collation], column)
	}
	slices.Sort(tables)
	for _, table := range tables {
		var said, fixes []string
		collations := make([]string, 0, len(uses[table]))
		for c := range uses[table] {
			collations = append(collations, c)
		}
		slices.Sort(collations)
		for _, c := range collations {
			var where []string
			for _, col := range uses[table][c] {
				if col == "" {
					where = append(where, "the table's default")
				} else {
					where = append(where, "column "+col)
				}
			}
			said = append(said, fmt.Sprintf("%s (%s)", c, strings.Join(where, ", ")))
			repl, err := a.replacement(ctx, c)
			if err != nil {
				a.unread("collation", "target", "collations", err)
				return
			}
			if repl == "" {
				fixes = append(fixes, fmt.Sprintf("change %s to a collation the target has (SHOW COLLATION LIKE '%s%%' on the target lists them)", c, charsetOf(c)))
			} else {
				fixes = append(fixes, fmt.Sprintf("ALTER TABLE %s CONVERT TO CHARACTER SET %s COLLATE %s (when all its text columns are %[2]s; else MODIFY each column named with COLLATE %[3]s)", quote(table), charsetOf(c), repl))
			}
		}
		a.add(check.Error, "collation", "table "+table, fmt.Sprintf("the target (%s) has no collation %s: the table's CREATE TABLE fails there", a.tgt.flavour(), strings.Join(said, ", ")),
			"on the source: "+strings.Join(fixes, "; ")+" (MySQL 8's default utf8mb4_0900_ai_ci, for one, does not exist in MariaDB), or migrate to a server that has it")
	}
}

// replacement is the nearest collation the target has to one it lacks: MySQL 8's
// UCA 9.0.0 ones (utf8mb4_0900_ai_ci) map to MariaDB's UCA 14.0.0 ones, then to the
// older Unicode ones; "" when the target has none of them.
func (a *assessment) replacement(ctx context.Context, collation string) (string, error) {
	cs := charsetOf(collation)
	var tries []string
	if _, suffix, ok := strings.Cut(collation, "_0900"); ok {
		tries = append(tries, cs+"_uca1400"+suffix)
		if suffix == "_bin" {
			tries = append(tries, cs+"_bin")
		}
	}
	tries = append(tries, cs+"_unicode_520_ci", cs+"_unicode_ci", cs+"_general_ci")
	for _, c := range tries {
		ok, err := hasCollation(ctx, a.tgt, c)
		if err != nil || ok {
			return c, err
		}
	}
	return "", nil
}

// defaults reports how the servers' defaults differ: character sets, sql_mode, time
// zone. cutover's sessions set their own (the load and the stream take every value
// the source holds; TIMESTAMP values travel in UTC, DATETIME values as they are), so
// the rows are the same: the defaults matter to the applications' sessions after the
// switch.
func (a *assessment) defaults(ctx context.Context) {
	src, tgt := a.src.settings, a.tgt.settings
	var srcCS, srcColl, tgtCS, tgtColl string
	errS := a.src.db.QueryRowContext(ctx, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", a.srcDB).Scan(&srcCS, &srcColl)
	errT := a.tgt.db.QueryRowContext(ctx, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", a.tgtDB).Scan(&tgtCS, &tgtColl)
	if errS == nil && errT == nil && srcColl != tgtColl {
		a.add(check.Info, "charset", "target", fmt.Sprintf("the target's database %s defaults to %s (%s), the source's to %s (%s): the migrated tables keep their own (each CREATE TABLE names them); the tables created after the switch take the target's (ALTER DATABASE %[1]s CHARACTER SET %[4]s COLLATE %[5]s to match)",
			quote(a.tgtDB), tgtCS, tgtColl, srcCS, srcColl), "")
	}
	if src["collation_server"] != tgt["collation_server"] || src["character_set_server"] != tgt["character_set_server"] {
		a.add(check.Info, "charset", "target server", fmt.Sprintf("the target server's default is %s (%s), the source's %s (%s): the migrated tables keep their own; the databases created after the switch take the target's",
			tgt["character_set_server"], tgt["collation_server"], src["character_set_server"], src["collation_server"]), "")
	}
	if modes(src["sql_mode"]) != modes(tgt["sql_mode"]) {
		a.add(check.Warning, "sql_mode", "target", fmt.Sprintf("the target's sql_mode is '%s', the source's '%s': cutover's sessions set their own, but after the switch the applications' sessions take the target's, where a statement may be refused or act otherwise (strict mode, zero dates, GROUP BY)",
			tgt["sql_mode"], src["sql_mode"]), a.tgt.setOnline("sql_mode", "'"+src["sql_mode"]+"'")+" (keep the modes the target knows)")
	}
	if sz, tz := zone(src), zone(tgt); sz != tz {
		a.add(check.Info, "time_zone", "target", fmt.Sprintf("the target's time zone is %s, the source's %s: the rows are the same (TIMESTAMP values are moved in UTC, DATETIME values as they are), but the applications' sessions on the target read TIMESTAMP values and NOW() in %[1]s (SET GLOBAL time_zone = '%s' there to match; a named zone needs the time zone tables)",
			tz, sz), "")
	}
}

// modes is a sql_mode's modes in a canonical order.
func modes(m string) string {
	list := strings.Split(strings.ToUpper(m), ",")
	slices.Sort(list)
	return strings.Join(slices.Compact(list), ",")
}

// zone is a server's default time zone: its time_zone, or its system's.
func zone(set map[string]string) string {
	z := set["time_zone"]
	if strings.EqualFold(z, "SYSTEM") {
		z = set["system_time_zone"]
	}
	switch strings.ToUpper(z) {
	case "UTC", "+00:00", "GMT", "ETC/UTC", "Z":
		return "UTC"
	}
	return z
}

// zeroDateScanBytes bounds the zero dates check: a migrated table larger than this
// (data and indexes) is not read (its rows would be read whole, no index helps), and
// the finding gives the query to run instead. The others are read once each, all
// their date columns in one pass, and only when the target's sql_mode refuses some
// zero date.
const zeroDateScanBytes = 256 << 20

// zeroDates reports the migrated tables' zero dates (0000-00-00, or a zero month or
// day) the target's sql_mode refuses. The load and the stream write them as they are
// (their session's sql_mode has strict mode without NO_ZERO_DATE and NO_ZERO_IN_DATE,
// with ALLOW_INVALID_DATES: see loadSession): it is the applications after the
// switch that cannot write such a value there, and an ALTER TABLE that copies the
// table fails on them (error 1292).
func (a *assessment) zeroDates(ctx context.Context) {
	mode := strings.Split(strings.ToUpper(a.tgt.settings["sql_mode"]), ",")
	strict := slices.Contains(mode, "STRICT_TRANS_TABLES") || slices.Contains(mode, "STRICT_ALL_TABLES")
	noZero, noZeroIn := slices.Contains(mode, "NO_ZERO_DATE"), slices.Contains(mode, "NO_ZERO_IN_DATE")
	if !strict || !noZero && !noZeroIn {
		return
	}
	// refused is the condition of a value the target's sql_mode refuses.
	refused := func(c string) string {
		whole := fmt.Sprintf("YEAR(%[1]s) = 0 AND MONTH(%[1]s) = 0 AND DAYOFMONTH(%[1]s) = 0", c)
		part := fmt.Sprintf("(MONTH(%[1]s) = 0 OR DAYOFMONTH(%[1]s) = 0) AND NOT (%[2]s)", c, whole)
		switch {
		case noZero && noZeroIn:
			return fmt.Sprintf("(MONTH(%[1]s) = 0 OR DAYOFMONTH(%[1]s) = 0)", c)
		case noZero:
			return "(" + whole + ")"
		}
		return "(" + part + ")"
	}
	var kept []string
	for _, m := range mode {
		if m != "NO_ZERO_DATE" && m != "NO_ZERO_IN_DATE" {
			kept = append(kept, m)
		}
	}
	modeFix := a.tgt.setOnline("sql_mode", "'"+strings.Join(kept, ",")+"'")
	rows, err := query(ctx, a.src, `SELECT TABLE_NAME, COLUMN_NAME, IS_NULLABLE FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = DATABASE() AND DATA_TYPE IN ('date', 'datetime', 'timestamp') ORDER BY TABLE_NAME, ORDINAL_POSITION`)
	if err != nil {
		a.unread("zero_date", "source", "date columns", err)
		return
	}
	columns := map[string][][2]string{} // table -> column, nullable
	for _, r := range rows {
		if a.isMigrated(r[0]) {
			columns[r[0]] = append(columns[r[0]], [2]string{r[1], r[2]})
		}
	}
	for _, t := range a.migrated {
		cols := columns[t.name]
		if len(cols) == 0 {
			continue
		}
		sums := make([]string, len(cols))
		for i, c := range cols {
			sums[i] = fmt.Sprintf("coalesce(SUM(%s), 0)", refused(quote(c[0])))
		}
		scan := fmt.Sprintf("SELECT %s FROM %s", strings.Join(sums, ", "), quote(t.name))
		if t.bytes > zeroDateScanBytes {
			a.add(check.Info, "zero_date", "table "+t.name, fmt.Sprintf("not read for zero dates, which the target's sql_mode refuses (the table holds %s, over the check's %s): count them on the source with %s",
				size(t.bytes), size(zeroDateScanBytes), scan), "")
			continue
		}
		counts, err := query(ctx, a.src, scan)
		if err != nil {
			a.unread("zero_date", "source", "table "+t.name, err)
			continue
		}
		var said, fixes []string
		for i, c := range cols {
			n, _ := strconv.ParseInt(counts[0][i], 10, 64)
			if n == 0 {
				continue
			}
			said = append(said, fmt.Sprintf("%d in column %s", n, c[0]))
			value := "NULL"
			if c[1] != "YES" {
				value = "<a date of your choice>"
			}
			fixes = append(fixes, fmt.Sprintf("UPDATE %s SET %s = %s WHERE %s", quote(t.name), quote(c[0]), value, refused(quote(c[0]))))
		}
		if len(said) == 0 {
			continue
		}
		a.add(check.Warning, "zero_date", "table "+t.name, fmt.Sprintf("rows hold zero dates the target's sql_mode refuses (%s): the load and the stream write them as they are, but after the switch the applications cannot write such a value, and an ALTER TABLE that copies the table fails on them",
			strings.Join(said, ", ")), "on the source: "+strings.Join(fixes, "; ")+"; or on the target: "+modeFix)
	}
}

// streamID reports the server_id the change stream reads the binary log as against
// the replicas connected to the source: two replicas with one server_id cut each
// other off. cutover draws it at random (fullload.go's randomServerID) when the load
// begins and keeps it in the control state: before that it is not known.
func (a *assessment) streamID(ctx context.Context) {
	if !a.plan.CDC.Enabled {
		return
	}
	show := "SHOW SLAVE HOSTS"
	if !a.src.mariadb && (a.src.major > 8 || a.src.major == 8 && (a.src.minor > 0 || patch(a.src.number()) >= 22)) { // MySQL 8.0.22 renamed it
		show = "SHOW REPLICAS"
	}
	ids := map[string]bool{}
	var list []string
	c, err := a.src.db.Conn(ctx)
	if err == nil {
		var rows [][]string
		var cols []string
		rows, cols, err = rowsWithColumns(ctx, c, show)
		c.Close()
		at := slices.Index(cols, "Server_id")
		if err == nil && at < 0 {
			err = fmt.Errorf("%s has no Server_id column", show)
		}
		for _, r := range rows {
			if at >= 0 && !ids[r[at]] {
				ids[r[at]] = true
				list = append(list, r[at])
			}
		}
	}
	replicas := "no replica is connected to the source"
	if len(list) > 0 {
		replicas = "the replicas connected to the source use " + strings.Join(list, ", ")
	}
	if err != nil {
		replicas = fmt.Sprintf("the replicas connected to the source could not be listed (%s: %v)", show, err)
	}
	id := ""
	if ctl, ok, err := readControl(ctx, a.tgt.db, a.plan.ControlSchema); err == nil && ok {
		if st, err := ctl.State(ctx); err == nil {
			if v, ok := strings.CutPrefix(st.Slot, streamSlot); ok {
				id = v
			}
		}
	}
	switch {
	case id == "":
		a.add(check.Info, "server_id", "stream", fmt.Sprintf("the change stream reads the binary log as a replica with a server_id cutover draws at random when the load begins, from 2147483648 to 4294967295, and keeps; %s", replicas), "")
	case ids[id]:
		a.add(check.Warning, "server_id", "stream", fmt.Sprintf("a replica connected to the source uses server_id %s, the one this migration's stream reads the binary log as: it is the stream itself if cutover start runs now; another replica with it cuts the stream off each time it connects, and the stream it", id),
			"if it is another replica: give it another server_id (SET GLOBAL server_id = <a number no other server uses> on it, then restart its replication)")
	default:
		a.add(check.Info, "server_id", "stream", fmt.Sprintf("this migration's stream reads the binary log as server_id %s; %s", id, replicas), "")
	}
}

// patch is the third number of a version: 22 of 8.0.22.
func patch(v string) int {
	parts := strings.Split(v, ".")
	if len(parts) < 3 {
		return 0
	}
	n, _ := strconv.Atoi(parts[2])
	return n
}

// rowsWithColumns returns a query's rows as strings and its columns' names.
func rowsWithColumns(ctx context.Context, c *sql.Conn, q string) ([][]string, []string, error) {
	rows, err := c.QueryContext(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, nil, err
	}
	var out [][]string
	for rows.Next() {
		r, err := scanStrings(rows, len(cols))
		if err != nil {
			return nil, nil, err
		}
		out = append(out, r)
	}
	return out, cols, rows.Err()
}
