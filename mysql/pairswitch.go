package mysql

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/plan"
	neutral "github.com/cutover-dev/cutover/schema"
)

// The source's half of a switch to another engine (engine.SwitchSource): the target
// engine runs the checklist and keeps its runbook; what the switch does here is the
// same as between two MySQL servers, recorded in a control database on the source
// (created before the block), which also keeps reverse replication's position, the
// sync markers the forward feed passes on, and the triggers the switch drops here.
//
// A pairSide is a switcher whose two sides are both the source: the control
// database it records in (the switcher's target side) is on the source's server.

type pairSide struct {
	*switcher
}

var _ engine.SwitchSource = pairSide{}

// SwitchSource is the source's database as a switch to another engine acts on it.
func (Engine) SwitchSource(ctx context.Context, p *plan.Plan, opts cutover.Options) (engine.SwitchSource, error) {
	s := &switcher{p: p, opts: opts, out: opts.Out, dry: opts.DryRun}
	if s.out == nil {
		s.out = io.Discard
	}
	db, database, err := openSide(ctx, "source", p.Source, 4)
	if err != nil {
		return nil, err
	}
	s.src = side{name: "source", db: db, database: database}
	if s.src.mariadb, err = isMariaDB(ctx, "source", db); err != nil {
		db.Close()
		return nil, err
	}
	s.tgt = s.src
	s.ctl = &Control{db: db, name: p.ControlSchema}
	tables, err := listTables(ctx, db, database, p)
	if err != nil {
		db.Close()
		return nil, err
	}
	for _, t := range tables {
		s.tables = append(s.tables, t.name)
	}
	s.hooks = cutover.PlanHooks(p, s.out, s.dry)
	return pairSide{s}, nil
}

func (s pairSide) Close() { s.src.db.Close() }

// Gates: the source's writers can be blocked, and reverse replication may write to
// the migrated tables and keep its control database here.
func (s pairSide) Gates(ctx context.Context) []string {
	problems := s.blockGates(ctx, s.src, nil)
	privs, err := readPrivileges(ctx, &server{side: "source", db: s.src.db})
	if err != nil {
		return append(problems, fmt.Sprintf("source: read the migration role's grants: %v", err))
	}
	var missing []string
	for _, pr := range []string{"INSERT", "UPDATE", "DELETE"} {
		if !privs.has(s.src.database, pr) {
			missing = append(missing, pr)
		}
	}
	if !privs.has(s.p.ControlSchema, "CREATE") {
		missing = append(missing, "CREATE (of its control database "+quote(s.p.ControlSchema)+")")
	}
	if len(missing) > 0 && !privs.roles {
		problems = append(problems, fmt.Sprintf("reverse replication writes the target's changes into the source's tables and keeps its position there, and the migration role lacks %s on the source: GRANT INSERT, UPDATE, DELETE ON %s.* and GRANT ALL ON %s.* to it there",
			strings.Join(missing, ", "), quote(s.src.database), quote(s.p.ControlSchema)))
	}
	return append(problems, s.charsetGate(ctx)...)
}

// charsetGate: reverse replication writes strings back in their column's character
// set (encodeText), which it knows for latin1, ascii and UTF-8; a column of another
// would stop it at the first write after the switch.
func (s pairSide) charsetGate(ctx context.Context) []string {
	rows, err := s.src.db.QueryContext(ctx, `SELECT TABLE_NAME, COLUMN_NAME, CHARACTER_SET_NAME FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? AND DATA_TYPE IN ('char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext') AND CHARACTER_SET_NAME IS NOT NULL
		ORDER BY TABLE_NAME, ORDINAL_POSITION`, s.src.database)
	if err != nil {
		return []string{fmt.Sprintf("source: read the columns' character sets: %v", err)}
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var table, column, charset string
		if err := rows.Scan(&table, &column, &charset); err != nil {
			return []string{fmt.Sprintf("source: read the columns' character sets: %v", err)}
		}
		if !slices.Contains(s.tables, table) || charset == "latin1" || utf8Charset(charset) {
			continue
		}
		cols = append(cols, fmt.Sprintf("%s.%s (%s)", quote(table), quote(column), charset))
	}
	if err := rows.Err(); err != nil {
		return []string{fmt.Sprintf("source: read the columns' character sets: %v", err)}
	}
	if len(cols) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("reverse replication cannot write strings back into the character sets of %s (it writes latin1, ascii and UTF-8): ALTER TABLE ... CONVERT TO CHARACTER SET utf8mb4 on the source before the switch, or leave the tables out of the migration",
		strings.Join(cols, ", "))}
}

