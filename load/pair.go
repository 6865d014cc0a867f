package load

import (
	"context"
	"fmt"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/schema"
	"github.com/cutover-dev/cutover/validate"
)

// A full load between two engines (MySQL to PostgreSQL) is a Pair: the source
// engine's half reads the snapshot, the schema and the rows; the target engine's half
// translates the schema into its own, keeps the control state and writes the rows.
// The schema crosses as a schema.Schema, the rows as lines of canonical values (see
// AppendField). Neither half knows the other's engine.

// SourceHalf is the source engine's half of a Pair.
type SourceHalf interface {
	// Open connects to the source.
	Open(ctx context.Context) error
	// TableList reads the plan's tables.
	TableList(ctx context.Context) error
	// Snapshot takes the consistent snapshot the rows are read at: position names it
	// (a copy's by when it was taken); stream names the change stream that starts
	// there ("" for a copy): the one given, recorded by the run that stopped, or a
	// new one.
	Snapshot(ctx context.Context, copyOnly bool, stream string) (position, streamName string, err error)
	// ReadSchema reads the tables and the objects around them, at the snapshot when
	// one is taken; values: and what the values tell the target's schema (MySQL:
	// which date columns hold zero dates, a scan of the tables).
	ReadSchema(ctx context.Context, values bool) (*schema.Schema, error)
	// PlanCopy splits the tables into chunks; Workers is how many read at once.
	PlanCopy(ctx context.Context) ([]*Table, error)
	Workers() int
	// RowsOut opens a reader of chunks, writing rows of canonical values.
	RowsOut(ctx context.Context) (RowsOut, error)
	Close(ctx context.Context)
}

// TargetHalf is the target engine's half of a Pair.
type TargetHalf interface {
	// Begin connects to the target and reads the control state: Phase New when there
	// is none.
	Begin(ctx context.Context) (control.State, error)
	// OpenControl creates the control state's tables, or brings them up to date.
	OpenControl(ctx context.Context) error
	// Store is the control state, once open.
	Store() control.Store
	// Recorder records each table's progress in the control state.
	Recorder(disp Display, position string) Recorder
	// TableName is the name of the source's table t on the target, which the control
	// state records it by.
	TableName(t *Table) (schema, name string)
	// Translate makes the target's schema from the source's: announce says what is
	// not carried, and how the tables change.
	Translate(ctx context.Context, s *schema.Schema, announce func(string)) error
	TablesPresent(ctx context.Context) (present, total int, err error)
	CreateTables(ctx context.Context) error
	// Empty deletes the rows a stopped run copied into a table.
	Empty(ctx context.Context, t *Table) error
	// RowsIn opens a writer of chunks from rows of canonical values; its Finish
	// builds the table's indexes.
	RowsIn(ctx context.Context) (RowsIn, error)
	BuildObjects(ctx context.Context) error
	CloseTarget(ctx context.Context) error
	// SetSequences sets each table's generated keys to go on past the rows copied.
	SetSequences(ctx context.Context) error
	Close(ctx context.Context)
}

// Pair is a full load between two engines: a Job of a SourceHalf and a TargetHalf.
type Pair struct {
	Source  SourceHalf
	Target  TargetHalf
	Display Display
	// Engines names the pair for messages: "MySQL/MariaDB to PostgreSQL".
	Engines string
	// Validate validates every table (a copy's validation.after_load).
	Validate func(ctx context.Context) (*validate.Report, error)

	schema   *schema.Schema
	position string
}

var _ Job = (*Pair)(nil)

func (p *Pair) Begin(ctx context.Context) (control.State, error) {
	if err := p.Source.Open(ctx); err != nil {
		return control.State{}, err
	}
	return p.Target.Begin(ctx)
}

// ReadSourceAs has nothing to redo: the source is read the same way in both modes.
func (p *Pair) ReadSourceAs(context.Context, bool) error { return nil }

// Assessment is cutover check's, run before: the load itself assesses nothing more.
func (p *Pair) Assessment() *check.Report { r := &check.Report{}; r.Finish(); return r }
func (p *Pair) SkipAssessment()           {}

func (p *Pair) OpenControl(ctx context.Context) error { return p.Target.OpenControl(ctx) }

func (p *Pair) SetState(ctx context.Context, st control.State) error {
	return p.Target.Store().SetState(ctx, st)
}

func (p *Pair) Close(ctx context.Context) {
	p.Source.Close(ctx)
	p.Target.Close(ctx)
}

func (p *Pair) TableList(ctx context.Context, _ bool) error { return p.Source.TableList(ctx) }

