// Package cdc describes a change stream in terms every engine shares: transactions of
// row changes with text-encoded values, read from a source at opaque positions and
// applied to a target that records the position of what it applied in the same
// transaction as the changes.
//
// A source engine (PostgreSQL's pgoutput today, MySQL's binlog tomorrow) turns its
// stream into Events; an applier for the target engine consumes them.
package cdc

import "time"

// Op is the kind of a row change.
type Op byte

// The kinds of change.
const (
	Insert   Op = 'I'
	Update   Op = 'U'
	Delete   Op = 'D'
	Truncate Op = 'T'
)

func (o Op) String() string {
	switch o {
	case Insert:
		return "insert"
	case Update:
		return "update"
	case Delete:
		return "delete"
	case Truncate:
		return "truncate"
	}
	return "unknown"
}

// Relation is a table as the stream describes it. The stream sends it before the
// first change to the table, and again when its definition changes.
type Relation struct {
	ID      uint32 // the stream's identifier for the table
	Schema  string
	Name    string
	Columns []Column
}

// Column is one column of a Relation.
type Column struct {
	Name string
	Key  bool // part of the key updates and deletes identify rows by
	// TypeID is the engine's identifier of the column's type (a PostgreSQL type OID).
	TypeID uint32
	// Type is the column's type as every engine reads it (see Kind): what a target
	// of another engine needs to convert the column's values. Its Kind is KindOther
	// (the zero Type) where the source engine does not fill it: PostgreSQL's change
	// stream leaves it for now, as PostgreSQL to PostgreSQL needs it not.
	Type Type
}

// Value is one column's value in a row: text, NULL, or unchanged (a large value the
// stream leaves out of an update because the update did not touch it).
type Value struct {
	Text      []byte
	Null      bool
	Unchanged bool
}

// Row holds a value per column of its Relation.
type Row []Value

// Event is one of *Begin, *Change, *Commit: a transaction is a Begin, its changes and
// a Commit, delivered in commit order.
type Event interface{ event() }

// Begin starts a transaction.
type Begin struct {
	Position   string    // where the transaction commits, opaque
	CommitTime time.Time // when it committed on the source
	// TxnID is the source's identifier of the transaction (PostgreSQL: its xid), for
	// telling whether a snapshot of the source sees it; 0 when the engine has none.
	TxnID uint64
}

// Change is one row change, or a truncate of one or more tables.
type Change struct {
	Op  Op
	Rel *Relation
	// Old identifies the row for Update and Delete: the key columns (other columns
	// Null), or every column when the table's whole row is its identity. Nil for an
	// Update that did not change the key of a table keyed by its key.
	Old Row
	New Row // for Insert and Update

	Truncated []*Relation // for Truncate: the tables, Rel is the first
	Cascade   bool
	Restart   bool // RESTART IDENTITY
}

// Commit ends a transaction. Position is what the applier records with its changes
// and reports back to the source once the target committed it.
type Commit struct {
	Position   string
	CommitTime time.Time
}

// Marker is a point in the stream a reader asked for (a validation, say): every
// transaction the source committed before it has come before it. It arrives between
// transactions.
type Marker struct {
	ID       string
	Position string
}

// SchemaChange is a schema change the source made inside a transaction (DDL), at its
// place among the transaction's row changes: the changes before it were made with
// the schema before it, the changes after it with the new one.
type SchemaChange struct {
	// Statement is the statement as the source's client sent it.
	Statement string
	// Tag is the kind of statement ("ALTER TABLE"), Context what the statement's
	// unqualified names resolved against (PostgreSQL: its search_path).
	Tag, Context string
	// Objects are what the statement created, changed or dropped.
	Objects []SchemaObject
	// Detail is the source engine's own description (parsed), for its target engine.
	Detail any
}

// SchemaObject is an object a schema change touched.
type SchemaObject struct {
	Kind   string // "table", "index", "table column", ...
	Schema string
	Name   string // the object's name: for a table, the table's; "" when not a relation
	Table  string // the table the object belongs to (its own name for a table), "" if none
	// TableID is the source's identifier of that table (a PostgreSQL oid), 0 if none:
	// it stays the same when the table is renamed.
	TableID uint32
	// Root is, for a partition, the partitioned table at the top of its tree.
	Root    [2]string
	Dropped bool
}

func (*SchemaChange) event() {}
func (*Marker) event()       {}
func (*Begin) event()        {}
func (*Change) event()       {}
func (*Commit) event()       {}

// ApplyError is a change the target could not take, which the policy (cdc.on_error)
// says stops the change stream: the message names the change and the fix.
type ApplyError struct{ Err error }

func (e *ApplyError) Error() string { return e.Err.Error() }
func (e *ApplyError) Unwrap() error { return e.Err }
