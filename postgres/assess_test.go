package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/cutover-dev/cutover/plan"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// planText parses a plan the way the CLI does, with extra YAML appended.
func planFor(t *testing.T, srcURL, tgtURL, extra string) *plan.Plan {
	t.Helper()
	text := fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\n%s", srcURL, tgtURL, extra)
	p, err := plan.Parse("test.yaml", []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func assess(t *testing.T, p *plan.Plan) *check.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := Assess(ctx, p, engine.AssessOptions{LongTransaction: time.Minute})
	if f := r.Find("assessment", ""); f != nil {
		t.Fatalf("a check could not run: %s", f.Problem)
	}
	return r
}

func mustFind(t *testing.T, r *check.Report, checkName, object string, sev check.Severity) *check.Finding {
	t.Helper()
	f := r.Find(checkName, object)
	if f == nil {
		t.Fatalf("no %s finding for %q; report:\n%s", checkName, object, reportText(r))
	}
	if f.Severity != sev {
		t.Fatalf("%s finding for %q is %s, want %s: %s", checkName, object, f.Severity, sev, f.Problem)
	}
	return f
}

func reportText(r *check.Report) string {
	var b strings.Builder
	_ = r.WriteText(&b)
	return b.String()
}

func errorsOf(r *check.Report) []string {
	var out []string
	for _, f := range r.Findings {
		if f.Severity == check.Error {
			out = append(out, f.Check+" "+f.Object)
		}
	}
	return out
}

// A fresh pair of databases: the source and an empty target.
func pair(t *testing.T) (src, tgt *pgtest.DB) {
	return pgtest.NewDB(t, pgtest.Source(t)), pgtest.NewDB(t, pgtest.Target(t))
}

func TestPagila(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	if err := pgtest.LoadPagila(context.Background(), src.Server, src.Name); err != nil {
		t.Fatal(err)
	}
	r := assess(t, planFor(t, src.URL(), tgt.URL(), ""))
	f := mustFind(t, r, "replica_identity", "table public.country", check.Error)
	if !strings.Contains(f.Problem, "REPLICA IDENTITY NOTHING") ||
		!strings.HasPrefix(f.Fix, "ALTER TABLE public.country REPLICA IDENTITY DEFAULT;") {
		t.Fatalf("country finding: %+v", f)
	}
	f = mustFind(t, r, "replica_identity", "table public.payment_p2007_07_max", check.Error)
	if !strings.HasPrefix(f.Fix, "ALTER TABLE public.payment_p2007_07_max ADD PRIMARY KEY (payment_id);") {
		t.Fatalf("partition fix: %s", f.Fix)
	}
	want := []string{"replica_identity table public.country", "replica_identity table public.payment_p0000_default", "replica_identity table public.payment_p2007_07_max"}
	if got := errorsOf(r); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("errors = %q, want %q", got, want)
	}
	sum := mustFind(t, r, "summary", "tables", check.Info)
	if !strings.Contains(sum.Problem, "15 tables (and 8 partitions)") {
		t.Fatalf("summary: %s", sum.Problem)
	}

	// The fixes check prints make the report clean.
	src.Exec(t, "ALTER TABLE public.country REPLICA IDENTITY DEFAULT")
	src.Exec(t, "ALTER TABLE public.payment_p0000_default ADD PRIMARY KEY (payment_id)")
	src.Exec(t, "ALTER TABLE public.payment_p2007_07_max ADD PRIMARY KEY (payment_id)")
	if r := assess(t, planFor(t, src.URL(), tgt.URL(), "")); r.Failed() {
		t.Fatalf("errors left after the fixes:\n%s", reportText(r))
	}

	// Each policy for tables without identity turns the error into a warning that says what happens.
	src.Exec(t, "ALTER TABLE public.country REPLICA IDENTITY NOTHING")
	for policy, says := range map[string]string{
		"replica_identity_full": "will run ALTER TABLE public.country REPLICA IDENTITY FULL",
		"inserts_only":          "only its inserts are replicated",
		"exclude":               "it is not migrated at all",
	} {
		r := assess(t, planFor(t, src.URL(), tgt.URL(), "cdc: {no_identity: "+policy+"}\n"))
		f := mustFind(t, r, "replica_identity", "table public.country", check.Warning)
		if !strings.Contains(f.Problem, says) {
			t.Errorf("policy %s: %s", policy, f.Problem)
		}
	}
}

