package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/mytest"
	"github.com/cutover-dev/cutover/plan"
)

// replicaIDs give each test stream a server_id of its own: two replicas with one id
// cut each other off.
var replicaIDs atomic.Uint32

func init() { replicaIDs.Store(900_000_000) }

// binlogOf is the change stream of db's tables (nil: all of them).
func binlogOf(t *testing.T, db *mytest.DB, tables []string, heartbeat time.Duration) *binlogSource {
	t.Helper()
	s, err := newBinlogSource(plan.Endpoint{URL: db.URL()}, true, replicaIDs.Add(1), tables, heartbeat)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testStream runs a stream and hands its events to the test.
type testStream struct {
	events chan cdc.Event
	done   chan error
	stop   context.CancelFunc
}

// streamFrom opens src at from and runs it until the test ends.
func streamFrom(t *testing.T, src *binlogSource, from string) *testStream {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	st, err := src.Open(ctx, from)
	if err != nil {
		stop()
		t.Fatalf("open the stream at %q: %v", from, err)
	}
	s := &testStream{events: make(chan cdc.Event), done: make(chan error, 1), stop: stop}
	go func() { s.done <- st.Run(ctx, s.events) }()
	t.Cleanup(func() {
		stop()
		<-s.done
	})
	return s
}

// guard bounds a wait on the stream: a test that waits longer has failed.
const guard = 3 * time.Minute

// next is the stream's next event.
func (s *testStream) next(t *testing.T) cdc.Event {
	t.Helper()
	select {
	case e := <-s.events:
		return e
	case err := <-s.done:
		s.done <- err
		t.Fatalf("the stream stopped: %v", err)
	case <-time.After(guard):
		t.Fatalf("no event in %v", guard)
	}
	return nil
}

// failure is the error the stream stops with.
func (s *testStream) failure(t *testing.T) error {
	t.Helper()
	for {
		select {
		case <-s.events:
		case err := <-s.done:
			s.done <- err
			return err
		case <-time.After(guard):
			t.Fatalf("the stream did not stop in %v", guard)
		}
	}
}

// txn is a transaction as the stream sent it.
type txn struct {
	begin   *cdc.Begin
	events  []cdc.Event // its changes and schema changes
	changes []*cdc.Change
	commit  *cdc.Commit
}

// txn reads the next transaction, empty ones (a position sent by heartbeat) included.
func (s *testStream) txn(t *testing.T) txn {
	t.Helper()
	var x txn
	e := s.next(t)
	b, ok := e.(*cdc.Begin)
	if !ok {
		t.Fatalf("%T %+v, want a Begin", e, e)
	}
	x.begin = b
	for {
		switch e := s.next(t).(type) {
		case *cdc.Change:
			x.changes = append(x.changes, e)
			x.events = append(x.events, e)
		case *cdc.SchemaChange:
			x.events = append(x.events, e)
		case *cdc.Commit:
			x.commit = e
			if e.Position != b.Position && b.Position != "" {
				t.Errorf("a transaction begins at %s and commits at %s", b.Position, e.Position)
			}
			return x
		default:
			t.Fatalf("%T %+v inside a transaction", e, e)
		}
	}
}

// dataTxn reads the next transaction that is not empty.
func (s *testStream) dataTxn(t *testing.T) txn {
	t.Helper()
	for {
		if x := s.txn(t); len(x.events) > 0 {
			return x
		}
	}
}

// texts are a row's values as text, NULL as \N.
func texts(r cdc.Row) []string {
	out := make([]string, len(r))
	for i, v := range r {
		out[i] = string(v.Text)
		if v.Null {
			out[i] = `\N`
		}
	}
	return out
}

func gtidPos(t *testing.T, db *mytest.DB) string {
	t.Helper()
	return mytest.QueryVal[string](t, db, "SELECT @@global.gtid_binlog_pos")
}

// binlogTypes are types whose binary log form has its own cases: MariaDB's UUID (a
// binary string in the log, as INET4 and INET6), a CHAR of more than 255 bytes and a
// VARCHAR of more than 255 (their lengths written otherwise), BINARY(16) that is not a
// UUID, BIT across bytes, fractional seconds of every width.
var binlogTypes = []string{"UUID", "JSON", "CHAR(255)", "VARCHAR(300)", "BINARY(16)", "BIT(9)", "DATETIME(3)", "TIME(2)",
	"TIMESTAMP(3) NULL", "DECIMAL(20,10)", "DECIMAL(5,0)"}

// binlogSamples are values the log shortens: binary strings ending in zero bytes
// (left out of the log), UUIDs of every variant.
var binlogSamples = []string{"'ffffffff-ffff-ffff-ffff-ffffffffff00'", "'00000000-0000-0000-0000-000000000000'",
	"'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'::ffff:1.2.3.0'", "'1.2.3.0'", "'0.0.0.0'", "x'00000000000000000000000000000000'",
	"b'100000000'", "'-00:00:00.01'", "'2024-01-01 00:00:00.001'"}

// The stream's values load with the full load's LOAD DATA (copy.go's lines, no
// applier) into a table like the source's as the same values: every column type of
// the server, every sample each type takes, inserted, updated (the key and the
// value) and deleted, compared with the binary protocol's image of the source's rows
// before and after. The relations name each column's type as the catalog does.
func TestBinlogEveryColumnType(t *testing.T) {
	srcDB, tgtDB := mytest.NewDB(t, mytest.Source(t)), mytest.NewDB(t, mytest.Target(t))
	src, tgt := srcDB.Open(t), tgtDB.Open(t)
	ctx := context.Background()
	types := append(columnTypes(t, src), binlogTypes...)
	tables := typeTables(t, src, types)
	srcDB.Exec(t, "CREATE TABLE zz_marker (id int PRIMARY KEY)")
	createLike(t, src, tgt, tables)

	// The position, and the copy's plan, of one snapshot.
	snap, err := TakeSnapshot(ctx, src, true, SnapshotOptions{Workers: 1}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	view, err := snap.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []tableName
	for _, n := range tables {
		names = append(names, tableName{srcDB.Name, n})
	}
	cp, err := planCopy(ctx, view, names, tgtDB.Name, 1)
	snap.Release(view)
	snap.Close()
	if err != nil {
		t.Fatal(err)
	}
	stream := streamFrom(t, binlogOf(t, srcDB, nil, time.Hour), snap.Pos.String())

	before, after, selected := map[string][]string{}, map[string][]string{}, map[string][][]string{}
	updated, deleted := map[string]int64{}, map[string]int64{}
	conn, err := src.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i, name := range tables {
		q := quote(name)
		id := 0
		for _, mode := range []string{"STRICT_ALL_TABLES", ""} {
			if _, err := conn.ExecContext(ctx, "SET SESSION sql_mode = ?", mode); err != nil {
				t.Fatal(err)
			}
			values := append(slices.Clone(samples), binlogSamples...)
			if mode == "" {
				values = laxSamples
			}
			for _, v := range values {
				id++
				_, _ = conn.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s VALUES (%d, %s)", q, id, v))
			}
		}
		id++
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s VALUES (%d, NULL)", q, id)); err != nil {
			t.Fatalf("%s: %v", types[i], err)
		}
		before[name] = image(t, src, q)
		selected[name] = selectTexts(t, src, cp, name)
		// A key moved, values copied from another row, rows deleted: each statement
		// one transaction of many rows.
		for _, u := range []string{
			fmt.Sprintf("UPDATE %s SET id = id + 1000 WHERE id %% 7 = 0", q),
			fmt.Sprintf("UPDATE %[1]s SET v = (SELECT v FROM (SELECT v FROM %[1]s WHERE id = 2) s) WHERE id %% 7 = 1", q),
		} {
			res, err := conn.ExecContext(ctx, u)
			if err != nil {
				t.Fatalf("%s: %v", u, err)
			}
			n, _ := res.RowsAffected()
			updated[name] += n
		}
		res, err := conn.ExecContext(ctx, fmt.Sprintf("DELETE FROM %s WHERE id %% 7 = 2", q))
		if err != nil {
			t.Fatal(err)
		}
		deleted[name], _ = res.RowsAffected()
		after[name] = image(t, src, q)
	}
	srcDB.Exec(t, "INSERT INTO zz_marker VALUES (1)")

	// The stream, up to the marker.
	inserts, olds, news := map[string][]cdc.Row{}, map[string][]cdc.Row{}, map[string][]cdc.Row{}
	rels := map[string]*cdc.Relation{}
	updates, deletes := map[string]int64{}, map[string]int64{}
	for done := false; !done; {
		for _, c := range stream.dataTxn(t).changes {
			n := c.Rel.Name
			if n == "zz_marker" {
				done = true
				continue
			}
			rels[n] = c.Rel
			switch c.Op {
			case cdc.Insert:
				inserts[n] = append(inserts[n], c.New)
			case cdc.Update:
				olds[n] = append(olds[n], c.Old)
				news[n] = append(news[n], c.New)
				updates[n]++
			case cdc.Delete:
				olds[n] = append(olds[n], c.Old)
				deletes[n]++
			}
		}
	}

	in, err := openRowsIn(ctx, tgt, cp)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close(ctx)
	catalogTypes := columnTypesOf(t, src, srcDB.Name)
	for i, name := range tables {
		typ := types[i]
		rel := rels[name]
		if rel == nil {
			t.Errorf("type %s: no change in the stream", typ)
			continue
		}
		if want := catalogTypes[name]; rel.Columns[1].Type.Name != want || !rel.Columns[0].Key || rel.Columns[1].Key {
			t.Errorf("type %s: the relation says %q (key %v, %v), the catalog %q", typ, rel.Columns[1].Type.Name, rel.Columns[0].Key, rel.Columns[1].Key, want)
		}
		if updates[name] != updated[name] || deletes[name] != deleted[name] {
			t.Errorf("type %s: %d updates and %d deletes in the stream, the source made %d and %d", typ, updates[name], deletes[name], updated[name], deleted[name])
		}
		// The texts are the copy's own, but for floats, whose text the server and Go
		// write each their way (1e308, 1e+308): the same number.
		float := strings.HasPrefix(rel.Columns[1].Type.Name, "float") || strings.HasPrefix(rel.Columns[1].Type.Name, "double")
		for j, r := range inserts[name] {
			got := texts(r)
			if j >= len(selected[name]) {
				t.Errorf("type %s: %d rows inserted in the stream, %d on the source", typ, len(inserts[name]), len(selected[name]))
				break
			}
			want := selected[name][j]
			if float && got[1] != want[1] && got[1] != `\N` && want[1] != `\N` {
				g, _ := strconv.ParseFloat(got[1], 64)
				w, _ := strconv.ParseFloat(want[1], 64)
				if math.Float64bits(g) == math.Float64bits(w) {
					want[1] = got[1]
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("type %s: the stream's texts %q, the copy's SELECT %q", typ, got, want)
			}
		}
		for _, c := range []struct {
			what string
			rows []cdc.Row
			want []string
		}{
			{"inserted", inserts[name], before[name]},
			{"before update or delete", olds[name], byID(before[name], olds[name])},
			{"after update", news[name], byID(after[name], news[name])},
		} {
			got := loadRows(t, in, cp, tgt, name, c.rows)
			if !slices.Equal(got, c.want) {
				for j := range max(len(got), len(c.want)) {
					if j >= len(got) || j >= len(c.want) || got[j] != c.want[j] {
						t.Errorf("type %s, rows %s: differ from row %d: source %q, loaded from the stream %q (texts %q)", typ, c.what, j,
							c.want[j:min(j+1, len(c.want))], got[j:min(j+1, len(got))], rowTexts(c.rows, j))
						break
					}
				}
			}
		}
	}
	rows := 0
	for _, r := range inserts {
		rows += len(r)
	}
	t.Logf("%d column types, %d rows inserted (then updated and deleted) through the binary log", len(types), rows)
}

// selectTexts reads a table as the full load does (copySpec.selectSQL, in the
// columns' own character sets), NULL as \N.
func selectTexts(t *testing.T, db *sql.DB, cp *copyPlan, name string) [][]string {
	t.Helper()
	ctx := context.Background()
	conn := bytesConn(t, db)
	defer discard(conn)
	for _, tb := range cp.tables {
		if tb.Name != name {
			continue
		}
		rows, err := conn.QueryContext(ctx, cp.specs[tb].selectSQL(0, 1))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out [][]string
		for rows.Next() {
			vals := make([]sql.RawBytes, len(cp.specs[tb].cols))
			ptrs := make([]any, len(vals))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			line := make([]string, len(vals))
			for i, v := range vals {
				line[i] = string(v)
				if v == nil {
					line[i] = `\N`
				}
			}
			out = append(out, line)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	t.Fatalf("no table %s in the copy's plan", name)
	return nil
}

func rowTexts(rows []cdc.Row, j int) []string {
	if j < len(rows) {
		return texts(rows[j])
	}
	return nil
}

// byID are an image's rows whose id (the first column) one of the rows has.
func byID(image []string, rows []cdc.Row) []string {
	ids := map[string]bool{}
	for _, r := range rows {
		ids["int64:"+string(r[0].Text)] = true
	}
	var out []string
	for _, line := range image {
		if id, _, _ := strings.Cut(line, " "); ids[id] {
			out = append(out, line)
		}
	}
	return out
}

// loadRows empties the target's table, loads the rows as the full load's lines
// (appendField, tab-separated, a line each) and returns the table's image.
func loadRows(t *testing.T, in *rowsIn, cp *copyPlan, tgt *sql.DB, name string, rows []cdc.Row) []string {
	t.Helper()
	ctx := context.Background()
	for _, tb := range cp.tables {
		if tb.Name != name {
			continue
		}
		spec := cp.specs[tb]
		if _, err := tgt.ExecContext(ctx, "DELETE FROM "+quote(name)); err != nil {
			t.Fatal(err)
		}
		var buf []byte
		for n, r := range rows {
			if len(r) != len(spec.cols) {
				t.Fatalf("table %s: a row of %d values, the copy has %d columns", name, len(r), len(spec.cols))
			}
			for i, v := range r {
				if i > 0 {
					buf = append(buf, '\t')
				}
				var raw sql.RawBytes
				if !v.Null {
					raw = sql.RawBytes(v.Text)
					if spec.cols[i].enum && string(v.Text) == "0" {
						spec.add(0, int64(n+1), spec.cols[i].raw)
					}
				}
				buf = appendField(buf, raw)
			}
			buf = append(buf, '\n')
		}
		if _, err := in.CopyIn(ctx, tb, 0, bytes.NewReader(buf)); err != nil {
			t.Fatalf("table %s: load the stream's rows: %v", name, err)
		}
		return image(t, tgt, quote(name))
	}
	t.Fatalf("no table %s in the copy's plan", name)
	return nil
}

var displayWidth = regexp.MustCompile(`^(tinyint|smallint|mediumint|int|bigint|year)\(\d+\)|^(float|double)\(\d+,\d+\)`)

// columnTypesOf is each table's v column type as the catalog writes it, but for
// what the binary log does not keep: integers' display widths, FLOAT and DOUBLE's
// digits.
func columnTypesOf(t *testing.T, db *sql.DB, schema string) map[string]string {
	t.Helper()
	rows, err := db.Query("SELECT TABLE_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND COLUMN_NAME = 'v'", schema)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var table, typ string
		if err := rows.Scan(&table, &typ); err != nil {
			t.Fatal(err)
		}
		out[table] = displayWidth.ReplaceAllString(strings.ToLower(typ), "$1$2")
	}
	return out
}

// A position is read in each of its forms (a snapshot's too), and a stream's position
// in each engine's.
func TestBinlogPositionText(t *testing.T) {
	for _, c := range []struct {
		in      string
		mariadb bool
		want    Position
		text    string // binlogPositionText
		err     string
	}{
		{in: "0-1-42", mariadb: true, want: Position{MariaDB: true, GTID: "0-1-42"}, text: "0-1-42"},
		{in: "0-1-42,1-2-7", mariadb: true, want: Position{MariaDB: true, GTID: "0-1-42,1-2-7"}, text: "0-1-42,1-2-7"},
		{in: "0-1-42 (binlog.000003:1234)", mariadb: true, want: Position{MariaDB: true, GTID: "0-1-42", File: "binlog.000003", Offset: 1234}, text: "0-1-42"},
		{in: "binlog.000003:1234", mariadb: true, want: Position{MariaDB: true, File: "binlog.000003", Offset: 1234}, text: "binlog.000003:1234"},
		{in: "mysql-bin.000001:4", want: Position{File: "mysql-bin.000001", Offset: 4}, text: "mysql-bin.000001:4"},
		{in: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42", want: Position{GTID: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42"}, text: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42"},
		{in: "3e11fa47-71ca-11e1-9e33-c80aa9429562:7", want: Position{GTID: "3e11fa47-71ca-11e1-9e33-c80aa9429562:7"}, text: "3e11fa47-71ca-11e1-9e33-c80aa9429562:7"},
		{in: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42,4a11fa47-71ca-11e1-9e33-c80aa9429562:1-7 (binlog.000002:99)",
			want: Position{GTID: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42,4a11fa47-71ca-11e1-9e33-c80aa9429562:1-7", File: "binlog.000002", Offset: 99},
			text: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42,4a11fa47-71ca-11e1-9e33-c80aa9429562:1-7"},
		{in: "3e11fa47-71ca-11e1-9e33-c80aa9429562:tag_1:1-5", want: Position{GTID: "3e11fa47-71ca-11e1-9e33-c80aa9429562:tag_1:1-5"}, text: "3e11fa47-71ca-11e1-9e33-c80aa9429562:tag_1:1-5"},
		{in: "", mariadb: true, err: "no binary log position"},
		{in: Position{}.String(), err: "no binary log position"},
		{in: "0-1", mariadb: true, err: "not a MariaDB GTID state"},
		{in: "0-1-42,0-2-43", mariadb: true, err: "names domain 0 twice"},
		{in: "0-1-42", err: "is a MariaDB GTID state, and the source is MySQL"},
		{in: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42", mariadb: true, err: "not a MariaDB GTID state"},
	} {
		p, err := parseBinlogPosition(c.in, c.mariadb)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want an error with %q", c.in, err, c.err)
			}
		case err != nil:
			t.Errorf("%q: %v", c.in, err)
		case p != c.want || binlogPositionText(p) != c.text:
			t.Errorf("%q: %+v written %q, want %+v written %q", c.in, p, binlogPositionText(p), c.want, c.text)
		}
	}
	// A snapshot's position reads back as itself.
	for _, p := range []Position{{MariaDB: true, File: "binlog.000001", Offset: 328, GTID: "0-5-1,3-5-9"}, {MariaDB: true, File: "b.000009", Offset: 4}} {
		if got, err := parseBinlogPosition(p.String(), true); err != nil || got != p {
			t.Errorf("%s: read %+v, %v", p, got, err)
		}
	}
	state, err := parseMariaDBState("2-1-5, 0-3-18446744073709551615,1-4294967295-1")
	if err != nil || formatMariaDBState(state) != "0-3-18446744073709551615,1-4294967295-1,2-1-5" {
		t.Errorf("the state written in its domains' order: %q, %v", formatMariaDBState(state), err)
	}
}

// What a statement the log holds as text is, and which tables it names.
func TestBinlogStatements(t *testing.T) {
	type obj = cdc.SchemaObject
	for _, c := range []struct {
		q       string
		ansi    bool
		tag     string
		dml     bool
		objects []obj
	}{
		{q: "ALTER TABLE t ADD COLUMN x int", tag: "ALTER TABLE", objects: []obj{{Kind: "table", Schema: "cur", Name: "t", Table: "t"}}},
		{q: "alter online ignore table `d`.`we``ird` add index (a)", tag: "ALTER TABLE", objects: []obj{{Kind: "table", Schema: "d", Name: "we`ird", Table: "we`ird"}}},
		{q: "/* a comment */ ALTER TABLE t RENAME COLUMN a TO b, RENAME TO d2.u", tag: "ALTER TABLE",
			objects: []obj{{Kind: "table", Schema: "cur", Name: "t", Table: "t", Dropped: true}, {Kind: "table", Schema: "d2", Name: "u", Table: "u"}}},
		{q: "DROP TABLE IF EXISTS `t1`,`x`.`t2` /* generated by server */", tag: "DROP TABLE",
			objects: []obj{{Kind: "table", Schema: "cur", Name: "t1", Table: "t1", Dropped: true}, {Kind: "table", Schema: "x", Name: "t2", Table: "t2", Dropped: true}}},
		{q: "RENAME TABLE a TO b, c TO d.e", tag: "RENAME TABLE", objects: []obj{
			{Kind: "table", Schema: "cur", Name: "a", Table: "a", Dropped: true}, {Kind: "table", Schema: "cur", Name: "b", Table: "b"},
			{Kind: "table", Schema: "cur", Name: "c", Table: "c", Dropped: true}, {Kind: "table", Schema: "d", Name: "e", Table: "e"}}},
		{q: "CREATE OR REPLACE TABLE IF NOT EXISTS n (id int) -- why", tag: "CREATE TABLE", objects: []obj{{Kind: "table", Schema: "cur", Name: "n", Table: "n"}}},
		{q: "CREATE TABLE n LIKE t", tag: "CREATE TABLE", objects: []obj{{Kind: "table", Schema: "cur", Name: "n", Table: "n"}}},
		{q: "CREATE UNIQUE INDEX i USING BTREE ON t (a)", tag: "CREATE INDEX", objects: []obj{{Kind: "index", Schema: "cur", Name: "i", Table: "t"}}},
		{q: "DROP INDEX IF EXISTS i ON s.t", tag: "DROP INDEX", objects: []obj{{Kind: "index", Schema: "s", Name: "i", Table: "t", Dropped: true}}},
		{q: "TRUNCATE t", tag: "TRUNCATE TABLE", objects: []obj{{Kind: "table", Schema: "cur", Name: "t", Table: "t"}}},
		{q: "truncate table `s`.t", tag: "TRUNCATE TABLE", objects: []obj{{Kind: "table", Schema: "s", Name: "t", Table: "t"}}},
		{q: "DROP DATABASE `cur`", tag: "DROP DATABASE", objects: []obj{{Kind: "database", Schema: "cur", Dropped: true}}},
		{q: `ALTER TABLE "t" ADD x int`, ansi: true, tag: "ALTER TABLE", objects: []obj{{Kind: "table", Schema: "cur", Name: "t", Table: "t"}}},
		{q: "/*!40000 ALTER TABLE `t` DISABLE KEYS */", tag: "ALTER TABLE", objects: []obj{{Kind: "table", Schema: "cur", Name: "t", Table: "t"}}},
		{q: "CREATE DEFINER=`root`@`%` TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET @a = 1", tag: "CREATE TRIGGER"},
		{q: "GRANT SELECT ON t TO u", tag: "GRANT"},
		{q: "INSERT INTO t VALUES (1, 'table x')", tag: "INSERT", dml: true},
	} {
		s := parseStatement(c.q, c.ansi)
		if s.tag != c.tag || s.dml != c.dml || !slices.Equal(s.objects("cur"), c.objects) {
			t.Errorf("%s: %q (dml %v) %+v, want %q %+v", c.q, s.tag, s.dml, s.objects("cur"), c.tag, c.objects)
		}
	}
	if s := parseStatement("UPDATE d.t, u SET t.a = 1 WHERE u.b = 'x'", false); !slices.Contains(s.names, [2]string{"d", "t"}) || !slices.Contains(s.names, [2]string{"", "u"}) {
		t.Errorf("the tables an UPDATE names: %q", s.names)
	}
	// sql_mode is the status variables' second: ANSI_QUOTES is its bit 2
	if !ansiQuotes([]byte{0, 0, 0, 0, 0, 1, 4, 0, 0, 0, 0, 0, 0, 0}) || ansiQuotes([]byte{0, 0, 0, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0}) || ansiQuotes(nil) {
		t.Error("ansiQuotes misreads sql_mode")
	}
}

// Each transaction's Commit position is the server's own GTID state after it (and
// that of the binary log's file and offset after it); a stream opened at a committed
// position sends exactly the transactions after it, and one opened at a snapshot's
// position (or its file and offset alone) those after the snapshot.
func TestBinlogPositions(t *testing.T) {
	db := mytest.NewDB(t, mytest.Source(t))
	src := db.Open(t)
	ctx := context.Background()
	db.Exec(t, "CREATE TABLE a (id int PRIMARY KEY, v varchar(10))")
	snap, err := TakeSnapshot(ctx, src, true, SnapshotOptions{Workers: 1}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	snap.Close()
	const n = 5
	var positions []string
	for i := 1; i <= n; i++ {
		db.Exec(t, fmt.Sprintf("INSERT INTO a VALUES (%d, 'x')", i))
		positions = append(positions, gtidPos(t, db))
	}
	source := binlogOf(t, db, []string{"a"}, time.Hour)
	// ids reads transactions of one insert each until it has n of them.
	ids := func(s *testStream, n int) (ids []string, commits []string) {
		for range n {
			x := s.dataTxn(t)
			if len(x.changes) != 1 || x.changes[0].Op != cdc.Insert {
				t.Fatalf("a transaction of %d changes, want one insert", len(x.changes))
			}
			ids = append(ids, string(x.changes[0].New[0].Text))
			commits = append(commits, x.commit.Position)
			if x.begin.Position != x.commit.Position || x.commit.CommitTime.IsZero() {
				t.Errorf("begin %+v, commit %+v", x.begin, x.commit)
			}
		}
		return ids, commits
	}
	s := streamFrom(t, source, snap.Pos.String())
	got, commits := ids(s, n)
	if !slices.Equal(got, []string{"1", "2", "3", "4", "5"}) || !slices.Equal(commits, positions) {
		t.Fatalf("from the snapshot %s: rows %q at %q, want 1 to 5 at the server's %q", snap.Pos, got, commits, positions)
	}
	conn, err := src.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now, err := logPosition(ctx, conn, true)
	conn.Close()
	if err != nil || now.GTID != commits[n-1] {
		t.Errorf("BINLOG_GTID_POS at the log's end %s is not the last commit's %s (%v)", now, commits[n-1], err)
	}

	// From a committed position: the transactions after it, then the next one
	// written (nothing left out, nothing twice).
	s2 := streamFrom(t, source, commits[1])
	db.Exec(t, "INSERT INTO a VALUES (6, 'x')")
	if got, _ := ids(s2, 4); !slices.Equal(got, []string{"3", "4", "5", "6"}) {
		t.Errorf("from %s (after row 2): rows %q, want 3 to 6", commits[1], got)
	}
	// From the snapshot's file and offset alone (MariaDB reads their GTID state).
	s3 := streamFrom(t, source, fmt.Sprintf("%s:%d", snap.Pos.File, snap.Pos.Offset))
	if got, _ := ids(s3, 6); !slices.Equal(got, []string{"1", "2", "3", "4", "5", "6"}) {
		t.Errorf("from %s:%d: rows %q, want 1 to 6", snap.Pos.File, snap.Pos.Offset, got)
	}
	// From the last position: the next transaction only.
	s4 := streamFrom(t, source, gtidPos(t, db))
	db.Exec(t, "INSERT INTO a VALUES (7, 'x')")
	if got, _ := ids(s4, 1); !slices.Equal(got, []string{"7"}) {
		t.Errorf("from the end: rows %q, want 7", got)
	}
}

// A transaction on migrated and other tables sends the migrated tables' changes
// alone, an update with its whole row before and after; a schema change on a
// migrated table is sent at its place (and the rows after it come with the new
// definition), one on another table is not; TRUNCATE is a truncate.
func TestBinlogMigratedTables(t *testing.T) {
	db := mytest.NewDB(t, mytest.Source(t))
	db.Exec(t, "CREATE TABLE a (id int PRIMARY KEY, v varchar(10), n int); CREATE TABLE b (id int PRIMARY KEY); CREATE TABLE nokey (x int, y int)")
	s := streamFrom(t, binlogOf(t, db, []string{"a", "nokey"}, time.Hour), gtidPos(t, db))
	db.Exec(t, `START TRANSACTION; INSERT INTO a VALUES (1, 'x', 1); INSERT INTO b VALUES (1); UPDATE a SET v = 'y' WHERE id = 1;
		DELETE FROM b; INSERT INTO nokey VALUES (1, NULL); COMMIT`)
	x := s.dataTxn(t)
	var got []string
	for _, c := range x.changes {
		got = append(got, fmt.Sprintf("%s %s old %q new %q", c.Op, c.Rel.Name, texts(c.Old), texts(c.New)))
	}
	want := []string{`insert a old [] new ["1" "x" "1"]`, `update a old ["1" "x" "1"] new ["1" "y" "1"]`, `insert nokey old [] new ["1" "\\N"]`}
	if !slices.Equal(got, want) || x.commit.Position != gtidPos(t, db) {
		t.Errorf("changes %q at %s, want %q at %s", got, x.commit.Position, want, gtidPos(t, db))
	}
	rel := x.changes[0].Rel
	if rel.Schema != db.Name || len(rel.Columns) != 3 || !rel.Columns[0].Key || rel.Columns[1].Key ||
		!reflect.DeepEqual(rel.Columns[1].Type, cdc.Type{Kind: cdc.KindText, Name: "varchar(10)", Width: 10}) {
		t.Errorf("relation %+v", rel)
	}
	if k := x.changes[2].Rel.Columns; !k[0].Key || !k[1].Key {
		t.Errorf("a table without a key is keyed by its whole row: %+v", k)
	}

	// Generated columns are the target's to compute, invisible ones are copied; a
	// unique key of NOT NULL columns is the key the log names.
	db.Exec(t, `CREATE TABLE g (id int PRIMARY KEY, v varchar(10), gv int AS (length(v)) VIRTUAL, gs int AS (length(v) * 2) STORED, h int INVISIBLE DEFAULT 7);
		CREATE TABLE uq (a int NOT NULL, b varchar(5) NOT NULL, c int, UNIQUE KEY (a, b))`)
	s2 := streamFrom(t, binlogOf(t, db, []string{"g", "uq"}, time.Hour), gtidPos(t, db))
	db.Exec(t, "INSERT INTO g (id, v) VALUES (1, 'abc'); INSERT INTO uq VALUES (1, 'x', 2)")
	gi, ui := s2.dataTxn(t).changes[0], s2.dataTxn(t).changes[0]
	var cols []string
	for _, c := range append(gi.Rel.Columns, ui.Rel.Columns...) {
		cols = append(cols, fmt.Sprintf("%s:%v", c.Name, c.Key))
	}
	if !slices.Equal(cols, []string{"id:true", "v:false", "h:false", "a:true", "b:true", "c:false"}) ||
		!slices.Equal(texts(gi.New), []string{"1", "abc", "7"}) || !slices.Equal(texts(ui.New), []string{"1", "x", "2"}) {
		t.Errorf("columns %q, rows %q and %q", cols, texts(gi.New), texts(ui.New))
	}

	db.Exec(t, "ALTER TABLE b ADD COLUMN w int; ALTER TABLE a ADD COLUMN w int; INSERT INTO a VALUES (2, 'z', 2, 3); TRUNCATE a; RENAME TABLE a TO a2")
	sc := s.dataTxn(t)
	c, ok := sc.events[0].(*cdc.SchemaChange)
	if !ok || len(sc.events) != 1 || c.Tag != "ALTER TABLE" || c.Context != db.Name || c.Statement != "ALTER TABLE a ADD COLUMN w int" ||
		!slices.Equal(c.Objects, []cdc.SchemaObject{{Kind: "table", Schema: db.Name, Name: "a", Table: "a"}}) {
		t.Errorf("the ALTER of a: %+v", sc.events)
	}
	ins := s.dataTxn(t).changes[0]
	if ins.Rel == rel || ins.Rel.ID != rel.ID || len(ins.Rel.Columns) != 4 || !slices.Equal(texts(ins.New), []string{"2", "z", "2", "3"}) {
		t.Errorf("the insert after the ALTER: %+v with %+v (the relation before: %p %+v)", ins, ins.Rel, rel, rel)
	}
	tr := s.dataTxn(t).changes
	if len(tr) != 1 || tr[0].Op != cdc.Truncate || tr[0].Rel != ins.Rel || !slices.Equal(tr[0].Truncated, []*cdc.Relation{ins.Rel}) {
		t.Errorf("TRUNCATE: %+v", tr)
	}
	rn := s.dataTxn(t).events[0].(*cdc.SchemaChange)
	if rn.Tag != "RENAME TABLE" || len(rn.Objects) != 2 || !rn.Objects[0].Dropped || rn.Objects[1].Name != "a2" {
		t.Errorf("RENAME: %+v", rn)
	}
}

// A transaction of 100,000 rows (100 MB) streams through: the stream holds a few of
// its events at a time, not the transaction, and sends each row once, in order.
func TestBinlogLargeTransaction(t *testing.T) {
	db := mytest.NewDB(t, mytest.Source(t))
	db.Exec(t, "CREATE TABLE big (id int PRIMARY KEY, pad varchar(1000))")
	from := gtidPos(t, db)
	db.Exec(t, "INSERT INTO big SELECT seq, REPEAT(CHAR(65 + seq % 26), 1000) FROM seq_1_to_100000")
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	base := m.HeapAlloc
	s := streamFrom(t, binlogOf(t, db, []string{"big"}, time.Hour), from)
	if _, ok := s.next(t).(*cdc.Begin); !ok {
		t.Fatal("no Begin")
	}
	var peak uint64
	for i := 1; i <= 100000; i++ {
		c, ok := s.next(t).(*cdc.Change)
		if !ok || c.Op != cdc.Insert || string(c.New[0].Text) != fmt.Sprint(i) || len(c.New[1].Text) != 1000 || c.New[1].Text[0] != byte(65+i%26) {
			t.Fatalf("change %d: %+v", i, c)
		}
		if i == 1 || i%25000 == 0 {
			// what the stream and the library hold while the reader waits
			runtime.GC()
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
		}
	}
	if c, ok := s.next(t).(*cdc.Commit); !ok || c.Position != gtidPos(t, db) {
		t.Fatalf("after the rows: %+v", c)
	}
	if grew := int64(peak) - int64(base); grew > 30<<20 {
		t.Errorf("the heap grew by %d MB while a transaction of 100 MB streamed", grew>>20)
	}
	t.Logf("heap %d MB before, at most %d MB while streaming", base>>20, peak>>20)
}

// When the migrated tables are idle and others are not, the stream sends the
// position of what it skipped as empty transactions, no more often than the
// heartbeat: the target commits it, and the source may purge the log behind it.
func TestBinlogHeartbeat(t *testing.T) {
	db := mytest.NewDB(t, mytest.Source(t))
	db.Exec(t, "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY)")
	// tls=preferred: TLS when the server has it, and this one does not
	src, err := newBinlogSource(plan.Endpoint{URL: db.URL() + "?tls=preferred"}, true, replicaIDs.Add(1), []string{"a"}, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	s := streamFrom(t, src, gtidPos(t, db))
	start := time.Now()
	for i := 1; i <= 20; i++ {
		db.Exec(t, fmt.Sprintf("INSERT INTO b VALUES (%d)", i))
	}
	want := gtidPos(t, db)
	var sent []time.Time
	for {
		x := s.txn(t)
		if len(x.events) > 0 {
			t.Fatalf("changes of a table not migrated: %+v", x.events)
		}
		sent = append(sent, time.Now())
		if x.commit.Position == want {
			break
		}
	}
	t.Logf("%d positions sent for 20 transactions in %v", len(sent), time.Since(start))
	// 20 transactions, sent in at most a position per heartbeat (and one at the end)
	if limit := int(time.Since(start)/(200*time.Millisecond)) + 2; len(sent) > limit {
		t.Errorf("%d positions sent in %v, at most one per heartbeat", len(sent), time.Since(start))
	}
}

// A stream that asks for TLS of a server without it, or starts from a position that
// is not one, or as server_id 0, is refused at once, saying why.
func TestBinlogOpenRefusals(t *testing.T) {
	db := mytest.NewDB(t, mytest.Source(t))
	if _, err := newBinlogSource(plan.Endpoint{URL: db.URL()}, true, 0, nil, 0); err == nil || !strings.Contains(err.Error(), "server_id") {
		t.Errorf("server_id 0: %v", err)
	}
	src, err := newBinlogSource(plan.Endpoint{URL: db.URL() + "?tls=true"}, true, replicaIDs.Add(1), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Open(context.Background(), gtidPos(t, db)); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Errorf("tls=true to a server without TLS: %v", err)
	}
	for from, want := range map[string]string{"": "no binary log position", "binlog.999999:4": "no binary log position binlog.999999:4"} {
		if _, err := binlogOf(t, db, nil, 0).Open(context.Background(), from); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("from %q: %v, want %q", from, err, want)
		}
	}
}

// A table the log does not name the columns of (binlog_row_metadata MINIMAL), a row
// logged without its whole image (binlog_row_image MINIMAL in a session) and a row
// change logged as a statement (binlog_format STATEMENT in a session) stop the
// stream, naming the table and the setting; such a stop is no fault to retry.
func TestBinlogRefusals(t *testing.T) {
	minimal := mytest.StartServer(t, mytest.Options{Name: "minimal", Settings: map[string]string{"binlog-row-metadata": "MINIMAL"}})
	mdb := mytest.NewDB(t, minimal)
	mdb.Exec(t, "CREATE TABLE m (id int PRIMARY KEY)")
	s := streamFrom(t, binlogOf(t, mdb, nil, time.Hour), gtidPos(t, mdb))
	mdb.Exec(t, "INSERT INTO m VALUES (1)")
	err := s.failure(t)
	if err == nil || !strings.Contains(err.Error(), "`"+mdb.Name+"`.`m`") || !strings.Contains(err.Error(), "SET GLOBAL binlog_row_metadata = 'FULL'") || binlogFault(err) {
		t.Errorf("metadata MINIMAL: %v", err)
	}

	db := mytest.NewDB(t, mytest.Source(t))
	db.Exec(t, "CREATE TABLE r (id int PRIMARY KEY, v int, w int); INSERT INTO r VALUES (1, 1, 1)")
	for setting, fix := range map[string]string{
		"SET SESSION binlog_row_image = MINIMAL; UPDATE r SET v = 2": "SET GLOBAL binlog_row_image = 'FULL'",
		"SET SESSION binlog_format = STATEMENT; UPDATE r SET v = 3":  "SET GLOBAL binlog_format = 'ROW'",
	} {
		s := streamFrom(t, binlogOf(t, db, nil, time.Hour), gtidPos(t, db))
		db.Exec(t, setting)
		err := s.failure(t)
		if err == nil || !strings.Contains(err.Error(), "`"+db.Name+"`.`r`") || !strings.Contains(err.Error(), fix) || binlogFault(err) {
			t.Errorf("%s: %v, want the table and %q", setting, err, fix)
		}
	}
}

// On a source that compresses its binary log (MariaDB's log_bin_compress), every row
// arrives, its values whole.
func TestBinlogCompressed(t *testing.T) {
	server := mytest.StartServer(t, mytest.Options{Name: "compressed", Settings: map[string]string{"log-bin-compress": "ON"}})
	db := mytest.NewDB(t, server)
	db.Exec(t, "CREATE TABLE c (id int PRIMARY KEY, v text)")
	from := gtidPos(t, db)
	db.Exec(t, `INSERT INTO c SELECT seq, REPEAT(CHAR(65 + seq % 26), 300 + seq) FROM seq_1_to_500;
		UPDATE c SET v = CONCAT(v, 'z') WHERE id % 2 = 0; DELETE FROM c WHERE id % 5 = 0; ALTER TABLE c COMMENT = 'a comment long enough to be compressed, as the log compresses statements of at least log_bin_compress_min_len bytes: 256 by default'`)
	var events []string
	pool := db.Open(t)
	// the log holds compressed events
	file := func() string {
		var f string
		r, err := pool.Query("SHOW BINLOG STATUS")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		cols, _ := r.Columns()
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for r.Next() {
			if err := r.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			f = string(vals[0])
		}
		return f
	}()
	rows, err := pool.Query("SHOW BINLOG EVENTS IN '" + file + "'")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var logName, typ, info string
		var pos, serverID, end int64
		if err := rows.Scan(&logName, &pos, &typ, &serverID, &end, &info); err != nil {
			t.Fatal(err)
		}
		events = append(events, typ)
	}
	rows.Close()
	compressed := 0
	for _, e := range events {
		if strings.Contains(strings.ToLower(e), "compressed") {
			compressed++
		}
	}
	if compressed == 0 {
		t.Fatalf("no compressed event in the log: %q", events)
	}
	s := streamFrom(t, binlogOf(t, db, nil, time.Hour), from)
	counts := map[cdc.Op]int{}
	for _, want := range []int{500, 250, 100} {
		x := s.dataTxn(t)
		for _, c := range x.changes {
			counts[c.Op]++
			r := c.New
			if c.Op == cdc.Delete {
				r = c.Old
			}
			var id int
			fmt.Sscan(string(r[0].Text), &id)
			v := strings.Repeat(string(rune(65+id%26)), 300+id)
			if c.Op == cdc.Update {
				v += "z"
			}
			if c.Op == cdc.Delete && id%2 == 0 {
				v += "z"
			}
			if string(r[1].Text) != v {
				t.Fatalf("%s of row %d: %d bytes, want %d", c.Op, id, len(r[1].Text), len(v))
			}
		}
		if len(x.changes) != want {
			t.Errorf("a transaction of %d changes, want %d", len(x.changes), want)
		}
	}
	if sc, ok := s.dataTxn(t).events[0].(*cdc.SchemaChange); !ok || !strings.HasPrefix(sc.Statement, "ALTER TABLE c COMMENT") {
		t.Errorf("the compressed ALTER: %+v", sc)
	}
	t.Logf("%d compressed events of %d; changes %v", compressed, len(events), counts)
}

// A source that restarts under the stream ends it with an error (a fault to retry),
// not a wait; the stream opened again at the committed position sends exactly the
// transactions after it, across the new binary log file.
func TestBinlogRestart(t *testing.T) {
	server := mytest.StartServer(t, mytest.Options{Name: "restart"})
	db := mytest.NewDB(t, server)
	db.Exec(t, "CREATE TABLE r (id int PRIMARY KEY)")
	source := binlogOf(t, db, nil, time.Hour)
	s := streamFrom(t, source, gtidPos(t, db))
	var committed string
	for i := 1; i <= 3; i++ {
		db.Exec(t, fmt.Sprintf("INSERT INTO r VALUES (%d)", i))
		committed = s.dataTxn(t).commit.Position
	}
	if err := server.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := s.failure(t)
	if err == nil || !binlogFault(err) {
		t.Fatalf("the stream across a restart: %v, want a fault to retry", err)
	}
	t.Logf("the stream's error: %v", err)
	for i := 4; i <= 6; i++ {
		db.Exec(t, fmt.Sprintf("INSERT INTO r VALUES (%d)", i))
	}
	s2 := streamFrom(t, source, committed)
	var got []string
	for range 3 {
		x := s2.dataTxn(t)
		for _, c := range x.changes {
			got = append(got, string(c.New[0].Text))
		}
		committed = x.commit.Position
	}
	if !slices.Equal(got, []string{"4", "5", "6"}) || committed != gtidPos(t, db) {
		t.Errorf("after the restart: rows %q to %s, want 4 to 6 to %s", got, committed, gtidPos(t, db))
	}
}
