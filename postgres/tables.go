package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/internal/humanize"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/validate"
	"github.com/jackc/pgx/v5"
)

// loadTables reads every user table on the source and picks the ones the plan includes.
func (a *assessment) loadTables(ctx context.Context) error {
	var all []*relation
	var err error
	if a.opts.relations != nil {
		all, err = a.opts.relations(ctx)
	}
	if a.opts.relations == nil || err != nil {
		// Listed here: by a plain assessment, or when the load's own listing failed
		// (this one then says why, if it fails too).
		if all, err = listRelations(ctx, a.src.conn); err != nil {
			return err
		}
	}
	a.all = all
	var inControl []string
	a.tables, inControl = selectTables(all, a.plan)
	if len(inControl) > 0 {
		a.add(check.Error, "control_schema", "schema "+a.plan.ControlSchema,
			fmt.Sprintf("the source has a schema named %s, the plan's control_schema, so its tables (%s) would not be migrated", a.plan.ControlSchema, listText(inControl, 5)),
			"set control_schema in the plan to a name the source does not use, for example cutover_ctl")
	}
	return nil
}

// includedPatterns reports include patterns that name nothing.
func (a *assessment) includedPatterns(ctx context.Context) error {
	for _, p := range a.plan.Tables.Include {
		var partitionOf string
		matched := false
		for _, r := range a.all {
			if p.Match(r.schema, r.name) {
				if !r.isPartition {
					matched = true
					break
				}
				partitionOf = r.rootName
			}
		}
		switch {
		case matched:
		case partitionOf != "" && p.Exact():
			a.add(check.Error, "missing_table", "table "+p.String(),
				fmt.Sprintf("%s is a partition of %s: a partition is migrated with its partitioned table", p.String(), partitionOf),
				fmt.Sprintf("include %s in tables.include instead", partitionOf))
		case p.Exact():
			a.add(check.Error, "missing_table", "table "+p.String(),
				fmt.Sprintf("tables.include names %s, which does not exist on the source (names are case-sensitive when double-quoted, lower case otherwise)", p.String()),
				"correct the name, or remove it from tables.include")
		default:
			a.add(check.Warning, "missing_table", "pattern "+p.String(),
				fmt.Sprintf("tables.include pattern %s matches no table on the source", p.String()),
				"correct the pattern, or remove it from tables.include")
		}
	}
	if len(a.tables) == 0 {
		a.add(check.Error, "missing_table", "tables",
			"no table on the source matches tables.include (less tables.exclude): there is nothing to migrate",
			"list the tables to migrate in tables.include, for example \"public.*\"")
	}
	return nil
}

// tablePrivileges reports included tables the source role cannot read, one finding per schema.
func (a *assessment) tablePrivileges(ctx context.Context) error {
	if a.src.super {
		return nil
	}
	bySchema := map[string][]*relation{}
	var schemas []string
	for _, r := range a.tables {
		if r.kind == "f" || (r.canSelect && r.schemaUsage) {
			continue
		}
		if bySchema[r.schema] == nil {
			schemas = append(schemas, r.schema)
		}
		bySchema[r.schema] = append(bySchema[r.schema], r)
	}
	role := a.ident(a.src.user)
	for _, s := range schemas {
		list := bySchema[s]
		var names, fixes []string
		for _, r := range list {
			names = append(names, r.qname)
		}
		if !list[0].schemaUsage {
			fixes = append(fixes, fmt.Sprintf("GRANT USAGE ON SCHEMA %s TO %s;", a.ident(s), role))
		}
		fixes = append(fixes, fmt.Sprintf("GRANT SELECT ON %s TO %s;", strings.Join(names, ", "), role))
		object := list[0].object()
		if len(list) > 1 {
			object = fmt.Sprintf("schema %s (%d tables)", a.ident(s), len(list))
		}
		a.add(check.Error, "select_privilege", object,
			fmt.Sprintf("role %s cannot read %s, so the full load cannot copy it", a.src.user, listText(names, 10)),
			strings.Join(fixes, "\n"))
	}
	return nil
}

