package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/mytest"
	"github.com/go-sql-driver/mysql"
)

// mariaDemo is the MariaDB part: sakila migrated between two throwaway MariaDB
// servers, switched and rolled back under the application's writes. The part from
// MariaDB to PostgreSQL (pgDemo) is built on it: the same source, writer and steps.
type mariaDemo struct {
	*demo
	src, tgt           *mytest.Server // tgt: nil when the target is PostgreSQL
	srcRoot, tgtRoot   *sql.DB        // root's connections, for the demo's own reads (tgtRoot: nil then too)
	srcDB, tgtDB       reader         // the demo's own reads on each side, whatever its engine
	pointer            string         // the file the hooks write the application's database URL to
	cdc                *background
	api                string // where cutover start serves the dashboard: http://host:port
	switchOut, backOut string // what cutover switch and cutover rollback printed
	says               cutOverSays
	startHides         *lineFilter // what the demo does not print of cutover start's output (nil: nothing)
}

// cutOverSays is what the demo says of the switch and the rollback, which differ by the
// target's engine.
type cutOverSays struct {
	switching, rollingBack string
}

// mariaSays is the switch and the rollback between two MariaDB servers.
var mariaSays = cutOverSays{
	switching: `  The application's account is locked on the source and its session ended; a marker
  through the binary log proves the target has every committed write; a validation of
  what changed; auto-increment counters checked; sakila's triggers move to the target;
  reverse replication starts; the switch hook repoints the application; its account is
  unlocked on the target. The writer logs in there as soon as it may.
`,
	rollingBack: `  The account is locked on the target and its session ended; reverse replication
  catches up; the triggers move back; the switch_back hook repoints the application;
  the account is unlocked on the source, and forward replication goes on.
`,
}

// cdcFromSource begins the line cutover start prints when change data capture follows
// the source, after the load and again after a rollback, whatever the target.
const cdcFromSource = "change data capture from the source"

func runMariaDB(ctx context.Context, bin string) error {
	if !mytest.Installed() {
		return errors.New("the MariaDB server is not installed: make demo installs it when it runs as root (apt-get install mariadb-server)")
	}
	// The driver logs a refused or ended session on its own; the writer says so itself.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	dir, err := os.MkdirTemp("", "cutover-demo-mariadb-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	d := newMariaDemo(bin, dir, mariaSays)
	say("\n\n######## MariaDB: the sakila sample, from one MariaDB server to another ########\n")

	if err := d.servers(ctx); err != nil {
		return err
	}
	defer d.srcRoot.Close()
	defer d.tgtRoot.Close()
	if err := d.writePlan(ctx); err != nil {
		return err
	}
	step("Assess: cutover check")
	if _, err := d.cutover(ctx, "check", "-c", d.plan); err != nil {
		return err
	}

	app, err := d.startApplication(ctx, addr(d.tgt.Port))
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			app.stop()
		}
	}()
	say("  rentals with their payment, returns, customer, address (a GEOMETRY point) and stock\n")
	say("  updates, payment corrections, film descriptions (a trigger copies them to film_text),\n")
	say("  cancellations; each in a transaction; it runs from here on.\n")

	if err := d.startCDC(ctx, app); err != nil {
		return err
	}
	defer d.cdc.stop(time.Minute)

	step("Change data capture under the writer: cutover status")
	if err := d.followed(ctx, app); err != nil {
		return err
	}

	step("Validate while the writer runs: cutover validate")
	if _, err := d.cutover(ctx, "validate", "-c", d.plan); err != nil {
		return err
	}
	pause(d.api, "change data capture runs under the writer, every table validated")

	if err := d.switchAndBack(ctx, app); err != nil {
		return err
	}

	stopped = true
	if err := d.stopApplication(ctx, app); err != nil {
		return err
	}
	step("Compare both sides with the servers' own sums: CHECKSUM TABLE and row counts of every table")
	if err := compareMariaDB(ctx, d.srcRoot, d.tgtRoot); err != nil {
		return err
	}
	if err := d.showObjects(ctx); err != nil {
		return err
	}
	d.downtimes(app)

	step("Finish: cutover finish --yes (the task stops; the control databases dropped)")
	if _, err := d.cutover(ctx, "finish", "--yes", "-c", d.plan); err != nil {
		return err
	}
	code, err := d.cdc.stop(time.Minute)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("cutover start exited %d after cutover finish", code)
	}
	say("  cutover start exited 0 after cutover finish\n")
	step("Done")
	say("  Stopping the MariaDB servers and removing their files.\n")
	for _, s := range []*mytest.Server{d.src, d.tgt} {
		if err := s.Destroy(); err != nil {
			return err
		}
	}
	return nil
}

