package mysql

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/plan"
)

// privileges are the privileges a role holds, as SHOW GRANTS lists them: on every
// database (global) and per database. Privileges held through roles are not listed
// there; a finding about one says so.
type privileges struct {
	global map[string]bool
	db     map[string]map[string]bool // database (as written: a pattern may be) -> privileges
	roles  bool                       // the role holds roles, whose privileges are not read
}

var grantLine = regexp.MustCompile("(?i)^GRANT (.+?) ON (\\S+|`[^`]*`\\.\\S+) TO ")

// readPrivileges reads the connected role's grants.
func readPrivileges(ctx context.Context, s *server) (*privileges, error) {
	rows, err := s.db.QueryContext(ctx, "SHOW GRANTS")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	p := &privileges{global: map[string]bool{}, db: map[string]map[string]bool{}}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return nil, err
		}
		m := grantLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		on := m[2]
		set := p.global
		if on != "*.*" {
			db, _, _ := strings.Cut(on, ".")
			db = strings.Trim(db, "`")
			if p.db[db] == nil {
				p.db[db] = map[string]bool{}
			}
			set = p.db[db]
		}
		privs := strings.Split(m[1], ",")
		if len(privs) == 1 && !strings.Contains(strings.ToUpper(privs[0]), "PRIVILEGES") && !knownPrivilege(privs[0]) {
			p.roles = true // GRANT role TO user
			continue
		}
		for _, pr := range privs {
			pr = strings.ToUpper(strings.TrimSpace(pr))
			if i := strings.IndexByte(pr, '('); i > 0 {
				pr = strings.TrimSpace(pr[:i]) // a column privilege
			}
			set[pr] = true
		}
	}
	return p, rows.Err()
}

// knownPrivilege tells a privilege from a role's name in a GRANT line.
func knownPrivilege(s string) bool {
	s = strings.ToUpper(strings.TrimSpace(s))
	return slices.Contains([]string{"USAGE", "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "RELOAD", "PROCESS", "FILE",
		"REFERENCES", "INDEX", "ALTER", "SUPER", "EVENT", "TRIGGER", "SHOW VIEW", "LOCK TABLES", "CREATE USER", "REPLICATION SLAVE",
		"REPLICATION CLIENT", "BINLOG MONITOR", "CONNECTION ADMIN", "SHOW DATABASES", "EXECUTE", "READ_ONLY ADMIN", "BINLOG ADMIN",
		"CONNECTION_ADMIN", "SYSTEM_VARIABLES_ADMIN"}, s) || strings.HasPrefix(s, "SELECT (")
}

// has says whether the role holds one of privs on database db (or everywhere).
func (p *privileges) has(db string, privs ...string) bool {
	for _, set := range []map[string]bool{p.global, p.db[db]} {
		if set["ALL PRIVILEGES"] || set["ALL"] {
			return true
		}
		for _, pr := range privs {
			if set[pr] {
				return true
			}
		}
	}
	return false
}

