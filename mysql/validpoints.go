package mysql

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Points held: a validation compares the source at a binary log position P with the
// target holding every change up to P and none after it. The applier is made to stop
// there through a row of validation_points on the target:
//
//  1. The validator asks (state asked). The applier, which looks for requests every
//     holdPoll while it applies, commits what it holds before its next transaction and
//     stops (stopped).
//  2. The validator opens its read view of the source at P and says where to go on to
//     (goto, with P). The applier applies the transactions within P, commits before the
//     first one after P and stops again (held).
//  3. The validator opens its read view of the target and deletes the row; the applier
//     goes on.
//
// An applier that applies nothing does not answer: the validator takes P, and when
// the target's applied position covers it the target is there already. An applier
// that finds a request at goto with a transaction after P committed or in its open
// group says so (passed): the validator takes a new view of the source. The applier
// stops at most holdMax at each step, and ignores a request older than holdStale (a
// validator that died).

// The states of a point.
const (
	pointAsked   = "asked"
	pointStopped = "stopped"
	pointGoto    = "goto"
	pointHeld    = "held"
	pointPassed  = "passed"
)

const (
	// holdPoll is how often an applier that applies looks for a point asked for.
	holdPoll = 20 * time.Millisecond
	// stopWait is how long the validator waits for the applier to stop before it
	// takes it for idle.
	stopWait = 5 * holdPoll
	// holdMax is the longest an applier stops at a step.
	holdMax = 5 * time.Second
	// holdWait is how often a stopped applier looks whether the validator is done.
	holdWait = 2 * time.Millisecond
	// holdStale: a request older is forgotten.
	holdStale = time.Minute
)

// holds is the applier's side: the point it goes to.
type holds struct {
	polled time.Time
	id     string // the request going to pos
	pos    string
}

// beforeTxn runs before the applier applies the transaction that ends at txnPos:
// it answers a request, and stops before a transaction after the point it goes to.
func (a *applier) beforeTxn(ctx context.Context, txnPos string) error {
	h := &a.holds
	if h.id == "" {
		if time.Since(h.polled) < holdPoll {
			return nil
		}
		h.polled = time.Now()
		var id, pos, state string
		err := a.db.QueryRowContext(ctx, "SELECT id, position, state FROM "+a.ctl.table("validation_points")+
			" WHERE state IN (?, ?) AND created_at > now(6) - INTERVAL ? SECOND ORDER BY created_at LIMIT 1", pointAsked, pointGoto, int(holdStale.Seconds())).Scan(&id, &pos, &state)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("target: read the validation points asked for: %w", err)
		}
		if state == pointAsked {
			if err := a.stopHere(ctx); err != nil {
				return err
			}
			if err := a.setPoint(ctx, id, pointStopped); err != nil {
				return err
			}
			if state, pos, err = a.waitPoint(ctx, id, pointStopped); err != nil || state != pointGoto {
				return err // gone, or the wait ran out
			}
		}
		h.id, h.pos = id, pos
	}
	if txnPos != "" {
		if in, err := covers(h.pos, txnPos, a.mariadbSource); err != nil || in {
			return err // within the point: applied first
		}
	}
	// The first transaction after the point (or one whose end is not known: a MySQL
	// source without GTIDs): stop before it, if nothing after the point is applied.
	id := h.id
	h.id = ""
	last := a.group.Committed()
	if a.tx != nil {
		last, _ = a.group.Position()
	}
	if last != "" {
		if in, err := covers(h.pos, last, a.mariadbSource); err != nil {
			return err
		} else if !in || txnPos == "" {
			return a.setPoint(ctx, id, pointPassed)
		}
	}
	if err := a.stopHere(ctx); err != nil {
		return err
	}
	if err := a.setPoint(ctx, id, pointHeld); err != nil {
		return err
	}
	_, _, err := a.waitPoint(ctx, id, pointHeld)
	return err
}

// stopHere commits the open group: the target holds every transaction applied.
func (a *applier) stopHere(ctx context.Context) error {
	if a.tx == nil {
		return nil
	}
	if a.group.Ended() > 0 {
		return a.commit(ctx)
	}
	_ = a.tx.Rollback()
	a.tx = nil
	a.group.Abandon()
	a.net.Reset()
	clear(a.changed)
	return nil
}

func (a *applier) setPoint(ctx context.Context, id, state string) error {
	_, err := a.db.ExecContext(ctx, "UPDATE "+a.ctl.table("validation_points")+" SET state = ? WHERE id = ?", state, id)
	return err
}