// newMariaDemo is a part with a MariaDB source, its files in dir.
func newMariaDemo(bin, dir string, says cutOverSays) *mariaDemo {
	return &mariaDemo{demo: &demo{bin: bin, dir: dir}, pointer: filepath.Join(dir, "application-url"), says: says}
}

// startApplication points the application to the source and starts it; tgt is the
// target's address, where the hooks will point it.
func (d *mariaDemo) startApplication(ctx context.Context, tgt string) (*store, error) {
	step(fmt.Sprintf("Start the application: a writer on the source as the account %s, %d transactions a second", storeUser, storeRate))
	if err := os.WriteFile(d.pointer, []byte(d.src.URL("sakila")), 0o600); err != nil {
		return nil, err
	}
	return startStore(ctx, d.pointer, map[string]string{addr(d.src.Port): "source", tgt: "target"}, d.srcRoot)
}

// followed waits for a hundred more of the writer's transactions on the source and for
// its newest rental on the target, and shows cutover status.
func (d *mariaDemo) followed(ctx context.Context, app *store) error {
	if err := d.waitWriter(ctx, app, "source", app.committed("source")+100); err != nil {
		return err
	}
	if err := d.waitApplied(ctx, "target", app.lastRental()); err != nil {
		return err
	}
	_, err := d.cutover(ctx, "status", "-c", d.plan)
	return err
}

// stopApplication stops the writer, which writes one last rental on the source, and
// waits for forward replication to bring it to the target.
func (d *mariaDemo) stopApplication(ctx context.Context, app *store) error {
	step("Stop the writer; forward replication brings its last writes on the source to the target")
	rental, side, err := app.stop()
	if err != nil {
		return err
	}
	if side != "source" {
		return fmt.Errorf("after the rollback the writer wrote its last rental on the %s, not the source", side)
	}
	app.summary()
	if err := d.waitApplied(ctx, "target", rental); err != nil {
		return err
	}
	return d.madeOn(ctx, app, "source")
}

// downtimes prints the write downtimes cutover measured and the application's own gaps.
func (d *mariaDemo) downtimes(app *store) {
	say("\n  write downtime, as cutover measured it: the switch %s, the rollback %s\n", downtime(d.switchOut), downtime(d.backOut))
	for _, m := range app.moves {
		say("  the application's own gap, from its last commit on the %s to its first on the %s: %v\n", m.from, m.to, m.gap.Round(time.Millisecond))
	}
}

// madeOn counts, on both sides, the rentals and payments the writer made on side since
// it last moved there: replication has brought them to the other side.
func (d *mariaDemo) madeOn(ctx context.Context, app *store, side string) error {
	first := app.firstRental(side)
	if first == 0 {
		return fmt.Errorf("the writer has made no rental on the %s", side)
	}
	var n [2][2]int64
	for i, r := range []reader{d.srcDB, d.tgtDB} {
		if err := r.row(ctx, fmt.Sprintf("SELECT (SELECT count(*) FROM sakila.rental WHERE rental_id >= %[1]d), (SELECT count(*) FROM sakila.payment WHERE rental_id >= %[1]d)", first), &n[i][0], &n[i][1]); err != nil {
			return fmt.Errorf("the %s: %w", []string{"source", "target"}[i], err)
		}
	}
	say("  rentals (and payments) the writer made on the %s from rental %d on: %d (%d) on the source, %d (%d) on the target\n",
		side, first, n[0][0], n[0][1], n[1][0], n[1][1])
	return nil
}

