package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cutover-dev/cutover/cdc"
	neutral "github.com/cutover-dev/cutover/schema"
)

// The source's tables for a target of another engine: readTables reads them from
// information_schema into the engine-neutral neutral.Schema, each column's type with
// the same Kind, Name and Width as the binary log's TABLE_MAP gives it (see
// binlogStream.newTable), so that the full load, the change stream and the target's
// DDL agree on every column. Two things the log cannot know are taken from the
// catalog: a TINYINT(1) keeps its display width in Name ("tinyint(1)"), for a target
// that makes it a boolean; and MariaDB's JSON, a LONGTEXT with a CHECK
// (json_valid(`col`)) the server adds, is KindJSON ("json"), its check left out.

// columnType maps a column of information_schema.COLUMNS to its cdc.Type: dataType
// is DATA_TYPE, columnType COLUMN_TYPE, the others the columns of those names
// (charset is CHARACTER_SET_NAME, "" for NULL). A type this version does not know is
// KindOther, named by its COLUMN_TYPE.
func columnType(dataType, columnType string, charMaxLen, numPrecision, numScale, datetimePrecision sql.NullInt64, charset string) (cdc.Type, error) {
	dt := strings.ToLower(dataType)
	ct := strings.ToLower(columnType)
	unsigned := strings.Contains(ct, "unsigned")
	unsignedName := ""
	if unsigned {
		unsignedName = " unsigned"
	}
	widths := map[string]int{"tinyint": 1, "smallint": 2, "mediumint": 3, "int": 4, "integer": 4, "bigint": 8}
	switch dt {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		w := widths[dt]
		names := map[int]string{1: "tinyint", 2: "smallint", 3: "mediumint", 4: "int", 8: "bigint"}
		name := names[w]
		if strings.HasPrefix(ct, "tinyint(1)") {
			name = "tinyint(1)" // a boolean, to a target that has one
		}
		t := cdc.Type{Kind: cdc.KindInt, Name: name + unsignedName, Width: w}
		if unsigned {
			t.Kind = cdc.KindUint
		}
		return t, nil
	case "year":
		return cdc.Type{Kind: cdc.KindUint, Name: "year", Width: 2}, nil
	case "decimal", "numeric":
		p, s := int(numPrecision.Int64), int(numScale.Int64)
		return cdc.Type{Kind: cdc.KindDecimal, Name: fmt.Sprintf("decimal(%d,%d)%s", p, s, unsignedName), Precision: p, Scale: s}, nil
	case "float":
		return cdc.Type{Kind: cdc.KindFloat32, Name: "float" + unsignedName}, nil
	case "double", "double precision", "real":
		return cdc.Type{Kind: cdc.KindFloat64, Name: "double" + unsignedName}, nil
	case "bit":
		n := int(numPrecision.Int64)
		return cdc.Type{Kind: cdc.KindBits, Name: fmt.Sprintf("bit(%d)", n), Width: n, Fixed: true}, nil
	case "date":
		return cdc.Type{Kind: cdc.KindDate, Name: "date"}, nil
	case "datetime", "timestamp", "time":
		fsp := int(datetimePrecision.Int64)
		kind := map[string]cdc.Kind{"datetime": cdc.KindTimestamp, "timestamp": cdc.KindTimestampTZ, "time": cdc.KindTime}[dt]
		return cdc.Type{Kind: kind, Name: dt + fspName(fsp), Precision: fsp}, nil
	case "varchar", "char":
		n := int(charMaxLen.Int64)
		return cdc.Type{Kind: cdc.KindText, Name: fmt.Sprintf("%s(%d)", dt, n), Width: n, Fixed: dt == "char"}, nil
	case "varbinary", "binary":
		n := int(charMaxLen.Int64)
		return cdc.Type{Kind: cdc.KindBytes, Name: fmt.Sprintf("%s(%d)", dt, n), Width: n, Fixed: dt == "binary"}, nil
	case "tinytext", "text", "mediumtext", "longtext":
		// a TEXT's limit is in bytes, not characters: no Width (as the log)
		return cdc.Type{Kind: cdc.KindText, Name: dt}, nil
	case "tinyblob", "blob", "mediumblob", "longblob":
		width := map[string]int{"tinyblob": 255, "blob": 65535, "mediumblob": 16777215}[dt]
		return cdc.Type{Kind: cdc.KindBytes, Name: dt, Width: width}, nil
	case "enum", "set":
		labels, err := parseLabels(columnType)
		if err != nil {
			return cdc.Type{}, err
		}
		kind := cdc.KindEnum
		if dt == "set" {
			kind = cdc.KindSet
		}
		return cdc.Type{Kind: kind, Name: dt + "(" + labelList(labels) + ")", Labels: labels}, nil
	case "json":
		return cdc.Type{Kind: cdc.KindJSON, Name: "json"}, nil
	case "uuid":
		return cdc.Type{Kind: cdc.KindUUID, Name: "uuid"}, nil
	case "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection", "geomcollection":
		if dt == "geomcollection" {
			dt = "geometrycollection" // MySQL 8's name; the log's is this
		}
		return cdc.Type{Kind: cdc.KindGeometry, Name: dt}, nil
	case "inet4", "inet6", "vector":
		return cdc.Type{Kind: cdc.KindOther, Name: dt}, nil
	}
	return cdc.Type{Kind: cdc.KindOther, Name: ct}, nil
}

