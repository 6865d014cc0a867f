package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/cutover-dev/cutover/mytest"
	"github.com/cutover-dev/cutover/plan"
)

// closeSetup is a target database with the migrated tables t and u, a table other the
// plan leaves out, and the control state; accounts are the server's, so each test
// names its own.
type closeSetup struct {
	s      *mytest.Server
	db     *mytest.DB
	root   *sql.DB
	ctl    *Control
	tables []tableName
	uniq   string
}

func newCloseSetup(t *testing.T) *closeSetup {
	t.Helper()
	return newCloseSetupOn(t, mytest.Target(t))
}

// newCloseSetupOn is newCloseSetup on server s.
func newCloseSetupOn(t *testing.T, s *mytest.Server) *closeSetup {
	t.Helper()
	ctx := context.Background()
	db := mytest.NewDB(t, s)
	db.Exec(t, "CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE u (id int PRIMARY KEY); CREATE TABLE other (id int PRIMARY KEY)")
	root := db.Open(t)
	name := "ctl_" + db.Name
	t.Cleanup(func() { _ = s.Exec(ctx, "", "DROP DATABASE IF EXISTS "+quote(name)) })
	ctl, err := openControl(ctx, root, name)
	if err != nil {
		t.Fatal(err)
	}
	return &closeSetup{s: s, db: db, root: root, ctl: ctl, tables: []tableName{{"src", "t"}, {"src", "u"}},
		uniq: fmt.Sprintf("%d_%d", os.Getpid()%10000, time.Now().UnixNano()%100000)}
}

// user creates the account 'name_uniq'@'%' (password pw) with grants, each a GRANT
// statement's middle part ("INSERT ON db.*"); dropped when the test ends.
func (c *closeSetup) user(t *testing.T, name string, grants ...string) account {
	t.Helper()
	a := account{name + "_" + c.uniq, "%"}
	c.db.Exec(t, "CREATE USER "+a.sql()+" IDENTIFIED BY 'pw'")
	t.Cleanup(func() { _ = c.s.Exec(context.Background(), "", "DROP USER IF EXISTS "+a.sql()) })
	for _, g := range grants {
		c.db.Exec(t, "GRANT "+g+" TO "+a.sql())
	}
	return a
}

// role creates a MariaDB role, dropped when the test ends.
func (c *closeSetup) role(t *testing.T, name string, grants ...string) account {
	t.Helper()
	r := account{name + "_" + c.uniq, ""}
	c.db.Exec(t, "CREATE ROLE "+quote(r.user))
	t.Cleanup(func() { _ = c.s.Exec(context.Background(), "", "DROP ROLE IF EXISTS "+quote(r.user)) })
	for _, g := range grants {
		c.db.Exec(t, "GRANT "+g+" TO "+quote(r.user))
	}
	return r
}

// as opens a pool as a (password pw).
func (c *closeSetup) as(t *testing.T, a account) *sql.DB {
	return openAs(t, c.s, c.db.Name, a.user, "pw")
}

// in is the target database's name quoted, for grants.
func (c *closeSetup) in() string { return quote(c.db.Name) }

func (c *closeSetup) locked(t *testing.T, a account) bool {
	t.Helper()
	var l bool
	if err := c.root.QueryRow("SELECT coalesce(JSON_VALUE(Priv, '$.account_locked') IN ('1', 'true'), 0) FROM mysql.global_priv WHERE User = ? AND Host = ?",
		a.user, a.host).Scan(&l); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	return l
}

// recordedNames lists the accounts the control state records for the load, and how
// many rows there are.
func (c *closeSetup) recordedNames(t *testing.T) ([]string, int) {
	t.Helper()
	held, err := recorded(context.Background(), c.ctl, loadRun)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := c.root.QueryRow("SELECT count(*) FROM " + c.ctl.table("locked_accounts")).Scan(&n); err != nil {
		t.Fatal(err)
	}
	var names []string
	for a := range held {
		names = append(names, a.String())
	}
	slices.Sort(names)
	return names, n
}

func names(as ...account) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	slices.Sort(out)
	return out
}

// naming lists the accounts of as that sentences name, each sentence naming one.
func naming(t *testing.T, sentences []string, as ...account) []string {
	t.Helper()
	var out []string
	for _, s := range sentences {
		var named []string
		for _, a := range as {
			if strings.Contains(s, a.String()+" ") {
				named = append(named, a.String())
			}
		}
		if len(named) != 1 {
			t.Errorf("%q names %v, want one account", s, named)
		}
		out = append(out, named...)
	}
	slices.Sort(out)
	return out
}

