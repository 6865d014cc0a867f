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
	"sync"

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
	skip  map[int]bool    // entries (by dump ID) left out: objects that need an excluded table

	postData map[int]bool // entries (by dump ID) of the post-data section

	access func() ([]string, error) // the ownership and privilege statements (renderAccess), once
}

// tocEntry is a line of pg_restore -l: "ID; CATALOG-OID OBJECT-OID TYPE SCHEMA NAME OWNER",
// with the dump IDs it depends on from the line "; depends on: ..." that -v adds.
type tocEntry struct {
	line    string
	id      int
	catalog uint32
	object  uint32
	desc    string // the rest: type, schema, name, owner (names may hold spaces, so it is not split)
	deps    []int
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
	// A target closed by cutover.block: read_only takes the tools' writes, as it takes
	// cutover's own (Config).
	opts := strings.TrimSpace(os.Getenv("PGOPTIONS") + " -c default_transaction_read_only=off")
	return conn, append(env, "PGAPPNAME="+ApplicationName, "PGOPTIONS="+opts)
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
func DumpSchema(ctx context.Context, ep plan.Endpoint, snapshot, dir string, sourceMajor int, exclude []*relation, controlSchema string, pks map[uint32]bool, leave []leftOut) (*SchemaDump, error) {
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
	// The listing says nothing of sections; a listing of one section does. Both at once.
	var post []tocEntry
	postErr := make(chan error, 1)
	go func() {
		out, err := runTool(ctx, filepath.Join(bin, "pg_restore"), env, "--list", "--section=post-data", file)
		if err != nil {
			err = fmt.Errorf("read the schema dump's contents: %w", err)
		} else {
			post, err = parseTOC(out)
		}
		postErr <- err
	}()
	out, err := runTool(ctx, filepath.Join(bin, "pg_restore"), env, "--list", "--verbose", file)
	var toc []tocEntry
	if err != nil {
		err = fmt.Errorf("read the schema dump's contents: %w", err)
	} else {
		toc, err = parseTOC(out)
	}
	if err2 := <-postErr; err == nil {
		err = err2
	}
	if err != nil {
		return nil, err
	}
	d := &SchemaDump{file: file, bin: bin, pkOID: pks, toc: toc, skip: skipEntries(toc, leave), postData: map[int]bool{}}
	for _, e := range toc {
		// The capture of schema changes belongs to the source (see ddl.go).
		if f := strings.Fields(e.desc); len(f) >= 4 && f[0] == "EVENT" && f[1] == "TRIGGER" && ddlTriggerName.MatchString(f[3]) {
			d.skip[e.id] = true
		}
	}
	for _, e := range post {
		d.postData[e.id] = true
	}
	// The owners and grants are rendered now, in the background: they are applied after
	// the copy, which then need not wait for another pg_restore.
	d.access = sync.OnceValues(func() ([]string, error) { return d.renderAccess(ctx) })
	go func() { _, _ = d.access() }() // the result waits for restoreAccess
	return d, nil
}

const dependsOn = ";\tdepends on:"

func parseTOC(out []byte) ([]tocEntry, error) {
	var toc []tocEntry
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if deps, ok := strings.CutPrefix(line, dependsOn); ok && len(toc) > 0 {
			e := &toc[len(toc)-1]
			for _, f := range strings.Fields(deps) {
				id, err := strconv.Atoi(f)
				if err != nil {
					return nil, fmt.Errorf("schema dump contents: cannot read %q", line)
				}
				e.deps = append(e.deps, id)
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, ";") {
			continue
		}
		e := tocEntry{line: line}
		id, rest, _ := strings.Cut(line, "; ")
		e.id, _ = strconv.Atoi(id)
		f := strings.SplitN(rest, " ", 3)
		if len(f) == 3 {
			c, _ := strconv.ParseUint(f[0], 10, 32)
			o, _ := strconv.ParseUint(f[1], 10, 32)
			e.catalog, e.object, e.desc = uint32(c), uint32(o), f[2]
		}
		toc = append(toc, e)
	}
	return toc, sc.Err()
}

// skipEntries finds the entries to leave out: the objects that need an excluded table,
// and the entries with no catalog object of their own (a comment, a materialized
// view's refresh, a partition's attach) that hang on one left out.
func skipEntries(toc []tocEntry, leave []leftOut) map[int]bool {
	gone := map[objKey]bool{}
	for _, l := range leave {
		gone[l.key] = true
	}
	skip := map[int]bool{}
	for changed := true; changed; {
		changed = false
		for _, e := range toc {
			if skip[e.id] {
				continue
			}
			drop := gone[objKey{e.catalog, e.object}]
			if !drop && e.catalog == 0 {
				for _, d := range e.deps {
					drop = drop || skip[d]
				}
			}
			if drop {
				skip[e.id] = true
				changed = true
			}
		}
	}
	return skip
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

// restore runs pg_restore over the entries keep selects, in one transaction when jobs
// is 1; with none selected it runs nothing.
func (d *SchemaDump) restore(ctx context.Context, ep plan.Endpoint, name string, jobs int, keep func(tocEntry) bool) error {
	var list strings.Builder
	kept := 0
	for _, e := range d.toc {
		if d.skip[e.id] || !keep(e) {
			list.WriteString(";")
		} else {
			kept++
		}
		list.WriteString(e.line + "\n")
	}
	if kept == 0 {
		// Nothing to create (say a post-data of primary keys only, which the workers
		// built): pg_restore -j would still connect once per job, 0.1-0.2 s for nothing.
		return nil
	}
	listFile := d.file + "." + name + ".list"
	if err := os.WriteFile(listFile, []byte(list.String()), 0o600); err != nil {
		return err
	}
	conn, env := libpqArgs(ep)
	args := []string{"--section=pre-data", "--section=post-data", "--use-list=" + listFile, "--no-owner", "--no-privileges", "--exit-on-error", "--dbname=" + conn}
	if jobs > 1 {
		args = append(args, fmt.Sprintf("--jobs=%d", jobs))
	} else {
		args = append(args, "--single-transaction")
	}
	_, err := runTool(ctx, filepath.Join(d.bin, "pg_restore"), env, append(args, d.file)...)
	return err
}

// RestorePreData creates schemas, extensions, types, functions, tables and views on the
// target, with the primary keys of partitioned tables (an invalid, empty index until
// the partitions' keys are attached), all in one transaction: a run that stops midway
// leaves nothing behind. The other primary keys are built by the load workers as each
// table's rows are in.
func (d *SchemaDump) RestorePreData(ctx context.Context, ep plan.Endpoint) error {
	if err := d.restore(ctx, ep, "pre-data", 1, func(e tocEntry) bool { return !d.postData[e.id] || d.isRootPK(e) }); err != nil {
		return fmt.Errorf("create the schema on the target (pre-data): %w", err)
	}
	return nil
}

// RestorePostData builds secondary indexes, constraints, triggers, rules and
// materialized views, jobs at a time. Objects already on the target (built by a run
// that stopped during this step) are skipped; what is left to rerun (a comment, a
// materialized view's refresh, an index attached to its parent) is idempotent.
func (d *SchemaDump) RestorePostData(ctx context.Context, ep plan.Endpoint, jobs int, built map[objKey]bool) error {
	err := d.restore(ctx, ep, "post-data", jobs, func(e tocEntry) bool {
		return d.postData[e.id] && !d.isPK(e) && !built[objKey{e.catalog, e.object}]
	})
	if err != nil {
		return fmt.Errorf("create indexes, constraints and triggers on the target (post-data): %w", err)
	}
	return nil
}

// postDataBuilt finds the post-data objects of the dump (by their source OIDs) that
// already exist on the target, matched by their schema-qualified identity.
func (d *SchemaDump) postDataBuilt(ctx context.Context, src, tgt *pgx.Conn) (map[objKey]bool, error) {
	var cats, oids []uint32
	for _, e := range d.toc {
		if d.postData[e.id] && e.catalog != 0 && !d.isPK(e) {
			cats, oids = append(cats, e.catalog), append(oids, e.object)
		}
	}
	if len(oids) == 0 {
		return map[objKey]bool{}, nil // no post-data object to look for
	}
	rows, err := src.Query(ctx, `SELECT c, o, i.type, i.identity FROM unnest($1::oid[], $2::oid[]) AS x(c, o), pg_identify_object(c, o, 0) i`, cats, oids)
	if err != nil {
		return nil, err
	}
	type ident struct{ kind, name string }
	want := map[ident]objKey{}
	var k objKey
	var id ident
	if _, err := pgx.ForEachRow(rows, []any{&k.catalog, &k.oid, &id.kind, &id.name}, func() error {
		want[id] = k
		return nil
	}); err != nil {
		return nil, err
	}
	rows, err = tgt.Query(ctx, `
		WITH objs(c, o) AS (
		    SELECT 'pg_class'::regclass, oid FROM pg_class WHERE relkind IN ('i', 'I')
		    UNION ALL SELECT 'pg_constraint'::regclass, oid FROM pg_constraint
		    UNION ALL SELECT 'pg_trigger'::regclass, oid FROM pg_trigger WHERE NOT tgisinternal
		    UNION ALL SELECT 'pg_rewrite'::regclass, oid FROM pg_rewrite WHERE rulename <> '_RETURN'
		    UNION ALL SELECT 'pg_policy'::regclass, oid FROM pg_policy)
		SELECT i.type, i.identity FROM objs, pg_identify_object(c, o, 0) i
		WHERE i.schema IS NULL OR i.schema NOT IN ('pg_catalog', 'information_schema')`)
	if err != nil {
		return nil, err
	}
	built := map[objKey]bool{}
	_, err = pgx.ForEachRow(rows, []any{&id.kind, &id.name}, func() error {
		if k, ok := want[id]; ok {
			built[k] = true
		}
		return nil
	})
	return built, err
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
