package mysql

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/cutover-dev/cutover/apply"
	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/internal/failpoint"
)

// The change stream applied to a MySQL/MariaDB target. A group of source
// transactions is one target transaction, with the position of its last one written
// to the control state's row in that same transaction: a target that commits has the
// changes and the position together, one that dies has neither, and the stream opens
// again at what it committed (exactly once across kill -9). Within a group, each
// row's changes are netted (apply.Net) and written per table: deletes, updates,
// inserts.
//
// Values are MySQL's own text (see copy.go): each is bound as a parameter inside an
// expression that makes the target take it as that text means, the same conversions
// the full load's LOAD DATA makes: numbers for BIT, ENUM, SET and YEAR, the bytes of
// strings in the column's character set, text for INET4, INET6 and UUID.

// applier is a cdc.Target on a MySQL/MariaDB target.
type applier struct {
	db      *sql.DB
	target  string // the target database
	ctl     *Control
	mariadb bool // the target's flavour

	conn   *sql.Conn
	tx     *sql.Tx
	group  *apply.Group
	net    apply.Net
	tables map[*cdc.Relation]*targetTable
	holds  holds // validation points asked for (validpoints.go)
	// changed are the tables (source database, name) the open group changed, with
	// the keys of the rows: their table_stats.changed_position is the group's
	// position, for validation's points, and the keys go into validation_dirty.
	changed dirtySet

	// tableFrom: tables a resumed load copied again at a later snapshot, with its
	// position: their changes that snapshot already holds are skipped.
	tableFrom     map[string]string
	mariadbSource bool   // how to read the positions
	txnPos        string // the position the source transaction being applied ends at
	// schemaApplied is the position of a transaction whose schema change the operator
	// made on the target by hand: it is not stopped at again.
	schemaApplied string
	// replayDDL: cdc.ddl replicate: the schema changes of migrated tables that can be
	// made on the target as the source made them are (replay); the others stop.
	replayDDL bool
	// onCommitted is called with the position of every group committed (reverse
	// replication from PostgreSQL acknowledges it to the slot).
	onCommitted func(pos string)
}

var _ cdc.Target = (*applier)(nil)

// newApplier applies to the target database of db (MariaDB or MySQL), going on
// after committed.
func newApplier(db *sql.DB, target string, mariadb bool, ctl *Control, committed string) *applier {
	return &applier{db: db, target: target, mariadb: mariadb, ctl: ctl, group: apply.NewGroup(apply.DefaultGrouping, committed),
		tables: map[*cdc.Relation]*targetTable{}, changed: dirtySet{}}
}

// targetTable is how a source table's columns are written on the target.
type targetTable struct {
	qname string
	rel   *cdc.Relation
	// in is each column's parameter expression: how a value of the stream's text
	// becomes the column's value.
	in []string
	// text: compared as bytes where a row is found by all its columns (a table
	// without a key): a case-insensitive collation would match another row.
	text []bool
	enum []bool // an ENUM, whose error value (index 0) strict mode refuses
	key  []int  // the key's columns; nil: the table has none, rows are found whole
}

// Connect opens the applier's connection, set up as the full load's are.
func (a *applier) Connect(ctx context.Context) error {
	if a.conn != nil {
		return nil
	}
	conn, err := a.db.Conn(ctx)
	if err != nil {
		return err
	}
	for _, q := range applySession {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			discard(conn)
			return fmt.Errorf("set up the applier's connection on the target (%s): %w", q, err)
		}
	}
	a.conn = conn
	return nil
}

// applySession: the load's settings (every value the source holds taken as it is,
// no foreign key checked: the source checked them, and a group's order is by table).
// The parameters are bytes (character_set_client binary): as text of the
// connection's character set, a latin1 string's byte é is refused as invalid UTF-8.
var applySession = append([]string{"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", "SET SESSION character_set_client = binary"}, loadSession...)

