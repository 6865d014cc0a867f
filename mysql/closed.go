package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/cutover-dev/cutover/plan"
)

// One writable side at every moment, on a MySQL/MariaDB target. During replication the
// target is a copy the change stream owns: an application's write there would diverge
// it without a word. So from the load until the switch's unlock, every account that may
// log in to the target and write to a migrated table is locked (ALTER USER ... ACCOUNT
// LOCK, recorded in the control state so that the unlock gives back exactly those), and
// its sessions are ended, since a lock refuses new connections only. Left alone: the
// migration's own account, which the change stream writes as, cutover.exempt_roles, and
// the server's and the managed service's own accounts.
//
// Accounts and grants are the server's, so this reads the grant tables (mysql.*), which
// the migration role needs SELECT on. An account may write when it holds INSERT,
// UPDATE, DELETE or DROP (MySQL's TRUNCATE needs DROP), or INSERT or UPDATE on a column:
// on every database, on the target database (a grant on a pattern such as app\_%
// included), or on a migrated table; itself, through a role it was granted (a role it
// may SET ROLE to, default or not, and the roles granted to that role), or through
// MariaDB's PUBLIC. Where MySQL takes the first matching database grant rather than
// all of them, or partial revokes narrow a grant, this counts the account as a writer:
// it may lock an account that could not write, never leave one open.

// loadRun is the run the load records the accounts it locks under: the switch's
// unlock gives back whatever is recorded there.
const loadRun = "load"

// lockedTable is the control state's record of the accounts cutover locked. One row per
// account and run; a row is deleted once its account is unlocked.
const lockedTable = `CREATE TABLE IF NOT EXISTS %s (
	run varchar(20) NOT NULL,
	user_name varchar(255) NOT NULL,
	host_name varchar(255) NOT NULL,
	locked_at datetime(6) NOT NULL,
	PRIMARY KEY (run, user_name, host_name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin`

// sessionsGone bounds the wait for ended sessions to go: a session ended in a
// transaction rolls it back before it leaves.
const sessionsGone = 10 * time.Second

// account is a MySQL/MariaDB account, or a role: a user name and the host pattern it
// logs in from (a MariaDB role's host is empty).
type account struct{ user, host string }

// String names the account as MySQL prints it, and as a statement takes it.
func (a account) String() string {
	return "'" + strings.ReplaceAll(a.user, "'", "''") + "'@'" + strings.ReplaceAll(a.host, "'", "''") + "'"
}

// sql names the account in a statement, each part quoted as an identifier.
func (a account) sql() string { return quote(a.user) + "@" + quote(a.host) }

// accountState is what the grant tables say of one account or role itself.
type accountState struct {
	role    bool // a MariaDB role: it cannot log in
	locked  bool
	writes  bool // holds a write privilege on every database
	process bool // may see every session
	admin   bool // an administrator (global SUPER): never locked by cutover
}

// grants is what the target's grant tables say about who may write to the migrated
// tables.
type grants struct {
	mariadb  bool
	me       account // CURRENT_USER(): the migration's own
	accounts map[account]*accountState
	writes   map[account]bool      // holds a write privilege on the target database or a migrated table
	roles    map[account][]account // the roles granted to each account or role
	memo     map[account]bool
}

// Privilege bits of MariaDB's mysql.global_priv access.
const (
	insertACL  = 1 << 1
	updateACL  = 1 << 2
	deleteACL  = 1 << 3
	dropACL    = 1 << 5
	processACL = 1 << 8
	superACL   = 1 << 15
)

