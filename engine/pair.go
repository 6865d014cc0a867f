package engine

import (
	"context"
	"fmt"
	"io"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/load"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/schema"
	"github.com/cutover-dev/cutover/validate"
)

// A migration between two engines is put together from what each engine does on its
// side: the source engine's PairSource, the target engine's PairTarget. Neither
// knows the other; the schema and the rows cross in engine-neutral forms
// (schema.Schema, canonical values).

// PairSource is an engine that can be the source of a migration to another engine.
type PairSource interface {
	Engine
	// LoadSource is the source's half of a full load of p.
	LoadSource(p *plan.Plan, disp load.Display) load.SourceHalf
	// Feed is the source's change stream for the migration in the state st.
	Feed(ctx context.Context, p *plan.Plan, st control.State) (*ChangeFeed, error)
	// Scanner reads the source's rows for a validation.
	Scanner(ctx context.Context, p *plan.Plan) (*SourceScanner, error)
	// AssessSource runs the source's half of cutover check: what its change stream
	// and the migration's role need there.
	AssessSource(ctx context.Context, p *plan.Plan, opts AssessOptions) *check.Report
}

// SourceScanner reads a source's rows in canonical form, by the source's names.
type SourceScanner struct {
	validate.RowScanner
	// Covers says whether position snap holds the source transaction at txn.
	Covers func(snap, txn string) (bool, error)
	// Point opens a read view of the source and, right after, writes a marker into
	// the source's change stream, which passes it on as SyncMarker(id); it returns
	// the view's position. The scans read in the view until EndSnapshot (or the next
	// Point).
	Point       func(ctx context.Context, id string) (string, error)
	EndSnapshot func()
	Close       func()
}

// ChangeFeed is a source's change stream for a migration to another engine, and what
// the target needs to read it.
type ChangeFeed struct {
	Source cdc.Source
	// Value converts a column's values from the stream's text to the canonical form
	// of the column's type (the column as the source's schema.Schema has it); a value
	// with no canonical form that the migration's rules make NULL (MySQL's zero
	// dates) comes back NULL.
	Value func(c schema.Column) func([]byte) (cdc.Value, error)
	// Covers says whether a table copied at the snapshot position snap holds the
	// source transaction at position txn already.
	Covers func(snap, txn string) (bool, error)
	// Retryable says whether an error of the source is a fault that may heal.
	Retryable func(error) bool
}

// PairTarget is an engine that can be the target of a migration from another
// engine.
type PairTarget interface {
	Engine
	// LoadTarget is the target's half of a full load of p.
	LoadTarget(p *plan.Plan, opts StartOptions, disp load.Display) load.TargetHalf
	// AssessPair checks both sides, the source through its half, and says, before
	// anything is copied, how the source's tables become the target's (the report's
	// Mapping, column by column) and what is not carried (its findings).
	AssessPair(ctx context.Context, p *plan.Plan, src load.SourceHalf, opts AssessOptions) *check.Report
	// ReplicatePair runs cutover start's change data capture: the source's feed
	// (asked for once the target's control state is read) applied to the target, the
	// source's schema read through src.
	// After a switch it runs reverse replication into the source through sw's
	// ReverseApplier.
	ReplicatePair(ctx context.Context, p *plan.Plan, opts StartOptions, src load.SourceHalf, feed func(control.State) (*ChangeFeed, error), sw func() (SwitchSource, error)) error
	// ValidatePair runs cutover validate: the source's rows read through the scanner,
	// by the source's names.
	ValidatePair(ctx context.Context, p *plan.Plan, opts validate.Options, src load.SourceHalf, scanner func() (*SourceScanner, error)) (*validate.Report, error)
	// StatusPair and DashboardPair read where the migration stands, from the
	// target's control state.
	StatusPair(ctx context.Context, p *plan.Plan) (control.Status, error)
	DashboardPair(ctx context.Context, p *plan.Plan) (control.Status, control.Dashboard, error)
	// FinishPair runs cutover finish on the target; src is the source's half of a
	// switch, whose control state (reverse replication's, after a switch) it drops.
	FinishPair(ctx context.Context, p *plan.Plan, out io.Writer, keepControl bool, src func() (SwitchSource, error)) error
	// SwitchPair runs the checklist of kind (switch or rollback), the source's side
	// of it done through src; reverse replication is ReplicatePair's.
	// The source's schema is read through half; validate compares the two sides.
	SwitchPair(ctx context.Context, p *plan.Plan, opts cutover.Options, kind string, half load.SourceHalf,
		validate func(context.Context, validate.Options) (*validate.Report, error), src func() (SwitchSource, error)) (*cutover.Result, error)
	// ApprovePair approves the waiting switch; it returns the run approved.
	ApprovePair(ctx context.Context, p *plan.Plan, by string) (string, error)
}

