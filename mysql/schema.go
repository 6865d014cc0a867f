package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"

	driver "github.com/go-sql-driver/mysql"
)

// The schema of the full load between two MySQL/MariaDB servers. Before the rows are
// copied (pre-data), the source's tables are created on the target with their
// columns, primary key, CHECK constraints and table options, from SHOW CREATE TABLE;
// after (post-data), the secondary indexes, the foreign keys and the views. Rows load
// fastest into a table with its clustered index alone, and a foreign key added after
// the rows is checked once, not row by row. Triggers, routines and events are read
// and reported, not created.

// schema is what the load creates on the target, read from the source's database.
type schema struct {
	source string // the source's database
	tables []tableDef
	// views are created after the tables; buildObjects orders them by what they use.
	views []objectDef
	// triggers (on the migrated tables), routines and events are reported, not created.
	triggers, routines, events []objectDef
}

// tableDef is a table: what is created before its rows, and what is built after.
type tableDef struct {
	name string
	// create is SHOW CREATE TABLE's statement without the secondary indexes and the
	// foreign keys: the columns, the primary key, the CHECK constraints, the table's
	// options (AUTO_INCREMENT=n as the source had it when read: the counter is not
	// part of the snapshot, and being ahead of the snapshot's rows only skips values),
	// partitioning. The table's name is not qualified.
	create string
	// indexes are the secondary indexes built after the rows, in SHOW CREATE TABLE's
	// order, but the ones create keeps (see splitTable).
	indexes []indexDef
	// foreignKeys are added after the indexes, which they may need.
	foreignKeys []foreignKey
}

// indexDef is a secondary index: its name and its definition as SHOW CREATE TABLE
// prints it ("UNIQUE KEY `u` (`a`,`b`)").
type indexDef struct {
	name, def string
	fulltext  bool
}

// foreignKey is a foreign key as SHOW CREATE TABLE prints it, with its columns and
// the table it references (refSchema "" for the table's own database).
type foreignKey struct {
	name, def           string
	columns             []string
	refSchema, refTable string
	refColumns          []string
}

// objectDef is a view, trigger, routine or event as the source has it.
type objectDef struct {
	kind    string // view, trigger, procedure, function, package, package body, event
	name    string
	table   string // a trigger's table
	definer string // the DEFINER the source has ("" for none)
	// sqlMode, charset and collation are the sql_mode, character_set_client and
	// collation_connection it was created with, which its body is read in.
	sqlMode, charset, collation string
	status                      string // an event's: ENABLED, DISABLED, SLAVESIDE_DISABLED
	timeZone                    string // an event's time_zone, its schedule's times are in
	// create is its CREATE statement, its name not qualified; a view's without its
	// DEFINER clause. Empty when the source's role may not read it.
	create string
}

// readSchema reads, in a read view of the snapshot (view), the definitions of the
// given tables of the source database, and the views, triggers, routines and events
// of that database.
func readSchema(ctx context.Context, view *sql.Conn, source string, tables []tableName) (_ *schema, err error) {
	restore, err := printPlainly(ctx, view)
	if err != nil {
		return nil, err
	}
	defer func() {
		if rerr := restore(); err == nil && rerr != nil {
			err = fmt.Errorf("restore the read view's sql_mode: %w", rerr)
		}
	}()
	s := &schema{source: source}
	migrated := map[string]bool{}
	for _, tn := range tables {
		t, err := readTable(ctx, view, tn)
		if err != nil {
			return nil, err
		}
		s.tables = append(s.tables, t)
		migrated[tn.name] = true
	}
	if s.views, err = readViews(ctx, view, source); err != nil {
		return nil, err
	}
	if s.triggers, err = readTriggers(ctx, view, source, migrated); err != nil {
		return nil, err
	}
	if s.routines, err = readRoutines(ctx, view, source); err != nil {
		return nil, err
	}
	if s.events, err = readEvents(ctx, view, source); err != nil {
		return nil, err
	}
	return s, nil
}

// printPlainly sets the session so that SHOW CREATE prints what the target's session
// (see setUpDDL) parses back as the same: names in backquotes (not ANSI_QUOTES' double
// quotes), every option (not NO_TABLE_OPTIONS, NO_KEY_OPTIONS, NO_FIELD_OPTIONS),
// strings with backslash escapes. The view's session is restored after.
func printPlainly(ctx context.Context, c *sql.Conn) (restore func() error, err error) {
	var mode string
	var quoted int
	if err := c.QueryRowContext(ctx, "SELECT @@SESSION.sql_mode, @@SESSION.sql_quote_show_create").Scan(&mode, &quoted); err != nil {
		return nil, fmt.Errorf("read the session's sql_mode: %w", err)
	}
	if _, err := c.ExecContext(ctx, "SET SESSION sql_mode = '', SESSION sql_quote_show_create = 1"); err != nil {
		return nil, fmt.Errorf("set the session's sql_mode for SHOW CREATE: %w", err)
	}
	return func() error {
		_, err := c.ExecContext(context.WithoutCancel(ctx), "SET SESSION sql_mode = ?, SESSION sql_quote_show_create = ?", mode, quoted)
		return err
	}, nil
}

