package load

import (
	"context"
	"fmt"
	"io"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/internal/failpoint"
	"github.com/cutover-dev/cutover/plan"
)

// The full load's checklist, for any pair of engines: FullLoad runs it, resumed from
// the phase the control state records, and asks the engines for each step through
// the interfaces below (PostgreSQL's are in postgres/fullload.go).

// Starter opens a full load: the connections, the source read in the background
// (its tables, and the assessment of a load that begins), the control state.
type Starter interface {
	// Begin reads the control state on the target: Phase New when there is none.
	Begin(ctx context.Context) (control.State, error)
	// ReadSourceAs makes sure the source is read the way the migration's mode needs
	// (a one-shot copy exports a plain snapshot; a replicating load takes a slot's).
	ReadSourceAs(ctx context.Context, copyOnly bool) error
	// Assessment waits for the assessment of a load that begins.
	Assessment() *check.Report
	// SkipAssessment stops the assessment of a load that resumes.
	SkipAssessment()
	// OpenControl creates the control state's tables, or brings them up to date.
	OpenControl(ctx context.Context) error
	// SetState records the migration's state.
	SetState(ctx context.Context, st control.State) error
	// Close ends what the load opened.
	Close(ctx context.Context)
}

// Snapshotter takes the consistent snapshot the tables are copied at, and with it
// the position the change stream starts from (st.Position; a new slot in st.Slot).
// A resumed load takes a new one: the tables it copies start their stream there.
type Snapshotter interface {
	TableList(ctx context.Context, copyOnly bool) error
	Snapshot(ctx context.Context, st *control.State, copyOnly bool) error
}

// SchemaCopier reads the schema at the snapshot and creates it on the target: the
// tables with their keys before the rows (pre-data), the rest after them (post-data),
// then the owners and grants.
type SchemaCopier interface {
	// ReadSchema reads it; announce: say what will not be created, and why.
	ReadSchema(ctx context.Context, announce bool) error
	// TablesPresent counts the tables to migrate that the target has, of total.
	TablesPresent(ctx context.Context) (present, total int, err error)
	CreateTables(ctx context.Context) error
	BuildObjects(ctx context.Context) error
	GiveAccess(ctx context.Context) error
}

// RowCopier copies the rows of every table not loaded yet, at the snapshot.
type RowCopier interface {
	// OpenWorkers opens the workers' connections ahead, while the schema is made.
	OpenWorkers(ctx context.Context)
	CopyTables(ctx context.Context) error
}

// Closer keeps the target closed to the applications' writes until the switch
// (one writable side at every moment).
type Closer interface {
	CloseTarget(ctx context.Context) error
}

// Finisher completes a one-shot copy: its sequences, and its validation at the
// snapshot (validation.after_load).
type Finisher interface {
	CopySequences(ctx context.Context) error
	ValidateAtSnapshot(ctx context.Context) error
}

// Job is a full load as an engine runs it.
type Job interface {
	Starter
	Snapshotter
	SchemaCopier
	RowCopier
	Closer
	Finisher
}

// Words are the engine's words for what FullLoad says.
type Words struct {
	// Complete says where a replicating load leaves the change stream: st's position
	// and slot, and what holds it.
	Complete func(st control.State) string
	// Stream names where the change stream starts (nil: PostgreSQL's slot and
	// position).
	Stream func(st control.State) string
}

// FullLoad runs the full load, or resumes it: the tables with their keys (pre-data),
// the rows from one consistent snapshot, then the secondary objects (post-data) and
// the grants. Each phase is recorded in the control state as it ends, so a rerun
// after a crash goes on from where the last one stopped: tables already loaded are
// kept, partly loaded ones are copied again. It returns the mode it ran in: copyOnly
// for a one-shot copy.
func FullLoad(ctx context.Context, p *plan.Plan, job Job, out io.Writer, disp Display, w Words) (copyOnly bool, err error) {
	defer job.Close(context.WithoutCancel(ctx))
	st, err := job.Begin(ctx)
	if err != nil {
		return false, err
	}
	// The mode is the plan's when the load begins; from then on the recorded one.
	copyOnly = !p.CDC.Enabled
	if st.Phase != control.PhaseNew {
		copyOnly = st.Mode == control.ModeCopy
		if copyOnly != !p.CDC.Enabled {
			disp.Step(fmt.Sprintf("this migration is %s (recorded in the control schema %s); the plan's cdc.enabled: %t does not change it: cutover finish, then cutover start, to begin another way",
				ModeText(st.Mode), p.ControlSchema, p.CDC.Enabled))
		}
	}
	switch st.Phase {
	case control.PhaseLoaded, control.PhaseCDC, control.PhaseSwitching, control.PhaseSwitched, control.PhaseRollingBack, control.PhaseRolledBack:
		if copyOnly {
			fmt.Fprintf(out, "the copy is complete already (snapshot at position %s); nothing is left on the source. cutover finish drops the control schema\n", st.Position)
			return copyOnly, nil
		}
		where := fmt.Sprintf("slot %s, position %s", st.Slot, st.Position)
		if w.Stream != nil {
			where = w.Stream(st)
		}
		fmt.Fprintf(out, "the full load is complete already (%s)\n", where)
		return copyOnly, nil
	case control.PhaseFinishing, control.PhaseFinished:
		return copyOnly, ErrFinished(p)
	}
	resumed := st.Phase != control.PhaseNew
	if err := job.ReadSourceAs(ctx, copyOnly); err != nil {
		return copyOnly, err
	}
	if st.Phase == control.PhaseNew {
		if report := job.Assessment(); report.Failed() {
			_ = report.WriteText(out)
			return copyOnly, check.ErrNotReady
		}
	} else {
		job.SkipAssessment()
	}
	if err := job.OpenControl(ctx); err != nil {
		return copyOnly, err
	}
	if err := job.TableList(ctx, copyOnly); err != nil {
		return copyOnly, err
	}
	if err := job.Snapshot(ctx, &st, copyOnly); err != nil {
		return copyOnly, err
	}
	failpoint.KillAt("start:snapshot")
	if st.Phase == control.PhaseSchema || st.Phase == control.PhaseLoading {
		job.OpenWorkers(ctx)
	}
	if err := job.ReadSchema(ctx, st.Phase == control.PhaseSchema); err != nil {
		return copyOnly, err
	}
	if st.Phase == control.PhaseSchema {
		if err := createTables(ctx, job, disp, resumed, copyOnly); err != nil {
			return copyOnly, err
		}
		if err := setPhase(ctx, job, &st, control.PhaseLoading); err != nil {
			return copyOnly, err
		}
	}
	if st.Phase == control.PhaseLoading {
		if err := job.CopyTables(ctx); err != nil {
			return copyOnly, err
		}
		if err := setPhase(ctx, job, &st, control.PhasePostData); err != nil {
			return copyOnly, err
		}
	}
	if st.Phase == control.PhasePostData {
		if err := buildObjects(ctx, p, job, &st, copyOnly); err != nil {
			return copyOnly, err
		}
	}
	if copyOnly {
		fmt.Fprintf(out, "copy complete, from a snapshot of the source at position %s. No replication slot, publication or\n"+
			"control schema was left on the source; there is no change stream and nothing to switch. cutover finish drops\n"+
			"the control schema %s on the target.\n", st.Position, p.ControlSchema)
		return copyOnly, nil
	}
	fmt.Fprint(out, w.Complete(st))
	return copyOnly, nil
}

