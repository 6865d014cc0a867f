package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"

	driver "github.com/go-sql-driver/mysql"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/plan"
)

// blockGates checks that sd's writers can be blocked (the migration role reads the
// grants and sees the sessions, or with cutover.block: read_only may set read_only
// and write past it; no writer is an administrator the block would leave open) and,
// with other (the target, for a switch), that each can log in there.
func (s *switcher) blockGates(ctx context.Context, sd side, other *side) []string {
	g, err := readGrants(ctx, sd.db, sd.database, s.tableNames(sd))
	if err != nil {
		return []string{strings.Replace(err.Error(), "target", sd.name, 1)}
	}
	var problems []string
	readOnly := s.p.Cutover.Block == plan.BlockReadOnly
	if readOnly {
		own, admins := readOnlyProblems(ctx, sd.db, sd.name, g, s.p.Cutover.ExemptRoles)
		if own != "" {
			problems = append(problems, own)
		}
		problems = append(problems, admins...)
	} else if !g.seesSessions() {
		problems = append(problems, fmt.Sprintf("the %s's migration role %s cannot see the other accounts' sessions, which the block ends: GRANT PROCESS, %s TO %[2]s on the %[1]s",
			sd.name, g.me, g.connectionAdmin()))
	}
	var admins, absent []account
	var og *grants
	if other != nil {
		if og, err = readGrants(ctx, other.db, other.database, s.tableNames(*other)); err != nil {
			return append(problems, err.Error())
		}
	}
	for _, a := range g.writers(s.p.Cutover.ExemptRoles) {
		if st := g.accounts[a]; st.admin && !st.locked && !readOnly { // readOnlyProblems names them
			admins = append(admins, a)
		}
		if og != nil && og.accounts[a] == nil {
			absent = append(absent, a)
		}
	}
	if len(admins) > 0 {
		problems = append(problems, fmt.Sprintf("%s on the %s: administrators (global SUPER) that may write to the migrated tables, which the block does not lock: if no application connects as them, list them in cutover.exempt_roles; else lock them yourself before the switch",
			accountList(admins, 8), sd.name))
	}
	if len(absent) > 0 {
		problems = append(problems, fmt.Sprintf("%s may write to the migrated tables on the %s but do not exist on the %s, so the applications could not log in there after the switch: create them there (SHOW CREATE USER and SHOW GRANTS on the %[2]s), or list them in cutover.exempt_roles",
			accountList(absent, 8), sd.name, other.name))
	}
	return problems
}

// Block stops the writes of sd's users: every account that may write to the migrated
// tables is recorded, then locked, and their sessions end (each rolls back its
// transaction first). Accounts locked already stay so, and their sessions end too.
// With cutover.block: read_only, sd's server is made read-only instead (readonly.go).
func (s *switcher) Block(ctx context.Context, sd cutover.Side) (string, error) {
	return s.block(ctx, s.sideOf(sd))
}