// refused says whether err is the server's refusal of a locked account's login.
func refused(err error) bool {
	var me *driver.MySQLError
	return errors.As(err, &me) && me.Number == 4151
}

// The load closes the target: exactly the accounts that may write to a migrated table
// (on a database pattern that takes the target's, on a table, on a column, through a
// role of a role, on every database) are locked and recorded, their sessions ended (a
// transaction open on one is rolled back: nothing of it stays), and they can no longer
// connect; the read-only account, the exempt one and the migration's own still work,
// and one locked by someone else is left out of the record. openToApps names the
// writers before and nothing after; a second close records nothing twice; reopen
// unlocks exactly what was recorded.
func TestCloseTargetLocksTheWriters(t *testing.T) {
	ctx := context.Background()
	c := newCloseSetup(t)
	pattern := strings.ReplaceAll(c.db.Name[:len(c.db.Name)-1], "_", `\_`) + "%"
	schema := c.user(t, "cs", "SELECT, INSERT ON "+quote(pattern)+".*")
	table := c.user(t, "ct", "SELECT, UPDATE ON "+c.in()+".t")
	column := c.user(t, "cc", "UPDATE (id) ON "+c.in()+".u")
	inner := c.role(t, "cri", "DELETE ON "+c.in()+".u")
	outer := c.role(t, "cro")
	c.db.Exec(t, "GRANT "+quote(inner.user)+" TO "+quote(outer.user))
	viaRole := c.user(t, "cr")
	c.db.Exec(t, "GRANT "+quote(outer.user)+" TO "+viaRole.sql())
	global := c.user(t, "cg", "INSERT ON *.*")
	exempt := c.user(t, "ce", "ALL ON "+c.in()+".*")
	lockedBefore := c.user(t, "cl", "INSERT ON "+c.in()+".*")
	c.db.Exec(t, "ALTER USER "+lockedBefore.sql()+" ACCOUNT LOCK")
	reader := c.user(t, "co", "SELECT ON "+c.in()+".*", "INSERT ON "+c.in()+".other")
	writers := []account{schema, table, column, viaRole, global}
	everyone := append(slices.Clone(writers), exempt, lockedBefore, reader)

	p := plan.Defaults()
	p.Cutover.ExemptRoles = []string{mytest.Superuser, exempt.String()}

	open, err := openToApps(ctx, p, c.root, c.db.Name, c.tables)
	if err != nil {
		t.Fatal(err)
	}
	if got := naming(t, open, everyone...); !slices.Equal(got, names(writers...)) {
		t.Fatalf("open before the close: %v, want %v\n%s", got, names(writers...), strings.Join(open, "\n"))
	}

	// sessions open before the close: a transaction with a row in it, an idle one,
	// the exempt account's and the reader's
	app, err := c.as(t, schema).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	tx, err := app.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	idle, err := c.as(t, global).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if err := idle.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	exemptConn, err := c.as(t, exempt).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer exemptConn.Close()
	readerConn, err := c.as(t, reader).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer readerConn.Close()
	if err := readerConn.PingContext(ctx); err != nil {
		t.Fatal(err)
	}

	detail, stuck, err := closeTarget(ctx, p, c.root, c.ctl, c.db.Name, c.tables)
	t.Cleanup(func() { _, _ = reopen(context.Background(), c.root, c.ctl, loadRun) })
	if err != nil {
		t.Fatal(err)
	}
	t.Log(detail)
	if len(stuck) > 0 {
		t.Fatalf("stuck: %q", stuck)
	}
	for _, want := range []string{"5 accounts that may write to the migrated tables locked", "2 of their sessions ended", "1 locked by someone else", lockedBefore.String()} {
		if !strings.Contains(detail, want) {
			t.Errorf("detail %q does not say %q", detail, want)
		}
	}
	if got, _ := c.recordedNames(t); !slices.Equal(got, names(writers...)) {
		t.Errorf("recorded %v, want %v", got, names(writers...))
	}
	for _, a := range everyone {
		want := slices.Contains(writers, a) || a == lockedBefore
		if got := c.locked(t, a); got != want {
			t.Errorf("%s locked: %v, want %v", a, got, want)
		}
	}

	// the transaction is gone with its session, and nothing of it stays
	if err := tx.Commit(); err == nil {
		t.Error("the app's transaction committed after the close")
	}
	if n := mytest.QueryVal[int](t, c.db, "SELECT count(*) FROM t"); n != 0 {
		t.Errorf("%d rows in t after the close, want none", n)
	}
	if err := idle.PingContext(ctx); err == nil {
		t.Error("the idle session of the global writer still answers")
	}
	for _, a := range writers {
		if err := c.as(t, a).PingContext(ctx); !refused(err) {
			t.Errorf("%s connects after the close: %v", a, err)
		}
	}
	if _, err := exemptConn.ExecContext(ctx, "INSERT INTO t VALUES (2)"); err != nil {
		t.Errorf("the exempt account's session: %v", err)
	}
	for _, a := range []account{exempt, reader} {
		if err := c.as(t, a).PingContext(ctx); err != nil {
			t.Errorf("%s cannot connect after the close: %v", a, err)
		}
	}
	if err := readerConn.PingContext(ctx); err != nil {
		t.Errorf("the reader's session: %v", err)
	}
	if open, err := openToApps(ctx, p, c.root, c.db.Name, c.tables); err != nil || len(open) > 0 {
		t.Errorf("open after the close: %q, %v", open, err)
	}

	// again: nothing new, nothing recorded twice
	detail, stuck, err = closeTarget(ctx, p, c.root, c.ctl, c.db.Name, c.tables)
	if err != nil || len(stuck) > 0 {
		t.Fatalf("second close: %q, %v", stuck, err)
	}
	if !strings.Contains(detail, "0 accounts that may write to the migrated tables locked") || !strings.Contains(detail, "5 locked by an earlier close kept") {
		t.Errorf("second close: %q", detail)
	}
	if got, n := c.recordedNames(t); !slices.Equal(got, names(writers...)) || n != len(writers) {
		t.Errorf("recorded after the second close: %v (%d rows), want %v", got, n, names(writers...))
	}

	unlocked, err := reopen(ctx, c.root, c.ctl, loadRun)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(unlocked)
	if !slices.Equal(unlocked, names(writers...)) {
		t.Errorf("reopen unlocked %v, want %v", unlocked, names(writers...))
	}
	for _, a := range everyone {
		if got := c.locked(t, a); got != (a == lockedBefore) {
			t.Errorf("%s locked after reopen: %v", a, got)
		}
	}
	if got, n := c.recordedNames(t); len(got) > 0 || n > 0 {
		t.Errorf("still recorded after reopen: %v", got)
	}
	if err := c.as(t, schema).PingContext(ctx); err != nil {
		t.Errorf("the app cannot connect after reopen: %v", err)
	}
	open, err = openToApps(ctx, p, c.root, c.db.Name, c.tables)
	if err != nil {
		t.Fatal(err)
	}
	if got := naming(t, open, everyone...); !slices.Equal(got, names(writers...)) {
		t.Errorf("open after reopen: %v, want %v", got, names(writers...))
	}
}

