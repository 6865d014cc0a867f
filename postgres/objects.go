package postgres

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// secondaryObject is an index, constraint or trigger of a migrated table.
type secondaryObject struct {
	kind, schema, table, name string
	state                     string // index: valid; constraint: validated; trigger: tgenabled (O, D, R, A)
	references                string // a foreign key's referenced table, schema.table
}

func (o secondaryObject) key() string { return o.kind + " " + o.schema + "." + o.table + " " + o.name }

func (o secondaryObject) String() string {
	return fmt.Sprintf("%s %s on %s", o.kind, pgx.Identifier{o.name}.Sanitize(), pgx.Identifier{o.schema, o.table}.Sanitize())
}

// secondaryObjects reads the indexes, constraints and triggers of the migrated tables.
func (s *switcher) secondaryObjectsOf(ctx context.Context, conn *pgx.Conn) (map[string]secondaryObject, error) {
	schemas, names := s.tableNames()
	rows, err := conn.Query(ctx, `
		WITH t AS (
		    SELECT c.oid, n.nspname, c.relname
		    FROM unnest($1::text[], $2::text[]) AS u(s, r)
		    JOIN pg_namespace n ON n.nspname = u.s JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = u.r)
		SELECT 'index', t.nspname, t.relname, i.relname, x.indisvalid::text, ''
		FROM t JOIN pg_index x ON x.indrelid = t.oid JOIN pg_class i ON i.oid = x.indexrelid
		UNION ALL
		SELECT 'constraint', t.nspname, t.relname, k.conname, k.convalidated::text,
		       coalesce((SELECT format('%s.%s', rn.nspname, rc.relname) FROM pg_class rc JOIN pg_namespace rn ON rn.oid = rc.relnamespace WHERE rc.oid = k.confrelid), '')
		FROM t JOIN pg_constraint k ON k.conrelid = t.oid
		UNION ALL
		SELECT 'trigger', t.nspname, t.relname, g.tgname, g.tgenabled::text, ''
		FROM t JOIN pg_trigger g ON g.tgrelid = t.oid AND NOT g.tgisinternal`, schemas, names)
	if err != nil {
		return nil, err
	}
	objs := map[string]secondaryObject{}
	var o secondaryObject
	_, err = pgx.ForEachRow(rows, []any{&o.kind, &o.schema, &o.table, &o.name, &o.state, &o.references}, func() error {
		objs[o.key()] = o
		return nil
	})
	return objs, err
}

func (s *switcher) tableNames() (schemas, names []string) {
	for _, r := range s.tables {
		schemas, names = append(schemas, r.schema), append(names, r.name)
	}
	return schemas, names
}

// compareObjects lists the source's secondary objects missing on the target, and the
// statements that bring the target's to the source's state: an invalid index rebuilt,
// a constraint validated, a trigger enabled (or disabled) as on the source. A foreign
// key to a table the plan does not migrate is not expected on the target.
func (s *switcher) compareObjects(ctx context.Context) (missing, fixes []string, err error) {
	src, err := s.secondaryObjectsOf(ctx, s.src)
	if err != nil {
		return nil, nil, fmt.Errorf("source: read the indexes, constraints and triggers: %w", err)
	}
	tgt, err := s.secondaryObjectsOf(ctx, s.tgt)
	if err != nil {
		return nil, nil, fmt.Errorf("target: read the indexes, constraints and triggers: %w", err)
	}
	migrated := map[string]bool{}
	for _, r := range s.tables {
		migrated[r.schema+"."+r.name] = true
	}
	keys := make([]string, 0, len(src))
	for k := range src {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		so := src[k]
		to, ok := tgt[k]
		if !ok {
			if so.references != "" && !migrated[so.references] {
				continue
			}
			missing = append(missing, so.String())
			continue
		}
		table := pgx.Identifier{so.schema, so.table}.Sanitize()
		switch {
		case so.kind == "index" && so.state == "true" && to.state != "true":
			fixes = append(fixes, "REINDEX INDEX "+pgx.Identifier{so.schema, so.name}.Sanitize())
		case so.kind == "constraint" && so.state == "true" && to.state != "true":
			fixes = append(fixes, "ALTER TABLE "+table+" VALIDATE CONSTRAINT "+pgx.Identifier{so.name}.Sanitize())
		case so.kind == "trigger" && so.state != to.state:
			fixes = append(fixes, "ALTER TABLE "+table+" "+triggerState(so.state)+" TRIGGER "+pgx.Identifier{so.name}.Sanitize())
		}
	}
	return missing, fixes, nil
}

func triggerState(tgenabled string) string {
	switch tgenabled {
	case "D":
		return "DISABLE"
	case "R":
		return "ENABLE REPLICA"
	case "A":
		return "ENABLE ALWAYS"
	}
	return "ENABLE"
}

// SecondaryObjects makes the target's indexes, constraints and triggers of the
// migrated tables match the source's.
func (s *switcher) SecondaryObjects(ctx context.Context) (string, error) {
	missing, fixes, err := s.compareObjects(ctx)
	if err != nil {
		return "", err
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("missing on the target: %s", listText(missing, 8))
	}
	for _, f := range fixes {
		if err := s.exec(ctx, "target", s.tgt, f); err != nil {
			return "", err
		}
	}
	if len(fixes) == 0 {
		return "every index valid, constraint validated and trigger as on the source", nil
	}
	return fmt.Sprintf("%d fixed: %s", len(fixes), strings.Join(fixes, "; ")), nil
}