// publicationOwnership: CREATE PUBLICATION ... FOR TABLE (and ALTER TABLE ... REPLICA
// IDENTITY) need the privileges of each table's owner.
func (a *assessment) publicationOwnership(ctx context.Context) error {
	if a.src.super {
		return nil
	}
	byOwner := map[string][]string{}
	var owners []string
	for _, r := range a.tables {
		if r.isPartition || r.kind == "f" || r.owned {
			continue
		}
		if byOwner[r.owner] == nil {
			owners = append(owners, r.owner)
		}
		byOwner[r.owner] = append(byOwner[r.owner], r.qname)
	}
	for _, o := range owners {
		a.add(check.Error, "publication_privilege", "role "+a.src.user,
			fmt.Sprintf("role %s does not have the privileges of role %s, which owns %s: the publication the change stream reads from can only list tables whose owner's privileges the migration role has",
				a.src.user, o, listText(byOwner[o], 10)),
			fmt.Sprintf("GRANT %s TO %s;", a.ident(o), a.ident(a.src.user)))
	}
	return nil
}

// replicaIdentity reports tables whose UPDATE and DELETE logical decoding cannot capture,
// and says what the plan's cdc.no_identity policy will do with them.
func (a *assessment) replicaIdentity(ctx context.Context) error {
	policy := a.plan.CDC.NoIdentity
	for _, r := range a.tables {
		if r.kind != "r" || r.persistence == "u" {
			continue
		}
		var problem string
		switch {
		case r.replident == "n":
			problem = "REPLICA IDENTITY NOTHING"
		case r.replident == "d" && r.pkName == "", r.replident == "i" && !r.identityIndex:
			problem = "no primary key and no replica identity index"
		case r.replident != "f" && r.identityGenerated != "":
			problem = fmt.Sprintf("its replica identity (%s) has the generated column(s) %s, which logical decoding does not send: the rest of the key does not identify a row",
				map[string]string{"d": "the primary key " + r.pkName, "i": "the replica identity index"}[r.replident], r.identityGenerated)
		case r.replident == "f" && r.pkName == "":
			a.add(check.Info, "replica_identity", r.object(),
				"REPLICA IDENTITY FULL without a primary key: updates and deletes are matched on every column, which is slow to apply on a large table",
				"")
			continue
		default:
			continue
		}
		if r.isPartition {
			problem += fmt.Sprintf(" (partition of %s)", r.rootName)
		}
		if r.identityGenerated != "" {
			problem += ": cutover cannot find the target row of its UPDATEs and DELETEs."
		} else {
			problem += ": logical decoding cannot capture its UPDATEs and DELETEs, and once the table is in a publication the application's UPDATE and DELETE on it fail on the source."
		}
		sev := check.Warning
		switch policy {
		case plan.NoIdentityError:
			sev = check.Error
			problem += " With cdc.no_identity: error (the default) cutover start refuses to begin until it is fixed."
		case plan.NoIdentityFull:
			problem += " With cdc.no_identity: replica_identity_full, cutover start will run ALTER TABLE " + r.qname + " REPLICA IDENTITY FULL on the source (more WAL per change; updates and deletes matched on every column)."
		case plan.NoIdentityInsertsOnly:
			problem += " With cdc.no_identity: inserts_only, only its inserts are replicated: its updates and deletes after the full load do not reach the target."
		case plan.NoIdentityExclude:
			problem += " With cdc.no_identity: exclude, it is not migrated at all."
		}
		a.add(sev, "replica_identity", r.object(), problem, identityFix(r))
	}
	return nil
}

