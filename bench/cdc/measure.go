package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/pgtest"
)

// Sampling periods: the source's WAL position often (it is the clock the target's applied
// position is read against), the target and cutover's /metrics less often.
const (
	sourceEvery = 50 * time.Millisecond
	targetEvery = 4 // source samples per target sample: 200 ms
)

// lsnSample is the source's WAL position at a moment.
type lsnSample struct {
	at  time.Time
	lsn int64
}

// targetSample is what the target and cutover's /metrics said at a moment.
type targetSample struct {
	at      time.Time
	applied int64   // the target's applied position
	target  float64 // cutover_cdc_latency_target_seconds
	source  float64 // cutover_cdc_latency_source_seconds: how far behind reading the source is
	gaugeOK bool
}

// samples is what sampler recorded.
type samples struct {
	source []lsnSample
	target []targetSample
}

// sampler records the source's WAL position, f's applied position and cutover's target
// latency gauge until ctx ends, on connections of its own.
func sampler(ctx context.Context, src, tgt *pgtest.Server, f follower) (samples, error) {
	var s samples
	sc, err := src.Connect(ctx, "bench")
	if err != nil {
		return s, err
	}
	defer sc.Close(context.WithoutCancel(ctx))
	tc, err := tgt.Connect(ctx, f.db)
	if err != nil {
		return s, err
	}
	defer tc.Close(context.WithoutCancel(ctx))
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(sourceEvery)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return s, nil
		case <-tick.C:
		}
		var lsn int64
		if err := sc.QueryRow(ctx, "SELECT (pg_current_wal_lsn() - '0/0')::bigint").Scan(&lsn); err != nil {
			return s, ignoreDone(ctx, fmt.Errorf("source WAL position: %w", err))
		}
		s.source = append(s.source, lsnSample{at: time.Now(), lsn: lsn})
		if i%targetEvery != 0 {
			continue
		}
		var ts targetSample
		if err := tc.QueryRow(ctx, f.applied).Scan(&ts.applied); err != nil {
			return s, ignoreDone(ctx, fmt.Errorf("applied position on the target: %w", err))
		}
		ts.at = time.Now()
		if f.metrics != "" {
			g := scrapeGauges(ctx, client, f.metrics)
			ts.target, ts.gaugeOK = g["cutover_cdc_latency_target_seconds"]
			ts.source = g["cutover_cdc_latency_source_seconds"]
		}
		s.target = append(s.target, ts)
	}
}

func ignoreDone(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// scrapeGauges reads the unlabelled cutover_ samples of a Prometheus text page.
func scrapeGauges(ctx context.Context, client *http.Client, url string) map[string]float64 {
	g := map[string]float64{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return g
	}
	resp, err := client.Do(req)
	if err != nil {
		return g
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || !strings.HasPrefix(name, "cutover_") {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			g[name] = f
		}
	}
	return g
}

// gauges is cutover's target and source latency sampled in [from, to], and how many
// scrapes failed there.
func (s samples) gauges(from, to time.Time) (target, source []float64, failed int) {
	for _, t := range s.target {
		if t.at.Before(from) || t.at.After(to) {
			continue
		}
		if !t.gaugeOK {
			failed++
			continue
		}
		target, source = append(target, t.target), append(source, t.source)
	}
	return target, source, failed
}

// lags is the target's lag, in seconds, at each target sample in [from, to], measured
// without cutover's help: the time since the source's WAL first went past the position
// the target had applied. It errs on the high side by at most sourceEvery.
func (s samples) lags(from, to time.Time) []float64 {
	var out []float64
	for _, t := range s.target {
		if t.at.Before(from) || t.at.After(to) {
			continue
		}
		// The first source sample past the applied position: the oldest pending change
		// was written after the sample before it.
		k := sort.Search(len(s.source), func(i int) bool { return s.source[i].lsn > t.applied })
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

// dist is p50, p99 and max of some seconds.
type dist struct{ n, p50, p99, max float64 }

func distOf(v []float64) dist {
	if len(v) == 0 {
		return dist{}
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	rank := func(p float64) float64 { return s[max(int(math.Ceil(p*float64(len(s))))-1, 0)] }
	return dist{n: float64(len(s)), p50: rank(0.50), p99: rank(0.99), max: s[len(s)-1]}
}

func (d dist) String() string {
	return fmt.Sprintf("p50 %.3fs  p99 %.3fs  max %.3fs  (%d samples)", d.p50, d.p99, d.max, int(d.n))
}

// writeTimeline writes the target samples in [from, to] as CSV: seconds since from,
// cutover's target and source latency gauges, and the lag measured here.
func (s samples) writeTimeline(path string, from, to time.Time) error {
	var b strings.Builder
	b.WriteString("t,target_gauge,source_gauge,measured_lag\n")
	for _, t := range s.target {
		if t.at.Before(from) || t.at.After(to) {
			continue
		}
		one := samples{source: s.source, target: []targetSample{t}}
		lag := one.lags(from, to)
		fmt.Fprintf(&b, "%.3f,%.3f,%.3f,%.3f\n", t.at.Sub(from).Seconds(), t.target, t.source, lag[0])
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
