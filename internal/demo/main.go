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
	"strings"
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

	step("Start two throwaway PostgreSQL servers (initdb, free ports, wal_level=logical)")
	src, err := pgtest.Start(ctx, pgtest.Options{Name: "demo-source"})
	if err != nil {
		return err
	}
	tgt, err := pgtest.Start(ctx, pgtest.Options{Name: "demo-target"})
	if err != nil {
		return err
	}
	fmt.Printf("  source: 127.0.0.1:%d    target: 127.0.0.1:%d\n", src.Port, tgt.Port)

	step("Load the pagila sample into the source; create an empty database on the target")
	start := time.Now()
	for _, s := range []*pgtest.Server{src, tgt} {
		if err := s.Exec(ctx, "postgres", "CREATE DATABASE pagila"); err != nil {
			return err
		}
	}
	if err := pgtest.LoadPagila(ctx, src, "pagila"); err != nil {
		return err
	}
	fmt.Printf("  loaded in %v\n", time.Since(start).Round(time.Millisecond))

	step("Write the plan")
	plan := filepath.Join(dir, "cutover.yaml")
	if _, err := d.cutover(ctx, "init", "--source", src.URL("pagila"), "--target", tgt.URL("pagila"), "-o", plan); err != nil {
		return err
	}
	// init moved the passwords out of the URLs; the plan reads them from the environment.
	d.env = []string{"CUTOVER_SOURCE_PASSWORD=" + pgtest.Password, "CUTOVER_TARGET_PASSWORD=" + pgtest.Password}
	head, _ := os.ReadFile(plan)
	fmt.Println(indent(firstLines(string(head), 20)) + "  ...")

	step("Assess: cutover check")
	code, err := d.cutover(ctx, "check", "-c", plan)
	if err != nil && code != 1 {
		return err
	}
	if code != 1 {
		return errors.New("cutover check should have found pagila's REPLICA IDENTITY NOTHING table (public.country)")
	}
	fmt.Println("  cutover check exits 1: pagila ships public.country with REPLICA IDENTITY NOTHING, and two")
	fmt.Println("  payment partitions without the primary key their siblings have; once published, the")
	fmt.Println("  application's UPDATE and DELETE on them would fail on the source.")

	step("Apply the fixes check printed, on the source, and check again")
	for _, fix := range []string{
		"ALTER TABLE public.country REPLICA IDENTITY DEFAULT;",
		"ALTER TABLE public.payment_p0000_default ADD PRIMARY KEY (payment_id);",
		"ALTER TABLE public.payment_p2007_07_max ADD PRIMARY KEY (payment_id);",
	} {
		fmt.Printf("  $ psql -c %q\n", fix)
		if err := src.Exec(ctx, "pagila", fix); err != nil {
			return err
		}
	}
	if _, err := d.cutover(ctx, "check", "-c", plan); err != nil {
		return fmt.Errorf("cutover check still fails after the fix: %w", err)
	}

	step("Full load: schema, every table from one consistent snapshot, then indexes and constraints")
	if _, err := d.cutover(ctx, "start", "--full-load-only", "-c", plan); err != nil {
		return err
	}
	if _, err := d.cutover(ctx, "status", "-c", plan); err != nil {
		return err
	}

	step("Compare: row counts on both sides, with SQL independent of cutover")
	if err := compareCounts(ctx, src, tgt); err != nil {
		return err
	}

	step("Done")
	fmt.Println("  Change data capture, validation and the cut over come in the next releases;")
	fmt.Println("  this demo will show each as it lands.")
	fmt.Println("  Stopping the servers and removing their files.")
	return nil
}

// compareCounts prints each table's row count on the source and the target.
func compareCounts(ctx context.Context, src, tgt *pgtest.Server) error {
	const q = `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'cutover') AND n.nspname NOT LIKE 'pg\_%' ORDER BY 1`
	sc, err := src.Connect(ctx, "pagila")
	if err != nil {
		return err
	}
	defer sc.Close(ctx)
	tc, err := tgt.Connect(ctx, "pagila")
	if err != nil {
		return err
	}
	defer tc.Close(ctx)
	rows, err := sc.Query(ctx, q)
	if err != nil {
		return err
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return err
		}
		tables = append(tables, t)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	bad := 0
	for _, t := range tables {
		var a, b int64
		if err := sc.QueryRow(ctx, "SELECT count(*) FROM ONLY "+t).Scan(&a); err != nil {
			return err
		}
		if err := tc.QueryRow(ctx, "SELECT count(*) FROM ONLY "+t).Scan(&b); err != nil {
			return fmt.Errorf("%s on the target: %w", t, err)
		}
		mark := "ok"
		if a != b {
			mark = "DIFFERENT"
			bad++
		}
		fmt.Printf("  %-34s source %6d  target %6d  %s\n", t, a, b, mark)
	}
	if bad > 0 {
		return fmt.Errorf("%d tables differ", bad)
	}
	return nil
}

// cutover runs the binary, streaming its output, and returns its exit code.
func (d *demo) cutover(ctx context.Context, args ...string) (int, error) {
	fmt.Printf("\n  $ cutover %s\n", strings.Join(masked(args), " "))
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Env = append(os.Environ(), d.env...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err := cmd.Run()
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

func step(title string) { fmt.Printf("\n== %s\n", title) }

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