// showCreate runs a SHOW CREATE statement and returns its row by column name (NULL
// as "": a routine's body the role may not read).
func showCreate(ctx context.Context, c *sql.Conn, query string) (map[string]string, error) {
	row, ok, err := namedRow(ctx, c, query)
	if err == nil && !ok {
		err = errors.New("not found")
	}
	return row, err
}

// readTable reads a table's SHOW CREATE TABLE and splits it.
func readTable(ctx context.Context, view *sql.Conn, tn tableName) (tableDef, error) {
	row, err := showCreate(ctx, view, "SHOW CREATE TABLE "+tn.quoted())
	if err != nil {
		return tableDef{}, fmt.Errorf("table %s: SHOW CREATE TABLE: %w", tn.quoted(), err)
	}
	create, ok := row["Create Table"]
	if !ok {
		return tableDef{}, fmt.Errorf("table %s is not a base table (a view?): migrate base tables; views are created after them", tn.quoted())
	}
	t, err := splitTable(tn.name, create)
	if err != nil {
		return tableDef{}, fmt.Errorf("table %s: %w", tn.quoted(), err)
	}
	return t, nil
}

// splitTable splits SHOW CREATE TABLE's statement into what is created before the
// rows and what is built after. Kept in create, although secondary: a table without
// a primary key keeps its UNIQUE keys (InnoDB clusters its rows by the first UNIQUE
// NOT NULL one, and the change stream identifies them by it), and an AUTO_INCREMENT
// column that does not lead the primary key keeps the index that makes it valid (it
// must lead an index from CREATE TABLE on).
func splitTable(name, create string) (tableDef, error) {
	t := tableDef{name: name}
	if !strings.HasPrefix(create, "CREATE TABLE "+quote(name)+" (") {
		return t, fmt.Errorf("SHOW CREATE TABLE printed %.60q..., not CREATE TABLE %s (...)", create, quote(name))
	}
	head, elems, tail, err := splitList(create)
	if err != nil {
		return t, err
	}
	var parts []tablePart
	hasPrimary := false
	autoIncrement := ""
	for _, e := range elems {
		p, err := parsePart(e)
		if err != nil {
			return t, err
		}
		hasPrimary = hasPrimary || p.kind == partPrimary
		if p.kind == partColumn && p.autoIncrement {
			autoIncrement = p.name
		}
		parts = append(parts, p)
	}
	keep := keptIndex(parts, autoIncrement, hasPrimary)
	var kept []string
	for i, p := range parts {
		switch {
		case p.kind == partIndex && !keep[i]:
			t.indexes = append(t.indexes, indexDef{name: p.name, def: p.text, fulltext: p.fulltext})
		case p.kind == partForeignKey:
			t.foreignKeys = append(t.foreignKeys, p.fk)
		default:
			kept = append(kept, p.text)
		}
	}
	t.create = head + "\n  " + strings.Join(kept, ",\n  ") + "\n" + tail
	return t, nil
}

// keptIndex says which secondary indexes CREATE TABLE keeps (by the part's position):
// a keyless table's UNIQUE keys, and the index an AUTO_INCREMENT column needs when
// the primary key does not start with it (the first index it leads, or else the
// first it is in: MyISAM and Aria take it in second place) with every index before
// it. The server keeps a table's indexes of a kind (UNIQUE, plain, FULLTEXT) in the
// order they were made: one made before those before it would come first.
func keptIndex(parts []tablePart, autoIncrement string, hasPrimary bool) map[int]bool {
	keep := map[int]bool{}
	for i, p := range parts {
		if p.kind == partIndex && p.unique && !hasPrimary {
			keep[i] = true
		}
	}
	if autoIncrement == "" {
		return keep
	}
	valid := -1
	for _, leads := range []bool{true, false} {
		for i, p := range parts {
			if (p.kind == partPrimary || p.kind == partIndex) && p.has(autoIncrement, leads) {
				valid = i
				break
			}
		}
		if valid >= 0 {
			break
		}
	}
	for i := 0; valid >= 0 && i <= valid; i++ {
		if parts[i].kind == partIndex {
			keep[i] = true
		}
	}
	return keep
}

// The parts of a CREATE TABLE's list.
const (
	partColumn     = iota
	partPrimary    // PRIMARY KEY
	partIndex      // UNIQUE, plain, FULLTEXT or SPATIAL KEY
	partForeignKey // CONSTRAINT ... FOREIGN KEY
	partOther      // CHECK constraints, PERIOD FOR, what else the server prints
)

// tablePart is one part of a CREATE TABLE's list.
type tablePart struct {
	kind          int
	text          string
	name          string   // a column's or an index's
	columns       []string // an index's
	unique        bool
	fulltext      bool
	autoIncrement bool // a column's
	fk            foreignKey
}

