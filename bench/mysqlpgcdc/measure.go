package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cutover-dev/cutover/bench/internal/harness"
	"github.com/cutover-dev/cutover/bench/internal/stat"
	"github.com/cutover-dev/cutover/internal/proc"
	"github.com/cutover-dev/cutover/mytest"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/jackc/pgx/v5"
)

// beats are the heartbeats: written on the source (bench_beat, id 1, 2, ...), their
// arrival on the target polled, each time taken here, on one clock.
type beats struct {
	src    *sql.Conn // the source's, for the writes
	tgt    *pgx.Conn // the target's, for the polls
	tgtPID uint32    // its server process
	every  time.Duration
	cancel context.CancelFunc
	polled chan struct{} // closed when the poller has returned

	mu      sync.Mutex
	sent    []time.Time // by id-1: when its INSERT returned
	arrived []time.Time // by id-1: the start of the first poll that saw it
	err     error       // the poller's, when it stopped on one
}

// newBeats opens the connections and starts polling the target.
func newBeats(ctx context.Context, srcPool *sql.DB, tgt *pgtest.Server, every time.Duration) (*beats, error) {
	src, err := srcPool.Conn(ctx)
	if err != nil {
		return nil, err
	}
	conn, err := tgt.Connect(ctx, byCutover)
	if err != nil {
		src.Close()
		return nil, err
	}
	b := &beats{src: src, tgt: conn, tgtPID: conn.PgConn().PID(), every: every, polled: make(chan struct{})}
	ctx, b.cancel = context.WithCancel(ctx)
	go b.pollTarget(ctx)
	return b, nil
}

// write writes the next beat on the source and returns its id.
func (b *beats) write(ctx context.Context) (int64, error) {
	b.mu.Lock()
	id := int64(len(b.sent) + 1)
	b.mu.Unlock()
	if _, err := b.src.ExecContext(ctx, "INSERT INTO bench_beat VALUES (?, now(6))", id); err != nil {
		return 0, fmt.Errorf("heartbeat %d: %w", id, err)
	}
	at := time.Now()
	b.mu.Lock()
	b.sent = append(b.sent, at)
	b.mu.Unlock()
	return id, nil
}

// writeEvery writes a beat every period until stop closes; it returns the first error.
func (b *beats) writeEvery(ctx context.Context, period time.Duration, stop <-chan struct{}) error {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-t.C:
		}
		if _, err := b.write(ctx); err != nil {
			return err
		}
	}
}

// pollTarget reads the target's highest beat every b.every until ctx ends.
func (b *beats) pollTarget(ctx context.Context) {
	defer close(b.polled)
	for {
		start := time.Now()
		var n int64
		err := b.tgt.QueryRow(ctx, "SELECT coalesce(max(id), 0) FROM "+sourceDB+".bench_beat").Scan(&n)
		b.mu.Lock()
		if err != nil {
			if ctx.Err() == nil {
				b.err = fmt.Errorf("the target's heartbeats: %w", err)
			}
			b.mu.Unlock()
			return
		}
		for int64(len(b.arrived)) < n {
			b.arrived = append(b.arrived, start)
		}
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(start.Add(b.every))):
		}
	}
}