// A migration role that may not read the grant tables gets one error naming the
// grant; one that may read them but not lock accounts leaves each writer open, with
// the grant to give, and records nothing; one that may lock but not end others'
// sessions (no CONNECTION ADMIN) or see them (no PROCESS) says which sessions stay
// open, and openToApps names them.
func TestCloseTargetAsALesserRole(t *testing.T) {
	ctx := context.Background()
	c := newCloseSetup(t)
	app := c.user(t, "ca", "INSERT ON "+c.in()+".*")
	// the migration roles, each may use the target database as the migration role
	// does: exempt from each other's closes
	all := "ALL ON " + c.in() + ".*"
	blind := c.user(t, "mb", all, "CREATE USER ON *.*")
	reader := c.user(t, "mr", all, "SELECT ON mysql.*")
	locker := c.user(t, "ml", all, "SELECT ON mysql.*", "CREATE USER, PROCESS ON *.*")
	unseeing := c.user(t, "mu", all, "SELECT ON mysql.*", "CREATE USER ON *.*")
	p := plan.Defaults()
	p.Cutover.ExemptRoles = []string{mytest.Superuser, blind.user, reader.user, locker.user, unseeing.user}

	for name, err := range map[string]error{
		"closeTarget": func() error { _, _, err := closeTarget(ctx, p, c.as(t, blind), c.ctl, c.db.Name, c.tables); return err }(),
		"openToApps":  func() error { _, err := openToApps(ctx, p, c.as(t, blind), c.db.Name, c.tables); return err }(),
	} {
		if err == nil || !strings.Contains(err.Error(), "GRANT SELECT ON mysql.* TO "+blind.String()) {
			t.Errorf("%s without SELECT on mysql.*: %v", name, err)
		}
	}

	detail, stuck, err := closeTarget(ctx, p, c.as(t, reader), c.ctl, c.db.Name, c.tables)
	if err != nil {
		t.Fatal(err)
	}
	if len(stuck) != 1 || !strings.Contains(stuck[0], app.String()) || !strings.Contains(stuck[0], "GRANT CREATE USER ON *.* TO "+reader.String()) {
		t.Errorf("stuck without CREATE USER: %q", stuck)
	}
	if !strings.Contains(detail, "0 accounts") || !strings.Contains(detail, "1 left open") {
		t.Errorf("detail without CREATE USER: %q", detail)
	}
	if got, n := c.recordedNames(t); n > 0 {
		t.Errorf("recorded without CREATE USER: %v", got)
	}
	if c.locked(t, app) {
		t.Error("locked without CREATE USER")
	}

	// locks, sees the sessions, cannot end them
	session, err := c.as(t, app).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	var id int64
	if err := session.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	detail, stuck, err = closeTarget(ctx, p, c.as(t, locker), c.ctl, c.db.Name, c.tables)
	t.Cleanup(func() { _, _ = reopen(context.Background(), c.root, c.ctl, loadRun) })
	if err != nil {
		t.Fatal(err)
	}
	if !c.locked(t, app) || !strings.Contains(detail, "1 accounts that may write") || !strings.Contains(detail, "0 of their sessions ended") {
		t.Errorf("detail: %q", detail)
	}
	if len(stuck) != 1 || !strings.Contains(stuck[0], fmt.Sprintf("session %d could not be ended", id)) || !strings.Contains(stuck[0], "GRANT CONNECTION ADMIN ON *.* TO "+locker.String()) {
		t.Errorf("stuck without CONNECTION ADMIN: %q", stuck)
	}
	if err := session.PingContext(ctx); err != nil {
		t.Fatalf("the session was ended: %v", err)
	}
	open, err := openToApps(ctx, p, c.as(t, locker), c.db.Name, c.tables)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || !strings.Contains(open[0], app.String()) || !strings.Contains(open[0], fmt.Sprintf("KILL CONNECTION %d", id)) {
		t.Errorf("open with a session left: %q", open)
	}

	// cannot see the sessions
	_, stuck, err = closeTarget(ctx, p, c.as(t, unseeing), c.ctl, c.db.Name, c.tables)
	if err != nil {
		t.Fatal(err)
	}
	if len(stuck) != 1 || !strings.Contains(stuck[0], "GRANT PROCESS ON *.* TO "+unseeing.String()) {
		t.Errorf("stuck without PROCESS: %q", stuck)
	}
	open, err = openToApps(ctx, p, c.as(t, unseeing), c.db.Name, c.tables)
	if err != nil || len(open) != 1 || !strings.Contains(open[0], "GRANT PROCESS ON *.* TO "+unseeing.String()) {
		t.Errorf("open without PROCESS: %q, %v", open, err)
	}
}

