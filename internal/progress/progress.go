// Package progress shows a full load to the person running it: live progress bars on
// a terminal, plain timestamped lines (load.Lines) in a pipe or a log.
package progress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover-dev/cutover/internal/humanize"
	"github.com/cutover-dev/cutover/load"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// defaultWidth is the width of the bars when the terminal's cannot be read.
const defaultWidth = 100

// New returns the Display for w: bars when w ends on a terminal, plain lines when not.
// w is usually stdout behind a redacting writer, so whether it is a terminal is for
// the caller to say (IsTerminal on the file underneath); the bars take the width of
// os.Stdout.
func New(w io.Writer, terminal bool) load.Display {
	if !terminal {
		return &load.Lines{W: w}
	}
	return &Bars{w: w, width: Width(os.Stdout)}
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// Width is the width of the terminal f, or 100 columns when it has none.
func Width(f *os.File) int {
	if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
		return w
	}
	return defaultWidth
}

// Bars is the Display for a terminal: a bar per table being copied and one for the
// whole load, with each event's line printed above them. Only the running tables have
// a bar, so a load of 500 tables shows about as many bars as it has workers, plus the
// total.
type Bars struct {
	w     io.Writer
	width int

	mu      sync.Mutex
	p       *mpb.Progress // between Begin and End; lines go through it then
	running map[*load.Table]*tableBar
	total   *totalBar
}

var _ load.Display = (*Bars)(nil)

// tableBar is one table's bar. The decorators read the counts from mpb's goroutines,
// hence the atomics; the rest is guarded by Bars.mu.
type tableBar struct {
	bar         *mpb.Bar // from the first progress report on
	t           *load.Table
	clock       clock
	rows, bytes atomic.Int64
	failed      atomic.Bool
	done        int64 // bytes counted towards the estimate: capped below it until loaded
}

// totalBar adds up every table given to Begin. Its position is in estimated bytes (a
// loaded table counts its whole estimate, one being copied at most 99% of it), so it
// reaches the end with the last table; its byte count and rate are what was really
// copied.
type totalBar struct {
	bar         *mpb.Bar
	clock       clock
	tables      int
	estimated   int64
	loaded      atomic.Int64
	bytes, done atomic.Int64
}

func (b *Bars) Step(msg string) { b.println(msg) }

// println prints a timestamped line: above the bars while they are shown, straight to
// the output otherwise (so it keeps its order with what the caller prints there).
func (b *Bars) println(msg string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	line := time.Now().Format("15:04:05.000") + "  " + msg + "\n"
	if b.p != nil {
		if _, err := io.WriteString(b.p, line); err == nil {
			return
		}
	}
	_, _ = io.WriteString(b.w, line)
}

func (b *Bars) Begin(tables []*load.Table) {
	if len(tables) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.p != nil {
		return
	}
	// mpb cannot tell that w ends on a terminal (it is not the *os.File): it is told
	// to redraw anyway, and how wide to draw.
	b.p = mpb.New(mpb.WithOutput(lineStart{b.w}), mpb.WithWidth(b.width), mpb.WithAutoRefresh())
	b.running = map[*load.Table]*tableBar{}
	tb := &totalBar{clock: clock{start: time.Now()}, tables: len(tables)}
	for _, t := range tables {
		tb.estimated += max(t.EstimatedBytes, 0)
	}
	tb.bar = b.p.AddBar(max(tb.estimated, 1), mpb.BarPriority(math.MaxInt32),
		mpb.PrependDecorators(
			decor.Name("total", decor.WCSyncWidthR),
			decor.Any(func(decor.Statistics) string {
				return fmt.Sprintf("%d/%d tables", tb.loaded.Load(), tb.tables)
			}, decor.WCSyncSpace),
		),
		mpb.AppendDecorators(tail(func() bool { return false }, tb.bytes.Load, tb.done.Load, tb.estimated, &tb.clock)...))
	b.total = tb
}

func (b *Bars) Started(t *load.Table) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.p != nil && b.running[t] == nil {
		b.running[t] = &tableBar{t: t, clock: clock{start: time.Now()}}
	}
}

// addBar gives a running table its bar. It has one from its first progress report on,
// so the many tables copied in under a second show only as their loaded line, and the
// bars on screen stay about as many as the tables being copied: a bar that completes
// takes a frame or two to go.
func (b *Bars) addBar(tb *tableBar) error {
	t := tb.t
	bar, err := b.p.Add(max(t.EstimatedBytes, 1), mpb.BarStyle().Build(), mpb.BarRemoveOnComplete(),
		mpb.PrependDecorators(
			decor.Name(t.String(), decor.WCSyncWidthR),
			decor.Any(func(decor.Statistics) string { return fmt.Sprintf("%d rows", tb.rows.Load()) }, decor.WCSyncSpace),
		),
		mpb.AppendDecorators(tail(tb.failed.Load, tb.bytes.Load, tb.bytes.Load, t.EstimatedBytes, &tb.clock)...))
	tb.bar = bar
	return err
}

// Progress moves a running table's bar; a late report for a table already loaded is
// dropped.
func (b *Bars) Progress(t *load.Table, rows, bytes int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	tb := b.running[t]
	if tb == nil {
		return
	}
	b.count(tb, rows, bytes, capped(bytes, t.EstimatedBytes))
	if tb.bar == nil && b.addBar(tb) != nil {
		return
	}
	tb.bar.SetCurrent(tb.done)
}