// grantsFindings says which privileges each side's role lacks for what the plan runs,
// each with the GRANT that gives it.
func (a *assessment) grantsFindings(ctx context.Context) {
	role := func(s *server) string {
		var u string
		if err := s.db.QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&u); err != nil {
			return "the role"
		}
		user, host, _ := strings.Cut(u, "@")
		return quote(user) + "@" + quote(host)
	}
	severity := func(p *privileges) check.Severity {
		if p.roles {
			return check.Warning // held through a role, perhaps: not read
		}
		return check.Error
	}
	note := func(p *privileges) string {
		if p.roles {
			return " (unless a role it holds gives it: roles are not read)"
		}
		return ""
	}
	var srcPriv *privileges // for the read_only findings below
	if a.src != nil {
		p, err := readPrivileges(ctx, a.src)
		if err != nil {
			a.fail("source", "grants", err)
		} else {
			srcPriv = p
			who, db := role(a.src), a.srcDB
			if !p.has(db, "SELECT") {
				a.add(severity(p), "privilege", "source", fmt.Sprintf("the source's role %s may not read the database %s%s", who, quote(db), note(p)),
					fmt.Sprintf("GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON %s.* TO %s", quote(db), who))
			}
			if !p.has(db, "RELOAD", "LOCK TABLES") {
				a.add(check.Warning, "privilege", "source", fmt.Sprintf("the source's role %s may take no lock for the snapshot (neither RELOAD nor LOCK TABLES)%s: MariaDB's views are opened until they agree on a position, MySQL's cannot be aligned", who, note(p)),
					fmt.Sprintf("GRANT RELOAD ON *.* TO %s (or GRANT LOCK TABLES ON %s.* TO %[1]s)", who, quote(db)))
			}
			if a.plan.CDC.Enabled && !(p.has("", "REPLICATION SLAVE") && p.has("", "REPLICATION CLIENT", "BINLOG MONITOR")) {
				a.add(severity(p), "privilege", "source", fmt.Sprintf("the source's role %s may not read the binary log%s", who, note(p)),
					fmt.Sprintf("GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO %s", who))
			}
		}
	}
	if a.tgt != nil {
		if a.tgt.settings["local_infile"] != "ON" {
			a.add(check.Error, "local_infile", "target", "local_infile is OFF on the target: the load sends the rows with LOAD DATA LOCAL INFILE",
				a.tgt.setOnline("local_infile", "ON")+" (on RDS and Aurora: the parameter group's local_infile = 1)")
		}
		p, err := readPrivileges(ctx, a.tgt)
		if err != nil {
			a.fail("target", "grants", err)
			return
		}
		who := role(a.tgt)
		for _, db := range []string{a.tgtDB, a.plan.ControlSchema} {
			if !p.has(db, "ALL PRIVILEGES") {
				a.add(severity(p), "privilege", "target", fmt.Sprintf("the target's role %s does not hold ALL on %s%s: the load creates and fills its tables there", who, quote(db), note(p)),
					fmt.Sprintf("GRANT ALL ON %s.* TO %s", quote(db), who))
			}
		}
		readOnly := a.plan.Cutover.Block == plan.BlockReadOnly
		if a.plan.CDC.Enabled && readOnly {
			for _, side := range []struct {
				s  *server
				sp *privileges
			}{{a.src, srcPriv}, {a.tgt, p}} {
				s, sp := side.s, side.sp
				if s == nil || sp == nil {
					continue // unreachable, or its grants unread: said above
				}
				if !sp.pastReadOnly() {
					a.add(severity(sp), "privilege", s.side, fmt.Sprintf("with cutover.block: read_only, the %s's role %s sets read_only on the %[1]s's server and writes past it (the target is read-only until the switch, the source after it)%s", s.side, role(s), note(sp)),
						fmt.Sprintf("GRANT %s ON *.* TO %s, or set cutover.block: roles", readOnlyGrant(s.mariadb), role(s)))
				}
			}
		}
		if a.plan.CDC.Enabled && readOnly && !p.has("mysql", "SELECT") {
			a.add(check.Warning, "privilege", "target", fmt.Sprintf("the target's role %s cannot read who may write to the migrated tables past read_only (SELECT on mysql.*)%s", who, note(p)),
				fmt.Sprintf("GRANT SELECT ON mysql.* TO %s", who))
		}
		if a.plan.CDC.Enabled && !readOnly && !(p.has("mysql", "SELECT") && p.has("", "CREATE USER")) {
			a.add(check.Warning, "privilege", "target", fmt.Sprintf("the target's role %s cannot close the target to the applications until the switch (it needs SELECT on mysql.* to read who may write, CREATE USER to lock them)%s", who, note(p)),
				fmt.Sprintf("GRANT SELECT ON mysql.* TO %s; GRANT CREATE USER, PROCESS, CONNECTION ADMIN ON *.* TO %[1]s", who))
		}
	}
}