// Disconnect drops the connection after a fault; what the open group held comes
// again from the stream.
func (a *applier) Disconnect(context.Context) {
	if a.tx != nil {
		_ = a.tx.Rollback()
		a.tx = nil
	}
	if a.conn != nil {
		discard(a.conn)
		a.conn = nil
	}
	a.group.Abandon()
	a.net.Reset()
	clear(a.changed)
}

// Committed is the position of the last source transaction the target committed.
func (a *applier) Committed() string { return a.group.Committed() }

// Carefully: every failure stops the stream for now (cdc.on_error's other policies
// are not built for MySQL/MariaDB yet).
func (a *applier) Carefully(error) bool { return false }

// Apply applies events until the channel closes or ctx ends; a group still open then
// is rolled back, its transactions come again.
func (a *applier) Apply(ctx context.Context, events <-chan cdc.Event) error {
	if err := a.Connect(ctx); err != nil {
		return err
	}
	defer func() {
		if a.tx != nil {
			_ = a.tx.Rollback()
			a.tx = nil
			a.group.Abandon()
			a.net.Reset()
			clear(a.changed)
		}
	}()
	for {
		var ev cdc.Event
		var ok bool
		select {
		case ev, ok = <-events:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			return nil
		}
		switch e := ev.(type) {
		case *cdc.Begin:
			if err := a.beforeTxn(ctx, e.Position); err != nil {
				return err
			}
			a.txnPos = e.Position
			if a.group.Begin(time.Now()) {
				tx, err := a.conn.BeginTx(ctx, nil)
				if err != nil {
					return err
				}
				a.tx = tx
			}
		case *cdc.Change:
			if skip, err := a.inCopy(e.Rel); err != nil || skip {
				if err != nil {
					return err
				}
				continue
			}
			if err := a.change(ctx, e); err != nil {
				return err
			}
			a.group.Change()
		case *cdc.SchemaChange:
			if a.txnPos == a.schemaApplied {
				continue // made on the target by hand (cutover start --schema-applied)
			}
			why := "cdc.ddl is stop"
			if a.replayDDL {
				if why = notReplayable(e); why == "" {
					if err := a.replay(ctx, e); err != nil {
						return err
					}
					continue
				}
			}
			return &cdc.ApplyError{Err: fmt.Errorf("a schema change on the source stops change data capture (%s): %s; make the same change in the target's database %s, then run cutover start --schema-applied '%s'",
				why, e.Statement, a.target, a.txnPos)}
		case *cdc.Marker:
			if err := a.marker(ctx, e); err != nil {
				return err
			}
		case *cdc.Commit:
			if a.tx == nil {
				continue // a schema change's own transaction: replay recorded it
			}
			if a.group.End(e.Position, e.CommitTime, len(events) == 0, time.Now()) {
				if err := a.commit(ctx); err != nil {
					return err
				}
			}
		}
	}
}

// marker records that the target holds every transaction before a sync marker: what
// the open group holds is committed first.
func (a *applier) marker(ctx context.Context, m *cdc.Marker) error {
	id, ok := strings.CutPrefix(m.ID, syncMarkerPrefix)
	if !ok {
		return nil
	}
	if err := a.stopHere(ctx); err != nil {
		return err
	}
	if _, err := a.db.ExecContext(ctx, "UPDATE "+a.ctl.table("state")+" SET sync_marker = ? WHERE id = 1", id); err != nil {
		return fmt.Errorf("target: record the sync marker %s: %w", id, err)
	}
	return nil
}

// inCopy says whether the transaction being applied is in rel's copy already (see
// tableFrom).
func (a *applier) inCopy(rel *cdc.Relation) (bool, error) {
	at, ok := a.tableFrom[rel.Name]
	if !ok {
		return false, nil
	}
	in, err := covers(at, a.txnPos, a.mariadbSource)
	if err != nil {
		return false, fmt.Errorf("table %s: compare the position of its copy (%s) with the change's (%s): %w", rel.Name, at, a.txnPos, err)
	}
	return in, nil
}

