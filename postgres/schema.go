package postgres

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cutover-dev/cutover/internal/pgbin"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/redact"
	"github.com/jackc/pgx/v5"
)

// The schema is copied with pg_dump and pg_restore rather than by reading the catalog:
// pg_dump is the best-kept description of every object kind across every PostgreSQL
// version, with the dependency order and the pre-data / post-data split a live
// migration needs. cutover adds what they lack: one schema dump taken in the load's
// exported snapshot (--snapshot), primary keys moved ahead of the data, and
// secondary objects built in parallel after it (pg_restore -j).

// SchemaDump is a schema-only archive (pg_dump -Fc) and its table of contents.
type SchemaDump struct {
	file  string
	bin   string
	toc   []tocEntry
	pkOID map[uint32]bool // primary-key constraints: true for a partitioned table's, restored with the pre-data
}

// tocEntry is a line of pg_restore -l: "ID; CATALOG-OID OBJECT-OID TYPE SCHEMA NAME OWNER".
type tocEntry struct {
	line    string
	catalog uint32
	object  uint32
	desc    string // the rest: type, schema, name, owner (names may hold spaces, so it is not split)
}

const pgConstraintOID = 2606 // pg_constraint's OID, the catalog of CONSTRAINT entries

// libpqArgs turns an endpoint into a connection string without its password and the
// environment that carries the password, so it never shows in a process list.
func libpqArgs(ep plan.Endpoint) (conn string, env []string) {
	conn, _ = redact.StripPassword(ep.URL)
	pw := ep.Password
	if pw == "" {
		pw = redact.Password(ep.URL)
	}
	env = os.Environ()
	if pw != "" {
		env = append(env, "PGPASSWORD="+pw)
	}
	return conn, append(env, "PGAPPNAME="+ApplicationName)
}

// toolDir finds pg_dump and pg_restore no older than the source server.
func toolDir(sourceMajor int) (string, error) {
	dir, err := pgbin.Dir("pg_dump")
	if err != nil {
		return "", err
	}
	if m := pgbin.Major(dir); m != 0 && m < sourceMajor {
		return "", fmt.Errorf("pg_dump in %s is version %d, older than the source server (%d): install postgresql-client-%d or set CUTOVER_PG_BINDIR", dir, m, sourceMajor, sourceMajor)
	}
	return dir, nil
}

func runTool(ctx context.Context, bin string, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return out, fmt.Errorf("%s: %s", filepath.Base(bin), redact.ConnString(msg))
	}
	return out, nil
}

// DumpSchema dumps the source's schema as of the snapshot, leaving out the tables the
// plan does not migrate and the control schema.
func DumpSchema(ctx context.Context, ep plan.Endpoint, snapshot, dir string, sourceMajor int, exclude []*relation, controlSchema string, pks map[uint32]bool) (*SchemaDump, error) {
	bin, err := toolDir(sourceMajor)
	if err != nil {
		return nil, err
	}
	conn, env := libpqArgs(ep)
	file := filepath.Join(dir, "schema.dump")
	// The pre-data and post-data sections, not --schema-only: that one also drops the
	// REFRESH of populated materialized views, which pg_dump files under post-data.
	args := []string{"--format=custom", "--section=pre-data", "--section=post-data", "--no-publications", "--no-subscriptions",
		"--snapshot=" + snapshot, "--exclude-schema=" + psqlPatternQuote(controlSchema), "--file=" + file}
	for _, r := range exclude {
		args = append(args, "--exclude-table="+psqlPatternQuote(r.schema)+"."+psqlPatternQuote(r.name))
	}
	args = append(args, "--dbname="+conn)
	if _, err := runTool(ctx, filepath.Join(bin, "pg_dump"), env, args...); err != nil {
		return nil, fmt.Errorf("dump the source's schema: %w", err)
	}
	out, err := runTool(ctx, filepath.Join(bin, "pg_restore"), env, "--list", file)
	if err != nil {
		return nil, fmt.Errorf("read the schema dump's contents: %w", err)
	}
	d := &SchemaDump{file: file, bin: bin, pkOID: pks}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, ";") {
			continue
		}
		e := tocEntry{line: line}
		_, rest, _ := strings.Cut(line, "; ")
		f := strings.SplitN(rest, " ", 3)
		if len(f) == 3 {
			c, _ := strconv.ParseUint(f[0], 10, 32)
			o, _ := strconv.ParseUint(f[1], 10, 32)
			e.catalog, e.object, e.desc = uint32(c), uint32(o), f[2]
		}
		d.toc = append(d.toc, e)
	}
	return d, sc.Err()
}

