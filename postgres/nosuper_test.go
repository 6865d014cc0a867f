package postgres

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/cutover-dev/cutover/validate"
)

// managedRoles makes, on both servers, what a managed service (RDS, Cloud SQL, Azure)
// gives: no superuser. The tables belong to an owner role the migration role is a
// member of; the migration role has REPLICATION, CREATEROLE, pg_signal_backend and SET
// on session_replication_role. Both databases belong to the owner.
func managedRoles(t *testing.T, src, tgt *pgtest.DB) (migrator, pw, owner string) {
	t.Helper()
	ctx := context.Background()
	migrator, pw = pgtest.NewRole(t, src.Server, "REPLICATION CREATEROLE")
	owner, _ = pgtest.NewRole(t, src.Server, "")
	if err := src.Server.Exec(ctx, "postgres", "ALTER ROLE "+owner+" NOLOGIN"); err != nil {
		t.Fatal(err)
	}
	for _, db := range []*pgtest.DB{src, tgt} {
		if db == tgt {
			for _, sql := range []string{
				fmt.Sprintf("CREATE ROLE %s NOLOGIN", owner),
				fmt.Sprintf("CREATE ROLE %s LOGIN REPLICATION CREATEROLE PASSWORD '%s'", migrator, pw),
			} {
				if err := tgt.Server.Exec(ctx, "postgres", sql); err != nil {
					t.Fatal(err)
				}
			}
			t.Cleanup(func() {
				for _, r := range []string{migrator, owner} {
					_ = tgt.Server.Exec(ctx, "postgres", "DROP OWNED BY "+r)
					_ = tgt.Server.Exec(ctx, "postgres", "DROP ROLE IF EXISTS "+r)
				}
			})
		}
		for _, sql := range []string{
			fmt.Sprintf("GRANT %s, pg_signal_backend TO %s", owner, migrator),
			fmt.Sprintf("GRANT SET ON PARAMETER session_replication_role TO %s", migrator),
			fmt.Sprintf("ALTER DATABASE %s OWNER TO %s", db.Name, owner),
			fmt.Sprintf("GRANT USAGE ON SCHEMA cron TO %s", migrator), // pg_cron is in postgres on these servers
		} {
			if err := db.Server.Exec(ctx, "postgres", sql); err != nil {
				t.Fatal(err)
			}
		}
	}
	// What the roles own in the test databases goes before the roles do (the databases
	// are dropped after them): a role left behind would be one more login role that the
	// next switch on these servers could not block.
	t.Cleanup(func() {
		for _, db := range []*pgtest.DB{src, tgt} {
			_ = db.Server.Exec(ctx, db.Name, fmt.Sprintf("DROP OWNED BY %s, %s", migrator, owner))
		}
	})
	return migrator, pw, owner
}

// The cut over on a managed service: neither side's migration role is a superuser.
func TestSwitchWithoutSuperusers(t *testing.T) {
	src, tgt := switchPair(t)
	migrator, pw, owner := managedRoles(t, src, tgt)
	m := &migration{src: src, tgt: tgt, dir: t.TempDir()}
	m.app, m.pw = appRole(t, src, tgt)
	src.Exec(t, fmt.Sprintf("SET ROLE %s; %s; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %[3]s; GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO %[3]s",
		owner, switchSchema, m.app))
	if super := pgtest.QueryVal[bool](t, src, "SELECT rolsuper FROM pg_roles WHERE rolname = $1", migrator); super {
		t.Fatal("the migration role is a superuser")
	}
	extra := "cutover: {exempt_roles: [postgres]}\n"
	m.plan = planFor(t, src.URLAs(migrator, pw), tgt.URLAs(migrator, pw), extra)

	rep := assess(t, m.plan)
	if errs := errorsOf(rep); len(errs) > 0 {
		t.Fatalf("check finds errors for the managed roles: %v\n%s", errs, reportText(rep))
	}
	if f := rep.Find("reverse_privilege", "role "+migrator); f != nil {
		t.Fatalf("check: %s", f.Problem)
	}
	// Without SET on session_replication_role, check says the switch will refuse, and how to grant it.
	ctx := context.Background()
	if err := src.Server.Exec(ctx, "postgres", "REVOKE SET ON PARAMETER session_replication_role FROM "+migrator); err != nil {
		t.Fatal(err)
	}
	f := mustFind(t, assess(t, m.plan), "reverse_privilege", "role "+migrator, check.Warning)
	if !strings.Contains(f.Problem, `GRANT SET ON PARAMETER session_replication_role TO "`+migrator+`"`) {
		t.Errorf("check: %s", f.Problem)
	}
	if err := src.Server.Exec(ctx, "postgres", "GRANT SET ON PARAMETER session_replication_role TO "+migrator); err != nil {
		t.Fatal(err)
	}
	if err := FullLoad(context.Background(), m.plan, engine.StartOptions{Out: &bytes.Buffer{}}); err != nil {
		t.Fatalf("full load: %v", err)
	}
	m.task = m.start(t)
	if _, err := Validate(context.Background(), m.plan, validate.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := m.writeAsApp(m.src, "INSERT INTO history (account, delta) VALUES (1, 5)"); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := Switch(context.Background(), m.plan, m.switchOpts(&out)); err != nil {
		t.Fatalf("switch: %v\n%s\n%s", err, out.String(), m.task.out.String())
	}
	if m.canLogin(t, m.src) || !m.canLogin(t, m.tgt) {
		t.Fatalf("after the switch the application logs in to the source: %v, to the target: %v", m.canLogin(t, m.src), m.canLogin(t, m.tgt))
	}
	// Writes on the target reach the source by reverse replication.
	if err := m.writeAsApp(m.tgt, "INSERT INTO history (account, delta) VALUES (2, 6); UPDATE accounts SET balance = 42 WHERE id = 3"); err != nil {
		t.Fatal(err)
	}
	m.task.waitTarget(t, src, "the source applying the target's writes",
		"SELECT EXISTS (SELECT 1 FROM history WHERE account = 2 AND delta = 6) AND (SELECT balance FROM accounts WHERE id = 3) = 42")
	out.Reset()
	if _, err := Rollback(context.Background(), m.plan, m.switchOpts(&out)); err != nil {
		t.Fatalf("rollback: %v\n%s\n%s", err, out.String(), m.task.out.String())
	}
	if !m.canLogin(t, m.src) || m.canLogin(t, m.tgt) {
		t.Fatalf("after the rollback the application logs in to the source: %v, to the target: %v", m.canLogin(t, m.src), m.canLogin(t, m.tgt))
	}
	m.task.stop(t)
	out.Reset()
	if err := Finish(context.Background(), m.plan, &out, false); err != nil {
		t.Fatalf("finish: %v\n%s", err, out.String())
	}
	sameTables(t, src, tgt)
}
