package mysql

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/cutover-dev/cutover/validate"
)

// The validator's reads of one side, in a read view of a point (see validate.go).
//
// A row's hash is the first 64 bits of the MD5 of a canonical text of the row: each
// value's bytes with their length before them ("3:abc", "-" for NULL), the value as
// the column stores it, in its own character set (the readers' sessions take results
// as binary). Where a column's text would not tell two values apart, it is compared
// otherwise, as the copy reads it: a FLOAT widened to DOUBLE, BIT, SET and YEAR as
// their number, an ENUM as its label and its index (the error value's label is empty).
// TIMESTAMPs are read in UTC. A chunk's sum is the exact (DECIMAL) sum of its rows'
// hashes.
//
// Key bounds and keys travel as text and are made the key column's type on the server,
// so that a range means the same on both sides and for the index: integers and
// decimals by CAST (a string compared with a BIGINT is compared as a double), strings
// as their bytes in the column's character set and collation (the order the source's
// ORDER BY chunked in), binary strings as their bytes.

// keysPerStatement is how many keys one lookup statement names.
const keysPerStatement = 500

// valColumn is a column as one side's catalog has it.
type valColumn struct {
	name      string
	dataType  string // information_schema.COLUMNS.DATA_TYPE, lower case
	unsigned  bool
	charset   string
	collation string
}

// valShape is a table's columns and key on one side.
type valShape struct {
	qname   string
	columns map[string]*valColumn
	order   []string // the columns by ordinal position
	key     []string // the primary key, else the unique index of the fewest NOT NULL columns; none: no key
	index   string   // the key's index: PRIMARY, or the unique index's name
	primary bool     // the table has a primary key (perhaps not a key here: a prefix of a column)
}

// valueExpr is a column's value as the comparison reads it.
func valueExpr(c *valColumn) string {
	q := quote(c.name)
	switch c.dataType {
	case "float":
		return q + " * 1e0"
	case "bit", "set", "year":
		return q + " + 0"
	case "enum":
		return "CONCAT(" + q + ", '#', " + q + " + 0)"
	}
	return q
}

// keyExpr is a key column's value as keys and bounds are read.
func keyExpr(c *valColumn) string {
	switch c.dataType {
	case "float":
		return quote(c.name) + " * 1e0"
	case "bit", "set", "year", "enum":
		return quote(c.name) + " + 0"
	}
	return quote(c.name)
}

// boundExpr is a parameter holding a key value as keyExpr reads it, made the
// column's type; hexed says the parameter is the value's bytes in hex.
func boundExpr(c *valColumn) (expr string, hexed bool) {
	switch c.dataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		if c.unsigned {
			return "CAST(? AS UNSIGNED)", false
		}
		return "CAST(? AS SIGNED)", false
	case "bit", "set", "year", "enum":
		return "CAST(? AS UNSIGNED)", false
	case "decimal", "numeric":
		return "CAST(? AS DECIMAL(65,30))", false
	case "float", "double", "real":
		return "CAST(? AS DOUBLE)", false
	case "date":
		return "CAST(? AS DATE)", false
	case "datetime", "timestamp":
		return "CAST(? AS DATETIME(6))", false
	case "time":
		return "CAST(? AS TIME(6))", false
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		return "UNHEX(?)", true
	}
	if c.charset != "" && c.charset != "binary" {
		return "CONVERT(UNHEX(?) USING " + c.charset + ") COLLATE " + c.collation, true
	}
	return "?", false
}

// readerSQL is a table's expressions on one side.
type readerSQL struct {
	qname    string
	row      string   // the row's canonical text
	hash     string   // the row's hash, an unsigned 64-bit integer
	cols     []string // each compared column's value
	keyRead  []string // each key column as keys are read
	keyCols  []string // each key column, quoted
	keyBound []string // each key column's bound parameter
	keyHex   []bool   // whether that parameter is hex
	keyInt   bool     // the key is one integer column
}

