// Command demo is `make demo`: the migration so far, end to end, on throwaway local
// servers it starts and removes itself: pagila between two PostgreSQL servers, then
// sakila between two MariaDB servers, then sakila moved live from MariaDB to
// PostgreSQL, switched and rolled back (CUTOVER_DEMO_ENGINE=postgres, mariadb or
// mysqlpg runs one of them).
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/mytest"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/jackc/pgx/v5"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	pgtest.StopAll()
	if err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		os.Exit(1)
	}
}

type demo struct {
	bin string // the cutover binary
	dir string // where the plan lives
	env []string

	src, tgt *pgtest.Server
	plan     string // the plan file
	cron     bool   // the servers run pg_cron
}

func run(ctx context.Context) error {
	bin, err := filepath.Abs(envOr("CUTOVER_BIN", "bin/cutover"))
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s not found: build it first (make build)", bin)
	}
	engine := os.Getenv("CUTOVER_DEMO_ENGINE")
	switch engine {
	case "", "postgres", "mariadb", "mysqlpg":
	default:
		return fmt.Errorf("CUTOVER_DEMO_ENGINE=%s: want postgres, mariadb, mysqlpg or nothing (all three)", engine)
	}
	if engine == "" || engine == "postgres" {
		if err := runPostgres(ctx, bin); err != nil {
			return err
		}
	}
	if engine == "" && !mytest.Installed() {
		say("\nThe MariaDB server is not installed (make demo installs it when it runs as root:\n")
		say("apt-get install mariadb-server): the MariaDB parts of the demo are left out.\n")
		return nil
	}
	if engine == "" || engine == "mariadb" {
		if err := runMariaDB(ctx, bin); err != nil {
			return err
		}
	}
	if engine == "" || engine == "mysqlpg" {
		return runMySQLToPostgres(ctx, bin)
	}
	return nil
}

