package mysql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/engine"
)

// markerPoll is how often the switch reads whether a marker was applied.
const markerPoll = 2 * time.Millisecond

// waitMarker writes a sync marker into the control database on from (the side the
// stream reads) and waits, timeout at most, until the applier records it in the
// control state on applied (the side it writes): every change made on from before the
// marker is applied then. It returns how long that took.
func (s *switcher) waitMarker(ctx context.Context, from, applied side, tag string, timeout time.Duration) (time.Duration, error) {
	id := fmt.Sprintf("%s:%s:%d", s.run.ID, tag, time.Now().UnixNano())
	markers := tableName{s.p.ControlSchema, "sync_markers"}.quoted()
	if s.dry {
		fmt.Fprintf(s.out, "      %s: INSERT INTO %s (id) VALUES ('%s'), then wait up to %v until the %s applied it\n", from.name, markers, id, timeout, applied.name)
		return 0, nil
	}
	start := time.Now()
	if _, err := from.db.ExecContext(ctx, "INSERT INTO "+markers+" (id) VALUES (?)", id); err != nil {
		return 0, fmt.Errorf("%s: write the sync marker: %w", from.name, err)
	}
	state := tableName{s.p.ControlSchema, "state"}.quoted()
	deadline := start.Add(timeout)
	for {
		var got string
		if err := applied.db.QueryRowContext(ctx, "SELECT sync_marker FROM "+state+" WHERE id = 1").Scan(&got); err != nil {
			return 0, fmt.Errorf("%s: read the sync marker applied: %w", applied.name, err)
		}
		if got == id {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("replication did not apply the sync marker %s within %v: is cutover start running and keeping up? (cutover status)", id, timeout)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(markerPoll):
		}
	}
}

// Sync waits until the replication out of from has applied a marker written there.
// Without a running cutover start, reverse replication runs here for the while.
func (s *switcher) Sync(ctx context.Context, from cutover.Side) (string, error) {
	if from == cutover.Source {
		took, err := s.waitMarker(ctx, s.src, s.tgt, "sync", s.p.Cutover.SyncTimeout.D())
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("the target applied the marker in %v", took.Round(time.Millisecond)), nil
	}
	detail := ""
	running, err := streamRunning(ctx, s.src.db, s.p.ControlSchema)
	if err != nil {
		return "", err
	}
	if !running && !s.dry {
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- replicate(rctx, reversed(s.p), engine.StartOptions{Out: io.Discard}, true) }()
		defer func() {
			cancel()
			<-done
		}()
		detail = " (no cutover start ran: reverse replication ran here)"
	}
	took, err := s.waitMarker(ctx, s.tgt, s.src, "sync", s.p.Cutover.SyncTimeout.D())
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("the source applied the marker in %v%s", took.Round(time.Millisecond), detail), nil
}

// streamStops bounds the wait for a stream to let its lock go once told to stop.
const streamStops = 30 * time.Second

