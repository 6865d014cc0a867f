// Command demo is `make demo`: the migration so far, end to end, on two throwaway
// local PostgreSQL servers it starts and removes itself.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/pgtest"
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
}

func run(ctx context.Context) error {
	bin, err := filepath.Abs(envOr("CUTOVER_BIN", "bin/cutover"))
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s not found: build it first (make build)", bin)
	}
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

	step("Validate while the writer runs: cutover validate")
	say("  Each table is compared in key-range chunks, a count and a hash computed inside each\n")
	say("  database, at one point of the change stream on both sides; rows are compared one by\n")
	say("  one only where a chunk differs. It must find every table equal, under the writer.\n")
	if _, err := d.cutover(ctx, "validate", "-c", d.plan); err != nil {
		return err
	}

	step("Stop the writer; wait until the target has applied everything it wrote; stop cutover")
	if err := app.stop(); err != nil {
		return err
	}
	app.summary()
	if err := catchUp(ctx, sc, tc); err != nil {
		return err
	}
	if err := stopCDC(cdc); err != nil {
		return err
	}

	step("Compare every table: row count and a hash of every row, with SQL independent of cutover")
	if err := compareTables(ctx, sc, tc); err != nil {
		return err
	}

	step("Done")
	say("  The cut over (cutover switch) comes in the next releases;\n")
	say("  this demo will show each as it lands.\n")
	say("  Stopping the servers and removing their files.\n")
	return nil
}

// servers starts the source and the target and loads pagila into the source.
func (d *demo) servers(ctx context.Context) error {
	step("Start two throwaway PostgreSQL servers (initdb, free ports, wal_level=logical)")
	var err error
	if d.src, err = pgtest.Start(ctx, pgtest.Options{Name: "demo-source"}); err != nil {
		return err
	}
	if d.tgt, err = pgtest.Start(ctx, pgtest.Options{Name: "demo-target"}); err != nil {
		return err
	}
	say("  source: 127.0.0.1:%d    target: 127.0.0.1:%d\n", d.src.Port, d.tgt.Port)

	step("Load the pagila sample into the source; create an empty database on the target")
	start := time.Now()
	for _, s := range []*pgtest.Server{d.src, d.tgt} {
		if err := s.Exec(ctx, "postgres", "CREATE DATABASE pagila"); err != nil {
			return err
		}
	}
	if err := pgtest.LoadPagila(ctx, d.src, "pagila"); err != nil {
		return err
	}
	say("  loaded in %v\n", time.Since(start).Round(time.Millisecond))
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
	say("  (the demo sets api.listen to 127.0.0.1:0: a free port, which cutover start prints)\n")
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
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Env = append(os.Environ(), d.env...)
	out, err := cmd.CombinedOutput()
	say("\n  $ cutover %s\n%s", strings.Join(masked(args), " "), out)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), fmt.Errorf("cutover %s: exit %d", args[0], exit.ExitCode())
	}
	return 0, err
}

func masked(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, pgtest.Password, "xxxxx")
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

// listenOnFreePort sets the plan's api.listen to a free loopback port, so the demo
// never clashes with a cutover already serving the default port.
func listenOnFreePort(plan string) error {
	text, err := os.ReadFile(plan)
	if err != nil {
		return err
	}
	listen := regexp.MustCompile(`(?m)^  listen: .*$`)
	if n := len(listen.FindAllIndex(text, -1)); n != 1 {
		return fmt.Errorf("%s: expected one api.listen line, found %d", plan, n)
	}
	return os.WriteFile(plan, listen.ReplaceAll(text, []byte(`  listen: "127.0.0.1:0"`)), 0o600)
}
