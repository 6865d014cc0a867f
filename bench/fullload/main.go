// Command fullload benchmarks cutover's full load against its peers in one run, on
// throwaway servers: pgbench scale 30 on a source, then each tool copies it into a
// fresh database on a target. Run with: make bench-fullload (SCALE=30 by default).
//
// Rows: cutover start --full-load-only (the load that precedes change data capture),
// cutover's one-shot copy (cdc: {enabled: false}: one exported snapshot, no slot, no
// publication), and the peers pg_dump -Fd -j2 + pg_restore -j2, pgcopydb clone
// (--table-jobs 2 --index-jobs 2) and native logical replication's initial sync
// (CREATE SUBSCRIPTION until every table is ready; schema created beforehand). Every
// tool copies into a fresh empty database on the target, and every copy is checked.
//
// pgcopydb must be on PATH (scripts/ensure-deps.sh fullload installs it on Debian/Ubuntu:
// apt-get install pgcopydb).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cutover-dev/cutover/bench/internal/harness"
	"github.com/cutover-dev/cutover/bench/internal/stat"
	"github.com/cutover-dev/cutover/pgtest"
)

func main() {
	scale := flag.Int("scale", 30, "pgbench scale of the source")
	jobs := flag.Int("jobs", 2, "workers for every tool")
	bin := flag.String("cutover", "bin/cutover", "cutover binary")
	runs := flag.Int("runs", 3, "runs of each tool; medians are compared")
	flag.Parse()
	if err := run(*scale, *jobs, *runs, *bin); err != nil {
		pgtest.StopAll()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	pgtest.StopAll()
}

func run(scale, jobs, runs int, bin string) error {
	ctx := context.Background()
	bin, _ = filepath.Abs(bin)
	pgcopydb, err := exec.LookPath("pgcopydb")
	if err != nil {
		return fmt.Errorf("pgcopydb is not on PATH: run scripts/ensure-deps.sh fullload, or apt-get install pgcopydb (Debian/Ubuntu), or see https://pgcopydb.readthedocs.io")
	}
	settings := map[string]string{"shared_buffers": "512MB", "max_wal_size": "4GB", "max_worker_processes": "16",
		"max_logical_replication_workers": "8", "max_sync_workers_per_subscription": strconv.Itoa(jobs)}
	src, err := pgtest.Start(ctx, pgtest.Options{Name: "bench-source", Settings: settings})
	if err != nil {
		return err
	}
	tgt, err := pgtest.Start(ctx, pgtest.Options{Name: "bench-target", Settings: settings})
	if err != nil {
		return err
	}
	env := append(os.Environ(), "PGPASSWORD="+pgtest.Password)
	tool := func(name string, args ...string) *exec.Cmd {
		c := exec.Command(filepath.Join(src.BinDir, name), args...)
		c.Env = env
		return c
	}
	if err := src.Exec(ctx, "postgres", "CREATE DATABASE bench"); err != nil {
		return err
	}
	fmt.Printf("building pgbench scale %d on the source ...\n", scale)
	if out, err := tool("pgbench", "-i", "-q", "-s", strconv.Itoa(scale), "-h", "127.0.0.1", "-p", strconv.Itoa(src.Port), "-U", "postgres", "bench").CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %v\n%s", err, out)
	}
	if err := src.Exec(ctx, "bench", "VACUUM ANALYZE"); err != nil {
		return err
	}
	var size int64
	conn, err := src.Connect(ctx, "bench")
	if err != nil {
		return err
	}
	_ = conn.QueryRow(ctx, "SELECT pg_database_size('bench')").Scan(&size)
	conn.Close(ctx)
	fmt.Printf("source database: %.0f MB\n\n", float64(size)/1e6)

	dir, err := os.MkdirTemp("", "cutover-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := src.Exec(ctx, "bench", "CREATE PUBLICATION bench_pub FOR ALL TABLES"); err != nil {
		return err
	}
	schema := filepath.Join(dir, "schema.sql")
	if out, err := tool("pg_dump", "--schema-only", "-f", schema, "-d", src.URL("bench")).CombinedOutput(); err != nil {
		return fmt.Errorf("pg_dump --schema-only: %v\n%s", err, out)
	}

	var cutoverTimes, oneshotTimes, dumpTimes, pgcopydbTimes, nativeTimes []time.Duration
	var rssMB, oneshotRSS float64
	for i := 0; i < runs; i++ {
		// cutover, the load before change data capture
		db := fmt.Sprintf("by_cutover_%d", i)
		t, rss, err := runCutover(ctx, bin, dir, tgt, db, fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\nfull_load: {parallel: %d}\ncdc: {no_identity: replica_identity_full}\n",
			src.URL("bench"), tgt.URL(db), jobs), "--full-load-only")
		if err != nil {
			return err
		}
		cutoverTimes = append(cutoverTimes, t)
		rssMB = max(rssMB, rss)
		if err := src.Exec(ctx, "bench", "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'cutover%'"); err != nil {
			return err
		}
		if err := checkAndDrop(ctx, src, tgt, db); err != nil {
			return err
		}

		// cutover, one-shot copy: one exported snapshot, no slot, no publication
		db = fmt.Sprintf("by_oneshot_%d", i)
		t, rss, err = runCutover(ctx, bin, dir, tgt, db, fmt.Sprintf("source: {url: %q}\ntarget: {url: %q}\nfull_load: {parallel: %d}\ncdc: {enabled: false}\n",
			src.URL("bench"), tgt.URL(db), jobs))
		if err != nil {
			return err
		}
		oneshotTimes = append(oneshotTimes, t)
		oneshotRSS = max(oneshotRSS, rss)
		if err := checkAndDrop(ctx, src, tgt, db); err != nil {
			return err
		}

		// pg_dump -Fd -j + pg_restore -j
		db = fmt.Sprintf("by_dump_%d", i)
		if err := tgt.Exec(ctx, "postgres", "CREATE DATABASE "+db); err != nil {
			return err
		}
		dumpDir := filepath.Join(dir, db)
		start := time.Now()
		if out, err := tool("pg_dump", "-Fd", "-j", strconv.Itoa(jobs), "-f", dumpDir, "-d", src.URL("bench")).CombinedOutput(); err != nil {
			return fmt.Errorf("pg_dump: %v\n%s", err, out)
		}
		if out, err := tool("pg_restore", "-j", strconv.Itoa(jobs), "-d", tgt.URL(db), dumpDir).CombinedOutput(); err != nil {
			return fmt.Errorf("pg_restore: %v\n%s", err, out)
		}
		dumpTimes = append(dumpTimes, time.Since(start))
		if err := checkAndDrop(ctx, src, tgt, db); err != nil {
			return err
		}
		os.RemoveAll(dumpDir)

		// pgcopydb clone, with its own work directory each run
		db = fmt.Sprintf("by_pgcopydb_%d", i)
		if err := tgt.Exec(ctx, "postgres", "CREATE DATABASE "+db); err != nil {
			return err
		}
		workDir := filepath.Join(dir, db)
		pc := exec.Command(pgcopydb, "clone", "--source", src.URL("bench"), "--target", tgt.URL(db), "--dir", workDir,
			"--table-jobs", strconv.Itoa(jobs), "--index-jobs", strconv.Itoa(jobs))
		pc.Env = append(env, "PATH="+src.BinDir+string(os.PathListSeparator)+os.Getenv("PATH"))
		start = time.Now()
		if out, err := pc.CombinedOutput(); err != nil {
			return fmt.Errorf("pgcopydb clone: %v\n%s", err, out)
		} else if os.Getenv("BENCH_VERBOSE") != "" {
			fmt.Printf("pgcopydb started %s\n%s\n", start.Format("15:04:05.000"), out)
		}
		pgcopydbTimes = append(pgcopydbTimes, time.Since(start))
		if err := checkAndDrop(ctx, src, tgt, db); err != nil {
			return err
		}
		os.RemoveAll(workDir)

		// native logical replication: schema first (not timed), then the initial sync
		db = fmt.Sprintf("by_subscription_%d", i)
		if err := tgt.Exec(ctx, "postgres", "CREATE DATABASE "+db); err != nil {
			return err
		}
		if _, err := tgt.Psql(ctx, db, "-f", schema); err != nil {
			return err
		}
		start = time.Now()
		if err := tgt.Exec(ctx, db, fmt.Sprintf("CREATE SUBSCRIPTION bench_sub CONNECTION 'host=127.0.0.1 port=%d dbname=bench user=postgres password=%s' PUBLICATION bench_pub", src.Port, pgtest.Password)); err != nil {
			return err
		}
		if err := waitSynced(ctx, tgt, db); err != nil {
			return err
		}
		nativeTimes = append(nativeTimes, time.Since(start))
		if err := tgt.Exec(ctx, db, "DROP SUBSCRIPTION bench_sub"); err != nil {
			return err
		}
		if err := checkAndDrop(ctx, src, tgt, db); err != nil {
			return err
		}
		fmt.Printf("run %d: cutover %v, one-shot copy %v, pg_dump+pg_restore %v, pgcopydb %v, native initial sync %v\n", i+1,
			cutoverTimes[i].Round(time.Millisecond), oneshotTimes[i].Round(time.Millisecond), dumpTimes[i].Round(time.Millisecond),
			pgcopydbTimes[i].Round(time.Millisecond), nativeTimes[i].Round(time.Millisecond))
	}
	c, o, d, p, n := stat.Median(cutoverTimes), stat.Median(oneshotTimes), stat.Median(dumpTimes), stat.Median(pgcopydbTimes), stat.Median(nativeTimes)
	fmt.Printf("\nmedians of %d runs (%d workers each):\n", runs, jobs)
	fmt.Printf("  cutover start --full-load-only:            %v\n", c.Round(time.Millisecond))
	fmt.Printf("  cutover one-shot copy (cdc.enabled false): %v\n", o.Round(time.Millisecond))
	fmt.Printf("  pg_dump -Fd -j%d + pg_restore -j%d:          %v\n", jobs, jobs, d.Round(time.Millisecond))
	fmt.Printf("  pgcopydb clone (table/index jobs %d):       %v\n", jobs, p.Round(time.Millisecond))
	fmt.Printf("  native logical replication initial sync:   %v (schema created beforehand, not timed)\n\n", n.Round(time.Millisecond))
	faster, fasterName := d, "pg_dump + pg_restore"
	if p < d {
		faster, fasterName = p, "pgcopydb"
	}
	fmt.Printf("ratio cutover / (pg_dump + pg_restore):     %.2f   (goal <= 0.80)\n", c.Seconds()/d.Seconds())
	fmt.Printf("ratio cutover / native initial sync:        %.2f   (goal <= 1.00)\n", c.Seconds()/n.Seconds())
	fmt.Printf("ratio one-shot copy / faster peer (%s): %.2f   (goal <= 0.80)\n", fasterName, o.Seconds()/faster.Seconds())
	fmt.Printf("ratio one-shot copy / pgcopydb:             %.2f\n", o.Seconds()/p.Seconds())
	fmt.Printf("cutover peak RSS:                           %.0f MB (goal < 200 MB); one-shot copy %.0f MB\n", rssMB, oneshotRSS)
	return nil
}

