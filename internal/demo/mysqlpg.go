package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/mytest"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// pgDemo is the part from MariaDB to PostgreSQL: sakila moved live from a throwaway
// MariaDB server into a throwaway PostgreSQL server, switched and rolled back under
// the application's writes. The source, the writer (which follows the hooks into
// either engine) and the switch and the rollback are the MariaDB part's.
type pgDemo struct {
	*mariaDemo
	pg      *pgtest.Server
	tgtConn *pgx.Conn // the superuser's, in the database sakila, for the demo's own reads
}

// pgSays is the switch and the rollback from MariaDB to PostgreSQL.
var pgSays = cutOverSays{
	switching: `  The application's account is locked on MariaDB and its session ended; a marker through
  the binary log proves PostgreSQL has applied every committed write; a validation inside
  the window; the identities set past MariaDB's AUTO_INCREMENT counters;
  sakila's triggers dropped on MariaDB (recorded: reverse replication must not fire them);
  reverse replication starts from a slot on PostgreSQL; the switch hook repoints the
  application; its role may log in to PostgreSQL (closed to it since the load).
`,
	rollingBack: `  The login roles of PostgreSQL (but the exempt ones and cutover's) lose their login and
  their sessions end; reverse replication catches up; MariaDB's AUTO_INCREMENT counters
  raised past PostgreSQL's identities; the switch_back hook repoints the application; the
  triggers come back and the account is unlocked on MariaDB; forward replication resumes.
`,
}

// runMySQLToPostgres is the part from MariaDB to PostgreSQL.
func runMySQLToPostgres(ctx context.Context, bin string) error {
	if !mytest.Installed() {
		return errors.New("the MariaDB server is not installed: make demo installs it when it runs as root (apt-get install mariadb-server)")
	}
	// The driver logs a refused or ended session on its own; the writer says so itself.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	dir, err := os.MkdirTemp("", "cutover-demo-mysqlpg-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	d := &pgDemo{mariaDemo: newMariaDemo(bin, dir, pgSays)}
	d.startHides = notCarriedAgain()
	say("\n\n######## MariaDB to PostgreSQL: sakila moved live from one engine to the other, switched and rolled back ########\n")

	if err := d.servers(ctx); err != nil {
		return err
	}
	defer d.srcRoot.Close()
	defer d.tgtConn.Close(context.Background())
	if err := d.writePlan(ctx); err != nil {
		return err
	}
	if err := d.assess(ctx); err != nil {
		return err
	}

	app, err := d.startApplication(ctx, addr(d.pg.Port))
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			app.stop()
		}
	}()
	say("  rentals with their payment, returns, customer, address (a GEOMETRY point, PostGIS's\n")
	say("  geometry on PostgreSQL) and stock updates, payment corrections, film descriptions (a\n")
	say("  trigger copies them to film_text), cancellations; each in a transaction, written once\n")
	say("  for both engines; it runs from here on and follows the switch hooks, from MariaDB to\n")
	say("  PostgreSQL and back.\n")

	if err := d.startCDC(ctx, app); err != nil {
		return err
	}
	defer d.cdc.stop(time.Minute)
	grant := fmt.Sprintf("GRANT USAGE ON SCHEMA sakila TO %[1]s; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA sakila TO %[1]s; GRANT USAGE ON ALL SEQUENCES IN SCHEMA sakila TO %[1]s", storeUser)
	if err := d.pg.Exec(ctx, "sakila", grant); err != nil {
		return err
	}
	say("  PostgreSQL$ %s\n", grant)
	say("  (cutover start has closed the target to every role but its own until the switch)\n")

	step("Change data capture under the writer: cutover status, /metrics")
	if err := d.followed(ctx, app); err != nil {
		return err
	}
	if err := showLatencyMetrics(ctx, d.api); err != nil {
		return err
	}

	step("Validate: cutover validate, the writer paused while it reads")
	say("  Between engines each table is read whole on both sides, the values in one canonical\n")
	say("  form, at a point where PostgreSQL has applied everything MariaDB committed and MariaDB\n")
	say("  commits nothing more while the table is read: the application pauses for it (cutover\n")
	say("  validate says so and stops when the source keeps changing).\n")
	if err := app.hold(true); err != nil {
		return err
	}
	held := time.Now()
	out, _, err := d.cutoverOut(ctx, "validate", "-c", d.plan)
	if err != nil {
		return err
	}
	if err := app.hold(false); err != nil {
		return err
	}
	say("  the writer paused %v and goes on\n", time.Since(held).Round(time.Millisecond))
	if !strings.Contains(out, "16 equal") {
		return errors.New("cutover validate did not find the 16 tables equal")
	}
	pause(d.api, "change data capture runs under the writer, every table validated")

	if err := d.switchAndBack(ctx, app); err != nil {
		return err
	}
	stopped = true
	if err := d.stopApplication(ctx, app); err != nil {
		return err
	}

	step("Compare every table on both engines with the demo's own SQL: row counts, and a digest of the key, number and spatial columns")
	if err := compareEngines(ctx, d.srcRoot, d.tgtConn); err != nil {
		return err
	}
	if err := d.showObjects(ctx); err != nil {
		return err
	}
	d.downtimes(app)

	step("Stop cutover start (SIGTERM), then cutover finish --yes (the control schema dropped; nothing is left on MariaDB)")
	code, err := d.cdc.stop(time.Minute)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("cutover start exited %d on SIGTERM", code)
	}
	say("  cutover start exited 0 on SIGTERM\n")
	if _, err := d.cutover(ctx, "finish", "--yes", "-c", d.plan); err != nil {
		return err
	}
	step("Done")
	say("  Stopping the MariaDB and PostgreSQL servers and removing their files.\n")
	if err := d.src.Destroy(); err != nil {
		return err
	}
	return d.pg.Destroy()
}

