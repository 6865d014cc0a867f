package load

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// lines writes n rows of text, one line each, and fails after them when fail is set.
type lines struct {
	n    int
	fail error
}

func (l *lines) CopyOut(ctx context.Context, t *Table, chunk int, w *RowWriter) error {
	for i := range l.n {
		w.Row()
		if _, err := fmt.Fprintf(w, "%s %d row %d %s\n", t, chunk, i, strings.Repeat("x", 100)); err != nil {
			return err
		}
	}
	return l.fail
}
func (l *lines) Close(context.Context) error { return nil }

// reader counts the lines it reads, and stops after stopAfter of them with fail.
type reader struct {
	got       []string
	stopAfter int
	fail      error
	finished  []string
}

func (r *reader) CopyIn(ctx context.Context, t *Table, _ int, in io.Reader) (int64, error) {
	sc := bufio.NewScanner(in)
	var n int64
	for sc.Scan() {
		if r.fail != nil && int(n) == r.stopAfter {
			return n, r.fail
		}
		r.got = append(r.got, sc.Text())
		n++
	}
	return n, sc.Err()
}
func (r *reader) Finish(ctx context.Context, t *Table) error {
	r.finished = append(r.finished, t.String())
	return nil
}
func (r *reader) Close(context.Context) error { return nil }

func TestPipeStreamsEveryRowAndCountsThem(t *testing.T) {
	const n = 10000 // about 1 MB: several blocks of PipeBuffer
	in := &reader{}
	p := &Pipe{Out: &lines{n: n}, In: in}
	tb := &Table{Schema: "s", Name: "t", Chunks: 3}
	var movedRows, movedBytes int64
	blocks := 0
	rows, bytes, err := p.Copy(context.Background(), tb, 2, func(r, b int64) { movedRows += r; movedBytes += b; blocks++ })
	if err != nil {
		t.Fatal(err)
	}
	if rows != n || len(in.got) != n || in.got[n-1] != fmt.Sprintf("s.t 2 row %d %s", n-1, strings.Repeat("x", 100)) {
		t.Fatalf("%d rows copied, %d read, last %q", rows, len(in.got), in.got[len(in.got)-1])
	}
	if movedRows != n || movedBytes != bytes || bytes < n*100 || blocks < 4 {
		t.Fatalf("reported %d rows and %d bytes in %d blocks; copied %d bytes", movedRows, movedBytes, blocks, bytes)
	}
	if err := p.Finish(context.Background(), tb); err != nil || len(in.finished) != 1 {
		t.Fatalf("finish: %v %q", err, in.finished)
	}
}

// Which side failed is said; a target that stops early does not leave the source
// blocked on a write.
func TestPipeSaysWhichSideFailed(t *testing.T) {
	tb := &Table{Schema: "s", Name: "t", Chunks: 1}
	srcErr := errors.New("snapshot too old")
	_, _, err := (&Pipe{Out: &lines{n: 10, fail: srcErr}, In: &reader{}}).Copy(context.Background(), tb, 0, func(int64, int64) {})
	if !errors.Is(err, srcErr) || !strings.HasPrefix(err.Error(), "read from the source: ") {
		t.Fatalf("source failing: %v", err)
	}
	tgtErr := errors.New("disk full")
	_, _, err = (&Pipe{Out: &lines{n: 100000}, In: &reader{stopAfter: 5, fail: tgtErr}}).Copy(context.Background(), tb, 0, func(int64, int64) {})
	if !errors.Is(err, tgtErr) || !strings.HasPrefix(err.Error(), "write to the target: ") {
		t.Fatalf("target failing: %v", err)
	}
}
