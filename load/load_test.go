package load

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// memWorker copies nothing; it reports a fixed number of rows per chunk and records calls.
type memWorker struct {
	log  *callLog
	fail string // table whose chunk 1 fails
}

type callLog struct {
	mu       sync.Mutex
	copied   map[string]int
	finished map[string]int
	loaded   map[string]int64
	failed   map[string]string
	started  []string
}

func (w *memWorker) Copy(ctx context.Context, t *Table, chunk int, _ func(int64, int64)) (int64, int64, error) {
	if t.Name == w.fail && chunk == 1 {
		return 0, 0, errors.New("disk full")
	}
	w.log.mu.Lock()
	w.log.copied[t.Name]++
	w.log.mu.Unlock()
	return 10, 100, ctx.Err()
}

func (w *memWorker) Finish(ctx context.Context, t *Table) error {
	w.log.mu.Lock()
	defer w.log.mu.Unlock()
	if w.log.copied[t.Name] != max(t.Chunks, 1) {
		return errors.New("finished before every chunk was copied")
	}
	w.log.finished[t.Name]++
	return nil
}

func (w *memWorker) Close(context.Context) error { return nil }

func (l *callLog) Started(_ context.Context, t *Table) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.started = append(l.started, t.Name)
	return nil
}
func (l *callLog) Progress(context.Context, *Table, int64, int64) error { return nil }
func (l *callLog) Loaded(_ context.Context, t *Table, rows, _ int64, _ time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.loaded[t.Name] = rows
	return nil
}
func (l *callLog) Failed(_ context.Context, t *Table, err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failed[t.Name] = err.Error()
	return nil
}

func newLog() *callLog {
	return &callLog{copied: map[string]int{}, finished: map[string]int{}, loaded: map[string]int64{}, failed: map[string]string{}}
}

func TestRunCopiesEveryChunkAndFinishesEachTableOnce(t *testing.T) {
	log := newLog()
	tables := []*Table{
		{Schema: "s", Name: "small", EstimatedBytes: 10, Chunks: 1},
		{Schema: "s", Name: "big", EstimatedBytes: 1000, Chunks: 7},
		{Schema: "s", Name: "empty", EstimatedBytes: 0},
	}
	err := Run(context.Background(), tables, 3, func(context.Context) (Worker, error) { return &memWorker{log: log}, nil }, log)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"small": 10, "big": 70, "empty": 10}
	for name, rows := range want {
		if log.loaded[name] != rows || log.finished[name] != 1 {
			t.Errorf("%s: loaded %d rows, finished %d times", name, log.loaded[name], log.finished[name])
		}
	}
	if log.started[0] != "big" {
		t.Errorf("largest table not first: %v", log.started)
	}
}

func TestRunStopsAtTheFirstErrorAndNamesTheTable(t *testing.T) {
	log := newLog()
	tables := []*Table{{Schema: "s", Name: "a", EstimatedBytes: 100, Chunks: 3}, {Schema: "s", Name: "b", EstimatedBytes: 1}}
	err := Run(context.Background(), tables, 1, func(context.Context) (Worker, error) { return &memWorker{log: log, fail: "a"}, nil }, log)
	if err == nil || err.Error() != "table s.a: disk full" {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(log.failed["a"], "disk full") || log.loaded["a"] != 0 || log.loaded["b"] != 0 {
		t.Fatalf("after the failure: failed %v, loaded %v", log.failed, log.loaded)
	}
}

func TestRunReportsAWorkerThatCannotStart(t *testing.T) {
	err := Run(context.Background(), []*Table{{Name: "x"}}, 2, func(context.Context) (Worker, error) { return nil, errors.New("no connection") }, newLog())
	if err == nil || err.Error() != "no connection" {
		t.Fatalf("err = %v", err)
	}
}

// liveWorker reports part of a chunk, then waits until the recorder saw that part.
type liveWorker struct{ seen chan struct{} }

func (w *liveWorker) Copy(ctx context.Context, t *Table, chunk int, moved func(int64, int64)) (int64, int64, error) {
	moved(5, 50)
	select {
	case <-w.seen:
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	moved(2, 20)
	return 7, 70, nil
}
func (w *liveWorker) Finish(context.Context, *Table) error { return nil }
func (w *liveWorker) Close(context.Context) error          { return nil }

type liveLog struct {
	*callLog
	once     sync.Once
	seen     chan struct{}
	progress [][2]int64
}

func (l *liveLog) Progress(_ context.Context, _ *Table, rows, bytes int64) error {
	l.mu.Lock()
	l.progress = append(l.progress, [2]int64{rows, bytes})
	l.mu.Unlock()
	if rows == 5 && bytes == 50 {
		l.once.Do(func() { close(l.seen) })
	}
	return nil
}

func TestRunReportsRowsOfAChunkStillBeingCopied(t *testing.T) {
	defer func(d time.Duration) { ProgressInterval = d }(ProgressInterval)
	ProgressInterval = time.Millisecond
	seen := make(chan struct{})
	log := &liveLog{callLog: newLog(), seen: seen}
	err := Run(context.Background(), []*Table{{Schema: "s", Name: "t", Chunks: 1}}, 1,
		func(context.Context) (Worker, error) { return &liveWorker{seen: seen}, nil }, log)
	if err != nil {
		t.Fatal(err)
	}
	if log.loaded["t"] != 7 {
		t.Fatalf("loaded %d rows, want the chunk's final 7", log.loaded["t"])
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, p := range log.progress {
		if p[0] > 7 || p[1] > 70 {
			t.Fatalf("progress %v counts more than was copied", p)
		}
	}
}
