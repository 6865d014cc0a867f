package postgres

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/cutover-dev/cutover/validate"
	"github.com/jackc/pgx/v5"
)

// canonicalSession makes every value's text the same on any server: the comparison
// hashes text. On top of the float digits, date and interval styles every connection
// starts with (valueSettings, sent again here in case the URL changed them), the time
// zone, bytea output and money format. The validator's readers start with them.
func canonicalSession() map[string]string {
	s := map[string]string{"TimeZone": "UTC", "bytea_output": "hex", "lc_monetary": "C", "statement_timeout": "0"}
	maps.Copy(s, valueSettings)
	return s
}

const (
	// lookupBatch is how many keys one lookup statement reads.
	lookupBatch = 1000
	// sampleAbove: chunk boundaries come from every key of a table this small, from a
	// sample of its pages above.
	sampleAbove = 200_000
)

// tableShape is a table's columns and key as one side's catalog has them.
type tableShape struct {
	qname     string            // quoted schema.table
	types     map[string]string // column -> format_type
	generated map[string]bool   // stored generated columns
	columns   []string          // in attnum order
	key       []string          // primary key, replica identity index or unique NOT NULL index; none: no key
	keyTypes  []string
}

// describeTables reads the shapes of tables (schema, name) in one round trip; a table
// that does not exist is not in the map. The statements are plain lookups by name:
// a backend just started plans them at once.
func describeTables(ctx context.Context, conn *pgx.Conn, tables [][2]string) (map[[2]string]*tableShape, error) {
	qnames := make([]string, len(tables))
	for i, t := range tables {
		qnames[i] = pgx.Identifier{t[0], t[1]}.Sanitize()
	}
	b := &pgx.Batch{}
	// A table without columns is a row of NULLs.
	b.Queue(`SELECT q.i, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attgenerated <> '', a.attnotnull
		FROM unnest($1::text[]) WITH ORDINALITY AS q(name, i) JOIN pg_class c ON c.oid = to_regclass(q.name)
		LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY q.i, a.attnum`, qnames)
	b.Queue(`SELECT q.i, i.indexrelid, i.indisprimary, i.indisreplident, i.indkey::int2[], i.indnkeyatts
		FROM unnest($1::text[]) WITH ORDINALITY AS q(name, i) JOIN pg_index i ON i.indrelid = to_regclass(q.name)
		JOIN pg_class ic ON ic.oid = i.indexrelid
		WHERE i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
		  AND ic.relam = (SELECT oid FROM pg_am WHERE amname = 'btree')`, qnames)
	res := conn.SendBatch(ctx, b)
	defer res.Close()
	byNum := map[*tableShape]map[int16]string{}
	notNull := map[*tableShape]map[string]bool{}
	shapes := map[[2]string]*tableShape{}
	var i int
	var num *int16
	var col, typ *string
	var gen, nn *bool
	rows, _ := res.Query()
	if _, err := pgx.ForEachRow(rows, []any{&i, &num, &col, &typ, &gen, &nn}, func() error {
		k := tables[i-1]
		s := shapes[k]
		if s == nil {
			s = &tableShape{qname: qnames[i-1], types: map[string]string{}, generated: map[string]bool{}}
			shapes[k] = s
			byNum[s], notNull[s] = map[int16]string{}, map[string]bool{}
		}
		if col == nil {
			return nil // no column
		}
		s.columns = append(s.columns, *col)
		s.types[*col], s.generated[*col] = *typ, *gen
		byNum[s][*num], notNull[s][*col] = *col, *nn
		return nil
	}); err != nil {
		return nil, err
	}
	// The key: the primary key, else the replica identity index, else the unique btree
	// index on the fewest NOT NULL columns (no expression, no predicate).
	type index struct {
		oid                uint32
		primary, replIdent bool
		cols               []string
	}
	best := map[*tableShape]index{}
	better := func(a, b index) bool {
		switch {
		case a.primary != b.primary:
			return a.primary
		case a.replIdent != b.replIdent:
			return a.replIdent
		case len(a.cols) != len(b.cols):
			return len(a.cols) < len(b.cols)
		}
		return a.oid < b.oid
	}
	var ix index
	var attnums []int16
	var keyAtts int16
	rows, _ = res.Query()
	if _, err := pgx.ForEachRow(rows, []any{&i, &ix.oid, &ix.primary, &ix.replIdent, &attnums, &keyAtts}, func() error {
		s := shapes[tables[i-1]]
		if s == nil {
			return nil
		}
		ix.cols = nil
		allNotNull := true
		for _, n := range attnums[:min(int(keyAtts), len(attnums))] {
			c, ok := byNum[s][n]
			if !ok {
				return nil // a system column
			}
			ix.cols = append(ix.cols, c)
			allNotNull = allNotNull && notNull[s][c]
		}
		if len(ix.cols) == 0 || !(ix.primary || ix.replIdent || allNotNull) {
			return nil
		}
		if b, ok := best[s]; !ok || better(ix, b) {
			best[s] = ix
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for s, ix := range best {
		s.key = ix.cols
		for _, c := range ix.cols {
			s.keyTypes = append(s.keyTypes, s.types[c])
		}
	}
	return shapes, res.Close()
}

// pgReader reads one side for the validator, in the transaction its caller opened.
type pgReader struct {
	conn   *pgx.Conn
	shapes map[*validate.Table]*tableShape
	sql    map[*validate.Table]*readerSQL
}

// readerSQL is a table's statements on one side.
type readerSQL struct {
	row      string // the row as text
	hash     string // the row's hash
	keyText  string // the key's columns as text
	colsText string // every compared column as text
	keyTypes []string
	keyCols  []string // quoted
}

func newReader(conn *pgx.Conn) *pgReader {
	return &pgReader{conn: conn, shapes: map[*validate.Table]*tableShape{}, sql: map[*validate.Table]*readerSQL{}}
}

func (r *pgReader) add(t *validate.Table, s *tableShape) {
	r.shapes[t] = s
	q := &readerSQL{}
	cols := make([]string, len(t.Columns))
	texts := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = pgx.Identifier{c}.Sanitize()
		texts[i] = cols[i] + "::text"
	}
	q.row = "ROW(" + strings.Join(cols, ", ") + ")::text"
	q.hash = "hashtextextended(" + q.row + ", 0)"
	q.colsText = strings.Join(texts, ", ")
	var keyTexts []string
	for _, k := range t.Key {
		kq := pgx.Identifier{k}.Sanitize()
		q.keyCols = append(q.keyCols, kq)
		keyTexts = append(keyTexts, kq+"::text")
		q.keyTypes = append(q.keyTypes, s.types[k])
	}
	q.keyText = strings.Join(keyTexts, ", ")
	r.sql[t] = q
}

// where is a range's predicate and its arguments: key bounds travel as text and are
// cast to the key's types on this side.
func (q *readerSQL) where(rg validate.Range) (string, []any) { return q.whereAfter(rg, nil) }

// whereAfter is where, its parameters numbered after args.
func (q *readerSQL) whereAfter(rg validate.Range, args []any) (string, []any) {
	var conds []string
	tuple := func(vals []string) string {
		ps := make([]string, len(vals))
		for i, v := range vals {
			args = append(args, v)
			ps[i] = fmt.Sprintf("$%d::text::%s", len(args), q.keyTypes[i])
		}
		if len(ps) == 1 {
			return ps[0]
		}
		return "(" + strings.Join(ps, ", ") + ")"
	}
	cols := strings.Join(q.keyCols, ", ")
	if len(q.keyCols) > 1 {
		cols = "(" + cols + ")"
	}
	if rg.Lo != nil {
		conds = append(conds, cols+" >= "+tuple(rg.Lo))
	}
	if rg.Hi != nil {
		conds = append(conds, cols+" < "+tuple(rg.Hi))
	}
	if len(conds) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// Sums counts and hashes each range. With a one-column key, one scan of the table
// does every range (width_bucket finds a row's range); otherwise each range is a query.
func (r *pgReader) Sums(ctx context.Context, t *validate.Table, rs []validate.Range) ([]validate.Sum, error) {
	q := r.sql[t]
	qname := r.shapes[t].qname
	sums := make([]validate.Sum, len(rs))
	if len(q.keyCols) != 1 || len(rs) < 2 {
		for i, rg := range rs {
			where, args := q.where(rg)
			err := r.conn.QueryRow(ctx, "SELECT count(*), coalesce(sum("+q.hash+"), 0)::text FROM ONLY "+qname+where, args...).Scan(&sums[i].Rows, &sums[i].Hash)
			if err != nil {
				return nil, fmt.Errorf("table %s: count and hash: %w", qname, err)
			}
		}
		return sums, nil
	}
	for i := range sums {
		sums[i].Hash = "0"
	}
	bounds := make([]string, len(rs)-1) // each range's lower bound but the first's
	for i, rg := range rs[1:] {
		bounds[i] = rg.Lo[0]
	}
	// The ranges may be some of the table's: read from the first's start to the last's end.
	where, args := q.whereAfter(validate.Range{Lo: rs[0].Lo, Hi: rs[len(rs)-1].Hi}, []any{bounds})
	// The planner takes the ranges for as many groups as the key has values: it would
	// sort the whole table (on disk) to group it. Hashed, the groups are a few
	// thousand rows of memory.
	b := &pgx.Batch{}
	b.Queue("SET LOCAL enable_sort = off")
	var chunk int
	var s validate.Sum
	b.Queue(fmt.Sprintf("SELECT width_bucket(%s, $1::text[]::%s[]), count(*), sum(%s)::text FROM ONLY %s%s GROUP BY 1",
		q.keyCols[0], q.keyTypes[0], q.hash, qname, where), args...).Query(func(rows pgx.Rows) error {
		_, err := pgx.ForEachRow(rows, []any{&chunk, &s.Rows, &s.Hash}, func() error {
			if chunk < 0 || chunk >= len(sums) {
				return fmt.Errorf("range %d of %d", chunk, len(sums))
			}
			sums[chunk] = s
			return nil
		})
		return err
	})
	b.Queue("RESET enable_sort")
	if err := r.conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("table %s: count and hash: %w", qname, err)
	}
	return sums, nil
}

func (r *pgReader) Hashes(ctx context.Context, t *validate.Table, rg validate.Range) ([]validate.KeyHash, error) {
	q := r.sql[t]
	sel := q.keyText
	if len(t.Key) == 0 {
		sel = q.row
	}
	where, args := q.where(rg)
	rows, err := r.conn.Query(ctx, "SELECT "+sel+", "+q.hash+" FROM ONLY "+r.shapes[t].qname+where, args...)
	if err != nil {
		return nil, fmt.Errorf("table %s: read row hashes: %w", r.shapes[t].qname, err)
	}
	kh, err := scanKeyHashes(rows, max(len(t.Key), 1))
	if err != nil {
		return nil, fmt.Errorf("table %s: read row hashes: %w", r.shapes[t].qname, err)
	}
	return kh, nil
}

// scanKeyHashes reads rows of n key columns and a hash.
func scanKeyHashes(rows pgx.Rows, n int) ([]validate.KeyHash, error) {
	defer rows.Close()
	var out []validate.KeyHash
	for rows.Next() {
		kh := validate.KeyHash{Key: make([]string, n)}
		dest := make([]any, n+1)
		for i := range kh.Key {
			dest[i] = &kh.Key[i]
		}
		dest[n] = &kh.Hash
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		out = append(out, kh)
	}
	return out, rows.Err()
}

// anyOf is ANY of an array parameter cast to typ[], out of the planner's sight: given
// the array, it would estimate the rows of each of its thousands of values (some
// milliseconds); it plans an index scan for any array all the same.
func anyOf(param, typ string) string {
	return "ANY ((SELECT " + param + "::" + typ + "[])::" + typ + "[])"
}

// inKeys is a predicate selecting the rows with these keys: they travel as text arrays,
// one per key column, and are cast to the key's types on this side.
func (q *readerSQL) inKeys(keys [][]string) (string, []any) {
	if len(q.keyCols) == 1 {
		// An index scan for every value of the array, in the index's order.
		col := make([]string, len(keys))
		for j, k := range keys {
			col[j] = k[0]
		}
		return q.keyCols[0] + " = " + anyOf("$1::text[]", q.keyTypes[0]), []any{col}
	}
	args := make([]any, len(q.keyCols))
	unnest := make([]string, len(q.keyCols))
	casts := make([]string, len(q.keyCols))
	names := make([]string, len(q.keyCols))
	for i := range q.keyCols {
		col := make([]string, len(keys))
		for j, k := range keys {
			col[j] = k[i]
		}
		args[i] = col
		unnest[i] = fmt.Sprintf("$%d::text[]", i+1)
		names[i] = fmt.Sprintf("k%d", i)
		casts[i] = fmt.Sprintf("u.k%d::%s", i, q.keyTypes[i])
	}
	cols := strings.Join(q.keyCols, ", ")
	if len(q.keyCols) > 1 {
		cols = "(" + cols + ")"
	}
	return cols + " IN (SELECT " + strings.Join(casts, ", ") + " FROM unnest(" + strings.Join(unnest, ", ") + ") AS u(" + strings.Join(names, ", ") + "))", args
}

// SumKeys counts and hashes the rows with these keys.
func (r *pgReader) SumKeys(ctx context.Context, t *validate.Table, keys validate.KeySet) (validate.Sum, error) {
	q := r.sql[t]
	var in string
	var args []any
	if a, ok := keys.(*keyArray); ok && len(q.keyCols) == 1 {
		// The array's text, as the target gave it: cast here, never parsed on the way.
		in, args = q.keyCols[0]+" = "+anyOf("$1::text", q.keyTypes[0]), []any{a.text}
	} else {
		list, err := keys.Keys(ctx)
		if err != nil {
			return validate.Sum{}, err
		}
		in, args = q.inKeys(list)
	}
	var s validate.Sum
	err := r.conn.QueryRow(ctx, "SELECT count(*), coalesce(sum("+q.hash+"), 0)::text FROM ONLY "+r.shapes[t].qname+" WHERE "+in, args...).Scan(&s.Rows, &s.Hash)
	if err != nil {
		return s, fmt.Errorf("table %s: count and hash rows by key: %w", r.shapes[t].qname, err)
	}
	return s, nil
}

// keyArray is keys of one column as the text of a PostgreSQL array; a key may be in it
// more than once.
type keyArray struct {
	text string
	n    int       // distinct keys
	conn *pgx.Conn // a connection that decodes it
}

func (a *keyArray) Len() int { return a.n }

func (a *keyArray) Keys(ctx context.Context) ([][]string, error) {
	var vals []string
	if err := a.conn.QueryRow(ctx, "SELECT coalesce(array_agg(DISTINCT k), '{}') FROM unnest($1::text::text[]) AS k", a.text).Scan(&vals); err != nil {
		return nil, fmt.Errorf("decode the changed keys: %w", err)
	}
	keys := make([][]string, len(vals))
	for i := range vals {
		keys[i] = vals[i : i+1 : i+1]
	}
	return keys, nil
}

// KeyHashes returns the key and hash of the rows with these keys.
func (r *pgReader) KeyHashes(ctx context.Context, t *validate.Table, keys [][]string) ([]validate.KeyHash, error) {
	q := r.sql[t]
	in, args := q.inKeys(keys)
	rows, err := r.conn.Query(ctx, "SELECT "+q.keyText+", "+q.hash+" FROM ONLY "+r.shapes[t].qname+" WHERE "+in, args...)
	if err != nil {
		return nil, fmt.Errorf("table %s: read row hashes by key: %w", r.shapes[t].qname, err)
	}
	return scanKeyHashes(rows, len(t.Key))
}

func (r *pgReader) Lookup(ctx context.Context, t *validate.Table, keys [][]string) ([]validate.Row, error) {
	q := r.sql[t]
	var out []validate.Row
	for start := 0; start < len(keys); start += lookupBatch {
		batch := keys[start:min(start+lookupBatch, len(keys))]
		in, args := q.inKeys(batch)
		sql := "SELECT " + q.keyText + ", " + q.colsText + ", " + q.hash + " FROM ONLY " + r.shapes[t].qname + " WHERE " + in
		rows, err := r.conn.Query(ctx, sql, args...)
		if err != nil {
			return nil, fmt.Errorf("table %s: read rows by key: %w", r.shapes[t].qname, err)
		}
		nk, nc := len(t.Key), len(t.Columns)
		for rows.Next() {
			row := validate.Row{Key: make([]string, nk), Values: make([]*string, nc)}
			dest := make([]any, 0, nk+nc+1)
			for i := range row.Key {
				dest = append(dest, &row.Key[i])
			}
			for i := range row.Values {
				dest = append(dest, &row.Values[i])
			}
			dest = append(dest, &row.Hash)
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return nil, fmt.Errorf("table %s: read rows by key: %w", r.shapes[t].qname, err)
			}
			out = append(out, row)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("table %s: read rows by key: %w", r.shapes[t].qname, err)
		}
	}
	return out, nil
}

// CountRows counts the rows equal to each of these, in one scan of the table.
func (r *pgReader) CountRows(ctx context.Context, t *validate.Table, rows []string) ([]int64, error) {
	q := r.sql[t]
	qname := r.shapes[t].qname
	counts := make([]int64, len(rows))
	// The row's text is computed where only the table's columns are named.
	found, err := r.conn.Query(ctx, "SELECT w.i, count(*) FROM (SELECT "+q.row+" AS r FROM ONLY "+qname+") AS t"+
		" JOIN unnest($1::text[]) WITH ORDINALITY AS w(r, i) ON w.r = t.r GROUP BY w.i", rows)
	if err != nil {
		return nil, fmt.Errorf("table %s: count rows: %w", qname, err)
	}
	var i, n int64
	if _, err := pgx.ForEachRow(found, []any{&i, &n}, func() error {
		counts[i-1] = n
		return nil
	}); err != nil {
		return nil, fmt.Errorf("table %s: count rows: %w", qname, err)
	}
	return counts, nil
}

// boundaries splits a keyed table into about n chunks from a sample of its keys,
// in the source's order.
func (r *pgReader) boundaries(ctx context.Context, t *validate.Table, estimatedRows int64, n int) ([]validate.Range, error) {
	whole := []validate.Range{{}}
	if n < 2 || len(t.Key) == 0 {
		return whole, nil
	}
	q := r.sql[t]
	pct := min(100, 100*float64(n)*16/float64(max(estimatedRows, 1)))
	// The key's own order, not its text's: ORDER BY names the table's columns.
	order := make([]string, len(q.keyCols))
	for i, c := range q.keyCols {
		order[i] = "t." + c
	}
	// A sample of whole pages is cheap; a small table has too few pages for one.
	sample := fmt.Sprintf(" TABLESAMPLE SYSTEM (%g)", pct)
	if estimatedRows <= sampleAbove {
		sample = ""
	}
	rows, err := r.conn.Query(ctx, fmt.Sprintf("SELECT %s FROM ONLY %s AS t%s ORDER BY %s",
		q.keyText, r.shapes[t].qname, sample, strings.Join(order, ", ")))
	if err != nil {
		return nil, fmt.Errorf("table %s: sample the keys: %w", r.shapes[t].qname, err)
	}
	var keys [][]string
	for rows.Next() {
		k := make([]string, len(t.Key))
		dest := make([]any, len(k))
		for i := range k {
			dest[i] = &k[i]
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return nil, err
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("table %s: sample the keys: %w", r.shapes[t].qname, err)
	}
	if len(keys) < n {
		n = len(keys)
	}
	if n < 2 {
		return whole, nil
	}
	var ranges []validate.Range
	var lo []string
	for j := 1; j < n; j++ {
		hi := keys[j*len(keys)/n]
		if lo != nil && strings.Join(hi, "\x00") == strings.Join(lo, "\x00") {
			continue
		}
		ranges = append(ranges, validate.Range{Lo: lo, Hi: hi})
		lo = hi
	}
	return append(ranges, validate.Range{Lo: lo}), nil
}

var _ validate.Reader = (*pgReader)(nil)