// parseLabels reads the labels of an ENUM's or SET's COLUMN_TYPE ("enum('a','it”s')"):
// quoted with ' (a quote doubled, or backslashed, in a label; a backslash escapes).
func parseLabels(columnType string) ([]string, error) {
	_, list, ok := strings.Cut(columnType, "(")
	if !ok || !strings.HasSuffix(list, ")") {
		return nil, fmt.Errorf("the type %q has no list of labels", columnType)
	}
	list = list[:len(list)-1]
	var labels []string
	for i := 0; i < len(list); {
		if list[i] != '\'' {
			return nil, fmt.Errorf("the type %q: a label does not start with a quote at %d", columnType, i)
		}
		label, n, err := unquoteString(list[i:])
		if err != nil {
			return nil, fmt.Errorf("the type %q: %w", columnType, err)
		}
		labels = append(labels, label)
		i += n
		if i < len(list) {
			if list[i] != ',' {
				return nil, fmt.Errorf("the type %q: no comma after a label at %d", columnType, i)
			}
			i++
		}
	}
	return labels, nil
}

// unquoteString reads the string literal quoted with ' at the start of s (a quote
// doubled or backslashed, MySQL's backslash escapes) and returns it and its length.
func unquoteString(s string) (string, int, error) { return neutral.MySQLUnquote(s, '\'') }

var (
	nowDefault    = regexp.MustCompile(`(?i)^(current_timestamp|now|localtimestamp|localtime)(\(\s*(\d)?\s*\))?$`)
	numberLiteral = regexp.MustCompile(`^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$`)
	bitLiteral    = regexp.MustCompile(`^(?i)b'([01]*)'$`)
)