func identityFix(r *relation) string {
	var fix string
	switch {
	case r.identityGenerated != "" && r.uniqueIndex != "":
		fix = fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY USING INDEX %s;  -- a unique index on NOT NULL columns, none generated", r.qname, r.uniqueIndex)
	case r.identityGenerated != "":
		fix = fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY FULL;", r.qname)
	case r.pkName != "":
		fix = fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY DEFAULT;  -- uses its primary key %s", r.qname, r.pkName)
	case r.siblingKey != "":
		fix = fmt.Sprintf("ALTER TABLE %s ADD PRIMARY KEY (%s);  -- the key its sibling partitions have", r.qname, r.siblingKey)
	case r.uniqueIndex != "":
		fix = fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY USING INDEX %s;  -- a unique index on NOT NULL columns", r.qname, r.uniqueIndex)
	default:
		fix = fmt.Sprintf("ALTER TABLE %s ADD PRIMARY KEY (...);  or  ALTER TABLE %s REPLICA IDENTITY FULL;", r.qname, r.qname)
	}
	return fix + "\nor choose what CDC does with such tables: cdc.no_identity: replica_identity_full | inserts_only | exclude"
}

func (a *assessment) unloggedAndForeign(ctx context.Context) error {
	for _, r := range a.tables {
		switch {
		case r.persistence == "u":
			a.add(check.Error, "unlogged_table", r.object(),
				"UNLOGGED: its changes are not written to the WAL, so CDC cannot capture them (and it cannot join a publication)",
				fmt.Sprintf("ALTER TABLE %s SET LOGGED;  or leave it out: tables.exclude: [%q]", r.qname, r.qname))
		case r.kind == "f":
			a.add(check.Warning, "foreign_table", r.object(),
				"foreign table: its rows live on another server; cutover neither copies nor replicates them",
				fmt.Sprintf("leave it out (tables.exclude: [%q]) and recreate the foreign server and table on the target", r.qname))
		}
	}
	return nil
}

// pgType is a row of pg_type, enough to resolve arrays and domains to their base type.
type pgType struct {
	name, schema, typtype, category, extension string
	elem, base                                 uint32
}

// columnTypes reports columns whose values cutover cannot carry, or carries without meaning.
func (a *assessment) columnTypes(ctx context.Context) error {
	types, err := loadTypes(ctx, a.src.conn)
	if err != nil {
		return err
	}
	var oids []uint32
	names := map[uint32]string{}
	for _, r := range a.tables {
		if !r.isPartition {
			oids = append(oids, r.oid)
			names[r.oid] = r.qname
		}
	}
	rows, err := a.src.conn.Query(ctx, `
		SELECT attrelid, quote_ident(attname), format_type(atttypid, atttypmod), atttypid
		FROM pg_attribute WHERE attrelid = ANY ($1) AND attnum > 0 AND NOT attisdropped
		ORDER BY attrelid, attnum`, oids)
	if err != nil {
		return err
	}
	defer rows.Close()
	a.extColumns = map[string][]string{}
	for rows.Next() {
		var rel, typ uint32
		var col, typeName string
		if err := rows.Scan(&rel, &col, &typeName, &typ); err != nil {
			return err
		}
		column := names[rel] + "." + col
		base, ext := resolveType(types, typ)
		if ext != "" {
			a.extColumns[ext] = append(a.extColumns[ext], column)
		}
		if base == nil {
			continue
		}
		if base.schema != "pg_catalog" {
			continue
		}
		object := "column " + column
		switch base.name {
		case "money":
			a.moneyColumns = append(a.moneyColumns, column)
		case "xid", "xid8", "cid", "tid", "txid_snapshot", "pg_snapshot", "pg_lsn":
			a.add(check.Warning, "column_type", object,
				fmt.Sprintf("type %s holds transaction, tuple or WAL positions of the source server: the values are copied as they are but mean nothing on the target", typeName),
				"make sure nothing on the target relies on them, or leave the column out of the migration")
		case "oid":
			a.add(check.Warning, "column_type", object,
				fmt.Sprintf("type %s: object identifiers (large objects, catalog rows) differ on the target, so copied values point at nothing there", typeName),
				"if it references large objects, copy those too (see the large_objects check); otherwise make sure nothing relies on the values")
		case "regproc", "regprocedure", "regoper", "regoperator", "regclass", "regtype", "regrole", "regnamespace", "regconfig", "regdictionary", "regcollation":
			a.add(check.Warning, "column_type", object,
				fmt.Sprintf("type %s is stored as an OID and copied by name: every object it names must exist on the target under the same name", typeName),
				"create those objects on the target before the full load (roles for regrole)")
		case "aclitem":
			a.add(check.Warning, "column_type", object,
				fmt.Sprintf("type %s names roles: they must exist on the target", typeName), "create the roles on the target first")
		case "unknown":
			a.add(check.Error, "column_type", object, "type unknown cannot be copied", fmt.Sprintf("ALTER TABLE ... ALTER COLUMN %s TYPE text;", col))
		default:
			if base.typtype == "p" {
				a.add(check.Error, "column_type", object, fmt.Sprintf("pseudo-type %s cannot be copied", typeName), "change the column to a real type")
			}
		}
	}
	return rows.Err()
}

