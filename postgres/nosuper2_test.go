package postgres

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/cutover-dev/cutover/validate"
	"github.com/jackc/pgx/v5"
)

// managedMigration is a loaded migration whose roles are those of a managed service
// (managedRoles), with cutover start streaming, and extra plan YAML.
func managedMigration(t *testing.T, extra string) (m *migration, migrator, pw string) {
	t.Helper()
	src, tgt := switchPair(t)
	migrator, pw, owner := managedRoles(t, src, tgt)
	m = &migration{src: src, tgt: tgt, dir: t.TempDir()}
	m.app, m.pw = appRole(t, src, tgt)
	src.Exec(t, fmt.Sprintf("SET ROLE %s; %s; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %[3]s; GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO %[3]s",
		owner, switchSchema, m.app))
	m.plan = planFor(t, src.URLAs(migrator, pw), tgt.URLAs(migrator, pw), "cutover: {exempt_roles: [postgres]"+extra+"}\n")
	if err := FullLoad(context.Background(), m.plan, engine.StartOptions{Out: &bytes.Buffer{}}); err != nil {
		t.Fatalf("full load: %v", err)
	}
	m.task = m.start(t)
	return m, migrator, pw
}

// connAs connects to db as role.
func connAs(t *testing.T, db *pgtest.DB, role, pw string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), db.URLAs(role, pw))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// status, validate --repair, approve and the dashboard, with roles that are not
// superusers on both sides.
func TestCommandsWithoutSuperusers(t *testing.T) {
	m, migrator, pw := managedMigration(t, ", approval: true")
	ctx := context.Background()
	src, tgt := connAs(t, m.src, migrator, pw), connAs(t, m.tgt, migrator, pw)

	// cutover status, and the dashboard's queries, as the API makes them.
	st, ok, err := ReadStatus(ctx, tgt, src, m.plan)
	if err != nil || !ok {
		t.Fatalf("status: %v (started: %v)", err, ok)
	}
	if st.Phase != control.PhaseCDC || st.Source == nil || !st.Source.Exists || len(st.Tables) == 0 {
		t.Fatalf("status: phase %q, slot %+v, %d tables", st.Phase, st.Source, len(st.Tables))
	}
	if _, err := ReadDashboard(ctx, tgt, m.plan); err != nil {
		t.Fatalf("dashboard: %v", err)
	}

	// cutover validate --repair, after a row of the target was changed behind cutover's back.
	m.tgt.Exec(t, "UPDATE accounts SET balance = 99 WHERE id = 7")
	rep, err := Validate(ctx, m.plan, validate.Options{Repair: true})
	if err != nil {
		t.Fatalf("validate --repair: %v", err)
	}
	var repaired int64
	for _, tv := range rep.Tables {
		repaired += tv.Repaired
	}
	if !rep.Equal || repaired != 1 {
		t.Fatalf("validate --repair: equal %v, %d rows repaired: %+v", rep.Equal, repaired, rep.Tables)
	}
	if b := pgtest.QueryVal[int64](t, m.tgt, "SELECT balance FROM accounts WHERE id = 7"); b != 0 {
		t.Fatalf("balance of account 7 on the target after the repair: %d", b)
	}

	// cutover switch waits for cutover approve, run as the migration role.
	var out bytes.Buffer
	opts := m.switchOpts(&out)
	opts.Yes = false
	done := make(chan error, 1)
	go func() {
		_, err := Switch(ctx, m.plan, opts)
		done <- err
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := Approve(ctx, m.plan, "qa@example.com")
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "no switch is running") || time.Now().After(deadline) {
			t.Fatalf("approve: %v", err)
		}
		select {
		case err := <-done:
			t.Fatalf("the switch ended before it was approved: %v\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("switch: %v\n%s\n%s", err, out.String(), m.task.out.String())
	}
	if !strings.Contains(out.String(), "approved by qa@example.com") {
		t.Errorf("the switch does not say who approved it:\n%s", out.String())
	}
	d, err := ReadDashboard(ctx, tgt, m.plan)
	if err != nil || d.Run == nil || d.Run.Kind != "switch" {
		t.Fatalf("dashboard after the switch: %v, run %+v", err, d.Run)
	}
	if _, _, err := ReadStatus(ctx, tgt, src, m.plan); err != nil {
		t.Fatalf("status after the switch: %v", err)
	}
	// A login role with REPLICATION on the target, which the migration role may not
	// alter on PostgreSQL 15: the rollback refuses up front, naming it and the fix,
	// rather than failing at its block.
	repl, _ := pgtest.NewRole(t, m.tgt.Server, "REPLICATION")
	out.Reset()
	_, err = Rollback(ctx, m.plan, m.switchOpts(&out))
	if err == nil || !strings.Contains(err.Error(), "the rollback did not begin") || !strings.Contains(err.Error(), "target roles "+repl) ||
		!strings.Contains(err.Error(), "exempt_roles: [postgres, "+repl+"]") {
		t.Fatalf("rollback with a REPLICATION role on the target: %v\n%s", err, out.String())
	}
	if err := m.tgt.Server.Exec(ctx, "postgres", "DROP ROLE "+repl); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if _, err := Rollback(ctx, m.plan, m.switchOpts(&out)); err != nil {
		t.Fatalf("rollback: %v\n%s\n%s", err, out.String(), m.task.out.String())
	}
}

// cutover check names the login roles a migration role that is not a superuser could
// not block, and the managed service's own, with what to do, as the switch's gates
// refuse them.
func TestCheckRolesItCannotBlock(t *testing.T) {
	src, tgt := switchPair(t)
	migrator, pw, owner := managedRoles(t, src, tgt)
	src.Exec(t, fmt.Sprintf("SET ROLE %s; %s", owner, switchSchema))
	// A role named like Cloud SQL's own, that logs in to the source.
	service := "cloudsql" + migrator
	ctx := context.Background()
	if err := src.Server.Exec(ctx, "postgres", "CREATE ROLE "+service+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Server.Exec(ctx, "postgres", "DROP ROLE IF EXISTS "+service) })
	// A role with REPLICATION (a standby's, another tool's), which on PostgreSQL 15 only
	// a superuser may alter.
	repl, _ := pgtest.NewRole(t, src.Server, "REPLICATION")
	// A role that logs in to the source and exists on the target without LOGIN and with
	// REPLICATION: the unlock could not give it its login there.
	locked, _ := pgtest.NewRole(t, src.Server, "")
	if err := tgt.Server.Exec(ctx, "postgres", "CREATE ROLE "+locked+" NOLOGIN REPLICATION"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tgt.Server.Exec(ctx, "postgres", "DROP ROLE IF EXISTS "+locked) })

	rep := assess(t, planFor(t, src.URLAs(migrator, pw), tgt.URLAs(migrator, pw), ""))
	var supers, services, repls, targetSupers *check.Finding
	for i, f := range rep.Findings {
		if f.Check != "block" {
			continue
		}
		if strings.HasPrefix(f.Object, "target roles ") && strings.HasPrefix(f.Problem, "these login roles are superusers") {
			targetSupers = &rep.Findings[i]
			continue
		}
		if !strings.HasPrefix(f.Object, "source roles ") {
			continue
		}
		if strings.HasPrefix(f.Problem, "these login roles have REPLICATION") {
			repls = &rep.Findings[i]
		}
		if strings.HasPrefix(f.Problem, "these login roles are superusers") {
			supers = &rep.Findings[i]
		}
		if strings.HasPrefix(f.Problem, "these login roles are the managed service's own") {
			services = &rep.Findings[i]
		}
	}
	if supers == nil || services == nil || repls == nil || targetSupers == nil {
		t.Fatalf("check reports no superuser or service roles it cannot block:\n%s", reportText(rep))
	}
	if !strings.Contains(supers.Object, "postgres") || strings.Contains(supers.Object, service) || supers.Severity != check.Warning ||
		!strings.Contains(supers.Fix, "cutover.exempt_roles (exempt_roles: [") || !strings.Contains(supers.Fix, "cutover.block: read_only") {
		t.Errorf("superusers: %+v", *supers)
	}
	if !strings.Contains(services.Object, service) || !strings.Contains(services.Fix, service) {
		t.Errorf("service roles: %+v", *services)
	}
	if !strings.Contains(repls.Object, repl) || !strings.Contains(repls.Fix, repl) || strings.Contains(repls.Object, migrator) {
		t.Errorf("replication roles: %+v", *repls)
	}
	if f := rep.Find("block", "target roles "+locked); f == nil || !strings.Contains(f.Problem, "may not give them their login at the unlock") {
		t.Errorf("a role the unlock could not give its login: %+v\n%s", f, reportText(rep))
	}
	// A rollback blocks the target's users: its superusers too.
	if !strings.Contains(targetSupers.Object, "postgres") || !strings.Contains(targetSupers.Problem, "a rollback's gates refuse") {
		t.Errorf("the target's superusers: %+v", *targetSupers)
	}

	// Exempt, or with block: read_only, they are not reported.
	for _, extra := range []string{
		fmt.Sprintf("cutover: {exempt_roles: [postgres, %s, %s, %s]}\n", service, repl, locked),
		"cutover: {block: read_only}\n",
	} {
		rep := assess(t, planFor(t, src.URLAs(migrator, pw), tgt.URLAs(migrator, pw), extra))
		for _, f := range rep.Findings {
			if f.Check == "block" && (strings.Contains(f.Object, "postgres") || strings.Contains(f.Object, service) || strings.Contains(f.Object, repl)) {
				t.Errorf("with %s check still reports %s: %s", strings.TrimSpace(extra), f.Object, f.Problem)
			}
		}
	}

	// Without CREATEROLE and pg_signal_backend, check names the grants.
	for _, sql := range []string{"ALTER ROLE " + migrator + " NOCREATEROLE", "REVOKE pg_signal_backend FROM " + migrator} {
		if err := src.Server.Exec(ctx, "postgres", sql); err != nil {
			t.Fatal(err)
		}
	}
	rep = assess(t, planFor(t, src.URLAs(migrator, pw), tgt.URLAs(migrator, pw), ""))
	var fixes []string
	for _, f := range rep.Findings {
		if f.Check == "block" && f.Object == `source role "`+migrator+`"` {
			fixes = append(fixes, f.Fix)
		}
	}
	want := []string{`GRANT pg_signal_backend TO "` + migrator + `" on the source`, `ALTER ROLE "` + migrator + `" CREATEROLE on the source, or cutover.block: read_only`}
	if strings.Join(fixes, "\n") != strings.Join(want, "\n") {
		t.Errorf("fixes for the migration role:\n%s\nwant:\n%s", strings.Join(fixes, "\n"), strings.Join(want, "\n"))
	}
}