// Snapshot takes the source's snapshot; a load that begins records it.
func (p *Pair) Snapshot(ctx context.Context, st *control.State, copyOnly bool) error {
	position, stream, err := p.Source.Snapshot(ctx, copyOnly, st.Slot)
	if err != nil {
		return err
	}
	p.position = position
	mode := control.ModeCDC
	if copyOnly {
		mode = control.ModeCopy
	}
	switch st.Phase {
	case control.PhaseNew, control.PhaseSchema:
		*st = control.State{Phase: control.PhaseSchema, Mode: mode, Position: position, Slot: stream}
		if err := p.Target.Store().SetState(ctx, *st); err != nil {
			return err
		}
		if err := p.Target.Store().SetMode(ctx, mode); err != nil {
			return err
		}
		p.Display.Step(fmt.Sprintf("%s from %s, at %s", ModeText(mode), p.Engines, position))
	default:
		p.Display.Step(fmt.Sprintf("resuming the %s phase with a new snapshot at %s", st.Phase, position))
	}
	return nil
}

func (p *Pair) OpenWorkers(context.Context) {}

// ReadSchema reads the source's schema and translates it for the target.
func (p *Pair) ReadSchema(ctx context.Context, announce bool) error {
	s, err := p.Source.ReadSchema(ctx, true)
	if err != nil {
		return err
	}
	p.schema = s
	say := func(string) {}
	if announce {
		say = p.Display.Step
	}
	return p.Target.Translate(ctx, s, say)
}

func (p *Pair) TablesPresent(ctx context.Context) (int, int, error) {
	return p.Target.TablesPresent(ctx)
}

func (p *Pair) CreateTables(ctx context.Context) error { return p.Target.CreateTables(ctx) }
func (p *Pair) CloseTarget(ctx context.Context) error  { return p.Target.CloseTarget(ctx) }

// CopyTables copies every table not loaded yet: a table a stopped run left loading is
// emptied and copied again whole.
func (p *Pair) CopyTables(ctx context.Context) error {
	tables, err := p.Source.PlanCopy(ctx)
	if err != nil {
		return err
	}
	// From here on (the control state, the progress, the target's rows) a table is
	// named as on the target; the source's half knows it by the same Table.
	for _, t := range tables {
		t.Schema, t.Name = p.Target.TableName(t)
	}
	store := p.Target.Store()
	stats := make([]control.TableStat, len(tables))
	for i, t := range tables {
		stats[i] = control.TableStat{Schema: t.Schema, Table: t.Name, EstimatedBytes: t.EstimatedBytes}
	}
	if err := store.QueueTables(ctx, stats); err != nil {
		return err
	}
	done, err := store.TableStats(ctx)
	if err != nil {
		return err
	}
	todo, partly := Pending(tables, done)
	for _, t := range partly {
		if err := p.Target.Empty(ctx, t); err != nil {
			return err
		}
	}
	workers := p.Source.Workers()
	p.Display.Step(fmt.Sprintf("copying %d tables (%d loaded before) with %d workers", len(todo), len(tables)-len(todo), workers))
	p.Display.Begin(todo)
	defer p.Display.End()
	return Run(ctx, todo, workers, func(ctx context.Context) (Worker, error) {
		out, err := p.Source.RowsOut(ctx)
		if err != nil {
			return nil, err
		}
		in, err := p.Target.RowsIn(ctx)
		if err != nil {
			out.Close(ctx)
			return nil, err
		}
		return &Pipe{Out: out, In: in}, nil
	}, p.Target.Recorder(p.Display, p.position))
}

func (p *Pair) BuildObjects(ctx context.Context) error { return p.Target.BuildObjects(ctx) }

// GiveAccess gives none: accounts, roles and grants do not translate between engines.
func (p *Pair) GiveAccess(context.Context) error {
	p.Display.Step("owners and grants are not copied between engines: the tables belong to the migration's role on the target; grant them to the applications' roles before the switch")
	return nil
}

func (p *Pair) CopySequences(ctx context.Context) error { return p.Target.SetSequences(ctx) }

// ValidateAtSnapshot validates every table of a copy (validation.after_load): the
// source as it is now, which a copy assumes quiet.
func (p *Pair) ValidateAtSnapshot(ctx context.Context) error {
	p.Display.Step("validating every table (validation.after_load)")
	rep, err := p.Validate(ctx)
	if err != nil {
		return fmt.Errorf("validation after the load: %w", err)
	}
	p.Display.Step(validate.Summary(rep))
	if !rep.Equal {
		return fmt.Errorf("validation after the load: %w", validate.ErrNotEqual)
	}
	return nil
}
