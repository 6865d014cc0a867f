package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pgx/v5"
)

// side is one database of the migration, as a switch or rollback acts on it.
type side struct {
	name string // source or target
	conn *pgx.Conn
	ep   plan.Endpoint
	db   string
}

func (s *switcher) source() side { return side{"source", s.src, s.p.Source, s.srcDB} }
func (s *switcher) target() side { return side{"target", s.tgt, s.p.Target, s.tgtDB} }

// side is the database of the checklist's side sd.
func (s *switcher) side(sd cutover.Side) side {
	if sd == cutover.Target {
		return s.target()
	}
	return s.source()
}

// rolesToBlock lists the roles that can log in to sd, but for the exempt ones and the
// migration's own role.
func (s *switcher) rolesToBlock(ctx context.Context, sd side) ([]string, error) {
	return loginRolesBut(ctx, sd.conn, sd.name, s.p.Cutover.ExemptRoles)
}

// loginRolesBut lists the roles that can log in to conn's server, but for exempt and
// the role conn logs in as.
func loginRolesBut(ctx context.Context, conn *pgx.Conn, side string, exempt []string) ([]string, error) {
	rows, err := conn.Query(ctx, `SELECT rolname FROM pg_roles
		WHERE rolcanlogin AND rolname <> current_user AND rolname <> ALL ($1::text[]) ORDER BY rolname`, append([]string{}, exempt...)) // never NULL, which <> ALL would make match nothing
	if err != nil {
		return nil, fmt.Errorf("%s: list the login roles: %w", side, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// exempt lists cutover.exempt_roles, never NULL (which <> ALL would make match nothing).
func (s *switcher) exempt() []string { return append([]string{}, s.p.Cutover.ExemptRoles...) }

// roleRights says what the role conn logs in as may do to other roles and sessions,
// and its name (quoted).
func roleRights(ctx context.Context, conn *pgx.Conn, side string) (self string, super, createRole, signal bool, err error) {
	err = conn.QueryRow(ctx, `SELECT rolname, rolsuper, rolcreaterole, pg_has_role(current_user, 'pg_signal_backend', 'MEMBER')
		FROM pg_roles WHERE rolname = current_user`).Scan(&self, &super, &createRole, &signal)
	if err != nil {
		err = fmt.Errorf("%s: read the role's rights: %w", side, err)
	}
	return pgx.Identifier{self}.Sanitize(), super, createRole, signal, err
}

// blockFinding is one reason the switch could not block the source's users as the
// plan says: the switch's gates refuse with it, cutover check reports it.
type blockFinding struct {
	object, problem, fix string
}

func (f blockFinding) String() string { return f.object + ": " + f.problem + ": " + f.fix }

// serviceRoles are the login roles a managed service keeps for itself (RDS/Aurora,
// Cloud SQL, Azure): blocking them would stop the service's own agents, where the
// service lets the migration role alter them at all.
const serviceRoles = `(rolname IN ('rdsadmin', 'rdsrepladmin', 'rdstopmgr', 'azuresu', 'azure_superuser', 'azure_pg_admin', 'replication')
	OR rolname LIKE 'cloudsql%' OR rolname LIKE 'rds\_%')`

// blockFindings checks that the role sd's connection logs in as can block sd's users
// as c says (end their sessions; with block: roles, take their login, which only a
// superuser can do to a superuser, and from PostgreSQL 16 a CREATEROLE role only to
// the roles it holds ADMIN OPTION on), and, when other is not nil (the target, for a
// switch), that the users it blocks can log in there afterwards. The switch's gates
// ask it of the source, the rollback's of the target, cutover check of both.
func blockFindings(ctx context.Context, sd side, other *pgx.Conn, c plan.Cutover) ([]blockFinding, error) {
	var found []blockFinding
	src := sd.conn
	self, super, createRole, signal, err := roleRights(ctx, src, sd.name)
	if err != nil {
		return nil, err
	}
	me := sd.name + " role " + self
	if !super && !signal {
		found = append(found, blockFinding{me, "the " + sd.name + "'s migration role cannot end other sessions",
			"GRANT pg_signal_backend TO " + self + " on the " + sd.name})
	}
	if c.Block == plan.BlockReadOnly {
		return found, nil
	}
	roles, err := loginRolesBut(ctx, src, sd.name, c.ExemptRoles)
	if err != nil {
		return nil, err
	}
	if !super && !createRole {
		found = append(found, blockFinding{me, "the " + sd.name + "'s migration role can neither block roles (CREATEROLE) nor is a superuser",
			"ALTER ROLE " + self + " CREATEROLE on the " + sd.name + ", or cutover.block: read_only"})
	}
	service, supers, attrs, noAdmin, err := unalterable(ctx, src, sd.name, roles, super)
	if err != nil {
		return nil, err
	}
	exemptFix := func(names []string) string {
		return fmt.Sprintf("add them to cutover.exempt_roles (exempt_roles: [%s]), or set cutover.block: read_only", strings.Join(append(append([]string{}, c.ExemptRoles...), names...), ", "))
	}
	if len(service) > 0 {
		found = append(found, blockFinding{sd.name + " roles " + listText(service, 8), "these login roles are the managed service's own: a block would take their login and end their sessions",
			exemptFix(service)})
	}
	if len(supers) > 0 {
		found = append(found, blockFinding{sd.name + " roles " + listText(supers, 8), "these login roles are superusers, whose login only a superuser can take, so a block could not take it",
			exemptFix(supers) + ", or migrate as a superuser"})
	}
	if len(attrs) > 0 {
		found = append(found, blockFinding{sd.name + " roles " + listText(attrs, 8), "these login roles have REPLICATION (or BYPASSRLS), whose login a role that is not a superuser may not take (before PostgreSQL 16 at all, from 16 without that attribute itself)",
			exemptFix(attrs) + ", or migrate as a superuser"})
	}
	if len(noAdmin) > 0 {
		found = append(found, blockFinding{sd.name + " roles " + listText(noAdmin, 8), "the migration role holds no ADMIN OPTION on these login roles, which PostgreSQL 16 and later require of a CREATEROLE role to take their login",
			"GRANT each TO " + self + " WITH ADMIN OPTION on the " + sd.name + ", or " + exemptFix(noAdmin)})
	}
	if other == nil {
		return found, nil
	}
	more, err := unlockFindings(ctx, other, roles)
	return append(found, more...), err
}

// unalterable sorts out of roles those the role conn logs in as may not ALTER (to
// NOLOGIN or LOGIN): superusers; before PostgreSQL 16 also any role with REPLICATION;
// from 16 such a role (or one with BYPASSRLS) unless it has that attribute itself, and
// any role it holds no ADMIN OPTION on. A superuser (super) may alter them all. The
// managed service's own roles come apart (service), whatever the rest.
func unalterable(ctx context.Context, conn *pgx.Conn, side string, roles []string, super bool) (service, supers, attrs, noAdmin []string, err error) {
	err = conn.QueryRow(ctx, `WITH me AS (SELECT rolreplication AS repl, rolbypassrls AS bypass,
		                   current_setting('server_version_num')::int >= 160000 AS v16
		            FROM pg_roles WHERE rolname = current_user),
		     r AS (SELECT rolname, `+serviceRoles+` AS service, rolsuper, rolreplication, rolbypassrls, oid FROM pg_roles WHERE rolname = ANY($1))
		SELECT coalesce(array_agg(rolname ORDER BY rolname) FILTER (WHERE service), '{}'),
		       coalesce(array_agg(rolname ORDER BY rolname) FILTER (WHERE NOT service AND rolsuper AND NOT $2), '{}'),
		       coalesce(array_agg(rolname ORDER BY rolname) FILTER (WHERE NOT service AND NOT rolsuper AND NOT $2 AND (
		           (rolreplication AND (NOT me.v16 OR NOT me.repl)) OR (rolbypassrls AND me.v16 AND NOT me.bypass))), '{}'),
		       coalesce(array_agg(rolname ORDER BY rolname) FILTER (WHERE NOT service AND NOT rolsuper AND NOT $2 AND me.v16
		           AND NOT pg_has_role(current_user, r.oid, 'MEMBER WITH ADMIN OPTION')), '{}')
		FROM r, me`, roles, super).Scan(&service, &supers, &attrs, &noAdmin)
	if err != nil {
		err = fmt.Errorf("%s: read the login roles' attributes: %w", side, err)
	}
	return service, supers, attrs, noAdmin, err
}

// unlockFindings checks that the source's users, roles, can log in to the target after
// the switch: each exists there, and those without LOGIN there can be given it by the
// target's role at the unlock.
func unlockFindings(ctx context.Context, tgt *pgx.Conn, roles []string) ([]blockFinding, error) {
	var found []blockFinding
	var missing, locked []string
	if err := tgt.QueryRow(ctx, `SELECT coalesce(array_agg(r ORDER BY r) FILTER (WHERE p.rolname IS NULL), '{}'),
		       coalesce(array_agg(r ORDER BY r) FILTER (WHERE NOT p.rolcanlogin), '{}')
		FROM unnest($1::text[]) r LEFT JOIN pg_roles p ON p.rolname = r`, roles).Scan(&missing, &locked); err != nil {
		return nil, fmt.Errorf("target: list the roles it lacks: %w", err)
	}
	if len(missing) > 0 {
		found = append(found, blockFinding{"source roles " + listText(missing, 8), "these roles log in to the source but do not exist on the target, so the applications could not log in after the switch",
			"create them there (pg_dumpall --roles-only), or list them in cutover.exempt_roles"})
	}
	if len(locked) == 0 {
		return found, nil
	}
	self, super, createRole, _, err := roleRights(ctx, tgt, "target")
	if err != nil {
		return nil, err
	}
	loginFix := "give them LOGIN on the target now (ALTER ROLE ... LOGIN)"
	if !super && !createRole {
		found = append(found, blockFinding{"target role " + self,
			fmt.Sprintf("roles %s log in to the source but not to the target, and the target's migration role, which gives them their login at the unlock, can neither alter roles (CREATEROLE) nor is a superuser", listText(locked, 8)),
			"ALTER ROLE " + self + " CREATEROLE on the target, or " + loginFix})
		return found, nil
	}
	service, supers, attrs, noAdmin, err := unalterable(ctx, tgt, "target", locked, super)
	if err != nil {
		return nil, err
	}
	if stuck := append(append(append(service, supers...), attrs...), noAdmin...); len(stuck) > 0 {
		found = append(found, blockFinding{"target roles " + listText(stuck, 8),
			"these roles log in to the source but not to the target, and the target's migration role may not give them their login at the unlock (superusers, roles with REPLICATION or BYPASSRLS, from PostgreSQL 16 roles it holds no ADMIN OPTION on)",
			loginFix + " as a role that may, or list them in cutover.exempt_roles"})
	}
	return found, nil
}

// blockGates checks that the source can be blocked, and that the users it blocks can
// log in to the target afterwards.
func (s *switcher) blockGates(ctx context.Context) []string {
	found, err := blockFindings(ctx, s.source(), s.tgt, s.p.Cutover)
	if err != nil {
		return []string{err.Error()}
	}
	problems := make([]string, len(found))
	for i, f := range found {
		problems[i] = f.String()
	}
	return problems
}

// Block stops the writes of sd's users (block).
func (s *switcher) Block(ctx context.Context, sd cutover.Side) (string, error) {
	return s.block(ctx, s.side(sd))
}

// Unblock gives sd's users back what the blocks took (unblock).
func (s *switcher) Unblock(ctx context.Context, sd cutover.Side) (string, error) {
	return s.unblock(ctx, s.side(sd))
}

// block stops writes on sd: its login roles lose their login (or the database turns
// read-only) and their sessions end. What it changes is recorded first, so an undo,
// even in another process, puts it back.
func (s *switcher) block(ctx context.Context, sd side) (string, error) {
	if s.p.Cutover.Block == plan.BlockReadOnly {
		return s.blockReadOnly(ctx, sd)
	}
	roles, err := s.rolesToBlock(ctx, sd)
	if err != nil {
		return "", err
	}
	return s.blockRoles(ctx, sd, roles)
}

// blockRoles takes the login of roles on sd (recorded first) and ends their sessions.
func (s *switcher) blockRoles(ctx context.Context, sd side, roles []string) (string, error) {
	if err := s.record(ctx, "INSERT INTO "+s.ctl.table("blocked_roles")+" (run_id, side, role) SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING",
		s.run.ID, sd.name, roles); err != nil {
		return "", err
	}
	if err := s.alterRoles(ctx, sd, roles, "NOLOGIN"); err != nil {
		return "", err
	}
	ended, err := s.endSessions(ctx, sd, "usename = ANY($1::text[])", roles)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d roles blocked%s, %d sessions ended", len(roles), inParens(listText(roles, 6)), ended), nil
}

func (s *switcher) blockReadOnly(ctx context.Context, sd side) (string, error) {
	var previous *string
	err := sd.conn.QueryRow(ctx, `SELECT (SELECT substr(c, length('default_transaction_read_only=') + 1)
		FROM pg_db_role_setting d, unnest(d.setconfig) c
		WHERE d.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) AND d.setrole = 0
		  AND c LIKE 'default_transaction_read_only=%')`).Scan(&previous)
	if err != nil {
		return "", fmt.Errorf("%s: read the database's settings: %w", sd.name, err)
	}
	if err := s.record(ctx, "INSERT INTO "+s.ctl.table("blocked_databases")+" (run_id, side, database, previous) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
		s.run.ID, sd.name, sd.db, previous); err != nil {
		return "", err
	}
	if err := s.exec(ctx, sd.name, sd.conn, "ALTER DATABASE "+pgx.Identifier{sd.db}.Sanitize()+" SET default_transaction_read_only = on"); err != nil {
		return "", err
	}
	ended, err := s.endSessions(ctx, sd, "usename <> current_user AND usename <> ALL ($1::text[])", s.exempt())
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("database %s read-only for new sessions, %d sessions ended", sd.db, ended), nil
}

// sessionsGone bounds the wait for ended sessions to exit.
const sessionsGone = 10 * time.Second

// endSessions ends the sessions on sd's database that match cond (over $1) and waits
// until they are gone: a session ended mid-transaction rolls it back, so once they
// are gone every write they made is committed or undone, before the sync marker.
func (s *switcher) endSessions(ctx context.Context, sd side, cond string, arg any) (int, error) {
	where := "datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND " + cond
	if s.dry {
		fmt.Fprintf(s.out, "      %s: SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE %s  -- with %v; until none is left\n", sd.name, where, arg)
		return 0, nil
	}
	var ended int
	deadline := time.Now().Add(sessionsGone)
	for first := true; ; first = false {
		var n int
		if err := sd.conn.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "+where, arg).Scan(&n); err != nil {
			return ended, fmt.Errorf("%s: end the sessions: %w", sd.name, err)
		}
		if first {
			ended = n
		}
		if n == 0 {
			return ended, nil
		}
		if time.Now().After(deadline) {
			return ended, fmt.Errorf("%s: %d sessions still there %v after they were ended", sd.name, n, sessionsGone)
		}
		select {
		case <-ctx.Done():
			return ended, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// unblock gives sd's users back what the blocks recorded for that side took, in any
// run that did not give it back yet.
func (s *switcher) unblock(ctx context.Context, sd side) (string, error) {
	present, err := s.loginRoles(ctx, sd, "side = $1 AND restored_at IS NULL", "", sd.name)
	if err != nil {
		return "", err
	}
	if err := s.alterRoles(ctx, sd, present, "LOGIN"); err != nil {
		return "", err
	}
	if err := s.record(ctx, "UPDATE "+s.ctl.table("blocked_roles")+" SET restored_at = now() WHERE side = $1 AND restored_at IS NULL", sd.name); err != nil {
		return "", err
	}
	detail := fmt.Sprintf("%d roles can log in again%s", len(present), inParens(listText(present, 6)))
	var previous []*string
	rows, err := s.tgt.Query(ctx, "SELECT previous FROM "+s.ctl.table("blocked_databases")+" WHERE side = $1 AND restored_at IS NULL ORDER BY blocked_at", sd.name)
	if err != nil {
		return "", fmt.Errorf("target: read the blocked databases: %w", err)
	}
	if previous, err = pgx.CollectRows(rows, pgx.RowTo[*string]); err != nil {
		return "", err
	}
	if len(previous) > 0 {
		// The first block recorded the setting from before any block.
		sql := "ALTER DATABASE " + pgx.Identifier{sd.db}.Sanitize() + " RESET default_transaction_read_only"
		if p := previous[0]; p != nil {
			sql = "ALTER DATABASE " + pgx.Identifier{sd.db}.Sanitize() + " SET default_transaction_read_only = " + quoteLiteral(*p)
		}
		if err := s.exec(ctx, sd.name, sd.conn, sql); err != nil {
			return "", err
		}
		if err := s.record(ctx, "UPDATE "+s.ctl.table("blocked_databases")+" SET restored_at = now() WHERE side = $1 AND restored_at IS NULL", sd.name); err != nil {
			return "", err
		}
		detail = fmt.Sprintf("database %s writable again", sd.db)
	}
	return detail, nil
}

// grantLogin gives the roles blocked on from in this run their login on to.
func (s *switcher) grantLogin(ctx context.Context, to, from side) (string, error) {
	var blocked int
	if err := s.tgt.QueryRow(ctx, "SELECT count(*) FROM "+s.ctl.table("blocked_roles")+" WHERE run_id = $1 AND side = $2", s.run.ID, from.name).Scan(&blocked); err != nil {
		return "", fmt.Errorf("target: read the blocked roles: %w", err)
	}
	locked, err := s.loginRoles(ctx, to, "run_id = $1 AND side = $2", "AND NOT rolcanlogin", s.run.ID, from.name)
	if err != nil {
		return "", err
	}
	if err := s.alterRoles(ctx, to, locked, "LOGIN"); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d roles log in to the %s (%d given their login there)", blocked, to.name, len(locked)), nil
}

// loginRoles lists the roles of blocked_roles matching where (over args) that exist on
// sd (and match roleCond there).
func (s *switcher) loginRoles(ctx context.Context, sd side, where, roleCond string, args ...any) ([]string, error) {
	var roles []string
	if err := s.tgt.QueryRow(ctx, "SELECT coalesce(array_agg(DISTINCT role), '{}') FROM "+s.ctl.table("blocked_roles")+" WHERE "+where, args...).Scan(&roles); err != nil {
		return nil, fmt.Errorf("target: read the blocked roles: %w", err)
	}
	var present []string
	if err := sd.conn.QueryRow(ctx, "SELECT coalesce(array_agg(rolname ORDER BY rolname), '{}') FROM pg_roles WHERE rolname = ANY($1) "+roleCond, roles).Scan(&present); err != nil {
		return nil, fmt.Errorf("%s: %w", sd.name, err)
	}
	return present, nil
}

// alterRoles sets attr (LOGIN, NOLOGIN) on roles, in one round trip.
func (s *switcher) alterRoles(ctx context.Context, sd side, roles []string, attr string) error {
	if len(roles) == 0 {
		return nil
	}
	stmts := make([]string, len(roles))
	for i, r := range roles {
		stmts[i] = "ALTER ROLE " + pgx.Identifier{r}.Sanitize() + " " + attr
	}
	return s.exec(ctx, sd.name, sd.conn, strings.Join(stmts, "; "))
}

// Unlock ends the write downtime on sd: the target after a switch, the source after
// a rollback.
func (s *switcher) Unlock(ctx context.Context, sd cutover.Side) (string, error) {
	if sd == cutover.Source {
		return s.unlockSource(ctx)
	}
	return s.unlockTarget(ctx)
}

// Relock closes sd again after an unlock that did not finish.
func (s *switcher) Relock(ctx context.Context, sd cutover.Side) (string, error) {
	if sd == cutover.Source {
		return s.relockSource(ctx)
	}
	return s.relockTarget(ctx)
}

// unlockTarget ends the write downtime: whatever an earlier rollback blocked on the
// target is given back, the source's users get their login there, the source's jobs
// move there, and the migration is switched.
func (s *switcher) unlockTarget(ctx context.Context) (string, error) {
	var details []string
	d, err := s.unblock(ctx, s.target())
	if err != nil {
		return "", err
	}
	details = append(details, d)
	if d, err = s.grantLogin(ctx, s.target(), s.source()); err != nil {
		return "", err
	}
	details = append(details, d)
	if d, err = s.moveJobs(ctx, s.source(), s.target()); err != nil {
		return "", err
	}
	details = append(details, d)
	if err := s.hooks.Commands(ctx, "resume_jobs", s.p.Cutover.Hooks.ResumeJobs, "CUTOVER_STEP=unlock", "CUTOVER_RUN="+s.run.ID, "CUTOVER_SIDE=target"); err != nil {
		return "", err
	}
	if err := s.setPhase(ctx, control.PhaseSwitched); err != nil {
		return "", err
	}
	return strings.Join(details, "; "), nil
}

// relockTarget undoes an unlock of the target that failed, or was interrupted, before
// it was recorded done: the target is closed again (its login roles blocked, recorded
// so that the next switch's unlock gives them back) and its jobs suspended, before the
// undos that follow open the source again. Without it both sides would take writes.
func (s *switcher) relockTarget(ctx context.Context) (string, error) {
	d1, err := s.block(ctx, s.target())
	if err != nil {
		return "", err
	}
	d2, err := s.suspendJobs(ctx, s.target())
	if err != nil {
		return "", err
	}
	// The phase the unlock set goes back to the switch's, which the gates' undo ends.
	if _, err := s.phaseBack(ctx, control.PhaseSwitched, control.PhaseSwitching); err != nil {
		return "", err
	}
	return d1 + "; " + d2, nil
}

// cron opens sd's pg_cron: the database its jobs live in (cron.database_name), which
// may be another database of the same server. ok is false without pg_cron.
func (s *switcher) cron(ctx context.Context, sd side) (conn *pgx.Conn, done func(), ok bool, err error) {
	// cron.database_name is readable by superusers and pg_read_all_settings only. A role
	// of a managed service may have neither: then pg_cron is here when its extension is,
	// else in the postgres database, its default.
	var db *string
	var readable, here bool
	if err := sd.conn.QueryRow(ctx, `SELECT r.readable, CASE WHEN r.readable THEN current_setting('cron.database_name', true) END,
		    EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron')
		FROM (SELECT rolsuper OR pg_has_role(current_user, 'pg_read_all_settings', 'MEMBER') AS readable
		      FROM pg_roles WHERE rolname = current_user) r`).Scan(&readable, &db, &here); err != nil {
		return nil, nil, false, fmt.Errorf("%s: %w", sd.name, err)
	}
	if !readable {
		fallback := "postgres"
		if here {
			fallback = sd.db
		}
		db = &fallback
	}
	if db == nil || *db == "" {
		return nil, nil, false, nil
	}
	conn, done = sd.conn, func() {}
	if *db != sd.db {
		cfg, err := Config(sd.ep)
		if err != nil {
			return nil, nil, false, err
		}
		cfg.Database = *db
		if conn, err = pgx.ConnectConfig(ctx, cfg); err != nil {
			if !readable {
				return nil, nil, false, fmt.Errorf("%s: connect to database %s, where pg_cron keeps its jobs unless cron.database_name says otherwise (which the role may not read: GRANT pg_read_all_settings TO it): %w", sd.name, *db, err)
			}
			return nil, nil, false, fmt.Errorf("%s: connect to database %s, where pg_cron keeps its jobs: %w", sd.name, *db, err)
		}
		done = func() { conn.Close(context.WithoutCancel(ctx)) }
	}
	var has bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('cron.job') IS NOT NULL").Scan(&has); err != nil || !has {
		done()
		return nil, nil, false, err
	}
	return conn, done, true, nil
}

type cronJob struct {
	id                                          int64
	name, schedule, command, database, username string
}

// SuspendJobs suspends sd's pg_cron jobs and runs the suspend_jobs hooks (suspendJobs).
func (s *switcher) SuspendJobs(ctx context.Context, sd cutover.Side) (string, error) {
	return s.suspendJobs(ctx, s.side(sd))
}

// ResumeJobs gives sd its jobs back from the other side (resumeJobs).
func (s *switcher) ResumeJobs(ctx context.Context, sd cutover.Side) (string, error) {
	return s.resumeJobs(ctx, s.side(sd), s.side(sd.Other()))
}

// suspendJobs sets sd's active pg_cron jobs of its database inactive (recorded
// first), then runs the suspend_jobs hooks.
func (s *switcher) suspendJobs(ctx context.Context, sd side) (string, error) {
	detail := "no pg_cron on the " + sd.name
	conn, done, ok, err := s.cron(ctx, sd)
	if err != nil {
		return "", err
	}
	if ok {
		defer done()
		rows, err := conn.Query(ctx, "SELECT jobid, coalesce(jobname, ''), schedule, command, database, username FROM cron.job WHERE database = $1 AND active ORDER BY jobid", sd.db)
		if err != nil {
			return "", fmt.Errorf("%s: list the pg_cron jobs: %w", sd.name, err)
		}
		jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cronJob, error) {
			var j cronJob
			return j, r.Scan(&j.id, &j.name, &j.schedule, &j.command, &j.database, &j.username)
		})
		if err != nil {
			return "", err
		}
		for _, j := range jobs {
			if err := s.record(ctx, "INSERT INTO "+s.ctl.table("suspended_jobs")+` (run_id, side, jobid, jobname, schedule, command, database, username)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`, s.run.ID, sd.name, j.id, j.name, j.schedule, j.command, j.database, j.username); err != nil {
				return "", err
			}
			if err := s.exec(ctx, sd.name, conn, "SELECT cron.alter_job($1, active := false)", j.id); err != nil {
				return "", err
			}
		}
		detail = fmt.Sprintf("%d pg_cron jobs suspended", len(jobs))
	}
	if err := s.hooks.Commands(ctx, "suspend_jobs", s.p.Cutover.Hooks.SuspendJobs, "CUTOVER_STEP=jobs", "CUTOVER_RUN="+s.run.ID, "CUTOVER_SIDE="+sd.name); err != nil {
		return "", err
	}
	return detail, nil
}

// resumeJobs gives sd its suspended pg_cron jobs back, and drops the copies a switch
// made of them on other, then runs the resume_jobs hooks.
func (s *switcher) resumeJobs(ctx context.Context, sd, other side) (string, error) {
	detail, err := s.resumeCron(ctx, sd, other)
	if err != nil {
		return "", err
	}
	if err := s.hooks.Commands(ctx, "resume_jobs", s.p.Cutover.Hooks.ResumeJobs, "CUTOVER_STEP=resume", "CUTOVER_RUN="+s.run.ID, "CUTOVER_SIDE="+sd.name); err != nil {
		return "", err
	}
	return detail, nil
}

// resumeCron is resumeJobs without the hooks.
func (s *switcher) resumeCron(ctx context.Context, sd, other side) (string, error) {
	rows, err := s.tgt.Query(ctx, "SELECT jobid, moved_jobid FROM "+s.ctl.table("suspended_jobs")+" WHERE side = $1 AND restored_at IS NULL ORDER BY jobid", sd.name)
	if err != nil {
		return "", fmt.Errorf("target: read the suspended jobs: %w", err)
	}
	type job struct {
		id    int64
		moved *int64
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (job, error) {
		var j job
		return j, r.Scan(&j.id, &j.moved)
	})
	if err != nil {
		return "", err
	}
	detail := "no pg_cron job to resume"
	if len(jobs) > 0 {
		conn, done, ok, err := s.cron(ctx, sd)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", fmt.Errorf("%s: pg_cron is gone, so %d suspended jobs cannot be resumed: see %s", sd.name, len(jobs), s.ctl.table("suspended_jobs"))
		}
		defer done()
		for _, j := range jobs {
			if j.moved != nil {
				if oconn, odone, ok, err := s.cron(ctx, other); err == nil && ok {
					err = s.exec(ctx, other.name, oconn, "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobid = $1", *j.moved)
					odone()
					if err != nil {
						return "", err
					}
				}
			}
			if err := s.exec(ctx, sd.name, conn, "SELECT cron.alter_job(jobid, active := true) FROM cron.job WHERE jobid = $1", j.id); err != nil {
				return "", err
			}
		}
		if err := s.record(ctx, "UPDATE "+s.ctl.table("suspended_jobs")+" SET restored_at = now() WHERE side = $1 AND restored_at IS NULL", sd.name); err != nil {
			return "", err
		}
		detail = fmt.Sprintf("%d pg_cron jobs resumed on the %s", len(jobs), sd.name)
	}
	return detail, nil
}

// moveJobs schedules on to, for its database, the jobs this run suspended on from,
// and gives back to what an earlier rollback suspended there.
func (s *switcher) moveJobs(ctx context.Context, from, to side) (string, error) {
	rows, err := s.tgt.Query(ctx, "SELECT jobid, jobname, schedule, command, username FROM "+s.ctl.table("suspended_jobs")+
		" WHERE run_id = $1 AND side = $2 AND moved_jobid IS NULL ORDER BY jobid", s.run.ID, from.name)
	if err != nil {
		return "", fmt.Errorf("target: read the suspended jobs: %w", err)
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cronJob, error) {
		var j cronJob
		return j, r.Scan(&j.id, &j.name, &j.schedule, &j.command, &j.username)
	})
	if err != nil {
		return "", err
	}
	var earlier int
	if err := s.tgt.QueryRow(ctx, "SELECT count(*) FROM "+s.ctl.table("suspended_jobs")+" WHERE side = $1 AND restored_at IS NULL", to.name).Scan(&earlier); err != nil {
		return "", err
	}
	if len(jobs) == 0 && earlier == 0 {
		return "no pg_cron job to move", nil
	}
	conn, done, ok, err := s.cron(ctx, to)
	if err != nil {
		return "", err
	}
	if !ok {
		return fmt.Sprintf("warning: the %s has no pg_cron: the %d jobs suspended on the %s (%s) must be scheduled there by hand or by the resume_jobs hooks",
			to.name, len(jobs), from.name, s.ctl.table("suspended_jobs")), nil
	}
	defer done()
	if earlier > 0 {
		// The unlock runs the resume_jobs hooks once, after.
		if _, err := s.resumeCron(ctx, to, from); err != nil {
			return "", err
		}
	}
	for _, j := range jobs {
		name := j.name
		if name == "" {
			name = fmt.Sprintf("cutover-moved-%d", j.id)
		}
		if s.dry {
			fmt.Fprintf(s.out, "      %s: SELECT cron.schedule_in_database(%s, %s, %s, %s, %s)\n", to.name, quoteLiteral(name), quoteLiteral(j.schedule),
				quoteLiteral(j.command), quoteLiteral(to.db), quoteLiteral(j.username))
			continue
		}
		var id int64
		if err := conn.QueryRow(ctx, "SELECT cron.schedule_in_database($1, $2, $3, $4, $5)", name, j.schedule, j.command, to.db, j.username).Scan(&id); err != nil {
			return "", fmt.Errorf("%s: schedule pg_cron job %d (%s): %w", to.name, j.id, name, err)
		}
		if err := s.record(ctx, "UPDATE "+s.ctl.table("suspended_jobs")+" SET moved_jobid = $1 WHERE run_id = $2 AND side = $3 AND jobid = $4", id, s.run.ID, from.name, j.id); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%d pg_cron jobs scheduled on the %s", len(jobs), to.name), nil
}

// inParens is " (s)", or nothing when s is empty.
func inParens(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}
