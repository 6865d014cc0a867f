package progress

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/load"
)

func fakeTables(n int) []*load.Table {
	tables := make([]*load.Table, n)
	for i := range tables {
		tables[i] = &load.Table{Schema: "public", Name: fmt.Sprintf("t%02d", i), EstimatedBytes: int64(i) * 10000, Chunks: 1}
	}
	return tables // t00 has no estimate, as an empty table on the source
}

// feed drives d as load.Run does: workers copying tables, every tenth long enough to
// report progress, a reporter whose late reports can follow a table's Loaded, steps
// from elsewhere.
func feed(d load.Display, tables []*load.Table, workers int) {
	d.Step("before the copy")
	d.Begin(tables)
	jobs := make(chan *load.Table)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range jobs {
				d.Started(t)
				for i := int64(1); i <= 3 && slow(t); i++ {
					d.Progress(t, i*100, i*t.EstimatedBytes/2) // overtakes the estimate: stays under 100%
				}
				d.Loaded(t, 300, 3*t.EstimatedBytes/2, 5*time.Millisecond)
				d.Progress(t, 200, t.EstimatedBytes) // a late report
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 5 {
			d.Step(fmt.Sprintf("step %d during the copy", i))
		}
	}()
	for _, t := range tables {
		jobs <- t
	}
	close(jobs)
	wg.Wait()
	d.End()
	d.Step("after the copy")
}

func slow(t *load.Table) bool { return strings.HasSuffix(t.Name, "0") }

func TestLinesInAPipe(t *testing.T) {
	var out bytes.Buffer
	d := New(&out, false)
	if _, ok := d.(*load.Lines); !ok {
		t.Fatalf("New(w, false) = %T, want *load.Lines", d)
	}
	tables := fakeTables(8)
	feed(d, tables, 3)
	for _, tbl := range tables {
		if !strings.Contains(out.String(), fmt.Sprintf("  loaded %s: 300 rows, ", tbl)) {
			t.Errorf("no loaded line for %s:\n%s", tbl, out.String())
		}
	}
	if strings.Contains(out.String(), "\x1b[") {
		t.Errorf("escape sequences in a pipe:\n%q", out.String())
	}
}

var cursorUp = regexp.MustCompile(`\x1b\[\d+A\x1b\[J`)

func TestBarsOnATerminal(t *testing.T) {
	var out bytes.Buffer
	d := New(&out, true)
	if _, ok := d.(*Bars); !ok {
		t.Fatalf("New(w, true) = %T, want *Bars", d)
	}
	tables := fakeTables(40)
	feed(d, tables, 4)
	got := out.String()
	for _, tbl := range tables {
		if !strings.Contains(got, fmt.Sprintf("  loaded %s: 300 rows, ", tbl)) {
			t.Errorf("no loaded line for %s", tbl)
		}
	}
	for _, want := range []string{"before the copy\n", "step 4 during the copy\n", "total", "40/40 tables", "100%"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if !cursorUp.MatchString(got) {
		t.Errorf("no cursor movement: the bars were not redrawn")
	}
	// After End the lines go straight out, below the last frame of the bars.
	if i, j := strings.LastIndex(got, "40/40 tables"), strings.Index(got, "after the copy"); j < i {
		t.Errorf("the step after End came before the last frame:\n%q", got)
	}
	// Only the tables that reported progress had a bar: no frame holds more rows than
	// they and the total.
	for _, frame := range cursorUp.FindAllString(got, -1) {
		var n int
		fmt.Sscanf(frame, "\x1b[%dA", &n)
		if n > 5 {
			t.Errorf("a frame of %d bars for 4 slow tables", n)
		}
	}
	if !regexp.MustCompile(`public\.t10 +300 rows \[`).MatchString(got) || regexp.MustCompile(`public\.t11 +\d+ rows`).MatchString(got) {
		t.Errorf("a bar for a fast table or none for a slow one:\n%q", got)
	}
}

// A failed table keeps its bar, marked; the others still copying when the load stops
// are marked stopped, and End returns.
func TestBarsWhenTheLoadStops(t *testing.T) {
	var out bytes.Buffer
	d := New(&out, true)
	tables := fakeTables(6)
	d.Begin(tables)
	var wg sync.WaitGroup
	for _, tbl := range tables[1:4] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.Started(tbl)
			d.Progress(tbl, 10, tbl.EstimatedBytes/4)
		}()
	}
	wg.Wait()
	d.Failed(tables[2], errors.New("boom"))
	d.Failed(tables[3], fmt.Errorf("table %s: %w", tables[3], context.Canceled)) // Ctrl-C
	d.End()
	got := out.String()
	for _, want := range []string{"public.t02", "25% failed", "public.t01", "public.t03", "25% stopped", "0/6 tables", "total"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%q", want, got)
		}
	}
	frames := cursorUp.Split(got, -1)
	bars := 0
	for _, line := range strings.Split(frames[len(frames)-1], "\n") {
		if !strings.HasPrefix(line, "public.t") {
			continue
		}
		bars++
		if strings.Contains(line, "failed") != strings.HasPrefix(line, "public.t02") {
			t.Errorf("last frame: %q", line)
		}
	}
	if bars != 3 {
		t.Errorf("%d bars in the last frame, want 3:\n%q", bars, frames[len(frames)-1])
	}
	if strings.Contains(got, "100%") {
		t.Errorf("a bar reached 100%% without a table loaded:\n%q", got)
	}
}

// A load with nothing left to copy shows no bars at all.
func TestBarsWithNothingToCopy(t *testing.T) {
	var out bytes.Buffer
	d := New(&out, true)
	d.Step("copying 0 tables")
	d.Begin(nil)
	d.End()
	d.Step("done")
	if got := out.String(); strings.Contains(got, "\x1b[") || !strings.HasSuffix(got, "done\n") {
		t.Errorf("output:\n%q", got)
	}
}

func TestCapped(t *testing.T) {
	for _, c := range []struct{ bytes, est, want int64 }{
		{0, 0, 0}, {500, 0, 0}, {50, 100, 50}, {99, 100, 99}, {150, 100, 99}, {10, 1000, 10},
	} {
		if got := capped(c.bytes, c.est); got != c.want {
			t.Errorf("capped(%d, %d) = %d, want %d", c.bytes, c.est, got, c.want)
		}
	}
}
