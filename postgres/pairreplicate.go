package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/load"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/schema"
	"github.com/jackc/pgx/v5"
)

// Change data capture from another engine into PostgreSQL: the source engine's feed,
// its events converted on the way (cdc.Converting) by the translation of the source's
// schema as it is now, applied by the same applier as between two PostgreSQL servers,
// which commits the source's position with the changes. Schema changes on the source
// are not replayed: the stream stops on them, saying what to do.

// pairStreamLock is the advisory lock (on the target) a running change data capture
// from another engine holds: one task at a time, and cutover finish waits for it.
func pairStreamLock(p *plan.Plan) string { return p.ControlSchema + ".stream" }

// ReplicatePair runs cutover start's change data capture from another engine, in
// the direction the control schema says (cdc.Directions, as between two PostgreSQL
// servers): the source's feed into the target while the migration replicates,
// nothing while a switch holds it, the target's changes back into the source
// (runReverse) after the switch.
func (Engine) ReplicatePair(ctx context.Context, p *plan.Plan, opts engine.StartOptions, src load.SourceHalf,
	feedFor func(control.State) (*engine.ChangeFeed, error), sw func() (engine.SwitchSource, error)) error {
	disp := opts.Display
	if disp == nil {
		disp = &load.Lines{W: opts.Out}
	}
	r := &directionReader{p: p}
	defer r.close(context.WithoutCancel(ctx))
	return cdc.Directions{Read: r.read, Say: disp.Step, Poll: directionPoll, Finished: load.ErrFinished(p),
		Run: func(ctx context.Context, dir string) error {
			if dir == control.ReplicateReverse {
				tgt, err := ConnectSide(ctx, "target", p.Target)
				if err != nil {
					return err
				}
				tr, err := pairTranslation(ctx, p, src, tgt)
				tgt.Close(context.WithoutCancel(ctx))
				if err != nil {
					return err
				}
				return runReverse(ctx, p, opts, disp, tr, sw)
			}
			return replicateForward(ctx, p, opts, disp, src, feedFor)
		}}.Follow(ctx)
}

// replicateForward runs the source's feed into the target, until ctx ends.
func replicateForward(ctx context.Context, p *plan.Plan, opts engine.StartOptions, disp load.Display, src load.SourceHalf,
	feedFor func(control.State) (*engine.ChangeFeed, error)) (err error) {
	tgt, err := ConnectSide(ctx, "target", p.Target)
	if err != nil {
		return err
	}
	defer tgt.Close(context.WithoutCancel(ctx))
	// reverse: there is no PostgreSQL source whose tables a changed plan could leave out
	ctl, st, tableFrom, err := resumeReplication(ctx, p, tgt, true, disp)
	if err != nil {
		return err
	}
	var locked bool
	if err := tgt.QueryRow(ctx, "SELECT pg_try_advisory_lock(hashtext($1))", pairStreamLock(p)).Scan(&locked); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if !locked {
		return fmt.Errorf("another cutover start replicates the migration %s already: stop it first", p.ControlSchema)
	}
	tr, err := pairTranslation(ctx, p, src, tgt)
	if err != nil {
		return err
	}
	if stale := tr.staleInCDC(); len(stale) > 0 {
		return fmt.Errorf("change data capture would leave these columns stale on the target: %s are generated on the source, plain on PostgreSQL, and the binary log does not carry their values;"+
			" leave their tables out of the plan (tables.exclude), or make the columns plain on the source", strings.Join(stale, ", "))
	}
	feed, err := feedFor(st)
	if err != nil {
		return err
	}
	from := cmp.Or(st.Applied, st.Position)
	a, err := newApplier(ctx, tgt, p.ControlSchema, st.Slot, p.CDC.OnError, from)
	if err != nil {
		return err
	}
	a.metrics = opts.Metrics
	a.ddl = ddlOptions{plan: p, say: disp.Step}
	a.cascades = tr.cascadeParents()
	// A validation's points: the target's snapshot at each of its markers.
	a.points.connect = func(ctx context.Context) (*pgx.Conn, error) { return Connect(ctx, p.Target) }
	a.points.covers = feed.Covers // a repair's rows in flight
	defer a.points.close(context.WithoutCancel(ctx))
	// The changed keys are recorded at the target's WAL positions: tracking begins at
	// the target's position now, unless it went on unbroken since an earlier run.
	a.track, a.dirtyAtTarget = p.Validation.Tracking(), true
	if _, err := tgt.Exec(ctx, "UPDATE "+ctl.table("state")+` SET stopped_at = NULL, stop_error = '',
		changes_tracked_from = CASE WHEN NOT $1 THEN '' WHEN changes_tracked_from = '' THEN pg_current_wal_lsn()::text ELSE changes_tracked_from END`, a.track); err != nil {
		return fmt.Errorf("target: record that replication runs: %w", err)
	}
	defer func() { recordStop(context.WithoutCancel(ctx), p, err) }()
	retry := &cdc.Retry{First: time.Second, Max: 30 * time.Second, GiveUp: RetryFor,
		Retryable: func(err error) bool { return feed.Retryable(err) || retryable(err) }, Say: disp.Step}
	tgtSide := &followTarget{a: a, p: p, say: disp.Step}
	defer tgtSide.close(context.WithoutCancel(ctx))
	t := &pairTranslator{tr: tr, feed: feed, tableFrom: tableFrom}
	disp.Step(fmt.Sprintf("change data capture from the source (%s) at position %s", st.Slot, from))
	return cdc.Follow(ctx, cdc.Converting(feed.Source, t), tgtSide, retry, func(pos string) string {
		return fmt.Sprintf("change data capture stopped at position %s", pos)
	}, func() {})
}

