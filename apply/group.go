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
