// Package stat is what the benchmarks share to report their runs: the median of
// durations, durations rounded for printing, and percentiles of seconds.
package stat

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Median is the median of ds (of the two middle ones, their mean); 0 for none.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[n/2]
}

// Rounded is ds rounded to the millisecond.
func Rounded(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// Dist is a distribution of seconds: its count, percentiles (nearest rank) and maximum.
type Dist struct {
	N                  int
	P50, P95, P99, Max float64
}

// DistOf is the distribution of v, seconds.
func DistOf(v []float64) Dist {
	if len(v) == 0 {
		return Dist{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	rank := func(p float64) float64 { return s[max(int(math.Ceil(p*float64(len(s))))-1, 0)] }
	return Dist{N: len(s), P50: rank(0.50), P95: rank(0.95), P99: rank(0.99), Max: s[len(s)-1]}
}

func (d Dist) String() string {
	return fmt.Sprintf("p50 %.3fs  p95 %.3fs  p99 %.3fs  max %.3fs  (%d samples)", d.P50, d.P95, d.P99, d.Max, d.N)
}
