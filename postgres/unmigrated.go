package postgres

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/redact"
	"github.com/jackc/pgx/v5"
)

// What the full load does not carry. The schema is pg_dump's pre-data and post-data of
// the one database, without publications and subscriptions, restored without owners
// and grants (those follow from the same dump); the rows are the migrated tables'.
// So the target lacks, unless the operator puts them there: the source's publications
// and subscriptions; what belongs to the cluster rather than the database (roles,
// tablespaces, the database's own settings, owner, grants and comment); the rows of
// extension configuration tables; the contents of large objects (created empty);
// planner statistics; and the values of sequences outside the migrated tables' schemas
// (the switch sets the others). pg_dump also recreates inheritance children with their
// columns in its own order. These checks name each such object found on the source,
// with what to do.

// notCarried runs the checks that need the source only.
func (a *assessment) notCarried(ctx context.Context) error {
	a.run(ctx, a.publications, a.subscriptions, a.securityLabels, a.extensionConfig, a.unsetSequences,
		a.replicationConsumers, a.plannerStatistics, a.columnOrder)
	return nil
}

// notCarriedToTarget runs the checks that compare with the target.
func (a *assessment) notCarriedToTarget(ctx context.Context) error {
	a.run(ctx, a.tablespaces, a.restoreRoles, a.eventTriggers, a.databaseProperties)
	return nil
}

// ownName matches the slots and publications cutover makes: "cutover_" and 8 hex digits
// (takeSnapshot), the reverse slot's "_rev" (reverseSlot), the inserts-only
// publication's "_inserts" (publications) and a resumed load's "_resume_" slot.
var ownName = regexp.MustCompile(`^cutover_[0-9a-f]{8}(_rev)?(_inserts|_resume_[0-9a-f]{4})?$`)

// userSchema is a SQL condition on a schema name n.nspname: not a system schema.
const userSchema = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'`

// notExtensionMember is a SQL condition: the object (classid, oid) is not created by an extension.
func notExtensionMember(classid, oid string) string {
	return fmt.Sprintf(`NOT EXISTS (SELECT 1 FROM pg_depend ext WHERE ext.classid = %s AND ext.objid = %s AND ext.deptype = 'e')`, classid, oid)
}