// columnDefault reads a column's COLUMN_DEFAULT: on MariaDB (10.2.7+) an SQL
// expression (NULL, a quoted string, a number, b'101', current_timestamp(3), any
// other expression); on MySQL the value itself, and an expression only where EXTRA
// says DEFAULT_GENERATED (8.0.13+; CURRENT_TIMESTAMP before without it). A constant
// becomes the canonical text of t; one that has none (a zero date) is kept as an
// expression, a literal in MySQL's SQL.
func columnDefault(mariadb bool, raw sql.NullString, extra string, t cdc.Type) *neutral.Default {
	if !raw.Valid {
		return nil
	}
	v := strings.TrimSpace(raw.String)
	isTemporal := t.Kind == cdc.KindTimestamp || t.Kind == cdc.KindTimestampTZ || t.Kind == cdc.KindDate || t.Kind == cdc.KindTime
	if m := nowDefault.FindStringSubmatch(v); m != nil && (isTemporal || mariadb || strings.Contains(strings.ToUpper(extra), "DEFAULT_GENERATED")) {
		p, _ := strconv.Atoi(m[3])
		return &neutral.Default{Now: true, Precision: p}
	}
	var literal string
	if mariadb {
		switch {
		case strings.EqualFold(v, "NULL"):
			return nil
		case strings.HasPrefix(v, "'"):
			s, n, err := unquoteString(v)
			if err != nil || n != len(v) {
				return &neutral.Default{Expr: v}
			}
			literal = s
		case numberLiteral.MatchString(v) || bitLiteral.MatchString(v):
			literal = v
		default:
			return &neutral.Default{Expr: v}
		}
	} else {
		if strings.Contains(strings.ToUpper(extra), "DEFAULT_GENERATED") {
			return &neutral.Default{Expr: v}
		}
		literal = raw.String
	}
	value, err := defaultValue(t, literal)
	if err != nil {
		if mariadb {
			return &neutral.Default{Expr: v}
		}
		return &neutral.Default{Expr: "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(literal) + "'"}
	}
	return &neutral.Default{Value: value}
}

// defaultValue is a column's constant default in the canonical form of t: the
// constant as a CREATE TABLE writes it (a label, not an ENUM's index; b'101' for a
// BIT; a FLOAT's decimal), not as a SELECT reads it.
func defaultValue(t cdc.Type, literal string) (string, error) {
	switch t.Kind {
	case cdc.KindFloat32:
		f, err := strconv.ParseFloat(literal, 32)
		if err != nil {
			return "", err
		}
		return cdc.FormatFloat(f, 32), nil
	case cdc.KindBits:
		var n uint64
		if m := bitLiteral.FindStringSubmatch(literal); m != nil {
			if len(strings.TrimLeft(m[1], "0")) > 64 {
				return "", errors.New("too many bits")
			}
			for _, c := range m[1] {
				n = n<<1 | uint64(c-'0')
			}
		} else {
			var err error
			if n, err = strconv.ParseUint(literal, 10, 64); err != nil {
				return "", err
			}
		}
		b, err := toCanonical(t, strconv.AppendUint(nil, n, 10))
		return string(b), err
	case cdc.KindEnum, cdc.KindSet:
		b, err := fromCanonical(t, []byte(literal))
		return string(b), err
	case cdc.KindDecimal, cdc.KindInt, cdc.KindUint:
		literal = strings.TrimPrefix(literal, "+")
	}
	b, err := toCanonical(t, []byte(literal))
	return string(b), err
}

// readTables reads the tables' definitions (in the read view of a snapshot, view;
// information_schema is read as it is now) and db's views, triggers (on the tables),
// routines and events.
func readTables(ctx context.Context, view *sql.Conn, db string, tables []tableName) (_ *neutral.Schema, err error) {
	var version string
	if err := view.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return nil, fmt.Errorf("read the server's version: %w", err)
	}
	c := &catalogReader{view: view, mariadb: strings.Contains(strings.ToLower(version), "mariadb")}
	if !c.mariadb {
		// MySQL 8 caches TABLES.AUTO_INCREMENT for a day by default
		var expiry sql.NullString
		if view.QueryRowContext(ctx, "SELECT @@SESSION.information_schema_stats_expiry").Scan(&expiry) == nil && expiry.Valid {
			if _, err := view.ExecContext(ctx, "SET SESSION information_schema_stats_expiry = 0"); err != nil {
				return nil, fmt.Errorf("set information_schema_stats_expiry: %w", err)
			}
			defer func() {
				_, rerr := view.ExecContext(context.WithoutCancel(ctx), "SET SESSION information_schema_stats_expiry = ?", expiry.String)
				if err == nil && rerr != nil {
					err = fmt.Errorf("restore information_schema_stats_expiry: %w", rerr)
				}
			}()
		}
	}
	if err := c.probe(ctx); err != nil {
		return nil, err
	}
	s := &neutral.Schema{Dialect: "mysql"}
	migrated := map[string]bool{}
	for _, tn := range tables {
		t, err := c.table(ctx, tn)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", tn.quoted(), err)
		}
		s.Tables = append(s.Tables, t)
		if tn.schema == db {
			migrated[tn.name] = true
		}
	}
	views, err := queryRows(ctx, view, "SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME", db)
	if err != nil {
		return nil, fmt.Errorf("list the views of %s: %w", quote(db), err)
	}
	for _, v := range views {
		s.Objects = append(s.Objects, neutral.Object{Kind: "view", Schema: db, Name: v[0], Definition: v[1]})
	}
	restore, err := printPlainly(ctx, view)
	if err != nil {
		return nil, err
	}
	defer func() {
		if rerr := restore(); err == nil && rerr != nil {
			err = fmt.Errorf("restore the read view's sql_mode: %w", rerr)
		}
	}()
	var objects []objectDef
	for _, read := range []func() ([]objectDef, error){
		func() ([]objectDef, error) { return readTriggers(ctx, view, db, migrated) },
		func() ([]objectDef, error) { return readRoutines(ctx, view, db) },
		func() ([]objectDef, error) { return readEvents(ctx, view, db) },
	} {
		o, err := read()
		if err != nil {
			return nil, err
		}
		objects = append(objects, o...)
	}
	for _, o := range objects {
		s.Objects = append(s.Objects, neutral.Object{Kind: o.kind, Schema: db, Name: o.name, Table: o.table, Definition: o.create})
	}
	return s, nil
}