// runPostgres is the PostgreSQL part: pagila, from one PostgreSQL server to another.
func runPostgres(ctx context.Context, bin string) error {
	dir, err := os.MkdirTemp("", "cutover-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	d := &demo{bin: bin, dir: dir}

	if err := d.servers(ctx); err != nil {
		return err
	}
	if err := d.writePlan(ctx); err != nil {
		return err
	}
	if err := d.assess(ctx); err != nil {
		return err
	}
	sc, err := d.src.Connect(ctx, "pagila")
	if err != nil {
		return err
	}
	defer sc.Close(ctx)
	tc, err := d.tgt.Connect(ctx, "pagila")
	if err != nil {
		return err
	}
	defer tc.Close(ctx)

	step(fmt.Sprintf("Start the application: a writer on the source, %d transactions a second", writeRate))
	app, err := startWriter(ctx, d.src)
	if err != nil {
		return err
	}
	defer app.stop()
	say("  rentals with their payment (dated into pagila's monthly payment partitions), returns,\n")
	say("  customer and inventory updates, payment corrections (some move the row to another\n")
	say("  partition), cancellations deleting a rental and its payment; it runs from here on.\n")

	step("cutover start, in the background: the full load under the writer, then change data capture")
	cdc, err := d.startCDC(ctx, app)
	if err != nil {
		return err
	}
	defer cdc.stop(time.Minute)

	step("Change data capture under the writer: cutover's report, cutover status, /metrics")
	if err := d.watchCDC(ctx, cdc, tc); err != nil {
		return err
	}

	step("The application deploys a schema change while the writer runs: it goes through CDC")
	if err := schemaChange(ctx, cdc, sc, tc); err != nil {
		return err
	}

	step("Validate while the writer runs: cutover validate")
	say("  Each table is compared in key-range chunks, a count and a hash computed inside each\n")
	say("  database, at one point of the change stream on both sides; rows are compared one by\n")
	say("  one only where a chunk differs. It must find every table equal, under the writer.\n")
	if _, err := d.cutover(ctx, "validate", "-c", d.plan); err != nil {
		return err
	}
	pause(cdc.api, "change data capture runs under the writer, every table validated")

	if err := d.switchOver(ctx, app, cdc, sc, tc); err != nil {
		return err
	}
	step("Done")
	say("  Stopping the servers and removing their files.\n")
	for _, s := range []*pgtest.Server{d.src, d.tgt} {
		if err := s.Destroy(); err != nil {
			return err
		}
	}
	return nil
}

// switchOver is the cut over: a dry run, the switch under the writer with its runbook,
// a write on the new database that reverse replication brings to the old one, a
// rollback, and finish.
func (d *demo) switchOver(ctx context.Context, app *application, cdc *capture, sc, tc *pgx.Conn) error {
	step("Rehearse the cut over on paper: cutover switch --dry-run (every step and statement, nothing changed)")
	if _, err := d.cutover(ctx, "switch", "--dry-run", "-c", d.plan); err != nil {
		return err
	}

	step("Cut over, with the writer running: cutover switch")
	say("  The writer's role loses its login on the source and its session ends; a marker through\n")
	say("  the change stream proves the target has every committed write; an incremental\n")
	say("  validation; sequences set; reverse replication starts; the switch hook repoints the\n")
	say("  application; the role logs in to the target. The runbook measures the write downtime.\n")
	if _, err := d.cutover(ctx, "switch", "--runbook-dir", d.dir, "-c", d.plan); err != nil {
		return err
	}
	if err := app.stop(); err != nil {
		return err
	}
	if !app.cutOff {
		return errors.New("the writer was not cut off by the switch's block")
	}
	app.summary()
	runbooks, _ := filepath.Glob(filepath.Join(d.dir, "cutover-runbook-sw-*.md"))
	if len(runbooks) == 1 {
		text, _ := os.ReadFile(runbooks[0])
		say("\n  $ cat %s\n%s", filepath.Base(runbooks[0]), indent(strings.TrimRight(string(text), "\n")))
		say("\n")
	}
	pause(cdc.api, "switched: the dashboard shows the switch's steps and its downtime")

	step("Every transaction the writer committed on the source is on the target: compare every table")
	if err := compareTables(ctx, sc, tc); err != nil {
		return err
	}

	step("The application now writes to the target; reverse replication brings its writes to the source")
	newApp, err := pgx.Connect(ctx, appURL(d.tgt))
	if err != nil {
		return fmt.Errorf("the application cannot log in to the target after the switch: %w", err)
	}
	w, err := newWriter(ctx, newApp)
	if err == nil {
		for i := 0; i < 20 && err == nil; i++ {
			_, err = w.one(ctx)
		}
	}
	newApp.Close(ctx)
	if err != nil {
		return fmt.Errorf("writing on the target after the switch: %w", err)
	}
	say("  20 transactions written on the target\n")
	if _, err := d.cutover(ctx, "status", "-c", d.plan); err != nil {
		return err
	}

	step("Roll back: cutover rollback (the target's users blocked, reverse replication caught up, the source live again)")
	if _, err := d.cutover(ctx, "rollback", "--runbook-dir", d.dir, "-c", d.plan); err != nil {
		return err
	}
	step("The writes made on the target are on the source: compare every table")
	if err := compareTables(ctx, sc, tc); err != nil {
		return err
	}
	if _, err := d.cutover(ctx, "status", "-c", d.plan); err != nil {
		return err
	}
	pause(cdc.api, "rolled back: the source is live again")

	step("Finish: cutover finish --yes (the task stops; slots, publications and control schemas dropped)")
	if _, err := d.cutover(ctx, "finish", "--yes", "-c", d.plan); err != nil {
		return err
	}
	code, err := cdc.stop(time.Minute)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("cutover start exited %d after cutover finish", code)
	}
	say("  cutover start exited 0 after cutover finish\n")
	return nil
}

