package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/mytest"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/validate"
)

// copyState records on the target a one-shot copy of these tables, loaded with the
// rows the target has: what a validation needs to find.
func copyState(t *testing.T, tgt *sql.DB, name, schema string, tables []string) {
	t.Helper()
	ctx := context.Background()
	ctl, err := openControl(ctx, tgt, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctl.drop(context.Background()) })
	stats := make([]control.TableStat, len(tables))
	for i, n := range tables {
		stats[i] = control.TableStat{Schema: schema, Table: n}
	}
	if err := ctl.SetMode(ctx, control.ModeCopy); err != nil {
		t.Fatal(err)
	}
	if err := ctl.SetState(ctx, control.State{Phase: control.PhaseLoaded}); err != nil {
		t.Fatal(err)
	}
	if err := ctl.QueueTables(ctx, stats); err != nil {
		t.Fatal(err)
	}
	for _, n := range tables {
		var rows int64
		if err := tgt.QueryRow("SELECT count(*) FROM " + quote(n)).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if err := ctl.tableLoaded(ctx, schema, n, rows, 0, ""); err != nil {
			t.Fatal(err)
		}
	}
}

// validateCopy validates the copy copyState recorded.
func validateCopy(t *testing.T, src, tgt *mytest.DB, control string, chunkRows int) *validate.Report {
	t.Helper()
	p := &plan.Plan{Source: plan.Endpoint{URL: src.URL()}, Target: plan.Endpoint{URL: tgt.URL()}, ControlSchema: control}
	rep, err := Validate(context.Background(), p, validate.Options{ChunkRows: chunkRows})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// imagesByID reads a table's rows by the binary protocol (image), by id.
func imagesByID(t *testing.T, db *sql.DB, table string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, row := range image(t, db, quote(table)) {
		id, v, _ := strings.Cut(row, " ")
		_, id, _ = strings.Cut(id, ":") // int64:7
		out[id] = v
	}
	return out
}

// differing lists a report's differences of one table as "KIND key".
func differing(tv validate.TableReport) []string {
	var out []string
	for _, d := range tv.Differences {
		out = append(out, string(d.Kind)+" "+strings.Join(d.Key, ","))
	}
	sort.Strings(out)
	return out
}

// Every column type of the server compares equal after a copy, and a value replaced
// on the target by one equal to it by = but not the same ('a' and 'A' or 'a ' in a
// case- or pad-insensitive collation, -0 and 0, a JSON text with other spacing…) is
// found, as are a row missing and a row too many. The same with each type as the key,
// chunked in a few rows per range: the bounds are the key's type and collation on
// both sides.
func TestValidateEveryColumnType(t *testing.T) {
	srcDB, tgtDB := mytest.NewDB(t, mytest.Source(t)), mytest.NewDB(t, mytest.Target(t))
	src, tgt := srcDB.Open(t), tgtDB.Open(t)
	ctx := context.Background()
	types := columnTypes(t, src)
	tables := typeTables(t, src, types)
	var keyTables []string
	keyType := map[string]string{}
	for i, typ := range types {
		conn, err := src.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		id := 0
		for _, mode := range []string{"STRICT_ALL_TABLES", ""} {
			if _, err := conn.ExecContext(ctx, "SET SESSION sql_mode = ?", mode); err != nil {
				t.Fatal(err)
			}
			values := samples
			if mode == "" {
				values = laxSamples
			}
			for _, v := range values {
				id++
				_, _ = conn.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s VALUES (%d, %s)", quote(tables[i]), id, v))
			}
		}
		conn.Close()
		src.Exec(fmt.Sprintf("INSERT INTO %s VALUES (%d, NULL)", quote(tables[i]), id+1))
		// The type as the key, where it may be one: the distinct values by =.
		k := "k" + tables[i][1:]
		if _, err := src.Exec(fmt.Sprintf("CREATE TABLE %s (v %s NOT NULL PRIMARY KEY, n int)", quote(k), strings.TrimSuffix(typ, " NULL"))); err != nil {
			continue // BLOB, TEXT, JSON and spatial types take no whole key
		}
		if _, err := src.Exec(fmt.Sprintf("INSERT IGNORE INTO %s SELECT v, min(id) FROM %s WHERE v IS NOT NULL GROUP BY v", quote(k), quote(tables[i]))); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		keyTables = append(keyTables, k)
		keyType[k] = typ
	}
	all := append(slices.Clone(tables), keyTables...)
	createLike(t, src, tgt, all)
	copyTables(t, src, tgt, srcDB.Name, tgtDB.Name, all, nil)
	ctlName := "cutover_v" + tgtDB.Name
	copyState(t, tgt, ctlName, srcDB.Name, all)

	rep := validateCopy(t, srcDB, tgtDB, ctlName, 3)
	for _, tv := range rep.Tables {
		if tv.State != control.ValidationValidated && !(tv.State == control.ValidationNoKey && len(tv.Key) == 0) {
			t.Errorf("table %s after the copy: %s %s %v", tv.Table, tv.State, tv.Error, differing(tv))
		}
		if keyType[tv.Table] != "" && tv.SourceRows > 6 && tv.Chunks < 2 {
			t.Errorf("table %s (%d rows, key %s): %d chunks of 3 rows", tv.Table, tv.SourceRows, keyType[tv.Table], tv.Chunks)
		}
	}
	if len(rep.Tables) != len(all) || !rep.Equal {
		t.Fatalf("%d tables validated of %d, equal %v", len(rep.Tables), len(all), rep.Equal)
	}

	// On the target: in each value table, rows given the value of another row equal
	// to theirs by = whose image differs; the last row deleted; a row added. In each
	// key table, the last row's n changed, its first row deleted.
	want := map[string][]string{}
	pairs := 0
	for _, n := range tables {
		imgs := imagesByID(t, src, n)
		rows, err := src.Query(fmt.Sprintf("SELECT x.id, y.id FROM %[1]s x JOIN %[1]s y ON x.v = y.v AND x.id <> y.id ORDER BY x.id, y.id", quote(n)))
		if err != nil {
			t.Fatal(err)
		}
		modified, donors := map[int]bool{}, map[int]bool{}
		for rows.Next() {
			var x, y int
			if err := rows.Scan(&x, &y); err != nil {
				t.Fatal(err)
			}
			if modified[x] || donors[x] || modified[y] || imgs[fmt.Sprint(x)] == imgs[fmt.Sprint(y)] {
				continue
			}
			modified[x], donors[y] = true, true
			if _, err := tgt.Exec(fmt.Sprintf("UPDATE %[1]s a JOIN %[1]s b ON b.id = ? SET a.v = b.v WHERE a.id = ?", quote(n)), y, x); err != nil {
				t.Fatal(err)
			}
			want[n] = append(want[n], fmt.Sprintf("RECORD_DIFF %d", x))
		}
		rows.Close()
		pairs += len(modified)
		if len(modified) > 0 {
			t.Logf("table %s: %d values replaced by one equal by =", n, len(modified))
		}
		var last int
		if err := src.QueryRow(fmt.Sprintf("SELECT max(id) FROM %s", quote(n))).Scan(&last); err != nil {
			t.Fatal(err)
		}
		if !modified[last] && !donors[last] {
			if _, err := tgt.Exec(fmt.Sprintf("DELETE FROM %s WHERE id = ?", quote(n)), last); err != nil {
				t.Fatal(err)
			}
			want[n] = append(want[n], fmt.Sprintf("MISSING_TARGET %d", last))
		}
		if _, err := tgt.Exec(fmt.Sprintf("INSERT INTO %s (id) VALUES (1000)", quote(n))); err != nil {
			t.Fatal(err)
		}
		want[n] = append(want[n], "MISSING_SOURCE 1000")
		sort.Strings(want[n])
	}
	for _, k := range keyTables {
		var first, last string
		read := func(order string) string {
			var keys []string
			rows, err := src.Query(fmt.Sprintf("SELECT n FROM %s ORDER BY v %s LIMIT 1", quote(k), order))
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var n string
				if err := rows.Scan(&n); err != nil {
					t.Fatal(err)
				}
				keys = append(keys, n)
			}
			rows.Close()
			return keys[0]
		}
		first, last = read("ASC"), read("DESC")
		if first == last {
			continue
		}
		// The rows by their n (the source's id of the value): the report names keys.
		if _, err := tgt.Exec(fmt.Sprintf("UPDATE %s SET n = -n WHERE n = ?", quote(k)), last); err != nil {
			t.Fatal(err)
		}
		if _, err := tgt.Exec(fmt.Sprintf("DELETE FROM %s WHERE n = ?", quote(k)), first); err != nil {
			t.Fatal(err)
		}
		want[k] = []string{"MISSING_TARGET", "RECORD_DIFF"}
	}
	rep = validateCopy(t, srcDB, tgtDB, ctlName, 3)
	for _, tv := range rep.Tables {
		got := differing(tv)
		if keyType[tv.Table] != "" {
			var kinds []string
			for _, d := range tv.Differences {
				kinds = append(kinds, string(d.Kind))
			}
			sort.Strings(kinds)
			got = kinds
			if len(tv.Key) == 0 {
				// No whole key (a spatial one): compared as a multiset, the row changed
				// is one missing on each side.
				want[tv.Table] = []string{"MISSING_SOURCE", "MISSING_TARGET", "MISSING_TARGET"}
			}
		}
		if !slices.Equal(got, want[tv.Table]) {
			t.Errorf("table %s: differences %v, want %v (%s)", tv.Table, got, want[tv.Table], tv.Error)
		}
	}
	if pairs < 10 {
		t.Errorf("%d values equal by = to another of their table's but not the same: the samples should give more", pairs)
	}
	t.Logf("%d column types, %d as keys; %d values replaced by one equal by = but not the same, each found", len(types), len(keyTables), pairs)
}

