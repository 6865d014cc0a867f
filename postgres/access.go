package postgres

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The schema is created with --no-owner --no-privileges, so that a role missing on the
// target cannot stop it halfway. Ownership and grants follow as their own step:
// pg_restore writes the statements (it knows how to name every kind of object), and
// each runs on its own, so that a role the target lacks, or one the migration role
// cannot act for, leaves that object with the migration role and is reported rather
// than failing the load.

// accessStatements returns the ownership and privilege statements of the entries the
// load restored, rendered when the schema was dumped.
func (d *SchemaDump) accessStatements(ctx context.Context) ([]string, error) {
	if d.access == nil {
		return d.renderAccess(ctx)
	}
	return d.access()
}

// renderAccess renders the ownership and privilege statements of the entries the load
// restores: ALTER ... OWNER TO, GRANT, REVOKE, ALTER DEFAULT PRIVILEGES.
func (d *SchemaDump) renderAccess(ctx context.Context) ([]string, error) {
	var list strings.Builder
	for _, e := range d.toc {
		if d.skip[e.id] {
			list.WriteString(";")
		}
		list.WriteString(e.line + "\n")
	}
	listFile := d.file + ".access.list"
	if err := os.WriteFile(listFile, []byte(list.String()), 0o600); err != nil {
		return nil, err
	}
	out, err := runTool(ctx, filepath.Join(d.bin, "pg_restore"), os.Environ(),
		"--section=pre-data", "--section=post-data", "--use-list="+listFile, "--file=-", d.file)
	if err != nil {
		return nil, fmt.Errorf("render ownership and grants: %w", err)
	}
	return parseAccess(out)
}

// parseAccess picks the statements from pg_restore's script. Each entry starts with a
// header "-- Name: N; Type: T; Schema: S; Owner: O". In ACL entries every GRANT,
// REVOKE and ALTER DEFAULT PRIVILEGES is one line. Elsewhere the owner statement is
// the line, after a blank one, "ALTER <kind> <name> OWNER TO <O>;" with the header's
// owner, which no object's definition can fake by accident.
func parseAccess(script []byte) ([]string, error) {
	var stmts []string
	var kind, owner, prev string
	sc := bufio.NewScanner(bytes.NewReader(script))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Text()
		if h, ok := strings.CutPrefix(line, "-- Name: "); ok {
			kind, owner = headerField(h, "Type"), headerField(h, "Owner")
		}
		switch {
		case kind == "ACL" || kind == "DEFAULT ACL":
			for _, p := range []string{"GRANT ", "REVOKE ", "ALTER DEFAULT PRIVILEGES "} {
				if strings.HasPrefix(line, p) && strings.HasSuffix(line, ";") {
					stmts = append(stmts, line)
				}
			}
		case owner != "" && owner != "-" && prev == "" && strings.HasPrefix(line, "ALTER ") &&
			(strings.HasSuffix(line, " OWNER TO "+owner+";") || strings.HasSuffix(line, " OWNER TO "+pgx.Identifier{owner}.Sanitize()+";")):
			stmts = append(stmts, line)
		}
		prev = line
	}
	return stmts, sc.Err()
}

// headerField reads "Type" or "Owner" from a pg_restore entry header.
func headerField(h, field string) string {
	i := strings.LastIndex(h, "; "+field+": ")
	if i < 0 {
		return ""
	}
	v := h[i+len(field)+4:]
	if j := strings.Index(v, "; "); j >= 0 {
		v = v[:j]
	}
	return v
}

// accessResult says what the ownership and grants step did.
type accessResult struct {
	applied int
	skipped map[string]int // reason -> statements
}

// applyAccess runs each statement on its own. A role missing on the target, or one the
// migration role may not act for, skips the statement; anything else is an error.
func applyAccess(ctx context.Context, tgt *pgx.Conn, stmts []string) (accessResult, error) {
	res := accessResult{skipped: map[string]int{}}
	for _, s := range stmts {
		_, err := tgt.PgConn().Exec(ctx, s).ReadAll()
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			res.applied++
		case errors.As(err, &pgErr) && (pgErr.Code == "42704" || pgErr.Code == "42501"):
			res.skipped[pgErr.Message]++
		default:
			return res, fmt.Errorf("%s: %w", s, err)
		}
	}
	return res, nil
}

func (r accessResult) skippedLines() []string {
	var out []string
	for why, n := range r.skipped {
		out = append(out, fmt.Sprintf("%s (%d statements)", why, n))
	}
	sort.Strings(out)
	return out
}

// missingRoles lists the roles that own objects or hold privileges in the source's
// user schemas and do not exist on the target.
func missingRoles(ctx context.Context, src, tgt *pgx.Conn) ([]string, error) {
	rows, err := src.Query(ctx, `
		WITH user_ns AS (SELECT oid, nspowner, nspacl FROM pg_namespace
		                 WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\_%'),
		     used(role) AS (
		         SELECT nspowner FROM user_ns
		         UNION SELECT (aclexplode(nspacl)).grantee FROM user_ns
		         UNION SELECT relowner FROM pg_class WHERE relnamespace IN (SELECT oid FROM user_ns)
		         UNION SELECT (aclexplode(relacl)).grantee FROM pg_class WHERE relnamespace IN (SELECT oid FROM user_ns)
		         UNION SELECT proowner FROM pg_proc WHERE pronamespace IN (SELECT oid FROM user_ns)
		         UNION SELECT (aclexplode(proacl)).grantee FROM pg_proc WHERE pronamespace IN (SELECT oid FROM user_ns)
		         UNION SELECT typowner FROM pg_type WHERE typnamespace IN (SELECT oid FROM user_ns)
		         UNION SELECT (aclexplode(typacl)).grantee FROM pg_type WHERE typnamespace IN (SELECT oid FROM user_ns))
		SELECT r.rolname FROM used JOIN pg_roles r ON r.oid = used.role
		WHERE r.rolname NOT LIKE 'pg\_%' ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	roles, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	rows, err = tgt.Query(ctx, `SELECT r FROM unnest($1::text[]) r WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r)`, roles)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// restoreAccess gives the restored objects their source owners and privileges.
func (d *SchemaDump) restoreAccess(ctx context.Context, tgt *pgx.Conn) (accessResult, error) {
	stmts, err := d.accessStatements(ctx)
	if err != nil {
		return accessResult{}, err
	}
	res, err := applyAccess(ctx, tgt, stmts)
	if err != nil {
		return res, fmt.Errorf("set ownership and grants on the target: %w", err)
	}
	return res, nil
}