// change nets a row change into the group, or writes it as it is (after what its
// table had netted) when it cannot be netted.
func (a *applier) change(ctx context.Context, c *cdc.Change) error {
	if c.Op == cdc.Truncate {
		a.changed.mark(c)
		if err := a.flush(ctx, nil); err != nil {
			return err
		}
		for _, r := range c.Truncated {
			t, err := a.table(ctx, r)
			if err != nil {
				return err
			}
			// DELETE, not TRUNCATE: TRUNCATE commits the open transaction.
			if _, err := a.tx.ExecContext(ctx, "DELETE FROM "+t.qname); err != nil {
				return applyError(c, err)
			}
		}
		return nil
	}
	a.changed.mark(c)
	if c.Op == cdc.Update && c.Old != nil && sameKey(c) {
		// The binary log's before-image is the whole row; the stream's contract names
		// the old row only when the update changed its key.
		u := *c
		u.Old = nil
		c = &u
	}
	if a.net.Put(c) {
		if a.net.Rows() >= apply.MaxNetRows {
			return a.flush(ctx, nil)
		}
		return nil
	}
	if err := a.flush(ctx, []*cdc.Relation{c.Rel}); err != nil {
		return err
	}
	t, err := a.table(ctx, c.Rel)
	if err != nil {
		return err
	}
	return a.write(ctx, t, c)
}

// sameKey says whether an update of a keyed table left its key as it was.
func sameKey(c *cdc.Change) bool {
	keyed := false
	for i, col := range c.Rel.Columns {
		if col.Key {
			keyed = true
			if c.Old[i].Null != c.New[i].Null || !bytes.Equal(c.Old[i].Text, c.New[i].Text) {
				return false
			}
		}
	}
	return keyed
}

// commit writes what the group netted and the position, and commits.
func (a *applier) commit(ctx context.Context) error {
	if err := a.flush(ctx, nil); err != nil {
		return err
	}
	pos, at := a.group.Position()
	if pos == "" {
		return fmt.Errorf("internal: a group of changes to commit without the position of its last transaction")
	}
	if _, err := a.tx.ExecContext(ctx, "UPDATE "+a.ctl.table("state")+" SET applied_position = ?, applied_commit_time = ?, applied_at = now(6) WHERE id = 1",
		pos, at.UTC().Format("2006-01-02 15:04:05.999999")); err != nil {
		return err
	}
	if err := a.markChanged(ctx, a.tx, pos, a.changed); err != nil {
		return err
	}
	if err := a.recordDirty(ctx, a.tx, a.changed); err != nil {
		return err
	}
	if err := a.tx.Commit(); err != nil {
		return err
	}
	a.tx = nil
	a.group.Done()
	clear(a.changed)
	if a.onCommitted != nil {
		a.onCommitted(pos)
	}
	return nil
}

// execer runs statements: a pool, a connection or a transaction.
type execer interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}

// markChanged records pos as the position of the last change to these tables, and
// adds the changes applied to their counts, in one statement.
func (a *applier) markChanged(ctx context.Context, ex execer, pos string, tables dirtySet) error {
	if len(tables) == 0 {
		return nil
	}
	var match []string
	var matchArgs []any
	counts := [4][]any{}
	for k, t := range tables {
		match = append(match, "(schema_name = ? AND table_name = ?)")
		matchArgs = append(matchArgs, k[0], k[1])
		for i, n := range []int64{t.inserts, t.updates, t.deletes, t.truncates} {
			counts[i] = append(counts[i], k[0], k[1], n)
		}
	}
	set := []string{"changed_position = ?"}
	args := []any{pos}
	for i, col := range []string{"inserts", "updates", "deletes", "truncates"} {
		set = append(set, col+" = "+col+" + CASE"+strings.Repeat(" WHEN schema_name = ? AND table_name = ? THEN ?", len(tables))+" ELSE 0 END")
		args = append(args, counts[i]...)
	}
	_, err := ex.ExecContext(ctx, "UPDATE "+a.ctl.table("table_stats")+" SET "+strings.Join(set, ", ")+" WHERE "+strings.Join(match, " OR "), append(args, matchArgs...)...)
	return err
}