// waitArrived waits until the target holds beat id; cutover must stay up meanwhile.
func (b *beats) waitArrived(id int64, timeout time.Duration, p *harness.Process) error {
	deadline := time.After(timeout)
	for {
		b.mu.Lock()
		n, err := int64(len(b.arrived)), b.err
		b.mu.Unlock()
		if n >= id {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case <-p.Done:
			return p.Exited()
		case <-deadline:
			return fmt.Errorf("the target did not receive heartbeat %d within %v (it has %d)\n%s", id, timeout, n, p.Tail())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// arrival is when beat id was first seen on the target (zero if not yet).
func (b *beats) arrival(id int64) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if id < 1 || id > int64(len(b.arrived)) {
		return time.Time{}
	}
	return b.arrived[id-1]
}

// latencies are the latencies, in seconds, of the beats written in [from, to], and the
// highest of each window of that time.
func (b *beats) latencies(from, to time.Time, window time.Duration) (all, highest []float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	highest = make([]float64, int((to.Sub(from)+window-1)/window))
	for i, at := range b.sent {
		if at.Before(from) || at.After(to) || i >= len(b.arrived) {
			continue
		}
		l := max(b.arrived[i].Sub(at).Seconds(), 0)
		all = append(all, l)
		if w := int(at.Sub(from) / window); w < len(highest) {
			highest[w] = max(highest[w], l)
		}
	}
	return all, highest
}

// writeCSV writes every beat: its id, when it was written and when it arrived
// (seconds since from), and its latency.
func (b *beats) writeCSV(path string, from time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out strings.Builder
	out.WriteString("id,written_s,arrived_s,latency_s\n")
	for i, at := range b.sent {
		if i >= len(b.arrived) {
			break
		}
		fmt.Fprintf(&out, "%d,%.3f,%.3f,%.3f\n", i+1, at.Sub(from).Seconds(), b.arrived[i].Sub(from).Seconds(), max(b.arrived[i].Sub(at).Seconds(), 0))
	}
	return os.WriteFile(path, []byte(out.String()), 0o644)
}

func (b *beats) close() {
	b.cancel()
	<-b.polled
	b.src.Close()
	b.tgt.Close(context.Background())
}

// window is the span of the highest latencies printed.
const window = 10 * time.Second

// results is what the run under load measured.
type results struct {
	sysbench harness.SysbenchResult
	lat      stat.Dist
	highest  []float64 // by window
	catchUp  time.Duration
	cpu      cpuUse
}

// underLoad runs sysbench while cutover applies and the beats go, then times the
// catch-up to the last beat.
func underLoad(ctx context.Context, c config, src *mytest.Server, tgt *pgtest.Server, p *harness.Process, b *beats) (results, error) {
	var r results
	fmt.Printf("\nunder load: sysbench oltp_read_write --threads=%d --time=%d on the source while cutover applies; a heartbeat every %v\n",
		c.threads, int(c.load.Round(time.Second)/time.Second), c.beat)
	stop := make(chan struct{})
	wrote := make(chan error, 1)
	before, err := readCPU(ctx, src, tgt, p, b.tgtPID)
	if err != nil {
		return r, err
	}
	from := time.Now()
	go func() { wrote <- b.writeEvery(ctx, c.beat, stop) }()
	r.sysbench, err = harness.SysbenchRun(ctx, src, sourceDB, c.tables, c.scale, c.threads, c.load)
	to := time.Now()
	close(stop)
	if werr := <-wrote; err == nil {
		err = werr
	}
	if err != nil {
		return r, err
	}
	last, err := b.write(ctx)
	if err != nil {
		return r, err
	}
	after, err := readCPU(ctx, src, tgt, p, b.tgtPID)
	if err != nil {
		return r, err
	}
	r.cpu = after.since(before)
	r.cpu.sysbench = r.sysbench.CPU
	if err := b.waitArrived(last, c.timeout, p); err != nil {
		return r, err
	}
	r.catchUp = b.arrival(last).Sub(to)
	if c.beatsCSV != "" {
		if err := b.writeCSV(c.beatsCSV, from); err != nil {
			return r, err
		}
	}
	all, highest := b.latencies(from, to, window)
	r.lat, r.highest = stat.DistOf(all), highest
	return r, nil
}

func (r results) print(c config) {
	fmt.Printf("\nunder load (sysbench oltp_read_write --threads=%d --time=%d, %d tables of %d rows):\n", c.threads, int(c.load.Round(time.Second)/time.Second), c.tables, c.scale)
	fmt.Printf("  source: %s\n", r.sysbench)
	fmt.Printf("  target latency (a heartbeat every %v, the target polled every %v): %v\n", c.beat, c.poll, r.lat)
	var hs []string
	for i, h := range r.highest {
		hs = append(hs, fmt.Sprintf("%ds %.3fs", i*int(window/time.Second), h))
	}
	fmt.Printf("  highest latency of the heartbeats written in each %v from the start: %s\n", window, strings.Join(hs, ", "))
	fmt.Printf("  catch-up after sysbench stopped (until the target held the last heartbeat): %v\n", r.catchUp.Round(time.Millisecond))
	fmt.Printf("  %v\n", r.cpu)
	verdict := "met"
	if r.lat.P99 > goal.Seconds() {
		verdict = "NOT met"
	}
	fmt.Printf("\np99 target latency %.3fs (goal <= %.3fs): %s; catch-up %v\n", r.lat.P99, goal.Seconds(), verdict, r.catchUp.Round(time.Millisecond))
}

// cpuUse is the CPU time each part used over a span, and the machine's.
type cpuUse struct {
	wall                                      time.Duration
	cutover, mariadb, postgres, sysbench, all time.Duration
	cutoverWait, postgresWait                 time.Duration // runnable, waiting for a CPU
	sessions, sessionsWait                    time.Duration // cutover's sessions on PostgreSQL: CPU, and waiting for one
	loadBefore, loadAfter                     string
}

func (u cpuUse) String() string {
	known := u.cutover + u.mariadb + u.postgres + u.sysbench
	return fmt.Sprintf("CPU during the run (%v of wall clock, %d CPUs): cutover %v, MariaDB %v, PostgreSQL %v, sysbench %v; the machine %v in all (%.0f%% busy), so %v by everything else; load average %s before, %s after",
		u.wall.Round(100*time.Millisecond), cpus(), u.cutover.Round(10*time.Millisecond), u.mariadb.Round(10*time.Millisecond), u.postgres.Round(10*time.Millisecond),
		u.sysbench.Round(10*time.Millisecond), u.all.Round(10*time.Millisecond), 100*u.all.Seconds()/(u.wall.Seconds()*float64(cpus())),
		max(u.all-known, 0).Round(10*time.Millisecond), u.loadBefore, u.loadAfter) +
		fmt.Sprintf("\n  time spent runnable but waiting for a CPU (the kernel's schedstat): cutover's threads %v, PostgreSQL's processes %v"+
			" (of which cutover's sessions %v, while they used %v of CPU)",
			u.cutoverWait.Round(10*time.Millisecond), u.postgresWait.Round(10*time.Millisecond), u.sessionsWait.Round(10*time.Millisecond), u.sessions.Round(10*time.Millisecond))
}

// cpuSample is a reading of the CPU counters at a moment.
type cpuSample struct {
	at               time.Time
	cutover, mariadb time.Duration
	postgres         map[int]time.Duration // by the server's process
	machine          time.Duration         // every CPU's busy time
	cutoverWait      time.Duration         // its threads' time runnable, waiting for a CPU
	postgresWait     map[int]time.Duration // the same, by the server's process
	sessions         map[int]bool          // cutover's sessions' processes (in the database it writes, but the poller's)
	load             string
}

// readCPU reads cutover's, the servers' and the machine's CPU counters.
func readCPU(ctx context.Context, src *mytest.Server, tgt *pgtest.Server, p *harness.Process, poller uint32) (cpuSample, error) {
	s := cpuSample{at: time.Now(), cutover: p.CPUSoFar(), mariadb: src.CPU(), postgres: map[int]time.Duration{}}
	out, err := tgt.Psql(ctx, "postgres", "-At", "-c", "SELECT split_part(pg_read_file('postmaster.pid'), E'\\n', 1)")
	if err != nil {
		return s, fmt.Errorf("the target's postmaster: %v\n%s", err, out)
	}
	pm, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return s, fmt.Errorf("the target's postmaster pid %q: %w", out, err)
	}
	s.postgresWait = map[int]time.Duration{}
	for _, pid := range append(proc.Children(pm), pm) {
		s.postgres[pid], s.postgresWait[pid] = proc.CPU(pid), runQueueWait(pid)
	}
	s.cutoverWait = runQueueWait(p.Pid())
	out, err = tgt.Psql(ctx, "postgres", "-At", "-c", fmt.Sprintf("SELECT pid FROM pg_stat_activity WHERE datname = '%s' AND backend_type = 'client backend' AND pid <> %d", byCutover, poller))
	if err != nil {
		return s, fmt.Errorf("cutover's sessions on the target: %v\n%s", err, out)
	}
	s.sessions = map[int]bool{}
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			s.sessions[pid] = true
		}
	}
	s.machine = machineBusy()
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		s.load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return s, nil
}