// createTables creates the tables on the target (pre-data), unless the run that
// stopped did; tables cutover did not create stop the load.
func createTables(ctx context.Context, job Job, disp Display, resumed, copyOnly bool) error {
	present, total, err := job.TablesPresent(ctx)
	if err != nil {
		return err
	}
	switch {
	case present == 0:
		disp.Step("creating the schema on the target (pre-data)")
		if err := job.CreateTables(ctx); err != nil {
			return err
		}
		failpoint.KillAt("start:pre-data")
		if !copyOnly {
			// Tables made with default privileges are writable already.
			return job.CloseTarget(ctx)
		}
		return nil
	case resumed && present == total:
		// The pre-data is one transaction: the run that stopped committed it.
		disp.Step("the schema (pre-data) is on the target already")
		return nil
	}
	return fmt.Errorf("the target holds %d of the %d tables to migrate, but cutover did not create them (the state says the schema is not made yet)\n"+
		"fix: drop those tables on the target (or the whole database, and create it again empty), then run cutover start again", present, total)
}

// buildObjects builds what comes after the rows (post-data), gives the owners and
// grants, and, for a one-shot copy, sets its sequences and validates it.
func buildObjects(ctx context.Context, p *plan.Plan, job Job, st *control.State, copyOnly bool) error {
	if err := job.BuildObjects(ctx); err != nil {
		return err
	}
	failpoint.KillAt("start:post-data")
	if err := job.GiveAccess(ctx); err != nil {
		return err
	}
	failpoint.KillAt("start:grants")
	if !copyOnly {
		// The grants just given may open the tables to more roles.
		if err := job.CloseTarget(ctx); err != nil {
			return err
		}
	}
	if copyOnly {
		if err := job.CopySequences(ctx); err != nil {
			return err
		}
	}
	if err := setPhase(ctx, job, st, control.PhaseLoaded); err != nil {
		return err
	}
	if copyOnly && p.Validation.AfterLoad {
		// At the copy's snapshot, still open: what the source held when it was copied.
		return job.ValidateAtSnapshot(ctx)
	}
	return nil
}

func setPhase(ctx context.Context, job Job, st *control.State, phase string) error {
	st.Phase = phase
	return job.SetState(ctx, *st)
}

// ModeText names a migration's mode for messages.
func ModeText(mode string) string {
	if mode == control.ModeCopy {
		return "a one-shot copy (cdc.enabled: false)"
	}
	return "a migration with change data capture"
}

// ErrFinished is a migration cutover finish ended: nothing more runs on it.
func ErrFinished(p *plan.Plan) error {
	return fmt.Errorf("this migration was ended by cutover finish; to migrate again, drop the control schema %s on the target (and the migrated tables), then run cutover start", p.ControlSchema)
}

// Pending sorts the tables of a load by what the control state recorded of them
// (stats): todo are the ones to copy, and of those, partly are the ones a stopped
// run copied part of (a table is marked loading before its first row), which must
// be emptied first: they are copied again whole. A loaded table is kept; a queued
// one was never touched.
func Pending(tables []*Table, stats []control.TableStat) (todo, partly []*Table) {
	state := map[string]string{}
	for _, s := range stats {
		state[s.Schema+"."+s.Table] = s.State
	}
	for _, t := range tables {
		switch state[t.String()] {
		case control.TableLoaded:
			continue
		case control.TableLoading, control.TableError:
			partly = append(partly, t)
		}
		todo = append(todo, t)
	}
	return todo, partly
}