// switchAndBack is the cut over under the writer: the switch, the writer moving to
// the target, its writes reaching the source through reverse replication, and the
// rollback, after which the writer is back on the source.
func (d *mariaDemo) switchAndBack(ctx context.Context, app *store) error {
	step("Rehearse the cut over on paper: cutover switch --dry-run (every step and statement, nothing changed)")
	if _, err := d.cutover(ctx, "switch", "--dry-run", "-c", d.plan); err != nil {
		return err
	}

	step("Cut over, with the writer running: cutover switch --yes")
	say("%s", d.says.switching)
	out, _, err := d.cutoverOut(ctx, "switch", "--yes", "--runbook-dir", d.dir, "-c", d.plan)
	if err != nil {
		return err
	}
	d.switchOut = out
	if _, err := d.cdc.waitLine(ctx, "reverse replication (target to source)", time.Minute); err != nil {
		return err
	}
	if err := d.waitWriter(ctx, app, "target", 50); err != nil {
		return err
	}
	say("  the writer: %d transactions committed on the source before the block, %d on the target since the switch\n",
		app.committed("source"), app.committed("target"))

	step("The application writes to the target; reverse replication brings its writes to the source")
	if err := d.waitApplied(ctx, "source", app.lastRental()); err != nil {
		return err
	}
	if err := d.madeOn(ctx, app, "target"); err != nil {
		return err
	}
	if _, err := d.cutover(ctx, "status", "-c", d.plan); err != nil {
		return err
	}
	pause(d.api, "switched: the writer writes to the target, reverse replication brings its writes to the source")

	step("Roll back, with the writer running: cutover rollback")
	say("%s", d.says.rollingBack)
	onSource := app.committed("source") // the writer is on the target: this stays put
	out, _, err = d.cutoverOut(ctx, "rollback", "--runbook-dir", d.dir, "-c", d.plan)
	if err != nil {
		return err
	}
	d.backOut = out
	onTarget := app.committed("target") // and this, now that the target is blocked
	if err := d.waitWriter(ctx, app, "source", onSource+50); err != nil {
		return err
	}
	say("  the writer: %d transactions committed on the target before the block, %d on the source again since the rollback\n", onTarget, app.committed("source")-onSource)
	if _, err := d.cdc.waitNth(ctx, cdcFromSource, 2, time.Minute); err != nil {
		return err
	}
	if _, err := d.cutover(ctx, "status", "-c", d.plan); err != nil {
		return err
	}
	pause(d.api, "rolled back: the source is live again")
	return nil
}

