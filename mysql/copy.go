package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	driver "github.com/go-sql-driver/mysql"

	"github.com/cutover-dev/cutover/load"
)

// The full load's rows between two MySQL/MariaDB servers: a rowsOut reads a chunk of
// a table in one of the snapshot's read views as text (the text protocol, no character
// set conversion), a rowsIn loads it with LOAD DATA LOCAL INFILE from the stream
// (CHARACTER SET binary, tab-separated, backslash escapes, \N for NULL). Where a
// column's text would not load back into the column as the same value, it travels
// otherwise: a FLOAT widened to DOUBLE (its text has six digits), BIT as its
// integer, ENUM and SET as their index and bitmask (an ENUM's empty error value has
// no label that loads), YEAR as its number, INET4, INET6 and UUID through a text
// conversion (a binary string is their binary form).

// chunkBytes is the size above which a table with an integer key is split into key
// ranges copied in parallel.
const chunkBytes = 64 << 20

// copyColumn is how one column is read and loaded.
type copyColumn struct {
	name string // quoted
	read string // the SELECT's expression
	// via is how a column that does not load from its text as it is is loaded: from
	// a user variable @v, SET col = via with @v in it ("" for none).
	via string
	// enum: an ENUM, whose empty error value (index 0) loads with a warning.
	enum bool
	raw  string // the column's name, unquoted, as warnings name it
}

// errorValues are the rows of a chunk where an ENUM holds its error value: the
// warnings LOAD DATA gives for them are expected, no other.
type errorValues struct {
	mu   sync.Mutex
	rows map[int]expectedWarnings // by chunk
}

// expectedWarnings are the warnings a statement gives for ENUM error values it
// writes: by row of the statement (from 1) and column.
type expectedWarnings map[warningAt]bool

type warningAt struct {
	row    int64
	column string
}

func (e *errorValues) add(chunk int, row int64, column string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.rows == nil {
		e.rows = map[int]expectedWarnings{}
	}
	if e.rows[chunk] == nil {
		e.rows[chunk] = expectedWarnings{}
	}
	e.rows[chunk][warningAt{row, column}] = true
}

// take returns the chunk's rows and forgets them (a chunk copied again records anew).
func (e *errorValues) take(chunk int) expectedWarnings {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.rows[chunk]
	delete(e.rows, chunk)
	return r
}

// The ways a column is loaded through a user variable.
const (
	// viaNumber: BIT, ENUM, SET and YEAR as their number (the text "0" loads into a
	// YEAR as 2000, the number as 0000).
	viaNumber = "CAST(@v AS UNSIGNED)"
	// viaText: types whose value is parsed from text but taken as their binary form
	// from a binary string (MariaDB's INET4, INET6, UUID).
	viaText = "CONVERT(@v USING ascii)"
	// viaBytes: strings in a character set where not every byte sequence is a
	// character (ascii, multi-byte sets but UTF-8): LOAD DATA replaces what is not a
	// character with '?', with a warning; an assignment from a variable keeps the
	// bytes. (UTF-8 columns cannot hold what is not UTF-8, latin1 takes every byte.)
	viaBytes = "@v"
)

// copySpec is how one table is copied.
type copySpec struct {
	qname  string // `schema`.`table` on the source
	target string // and on the target
	cols   []copyColumn
	// key is the primary key's columns, quoted: the order rows are read in (InnoDB
	// stores them so, and loads them fastest so).
	key []string
	// lo and hi bound the key's first column when it is an integer and the table is
	// split; nil otherwise.
	lo, hi *big.Int
	errorValues
}

// copyPlan is how each table of a load is copied.
type copyPlan struct {
	tables []*load.Table
	specs  map[*load.Table]*copySpec
	// skipBinlog: the rows are loaded without the target's binary log
	// (full_load.target_binlog false).
	skipBinlog bool
}

// tableName is a table to copy.
type tableName struct{ schema, name string }

func (n tableName) quoted() string { return quote(n.schema) + "." + quote(n.name) }