// count sets a table's rows and bytes and its part of the estimate, and the totals
// with them.
func (b *Bars) count(tb *tableBar, rows, bytes, done int64) {
	tb.rows.Store(rows)
	b.total.bytes.Add(bytes - tb.bytes.Swap(bytes))
	b.total.done.Add(done - tb.done)
	tb.done = done
	// Short of the end until End: a table without an estimate may still be running.
	b.total.bar.SetCurrent(min(b.total.done.Load(), b.total.estimated-1))
}

func (b *Bars) Loaded(t *load.Table, rows, bytes int64, took time.Duration) {
	b.mu.Lock()
	if tb := b.running[t]; tb != nil {
		delete(b.running, t)
		b.count(tb, rows, bytes, max(t.EstimatedBytes, 0))
		b.total.loaded.Add(1)
		tb.clock.stop(took)
		if tb.bar != nil {
			tb.bar.SetCurrent(max(t.EstimatedBytes, 1)) // completes it, and it is removed
		}
	}
	b.mu.Unlock()
	b.println(fmt.Sprintf("loaded %s: %d rows, %s in %v", t, rows, humanize.Bytes(bytes), took.Round(time.Millisecond)))
}

// Failed leaves the table's bar where it stopped, marked failed (stopped, when the run
// was interrupted); the error itself is the caller's to print.
func (b *Bars) Failed(t *load.Table, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if tb := b.running[t]; tb != nil {
		delete(b.running, t)
		tb.failed.Store(!errors.Is(err, context.Canceled))
		tb.clock.stop(time.Since(tb.clock.start))
		if tb.bar != nil {
			tb.bar.Abort(false)
		}
	}
}

// End stops the bars of the tables still running (an interrupt or another table's
// error stopped them), completes or stops the total, and returns once the last frame
// is drawn.
func (b *Bars) End() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.p == nil {
		return
	}
	for t, tb := range b.running {
		tb.clock.stop(time.Since(tb.clock.start))
		if tb.bar != nil {
			tb.bar.Abort(false)
		}
		delete(b.running, t)
	}
	b.total.clock.stop(time.Since(b.total.clock.start))
	if b.total.loaded.Load() == int64(b.total.tables) {
		b.total.bar.SetCurrent(max(b.total.estimated, 1))
	} else {
		b.total.bar.Abort(false)
	}
	b.p.Wait()
	b.p = nil
}

// lineStart begins each of mpb's frames at the first column. A frame moves the cursor
// up over the last one, keeping its column: after the terminal echoed a ^C, the first
// columns of the old frame would stay.
type lineStart struct{ w io.Writer }

func (l lineStart) Write(p []byte) (int, error) {
	if _, err := l.w.Write(append([]byte{'\r'}, p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// clock times a bar; once stopped its rate stays what it was at the end.
// tail is what follows a bar: its percent (and whether it failed or stopped), the
// bytes copied, the rate, and the time left from done against estimated.
func tail(failed func() bool, bytes, done func() int64, estimated int64, c *clock) []decor.Decorator {
	return []decor.Decorator{
		decor.Any(func(s decor.Statistics) string {
			switch {
			case failed():
				return percent(s) + " failed"
			case s.Aborted:
				return percent(s) + " stopped"
			}
			return percent(s)
		}, decor.WCSyncWidth),
		decor.Any(func(decor.Statistics) string { return humanize.Bytes(bytes()) }, decor.WCSyncSpace),
		decor.Any(func(decor.Statistics) string { return rate(bytes(), c.elapsed()) }, decor.WCSyncSpace),
		decor.Any(func(s decor.Statistics) string {
			if s.Completed || s.Aborted {
				return ""
			}
			return eta(done(), estimated, c.elapsed())
		}, decor.WCSyncSpace),
	}
}

type clock struct {
	start time.Time
	took  atomic.Int64 // nanoseconds; 0 while running
}

func (c *clock) stop(took time.Duration) { c.took.CompareAndSwap(0, int64(max(took, 1))) }

func (c *clock) elapsed() time.Duration {
	if took := c.took.Load(); took > 0 {
		return time.Duration(took)
	}
	return time.Since(c.start)
}

// capped is how much of its estimate a table being copied has done: COPY's text is
// not the size of the heap, so it stays below the whole until the table is loaded.
func capped(bytes, estimated int64) int64 {
	if estimated <= 0 {
		return 0
	}
	return min(bytes, estimated*99/100)
}

func percent(s decor.Statistics) string {
	if s.Total <= 0 {
		return "0%"
	}
	return fmt.Sprintf("%d%%", s.Current*100/s.Total)
}

func rate(bytes int64, elapsed time.Duration) string {
	secs := elapsed.Seconds()
	if bytes <= 0 || secs <= 0 {
		return ""
	}
	return humanize.Bytes(int64(float64(bytes)/secs)) + "/s"
}

// eta is the time left at the rate so far to reach the estimate.
func eta(done, estimated int64, elapsed time.Duration) string {
	if done <= 0 || estimated <= done || elapsed <= 0 {
		return ""
	}
	left := time.Duration(float64(estimated-done) / float64(done) * float64(elapsed))
	return "ETA " + left.Round(time.Second).String()
}
