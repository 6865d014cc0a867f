package cutover

import (
	"context"
	"time"
)

// Side is one of the two databases of a migration.
type Side int

// The sides: the source the applications leave, the target they move to.
const (
	Source Side = iota
	Target
)

func (sd Side) String() string {
	if sd == Target {
		return "target"
	}
	return "source"
}

// Other is the side that is not sd.
func (sd Side) Other() Side { return 1 - sd }

// What the checklists ask of an engine, one interface per capability. Each action says
// what it did (the runbook's detail); with a dry run it prints what it would do. What
// an undo needs is recorded by the engine, not kept in memory: the undo may run in
// another process, after a crash.

// Runs keeps the runs of a migration, where the operator cannot lose them.
type Runs interface {
	Store
	// Begin makes r the run the actions act for: what they record names its ID.
	Begin(r *Run)
	// Interrupted is the last run of kind that did not finish (the process stopped
	// during it) or whose undos did not all succeed; nil when there is none.
	Interrupted(ctx context.Context, kind string) (*Run, error)
	// ExpectedDowntime is the write downtime the last run of kind measured; 0 when none.
	ExpectedDowntime(ctx context.Context, kind string) time.Duration
	// Reconnect opens again what a step left closed (a step the budget interrupted may
	// lose its connection): the undos run on it.
	Reconnect(ctx context.Context) error
}

// Gates decide whether a run may begin; they change nothing but the migration's phase.
type Gates interface {
	// CheckGates checks that a run of kind (switch or rollback) can begin and, when it
	// can, sets the migration's phase to the run's.
	CheckGates(ctx context.Context, kind string) (string, error)
	// UndoGates sets back the phase the gates of kind set, and only that one: gates
	// that refused set none.
	UndoGates(ctx context.Context, kind string) (string, error)
}

// Validation compares the two sides during a switch.
type Validation interface {
	// Tracked reports whether the running replication records the keys it changes:
	// then the validation inside the window compares only those.
	Tracked() bool
	// ValidateBeforeBlock brings every table's validation up to the moment before
	// the block, while the users still write.
	ValidateBeforeBlock(ctx context.Context) (string, error)
	// ValidateWindow compares, inside the window, what changed since.
	ValidateWindow(ctx context.Context) (string, error)
}

// Blocker stops and gives back the writes of a side's users.
type Blocker interface {
	Block(ctx context.Context, sd Side) (string, error)
	Unblock(ctx context.Context, sd Side) (string, error)
}

// Jobs are a side's scheduled jobs.
type Jobs interface {
	SuspendJobs(ctx context.Context, sd Side) (string, error)
	// ResumeJobs gives sd its suspended jobs back, and drops the copies a switch made
	// of them on the other side.
	ResumeJobs(ctx context.Context, sd Side) (string, error)
}

// Replication is the change stream out of a side into the other.
type Replication interface {
	// Sync waits until the other side has applied every change made on from.
	Sync(ctx context.Context, from Side) (string, error)
	// StopReplication stops the stream out of from and waits until it is idle.
	StopReplication(ctx context.Context, from Side) (string, error)
	ResumeReplication(ctx context.Context, from Side) (string, error)
}

// Sequences sets the other side's sequences: replication does not carry them.
type Sequences interface {
	// CopySequences sets every sequence on the other side from its value on from.
	CopySequences(ctx context.Context, from Side) (string, error)
}

// Objects are what the target got after the load: indexes, constraints, triggers.
type Objects interface {
	// SecondaryObjects makes the target's match the source's.
	SecondaryObjects(ctx context.Context) (string, error)
}

// Reverse is the replication from the target back to the source after a switch: it
// keeps the source able to take over again (cutover rollback).
type Reverse interface {
	// PrepareReverse creates, before the block, what reverse replication streams
	// through; UnprepareReverse drops it.
	PrepareReverse(ctx context.Context) (string, error)
	UnprepareReverse(ctx context.Context) (string, error)
	// StartReverse starts it from the target's position now; DropReverse stops it
	// and drops what it streamed through.
	StartReverse(ctx context.Context) (string, error)
	DropReverse(ctx context.Context) (string, error)
	// EndReverse ends it after a rollback: forward replication resumes.
	EndReverse(ctx context.Context) (string, error)
}

// QA checks the target before its users come: the plan's assertions, the approval.
type QA interface {
	QA(ctx context.Context) (string, error)
}

// Unlocker ends the write downtime on a side.
type Unlocker interface {
	// Unlock opens sd to its users and its jobs, and records the migration's phase
	// after the run.
	Unlock(ctx context.Context, sd Side) (string, error)
	// Relock undoes an Unlock that failed, or was interrupted, before it was recorded
	// done: sd is closed again, so that two sides never take writes at once.
	Relock(ctx context.Context, sd Side) (string, error)
}

// Sides is an engine's two databases as a switch or a rollback acts on them.
type Sides interface {
	Runs
	Gates
	Validation
	Blocker
	Jobs
	Replication
	Sequences
	Objects
	Reverse
	QA
	Unlocker
}

// Titler is an engine whose own words for some steps are better than the checklist's,
// whose titles name PostgreSQL's mechanisms (publications, NOLOGIN, pg_cron).
type Titler interface {
	// StepTitle is the title of the step of kind (switch or rollback) named step; ""
	// keeps the checklist's.
	StepTitle(kind, step string) string
}