// PrepareReverse creates the control database on the source (its tables, for
// reverse replication's state and the switch's records) before the block, and
// clears the position an earlier reverse replication left.
func (s pairSide) PrepareReverse(ctx context.Context) (string, error) {
	if s.dry {
		fmt.Fprintf(s.out, "      source: CREATE DATABASE IF NOT EXISTS %s (reverse replication's state, the switch's records)\n", quote(s.p.ControlSchema))
		return "", nil
	}
	ctl, err := openControl(ctx, s.src.db, s.p.ControlSchema)
	if err != nil {
		return "", fmt.Errorf("source: %w", err)
	}
	s.ctl = ctl
	if err := s.exec(ctx, s.src, "UPDATE "+s.ctl.table("state")+" SET applied_position = '', applied_commit_time = NULL, applied_at = NULL, sync_marker = '' WHERE id = 1"); err != nil {
		return "", err
	}
	return "control database " + quote(s.p.ControlSchema) + " on the source", nil
}

func (s pairSide) Block(ctx context.Context) (string, error)   { return s.block(ctx, s.src) }
func (s pairSide) Unblock(ctx context.Context) (string, error) { return s.unblock(ctx, s.src) }

func (s pairSide) SuspendJobs(ctx context.Context) (string, error) {
	return s.switcher.SuspendJobs(ctx, cutover.Source)
}

// ResumeJobs enables the events recorded suspended on the source by any run: the
// switch suspends them, and the rollback (another run) or the switch's undo gives
// them back.
func (s pairSide) ResumeJobs(ctx context.Context) (string, error) {
	d, err := s.resumeEvents(ctx, s.src, s.src, "")
	if err != nil {
		return "", err
	}
	if err := s.hooks.Commands(ctx, "resume_jobs", s.p.Cutover.Hooks.ResumeJobs, "CUTOVER_STEP=resume", "CUTOVER_RUN="+s.run.ID, "CUTOVER_SIDE=source"); err != nil {
		return "", err
	}
	return d, nil
}

// MoveTriggers records the source's triggers on the migrated tables and drops them:
// they would fire again on the rows reverse replication writes. The target has its
// own (the operator's, in PostgreSQL's SQL), if any.
func (s pairSide) MoveTriggers(ctx context.Context) (string, error) {
	if s.dry {
		names, err := triggersOn(ctx, s.src)
		if err != nil {
			return "", err
		}
		for n := range names {
			fmt.Fprintf(s.out, "      source: record, then DROP TRIGGER %s\n", s.src.table(n))
		}
		return "", nil
	}
	if err := s.recordTriggers(ctx); err != nil {
		return "", err
	}
	defs, err := s.recordedTriggers(ctx)
	if err != nil {
		return "", err
	}
	n, err := s.dropTriggers(ctx, s.src, defs)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d triggers dropped on the source (recorded in %s)", n, s.ctl.table("triggers")), nil
}

// RestoreTriggers creates the recorded triggers on the source again.
func (s pairSide) RestoreTriggers(ctx context.Context) (string, error) {
	if s.dry {
		fmt.Fprintf(s.out, "      source: create the triggers recorded in %s again\n", s.ctl.table("triggers"))
		return "", nil
	}
	defs, err := s.recordedTriggers(ctx)
	if err != nil {
		return "", err
	}
	n, err := s.createTriggers(ctx, s.src, defs)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d triggers created again on the source", n), nil
}

// Marker inserts the sync marker into the control database's sync_markers: the
// forward feed (which reads them, see Feed) passes it on.
func (s pairSide) Marker(ctx context.Context, id string) error {
	if s.dry {
		fmt.Fprintf(s.out, "      source: INSERT INTO %s (id) VALUES ('%s')\n", s.ctl.table("sync_markers"), id)
		return nil
	}
	if _, err := s.src.db.ExecContext(ctx, "INSERT INTO "+s.ctl.table("sync_markers")+" (id) VALUES (?)", id); err != nil {
		return fmt.Errorf("source: write the sync marker: %w", err)
	}
	return nil
}

// MarkerApplied is the last sync marker reverse replication recorded here.
func (s pairSide) MarkerApplied(ctx context.Context) (string, error) {
	var got string
	if err := s.src.db.QueryRowContext(ctx, "SELECT sync_marker FROM "+s.ctl.table("state")+" WHERE id = 1").Scan(&got); err != nil {
		return "", fmt.Errorf("source: read the sync marker applied: %w", err)
	}
	return got, nil
}

// counters reads the migrated tables' auto-increment counters.
func (s pairSide) counters(ctx context.Context) (map[string]int64, error) {
	conn, err := s.src.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if !s.src.mariadb {
		// MySQL 8 caches the figures of information_schema.TABLES
		if _, err := conn.ExecContext(ctx, "SET SESSION information_schema_stats_expiry = 0"); err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
	}
	rows, err := conn.QueryContext(ctx, "SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND AUTO_INCREMENT IS NOT NULL", s.src.database)
	if err != nil {
		return nil, fmt.Errorf("source: read the auto-increment counters: %w", err)
	}
	defer rows.Close()
	migrated := map[string]bool{}
	for _, t := range s.tables {
		migrated[t] = true
	}
	out := map[string]int64{}
	for rows.Next() {
		var n string
		var v int64
		if err := rows.Scan(&n, &v); err != nil {
			return nil, err
		}
		if migrated[n] {
			out[n] = v
		}
	}
	return out, rows.Err()
}