// has says whether the index (or primary key) has the column, first if leads.
func (p tablePart) has(column string, leads bool) bool {
	for i, c := range p.columns {
		if c == column && (i == 0 || !leads) {
			return true
		}
	}
	return false
}

// parsePart tells what one part of a CREATE TABLE's list is.
func parsePart(text string) (tablePart, error) {
	p := tablePart{text: text, kind: partOther}
	toks := lex(text)
	if len(toks) == 0 {
		return p, fmt.Errorf("an empty part in SHOW CREATE TABLE's list")
	}
	first := toks[0]
	if first.kind == tokIdent {
		p.kind, p.name = partColumn, first.ident()
		for _, tk := range toks[1:] {
			if tk.isWord("AUTO_INCREMENT") {
				p.autoIncrement = true
			}
		}
		return p, nil
	}
	switch strings.ToUpper(first.text) {
	case "PRIMARY":
		p.kind = partPrimary
		p.columns = listAfter(toks, 0)
	case "UNIQUE", "KEY", "INDEX", "FULLTEXT", "SPATIAL":
		p.kind = partIndex
		p.unique = first.isWord("UNIQUE")
		p.fulltext = first.isWord("FULLTEXT")
		for i, tk := range toks {
			if tk.kind == tokIdent {
				p.name = tk.ident()
				p.columns = listAfter(toks, i)
				break
			}
		}
		if p.name == "" {
			return p, fmt.Errorf("an index without a name in SHOW CREATE TABLE: %s", text)
		}
	case "CONSTRAINT":
		if len(toks) > 2 && toks[2].isWord("FOREIGN") {
			fk, err := parseForeignKey(toks, text)
			if err != nil {
				return p, err
			}
			p.kind, p.name, p.fk = partForeignKey, fk.name, fk
		}
	}
	return p, nil
}

// parseForeignKey reads CONSTRAINT `n` FOREIGN KEY (`a`, ...) REFERENCES [`db`.]`t` (`x`, ...) ...
func parseForeignKey(toks []token, text string) (foreignKey, error) {
	fk := foreignKey{name: toks[1].ident(), def: text}
	fk.columns = listAfter(toks, 3)
	for i, tk := range toks {
		if !tk.isWord("REFERENCES") || i+1 >= len(toks) {
			continue
		}
		j := i + 1
		fk.refTable = toks[j].ident()
		if j+2 < len(toks) && toks[j+1].text == "." && toks[j+2].kind == tokIdent {
			j += 2
			fk.refSchema, fk.refTable = fk.refTable, toks[j].ident()
		}
		fk.refColumns = listAfter(toks, j)
		break
	}
	if fk.refTable == "" || len(fk.columns) == 0 || len(fk.columns) != len(fk.refColumns) {
		return fk, fmt.Errorf("a foreign key SHOW CREATE TABLE printed in a form cutover does not read: %s", text)
	}
	return fk, nil
}

// listAfter is the names of the first parenthesised list after token i: an index's
// columns (`a`(10) is a prefix of a, ASC and DESC follow).
func listAfter(toks []token, i int) []string {
	var names []string
	depth := 0
	expect := false
	for _, tk := range toks[i+1:] {
		switch {
		case tk.text == "(":
			depth++
			expect = depth == 1
		case tk.text == ")":
			depth--
			if depth == 0 {
				return names
			}
		case depth == 1 && tk.text == ",":
			expect = true
		case expect && tk.kind == tokIdent:
			names = append(names, tk.ident())
			expect = false
		}
	}
	return names
}

// splitList splits a statement at its first parenthesised list: what comes before it
// with the opening parenthesis, its parts (split at the commas outside strings, names
// and inner parentheses, trimmed), and the closing parenthesis with what follows.
func splitList(stmt string) (head string, parts []string, tail string, err error) {
	toks := lex(stmt)
	depth, start := 0, -1
	for _, tk := range toks {
		switch tk.text {
		case "(":
			depth++
			if depth == 1 && start < 0 {
				head, start = stmt[:tk.end], tk.end
			}
		case ")":
			depth--
			if depth == 0 && start >= 0 {
				parts = append(parts, strings.TrimSpace(stmt[start:tk.start]))
				return head, parts, stmt[tk.start:], nil
			}
		case ",":
			if depth == 1 {
				parts = append(parts, strings.TrimSpace(stmt[start:tk.start]))
				start = tk.end
			}
		}
	}
	return "", nil, "", fmt.Errorf("no parenthesised list in %.60q...", stmt)
}

// A small lexer for what SHOW CREATE prints: names in backquotes, strings in single
// or double quotes with backslash escapes, words (keywords, numbers, introducers),
// and single punctuation characters.
const (
	tokIdent  = 'i'
	tokString = 's'
	tokWord   = 'w'
	tokPunct  = 'p'
)

type token struct {
	kind       byte
	text       string
	start, end int
}