func loadTypes(ctx context.Context, conn *pgx.Conn) (map[uint32]*pgType, error) {
	rows, err := conn.Query(ctx, `
		SELECT t.oid, t.typname, t.typnamespace::regnamespace::text, t.typtype::text, t.typcategory::text,
		       t.typelem, t.typbasetype,
		       coalesce((SELECT e.extname FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
		                 WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e'
		                   AND d.refclassid = 'pg_extension'::regclass LIMIT 1), '')
		FROM pg_type t`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	types := map[uint32]*pgType{}
	for rows.Next() {
		var oid uint32
		t := &pgType{}
		if err := rows.Scan(&oid, &t.name, &t.schema, &t.typtype, &t.category, &t.elem, &t.base, &t.extension); err != nil {
			return nil, err
		}
		types[oid] = t
	}
	return types, rows.Err()
}

// resolveType follows arrays to their element type and domains to their base type,
// and names the first extension met on the way (an extension's domain over text
// still needs the extension on the target).
func resolveType(types map[uint32]*pgType, oid uint32) (base *pgType, extension string) {
	for i := 0; i < 32; i++ {
		t := types[oid]
		if t == nil {
			return nil, extension
		}
		if extension == "" {
			extension = t.extension
		}
		switch {
		case t.typtype == "d":
			oid = t.base
		case t.category == "A" && t.elem != 0:
			oid = t.elem
		default:
			return t, extension
		}
	}
	return nil, extension
}

// sequencePrivileges: sequence values are copied to the target at the switch.
func (a *assessment) sequencePrivileges(ctx context.Context) error {
	if a.src.super {
		return nil
	}
	list := schemasOf(a.tables)
	rows, err := a.src.conn.Query(ctx, `
		SELECT format('%I.%I', n.nspname, c.relname)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'S' AND n.nspname = ANY ($1)
		  AND NOT (has_sequence_privilege(c.oid, 'SELECT') AND has_schema_privilege(n.oid, 'USAGE'))
		ORDER BY 1`, list)
	if err != nil {
		return err
	}
	denied, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if len(denied) > 0 {
		a.add(check.Warning, "sequence_privilege", "role "+a.src.user,
			fmt.Sprintf("role %s cannot read the sequences %s: their values are copied to the target at the switch", a.src.user, listText(denied, 10)),
			fmt.Sprintf("GRANT SELECT ON SEQUENCE %s TO %s;", strings.Join(denied, ", "), a.ident(a.src.user)))
	}
	return nil
}

func (a *assessment) summary(ctx context.Context) error {
	var tables, partitions int
	var rows float64
	var size int64
	for _, r := range a.tables {
		if r.isPartition {
			partitions++
		} else {
			tables++
		}
		if r.kind != "p" {
			rows += r.rows
		}
		size += r.bytes
	}
	text := fmt.Sprintf("%d tables", tables)
	if partitions > 0 {
		text += fmt.Sprintf(" (and %d partitions)", partitions)
	}
	a.add(check.Info, "summary", "tables", fmt.Sprintf("%s to migrate, about %.0f rows, %s on disk with indexes", text, rows, humanize.Bytes(size)), "")
	return nil
}

// extensions: every extension of the source must be available on the target.
func (a *assessment) extensions(ctx context.Context) error {
	rows, err := a.src.conn.Query(ctx, `SELECT extname, extversion FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1`)
	if err != nil {
		return err
	}
	type ext struct{ name, version string }
	srcExts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ext, error) {
		var e ext
		return e, row.Scan(&e.name, &e.version)
	})
	if err != nil {
		return err
	}
	superOnly := "false"
	if a.tgt.major() >= 13 {
		superOnly = "bool_and(v.superuser AND NOT v.trusted)"
	}
	for _, e := range srcExts {
		var available, installed, needsSuper bool
		var versions []string
		err := a.tgt.conn.QueryRow(ctx, `
			SELECT count(*) > 0, coalesce(bool_or(v.installed), false), coalesce(`+superOnly+`, false),
			       coalesce(array_agg(v.version) FILTER (WHERE v.version IS NOT NULL), '{}')
			FROM pg_available_extension_versions v WHERE v.name = $1`, e.name).Scan(&available, &installed, &needsSuper, &versions)
		if err != nil {
			return err
		}
		object := "extension " + e.name
		used := ""
		if cols := a.extColumns[e.name]; len(cols) > 0 {
			used = fmt.Sprintf("; columns using its types: %s", listText(cols, 10))
		}
		switch {
		case !available:
			a.add(check.Error, "extension", object,
				fmt.Sprintf("extension %s %s is installed on the source but not available on the target%s", e.name, e.version, used),
				fmt.Sprintf("install it on the target server (Debian/Ubuntu: the postgresql-%d-%s package, or the vendor's way); cutover then creates it", a.tgt.major(), e.name))
		case !installed && needsSuper && !a.tgt.super:
			a.add(check.Error, "extension", object,
				fmt.Sprintf("extension %s is not trusted, so role %s cannot create it on the target", e.name, a.tgt.user),
				fmt.Sprintf("as a superuser on the target: CREATE EXTENSION %s;", a.ident(e.name)))
		case !slices.Contains(versions, e.version):
			a.add(check.Warning, "extension", object,
				fmt.Sprintf("the source uses extension %s version %s; the target offers %s", e.name, e.version, strings.Join(versions, ", ")),
				fmt.Sprintf("install version %s on the target, or check that its objects behave the same in the target's version", e.version))
		}
	}
	if len(a.moneyColumns) > 0 && a.src.settings["lc_monetary"] != a.tgt.settings["lc_monetary"] {
		a.add(check.Error, "column_type", "column "+a.moneyColumns[0],
			fmt.Sprintf("money columns (%s) are read and written in lc_monetary's format, which differs (source %s, target %s)",
				listText(a.moneyColumns, 5), a.src.settings["lc_monetary"], a.tgt.settings["lc_monetary"]),
			fmt.Sprintf("ALTER DATABASE %s SET lc_monetary = '%s';  on the target", a.ident(a.tgt.database), a.src.settings["lc_monetary"]))
	}
	return nil
}

