package load

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
)

// Copying rows from one side to the other: a RowsOut reads a chunk of a table on the
// source, inside the load's snapshot; a RowsIn writes it into the table on the target;
// a Pipe (a Worker) streams the one into the other as it is read. The two halves are
// made by the engines of the two sides and agree on the form of the bytes between
// them (between two PostgreSQL servers: COPY's text or binary format).

// RowsOut reads tables' rows on the source.
type RowsOut interface {
	// CopyOut writes the rows of chunk i of t.Chunks to w, calling w.Row for each row.
	CopyOut(ctx context.Context, t *Table, chunk int, w *RowWriter) error
	Close(ctx context.Context) error
}

// RowsIn writes tables' rows on the target.
type RowsIn interface {
	// CopyIn writes the rows of chunk i of t, read from r, into t; rows is how many
	// the target took.
	CopyIn(ctx context.Context, t *Table, chunk int, r io.Reader) (rows int64, err error)
	// Finish completes a table once all its chunks are in: its primary key built, say.
	Finish(ctx context.Context, t *Table) error
	Close(ctx context.Context) error
}

// PipeBuffer is the size of the blocks a Pipe hands from the source to the target:
// unbuffered, each row would be a goroutine handoff and a write of its own.
const PipeBuffer = 256 << 10

// Pipe copies chunks by streaming the rows its Out reads into its In.
type Pipe struct {
	Out RowsOut
	In  RowsIn
}

var _ Worker = (*Pipe)(nil)

// Copy streams chunk i of t from Out into In: Out writes in its own goroutine into a
// buffer whose blocks In reads. moved gets each block's rows and bytes.
func (p *Pipe) Copy(ctx context.Context, t *Table, chunk int, moved func(rows, bytes int64)) (int64, int64, error) {
	pr, pw := io.Pipe()
	w := newRowWriter(pw, moved)
	outErr := make(chan error, 1)
	go func() {
		err := p.Out.CopyOut(ctx, t, chunk, w)
		if err == nil {
			err = w.buf.Flush()
		}
		pw.CloseWithError(err)
		outErr <- err
	}()
	rows, inErr := p.In.CopyIn(ctx, t, chunk, pr)
	pr.CloseWithError(io.ErrClosedPipe) // unblocks the source's writes if the target stopped early
	srcErr := <-outErr
	switch {
	case srcErr != nil && !errors.Is(srcErr, io.ErrClosedPipe):
		return 0, 0, fmt.Errorf("read from the source: %w", srcErr)
	case inErr != nil:
		return 0, 0, fmt.Errorf("write to the target: %w", inErr)
	}
	return rows, w.counted.bytes, nil
}

// Finish completes the table on the target.
func (p *Pipe) Finish(ctx context.Context, t *Table) error { return p.In.Finish(ctx, t) }

// Close closes both halves.
func (p *Pipe) Close(ctx context.Context) error {
	var errs []error
	if p.Out != nil {
		errs = append(errs, p.Out.Close(ctx))
	}
	if p.In != nil {
		errs = append(errs, p.In.Close(ctx))
	}
	return errors.Join(errs...)
}

// RowWriter takes a chunk's rows on their way from the source to the target. Only the
// goroutine of CopyOut uses it.
type RowWriter struct {
	buf     *bufio.Writer
	counted *counter
}

func newRowWriter(w io.Writer, moved func(rows, bytes int64)) *RowWriter {
	c := &counter{w: w, moved: moved}
	return &RowWriter{buf: bufio.NewWriterSize(c, PipeBuffer), counted: c}
}

// Write buffers bytes of the rows.
func (w *RowWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }

// Row counts a row written (or about to be).
func (w *RowWriter) Row() { w.counted.rows++ }

// counter sits below the buffer: it reports, once a block, the bytes it passes on and
// the rows counted since the last block.
type counter struct {
	w        io.Writer
	moved    func(rows, bytes int64)
	rows     int64 // counted by Row
	reported int64 // of rows
	bytes    int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.bytes += int64(n)
	rows := c.rows - c.reported
	c.reported = c.rows
	c.moved(rows, int64(n))
	return n, err
}