// ident is a backquoted name without its quotes.
func (t token) ident() string {
	if t.kind != tokIdent {
		return t.text
	}
	return strings.ReplaceAll(t.text[1:len(t.text)-1], "``", "`")
}

func (t token) isWord(w string) bool { return t.kind == tokWord && strings.EqualFold(t.text, w) }

func lex(s string) []token {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		j := i + 1
		kind := byte(tokPunct)
		switch {
		case c == ' ' || c == '\n' || c == '\t' || c == '\r':
			i++
			continue
		case c == '`':
			kind = tokIdent
			for j < len(s) && (s[j] != '`' || j+1 < len(s) && s[j+1] == '`') {
				if s[j] == '`' {
					j++
				}
				j++
			}
			j = min(j+1, len(s))
		case c == '\'' || c == '"':
			kind = tokString
			for j < len(s) && (s[j] != c || j+1 < len(s) && s[j+1] == c) {
				if s[j] == '\\' || s[j] == c {
					j++
				}
				j++
			}
			j = min(j+1, len(s))
		case isWordByte(c):
			kind = tokWord
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
		}
		toks = append(toks, token{kind: kind, text: s[i:j], start: i, end: j})
		i = j
	}
	return toks
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// readViews reads the database's views with SHOW CREATE VIEW, without their DEFINER
// clause: on the target the migration role defines them (the source's definer may
// not exist there, and only a role with SET USER may name another).
func readViews(ctx context.Context, view *sql.Conn, source string) ([]objectDef, error) {
	names, err := queryStrings(ctx, view, `SELECT TABLE_NAME FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'VIEW' ORDER BY TABLE_NAME`, source)
	if err != nil {
		return nil, fmt.Errorf("list the views of %s: %w", quote(source), err)
	}
	var views []objectDef
	for _, name := range names {
		q := tableName{source, name}.quoted()
		row, err := showCreate(ctx, view, "SHOW CREATE VIEW "+q)
		if err != nil {
			return nil, fmt.Errorf("view %s: SHOW CREATE VIEW: %w (the source's role needs SHOW VIEW and SELECT on it)", q, err)
		}
		v := objectDef{kind: "view", name: name, charset: row["character_set_client"], collation: row["collation_connection"]}
		if v.create, v.definer, err = withoutDefiner(row["Create View"], source, name); err != nil {
			return nil, fmt.Errorf("view %s: %w", q, err)
		}
		views = append(views, v)
	}
	return views, nil
}

// viewHead is SHOW CREATE VIEW's statement up to the view's name: the DEFINER's user
// and host are names in backquotes (or CURRENT_ROLE-like words), the name qualified
// when the session's database is not the view's.
var viewHead = regexp.MustCompile("^(CREATE (?:ALGORITHM=\\w+ )?)(?:DEFINER=((?:`(?:[^`]|``)*`|\\w+)(?:@(?:`(?:[^`]|``)*`|\\w+))?) )?((?:SQL SECURITY \\w+ )?VIEW )")

// withoutDefiner is a view's CREATE statement without its DEFINER clause and with
// its name unqualified, and the definer.
func withoutDefiner(create, source, name string) (string, string, error) {
	m := viewHead.FindStringSubmatchIndex(create)
	if m == nil {
		return "", "", fmt.Errorf("SHOW CREATE VIEW printed %.60q..., which cutover does not read", create)
	}
	definer := ""
	if m[4] >= 0 {
		definer = create[m[4]:m[5]]
	}
	rest := create[m[1]:]
	rest = strings.TrimPrefix(rest, quote(source)+".")
	body, ok := strings.CutPrefix(rest, quote(name)+" AS ")
	if !ok {
		return "", "", fmt.Errorf("SHOW CREATE VIEW printed %.60q..., not the view's name", create)
	}
	return create[m[2]:m[3]] + create[m[6]:m[7]] + quote(name) + " AS " + body, definer, nil
}

// readTriggers reads the triggers on the migrated tables.
func readTriggers(ctx context.Context, view *sql.Conn, source string, migrated map[string]bool) ([]objectDef, error) {
	rows, err := queryRows(ctx, view, `SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, DEFINER FROM information_schema.TRIGGERS
		WHERE TRIGGER_SCHEMA = ? ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER`, source)
	if err != nil {
		return nil, fmt.Errorf("list the triggers of %s: %w", quote(source), err)
	}
	var triggers []objectDef
	for _, r := range rows {
		if !migrated[r[1]] {
			continue
		}
		t := objectDef{kind: "trigger", name: r[0], table: r[1], definer: r[2]}
		if err := t.read(ctx, view, source, "SHOW CREATE TRIGGER", "SQL Original Statement"); err != nil {
			return nil, err
		}
		triggers = append(triggers, t)
	}
	return triggers, nil
}