// catalogReader reads tables from information_schema, whose columns differ between
// MySQL and MariaDB and by version.
type catalogReader struct {
	view    *sql.Conn
	mariadb bool
	// padSpace is the pad attribute of each collation (MySQL 8's COLLATIONS has
	// PAD_ATTRIBUTE); nil where the server does not say (MariaDB: its NO PAD
	// collations have _nopad_ in their names).
	padSpace map[string]bool
	// statisticsExpr: STATISTICS has EXPRESSION (MySQL 8.0.13+'s functional parts).
	statisticsExpr bool
	// checks: CHECK_CONSTRAINTS exists; checkTable: with TABLE_NAME and LEVEL
	// (MariaDB); checkEnforced: TABLE_CONSTRAINTS has ENFORCED (MySQL 8.0.16+).
	checks, checkTable, checkLevel, checkEnforced bool
}

// probe finds which columns the server's information_schema has.
func (c *catalogReader) probe(ctx context.Context) error {
	rows, err := queryRows(ctx, c.view, `SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = 'information_schema' AND TABLE_NAME IN ('COLLATIONS', 'STATISTICS', 'CHECK_CONSTRAINTS', 'TABLE_CONSTRAINTS')`)
	if err != nil {
		return fmt.Errorf("read information_schema's columns: %w", err)
	}
	has := map[string]bool{}
	for _, r := range rows {
		has[strings.ToUpper(r[0]+"."+r[1])] = true
	}
	c.statisticsExpr = has["STATISTICS.EXPRESSION"]
	c.checks = has["CHECK_CONSTRAINTS.CHECK_CLAUSE"]
	c.checkTable = has["CHECK_CONSTRAINTS.TABLE_NAME"]
	c.checkLevel = has["CHECK_CONSTRAINTS.LEVEL"]
	c.checkEnforced = has["TABLE_CONSTRAINTS.ENFORCED"]
	if has["COLLATIONS.PAD_ATTRIBUTE"] {
		pads, err := queryRows(ctx, c.view, "SELECT COLLATION_NAME, PAD_ATTRIBUTE FROM information_schema.COLLATIONS")
		if err != nil {
			return fmt.Errorf("read the collations: %w", err)
		}
		c.padSpace = map[string]bool{}
		for _, p := range pads {
			c.padSpace[p[0]] = strings.EqualFold(p[1], "PAD SPACE")
		}
	}
	return nil
}

// nullRows returns a query's rows with their NULLs.
func nullRows(ctx context.Context, q querier, query string, args ...any) ([][]sql.NullString, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out [][]sql.NullString
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}

func nullInt(s sql.NullString) sql.NullInt64 {
	n, err := strconv.ParseInt(s.String, 10, 64)
	return sql.NullInt64{Int64: n, Valid: s.Valid && err == nil}
}