func TestUnreachableHost(t *testing.T) {
	t.Parallel()
	_, tgt := pair(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	r := assess(t, planFor(t, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/app", port), tgt.URL(), ""))
	f := mustFind(t, r, "connection", "source", check.Error)
	if !strings.Contains(f.Problem, "connection refused") || !strings.Contains(f.Fix, "source.url") {
		t.Fatalf("finding: %+v", f)
	}
	if !r.Failed() || r.Target.Version == "" {
		t.Fatal("the target should still have been assessed")
	}

	r = assess(t, planFor(t, "postgres://postgres@no-such-host.invalid:5432/app", tgt.URL(), ""))
	f = mustFind(t, r, "connection", "source", check.Error)
	if !strings.Contains(f.Problem, "does not resolve") {
		t.Fatalf("finding: %+v", f)
	}
	if r.Has("target_binlog", "plan") {
		t.Fatal("a target_binlog finding for the default plan")
	}
	// a MySQL/MariaDB key, whichever side is reachable
	r = assess(t, planFor(t, "postgres://postgres@no-such-host.invalid:5432/app", tgt.URL(), "full_load: {target_binlog: false}"))
	if f = mustFind(t, r, "target_binlog", "plan", check.Error); !strings.Contains(f.Fix, "leave full_load.target_binlog out") {
		t.Fatalf("finding: %+v", f)
	}
}

func TestWrongPassword(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	wrong := "not-the-password-123"
	r := assess(t, planFor(t, src.URL(), tgt.URLAs(pgtest.Superuser, wrong), ""))
	f := mustFind(t, r, "connection", "target", check.Error)
	if !strings.Contains(f.Problem, "password authentication failed") || !strings.Contains(f.Fix, "target.password") {
		t.Fatalf("finding: %+v", f)
	}
	out, _ := json.Marshal(r)
	if strings.Contains(string(out), wrong) || strings.Contains(string(out), pgtest.Password) {
		t.Fatalf("a password appears in the report: %s", out)
	}
}

func TestMissingDatabaseAndRole(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	r := assess(t, planFor(t, src.URL(), tgt.Server.URL("no_such_db"), ""))
	f := mustFind(t, r, "connection", "target", check.Error)
	if !strings.Contains(f.Fix, `CREATE DATABASE no_such_db;`) && !strings.Contains(f.Fix, `CREATE DATABASE "no_such_db";`) {
		t.Fatalf("finding: %+v", f)
	}
	r = assess(t, planFor(t, src.URLAs("nobody_here", "x"), tgt.URL(), ""))
	mustFind(t, r, "connection", "source", check.Error)
}

func TestMissingPrivileges(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	srcServer, tgtServer := src.Server, tgt.Server
	owner, _ := pgtest.NewRole(t, srcServer, "")
	role, pw := pgtest.NewRole(t, srcServer, "")
	src.Exec(t, "CREATE SCHEMA app AUTHORIZATION "+owner)
	src.Exec(t, "CREATE TABLE app.orders (id int PRIMARY KEY, note text)")
	src.Exec(t, "CREATE TABLE app.lines (id int PRIMARY KEY)")
	src.Exec(t, "CREATE SEQUENCE app.order_seq")
	src.Exec(t, "ALTER TABLE app.orders OWNER TO "+owner)
	src.Exec(t, "ALTER TABLE app.lines OWNER TO "+owner)
	src.Exec(t, "ALTER SEQUENCE app.order_seq OWNER TO "+owner)
	src.Exec(t, fmt.Sprintf("GRANT USAGE ON SCHEMA app TO %s; GRANT SELECT ON app.lines TO %s", role, role))
	tgtRole, tgtPw := pgtest.NewRole(t, tgtServer, "")
	tgt.Exec(t, fmt.Sprintf("REVOKE CREATE ON DATABASE %s FROM PUBLIC", tgt.Name))

	p := planFor(t, src.URLAs(role, pw), tgt.URLAs(tgtRole, tgtPw), "tables: {include: [app.*]}\n")
	r := assess(t, p)
	f := mustFind(t, r, "replication_privilege", "role "+role, check.Error)
	if f.Fix != fmt.Sprintf("ALTER ROLE %s REPLICATION;  (Amazon RDS: GRANT rds_replication TO %s;)", role, role) {
		t.Fatalf("fix: %s", f.Fix)
	}
	f = mustFind(t, r, "select_privilege", "table app.orders", check.Error)
	if f.Fix != fmt.Sprintf("GRANT SELECT ON app.orders TO %s;", role) {
		t.Fatalf("fix: %s", f.Fix)
	}
	f = mustFind(t, r, "publication_privilege", "role "+role, check.Error)
	if f.Fix != fmt.Sprintf("GRANT %s TO %s;", owner, role) || !strings.Contains(f.Problem, "app.lines, app.orders") {
		t.Fatalf("publication finding: %+v", f)
	}
	mustFind(t, r, "sequence_privilege", "role "+role, check.Warning)
	if r.Has("replication_connection", "source") {
		t.Fatal("the replication connection failure is explained by the privilege finding; it should not be reported twice")
	}
	f = mustFind(t, r, "target_privilege", "role "+tgtRole, check.Error)
	if !strings.Contains(reportText(r), fmt.Sprintf("GRANT SET ON PARAMETER session_replication_role TO %s;", tgtRole)) ||
		!strings.Contains(reportText(r), fmt.Sprintf("GRANT CREATE ON DATABASE %s TO %s;", tgt.Name, tgtRole)) {
		t.Fatalf("target privileges:\n%s", reportText(r))
	}

	// Applying every fix check printed leaves no error.
	src.Exec(t, fmt.Sprintf("ALTER ROLE %s REPLICATION", role))
	src.Exec(t, fmt.Sprintf("GRANT SELECT ON app.orders TO %s", role))
	src.Exec(t, fmt.Sprintf("GRANT %s TO %s", owner, role))
	tgt.Exec(t, fmt.Sprintf("GRANT CREATE ON DATABASE %s TO %s", tgt.Name, tgtRole))
	tgt.Exec(t, fmt.Sprintf("GRANT SET ON PARAMETER session_replication_role TO %s", tgtRole))
	t.Cleanup(func() {
		_ = tgtServer.Exec(context.Background(), "postgres", "REVOKE SET ON PARAMETER session_replication_role FROM "+tgtRole)
	})
	if r := assess(t, p); r.Failed() {
		t.Fatalf("errors left after the fixes:\n%s", reportText(r))
	}
}

// One misconfigured source: wal_level=replica, every slot and WAL sender taken.
func TestServerSettings(t *testing.T) {
	t.Parallel()
	s := pgtest.StartServer(t, pgtest.Options{Name: "settings", Settings: map[string]string{
		"wal_level": "replica", "max_replication_slots": "1", "max_wal_senders": "0", "max_slot_wal_keep_size": "64MB",
	}})
	src := pgtest.NewDB(t, s)
	src.Exec(t, "SELECT pg_create_physical_replication_slot('old_standby', true)")
	src.Exec(t, "CREATE TABLE t (id int PRIMARY KEY)")
	tgt := pgtest.NewDB(t, pgtest.Target(t))
	r := assess(t, planFor(t, src.URL(), tgt.URL(), ""))
	f := mustFind(t, r, "wal_level", "source", check.Error)
	if !strings.HasPrefix(f.Fix, "ALTER SYSTEM SET wal_level = logical;") {
		t.Fatalf("fix: %s", f.Fix)
	}
	f = mustFind(t, r, "replication_slots", "source", check.Error)
	if !strings.Contains(f.Fix, "max_replication_slots = 3") {
		t.Fatalf("fix: %s", f.Fix)
	}
	mustFind(t, r, "wal_senders", "source", check.Error)
	f = mustFind(t, r, "replication_slots", "slot old_standby", check.Warning)
	if !strings.Contains(f.Fix, "pg_drop_replication_slot('old_standby')") {
		t.Fatalf("fix: %s", f.Fix)
	}
	mustFind(t, r, "max_slot_wal_keep_size", "source", check.Warning)

	// The same server as a target: reverse replication will not be possible.
	r = assess(t, planFor(t, pgtest.NewDB(t, pgtest.Source(t)).URL(), src.URL(), ""))
	mustFind(t, r, "wal_level", "target", check.Warning)
	mustFind(t, r, "replication_slots", "target", check.Warning)
}

func TestTables(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, `
		CREATE TABLE public.keyed (id int PRIMARY KEY, v text);
		CREATE TABLE public.unique_only (code text NOT NULL UNIQUE, v text);
		CREATE TABLE public.bare (v text);
		CREATE TABLE public.full_ident (v text);
		ALTER TABLE public.full_ident REPLICA IDENTITY FULL;
		CREATE UNLOGGED TABLE public.scratch (id int PRIMARY KEY);
		CREATE TABLE public.odd (id int PRIMARY KEY, x xid, o oid[], r regclass);
		CREATE SCHEMA "Sales";
		CREATE TABLE "Sales"."Order" (id int PRIMARY KEY);
		CREATE TABLE public.filled (id int PRIMARY KEY);
		CREATE TABLE public.empty_there (id int PRIMARY KEY);
		CREATE TABLE public.viewed (id int PRIMARY KEY);`)
	tgt.Exec(t, `
		CREATE TABLE public.filled (id int PRIMARY KEY);
		INSERT INTO public.filled VALUES (1);
		CREATE TABLE public.empty_there (id int PRIMARY KEY);
		CREATE VIEW public.viewed AS SELECT 1 AS id;`)
	p := planFor(t, src.URL(), tgt.URL(), `tables:
  include: [public.*, '"Sales"."Order"', public.missing, 'nothing_here.*', public.payment_x]
  exclude: [public.keyed]
`)
	r := assess(t, p)

	f := mustFind(t, r, "replica_identity", "table public.unique_only", check.Error)
	if !strings.HasPrefix(f.Fix, "ALTER TABLE public.unique_only REPLICA IDENTITY USING INDEX unique_only_code_key;") {
		t.Fatalf("fix: %s", f.Fix)
	}
	f = mustFind(t, r, "replica_identity", "table public.bare", check.Error)
	if !strings.Contains(f.Fix, "ALTER TABLE public.bare ADD PRIMARY KEY (...);  or  ALTER TABLE public.bare REPLICA IDENTITY FULL;") {
		t.Fatalf("fix: %s", f.Fix)
	}
	mustFind(t, r, "replica_identity", "table public.full_ident", check.Info)
	f = mustFind(t, r, "unlogged_table", "table public.scratch", check.Error)
	if !strings.HasPrefix(f.Fix, "ALTER TABLE public.scratch SET LOGGED;") {
		t.Fatalf("fix: %s", f.Fix)
	}
	if r.Has("replica_identity", "table public.scratch") {
		t.Fatal("an unlogged table is reported as unlogged, not for its identity")
	}
	mustFind(t, r, "column_type", "column public.odd.x", check.Warning)
	mustFind(t, r, "column_type", "column public.odd.o", check.Warning) // an array of oid resolves to oid
	mustFind(t, r, "column_type", "column public.odd.r", check.Warning)
	mustFind(t, r, "missing_table", "table public.missing", check.Error)
	mustFind(t, r, "missing_table", "pattern nothing_here.*", check.Warning)
	mustFind(t, r, "missing_table", "table public.payment_x", check.Error)
	f = mustFind(t, r, "target_table", "table public.filled (target)", check.Error)
	if !strings.HasPrefix(f.Fix, "TRUNCATE public.filled;") {
		t.Fatalf("fix: %s", f.Fix)
	}
	mustFind(t, r, "target_table", "table public.empty_there (target)", check.Error)
	mustFind(t, r, "target_table", "table public.viewed (target)", check.Error)
	if r.Has("replica_identity", "table public.keyed") || r.Has("target_table", "table public.keyed (target)") {
		t.Fatal("an excluded table was assessed")
	}
	if !strings.Contains(mustFind(t, r, "summary", "tables", check.Info).Problem, "9 tables to migrate") {
		t.Fatalf("summary: %s", r.Find("summary", "tables").Problem)
	}
}

// A pattern naming a partition points at its partitioned table.
func TestPartitionPattern(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, `CREATE TABLE m (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
		CREATE TABLE m_2024 PARTITION OF m FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
		CREATE TABLE m_rest (id int NOT NULL, at date NOT NULL);
		ALTER TABLE m ATTACH PARTITION m_rest DEFAULT;
		CREATE TABLE other (id int PRIMARY KEY);`)
	r := assess(t, planFor(t, src.URL(), tgt.URL(), "tables: {include: [public.m_2024, public.other]}\n"))
	f := mustFind(t, r, "missing_table", "table public.m_2024", check.Error)
	if f.Fix != "include public.m in tables.include instead" {
		t.Fatalf("fix: %s", f.Fix)
	}
	// Partitions follow their root: including m includes m_rest (which ATTACH gave the root's key).
	r = assess(t, planFor(t, src.URL(), tgt.URL(), "tables: {include: [public.m]}\n"))
	if r.Failed() {
		t.Fatalf("unexpected errors:\n%s", reportText(r))
	}
	if !strings.Contains(r.Find("summary", "").Problem, "1 tables (and 2 partitions)") {
		t.Fatalf("summary: %s", r.Find("summary", "").Problem)
	}
}

func TestTransactionsThatDelayTheSnapshot(t *testing.T) {
	t.Parallel()
	s := pgtest.StartServer(t, pgtest.Options{Name: "xacts"})
	src := pgtest.NewDB(t, s)
	tgt := pgtest.NewDB(t, pgtest.Target(t))
	src.Exec(t, "CREATE TABLE t (id int PRIMARY KEY)")
	ctx := context.Background()

	writer := src.Conn(t)
	var pid int
	if err := writer.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.Exec(ctx, "BEGIN; INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	src.Exec(t, "BEGIN; INSERT INTO t VALUES (2); PREPARE TRANSACTION 'order''s batch'")
	t.Cleanup(func() { _ = s.Exec(ctx, src.Name, "ROLLBACK PREPARED 'order''s batch'") })

	p := planFor(t, src.URL(), tgt.URL(), "")
	r := Assess(ctx, p, engine.AssessOptions{LongTransaction: time.Nanosecond})
	f := mustFind(t, r, "long_transaction", fmt.Sprintf("pid %d", pid), check.Warning)
	if f.Fix != fmt.Sprintf("let it finish, or end it: SELECT pg_terminate_backend(%d);", pid) || !strings.Contains(f.Problem, "INSERT INTO t VALUES (1)") {
		t.Fatalf("finding: %+v", f)
	}
	f = mustFind(t, r, "prepared_transaction", "prepared transaction 'order''s batch'", check.Error)
	if !strings.Contains(f.Fix, "ROLLBACK PREPARED 'order''s batch';") {
		t.Fatalf("fix: %s", f.Fix)
	}
	// With the default threshold a young transaction is normal traffic.
	if r := Assess(ctx, p, engine.AssessOptions{LongTransaction: time.Minute}); r.Has("long_transaction", "") {
		t.Fatal("a transaction younger than the threshold was reported")
	}
}

func TestDatabases(t *testing.T) {
	t.Parallel()
	src := pgtest.NewDB(t, pgtest.Source(t))
	src.Exec(t, "CREATE TABLE t (id int PRIMARY KEY, m money)")
	src.Exec(t, "SELECT lo_create(0)")
	src.Exec(t, "CREATE SCHEMA cutover; CREATE TABLE cutover.mine (id int PRIMARY KEY)")
	tgtServer := pgtest.Target(t)
	latin := pgtest.NewDB(t, tgtServer)
	latin.Exec(t, "SELECT 1") // created with defaults; recreate it below as LATIN1
	ctx := context.Background()
	name := latin.Name + "_l1"
	if err := tgtServer.Exec(ctx, "postgres", fmt.Sprintf("CREATE DATABASE %s ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0", name)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tgtServer.Exec(ctx, "postgres", "DROP DATABASE "+name+" WITH (FORCE)") })
	if err := tgtServer.Exec(ctx, name, "ALTER DATABASE "+name+" SET lc_monetary = 'C'"); err != nil {
		t.Fatal(err)
	}
	if err := tgtServer.Exec(ctx, "postgres", "ALTER DATABASE "+name+" SET lc_monetary = 'C'"); err != nil {
		t.Fatal(err)
	}
	if err := src.Server.Exec(ctx, "postgres", "ALTER DATABASE "+src.Name+" SET lc_monetary = 'C.UTF-8'"); err != nil {
		t.Fatal(err)
	}
	r := assess(t, planFor(t, src.URL(), tgtServer.URL(name), ""))
	f := mustFind(t, r, "encoding", "database "+name, check.Error)
	if !strings.Contains(f.Fix, "WITH ENCODING 'UTF8'") {
		t.Fatalf("fix: %s", f.Fix)
	}
	mustFind(t, r, "collation", "database "+name, check.Warning)
	mustFind(t, r, "large_objects", "database "+src.Name, check.Warning)
	mustFind(t, r, "control_schema", "schema cutover", check.Error)
	f = mustFind(t, r, "column_type", "column public.t.m", check.Error)
	if !strings.Contains(f.Fix, "lc_monetary = 'C.UTF-8'") {
		t.Fatalf("fix: %s", f.Fix)
	}

	// The same database under another spelling of its address.
	same := strings.Replace(src.URL(), "127.0.0.1", "localhost", 1)
	r = assess(t, planFor(t, src.URL(), same, "control_schema: cutover_ctl\n"))
	mustFind(t, r, "same_database", "target", check.Error)
}

// extensionDir is the installation's extension directory, shared by the test servers.
func extensionDir(t *testing.T) string {
	t.Helper()
	bin, err := pgtest.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(bin, "pg_config"), "--sharedir").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "extension")
}