// staleInCDC lists the generated columns of the source that the target holds as
// plain ones, which a change stream leaves without their values.
func (tr *translation) staleInCDC() []string {
	var out []string
	for _, t := range tr.tables {
		for _, c := range t.columns {
			if c.carried() && c.src.Generated != "" {
				out = append(out, t.source.String()+"."+c.src.Name)
			}
		}
	}
	return out
}

// pairTranslator maps the source's relations to the translated tables, and converts
// their values: the feed's conversion to the canonical form, then the translation's
// to PostgreSQL's text.
type pairTranslator struct {
	tr        *translation
	feed      *engine.ChangeFeed
	tableFrom map[string]string // by the target's schema.table: the position a table was copied at, when later than the stream's start
}

var _ cdc.Translator = (*pairTranslator)(nil)

func (t *pairTranslator) table(rel *cdc.Relation) (*translatedTable, error) {
	if tt := t.tr.byName[rel.Schema+"."+rel.Name]; tt != nil {
		return tt, nil
	}
	return nil, fmt.Errorf("table %s.%s: changes came for it, but the migration did not copy it", rel.Schema, rel.Name)
}

func (t *pairTranslator) Relation(rel *cdc.Relation) (*cdc.Relation, []func([]byte) (cdc.Value, error), error) {
	tt, err := t.table(rel)
	if err != nil {
		return nil, nil, err
	}
	out := &cdc.Relation{ID: rel.ID, Schema: t.tr.schema, Name: tt.name}
	if len(rel.Columns) == 0 {
		return out, nil, nil // a truncate of a table whose rows the stream has not seen
	}
	convert := make([]func([]byte) (cdc.Value, error), len(rel.Columns))
	seen := map[string]bool{}
	fix := "the change stream between engines does not replay schema changes: make the same change on the target (in PostgreSQL's SQL), " +
		"or start the migration over (cutover finish, then cutover start)"
	for i, c := range rel.Columns {
		tc := tt.column(c.Name)
		if tc == nil {
			return nil, nil, fmt.Errorf("table %s: the source's column %s is not in the schema cutover translated: %s", tt.source, c.Name, fix)
		}
		seen[tc.src.Name] = true
		if !tc.carried() {
			if c.Key {
				return nil, nil, fmt.Errorf("table %s: column %s identifies the source's rows, and is not on the target", tt.source, c.Name)
			}
			continue
		}
		toCanonical, fromCanonical := t.feed.Value(*tc.src), wrapConverter(tt.source, tc.src, tc.pgType, tc.conv)
		zeroDates := t.tr.rules.ZeroDates
		convert[i] = func(b []byte) (cdc.Value, error) {
			v, err := toCanonical(b)
			if err == nil && v.Null && zeroDates == "error" {
				// a value the source's engine has no canonical form for (MySQL's zero date)
				return v, fmt.Errorf("the value %s is not a date, and the plan's translation.zero_dates is error", shortValue(b))
			}
			if err != nil || v.Null {
				return v, err
			}
			text, err := fromCanonical(v.Text)
			return cdc.Value{Text: text}, err
		}
		out.Columns = append(out.Columns, cdc.Column{Name: tc.name, Key: c.Key})
	}
	for _, tc := range tt.columns {
		if tc.carried() && tc.src.Generated == "" && !seen[tc.src.Name] {
			return nil, nil, fmt.Errorf("table %s: the source's rows no longer have the column %s: %s", tt.source, tc.src.Name, fix)
		}
	}
	return out, convert, nil
}

// Skip: a change older than a table's copy is in it.
func (t *pairTranslator) Skip(rel *cdc.Relation, position string) (bool, error) {
	tt, err := t.table(rel)
	if err != nil {
		return false, err
	}
	at, ok := t.tableFrom[t.tr.schema+"."+tt.name]
	if !ok {
		return false, nil
	}
	return t.feed.Covers(at, position)
}

func (t *pairTranslator) SchemaChange(sc *cdc.SchemaChange) error {
	return fmt.Errorf("the source's schema changed (%.300s): the change stream between engines does not replay schema changes: "+
		"make the same change on the target (in PostgreSQL's SQL) and start the migration over for the tables it touches, or keep the source's schema as it is until the switch", sc.Statement)
}

// waitStreamStopped waits until no change data capture from another engine runs on
// the migration (its advisory lock is free), for at most wait.
func waitStreamStopped(ctx context.Context, tgt *pgx.Conn, p *plan.Plan, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		forward, err := lockHeld(ctx, tgt, pairStreamLock(p))
		if err != nil {
			return err
		}
		reverse, err := lockHeld(ctx, tgt, reverseStreamLock(p))
		if err != nil {
			return err
		}
		if !forward && !reverse {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("cutover start still replicates: stop it (it stops by itself within seconds of cutover finish), then run cutover finish again")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// cascadeParents are the target's tables whose deletes or key updates change other
// tables by a foreign key's action (CASCADE, SET NULL, SET DEFAULT). MySQL does not
// log those changes (InnoDB makes them inside the statement), so the applier deletes
// or updates such a table's rows with the target's foreign keys firing, as the
// source's did.
func (tr *translation) cascadeParents() map[[2]string]bool {
	out := map[[2]string]bool{}
	for _, t := range tr.tables {
		for _, fk := range t.source.ForeignKeys {
			rt := tr.byName[refName(t.source, fk)]
			if rt == nil {
				continue
			}
			for _, a := range []string{fk.OnDelete, fk.OnUpdate} {
				switch schema.Action(a) {
				case "NO ACTION", "RESTRICT":
				default:
					out[[2]string{tr.schema, rt.name}] = true
				}
			}
		}
	}
	return out
}
