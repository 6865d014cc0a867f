package postgres

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/cutover-dev/cutover/load"
	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// copyReadBuffer is the read buffer of a worker's source connection.
const copyReadBuffer = 256 << 10

// chunkBytes is the heap size above which a table is split so several workers copy it.
const chunkBytes = 64 << 20

// copySpec is how one table is copied.
type copySpec struct {
	qname   string // schema.table, quoted
	columns string // quoted column list without generated columns
	blocks  int64  // heap blocks when the snapshot was taken
	pkName  string // the primary key built once the rows are in, or ""
	pkDDL   string
	binary  bool // copied in COPY's binary format (binaryColumns)
}

// copyPlan describes the tables of a load and how each is copied.
type copyPlan struct {
	tables []*load.Table
	specs  map[*load.Table]*copySpec
}

// binaryColumns is true for a column whose values can travel in COPY's binary format
// between two servers of one major version: a built-in base, range or multirange type
// (or an array of one) with binary input and output, whose binary form holds no oid
// of the source. User-defined types (enums, composites, domains, extensions' types)
// carry oids of the source or may lack binary I/O, and reg* types are names in text
// but oids in binary: they travel as text. The binary form parses faster on the target
// (about an eighth less CPU on pgbench's rows, and bytea half the bytes) and does not
// depend on settings that text depends on (lc_monetary for money).
var binaryColumns = binaryType("ty") + ` AND coalesce(` + binaryType("el") + `, true)`

// binaryType is the condition on the pg_type row alias for binaryColumns. int2vector
// and oidvector are left out: an empty one is sent in a form their binary input refuses.
func binaryType(alias string) string {
	return strings.ReplaceAll(`(t.oid < 16384 AND t.typtype IN ('b', 'r', 'm') AND t.typsend <> 0 AND t.typreceive <> 0
		AND t.typname NOT LIKE 'reg%' AND t.typname NOT IN ('int2vector', 'oidvector', 'tsquery'))`, "t.", alias+".")
}

// planCopy reads, inside the snapshot, each table's columns and size, and splits the large
// ones into ranges of physical blocks (ctid). Block ranges partition any table, with or
// without a key, and PostgreSQL 14+ reads each range with a TID range scan: sequential
// I/O and no index needed. Older servers copy each table whole. With sameMajor (the
// target runs the source's major version), tables whose every column is binaryColumns
// are copied in the binary format.
func planCopy(ctx context.Context, conn *pgx.Conn, rels []*relation, parallel, major int, sameMajor bool) (*copyPlan, error) {
	var oids []uint32
	byOID := map[uint32]*relation{}
	for _, r := range rels {
		if r.kind == "r" { // partitioned roots hold no rows; their partitions are copied
			oids = append(oids, r.oid)
			byOID[r.oid] = r
		}
	}
	rows, err := conn.Query(ctx, `
		SELECT t.oid, coalesce(string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum), ''),
		       pg_relation_size(t.oid), pg_relation_size(t.oid) / current_setting('block_size')::bigint,
		       coalesce(min(pk.conname), ''), coalesce(min(pg_get_constraintdef(pk.oid)), ''),
		       $2 AND count(a.attnum) > 0 AND bool_and(`+binaryColumns+`)
		FROM unnest($1::oid[]) AS t(oid)
		LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		LEFT JOIN pg_type ty ON ty.oid = a.atttypid
		LEFT JOIN pg_type el ON el.oid = ty.typelem AND ty.typcategory = 'A'
		LEFT JOIN pg_constraint pk ON pk.conrelid = t.oid AND pk.contype = 'p'
		GROUP BY t.oid`, oids, sameMajor)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cp := &copyPlan{specs: map[*load.Table]*copySpec{}}
	for rows.Next() {
		var oid uint32
		var cols string
		var size, blocks int64
		var pkName, pkDef string
		var binary bool
		if err := rows.Scan(&oid, &cols, &size, &blocks, &pkName, &pkDef, &binary); err != nil {
			return nil, err
		}
		r := byOID[oid]
		chunks := 1
		if major >= 14 && parallel > 1 && size > chunkBytes {
			// a multiple of the workers, so that they finish the table together: 3
			// ranges for 2 workers left one reading a third of the table alone
			chunks = int(min((size+chunkBytes-1)/chunkBytes, int64(parallel*4)))
			chunks = (chunks + parallel - 1) / parallel * parallel
		}
		t := &load.Table{Schema: r.schema, Name: r.name, EstimatedBytes: size, Chunks: chunks}
		cp.tables = append(cp.tables, t)
		spec := &copySpec{qname: r.qname, columns: cols, blocks: blocks, pkName: pkName, binary: binary}
		if pkName != "" {
			spec.pkDDL = fmt.Sprintf("ALTER TABLE ONLY %s ADD CONSTRAINT %s %s", r.qname, pgx.Identifier{pkName}.Sanitize(), pkDef)
		}
		cp.specs[t] = spec
	}
	return cp, rows.Err()
}