// readRoutines reads the database's stored procedures, functions and packages.
func readRoutines(ctx context.Context, view *sql.Conn, source string) ([]objectDef, error) {
	rows, err := queryRows(ctx, view, `SELECT ROUTINE_NAME, ROUTINE_TYPE, DEFINER FROM information_schema.ROUTINES
		WHERE ROUTINE_SCHEMA = ? ORDER BY ROUTINE_TYPE, ROUTINE_NAME`, source)
	if err != nil {
		return nil, fmt.Errorf("list the routines of %s: %w", quote(source), err)
	}
	var routines []objectDef
	for _, r := range rows {
		kind := strings.ToLower(r[1])
		rt := objectDef{kind: kind, name: r[0], definer: r[2]}
		column := "Create " + strings.ToUpper(kind[:1]) + kind[1:] // Create Procedure, Create Package body
		if kind == "package body" {
			column = "Create Package Body"
		}
		if err := rt.read(ctx, view, source, "SHOW CREATE "+strings.ToUpper(kind), column); err != nil {
			return nil, err
		}
		routines = append(routines, rt)
	}
	return routines, nil
}

// readEvents reads the database's events.
func readEvents(ctx context.Context, view *sql.Conn, source string) ([]objectDef, error) {
	rows, err := queryRows(ctx, view, `SELECT EVENT_NAME, DEFINER, STATUS FROM information_schema.EVENTS
		WHERE EVENT_SCHEMA = ? ORDER BY EVENT_NAME`, source)
	if err != nil {
		return nil, fmt.Errorf("list the events of %s: %w", quote(source), err)
	}
	var events []objectDef
	for _, r := range rows {
		e := objectDef{kind: "event", name: r[0], definer: r[1], status: r[2]}
		if err := e.read(ctx, view, source, "SHOW CREATE EVENT", "Create Event"); err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	return events, nil
}

// read fills a trigger's, routine's or event's definition from its SHOW CREATE.
func (o *objectDef) read(ctx context.Context, view *sql.Conn, source, show, column string) error {
	q := tableName{source, o.name}.quoted()
	row, err := showCreate(ctx, view, show+" "+q)
	if err != nil {
		return fmt.Errorf("%s %s: %s: %w", o.kind, q, show, err)
	}
	o.create, o.sqlMode, o.timeZone = row[column], row["sql_mode"], row["time_zone"]
	o.charset, o.collation = row["character_set_client"], row["collation_connection"]
	return nil
}

// queryStrings returns the first column of a query's rows.
func queryStrings(ctx context.Context, c querier, query string, args ...any) ([]string, error) {
	rows, err := queryRows(ctx, c, query, args...)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r[0]
	}
	return out, nil
}

// setUpDDL sets the session that creates the objects: statements sent in UTF-8 (what
// SHOW CREATE printed them in), and the sql_mode they were printed for (see
// printPlainly), without strict mode, as what the source took must be taken (a zero
// date's default), but NO_ENGINE_SUBSTITUTION, so that a storage engine the target
// lacks is an error, not a table in another engine. What the target changes of a
// definition is a warning, which ddlWarnings makes an error.
func setUpDDL(ctx context.Context, conn *sql.Conn) error {
	for _, q := range []string{"SET NAMES utf8mb4", "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'", "SET SESSION foreign_key_checks = 1"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("set up the target's session for the schema (%s): %w", q, err)
		}
	}
	return nil
}

// harmlessWarnings are warnings a definition gives on a target that changes nothing
// of it: MySQL 8's deprecations (an integer's display width, utf8 as utf8mb3's name,
// a syntax).
var harmlessWarnings = map[int]bool{1287: true, 1681: true, 3719: true, 3778: true}

// ddlWarnings makes the warnings of the last statement an error: a definition the
// target took changed (a row format it does not have, a default it cuts).
func ddlWarnings(ctx context.Context, conn *sql.Conn) error { return ddlWarningsBut(ctx, conn, nil) }