// readGrants reads the target's accounts and the grants that may let them write to
// tables (names of the target database target).
func readGrants(ctx context.Context, db *sql.DB, target string, tables []tableName) (*grants, error) {
	var version, me string
	var lowerCase int
	if err := db.QueryRowContext(ctx, "SELECT VERSION(), CURRENT_USER(), @@lower_case_table_names").Scan(&version, &me, &lowerCase); err != nil {
		return nil, fmt.Errorf("target: read the migration role's account: %w", err)
	}
	g := &grants{
		mariadb:  strings.Contains(strings.ToLower(version), "mariadb"),
		accounts: map[account]*accountState{},
		writes:   map[account]bool{},
		roles:    map[account][]account{},
		memo:     map[account]bool{},
	}
	at := strings.LastIndex(me, "@")
	g.me = account{me[:max(at, 0)], me[at+1:]}
	names := map[string]bool{}
	for _, t := range tables {
		names[t.name] = true
	}
	if lowerCase != 0 {
		target = strings.ToLower(target)
		for n := range names {
			names[strings.ToLower(n)] = true
		}
	}
	for _, read := range []func(context.Context, *sql.DB) error{
		g.readAccounts,
		func(ctx context.Context, db *sql.DB) error { return g.readDatabaseGrants(ctx, db, target) },
		func(ctx context.Context, db *sql.DB) error { return g.readTableGrants(ctx, db, target, names) },
		g.readRoles,
	} {
		if err := read(ctx, db); err != nil {
			return nil, g.readError(err)
		}
	}
	return g, nil
}

// readError says which grant the migration role needs to read the grant tables.
func (g *grants) readError(err error) error {
	var me *driver.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1044, 1142, 1143:
			return fmt.Errorf("target: the migration role cannot read the accounts and grants (%w): GRANT SELECT ON mysql.* TO %s on the target: "+
				"cutover reads there which accounts may write to the migrated tables, to lock them until the switch", err, g.me)
		case 1146:
			if g.mariadb {
				return fmt.Errorf("target: %w: MariaDB locks accounts (ALTER USER ... ACCOUNT LOCK) from 10.4; this one cannot close the target to the applications", err)
			}
		}
	}
	return fmt.Errorf("target: read the accounts and grants: %w", err)
}

func (g *grants) readAccounts(ctx context.Context, db *sql.DB) error {
	// MySQL's privilege columns as MariaDB's access bits
	q := `SELECT User, Host, (Insert_priv = 'Y') * 2 + (Update_priv = 'Y') * 4 + (Delete_priv = 'Y') * 8 + (Drop_priv = 'Y') * 32 + (Process_priv = 'Y') * 256 + (Super_priv = 'Y') * 32768,
		account_locked = 'Y', 0
		FROM mysql.user`
	if g.mariadb {
		// mysql.user is a view of it without the lock
		// and JSON_VALUE reads a JSON true as 1
		q = `SELECT User, Host, JSON_VALUE(Priv, '$.access'), coalesce(JSON_VALUE(Priv, '$.account_locked') IN ('1', 'true'), 0),
			coalesce(JSON_VALUE(Priv, '$.is_role') IN ('1', 'true'), 0)
			FROM mysql.global_priv`
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var a account
		var access sql.NullString
		st := &accountState{}
		if err := rows.Scan(&a.user, &a.host, &access, &st.locked, &st.role); err != nil {
			return err
		}
		bits, _ := strconv.ParseUint(access.String, 10, 64)
		st.writes = bits&(insertACL|updateACL|deleteACL|dropACL) != 0
		st.process = bits&processACL != 0
		st.admin = bits&superACL != 0
		g.accounts[a] = st
	}
	return rows.Err()
}

// readDatabaseGrants reads the grants on the target database, by name or by pattern.
func (g *grants) readDatabaseGrants(ctx context.Context, db *sql.DB, target string) error {
	rows, err := db.QueryContext(ctx, `SELECT User, Host, Db FROM mysql.db
		WHERE Insert_priv = 'Y' OR Update_priv = 'Y' OR Delete_priv = 'Y' OR Drop_priv = 'Y'`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var a account
		var pattern string
		if err := rows.Scan(&a.user, &a.host, &pattern); err != nil {
			return err
		}
		if like(pattern, target) {
			g.writes[a] = true
		}
	}
	return rows.Err()
}

