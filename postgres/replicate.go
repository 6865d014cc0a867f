package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/load"
	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// HeartbeatInterval is how often a heartbeat goes into the source's WAL: a transaction
// with no change that moves the slot and measures the latency while the source is idle.
var HeartbeatInterval = 5 * time.Second

// Replicate streams the source's changes into the target from where the full load (or
// the last run) left off, until ctx ends: a clean stop a rerun resumes from.
func Replicate(ctx context.Context, p *plan.Plan, opts engine.StartOptions) error {
	return replicate(ctx, p, opts, false)
}

// replicate streams from p's source to its target; reverse: p is reversed (the
// migration's target is its source), after a switch.
func replicate(ctx context.Context, p *plan.Plan, opts engine.StartOptions, reverse bool) (err error) {
	disp := opts.Display
	if disp == nil {
		disp = &load.Lines{W: opts.Out}
	}
	tgt, err := ConnectSide(ctx, "target", p.Target)
	if err != nil {
		return err
	}
	defer tgt.Close(context.WithoutCancel(ctx))
	ctl, st, tableFrom, err := resumeReplication(ctx, p, tgt, reverse, disp)
	if err != nil {
		return err
	}
	from := cmp.Or(st.Applied, st.Position)
	a, err := replicationApplier(ctx, p, tgt, ctl, st.Slot, from, opts, reverse, disp)
	if a != nil {
		defer func() {
			if a.ddl.src != nil {
				a.ddl.src.Close(context.WithoutCancel(ctx))
			}
		}()
	}
	if err != nil {
		return err
	}
	a.points.connect = func(ctx context.Context) (*pgx.Conn, error) { return Connect(ctx, p.Target) }
	defer a.points.close(ctx)
	lat := &cdc.Latency{}
	opts.Metrics.LatencyFrom(func() (time.Duration, time.Duration, int) {
		s := lat.At(time.Now())
		return s.Source, s.Target, s.Pending
	})
	var current *stream
	var mu sync.Mutex
	lastCommitted := from
	a.onCommitted = func(pos string, txns int) {
		mu.Lock()
		current.Flushed(pos)
		lastCommitted = pos
		mu.Unlock()
		lat.Applied(txns)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go heartbeat(ctx, p.Source, p.CDC.Heartbeat.D(), disp)
	if p.Validation.Continuous {
		var bg sync.WaitGroup
		bg.Add(1)
		go func() {
			defer bg.Done()
			validateContinuously(ctx, p, disp)
		}()
		defer func() { cancel(); bg.Wait() }()
	}
	finishing := make(chan struct{})
	var finishOnce sync.Once
	go recordLatency(ctx, p, st.Slot, lat, opts.Metrics, func() {
		finishOnce.Do(func() {
			disp.Step("cutover finish asked the task to stop")
			close(finishing)
			cancel()
		})
	}, func(s cdc.Snapshot) {
		mu.Lock()
		pos := lastCommitted
		mu.Unlock()
		disp.Step(fmt.Sprintf("cdc: %d transactions applied, %d pending; latency source %v, target %v; position %s",
			s.Applied, s.Pending, s.Source.Round(time.Millisecond), s.Target.Round(time.Millisecond), pos))
	})
	// The stream allocates per change and keeps little alive: collecting less often
	// spends less CPU (a soft memory limit keeps the heap bounded all the same).
	defer debug.SetGCPercent(debug.SetGCPercent(200))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(128 << 20))
	what := "change data capture"
	if reverse {
		what = "reverse replication (target to source)"
	}
	disp.Step(fmt.Sprintf("%s from slot %s at position %s", what, st.Slot, from))
	// Said once here (the assessment said it before the load): a source it cannot
	// reach now is retried by the stream below.
	if only, err := insertsOnlyTables(ctx, p, st.Slot); err == nil && len(only) > 0 {
		disp.Step(fmt.Sprintf("tables replicated inserts only (cdc.no_identity: inserts_only, no replica identity): %s: their updates and deletes on the %s are not applied",
			listText(only, 10), map[bool]string{false: "source", true: "target"}[reverse]))
	}
	if _, err := tgt.Exec(ctx, "UPDATE "+ctl.table("state")+" SET stopped_at = NULL, stop_error = ''"); err != nil {
		return fmt.Errorf("target: record that replication runs: %w", err)
	}
	defer func() { recordStop(context.WithoutCancel(ctx), p, err) }()
	retry := &cdc.Retry{First: time.Second, Max: 30 * time.Second, GiveUp: RetryFor, Retryable: retryable, Say: disp.Step}
	tgtSide := &followTarget{a: a, p: p, say: disp.Step}
	defer tgtSide.close(context.WithoutCancel(ctx))
	srcSide := &followSource{p: p, slot: st.Slot, tableFrom: tableFrom, lat: lat, opened: func(s *stream) {
		mu.Lock()
		current = s
		mu.Unlock()
	}}
	return cdc.Follow(ctx, srcSide, tgtSide, retry, func(pos string) string {
		select {
		case <-finishing:
			return fmt.Sprintf("%s stopped at position %s for cutover finish", what, pos)
		default:
			return fmt.Sprintf("%s stopped at position %s", what, pos)
		}
	}, lat.Reset)
}

