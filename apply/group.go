// Package apply holds what applying a change stream to a target means whatever the
// target engine: netting the changes of a group of source transactions down to one
// write per row (Net), and deciding when the group commits (Grouping). Writing the
// changes (statements, a driver, transactions) is the target engine's: package
// postgres for PostgreSQL. This package imports no database driver, so that every
// engine can share it.
package apply

import "time"

// Grouping says when a group of small source transactions, applied as one target
// transaction, commits: when the stream has nothing more ready, or at these limits.
// A large source transaction is not split: the group commits at its end.
type Grouping struct {
	Txns    int           // source transactions in the group, at most
	Changes int           // row changes in the group, at most
	Time    time.Duration // since the group began, at most
}

// DefaultGrouping is the grouping the appliers use.
var DefaultGrouping = Grouping{Txns: 1000, Changes: 20000, Time: 50 * time.Millisecond}

// CommitNow says whether the group commits at the end of a source transaction. idle:
// the stream has nothing more ready (waiting for more would only add latency); txns,
// changes and age: the group so far, that transaction included.
func (g Grouping) CommitNow(idle bool, txns, changes int, age time.Duration) bool {
	return idle || txns >= g.Txns || changes >= g.Changes || age >= g.Time
}

// Group is the bookkeeping of exactly-once apply: the open target transaction, the
// source transactions in it, and the position it commits with, the last one's,
// written in that same target transaction. A restart reads the stream again after
// Committed: what a group rolled back held is applied again, what one committed never.
type Group struct {
	Grouping
	open          bool
	txns, changes int
	began         time.Time
	position      string
	commitTime    time.Time
	committed     string
}

// NewGroup is the bookkeeping of an applier that goes on after committed.
func NewGroup(g Grouping, committed string) *Group { return &Group{Grouping: g, committed: committed} }

// Begin notes a source transaction beginning; it reports whether a target
// transaction must be opened for it (none is open).
func (g *Group) Begin(now time.Time) (open bool) {
	if g.open {
		return false
	}
	g.open, g.began = true, now
	return true
}

// Open reports whether a target transaction is open.
func (g *Group) Open() bool { return g.open }

// Change notes a row change applied in the group.
func (g *Group) Change() { g.changes++ }

// End notes a source transaction's commit at position, and says whether the group
// commits now (idle: the stream has nothing more ready).
func (g *Group) End(position string, commitTime time.Time, idle bool, now time.Time) (commit bool) {
	g.txns++
	g.position, g.commitTime = position, commitTime
	return g.CommitNow(idle, g.txns, g.changes, now.Sub(g.began))
}

// Position is the position the group commits with, and its commit time on the source.
func (g *Group) Position() (string, time.Time) { return g.position, g.commitTime }

// Ended is how many source transactions of the open group have ended: none when the
// group holds only the one in progress, whose position is not the group's to commit.
func (g *Group) Ended() int { return g.txns }

// Committed is the position of the last source transaction the target committed.
func (g *Group) Committed() string { return g.committed }

// Done notes that the target committed the group; it returns the source
// transactions the group held.
func (g *Group) Done() (txns int) {
	txns = g.txns
	g.committed = g.position
	g.open, g.txns, g.changes = false, 0, 0
	return txns
}

// Abandon notes that the group was rolled back: its transactions come again.
func (g *Group) Abandon() { g.open, g.txns, g.changes = false, 0, 0 }
