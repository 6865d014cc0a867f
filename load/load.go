// Package load runs a full load: tables split into chunks, copied by parallel
// workers, largest first, each table's progress recorded as it goes.
//
// It knows nothing of the engines: a Worker copies one chunk (PostgreSQL streams
// COPY from a snapshot-bound transaction), a Recorder keeps table state where the
// operator can see it (the control schema).
package load

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover-dev/cutover/internal/failpoint"
)

// Table is one table to copy, split into Chunks parts a worker copies independently.
type Table struct {
	Schema, Name   string
	EstimatedBytes int64
	Chunks         int
}

func (t *Table) String() string { return t.Schema + "." + t.Name }

// Worker copies chunks; each worker is used by one goroutine.
type Worker interface {
	// Copy copies chunk i of Chunks of table t and returns the rows and bytes it moved.
	// While it runs it reports what it moved so far, as increments, through moved
	// (which may be called from another goroutine, never concurrently for one chunk).
	Copy(ctx context.Context, t *Table, chunk int, moved func(rows, bytes int64)) (rows, bytes int64, err error)
	// Finish completes a table once all its chunks are copied (the worker that copied
	// the last one calls it): building its primary key, for instance.
	Finish(ctx context.Context, t *Table) error
	Close(ctx context.Context) error
}

// Recorder keeps each table's state. Progress is called every ProgressInterval for
// each table being copied, with the rows and bytes moved so far (chunks in flight
// included); the other calls once per table.
type Recorder interface {
	Started(ctx context.Context, t *Table) error
	Progress(ctx context.Context, t *Table, rows, bytes int64) error
	Loaded(ctx context.Context, t *Table, rows, bytes int64, took time.Duration) error
	Failed(ctx context.Context, t *Table, err error) error
}

// ProgressInterval is how often a table being copied reports its progress.
var ProgressInterval = time.Second

// Run copies every table with n workers made by newWorker. It stops at the first error,
// records it against its table, and returns it naming the table.
func Run(ctx context.Context, tables []*Table, n int, newWorker func(ctx context.Context) (Worker, error), rec Recorder) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type job struct {
		t     *Table
		chunk int
	}
	ordered := append([]*Table(nil), tables...)
	sort.SliceStable(ordered, func(i, j int) bool { return ordered[i].EstimatedBytes > ordered[j].EstimatedBytes })
	jobs := make(chan job)
	go func() {
		defer close(jobs)
		for _, t := range ordered {
			for c := 0; c < max(t.Chunks, 1); c++ {
				select {
				case jobs <- job{t, c}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()

	p := &progress{tables: map[*Table]*tableProgress{}}
	tickerCtx, stopTicker := context.WithCancel(ctx)
	tickerDone := make(chan struct{})
	go func() {
		defer close(tickerDone)
		p.report(tickerCtx, rec)
	}()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	fail := func(t *Table, err error) {
		errOnce.Do(func() {
			if t != nil {
				err = fmt.Errorf("table %s: %w", t, err)
				_ = rec.Failed(context.WithoutCancel(ctx), t, err)
			}
			firstErr = err
			cancel()
		})
	}
	workers := min(n, countJobs(ordered))
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := newWorker(ctx)
			if err != nil {
				fail(nil, err)
				return
			}
			defer w.Close(context.WithoutCancel(ctx))
			for j := range jobs {
				if err := p.start(ctx, rec, j.t); err != nil {
					fail(j.t, err)
					return
				}
				live, reported := p.live(j.t), &liveCounts{}
				rows, bytes, err := w.Copy(ctx, j.t, j.chunk, func(r, b int64) {
					reported.rows.Add(r)
					reported.bytes.Add(b)
					live.rows.Add(r)
					live.bytes.Add(b)
				})
				if err != nil {
					if ctx.Err() != nil {
						return // another worker failed first, or the run was interrupted
					}
					fail(j.t, err)
					return
				}
				failpoint.KillAt("start:copied:" + j.t.String())
				if err := p.chunkDone(ctx, rec, w, j.t, rows, bytes, live, reported); err != nil {
					fail(j.t, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	stopTicker()
	<-tickerDone
	if firstErr == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return firstErr
}

func countJobs(tables []*Table) int {
	n := 0
	for _, t := range tables {
		n += max(t.Chunks, 1)
	}
	return n
}

// progress aggregates chunk results into table results.
type progress struct {
	mu     sync.Mutex
	tables map[*Table]*tableProgress
}

type tableProgress struct {
	started     time.Time
	done        int
	finished    bool
	rows, bytes int64      // of the chunks done
	inFlight    liveCounts // of the chunks being copied
}

type liveCounts struct{ rows, bytes atomic.Int64 }

func (p *progress) live(t *Table) *liveCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return &p.tables[t].inFlight
}

// report calls rec.Progress every ProgressInterval for each table being copied whose
// counts moved, until ctx ends.
func (p *progress) report(ctx context.Context, rec Recorder) {
	tick := time.NewTicker(ProgressInterval)
	defer tick.Stop()
	type counts struct{ rows, bytes int64 }
	last := map[*Table]counts{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		p.mu.Lock()
		now := map[*Table]counts{}
		for t, tp := range p.tables {
			if !tp.finished {
				now[t] = counts{tp.rows + tp.inFlight.rows.Load(), tp.bytes + tp.inFlight.bytes.Load()}
			}
		}
		p.mu.Unlock()
		for t, c := range now {
			if last[t] != c {
				last[t] = c
				_ = rec.Progress(ctx, t, c.rows, c.bytes) // a missed report is made good by the next one
			}
		}
	}
}

func (p *progress) start(ctx context.Context, rec Recorder, t *Table) error {
	p.mu.Lock()
	_, seen := p.tables[t]
	if !seen {
		p.tables[t] = &tableProgress{started: time.Now()}
	}
	p.mu.Unlock()
	if seen {
		return nil
	}
	return rec.Started(ctx, t)
}

// chunkDone adds a copied chunk to its table; the worker that copied the table's last
// chunk finishes the table.
func (p *progress) chunkDone(ctx context.Context, rec Recorder, w Worker, t *Table, rows, bytes int64, live, reported *liveCounts) error {
	p.mu.Lock()
	tp := p.tables[t]
	tp.done++
	tp.rows += rows
	tp.bytes += bytes
	// The chunk's final counts replace what it reported while running.
	live.rows.Add(-reported.rows.Load())
	live.bytes.Add(-reported.bytes.Load())
	finished := tp.done == max(t.Chunks, 1)
	tp.finished = finished
	r, b, took := tp.rows, tp.bytes, time.Since(tp.started)
	p.mu.Unlock()
	if !finished {
		return nil
	}
	if err := w.Finish(ctx, t); err != nil {
		return err
	}
	failpoint.KillAt("start:finished:" + t.String())
	return rec.Loaded(ctx, t, r, b, took)
}