// readTableGrants reads the grants on the migrated tables and their columns.
func (g *grants) readTableGrants(ctx context.Context, db *sql.DB, target string, names map[string]bool) error {
	rows, err := db.QueryContext(ctx, "SELECT User, Host, Db, Table_name, Table_priv, Column_priv FROM mysql.tables_priv")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var a account
		var schema, table, tablePriv, columnPriv string
		if err := rows.Scan(&a.user, &a.host, &schema, &table, &tablePriv, &columnPriv); err != nil {
			return err
		}
		if schema != target || !names[table] {
			continue
		}
		for _, p := range append(strings.Split(tablePriv, ","), strings.Split(columnPriv, ",")...) {
			if p == "Insert" || p == "Update" || p == "Delete" || p == "Drop" {
				g.writes[a] = true
			}
		}
	}
	return rows.Err()
}

// readRoles reads which roles each account or role was granted: MariaDB's
// mysql.roles_mapping (a role's host is empty), MySQL 8's mysql.role_edges.
func (g *grants) readRoles(ctx context.Context, db *sql.DB) error {
	q := "SELECT User, Host, Role, '' FROM mysql.roles_mapping"
	if !g.mariadb {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'role_edges'").Scan(&n); err != nil || n == 0 {
			return err // MySQL 5.7: no roles
		}
		q = "SELECT TO_USER, TO_HOST, FROM_USER, FROM_HOST FROM mysql.role_edges"
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var grantee, role account
		if err := rows.Scan(&grantee.user, &grantee.host, &role.user, &role.host); err != nil {
			return err
		}
		g.roles[grantee] = append(g.roles[grantee], role)
	}
	return rows.Err()
}

// public is MariaDB's PUBLIC (10.11): a role every account holds, without a
// roles_mapping row.
var public = account{"PUBLIC", ""}

// mayWrite says whether a may write to a migrated table: itself, through a role, or
// through MariaDB's PUBLIC.
func (g *grants) mayWrite(a account) bool {
	if w, ok := g.memo[a]; ok {
		return w
	}
	g.memo[a] = false // the servers refuse a cycle of roles: this only stops one
	w := g.writes[a] || (g.accounts[a] != nil && g.accounts[a].writes)
	roles := g.roles[a]
	if g.mariadb && a != public {
		roles = append(slices.Clone(roles), public)
	}
	for _, r := range roles {
		w = w || g.mayWrite(r)
	}
	g.memo[a] = w
	return w
}

// writers lists, by name, the accounts that may log in and write to the migrated
// tables, locked or not: all but roles, the migration's own account, exempt and the
// service's own.
func (g *grants) writers(exempt []string) []account {
	var out []account
	for a, st := range g.accounts {
		if st.role || a == g.me || serviceAccount(a.user) || exempted(a, exempt) || !g.mayWrite(a) {
			continue
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y account) int { return strings.Compare(x.user+"\x00"+x.host, y.user+"\x00"+y.host) })
	return out
}

// serviceAccount says whether user is one of the server's or the managed service's
// own accounts, which cutover never locks.
func serviceAccount(user string) bool {
	switch user {
	case "mariadb.sys", "mysql.sys", "mysql.session", "mysql.infoschema", "rdsadmin", "rdsrepladmin", "rdstopmgr", "azure_superuser":
		return true
	}
	return strings.HasPrefix(user, "cloudsql") || strings.HasPrefix(user, "rds_")
}

// exempted says whether cutover.exempt_roles names a: 'user'@'host' (or user@host)
// names that account, its host as the grant wrote it; a bare user name names every
// account of that name, from any host.
func exempted(a account, list []string) bool {
	for _, e := range list {
		user, host, withHost := parseAccount(e)
		if user == a.user && (!withHost || strings.EqualFold(host, a.host)) {
			return true
		}
	}
	return false
}

// parseAccount reads an account as written in a plan: user, 'user'@'host',
// `user`@`host`, "user"@"host" or user@host.
func parseAccount(s string) (user, host string, withHost bool) {
	s = strings.TrimSpace(s)
	if s != "" && strings.ContainsRune("'`\"", rune(s[0])) {
		if end := strings.IndexByte(s[1:], s[0]); end >= 0 {
			user, rest := s[1:1+end], strings.TrimSpace(s[2+end:])
			if h, ok := strings.CutPrefix(rest, "@"); ok {
				return user, unquoteName(h), true
			}
			return user, "", false
		}
	}
	if at := strings.LastIndex(s, "@"); at >= 0 {
		return s[:at], unquoteName(s[at+1:]), true
	}
	return s, "", false
}