// flush writes the net changes of the given tables (every table when nil).
func (a *applier) flush(ctx context.Context, only []*cdc.Relation) error {
	for _, tc := range a.net.Drain(only) {
		t, err := a.table(ctx, tc.Rel)
		if err != nil {
			return err
		}
		if err := a.writeNet(ctx, t, tc); err != nil {
			return err
		}
	}
	return nil
}

// maxParams bounds a statement's parameters (the protocol allows 65535).
const maxParams = 30000

// writeNet writes a table's net changes in statements of many rows: the deletes, and
// the updates of whole rows as a delete of the row and an insert of its new image (two
// statements for any number of rows, where an UPDATE is one a row); then the inserts.
// An update that leaves columns out (a partial image) is an UPDATE of its own.
func (a *applier) writeNet(ctx context.Context, t *targetTable, tc *apply.TableChanges) error {
	type write struct {
		key  cdc.Row
		last *cdc.Change
	}
	deletes := make([]write, 0, len(tc.Deletes)+len(tc.Updates))
	for _, r := range tc.Deletes {
		deletes = append(deletes, write{r.Key, r.Last})
	}
	inserts := make([]*apply.Row, 0, len(tc.Inserts)+len(tc.Updates))
	var partial []*apply.Row
	for _, r := range tc.Updates {
		if t.key == nil || slices.ContainsFunc(r.Image, func(v cdc.Value) bool { return v.Unchanged }) {
			partial = append(partial, r)
			continue
		}
		deletes = append(deletes, write{r.Key, r.Last})
		inserts = append(inserts, r)
	}
	per := max(1, maxParams/max(1, len(t.key)))
	for rows := range slices.Chunk(deletes, per) {
		var where string
		var args []any
		if len(t.key) == 1 {
			// one key column: IN, which the server sorts once, where it would merge
			// each equality of an OR into a range of its own
			i := t.key[0]
			for _, r := range rows {
				args = append(args, param(r.key[i]))
			}
			where = quote(t.rel.Columns[i].Name) + " IN (" + strings.TrimSuffix(strings.Repeat(t.in[i]+", ", len(rows)), ", ") + ")"
		} else {
			var match []string
			for _, r := range rows {
				m, a := t.matchKey(r.key)
				match, args = append(match, "("+m+")"), append(args, a...)
			}
			where = strings.Join(match, " OR ")
		}
		res, err := a.tx.ExecContext(ctx, "DELETE FROM "+t.qname+" WHERE "+where, args...)
		if err := expect(res, err, len(rows)); err != nil {
			return applyError(rows[0].last, fmt.Errorf("delete %d rows by their key: %w", len(rows), err))
		}
	}
	for _, r := range partial {
		if err := a.update(ctx, t, r.Key, r.Image); err != nil {
			return applyError(r.Last, err)
		}
	}
	inserts = append(inserts, tc.Inserts...)
	per = max(1, maxParams/len(t.in))
	for rows := range slices.Chunk(inserts, per) {
		images := make([]cdc.Row, len(rows))
		for i, r := range rows {
			images[i] = r.Image
		}
		if err := a.insert(ctx, t, images); err != nil {
			return applyError(rows[0].Last, err)
		}
	}
	return nil
}

// write writes one change as it is: a row of a table without a key is found by all
// its values, one row of several equal ones.
func (a *applier) write(ctx context.Context, t *targetTable, c *cdc.Change) error {
	var err error
	switch c.Op {
	case cdc.Insert:
		err = a.insert(ctx, t, []cdc.Row{c.New})
	case cdc.Update:
		err = a.update(ctx, t, c.Old, c.New)
	case cdc.Delete:
		m, args := t.match(c.Old)
		var res sql.Result
		res, err = a.tx.ExecContext(ctx, "DELETE FROM "+t.qname+" WHERE "+m+" LIMIT 1", args...)
		err = expect(res, err, 1)
	}
	if err != nil {
		return applyError(c, err)
	}
	return nil
}

