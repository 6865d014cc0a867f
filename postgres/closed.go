package postgres

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pgx/v5"
)

// One writable side at every moment. During replication the target is a copy that the
// change stream owns: a write there by an application (a server pointed at the new
// database a day early, a script run on the wrong host) would silently diverge it. So
// from the load until the switch's unlock the target is closed to the applications, as
// the switch closes the source: with cutover.block: login the roles that could write to
// the migrated tables there lose their login (recorded, and given back by the switch's
// unlock); with read_only the target database turns read-only for new sessions, and the
// other roles' sessions end. The migration's own role and cutover.exempt_roles are left
// alone, and cutover's sessions always write (Config).

// loadRun is the run the load records the target's closing under, in blocked_roles and
// blocked_databases: the switch's unlock gives back whatever is recorded there.
const loadRun = "load"

// writers lists the roles that can log in to conn's server and may write to one of
// tables there (INSERT, UPDATE, DELETE or TRUNCATE, their own or through a role they
// belong to): the roles an application could write as. Left out: the role conn logs in
// as, exempt, and the managed service's own roles.
func writers(ctx context.Context, conn *pgx.Conn, side string, tables []*relation, exempt []string) ([]string, error) {
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.qname
	}
	rows, err := conn.Query(ctx, `SELECT rolname FROM pg_roles r
		WHERE rolcanlogin AND rolname <> current_user AND rolname <> ALL ($2::text[]) AND NOT `+serviceRoles+`
		  AND EXISTS (SELECT 1 FROM unnest($1::text[]) t WHERE to_regclass(t) IS NOT NULL
		              AND has_table_privilege(r.oid, to_regclass(t), 'INSERT, UPDATE, DELETE, TRUNCATE'))
		ORDER BY rolname`, names, append([]string{}, exempt...))
	if err != nil {
		return nil, fmt.Errorf("%s: list the roles that may write to the migrated tables: %w", side, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// closeTarget closes the target to the applications after the load made (or gave
// grants on) the migrated tables: what it did, and the roles it could not close
// (superusers, roles with REPLICATION, ... that the migration role may not alter),
// which the switch's gates name.
func closeTarget(ctx context.Context, p *plan.Plan, tgt *pgx.Conn, ctl *Control, tables []*relation) (string, []string, error) {
	var db string
	if err := tgt.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		return "", nil, err
	}
	s := &switcher{p: p, out: io.Discard, tgt: tgt, ctl: ctl, run: &cutover.Run{ID: loadRun}, tgtDB: db, tables: tables}
	sd := s.target()
	if p.Cutover.Block == plan.BlockReadOnly {
		d, err := s.blockReadOnly(ctx, sd)
		return d, nil, err
	}
	roles, err := writers(ctx, tgt, "target", tables, p.Cutover.ExemptRoles)
	if err != nil || len(roles) == 0 {
		return "no role but the migration's may write to the migrated tables", nil, err
	}
	_, super, _, _, err := roleRights(ctx, tgt, "target")
	if err != nil {
		return "", nil, err
	}
	service, supers, attrs, noAdmin, err := unalterable(ctx, tgt, "target", roles, super)
	if err != nil {
		return "", nil, err
	}
	stuck := append(append(append(service, supers...), attrs...), noAdmin...)
	var closable []string
	for _, r := range roles {
		if !slices.Contains(stuck, r) {
			closable = append(closable, r)
		}
	}
	if len(closable) == 0 {
		return "", stuck, nil
	}
	d, err := s.blockRoles(ctx, sd, closable)
	return d, stuck, err
}

// openSide says how the side that should be closed (the target before the switch, the
// source after it) is open to the applications: the roles that may log in there and
// write to the migrated tables, or, with cutover.block: read_only, the database not
// read-only. Empty when it is closed.
func (s *switcher) openSide(ctx context.Context, sd side) ([]string, error) {
	if s.p.Cutover.Block == plan.BlockReadOnly {
		var readOnly bool
		if err := sd.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_db_role_setting d, unnest(d.setconfig) c
			WHERE d.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) AND d.setrole = 0
			  AND c = 'default_transaction_read_only=on')`).Scan(&readOnly); err != nil {
			return nil, fmt.Errorf("%s: read the database's settings: %w", sd.name, err)
		}
		if readOnly {
			return nil, nil
		}
		return []string{"the " + sd.name + " database " + sd.db + " is not read-only: ALTER DATABASE " + pgx.Identifier{sd.db}.Sanitize() +
			" SET default_transaction_read_only = on on the " + sd.name + " (cutover start does it on the target after the load)"}, nil
	}
	roles, err := writers(ctx, sd.conn, sd.name, s.tables, s.p.Cutover.ExemptRoles)
	if err != nil || len(roles) == 0 {
		return nil, err
	}
	return []string{fmt.Sprintf("the %s is open to the applications: roles %s may log in there and write to the migrated tables, "+
		"while the other side takes the writes: ALTER ROLE ... NOLOGIN on the %s (cutover start does it on the target after the load, "+
		"and the switch's unlock gives the login back), or list them in cutover.exempt_roles", sd.name, listText(roles, 8), sd.name)}, nil
}

// sayClosed shows what closing the target did.
func sayClosed(detail string, stuck []string, step func(string)) {
	if detail != "" {
		step("closed the target to the applications until the switch: " + detail)
	}
	if len(stuck) > 0 {
		step(fmt.Sprintf("warning: the target stays open to roles %s, which the migration role may not alter (superusers, REPLICATION, no ADMIN OPTION): "+
			"list them in cutover.exempt_roles, or set cutover.block: read_only; the switch refuses until then", strings.Join(stuck, ", ")))
	}
}

// readSides says which side is live in phase and whether the other is closed.
func readSides(ctx context.Context, p *plan.Plan, src, tgt *pgx.Conn, phase string) (*control.SidesStatus, error) {
	all, err := listRelations(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("source: list the tables: %w", err)
	}
	included, _ := selectTables(all, p)
	s := &switcher{p: p, src: src, tgt: tgt, tables: included}
	if err := s.readDatabases(ctx); err != nil {
		return nil, err
	}
	st := &control.SidesStatus{Live: "source", Other: "target"}
	other := s.target()
	if phase == control.PhaseSwitched || phase == control.PhaseRollingBack {
		st.Live, st.Other, other = "target", "source", s.source()
	}
	if st.Open, err = s.openSide(ctx, other); err != nil {
		return nil, err
	}
	st.Closed = len(st.Open) == 0
	return st, nil
}
