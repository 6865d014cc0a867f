package mysql

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	sqldriver "database/sql/driver"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	driver "github.com/go-sql-driver/mysql"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/load"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/validate"
)

// RetryFor is how long change data capture keeps retrying a connection fault before
// it stops (the state saved: the next cutover start goes on).
var RetryFor = 10 * time.Minute

// streamSlot is how the state's slot names the stream: MySQL has no slot, but the
// stream reads the binary log as a replica with a server_id of its own, chosen when
// the load begins and kept (a second reader with the same id would end the first).
const streamSlot = "server_id "

// directionPoll is how often a running cutover start reads the direction: it bounds
// how long a switch waits for replication to stop.
const directionPoll = 50 * time.Millisecond

// Replicate runs cutover start's replication after the load between MySQL/MariaDB
// servers, in the direction the control state says (cdc.Directions): forward, the
// source's binary log applied to the target; reverse after a switch, the target's
// applied to the source; until ctx ends or cutover finish asks it to stop.
func Replicate(ctx context.Context, p *plan.Plan, opts engine.StartOptions) error {
	if opts.Display == nil {
		opts.Display = &load.Lines{W: opts.Out}
	}
	tgt, _, err := openSide(ctx, "target", p.Target, 2)
	if err != nil {
		return err
	}
	defer tgt.Close()
	ctl, ok, err := readControl(ctx, tgt, p.ControlSchema)
	if err == nil && !ok {
		err = fmt.Errorf("the target has no control database %s: run cutover start, which loads first", p.ControlSchema)
	}
	if err == nil {
		ctl, err = openControl(ctx, tgt, p.ControlSchema) // an older version's gets the new columns
	}
	if err != nil {
		return err
	}
	read := func(ctx context.Context) (dir, phase string, err error) {
		err = tgt.QueryRowContext(ctx, "SELECT replication, phase FROM "+ctl.table("state")+" WHERE id = 1").Scan(&dir, &phase)
		var me *driver.MySQLError
		if errors.As(err, &me) && (me.Number == 1146 || me.Number == 1049) || errors.Is(err, sql.ErrNoRows) {
			return "", control.PhaseFinishing, nil // cutover finish dropped it
		}
		return dir, phase, err
	}
	err = cdc.Directions{Read: read, Say: opts.Display.Step, Poll: directionPoll, Finished: load.ErrFinished(p),
		Run: func(ctx context.Context, dir string) error {
			if dir == control.ReplicateReverse {
				return replicate(ctx, reversed(p), opts, true)
			}
			return replicate(ctx, p, opts, false)
		}}.Follow(ctx)
	if err == nil && ctx.Err() == nil {
		// Asked to stop by cutover finish, which waits for this.
		if st, serr := ctl.State(context.WithoutCancel(ctx)); serr == nil && st.Phase == control.PhaseFinishing {
			st.Phase = control.PhaseFinished
			return ctl.SetState(context.WithoutCancel(ctx), st)
		}
	}
	return err
}

// reversed is the plan of reverse replication: the target is its source, the source
// its target, where its own control database keeps its position.
func reversed(p *plan.Plan) *plan.Plan {
	r := *p
	r.Source, r.Target = p.Target, p.Source
	r.Validation.Continuous = false
	return &r
}