// StopReplication stops the replication out of from and waits until nothing streams.
func (s *switcher) StopReplication(ctx context.Context, from cutover.Side) (string, error) {
	if err := s.setState(ctx, "replication = ?", control.ReplicateStopped); err != nil {
		return "", err
	}
	// Forward replication's lock is on the target, reverse replication's on the source.
	on := s.tgt
	if from == cutover.Target {
		on = s.src
	}
	if s.dry {
		fmt.Fprintf(s.out, "      %s: wait until IS_USED_LOCK('%s') is NULL\n", on.name, streamLockName(s.p.ControlSchema))
		return "", nil
	}
	deadline := time.Now().Add(streamStops)
	for {
		running, err := streamRunning(ctx, on.db, s.p.ControlSchema)
		if err != nil {
			return "", err
		}
		if !running {
			return "nothing streams", nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("replication out of the %s still runs %v after it was told to stop (its lock %s on the %s is held): is another process applying the changes?",
				from, streamStops, streamLockName(s.p.ControlSchema), on.name)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// ResumeReplication tells the task to replicate out of from again.
func (s *switcher) ResumeReplication(ctx context.Context, from cutover.Side) (string, error) {
	dir := control.ReplicateForward
	if from == cutover.Target {
		dir = control.ReplicateReverse
	}
	return "replication " + dir + " resumes", s.setState(ctx, "replication = ?", dir)
}

// currentPosition is sd's binary log position now, as the stream reads it.
func currentPosition(ctx context.Context, sd side) (string, error) {
	conn, err := sd.db.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	pos, err := logPosition(ctx, conn, sd.mariadb)
	if err != nil {
		return "", fmt.Errorf("%s: read the binary log position: %w", sd.name, err)
	}
	return binlogPositionText(pos), nil
}

// PrepareReverse has nothing to create before the block: the target's binary log
// carries its writes, and the control database on the source was made by the gates.
func (s *switcher) PrepareReverse(context.Context) (string, error) {
	return "nothing to prepare: reverse replication reads the target's binary log", nil
}

// UnprepareReverse has nothing to drop.
func (s *switcher) UnprepareReverse(context.Context) (string, error) { return "", nil }

// StartReverse moves the triggers to the target, then records in the control database
// on the source where reverse replication starts (the target's position now, with the
// forward stream stopped and the target's users locked out), and the task replicates
// target to source.
func (s *switcher) StartReverse(ctx context.Context) (string, error) {
	moved, err := s.moveTriggers(ctx, s.src, s.tgt)
	if err != nil {
		return "", err
	}
	serverID := randomServerID()
	slot := fmt.Sprintf("%s%d", streamSlot, serverID)
	if s.dry {
		fmt.Fprintf(s.out, "      source: record in %s that reverse replication reads the target's binary log from its position now, as server_id %d\n", s.p.ControlSchema, serverID)
		return moved, s.setState(ctx, "reverse_slot = ?, replication = ?", slot, control.ReplicateReverse)
	}
	pos, err := currentPosition(ctx, s.tgt)
	if err != nil {
		return "", err
	}
	// The gates made the control database on the source: no DDL inside the window.
	rctl := &Control{db: s.src.db, name: s.p.ControlSchema}
	if _, err := s.src.db.ExecContext(ctx, "UPDATE "+rctl.table("state")+` SET phase = ?, mode = ?, slot = ?, position = ?, applied_position = '', applied_commit_time = NULL,
		applied_at = NULL, ddl_pending = '', replication = ?, sync_marker = '', updated_at = now(6) WHERE id = 1`,
		control.PhaseCDC, control.ModeCDC, slot, pos, control.ReplicateForward); err != nil {
		return "", fmt.Errorf("source: record where reverse replication starts: %w", err)
	}
	stats := make([]control.TableStat, len(s.tables))
	for i, t := range s.tables {
		stats[i] = control.TableStat{Schema: s.tgt.database, Table: t}
	}
	if err := rctl.QueueTables(ctx, stats); err != nil {
		return "", fmt.Errorf("source: %w", err)
	}
	if err := s.setState(ctx, "reverse_slot = ?, replication = ?", slot, control.ReplicateReverse); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s; reverse replication reads the target's binary log from %s as server_id %d", moved, pos, serverID), nil
}

// DropReverse stops reverse replication, and gives the triggers back to the source.
func (s *switcher) DropReverse(ctx context.Context) (string, error) {
	if _, err := s.StopReplication(ctx, cutover.Target); err != nil {
		return "", err
	}
	moved, err := s.moveTriggers(ctx, s.tgt, s.src)
	if err != nil {
		return "", err
	}
	return "reverse replication stopped; " + moved, s.setState(ctx, "reverse_slot = ''")
}

// EndReverse ends reverse replication after a rollback: the target's triggers go (the
// source's came back at the unlock), and forward replication goes on from the
// source's position the unlock recorded, after every write reverse replication made
// there.
func (s *switcher) EndReverse(ctx context.Context) (string, error) {
	var resume, slot string
	if err := s.tgt.db.QueryRowContext(ctx, "SELECT resume_position, reverse_slot FROM "+s.ctl.table("state")+" WHERE id = 1").Scan(&resume, &slot); err != nil {
		return "", fmt.Errorf("target: read where forward replication resumes: %w", err)
	}
	if resume == "" && slot == "" && !s.dry {
		// A run killed after this step, before it was recorded, did it all: the
		// position was used and forgotten, and stopping replication again would hold
		// the forward stream that resumed.
		return "reverse replication was ended and forward replication resumed by the interrupted run", nil
	}
	d, err := s.DropReverse(ctx)
	if err != nil {
		return "", err
	}
	if resume == "" && !s.dry {
		return "", errors.New("target: the control state has no position for forward replication to resume from (the rollback's unlock records it): cutover finish, then cutover start, to begin again")
	}
	// The target's writes while it was live were not tracked for incremental
	// validation: the next validation of each table is a full one.
	if err := s.exec(ctx, s.tgt, "UPDATE "+s.ctl.table("table_stats")+" SET validated_position = ''"); err != nil {
		return "", err
	}
	if err := s.setState(ctx, "applied_position = ?, resume_position = '', replication = ?", resume, control.ReplicateForward); err != nil {
		return "", err
	}
	return d + "; forward replication resumes from the source's position " + resume + "; the next validation of each table is a full one", nil
}

// moveTriggers moves the triggers on the migrated tables from one side to the other:
// the source's are recorded in the control database first (when from is the source
// and has any), then created on to (those it lacks), then dropped on from. Both sides
// never fire a trigger on the same write: replication writes to the side they left.
func (s *switcher) moveTriggers(ctx context.Context, from, to side) (string, error) {
	if from.name == "source" {
		if err := s.recordTriggers(ctx); err != nil {
			return "", err
		}
	}
	defs, err := s.recordedTriggers(ctx)
	if err != nil {
		return "", err
	}
	if len(defs) == 0 {
		return "no trigger on the migrated tables", nil
	}
	created, err := s.createTriggers(ctx, to, defs)
	if err != nil {
		return "", err
	}
	dropped, err := s.dropTriggers(ctx, from, defs)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("triggers: %d created on the %s, %d dropped on the %s", created, to.name, dropped, from.name), nil
}

// recordTriggers records the source's triggers on the migrated tables, as they are
// now, replacing what an earlier switch recorded.
func (s *switcher) recordTriggers(ctx context.Context) error {
	conn, err := s.src.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	migrated := map[string]bool{}
	for _, t := range s.tables {
		migrated[t] = true
	}
	defs, err := readTriggers(ctx, conn, s.src.database, migrated)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	for i, d := range defs {
		if d.create == "" {
			return fmt.Errorf("source: trigger %s: the migration role may not read its definition (SHOW CREATE TRIGGER gave none), so the switch cannot move it to the target: GRANT TRIGGER ON %s.* to it on the source",
				tableName{s.src.database, d.name}.quoted(), quote(s.src.database))
		}
		if err := s.record(ctx, "REPLACE INTO "+s.ctl.table("triggers")+" (trigger_name, table_name, seq, statement, sql_mode, charset, collation_name) VALUES (?, ?, ?, ?, ?, ?, ?)",
			d.name, d.table, i, d.create, d.sqlMode, d.charset, d.collation); err != nil {
			return err
		}
	}
	return nil
}

// recordedTriggers reads the triggers the control database records, in their order.
func (s *switcher) recordedTriggers(ctx context.Context) ([]objectDef, error) {
	rows, err := s.tgt.db.QueryContext(ctx, "SELECT trigger_name, table_name, statement, sql_mode, charset, collation_name FROM "+s.ctl.table("triggers")+" ORDER BY seq, trigger_name")
	if err != nil {
		return nil, fmt.Errorf("target: read the triggers recorded: %w", err)
	}
	defer rows.Close()
	var out []objectDef
	for rows.Next() {
		d := objectDef{kind: "trigger"}
		if err := rows.Scan(&d.name, &d.table, &d.create, &d.sqlMode, &d.charset, &d.collation); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// triggersOn lists the triggers of sd's database.
func triggersOn(ctx context.Context, sd side) (map[string]bool, error) {
	names, err := namesOn(ctx, sd.db, "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?", sd.database)
	if err != nil {
		return nil, fmt.Errorf("%s: list the triggers: %w", sd.name, err)
	}
	return names, nil
}

// createTriggers creates on sd the triggers of defs it lacks, in their order, each in
// the session it was created in. On the source, the trigger keeps its DEFINER where the
// migration role may set it; on the target, as the routines, the migration role is
// its definer.
func (s *switcher) createTriggers(ctx context.Context, sd side, defs []objectDef) (int, error) {
	present, err := triggersOn(ctx, sd)
	if err != nil {
		return 0, err
	}
	conn, err := sd.db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	sch := &schema{source: s.src.database}
	n := 0
	for _, d := range defs {
		if present[d.name] {
			continue
		}
		if s.dry {
			fmt.Fprintf(s.out, "      %s: CREATE TRIGGER %s ON %s (as the source had it)\n", sd.name, quote(d.name), quote(d.table))
			n++
			continue
		}
		create := withoutDefinerClause(d.create)
		if sd.name == "source" {
			create = d.create
		}
		err := sch.createObject(ctx, conn, sd.database, d, create)
		var me *driver.MySQLError
		if err != nil && sd.name == "source" && errors.As(err, &me) && me.Number == 1227 {
			err = sch.createObject(ctx, conn, sd.database, d, withoutDefinerClause(d.create))
		}
		if err != nil {
			return n, fmt.Errorf("%s: create the trigger %s: %w (its definition is in %s)", sd.name, tableName{sd.database, d.name}.quoted(), err, s.ctl.table("triggers"))
		}
		n++
	}
	return n, nil
}

// dropTriggers drops on sd the triggers of defs it has.
func (s *switcher) dropTriggers(ctx context.Context, sd side, defs []objectDef) (int, error) {
	present, err := triggersOn(ctx, sd)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range defs {
		if !present[d.name] {
			continue
		}
		if err := s.exec(ctx, sd, "DROP TRIGGER IF EXISTS "+sd.table(d.name)); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// CopySequences checks each migrated table's auto-increment counter on the other
// side against from's, and raises one that is lower.
func (s *switcher) CopySequences(ctx context.Context, from cutover.Side) (string, error) {
	f, t := s.sideOf(from), s.sideOf(from.Other())
	read := func(sd side) (map[string]uint64, error) {
		rows, err := sd.db.QueryContext(ctx, "SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND AUTO_INCREMENT IS NOT NULL", sd.database)
		if err != nil {
			return nil, fmt.Errorf("%s: read the auto-increment counters: %w", sd.name, err)
		}
		defer rows.Close()
		out := map[string]uint64{}
		for rows.Next() {
			var n string
			var v uint64
			if err := rows.Scan(&n, &v); err != nil {
				return nil, err
			}
			out[n] = v
		}
		return out, rows.Err()
	}
	for _, sd := range []side{f, t} {
		if !sd.mariadb {
			// MySQL 8 caches the figures of information_schema.TABLES
			if _, err := sd.db.ExecContext(ctx, "SET SESSION information_schema_stats_expiry = 0"); err != nil {
				return "", fmt.Errorf("%s: %w", sd.name, err)
			}
		}
	}
	fc, err := read(f)
	if err != nil {
		return "", err
	}
	tc, err := read(t)
	if err != nil {
		return "", err
	}
	checked, raised := 0, 0
	for _, name := range s.tables {
		want, ok := fc[name]
		if !ok {
			continue
		}
		checked++
		if tc[name] >= want {
			continue
		}
		if err := s.exec(ctx, t, fmt.Sprintf("ALTER TABLE %s AUTO_INCREMENT = %d", t.table(name), want)); err != nil {
			return "", err
		}
		raised++
	}
	return fmt.Sprintf("%d auto-increment counters checked, %d raised on the %s to the %s's", checked, raised, t.name, f.name), nil
}

// SecondaryObjects checks that the target has the source's secondary indexes and
// foreign keys (the load built them); the triggers move with reverse replication.
func (s *switcher) SecondaryObjects(ctx context.Context) (string, error) {
	missing, err := s.missingObjects(ctx)
	if err != nil {
		return "", err
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("missing on the target: %s: create them there (they are on the source)", strings.Join(missing, ", "))
	}
	return "the target has the source's indexes and foreign keys; its triggers are created with reverse replication", nil
}

// missingObjects lists the indexes and foreign keys of the migrated tables the
// source has and the target lacks, by name.
func (s *switcher) missingObjects(ctx context.Context) ([]string, error) {
	read := func(sd side) (map[string]bool, error) {
		names, err := namesOn(ctx, sd.db, `SELECT concat('index ', TABLE_NAME, '.', INDEX_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ?
			UNION SELECT concat('foreign key ', TABLE_NAME, '.', CONSTRAINT_NAME) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?`, sd.database, sd.database)
		if err != nil {
			return nil, fmt.Errorf("%s: list the indexes and foreign keys: %w", sd.name, err)
		}
		return names, nil
	}
	have, err := read(s.src)
	if err != nil {
		return nil, err
	}
	got, err := read(s.tgt)
	if err != nil {
		return nil, err
	}
	migrated := map[string]bool{}
	for _, t := range s.tables {
		migrated[t] = true
	}
	var missing []string
	for n := range have {
		_, rest, _ := strings.Cut(n, " ")
		if strings.HasPrefix(n, "foreign key ") {
			rest = strings.TrimPrefix(n, "foreign key ")
		}
		table, _, _ := strings.Cut(rest, ".")
		if migrated[table] && !got[n] {
			missing = append(missing, n)
		}
	}
	return missing, nil
}
