package mysql

import (
	"context"
	"errors"
	"testing"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/mytest"
)

// The control state is created once, kept by a second open, and records the phase,
// the mode and each table's progress as the load goes; drop removes it.
func TestControlState(t *testing.T) {
	ctx := context.Background()
	s := mytest.Target(t)
	db := mytest.NewDB(t, s).Open(t)
	name := "ctl_" + t.Name()
	t.Cleanup(func() { _ = s.Exec(ctx, "", "DROP DATABASE IF EXISTS "+quote(name)) })
	if _, ok, err := readControl(ctx, db, name); err != nil || ok {
		t.Fatalf("before: exists %v, %v", ok, err)
	}
	c, err := openControl(ctx, db, name)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.State(ctx)
	if err != nil || st.Phase != control.PhaseNew || st.Mode != control.ModeCDC || st.Updated.IsZero() {
		t.Fatalf("new state %+v, %v", st, err)
	}
	if err := c.SetState(ctx, control.State{Phase: control.PhaseSchema, Position: "0-1-42 (binlog.000001:400)"}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetMode(ctx, control.ModeCopy); err != nil {
		t.Fatal(err)
	}
	tables := []control.TableStat{{Schema: "db", Table: "a", EstimatedBytes: 10}, {Schema: "db", Table: "rows", EstimatedBytes: 20}}
	if err := c.QueueTables(ctx, tables); err != nil {
		t.Fatal(err)
	}
	steps := []error{
		c.tableStarted(ctx, "db", "a"), c.tableProgress(ctx, "db", "a", 5, 50), c.tableLoaded(ctx, "db", "a", 7, 70, "pos"),
		c.tableProgress(ctx, "db", "a", 6, 60), // late: ignored
		c.tableStarted(ctx, "db", "rows"), c.tableFailed(ctx, "db", "rows", errors.New("boom")),
		c.QueueTables(ctx, tables), // queued again: kept
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	again, err := openControl(ctx, db, name)
	if err != nil {
		t.Fatal(err)
	}
	st, err = again.State(ctx)
	if err != nil || st.Phase != control.PhaseSchema || st.Mode != control.ModeCopy || st.Position != "0-1-42 (binlog.000001:400)" {
		t.Fatalf("state after reopening %+v, %v", st, err)
	}
	stats, err := again.TableStats(ctx)
	if err != nil || len(stats) != 2 {
		t.Fatalf("%+v, %v", stats, err)
	}
	a, r := stats[0], stats[1]
	if a.State != control.TableLoaded || a.Rows != 7 || a.Bytes != 70 || a.Position != "pos" || a.EstimatedBytes != 10 || a.Started == nil || a.Ended == nil || a.Validation != control.ValidationPending {
		t.Errorf("table a: %+v", a)
	}
	if r.State != control.TableError || r.Error != "boom" || r.Ended == nil {
		t.Errorf("table rows: %+v", r)
	}
	if err := again.drop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := readControl(ctx, db, name); err != nil || ok {
		t.Fatalf("after drop: exists %v, %v", ok, err)
	}
}