func (a *applier) insert(ctx context.Context, t *targetTable, rows []cdc.Row) error {
	cols := make([]string, len(t.rel.Columns))
	for i, c := range t.rel.Columns {
		cols[i] = quote(c.Name)
	}
	tuple := "(" + strings.Join(t.in, ", ") + ")"
	args := make([]any, 0, len(rows)*len(cols))
	for _, r := range rows {
		for _, v := range r {
			args = append(args, param(v))
		}
	}
	expected := expectedWarnings{}
	for n, r := range rows {
		t.errorValues(expected, int64(n+1), r)
	}
	res, err := a.exec(ctx, "INSERT", " INTO "+t.qname+" ("+strings.Join(cols, ", ")+") VALUES "+
		strings.TrimSuffix(strings.Repeat(tuple+", ", len(rows)), ", "), args, expected)
	return expect(res, err, len(rows))
}

// errorValues notes the ENUM error values of row n of a statement.
func (t *targetTable) errorValues(expected expectedWarnings, n int64, r cdc.Row) {
	for i, v := range r {
		if t.enum[i] && !v.Null && string(v.Text) == "0" {
			expected[warningAt{n, t.rel.Columns[i].Name}] = true
		}
	}
}

// laxMode is the load's sql_mode without strict mode: for a statement writing an
// ENUM's error value, which strict mode refuses.
const laxMode = "NO_AUTO_VALUE_ON_ZERO,ALLOW_INVALID_DATES,NO_ENGINE_SUBSTITUTION"

// exec runs verb+rest in the group's transaction. A statement that writes ENUM error
// values (expected) runs without strict mode, and its warnings are checked: the
// expected ones and no other.
func (a *applier) exec(ctx context.Context, verb, rest string, args []any, expected expectedWarnings) (sql.Result, error) {
	if len(expected) == 0 {
		return a.tx.ExecContext(ctx, verb+rest, args...)
	}
	q := "SET STATEMENT sql_mode = '" + laxMode + "' FOR " + verb + rest
	if !a.mariadb {
		q = verb + " /*+ SET_VAR(sql_mode = '" + laxMode + "') */" + rest
	}
	res, err := a.tx.ExecContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return res, checkWarnings(ctx, a.tx, expected)
}

// update sets a row found by old (its key, or all its values) to image.
func (a *applier) update(ctx context.Context, t *targetTable, old, image cdc.Row) error {
	var sets []string
	var args []any
	for i, c := range t.rel.Columns {
		if image[i].Unchanged {
			continue
		}
		sets = append(sets, quote(c.Name)+" = "+t.in[i])
		args = append(args, param(image[i]))
	}
	if len(sets) == 0 {
		return nil
	}
	m, margs := t.match(old)
	expected := expectedWarnings{}
	t.errorValues(expected, 1, image)
	res, err := a.exec(ctx, "UPDATE", " "+t.qname+" SET "+strings.Join(sets, ", ")+" WHERE "+m+" LIMIT 1", append(args, margs...), expected)
	return expect(res, err, 1)
}

// match finds a row by its key, or by all its values in a table without one.
func (t *targetTable) match(r cdc.Row) (string, []any) {
	if t.key != nil {
		return t.matchKey(r)
	}
	var conds []string
	var args []any
	for i, c := range t.rel.Columns {
		col := quote(c.Name)
		switch {
		case r[i].Null:
			conds = append(conds, col+" IS NULL")
			continue
		case t.text[i]:
			conds = append(conds, "BINARY "+col+" = BINARY "+t.in[i])
		default:
			conds = append(conds, col+" = "+t.in[i])
		}
		args = append(args, param(r[i]))
	}
	return strings.Join(conds, " AND "), args
}

// matchKey finds a row by its key's values.
func (t *targetTable) matchKey(r cdc.Row) (string, []any) {
	conds := make([]string, len(t.key))
	args := make([]any, len(t.key))
	for j, i := range t.key {
		conds[j] = quote(t.rel.Columns[i].Name) + " = " + t.in[i]
		args[j] = param(r[i])
	}
	return strings.Join(conds, " AND "), args
}