// publications: cutover leaves the source's publications out of the schema (pg_dump
// --no-publications); the fix is each one's definition, read from the catalog.
func (a *assessment) publications(ctx context.Context) error {
	cols, where, schemas := "''", "''", "NULL"
	if a.src.major() >= 15 {
		cols = `coalesce(' (' || (SELECT string_agg(quote_ident(t.attname), ', ' ORDER BY t.attnum) FROM pg_attribute t
		                            WHERE t.attrelid = r.prrelid AND t.attnum = ANY (r.prattrs)) || ')', '')`
		where = `coalesce(' WHERE (' || pg_get_expr(r.prqual, r.prrelid) || ')', '')`
		schemas = `(SELECT string_agg(format('TABLES IN SCHEMA %I', n.nspname), ', ' ORDER BY n.nspname)
		            FROM pg_publication_namespace pn JOIN pg_namespace n ON n.oid = pn.pnnspid WHERE pn.pnpubid = p.oid)`
	}
	rows, err := a.src.conn.Query(ctx, `
		SELECT p.pubname,
		       format('CREATE PUBLICATION %I', p.pubname)
		       || CASE WHEN p.puballtables THEN ' FOR ALL TABLES'
		               ELSE coalesce(' FOR ' || nullif(concat_ws(', ',
		                   (SELECT string_agg(format('TABLE %s%I.%I', CASE WHEN c.relkind = 'p' THEN '' ELSE 'ONLY ' END, n.nspname, c.relname)
		                                      || `+cols+` || `+where+`, ', ' ORDER BY n.nspname, c.relname)
		                    FROM pg_publication_rel r JOIN pg_class c ON c.oid = r.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		                    WHERE r.prpubid = p.oid),
		                   `+schemas+`), ''), '') END
		       || format(' WITH (publish = %L, publish_via_partition_root = %s);',
		                 concat_ws(', ', CASE WHEN p.pubinsert THEN 'insert' END, CASE WHEN p.pubupdate THEN 'update' END,
		                           CASE WHEN p.pubdelete THEN 'delete' END, CASE WHEN p.pubtruncate THEN 'truncate' END),
		                 p.pubviaroot::text)
		FROM pg_publication p ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("read the source's publications: %w", err)
	}
	var name, ddl string
	_, err = pgx.ForEachRow(rows, []any{&name, &ddl}, func() error {
		if ownName.MatchString(name) {
			return nil
		}
		a.add(check.Warning, "publication", "publication "+name,
			fmt.Sprintf("publication %s is not migrated: cutover leaves the source's publications on the source, so after the switch its subscribers read a database that no longer changes", name),
			"if the target is to publish after the switch, on the target: "+ddl+
				"\nthen give each subscriber a slot on the target before writes resume (SELECT pg_create_logical_replication_slot('...', 'pgoutput');) and point it there (ALTER SUBSCRIPTION ... CONNECTION '...';)")
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the source's publications: %w", err)
	}
	return nil
}

// subscriptions: pg_dump --no-subscriptions. A subscription of the source database goes
// on writing into the source after the switch unless it is moved.
func (a *assessment) subscriptions(ctx context.Context) error {
	// subconninfo may hold a password; only a superuser (or a role granted the column) reads it.
	var canRead bool
	if err := a.src.conn.QueryRow(ctx, `SELECT has_column_privilege('pg_catalog.pg_subscription', 'subconninfo', 'SELECT')`).Scan(&canRead); err != nil {
		return fmt.Errorf("read the source's subscriptions: %w", err)
	}
	conninfo := "''"
	if canRead {
		conninfo = "s.subconninfo"
	}
	rows, err := a.src.conn.Query(ctx, `
		SELECT s.subname, `+conninfo+`, coalesce(s.subslotname, ''), s.subpublications, s.subenabled
		FROM pg_subscription s WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("read the source's subscriptions: %w", err)
	}
	var name, conn, slot string
	var pubs []string
	var enabled bool
	_, err = pgx.ForEachRow(rows, []any{&name, &conn, &slot, &pubs, &enabled}, func() error {
		if conn == "" {
			conn = "...its connection string (pg_subscription.subconninfo)..."
		} else {
			conn = redact.ConnString(conn)
		}
		sub := a.ident(name)
		qpubs := make([]string, len(pubs))
		for i, p := range pubs {
			qpubs[i] = a.ident(p)
		}
		state := "enabled"
		if !enabled {
			state = "disabled"
		}
		create := fmt.Sprintf("CREATE SUBSCRIPTION %s CONNECTION %s PUBLICATION %s WITH (copy_data = false", sub, quoteLiteral(conn), strings.Join(qpubs, ", "))
		fix := "before the switch, on the source: ALTER SUBSCRIPTION " + sub + " DISABLE;  (its changes applied so far reach the target through cutover)\n"
		if slot != "" {
			create += fmt.Sprintf(", create_slot = false, slot_name = %s", quoteLiteral(slot))
			fix += "after the switch, on the source: ALTER SUBSCRIPTION " + sub + " SET (slot_name = NONE); DROP SUBSCRIPTION " + sub + ";\n" +
				"and on the target, to go on from where the source stopped in the publisher's slot " + slot + ": "
		} else {
			fix += "after the switch, on the target: "
		}
		fix += create + ");"
		a.add(check.Warning, "subscription", "subscription "+name,
			fmt.Sprintf("subscription %s (%s, publications %s) is not migrated: after the switch it would go on writing into the source, and the target would receive nothing from its publisher", name, state, strings.Join(pubs, ", ")),
			fix)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the source's subscriptions: %w", err)
	}
	return nil
}

// securityLabels: pg_dump carries the labels of the schema's objects, which the target
// accepts only with the same label provider loaded; the database's own labels stay.
func (a *assessment) securityLabels(ctx context.Context) error {
	rows, err := a.src.conn.Query(ctx, `
		SELECT provider, count(*) FILTER (WHERE NOT db), coalesce(string_agg(label, ' ') FILTER (WHERE db), '')
		FROM (SELECT provider, label, false AS db FROM pg_seclabel
		      UNION ALL
		      SELECT provider, label, true FROM pg_shseclabel
		      WHERE classoid = 'pg_database'::regclass AND objoid = (SELECT oid FROM pg_database WHERE datname = current_database())) l
		GROUP BY provider ORDER BY provider`)
	if err != nil {
		return fmt.Errorf("read the source's security labels: %w", err)
	}
	var provider, dbLabel string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&provider, &n, &dbLabel}, func() error {
		var problems, fixes []string
		if n > 0 {
			problems = append(problems, fmt.Sprintf("%d security labels of provider %s on the schema's objects: the full load recreates them, and the target refuses them (stopping the schema restore) unless it loads provider %s too", n, provider, provider))
			fixes = append(fixes, fmt.Sprintf("load the label provider %s on the target before cutover start (shared_preload_libraries, then a restart)", provider))
		}
		if dbLabel != "" {
			problems = append(problems, fmt.Sprintf("the database's own security label of provider %s is not carried: it belongs to the database, not its schema", provider))
			fixes = append(fixes, fmt.Sprintf("on the target: SECURITY LABEL FOR %s ON DATABASE %s IS %s;", a.ident(provider), a.ident(a.targetDatabase()), quoteLiteral(dbLabel)))
		}
		problem, fix := strings.Join(problems, "; "), strings.Join(fixes, "\n")
		a.add(check.Warning, "security_label", "provider "+provider, problem, fix)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the source's security labels: %w", err)
	}
	return nil
}