func newReaderSQL(t *validate.Table, s *valShape) *readerSQL {
	q := &readerSQL{qname: s.qname}
	texts := make([]string, len(t.Columns))
	for i, name := range t.Columns {
		e := "CAST(" + valueExpr(s.columns[name]) + " AS BINARY)"
		q.cols = append(q.cols, e)
		texts[i] = "IFNULL(CONCAT(LENGTH(" + e + "), ':', " + e + "), '-')"
	}
	q.row = "CONCAT(" + strings.Join(texts, ", ") + ")"
	q.hash = "CAST(CONV(LEFT(MD5(" + q.row + "), 16), 16, 10) AS UNSIGNED)"
	q.keyInt = len(t.Key) == 1 && isInteger(s.columns[t.Key[0]].dataType)
	for _, k := range t.Key {
		c := s.columns[k]
		b, h := boundExpr(c)
		q.keyRead, q.keyCols, q.keyBound, q.keyHex = append(q.keyRead, keyExpr(c)), append(q.keyCols, quote(k)), append(q.keyBound, b), append(q.keyHex, h)
	}
	return q
}

// bound is key value v of column i as a parameter.
func (q *readerSQL) bound(i int, v string) any {
	if q.keyHex[i] {
		return hex.EncodeToString([]byte(v))
	}
	return v
}