// Extensions: one the target lacks, one the target role may not create.
func TestExtensions(t *testing.T) {
	t.Parallel()
	extDir := extensionDir(t)
	src, tgt := pair(t)
	// An extension only the source has: install its files, create it, remove the files,
	// so the target (same installation) no longer offers it.
	ext := fmt.Sprintf("cutover_probe_%d", os.Getpid())
	control := filepath.Join(extDir, ext+".control")
	script := filepath.Join(extDir, ext+"--1.0.sql")
	if err := os.WriteFile(control, []byte("default_version = '1.0'\nrelocatable = true\n"), 0o644); err != nil {
		t.Skipf("cannot write to %s (needs root, as in CI): %v", extDir, err)
	}
	defer os.Remove(control)
	if err := os.WriteFile(script, []byte("CREATE DOMAIN probe_code AS text;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(script)
	src.Exec(t, "CREATE EXTENSION "+ext)
	src.Exec(t, "CREATE EXTENSION pageinspect")
	src.Exec(t, "CREATE TABLE t (id int PRIMARY KEY, c probe_code[])")
	os.Remove(control)
	os.Remove(script)

	role, pw := pgtest.NewRole(t, tgt.Server, "")
	r := assess(t, planFor(t, src.URL(), tgt.URLAs(role, pw), ""))
	f := mustFind(t, r, "extension", "extension "+ext, check.Error)
	if !strings.Contains(f.Problem, "not available on the target") || !strings.Contains(f.Problem, "public.t.c") {
		t.Fatalf("finding: %+v", f)
	}
	f = mustFind(t, r, "extension", "extension pageinspect", check.Error)
	if f.Fix != "as a superuser on the target: CREATE EXTENSION pageinspect;" {
		t.Fatalf("fix: %s", f.Fix)
	}
}
