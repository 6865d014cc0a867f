package apply

import (
	"testing"
	"time"
)

func TestGroupingCommitNow(t *testing.T) {
	g := Grouping{Txns: 10, Changes: 100, Time: time.Second}
	for _, tc := range []struct {
		name          string
		idle          bool
		txns, changes int
		age           time.Duration
		want          bool
	}{
		{name: "within the limits, more ready", txns: 9, changes: 99, age: time.Second - 1, want: false},
		{name: "nothing more ready", idle: true, txns: 1, changes: 1, want: true},
		{name: "at the transactions' limit", txns: 10, changes: 1, want: true},
		{name: "at the changes' limit", txns: 1, changes: 100, want: true},
		{name: "open long enough", txns: 1, changes: 1, age: time.Second, want: true},
		{name: "one large transaction", txns: 1, changes: 100000, age: time.Minute, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := g.CommitNow(tc.idle, tc.txns, tc.changes, tc.age); got != tc.want {
				t.Errorf("CommitNow(%v, %d, %d, %v) = %v, want %v", tc.idle, tc.txns, tc.changes, tc.age, got, tc.want)
			}
		})
	}
}

// TestDefaultGrouping pins the limits the appliers have always used.
func TestDefaultGrouping(t *testing.T) {
	want := Grouping{Txns: 1000, Changes: 20000, Time: 50 * time.Millisecond}
	if DefaultGrouping != want {
		t.Errorf("DefaultGrouping = %+v, want %+v", DefaultGrouping, want)
	}
}

func TestGroupBookkeeping(t *testing.T) {
	g := NewGroup(Grouping{Txns: 2, Changes: 100, Time: time.Hour}, "0/10")
	now := time.Now()
	if !g.Begin(now) || g.Begin(now) || !g.Open() {
		t.Fatal("the first source transaction opens the target's, the next ones join it")
	}
	g.Change()
	if g.End("0/20", now, false, now) {
		t.Fatal("committed after one of two transactions with more ready")
	}
	if g.Committed() != "0/10" {
		t.Fatalf("committed %s before the group commits", g.Committed())
	}
	g.Begin(now)
	if !g.End("0/30", now, false, now) {
		t.Fatal("a group at its limit of transactions must commit")
	}
	if pos, _ := g.Position(); pos != "0/30" {
		t.Fatalf("the group commits with %s, want the last transaction's 0/30", pos)
	}
	if n := g.Done(); n != 2 || g.Committed() != "0/30" || g.Open() {
		t.Fatalf("done: %d transactions, committed %s, open %v", n, g.Committed(), g.Open())
	}
	// A group rolled back leaves the committed position where it was: its
	// transactions are read again.
	g.Begin(now)
	g.End("0/40", now, false, now)
	g.Abandon()
	if g.Committed() != "0/30" || g.Open() {
		t.Fatalf("after a rollback: committed %s, open %v", g.Committed(), g.Open())
	}
	if !g.Begin(now) {
		t.Fatal("after a rollback the next transaction opens a target transaction")
	}
	if !g.End("0/50", now, true, now) {
		t.Fatal("an idle stream commits at once")
	}
}
