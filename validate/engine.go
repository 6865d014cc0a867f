package validate

import (
	"context"
	"errors"
)

// Engine is what the validation of tables (Run) needs of a database engine: the
// tables' sides, the points of the change stream they are read at, the changes
// tracked since a table's last validation, repairs and the record of outcomes.
type Engine interface {
	Sides
	Points
	Changes
	Repairer
	Recorder
}

// Sides describes tables on the source and the target and reads them.
type Sides interface {
	// Describe reads the shapes of these tables (schema, name) on both sides, for Table.
	Describe(ctx context.Context, tables [][2]string) error
	// Table is a described table as both sides compare it, with a Reader of each side.
	// Its error is about the table alone (not on a side, columns missing).
	Table(schema, name string) (t *Table, src, tgt Reader, err error)
	// Chunks splits a table into about n ranges in the source's key order (one range
	// when it has no key), from the source's rows at the current point.
	Chunks(ctx context.Context, t *Table, estimatedRows int64, n int) ([]Range, error)
}

// Point is a point of the change stream both sides were read at.
type Point struct {
	Position string // in the engine's terms; "" when there is no change stream
	// Exact: no change to the table was in flight there. When one was, the rows it
	// changed differ at the point, and only a later point settles them.
	Exact bool
}

// Points gives the reads a point of the change stream: the source and the target each
// at the same position.
type Points interface {
	// AtPoint runs read with both sides at a point: the current one while it may
	// serve, later is false and no change to t was in flight there, else a new one.
	// The point is returned with read's error, too.
	AtPoint(ctx context.Context, t *Table, later bool, read func() error) (Point, error)
	// EndPoint lets the current point go.
	EndPoint(ctx context.Context) error
}

// Changes are the rows changed since a table's last validation, as the engine's
// applier tracks them.
type Changes interface {
	// Tracked says whether every change since position (a table's last validation)
	// is tracked.
	Tracked(position string) bool
	// ChangedKeys are the keys of the rows changed since the table's last validation
	// and of those that differed then, at the current point; whole is true when
	// there are more than most, or they cannot be told (a truncate, say).
	ChangedKeys(ctx context.Context, t *Table, most int64) (keys KeySet, whole bool, err error)
}

// Repairer copies rows again from the source to the target.
type Repairer interface {
	// Repair copies the rows with these keys; repaired is false when it could not
	// (changes to the table were in flight each time) and nothing was written.
	Repair(ctx context.Context, t *Table, keys [][]string) (repaired bool, err error)
}

// Recorder keeps the tables' outcomes where the migration's state is.
type Recorder interface {
	// Record records a table's outcome, maybe with the next ones' (Flush).
	Record(ctx context.Context, tv TableReport) error
	// Flush records the outcomes Record kept back.
	Flush(ctx context.Context) error
}

// Stopping is an error after which no table can be compared either (the change
// stream does not reach the points, say): the validation stops on it, where any
// other error about a table is that table's outcome.
type Stopping interface {
	error
	StopsValidation()
}

// stops reports whether err stops the validation.
func stops(err error) bool {
	var s Stopping
	return errors.As(err, &s)
}