// resumeReplication reads where replication goes on from: the state (refused for a
// one-shot copy, or before the load's end), the positions of tables copied at a
// later snapshot than the slot's; forward, the tables the plan now leaves out are
// marked so. A loaded migration enters its CDC phase.
func resumeReplication(ctx context.Context, p *plan.Plan, tgt *pgx.Conn, reverse bool, disp load.Display) (*Control, control.State, map[string]string, error) {
	ctl, err := OpenControl(ctx, tgt, p.ControlSchema)
	if err != nil {
		return nil, control.State{}, nil, err
	}
	st, err := ctl.State(ctx)
	if err != nil {
		return nil, st, nil, err
	}
	if st.Phase == control.PhaseFinishing || st.Phase == control.PhaseFinished {
		return nil, st, nil, load.ErrFinished(p)
	}
	if st.Mode == control.ModeCopy {
		return nil, st, nil, fmt.Errorf("the migration %s is a one-shot copy (cdc.enabled: false): it has no replication slot and no change stream to follow; cutover finish, then cutover start with cdc.enabled: true, to migrate with change data capture", p.ControlSchema)
	}
	switch st.Phase {
	case control.PhaseLoaded, control.PhaseCDC, control.PhaseSwitching, control.PhaseSwitched, control.PhaseRollingBack, control.PhaseRolledBack:
	default:
		return nil, st, nil, fmt.Errorf("change data capture starts after the full load, which is at phase %s: run cutover start", st.Phase)
	}
	stats, err := ctl.TableStats(ctx)
	if err != nil {
		return nil, st, nil, err
	}
	tableFrom := map[string]string{}
	for _, t := range stats {
		if t.Position != "" && t.Position != st.Position {
			tableFrom[t.Schema+"."+t.Table] = t.Position
		}
	}
	if !reverse {
		if err := excludeLeftOut(ctx, p, ctl, stats, disp); err != nil {
			return nil, st, nil, err
		}
	}
	if st.Phase == control.PhaseLoaded {
		st.Phase = control.PhaseCDC
		if err := ctl.SetState(ctx, st); err != nil {
			return nil, st, nil, err
		}
	}
	return ctl, st, tableFrom, nil
}