// runCutover writes the plan and times cutover start with it into db, a new database
// on the target. With BENCH_VERBOSE set, cutover's log (stderr) is printed, for the
// phases.
func runCutover(ctx context.Context, bin, dir string, tgt *pgtest.Server, db, plan string, args ...string) (time.Duration, float64, error) {
	if err := tgt.Exec(ctx, "postgres", "CREATE DATABASE "+db); err != nil {
		return 0, 0, err
	}
	planFile := filepath.Join(dir, db+".yaml")
	if err := os.WriteFile(planFile, []byte(plan), 0o600); err != nil {
		return 0, 0, err
	}
	r, err := harness.Cutover(bin, planFile, db, args...)
	return r.Elapsed, r.RSSMB, err
}

// waitSynced polls until every table of the subscription is ready.
func waitSynced(ctx context.Context, tgt *pgtest.Server, db string) error {
	conn, err := tgt.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for {
		var pending int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate NOT IN ('r', 's')").Scan(&pending); err != nil {
			return err
		}
		if pending == 0 {
			return nil
		}
		time.Sleep(50 * time.Millisecond) // a benchmark's poll, not a test's wait
	}
}

// checkAndDrop checks that a copy is complete before its time counts, then clears the
// way for the next tool: the copy's database is dropped (with it the autovacuum of the
// rows just loaded, which would otherwise run during the next tool's copy) and both
// servers checkpoint, so that each tool starts on servers with no dirty buffer left by
// the one before.
func checkAndDrop(ctx context.Context, src, tgt *pgtest.Server, db string) error {
	if err := sameCounts(ctx, src, tgt, db); err != nil {
		return err
	}
	if err := tgt.Exec(ctx, "postgres", "DROP DATABASE "+db+" WITH (FORCE)"); err != nil {
		return err
	}
	for _, s := range []*pgtest.Server{src, tgt} {
		if err := s.Exec(ctx, "postgres", "CHECKPOINT"); err != nil {
			return err
		}
	}
	return nil
}

// sameCounts checks that a copy is complete.
func sameCounts(ctx context.Context, src, tgt *pgtest.Server, db string) error {
	sc, err := src.Connect(ctx, "bench")
	if err != nil {
		return err
	}
	defer sc.Close(ctx)
	tc, err := tgt.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer tc.Close(ctx)
	for _, t := range []string{"pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"} {
		var a, b int64
		if err := sc.QueryRow(ctx, "SELECT count(*) FROM "+t).Scan(&a); err != nil {
			return err
		}
		if err := tc.QueryRow(ctx, "SELECT count(*) FROM "+t).Scan(&b); err != nil {
			return fmt.Errorf("%s in %s: %w", t, db, err)
		}
		if a != b {
			return fmt.Errorf("%s in %s: %d rows, the source has %d", t, db, b, a)
		}
	}
	return nil
}
