package mysql

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/mytest"
	"github.com/cutover-dev/cutover/plan"
)

func txt(s string) cdc.Value { return cdc.Value{Text: []byte(s)} }

var null = cdc.Value{Null: true}

// applyAll sends the events to a new applier and returns what Apply returned.
func applyAll(t *testing.T, a *applier, events ...cdc.Event) error {
	t.Helper()
	ch := make(chan cdc.Event, len(events))
	for _, e := range events {
		ch <- e
	}
	close(ch)
	return a.Apply(context.Background(), ch)
}

func applyTxn(pos string, changes ...*cdc.Change) []cdc.Event {
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	out := []cdc.Event{&cdc.Begin{Position: pos, CommitTime: at}}
	for _, c := range changes {
		out = append(out, c)
	}
	return append(out, &cdc.Commit{Position: pos, CommitTime: at})
}

// The applier writes each value as the full load would (the stream's text: an ENUM's
// index, a BIT's number, a latin1 string's byte, an unsigned maximum, a FLOAT's
// widened text), nets a group's changes, finds a row of a table without a key by its
// bytes (not by a case-insensitive =), and commits the position with the changes: a
// group that fails leaves the target as the last commit left it, with its position.
func TestApplyChanges(t *testing.T) {
	ctx := context.Background()
	srcDB, db := mytest.NewDB(t, mytest.Source(t)), mytest.NewDB(t, mytest.Target(t))
	ddl := `CREATE TABLE k (id int PRIMARY KEY, v varchar(10) CHARACTER SET latin1, e enum('a','b',''), b bit(8), f float, u bigint unsigned, dt datetime(6), bl blob);
		CREATE TABLE nokey (a int, s varchar(10) COLLATE utf8mb4_general_ci)`
	srcDB.Exec(t, ddl)
	db.Exec(t, ddl)
	pool, err := Open(ctx, "target", plan.Endpoint{URL: db.URL()}, 4) // as cutover opens it
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ctlName := "ctl_" + db.Name
	t.Cleanup(func() { _ = db.Server.Exec(ctx, "", "DROP DATABASE IF EXISTS "+quote(ctlName)) })
	ctl, err := openControl(ctx, pool, ctlName)
	if err != nil {
		t.Fatal(err)
	}
	k := &cdc.Relation{ID: 1, Schema: srcDB.Name, Name: "k", Columns: []cdc.Column{{Name: "id", Key: true}, {Name: "v"}, {Name: "e"}, {Name: "b"}, {Name: "f"}, {Name: "u"}, {Name: "dt"}, {Name: "bl"}}}
	nokey := &cdc.Relation{ID: 2, Schema: srcDB.Name, Name: "nokey", Columns: []cdc.Column{{Name: "a"}, {Name: "s"}}}
	row := func(id, v, e, b, f, u, dt, bl string) cdc.Row {
		r := cdc.Row{txt(id), txt(v), txt(e), txt(b), txt(f), txt(u), txt(dt), txt(bl)}
		for i := range r {
			if string(r[i].Text) == "NULL" {
				r[i] = null
			}
		}
		return r
	}
	r1 := row("1", "caf\xe9", "2", "255", "0.10000000149011612", "18446744073709551615", "2024-02-29 23:59:59.999999", "\x00\xff\t\n\\")
	r2 := row("2", "b", "0", "0", "-0", "0", "0000-00-00 00:00:00.000000", "NULL")
	r3 := row("3", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL")
	r2b := row("2", "B", "1", "1", "1e38", "1", "1970-01-01 00:00:01.000000", "x")
	r4 := row("4", "d", "3", "128", "3.4028234663852886e38", "42", "9999-12-31 23:59:59.999999", "")
	// Each transaction is a group of its own (the channel is idle after it): the
	// updates and deletes reach the target as statements, not netted away.
	groups := [][]cdc.Event{
		applyTxn("p1", &cdc.Change{Op: cdc.Insert, Rel: k, New: r1}, &cdc.Change{Op: cdc.Insert, Rel: k, New: r2}, &cdc.Change{Op: cdc.Insert, Rel: k, New: r3}),
		applyTxn("p2", &cdc.Change{Op: cdc.Update, Rel: k, Old: r2, New: r2b}, &cdc.Change{Op: cdc.Delete, Rel: k, Old: r3}, &cdc.Change{Op: cdc.Insert, Rel: k, New: r4},
			&cdc.Change{Op: cdc.Update, Rel: k, Old: r4, New: r4}),
		applyTxn("p3", &cdc.Change{Op: cdc.Insert, Rel: nokey, New: cdc.Row{txt("1"), txt("x")}}, &cdc.Change{Op: cdc.Insert, Rel: nokey, New: cdc.Row{txt("1"), txt("X")}},
			&cdc.Change{Op: cdc.Insert, Rel: nokey, New: cdc.Row{null, txt("n")}}),
		applyTxn("p4", &cdc.Change{Op: cdc.Delete, Rel: nokey, Old: cdc.Row{txt("1"), txt("X")}}, &cdc.Change{Op: cdc.Update, Rel: nokey, Old: cdc.Row{null, txt("n")}, New: cdc.Row{txt("7"), txt("n")}}),
		// a key changed and changed back: not netted, written as it comes
		applyTxn("p5", &cdc.Change{Op: cdc.Update, Rel: k, Old: r1, New: row("11", "caf\xe9", "2", "255", "0.10000000149011612", "18446744073709551615", "2024-02-29 23:59:59.999999", "\x00\xff\t\n\\")},
			&cdc.Change{Op: cdc.Update, Rel: k, Old: row("11", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL"), New: r1}),
	}
	a := newApplier(pool, db.Name, true, ctl, "")
	for _, g := range groups {
		if err := applyAll(t, a, g...); err != nil {
			t.Fatal(err)
		}
	}
	// The same rows written on the source by SQL: the target must hold the same.
	srcDB.Exec(t, `SET SESSION sql_mode = ''; INSERT INTO k VALUES (1, _latin1 x'636166e9', 2, 255, 0.1, 18446744073709551615, '2024-02-29 23:59:59.999999', x'00ff090a5c'),
		(2, 'B', 1, 1, 1e38, 1, '1970-01-01 00:00:01', 'x'), (4, 'd', 3, 128, 3.4028234663852886e38, 42, '9999-12-31 23:59:59.999999', '');
		INSERT INTO nokey VALUES (1, 'x'), (7, 'n')`)
	src, tgt := srcDB.Open(t), db.Open(t) // the binary protocol on both (cutover's pool interpolates)
	for _, table := range []string{"k", "nokey"} {
		if a, b := image(t, src, table), image(t, tgt, table); !slices.Equal(a, b) {
			t.Errorf("%s: the source by SQL %q, the target by the applier %q", table, a, b)
		}
	}
	if st, err := ctl.State(ctx); err != nil || st.Applied != "p5" {
		t.Errorf("applied position %q, %v; want p5", st.Applied, err)
	}

	// A group that fails: an update of a row the target does not have, after a change
	// that applies. Nothing of the group stays; the position stays p5.
	a.Disconnect(ctx) // the pool has 4 connections, and an applier holds one
	a = newApplier(pool, db.Name, true, ctl, "p5")
	err = applyAll(t, a, applyTxn("p6", &cdc.Change{Op: cdc.Insert, Rel: k, New: row("5", "e", "1", "1", "1", "1", "2024-01-01 00:00:00.000000", "")},
		&cdc.Change{Op: cdc.Update, Rel: k, Old: row("9", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL"), New: row("9", "z", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL")})...)
	var ae *cdc.ApplyError
	if !errors.As(err, &ae) || a.Committed() != "p5" {
		t.Fatalf("a failing group: %v (committed %q); want an apply error and p5", err, a.Committed())
	}
	if n := mytest.QueryVal[int64](t, db, "SELECT count(*) FROM k WHERE id = 5"); n != 0 {
		t.Errorf("the failed group's insert is on the target")
	}
	// A transaction the stream did not finish (no Commit) is rolled back.
	a.Disconnect(ctx) // the pool has 4 connections, and an applier holds one
	a = newApplier(pool, db.Name, true, ctl, "p5")
	if err := applyAll(t, a, &cdc.Begin{Position: "p7"}, &cdc.Change{Op: cdc.Insert, Rel: k, New: row("6", "f", "1", "1", "1", "1", "2024-01-01 00:00:00.000000", "")}); err != nil {
		t.Fatal(err)
	}
	if n := mytest.QueryVal[int64](t, db, "SELECT count(*) FROM k WHERE id = 6"); n != 0 || a.Committed() != "p5" {
		t.Errorf("an unfinished transaction: %d rows, committed %q", n, a.Committed())
	}
	if st, _ := ctl.State(ctx); st.Applied != "p5" {
		t.Errorf("applied position %q after the failures, want p5", st.Applied)
	}
	// A schema change the target refuses, first in a new applier's stream: the
	// position stays p5 (a group holding only the schema change's own transaction has
	// nothing to commit; committing it wrote an empty position, seen in CI as a stream
	// restarted from the snapshot after a kill at that moment).
	a.Disconnect(ctx) // the pool has 4 connections, and an applier holds one
	a = newApplier(pool, db.Name, true, ctl, "p5")
	a.replayDDL = true
	err = applyAll(t, a, &cdc.Begin{Position: "p8"}, &cdc.SchemaChange{Statement: "ALTER TABLE k ADD COLUMN v int", Tag: "ALTER TABLE", Context: srcDB.Name,
		Objects: []cdc.SchemaObject{{Kind: "table", Schema: srcDB.Name, Name: "k", Table: "k"}}}, &cdc.Commit{Position: "p8"})
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "refused the source's schema change") {
		t.Errorf("a schema change the target refuses: %v", err)
	}
	if st, _ := ctl.State(ctx); st.Applied != "p5" {
		t.Errorf("applied position %q after a refused schema change, want p5", st.Applied)
	}
}