// replicationApplier makes the applier that goes on from position from, and records
// whether it tracks the rows it changes. The caller closes its source connection
// (a.ddl.src) when it is returned, even with an error.
func replicationApplier(ctx context.Context, p *plan.Plan, tgt *pgx.Conn, ctl *Control, slot, from string, opts engine.StartOptions, reverse bool, disp load.Display) (*applier, error) {
	a, err := newApplier(ctx, tgt, p.ControlSchema, slot, p.CDC.OnError, from)
	if err != nil {
		return nil, err
	}
	a.metrics = opts.Metrics
	a.ddl = ddlOptions{plan: p, say: disp.Step, byHand: opts.SchemaApplied}
	if !reverse {
		// A source out of reach is retried by the stream below; until then a column it
		// adds stops CDC as a change the target cannot take (the safe side).
		if a.ddl.captured, err = captureInstalled(ctx, p, slot); err != nil {
			a.ddl.captured = true
			disp.Step(fmt.Sprintf("whether the source's schema changes are captured is not known (%v): a column it adds stops CDC", err))
		}
	}
	// Reverse replication marks what it applies to the source, so that forward
	// replication, resumed after a rollback, does not send it back to the target.
	a.mark = reverse
	// Changes are tracked from here on, or no longer: an incremental validation trusts
	// the changed keys only for tables validated since tracking began.
	a.track = p.Validation.Tracking()
	if a.track {
		_, err = tgt.Exec(ctx, "UPDATE "+ctl.table("state")+" SET changes_tracked_from = $1 WHERE changes_tracked_from = ''", from)
	} else {
		_, err = tgt.Exec(ctx, "UPDATE "+ctl.table("state")+" SET changes_tracked_from = ''")
	}
	if err != nil {
		return a, fmt.Errorf("target: record whether changes are tracked: %w", err)
	}
	return a, nil
}

// followSource opens the slot's stream for cdc.Follow.
type followSource struct {
	p         *plan.Plan
	slot      string
	tableFrom map[string]string // tables copied at a later snapshot than the slot's: their position
	lat       *cdc.Latency
	opened    func(*stream) // the stream the applier's commits are acknowledged to
	// settings are the replication session's, over the URL's (nil: none)
	settings map[string]string
	// first is the position to start from while the target has committed nothing
	// (reverse replication's first run: the slot's creation point)
	first string
}

var _ cdc.Source = (*followSource)(nil)

func (f *followSource) Open(ctx context.Context, from string) (cdc.Stream, error) {
	from = cmp.Or(from, f.first)
	all, insertsOnly := publications(f.slot)
	s, err := openStream(ctx, f.p.Source, f.slot, []string{all, insertsOnly}, from, f.tableFrom, f.lat, f.settings)
	if err != nil {
		return nil, err
	}
	f.opened(s)
	return s, nil
}

// followTarget is the applier as cdc.Follow's target.
type followTarget struct {
	a     *applier
	p     *plan.Plan
	say   func(string)
	conns []*pgx.Conn // the connections it opened again, closed when replication ends
}

var (
	_ cdc.Target = (*followTarget)(nil)
	_ cdc.Stream = (*stream)(nil)
)

// Connect opens the target again after a fault closed the applier's connection.
func (f *followTarget) Connect(ctx context.Context) error {
	if !f.a.conn.IsClosed() {
		return nil
	}
	conn, err := Connect(ctx, f.p.Target)
	if err != nil {
		return err
	}
	f.conns = append(f.conns, conn)
	return f.a.attach(ctx, conn)
}

func (f *followTarget) Apply(ctx context.Context, events <-chan cdc.Event) error {
	return f.a.Run(ctx, events)
}

func (f *followTarget) Committed() string { return f.a.group.Committed() }

// Carefully: the applier asked for the transaction at careful.pos to be applied
// change by change.
func (f *followTarget) Carefully(err error) bool {
	var careful *retryCarefully
	if !errors.As(err, &careful) {
		return false
	}
	f.say(fmt.Sprintf("%v: applying the source transaction at %s change by change", careful.cause, careful.pos))
	f.a.careful, f.a.pastCareful = careful.pos, false
	return true
}

func (f *followTarget) Disconnect(ctx context.Context) { f.a.conn.Close(context.WithoutCancel(ctx)) }

func (f *followTarget) close(ctx context.Context) {
	for _, c := range f.conns {
		c.Close(ctx)
	}
}

