package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ddlOptions is what the applier needs to replay the source's schema changes.
type ddlOptions struct {
	plan *plan.Plan
	say  func(string)
	// byHand is the position of a source transaction whose schema change the operator
	// made on the target by hand (cutover start --schema-applied): it is not replayed.
	byHand string
	src    *pgx.Conn // to the source, for the tables created during CDC; opened on first use
	// captured: the source's schema changes come down the stream (the slot's event
	// triggers exist). Without them a column the source adds is added from the
	// stream's description of the table (addedColumns).
	captured bool
}

// migratedTables reads the tables the applier applies to, and those created during
// CDC with the position their definition and rows were copied at.
func (a *applier) migratedTables(ctx context.Context, conn *pgx.Conn) error {
	a.migrated, a.rowsFrom, a.definedAt, a.sourceOIDs = map[[2]string]bool{}, map[[2]string]pglogrepl.LSN{}, map[[2]string]pglogrepl.LSN{}, map[uint32][2]string{}
	a.pending, a.pendingRetry = map[[2]string]bool{}, map[[2]string]time.Time{}
	rows, err := conn.Query(ctx, "SELECT schema_name, table_name, state, defined_at, coalesce(source_oid, 0), copy_pending FROM "+a.control+".table_stats")
	if err != nil {
		return err
	}
	var k [2]string
	var state, defined string
	var oid uint32
	var pending bool
	_, err = pgx.ForEachRow(rows, []any{&k[0], &k[1], &state, &defined, &oid, &pending}, func() error {
		if pending {
			a.pending[k] = true
		}
		if state != control.TableExcluded {
			a.migrated[k] = true
		}
		if oid != 0 {
			a.sourceOIDs[oid] = k
		}
		if defined != "" {
			lsn, err := pglogrepl.ParseLSN(defined)
			if err != nil {
				return fmt.Errorf("table %s.%s: position %q: %w", k[0], k[1], defined, err)
			}
			a.definedAt[k] = lsn
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The partitioned tables above the migrated partitions, as the target names them.
	a.roots = map[[2]string]bool{}
	roots, err := conn.Query(ctx, `SELECT DISTINCT n.nspname, c.relname FROM `+a.control+`.table_stats t,
		pg_partition_ancestors(to_regclass(format('%I.%I', t.schema_name, t.table_name))) r(relid)
		JOIN pg_class c ON c.oid = r.relid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'p'`)
	if err != nil {
		return err
	}
	_, err = pgx.ForEachRow(roots, []any{&k[0], &k[1]}, func() error { a.roots[k] = true; return nil })
	return err
}

// migratedSchema says whether a schema holds a migrated table: its other objects
// (views, functions, types, sequences) are replayed too.
func (a *applier) migratedSchema(schema string) bool {
	for k := range a.migrated {
		if k[0] == schema {
			return true
		}
	}
	return false
}

// ddlRelevant picks the objects of a schema change that concern the migration: those
// of a migrated table, the objects in a schema with migrated tables, and the tables
// the plan includes that the change creates. A table copied during CDC at a later
// position than the change has it in its copy already.
func (a *applier) ddlRelevant(sc *cdc.SchemaChange) (relevant, created []cdc.SchemaObject) {
	createsTable := sc.Tag == "CREATE TABLE" || sc.Tag == "CREATE TABLE AS" || sc.Tag == "SELECT INTO" || sc.Tag == "CREATE FOREIGN TABLE"
	for _, o := range sc.Objects {
		if o.Schema == "" || o.Schema == a.ddl.plan.ControlSchema || strings.HasPrefix(o.Schema, "pg_temp") {
			continue
		}
		if o.Table == "" {
			if a.migratedSchema(o.Schema) {
				relevant = append(relevant, o)
			}
			continue
		}
		k := [2]string{o.Schema, o.Table}
		if named, ok := a.sourceOIDs[o.TableID]; ok && o.TableID != 0 {
			k = named // the table as the target knows it: a rename is replayed by its old name
		}
		if at, ok := a.definedAt[k]; ok && a.txnLSN < at {
			continue
		}
		switch {
		case a.migrated[k]:
			relevant = append(relevant, o)
		case a.roots[k]:
			relevant = append(relevant, o) // a partitioned table: its partitions are migrated
		case createsTable && !o.Dropped && o.Name != "" && o.Root != [2]string{} && a.roots[o.Root]:
			created = append(created, o) // a new partition of a migrated partitioned table
		case a.suspended[k]:
			// Excluded: its schema changes are not replayed either.
		case slices.ContainsFunc(created, func(c cdc.SchemaObject) bool { return c.Schema == o.Schema && c.Table == o.Table }):
			// One table, several commands (its constraints are ALTER TABLE commands of it).
		case createsTable && !o.Dropped && o.Name != "" && a.ddl.plan.Tables.Includes(o.Schema, o.Table):
			created = append(created, o)
		}
	}
	return relevant, created
}

// schemaChange replays a schema change of the source on the target, in the open
// target transaction, after the changes before it.
func (a *applier) schemaChange(ctx context.Context, sc *cdc.SchemaChange, pos string) error {
	m, ok := sc.Detail.(*ddlMessage)
	if !ok {
		return fmt.Errorf("schema change at %s: not one of PostgreSQL's (%T)", pos, sc.Detail)
	}
	if m.Error != nil && pos != a.ddl.byHand {
		return a.ddlStop(sc, pos, "the source's event trigger could not describe it ("+*m.Error+")")
	}
	relevant, created := a.ddlRelevant(sc)
	if len(relevant) == 0 && len(created) == 0 {
		return nil
	}
	if pos == a.ddl.byHand {
		a.ddl.say(fmt.Sprintf("the schema change of the source transaction at %s was made on the target by hand (--schema-applied): %s", pos, oneLine(sc.Statement)))
		return a.ddlBookkeeping(ctx, nil)
	}
	if a.ddl.plan.CDC.DDL == plan.DDLStop {
		return a.ddlStop(sc, pos, "cdc.ddl is stop")
	}
	if err := a.net.drain(ctx, a, nil); err != nil {
		return err
	}
	if err := a.flush(ctx); err != nil {
		return err
	}
	if len(created) > 0 {
		for _, o := range created {
			if err := a.copyNewTable(ctx, o.Schema, o.Table, pos); err != nil {
				return err
			}
		}
		return nil
	}
	stmt, reason := statementOf(sc.Statement, sc.Tag, m.Seq)
	if reason != "" {
		return a.ddlStop(sc, pos, reason)
	}
	before, err := a.tableOIDs(ctx)
	if err != nil {
		return err
	}
	added, err := a.columnsBefore(ctx, m)
	if err != nil {
		return err
	}
	stmt = withoutConcurrently(stmt)
	if err := a.conn.Exec(ctx, "SELECT pg_catalog.set_config('search_path', "+quoteLiteral(sc.Context)+", true)").Close(); err != nil {
		return fmt.Errorf("target: set the search_path of the source's schema change: %w", err)
	}
	if accessStatement(stmt) {
		// An owner or a grant for a role the target lacks: left out and said, as the
		// full load does.
		if _, err := a.conn.Exec(ctx, "SAVEPOINT cutover_access; "+stmt+"\n; RELEASE SAVEPOINT cutover_access").ReadAll(); err != nil {
			if rerr := a.conn.Exec(ctx, "ROLLBACK TO SAVEPOINT cutover_access; RELEASE SAVEPOINT cutover_access").Close(); rerr != nil {
				return rerr
			}
			a.ddl.say(fmt.Sprintf("the source's %s of the transaction at %s is not applied on the target: %s: %v", sc.Tag, pos, oneLine(stmt), err))
		}
	} else if _, err := a.conn.Exec(ctx, stmt).ReadAll(); err != nil {
		return a.ddlStop(sc, pos, "the target refused it: "+err.Error())
	}
	if err := a.conn.Exec(ctx, "SET LOCAL search_path TO DEFAULT").Close(); err != nil {
		return err
	}
	if err := a.missingValues(ctx, m, added); err != nil {
		return a.ddlStop(sc, pos, "the values the rows before it take for the new column: "+err.Error())
	}
	a.ddl.say(fmt.Sprintf("schema change of the source transaction at %s replayed on the target: %s", pos, oneLine(stmt)))
	if err := a.ddlBookkeeping(ctx, before); err != nil {
		return err
	}
	// Copied again: the tables the source rewrote, and those whose rows were copied
	// at a position after this change (their copy has the rows of the schema then).
	again := map[[2]string]string{}
	for _, k := range m.Rewritten {
		if a.migrated[k] {
			again[k] = "the source rewrote it, and the values the rewrite computed are not in the change stream"
		}
	}
	for _, o := range relevant {
		k := [2]string{o.Schema, o.Table}
		if at, ok := a.rowsFrom[k]; ok && a.txnLSN < at && a.migrated[k] && a.definedAt[k] == 0 {
			again[k] = "its rows were copied again at a later position, with the schema of then"
		}
		if a.pending[k] {
			again[k] = "it waits to be copied again"
		}
	}
	for k, why := range again {
		if err := a.pendCopy(ctx, k, pos, why); err != nil {
			return err
		}
	}
	return nil
}

// statementOf finds, in the client's query string, the statement that made the
// seq-th schema change of it, and checks that it is one of the kind the source says
// (its tag); otherwise it says why it cannot replay it. A string may hold several
// statements (psql -c "BEGIN; ...; ALTER ...; COMMIT", a migration file sent whole):
// the rows they changed come through the stream, only the schema change is replayed.
func statementOf(query, tag string, seq int) (stmt, reason string) {
	stmts := splitStatements(query)
	var ddl []string
	for _, s := range stmts {
		if firesEventTriggers(s) {
			ddl = append(ddl, s)
		}
	}
	if seq < 1 {
		seq = 1
	}
	switch {
	case len(stmts) == 0:
		return "", "the source did not say which statement made it"
	case seq > len(ddl):
		return "", fmt.Sprintf("it was made inside another statement (%s ...): a function, a procedure or a DO block", strings.Join(words(stmts[0], 2), " "))
	}
	stmt = ddl[seq-1]
	if !tagMatches(stmt, tag) {
		return "", fmt.Sprintf("it was made inside another statement (%s ...): a function, a procedure or a DO block", strings.Join(words(stmt, 2), " "))
	}
	return stmt, ""
}

// firesEventTriggers says whether a statement is one that fires ddl_command_end:
// schema changes of objects in a database, not of roles, databases, tablespaces,
// settings or event triggers, and not GRANT of a role.
func firesEventTriggers(stmt string) bool {
	w := words(stmt, 4)
	if len(w) < 2 {
		return false
	}
	switch w[0] {
	case "CREATE", "ALTER", "DROP":
		for _, x := range w[1:] {
			switch x {
			case "ROLE", "USER", "GROUP", "DATABASE", "TABLESPACE", "SYSTEM", "EVENT":
				return false
			}
		}
		return true
	case "GRANT", "REVOKE":
		return strings.Contains(" "+strings.Join(strings.Fields(strings.ToUpper(stripComments(stmt))), " ")+" ", " ON ")
	case "COMMENT", "SECURITY", "IMPORT", "REFRESH":
		return true
	case "SELECT":
		return strings.Contains(" "+strings.Join(strings.Fields(strings.ToUpper(stripComments(stmt))), " ")+" ", " INTO ")
	}
	return false
}

// tagMatches says whether a statement is of the kind a command tag names: each word
// of the tag among the statement's first words, in order ("CREATE INDEX" matches
// CREATE UNIQUE INDEX, "CREATE FUNCTION" CREATE OR REPLACE FUNCTION).
func tagMatches(stmt, tag string) bool {
	want := strings.Fields(strings.ToUpper(tag))
	if len(want) == 0 {
		return false
	}
	got := words(stmt, len(want)+4)
	if len(got) == 0 || got[0] != want[0] {
		return want[0] == "SELECT" && len(got) > 0 && got[0] == "SELECT"
	}
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// ddlStop stops CDC at a schema change it will not replay, with what to do.
func (a *applier) ddlStop(sc *cdc.SchemaChange, pos, reason string) error {
	return &cdc.ApplyError{Err: fmt.Errorf("the source changed its schema in the transaction at %s (%s): %s\ncutover does not replay it on the target: %s\n"+
		"fix: make the same change on the target by hand, as the migration role, then run cutover start --schema-applied %s (CDC goes on with the changes after it)",
		pos, sc.Tag, oneLine(sc.Statement), reason, pos)}
}

// tableOIDs maps the target's oid of each table in table_stats to its name there.
func (a *applier) tableOIDs(ctx context.Context) (map[uint32][2]string, error) {
	res := a.conn.ExecParams(ctx, "SELECT to_regclass(format('%I.%I', schema_name, table_name))::oid, schema_name, table_name FROM "+a.control+".table_stats",
		nil, nil, nil, nil).Read()
	if res.Err != nil {
		return nil, fmt.Errorf("target: read the migrated tables: %w", res.Err)
	}
	m := map[uint32][2]string{}
	for _, r := range res.Rows {
		if r[0] == nil {
			continue
		}
		var oid uint32
		fmt.Sscan(string(r[0]), &oid)
		m[oid] = [2]string{string(r[1]), string(r[2])}
	}
	return m, nil
}

// ddlBookkeeping brings table_stats along with a schema change the target now has:
// a table renamed (or moved to another schema) keeps its row under its new name; a
// table dropped loses its row. With before nil (a change made by hand), a table no
// longer on the target loses its row.
func (a *applier) ddlBookkeeping(ctx context.Context, before map[uint32][2]string) error {
	if before == nil {
		res := a.conn.ExecParams(ctx, "DELETE FROM "+a.control+".table_stats WHERE to_regclass(format('%I.%I', schema_name, table_name)) IS NULL RETURNING schema_name, table_name",
			nil, nil, nil, nil).Read()
		if res.Err != nil {
			return fmt.Errorf("target: record the tables dropped: %w", res.Err)
		}
		for _, r := range res.Rows {
			a.forget([2]string{string(r[0]), string(r[1])})
		}
		return nil
	}
	after, err := a.tableOIDs(ctx)
	if err != nil {
		return err
	}
	for oid, old := range before {
		now, ok := after[oid]
		if ok && now == old {
			continue
		}
		if !ok {
			res := a.conn.ExecParams(ctx, "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
				[][]byte{[]byte(fmt.Sprint(oid))}, nil, nil, nil).Read()
			if res.Err != nil {
				return fmt.Errorf("target: %w", res.Err)
			}
			if len(res.Rows) == 1 {
				now, ok = [2]string{string(res.Rows[0][0]), string(res.Rows[0][1])}, true
			}
		}
		if !ok {
			if err := a.conn.ExecParams(ctx, "DELETE FROM "+a.control+".table_stats WHERE schema_name = $1 AND table_name = $2",
				[][]byte{[]byte(old[0]), []byte(old[1])}, nil, nil, nil).Read().Err; err != nil {
				return fmt.Errorf("target: record that %s was dropped: %w", quoteQualified(old[0], old[1]), err)
			}
			a.forget(old)
			continue
		}
		if err := a.conn.ExecParams(ctx, "UPDATE "+a.control+".table_stats SET schema_name = $3, table_name = $4 WHERE schema_name = $1 AND table_name = $2",
			[][]byte{[]byte(old[0]), []byte(old[1]), []byte(now[0]), []byte(now[1])}, nil, nil, nil).Read().Err; err != nil {
			return fmt.Errorf("target: record that %s is now %s: %w", quoteQualified(old[0], old[1]), quoteQualified(now[0], now[1]), err)
		}
		a.rename(old, now)
	}
	return nil
}

// forget drops a table from the applier's maps; rename moves it.
func (a *applier) forget(k [2]string) {
	for oid, named := range a.sourceOIDs {
		if named == k {
			delete(a.sourceOIDs, oid)
		}
	}
	delete(a.migrated, k)
	delete(a.suspended, k)
	delete(a.rowsFrom, k)
	delete(a.definedAt, k)
	delete(a.pending, k)
}

func (a *applier) rename(old, now [2]string) {
	move := func(m map[[2]string]bool) {
		if v, ok := m[old]; ok {
			delete(m, old)
			m[now] = v
		}
	}
	move(a.migrated)
	move(a.suspended)
	move(a.pending)
	move(a.roots)
	for oid, named := range a.sourceOIDs {
		if named == old {
			a.sourceOIDs[oid] = now
		}
	}
	for _, m := range []map[[2]string]pglogrepl.LSN{a.rowsFrom, a.definedAt} {
		if v, ok := m[old]; ok {
			delete(m, old)
			m[now] = v
		}
	}
	// Counted under the old name in this group: the row has the new one at commit.
	if c, ok := a.counts[old]; ok {
		delete(a.counts, old)
		a.counts[now] = c
	}
	if d, ok := a.dirty[old]; ok {
		delete(a.dirty, old)
		a.dirty[now] = d
	}
}

// columnsBefore reads, for each table an ALTER TABLE gave columns with a value for
// the rows before it (attmissingval), the target's columns before the replay.
func (a *applier) columnsBefore(ctx context.Context, m *ddlMessage) (map[[2]string]map[string]bool, error) {
	out := map[[2]string]map[string]bool{}
	for _, c := range m.Commands {
		if len(c.Missing) == 0 || c.Table == nil {
			continue
		}
		k := [2]string{str(c.TableSchema), *c.Table}
		if _, ok := out[k]; ok || !a.migrated[k] {
			continue
		}
		res := a.conn.ExecParams(ctx, "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
			[][]byte{[]byte(quoteQualified(k[0], k[1]))}, nil, nil, nil).Read()
		if res.Err != nil {
			return nil, fmt.Errorf("target: read the columns of %s: %w", quoteQualified(k[0], k[1]), res.Err)
		}
		cols := map[string]bool{}
		for _, r := range res.Rows {
			cols[string(r[0])] = true
		}
		out[k] = cols
	}
	return out, nil
}

// missingValues gives the rows that were on the target before an ADD COLUMN the value
// the source's rows read for it. The source evaluated the default once, for every
// row then (a fast default: attmissingval); the target evaluated it again on replay,
// which for now(), current_user or a sequence gives another value.
func (a *applier) missingValues(ctx context.Context, m *ddlMessage, before map[[2]string]map[string]bool) error {
	for _, c := range m.Commands {
		if len(c.Missing) == 0 || c.Table == nil {
			continue
		}
		k := [2]string{str(c.TableSchema), *c.Table}
		cols, ok := before[k]
		if !ok {
			continue
		}
		q := quoteQualified(k[0], k[1])
		res := a.conn.ExecParams(ctx, "SELECT attname, attmissingval::text, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = to_regclass($1) AND atthasmissing AND NOT attisdropped",
			[][]byte{[]byte(q)}, nil, nil, nil).Read()
		if res.Err != nil {
			return res.Err
		}
		for _, r := range res.Rows {
			name, value, typ := string(r[0]), string(r[1]), string(r[2])
			want, ok := c.Missing[name]
			if cols[name] || !ok || want == value {
				continue
			}
			col := pgx.Identifier{name}.Sanitize()
			if err := a.conn.ExecParams(ctx, "UPDATE ONLY "+q+" SET "+col+" = ($1::"+typ+"[])[1]", [][]byte{[]byte(want)}, nil, nil, nil).Read().Err; err != nil {
				return fmt.Errorf("%s.%s: %w", q, col, err)
			}
		}
		delete(before, k) // one statement's columns, once
	}
	return nil
}

// copyNewTable creates a table the source created during CDC and copies its rows. The
// definition and the rows are read at a new snapshot, taken after the table joined
// the slot's publication: the table's changes committed before that snapshot are in
// the copy (they and its schema changes before it are skipped), those after are
// streamed. All of it is in the applier's open transaction, with the position of
// the transaction that created the table: a kill -9 leaves none of it, and the rerun
// does it again.
func (a *applier) copyNewTable(ctx context.Context, schema, name, pos string) error {
	p := a.ddl.plan
	k := [2]string{schema, name}
	q := quoteQualified(schema, name)
	src, err := a.sourceConn(ctx)
	if err != nil {
		return err
	}
	all, err := listRelations(ctx, src)
	if err != nil {
		return fmt.Errorf("source: list the tables: %w", err)
	}
	var r *relation
	for _, x := range all {
		if x.schema == schema && x.name == name {
			r = x
		}
	}
	if r == nil {
		a.ddl.say(fmt.Sprintf("table %s, created on the source at %s, is no longer there: nothing to copy", q, pos))
		return nil
	}
	if r.published() && r.noIdentity() {
		switch p.CDC.NoIdentity {
		case plan.NoIdentityExclude:
			a.ddl.say(fmt.Sprintf("table %s, created on the source at %s, has no primary key or replica identity: left out (cdc.no_identity: exclude)", q, pos))
			return nil
		case plan.NoIdentityFull:
			if _, err := src.Exec(ctx, "ALTER TABLE "+q+" REPLICA IDENTITY FULL"); err != nil {
				return fmt.Errorf("source: ALTER TABLE %s REPLICA IDENTITY FULL (cdc.no_identity: replica_identity_full): %w", q, err)
			}
			r.replident = "f"
		case plan.NoIdentityInsertsOnly:
		default:
			return &cdc.ApplyError{Err: fmt.Errorf("table %s, created on the source in the transaction at %s, has no primary key or replica identity: its updates and deletes cannot be captured\n"+
				"fix: %s on the source, or set cdc.no_identity in the plan; then run cutover start again", q, pos, identityFix(r))}
		}
	}
	if r.published() {
		all, insertsOnly := publications(a.task)
		pub := all
		if r.noIdentity() && r.replident != "f" {
			pub = insertsOnly
		}
		var member bool
		if err := src.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid WHERE p.pubname = $1 AND pr.prrelid = $2)", pub, r.oid).Scan(&member); err != nil {
			return fmt.Errorf("source: %w", err)
		}
		if !member {
			if _, err := src.Exec(ctx, "ALTER PUBLICATION "+pgx.Identifier{pub}.Sanitize()+" ADD TABLE ONLY "+q); err != nil {
				return fmt.Errorf("source: add the table %s created during CDC to the publication %s: %w", q, pub, err)
			}
		}
	}
	var snap *tableSnapshot
	var definition []string
	for try := 0; ; try++ {
		if snap, err = a.lockedSnapshot(ctx, r.oid); err != nil {
			return err
		}
		definition, err = dumpTable(ctx, p, src, snap.Name, q)
		if err == nil {
			break
		}
		snap.Close(context.WithoutCancel(ctx))
		// A schema change of the table waiting for the snapshot's lock makes
		// pg_dump's lock wait behind it: let it through, and take another snapshot.
		if !(strings.Contains(err.Error(), "statement timeout") || strings.Contains(err.Error(), "lock timeout")) || try == 5 {
			return err
		}
	}
	defer snap.Close(context.WithoutCancel(ctx))
	for _, s := range definition {
		if !accessStatement(s) {
			if err := a.conn.Exec(ctx, s).Close(); err != nil {
				return fmt.Errorf("target: create the table %s created on the source during CDC: %s: %w", q, firstLine(s), err)
			}
			continue
		}
		// An owner or a grant to a role the target lacks: the table keeps the
		// migration role as owner, or goes without the grant, as in the full load.
		if _, err := a.conn.Exec(ctx, "SAVEPOINT cutover_access; "+s+"\n; RELEASE SAVEPOINT cutover_access").ReadAll(); err != nil {
			if rerr := a.conn.Exec(ctx, "ROLLBACK TO SAVEPOINT cutover_access; RELEASE SAVEPOINT cutover_access").Close(); rerr != nil {
				return rerr
			}
			a.ddl.say(fmt.Sprintf("table %s: not applied on the target: %s: %v", q, oneLine(s), err))
		}
	}
	if err := a.conn.Exec(ctx, "SET LOCAL search_path TO DEFAULT").Close(); err != nil {
		return err
	}
	if r.kind == "p" {
		// Rows live in its partitions, which are created (and copied) as they come.
		a.roots[k] = true
		a.ddl.say(fmt.Sprintf("partitioned table %s, created on the source at %s: created on the target", q, pos))
		return nil
	}
	var rows int64
	if r.kind == "r" {
		if rows, err = a.copyAt(ctx, snap, q); err != nil {
			return fmt.Errorf("copy the table %s created on the source during CDC: %w", q, err)
		}
	}
	lsn, err := pglogrepl.ParseLSN(snap.Position)
	if err != nil {
		return err
	}
	if err := a.conn.ExecParams(ctx, "INSERT INTO "+a.control+`.table_stats (schema_name, table_name, state, rows, started_at, finished_at, position, defined_at, source_oid)
		VALUES ($1, $2, $3, $4, now(), now(), $5, $5, $6)
		ON CONFLICT (schema_name, table_name) DO UPDATE SET state = $3, rows = $4, position = $5, defined_at = $5, source_oid = $6`,
		[][]byte{[]byte(schema), []byte(name), []byte(control.TableLoaded), itoa(rows), []byte(snap.Position), []byte(fmt.Sprint(r.oid))}, nil, nil, nil).Read().Err; err != nil {
		return fmt.Errorf("target: record the table %s: %w", q, err)
	}
	a.migrated[k], a.rowsFrom[k], a.definedAt[k], a.sourceOIDs[r.oid] = true, lsn, lsn, k
	a.ddl.say(fmt.Sprintf("table %s, created on the source at %s: created on the target and copied (%d rows) at position %s; its changes are applied from there", q, pos, rows, snap.Position))
	return nil
}

// dumpTable reads a table's definition (with its indexes, constraints, triggers,
// owner and grants) at a snapshot with pg_dump, as statements for the applier's
// transaction: session settings become local to it.
func dumpTable(ctx context.Context, p *plan.Plan, src *pgx.Conn, snapshot, qname string) ([]string, error) {
	var major int
	if err := src.QueryRow(ctx, "SELECT current_setting('server_version_num')::int / 10000").Scan(&major); err != nil {
		return nil, err
	}
	dir, err := toolDir(major)
	if err != nil {
		return nil, err
	}
	conn, env := libpqArgs(p.Source)
	out, err := runTool(ctx, filepath.Join(dir, "pg_dump"), env, "--dbname="+conn, "--schema-only", "--lock-wait-timeout=2s",
		"--snapshot="+snapshot, "--table="+qname)
	if err != nil {
		return nil, err
	}
	// psql meta-commands (\restrict, since the 2025 minor releases) are not SQL.
	var sql strings.Builder
	for _, l := range strings.SplitAfter(string(out), "\n") {
		if !strings.HasPrefix(l, "\\") {
			sql.WriteString(l)
		}
	}
	var stmts []string
	for _, s := range splitStatements(sql.String()) {
		w := words(s, 2)
		switch {
		case len(w) == 0:
			continue
		case w[0] == "SET":
			s = "SET LOCAL" + stripComments(s)[3:]
		case strings.HasPrefix(strings.ToUpper(stripComments(s)), "SELECT PG_CATALOG.SET_CONFIG("):
			s = strings.Replace(s, "false)", "true)", 1)
		}
		stmts = append(stmts, s)
	}
	// A new partition is attached once its own indexes and constraints are built:
	// the attach then adopts them (as the partitioned table's indexes need), where
	// attaching it first would create them and make pg_dump's fail as duplicates.
	var own, attachTable, attachIndex []string
	for _, s := range stmts {
		w, text := words(s, 2), strings.ToUpper(strings.Join(strings.Fields(stripComments(s)), " "))
		switch {
		case len(w) == 2 && w[0] == "ALTER" && w[1] == "TABLE" && strings.Contains(text, " ATTACH PARTITION "):
			attachTable = append(attachTable, s)
		case len(w) == 2 && w[0] == "ALTER" && w[1] == "INDEX" && strings.Contains(text, " ATTACH PARTITION "):
			attachIndex = append(attachIndex, s)
		default:
			own = append(own, s)
		}
	}
	return append(append(own, attachTable...), attachIndex...), nil
}

// accessStatement: a statement of pg_dump's that gives an owner or a grant.
func accessStatement(s string) bool {
	w := words(s, 1)
	if len(w) == 0 {
		return false
	}
	return w[0] == "GRANT" || w[0] == "REVOKE" || (w[0] == "ALTER" && strings.Contains(strings.ToUpper(stripComments(s)), " OWNER TO "))
}

// tableSnapshot is a snapshot of the source taken for one table, held open with the
// table locked (ACCESS SHARE, as pg_dump does) so that its definition cannot change
// while it is read: the definition in the snapshot is then also the catalog's, by
// which the statements that read it resolve its names.
type tableSnapshot struct {
	*Snapshot
	conn *pgx.Conn
	tx   pgx.Tx
	from string   // the table's name at the snapshot, quoted
	cols []string // its columns (not generated ones), name then type, in order
}

// Close ends what the snapshot holds, however far lockedSnapshot got.
func (s *tableSnapshot) Close(ctx context.Context) {
	if s.tx != nil {
		s.tx.Rollback(ctx)
	}
	if s.conn != nil {
		s.conn.Close(ctx)
	}
	s.Snapshot.Close(ctx)
}

// columnText describes a column of pg_attribute by name, type and nullability: a
// table's columns that COPY moves (not generated ones) are compared between the
// source and the target by it.
const columnText = `attname::text || ' ' || format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' NOT NULL' ELSE '' END`

// copiedColumns restricts pg_attribute to the columns COPY moves.
const copiedColumns = `attnum > 0 AND NOT attisdropped AND attgenerated = ''`

// tableColumns lists a table's columns that COPY moves, as columnText, in order.
const tableColumns = `SELECT format('%I.%I', n.nspname, c.relname),
	       coalesce((SELECT array_agg(` + columnText + ` ORDER BY attnum) FROM pg_attribute WHERE attrelid = c.oid AND ` + copiedColumns + `), '{}')
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1`

// lockedSnapshot takes a snapshot for the table with source oid oid. A schema change
// of the table made between the snapshot and the lock shows as a definition that
// differs from the catalog's: the snapshot is taken again.
func (a *applier) lockedSnapshot(ctx context.Context, oid uint32) (*tableSnapshot, error) {
	src, err := a.sourceConn(ctx)
	if err != nil {
		return nil, err
	}
	for try := 0; ; try++ {
		snap, err := CreateSnapshot(ctx, a.ddl.plan.Source, a.task+"_table_"+randomHex(2), true)
		if err != nil {
			return nil, err
		}
		ts := &tableSnapshot{Snapshot: snap}
		fail := func(err error) (*tableSnapshot, error) {
			ts.Close(context.WithoutCancel(ctx))
			return nil, err
		}
		if ts.conn, err = Connect(ctx, a.ddl.plan.Source); err != nil {
			return fail(err)
		}
		if ts.tx, err = ts.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}); err != nil {
			return fail(err)
		}
		if _, err := ts.tx.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(snap.Name)); err != nil {
			return fail(err)
		}
		err = ts.tx.QueryRow(ctx, tableColumns, oid).Scan(&ts.from, &ts.cols)
		if errors.Is(err, pgx.ErrNoRows) {
			return fail(fmt.Errorf("the table (oid %d on the source) is no longer on the source", oid))
		}
		if err != nil {
			return fail(err)
		}
		if _, err := ts.tx.Exec(ctx, "SET LOCAL lock_timeout = '2s'; LOCK TABLE "+ts.from+" IN ACCESS SHARE MODE"); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "55P03" && try < 30 {
				ts.Close(context.WithoutCancel(ctx)) // a schema change holds the table: after it
				continue
			}
			return fail(fmt.Errorf("lock %s on the source to read it: %w", ts.from, err))
		}
		var from string
		var cols []string
		if err := src.QueryRow(ctx, tableColumns, oid).Scan(&from, &cols); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fail(err)
		}
		if from == ts.from && slices.Equal(cols, ts.cols) {
			return ts, nil
		}
		if try == 5 {
			return fail(fmt.Errorf("the table %s kept changing its definition on the source while cutover took a snapshot of it", ts.from))
		}
		ts.Close(context.WithoutCancel(ctx))
	}
}