// param is a value as the driver sends it: bytes (the expression around it says
// what they are), or NULL.
func param(v cdc.Value) any {
	if v.Null {
		return nil
	}
	return v.Text
}

// expect checks that a statement touched the rows it names: a row the target lacks
// (or has more than once) is a target that differs from the source.
func expect(res sql.Result, err error, want int) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if int(n) != want {
		return fmt.Errorf("%d rows changed on the target, want %d: the target's rows differ from the source's", n, want)
	}
	return nil
}

// applyError names the change that failed.
func applyError(c *cdc.Change, err error) error {
	if c == nil {
		return &cdc.ApplyError{Err: err}
	}
	return &cdc.ApplyError{Err: fmt.Errorf("%s on %s.%s: %w", c.Op, c.Rel.Schema, c.Rel.Name, err)}
}

// table is how rel is written on the target: its columns' types read from the
// target's catalog, once per relation.
func (a *applier) table(ctx context.Context, rel *cdc.Relation) (*targetTable, error) {
	if t := a.tables[rel]; t != nil {
		return t, nil
	}
	t := &targetTable{qname: tableName{a.target, rel.Name}.quoted(), rel: rel}
	types := map[string][2]string{}
	rows, err := a.conn.QueryContext(ctx, "SELECT COLUMN_NAME, DATA_TYPE, coalesce(CHARACTER_SET_NAME, '') FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
		a.target, rel.Name)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var name, typ, charset string
		if err := rows.Scan(&name, &typ, &charset); err != nil {
			rows.Close()
			return nil, err
		}
		types[strings.ToLower(name)] = [2]string{strings.ToLower(typ), charset}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(types) == 0 {
		return nil, &cdc.ApplyError{Err: fmt.Errorf("table %s: the target has no such table: create it as on the source, or leave the table out of the plan", t.qname)}
	}
	for i, c := range rel.Columns {
		tc, ok := types[strings.ToLower(c.Name)]
		if !ok {
			return nil, &cdc.ApplyError{Err: fmt.Errorf("table %s: the target has no column %s: add it as on the source", t.qname, quote(c.Name))}
		}
		t.in = append(t.in, paramExpr(tc[0], tc[1]))
		t.text = append(t.text, tc[1] != "")
		t.enum = append(t.enum, tc[0] == "enum")
		if c.Key {
			t.key = append(t.key, i)
		}
	}
	a.tables[rel] = t
	return t, nil
}

// paramExpr is how a value of MySQL's own text becomes a value of a column of type
// typ (DATA_TYPE) in character set charset: as the full load's LOAD DATA takes it.
func paramExpr(typ, charset string) string {
	switch typ {
	case "bit", "enum", "set", "year":
		return "CAST(? AS UNSIGNED)"
	case "inet4", "inet6", "uuid":
		return "CONVERT(? USING ascii)"
	}
	if charset != "" {
		// the bytes as they are, in the column's character set (the parameter would
		// otherwise be read in the connection's)
		return "CONVERT(CAST(? AS BINARY) USING " + charset + ")"
	}
	return "?"
}

// tableRename is a RENAME in an ALTER TABLE that renames the table itself (not a
// column, an index or a key).
var tableRename = regexp.MustCompile(`(?i)\bRENAME\s+(?:TO\b|AS\b|(?:` + "`" + `|\w)(?:[^\s]*)\s*(?:,|;|$))`)

// notReplayable says why a schema change is not made on the target as the source made
// it ("" when it is): the statements that change a migrated table's columns and
// indexes are (ALTER TABLE, CREATE and DROP INDEX); a table created, dropped or
// renamed changes what is migrated, which the stream does not follow yet.
func notReplayable(e *cdc.SchemaChange) string {
	switch e.Tag {
	case "ALTER TABLE", "CREATE INDEX", "DROP INDEX":
	default:
		return e.Tag + " is not replicated yet"
	}
	if e.Tag == "ALTER TABLE" && tableRename.MatchString(e.Statement) {
		return "a table renamed is not replicated yet"
	}
	return ""
}