func unquoteName(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && strings.ContainsRune("'`\"", rune(s[0])) && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

// like matches s against a grant's pattern, as the server does: % any run of
// characters, _ one, \ escaping the next.
func like(pattern, s string) bool {
	p, t := []rune(pattern), []rune(s)
	// match[i][j]: p[i:] matches t[j:]
	match := make([][]bool, len(p)+1)
	for i := range match {
		match[i] = make([]bool, len(t)+1)
	}
	match[len(p)][len(t)] = true
	for i := len(p) - 1; i >= 0; i-- {
		for j := len(t); j >= 0; j-- {
			switch c := p[i]; {
			case c == '%':
				match[i][j] = match[i+1][j] || (j < len(t) && match[i][j+1])
			case c == '\\' && i+1 < len(p):
				// the escaped character is matched by the row below, from i+1
				match[i][j] = j < len(t) && t[j] == p[i+1] && match[i+2][j+1]
			case c == '_':
				match[i][j] = j < len(t) && match[i+1][j+1]
			default:
				match[i][j] = j < len(t) && t[j] == c && match[i+1][j+1]
			}
		}
	}
	return match[0][0]
}

// hostMatches says whether a client from host may log in as an account of pattern:
// a name or address with wildcards, address/netmask, address/prefix length (MySQL
// 8.0.23), or empty for any host. Host names compare without case.
func hostMatches(pattern, host string) bool {
	if pattern == "" || pattern == "%" {
		return true
	}
	if addr, mask, ok := strings.Cut(pattern, "/"); ok {
		ip, network := net.ParseIP(host).To4(), net.ParseIP(addr).To4()
		if ip == nil || network == nil {
			return false
		}
		m := net.IPMask(net.ParseIP(mask).To4())
		if bits, err := strconv.Atoi(mask); err == nil && bits >= 0 && bits <= 32 {
			m = net.CIDRMask(bits, 32)
		}
		return m != nil && ip.Mask(m).Equal(network)
	}
	return like(strings.ToLower(pattern), strings.ToLower(host))
}

// specificity ranks a user or host pattern as the server sorts accounts (MariaDB's
// get_sort): a literal first, then patterns by how late their first wildcard comes,
// % alone and the empty one last.
func specificity(s string) int {
	rank := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
			}
		case '%', '_':
			pos := i + 1
			if pos != 1 || s[i] != '%' || i+1 < len(s) {
				pos++
			}
			return min(pos, 127)
		}
		rank = 128
	}
	return rank
}

// session is a client connection to the server.
type session struct {
	id         int64
	user, host string // the user name it logged in with; the client's host, without its port
}

// sessionAccount names the account a session logged in as: the first, in the
// server's order (the most specific host first, then a named user before the
// anonymous one), whose user and host match its own. MySQL orders hosts much alike.
func (g *grants) sessionAccount(s session) (account, bool) {
	var best account
	found := false
	rank := func(a account) int { return specificity(a.host)<<8 + specificity(a.user) }
	for a, st := range g.accounts {
		if st.role || (a.user != s.user && a.user != "") || !hostMatches(a.host, s.host) {
			continue
		}
		if !found || rank(a) > rank(best) || (rank(a) == rank(best) && a.host+"\x00"+a.user < best.host+"\x00"+best.user) {
			best, found = a, true
		}
	}
	return best, found
}

// sessions lists the server's client sessions but this one's.
func sessions(ctx context.Context, db *sql.Conn) ([]session, error) {
	rows, err := db.QueryContext(ctx, "SELECT ID, coalesce(USER, ''), coalesce(HOST, '') FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()")
	if err != nil {
		return nil, fmt.Errorf("target: list the sessions: %w", err)
	}
	defer rows.Close()
	var out []session
	for rows.Next() {
		var s session
		if err := rows.Scan(&s.id, &s.user, &s.host); err != nil {
			return nil, err
		}
		s.host = strings.Trim(clientHost(s.host), "[]")
		out = append(out, s)
	}
	return out, rows.Err()
}