// servers starts the source and the target and loads pagila into the source.
func (d *demo) servers(ctx context.Context) error {
	step("Start two throwaway PostgreSQL servers (initdb, free ports, wal_level=logical)")
	var err error
	var settings map[string]string
	d.cron = pgtest.CronInstalled()
	if d.cron {
		settings = map[string]string{"shared_preload_libraries": "'pg_cron'", "cron.database_name": "'postgres'"}
	}
	if d.src, err = pgtest.Start(ctx, pgtest.Options{Name: "demo-source", Settings: settings}); err != nil {
		return err
	}
	if d.tgt, err = pgtest.Start(ctx, pgtest.Options{Name: "demo-target", Settings: settings}); err != nil {
		return err
	}
	say("  source: 127.0.0.1:%d    target: 127.0.0.1:%d\n", d.src.Port, d.tgt.Port)

	step("Load the pagila sample into the source; create an empty database on the target; the application's role on both")
	start := time.Now()
	for _, s := range []*pgtest.Server{d.src, d.tgt} {
		for _, q := range []string{"CREATE DATABASE pagila", fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", appRole, appPassword)} {
			if err := s.Exec(ctx, "postgres", q); err != nil {
				return err
			}
		}
		if d.cron {
			if err := s.Exec(ctx, "postgres", "CREATE EXTENSION pg_cron"); err != nil {
				return err
			}
		}
	}
	if err := pgtest.LoadPagila(ctx, d.src, "pagila"); err != nil {
		return err
	}
	grant := fmt.Sprintf("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %[1]s; GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO %[1]s", appRole)
	if err := d.src.Exec(ctx, "pagila", grant); err != nil {
		return err
	}
	say("  loaded in %v; role %s may read and write every table\n", time.Since(start).Round(time.Millisecond), appRole)
	if d.cron {
		if err := d.src.Exec(ctx, "postgres", "SELECT cron.schedule_in_database('nightly-analyze', '0 3 * * *', 'ANALYZE public.rental', 'pagila')"); err != nil {
			return err
		}
		say("  a pg_cron job on the source: nightly-analyze (the switch moves it to the target)\n")
	}
	return nil
}

func (d *demo) writePlan(ctx context.Context) error {
	step("Write the plan")
	d.plan = filepath.Join(d.dir, "cutover.yaml")
	if _, err := d.cutover(ctx, "init", "--source", d.src.URL("pagila"), "--target", d.tgt.URL("pagila"), "-o", d.plan); err != nil {
		return err
	}
	// init moved the passwords out of the URLs; the plan reads them from the environment.
	d.env = []string{"CUTOVER_SOURCE_PASSWORD=" + pgtest.Password, "CUTOVER_TARGET_PASSWORD=" + pgtest.Password}
	head, _ := os.ReadFile(d.plan)
	say("%s  ...\n", indent(firstLines(string(head), 20)))
	if err := listenOnFreePort(d.plan); err != nil {
		return err
	}
	say("  (the demo sets api.listen to 127.0.0.1:8420, or a free port when that one is taken)\n")
	if err := d.hooks(); err != nil {
		return err
	}
	return nil
}

// assess runs cutover check, applies the fixes it prints, and checks again.
func (d *demo) assess(ctx context.Context) error {
	step("Assess: cutover check")
	code, err := d.cutover(ctx, "check", "-c", d.plan)
	if err != nil && code != 1 {
		return err
	}
	if code != 1 {
		return errors.New("cutover check should have found pagila's REPLICA IDENTITY NOTHING table (public.country)")
	}
	say("  cutover check exits 1: pagila ships public.country with REPLICA IDENTITY NOTHING, and two\n")
	say("  payment partitions without the primary key their siblings have; once published, the\n")
	say("  application's UPDATE and DELETE on them would fail on the source.\n")

	step("Apply the fixes check printed, on the source, and check again")
	for _, fix := range []string{
		"ALTER TABLE public.country REPLICA IDENTITY DEFAULT;",
		"ALTER TABLE public.payment_p0000_default ADD PRIMARY KEY (payment_id);",
		"ALTER TABLE public.payment_p2007_07_max ADD PRIMARY KEY (payment_id);",
	} {
		say("  $ psql -c %q\n", fix)
		if err := d.src.Exec(ctx, "pagila", fix); err != nil {
			return err
		}
	}
	if _, err := d.cutover(ctx, "check", "-c", d.plan); err != nil {
		return fmt.Errorf("cutover check still fails after the fix: %w", err)
	}
	return nil
}