// planCopy reads, in a read view of the snapshot, each table's columns, key and size,
// and splits the large ones with an integer key into ranges of that key. The tables
// go into the target's database target.
func planCopy(ctx context.Context, view *sql.Conn, tables []tableName, target string, parallel int) (*copyPlan, error) {
	cp := &copyPlan{specs: map[*load.Table]*copySpec{}}
	for _, tn := range tables {
		spec := &copySpec{qname: tn.quoted(), target: tableName{target, tn.name}.quoted()}
		rows, err := view.QueryContext(ctx, `
			SELECT COLUMN_NAME, DATA_TYPE, EXTRA, coalesce(CHARACTER_SET_NAME, '')
			FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, tn.schema, tn.name)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var name, typ, extra, charset string
			if err := rows.Scan(&name, &typ, &extra, &charset); err != nil {
				rows.Close()
				return nil, err
			}
			if e := strings.ToUpper(extra); strings.Contains(e, "VIRTUAL GENERATED") || strings.Contains(e, "STORED GENERATED") { // not MySQL 8's DEFAULT_GENERATED (an expression default)
				continue // computed on the target
			}
			c := copyColumn{name: quote(name), read: quote(name), raw: name, enum: strings.EqualFold(typ, "enum")}
			switch strings.ToLower(typ) {
			case "float":
				c.read = quote(name) + " * 1e0"
			case "bit", "enum", "set", "year":
				c.read, c.via = quote(name)+" + 0", viaNumber
			case "inet4", "inet6", "uuid":
				c.via = viaText
			default:
				switch charset {
				case "", "binary", "utf8mb4", "utf8mb3", "utf8", "latin1":
				default:
					c.via = viaBytes
				}
			}
			spec.cols = append(spec.cols, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(spec.cols) == 0 {
			return nil, fmt.Errorf("table %s: no columns to copy", spec.qname)
		}
		var firstType string
		rows, err = view.QueryContext(ctx, `
			SELECT s.COLUMN_NAME, c.DATA_TYPE FROM information_schema.STATISTICS s
			JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = s.TABLE_SCHEMA AND c.TABLE_NAME = s.TABLE_NAME AND c.COLUMN_NAME = s.COLUMN_NAME
			WHERE s.TABLE_SCHEMA = ? AND s.TABLE_NAME = ? AND s.INDEX_NAME = 'PRIMARY' ORDER BY s.SEQ_IN_INDEX`, tn.schema, tn.name)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var col, typ string
			if err := rows.Scan(&col, &typ); err != nil {
				rows.Close()
				return nil, err
			}
			if len(spec.key) == 0 {
				firstType = strings.ToLower(typ)
			}
			spec.key = append(spec.key, quote(col))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		var size int64
		if err := view.QueryRowContext(ctx, `SELECT coalesce(DATA_LENGTH, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`,
			tn.schema, tn.name).Scan(&size); err != nil {
			return nil, fmt.Errorf("table %s: %w", spec.qname, err)
		}
		chunks := 1
		if parallel > 1 && size > chunkBytes && isInteger(firstType) {
			var lo, hi sql.NullString
			if err := view.QueryRowContext(ctx, fmt.Sprintf("SELECT MIN(%[1]s), MAX(%[1]s) FROM %[2]s", spec.key[0], spec.qname)).Scan(&lo, &hi); err != nil {
				return nil, fmt.Errorf("table %s: the key's bounds: %w", spec.qname, err)
			}
			if lo.Valid && hi.Valid {
				spec.lo, _ = new(big.Int).SetString(lo.String, 10)
				spec.hi, _ = new(big.Int).SetString(hi.String, 10)
				chunks = int(min((size+chunkBytes-1)/chunkBytes, int64(parallel*4)))
				chunks = (chunks + parallel - 1) / parallel * parallel
			}
		}
		t := &load.Table{Schema: tn.schema, Name: tn.name, EstimatedBytes: size, Chunks: chunks}
		cp.tables = append(cp.tables, t)
		cp.specs[t] = spec
	}
	return cp, nil
}

func isInteger(typ string) bool {
	switch typ {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		return true
	}
	return false
}

// selectSQL reads chunk i of n in key order; the first and last ranges are open so
// that every row of the snapshot falls in exactly one chunk.
func (s *copySpec) selectSQL(i, n int) string {
	reads := make([]string, len(s.cols))
	for j, c := range s.cols {
		reads[j] = c.read
	}
	q := "SELECT " + strings.Join(reads, ", ") + " FROM " + s.qname
	if n > 1 && s.lo != nil {
		span := new(big.Int).Sub(s.hi, s.lo)
		span.Add(span, big.NewInt(1))
		bound := func(k int) string {
			b := new(big.Int).Mul(span, big.NewInt(int64(k)))
			b.Quo(b, big.NewInt(int64(n)))
			return b.Add(b, s.lo).String()
		}
		var where []string
		if i > 0 {
			where = append(where, s.key[0]+" >= "+bound(i))
		}
		if i < n-1 {
			where = append(where, s.key[0]+" < "+bound(i+1))
		}
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if len(s.key) > 0 {
		q += " ORDER BY " + strings.Join(s.key, ", ")
	}
	return q
}

// loadSQL loads the stream registered as reader into the table.
func (s *copySpec) loadSQL(reader string) string {
	var cols, sets []string
	for j, c := range s.cols {
		if c.via != "" {
			v := fmt.Sprintf("@v%d", j)
			cols = append(cols, v)
			sets = append(sets, c.name+" = "+strings.ReplaceAll(c.via, "@v", v))
			continue
		}
		cols = append(cols, c.name)
	}
	q := fmt.Sprintf(`LOAD DATA LOCAL INFILE 'Reader::%s' INTO TABLE %s CHARACTER SET binary
		FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n' (%s)`, reader, s.target, strings.Join(cols, ", "))
	if len(sets) > 0 {
		q += " SET " + strings.Join(sets, ", ")
	}
	return q
}

// rowsOut reads chunks in the snapshot's read views.
type rowsOut struct {
	snap *Snapshot
	plan *copyPlan
}

var _ load.RowsOut = (*rowsOut)(nil)

// CopyOut writes chunk i of t as LOAD DATA's lines.
func (o *rowsOut) CopyOut(ctx context.Context, t *load.Table, chunk int, w *load.RowWriter) error {
	spec := o.plan.specs[t]
	return spec.readChunk(ctx, o.snap, t, chunk, w, func(line []byte, n int64, vals []sql.RawBytes) ([]byte, error) {
		for i, v := range vals {
			if i > 0 {
				line = append(line, '\t')
			}
			if spec.cols[i].enum && len(v) == 1 && v[0] == '0' {
				spec.add(chunk, n, spec.cols[i].raw)
			}
			line = appendField(line, v)
		}
		return line, nil
	})
}

// readChunk reads chunk i of t in a read view of the snapshot and writes each row as
// the line row makes of its values (the n-th row of the chunk, from 1).
func (s *copySpec) readChunk(ctx context.Context, snap *Snapshot, t *load.Table, chunk int, w *load.RowWriter,
	row func(line []byte, n int64, vals []sql.RawBytes) ([]byte, error)) error {
	view, err := snap.Acquire(ctx)
	if err != nil {
		return err
	}
	defer snap.Release(view)
	rows, err := view.QueryContext(ctx, s.selectSQL(chunk, t.Chunks))
	if err != nil {
		return fmt.Errorf("table %s: %w", s.qname, err)
	}
	defer rows.Close()
	vals := make([]sql.RawBytes, len(s.cols))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	line := make([]byte, 0, 4096)
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("table %s: %w", s.qname, err)
		}
		n++
		if line, err = row(line[:0], n, vals); err != nil {
			return err
		}
		line = append(line, '\n')
		w.Row()
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("table %s: %w", s.qname, err)
	}
	return nil
}

// appendField appends a value as LOAD DATA reads it back: \N for NULL, and the
// bytes that delimit or escape backslashed.
func appendField(dst []byte, v sql.RawBytes) []byte {
	if v == nil {
		return append(dst, '\\', 'N')
	}
	for _, b := range v {
		switch b {
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case 0:
			dst = append(dst, '\\', '0')
		default:
			dst = append(dst, b)
		}
	}
	return dst
}

func (o *rowsOut) Close(context.Context) error { return nil } // the snapshot's owner closes it

// rowsIn loads chunks on a connection of the target set up for it.
type rowsIn struct {
	conn *sql.Conn
	plan *copyPlan
	// finish completes a table whose rows are all loaded (nil: nothing to do).
	finish func(context.Context, *load.Table) error
}

var _ load.RowsIn = (*rowsIn)(nil)

// loadSession is how a loading connection writes: every value the source holds is
// taken as it is (zero and invalid dates, a zero in an AUTO_INCREMENT column), a value
// that does not fit is an error and not a warning, and neither foreign keys nor
// unique indexes are checked row by row (the rows come from a consistent snapshot;
// the secondary objects are built after).
var loadSession = []string{
	"SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES,ALLOW_INVALID_DATES,NO_ENGINE_SUBSTITUTION'",
	"SET SESSION foreign_key_checks = 0",
	"SET SESSION unique_checks = 0",
	// every warning of a load listed, to tell the expected ones from the others
	"SET SESSION max_error_count = 65535",
}

// openRowsIn opens a loading connection on the target.
func openRowsIn(ctx context.Context, db *sql.DB, cp *copyPlan) (*rowsIn, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	session := loadSession
	if cp.skipBinlog {
		session = append(slices.Clip(session), "SET SESSION sql_log_bin = 0")
	}
	for _, q := range session {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			discard(conn)
			return nil, fmt.Errorf("set up a loading connection on the target (%s): %w", q, err)
		}
	}
	return &rowsIn{conn: conn, plan: cp}, nil
}

