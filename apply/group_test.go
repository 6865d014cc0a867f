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
