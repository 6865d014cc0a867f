// Package metrics holds the Prometheus metrics of a running task, with the names
// DESIGN.md promises (prefix cutover_). Engines report into it; the HTTP server
// exposes it on /metrics. A nil *Metrics ignores every report, so code can report
// unconditionally.
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is one task's metrics.
type Metrics struct {
	reg *prometheus.Registry

	mu      sync.Mutex
	latency func() (source, target time.Duration, pending int) // read at each scrape
	last    struct {
		source, target time.Duration
		pending        int
	}
	applied      *prometheus.CounterVec
	fullLoadRows *prometheus.CounterVec
	exceptions   prometheus.Counter
	mismatched   *prometheus.GaugeVec
	retainedWAL  prometheus.Gauge
	live, closed *prometheus.GaugeVec
}

// New makes the metrics and registers them (with the Go runtime's and the process's).
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cutover_applied_changes_total",
			Help: "Row changes applied to the target by change data capture."}, []string{"table", "op"}),
		fullLoadRows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cutover_full_load_rows_total",
			Help: "Rows copied by the full load."}, []string{"table"}),
		exceptions: prometheus.NewCounter(prometheus.CounterOpts{Name: "cutover_apply_exceptions_total",
			Help: "Changes the target could not apply (recorded in the control schema's apply_exceptions)."}),
		mismatched: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cutover_validation_mismatched_rows",
			Help: "Rows the last validation found different between source and target."}, []string{"table"}),
		retainedWAL: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cutover_slot_retained_wal_bytes",
			Help: "WAL the source keeps for the migration's replication slot."}),
		live: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cutover_side_live",
			Help: "1 for the side that takes the applications' writes (source or target), 0 for the other."}, []string{"side"}),
		closed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cutover_side_closed",
			Help: "1 when the side that is not live is closed to the applications (no role that may write the migrated tables can log in; or read-only), 0 when it is open: two writable sides."}, []string{"side"}),
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cutover_cdc_latency_source_seconds",
			Help: "Now minus the commit time of the last change read from the source; 0 when the source has sent everything (AWS DMS CDCLatencySource)."},
			func() float64 { s, _, _ := m.read(); return s.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cutover_cdc_latency_target_seconds",
			Help: "Now minus the commit time of the oldest change read but not yet committed on the target; 0 when none is pending (AWS DMS CDCLatencyTarget)."},
			func() float64 { _, t, _ := m.read(); return t.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cutover_cdc_incoming_changes",
			Help: "Source transactions read and not yet committed on the target."},
			func() float64 { _, _, p := m.read(); return float64(p) }),
		m.applied, m.fullLoadRows, m.exceptions, m.mismatched, m.retainedWAL, m.live, m.closed,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Latency records the change stream's latency and backlog.
func (m *Metrics) Latency(source, target time.Duration, pending int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last.source, m.last.target, m.last.pending = source, target, pending
}

// LatencyFrom makes every scrape read the latency from f, as of that moment.
func (m *Metrics) LatencyFrom(f func() (source, target time.Duration, pending int)) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.latency = f
}

func (m *Metrics) read() (source, target time.Duration, pending int) {
	m.mu.Lock()
	f, l := m.latency, m.last
	m.mu.Unlock()
	if f != nil {
		return f()
	}
	return l.source, l.target, l.pending
}

// Applied counts changes committed on the target.
func (m *Metrics) Applied(table, op string, n int64) {
	if m == nil || n == 0 {
		return
	}
	m.applied.WithLabelValues(table, op).Add(float64(n))
}

// FullLoadRows counts rows copied.
func (m *Metrics) FullLoadRows(table string, n int64) {
	if m == nil || n == 0 {
		return
	}
	m.fullLoadRows.WithLabelValues(table).Add(float64(n))
}

// Exception counts a change the target could not apply.
func (m *Metrics) Exception() {
	if m != nil {
		m.exceptions.Inc()
	}
}

// Mismatched records a validation's differing rows for a table.
func (m *Metrics) Mismatched(table string, rows int64) {
	if m != nil {
		m.mismatched.WithLabelValues(table).Set(float64(rows))
	}
}

// Sides records which side is live and whether the other is closed.
func (m *Metrics) Sides(live, other string, closed bool) {
	if m == nil {
		return
	}
	m.live.WithLabelValues(live).Set(1)
	m.live.WithLabelValues(other).Set(0)
	m.closed.WithLabelValues(live).Set(0)
	v := 0.0
	if closed {
		v = 1
	}
	m.closed.WithLabelValues(other).Set(v)
}

// RetainedWAL records the WAL the slot keeps on the source.
func (m *Metrics) RetainedWAL(bytes int64) {
	if m != nil {
		m.retainedWAL.Set(float64(bytes))
	}
}
