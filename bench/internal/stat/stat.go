// Package stat is what the benchmarks share to report their runs: the median of
// durations, and durations rounded for printing.
package stat

import (
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
