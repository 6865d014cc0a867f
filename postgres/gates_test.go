package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pgx/v5"
)

// Each gate of the switch and of the rollback, one at a time, on one migration whose
// gates hold: exactly that condition broken, the switch (or rollback) refuses with that
// problem alone, in words that say what to do, and nobody was blocked; then the
// condition is put back, and the next refusal shows that it was. At the end the switch
// goes through, which shows every condition was put back. TestSwitchGatesAtTheEarliestMoment
// covers the phase, the idle slot, the latency not measured and a table waiting to be
// copied again; TestSwitchWithoutTrackedChanges the tables not validated. The side that
// should be closed and is not (issue 22) refuses both.
func TestEachGateRefuses(t *testing.T) {
	m := newMigration(t, "")
	ctx := context.Background()
	slot := pgtest.QueryVal[string](t, m.tgt, "SELECT slot FROM cutover.state")
	rev := reverseSlot(slot)

	// refused runs the switch (with p, the plan, or the migration's when nil) and
	// checks it refused with one problem holding every want, blocking nobody.
	refused := func(gate string, p *plan.Plan, wants ...string) {
		t.Helper()
		if p == nil {
			p = m.plan
		}
		var out bytes.Buffer
		res, err := Switch(ctx, p, m.switchOpts(&out))
		if !errors.Is(err, cutover.ErrGates) {
			t.Fatalf("%s: switch: %v, want the gates to refuse\n%s", gate, err, out.String())
		}
		problems := refusals(t, err, cutover.ErrGates.Error())
		for _, want := range wants {
			if !hasProblem(problems, want) {
				t.Errorf("%s: no problem says %q: %q", gate, want, problems)
			}
		}
		if len(problems) != 1 {
			t.Errorf("%s: %d problems, want this gate's alone: %q", gate, len(problems), problems)
		}
		if res == nil || res.Run.BlockedAt != nil || !m.canLogin(t, m.src) {
			t.Fatalf("%s: a refused switch blocked the source (result %+v); the application logs in to the source: %v", gate, res, m.canLogin(t, m.src))
		}
		if got := pgtest.QueryVal[string](t, m.tgt, "SELECT phase FROM cutover.state"); got != control.PhaseCDC {
			t.Fatalf("%s: phase %q after a refused switch, want %q", gate, got, control.PhaseCDC)
		}
	}

	// The latency measured too long ago, then above cutover.max_latency: the task's
	// measurements go through this trigger while it is there.
	m.tgt.Exec(t, `CREATE FUNCTION cutover.skew() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN
		    NEW.measured_at := now() - interval '1 minute'; RETURN NEW; END$$;
		CREATE TRIGGER skew BEFORE UPDATE ON cutover.state FOR EACH ROW EXECUTE FUNCTION cutover.skew();
		ALTER TABLE cutover.state ENABLE ALWAYS TRIGGER skew`)
	m.task.waitTarget(t, m.tgt, "a stale latency", "SELECT measured_at < now() - interval '30 seconds' FROM cutover.state")
	refused("latency stale", nil, "the target latency was last measured 1m", "the switch trusts one measured in the last 15s: is cutover start running?")
	m.tgt.Exec(t, `CREATE OR REPLACE FUNCTION cutover.skew() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN
		    NEW.target_latency := interval '1 hour'; RETURN NEW; END$$`)
	m.task.waitTarget(t, m.tgt, "a high latency", "SELECT measured_at > now() - interval '3 seconds' AND target_latency = interval '1 hour' FROM cutover.state")
	refused("latency high", nil, "the target latency is 1h0m0s, above cutover.max_latency", "wait for CDC to catch up")
	m.tgt.Exec(t, "DROP TRIGGER skew ON cutover.state")
	m.task.waitTarget(t, m.tgt, "a latency measured", "SELECT measured_at > now() - interval '3 seconds' AND target_latency < interval '1 minute' FROM cutover.state")

	// An apply exception not resolved.
	id := pgtest.QueryVal[int64](t, m.tgt, `INSERT INTO cutover.apply_exceptions (task, schema_name, table_name, operation, statement, "values", error, position, policy)
		VALUES ('forward', 'public', 'accounts', 'UPDATE', 'UPDATE accounts SET balance = 1 WHERE id = 1', '{}', 'a test''s exception', '0/0', 'skip') RETURNING id`)
	refused("apply exception", nil, "1 unresolved apply exception(s) in cutover.apply_exceptions: fix each, then mark it resolved (UPDATE")
	m.tgt.Exec(t, "UPDATE cutover.apply_exceptions SET resolved = true WHERE id = $1", id)

	// A table whose last validation found differences.
	m.tgt.Exec(t, "UPDATE cutover.table_stats SET validation_state = $1 WHERE table_name = 'accounts'", control.ValidationMismatched)
	refused("differences", nil, `the last validation found differences in "public"."accounts": cutover validate --repair, then cutover validate`)
	m.tgt.Exec(t, "UPDATE cutover.table_stats SET validation_state = $1 WHERE table_name = 'accounts'", control.ValidationValidated)

	// An index missing on the target.
	m.tgt.Exec(t, "DROP INDEX history_account")
	refused("index", nil, "missing on the target: ", "history_account", ": create them there (they are on the source)")
	m.tgt.Exec(t, "CREATE INDEX history_account ON history (account)")

	// A sequence missing on the target.
	m.tgt.Exec(t, "ALTER TABLE history ALTER id DROP DEFAULT; DROP SEQUENCE history_id_seq")
	refused("sequence", nil, `sequences "public"."history_id_seq" are on the source but not on the target: create them there`)
	m.tgt.Exec(t, "CREATE SEQUENCE history_id_seq OWNED BY history.id; ALTER TABLE history ALTER id SET DEFAULT nextval('history_id_seq')")

	// No replication slot free on the target for reverse replication: the free ones
	// taken by physical slots.
	free := pgtest.QueryVal[int64](t, m.tgt, "SELECT current_setting('max_replication_slots')::int - count(*) FROM pg_replication_slots WHERE slot_name <> $1", rev)
	var fillers []string
	t.Cleanup(func() {
		for _, f := range fillers {
			_ = m.tgt.Server.Exec(ctx, m.tgt.Name, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", f)
		}
	})
	for i := range free {
		f := fmt.Sprintf("gates_%s_%d", m.tgt.Name, i)
		m.tgt.Exec(t, "SELECT pg_create_physical_replication_slot($1)", f)
		fillers = append(fillers, f)
	}
	refused("slots", nil, "the target has no free replication slot for reverse replication: raise max_replication_slots there (a restart) or drop an unused slot")
	for _, f := range fillers {
		m.tgt.Exec(t, "SELECT pg_drop_replication_slot($1)", f)
	}
	fillers = nil

	// The reverse slot in use: a temporary slot of that name is active for as long as
	// the session that made it lasts.
	holder, err := pgx.Connect(ctx, m.tgt.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	if _, err := holder.Exec(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput', true)", rev); err != nil {
		t.Fatal(err)
	}
	refused("reverse slot in use", nil, fmt.Sprintf("the reverse replication slot %s on the target is in use: stop what streams from it", rev))
	holder.Close(ctx)
	m.task.waitTarget(t, m.tgt, "the temporary slot gone", "SELECT NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)", rev)

	// The target's role may not read a replication slot: neither a superuser nor
	// REPLICATION, though it may do all the migration's role may do to the objects
	// (a member of it). The roles of the non-superuser tests all have REPLICATION. It
	// has CREATEROLE, to give the application its login back on the target at the
	// unlock, and the superuser, which it could not close the target to, is exempt.
	norepl, pw := pgtest.NewRole(t, m.tgt.Server, "CREATEROLE IN ROLE "+pgtest.Superuser)
	asRole := *m.plan
	asRole.Target = plan.Endpoint{URL: m.tgt.URLAs(norepl, pw)}
	asRole.Cutover.ExemptRoles = []string{pgtest.Superuser}
	refused("target role without REPLICATION", &asRole, "the target's role cannot read a replication slot: ALTER ROLE ... REPLICATION on the target")
	if err := m.tgt.Server.Exec(ctx, "postgres", "DROP ROLE "+norepl); err != nil {
		t.Fatal(err)
	}

	// The source's role may not SET session_replication_role, which reverse replication
	// applies with: not a superuser, though a member of the migration's role, and with
	// what the block needs (CREATEROLE, pg_signal_backend; the superuser exempt).
	noset, pw := pgtest.NewRole(t, m.src.Server, "CREATEROLE IN ROLE "+pgtest.Superuser+", pg_signal_backend")
	asRole = *m.plan
	asRole.Source = plan.Endpoint{URL: m.src.URLAs(noset, pw)}
	asRole.Cutover.ExemptRoles = []string{pgtest.Superuser}
	refused("source role may not set session_replication_role", &asRole, fmt.Sprintf("the source's role %s may not SET session_replication_role, which reverse replication applies the target's writes with", noset),
		fmt.Sprintf("on the source, GRANT SET ON PARAMETER session_replication_role TO %s;", pgx.Identifier{noset}.Sanitize()))
	if err := m.src.Server.Exec(ctx, "postgres", "DROP ROLE "+noset); err != nil {
		t.Fatal(err)
	}

	// A login role of the source that the target lacks: the applications could not
	// log in after the switch.
	only, _ := pgtest.NewRole(t, m.src.Server, "")
	refused("role missing on the target", nil, "source roles "+only+": these roles log in to the source but do not exist on the target", "pg_dumpall --roles-only")
	if err := m.src.Server.Exec(ctx, "postgres", "DROP ROLE "+only); err != nil {
		t.Fatal(err)
	}

	// A login role of the managed service's own, on both sides: the block would take
	// its login.
	service := "cloudsql" + only
	for _, s := range []*pgtest.Server{m.src.Server, m.tgt.Server} {
		if err := s.Exec(ctx, "postgres", "CREATE ROLE "+service+" LOGIN"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Exec(ctx, "postgres", "DROP ROLE IF EXISTS "+service) })
	}
	refused("service role", nil, "source roles "+service+": these login roles are the managed service's own", "add them to cutover.exempt_roles (exempt_roles: ["+service+"])")
	if err := m.src.Server.Exec(ctx, "postgres", "DROP ROLE "+service); err != nil {
		t.Fatal(err)
	}

	// The target open to the applications during replication (issue 22): the load
	// closed it, someone gave the application's role its login back there.
	if m.canLogin(t, m.tgt) {
		t.Fatal("the application's role logs in to the target during replication: the load did not close it")
	}
	m.tgt.Exec(t, "ALTER ROLE "+m.app+" LOGIN")
	refused("target open", nil, "the target is open to the applications: roles "+m.app+" may log in there and write to the migrated tables", "ALTER ROLE ... NOLOGIN on the target")
	m.tgt.Exec(t, "ALTER ROLE "+m.app+" NOLOGIN")

	// Every condition put back, the switch goes through; a second one is refused.
	var out bytes.Buffer
	if _, err := Switch(ctx, m.plan, m.switchOpts(&out)); err != nil {
		t.Fatalf("switch with every gate put back: %v\n%s", err, out.String())
	}
	_, err = Switch(ctx, m.plan, m.switchOpts(&out))
	if problems := refusals(t, err, cutover.ErrGates.Error()); !hasProblem(problems, "the migration is already switched to the target: cutover rollback goes back, cutover finish ends it") {
		t.Errorf("switch of a switched migration: %q", problems)
	}

	// The rollback's gates: they are asked of the target, which the rollback blocks.
	rolledBackRefused := func(gate string, wants ...string) {
		t.Helper()
		out.Reset()
		res, err := Rollback(ctx, m.plan, m.switchOpts(&out))
		problems := refusals(t, err, "the rollback did not begin")
		for _, want := range wants {
			if !hasProblem(problems, want) {
				t.Errorf("%s: no problem says %q: %q", gate, want, problems)
			}
		}
		if len(problems) != 1 {
			t.Errorf("%s: %d problems, want this gate's alone: %q", gate, len(problems), problems)
		}
		if res == nil || res.Run.BlockedAt != nil || !m.canLogin(t, m.tgt) {
			t.Fatalf("%s: a refused rollback blocked the target (result %+v); the application logs in to the target: %v", gate, res, m.canLogin(t, m.tgt))
		}
		if got := pgtest.QueryVal[string](t, m.tgt, "SELECT phase FROM cutover.state"); got != control.PhaseSwitched {
			t.Fatalf("%s: phase %q after a refused rollback, want %q", gate, got, control.PhaseSwitched)
		}
	}
	// The managed service's role, now on the target alone.
	rolledBackRefused("service role on the target", "target roles "+service+": these login roles are the managed service's own", "cutover.exempt_roles")
	if err := m.tgt.Server.Exec(ctx, "postgres", "DROP ROLE "+service); err != nil {
		t.Fatal(err)
	}

	// The source open to the applications after the switch.
	m.src.Exec(t, "ALTER ROLE "+m.app+" LOGIN")
	rolledBackRefused("source open", "the source is open to the applications: roles "+m.app+" may log in there and write to the migrated tables", "ALTER ROLE ... NOLOGIN on the source")
	m.src.Exec(t, "ALTER ROLE "+m.app+" NOLOGIN")

	// Reverse replication's slot gone (the task stopped, which streamed from it).
	m.task.stop(t)
	m.tgt.Exec(t, "SELECT pg_drop_replication_slot($1)", rev)
	rolledBackRefused("reverse slot missing", fmt.Sprintf("reverse replication's slot %s is not on the target, so the writes made there since the switch cannot reach the source: stay on the target (cutover finish)", rev))
	m.tgt.Exec(t, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", rev)
	out.Reset()
	if _, err := Rollback(ctx, m.plan, m.switchOpts(&out)); err != nil {
		t.Fatalf("rollback with the reverse slot back: %v\n%s", err, out.String())
	}
	if !m.canLogin(t, m.src) || m.canLogin(t, m.tgt) {
		t.Errorf("after the rollback the application logs in to the source: %v, to the target: %v", m.canLogin(t, m.src), m.canLogin(t, m.tgt))
	}
}