// clientHost drops the port from a session's host:port.
func clientHost(h string) string {
	i := strings.LastIndexByte(h, ':')
	if i <= 0 {
		return h
	}
	if _, err := strconv.Atoi(h[i+1:]); err != nil {
		return h
	}
	return h[:i]
}

// sessionsOf lists the sessions of the accounts in of, by account.
func (g *grants) sessionsOf(ctx context.Context, conn *sql.Conn, of map[account]bool) (map[account][]int64, error) {
	all, err := sessions(ctx, conn)
	if err != nil {
		return nil, err
	}
	out := map[account][]int64{}
	for _, s := range all {
		if a, ok := g.sessionAccount(s); ok && of[a] {
			out[a] = append(out[a], s.id)
		}
	}
	return out, nil
}

// seesSessions says whether the migration role sees every session (PROCESS): without
// it the server shows a role its own alone.
func (g *grants) seesSessions() bool { st := g.accounts[g.me]; return st != nil && st.process }

// closeTarget closes the target database to the applications after the load made the
// migrated tables (tables; their names in the target database target), as
// p.Cutover.Block says: with roles (the default), every account that may log in and
// write to them is locked and recorded under the run "load" in the control state, and
// their sessions are ended. An account locked by someone else is left out of the
// record (the switch's unlock must not unlock it); one recorded by an earlier close is
// kept (and stays locked until reopen, even if exempt_roles names it since).
// With read_only, the target's server is made read-only (readonly.go). It returns a
// sentence for the log, and what stays open, each with why and the fix: the accounts
// it could not lock, and the sessions it could not end or see.
func closeTarget(ctx context.Context, p *plan.Plan, db *sql.DB, ctl *Control, target string, tables []tableName) (detail string, stuck []string, err error) {
	if _, err := ctl.db.ExecContext(ctx, fmt.Sprintf(lockedTable, ctl.table("locked_accounts"))); err != nil {
		return "", nil, controlError(ctl.name, err)
	}
	g, err := readGrants(ctx, db, target, tables)
	if err != nil {
		return "", nil, err
	}
	if p.Cutover.Block == plan.BlockReadOnly {
		own, admins := readOnlyProblems(ctx, db, "target", g, p.Cutover.ExemptRoles)
		if own != "" {
			// read_only would stop the change stream's own writes: left open, said
			return "the target is left open (cutover.block: read_only)", append([]string{own}, admins...), nil
		}
		detail, err := setReadOnly(ctx, db, ctl, "target", false, nil)
		return detail, admins, err
	}
	held, err := recorded(ctx, ctl, loadRun)
	if err != nil {
		return "", nil, err
	}
	var locked, kept, others []account
	closed := map[account]bool{} // locked and recorded: their sessions end
	for a := range held {
		if st := g.accounts[a]; st != nil && st.locked && !exempted(a, p.Cutover.ExemptRoles) {
			closed[a] = true
		}
	}
	for _, a := range g.writers(p.Cutover.ExemptRoles) {
		switch {
		case closed[a]:
			kept = append(kept, a)
		case g.accounts[a].locked:
			others = append(others, a)
		case g.accounts[a].admin:
			// Locking the DBA's own account (root) on the target for the length of a
			// migration is not cutover's to decide; as PostgreSQL's superusers, it
			// stays open and is said.
			stuck = append(stuck, fmt.Sprintf("%s is an administrator (global SUPER), which cutover does not lock: if no application connects as it, list it in cutover.exempt_roles", a))
		default:
			why, err := lockAccount(ctx, db, ctl, a, g.me)
			if err != nil {
				return "", nil, err
			}
			if why != "" {
				stuck = append(stuck, why)
				continue
			}
			locked = append(locked, a)
			closed[a] = true
		}
	}
	ended, left, err := endSessions(ctx, db, g, closed)
	if err != nil {
		return "", nil, err
	}
	stuck = append(stuck, left...)
	return closedDetail(locked, kept, others, len(stuck), ended), stuck, nil
}

