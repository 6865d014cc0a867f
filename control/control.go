// Package control is the migration's state as the control schema keeps it in the
// target, in terms every engine shares: the phases, the direction replication runs
// in, each table's progress and validation, and where a migration stands (what
// cutover status, /api/status and the dashboard show). An engine stores and reads it
// in its own tables; the commands read it through these types.
package control

import (
	"context"
	"time"
)

// Phases of a migration, in order, as recorded in the control schema's state table.
const (
	PhaseNew      = "new"      // control schema created, nothing else done
	PhaseSchema   = "schema"   // slot and snapshot taken; pre-data being created
	PhaseLoading  = "loading"  // pre-data created; tables being copied
	PhasePostData = "postdata" // every table copied; secondary objects being built
	PhaseLoaded   = "loaded"   // full load complete
	PhaseCDC      = "cdc"      // change data capture running (or stopped, resumable)
	// A switch is running: the source is (being) blocked, the target caught up.
	PhaseSwitching = "switching"
	// The target is live; reverse replication sends its writes to the source.
	PhaseSwitched = "switched"
	// A rollback is running: back from the target to the source.
	PhaseRollingBack = "rolling back"
	// The source is live again; change data capture runs forward again.
	PhaseRolledBack = "rolled back"
)

// PhaseFinishing asks a running cutover start to stop for good: cutover finish sets it,
// the task sees it within a few seconds and stops cleanly.
const PhaseFinishing = "finishing"

// PhaseFinished: cutover finish --keep-control ended the migration.
const PhaseFinished = "finished"

// The direction cutover start replicates in (state.replication): the switch and the
// rollback change it, the running task follows.
const (
	ReplicateForward = "forward" // source to target
	ReplicateStopped = "stopped" // nothing: a switch or rollback holds it
	ReplicateReverse = "reverse" // target to source, after a switch
)

// The modes of a migration (state.mode).
const (
	ModeCDC  = "cdc"  // full load, then change data capture, then a switch
	ModeCopy = "copy" // a one-shot copy: full load from a snapshot with no slot; nothing to switch
)

// Table states in table_stats.
const (
	TableQueued  = "queued"
	TableLoading = "loading"
	TableLoaded  = "loaded"
	TableError   = "error"
	// TableSuspended: CDC stopped applying changes to the table after one failed
	// (cdc.on_error: suspend_table); the exception is in apply_exceptions.
	TableSuspended = "suspended"
	// TableExcluded: the plan left the table out (tables.exclude) after it was loaded:
	// CDC applies no change to it and validation skips it; its copy on the target
	// stays as it was.
	TableExcluded = "excluded"
)

// State is the migration's row in the state table.
type State struct {
	Phase    string
	Slot     string
	Position string // the slot's consistent point: where the change stream starts
	Updated  time.Time
	// Mode is ModeCDC, or ModeCopy for a one-shot copy (cdc.enabled: false): no slot,
	// no change stream. It is recorded once, when the load begins (SetMode).
	Mode string

	Applied           string     // the position of the last source transaction applied
	AppliedCommitTime *time.Time // its commit time on the source
	AppliedAt         *time.Time // when the target committed it
}

// TableStat is a table's row in table_stats.
type TableStat struct {
	Schema, Table  string
	State          string
	Rows, Bytes    int64
	EstimatedBytes int64
	Started, Ended *time.Time
	Position       string // the snapshot this table was copied at
	SourceOID      uint32 // the table's oid on the source (0: not known)
	Error          string

	Inserts, Updates, Deletes, Truncates int64 // changes applied by CDC

	Validation           string     // pending, validated, mismatched, no key, error
	ValidatedAt          *time.Time // the end of the last validation of the table
	ValidationMismatches int64      // rows that differed then
	ValidationError      string
	ValidatedPosition    string // the point of the change stream the last validation read at
}

// Validation states of a table in table_stats.
const (
	ValidationPending    = "pending"    // not validated since it was loaded
	ValidationValidated  = "validated"  // equal, row by row
	ValidationMismatched = "mismatched" // rows differ: validation_failures lists them
	ValidationNoKey      = "no key"     // no key: equal as a whole (count and multiset hash)
	ValidationError      = "error"      // the validation could not run: validation_error says why
)

// Store keeps the control state where the operator finds it: in the target, in the
// engine's own tables (PostgreSQL: the control schema). Every write is committed when
// it returns.
type Store interface {
	// State reads the migration's state.
	State(ctx context.Context) (State, error)
	// SetState records it.
	SetState(ctx context.Context, s State) error
	// SetMode records the migration's mode once, when the load begins.
	SetMode(ctx context.Context, mode string) error
	// QueueTables records the tables to load, as queued; those recorded before keep
	// their state.
	QueueTables(ctx context.Context, tables []TableStat) error
	// TableStats reads every table's progress and validation, by schema and name.
	TableStats(ctx context.Context) ([]TableStat, error)
}