// cutover.block: read_only closes the target's server with read_only, its value before
// recorded and given back; a migration account that could not write past it leaves
// the target open, with the GRANT it needs; an administrator that may write is named.
func TestCloseTargetReadOnly(t *testing.T) {
	c := newCloseSetupOn(t, mytest.StartServer(t, mytest.Options{Name: "readonly"}))
	ctx := context.Background()
	p := plan.Defaults()
	p.Cutover.Block = plan.BlockReadOnly
	writer := c.user(t, "ro_w", "INSERT, SELECT ON "+c.in()+".*")
	readOnly := func() bool {
		var on bool
		if err := c.root.QueryRow("SELECT @@GLOBAL.read_only").Scan(&on); err != nil {
			t.Fatal(err)
		}
		return on
	}

	// a migration account without READ_ONLY ADMIN: left open, said
	mig := c.user(t, "ro_m", "ALL ON "+c.in()+".*", "ALL ON "+quote(c.ctl.name)+".*", "SELECT ON mysql.*", "PROCESS ON *.*")
	p.Cutover.ExemptRoles = []string{"root"}
	detail, stuck, err := closeTarget(ctx, p, c.as(t, mig), c.ctl, c.db.Name, c.tables)
	if err != nil || readOnly() || len(stuck) != 1 || !strings.Contains(stuck[0], "GRANT READ_ONLY ADMIN ON *.* TO "+mig.String()) {
		t.Errorf("closeTarget without READ_ONLY ADMIN: %q, %q, %v; read_only %v", detail, stuck, err, readOnly())
	}

	// root not exempt: an administrator that may write past read_only
	p.Cutover.ExemptRoles = nil
	_, stuck, err = closeTarget(ctx, p, c.root, c.ctl, c.db.Name, c.tables)
	if err != nil || !readOnly() || len(stuck) != 1 || !strings.Contains(stuck[0], "'root'@'localhost'") || !strings.Contains(stuck[0], "cutover.exempt_roles") {
		t.Errorf("closeTarget with root not exempt: %q, %v; read_only %v", stuck, err, readOnly())
	}
	p.Cutover.ExemptRoles = []string{"root"}
	if open, err := openToApps(ctx, p, c.root, c.db.Name, c.tables); err != nil || len(open) != 0 {
		t.Errorf("openToApps after the close: %q, %v", open, err)
	}
	if _, err := c.as(t, writer).Exec("INSERT INTO t VALUES (1)"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("the writer's insert on the closed target: %v", err)
	}
	if _, err := c.root.Exec("INSERT INTO t VALUES (2)"); err != nil {
		t.Errorf("the migration's own insert on the closed target: %v", err)
	}
	// a second close keeps the first record: read_only was OFF
	if _, _, err := closeTarget(ctx, p, c.root, c.ctl, c.db.Name, c.tables); err != nil {
		t.Fatal(err)
	}
	if detail, err := restoreReadOnly(ctx, c.root, c.ctl, "target", false, nil); err != nil || readOnly() || !strings.Contains(detail, "read_only = OFF") {
		t.Errorf("restoreReadOnly: %q, %v; read_only %v", detail, err, readOnly())
	}
	if open, err := openToApps(ctx, p, c.root, c.db.Name, c.tables); err != nil || len(open) != 1 || !strings.Contains(open[0], "SET GLOBAL read_only = ON") {
		t.Errorf("openToApps after the reopen: %q, %v", open, err)
	}
	if _, err := c.as(t, writer).Exec("INSERT INTO t VALUES (3)"); err != nil {
		t.Errorf("the writer's insert after the reopen: %v", err)
	}
}