// compare is the predicate key op bound, op < or > (inclusive: <= or >= on the
// last column), on a key of any number of columns, spelled out column by column:
// (a, b) > (x, y) is a > x OR a = x AND b > y.
func (q *readerSQL) compare(op string, inclusive bool, b []string, args []any) (string, []any) {
	var ors []string
	for i := range q.keyCols {
		var ands []string
		for j := range i {
			ands = append(ands, q.keyCols[j]+" = "+q.keyBound[j])
			args = append(args, q.bound(j, b[j]))
		}
		o := op
		if inclusive && i == len(q.keyCols)-1 {
			o += "="
		}
		ands = append(ands, q.keyCols[i]+" "+o+" "+q.keyBound[i])
		args = append(args, q.bound(i, b[i]))
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	return "(" + strings.Join(ors, " OR ") + ")", args
}

// where is a range's predicate.
func (q *readerSQL) where(rg validate.Range) (string, []any) {
	var conds []string
	var args []any
	var c string
	if rg.Lo != nil {
		c, args = q.compare(">", true, rg.Lo, args)
		conds = append(conds, c)
	}
	if rg.Hi != nil {
		c, args = q.compare("<", false, rg.Hi, args)
		conds = append(conds, c)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// inKeys is the predicate of the rows with these keys.
func (q *readerSQL) inKeys(keys [][]string) (string, []any) {
	var args []any
	if len(q.keyCols) == 1 {
		ps := make([]string, len(keys))
		for i, k := range keys {
			ps[i] = q.keyBound[0]
			args = append(args, q.bound(0, k[0]))
		}
		return q.keyCols[0] + " IN (" + strings.Join(ps, ", ") + ")", args
	}
	ors := make([]string, len(keys))
	for i, k := range keys {
		ands := make([]string, len(k))
		for j := range k {
			ands[j] = q.keyCols[j] + " = " + q.keyBound[j]
			args = append(args, q.bound(j, k[j]))
		}
		ors[i] = "(" + strings.Join(ands, " AND ") + ")"
	}
	return "(" + strings.Join(ors, " OR ") + ")", args
}

// myReader reads one side in the read view the validator's current point holds.
type myReader struct {
	side *pointSide
	sql  *readerSQL
}

// pointSide is one side's connection at the current point.
type pointSide struct {
	name string // source or target
	conn *sql.Conn
}

func (r *myReader) errorf(what string, err error) error {
	return fmt.Errorf("%s: table %s: %s: %w", r.side.name, r.sql.qname, what, err)
}

// sum reads a count and a sum of hashes.
func (r *myReader) sum(ctx context.Context, where string, args []any) (validate.Sum, error) {
	var s validate.Sum
	err := r.side.conn.QueryRowContext(ctx, "SELECT COUNT(*), CAST(COALESCE(SUM("+r.sql.hash+"), 0) AS CHAR) FROM "+r.sql.qname+where, args...).Scan(&s.Rows, &s.Hash)
	return s, err
}

func (r *myReader) Sums(ctx context.Context, t *validate.Table, rs []validate.Range) ([]validate.Sum, error) {
	sums := make([]validate.Sum, len(rs))
	for i, rg := range rs {
		where, args := r.sql.where(rg)
		s, err := r.sum(ctx, where, args)
		if err != nil {
			return nil, r.errorf("count and hash", err)
		}
		sums[i] = s
	}
	return sums, nil
}

// keyHashes reads rows of a key (or, for a table without one, the row's text) and a hash.
func (r *myReader) keyHashes(ctx context.Context, t *validate.Table, where string, args []any) ([]validate.KeyHash, error) {
	sel := strings.Join(r.sql.keyRead, ", ")
	n := len(t.Key)
	if n == 0 {
		sel, n = r.sql.row, 1
	}
	rows, err := r.side.conn.QueryContext(ctx, "SELECT "+sel+", "+r.sql.hash+" FROM "+r.sql.qname+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []validate.KeyHash
	for rows.Next() {
		vals, err := scanStrings(rows, n+1)
		if err != nil {
			return nil, err
		}
		h, err := strconv.ParseUint(vals[n], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("a row's hash %q: %w", vals[n], err)
		}
		out = append(out, validate.KeyHash{Key: vals[:n], Hash: int64(h)})
	}
	return out, rows.Err()
}

func (r *myReader) Hashes(ctx context.Context, t *validate.Table, rg validate.Range) ([]validate.KeyHash, error) {
	where, args := r.sql.where(rg)
	kh, err := r.keyHashes(ctx, t, where, args)
	if err != nil {
		return nil, r.errorf("read row hashes", err)
	}
	return kh, nil
}

func (r *myReader) SumKeys(ctx context.Context, t *validate.Table, keys validate.KeySet) (validate.Sum, error) {
	list, err := keys.Keys(ctx)
	if err != nil {
		return validate.Sum{}, err
	}
	total := validate.Sum{Hash: "0"}
	acc := new(big.Int)
	for start := 0; start < len(list); start += keysPerStatement {
		in, args := r.sql.inKeys(list[start:min(start+keysPerStatement, len(list))])
		s, err := r.sum(ctx, " WHERE "+in, args)
		if err != nil {
			return total, r.errorf("count and hash rows by key", err)
		}
		part, ok := new(big.Int).SetString(s.Hash, 10)
		if !ok {
			return total, r.errorf("count and hash rows by key", fmt.Errorf("a sum %q", s.Hash))
		}
		acc.Add(acc, part)
		total.Rows += s.Rows
	}
	total.Hash = acc.String()
	return total, nil
}

func (r *myReader) KeyHashes(ctx context.Context, t *validate.Table, keys [][]string) ([]validate.KeyHash, error) {
	var out []validate.KeyHash
	for start := 0; start < len(keys); start += keysPerStatement {
		in, args := r.sql.inKeys(keys[start:min(start+keysPerStatement, len(keys))])
		kh, err := r.keyHashes(ctx, t, " WHERE "+in, args)
		if err != nil {
			return nil, r.errorf("read row hashes by key", err)
		}
		out = append(out, kh...)
	}
	return out, nil
}

func (r *myReader) Lookup(ctx context.Context, t *validate.Table, keys [][]string) ([]validate.Row, error) {
	nk, nc := len(t.Key), len(t.Columns)
	var out []validate.Row
	for start := 0; start < len(keys); start += keysPerStatement {
		in, args := r.sql.inKeys(keys[start:min(start+keysPerStatement, len(keys))])
		rows, err := r.side.conn.QueryContext(ctx, "SELECT "+strings.Join(r.sql.keyRead, ", ")+", "+strings.Join(r.sql.cols, ", ")+", "+r.sql.hash+
			" FROM "+r.sql.qname+" WHERE "+in, args...)
		if err != nil {
			return nil, r.errorf("read rows by key", err)
		}
		for rows.Next() {
			vals := make([]sql.NullString, nk+nc+1)
			dest := make([]any, len(vals))
			for i := range vals {
				dest[i] = &vals[i]
			}
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return nil, r.errorf("read rows by key", err)
			}
			row := validate.Row{Key: make([]string, nk), Values: make([]*string, nc)}
			for i := range nk {
				row.Key[i] = vals[i].String
			}
			for i := range nc {
				if v := vals[nk+i]; v.Valid {
					row.Values[i] = &v.String
				}
			}
			h, err := strconv.ParseUint(vals[nk+nc].String, 10, 64)
			if err != nil {
				rows.Close()
				return nil, r.errorf("read rows by key", err)
			}
			row.Hash = int64(h)
			out = append(out, row)
		}
		if err := rows.Err(); err != nil {
			return nil, r.errorf("read rows by key", err)
		}
		rows.Close()
	}
	return out, nil
}

// CountRows counts, in one scan of the table, the rows whose text is each of these.
func (r *myReader) CountRows(ctx context.Context, t *validate.Table, texts []string) ([]int64, error) {
	counts := make([]int64, len(texts))
	at := map[string][]int{}
	ps := make([]string, len(texts))
	args := make([]any, len(texts))
	for i, s := range texts {
		at[s] = append(at[s], i)
		ps[i] = "UNHEX(?)"
		args[i] = hex.EncodeToString([]byte(s))
	}
	rows, err := r.side.conn.QueryContext(ctx, "SELECT r, COUNT(*) FROM (SELECT "+r.sql.row+" AS r FROM "+r.sql.qname+") AS t WHERE r IN ("+
		strings.Join(ps, ", ")+") GROUP BY r", args...)
	if err != nil {
		return nil, r.errorf("count rows", err)
	}
	defer rows.Close()
	for rows.Next() {
		var text string
		var n int64
		if err := rows.Scan(&text, &n); err != nil {
			return nil, r.errorf("count rows", err)
		}
		for _, i := range at[text] {
			counts[i] = n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, r.errorf("count rows", err)
	}
	return counts, nil
}

// boundaries splits a keyed table into about n ranges in the source's key order: it
// walks the key, a step of rows at a time (each step one range read of the index).
func (r *myReader) boundaries(ctx context.Context, t *validate.Table, estimatedRows int64, n int) ([]validate.Range, error) {
	whole := []validate.Range{{}}
	if n < 2 || len(t.Key) == 0 {
		return whole, nil
	}
	if r.sql.keyInt {
		if ranges, ok, err := r.evenRanges(ctx, n, estimatedRows); err != nil || ok {
			return ranges, err
		}
	}
	step := max(estimatedRows/int64(n), 1)
	var ranges []validate.Range
	var lo []string
	for range n - 1 {
		// The key step rows after lo (or the table's start): each range holds step rows.
		where, args := r.sql.where(validate.Range{Lo: lo})
		rows, err := r.side.conn.QueryContext(ctx, fmt.Sprintf("SELECT %s FROM %s%s ORDER BY %s LIMIT 1 OFFSET %d",
			strings.Join(r.sql.keyRead, ", "), r.sql.qname, where, strings.Join(r.sql.keyCols, ", "), step), args...)
		if err != nil {
			return nil, r.errorf("chunk the key", err)
		}
		var hi []string
		if rows.Next() {
			if hi, err = scanStrings(rows, len(t.Key)); err != nil {
				rows.Close()
				return nil, r.errorf("chunk the key", err)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, r.errorf("chunk the key", err)
		}
		if hi == nil {
			break // the table ends before the estimate
		}
		ranges = append(ranges, validate.Range{Lo: lo, Hi: hi})
		lo = hi
	}
	return append(ranges, validate.Range{Lo: lo}), nil
}

// evenRanges splits a key of one integer column into n ranges of equal width between
// its least and greatest values (two reads of the index); ok is false for a key too
// sparse for ranges of equal width to hold about as many rows (its values spread over
// more than 16 times the rows).
func (r *myReader) evenRanges(ctx context.Context, n int, estimatedRows int64) (ranges []validate.Range, ok bool, err error) {
	var lo, hi sql.NullString
	k := r.sql.keyCols[0]
	if err := r.side.conn.QueryRowContext(ctx, "SELECT MIN("+k+"), MAX("+k+") FROM "+r.sql.qname).Scan(&lo, &hi); err != nil {
		return nil, false, r.errorf("the key's bounds", err)
	}
	l, okl := new(big.Int).SetString(lo.String, 10)
	h, okh := new(big.Int).SetString(hi.String, 10)
	if !okl || !okh {
		return []validate.Range{{}}, true, nil // empty
	}
	span := new(big.Int).Sub(h, l)
	span.Add(span, big.NewInt(1))
	if span.Cmp(big.NewInt(16*max(estimatedRows, 1))) > 0 {
		return nil, false, nil
	}
	if span.Cmp(big.NewInt(int64(n))) < 0 {
		n = int(span.Int64())
	}
	ranges = make([]validate.Range, 0, n)
	var prev []string
	for i := 1; i < n; i++ {
		b := new(big.Int).Mul(span, big.NewInt(int64(i)))
		b.Quo(b, big.NewInt(int64(n)))
		b.Add(b, l)
		bound := []string{b.String()}
		ranges = append(ranges, validate.Range{Lo: prev, Hi: bound})
		prev = bound
	}
	return append(ranges, validate.Range{Lo: prev}), true, nil
}

var _ validate.Reader = (*myReader)(nil)