// servers starts the MariaDB source and the PostgreSQL target, loads sakila into the
// source and makes the application's account on both.
func (d *pgDemo) servers(ctx context.Context) error {
	step("Start a throwaway MariaDB server (binlog_format=ROW, GTIDs) and a PostgreSQL server (initdb, wal_level=logical)")
	if err := d.startSource(ctx); err != nil {
		return err
	}
	var err error
	if d.pg, err = pgtest.Start(ctx, pgtest.Options{Name: "demo-target"}); err != nil {
		return err
	}
	say("  source: MariaDB 127.0.0.1:%d (server_id %d)    target: PostgreSQL 127.0.0.1:%d\n", d.src.Port, d.src.ServerID, d.pg.Port)

	step("Load sakila into MariaDB; an empty database on PostgreSQL; the application's account on MariaDB, its login role on PostgreSQL")
	if err := d.loadSakila(ctx); err != nil {
		return err
	}
	if err := storeAccount(ctx, d.src); err != nil {
		return err
	}
	for _, q := range []string{"CREATE DATABASE sakila", fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", storeUser, storePassword)} {
		if err := d.pg.Exec(ctx, "postgres", q); err != nil {
			return err
		}
	}
	if d.tgtConn, err = d.pg.Connect(ctx, "sakila"); err != nil {
		return err
	}
	d.tgtDB = pgReader{d.tgtConn}
	say("  account '%s'@'%%' on MariaDB may read and write sakila (root, the DBA's, is exempt from the\n", storeUser)
	say("  block); login role %s on PostgreSQL, its grants once cutover start has made the schema\n", storeUser)
	return nil
}

func (d *pgDemo) writePlan(ctx context.Context) error {
	step("Write the plan: a mysql:// source, a postgres:// target")
	d.plan = filepath.Join(d.dir, "cutover.yaml")
	if _, err := d.cutover(ctx, "init", "--source", d.src.URL("sakila"), "--target", d.pg.URL("sakila"), "-o", d.plan); err != nil {
		return err
	}
	d.env = []string{"CUTOVER_SOURCE_PASSWORD=" + mytest.Password, "CUTOVER_TARGET_PASSWORD=" + pgtest.Password}
	if err := d.setPlan(); err != nil {
		return err
	}
	if err := setPlan(d.plan, `(?m)^  case_insensitive: none$`, "  case_insensitive: icu"); err != nil {
		return err
	}
	text, _ := os.ReadFile(d.plan)
	say("%s\n  ...\n", indent(firstLines(string(text), 15)))
	if i := strings.Index(string(text), "\ntranslation:"); i >= 0 {
		say("%s\n  ...\n", indent(firstLines(string(text[i+1:]), 7)))
	}
	say("  the demo sets translation.case_insensitive to icu (MariaDB's utf8mb4_general_ci columns get\n")
	say("  an ICU nondeterministic collation: case- and accent-insensitive, as on MariaDB),\n")
	say("  cutover.exempt_roles to [root], cdc.heartbeat to 1s, and api.listen to 127.0.0.1:8420 or a free port\n")
	return d.hooks()
}