// psqlPatternQuote makes a name an exact pg_dump pattern: double-quoted, quotes doubled.
func psqlPatternQuote(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

func (d *SchemaDump) isPK(e tocEntry) bool {
	_, ok := d.pkOID[e.object]
	return e.catalog == pgConstraintOID && ok
}

func (d *SchemaDump) isRootPK(e tocEntry) bool {
	return e.catalog == pgConstraintOID && d.pkOID[e.object]
}

// restore runs pg_restore for one section, with the entries keep selects.
func (d *SchemaDump) restore(ctx context.Context, ep plan.Endpoint, section string, jobs int, keep func(tocEntry) bool) error {
	var list strings.Builder
	for _, e := range d.toc {
		if !keep(e) {
			list.WriteString(";")
		}
		list.WriteString(e.line + "\n")
	}
	listFile := d.file + "." + section + ".list"
	if err := os.WriteFile(listFile, []byte(list.String()), 0o600); err != nil {
		return err
	}
	conn, env := libpqArgs(ep)
	args := []string{"--section=" + section, "--use-list=" + listFile, "--no-owner", "--no-privileges", "--exit-on-error", "--dbname=" + conn}
	if jobs > 1 {
		args = append(args, fmt.Sprintf("--jobs=%d", jobs))
	} else {
		args = append(args, "--single-transaction")
	}
	_, err := runTool(ctx, filepath.Join(d.bin, "pg_restore"), env, append(args, d.file)...)
	return err
}

// RestorePreData creates schemas, extensions, types, functions, tables and views on the
// target in one transaction, with the primary keys of partitioned tables (an invalid,
// empty index until the partitions' keys are attached). The other primary keys are
// built by the load workers as each table's rows are in.
func (d *SchemaDump) RestorePreData(ctx context.Context, ep plan.Endpoint) error {
	if err := d.restore(ctx, ep, "pre-data", 1, func(tocEntry) bool { return true }); err != nil {
		return fmt.Errorf("create the schema on the target (pre-data): %w", err)
	}
	if err := d.restore(ctx, ep, "post-data", 1, d.isRootPK); err != nil {
		return fmt.Errorf("create the primary keys of partitioned tables on the target: %w", err)
	}
	return nil
}

// RestorePostData builds secondary indexes, constraints, triggers, rules and
// materialized views, jobs at a time.
func (d *SchemaDump) RestorePostData(ctx context.Context, ep plan.Endpoint, jobs int) error {
	err := d.restore(ctx, ep, "post-data", jobs, func(e tocEntry) bool { return !d.isPK(e) })
	if err != nil {
		return fmt.Errorf("create indexes, constraints and triggers on the target (post-data): %w", err)
	}
	return nil
}

// primaryKeys returns the OIDs of the primary-key constraints of the given relations,
// true for those of partitioned tables.
func primaryKeys(ctx context.Context, conn *pgx.Conn, rels []*relation) (map[uint32]bool, error) {
	oids := make([]uint32, len(rels))
	for i, r := range rels {
		oids[i] = r.oid
	}
	rows, err := conn.Query(ctx, `SELECT c.oid, r.relkind = 'p' FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
		WHERE c.contype = 'p' AND c.conrelid = ANY ($1)`, oids)
	if err != nil {
		return nil, err
	}
	pks := map[uint32]bool{}
	var oid uint32
	var partitioned bool
	_, err = pgx.ForEachRow(rows, []any{&oid, &partitioned}, func() error {
		pks[oid] = partitioned
		return nil
	})
	return pks, err
}