// PairSwitchSource is a source engine that can take part in a switch to another
// engine, and take the target's writes back by reverse replication.
type PairSwitchSource interface {
	PairSource
	// SwitchSource is the source's database as a switch, a rollback or a finish acts
	// on it.
	SwitchSource(ctx context.Context, p *plan.Plan, opts cutover.Options) (SwitchSource, error)
}

// SwitchSource is what a switch between two engines does on the source: the target
// engine runs the checklist and keeps its runbook; reverse replication's state is kept
// here, with the writes it applies.
type SwitchSource interface {
	// Begin makes r the run the actions act for (what they record names it).
	Begin(r *cutover.Run)
	// Gates lists what stops the block, or reverse replication into the source, each
	// with its fix.
	Gates(ctx context.Context) []string
	// PrepareReverse creates, before the block, the control state reverse replication
	// keeps on the source, and the sync markers' table the feed passes on.
	PrepareReverse(ctx context.Context) (string, error)
	Block(ctx context.Context) (string, error)
	Unblock(ctx context.Context) (string, error)
	SuspendJobs(ctx context.Context) (string, error)
	ResumeJobs(ctx context.Context) (string, error)
	// MoveTriggers drops the source's triggers (recorded first), which would fire
	// again on the rows reverse replication writes; RestoreTriggers creates them again.
	MoveTriggers(ctx context.Context) (string, error)
	RestoreTriggers(ctx context.Context) (string, error)
	// Marker writes the sync marker id: the source's feed passes it on as a
	// cdc.Marker whose ID is SyncMarker(id).
	Marker(ctx context.Context, id string) error
	// MarkerApplied is the last sync marker reverse replication applied here.
	MarkerApplied(ctx context.Context) (string, error)
	// RaiseCounters raises each of the source's auto-increment counters (by table, the
	// source's names) that is below next.
	RaiseCounters(ctx context.Context, next map[string]int64) (string, error)
	// Position is where the source's change stream ends now.
	Position(ctx context.Context) (string, error)
	// Reverse is reverse replication's applier into the source: it takes the
	// canonical values of the source's columns and commits the target's position
	// with the changes.
	Reverse(ctx context.Context) (*ReverseApplier, error)
	// DropControl drops the control state kept on the source; false when there was
	// none.
	DropControl(ctx context.Context) (bool, error)
	Close()
}

// ReverseApplier applies reverse replication's changes to the source.
type ReverseApplier struct {
	Target cdc.Target
	// Committed is the target's position the applier committed last ("" for none).
	Committed string
	// Value converts a canonical value of the source's column c to what Target takes.
	Value func(c schema.Column) func(canonical []byte) (cdc.Value, error)
	// Retryable says whether an error of the source is a fault that may heal.
	Retryable func(error) bool
	// Acknowledge makes Target call each with the position of every group of changes
	// it commits, in its own goroutine.
	Acknowledge func(each func(position string))
}

// SyncMarker is the ID of the cdc.Marker a source's feed passes on for the sync
// marker id a switch wrote (SwitchSource.Marker, or the target's own for reverse
// replication).
func SyncMarker(id string) string { return "sync:" + id }

// pair is a migration from one engine to another.
type pair struct {
	src PairSource
	tgt PairTarget
}

var _ Migration = pair{}

func (m pair) engines() string { return m.src.Name() + " to " + m.tgt.Name() }

func (m pair) lacks(command string) error {
	return fmt.Errorf("cutover %s does not run from %s yet: this cutover runs cutover check, start, status, validate and finish between the two", command, m.engines())
}

// runsPair says why command does not run on a migration between two engines.
func runsPair(m pair, command string) error {
	switch command {
	case "check", "start", "status", "serve", "validate", "finish":
		return nil
	case "switch", "rollback", "approve":
		if _, ok := m.src.(PairSwitchSource); ok {
			return nil
		}
	}
	return m.lacks(command)
}

func (m pair) Assess(ctx context.Context, p *plan.Plan, opts AssessOptions) *check.Report {
	src := m.src.LoadSource(p, &load.Lines{W: io.Discard})
	defer src.Close(context.WithoutCancel(ctx))
	r := m.tgt.AssessPair(ctx, p, src, opts)
	sr := m.src.AssessSource(ctx, p, opts)
	r.Source = sr.Source
	for _, f := range sr.Findings {
		if f.Check == "connect" && r.Has("connect", f.Object) {
			continue // said once
		}
		r.Add(f)
	}
	r.Finish()
	return r
}