// MariaDB 10.11's PUBLIC: a write granted to it lets every account write.
func TestCloseTargetPublic(t *testing.T) {
	c := newCloseSetup(t)
	reader := c.user(t, "cp", "SELECT ON "+c.in()+".*")
	c.db.Exec(t, "GRANT INSERT ON "+c.in()+".t TO PUBLIC")
	t.Cleanup(func() { _ = c.s.Exec(context.Background(), "", "REVOKE INSERT ON "+c.in()+".t FROM PUBLIC") })
	p := plan.Defaults()
	p.Cutover.ExemptRoles = []string{mytest.Superuser}
	open, err := openToApps(context.Background(), p, c.root, c.db.Name, c.tables)
	if err != nil {
		t.Fatal(err)
	}
	if got := naming(t, open, reader); !slices.Equal(got, names(reader)) {
		t.Errorf("open with INSERT to PUBLIC: %q", open)
	}
}

// Patterns match as the server's: LIKE with escapes for databases, and for hosts
// without case, with netmasks and prefix lengths.
func TestCloseGrantPatterns(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{`app\_%`, "app_1", true}, {`app\_%`, "appx1", false}, {`app_%`, "appx1", true}, {"app", "app", true}, {"app", "App", false},
		{"a%b%c", "aXbYc", true}, {"a%b%c", "aXbY", false}, {"%", "", true}, {`a\%`, "a%", true}, {`a\%`, "ab", false},
		{`a\\%`, `a\bc`, true}, {"", "", true}, {"a_", "a", false},
	} {
		if got := like(c.pattern, c.s); got != c.want {
			t.Errorf("like(%q, %q) = %v", c.pattern, c.s, got)
		}
	}
	for _, c := range []struct {
		pattern, host string
		want          bool
	}{
		{"%", "10.0.0.1", true}, {"", "x", true}, {"10.0.%", "10.0.3.4", true}, {"10.0.%", "10.1.3.4", false},
		{"LocalHost", "localhost", true}, {"10.0.0.0/255.255.0.0", "10.0.9.9", true}, {"10.0.0.0/255.255.0.0", "10.1.9.9", false},
		{"10.0.0.0/16", "10.0.9.9", true}, {"10.0.0.0/8", "11.0.0.1", false}, {"10.0.0.0/8", "db.example", false},
	} {
		if got := hostMatches(c.pattern, c.host); got != c.want {
			t.Errorf("hostMatches(%q, %q) = %v", c.pattern, c.host, got)
		}
	}
	for _, c := range []struct{ in, want string }{{"127.0.0.1:5544", "127.0.0.1"}, {"localhost", "localhost"}, {"::1:5544", "::1"}, {"db.example:33", "db.example"}} {
		if got := clientHost(c.in); got != c.want {
			t.Errorf("clientHost(%q) = %q", c.in, got)
		}
	}
}