// waitWriter waits until the writer has committed n transactions on side.
func (d *mariaDemo) waitWriter(ctx context.Context, app *store, side string, n int) error {
	deadline := time.Now().Add(2 * time.Minute)
	for app.committed(side) < n {
		select {
		case err := <-app.done:
			app.done <- err
			return fmt.Errorf("the writer stopped before it wrote on the %s: %v", side, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the writer did not commit %d transactions on the %s within 2 minutes (it has %d)", n, side, app.committed(side))
		}
	}
	return nil
}

// waitApplied waits until the rental reached the side's server: every transaction the
// writer committed before it did too, as replication applies in commit order.
func (d *mariaDemo) waitApplied(ctx context.Context, side string, rental int64) error {
	db := d.srcDB
	if side == "target" {
		db = d.tgtDB
	}
	began := time.Now()
	for {
		var n int64
		if err := db.row(ctx, fmt.Sprintf("SELECT count(*) FROM sakila.rental WHERE rental_id = %d", rental), &n); err != nil {
			return fmt.Errorf("the %s: %w", side, err)
		}
		if n == 1 {
			say("  the writer's newest rental, %d, is on the %s (waited %v for it)\n", rental, side, time.Since(began).Round(time.Millisecond))
			return nil
		}
		if time.Since(began) > time.Minute {
			return fmt.Errorf("the writer's rental %d did not reach the %s within a minute", rental, side)
		}
		select {
		case <-d.cdc.done:
			return fmt.Errorf("cutover start ended (%v) before rental %d reached the %s", d.cdc.exitErr(), rental, side)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// servers starts the source and the target, loads sakila into the source and makes
// the application's account on both.
func (d *mariaDemo) servers(ctx context.Context) error {
	step("Start two throwaway MariaDB servers (mariadb-install-db, free ports, binlog_format=ROW, GTIDs)")
	if err := d.startSource(ctx); err != nil {
		return err
	}
	var err error
	if d.tgt, err = mytest.Start(ctx, mytest.Options{Name: "demo-target"}); err != nil {
		return err
	}
	say("  source: 127.0.0.1:%d (server_id %d)    target: 127.0.0.1:%d (server_id %d)\n", d.src.Port, d.src.ServerID, d.tgt.Port, d.tgt.ServerID)
	if d.tgtRoot, err = d.tgt.Open(""); err != nil {
		return err
	}
	d.tgtDB = mariaReader{d.tgtRoot}

	step("Load the sakila sample into the source; an empty database on the target; the application's account on both")
	if err := d.loadSakila(ctx); err != nil {
		return err
	}
	if err := d.tgt.Exec(ctx, "", "CREATE DATABASE sakila"); err != nil {
		return err
	}
	for _, s := range []*mytest.Server{d.src, d.tgt} {
		if err := storeAccount(ctx, s); err != nil {
			return err
		}
	}
	say("  account '%s'@'%%' on both servers may read and write sakila (root, the DBA's, is exempt from the switch's block)\n", storeUser)
	return nil
}

// startSource starts the MariaDB source and opens root's connections to it.
func (d *mariaDemo) startSource(ctx context.Context) error {
	var err error
	if d.src, err = mytest.Start(ctx, mytest.Options{Name: "demo-source"}); err != nil {
		return err
	}
	if d.srcRoot, err = d.src.Open(""); err != nil {
		return err
	}
	d.srcDB = mariaReader{d.srcRoot}
	return nil
}

// loadSakila loads the sakila sample into the source.
func (d *mariaDemo) loadSakila(ctx context.Context) error {
	start := time.Now()
	if err := mytest.LoadSakila(ctx, d.src); err != nil {
		return err
	}
	var tables, rows int64
	if err := d.srcRoot.QueryRowContext(ctx, "SELECT count(*), sum(table_rows) FROM information_schema.TABLES WHERE table_schema = 'sakila' AND table_type = 'BASE TABLE'").Scan(&tables, &rows); err != nil {
		return err
	}
	say("  loaded in %v with the mariadb client: %d tables (about %d rows), views, triggers, routines;\n", time.Since(start).Round(time.Millisecond), tables, rows)
	say("  address.location (GEOMETRY, SPATIAL index) added with the data file's values: MariaDB skips\n")
	say("  the MySQL 5.7 version comments the scripts write it in\n")
	return nil
}

// storeAccount creates the application's account on a MariaDB server.
func storeAccount(ctx context.Context, s *mytest.Server) error {
	return s.Exec(ctx, "", fmt.Sprintf("CREATE USER '%[1]s'@'%%' IDENTIFIED BY '%[2]s'; GRANT SELECT, INSERT, UPDATE, DELETE ON sakila.* TO '%[1]s'@'%%'", storeUser, storePassword))
}

func (d *mariaDemo) writePlan(ctx context.Context) error {
	step("Write the plan")
	d.plan = filepath.Join(d.dir, "cutover.yaml")
	if _, err := d.cutover(ctx, "init", "--source", d.src.URL("sakila"), "--target", d.tgt.URL("sakila"), "-o", d.plan); err != nil {
		return err
	}
	d.env = []string{"CUTOVER_SOURCE_PASSWORD=" + mytest.Password, "CUTOVER_TARGET_PASSWORD=" + mytest.Password}
	if err := d.setPlan(); err != nil {
		return err
	}
	head, _ := os.ReadFile(d.plan)
	say("%s  ...\n", indent(firstLines(string(head), 16)))
	say("  the demo sets cutover.exempt_roles to [root] (the DBA's account, which the block leaves\n")
	say("  alone), cdc.heartbeat to 1s, and api.listen to 127.0.0.1:8420 or a free port\n")
	return d.hooks()
}

// setPlan sets what the demo changes in the plan cutover init wrote from a MariaDB
// source: the api's port, root exempt from the block, a heartbeat a second.
func (d *mariaDemo) setPlan() error {
	if err := listenOnFreePort(d.plan); err != nil {
		return err
	}
	if err := setPlan(d.plan, `(?m)^  exempt_roles: \[\]$`, "  exempt_roles: [root]"); err != nil {
		return err
	}
	return setPlan(d.plan, `(?m)^  heartbeat: 5s$`, "  heartbeat: 1s")
}

// startCDC starts cutover start in the background and waits until the full load is
// done and change data capture follows the source's binary log.
func (d *mariaDemo) startCDC(ctx context.Context, app *store) error {
	step("cutover start, in the background: the full load under the writer, then change data capture")
	began := time.Now()
	bg, err := d.backgroundHiding(ctx, d.startHides, "start", "-c", d.plan)
	if err != nil {
		return err
	}
	d.cdc = bg
	line, err := bg.waitLine(ctx, "serving /metrics and /api/status on http://", time.Minute)
	if err != nil {
		return err
	}
	d.api = line[strings.LastIndex(line, "http://"):]
	say("\n  >>> the dashboard: open %s/ in a browser while the demo runs\n", d.api)
	if _, err := bg.waitLine(ctx, cdcFromSource, 5*time.Minute); err != nil {
		return err
	}
	say("\n  full load done and change data capture running %v after cutover start; the writer has made %d transactions\n",
		time.Since(began).Round(time.Millisecond), app.committed("source"))
	return nil
}

// showObjects says where sakila's triggers and the application's account are live,
// after the rollback: on the source.
func (d *mariaDemo) showObjects(ctx context.Context) error {
	if _, _, err := mariaObjects(ctx, "source", d.srcRoot); err != nil {
		return err
	}
	triggers, locked, err := mariaObjects(ctx, "target", d.tgtRoot)
	if err != nil {
		return err
	}
	if triggers != 0 || locked != "locked" {
		return fmt.Errorf("after the rollback the target has %d triggers and the application's account %s there; want none and locked", triggers, locked)
	}
	return nil
}

// mariaObjects prints and returns sakila's triggers on a MariaDB server and whether the
// application's account is locked there, with its views and routines.
func mariaObjects(ctx context.Context, side string, db *sql.DB) (triggers int, locked string, err error) {
	var views, routines int
	if err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM information_schema.TRIGGERS WHERE trigger_schema = 'sakila'),
		(SELECT count(*) FROM information_schema.VIEWS WHERE table_schema = 'sakila'),
		(SELECT count(*) FROM information_schema.ROUTINES WHERE routine_schema = 'sakila')`).Scan(&triggers, &views, &routines); err != nil {
		return 0, "", err
	}
	if err := db.QueryRowContext(ctx, "SELECT IF(JSON_VALUE(priv, '$.account_locked'), 'locked', 'unlocked') FROM mysql.global_priv WHERE user = ? AND host = '%'", storeUser).Scan(&locked); err != nil {
		return 0, "", err
	}
	say("  the %s: %d triggers, %d views, %d routines; the application's account %s\n", side, triggers, views, routines, locked)
	return triggers, locked, nil
}

var downtimeLine = regexp.MustCompile(`write downtime: ([^\s,;(]+)`)

// downtime is the write downtime a switch or rollback printed.
func downtime(out string) string {
	if m := downtimeLine.FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return "(not printed)"
}

// setPlan replaces the one line of the plan re matches.
func setPlan(plan, re, line string) error {
	text, err := os.ReadFile(plan)
	if err != nil {
		return err
	}
	rx := regexp.MustCompile(re)
	if n := len(rx.FindAllIndex(text, -1)); n != 1 {
		return fmt.Errorf("%s: expected one line matching %s, found %d", plan, re, n)
	}
	return os.WriteFile(plan, rx.ReplaceAllLiteral(text, []byte(line)), 0o600)
}

// addr is a local server's address, as the pointer file's URLs have it.
func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// reader is the demo's own reads, on either engine: one row of a query, scanned.
type reader interface {
	row(ctx context.Context, query string, dest ...any) error
}

type mariaReader struct{ db *sql.DB }

func (r mariaReader) row(ctx context.Context, query string, dest ...any) error {
	return r.db.QueryRowContext(ctx, query).Scan(dest...)
}

// compareMariaDB compares every base table of sakila on both servers by row count and
// CHECKSUM TABLE (both servers run the same version, so the same rows give the same
// sum); an error if any differs.
func compareMariaDB(ctx context.Context, src, tgt *sql.DB) error {
	rows, err := src.QueryContext(ctx, "SELECT table_name FROM information_schema.TABLES WHERE table_schema = 'sakila' AND table_type = 'BASE TABLE' ORDER BY 1")
	if err != nil {
		return err
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	say("  %-14s  %11s  %11s  %s\n", "TABLE", "SOURCE ROWS", "TARGET ROWS", "CHECKSUM TABLE")
	bad, total := 0, int64(0)
	for _, t := range tables {
		var sums [2]string
		var counts [2]int64
		for i, db := range []*sql.DB{src, tgt} {
			name := "sakila." + quoteName(t)
			if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+name).Scan(&counts[i]); err != nil {
				return fmt.Errorf("table %s: %w", t, err)
			}
			var n string
			var sum sql.NullString
			if err := db.QueryRowContext(ctx, "CHECKSUM TABLE "+name+" EXTENDED").Scan(&n, &sum); err != nil {
				return fmt.Errorf("CHECKSUM TABLE %s: %w", t, err)
			}
			sums[i] = sum.String
		}
		verdict := "same (" + sums[0] + ")"
		if counts[0] != counts[1] || sums[0] != sums[1] || sums[0] == "" {
			verdict = fmt.Sprintf("DIFFERENT: %s on the source, %s on the target", sums[0], sums[1])
			bad++
		}
		total += counts[0]
		say("  %-14s  %11d  %11d  %s\n", t, counts[0], counts[1], verdict)
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d tables differ between the source and the target", bad, len(tables))
	}
	say("  %d tables, %d rows: the target holds exactly what the source holds\n", len(tables), total)
	return nil
}

// quoteName quotes a MariaDB identifier.
func quoteName(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
