package load

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/cutover-dev/cutover/internal/humanize"
)

// Display shows a run to the person who started it: live progress bars on a terminal,
// plain timestamped lines in a pipe or a log (Lines). Its methods may be called from
// several goroutines at once.
type Display interface {
	// Step prints one line about the run: a phase starting, a slot created.
	Step(msg string)
	// Begin is called before the tables are copied, with the tables still to copy.
	Begin(tables []*Table)
	Started(t *Table)
	// Progress reports the rows and bytes copied so far.
	Progress(t *Table, rows, bytes int64)
	Loaded(t *Table, rows, bytes int64, took time.Duration)
	Failed(t *Table, err error)
	// End is called once the copy stopped, whether or not it succeeded; Step may
	// still be called after it.
	End()
}

// LinesEvery is how often Lines prints the progress of a table still being copied.
const LinesEvery = 10 * time.Second

// Lines is the Display for pipes and logs: one timestamped line per event, and a
// progress line per table being copied every LinesEvery.
type Lines struct {
	W io.Writer

	mu   sync.Mutex
	last map[*Table]time.Time
}

var _ Display = (*Lines)(nil)

func (l *Lines) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.W, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func (l *Lines) Step(msg string)      { l.printf("%s", msg) }
func (l *Lines) Begin([]*Table)       {}
func (l *Lines) Started(t *Table)     {}
func (l *Lines) End()                 {}
func (l *Lines) Failed(*Table, error) {}

func (l *Lines) Progress(t *Table, rows, bytes int64) {
	l.mu.Lock()
	if l.last == nil {
		l.last = map[*Table]time.Time{}
	}
	first, ok := l.last[t]
	if !ok {
		l.last[t] = time.Now()
	}
	due := ok && time.Since(first) >= LinesEvery
	if due {
		l.last[t] = time.Now()
	}
	l.mu.Unlock()
	if due {
		l.printf("copying %s: %d rows, %s so far%s", t, rows, humanize.Bytes(bytes), percent(t, bytes))
	}
}

func (l *Lines) Loaded(t *Table, rows, bytes int64, took time.Duration) {
	l.printf("loaded %s: %d rows, %s in %v", t, rows, humanize.Bytes(bytes), took.Round(time.Millisecond))
}

// percent estimates how far a table is from the bytes copied and its size on the
// source: COPY's text is not the size of the heap, so it is capped below 100 until the
// table is done.
func percent(t *Table, bytes int64) string {
	if t.EstimatedBytes <= 0 {
		return ""
	}
	return fmt.Sprintf(" (about %d%%)", min(bytes*100/t.EstimatedBytes, 99))
}