// A session belongs to the account the server would take: the most specific host,
// a named user before the anonymous one; roles never.
func TestCloseSessionAccount(t *testing.T) {
	g := &grants{accounts: map[account]*accountState{
		{"app", "%"}: {}, {"app", "10.0.0.1"}: {}, {"app", "10.0.%"}: {}, {"", "10.9.9.9"}: {}, {"r", ""}: {role: true},
	}}
	for _, c := range []struct {
		s    session
		want account
		ok   bool
	}{
		{session{user: "app", host: "10.0.0.1"}, account{"app", "10.0.0.1"}, true},
		{session{user: "app", host: "10.0.0.2"}, account{"app", "10.0.%"}, true},
		{session{user: "app", host: "192.168.1.1"}, account{"app", "%"}, true},
		{session{user: "app", host: "10.9.9.9"}, account{"", "10.9.9.9"}, true},
		{session{user: "bob", host: "10.9.9.9"}, account{"", "10.9.9.9"}, true},
		{session{user: "bob", host: "10.0.0.1"}, account{}, false},
		{session{user: "r", host: "10.0.0.1"}, account{}, false},
	} {
		if got, ok := g.sessionAccount(c.s); got != c.want || ok != c.ok {
			t.Errorf("session %+v: %s %v, want %s %v", c.s, got, ok, c.want, c.ok)
		}
	}
}

// cutover.exempt_roles names an account by user and host, quoted or not, or every
// account of a user name.
func TestCloseExemptNames(t *testing.T) {
	list := []string{"ops", "'app'@'10.%'", "`etl`@`%`", `"bi"@"LocalHost"`, "svc@%", " spaced "}
	for _, c := range []struct {
		a    account
		want bool
	}{
		{account{"ops", "%"}, true}, {account{"ops", "localhost"}, true}, {account{"app", "10.%"}, true}, {account{"app", "%"}, false},
		{account{"etl", "%"}, true}, {account{"bi", "localhost"}, true}, {account{"svc", "%"}, true}, {account{"svc", "x"}, false},
		{account{"spaced", "%"}, true}, {account{"other", "%"}, false},
	} {
		if got := exempted(c.a, list); got != c.want {
			t.Errorf("exempted(%s) = %v", c.a, got)
		}
	}
	if got := strconv.Quote(account{"o'k", "%"}.String()); got != `"'o''k'@'%'"` {
		t.Errorf("String: %s", got)
	}
}

// An administrator (global SUPER) that may write is not locked, as PostgreSQL's
// superusers are not: it is said, with exempt_roles as the fix, and it stays open.
func TestCloseTargetLeavesAdministrators(t *testing.T) {
	c := newCloseSetup(t)
	admin := c.user(t, "ca", "SUPER, INSERT, UPDATE, DELETE ON *.*")
	p := plan.Defaults()
	p.Cutover.ExemptRoles = []string{mytest.Superuser}
	_, stuck, err := closeTarget(context.Background(), p, c.root, c.ctl, c.db.Name, c.tables)
	if err != nil {
		t.Fatal(err)
	}
	if c.locked(t, admin) || len(naming(t, stuck, admin)) != 1 || !strings.Contains(strings.Join(stuck, "\n"), "exempt_roles") {
		t.Errorf("the administrator: locked %v, stuck %q", c.locked(t, admin), stuck)
	}
}