// targetTables: included tables that already exist on the target, above all with rows.
func (a *assessment) targetTables(ctx context.Context) error {
	var schemas, names []string
	for _, r := range a.tables {
		schemas, names = append(schemas, r.schema), append(names, r.name)
	}
	rows, err := a.tgt.conn.Query(ctx, `
		SELECT format('%I.%I', w.s, w.t), c.relkind::text
		FROM unnest($1::text[], $2::text[]) AS w(s, t)
		JOIN pg_namespace n ON n.nspname = w.s
		JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.t
		ORDER BY 1`, schemas, names)
	if err != nil {
		return err
	}
	type existing struct{ qname, kind string }
	found, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (existing, error) {
		var e existing
		return e, row.Scan(&e.qname, &e.kind)
	})
	if err != nil {
		return err
	}
	for _, e := range found {
		object := "table " + e.qname + " (target)"
		if e.kind != "r" && e.kind != "p" {
			a.add(check.Error, "target_table", object,
				fmt.Sprintf("the target already has a %s named %s, so the table cannot be created", relkindName(e.kind), e.qname),
				fmt.Sprintf("drop or rename it on the target (DROP %s %s;)", strings.ToUpper(relkindName(e.kind)), e.qname))
			continue
		}
		var hasRows bool
		// qname comes from format('%I.%I'), so it is quoted for SQL.
		if err := a.tgt.conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+e.qname+")").Scan(&hasRows); err != nil {
			a.add(check.Warning, "target_table", object, fmt.Sprintf("exists on the target and cannot be read to see whether it holds rows: %v", err),
				fmt.Sprintf("GRANT SELECT ON %s TO %s;  on the target", e.qname, a.ident(a.tgt.user)))
			continue
		}
		if hasRows {
			a.add(check.Error, "target_table", object,
				"already exists on the target and holds rows: the full load would mix the source's rows with them",
				fmt.Sprintf("TRUNCATE %s;  or DROP TABLE %s;  on the target (or point target.url at an empty database)", e.qname, e.qname))
		} else {
			a.add(check.Error, "target_table", object,
				"already exists on the target (empty): cutover creates the schema from the source's definition in one transaction, and would stop on it",
				fmt.Sprintf("DROP TABLE %s;  on the target (or point target.url at an empty database)", e.qname))
		}
	}
	return nil
}