// excludeLeftOut marks the loaded tables the plan now leaves out (tables.exclude
// changed since the load) as excluded: their changes are no longer applied, and a
// change that failed on one of them no longer stops the task.
func excludeLeftOut(ctx context.Context, p *plan.Plan, ctl *Control, stats []control.TableStat, disp interface{ Step(string) }) error {
	var leftOut []control.TableStat
	for _, t := range stats {
		if t.State != control.TableExcluded && !p.Tables.Includes(t.Schema, t.Table) {
			leftOut = append(leftOut, t)
		}
	}
	if len(leftOut) == 0 {
		return nil
	}
	// A partition goes with its partitioned table: the plan's patterns name roots.
	src, err := ConnectSide(ctx, "source", p.Source)
	if err != nil {
		return err
	}
	defer src.Close(context.WithoutCancel(ctx))
	all, err := listRelations(ctx, src)
	if err != nil {
		return fmt.Errorf("source: list the tables: %w", err)
	}
	included, _ := selectTables(all, p)
	in := map[[2]string]bool{}
	for _, r := range included {
		in[[2]string{r.schema, r.name}] = true
	}
	for _, t := range leftOut {
		if in[[2]string{t.Schema, t.Table}] {
			continue
		}
		q := pgx.Identifier{t.Schema, t.Table}.Sanitize()
		if err := ctl.tableUpdate(ctx, t.Schema, t.Table, "state = $3, error = $4", control.TableExcluded,
			"left out by the plan (tables.exclude) after its load: its changes are no longer applied"); err != nil {
			return err
		}
		disp.Step(fmt.Sprintf("table %s is left out by the plan now (tables.exclude): its changes are no longer applied, it is not validated, and its copy on the target stays as loaded (drop it there if it should not be migrated)", q))
	}
	return nil
}

// recordStop records that replication stopped, and on which error: a validation
// waiting for the stream says why it does not move. It is no more than a hint: a
// target it cannot reach at once is left alone (a stop is not held up).
func recordStop(ctx context.Context, p *plan.Plan, cause error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	tgt, err := Connect(ctx, p.Target)
	if err != nil {
		return
	}
	defer tgt.Close(ctx)
	msg := ""
	if cause != nil {
		msg = cause.Error()
	}
	_, _ = tgt.Exec(ctx, "UPDATE "+pgx.Identifier{p.ControlSchema, "state"}.Sanitize()+" SET stopped_at = now(), stop_error = $1", msg)
}

// RetryFor is how long CDC keeps retrying a connection fault before it stops.
var RetryFor = 10 * time.Minute

// retryable says whether an error is a connection fault that may heal: the server
// went away, restarted, or refused connections for a while.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "57P"), // admin shutdown, crash shutdown, cannot connect now
			pgErr.Code == "55006",                // the slot is still held by a walsender that is going away
			pgErr.Code == "53300":                // too many connections
			return true
		}
		return false
	}
	var netErr net.Error
	var connErr *pgconn.ConnectError
	return errors.As(err, &netErr) || errors.As(err, &connErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		pgconn.SafeToRetry(err) || strings.Contains(err.Error(), "conn closed") || strings.Contains(err.Error(), "unexpected EOF")
}

// writeHeartbeat writes a heartbeat into the source's WAL, in one round trip: a
// transactional message, whose commit (synchronous_commit on) flushes the WAL past
// everything written before it. A commit that wrote no WAL of its own, such as
// txid_current()'s, is asynchronous: it waits for the WAL writer, up to
// wal_writer_delay. The message is padded to pad bytes.
func writeHeartbeat(ctx context.Context, conn *pgx.Conn, pad int) error {
	_, err := conn.Exec(ctx, fmt.Sprintf("SET synchronous_commit = on; SELECT pg_logical_emit_message(true, '%s', rpad(now()::text, %d))", heartbeatPrefix, pad))
	return err
}

// heartbeat writes a transactional logical message into the source's WAL now and then.
// A failed heartbeat is reported once until one succeeds again: the stream itself
// notices a source that went away.
// The heartbeat is a transaction with no change: it moves the slot and measures the
// latency when the source is idle.
func heartbeat(ctx context.Context, ep plan.Endpoint, every time.Duration, disp load.Display) {
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	var src *pgx.Conn
	defer func() {
		if src != nil {
			src.Close(context.WithoutCancel(ctx))
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var err error
		if src == nil || src.IsClosed() {
			src, err = Connect(ctx, ep)
		}
		if err == nil {
			err = writeHeartbeat(ctx, src, 0)
		}
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			disp.Step("heartbeat on the source failed: " + err.Error())
			failing = true
		case err == nil:
			failing = false
		}
		if err != nil && src != nil {
			src.Close(ctx)
		}
	}
}
