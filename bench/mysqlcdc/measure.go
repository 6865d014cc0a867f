package main

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// gtidState is MariaDB's GTID state (gtid_binlog_pos, gtid_slave_pos, cutover's applied
// position): each replication domain's last sequence number.
type gtidState map[uint32]uint64

// parseGTIDState reads "0-1-42,1-2-7"; a position cutover writes with the file and
// offset after it, "0-1-42 (binlog.000001:1234)", is read the same.
func parseGTIDState(s string) (gtidState, error) {
	if i := strings.Index(s, " ("); i >= 0 {
		s = s[:i]
	}
	g := gtidState{}
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		f := strings.Split(part, "-")
		if len(f) != 3 {
			return nil, fmt.Errorf("%q is not a MariaDB GTID state (domain-server-sequence, ...)", s)
		}
		d, err1 := strconv.ParseUint(f[0], 10, 32)
		n, err2 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%q is not a MariaDB GTID state (domain-server-sequence, ...)", s)
		}
		g[uint32(d)] = n
	}
	return g, nil
}

// covers says whether g has reached every domain's sequence number of want.
func (g gtidState) covers(want gtidState) bool {
	for d, n := range want {
		if g[d] < n {
			return false
		}
	}
	return true
}

// seq is the sum of the domains' sequence numbers: a clock that moves with every
// transaction (the benchmark's writes are all in one domain).
func (g gtidState) seq() uint64 {
	var n uint64
	for _, v := range g {
		n += v
	}
	return n
}

// readGTID reads a GTID state by a query of one string.
func readGTID(ctx context.Context, db *sql.DB, query string) (gtidState, error) {
	var s sql.NullString
	if err := db.QueryRowContext(ctx, query).Scan(&s); err != nil {
		return nil, err
	}
	return parseGTIDState(s.String)
}

// Sampling periods: the source's binary log position often (it is the clock the
// follower's applied position is read against), the follower less often.
const (
	sourceEvery = 50 * time.Millisecond
	targetEvery = 4 // source samples per follower sample: 200 ms
)

// seqSample is a position at a moment.
type seqSample struct {
	at  time.Time
	seq uint64
}

// samples is what sampler recorded: the source's position and the follower's applied one.
type samples struct {
	source, target []seqSample
}

// sampler records the source's binary log position and f's applied position until ctx
// ends, on pools of its own.
func sampler(ctx context.Context, src *sql.DB, f follower) (samples, error) {
	var s samples
	tick := time.NewTicker(sourceEvery)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return s, nil
		case <-tick.C:
		}
		g, err := readGTID(ctx, src, "SELECT @@gtid_binlog_pos")
		if err != nil {
			return s, ignoreDone(ctx, fmt.Errorf("the source's position: %w", err))
		}
		s.source = append(s.source, seqSample{at: time.Now(), seq: g.seq()})
		if i%targetEvery != 0 {
			continue
		}
		g, err = f.applied(ctx)
		if err != nil {
			return s, ignoreDone(ctx, fmt.Errorf("%s's applied position: %w", f.name, err))
		}
		s.target = append(s.target, seqSample{at: time.Now(), seq: g.seq()})
	}
}

func ignoreDone(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// lags is the follower's lag, in seconds, at each of its samples in [from, to],
// measured without its help: the time since the source's binary log first went past
// the position it had applied. It errs on the high side by at most sourceEvery.
func (s samples) lags(from, to time.Time) []float64 {
	var out []float64
	for _, t := range s.target {
		if t.at.Before(from) || t.at.After(to) {
			continue
		}
		// The first source sample past the applied position: the oldest pending
		// transaction was written after the sample before it.
		k := sort.Search(len(s.source), func(i int) bool { return s.source[i].seq > t.seq })
		lag := 0.0
		switch {
		case k == len(s.source):
		case k == 0:
			lag = t.at.Sub(s.source[0].at).Seconds()
		default:
			lag = t.at.Sub(s.source[k-1].at).Seconds()
		}
		out = append(out, max(lag, 0))
	}
	return out
}