// closedDetail says what closeTarget did; stuck is the number of things it could not
// close, which the caller shows.
func closedDetail(locked, kept, others []account, stuck, ended int) string {
	if len(locked)+len(kept)+len(others)+stuck == 0 {
		return "no account but the migration's own and the exempt ones may log in and write to the migrated tables"
	}
	parts := []string{fmt.Sprintf("%d accounts that may write to the migrated tables locked until the switch%s", len(locked), inParens(accountList(locked, 8)))}
	if len(kept) > 0 {
		parts = append(parts, fmt.Sprintf("%d locked by an earlier close kept (%s)", len(kept), accountList(kept, 8)))
	}
	parts = append(parts, fmt.Sprintf("%d of their sessions ended", ended))
	if len(others) > 0 {
		parts = append(parts, fmt.Sprintf("%d locked by someone else left as they are, locked after the switch too (%s)", len(others), accountList(others, 8)))
	}
	if stuck > 0 {
		parts = append(parts, fmt.Sprintf("%d left open (see the warnings)", stuck))
	}
	return strings.Join(parts, "; ")
}

func inParens(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

// accountList names at most n accounts.
func accountList(as []account, n int) string {
	names := make([]string, 0, min(len(as), n))
	for _, a := range as[:min(len(as), n)] {
		names = append(names, a.String())
	}
	if len(as) > n {
		return fmt.Sprintf("%s and %d more", strings.Join(names, ", "), len(as)-n)
	}
	return strings.Join(names, ", ")
}

// recorded reads the accounts the control state records as locked for run.
func recorded(ctx context.Context, ctl *Control, run string) (map[account]bool, error) {
	rows, err := ctl.db.QueryContext(ctx, "SELECT user_name, host_name FROM "+ctl.table("locked_accounts")+" WHERE run = ?", run)
	if err != nil {
		return nil, fmt.Errorf("read the locked accounts in the control database %s: %w", ctl.name, err)
	}
	defer rows.Close()
	out := map[account]bool{}
	for rows.Next() {
		var a account
		if err := rows.Scan(&a.user, &a.host); err != nil {
			return nil, err
		}
		out[a] = true
	}
	return out, rows.Err()
}

// lockAccount records a, then locks it: a stop between the two leaves a record of an
// account still open, which the next close locks and an unlock leaves as it is, never
// a lock without its record. When the server refuses, the record goes and the reason
// comes back with its fix, me being the migration role.
func lockAccount(ctx context.Context, db *sql.DB, ctl *Control, a, me account) (string, error) {
	if _, err := ctl.db.ExecContext(ctx, "INSERT IGNORE INTO "+ctl.table("locked_accounts")+" VALUES (?, ?, ?, now(6))", loadRun, a.user, a.host); err != nil {
		return "", fmt.Errorf("record the account %s in the control database %s: %w", a, ctl.name, err)
	}
	_, err := db.ExecContext(ctx, "ALTER USER "+a.sql()+" ACCOUNT LOCK")
	if err == nil {
		return "", nil
	}
	var refusal *driver.MySQLError
	if !errors.As(err, &refusal) {
		return "", fmt.Errorf("target: lock the account %s: %w", a, err)
	}
	if _, err := ctl.db.ExecContext(ctx, "DELETE FROM "+ctl.table("locked_accounts")+" WHERE run = ? AND user_name = ? AND host_name = ?", loadRun, a.user, a.host); err != nil {
		return "", fmt.Errorf("record the account %s in the control database %s: %w", a, ctl.name, err)
	}
	fix := "lock it by hand (then it stays locked after the switch too), or list it in cutover.exempt_roles"
	if refusal.Number == 1227 && strings.Contains(refusal.Message, "CREATE USER") {
		fix = fmt.Sprintf("GRANT CREATE USER ON *.* TO %s, or list it in cutover.exempt_roles", me)
	}
	return fmt.Sprintf("%s may write to the migrated tables and could not be locked (%s): %s", a, refusal.Message, fix), nil
}

// cleanListings is how many listings in a row must find no session of the locked
// accounts, listingGap apart, before their sessions are taken as ended.
const (
	cleanListings = 3
	listingGap    = 5 * time.Millisecond
)

// endSessions ends the sessions of the accounts in closed and waits until they are
// gone (each rolls back its transaction first): how many ended, and sentences for the
// sessions it could not end or see.
func endSessions(ctx context.Context, db *sql.DB, g *grants, closed map[account]bool) (int, []string, error) {
	if len(closed) == 0 {
		return 0, nil, nil
	}
	if !g.seesSessions() {
		return 0, []string{fmt.Sprintf("the sessions of the locked accounts cannot be seen, and stay open until they disconnect: GRANT PROCESS ON *.* TO %s (and %s to end them)",
			g.me, g.connectionAdmin())}, nil
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, nil, err
	}
	defer conn.Close()
	// A session running a trigger or a routine shows its definer as its user (the
	// process list has no other), so one listing can miss a session of a locked
	// account that goes on writing on the connection it has. No session of theirs
	// begins once the accounts are locked: the listing is done again until it finds
	// none of theirs cleanListings times in a row.
	var left []string
	owner := map[int64]account{} // the sessions ended
	refused := map[int64]bool{}
	var there []int64
	for clean := 0; clean < cleanListings; {
		of, err := g.sessionsOf(ctx, conn, closed)
		if err != nil {
			return 0, nil, err
		}
		fresh := map[int64]account{}
		for a, ids := range of {
			for _, id := range ids {
				if _, ended := owner[id]; ended || refused[id] {
					continue
				}
				_, err := conn.ExecContext(ctx, "KILL CONNECTION "+strconv.FormatInt(id, 10))
				var me *driver.MySQLError
				switch {
				case err == nil:
					owner[id], fresh[id] = a, a
				case errors.As(err, &me) && me.Number == 1094: // gone meanwhile
				case errors.As(err, &me):
					refused[id] = true
					left = append(left, fmt.Sprintf("%s is locked, but its session %d could not be ended (%s): KILL CONNECTION %d as an account that may, or GRANT %s TO %s",
						a, id, me.Message, id, g.connectionAdmin(), g.me))
				default:
					return 0, nil, fmt.Errorf("target: end the session %d of %s: %w", id, a, err)
				}
			}
		}
		if len(fresh) == 0 {
			clean++
			select {
			case <-ctx.Done():
				return 0, nil, ctx.Err()
			case <-time.After(listingGap):
			}
			continue
		}
		clean = 0
		still, err := waitGone(ctx, conn, fresh)
		if err != nil {
			return 0, nil, err
		}
		there = append(there, still...)
	}
	for _, id := range there {
		left = append(left, fmt.Sprintf("%s is locked, but its session %d, ended, is still there after %v (rolling back?): KILL CONNECTION %d again once it is gone, or wait",
			owner[id], id, sessionsGone, id))
	}
	slices.Sort(left)
	return len(owner) - len(there), left, nil
}

// connectionAdmin is the privilege that ends other accounts' sessions.
func (g *grants) connectionAdmin() string {
	if g.mariadb {
		return "CONNECTION ADMIN ON *.*"
	}
	return "CONNECTION_ADMIN ON *.*"
}

// waitGone waits until the sessions ids are gone from the server, sessionsGone at
// most: those still there.
func waitGone(ctx context.Context, conn *sql.Conn, ids map[int64]account) ([]int64, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	list := make([]string, 0, len(ids))
	for id := range ids {
		list = append(list, strconv.FormatInt(id, 10))
	}
	deadline := time.Now().Add(sessionsGone)
	for {
		rows, err := conn.QueryContext(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE ID IN ("+strings.Join(list, ", ")+")")
		if err != nil {
			return nil, fmt.Errorf("target: list the sessions ended: %w", err)
		}
		var there []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			there = append(there, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(there) == 0 || time.Now().After(deadline) {
			return there, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// openToApps says how the target is still open to the applications, each as a
// sentence naming the account and the fix: the accounts that may log in and write to
// the migrated tables (not locked, not exempt, not the migration's own), and the
// sessions still open of those locked. Empty when it is closed. For the switch's gate
// and for status.
func openToApps(ctx context.Context, p *plan.Plan, db *sql.DB, target string, tables []tableName) ([]string, error) {
	g, err := readGrants(ctx, db, target, tables)
	if err != nil {
		return nil, err
	}
	if p.Cutover.Block == plan.BlockReadOnly {
		return readOnlyOpen(ctx, db, "target", g, p.Cutover.ExemptRoles)
	}
	var open []string
	locked := map[account]bool{}
	for _, a := range g.writers(p.Cutover.ExemptRoles) {
		if g.accounts[a].locked {
			locked[a] = true
			continue
		}
		open = append(open, fmt.Sprintf("the target is open to the applications: %s may log in there and write to the migrated tables while the source takes the writes: "+
			"ALTER USER %[1]s ACCOUNT LOCK on the target (cutover start does it after the load, and the switch's unlock gives it back), or list it in cutover.exempt_roles", a))
	}
	if len(locked) == 0 {
		return open, nil
	}
	if !g.seesSessions() {
		return append(open, fmt.Sprintf("the target may be open to the applications: whether the locked accounts that may write to the migrated tables still have sessions there cannot be seen: GRANT PROCESS ON *.* TO %s", g.me)), nil
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	of, err := g.sessionsOf(ctx, conn, locked)
	if err != nil {
		return nil, err
	}
	for _, a := range g.writers(p.Cutover.ExemptRoles) {
		if ids := of[a]; len(ids) > 0 {
			slices.Sort(ids)
			list := make([]string, len(ids))
			for i, id := range ids {
				list[i] = strconv.FormatInt(id, 10)
			}
			open = append(open, fmt.Sprintf("the target is open to the applications: %s is locked but still has sessions there (%s), which may write to the migrated tables: KILL CONNECTION %s on the target",
				a, strings.Join(list, ", "), strings.Join(list, "; KILL CONNECTION ")))
		}
	}
	return open, nil
}

// reopen unlocks the accounts the control state records as locked for run: the
// switch's unlock, and the undo of a close. Each record goes once its account is
// unlocked (or was dropped meanwhile); on an error, the ones left are still recorded.
func reopen(ctx context.Context, db *sql.DB, ctl *Control, run string) (unlocked []string, err error) {
	if _, err := ctl.db.ExecContext(ctx, fmt.Sprintf(lockedTable, ctl.table("locked_accounts"))); err != nil {
		return nil, controlError(ctl.name, err)
	}
	held, err := recorded(ctx, ctl, run)
	if err != nil {
		return nil, err
	}
	list := make([]account, 0, len(held))
	for a := range held {
		list = append(list, a)
	}
	slices.SortFunc(list, func(x, y account) int { return strings.Compare(x.user+"\x00"+x.host, y.user+"\x00"+y.host) })
	return unlockEach(list, func(q string) error {
		_, err := db.ExecContext(ctx, q)
		return err
	}, func(a account) error {
		if _, err := ctl.db.ExecContext(ctx, "DELETE FROM "+ctl.table("locked_accounts")+" WHERE run = ? AND user_name = ? AND host_name = ?", run, a.user, a.host); err != nil {
			return fmt.Errorf("forget the account %s in the control database %s: %w", a, ctl.name, err)
		}
		return nil
	})
}

// unlockEach unlocks each account of list (exec runs the statement), then forgets it;
// one dropped since is forgotten too. On an error, the ones left are still recorded.
func unlockEach(list []account, exec func(string) error, forget func(account) error) (unlocked []string, err error) {
	for _, a := range list {
		err := exec("ALTER USER " + a.sql() + " ACCOUNT UNLOCK")
		var me *driver.MySQLError
		switch {
		case err == nil:
			unlocked = append(unlocked, a.String())
		case errors.As(err, &me) && me.Number == 1396: // dropped since
		default:
			return unlocked, fmt.Errorf("unlock the account %s: %w", a, err)
		}
		if err := forget(a); err != nil {
			return unlocked, err
		}
	}
	return unlocked, nil
}
