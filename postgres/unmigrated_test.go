package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// inventory lists a database's user objects as "catalog<TAB>identity" lines, read from
// the catalogs with SQL of its own: every catalog with an oid column whose rows
// pg_identify_object names (user objects have OIDs from 16384 on), and the catalogs
// without one that hold what a database carries besides its objects (comments,
// security labels, planner statistics, large object contents, inheritance, columns,
// enum labels, the database's own settings, grants and comment). TOAST tables are
// left out: their names hold their table's OID.
func inventory(t *testing.T, db *pgtest.DB) map[string]bool {
	t.Helper()
	ctx := context.Background()
	conn := db.Conn(t)
	rows, err := conn.Query(ctx, `
		SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'oid'
		WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'r'
		  AND (NOT c.relisshared OR c.relname = 'pg_subscription')
		  AND c.relname NOT IN ('pg_enum', 'pg_largeobject_metadata')
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	catalogs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	queries := map[string]string{}
	for _, c := range catalogs {
		where := "x.oid >= 16384"
		if c == "pg_subscription" {
			where += " AND x.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
		}
		queries[c] = fmt.Sprintf(`SELECT i.type || ' ' || i.identity FROM pg_catalog.%s x, pg_identify_object('pg_catalog.%s'::regclass, x.oid, 0) i WHERE %s`, c, c, where)
	}
	const db0 = `(SELECT oid FROM pg_database WHERE datname = current_database())`
	for c, q := range map[string]string{
		"pg_enum":                 `SELECT format_type(enumtypid, NULL) || ' ' || enumlabel FROM pg_enum WHERE oid >= 16384`,
		"pg_largeobject_metadata": `SELECT 'large object ' || oid FROM pg_largeobject_metadata`,
		"pg_largeobject":          `SELECT 'large object ' || loid || ' page ' || pageno || ' ' || md5(data) FROM pg_largeobject`,
		"pg_attribute": `SELECT a.attrelid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
			FROM pg_attribute a WHERE a.attrelid >= 16384 AND a.attnum > 0 AND NOT a.attisdropped`,
		"pg_inherits": `SELECT inhrelid::regclass || ' inherits ' || inhparent::regclass FROM pg_inherits WHERE inhrelid >= 16384`,
		"pg_description": `SELECT coalesce((pg_identify_object(classoid, objoid, objsubid)).identity, 'large object ' || objoid) || ': ' || description
			FROM pg_description WHERE objoid >= 16384`,
		"pg_seclabel": `SELECT (pg_identify_object(classoid, objoid, objsubid)).identity || ' ' || provider || ' ' || label FROM pg_seclabel`,
		"pg_shseclabel": `SELECT 'database ' || provider || ' ' || label FROM pg_shseclabel
			WHERE classoid = 'pg_database'::regclass AND objoid = ` + db0,
		"pg_statistic": `SELECT s.starelid::regclass || '.' || a.attname FROM pg_statistic s
			JOIN pg_attribute a ON a.attrelid = s.starelid AND a.attnum = s.staattnum WHERE s.starelid >= 16384`,
		"pg_statistic_ext_data": `SELECT x.stxname FROM pg_statistic_ext_data d JOIN pg_statistic_ext x ON x.oid = d.stxoid`,
		"pg_db_role_setting": `SELECT coalesce(s.setrole::regrole::text, '-') || ' ' || c FROM pg_db_role_setting s, unnest(s.setconfig) c
			WHERE s.setdatabase = ` + db0,
		"pg_shdescription": `SELECT 'database: ' || description FROM pg_shdescription
			WHERE classoid = 'pg_database'::regclass AND objoid = ` + db0,
		"pg_database": `SELECT 'connection limit ' || datconnlimit FROM pg_database WHERE oid = ` + db0 + `
			UNION ALL SELECT 'owner ' || pg_get_userbyid(datdba) FROM pg_database WHERE oid = ` + db0 + `
			UNION ALL SELECT 'grant ' || g.privilege_type || ' to ' || CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(g.grantee) END
			FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) g WHERE d.oid = ` + db0 + ` AND g.grantee <> d.datdba`,
		"pg_class tablespace": `SELECT c.oid::regclass || ' in tablespace ' || t.spcname FROM pg_class c JOIN pg_tablespace t ON t.oid = c.reltablespace
			WHERE c.oid >= 16384`,
	} {
		queries[c] = q
	}
	inv := map[string]bool{}
	for c, q := range queries {
		rows, err := conn.Query(ctx, q)
		if err != nil {
			t.Fatalf("inventory of %s: %v", c, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("inventory of %s: %v", c, err)
		}
		for _, l := range lines {
			if strings.Contains(l, "pg_toast.pg_toast_") {
				continue // named by the OID of their table, which differs on the target
			}
			inv[c+"\t"+l] = true
		}
	}
	return inv
}

// missingOnTarget lists the source's inventory lines the target lacks, leaving out the
// publications the migration itself made on the source.
func missingOnTarget(t *testing.T, src, tgt *pgtest.DB, slot string) (lines []string, catalogs map[string]bool) {
	t.Helper()
	own := regexp.MustCompile(`\b` + regexp.QuoteMeta(slot) + `(_inserts|_ddl_end|_ddl_drop|_ddl_rewrite|_capture_ddl)?\b`)
	have := inventory(t, tgt)
	catalogs = map[string]bool{}
	for l := range inventory(t, src) {
		if have[l] || own.MatchString(l) {
			continue
		}
		lines = append(lines, l)
		catalogs[strings.SplitN(l, "\t", 2)[0]] = true
	}
	sort.Strings(lines)
	return lines, catalogs
}

// catalogsOf are the catalogs whose rows each finding says the load does not carry.
var catalogsOf = map[string][]string{
	"publication":        {"pg_publication", "pg_publication_rel", "pg_publication_namespace"},
	"subscription":       {"pg_subscription"},
	"large_objects":      {"pg_largeobject"},
	"planner_statistics": {"pg_statistic", "pg_statistic_ext_data"},
	"database":           {"pg_database", "pg_db_role_setting", "pg_shdescription"},
	"security_label":     {"pg_seclabel", "pg_shseclabel"},
}

// configExtension installs an extension with a configuration table and sequence into
// the server installation (both test servers share it) and returns its name, or ""
// when the extension directory is not writable (it needs root, as in CI).
func configExtension(t *testing.T) string {
	t.Helper()
	dir := extensionDir(t)
	name := fmt.Sprintf("cutover_cfg_%d", os.Getpid())
	control := filepath.Join(dir, name+".control")
	if err := os.WriteFile(control, []byte("default_version = '1.0'\nrelocatable = false\n"), 0o644); err != nil {
		t.Logf("extension configuration not tested: cannot write to %s: %v", dir, err)
		return ""
	}
	t.Cleanup(func() { os.Remove(control) })
	script := filepath.Join(dir, name+"--1.0.sql")
	if err := os.WriteFile(script, []byte(`
		CREATE TABLE @extschema@.settings (k text PRIMARY KEY, v text, standard bool NOT NULL DEFAULT false);
		INSERT INTO @extschema@.settings VALUES ('shipped', '1', true);
		SELECT pg_catalog.pg_extension_config_dump('@extschema@.settings', 'WHERE NOT standard');
		CREATE SEQUENCE @extschema@.ids;
		SELECT pg_catalog.pg_extension_config_dump('@extschema@.ids', '');
	`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(script) })
	return name
}

// inPlaceTablespace creates a tablespace inside the server's data directory.
func inPlaceTablespace(t *testing.T, s *pgtest.Server, name string) {
	t.Helper()
	ctx := context.Background()
	conn, err := s.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, sql := range []string{"SET allow_in_place_tablespaces = on", "CREATE TABLESPACE " + name + " LOCATION ''"} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}

// runFix runs a fix's shell command with the source and target URLs in its environment
// and the PostgreSQL client programs on its path.
func runFix(t *testing.T, command string, src, tgt *pgtest.DB) {
	t.Helper()
	bin, err := pgtest.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-ec", command)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "SOURCE_URL="+src.URL(), "TARGET_URL="+tgt.URL())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
}

// fixLine returns the line of a fix that starts with prefix, from prefix on.
func fixLine(t *testing.T, f *check.Finding, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(f.Fix, "\n") {
		if i := strings.Index(l, prefix); i >= 0 {
			return l[i:]
		}
	}
	t.Fatalf("%s %s: no %q in the fix:\n%s", f.Check, f.Object, prefix, f.Fix)
	return ""
}

// A source with one object of every kind a database holds. check names each kind the
// full load does not carry; after the real load, the objects the target lacks, read
// from the catalogs of both sides, are exactly those of the kinds check named; and the
// fixes check printed, run, put them there.
func TestUnmigratedObjects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcServer, tgtServer := pgtest.Source(t), pgtest.Target(t)
	// Roles and tablespaces are the servers': made before the databases, so they are
	// dropped after them.
	role, _ := pgtest.NewRole(t, srcServer, "")
	t.Cleanup(func() { _ = tgtServer.Exec(ctx, "postgres", "DROP ROLE IF EXISTS "+role) })
	space := "ts_" + role
	for _, s := range []*pgtest.Server{srcServer, tgtServer} {
		t.Cleanup(func() { _ = s.Exec(ctx, "postgres", "DROP TABLESPACE IF EXISTS "+space) })
	}
	inPlaceTablespace(t, srcServer, space)
	ext := configExtension(t)
	src, tgt := pair(t)

	src.Exec(t, fmt.Sprintf(`
		CREATE SCHEMA app;
		CREATE TYPE app.mood AS ENUM ('sad', 'ok');
		CREATE DOMAIN app.positive AS int CHECK (VALUE > 0);
		CREATE TYPE app.pair AS (a int, b text);
		CREATE TYPE app.span AS RANGE (subtype = int4);
		CREATE TABLE app.notes (id int PRIMARY KEY, body text, m app.mood, p app.positive) TABLESPACE %[2]s;
		CREATE INDEX notes_body ON app.notes (body) TABLESPACE %[2]s;
		INSERT INTO app.notes VALUES (1, 'a', 'ok', 1), (2, 'b', 'sad', 2), (3, 'c', 'ok', 3);
		CREATE TABLE app.animal (id int PRIMARY KEY, name text);
		CREATE TABLE app.dog (bark text) INHERITS (app.animal);
		ALTER TABLE app.dog ADD PRIMARY KEY (id);
		ALTER TABLE app.animal ADD COLUMN born date;
		INSERT INTO app.dog (id, name, bark) VALUES (1, 'rex', 'woof');
		CREATE VIEW app.v AS SELECT id, body FROM app.notes;
		CREATE MATERIALIZED VIEW app.mv AS SELECT count(*) AS n FROM app.notes;
		CREATE FUNCTION app.f(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 + 1';
		CREATE PROCEDURE app.p() LANGUAGE sql AS 'SELECT 1';
		CREATE AGGREGATE app.total(int) (SFUNC = int4pl, STYPE = int);
		CREATE OPERATOR app.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = int4pl);
		CREATE OPERATOR FAMILY app.fam USING btree;
		CREATE CAST (app.pair AS text) WITH INOUT;
		CREATE COLLATION app.coll (provider = libc, locale = 'C');
		CREATE CONVERSION app.conv FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8;
		CREATE TEXT SEARCH CONFIGURATION app.tsc (COPY = english);
		CREATE TEXT SEARCH DICTIONARY app.tsd (TEMPLATE = simple);
		CREATE TEXT SEARCH TEMPLATE app.tst (INIT = dsimple_init, LEXIZE = dsimple_lexize);
		CREATE TEXT SEARCH PARSER app.tsp (START = prsd_start, GETTOKEN = prsd_nexttoken, END = prsd_end, LEXTYPES = prsd_lextype);
		CREATE ACCESS METHOD heap2 TYPE TABLE HANDLER heap_tableam_handler;
		CREATE TRANSFORM FOR int LANGUAGE sql (FROM SQL WITH FUNCTION prsd_lextype(internal), TO SQL WITH FUNCTION int4recv(internal));
		CREATE FUNCTION app.trg() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
		CREATE TRIGGER notes_trg BEFORE INSERT ON app.notes FOR EACH ROW EXECUTE FUNCTION app.trg();
		CREATE RULE v_rule AS ON UPDATE TO app.v DO INSTEAD NOTHING;
		ALTER TABLE app.notes ENABLE ROW LEVEL SECURITY;
		CREATE POLICY notes_pol ON app.notes TO %[1]s USING (true);
		CREATE STATISTICS app.notes_stx (dependencies) ON id, body FROM app.notes;
		COMMENT ON TABLE app.notes IS 'notes';
		COMMENT ON COLUMN app.notes.body IS 'the text';
		ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO %[1]s;
		CREATE FOREIGN DATA WRAPPER dummy_fdw;
		CREATE SERVER elsewhere FOREIGN DATA WRAPPER dummy_fdw OPTIONS (host 'elsewhere');
		CREATE USER MAPPING FOR %[1]s SERVER elsewhere OPTIONS (user 'remote', password 'secret');
		CREATE FUNCTION app.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN RAISE NOTICE 'ddl'; END$$;
		CREATE EVENT TRIGGER on_ddl ON ddl_command_end WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION app.on_ddl();
		SELECT lo_from_bytea(0, 'the contents of a large object');
		CREATE SCHEMA counters;
		CREATE SEQUENCE counters.ticket;
		SELECT nextval('counters.ticket'), nextval('counters.ticket');
		CREATE PUBLICATION pub_notes FOR TABLE ONLY app.notes (id, body) WHERE (id > 0), TABLE ONLY app.animal WITH (publish = 'insert, update');
		CREATE PUBLICATION pub_app FOR TABLES IN SCHEMA app;
		ANALYZE app.notes;
		ALTER DATABASE %[3]s SET work_mem = '7MB';
		ALTER ROLE %[1]s IN DATABASE %[3]s SET search_path = "$user", app;
		COMMENT ON DATABASE %[3]s IS 'the notes database';
		REVOKE CONNECT ON DATABASE %[3]s FROM PUBLIC;
		GRANT CONNECT ON DATABASE %[3]s TO %[1]s;`, role, space, src.Name))
	src.Exec(t, "CREATE SUBSCRIPTION sub_x CONNECTION 'host=127.0.0.1 port=1 dbname=elsewhere password=hunter22' PUBLICATION upstream WITH (connect = false)")
	t.Cleanup(func() {
		_ = src.Server.Exec(ctx, src.Name, "ALTER SUBSCRIPTION sub_x SET (slot_name = NONE)")
		_ = src.Server.Exec(ctx, src.Name, "DROP SUBSCRIPTION sub_x")
		_ = src.Server.Exec(ctx, "postgres", "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active", src.Name)
	})
	if ext != "" {
		src.Exec(t, fmt.Sprintf(`CREATE SCHEMA cfg; CREATE EXTENSION %s SCHEMA cfg;
			INSERT INTO cfg.settings VALUES ('mine', '2'), ('also mine', '3'); SELECT nextval('cfg.ids')`, ext))
	}

	// Another program reading the source's change stream.
	src.Exec(t, "SELECT pg_create_logical_replication_slot('reader_x', 'test_decoding')")
	reader, err := pgconn.Connect(ctx, src.URL()+"&replication=database&application_name=audit_reader")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reader.Close(ctx) })
	if err := pglogrepl.StartReplication(ctx, reader, "reader_x", 0, pglogrepl.StartReplicationOptions{}); err != nil {
		t.Fatal(err)
	}
	waitSlot(t, src, "reader_x", true)

	p := planFor(t, src.URL(), tgt.URL(), "")
	r := assess(t, p)
	f := mustFind(t, r, "publication", "publication pub_notes", check.Warning)
	const pubNotes = "CREATE PUBLICATION pub_notes FOR TABLE ONLY app.animal, TABLE ONLY app.notes (id, body) WHERE ((id > 0)) WITH (publish = 'insert, update', publish_via_partition_root = false);"
	if !strings.Contains(f.Fix, pubNotes) {
		t.Errorf("publication fix:\n%s\nwant %s", f.Fix, pubNotes)
	}
	mustFind(t, r, "publication", "publication pub_app", check.Warning)
	f = mustFind(t, r, "subscription", "subscription sub_x", check.Warning)
	const sub = "CREATE SUBSCRIPTION sub_x CONNECTION 'host=127.0.0.1 port=1 dbname=elsewhere password=xxxxx' PUBLICATION upstream WITH (copy_data = false, create_slot = false, slot_name = 'sub_x');"
	if !strings.Contains(f.Fix, sub) || !strings.Contains(f.Fix, "ALTER SUBSCRIPTION sub_x DISABLE;") {
		t.Errorf("subscription fix:\n%s", f.Fix)
	}
	if out, _ := json.Marshal(r); strings.Contains(string(out), "hunter22") {
		t.Error("the subscription's password is in the report")
	}
	mustFind(t, r, "event_trigger", "event trigger on_ddl", check.Info)
	mustFind(t, r, "large_objects", "database "+src.Name, check.Warning)
	f = mustFind(t, r, "tablespace", "tablespace "+space, check.Error)
	if !strings.Contains(f.Problem, "app.notes, app.notes_body") {
		t.Errorf("tablespace finding: %s", f.Problem)
	}
	f = mustFind(t, r, "roles", "role "+role, check.Error)
	if !strings.Contains(f.Problem, "policy notes_pol on app.notes") || !strings.Contains(f.Problem, "user mapping for "+role+" on server elsewhere") {
		t.Errorf("roles finding: %s", f.Problem)
	}
	dbFinding := mustFind(t, r, "database", "database "+src.Name, check.Warning)
	f = mustFind(t, r, "sequence_value", "sequences counters.ticket", check.Warning)
	if !strings.Contains(f.Fix, "SELECT setval('counters.ticket', 2);") {
		t.Errorf("sequence fix: %s", f.Fix)
	}
	f = mustFind(t, r, "replication_consumer", "slot reader_x", check.Warning)
	if !strings.Contains(f.Problem, "audit_reader") {
		t.Errorf("consumer finding: %s", f.Problem)
	}
	mustFind(t, r, "planner_statistics", "database "+src.Name, check.Info)
	f = mustFind(t, r, "column_order", "table app.dog", check.Warning)
	if !strings.Contains(f.Problem, "source (id, name, bark, born), target (id, name, born, bark)") {
		t.Errorf("column order finding: %s", f.Problem)
	}
	if ext != "" {
		f = mustFind(t, r, "extension_config", "extension "+ext, check.Warning)
		if !strings.Contains(f.Problem, "sequence cfg.ids (at 1), table cfg.settings (2 rows)") {
			t.Errorf("extension finding: %s", f.Problem)
		}
	}
	// cutover start refuses before changing anything, rather than stopping in the schema restore.
	if err := FullLoad(ctx, p, engine.StartOptions{Out: io.Discard}); err != check.ErrNotReady {
		t.Fatalf("start with check errors: %v", err)
	}

	// The fixes for the errors, on the target: the role and the tablespace.
	if err := tgtServer.Exec(ctx, "postgres", "CREATE ROLE "+role); err != nil {
		t.Fatal(err)
	}
	inPlaceTablespace(t, tgtServer, space)
	reader.Close(ctx)
	waitSlot(t, src, "reader_x", false)
	r = assess(t, p)
	if r.Failed() {
		t.Fatalf("errors left after the fixes:\n%s", reportText(r))
	}
	mustFind(t, r, "tablespace", "tablespace "+space, check.Info)
	if r.Has("replication_consumer", "") {
		t.Error("a slot no one reads is reported as read")
	}

	fullLoad(t, src, tgt, "")
	slot := pgtest.QueryVal[string](t, tgt, "SELECT slot FROM cutover.state")
	lines, missing := missingOnTarget(t, src, tgt, slot)
	named := map[string]bool{}
	for _, f := range r.Findings {
		for _, c := range catalogsOf[f.Check] {
			named[c] = true
		}
	}
	for c := range missing {
		if !named[c] {
			t.Errorf("the target lacks objects of %s, and check did not name them", c)
		}
	}
	for c := range named {
		if !missing[c] && c != "pg_seclabel" && c != "pg_shseclabel" {
			t.Errorf("check named what %s holds, but the target has all of it", c)
		}
	}
	if t.Failed() {
		t.Fatalf("on the source, not on the target:\n%s\nreport:\n%s", strings.Join(lines, "\n"), reportText(r))
	}

	// What the rest of the catalogs do not show: the configuration the extension holds, and
	// the sequence of a schema without migrated tables, were not copied.
	if ext != "" {
		if n := pgtest.QueryVal[int](t, tgt, "SELECT count(*) FROM cfg.settings WHERE NOT standard"); n != 0 {
			t.Errorf("the extension's configuration rows reached the target (%d): the finding is wrong", n)
		}
	}
	if v := pgtest.QueryVal[*int64](t, tgt, "SELECT last_value FROM pg_sequences WHERE schemaname = 'counters'"); v != nil {
		t.Errorf("counters.ticket is at %d on the target", *v)
	}

	// The fixes, run, put the missing things on the target.
	for _, f := range []string{"publication pub_notes", "publication pub_app"} {
		tgt.Exec(t, fixLine(t, r.Find("publication", f), "CREATE PUBLICATION"))
	}
	// Columns as sets: the order of app.dog's is the target's own (the column_order finding).
	const pubs = `SELECT string_agg(x, E'\n' ORDER BY x) FROM (
		SELECT format('%s %s.%s %s %s', pubname, schemaname, tablename, (SELECT array_agg(a ORDER BY a) FROM unnest(attnames) a), rowfilter) x
		FROM pg_publication_tables WHERE pubname IN ('pub_notes', 'pub_app')) p`
	const flags = `SELECT string_agg(format('%s %s %s %s %s %s %s', pubname, puballtables, pubinsert, pubupdate, pubdelete, pubtruncate, pubviaroot), ' ' ORDER BY pubname)
		FROM pg_publication WHERE pubname IN ('pub_notes', 'pub_app')`
	for _, q := range []string{pubs, flags} {
		if s, g := pgtest.QueryVal[string](t, src, q), pgtest.QueryVal[string](t, tgt, q); s != g {
			t.Errorf("the publications made from the fixes differ:\nsource %s\ntarget %s", s, g)
		}
	}
	tgt.Exec(t, strings.SplitN(dbFinding.Fix, "\n", 2)[1])
	tgt.Exec(t, fixLine(t, r.Find("sequence_value", ""), "SELECT setval"))
	runFix(t, fixLine(t, r.Find("large_objects", ""), "pg_dump"), src, tgt)
	if ext != "" {
		runFix(t, fixLine(t, r.Find("extension_config", ""), "pg_dump"), src, tgt)
	}
	analyze, _, _ := strings.Cut(fixLine(t, r.Find("planner_statistics", ""), "vacuumdb"), "  (")
	runFix(t, analyze, src, tgt)
	lines, missing = missingOnTarget(t, src, tgt, slot)
	for _, c := range []string{"pg_database", "pg_db_role_setting", "pg_shdescription", "pg_largeobject", "pg_statistic", "pg_statistic_ext_data"} {
		if missing[c] {
			t.Errorf("after the fixes the target still lacks objects of %s", c)
		}
	}
	if ext != "" {
		if s, g := pgtest.QueryVal[string](t, src, "SELECT string_agg(k, ',' ORDER BY k) FROM cfg.settings"), pgtest.QueryVal[string](t, tgt, "SELECT string_agg(k, ',' ORDER BY k) FROM cfg.settings"); s != g {
			t.Errorf("extension configuration after the fix: source %s, target %s", s, g)
		}
	}
	if v := pgtest.QueryVal[int64](t, tgt, "SELECT last_value FROM pg_sequences WHERE schemaname = 'counters'"); v != 2 {
		t.Errorf("counters.ticket is at %d on the target after the fix", v)
	}
	if t.Failed() {
		t.Fatalf("on the source, not on the target:\n%s", strings.Join(lines, "\n"))
	}
	r = assess(t, p)
	if r.Has("database", "") {
		t.Errorf("the database's properties still differ after the fix: %s", r.Find("database", "").Problem)
	}
	for _, f := range r.Findings {
		if f.Check == "publication" && strings.Contains(f.Object, "cutover_") {
			t.Errorf("cutover's own publication is reported: %s", f.Object)
		}
	}
}

// waitSlot waits until a replication slot is (or is no longer) in use.
func waitSlot(t *testing.T, db *pgtest.DB, slot string, active bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for pgtest.QueryVal[bool](t, db, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", slot) != active {
		if time.Now().After(deadline) {
			t.Fatalf("slot %s: active is not %v after 30s", slot, active)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Inheritance children in every arrangement: check names exactly the tables whose
// columns the real load puts in another order, and the order they get.
func TestColumnOrderPrediction(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	src.Exec(t, `
		CREATE TABLE g (id int PRIMARY KEY, name text);
		CREATE TABLE p1 (k int, id int NOT NULL);
		CREATE TABLE c1 (own int) INHERITS (g);               -- then g gains a column: last in c1
		ALTER TABLE g ADD COLUMN late int;
		CREATE TABLE gc (gown int) INHERITS (c1);            -- a grandchild, then c1 gains one
		ALTER TABLE c1 ADD COLUMN c1late int;
		CREATE TABLE both2 (x int) INHERITS (p1, g);         -- two parents sharing id
		CREATE TABLE both3 (x int) INHERITS (g, p1);
		CREATE TABLE adopted (name text, q int, id int NOT NULL, late int);  -- INHERIT after the fact
		ALTER TABLE adopted INHERIT g;
		CREATE TABLE adopted_same (id int NOT NULL, name text, late int, q int);
		ALTER TABLE adopted_same INHERIT g;
		CREATE TABLE dropped (a int, b int, c int);
		ALTER TABLE dropped DROP COLUMN b;
		CREATE TABLE gd (a int, b int, c int);
		ALTER TABLE gd DROP COLUMN a;
		CREATE TABLE gdc (d int) INHERITS (gd);
		ALTER TABLE gd ADD COLUMN e int;
		CREATE TABLE plain_child (z int) INHERITS (p1);
		CREATE TABLE released () INHERITS (p1);
		ALTER TABLE p1 ADD COLUMN p1late int;
		ALTER TABLE released ADD COLUMN mine int, NO INHERIT p1;
		CREATE TYPE ty AS (a int, b text);
		CREATE TABLE typed OF ty;
		ALTER TYPE ty ADD ATTRIBUTE c int CASCADE;
		CREATE TABLE pt (a int, b text) PARTITION BY LIST (a);
		CREATE TABLE pt1 PARTITION OF pt FOR VALUES IN (1);
		CREATE TABLE pt2 (b text, a int);
		ALTER TABLE pt ATTACH PARTITION pt2 FOR VALUES IN (2);
		CREATE TABLE pt3 (x int, b text, a int);
		ALTER TABLE pt3 DROP COLUMN x;
		ALTER TABLE pt ATTACH PARTITION pt3 FOR VALUES IN (3);`)
	const noIdentity = "cdc: {no_identity: inserts_only}\n"
	r := assess(t, planFor(t, src.URL(), tgt.URL(), noIdentity))
	predicted := map[string]string{}
	for _, f := range r.Findings {
		if f.Check == "column_order" {
			_, target, _ := strings.Cut(f.Problem, "target (")
			target, _, _ = strings.Cut(target, ")")
			predicted[strings.TrimPrefix(f.Object, "table public.")] = target
		}
	}
	for _, want := range []string{"c1", "gc", "both3", "adopted", "gdc"} {
		if _, ok := predicted[want]; !ok {
			t.Errorf("check does not name %s", want)
		}
	}

	fullLoad(t, src, tgt, noIdentity)
	const order = `SELECT c.relname, string_agg(a.attname, ', ' ORDER BY a.attnum)
		FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') GROUP BY 1`
	orders := func(db *pgtest.DB) map[string]string {
		rows, err := db.Conn(t).Query(context.Background(), order)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		var rel, cols string
		if _, err := pgx.ForEachRow(rows, []any{&rel, &cols}, func() error { m[rel] = cols; return nil }); err != nil {
			t.Fatal(err)
		}
		return m
	}
	so, to := orders(src), orders(tgt)
	if len(so) != 18 || len(to) != len(so) {
		t.Fatalf("%d tables on the source, %d on the target", len(so), len(to))
	}
	var changed []string
	for rel, cols := range so {
		if to[rel] != cols {
			changed = append(changed, rel)
		}
		switch want, named := predicted[rel]; {
		case named && to[rel] != want:
			t.Errorf("%s: check says the target will have (%s); it has (%s), the source (%s)", rel, want, to[rel], cols)
		case !named && to[rel] != cols:
			t.Errorf("%s: check does not name it, but its columns came out (%s) on the target, (%s) on the source", rel, to[rel], cols)
		}
	}
	sort.Strings(changed)
	t.Logf("tables whose order the load changed: %s", strings.Join(changed, ", "))
	if len(changed) != len(predicted) || !slices.Equal(changed, sortedKeys(predicted)) {
		t.Errorf("changed %v, predicted %v", changed, sortedKeys(predicted))
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// A target role that is not a superuser cannot create the source's event trigger, nor
// objects in a tablespace it has no CREATE on.
func TestNonSuperuserTarget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	role, pw := pgtest.NewRole(t, pgtest.Target(t), "")
	space := "ts_" + role
	for _, s := range []*pgtest.Server{pgtest.Source(t), pgtest.Target(t)} {
		t.Cleanup(func() { _ = s.Exec(ctx, "postgres", "DROP TABLESPACE IF EXISTS "+space) })
		inPlaceTablespace(t, s, space)
	}
	src, tgt := pair(t)
	src.Exec(t, `CREATE TABLE t (id int PRIMARY KEY) TABLESPACE `+space+`;
		CREATE FUNCTION guard() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN RAISE NOTICE 'ddl'; END$$;
		CREATE EVENT TRIGGER no_drops ON sql_drop EXECUTE FUNCTION guard();
		ALTER EVENT TRIGGER no_drops DISABLE;`)
	tgt.Exec(t, fmt.Sprintf("GRANT CREATE ON DATABASE %s TO %s", tgt.Name, role))
	p := planFor(t, src.URL(), tgt.URLAs(role, pw), "")
	r := assess(t, p)
	f := mustFind(t, r, "event_trigger", "event trigger no_drops", check.Error)
	const ddl = "CREATE EVENT TRIGGER no_drops ON sql_drop EXECUTE FUNCTION public.guard(); ALTER EVENT TRIGGER no_drops DISABLE;"
	if !strings.Contains(f.Fix, ddl) {
		t.Fatalf("fix: %s\nwant %s", f.Fix, ddl)
	}
	f = mustFind(t, r, "tablespace", "tablespace "+space, check.Error)
	tgt.Exec(t, f.Fix[strings.Index(f.Fix, "GRANT"):])
	t.Cleanup(func() { _ = tgt.Server.Exec(ctx, "postgres", "REVOKE CREATE ON TABLESPACE "+space+" FROM "+role) })
	mustFind(t, assess(t, p), "tablespace", "tablespace "+space, check.Info)

	// The statement the fix gives recreates the event trigger as it is on the source.
	src.Exec(t, "DROP EVENT TRIGGER no_drops")
	src.Exec(t, ddl)
	if got := pgtest.QueryVal[string](t, src, "SELECT evtevent || ' ' || evtenabled::text FROM pg_event_trigger WHERE evtname = 'no_drops'"); got != "sql_drop D" {
		t.Fatalf("recreated: %s", got)
	}
}