// waitPoint waits while a point's state is still state: its new state and position
// ("" when the row is gone), or still state when holdMax ran out.
func (a *applier) waitPoint(ctx context.Context, id, state string) (string, string, error) {
	for deadline := time.Now().Add(holdMax); time.Now().Before(deadline); {
		var now, pos string
		err := a.db.QueryRowContext(ctx, "SELECT state, position FROM "+a.ctl.table("validation_points")+" WHERE id = ?", id).Scan(&now, &pos)
		if errors.Is(err, sql.ErrNoRows) {
			return "", "", nil
		}
		if err != nil {
			return "", "", err
		}
		if now != state {
			return now, pos, nil
		}
		select {
		case <-ctx.Done():
			return "", "", ctx.Err()
		case <-time.After(holdWait):
		}
	}
	return state, "", nil
}

// holdPoint opens the source's read view of a new point and brings the target there:
// the applier stopped at the point (held), or applied up to it by itself (covered),
// or beyond it already (passed). release lets the applier go on: after the target's
// read view is open.
func (v *validator) holdPoint(ctx context.Context, t string) (pos, state string, release func(), err error) {
	// An applier with nothing to apply (the source idle, or blocked inside the switch's
	// window) would not answer: asking it costs stopWait. When the target holds the
	// source's position already, a view of the source at a position it holds needs no
	// hold; a transaction committed meanwhile makes it the protocol's again.
	if idle, err := v.idle(ctx); err == nil && idle { // else the protocol says more
		if pos, err = v.sourceView(ctx, t); err != nil {
			return "", "", nil, err
		}
		if in, err := v.applied(ctx, pos); err == nil && in {
			return pos, "covered", func() {}, nil
		}
		v.view.Close()
		v.view, v.source.conn = nil, nil
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	points := v.ctl.table("validation_points")
	if _, err := v.tgt.ExecContext(ctx, "INSERT INTO "+points+" (id, position, state) VALUES (?, '', ?)", id, pointAsked); err != nil {
		return "", "", nil, fmt.Errorf("target: ask for a validation point: %w", err)
	}
	drop := func() {
		_, _ = v.tgt.ExecContext(context.WithoutCancel(ctx), "DELETE FROM "+points+" WHERE id = ?", id)
	}
	defer func() {
		if err != nil {
			drop() // the results are zero: release too
		}
	}()
	readState := func() (string, error) {
		var s string
		if err := v.tgt.QueryRowContext(ctx, "SELECT state FROM "+points+" WHERE id = ?", id).Scan(&s); err != nil {
			return "", fmt.Errorf("target: read the validation point: %w", err)
		}
		return s, nil
	}
	// The applier stops, if it applies.
	for deadline := time.Now().Add(stopWait); time.Now().Before(deadline); {
		if state, err = readState(); err != nil || state != pointAsked {
			break
		}
		select {
		case <-ctx.Done():
			return "", "", nil, ctx.Err()
		case <-time.After(holdWait):
		}
	}
	if err != nil {
		return "", "", nil, err
	}
	if pos, err = v.sourceView(ctx, t); err != nil {
		return "", "", nil, err
	}
	if state != pointStopped {
		// Nothing applied yet covers nothing (the applier goes on from the load).
		if in, err := v.applied(ctx, pos); err != nil {
			return "", "", nil, err
		} else if in {
			drop() // idle, and there already
			return pos, "covered", func() {}, nil
		}
	}
	if _, err := v.tgt.ExecContext(ctx, "UPDATE "+points+" SET position = ?, state = ? WHERE id = ?", pos, pointGoto, id); err != nil {
		return "", "", nil, fmt.Errorf("target: ask for a validation point: %w", err)
	}
	state = "covered"
	err = v.waitApplied(ctx, pos, func() (bool, error) {
		s, err := readState()
		if err == nil && (s == pointHeld || s == pointPassed) {
			state = s
			return true, nil
		}
		return false, err
	})
	if err != nil {
		return "", "", nil, err
	}
	return pos, state, drop, nil
}

// idle says whether the target has applied every transaction the source has logged:
// its GTID state now (none without GTIDs) is within the applied position.
func (v *validator) idle(ctx context.Context) (bool, error) {
	q := "SELECT @@global.gtid_binlog_pos"
	if !v.srcMaria {
		q = "SELECT @@global.gtid_executed"
	}
	var now string
	if err := v.src.QueryRowContext(ctx, q).Scan(&now); err != nil {
		return false, fmt.Errorf("source: read its GTID state: %w", err)
	}
	if now == "" {
		return false, nil
	}
	return v.applied(ctx, strings.ReplaceAll(now, "\n", ""))
}

// applied says whether the target's applied position covers pos.
func (v *validator) applied(ctx context.Context, pos string) (bool, error) {
	var applied string
	if err := v.tgt.QueryRowContext(ctx, "SELECT applied_position FROM "+v.ctl.table("state")+" WHERE id = 1").Scan(&applied); err != nil {
		return false, fmt.Errorf("target: read the applied position: %w", err)
	}
	if applied == "" {
		return false, nil
	}
	in, err := covers(applied, pos, v.srcMaria)
	if err != nil {
		return false, fmt.Errorf("compare the target's applied position (%q) with the source's (%q): %w", applied, pos, err)
	}
	return in, nil
}