func (s *switcher) block(ctx context.Context, sd side) (string, error) {
	if s.p.Cutover.Block == plan.BlockReadOnly {
		return setReadOnly(ctx, sd.db, s.ctl, sd.name, s.dry, s.out)
	}
	g, err := readGrants(ctx, sd.db, sd.database, s.tableNames(sd))
	if err != nil {
		return "", err
	}
	var locked []account
	closed := map[account]bool{}
	for _, a := range g.writers(s.p.Cutover.ExemptRoles) {
		st := g.accounts[a]
		closed[a] = true
		if st.locked {
			continue
		}
		if st.admin {
			return "", fmt.Errorf("%s: %s is an administrator (global SUPER) that may write to the migrated tables, which the block does not lock: list it in cutover.exempt_roles, or lock it yourself", sd.name, a)
		}
		if err := s.record(ctx, "INSERT IGNORE INTO "+s.ctl.table("blocked_accounts")+" (run, side, user_name, host_name) VALUES (?, ?, ?, ?)", s.run.ID, sd.name, a.user, a.host); err != nil {
			return "", err
		}
		if err := s.exec(ctx, sd, "ALTER USER "+a.sql()+" ACCOUNT LOCK"); err != nil {
			var me *driver.MySQLError
			if errors.As(err, &me) && me.Number == 1227 {
				return "", fmt.Errorf("%w: GRANT CREATE USER ON *.* TO %s on the %s, or list %s in cutover.exempt_roles", err, g.me, sd.name, a)
			}
			return "", err
		}
		locked = append(locked, a)
	}
	if s.dry {
		fmt.Fprintf(s.out, "      %s: KILL CONNECTION for every session of these accounts, until none is left\n", sd.name)
		return "", nil
	}
	ended, left, err := endSessions(ctx, sd.db, g, closed)
	if err != nil {
		return "", err
	}
	if len(left) > 0 {
		return "", fmt.Errorf("%s: sessions that may write are still open: %s", sd.name, strings.Join(left, "; "))
	}
	return fmt.Sprintf("%d accounts locked%s, %d sessions ended", len(locked), inParens(accountList(locked, 6)), ended), nil
}

// Unblock unlocks the accounts the blocks of any run recorded for sd.
func (s *switcher) Unblock(ctx context.Context, sd cutover.Side) (string, error) {
	return s.unblock(ctx, s.sideOf(sd))
}

