package postgres

import (
	"context"
	"slices"
	"testing"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/pgtest"
)

// table_stats is read in the order the applier updates the table counters in
// (compareNames, byte by byte), whatever the columns' collation: a validation records
// its tables in the order it read them, and two transactions locking those rows in
// different orders deadlock.
func TestTableStatsInTheApplierOrder(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, pgtest.Target(t))
	ctx := context.Background()
	ctl, err := OpenControl(ctx, db.Conn(t), "cutover")
	if err != nil {
		t.Fatal(err)
	}
	// In a collation of people's languages, a sorts before B and _x after them.
	db.Exec(t, `ALTER TABLE cutover.table_stats ALTER COLUMN schema_name TYPE text COLLATE "en-x-icu", ALTER COLUMN table_name TYPE text COLLATE "en-x-icu"`)
	names := [][2]string{{"public", "a"}, {"public", "B"}, {"public", "_x"}, {"Sales", "z"}, {"public", "ä"}, {"public", "b"}}
	var stats []control.TableStat
	for _, n := range names {
		stats = append(stats, control.TableStat{Schema: n[0], Table: n[1]})
	}
	if err := ctl.QueueTables(ctx, stats); err != nil {
		t.Fatal(err)
	}
	read, err := ctl.TableStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got [][2]string
	for _, s := range read {
		got = append(got, [2]string{s.Schema, s.Table})
	}
	if want := slices.SortedFunc(slices.Values(names), compareNames); !slices.Equal(got, want) {
		t.Errorf("table_stats read in the order %q, the applier updates them in %q", got, want)
	}
}