// Doubles and floats that differ in their last bit differ: the text the comparison
// reads of each is its exact value.
func TestValidateFloatBits(t *testing.T) {
	srcDB, tgtDB := mytest.NewDB(t, mytest.Source(t)), mytest.NewDB(t, mytest.Target(t))
	src, tgt := srcDB.Open(t), tgtDB.Open(t)
	for _, db := range []*sql.DB{src, tgt} {
		if _, err := db.Exec("CREATE TABLE f (id int PRIMARY KEY, d double, s float)"); err != nil {
			t.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	const n = 300
	for id := range n {
		var d float64
		for d = math.Float64frombits(r.Uint64()); math.IsNaN(d) || math.IsInf(d, 0); d = math.Float64frombits(r.Uint64()) {
		}
		var s float32
		for s = math.Float32frombits(r.Uint32()); s != s || math.IsInf(float64(s), 0); s = math.Float32frombits(r.Uint32()) {
		}
		next := func(x float64, up bool) float64 {
			if up {
				return math.Nextafter(x, math.Inf(1))
			}
			return math.Nextafter(x, math.Inf(-1))
		}
		nextf := func(x float32, up bool) float32 {
			if up {
				return math.Nextafter32(x, float32(math.Inf(1)))
			}
			return math.Nextafter32(x, float32(math.Inf(-1)))
		}
		if _, err := src.Exec("INSERT INTO f VALUES (?, ?, ?)", id, d, float64(s)); err != nil {
			t.Fatal(err)
		}
		// On the target: even ids one ulp away (down, or up at the largest finite values).
		td, ts := d, s
		if id%2 == 0 {
			if td = next(d, false); math.IsInf(td, 0) {
				td = next(d, true)
			}
			if ts = nextf(s, false); math.IsInf(float64(ts), 0) {
				ts = nextf(s, true)
			}
		}
		if _, err := tgt.Exec("INSERT INTO f VALUES (?, ?, ?)", id, td, float64(ts)); err != nil {
			t.Fatal(err)
		}
	}
	ctlName := "cutover_v" + tgtDB.Name
	copyState(t, tgt, ctlName, srcDB.Name, []string{"f"})
	rep := validateCopy(t, srcDB, tgtDB, ctlName, 50)
	tv := rep.Tables[0]
	if tv.Mismatches != n/2 {
		t.Fatalf("%d rows differ, want %d: %v", tv.Mismatches, n/2, differing(tv))
	}
	for _, d := range tv.Differences {
		if len(d.Columns) != 2 {
			t.Errorf("key %v: columns %v differ, want d and s", d.Key, d.Columns)
		}
	}
}

// A live validation under a writer that changes the same few rows in every
// transaction: the applier, behind the source, holds at each point the validator asks
// for, so every table is compared exactly there (none in flight) and equal.
func TestValidateLiveHoldsTheApplier(t *testing.T) {
	srcDB, tgtDB := mytest.NewDB(t, mytest.Source(t)), mytest.NewDB(t, mytest.Target(t))
	srcDB.Exec(t, `CREATE TABLE counters (id int PRIMARY KEY, v bigint NOT NULL); INSERT INTO counters SELECT seq, 0 FROM seq_0_to_9;
		CREATE TABLE log (n bigint PRIMARY KEY, pad varchar(50)); CREATE TABLE quiet (id int PRIMARY KEY, v int); INSERT INTO quiet VALUES (1, 1), (2, 2)`)
	ctlName := "cutover_v" + tgtDB.Name
	p := plan.Defaults()
	p.Source, p.Target, p.ControlSchema = plan.Endpoint{URL: srcDB.URL()}, plan.Endpoint{URL: tgtDB.URL()}, ctlName
	p.Cutover.ExemptRoles = []string{"root"}
	t.Cleanup(func() { _ = tgtDB.Server.Exec(context.Background(), "", "DROP DATABASE IF EXISTS "+quote(ctlName)) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := FullLoad(ctx, p, engine.StartOptions{Out: io.Discard}); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- Replicate(ctx, p, engine.StartOptions{Out: io.Discard}) }()
	waitStreaming(t, tgtDB, ctlName, stopped)
	src := srcDB.Open(t)
	stop, wrote := make(chan struct{}), make(chan int, 1)
	go func() {
		n := 0
		defer func() { wrote <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			tx, err := src.Begin()
			if err == nil {
				_, err = tx.Exec("INSERT INTO log VALUES (?, 'x')", n)
			}
			if err == nil {
				_, err = tx.Exec("UPDATE counters SET v = v + 1")
			}
			if err == nil {
				err = tx.Commit()
			}
			if err != nil {
				t.Error(err)
				return
			}
			n++
		}
	}()
	var rep *validate.Report
	var err error
	for i := range 4 {
		// A full pass, then passes over the rows changed since.
		if rep, err = Validate(ctx, p, validate.Options{Incremental: i > 0}); err != nil {
			t.Fatal(err)
		}
		for _, tv := range rep.Tables {
			if tv.State != control.ValidationValidated || tv.InFlight || tv.Rechecked > 0 {
				t.Errorf("table %s under the writer: %s, in flight %v, %d rows rechecked %s", tv.Table, tv.State, tv.InFlight, tv.Rechecked, tv.Error)
			}
			if i > 0 && (!tv.Incremental || tv.Table == "counters" && tv.RowsRead > 10 || tv.Table == "quiet" && tv.RowsRead != 0) {
				t.Errorf("table %s, pass %d: incremental %v, %d rows read", tv.Table, i, tv.Incremental, tv.RowsRead)
			}
		}
	}
	// Rows changed, deleted and added on the target alone, repaired under the writer:
	// copied again from the source while the applier holds still.
	tgt := tgtDB.Open(t)
	for _, q := range []string{"UPDATE log SET pad = 'changed' WHERE n = 5", "DELETE FROM log WHERE n = 6", "INSERT INTO log VALUES (-1, 'extra')"} {
		if _, err := tgt.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	logOnly := []plan.Pattern{plan.MustPattern("*.log")}
	if rep, err = Validate(ctx, p, validate.Options{Tables: logOnly, Repair: true}); err != nil {
		t.Fatal(err)
	}
	if tv := rep.Tables[0]; tv.State != control.ValidationValidated || tv.Repaired != 3 {
		t.Errorf("log repaired: %s, %d rows repaired %v %s", tv.State, tv.Repaired, differing(tv), tv.Error)
	}
	close(stop)
	n := <-wrote
	// A row changed on the target alone: a pass over the changed rows does not read
	// it; a full pass finds it, and the next pass over the changed rows reads it again.
	if _, err := tgt.Exec("UPDATE quiet SET v = 99 WHERE id = 2"); err != nil {
		t.Fatal(err)
	}
	quiet := func(opts validate.Options) validate.TableReport {
		t.Helper()
		opts.Tables = []plan.Pattern{plan.MustPattern("*.quiet")}
		rep, err := Validate(ctx, p, opts)
		if err != nil || len(rep.Tables) != 1 {
			t.Fatalf("validate quiet: %v", err)
		}
		return rep.Tables[0]
	}
	if tv := quiet(validate.Options{Incremental: true}); tv.State != control.ValidationValidated || tv.RowsRead != 0 {
		t.Errorf("quiet, changed rows only: %s, %d rows read", tv.State, tv.RowsRead)
	}
	if tv := quiet(validate.Options{}); tv.State != control.ValidationMismatched || len(tv.Differences) != 1 || tv.Differences[0].Key[0] != "2" {
		t.Errorf("quiet, full pass: %s %v", tv.State, differing(tv))
	}
	if tv := quiet(validate.Options{Incremental: true}); tv.State != control.ValidationMismatched || tv.RowsRead != 1 || !tv.Incremental {
		t.Errorf("quiet, changed rows and the one that differed: %s, %d rows read, incremental %v", tv.State, tv.RowsRead, tv.Incremental)
	}
	if _, err := tgt.Exec("UPDATE quiet SET v = 2 WHERE id = 2"); err != nil {
		t.Fatal(err)
	}
	if tv := quiet(validate.Options{Incremental: true}); tv.State != control.ValidationValidated || tv.RowsRead != 1 {
		t.Errorf("quiet put back: %s, %d rows read", tv.State, tv.RowsRead)
	}
	if !rep.Live || n == 0 {
		t.Errorf("live %v, %d transactions written", rep.Live, n)
	}
	cancel()
	if err := <-stopped; err != nil {
		t.Errorf("change data capture: %v", err)
	}
	t.Logf("%d transactions; the last validation took %d points", n, rep.Points)
}

// waitStreaming waits until change data capture holds the stream lock of the control
// database ctl on db's server, or fails when it ended first.
func waitStreaming(t *testing.T, db *mytest.DB, ctl string, stopped <-chan error) {
	t.Helper()
	pool := db.Open(t)
	for {
		if held, err := streamRunning(context.Background(), pool, ctl); err != nil {
			t.Fatal(err)
		} else if held {
			return
		}
		select {
		case err := <-stopped:
			t.Fatalf("change data capture ended before it streamed: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
