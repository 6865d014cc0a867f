package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
)

// cutover.block: read_only on MySQL/MariaDB. The side closed gets SET GLOBAL
// read_only = ON, its value before recorded in the control database
// (read_only_servers) and given back when the side opens again. It is the whole
// server's: every database there stops taking writes, but from the accounts with
// SUPER or READ_ONLY ADMIN (MariaDB) or CONNECTION_ADMIN (MySQL 8), which the
// migration's account needs (it writes the sync markers and applies the changes
// there), and which the gates name when an account that may write to the migrated
// tables holds one. SET GLOBAL read_only waits for the commits in progress, and a
// transaction that wrote cannot commit after it (the server refuses the COMMIT of a
// read-write transaction while read_only is on), so no write lands after it returns.

// setReadOnly makes the server of db read-only, its value before recorded for side
// (a block repeated keeps the first record).
func setReadOnly(ctx context.Context, db *sql.DB, ctl *Control, side string, dry bool, out io.Writer) (string, error) {
	if dry {
		fmt.Fprintf(out, "      %s: SET GLOBAL read_only = ON (its value before recorded in %s)\n", side, ctl.table("read_only_servers"))
		return "", nil
	}
	var was string
	if err := db.QueryRowContext(ctx, "SELECT IF(@@GLOBAL.read_only, 'ON', 'OFF')").Scan(&was); err != nil {
		return "", fmt.Errorf("%s: read read_only: %w", side, err)
	}
	if _, err := ctl.db.ExecContext(ctx, "INSERT IGNORE INTO "+ctl.table("read_only_servers")+" (side, was) VALUES (?, ?)", side, was); err != nil {
		return "", fmt.Errorf("target: record the %s's read_only in the control database: %w", side, err)
	}
	if _, err := db.ExecContext(ctx, "SET GLOBAL read_only = ON"); err != nil {
		return "", fmt.Errorf("%s: SET GLOBAL read_only = ON: %w", side, err)
	}
	return fmt.Sprintf("read_only = ON on the %s's server (it was %s): every database there is read-only to the accounts without SUPER or READ_ONLY ADMIN", side, was), nil
}

// restoreReadOnly gives the server of db back the read_only recorded for side; ""
// when none is.
func restoreReadOnly(ctx context.Context, db *sql.DB, ctl *Control, side string, dry bool, out io.Writer) (string, error) {
	var was string
	err := ctl.db.QueryRowContext(ctx, "SELECT was FROM "+ctl.table("read_only_servers")+" WHERE side = ?", side).Scan(&was)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("target: read the %s's read_only recorded in the control database: %w", side, err)
	}
	if was != "ON" {
		was = "OFF"
	}
	if dry {
		fmt.Fprintf(out, "      %s: SET GLOBAL read_only = %s (as recorded)\n", side, was)
		return "", nil
	}
	if _, err := db.ExecContext(ctx, "SET GLOBAL read_only = "+was); err != nil {
		return "", fmt.Errorf("%s: SET GLOBAL read_only = %s: %w", side, was, err)
	}
	if _, err := ctl.db.ExecContext(ctx, "DELETE FROM "+ctl.table("read_only_servers")+" WHERE side = ?", side); err != nil {
		return "", fmt.Errorf("target: forget the %s's read_only in the control database: %w", side, err)
	}
	return fmt.Sprintf("read_only = %s on the %s's server, as before", was, side), nil
}

// pastReadOnly says whether the role may set read_only and write past it.
func (p *privileges) pastReadOnly() bool {
	return p.has("", "SUPER", "READ_ONLY ADMIN") || p.has("", "SYSTEM_VARIABLES_ADMIN") && p.has("", "CONNECTION_ADMIN")
}

// readOnlyGrant is what a role needs to set read_only and write past it.
func readOnlyGrant(mariadb bool) string {
	if mariadb {
		return "READ_ONLY ADMIN"
	}
	return "SYSTEM_VARIABLES_ADMIN, CONNECTION_ADMIN"
}

// readOnlyProblems says why the read_only block cannot close side's server (db):
// own, the migration's account cannot set read_only and write past it (it writes the
// markers and applies the changes there); admins, accounts that may write to the
// migrated tables past it (g: the side's grants).
func readOnlyProblems(ctx context.Context, db *sql.DB, side string, g *grants, exempt []string) (own string, admins []string) {
	p, err := readPrivileges(ctx, &server{db: db})
	switch {
	case err != nil:
		own = fmt.Sprintf("%s: read the migration's account's privileges: %v", side, err)
	case !p.pastReadOnly():
		own = fmt.Sprintf("%s: with cutover.block: read_only the migration's account %s sets read_only and writes past it (the markers, the changes): GRANT %s ON *.* TO %[2]s on the %[1]s, or set cutover.block: roles",
			side, g.me, readOnlyGrant(g.mariadb))
	}
	var names []string
	for _, a := range g.writers(exempt) {
		if st := g.accounts[a]; st.admin && !st.locked {
			names = append(names, a.String())
		}
	}
	if len(names) > 0 {
		admins = append(admins, fmt.Sprintf("%s on the %s: administrators (global SUPER) that may write to the migrated tables, which read_only does not stop: if no application connects as them, list them in cutover.exempt_roles; else lock them yourself before the switch",
			strings.Join(names[:min(len(names), 8)], ", "), side))
	}
	return own, admins
}

// readOnlyOpen says how side's server is still open to the applications under
// cutover.block: read_only (g: its grants): not read-only, or an administrator that
// may write to the migrated tables. For status and the switch's gate.
func readOnlyOpen(ctx context.Context, db *sql.DB, side string, g *grants, exempt []string) ([]string, error) {
	var on bool
	if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.read_only").Scan(&on); err != nil {
		return nil, err
	}
	var open []string
	if !on {
		open = append(open, fmt.Sprintf("the %s is open to the applications: its server is not read-only (cutover.block: read_only): SET GLOBAL read_only = ON on the %[1]s", side))
	}
	for _, a := range g.writers(exempt) {
		if st := g.accounts[a]; st.admin && !st.locked {
			open = append(open, fmt.Sprintf("the %s is open to the applications: %s is an administrator that may write to the migrated tables past read_only: list it in cutover.exempt_roles if no application connects as it, else ALTER USER %[2]s ACCOUNT LOCK on the %[1]s", side, a))
		}
	}
	return open, nil
}
