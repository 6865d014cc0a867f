package postgres

import (
	"context"
	"sort"

	"github.com/jackc/pgx/v5"
)

// objKey names a catalog object as pg_depend and pg_dump's table of contents do:
// the catalog it lives in and its OID there.
type objKey struct{ catalog, oid uint32 }

// leftOut is an object of the source that cannot be created on the target because it
// needs a table the plan excludes: a view reading it, a foreign key referencing it, a
// function whose SQL body names it, a rule or policy mentioning it.
type leftOut struct {
	key      objKey
	object   string // pg_identify_object's words: "view public.x", "table constraint f on public.t"
	excluded string // the excluded table it needs (the first one found)
	blocks   bool   // an included table itself needs the excluded one (inheritance, typed table)
	hidden   bool   // a view's rule, left out with its view and not reported apart
}

const (
	pgClassOID   = 1259
	pgRewriteOID = 2618
)

// dependentsOfExcluded follows pg_depend from the excluded tables to every object that
// needs one of them, directly or through another such object. Only normal dependencies
// are followed: an object attached to an excluded table (its indexes, triggers, owned
// sequences) is left out by pg_dump already, and a sequence it owns but an included
// table uses is still needed. A view's dependencies are recorded on its _RETURN rule,
// which stands here for the view; objects using a view's row type go with the view.
//
// Functions and types are kept even in schemas with no included table: a PL/pgSQL body
// records no dependencies, so leaving a function out could break a trigger only when it
// fires, after the cut over.
func dependentsOfExcluded(ctx context.Context, conn *pgx.Conn, excluded, included []*relation) ([]leftOut, error) {
	if len(excluded) == 0 {
		return nil, nil
	}
	isIncluded := map[uint32]bool{}
	for _, r := range included {
		isIncluded[r.oid] = true
	}
	reason := map[objKey]string{}
	var frontier []objKey
	for _, r := range excluded {
		k := objKey{pgClassOID, r.oid}
		reason[k] = r.qname
		frontier = append(frontier, k)
	}
	var out []leftOut
	var gone []objKey // rules standing for views, left out with them
	for len(frontier) > 0 {
		cats, oids := make([]uint32, len(frontier)), make([]uint32, len(frontier))
		for i, k := range frontier {
			cats[i], oids[i] = k.catalog, k.oid
		}
		rows, err := conn.Query(ctx, `
			WITH gone(catalog, oid) AS (SELECT * FROM unnest($1::oid[], $2::oid[])),
			     target(catalog, oid, via_catalog, via_oid) AS (
			         SELECT catalog, oid, catalog, oid FROM gone
			       UNION ALL -- a relation's row type
			         SELECT 'pg_type'::regclass::oid, c.reltype, g.catalog, g.oid
			         FROM gone g JOIN pg_class c ON g.catalog = 'pg_class'::regclass AND c.oid = g.oid AND c.reltype <> 0)
			SELECT DISTINCT ON (d.classid, d.objid) d.classid, d.objid, coalesce(v.oid, 0), t.via_catalog, t.via_oid,
			       (SELECT o.type || ' ' || o.identity FROM pg_identify_object(
			            CASE WHEN v.oid IS NULL THEN d.classid ELSE 'pg_class'::regclass END, coalesce(v.oid, d.objid), 0) o)
			FROM target t
			JOIN pg_depend d ON d.refclassid = t.catalog AND d.refobjid = t.oid AND d.deptype = 'n'
			LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid AND r.rulename = '_RETURN'
			LEFT JOIN pg_class v ON v.oid = r.ev_class
			ORDER BY d.classid, d.objid`, cats, oids)
		if err != nil {
			return nil, err
		}
		var next []objKey
		var classid, objid, view, viaCat, viaOID uint32
		var desc string
		_, err = pgx.ForEachRow(rows, []any{&classid, &objid, &view, &viaCat, &viaOID, &desc}, func() error {
			why := reason[objKey{viaCat, viaOID}]
			k := objKey{classid, objid}
			if view != 0 {
				// The view goes with its _RETURN rule; pg_dump may list the rule on its own
				// (a view in a dependency loop), so both are left out.
				if _, seen := reason[k]; !seen {
					reason[k] = why
					gone = append(gone, k)
				}
				k = objKey{pgClassOID, view}
			}
			if _, seen := reason[k]; seen {
				return nil
			}
			reason[k] = why
			if k.catalog == pgClassOID && isIncluded[k.oid] {
				out = append(out, leftOut{key: k, object: desc, excluded: why, blocks: true})
				return nil
			}
			out = append(out, leftOut{key: k, object: desc, excluded: why})
			next = append(next, k)
			return nil
		})
		if err != nil {
			return nil, err
		}
		frontier = next
	}
	sort.Slice(out, func(i, j int) bool { return out[i].object < out[j].object })
	for _, k := range gone {
		out = append(out, leftOut{key: k, excluded: reason[k], hidden: true})
	}
	return out, nil
}