// columnList is the COPY's column list: none for a table without a column to copy
// (no column at all, or only generated ones), whose rows are empty lines.
func (s *copySpec) columnList() string {
	if s.columns == "" {
		return ""
	}
	return " (" + s.columns + ")"
}

// format is the COPY option of the table's format.
func (s *copySpec) format() string {
	if s.binary {
		return " (FORMAT binary)"
	}
	return ""
}

// copyInSQL writes the table's rows in the format copyOutSQL reads them.
func (s *copySpec) copyInSQL() string {
	return fmt.Sprintf("COPY %s%s FROM STDIN%s", s.qname, s.columnList(), s.format())
}

// copyOutSQL reads chunk i of n by block range; the first and last ranges are open so
// that every row visible in the snapshot falls in exactly one chunk.
func (s *copySpec) copyOutSQL(i, n int) string {
	if n <= 1 {
		return fmt.Sprintf("COPY %s%s TO STDOUT%s", s.qname, s.columnList(), s.format())
	}
	where := []string{"true"}
	if i > 0 {
		where = append(where, fmt.Sprintf("ctid >= '(%d,0)'::tid", s.blocks*int64(i)/int64(n)))
	}
	if i < n-1 {
		where = append(where, fmt.Sprintf("ctid < '(%d,0)'::tid", s.blocks*int64(i+1)/int64(n)))
	}
	return fmt.Sprintf("COPY (SELECT %s FROM ONLY %s WHERE %s) TO STDOUT%s", s.columns, s.qname, strings.Join(where, " AND "), s.format())
}

// rowsOut reads the rows of a copy plan's tables from a source transaction bound to
// the snapshot, in the COPY format the plan says (rowsIn reads the same).
type rowsOut struct {
	conn *pgx.Conn
	plan *copyPlan
}

// rowsIn writes the rows of a copy plan's tables into the target.
type rowsIn struct {
	conn *pgx.Conn
	plan *copyPlan
}

var (
	_ load.RowsOut = (*rowsOut)(nil)
	_ load.RowsIn  = (*rowsIn)(nil)
)

// copyWorker is a load.Pipe from a rowsOut into a rowsIn of one plan.
type copyWorker struct {
	load.Pipe
	out *rowsOut
	in  *rowsIn
}

func (w *copyWorker) setPlan(cp *copyPlan) { w.out.plan, w.in.plan = cp, cp }

// workerPool opens the copy workers ahead of the copy, while the schema is dumped and
// created: a worker's source transaction imports the snapshot, which needs no table on
// the target, and its target connection touches none until it copies.
type workerPool struct {
	ready chan openedWorker
	mu    sync.Mutex
	left  int // opened ahead (or under way) and not handed out
}

type openedWorker struct {
	w   *copyWorker
	err error
}

// openWorkers starts opening n workers bound to the snapshot.
func openWorkers(ctx context.Context, p *plan.Plan, snapshot string, n int) *workerPool {
	wp := &workerPool{ready: make(chan openedWorker, n), left: n}
	for range n {
		go func() {
			w, err := newCopyWorker(ctx, p, snapshot, nil)
			wp.ready <- openedWorker{w, err}
		}()
	}
	return wp
}

// get hands out a worker opened ahead, for the copy plan cp, or opens one (with no
// pool, or once the pool's are handed out).
func (wp *workerPool) get(ctx context.Context, p *plan.Plan, snapshot string, cp *copyPlan) (*copyWorker, error) {
	if wp != nil {
		wp.mu.Lock()
		ahead := wp.left > 0
		if ahead {
			wp.left--
		}
		wp.mu.Unlock()
		if ahead {
			o := <-wp.ready
			if o.err != nil {
				return nil, o.err
			}
			o.w.setPlan(cp)
			return o.w, nil
		}
	}
	return newCopyWorker(ctx, p, snapshot, cp)
}

// close closes the workers opened ahead that were not handed out.
func (wp *workerPool) close(ctx context.Context) {
	if wp == nil {
		return
	}
	wp.mu.Lock()
	n := wp.left
	wp.left = 0
	wp.mu.Unlock()
	for range n {
		if o := <-wp.ready; o.w != nil {
			o.w.Close(ctx)
		}
	}
}

func newCopyWorker(ctx context.Context, p *plan.Plan, snapshot string, cp *copyPlan) (*copyWorker, error) {
	src, err := openRowsOut(ctx, p.Source, snapshot)
	if err != nil {
		return nil, err
	}
	tgt, err := openRowsIn(ctx, p.Target)
	if err != nil {
		src.Close(ctx)
		return nil, err
	}
	return newWorker(src, tgt, cp), nil
}