// targetDatabase is the target's database name, or the source's when the target was not reached.
func (a *assessment) targetDatabase() string {
	if a.tgt != nil {
		return a.tgt.database
	}
	return a.src.database
}

// extensionConfig: an extension's configuration tables (pg_extension_config_dump) hold
// rows the operator added; they belong to the extension, which the target creates anew,
// so cutover neither copies nor replicates them. Their rows are those pg_dump would dump:
// the ones matching the extension's condition.
func (a *assessment) extensionConfig(ctx context.Context) error {
	rows, err := a.src.conn.Query(ctx, `
		SELECT e.extname, format('%I.%I', n.nspname, c.relname), c.relkind::text, coalesce(u.cond, ''),
		       has_table_privilege(c.oid, 'SELECT')
		FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(rel, cond)
		JOIN pg_class c ON c.oid = u.rel JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE e.extname <> 'pg_cron' -- its jobs are moved by the switch
		ORDER BY 1, 2`)
	if err != nil {
		return fmt.Errorf("read the extensions' configuration tables: %w", err)
	}
	type config struct{ ext, rel, kind, cond string }
	var configs []config
	var unreadable []string
	var c config
	var canRead bool
	if _, err := pgx.ForEachRow(rows, []any{&c.ext, &c.rel, &c.kind, &c.cond, &canRead}, func() error {
		if canRead {
			configs = append(configs, c)
		} else {
			unreadable = append(unreadable, c.rel)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("read the extensions' configuration tables: %w", err)
	}
	type held struct{ what, rel string }
	byExt := map[string][]held{}
	var exts []string
	for _, c := range configs {
		var what string
		if c.kind == "S" {
			var last *int64
			if err := a.src.conn.QueryRow(ctx, "SELECT CASE WHEN is_called THEN last_value END FROM "+c.rel).Scan(&last); err != nil {
				return fmt.Errorf("sequence %s of extension %s: %w", c.rel, c.ext, err)
			}
			if last != nil {
				what = fmt.Sprintf("sequence %s (at %d)", c.rel, *last)
			}
		} else {
			// The condition is the extension's own SQL ("WHERE NOT standard"), as pg_dump uses it.
			var n int64
			if err := a.src.conn.QueryRow(ctx, "SELECT count(*) FROM ONLY "+c.rel+" "+c.cond).Scan(&n); err != nil {
				return fmt.Errorf("configuration table %s of extension %s: %w", c.rel, c.ext, err)
			}
			if n > 0 {
				what = fmt.Sprintf("table %s (%d rows)", c.rel, n)
			}
		}
		if what == "" {
			continue
		}
		if byExt[c.ext] == nil {
			exts = append(exts, c.ext)
		}
		byExt[c.ext] = append(byExt[c.ext], held{what, c.rel})
	}
	for _, e := range exts {
		var whats, opts []string
		for _, h := range byExt[e] {
			whats = append(whats, h.what)
			opts = append(opts, "--table="+shellQuote(h.rel))
		}
		a.add(check.Warning, "extension_config", "extension "+e,
			fmt.Sprintf("the configuration of extension %s is not copied: %s. It belongs to the extension, which the full load creates anew on the target with its initial contents only, and the change stream does not carry it", e, strings.Join(whats, ", ")),
			fmt.Sprintf("copy it after the full load (and again, after emptying it on the target, if it changes before the switch): pg_dump --data-only %s \"$SOURCE_URL\" | psql \"$TARGET_URL\"", strings.Join(opts, " ")))
	}
	if len(unreadable) > 0 {
		a.add(check.Warning, "extension_config", "role "+a.src.user,
			fmt.Sprintf("role %s cannot read the extensions' configuration tables %s, so check cannot tell whether they hold rows the full load would not copy", a.src.user, listText(unreadable, 10)),
			fmt.Sprintf("GRANT SELECT ON %s TO %s;", strings.Join(unreadable, ", "), a.ident(a.src.user)))
	}
	return nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// unsetSequences: the switch sets the sequences of the migrated tables' schemas on the
// target; a used sequence of another schema is created by the full load at its start
// value and stays there.
func (a *assessment) unsetSequences(ctx context.Context) error {
	rows, err := a.src.conn.Query(ctx, `
		SELECT format('%I.%I', n.nspname, c.relname), s.last_value
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_sequences s ON s.schemaname = n.nspname AND s.sequencename = c.relname
		WHERE c.relkind = 'S' AND `+userSchema+` AND n.nspname <> ALL ($1) AND n.nspname <> $2
		  AND s.last_value IS NOT NULL AND `+notExtensionMember("'pg_class'::regclass", "c.oid")+`
		  -- a sequence owned by a table: an included table's is in a migrated schema, an excluded one's is not the target's business
		  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
		                  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))
		ORDER BY 1`, schemasOf(a.tables), a.plan.ControlSchema)
	if err != nil {
		return fmt.Errorf("read the source's sequences: %w", err)
	}
	var names, sets []string
	var name string
	var last int64
	if _, err := pgx.ForEachRow(rows, []any{&name, &last}, func() error {
		names = append(names, name)
		sets = append(sets, fmt.Sprintf("SELECT setval(%s, %d);", quoteLiteral(name), last))
		return nil
	}); err != nil {
		return fmt.Errorf("read the source's sequences: %w", err)
	}
	if len(names) == 0 {
		return nil
	}
	a.add(check.Warning, "sequence_value", "sequences "+listText(names, 5),
		fmt.Sprintf("sequences %s are in schemas without a migrated table: the full load creates them at their start value, and the switch, which sets the sequences of the migrated tables' schemas, leaves them there", listText(names, 10)),
		"after the switch, on the target, with each one's value on the source at that time (these are today's):\n"+strings.Join(sets, "\n"))
	return nil
}

// replicationConsumers: other programs reading the source's change stream (another
// subscriber, a CDC tool) keep their slot on the source; the inactive slots are reported
// by slotsAndSenders already.
func (a *assessment) replicationConsumers(ctx context.Context) error {
	rows, err := a.src.conn.Query(ctx, `
		SELECT s.slot_name, coalesce(s.plugin, ''), coalesce(nullif(r.application_name, ''), 'pid ' || s.active_pid)
		FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
		WHERE s.slot_type = 'logical' AND s.database = current_database() AND s.active
		ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("read the source's replication slots: %w", err)
	}
	var slot, plugin, reader string
	_, err = pgx.ForEachRow(rows, []any{&slot, &plugin, &reader}, func() error {
		if ownName.MatchString(slot) {
			return nil
		}
		a.add(check.Warning, "replication_consumer", "slot "+slot,
			fmt.Sprintf("logical replication slot %s (plugin %s) is being read by %s: slots are not migrated, so after the switch that consumer reads a source that no longer changes", slot, plugin, reader),
			fmt.Sprintf("at the switch, before writes resume, on the target: SELECT pg_create_logical_replication_slot(%s, %s);  then point the consumer at the target (with the publication it reads created there)", quoteLiteral(slot), quoteLiteral(plugin)))
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the source's replication slots: %w", err)
	}
	return nil
}

// plannerStatistics: pg_statistic and the data of extended statistics are not copied.
func (a *assessment) plannerStatistics(ctx context.Context) error {
	oids := relationOIDs(a.tables)
	var tables, extended int
	err := a.src.conn.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		        WHERE c.oid = ANY ($1) AND EXISTS (SELECT 1 FROM pg_stats s WHERE s.schemaname = n.nspname AND s.tablename = c.relname)),
		       -- the views, not pg_statistic and pg_statistic_ext_data: those are closed to other roles than a superuser
		       (SELECT count(DISTINCT (s.statistics_schemaname, s.statistics_name)) FROM pg_stats_ext s JOIN pg_namespace n ON n.nspname = s.schemaname JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename
		        WHERE c.oid = ANY ($1) AND (s.n_distinct IS NOT NULL OR s.dependencies IS NOT NULL OR s.most_common_vals IS NOT NULL))`, oids).Scan(&tables, &extended)
	if err != nil {
		return fmt.Errorf("read the source's planner statistics: %w", err)
	}
	if tables == 0 && extended == 0 {
		return nil
	}
	what := fmt.Sprintf("planner statistics of %d migrated tables", tables)
	if extended > 0 {
		what += fmt.Sprintf(" and the data of %d extended statistics objects", extended)
	}
	a.add(check.Info, "planner_statistics", "database "+a.src.database,
		what+" are not copied: the target's planner has none until autovacuum analyzes each table, so queries may take poor plans right after the switch",
		`after the full load: vacuumdb --analyze-in-stages --dbname="$TARGET_URL"  (or ANALYZE; in the target database)`)
	return nil
}

// columnOrder predicts the order of each migrated table's columns on the target.
// pg_dump creates an inheritance child with CREATE TABLE ... INHERITS, listing only its
// own columns (those it does not inherit, and those inherited that it also defines),
// and CREATE TABLE puts the inherited columns first, parent by parent in the order of
// INHERITS (its inhseqno), each parent's as they come out on the target, a column
// inherited twice once; then the child's own. So a column added to a parent after the
// child was made (it goes last in the child on the source), or a table that took
// INHERIT later, comes out in another order. Partitions are created on their own and
// attached (pg_dump 15), and dropped columns leave no gap in the order: both keep it.
func (a *assessment) columnOrder(ctx context.Context) error {
	oids := relationOIDs(a.all)
	rows, err := a.src.conn.Query(ctx, `
		SELECT attrelid, quote_ident(attname), attinhcount > 0 FROM pg_attribute
		WHERE attrelid = ANY ($1) AND attnum > 0 AND NOT attisdropped ORDER BY attrelid, attnum`, oids)
	if err != nil {
		return fmt.Errorf("read the source's columns: %w", err)
	}
	o := orderModel{cols: map[uint32][]string{}, inherited: map[column]bool{}, parents: map[uint32][]uint32{}, memo: map[uint32][]string{}}
	var rel uint32
	var col string
	var inherited bool
	if _, err := pgx.ForEachRow(rows, []any{&rel, &col, &inherited}, func() error {
		o.cols[rel] = append(o.cols[rel], col)
		o.inherited[column{rel, col}] = inherited
		return nil
	}); err != nil {
		return fmt.Errorf("read the source's columns: %w", err)
	}
	rows, err = a.src.conn.Query(ctx, `
		SELECT i.inhrelid, i.inhparent FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhrelid = ANY ($1) AND NOT c.relispartition ORDER BY i.inhrelid, i.inhseqno`, oids)
	if err != nil {
		return fmt.Errorf("read the source's inheritance: %w", err)
	}
	var parent uint32
	if _, err := pgx.ForEachRow(rows, []any{&rel, &parent}, func() error {
		o.parents[rel] = append(o.parents[rel], parent)
		return nil
	}); err != nil {
		return fmt.Errorf("read the source's inheritance: %w", err)
	}
	for _, r := range a.tables {
		src, tgt := o.cols[r.oid], o.target(r.oid)
		if tgt == nil || slices.Equal(src, tgt) {
			continue
		}
		a.add(check.Warning, "column_order", r.object(),
			fmt.Sprintf("its columns come out on the target in another order: source (%s), target (%s). The full load creates an inheritance child with its inherited columns first, in its parents' order, then its own; after the switch an INSERT without a column list, or a SELECT * read by position, puts values in the wrong columns",
				strings.Join(src, ", "), strings.Join(tgt, ", ")),
			fmt.Sprintf("name the columns in INSERT and SELECT (INSERT INTO %s (%s) VALUES ...); or, if the order must stay, recreate the table on the target with its columns in the order wanted and attach it to its parents with ALTER TABLE ... INHERIT ...",
				r.qname, strings.Join(src, ", ")))
	}
	return nil
}

// orderModel computes the column order pg_dump and CREATE TABLE give a table.
type orderModel struct {
	cols      map[uint32][]string // relation -> quoted column names in attnum order
	inherited map[column]bool     // inherited (attinhcount > 0)
	parents   map[uint32][]uint32 // child -> parents in inhseqno order (partitions left out)
	memo      map[uint32][]string
}

type column struct {
	rel  uint32
	name string
}

// target returns the columns of rel in the order the target will have, nil if unknown.
func (o *orderModel) target(rel uint32) []string {
	if got, ok := o.memo[rel]; ok {
		return got
	}
	o.memo[rel] = nil // inheritance has no cycles; this only guards the recursion
	if _, ok := o.cols[rel]; !ok {
		return nil
	}
	var order []string
	seen := map[string]bool{}
	for _, p := range o.parents[rel] {
		pcols := o.target(p)
		if pcols == nil {
			return nil
		}
		for _, c := range pcols {
			if !seen[c] {
				seen[c] = true
				order = append(order, c)
			}
		}
	}
	for _, c := range o.cols[rel] {
		if !o.inherited[column{rel, c}] && !seen[c] {
			seen[c] = true
			order = append(order, c)
		}
	}
	o.memo[rel] = order
	return order
}

// carriedRelations lists the OIDs of the relations the schema restore creates that can
// sit in a tablespace: the migrated tables, their indexes, and the materialized views
// of the user schemas with theirs.
const carriedRelations = `
	WITH carried(oid) AS (
	    SELECT unnest($1::oid[])
	    UNION SELECT i.indexrelid FROM pg_index i WHERE i.indrelid = ANY ($1)
	    UNION SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	          WHERE c.relkind = 'm' AND ` + userSchema + ` AND n.nspname <> $2)
	SELECT oid FROM carried
	UNION SELECT i.indexrelid FROM pg_index i JOIN pg_class m ON m.oid = i.indrelid AND m.relkind = 'm' WHERE i.indrelid IN (SELECT oid FROM carried)`

// tablespaces: pg_dump names each relation's tablespace (SET default_tablespace), but a
// tablespace belongs to the cluster; the restore stops on one the target lacks.
func (a *assessment) tablespaces(ctx context.Context) error {
	oids := relationOIDs(a.tables)
	rows, err := a.src.conn.Query(ctx, `
		SELECT t.spcname, pg_tablespace_location(t.oid), array_agg(format('%I.%I', n.nspname, c.relname) ORDER BY 1)
		FROM (`+carriedRelations+`) x JOIN pg_class c ON c.oid = x.oid
		JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_tablespace t ON t.oid = c.reltablespace
		GROUP BY t.oid, t.spcname ORDER BY 1`, oids, a.plan.ControlSchema)
	if err != nil {
		return fmt.Errorf("read the source's tablespaces: %w", err)
	}
	type space struct {
		name, location string
		rels           []string
	}
	var spaces []space
	var s space
	if _, err := pgx.ForEachRow(rows, []any{&s.name, &s.location, &s.rels}, func() error {
		spaces = append(spaces, s)
		return nil
	}); err != nil {
		return fmt.Errorf("read the source's tablespaces: %w", err)
	}
	for _, s := range spaces {
		var exists, canCreate bool
		if err := a.tgt.conn.QueryRow(ctx, `SELECT count(*) > 0, coalesce(bool_or(has_tablespace_privilege(oid, 'CREATE')), false)
			FROM pg_tablespace WHERE spcname = $1`, s.name).Scan(&exists, &canCreate); err != nil {
			return fmt.Errorf("target: look up tablespace %s: %w", s.name, err)
		}
		switch {
		case exists && canCreate:
			a.add(check.Info, "tablespace", "tablespace "+s.name,
				fmt.Sprintf("%s are in tablespace %s on the source: the full load creates them in the target's tablespace of that name", listText(s.rels, 5), s.name), "")
			continue
		case exists:
			a.add(check.Error, "tablespace", "tablespace "+s.name,
				fmt.Sprintf("%s are in tablespace %s on the source; the target has it, but role %s may not create objects in it, so the schema restore would stop there", listText(s.rels, 5), s.name, a.tgt.user),
				fmt.Sprintf("on the target: GRANT CREATE ON TABLESPACE %s TO %s;", a.ident(s.name), a.ident(a.tgt.user)))
			continue
		}
		a.add(check.Error, "tablespace", "tablespace "+s.name,
			fmt.Sprintf("%s are in tablespace %s on the source, which the target lacks: tablespaces belong to the server, not the database, so the full load does not create it, and the schema restore stops on SET default_tablespace = %s",
				listText(s.rels, 5), s.name, s.name),
			fmt.Sprintf("on the target, as a superuser, before cutover start: CREATE TABLESPACE %s LOCATION '/a/directory/of/the/target/server';  (on the source it is at '%s')", a.ident(s.name), s.location))
	}
	return nil
}

// restoreRoles: roles are the cluster's, so the target must have them. Owners and
// grants of a role it lacks are skipped (the roles check), but a policy's TO list and a
// user mapping name the role in the statement that creates them, and the schema
// restore stops there.
func (a *assessment) restoreRoles(ctx context.Context) error {
	oids := relationOIDs(a.tables)
	rows, err := a.src.conn.Query(ctx, `
		SELECT r.rolname, format('policy %I on %I.%I', p.polname, n.nspname, c.relname)
		FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace,
		     unnest(p.polroles) AS pr(role) JOIN pg_roles r ON r.oid = pr.role
		WHERE p.polrelid = ANY ($1)
		UNION ALL
		SELECT u.usename, format('user mapping for %I on server %I', u.usename, u.srvname)
		FROM pg_user_mappings u WHERE u.umuser <> 0
		ORDER BY 1, 2`, oids)
	if err != nil {
		return fmt.Errorf("read the roles of the source's policies and user mappings: %w", err)
	}
	uses := map[string][]string{}
	var roles []string
	var role, use string
	if _, err := pgx.ForEachRow(rows, []any{&role, &use}, func() error {
		if uses[role] == nil {
			roles = append(roles, role)
		}
		uses[role] = append(uses[role], use)
		return nil
	}); err != nil {
		return fmt.Errorf("read the roles of the source's policies and user mappings: %w", err)
	}
	if len(roles) == 0 {
		return nil
	}
	rows, err = a.tgt.conn.Query(ctx, `SELECT r FROM unnest($1::text[]) r WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) ORDER BY 1`, roles)
	if err != nil {
		return fmt.Errorf("target: look up roles %s: %w", listText(roles, 5), err)
	}
	missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("target: look up roles %s: %w", listText(roles, 5), err)
	}
	for _, r := range missing {
		a.add(check.Error, "roles", "role "+r,
			fmt.Sprintf("role %s does not exist on the target, and the schema names it in %s: the full load does not create roles (they belong to the server), so the schema restore stops there", r, listText(uses[r], 5)),
			fmt.Sprintf("on the target, before cutover start: CREATE ROLE %s;  (pg_dumpall --roles-only on the source shows its attributes and memberships)", a.ident(r)))
	}
	return nil
}

// eventTriggers: pg_dump carries them, but only a superuser may create one.
func (a *assessment) eventTriggers(ctx context.Context) error {
	rows, err := a.src.conn.Query(ctx, `
		SELECT e.evtname,
		       format('CREATE EVENT TRIGGER %I ON %I', e.evtname, e.evtevent)
		       || coalesce(' WHEN TAG IN (' || (SELECT string_agg(quote_literal(t), ', ') FROM unnest(e.evttags) t) || ')', '')
		       || format(' EXECUTE FUNCTION %I.%I();', n.nspname, p.proname)
		       || CASE e.evtenabled WHEN 'D' THEN format(' ALTER EVENT TRIGGER %I DISABLE;', e.evtname)
		                            WHEN 'R' THEN format(' ALTER EVENT TRIGGER %I ENABLE REPLICA;', e.evtname)
		                            WHEN 'A' THEN format(' ALTER EVENT TRIGGER %I ENABLE ALWAYS;', e.evtname) ELSE '' END
		FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE `+notExtensionMember("'pg_event_trigger'::regclass", "e.oid")+`
		ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("read the source's event triggers: %w", err)
	}
	var name, ddl string
	_, err = pgx.ForEachRow(rows, []any{&name, &ddl}, func() error {
		if ddlTriggerName.MatchString(name) {
			return nil // cutover's own capture of schema changes, not carried
		}
		if a.tgt.super {
			a.add(check.Info, "event_trigger", "event trigger "+name,
				fmt.Sprintf("event trigger %s is created on the target by the full load: from then on it fires there for DDL, cutover's own included", name), "")
			return nil
		}
		a.add(check.Error, "event_trigger", "event trigger "+name,
			fmt.Sprintf("the full load creates event trigger %s on the target, which only a superuser may do, and role %s is not one there: the schema restore would stop on it", name, a.tgt.user),
			fmt.Sprintf("run the full load as a superuser of the target (target.url); or drop the event trigger on the source before cutover start and, after the switch, as a superuser on the target: %s", ddl))
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the source's event triggers: %w", err)
	}
	return nil
}

// dbProps are a database's own properties, which pg_dump writes only with --create.
type dbProps struct {
	owner, comment string
	connLimit      int
	settings       []string // "role\x00name=value", role "" for the database's own
	grants         []string // "grantee\x00privilege\x00grantable", the owner's left out
}

func readDBProps(ctx context.Context, conn *pgx.Conn) (dbProps, error) {
	var p dbProps
	err := conn.QueryRow(ctx, `
		SELECT pg_get_userbyid(datdba), coalesce(shobj_description(oid, 'pg_database'), ''), datconnlimit
		FROM pg_database WHERE datname = current_database()`).Scan(&p.owner, &p.comment, &p.connLimit)
	if err != nil {
		return p, err
	}
	rows, err := conn.Query(ctx, `
		SELECT coalesce(r.rolname, ''), c
		FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole, unnest(s.setconfig) c
		WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY 1, 2`)
	if err != nil {
		return p, err
	}
	var role, setting string
	if _, err := pgx.ForEachRow(rows, []any{&role, &setting}, func() error {
		p.settings = append(p.settings, role+"\x00"+setting)
		return nil
	}); err != nil {
		return p, err
	}
	rows, err = conn.Query(ctx, `
		SELECT CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(g.grantee) END, g.privilege_type, g.is_grantable::text
		FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) g
		WHERE d.datname = current_database() AND g.grantee <> d.datdba
		ORDER BY 1, 2`)
	if err != nil {
		return p, err
	}
	var grantee, privilege, grantable string
	_, err = pgx.ForEachRow(rows, []any{&grantee, &privilege, &grantable}, func() error {
		p.grants = append(p.grants, grantee+"\x00"+privilege+"\x00"+grantable)
		return nil
	})
	return p, err
}

// listGUCs are the settings whose value is a list of quoted names (pg_dump's
// variable_is_guc_list_quote): written back as they are stored, not as one string.
var listGUCs = map[string]bool{"local_preload_libraries": true, "search_path": true, "session_preload_libraries": true,
	"shared_preload_libraries": true, "temp_tablespaces": true, "unix_socket_directories": true}

// databaseProperties: the database's settings (ALTER DATABASE / ALTER ROLE ... IN
// DATABASE ... SET), grants, owner, comment and connection limit are the database's,
// not its schema's: pg_dump writes them only when it creates the database (--create).
// Whatever differs on the target is reported, with the statements that set it.
func (a *assessment) databaseProperties(ctx context.Context) error {
	src, err := readDBProps(ctx, a.src.conn)
	if err != nil {
		return fmt.Errorf("read the source database's properties: %w", err)
	}
	tgt, err := readDBProps(ctx, a.tgt.conn)
	if err != nil {
		return fmt.Errorf("target: read the database's properties: %w", err)
	}
	db := a.ident(a.tgt.database)
	var what, stmts []string
	if src.owner != tgt.owner {
		what = append(what, "its owner ("+src.owner+")")
		stmts = append(stmts, fmt.Sprintf("ALTER DATABASE %s OWNER TO %s;", db, a.ident(src.owner)))
	}
	var settings []string
	for _, s := range src.settings {
		if slices.Contains(tgt.settings, s) {
			continue
		}
		role, kv, _ := strings.Cut(s, "\x00")
		name, value, _ := strings.Cut(kv, "=")
		if !listGUCs[strings.ToLower(name)] {
			value = quoteLiteral(value)
		}
		if role == "" {
			settings = append(settings, name)
			stmts = append(stmts, fmt.Sprintf("ALTER DATABASE %s SET %s = %s;", db, name, value))
		} else {
			settings = append(settings, name+" for role "+role)
			stmts = append(stmts, fmt.Sprintf("ALTER ROLE %s IN DATABASE %s SET %s = %s;", a.ident(role), db, name, value))
		}
	}
	if len(settings) > 0 {
		what = append(what, "settings "+strings.Join(settings, ", "))
	}
	grants, revokes := map[string][]string{}, []string{}
	var grantees []string
	for _, g := range src.grants {
		if slices.Contains(tgt.grants, g) {
			continue
		}
		f := strings.Split(g, "\x00")
		key := f[0] + "\x00" + f[2]
		if grants[key] == nil {
			grantees = append(grantees, key)
		}
		grants[key] = append(grants[key], f[1])
	}
	for _, g := range tgt.grants {
		// Only PUBLIC's: the target's grants to its own roles (the migration role's
		// CONNECT among them) are not the source's to take away.
		if f := strings.Split(g, "\x00"); f[0] == "PUBLIC" && !slices.Contains(src.grants, g) {
			revokes = append(revokes, f[1])
		}
	}
	for _, k := range grantees {
		grantee, grantable, _ := strings.Cut(k, "\x00")
		who := "PUBLIC"
		if grantee != "PUBLIC" {
			who = a.ident(grantee)
		}
		stmt := fmt.Sprintf("GRANT %s ON DATABASE %s TO %s", strings.Join(grants[k], ", "), db, who)
		if grantable == "true" {
			stmt += " WITH GRANT OPTION"
		}
		stmts = append(stmts, stmt+";")
	}
	if len(revokes) > 0 {
		sort.Strings(revokes)
		stmts = append(stmts, fmt.Sprintf("REVOKE %s ON DATABASE %s FROM PUBLIC;", strings.Join(revokes, ", "), db))
	}
	if len(grantees) > 0 || len(revokes) > 0 {
		what = append(what, "privileges")
	}
	if src.comment != tgt.comment && src.comment != "" {
		what = append(what, "its comment")
		stmts = append(stmts, fmt.Sprintf("COMMENT ON DATABASE %s IS %s;", db, quoteLiteral(src.comment)))
	}
	if src.connLimit != tgt.connLimit {
		what = append(what, fmt.Sprintf("its connection limit (%d)", src.connLimit))
		stmts = append(stmts, fmt.Sprintf("ALTER DATABASE %s CONNECTION LIMIT %d;", db, src.connLimit))
	}
	if len(stmts) == 0 {
		return nil
	}
	a.add(check.Warning, "database", "database "+a.src.database,
		fmt.Sprintf("the source database's own %s differ on the target: they belong to the database, not its schema, so the full load does not carry them", strings.Join(what, ", ")),
		"on the target, as its owner or a superuser, before the switch:\n"+strings.Join(stmts, "\n"))
	return nil
}

// relationOIDs lists the relations' oids, for a query's = ANY ($1).
func relationOIDs(rels []*relation) []uint32 {
	oids := make([]uint32, len(rels))
	for i, r := range rels {
		oids[i] = r.oid
	}
	return oids
}