var readerSeq atomic.Int64

// CopyIn loads the lines read from r into t.
func (in *rowsIn) CopyIn(ctx context.Context, t *load.Table, chunk int, r io.Reader) (int64, error) {
	spec := in.plan.specs[t]
	name := fmt.Sprintf("cutover-%d", readerSeq.Add(1))
	driver.RegisterReaderHandler(name, func() io.Reader { return r })
	defer driver.DeregisterReaderHandler(name)
	res, err := in.conn.ExecContext(ctx, spec.loadSQL(name))
	if err != nil {
		return 0, fmt.Errorf("table %s: %w", spec.target, loadError(err))
	}
	if err := checkWarnings(ctx, in.conn, spec.take(chunk)); err != nil {
		return 0, fmt.Errorf("table %s: %w", spec.target, err)
	}
	return res.RowsAffected()
}

var truncated = regexp.MustCompile(`^Data truncated for column '(.*)' at row (\d+)$`)

// querier runs queries: a pool, a connection or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// checkWarnings reads the warnings of the statement that ran last on q. LOAD DATA
// takes some values it changes (a string not in the column's character set, a number
// out of range) with a warning even in strict mode: a warning is a value not written
// as it is, but for the ENUM error values the source sent (expected), which are
// written as they are, with a warning of their own.
func checkWarnings(ctx context.Context, q querier, expected expectedWarnings) error {
	var count int
	if err := q.QueryRowContext(ctx, "SELECT @@warning_count").Scan(&count); err != nil {
		return fmt.Errorf("read the warnings: %w", err)
	}
	if count == 0 {
		return nil
	}
	rows, err := q.QueryContext(ctx, "SHOW WARNINGS")
	if err != nil {
		return fmt.Errorf("read the warnings: %w", err)
	}
	defer rows.Close()
	listed := 0
	for rows.Next() {
		var level, message string
		var code int
		if err := rows.Scan(&level, &code, &message); err != nil {
			return err
		}
		listed++
		if m := truncated.FindStringSubmatch(message); code == 1265 && m != nil {
			if row, _ := strconv.ParseInt(m[2], 10, 64); expected[warningAt{row, m[1]}] {
				continue
			}
		}
		return fmt.Errorf("the target changed a value as it wrote it (%s %d: %s): the column's type or character set differs from the source's, or the source holds a value its own column does not allow", level, code, message)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if listed < count {
		return fmt.Errorf("the statement gave %d warnings and the server lists %d (max_error_count): the ones not listed may be values changed as they were written", count, listed)
	}
	return nil
}

// loadError says what to do when the target refuses LOAD DATA LOCAL.
func loadError(err error) error {
	if me, ok := err.(*driver.MySQLError); ok && (me.Number == 1148 || me.Number == 3948 || me.Number == 4166) {
		return fmt.Errorf("%w: the target does not take LOAD DATA LOCAL INFILE: SET GLOBAL local_infile = ON on the target (a parameter group's local_infile on a managed service)", err)
	}
	return err
}

// Finish completes a loaded table (the table was created with its primary key, in
// which InnoDB keeps the rows).
func (in *rowsIn) Finish(ctx context.Context, t *load.Table) error {
	if in.finish == nil {
		return nil
	}
	return in.finish(ctx, t)
}

func (in *rowsIn) Close(context.Context) error { discard(in.conn); return nil }