// assess runs cutover check, which refuses address.location (GEOMETRY: the target has
// no PostGIS yet), installs the postgis extension in the target database and checks
// again: the column becomes PostGIS's geometry, its SPATIAL index a GiST index.
func (d *pgDemo) assess(ctx context.Context) error {
	step("Assess: cutover check (every table's mapping to PostgreSQL, and what is not carried)")
	out, code, err := d.cutoverShown(ctx, checkExcerpt, "check", "-c", d.plan)
	if err != nil && code != 1 {
		return err
	}
	if code != 1 || !strings.Contains(out, "column sakila.address.location") {
		return errors.New("cutover check should have refused sakila's GEOMETRY column address.location while the target has no PostGIS")
	}
	say("  cutover check exits 1: address.location is a GEOMETRY column, which becomes PostGIS's\n")
	say("  geometry on PostgreSQL, and the target database has no postgis extension yet.\n")

	step("Install PostGIS in the target database (as the DBA, PostgreSQL's superuser) and check again")
	const fix = "CREATE EXTENSION postgis"
	say("  PostgreSQL (database sakila)$ %s\n", fix)
	if err := d.pg.Exec(ctx, "sakila", fix); err != nil {
		return err
	}
	out, _, err = d.cutoverShown(ctx, checkExcerpt, "check", "-c", d.plan)
	if err != nil {
		return fmt.Errorf("cutover check still fails once the target has PostGIS: %w", err)
	}
	gist := findingOf(out, "idx_location")
	if !strings.Contains(gist, "GiST index") {
		return errors.New("cutover check does not say that a GiST index replaces the SPATIAL index idx_location")
	}
	for _, want := range []string{"trigger sakila.rental_date", "view sakila.film_list", "procedure sakila.rewards_report"} {
		if !strings.Contains(out, want) {
			return fmt.Errorf("cutover check does not name %q as not carried", want)
		}
	}
	say("  ready: address.location becomes PostGIS's geometry, each value with its SRID, and its\n")
	say("  SPATIAL index a GiST index; cutover check says of it:\n%s", gist)
	say("  sakila's views, triggers and routines are not carried (each finding has its MySQL\n")
	say("  definition, to write in PostgreSQL's SQL); the application here uses none of them.\n")
	return nil
}

var (
	finding     = regexp.MustCompile(`^(ERROR|WARNING|INFO) +(\S+) `)
	stampedLine = regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3}  `)
)

// notCarriedAgain hides what cutover start says again of what cutover check found not
// carried (the views', triggers' and routines' definitions, many lines each): from a
// line saying "not carried" to the next line with a time.
func notCarriedAgain() *lineFilter {
	hiding := false
	return &lineFilter{why: "what cutover check showed not carried, said again", hide: func(line string) bool {
		if stampedLine.MatchString(line) {
			hiding = strings.Contains(line, "not carried")
		}
		return hiding
	}}
}

// findingOf is the first finding of cutover check's output whose object names name:
// its line and the indented lines under it ("" if there is none).
func findingOf(out, name string) string {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if !finding.MatchString(l) || !strings.Contains(l, name) {
			continue
		}
		block := l + "\n"
		for i+1 < len(lines) && strings.HasPrefix(lines[i+1], " ") {
			i++
			block += lines[i] + "\n"
		}
		return block
	}
	return ""
}

// checkExcerpt is what the demo shows of cutover check's long output: its beginning
// (the servers and the first tables' mapping), every error in full, what is not
// carried counted by kind of object, and the verdict.
func checkExcerpt(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var b strings.Builder
	tables, shown := 0, 0
	notCarried, order := map[string]int{}, []string{}
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(l, "table ") {
			tables++
		}
		if tables <= 2 && !finding.MatchString(l) {
			b.WriteString(l + "\n")
			shown++
			continue
		}
		m := finding.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		block := []string{l}
		for i+1 < len(lines) && strings.HasPrefix(lines[i+1], " ") {
			i++
			block = append(block, lines[i])
		}
		if m[1] == "ERROR" {
			b.WriteString(strings.Join(block, "\n") + "\n\n")
		}
		if strings.Contains(strings.Join(block, " "), "not carried") {
			if notCarried[m[2]] == 0 {
				order = append(order, m[2])
			}
			notCarried[m[2]]++
		}
	}
	fmt.Fprintf(&b, "[... the demo shows the first %d lines of the mapping of %d tables, the errors in full, and counts the rest]\n", shown, tables)
	var kinds []string
	for _, k := range order {
		if n := notCarried[k]; n == 1 {
			kinds = append(kinds, "1 "+k)
		} else if strings.HasSuffix(k, "x") {
			kinds = append(kinds, fmt.Sprintf("%d %ses", n, k))
		} else {
			kinds = append(kinds, fmt.Sprintf("%d %ss", n, k))
		}
	}
	fmt.Fprintf(&b, "[not carried, each with its MySQL definition and what to do: %s]\n", strings.Join(kinds, ", "))
	b.WriteString(lines[len(lines)-1] + "\n")
	return b.String()
}

// showObjects says where sakila's triggers and the application are live after the
// rollback: on MariaDB, its role on PostgreSQL without its login.
func (d *pgDemo) showObjects(ctx context.Context) error {
	triggers, locked, err := mariaObjects(ctx, "source (MariaDB)", d.srcRoot)
	if err != nil {
		return err
	}
	var login bool
	if err := d.tgtConn.QueryRow(ctx, "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", storeUser).Scan(&login); err != nil {
		return err
	}
	say("  the target (PostgreSQL): the application's role %s %s\n", storeUser, map[bool]string{true: "may log in", false: "may not log in (NOLOGIN)"}[login])
	if triggers == 0 || locked != "unlocked" || login {
		return fmt.Errorf("after the rollback MariaDB has %d triggers and the account %s, and the role may log in to PostgreSQL: %v", triggers, locked, login)
	}
	return nil
}

type pgReader struct{ conn *pgx.Conn }

func (r pgReader) row(ctx context.Context, query string, dest ...any) error {
	return r.conn.QueryRow(ctx, query).Scan(dest...)
}