// cutover runs the binary and returns its exit code. Its output is printed in one
// piece, so that a cutover running in the background does not cut into it.
func (d *demo) cutover(ctx context.Context, args ...string) (int, error) {
	_, code, err := d.cutoverOut(ctx, args...)
	return code, err
}

// cutoverOut is cutover that also returns what the command printed.
func (d *demo) cutoverOut(ctx context.Context, args ...string) (string, int, error) {
	return d.cutoverShown(ctx, func(out string) string { return out }, args...)
}

// cutoverShown is cutoverOut that prints what show makes of the output (an excerpt
// of a long one).
func (d *demo) cutoverShown(ctx context.Context, show func(string) string, args ...string) (string, int, error) {
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Env = append(os.Environ(), d.env...)
	out, err := cmd.CombinedOutput()
	say("\n  $ cutover %s\n%s", strings.Join(masked(args), " "), show(string(out)))
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode(), fmt.Errorf("cutover %s: exit %d", args[0], exit.ExitCode())
	}
	return string(out), 0, err
}

func masked(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(strings.ReplaceAll(a, pgtest.Password, "xxxxx"), mytest.Password, "xxxxx")
	}
	return out
}

// stdout is shared by the demo and the cutover it runs in the background: whole
// lines and whole blocks, never interleaved.
var stdout sync.Mutex

func say(format string, args ...any) {
	stdout.Lock()
	defer stdout.Unlock()
	fmt.Printf(format, args...)
}

func step(title string) { say("\n== %s\n", title) }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

func indent(s string) string { return "  | " + strings.ReplaceAll(s, "\n", "\n  | ") }

// hooks sets the plan's switch and switch_back hooks: a script that would repoint the
// application (here it says where it points, and writes it to application-url, which
// the MariaDB part's writer follows).
func (d *demo) hooks() error {
	script := filepath.Join(d.dir, "repoint.sh")
	// The URL is written beside the pointer, then renamed over it: the application
	// reads either the old URL or the new one, never a file half written.
	body := "#!/bin/sh\necho \"repointing the application ($CUTOVER_STEP) to $1\"\ndir=\"$(dirname \"$0\")\"\n" +
		"printf '%s\\n' \"$1\" > \"$dir/application-url.new\" && mv \"$dir/application-url.new\" \"$dir/application-url\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		return err
	}
	text, err := os.ReadFile(d.plan)
	if err != nil {
		return err
	}
	for key, arg := range map[string]string{"switch": "$CUTOVER_TARGET_URL", "switch_back": "$CUTOVER_SOURCE_URL"} {
		re := regexp.MustCompile(`(?m)^    ` + key + `: \[\]`)
		if !re.Match(text) {
			return fmt.Errorf("%s: no cutover.hooks.%s line to set", d.plan, key)
		}
		text = re.ReplaceAllLiteral(text, []byte(fmt.Sprintf(`    %s: ["%s %s"]`, key, script, arg)))
	}
	say("  the switch and switch_back hooks run %s, which would repoint the application\n", script)
	return os.WriteFile(d.plan, text, 0o600)
}

// listenOnFreePort sets the plan's api.listen to the default loopback port when it
// is free, or else to any free one, so the demo never clashes with a cutover
// already serving the default port.
func listenOnFreePort(plan string) error {
	addr := "127.0.0.1:0"
	if ln, err := net.Listen("tcp", "127.0.0.1:8420"); err == nil {
		ln.Close()
		addr = "127.0.0.1:8420"
	}
	text, err := os.ReadFile(plan)
	if err != nil {
		return err
	}
	listen := regexp.MustCompile(`(?m)^  listen: .*$`)
	if n := len(listen.FindAllIndex(text, -1)); n != 1 {
		return fmt.Errorf("%s: expected one api.listen line, found %d", plan, n)
	}
	return os.WriteFile(plan, listen.ReplaceAll(text, []byte(`  listen: "`+addr+`"`)), 0o600)
}
