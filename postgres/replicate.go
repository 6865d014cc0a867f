package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/load"
	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pgx/v5"
)

// HeartbeatInterval is how often a heartbeat goes into the source's WAL: a transaction
// with no change that moves the slot and measures the latency while the source is idle.
var HeartbeatInterval = 5 * time.Second

// reportInterval is how often a running CDC prints where it stands.
const reportInterval = 10 * time.Second

// Replicate streams the source's changes into the target from where the full load (or
// the last run) left off, until ctx ends: a clean stop a rerun resumes from.
func Replicate(ctx context.Context, p *plan.Plan, opts StartOptions) error {
	disp := opts.Display
	if disp == nil {
		disp = &load.Lines{W: opts.Out}
	}
	tgt, err := Connect(ctx, p.Target)
	if err != nil {
		problem, fix := ConnectProblem("target", p.Target, err)
		return fmt.Errorf("%s\nfix: %s", problem, fix)
	}
	defer tgt.Close(context.WithoutCancel(ctx))
	ctl, err := OpenControl(ctx, tgt, p.ControlSchema)
	if err != nil {
		return err
	}
	st, err := ctl.State(ctx)
	if err != nil {
		return err
	}
	if st.Phase != PhaseLoaded && st.Phase != PhaseCDC {
		return fmt.Errorf("change data capture starts after the full load, which is at phase %s: run cutover start", st.Phase)
	}
	from := st.Applied
	if from == "" {
		from = st.Position
	}
	stats, err := ctl.TableStats(ctx)
	if err != nil {
		return err
	}
	tableFrom := map[string]string{}
	for _, t := range stats {
		if t.Position != "" && t.Position != st.Position {
			tableFrom[t.Schema+"."+t.Table] = t.Position
		}
	}
	if st.Phase != PhaseCDC {
		st.Phase = PhaseCDC
		if err := ctl.SetState(ctx, st); err != nil {
			return err
		}
	}

	src, err := Connect(ctx, p.Source)
	if err != nil {
		problem, fix := ConnectProblem("source", p.Source, err)
		return fmt.Errorf("%s\nfix: %s", problem, fix)
	}
	defer src.Close(context.WithoutCancel(ctx))

	a, err := newApplier(ctx, tgt, p.ControlSchema, st.Slot, p.CDC.OnError, from)
	if err != nil {
		return err
	}
	lat := &cdc.Latency{}
	var current *stream
	var mu sync.Mutex
	a.onCommitted = func(pos string, txns int) {
		mu.Lock()
		current.Flushed(pos)
		mu.Unlock()
		lat.Applied(txns)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go heartbeat(ctx, src, disp)
	go report(ctx, lat, disp, func() string {
		mu.Lock()
		defer mu.Unlock()
		return a.committed
	})
	disp.Step(fmt.Sprintf("change data capture from slot %s at position %s", st.Slot, from))
	for {
		all, insertsOnly := publications(st.Slot)
		s, err := openStream(ctx, p.Source, st.Slot, []string{all, insertsOnly}, a.committed, tableFrom)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		s.lat = lat
		mu.Lock()
		current = s
		mu.Unlock()
		runCtx, stop := context.WithCancel(ctx)
		events := make(chan cdc.Event, 10000)
		streamErr := make(chan error, 1)
		go func() { streamErr <- s.Run(runCtx, events) }()
		applyErr := a.Run(runCtx, events)
		stop()
		sErr := <-streamErr
		var retry *retryCarefully
		switch {
		case errors.As(applyErr, &retry):
			disp.Step(fmt.Sprintf("%v: applying the source transaction at %s change by change", retry.cause, retry.lsn))
			a.careful = retry.lsn
			lat.Reset()
			continue
		case applyErr != nil && !errors.Is(applyErr, context.Canceled):
			return applyErr
		case sErr != nil && !errors.Is(sErr, context.Canceled):
			return sErr
		}
		disp.Step(fmt.Sprintf("change data capture stopped at position %s; cutover start resumes from there", a.committed))
		return nil
	}
}

// heartbeat writes a transactional logical message into the source's WAL now and then.
// A failed heartbeat is reported once until one succeeds again: the stream itself
// notices a source that went away.
func heartbeat(ctx context.Context, src *pgx.Conn, disp load.Display) {
	t := time.NewTicker(HeartbeatInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := src.Exec(ctx, "SELECT pg_logical_emit_message(true, $1, now()::text)", heartbeatPrefix)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			disp.Step("heartbeat on the source failed: " + err.Error())
			failing = true
		case err == nil:
			failing = false
		}
	}
}

func report(ctx context.Context, lat *cdc.Latency, disp load.Display, position func() string) {
	t := time.NewTicker(reportInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := lat.At(time.Now())
		disp.Step(fmt.Sprintf("cdc: %d transactions applied, %d pending; latency source %v, target %v; position %s",
			s.Applied, s.Pending, s.Source.Round(time.Millisecond), s.Target.Round(time.Millisecond), position()))
	}
}