// since is the use from s0 to s; a PostgreSQL process that ended meanwhile is not counted.
func (s cpuSample) since(s0 cpuSample) cpuUse {
	u := cpuUse{wall: s.at.Sub(s0.at), cutover: s.cutover - s0.cutover, mariadb: s.mariadb - s0.mariadb,
		all: s.machine - s0.machine, loadBefore: s0.load, loadAfter: s.load}
	for pid, t := range s.postgres {
		u.postgres += t - s0.postgres[pid]
		u.postgresWait += s.postgresWait[pid] - s0.postgresWait[pid]
		if s.sessions[pid] && s0.sessions[pid] {
			u.sessions += t - s0.postgres[pid]
			u.sessionsWait += s.postgresWait[pid] - s0.postgresWait[pid]
		}
	}
	u.cutoverWait = s.cutoverWait - s0.cutoverWait
	return u
}

// runQueueWait is the time pid's threads have spent runnable but waiting for a CPU
// (the second field of /proc/PID/task/TID/schedstat, in ns); 0 when it cannot be read.
func runQueueWait(pid int) time.Duration {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var ns int64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if f := strings.Fields(string(b)); err == nil && len(f) >= 2 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			ns += n
		}
	}
	return time.Duration(ns)
}

// machineBusy is the time every CPU of the machine has been busy since boot (from
// /proc/stat: all but idle and iowait, in ticks of 10 ms).
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i != 3 && i != 4 && i < 8 { // idle, iowait; guest time is in user already
			busy += n
		}
	}
	return time.Duration(busy) * 10 * time.Millisecond
}

func cpus() int { return runtime.NumCPU() }
