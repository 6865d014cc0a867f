package cdc

import (
	"sync"
	"time"
)

// Latency measures the change stream the way AWS DMS does. Source latency is now minus
// the commit time of the last transaction read from the source, 0 once the source has
// sent everything. Target latency is now minus the commit time of the oldest
// transaction read but not yet committed on the target, 0 when none is pending.
type Latency struct {
	mu       sync.Mutex
	lastRead time.Time
	caughtUp bool
	pending  []time.Time // commit times of transactions read, not yet applied, oldest first
	applied  int64
}

// Read records a transaction read from the source.
func (l *Latency) Read(commit time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastRead, l.caughtUp = commit, false
	l.pending = append(l.pending, commit)
}

// CaughtUp records that the source has sent everything it has (or not).
func (l *Latency) CaughtUp(yes bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.caughtUp = yes
}

// Applied records that the oldest n pending transactions committed on the target.
func (l *Latency) Applied(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n = min(n, len(l.pending))
	l.pending = append(l.pending[:0], l.pending[n:]...)
	l.applied += int64(n)
}

// Snapshot is the figures at one moment.
type Snapshot struct {
	Source, Target time.Duration
	Pending        int   // transactions read and not yet applied
	Applied        int64 // transactions applied since the start
}

// At returns the figures as of now.
func (l *Latency) At(now time.Time) Snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Snapshot{Pending: len(l.pending), Applied: l.applied}
	if !l.caughtUp && !l.lastRead.IsZero() {
		s.Source = max(now.Sub(l.lastRead), 0)
	}
	if len(l.pending) > 0 {
		s.Target = max(now.Sub(l.pending[0]), 0)
	}
	return s
}

// Reset forgets the transactions pending: they are read again from the source.
func (l *Latency) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = l.pending[:0]
}