func relkindName(k string) string {
	switch k {
	case "v":
		return "view"
	case "m":
		return "materialized view"
	case "S":
		return "sequence"
	case "f":
		return "foreign table"
	case "i", "I":
		return "index"
	case "c":
		return "type"
	}
	return "relation"
}

// listText lists names, eliding after max.
func listText(names []string, max int) string { return validate.ListText(names, max) }

// excludedDependencies reports the objects that will not be created on the target
// because they need a table the plan excludes, and the included tables that cannot be
// created at all for that reason.
func (a *assessment) excludedDependencies(ctx context.Context) error {
	leave, err := dependentsOfExcluded(ctx, a.src.conn, excluded(a.all, a.tables), a.tables)
	if err != nil {
		return err
	}
	for _, l := range leave {
		switch {
		case l.hidden:
		case l.blocks:
			a.add(check.Error, "excluded_dependency", l.object,
				fmt.Sprintf("it needs %s, which the plan excludes, so it cannot be created on the target", l.excluded),
				fmt.Sprintf("include %s in tables.include, or exclude %s too", l.excluded, l.object))
		default:
			a.add(check.Warning, "excluded_dependency", l.object,
				fmt.Sprintf("it needs %s, which the plan excludes, so it will not be created on the target", l.excluded),
				fmt.Sprintf("include %s in tables.include if the applications use %s; otherwise nothing to do", l.excluded, l.object))
		}
	}
	return nil
}

// roles reports the roles that own objects or hold privileges on the source and do
// not exist on the target: the load leaves those objects to the migration role.
func (a *assessment) roles(ctx context.Context) error {
	missing, err := missingRoles(ctx, a.src.conn, a.tgt.conn)
	if err != nil || len(missing) == 0 {
		return err
	}
	a.add(check.Warning, "roles", "roles "+listText(missing, 10),
		"own objects or hold privileges on the source but do not exist on the target: those objects will be owned by the migration role, without those grants",
		"create the roles on the target before cutover start: pg_dumpall --roles-only on the source lists them (CREATE ROLE ...; then their memberships)")
	return nil
}