// ddlWarningsBut is ddlWarnings but for the warnings harmless says are.
func ddlWarningsBut(ctx context.Context, conn *sql.Conn, harmless func(msg string) bool) error {
	rows, err := queryRows(ctx, conn, "SHOW WARNINGS")
	if err != nil {
		return fmt.Errorf("read the warnings: %w", err)
	}
	var msgs []string
	for _, r := range rows {
		var code int
		_, _ = fmt.Sscan(r[1], &code)
		if r[0] != "Note" && !harmlessWarnings[code] && (harmless == nil || !harmless(r[2])) {
			msgs = append(msgs, fmt.Sprintf("%s %s: %s", r[0], r[1], r[2]))
		}
	}
	if len(msgs) > 0 {
		return fmt.Errorf("the target changed the definition: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// createTables creates the tables on the target database (pre-data); tables that
// exist already are an error naming them (a rerun decides before calling).
func (s *schema) createTables(ctx context.Context, conn *sql.Conn, target string) error {
	if err := setUpDDL(ctx, conn); err != nil {
		return err
	}
	present, err := queryStrings(ctx, conn, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", target)
	if err != nil {
		return fmt.Errorf("list the tables of the target's %s: %w", quote(target), err)
	}
	there := map[string]bool{}
	for _, n := range present {
		there[n] = true
	}
	var clash []string
	for _, t := range s.tables {
		if there[t.name] {
			clash = append(clash, quote(t.name))
		}
	}
	if len(clash) > 0 {
		return fmt.Errorf("the target's database %s has the tables %s already: drop them to load them again, or leave them out of the migration", quote(target), strings.Join(clash, ", "))
	}
	for _, t := range s.tables {
		q := tableName{target, t.name}.quoted()
		create := "CREATE TABLE " + q + strings.TrimPrefix(t.create, "CREATE TABLE "+quote(t.name))
		if _, err := conn.ExecContext(ctx, create); err != nil {
			return fmt.Errorf("create table %s on the target: %w", q, err)
		}
		if err := ddlWarnings(ctx, conn); err != nil {
			return fmt.Errorf("create table %s on the target: %w", q, err)
		}
	}
	return nil
}

// buildObjects adds the secondary indexes and foreign keys, then creates the views
// (post-data). What is there already (a rerun after a crash) is left as it is. The
// indexes of every table come first: a foreign key needs the index of the columns it
// references, which may be a secondary one. Whatever cannot be built is an error at
// the end, after the rest was built. The connection's database is target after.
func (s *schema) buildObjects(ctx context.Context, conn *sql.Conn, target string) error {
	if err := setUpDDL(ctx, conn); err != nil {
		return err
	}
	for _, t := range s.tables {
		if err := t.buildIndexes(ctx, conn, target); err != nil {
			return err
		}
	}
	var errs []error
	for _, t := range s.tables {
		if err := t.addForeignKeys(ctx, conn, target); err != nil {
			errs = append(errs, err)
		}
	}
	// Routines before the views, which may call them.
	if err := s.createRoutines(ctx, conn, target); err != nil {
		errs = append(errs, err)
	}
	if err := s.createViews(ctx, conn, target); err != nil {
		errs = append(errs, err)
	}
	if err := s.createEvents(ctx, conn, target); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// buildIndexes adds the secondary indexes the table lacks on the target: all but the
// FULLTEXT ones in one ALTER TABLE, which InnoDB builds in one scan of the table;
// each FULLTEXT one alone, as InnoDB builds only one in place (two in one statement
// copy the whole table).
func (t *tableDef) buildIndexes(ctx context.Context, conn *sql.Conn, target string) error {
	q := tableName{target, t.name}.quoted()
	present, err := namesOn(ctx, conn, `SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, target, t.name)
	if err != nil {
		return fmt.Errorf("table %s: read its indexes on the target: %w", q, err)
	}
	var batch []indexDef
	var alone [][]indexDef
	for _, ix := range t.indexes {
		switch {
		case present[ix.name]:
		case ix.fulltext:
			alone = append(alone, []indexDef{ix})
		default:
			batch = append(batch, ix)
		}
	}
	for _, group := range append([][]indexDef{batch}, alone...) {
		if len(group) == 0 {
			continue
		}
		adds := make([]string, len(group))
		names := make([]string, len(group))
		for i, ix := range group {
			adds[i], names[i] = "ADD "+ix.def, quote(ix.name)
		}
		if err := alter(ctx, conn, q, adds); err != nil {
			return fmt.Errorf("table %s: add the indexes %s: %w", q, strings.Join(names, ", "), err)
		}
	}
	return nil
}

// alter runs ALTER TABLE with the clauses, and makes its warnings an error.
func alter(ctx context.Context, conn *sql.Conn, table string, clauses []string) error {
	if _, err := conn.ExecContext(ctx, "ALTER TABLE "+table+" "+strings.Join(clauses, ", ")); err != nil {
		return err
	}
	return ddlWarnings(ctx, conn)
}

// namesOn is the set of the first column of a query's rows.
func namesOn(ctx context.Context, conn querier, query string, args ...any) (map[string]bool, error) {
	names, err := queryStrings(ctx, conn, query, args...)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, n := range names {
		set[n] = true
	}
	return set, nil
}

// addForeignKeys adds the foreign keys the table lacks on the target, after checking
// the rows against each.
//
// The rows are checked by a query, and the keys then added with foreign_key_checks
// off, which InnoDB does in place, at no cost. With foreign_key_checks on, the server
// checks the rows itself, but only by ALGORITHM=COPY: a copy of the whole table for
// each ALTER TABLE. Without any check, rows that break a constraint would pass in
// silence: the source's rows can, when they were written with foreign_key_checks off
// there. The query finds them through the referenced table's index, as InnoDB does,
// with the same equality (MATCH SIMPLE: a row with a NULL in the key is not checked),
// and a violation is an error naming the table, the constraint and a row.
func (t *tableDef) addForeignKeys(ctx context.Context, conn *sql.Conn, target string) error {
	if len(t.foreignKeys) == 0 {
		return nil
	}
	q := tableName{target, t.name}.quoted()
	present, err := namesOn(ctx, conn, `SELECT CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS
		WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`, target, t.name)
	if err != nil {
		return fmt.Errorf("table %s: read its foreign keys on the target: %w", q, err)
	}
	var adds []string
	var errs []error
	for _, fk := range t.foreignKeys {
		if present[fk.name] {
			continue
		}
		if err := fk.checkRows(ctx, conn, target, t.name); err != nil {
			errs = append(errs, fmt.Errorf("table %s: foreign key %s: %w", q, quote(fk.name), err))
			continue
		}
		adds = append(adds, "ADD "+fk.def)
	}
	if len(adds) > 0 {
		if err := addUnchecked(ctx, conn, q, adds); err != nil {
			errs = append(errs, fmt.Errorf("table %s: add its foreign keys: %w", q, err))
		}
	}
	return errors.Join(errs...)
}

// addUnchecked adds checked foreign keys with foreign_key_checks off, and turns it
// back on.
func addUnchecked(ctx context.Context, conn *sql.Conn, table string, adds []string) error {
	if _, err := conn.ExecContext(ctx, "SET SESSION foreign_key_checks = 0"); err != nil {
		return err
	}
	err := alter(ctx, conn, table, adds)
	if _, err2 := conn.ExecContext(context.WithoutCancel(ctx), "SET SESSION foreign_key_checks = 1"); err == nil {
		err = err2
	}
	return err
}

// referenced is the table a foreign key references on the target: in the target's
// database, or in the other database it names, as written.
func (fk *foreignKey) referenced(target string) string {
	if fk.refSchema != "" {
		return tableName{fk.refSchema, fk.refTable}.quoted()
	}
	return tableName{target, fk.refTable}.quoted()
}

// checkRows finds a row of the table whose key (no part NULL) has no row in the
// referenced table.
func (fk *foreignKey) checkRows(ctx context.Context, conn *sql.Conn, target, table string) error {
	var cols, notNull, match []string
	for i, c := range fk.columns {
		cols = append(cols, "c."+quote(c))
		notNull = append(notNull, "c."+quote(c)+" IS NOT NULL")
		match = append(match, "p."+quote(fk.refColumns[i])+" = c."+quote(c))
	}
	parent := fk.referenced(target)
	query := fmt.Sprintf("SELECT %s FROM %s c WHERE %s AND NOT EXISTS (SELECT 1 FROM %s p WHERE %s) LIMIT 1",
		strings.Join(cols, ", "), tableName{target, table}.quoted(), strings.Join(notNull, " AND "), parent, strings.Join(match, " AND "))
	rows, err := queryRows(ctx, conn, query)
	if err != nil {
		var me *driver.MySQLError
		if errors.As(err, &me) && me.Number == 1146 {
			return fmt.Errorf("the table it references, %s, is not on the target: create it there (or leave the constraint out on the source), then run again: %w", parent, err)
		}
		return fmt.Errorf("check the rows against %s: %w", parent, err)
	}
	if len(rows) == 0 {
		return nil
	}
	names := make([]string, len(fk.columns))
	for i, c := range fk.columns {
		names[i] = quote(c)
	}
	return fmt.Errorf("the row with (%s) = (%s) has no row in %s: the rows copied break the constraint (on the source, rows written while foreign_key_checks was off): correct them on the source, or drop the constraint there, then run again",
		strings.Join(names, ", "), strings.Join(rows[0], ", "), parent)
}

// createViews creates the views the target lacks, each in the collation_connection
// it was created in on the source (its strings' character set and collation). A
// view may use another: the views are created round after round until a round
// creates none; the ones left are an error each, with the server's.
func (s *schema) createViews(ctx context.Context, conn *sql.Conn, target string) (err error) {
	if len(s.views) == 0 {
		return nil
	}
	// SHOW CREATE VIEW leaves the names of the view's own database unqualified when
	// the session's database is the view's: they must name the target's.
	if _, err := conn.ExecContext(ctx, "USE "+quote(target)); err != nil {
		return fmt.Errorf("use the target's database %s: %w", quote(target), err)
	}
	defer func() {
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "SET NAMES utf8mb4"); rerr != nil {
			err = errors.Join(err, fmt.Errorf("set the session's character set back: %w", rerr))
		}
	}()
	present, err := namesOn(ctx, conn, `SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'VIEW'`, target)
	if err != nil {
		return fmt.Errorf("list the views of the target's %s: %w", quote(target), err)
	}
	var errs []error
	failed := map[string]error{}
	var pending []objectDef
	for _, v := range s.views {
		if !present[v.name] {
			pending = append(pending, v)
		}
	}
	for len(pending) > 0 {
		var next []objectDef
		for _, v := range pending {
			if err := s.createView(ctx, conn, target, v); err != nil {
				failed[v.name] = err
				next = append(next, v)
			}
		}
		if len(next) == len(pending) {
			break
		}
		pending = next
	}
	for _, v := range pending {
		errs = append(errs, fmt.Errorf("view %s: %w: create what it uses on the target (a table left out of the migration, a routine: the load creates none), then run again",
			tableName{target, v.name}.quoted(), failed[v.name]))
	}
	return errors.Join(errs...)
}

// createView creates one view on the target, its source database's names changed
// to the target's.
func (s *schema) createView(ctx context.Context, conn *sql.Conn, target string, v objectDef) error {
	head, body, ok := strings.Cut(v.create, "VIEW "+quote(v.name)+" AS ")
	if !ok {
		return fmt.Errorf("its definition %.60q... does not name it", v.create)
	}
	body, err := retarget(body, s.source, target)
	if err != nil {
		return err
	}
	charset := "utf8mb4" // what SHOW CREATE printed it in
	if strings.HasPrefix(v.charset, "utf8") {
		charset = v.charset
	}
	collation := v.collation
	if collation == "" {
		collation = "utf8mb4_general_ci" // the source did not say
	}
	if _, err := conn.ExecContext(ctx, "SET SESSION character_set_client = ?, SESSION collation_connection = ?", charset, collation); err != nil {
		return fmt.Errorf("set its collation_connection %s: %w", collation, err)
	}
	create := head + "VIEW " + tableName{target, v.name}.quoted() + " AS " + body
	if _, err := conn.ExecContext(ctx, create); err != nil {
		return err
	}
	return ddlWarnings(ctx, conn)
}

// retarget changes, in a view's definition, the names qualified by the source's
// database (`src`.`t`, `src`.`t`.`c`, nextval(`src`.`s`)) to the target's, outside
// strings. A name that is the source database's and qualifies nothing is an alias
// (`t` `src`), which makes `src`.`c` ambiguous: an error.
func retarget(body, source, target string) (string, error) {
	if source == target {
		return body, nil
	}
	toks := lex(body)
	var b strings.Builder
	last := 0
	for i, tk := range toks {
		if tk.kind != tokIdent || tk.ident() != source {
			continue
		}
		afterDot := i > 0 && toks[i-1].text == "." && toks[i-1].end == tk.start
		beforeDot := i+1 < len(toks) && toks[i+1].text == "." && toks[i+1].start == tk.end
		switch {
		case beforeDot && !afterDot:
			b.WriteString(body[last:tk.start])
			b.WriteString(quote(target))
			last = tk.end
		case !beforeDot && !afterDot && !(i > 0 && toks[i-1].isWord("AS")):
			return "", fmt.Errorf("its definition has an alias %s, the source database's name, which makes its names ambiguous: rename the alias on the source, or create the view on the target by hand", quote(source))
		}
	}
	b.WriteString(body[last:])
	return b.String(), nil
}

// notCarried says, one line each, what the load does not carry over as the source
// has it: the definers of views and routines, the foreign keys to tables of other
// databases, the triggers, which the load does not create, and the events, created
// disabled.
func (s *schema) notCarried() []string {
	var lines []string
	for _, v := range s.views {
		if v.definer != "" {
			lines = append(lines, fmt.Sprintf("view %s: created with the target's migration role as DEFINER (%s on the source), SQL SECURITY as on the source", quote(v.name), v.definer))
		}
	}
	for _, t := range s.tables {
		for _, fk := range t.foreignKeys {
			if fk.refSchema != "" {
				lines = append(lines, fmt.Sprintf("foreign key %s of %s: references %s, in another database, as written: that table must be on the target", quote(fk.name), quote(t.name), tableName{fk.refSchema, fk.refTable}.quoted()))
			}
		}
	}
	for _, tr := range s.triggers {
		lines = append(lines, fmt.Sprintf("trigger %s on %s: not created by the copy (it would fire on the rows cutover writes); cutover switch moves it to the target when the applications move (after a one-shot copy, create it there yourself: SHOW CREATE TRIGGER %[1]s on the source gives it)", quote(tr.name), quote(tr.table)))
	}
	for _, r := range s.routines {
		if r.definer != "" && r.create != "" {
			lines = append(lines, fmt.Sprintf("%s %s: created with the target's migration role as DEFINER (%s on the source)", r.kind, quote(r.name), r.definer))
		}
	}
	for _, e := range s.events {
		if e.create != "" {
			lines = append(lines, fmt.Sprintf("event %s (%s on the source): created DISABLED on the target, with the migration role as DEFINER; cutover switch disables it on the source and enables it on the target (after a one-shot copy, ALTER EVENT %[1]s DISABLE on the source and ALTER EVENT %[1]s ENABLE on the target yourself: enabled on both, it runs on both)", quote(e.name), e.status))
		}
	}
	for _, objects := range [][]objectDef{s.triggers, s.routines, s.events} {
		for _, o := range objects {
			if o.create == "" {
				lines = append(lines, fmt.Sprintf("%s %s: the source's role may not read its definition (SHOW CREATE gave none): read it there as its definer", o.kind, quote(o.name)))
			}
		}
	}
	return lines
}