// copyAt copies a table's rows as of a snapshot into the target, in the applier's
// open transaction, by the columns the target has (of the same name, type and
// nullability; the callers make sure both have the same).
func (a *applier) copyAt(ctx context.Context, ts *tableSnapshot, qname string) (int64, error) {
	res := a.conn.ExecParams(ctx, "SELECT "+columnText+", attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND "+copiedColumns,
		[][]byte{[]byte(qname)}, nil, nil, nil).Read()
	if res.Err != nil {
		return 0, res.Err
	}
	have := map[string]string{}
	for _, r := range res.Rows {
		have[string(r[0])] = string(r[1])
	}
	var cols []string
	for _, c := range ts.cols {
		if name, ok := have[c]; ok {
			cols = append(cols, pgx.Identifier{name}.Sanitize())
		}
	}
	list := ""
	out := "COPY " + ts.from + " TO STDOUT"
	if len(cols) > 0 {
		list = " (" + strings.Join(cols, ", ") + ")"
		out = "COPY (SELECT " + strings.Join(cols, ", ") + " FROM ONLY " + ts.from + ") TO STDOUT"
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := ts.conn.PgConn().CopyTo(ctx, pw, out)
		pw.CloseWithError(err)
		done <- err
	}()
	tag, err := a.conn.CopyFrom(ctx, pr, "COPY "+qname+list+" FROM STDIN")
	pr.CloseWithError(err)
	if cerr := <-done; err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// sourceConn is the applier's connection to the source, for the copies a schema
// change needs.
func (a *applier) sourceConn(ctx context.Context) (*pgx.Conn, error) {
	if a.ddl.src == nil || a.ddl.src.IsClosed() {
		src, err := Connect(ctx, a.ddl.plan.Source)
		if err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		a.ddl.src = src
	}
	return a.ddl.src, nil
}

// The tables the source rewrote are copied again: their new values (ALTER COLUMN
// TYPE ... USING, a column added with a volatile default such as a serial,
// gen_random_uuid() or clock_timestamp()) are not in the change stream. The copy is
// taken once the target's schema of the table is the source's (the schema changes
// after the rewrite replayed): until then the table is "pending", its row changes are
// skipped (the copy, at a later position, has them), and the state is in table_stats
// with the position of the rewrite, so a restart keeps it.

// pendCopy marks a table to be copied again.
func (a *applier) pendCopy(ctx context.Context, k [2]string, pos, why string) error {
	if err := a.conn.ExecParams(ctx, "UPDATE "+a.control+".table_stats SET copy_pending = true WHERE schema_name = $1 AND table_name = $2",
		[][]byte{[]byte(k[0]), []byte(k[1])}, nil, nil, nil).Read().Err; err != nil {
		return fmt.Errorf("target: record that %s is to be copied again: %w", quoteQualified(k[0], k[1]), err)
	}
	if !a.pending[k] {
		// Emptied until the copy: the rows it holds are of an older schema, whose
		// changes since are skipped; a constraint the source adds in the meantime
		// must not fail on them.
		if err := a.conn.Exec(ctx, "DELETE FROM ONLY "+quoteQualified(k[0], k[1])).Close(); err != nil {
			return fmt.Errorf("target: empty %s until it is copied again: %w", quoteQualified(k[0], k[1]), err)
		}
		a.ddl.say(fmt.Sprintf("table %s is to be copied again after the schema change at %s (%s): its changes wait for the copy", quoteQualified(k[0], k[1]), pos, why))
	}
	a.pending[k] = true
	delete(a.rowsFrom, k)
	return a.copyPending(ctx)
}

// copyPending copies again, in the open transaction, the pending tables whose schema
// on the target is now the source's (columns, types, NOT NULL).
func (a *applier) copyPending(ctx context.Context) error {
	for k := range a.pending {
		if time.Now().Before(a.pendingRetry[k]) {
			continue
		}
		q := quoteQualified(k[0], k[1])
		var oid uint32
		for o, named := range a.sourceOIDs {
			if named == k {
				oid = o
			}
		}
		src, err := a.sourceConn(ctx)
		if err != nil {
			return err
		}
		if oid == 0 {
			if err := src.QueryRow(ctx, "SELECT coalesce(to_regclass($1)::oid, 0)", q).Scan(&oid); err != nil {
				return fmt.Errorf("source: %w", err)
			}
		}
		var srcDef string
		if err := src.QueryRow(ctx, columnsDefinition+" = $1", oid).Scan(&srcDef); err != nil {
			return fmt.Errorf("source: the columns of %s: %w", q, err)
		}
		tgtDef, err := a.targetDefinition(ctx, q)
		if err != nil {
			return err
		}
		if srcDef != tgtDef {
			// Schema changes of the table are still to come down the stream.
			a.pendingRetry[k] = time.Now().Add(200 * time.Millisecond)
			continue
		}
		if err := a.copyAgain(ctx, k, oid, tgtDef); err != nil {
			return err
		}
	}
	return nil
}

// targetDefinition reads a table's columns on the target as columnsDefinition does.
func (a *applier) targetDefinition(ctx context.Context, q string) (string, error) {
	res := a.conn.ExecParams(ctx, columnsDefinition+" = to_regclass($1)", [][]byte{[]byte(q)}, nil, nil, nil).Read()
	if res.Err != nil {
		return "", fmt.Errorf("target: the columns of %s: %w", q, res.Err)
	}
	if len(res.Rows) != 1 {
		return "", nil
	}
	return string(res.Rows[0][0]), nil
}

// columnsDefinition is a table's columns as columnText, one a line, in order; the
// table's oid follows.
const columnsDefinition = `SELECT coalesce(string_agg(` + columnText + `, E'\n' ORDER BY attnum), '') FROM pg_attribute WHERE ` + copiedColumns + ` AND attrelid`

// copyAgain empties a table on the target and copies its rows at a locked snapshot,
// behind a savepoint. Rows the target refuses (a constraint of a schema still on its
// way), or a definition that changed again, leave it pending, tried again later.
func (a *applier) copyAgain(ctx context.Context, k [2]string, oid uint32, want string) error {
	q := quoteQualified(k[0], k[1])
	snap, err := a.lockedSnapshot(ctx, oid)
	if err != nil {
		return err
	}
	defer snap.Close(context.WithoutCancel(ctx))
	if strings.Join(snap.cols, "\n") != want {
		// Changed again since: its schema change comes down the stream.
		a.pendingRetry[k] = time.Now().Add(200 * time.Millisecond)
		return nil
	}
	if err := a.conn.Exec(ctx, "SAVEPOINT cutover_copy; DELETE FROM ONLY "+q).Close(); err != nil {
		return fmt.Errorf("target: empty %s to copy it again: %w", q, err)
	}
	rows, err := a.copyAt(ctx, snap, q)
	if err != nil {
		if rerr := a.conn.Exec(ctx, "ROLLBACK TO SAVEPOINT cutover_copy; RELEASE SAVEPOINT cutover_copy").Close(); rerr != nil {
			return rerr
		}
		a.ddl.say(fmt.Sprintf("table %s: copying it again failed, trying again in 10s: %v", q, err))
		a.pendingRetry[k] = time.Now().Add(10 * time.Second)
		return nil
	}
	if err := a.conn.Exec(ctx, "RELEASE SAVEPOINT cutover_copy").Close(); err != nil {
		return err
	}
	if err := a.conn.ExecParams(ctx, "UPDATE "+a.control+".table_stats SET position = $3, rows = $4, copy_pending = false WHERE schema_name = $1 AND table_name = $2",
		[][]byte{[]byte(k[0]), []byte(k[1]), []byte(snap.Position), itoa(rows)}, nil, nil, nil).Read().Err; err != nil {
		return fmt.Errorf("target: record the copy of %s: %w", q, err)
	}
	lsn, err := pglogrepl.ParseLSN(snap.Position)
	if err != nil {
		return err
	}
	a.rowsFrom[k] = lsn
	delete(a.pending, k)
	delete(a.pendingRetry, k)
	a.ddl.say(fmt.Sprintf("table %s copied again (%d rows) at position %s: its changes are applied from there", q, rows, snap.Position))
	return nil
}

// addedColumns adds to the target the columns a change's table has gained on the
// source, when the source's schema changes are not captured (an event trigger needs a
// superuser): the change stream describes the table anew before its first change
// after an ALTER TABLE, with its columns by name and type. Only a pure addition is
// made this way (every column of the target is still in the stream): a column
// renamed or dropped looks the same as one added, and stops CDC as before, naming
// the column. The new column's type, default and NOT NULL are read from the source's
// catalog, and the table is copied again for the values of its rows.
func (a *applier) addedColumns(ctx context.Context, rel *cdc.Relation) error {
	if a.ddl.plan == nil || a.ddl.captured || a.mark {
		return nil
	}
	if _, ok := a.targets[rel]; ok {
		return nil
	}
	q := quoteQualified(rel.Schema, rel.Name)
	res := a.conn.ExecParams(ctx, "SELECT attname, attgenerated <> '' FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
		[][]byte{[]byte(q)}, nil, nil, nil).Read()
	if res.Err != nil || len(res.Rows) == 0 {
		return nil // target() says what is wrong
	}
	stream := map[string]bool{}
	for _, c := range rel.Columns {
		stream[c.Name] = true
	}
	have := map[string]bool{}
	for _, r := range res.Rows {
		have[string(r[0])] = true
		if string(r[1]) != "t" && !stream[string(r[0])] {
			return nil // not a pure addition
		}
	}
	var added []string
	for _, c := range rel.Columns {
		if !have[c.Name] {
			added = append(added, c.Name)
		}
	}
	if len(added) == 0 {
		return nil
	}
	if err := a.net.drain(ctx, a, nil); err != nil {
		return err
	}
	if err := a.flush(ctx); err != nil {
		return err
	}
	src, err := a.sourceConn(ctx)
	if err != nil {
		return err
	}
	type column struct {
		name, typ, def string
		notNull        bool
	}
	var cols []column
	for _, name := range added {
		c := column{name: name}
		err := src.QueryRow(ctx, `SELECT format_type(a.atttypid, a.atttypmod), a.attnotnull, coalesce(pg_get_expr(d.adbin, d.adrelid), '')
			FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
			WHERE a.attrelid = $1 AND a.attname = $2 AND NOT a.attisdropped`, rel.ID, name).Scan(&c.typ, &c.notNull, &c.def)
		if err != nil {
			return nil // gone since: target() says what is missing
		}
		cols = append(cols, c)
	}
	// Copied again, whatever the column's default: without the capture nothing says
	// whether the source filled it row by row (a volatile default, a rewrite since),
	// nor whether it is new at all (a column dropped on the target by hand looks the
	// same). Emptied first: the columns then take their NOT NULL.
	k := [2]string{rel.Schema, rel.Name}
	recopy := a.migrated[k]
	if recopy {
		if err := a.pendCopy(ctx, k, a.txnLSN.String(), "the source's schema changes are not captured, so the values its rows hold for the new column are read from it"); err != nil {
			return err
		}
	}
	for _, c := range cols {
		col := pgx.Identifier{c.name}.Sanitize()
		stmts := []string{"ALTER TABLE " + q + " ADD COLUMN " + col + " " + c.typ}
		if c.def != "" {
			stmts = append(stmts, "ALTER TABLE "+q+" ALTER COLUMN "+col+" SET DEFAULT "+c.def)
		}
		if c.notNull {
			stmts = append(stmts, "ALTER TABLE "+q+" ALTER COLUMN "+col+" SET NOT NULL")
		}
		for _, s := range stmts {
			if err := a.conn.Exec(ctx, s).Close(); err != nil {
				return &cdc.ApplyError{Err: fmt.Errorf("the source added the column %s to %s; adding it on the target failed: %s: %w\nfix: add it on the target by hand, then run cutover start again", col, q, s, err)}
			}
		}
		a.ddl.say(fmt.Sprintf("the source added the column %s %s to %s (seen in the change stream; its schema changes are not captured): added on the target", col, c.typ, q))
	}
	if len(a.pending) > 0 {
		return a.copyPending(ctx)
	}
	return nil
}

// oneLine shortens a statement for a message: its lines joined, at most 300 bytes.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + " ..."
	}
	return s
}