// Load runs the full load between the two engines.
func (m pair) Load(ctx context.Context, p *plan.Plan, opts StartOptions) error {
	disp := opts.Display
	if disp == nil {
		disp = &load.Lines{W: opts.Out}
	}
	job := &load.Pair{Source: m.src.LoadSource(p, disp), Target: m.tgt.LoadTarget(p, opts, disp), Display: disp, Engines: m.engines(),
		Validate: func(ctx context.Context) (*validate.Report, error) {
			return m.Validate(ctx, p, validate.Options{BusyPercent: 100})
		}}
	_, err := load.FullLoad(ctx, p, job, opts.Out, disp, load.Words{
		Complete: func(st control.State) string {
			return fmt.Sprintf("full load complete. The change stream starts at position %s of the source (%s).\n", st.Position, st.Slot)
		},
		Stream: func(st control.State) string {
			return fmt.Sprintf("the change stream starts at position %s of the source, %s", st.Position, st.Slot)
		},
	})
	return err
}

// IsCopy says whether the migration is a one-shot copy: recorded so, or about to
// begin as one.
func (m pair) IsCopy(ctx context.Context, p *plan.Plan) (bool, error) {
	tgt := m.tgt.LoadTarget(p, StartOptions{Out: io.Discard}, &load.Lines{W: io.Discard})
	defer tgt.Close(context.WithoutCancel(ctx))
	st, err := tgt.Begin(ctx)
	if err != nil || st.Phase == control.PhaseNew {
		return !p.CDC.Enabled, err
	}
	return st.Mode == control.ModeCopy, nil
}

// Replicate runs the change data capture between the two engines.
func (m pair) Replicate(ctx context.Context, p *plan.Plan, opts StartOptions) error {
	disp := opts.Display
	if disp == nil {
		disp = &load.Lines{W: opts.Out}
	}
	src := m.src.LoadSource(p, disp)
	defer src.Close(context.WithoutCancel(ctx))
	return m.tgt.ReplicatePair(ctx, p, opts, src, func(st control.State) (*ChangeFeed, error) { return m.src.Feed(ctx, p, st) },
		m.switchSource(ctx, p, cutover.Options{Out: io.Discard}))
}

func (m pair) Status(ctx context.Context, p *plan.Plan) (control.Status, error) {
	return m.tgt.StatusPair(ctx, p)
}

func (m pair) Dashboard(ctx context.Context, p *plan.Plan) (control.Status, control.Dashboard, error) {
	return m.tgt.DashboardPair(ctx, p)
}

func (m pair) Validate(ctx context.Context, p *plan.Plan, opts validate.Options) (*validate.Report, error) {
	src := m.src.LoadSource(p, &load.Lines{W: io.Discard})
	defer src.Close(context.WithoutCancel(ctx))
	return m.tgt.ValidatePair(ctx, p, opts, src, func() (*SourceScanner, error) { return m.src.Scanner(ctx, p) })
}

// switchSource is the source's half of a switch.
func (m pair) switchSource(ctx context.Context, p *plan.Plan, opts cutover.Options) func() (SwitchSource, error) {
	return func() (SwitchSource, error) {
		s, ok := m.src.(PairSwitchSource)
		if !ok {
			return nil, m.lacks("switch")
		}
		return s.SwitchSource(ctx, p, opts)
	}
}

func (m pair) Switch(ctx context.Context, p *plan.Plan, opts cutover.Options) (*cutover.Result, error) {
	if err := runsPair(m, "switch"); err != nil {
		return nil, err
	}
	return m.switchPair(ctx, p, opts, "switch")
}

func (m pair) Rollback(ctx context.Context, p *plan.Plan, opts cutover.Options) (*cutover.Result, error) {
	if err := runsPair(m, "rollback"); err != nil {
		return nil, err
	}
	return m.switchPair(ctx, p, opts, "rollback")
}

func (m pair) switchPair(ctx context.Context, p *plan.Plan, opts cutover.Options, kind string) (*cutover.Result, error) {
	half := m.src.LoadSource(p, &load.Lines{W: io.Discard})
	defer half.Close(context.WithoutCancel(ctx))
	validate := func(ctx context.Context, opts validate.Options) (*validate.Report, error) {
		return m.Validate(ctx, p, opts)
	}
	return m.tgt.SwitchPair(ctx, p, opts, kind, half, validate, m.switchSource(ctx, p, opts))
}

func (m pair) Approve(ctx context.Context, p *plan.Plan, by string) (string, error) {
	if err := runsPair(m, "approve"); err != nil {
		return "", err
	}
	return m.tgt.ApprovePair(ctx, p, by)
}

func (m pair) Finish(ctx context.Context, p *plan.Plan, out io.Writer, keepControl bool) error {
	return m.tgt.FinishPair(ctx, p, out, keepControl, m.switchSource(ctx, p, cutover.Options{Out: out}))
}
