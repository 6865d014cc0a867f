package cdc

import (
	"context"
	"fmt"
)

// A change stream between two engines: Converting wraps the source engine's Source so
// that its events reach the target engine's Target as that target reads them: each
// table named as on the target, each value converted (the source's text to the
// canonical form, then to the target's text) by a Translator the two engines make
// together. Transactions, their positions and markers pass as they are.

// Translator maps the source's relations to the target's.
type Translator interface {
	// Relation is rel as the target names it, and how each of its columns' values
	// becomes the target's: convert[i] is column i's (nil: the column is not on the
	// target, its value is left out), which may make a value NULL (MySQL's zero
	// dates). Called once per source relation.
	Relation(rel *Relation) (target *Relation, convert []func([]byte) (Value, error), err error)
	// Skip says whether a change to rel in the source transaction at position is in
	// the table's copy already (a table copied again at a later snapshot).
	Skip(rel *Relation, position string) (bool, error)
	// SchemaChange is what to do with a schema change on the source: an error that
	// stops the stream with what to do by hand, or nil to leave it (a change that
	// touches no migrated table).
	SchemaChange(sc *SchemaChange) error
}

// Converting is src with its events converted by t.
func Converting(src Source, t Translator) Source { return &convertingSource{src, t} }

type convertingSource struct {
	src Source
	t   Translator
}

func (c *convertingSource) Open(ctx context.Context, from string) (Stream, error) {
	s, err := c.src.Open(ctx, from)
	if err != nil {
		return nil, err
	}
	return &convertingStream{s: s, t: c.t, rels: map[*Relation]*converted{}}, nil
}

type convertingStream struct {
	s    Stream
	t    Translator
	rels map[*Relation]*converted
}

type converted struct {
	rel     *Relation
	convert []func([]byte) (Value, error)
}

// Run runs the source's stream into a channel of its own and sends on what the
// target reads.
func (c *convertingStream) Run(ctx context.Context, events chan<- Event) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in := make(chan Event, 1000)
	done := make(chan error, 1)
	go func() {
		err := c.s.Run(ctx, in)
		close(in)
		done <- err
	}()
	var txn string
	for ev := range in {
		out, err := c.event(ev, &txn)
		if err != nil {
			cancel()
			for range in { // let the source's stream end
			}
			<-done
			return err
		}
		if out == nil {
			continue
		}
		select {
		case events <- out:
		case <-ctx.Done():
			for range in {
			}
			<-done
			return ctx.Err()
		}
	}
	return <-done
}

// event converts one event; nil for one the target does not get.
func (c *convertingStream) event(ev Event, txn *string) (Event, error) {
	switch e := ev.(type) {
	case *Begin:
		*txn = e.Position
		return e, nil
	case *SchemaChange:
		return nil, c.t.SchemaChange(e)
	case *Change:
		return c.change(e, *txn)
	}
	return ev, nil
}

func (c *convertingStream) change(e *Change, txn string) (Event, error) {
	if e.Op == Truncate {
		out := &Change{Op: Truncate, Cascade: e.Cascade, Restart: e.Restart}
		for _, r := range e.Truncated {
			skip, err := c.t.Skip(r, txn)
			if err != nil {
				return nil, err
			}
			if skip {
				continue
			}
			cr, err := c.relation(r)
			if err != nil {
				return nil, err
			}
			out.Truncated = append(out.Truncated, cr.rel)
		}
		if len(out.Truncated) == 0 {
			return nil, nil
		}
		out.Rel = out.Truncated[0]
		return out, nil
	}
	skip, err := c.t.Skip(e.Rel, txn)
	if err != nil || skip {
		return nil, err
	}
	cr, err := c.relation(e.Rel)
	if err != nil {
		return nil, err
	}
	out := &Change{Op: e.Op, Rel: cr.rel}
	if out.Old, err = cr.row(e.Rel, e.Old); err != nil {
		return nil, err
	}
	if out.New, err = cr.row(e.Rel, e.New); err != nil {
		return nil, err
	}
	return out, nil
}

func (c *convertingStream) relation(r *Relation) (*converted, error) {
	if cr, ok := c.rels[r]; ok {
		return cr, nil
	}
	rel, convert, err := c.t.Relation(r)
	if err != nil {
		return nil, err
	}
	if len(convert) != len(r.Columns) {
		return nil, fmt.Errorf("table %s.%s: %d conversions for %d columns", r.Schema, r.Name, len(convert), len(r.Columns))
	}
	cr := &converted{rel: rel, convert: convert}
	c.rels[r] = cr
	return cr, nil
}

// row converts a row image; nil stays nil.
func (cr *converted) row(rel *Relation, row Row) (Row, error) {
	if row == nil {
		return nil, nil
	}
	out := make(Row, 0, len(cr.rel.Columns))
	for i, v := range row {
		f := cr.convert[i]
		if f == nil {
			continue
		}
		if v.Null || v.Unchanged {
			out = append(out, v)
			continue
		}
		cv, err := f(v.Text)
		if err != nil {
			return nil, fmt.Errorf("table %s.%s, column %s: %w", rel.Schema, rel.Name, rel.Columns[i].Name, err)
		}
		out = append(out, cv)
	}
	return out, nil
}