// openRowsOut opens a source connection for rowsOut: a read-only transaction bound to
// the snapshot.
func openRowsOut(ctx context.Context, ep plan.Endpoint, snapshot string) (*pgx.Conn, error) {
	cfg, err := Config(ep)
	if err != nil {
		return nil, fmt.Errorf("connect to the source: %w", err)
	}
	// The COPY's rows come in the server's 8 kB sends: read whatever the socket holds at
	// once, not 8 kB a system call (and a wait in the poller for each).
	cfg.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
		return pgproto3.NewFrontend(bufio.NewReaderSize(r, copyReadBuffer), w)
	}
	src, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the source: %w", err)
	}
	for _, q := range []string{
		"SET statement_timeout = 0", "SET idle_in_transaction_session_timeout = 0",
		"BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
		"SET TRANSACTION SNAPSHOT '" + snapshot + "'",
	} {
		if _, err := src.Exec(ctx, q); err != nil {
			src.Close(ctx)
			return nil, fmt.Errorf("source: %s: %w", q, err)
		}
	}
	return src, nil
}

// openRowsIn opens a target connection for rowsIn.
func openRowsIn(ctx context.Context, ep plan.Endpoint) (*pgx.Conn, error) {
	tgt, err := Connect(ctx, ep)
	if err != nil {
		return nil, fmt.Errorf("connect to the target: %w", err)
	}
	// Triggers and foreign keys must not fire for copied rows; an asynchronous commit is
	// safe because a table counts as loaded only once the control schema records it,
	// which commits after (and so flushes) the table's data.
	// maintenance_work_mem: the primary key built after the rows sorts in memory rather than on disk.
	for _, q := range []string{"SET session_replication_role = replica", "SET synchronous_commit = off", "SET statement_timeout = 0",
		"SET maintenance_work_mem = '512MB'"} {
		if _, err := tgt.Exec(ctx, q); err != nil {
			tgt.Close(ctx)
			return nil, fmt.Errorf("target: %s: %w", q, err)
		}
	}
	return tgt, nil
}

func newWorker(src, tgt *pgx.Conn, cp *copyPlan) *copyWorker {
	w := &copyWorker{out: &rowsOut{conn: src, plan: cp}, in: &rowsIn{conn: tgt, plan: cp}}
	w.Pipe = load.Pipe{Out: w.out, In: w.in}
	return w
}

// rowMessages counts the rows of a COPY as they come: the server sends each row as one
// CopyData message (in the binary format, the file's header rides with the first row
// and its trailer, the int16 -1, is a message of its own; a text row ends with a
// newline, so it is never that trailer).
type rowMessages struct{ w *load.RowWriter }

func (r rowMessages) Write(p []byte) (int, error) {
	if len(p) != 2 || p[0] != 0xff || p[1] != 0xff {
		r.w.Row()
	}
	return r.w.Write(p)
}

// CopyOut streams the chunk's rows out of the source with COPY TO.
func (o *rowsOut) CopyOut(ctx context.Context, t *load.Table, chunk int, w *load.RowWriter) error {
	_, err := o.conn.PgConn().CopyTo(ctx, rowMessages{w}, o.plan.specs[t].copyOutSQL(chunk, t.Chunks))
	return err
}

func (o *rowsOut) Close(ctx context.Context) error { return o.conn.Close(ctx) }

// CopyIn streams the rows into the target with COPY FROM.
func (in *rowsIn) CopyIn(ctx context.Context, t *load.Table, _ int, r io.Reader) (int64, error) {
	tag, err := in.conn.PgConn().CopyFrom(ctx, r, in.plan.specs[t].copyInSQL())
	return tag.RowsAffected(), err
}

// Finish builds the table's primary key now that its rows are in: one sorted index
// build is much faster than maintaining the index row by row during COPY, and it runs
// while other workers go on copying. A run that stopped after the build but before the
// table was recorded as loaded left the key in place; it is kept.
func (in *rowsIn) Finish(ctx context.Context, t *load.Table) error {
	spec := in.plan.specs[t]
	if spec.pkDDL == "" {
		return nil
	}
	var exists bool
	if err := in.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = $1::regclass AND conname = $2)`,
		spec.qname, spec.pkName).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	if _, err := in.conn.Exec(ctx, spec.pkDDL); err != nil {
		return fmt.Errorf("build the primary key %s: %w", spec.pkName, err)
	}
	return nil
}

func (in *rowsIn) Close(ctx context.Context) error { return in.conn.Close(ctx) }
