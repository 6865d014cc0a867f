package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// The routines and events of the source's database, created on the target after the
// load (post-data), each in the sql_mode, character set and (events) time zone it was
// created in, its DEFINER clause left out (the migration role is its definer: a
// DEFINER of another account needs SET USER or SUPER), and the names its body
// qualifies with the source's database changed to the target's. Routines come before
// the views, which may call them. An event is created DISABLED: enabled on both
// servers it would run on both, and its writes on the target would mix with the rows
// the change stream applies; it is enabled on the target, and disabled on the source,
// when the applications move. Triggers are not created by the load: MySQL cannot
// disable one, and one on the target would fire on the rows cutover writes.

// definerClause is the DEFINER clause of SHOW CREATE's statement.
var definerClause = regexp.MustCompile("^CREATE (?:OR REPLACE )?DEFINER=(?:`(?:[^`]|``)*`|'(?:[^']|'')*'|\\w+)(?:@(?:`(?:[^`]|``)*`|'(?:[^']|'')*'|[\\w.%-]+))? ")

// withoutDefinerClause is a routine's or event's CREATE statement without DEFINER.
func withoutDefinerClause(create string) string {
	if m := definerClause.FindStringIndex(create); m != nil {
		return "CREATE " + create[m[1]:]
	}
	return create
}

// disabledEvent is an event's CREATE statement with its status DISABLE: the status
// clause (ENABLE, DISABLE, DISABLE ON SLAVE or ON REPLICA) before its body's DO is
// replaced, or added there.
func disabledEvent(create string) (string, error) {
	toks := lex(create)
	do := -1
	for i, tk := range toks {
		if tk.isWord("DO") {
			do = i
			break
		}
	}
	if do < 0 {
		return "", fmt.Errorf("its definition %.60q... has no DO", create)
	}
	// [ENABLE | DISABLE [ON SLAVE | ON REPLICA]] [COMMENT 'text'] DO
	i := do - 1
	if i >= 1 && toks[i-1].isWord("COMMENT") {
		i -= 2
	}
	if i >= 1 && (toks[i].isWord("SLAVE") || toks[i].isWord("REPLICA")) && toks[i-1].isWord("ON") {
		i -= 2
	}
	if i >= 0 && (toks[i].isWord("ENABLE") || toks[i].isWord("DISABLE")) {
		end := toks[i].end
		if i+2 < do && toks[i+1].isWord("ON") {
			end = toks[i+2].end
		}
		return create[:toks[i].start] + "DISABLE" + create[end:], nil
	}
	return create[:toks[do].start] + "DISABLE " + create[toks[do].start:], nil
}

// createRoutines creates the routines the target's database lacks.
func (s *schema) createRoutines(ctx context.Context, conn *sql.Conn, target string) error {
	present, err := namesOn(ctx, conn, "SELECT concat(lower(ROUTINE_TYPE), ' ', ROUTINE_NAME) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?", target)
	if err != nil {
		return fmt.Errorf("list the routines of the target's %s: %w", quote(target), err)
	}
	var errs []error
	for _, r := range s.routines {
		if present[r.kind+" "+r.name] || r.create == "" {
			continue // there already (a rerun), or not readable (notCarried says so)
		}
		if err := s.createObject(ctx, conn, target, r, withoutDefinerClause(r.create)); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w: create it on the target by hand (SHOW CREATE %s on the source), then run again", r.kind, tableName{target, r.name}.quoted(), err, strings.ToUpper(r.kind)))
		}
	}
	return errors.Join(errs...)
}

// createEvents creates, disabled, the events the target's database lacks.
func (s *schema) createEvents(ctx context.Context, conn *sql.Conn, target string) error {
	present, err := namesOn(ctx, conn, "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?", target)
	if err != nil {
		return fmt.Errorf("list the events of the target's %s: %w", quote(target), err)
	}
	var errs []error
	for _, e := range s.events {
		if present[e.name] || e.create == "" {
			continue
		}
		create, err := disabledEvent(withoutDefinerClause(e.create))
		if err == nil {
			err = s.createObject(ctx, conn, target, e, create)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("event %s: %w: create it, disabled, on the target by hand (SHOW CREATE EVENT on the source), then run again", tableName{target, e.name}.quoted(), err))
		}
	}
	return errors.Join(errs...)
}

// createObject runs a routine's or event's CREATE in the target's database, in the
// session it was created in on the source; the session is set back after.
func (s *schema) createObject(ctx context.Context, conn *sql.Conn, target string, o objectDef, create string) (err error) {
	create, err = retarget(create, s.source, target)
	if err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "USE "+quote(target)); err != nil {
		return fmt.Errorf("use the target's database: %w", err)
	}
	defer func() {
		if rerr := setUpDDL(context.WithoutCancel(ctx), conn); rerr != nil {
			err = errors.Join(err, rerr)
		}
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "SET SESSION time_zone = '+00:00'"); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	charset := "utf8mb4" // what SHOW CREATE printed it in
	if strings.HasPrefix(o.charset, "utf8") {
		charset = o.charset
	}
	collation := o.collation
	if collation == "" {
		collation = "utf8mb4_general_ci"
	}
	set := []struct{ q, v string }{{"SET SESSION sql_mode = ?", o.sqlMode}, {"SET SESSION character_set_client = ?", charset}, {"SET SESSION collation_connection = ?", collation}}
	if o.timeZone != "" {
		set = append(set, struct{ q, v string }{"SET SESSION time_zone = ?", o.timeZone})
	}
	for _, st := range set {
		if _, err := conn.ExecContext(ctx, st.q, st.v); err != nil {
			return fmt.Errorf("%s (%s): %w", st.q, st.v, err)
		}
	}
	if _, err := conn.ExecContext(ctx, create); err != nil {
		return err
	}
	// A disabled event on a server whose scheduler is off: said, and nothing to it.
	return ddlWarningsBut(ctx, conn, func(msg string) bool { return strings.Contains(msg, "Event scheduler is switched off") })
}