// replicate streams from p's source to its target: the migration's forward, or its
// reverse replication after a switch (p reversed).
func replicate(ctx context.Context, p *plan.Plan, opts engine.StartOptions, reverse bool) error {
	disp := opts.Display
	if disp == nil {
		disp = &load.Lines{W: opts.Out}
	}
	tgt, tgtDB, err := openSide(ctx, "target", p.Target, 5)
	if err != nil {
		return err
	}
	defer tgt.Close()
	ctl, st, err := resumeReplication(ctx, p, tgt)
	if err != nil {
		return err
	}
	lock, err := takeStreamLock(ctx, tgt, p.ControlSchema)
	if err != nil {
		return err
	}
	defer lock.release()
	serverID, err := strconv.ParseUint(strings.TrimPrefix(st.Slot, streamSlot), 10, 32)
	if err != nil || !strings.HasPrefix(st.Slot, streamSlot) {
		return fmt.Errorf("the control state names no stream (slot %q): cutover finish, then cutover start, to begin again", st.Slot)
	}
	stats, err := ctl.TableStats(ctx)
	if err != nil {
		return err
	}
	srcMaria, err := sideIsMariaDB(ctx, "source", p.Source)
	if err != nil {
		return err
	}
	tgtMaria, err := isMariaDB(ctx, "target", tgt)
	if err != nil {
		return err
	}
	var tables []string
	tableFrom := map[string]string{}
	for _, t := range stats {
		tables = append(tables, t.Table)
		if t.Position != "" && t.Position != st.Position {
			tableFrom[t.Table] = t.Position // copied again at a later snapshot
		}
	}
	src, err := newBinlogSource(p.Source, srcMaria, uint32(serverID), tables, p.CDC.Heartbeat.D())
	if err != nil {
		return err
	}
	src.control = p.ControlSchema
	from := cmp.Or(st.Applied, st.Position)
	a := newApplier(tgt, tgtDB, tgtMaria, ctl, from)
	a.tableFrom, a.mariadbSource, a.schemaApplied = tableFrom, srcMaria, opts.SchemaApplied
	a.replayDDL = p.CDC.DDL == plan.DDLReplicate
	defer a.Disconnect(context.WithoutCancel(ctx))

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	finishing := make(chan struct{})
	go watchFinish(ctx, ctl, func() {
		disp.Step("cutover finish asked the task to stop")
		close(finishing)
		cancel(nil)
	}, func() error { return lock.keep(ctx, p.ControlSchema) }, cancel)
	if p.Validation.Continuous {
		var bg sync.WaitGroup
		bg.Add(1)
		go func() {
			defer bg.Done()
			validate.Continuously(ctx, p, disp, func(ctx context.Context, opts validate.Options) (*validate.Report, error) {
				return Validate(ctx, p, opts)
			})
		}()
		defer func() { cancel(nil); bg.Wait() }()
	}
	what := "change data capture from the source's binary log"
	if reverse {
		what = "reverse replication (target to source) from the target's binary log"
	}
	disp.Step(fmt.Sprintf("%s (read as server_id %d) at position %s", what, serverID, from))
	retry := &cdc.Retry{First: time.Second, Max: 30 * time.Second, GiveUp: RetryFor, Retryable: retryable, Say: disp.Step}
	err = cdc.Follow(ctx, src, a, retry, func(pos string) string {
		select {
		case <-finishing:
			return fmt.Sprintf("change data capture stopped at position %s for cutover finish", pos)
		default:
			return fmt.Sprintf("change data capture stopped at position %s", pos)
		}
	}, nil)
	select {
	case <-finishing:
		// said to cutover finish, which waits for it
		st.Phase = control.PhaseFinished
		return ctl.SetState(context.WithoutCancel(ctx), st)
	default:
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause // the stream lock taken by another process
	}
	return err
}

// resumeReplication reads where replication goes on from: refused for a one-shot
// copy or before the load's end; a loaded migration enters its CDC phase.
func resumeReplication(ctx context.Context, p *plan.Plan, tgt *sql.DB) (*Control, control.State, error) {
	ctl, ok, err := readControl(ctx, tgt, p.ControlSchema)
	if err != nil {
		return nil, control.State{}, err
	}
	if !ok {
		return nil, control.State{}, fmt.Errorf("the target has no control database %s: run cutover start, which loads first", p.ControlSchema)
	}
	st, err := ctl.State(ctx)
	if err != nil {
		return nil, st, err
	}
	switch {
	case st.Phase == control.PhaseFinishing || st.Phase == control.PhaseFinished:
		return nil, st, load.ErrFinished(p)
	case st.Mode == control.ModeCopy:
		return nil, st, fmt.Errorf("the migration %s is a one-shot copy (cdc.enabled: false): it has no change stream to follow; cutover finish, then cutover start with cdc.enabled: true, to migrate with change data capture", p.ControlSchema)
	case st.Phase == control.PhaseLoaded:
		st.Phase = control.PhaseCDC
		if err := ctl.SetState(ctx, st); err != nil {
			return nil, st, err
		}
	case st.Phase != control.PhaseCDC && st.Phase != control.PhaseSwitching && st.Phase != control.PhaseSwitched &&
		st.Phase != control.PhaseRollingBack && st.Phase != control.PhaseRolledBack:
		return nil, st, fmt.Errorf("change data capture starts after the full load, which is at phase %s: run cutover start", st.Phase)
	}
	return ctl, st, nil
}