// RaiseCounters raises each counter below next to it.
func (s pairSide) RaiseCounters(ctx context.Context, next map[string]int64) (string, error) {
	have, err := s.counters(ctx)
	if err != nil {
		return "", err
	}
	raised := 0
	for _, t := range s.tables {
		want, ok := next[t]
		if !ok || have[t] >= want {
			continue
		}
		if err := s.exec(ctx, s.src, fmt.Sprintf("ALTER TABLE %s AUTO_INCREMENT = %d", s.src.table(t), want)); err != nil {
			return "", err
		}
		raised++
	}
	return fmt.Sprintf("%d auto-increment counters raised on the source", raised), nil
}

// Position is the end of the source's binary log now.
func (s pairSide) Position(ctx context.Context) (string, error) { return currentPosition(ctx, s.src) }

// Reverse is reverse replication's applier into the source, its position in the
// control database there (PrepareReverse made it).
func (s pairSide) Reverse(ctx context.Context) (*engine.ReverseApplier, error) {
	ctl, ok, err := readControl(ctx, s.src.db, s.p.ControlSchema)
	if err == nil && !ok {
		err = fmt.Errorf("the source has no control database %s, which the switch creates for reverse replication: run cutover switch", s.p.ControlSchema)
	}
	if err != nil {
		return nil, err
	}
	st, err := ctl.State(ctx)
	if err != nil {
		return nil, err
	}
	a := newApplier(s.src.db, s.src.database, s.src.mariadb, ctl, st.Applied)
	return &engine.ReverseApplier{Target: a, Committed: st.Applied, Value: reverseValue, Retryable: retryable,
		Acknowledge: func(each func(string)) { a.onCommitted = each }}, nil
}

// DropControl drops the control database on the source.
func (s pairSide) DropControl(ctx context.Context) (bool, error) {
	_, ok, err := readControl(ctx, s.src.db, s.p.ControlSchema)
	if err != nil || !ok {
		return false, err
	}
	if err := s.ctl.drop(ctx); err != nil {
		return false, fmt.Errorf("source: drop the control database %s: %w", quote(s.p.ControlSchema), err)
	}
	return true, nil
}

// reverseValue converts a canonical value of the source's column c to the text the
// applier writes (as the binary log gives it: strings in the column's character set,
// an ENUM by its index, a SET by its bits), refusing what the column cannot hold.
func reverseValue(c neutral.Column) func([]byte) (cdc.Value, error) {
	return func(canonical []byte) (cdc.Value, error) {
		b, err := fromCanonical(c.Type, canonical)
		if err != nil {
			return cdc.Value{}, err
		}
		switch c.Type.Kind {
		case cdc.KindEnum:
			for i, l := range c.Type.Labels {
				if l == string(b) {
					return cdc.Value{Text: fmt.Appendf(nil, "%d", i+1)}, nil
				}
			}
		case cdc.KindSet:
			var mask uint64
			if len(b) > 0 {
				for _, m := range strings.Split(string(b), ",") {
					for i, l := range c.Type.Labels {
						if l == m {
							mask |= 1 << uint(i)
						}
					}
				}
			}
			return cdc.Value{Text: fmt.Appendf(nil, "%d", mask)}, nil
		case cdc.KindText:
			if c.Charset != "" {
				if b, err = encodeText(c.Charset, b); err != nil {
					return cdc.Value{}, err
				}
			}
		}
		return cdc.Value{Text: b}, nil
	}
}

// encodeText is decodeText's inverse: UTF-8 into the column's character set, a
// character the set has no byte for is an error.
func encodeText(charset string, b []byte) ([]byte, error) {
	switch strings.ToLower(charset) {
	case "latin1":
		out := make([]byte, 0, len(b))
	next:
		for _, r := range string(b) {
			switch {
			case r < 0x80 || (r >= 0xa0 && r <= 0xff):
				out = append(out, byte(r))
				continue
			}
			for i, m := range mysqlLatin1 {
				if m == r {
					out = append(out, byte(0x80+i))
					continue next
				}
			}
			return nil, fmt.Errorf("%q has the character %q, which latin1 has not", truncate(string(b)), r)
		}
		return out, nil
	case "ascii":
		for _, c := range b {
			if c >= 0x80 {
				return nil, fmt.Errorf("%q is not ascii", truncate(string(b)))
			}
		}
		return b, nil
	case "utf8mb3", "utf8":
		for _, r := range string(b) {
			if utf8.RuneLen(r) > 3 {
				return nil, fmt.Errorf("%q has the character %q, which utf8mb3 cannot hold (4 bytes in UTF-8)", truncate(string(b)), r)
			}
		}
		return b, nil
	}
	if utf8Charset(charset) {
		return b, nil
	}
	return nil, fmt.Errorf("strings of the character set %s cannot be written by reverse replication", charset)
}