// table reads one table.
func (c *catalogReader) table(ctx context.Context, tn tableName) (*neutral.Table, error) {
	t := &neutral.Table{Schema: tn.schema, Name: tn.name}
	info, err := queryRows(ctx, c.view, "SELECT TABLE_TYPE, coalesce(AUTO_INCREMENT, 0), coalesce(TABLE_COMMENT, '') FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", tn.schema, tn.name)
	if err != nil {
		return nil, err
	}
	if len(info) == 0 {
		return nil, errors.New("no such table")
	}
	if info[0][0] != "BASE TABLE" && info[0][0] != "SYSTEM VERSIONED" {
		return nil, fmt.Errorf("a %s, not a base table", strings.ToLower(info[0][0]))
	}
	t.Comment = info[0][2]
	rows, err := nullRows(ctx, c.view, `SELECT COLUMN_NAME, COLUMN_DEFAULT, IS_NULLABLE, DATA_TYPE, COLUMN_TYPE, CHARACTER_MAXIMUM_LENGTH,
			NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, CHARACTER_SET_NAME, COLLATION_NAME, EXTRA, COLUMN_COMMENT, GENERATION_EXPRESSION
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, tn.schema, tn.name)
	if err != nil {
		return nil, fmt.Errorf("read its columns: %w", err)
	}
	type rawDefault struct {
		raw   sql.NullString
		extra string
	}
	defaults := make([]rawDefault, len(rows))
	for i, r := range rows {
		typ, err := columnType(r[3].String, r[4].String, nullInt(r[5]), nullInt(r[6]), nullInt(r[7]), nullInt(r[8]), r[9].String)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", quote(r[0].String), err)
		}
		extra := strings.ToUpper(r[11].String)
		col := neutral.Column{Name: r[0].String, Type: typ, NotNull: r[2].String == "NO", Charset: r[9].String, Collation: r[10].String,
			Comment: r[12].String, AutoIncrement: strings.Contains(extra, "AUTO_INCREMENT"),
			OnUpdateNow: strings.Contains(extra, "ON UPDATE")}
		if strings.Contains(extra, "VIRTUAL GENERATED") || strings.Contains(extra, "STORED GENERATED") || strings.Contains(extra, "PERSISTENT GENERATED") {
			col.Generated = r[13].String
			col.Stored = !strings.Contains(extra, "VIRTUAL")
		} else if !col.AutoIncrement {
			defaults[i] = rawDefault{r[1], r[11].String}
		}
		if col.Collation != "" {
			col.CaseInsensitive = strings.HasSuffix(col.Collation, "_ci")
			if c.padSpace != nil {
				col.PadInsensitive = c.padSpace[col.Collation]
			} else {
				col.PadInsensitive = !strings.Contains(col.Collation, "_nopad_")
			}
		}
		t.Columns = append(t.Columns, col)
	}
	if len(t.Columns) == 0 {
		return nil, errors.New("no columns (no such table, or the role may not read it)")
	}
	if err := c.checksOf(ctx, t); err != nil {
		return nil, err
	}
	// the defaults after the checks: a MariaDB JSON column's type is known then
	for i := range t.Columns {
		if t.Columns[i].Generated == "" {
			t.Columns[i].Default = columnDefault(c.mariadb, defaults[i].raw, defaults[i].extra, t.Columns[i].Type)
		}
	}
	for _, col := range t.Columns {
		if col.AutoIncrement {
			t.NextAutoIncrement, _ = strconv.ParseUint(info[0][1], 10, 64)
		}
	}
	if err := c.indexesOf(ctx, t); err != nil {
		return nil, err
	}
	if err := c.foreignKeysOf(ctx, t); err != nil {
		return nil, err
	}
	return t, nil
}

// checksOf reads a table's CHECK constraints; MariaDB's column check
// json_valid(`col`) on a LONGTEXT makes the column JSON and is not kept as a check.
func (c *catalogReader) checksOf(ctx context.Context, t *neutral.Table) error {
	if !c.checks {
		return nil // MySQL before 8.0.16 parses CHECK and ignores it
	}
	var q string
	switch {
	case c.checkTable:
		level := "''"
		if c.checkLevel {
			level = "LEVEL"
		}
		q = "SELECT CONSTRAINT_NAME, CHECK_CLAUSE, " + level + ", 'YES' FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?"
	default:
		enforced := "'YES'"
		if c.checkEnforced {
			enforced = "tc.ENFORCED"
		}
		q = `SELECT cc.CONSTRAINT_NAME, cc.CHECK_CLAUSE, '', ` + enforced + ` FROM information_schema.TABLE_CONSTRAINTS tc
			JOIN information_schema.CHECK_CONSTRAINTS cc ON cc.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA AND cc.CONSTRAINT_NAME = tc.CONSTRAINT_NAME
			WHERE tc.TABLE_SCHEMA = ? AND tc.TABLE_NAME = ? AND tc.CONSTRAINT_TYPE = 'CHECK'`
	}
	rows, err := queryRows(ctx, c.view, q, t.Schema, t.Name)
	if err != nil {
		return fmt.Errorf("read its checks: %w", err)
	}
	for _, r := range rows {
		name, clause, level, enforced := r[0], r[1], r[2], r[3]
		if strings.EqualFold(enforced, "NO") {
			continue // NOT ENFORCED: not a constraint on the values
		}
		if col := t.Column(name); c.mariadb && col != nil && !strings.EqualFold(level, "Table") &&
			strings.EqualFold(strings.TrimSpace(clause), "json_valid("+quote(name)+")") && col.Type.Kind == cdc.KindText && col.Type.Name == "longtext" {
			col.Type = cdc.Type{Kind: cdc.KindJSON, Name: "json"}
			continue
		}
		t.Checks = append(t.Checks, neutral.Check{Name: name, Expr: clause})
	}
	return nil
}

// indexesOf reads a table's primary key and other indexes, in the server's order.
func (c *catalogReader) indexesOf(ctx context.Context, t *neutral.Table) error {
	expr := "NULL"
	if c.statisticsExpr {
		expr = "EXPRESSION"
	}
	rows, err := nullRows(ctx, c.view, `SELECT INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART, COLLATION, INDEX_TYPE, `+expr+`
		FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, t.Schema, t.Name)
	if err != nil {
		return fmt.Errorf("read its indexes: %w", err)
	}
	type part struct {
		seq int
		col neutral.IndexColumn
	}
	var order []string
	parts := map[string][]part{}
	indexes := map[string]*neutral.Index{}
	for _, r := range rows {
		name := r[0].String
		if _, ok := indexes[name]; !ok {
			method := strings.ToLower(r[6].String)
			switch method {
			case "", "btree":
				method = "btree"
			case "rtree":
				method = "spatial"
			}
			indexes[name] = &neutral.Index{Name: name, Unique: r[1].String == "0", Method: method}
			order = append(order, name)
		}
		seq, _ := strconv.Atoi(r[2].String)
		prefix, _ := strconv.Atoi(r[4].String)
		ic := neutral.IndexColumn{Name: r[3].String, Prefix: prefix, Desc: r[5].String == "D"}
		if !r[3].Valid && r[7].Valid {
			ic.Expr = r[7].String
		}
		parts[name] = append(parts[name], part{seq, ic})
	}
	for _, name := range order {
		ps := parts[name]
		slices.SortFunc(ps, func(a, b part) int { return a.seq - b.seq })
		ix := indexes[name]
		for _, p := range ps {
			ix.Columns = append(ix.Columns, p.col)
		}
		if name == "PRIMARY" {
			for _, p := range ps {
				t.PrimaryKey = append(t.PrimaryKey, p.col.Name)
			}
			continue
		}
		t.Indexes = append(t.Indexes, *ix)
	}
	return nil
}

