package postgres

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/load"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/schema"
	"github.com/jackc/pgx/v5"
)

// Reverse replication to another engine, after a switch: the target's changes, from
// the slot the switch created (reverse_slot, from reverse_position), read as text in
// a session with canonicalSession()'s settings, converted by the translation's back
// converters to the source's canonical values, then by the source engine to what its
// applier writes. The applier keeps its position on the source, with the changes.

// runReverse runs reverse replication until ctx ends.
func runReverse(ctx context.Context, p *plan.Plan, opts engine.StartOptions, disp load.Display, tr *translation, sw func() (engine.SwitchSource, error)) (err error) {
	tgt, err := ConnectSide(ctx, "target", p.Target)
	if err != nil {
		return err
	}
	defer tgt.Close(context.WithoutCancel(ctx))
	var locked bool
	if err := tgt.QueryRow(ctx, "SELECT pg_try_advisory_lock(hashtext($1))", reverseStreamLock(p)).Scan(&locked); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if !locked {
		return fmt.Errorf("another process replicates the migration %s back to the source already: stop it first", p.ControlSchema)
	}
	var slot, pos string
	if err := tgt.QueryRow(ctx, "SELECT reverse_slot, reverse_position FROM "+pgx.Identifier{p.ControlSchema, "state"}.Sanitize()).Scan(&slot, &pos); err != nil {
		return fmt.Errorf("target: read reverse replication's slot: %w", err)
	}
	if slot == "" {
		return fmt.Errorf("the control schema %s records no reverse replication slot (the switch creates it): nothing to replicate back", p.ControlSchema)
	}
	src, err := sw()
	if err != nil {
		return err
	}
	defer src.Close()
	ra, err := src.Reverse(ctx)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var current *stream
	ra.Acknowledge(func(pos string) {
		mu.Lock()
		if current != nil {
			current.Flushed(pos)
		}
		mu.Unlock()
	})
	from := cmp.Or(ra.Committed, pos)
	rp := reversed(p)
	fs := &followSource{p: rp, slot: slot, lat: &cdc.Latency{}, settings: canonicalSession(), first: from, opened: func(s *stream) {
		mu.Lock()
		current = s
		mu.Unlock()
	}}
	retry := &cdc.Retry{First: time.Second, Max: 30 * time.Second, GiveUp: RetryFor,
		Retryable: func(err error) bool { return ra.Retryable(err) || retryable(err) }, Say: disp.Step}
	disp.Step(fmt.Sprintf("reverse replication (target to source) from slot %s at position %s", slot, from))
	return cdc.Follow(ctx, cdc.Converting(fs, &reverseTranslator{tr: tr, value: ra.Value}), ra.Target, retry, func(pos string) string {
		return fmt.Sprintf("reverse replication stopped at position %s", pos)
	}, func() {})
}

// reverseTranslator maps the target's relations back to the source's tables, and
// their values to the source's.
type reverseTranslator struct {
	tr    *translation
	value func(c schema.Column) func([]byte) (cdc.Value, error)
}

var _ cdc.Translator = (*reverseTranslator)(nil)

func (t *reverseTranslator) Relation(rel *cdc.Relation) (*cdc.Relation, []func([]byte) (cdc.Value, error), error) {
	tt := t.tr.byTarget(rel.Schema, rel.Name)
	if tt == nil {
		return nil, nil, fmt.Errorf("table %s.%s: changes came for it on the target, but the migration did not copy it", rel.Schema, rel.Name)
	}
	out := &cdc.Relation{ID: rel.ID, Schema: tt.source.Schema, Name: tt.source.Name}
	convert := make([]func([]byte) (cdc.Value, error), len(rel.Columns))
	for i, c := range rel.Columns {
		var tc *translatedColumn
		for _, x := range tt.columns {
			if x.carried() && x.name == c.Name {
				tc = x
			}
		}
		if tc == nil {
			return nil, nil, fmt.Errorf("table %s: the target's column %s is not one the migration made, and the source has no place for its values: drop it on the target, or roll back by hand", tt.qualified, c.Name)
		}
		back, toSource := tc.back, t.value(*tc.src)
		convert[i] = func(b []byte) (cdc.Value, error) {
			canonical, err := back(b)
			if err != nil {
				return cdc.Value{}, err
			}
			return toSource(canonical)
		}
		out.Columns = append(out.Columns, cdc.Column{Name: tc.src.Name, Key: c.Key})
	}
	return out, convert, nil
}

// Skip: every change since the switch goes back.
func (t *reverseTranslator) Skip(*cdc.Relation, string) (bool, error) { return false, nil }

func (t *reverseTranslator) SchemaChange(sc *cdc.SchemaChange) error {
	return fmt.Errorf("the target's schema changed (%.300s): reverse replication does not replay schema changes into the source: make the same change there by hand, or stay on the target", sc.Statement)
}