// isMariaDB reads a side's flavour on a pool open to it.
func isMariaDB(ctx context.Context, side string, db *sql.DB) (bool, error) {
	var version string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return false, fmt.Errorf("read the %s's version: %w", side, err)
	}
	return strings.Contains(strings.ToLower(version), "mariadb"), nil
}

// sideIsMariaDB reads the flavour of a side no pool is open to.
func sideIsMariaDB(ctx context.Context, side string, e plan.Endpoint) (bool, error) {
	db, _, err := openSide(ctx, side, e, 1)
	if err != nil {
		return false, err
	}
	defer db.Close()
	return isMariaDB(ctx, side, db)
}

// watchFinish reads the phase now and then, and calls finish once cutover finish
// has asked the task to stop; it keeps the stream lock (keep), and stops the stream
// with keep's error when another process took it.
func watchFinish(ctx context.Context, ctl *Control, finish func(), keep func() error, stop func(error)) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if st, err := ctl.State(ctx); err == nil && st.Phase == control.PhaseFinishing {
			finish()
			return
		}
		if err := keep(); err != nil {
			stop(err)
			return
		}
	}
}

// retryable says whether an error is a fault that may heal: a server that went
// away, restarted or refused connections for a while.
func retryable(err error) bool {
	if binlogFault(err) {
		return true
	}
	var me *driver.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1040, 1053, 1205, 1213, 2006, 2013: // too many connections, shutdown, lock wait timeout, deadlock, gone away, lost
			return true
		}
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, sqldriver.ErrBadConn) || errors.Is(err, driver.ErrInvalidConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "connection refused")
}

// covers says whether a table copied at the snapshot position snap already holds the
// transaction that ends at position txn (the stream's Begin.Position): with GTIDs,
// whether snap's set contains txn's; with file and offset, whether txn ends at or
// before snap.
func covers(snap, txn string, mariadb bool) (bool, error) {
	s, err := parseBinlogPosition(snap, mariadb)
	if err != nil {
		return false, err
	}
	x, err := parseBinlogPosition(txn, mariadb)
	if err != nil {
		return false, err
	}
	if s.GTID != "" && x.GTID != "" {
		flavor := gomysql.MySQLFlavor
		if mariadb {
			flavor = gomysql.MariaDBFlavor
		}
		sg, err := gomysql.ParseGTIDSet(flavor, s.GTID)
		if err != nil {
			return false, err
		}
		xg, err := gomysql.ParseGTIDSet(flavor, x.GTID)
		if err != nil {
			return false, err
		}
		return sg.Contain(xg), nil
	}
	if s.File != x.File {
		return binlogFileBefore(x.File, s.File), nil
	}
	return x.Offset <= s.Offset, nil
}

// binlogFileBefore says whether the binary log file a comes before b. The server
// numbers its files with at least six digits and more past 999999 (binlog.999999,
// then binlog.1000000), so the names' text does not sort them: their numbers do.
func binlogFileBefore(a, b string) bool {
	ai, bi := strings.LastIndexByte(a, '.'), strings.LastIndexByte(b, '.')
	if ai >= 0 && bi >= 0 && a[:ai] == b[:bi] {
		an, aerr := strconv.ParseUint(a[ai+1:], 10, 64)
		bn, berr := strconv.ParseUint(b[bi+1:], 10, 64)
		if aerr == nil && berr == nil {
			return an < bn
		}
	}
	return a < b
}