// foreignKeysOf reads a table's foreign keys, by name.
func (c *catalogReader) foreignKeysOf(ctx context.Context, t *neutral.Table) error {
	rows, err := queryRows(ctx, c.view, `SELECT k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_SCHEMA, k.REFERENCED_TABLE_NAME,
			k.REFERENCED_COLUMN_NAME, r.UPDATE_RULE, r.DELETE_RULE
		FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r
			ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.TABLE_NAME = k.TABLE_NAME AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
		WHERE k.TABLE_SCHEMA = ? AND k.TABLE_NAME = ? AND k.REFERENCED_TABLE_NAME IS NOT NULL
		ORDER BY k.CONSTRAINT_NAME, k.ORDINAL_POSITION`, t.Schema, t.Name)
	if err != nil {
		return fmt.Errorf("read its foreign keys: %w", err)
	}
	for _, r := range rows {
		n := len(t.ForeignKeys)
		if n == 0 || t.ForeignKeys[n-1].Name != r[0] {
			t.ForeignKeys = append(t.ForeignKeys, neutral.ForeignKey{Name: r[0], RefSchema: r[2], RefTable: r[3],
				OnUpdate: neutral.Action(r[5]), OnDelete: neutral.Action(r[6])})
			n++
		}
		fk := &t.ForeignKeys[n-1]
		fk.Columns = append(fk.Columns, r[1])
		fk.RefColumns = append(fk.RefColumns, r[4])
	}
	return nil
}
