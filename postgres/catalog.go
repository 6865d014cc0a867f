package postgres

import (
	"context"

	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pgx/v5"
)

// relation is a table on the source as the catalog describes it.
type relation struct {
	oid, root     uint32
	schema, name  string
	qname         string // schema.table, each part quoted only where SQL needs it
	kind          string // r plain (or partition), p partitioned, f foreign
	persistence   string // p permanent, u unlogged
	replident     string // d default, n nothing, f full, i index
	isPartition   bool
	pkName        string
	pkColumns     string // quoted, comma-separated
	identityIndex bool   // an index is marked as the replica identity
	uniqueIndex   string // an index that could serve as replica identity
	canSelect     bool
	schemaUsage   bool
	owned         bool // the role has its owner's privileges
	owner         string
	rows          float64
	bytes         int64
	rootName      string
	siblingKey    string // for a partition without a key: the key its sibling partitions share
	// identityGenerated lists the generated columns of the replica identity's key:
	// logical decoding does not send them, so the rest does not identify a row.
	identityGenerated string
}

func (r *relation) object() string { return "table " + r.qname }

// listRelations reads every user table on the source: plain tables, partitioned tables
// and their partitions (with the root they belong to), foreign tables. System schemas,
// extension-owned tables and temporary tables are left out.
func listRelations(ctx context.Context, conn *pgx.Conn) ([]*relation, error) {
	rows, err := conn.Query(ctx, `
		WITH RECURSIVE rel(oid, root) AS (
		    SELECT c.oid, c.oid
		    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		    WHERE c.relkind IN ('r', 'p', 'f') AND NOT c.relispartition AND c.relpersistence <> 't'
		      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		      AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
		      AND NOT EXISTS (SELECT 1 FROM pg_depend d
		                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
		  UNION ALL
		    SELECT i.inhrelid, rel.root
		    FROM pg_inherits i JOIN rel ON i.inhparent = rel.oid JOIN pg_class c ON c.oid = i.inhrelid
		    WHERE c.relispartition
		)
		SELECT c.oid, rel.root, n.nspname, c.relname, format('%I.%I', n.nspname, c.relname),
		       c.relkind::text, c.relpersistence::text, c.relreplident::text, c.relispartition,
		       coalesce((SELECT conname FROM pg_constraint WHERE conrelid = c.oid AND contype = 'p'), ''),
		       EXISTS (SELECT 1 FROM pg_index WHERE indrelid = c.oid AND indisreplident),
		       coalesce((SELECT quote_ident(ic.relname)
		                 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
		                 WHERE i.indrelid = c.oid AND i.indisunique AND i.indimmediate AND i.indisvalid
		                   AND i.indpred IS NULL AND i.indexprs IS NULL
		                   AND NOT EXISTS (SELECT 1 FROM pg_attribute a
		                                   WHERE a.attrelid = c.oid AND a.attnum = ANY (i.indkey)
		                                     AND (NOT a.attnotnull OR a.attgenerated <> ''))
		                 ORDER BY i.indnatts, ic.relname LIMIT 1), ''),
		       has_table_privilege(c.oid, 'SELECT'), has_schema_privilege(n.oid, 'USAGE'),
		       pg_has_role(c.relowner, 'USAGE'), pg_get_userbyid(c.relowner),
		       greatest(c.reltuples, pg_stat_get_live_tuples(c.oid), 0)::float8, coalesce(pg_total_relation_size(c.oid), 0),
		       coalesce((SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord)
		                 FROM pg_constraint con, unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
		                 JOIN pg_attribute a ON a.attnum = k.attnum
		                 WHERE con.conrelid = c.oid AND con.contype = 'p' AND a.attrelid = c.oid), ''),
		       coalesce((SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
		                 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
		                 WHERE i.indrelid = c.oid AND a.attgenerated <> ''
		                   AND ((c.relreplident = 'd' AND i.indisprimary) OR (c.relreplident = 'i' AND i.indisreplident))), '')
		FROM rel JOIN pg_class c ON c.oid = rel.oid JOIN pg_namespace n ON n.oid = c.relnamespace
		ORDER BY n.nspname, c.relname`)
	if err != nil {
		return nil, err
	}
	all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*relation, error) {
		r := &relation{}
		err := row.Scan(&r.oid, &r.root, &r.schema, &r.name, &r.qname, &r.kind, &r.persistence, &r.replident,
			&r.isPartition, &r.pkName, &r.identityIndex, &r.uniqueIndex, &r.canSelect, &r.schemaUsage,
			&r.owned, &r.owner, &r.rows, &r.bytes, &r.pkColumns, &r.identityGenerated)
		return r, err
	})
	if err != nil {
		return nil, err
	}
	byOID := map[uint32]*relation{}
	keys := map[uint32]map[string]bool{} // root -> the primary keys of its partitions
	for _, r := range all {
		byOID[r.oid] = r
		if r.isPartition && r.pkColumns != "" {
			if keys[r.root] == nil {
				keys[r.root] = map[string]bool{}
			}
			keys[r.root][r.pkColumns] = true
		}
	}
	for _, r := range all {
		if !r.isPartition {
			continue
		}
		r.rootName = byOID[r.root].qname
		if k := keys[r.root]; len(k) == 1 {
			for cols := range k {
				r.siblingKey = cols
			}
		}
	}
	return all, nil
}

// selectTables picks the relations the plan migrates: included roots and plain tables
// with every partition of an included root. Tables in a schema named like the control
// schema are never migrated; they are returned so the caller can say so.
func selectTables(all []*relation, p *plan.Plan) (included []*relation, inControl []string) {
	in := map[uint32]bool{}
	for _, r := range all {
		if r.isPartition {
			continue
		}
		if r.schema == p.ControlSchema {
			inControl = append(inControl, r.qname)
			continue
		}
		in[r.oid] = p.Tables.Includes(r.schema, r.name)
	}
	for _, r := range all {
		if in[r.root] {
			included = append(included, r)
		}
	}
	return included, inControl
}