func (s *switcher) unblock(ctx context.Context, sd side) (string, error) {
	rows, err := s.tgt.db.QueryContext(ctx, "SELECT DISTINCT user_name, host_name FROM "+s.ctl.table("blocked_accounts")+" WHERE side = ? ORDER BY 1, 2", sd.name)
	if err != nil {
		return "", fmt.Errorf("target: read the blocked accounts: %w", err)
	}
	var list []account
	for rows.Next() {
		var a account
		if err := rows.Scan(&a.user, &a.host); err != nil {
			rows.Close()
			return "", err
		}
		list = append(list, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return "", err
	}
	unlocked, err := unlockEach(list, func(q string) error { return s.exec(ctx, sd, q) }, func(a account) error {
		return s.record(ctx, "DELETE FROM "+s.ctl.table("blocked_accounts")+" WHERE side = ? AND user_name = ? AND host_name = ?", sd.name, a.user, a.host)
	})
	if err != nil {
		return "", err
	}
	detail := fmt.Sprintf("%d accounts unlocked on the %s%s", len(unlocked), sd.name, inParens(strings.Join(unlocked[:min(len(unlocked), 6)], ", ")))
	// whatever the block mode is now: a read_only recorded is given back
	ro, err := restoreReadOnly(ctx, sd.db, s.ctl, sd.name, s.dry, s.out)
	if err != nil {
		return "", err
	}
	if ro != "" {
		detail += "; " + ro
	}
	return detail, nil
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

// unlockTarget ends the switch's write downtime: the accounts the load (and any
// rollback) locked on the target are unlocked, the events suspended on the source are
// enabled on the target, and the migration is switched.
func (s *switcher) unlockTarget(ctx context.Context) (string, error) {
	var details []string
	if s.dry {
		fmt.Fprintf(s.out, "      target: ALTER USER ... ACCOUNT UNLOCK for each account %s records\n", s.ctl.table("locked_accounts"))
	} else {
		unlocked, err := reopen(ctx, s.tgt.db, s.ctl, loadRun)
		if err != nil {
			return "", err
		}
		details = append(details, fmt.Sprintf("%d accounts the load locked unlocked%s", len(unlocked), inParens(strings.Join(unlocked[:min(len(unlocked), 6)], ", "))))
	}
	d, err := s.unblock(ctx, s.tgt)
	if err != nil {
		return "", err
	}
	details = append(details, d)
	if d, err = s.moveEvents(ctx, s.src, s.tgt); err != nil {
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

// relockTarget undoes an unlock of the target that did not finish: the target closed
// again and its events disabled, before the undos that follow open the source.
func (s *switcher) relockTarget(ctx context.Context) (string, error) {
	d1, err := s.block(ctx, s.tgt)
	if err != nil {
		return "", err
	}
	d2, err := s.unmoveEvents(ctx, s.tgt)
	if err != nil {
		return "", err
	}
	if _, err := s.phaseBack(ctx, control.PhaseSwitched, control.PhaseSwitching); err != nil {
		return "", err
	}
	return d1 + "; " + d2, nil
}

// unlockSource ends the rollback's write downtime: the triggers come back to the
// source, the position forward replication goes on from is recorded (the source's
// now: after every write reverse replication made, before any of its users'), its
// accounts are unlocked and its events enabled.
func (s *switcher) unlockSource(ctx context.Context) (string, error) {
	defs, err := s.recordedTriggers(ctx)
	if err != nil {
		return "", err
	}
	created, err := s.createTriggers(ctx, s.src, defs)
	if err != nil {
		return "", err
	}
	pos := "(the source's position now)"
	if !s.dry {
		if pos, err = currentPosition(ctx, s.src); err != nil {
			return "", err
		}
	}
	if err := s.setState(ctx, "resume_position = ?", pos); err != nil {
		return "", err
	}
	d1, err := s.unblock(ctx, s.src)
	if err != nil {
		return "", err
	}
	d2, err := s.resumeEvents(ctx, s.src, s.tgt, "")
	if err != nil {
		return "", err
	}
	// What the rollback suspended on the target stays so: it is a replica again. This
	// run's records stay until the next rollback's unlock: when this unlock fails, the
	// undo of the jobs step reads them to enable the target's events again.
	if err := s.record(ctx, "DELETE FROM "+s.ctl.table("suspended_events")+" WHERE side = 'target' AND run <> ?", s.run.ID); err != nil {
		return "", err
	}
	if err := s.hooks.Commands(ctx, "resume_jobs", s.p.Cutover.Hooks.ResumeJobs, "CUTOVER_STEP=unlock", "CUTOVER_RUN="+s.run.ID, "CUTOVER_SIDE=source"); err != nil {
		return "", err
	}
	if err := s.setPhase(ctx, control.PhaseRolledBack); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d triggers created on the source; forward replication goes on from %s; %s; %s", created, pos, d1, d2), nil
}

// relockSource undoes an unlock of the source that did not finish: the source closed
// again, its events suspended, its triggers dropped (reverse replication writes there
// again), before the undos that follow open the target.
func (s *switcher) relockSource(ctx context.Context) (string, error) {
	d1, err := s.block(ctx, s.src)
	if err != nil {
		return "", err
	}
	d2, err := s.suspendEvents(ctx, s.src)
	if err != nil {
		return "", err
	}
	defs, err := s.recordedTriggers(ctx)
	if err != nil {
		return "", err
	}
	if _, err := s.dropTriggers(ctx, s.src, defs); err != nil {
		return "", err
	}
	if _, err := s.phaseBack(ctx, control.PhaseRolledBack, control.PhaseRollingBack); err != nil {
		return "", err
	}
	return d1 + "; " + d2, nil
}

// SuspendJobs disables sd's enabled events (recorded first) and runs the suspend_jobs
// hooks.
func (s *switcher) SuspendJobs(ctx context.Context, sd cutover.Side) (string, error) {
	side := s.sideOf(sd)
	d, err := s.suspendEvents(ctx, side)
	if err != nil {
		return "", err
	}
	if err := s.hooks.Commands(ctx, "suspend_jobs", s.p.Cutover.Hooks.SuspendJobs, "CUTOVER_STEP=jobs", "CUTOVER_RUN="+s.run.ID, "CUTOVER_SIDE="+side.name); err != nil {
		return "", err
	}
	return d, nil
}

// ResumeJobs gives sd the events this run suspended there back (and disables the
// copies it enabled on the other side), then runs the resume_jobs hooks.
func (s *switcher) ResumeJobs(ctx context.Context, sd cutover.Side) (string, error) {
	side := s.sideOf(sd)
	d, err := s.resumeEvents(ctx, side, s.sideOf(sd.Other()), s.run.ID)
	if err != nil {
		return "", err
	}
	if err := s.hooks.Commands(ctx, "resume_jobs", s.p.Cutover.Hooks.ResumeJobs, "CUTOVER_STEP=resume", "CUTOVER_RUN="+s.run.ID, "CUTOVER_SIDE="+side.name); err != nil {
		return "", err
	}
	return d, nil
}

// suspendEvents disables the enabled events of sd's database, each recorded first.
func (s *switcher) suspendEvents(ctx context.Context, sd side) (string, error) {
	names, err := eventsOn(ctx, sd, "STATUS = 'ENABLED'")
	if err != nil {
		return "", err
	}
	for _, n := range names {
		if err := s.record(ctx, "INSERT IGNORE INTO "+s.ctl.table("suspended_events")+" (run, side, event_name) VALUES (?, ?, ?)", s.run.ID, sd.name, n); err != nil {
			return "", err
		}
		if err := s.exec(ctx, sd, "ALTER EVENT "+sd.table(n)+" DISABLE"); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%d events disabled on the %s%s", len(names), sd.name, inParens(strings.Join(names[:min(len(names), 6)], ", "))), nil
}

// eventsOn lists the events of sd's database that match cond.
func eventsOn(ctx context.Context, sd side, cond string) ([]string, error) {
	names, err := queryStrings(ctx, sd.db, "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? AND "+cond+" ORDER BY EVENT_NAME", sd.database)
	if err != nil {
		return nil, fmt.Errorf("%s: list the events: %w", sd.name, err)
	}
	return names, nil
}

type suspended struct {
	run, name string
	moved     bool
}

// suspendedOn reads the events recorded suspended on sd (of run, when not "").
func (s *switcher) suspendedOn(ctx context.Context, sd side, run string) ([]suspended, error) {
	rows, err := s.tgt.db.QueryContext(ctx, "SELECT run, event_name, moved FROM "+s.ctl.table("suspended_events")+" WHERE side = ? AND (? = '' OR run = ?) ORDER BY event_name", sd.name, run, run)
	if err != nil {
		return nil, fmt.Errorf("target: read the suspended events: %w", err)
	}
	defer rows.Close()
	var out []suspended
	for rows.Next() {
		var e suspended
		if err := rows.Scan(&e.run, &e.name, &e.moved); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// resumeEvents enables on sd the events recorded suspended there (by run, or by any
// run when ""), disables on other the copies enabled there, and forgets them.
func (s *switcher) resumeEvents(ctx context.Context, sd, other side, run string) (string, error) {
	events, err := s.suspendedOn(ctx, sd, run)
	if err != nil {
		return "", err
	}
	present, err := eventsOn(ctx, other, "TRUE")
	if err != nil {
		return "", err
	}
	there := map[string]bool{}
	for _, n := range present {
		there[n] = true
	}
	for _, e := range events {
		if e.moved && there[e.name] {
			if err := s.exec(ctx, other, "ALTER EVENT "+other.table(e.name)+" DISABLE"); err != nil {
				return "", err
			}
		}
		if err := s.exec(ctx, sd, "ALTER EVENT "+sd.table(e.name)+" ENABLE"); err != nil {
			return "", err
		}
		if err := s.record(ctx, "DELETE FROM "+s.ctl.table("suspended_events")+" WHERE run = ? AND side = ? AND event_name = ?", e.run, sd.name, e.name); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%d events enabled again on the %s", len(events), sd.name), nil
}

// moveEvents enables on to the events this run suspended on from (the load created
// them there, disabled); one to lacks is said.
func (s *switcher) moveEvents(ctx context.Context, from, to side) (string, error) {
	events, err := s.suspendedOn(ctx, from, s.run.ID)
	if err != nil {
		return "", err
	}
	present, err := eventsOn(ctx, to, "TRUE")
	if err != nil {
		return "", err
	}
	there := map[string]bool{}
	for _, n := range present {
		there[n] = true
	}
	var moved, lacking []string
	for _, e := range events {
		if !there[e.name] {
			lacking = append(lacking, e.name)
			continue
		}
		if err := s.exec(ctx, to, "ALTER EVENT "+to.table(e.name)+" ENABLE"); err != nil {
			return "", err
		}
		if err := s.record(ctx, "UPDATE "+s.ctl.table("suspended_events")+" SET moved = true WHERE run = ? AND side = ? AND event_name = ?", e.run, from.name, e.name); err != nil {
			return "", err
		}
		moved = append(moved, e.name)
	}
	d := fmt.Sprintf("%d events enabled on the %s", len(moved), to.name)
	if len(lacking) > 0 {
		d += fmt.Sprintf("; warning: the %s lacks %s, disabled on the %s: create them there", to.name, strings.Join(lacking, ", "), from.name)
	}
	return d, nil
}

// unmoveEvents disables on sd the events this run enabled there.
func (s *switcher) unmoveEvents(ctx context.Context, sd side) (string, error) {
	other := s.src
	if sd.name == "source" {
		other = s.tgt
	}
	events, err := s.suspendedOn(ctx, other, s.run.ID)
	if err != nil {
		return "", err
	}
	n := 0
	for _, e := range events {
		if !e.moved {
			continue
		}
		if err := s.exec(ctx, sd, "ALTER EVENT "+sd.table(e.name)+" DISABLE"); err != nil {
			return "", err
		}
		if err := s.record(ctx, "UPDATE "+s.ctl.table("suspended_events")+" SET moved = false WHERE run = ? AND side = ? AND event_name = ?", e.run, other.name, e.name); err != nil {
			return "", err
		}
		n++
	}
	return fmt.Sprintf("%d events disabled again on the %s", n, sd.name), nil
}

// rollbackGates checks that a rollback can begin: the migration switched, reverse
// replication in place, the source still closed, the target's users blockable.
func (s *switcher) rollbackGates(ctx context.Context) (string, error) {
	var problems []string
	if s.st.Phase != control.PhaseSwitched {
		problems = append(problems, fmt.Sprintf("the migration is in phase %q: only a switched migration rolls back", s.st.Phase))
	} else {
		var slot string
		if err := s.tgt.db.QueryRowContext(ctx, "SELECT reverse_slot FROM "+s.ctl.table("state")+" WHERE id = 1").Scan(&slot); err != nil {
			return "", fmt.Errorf("target: read reverse replication's stream: %w", err)
		}
		if slot == "" {
			problems = append(problems, "reverse replication is not in place, so the writes made on the target since the switch cannot reach the source: stay on the target (cutover finish), or bring those writes to the source by hand before going back")
		}
		g, err := readGrants(ctx, s.src.db, s.src.database, s.tableNames(s.src))
		if err != nil {
			return "", fmt.Errorf("source: %w", err)
		}
		if s.p.Cutover.Block == plan.BlockReadOnly {
			open, err := readOnlyOpen(ctx, s.src.db, "source", g, s.p.Cutover.ExemptRoles)
			if err != nil {
				return "", fmt.Errorf("source: %w", err)
			}
			problems = append(problems, open...)
		} else {
			for _, a := range g.writers(s.p.Cutover.ExemptRoles) {
				if !g.accounts[a].locked {
					problems = append(problems, fmt.Sprintf("the source is open: %s may log in there and write to the migrated tables while the target takes the writes: ALTER USER %[1]s ACCOUNT LOCK on the source", a))
				}
			}
		}
	}
	problems = append(problems, s.blockGates(ctx, s.tgt, nil)...)
	if len(problems) > 0 {
		return "", fmt.Errorf("the rollback did not begin:\n  - %s", strings.Join(problems, "\n  - "))
	}
	return "every gate holds", s.setPhase(ctx, control.PhaseRollingBack)
}