// sequencePair is a sequence to set on the other side.
type sequencePair struct {
	schema, name string
	value        int64
}

// sequencePairs reads the sequences of the migrated tables' schemas on from, and
// checks that to has each.
func (s *switcher) sequencePairs(ctx context.Context, from, to *pgx.Conn, fromName, toName string) ([]sequencePair, error) {
	schemas := schemasOf(s.tables)
	rows, err := from.Query(ctx, `SELECT schemaname, sequencename, last_value, has_sequence_privilege(format('%I.%I', schemaname, sequencename), 'SELECT')
		FROM pg_sequences WHERE schemaname = ANY($1) ORDER BY 1, 2`, schemas)
	if err != nil {
		return nil, fmt.Errorf("%s: read the sequences: %w", fromName, err)
	}
	var pairs []sequencePair
	var names, denied []string
	var sp sequencePair
	var last *int64
	var canRead bool
	if _, err := pgx.ForEachRow(rows, []any{&sp.schema, &sp.name, &last, &canRead}, func() error {
		q := pgx.Identifier{sp.schema, sp.name}.Sanitize()
		names = append(names, q)
		switch {
		case !canRead:
			denied = append(denied, q)
		case last != nil:
			sp.value = *last
			pairs = append(pairs, sp)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("%s: read the sequences: %w", fromName, err)
	}
	if len(denied) > 0 {
		return nil, fmt.Errorf("the %s's role cannot read sequences %s: GRANT SELECT ON SEQUENCE ... to it", fromName, listText(denied, 5))
	}
	missing, err := absentOn(ctx, to, toName, names)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		// A sequence that belongs to a table the migration left out (an identity or
		// serial column of an excluded table) is not the target's business.
		rows, err := from.Query(ctx, `SELECT n, format('%I.%I', tn.nspname, t.relname)
			FROM unnest($1::text[]) n
			JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = n::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
			JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace`, missing)
		if err != nil {
			return nil, fmt.Errorf("%s: read the sequences' tables: %w", fromName, err)
		}
		owner := map[string]string{}
		var seq, table string
		if _, err := pgx.ForEachRow(rows, []any{&seq, &table}, func() error {
			owner[seq] = table
			return nil
		}); err != nil {
			return nil, fmt.Errorf("%s: read the sequences' tables: %w", fromName, err)
		}
		absent, err := absentOn(ctx, to, toName, slices.Collect(maps.Values(owner)))
		if err != nil {
			return nil, err
		}
		skip := map[string]bool{}
		for seq, table := range owner {
			skip[seq] = slices.Contains(absent, table)
		}
		missing = slices.DeleteFunc(missing, func(n string) bool { return skip[n] })
		if len(missing) > 0 {
			return nil, fmt.Errorf("sequences %s are on the %s but not on the %s: create them there", listText(missing, 5), fromName, toName)
		}
		pairs = slices.DeleteFunc(pairs, func(p sequencePair) bool { return skip[pgx.Identifier{p.schema, p.name}.Sanitize()] })
	}
	return pairs, nil
}

// absentOn returns the relations of names (schema-qualified) that conn has not.
func absentOn(ctx context.Context, conn *pgx.Conn, side string, names []string) ([]string, error) {
	var absent []string
	if err := conn.QueryRow(ctx, "SELECT coalesce(array_agg(n), '{}') FROM unnest($1::text[]) n WHERE to_regclass(n) IS NULL", names).Scan(&absent); err != nil {
		return nil, fmt.Errorf("%s: look up %s: %w", side, listText(names, 5), err)
	}
	return absent, nil
}

// schemasOf lists the schemas of tables, each once, in their first table's order.
func schemasOf(tables []*relation) []string {
	var schemas []string
	for _, r := range tables {
		if !slices.Contains(schemas, r.schema) {
			schemas = append(schemas, r.schema)
		}
	}
	return schemas
}

// syncSequences sets every sequence on to from its value on from, plus the headroom
// (within the sequence's bounds, in its direction).
func (s *switcher) syncSequences(from, to *pgx.Conn, fromName, toName string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		pairs, err := s.sequencePairs(ctx, from, to, fromName, toName)
		if err != nil {
			return "", err
		}
		if len(pairs) == 0 {
			return "no sequence was used", nil
		}
		var schemas, names []string
		var values []int64
		for _, p := range pairs {
			schemas, names, values = append(schemas, p.schema), append(names, p.name), append(values, p.value)
		}
		sql := `SELECT count(setval(format('%I.%I', u.s, u.n)::regclass,
		        greatest(q.min_value, least(q.max_value, u.v + $4 * sign(q.increment_by)::bigint)), true))
		    FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(s, n, v)
		    JOIN pg_sequences q ON q.schemaname = u.s AND q.sequencename = u.n`
		if err := s.exec(ctx, toName, to, sql, schemas, names, values, s.p.Cutover.SequenceHeadroom); err != nil {
			return "", err
		}
		return fmt.Sprintf("%d sequences set on the %s (headroom %d)", len(pairs), toName, s.p.Cutover.SequenceHeadroom), nil
	}
}