// replay makes a schema change on the target as the source made it. MySQL commits
// around a schema change, so it cannot share a transaction with the position: the
// group before it commits first, the change is marked pending in the control state
// with its position, made, then recorded as applied. A run killed between the change
// and its record finds it pending at that position and takes the target's "already
// made" refusal for the change made.
func (a *applier) replay(ctx context.Context, e *cdc.SchemaChange) error {
	switch {
	case a.tx != nil && a.group.Ended() > 0:
		if err := a.commit(ctx); err != nil {
			return err
		}
	case a.tx != nil:
		// The group holds only the schema change's own transaction: nothing ended to
		// commit (committing would write a group's position it does not have: none).
		_ = a.tx.Rollback()
		a.tx = nil
		a.group.Abandon()
		a.net.Reset()
		clear(a.changed)
	}
	pos := a.txnPos
	if pos == "" {
		// MySQL without GTIDs names a transaction's end only at its commit
		return &cdc.ApplyError{Err: fmt.Errorf("a schema change on the source (%s) at a position the stream does not know before its end (a MySQL source without GTIDs): make it on the target's database %s, then run cutover start --schema-applied with the position status shows after it", e.Statement, a.target)}
	}
	source := e.Context // the database the statement ran in; its tables' own when it named them
	for _, o := range e.Objects {
		if o.Schema != "" {
			source = o.Schema
			break
		}
	}
	stmt, err := retarget(e.Statement, source, a.target)
	if err != nil {
		return &cdc.ApplyError{Err: fmt.Errorf("a schema change on the source: %s: %w", e.Statement, err)}
	}
	var pending string
	if err := a.conn.QueryRowContext(ctx, "SELECT ddl_pending FROM "+a.ctl.table("state")+" WHERE id = 1").Scan(&pending); err != nil {
		return err
	}
	if _, err := a.conn.ExecContext(ctx, "UPDATE "+a.ctl.table("state")+" SET ddl_pending = ? WHERE id = 1", pos); err != nil {
		return err
	}
	if _, err := a.conn.ExecContext(ctx, "USE "+quote(a.target)); err != nil {
		return err
	}
	_, err = a.conn.ExecContext(ctx, stmt)
	if err != nil && !(pending == pos && alreadyMade(err)) {
		return &cdc.ApplyError{Err: fmt.Errorf("the target refused the source's schema change %s: %w; make the same change in the target's database %s, then run cutover start --schema-applied '%s'",
			e.Statement, err, a.target, pos)}
	}
	failpoint.KillAt("start:ddl:made") // made, not recorded
	// The tables changed first: a run killed before the record makes the change again.
	ddlTables := dirtySet{}
	for _, o := range e.Objects {
		if o.Table != "" {
			ddlTables.table([2]string{cmp.Or(o.Schema, source), o.Table}).markWhole()
		}
	}
	if err := a.markChanged(ctx, a.conn, pos, ddlTables); err != nil {
		return err
	}
	if err := a.recordDirty(ctx, a.conn, ddlTables); err != nil {
		return err
	}
	if _, err := a.conn.ExecContext(ctx, "UPDATE "+a.ctl.table("state")+" SET applied_position = ?, ddl_pending = '', applied_at = now(6) WHERE id = 1", pos); err != nil {
		return err
	}
	a.group = apply.NewGroup(a.group.Grouping, pos)
	a.tables = map[*cdc.Relation]*targetTable{} // read the changed tables again
	return nil
}

// alreadyMade says whether the target refused a schema change because it holds it:
// a column or index there already, or gone already.
func alreadyMade(err error) bool {
	var me *driver.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	switch me.Number {
	case 1060, 1061, 1091, 1054, 1826: // duplicate column, duplicate key, cannot drop, unknown column (renamed), duplicate foreign key
		return true
	}
	return false
}
