package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/validate"
)

// driverPhrases are what a driver or server message looks like; a gate says what does
// not hold in its own words instead.
var driverPhrases = regexp.MustCompile(`(?i)can't scan|cannot scan|SQLSTATE|no rows in result set|dest\[\d+\]|ERROR: `)

// refusals splits a refused switch's or rollback's error into its problems, and
// checks that each is a sentence of its own: what does not hold, then what to do.
func refusals(t *testing.T, err error, lead string) []string {
	t.Helper()
	if err == nil {
		t.Fatalf("want a refusal (%s), got none", lead)
	}
	if driverPhrases.MatchString(err.Error()) {
		t.Errorf("a gate's refusal holds a driver's message:\n%v", err)
	}
	first, rest, ok := strings.Cut(err.Error(), ":\n  - ")
	if !ok || !strings.HasSuffix(first, lead) {
		t.Fatalf("refusal %q: want %q then one problem a line", err, lead)
	}
	problems := strings.Split(rest, "\n  - ")
	for _, p := range problems {
		if len(p) < 30 || !strings.Contains(p, ":") || strings.ToLower(p[:1]) != p[:1] {
			t.Errorf("problem %q: want a sentence naming what does not hold, a colon, then the fix", p)
		}
	}
	return problems
}

// hasProblem reports whether one of the problems contains want.
func hasProblem(problems []string, want string) bool {
	for _, p := range problems {
		if strings.Contains(p, want) {
			return true
		}
	}
	return false
}

// The gates of the switch and of the rollback at the earliest moments, on a control
// schema whose figures are still NULL: after the full load with no task running, then
// with change data capture streaming but no latency measured yet. Each refusal says
// what does not hold; none is a driver's message. Then, once the latency is measured,
// the tables never validated are validated in full before the block (a difference
// found there stops the switch before anyone is blocked), and the validation inside
// the downtime window compares only the rows changed since.
func TestSwitchGatesAtTheEarliestMoment(t *testing.T) {
	// Between the validation before the block and the block, three rows change.
	m := loadedMigration(t, notifyWrites(t, "UPDATE accounts SET balance = balance + 1 WHERE id <= 3"))
	ctx := context.Background()
	// A run recorded without its runbook document nor its downtime.
	m.tgt.Exec(t, "INSERT INTO cutover.runs (id, kind, started_at, ended_at, outcome) VALUES ('sw-old', 'switch', now() - interval '1 day', now() - interval '1 day', 'done')")

	conn := m.tgt.Conn(t)
	ctl, _, err := ReadControl(ctx, conn, "cutover")
	if err != nil {
		t.Fatal(err)
	}
	if run, err := readRun(ctx, conn, ctl, ""); err != nil || run == nil || run.ID != "sw-old" {
		t.Errorf("a run without its runbook document: %+v, %v", run, err)
	}

	// A table waiting to be copied again after a schema change that rewrote it.
	m.tgt.Exec(t, "UPDATE cutover.table_stats SET copy_pending = true WHERE table_name = 'accounts'")
	var out bytes.Buffer
	_, err = Switch(ctx, m.plan, m.switchOpts(&out))
	if !errors.Is(err, cutover.ErrGates) {
		t.Fatalf("switch after the full load: %v, want the gates to refuse\n%s", err, out.String())
	}
	m.tgt.Exec(t, "UPDATE cutover.table_stats SET copy_pending = false")
	problems := refusals(t, err, cutover.ErrGates.Error())
	for _, want := range []string{`the migration is in phase "loaded"`, "no cutover start is streaming the changes", "the target latency has not been measured yet",
		"public.accounts wait(s) to be copied again"} {
		if !hasProblem(problems, want) {
			t.Errorf("no problem says %q: %q", want, problems)
		}
	}
	// The plan tracks changes: once cutover start runs, the switch validates the
	// tables before the block, so not having validated them is no refusal.
	if hasProblem(problems, "not validated") {
		t.Errorf("tables not validated refused, though the plan tracks changes: %q", problems)
	}
	_, err = Switch(ctx, m.plan, cutover.Options{Out: &out, DryRun: true})
	if err == nil || !strings.Contains(err.Error(), "the target latency has not been measured yet") || driverPhrases.MatchString(err.Error()) {
		t.Errorf("switch --dry-run after the full load: %v", err)
	}
	_, err = Rollback(ctx, m.plan, m.switchOpts(&out))
	problems = refusals(t, err, "the rollback did not begin")
	if len(problems) != 1 || !hasProblem(problems, `the migration is in phase "loaded": only a switched migration rolls back`) {
		t.Errorf("rollback after the full load: %q", problems)
	}
	if _, _, err := ReadStatus(ctx, m.tgt.Conn(t), m.src.Conn(t), m.plan); err != nil {
		t.Errorf("status after the full load: %v", err)
	}

	// Change data capture streams, and has measured no latency yet: the state's
	// figures stay NULL while this trigger is there.
	m.tgt.Exec(t, `CREATE FUNCTION cutover.unmeasured() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN
		    NEW.source_latency := NULL; NEW.target_latency := NULL; NEW.pending := NULL; NEW.measured_at := NULL; RETURN NEW; END$$;
		CREATE TRIGGER unmeasured BEFORE UPDATE ON cutover.state FOR EACH ROW EXECUTE FUNCTION cutover.unmeasured()`)
	m.task = m.startStreaming(t)
	_, err = Switch(ctx, m.plan, m.switchOpts(&out))
	problems = refusals(t, err, cutover.ErrGates.Error())
	// The tables are not validated yet, and changes are tracked: the switch validates
	// them before the block, so that is no refusal.
	if len(problems) != 1 || !strings.HasPrefix(problems[0], "the target latency has not been measured yet: wait until cutover status shows a latency") {
		t.Errorf("switch as change data capture starts: %q, want only the latency", problems)
	}
	_, err = Rollback(ctx, m.plan, m.switchOpts(&out))
	if problems = refusals(t, err, "the rollback did not begin"); !hasProblem(problems, `the migration is in phase "cdc"`) {
		t.Errorf("rollback as change data capture starts: %q", problems)
	}

	// Measured: the gates hold. A row that differs is found before the block, and
	// the switch stops there: nobody was blocked.
	m.tgt.Exec(t, "DROP TRIGGER unmeasured ON cutover.state")
	m.task.waitTarget(t, m.tgt, "a latency measured", "SELECT coalesce(measured_at > now() - interval '3 seconds', false) FROM cutover.state")
	if err := m.writeAsApp(m.src, "UPDATE accounts SET balance = 41 WHERE id = 7"); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, m.src, m.tgt, m.task)
	m.tgt.Exec(t, "SET session_replication_role = replica; UPDATE accounts SET balance = 42 WHERE id = 7")
	out.Reset()
	res, err := Switch(ctx, m.plan, m.switchOpts(&out))
	if !errors.Is(err, cutover.ErrGates) || !strings.Contains(err.Error(), `the validation before the block found differences: "public"."accounts" (mismatched, 1 rows)`) ||
		driverPhrases.MatchString(err.Error()) {
		t.Fatalf("switch with a row that differs: %v\n%s", err, out.String())
	}
	if res.Run.Outcome != "not started" || res.Run.BlockedAt != nil || !m.canLogin(t, m.src) {
		t.Fatalf("a switch stopped before the block: outcome %q, blocked at %v, the application logs in to the source: %v", res.Run.Outcome, res.Run.BlockedAt, m.canLogin(t, m.src))
	}
	if got := pgtest.QueryVal[string](t, m.tgt, "SELECT phase FROM cutover.state"); got != control.PhaseCDC {
		t.Fatalf("phase %q after the validation before the block failed, want %q", got, control.PhaseCDC)
	}

	// Repaired, the switch goes through: nothing was validated before, so every table
	// gets its full pass before the block, and inside the window only changed rows.
	if rep, err := Validate(ctx, m.plan, validate.Options{Repair: true, Tables: []plan.Pattern{plan.MustPattern("public.accounts")}}); err != nil || !rep.Equal {
		t.Fatalf("repair: %v %+v", err, rep)
	}
	m.tgt.Exec(t, "UPDATE cutover.table_stats SET validation_state = 'pending', validated_at = NULL, validated_position = ''")
	out.Reset()
	res, err = Switch(ctx, m.plan, m.switchOpts(&out))
	if err != nil {
		t.Fatalf("switch: %v\n%s", err, out.String())
	}
	sameTables(t, m.src, m.tgt)
	before, inWindow := stepDetail(t, res.Run, "prevalidate"), stepDetail(t, res.Run, "validate")
	if !strings.Contains(before, "0 by their 0 changed rows, 5 in full") {
		t.Errorf("the validation before the block: %q, want every table in full", before)
	}
	var changed int
	if _, err := fmt.Sscanf(inWindow[strings.Index(inWindow, ": ")+2:], "5 by their %d changed rows", &changed); err != nil || changed < 3 || strings.Contains(inWindow, "in full") {
		t.Errorf("the validation inside the window: %q, want the changed rows of every table (the three the notify hook changed), none in full\n%s", inWindow, out.String())
	}
	if blocked := res.Run.BlockedAt; blocked == nil || stepRecord(t, res.Run, "prevalidate").Ended.After(*blocked) {
		t.Errorf("the validation before the block ended after the block (%v)", blocked)
	}
}

// notifyWrites is plan YAML with a notify hook that runs sql on the source as the
// switch begins: after the validation before the block, before the block. The hook's
// CUTOVER_SOURCE_URL has no password: {{src}} is the source's URL with it.
// more are other keys of cutover, each "key: value".
func notifyWrites(t *testing.T, sql string, more ...string) string {
	t.Helper()
	dir, err := pgtest.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`cutover: {%s hooks: {notify: ["test \"$CUTOVER_STEP\" = begin || exit 0; %s -v ON_ERROR_STOP=1 '{{src}}' -c '%s'"]}}`,
		strings.Join(append(more, ""), ", "), filepath.Join(dir, "psql"), sql)
}

func stepRecord(t *testing.T, r *cutover.Run, name string) *cutover.StepRecord {
	t.Helper()
	for _, s := range r.Steps {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no step %s in the run %s", name, r.ID)
	return nil
}

func stepDetail(t *testing.T, r *cutover.Run, name string) string {
	t.Helper()
	return stepRecord(t, r, name).Detail
}

// With validation.track_changes off, the switch says, in its dry run and its runbook,
// that the validate step is a full pass inside the downtime window, with how long the
// last one took once a switch has measured it; and it refuses tables never validated,
// whose first look would be inside the window.
func TestSwitchWithoutTrackedChanges(t *testing.T) {
	m := loadedMigration(t, "validation: {track_changes: false}")
	ctx := context.Background()
	m.task = m.start(t)
	var out bytes.Buffer
	_, err := Switch(ctx, m.plan, m.switchOpts(&out))
	if problems := refusals(t, err, cutover.ErrGates.Error()); !hasProblem(problems, "not validated yet: ") || !hasProblem(problems, "inside the downtime window") {
		t.Fatalf("switch of tables never validated, changes not tracked: %q", problems)
	}
	if _, err := Validate(ctx, m.plan, validate.Options{}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if _, err := Switch(ctx, m.plan, cutover.Options{Out: &out, DryRun: true}); err != nil {
		t.Fatalf("switch --dry-run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"validate every table in full, inside the downtime window (changes are not tracked)",
		"warning: cutover validate of EVERY TABLE IN FULL inside the downtime window: changes are not tracked (validation.track_changes: false in the plan); how long it takes is not known yet"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("switch --dry-run does not say %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	res, err := Switch(ctx, m.plan, m.switchOpts(&out))
	if err != nil {
		t.Fatalf("switch: %v\n%s", err, out.String())
	}
	if d := stepDetail(t, res.Run, "validate"); !strings.HasPrefix(d, fullPassDetail+" (changes are not tracked") || !strings.Contains(d, "5 in full") {
		t.Errorf("the validate step's detail: %q", d)
	}
	md, err := os.ReadFile(res.Markdown)
	if err != nil || !bytes.Contains(md, []byte("validate every table in full, inside the downtime window")) || !bytes.Contains(md, []byte(fullPassDetail)) {
		t.Errorf("the runbook %s does not say the validation was a full pass inside the window (%v):\n%s", filepath.Base(res.Markdown), err, md)
	}
	if _, err := Rollback(ctx, m.plan, m.switchOpts(&out)); err != nil {
		t.Fatalf("rollback: %v\n%s", err, out.String())
	}
	caughtUp(t, m.src, m.tgt, m.task) // forward again
	m.task.waitTarget(t, m.tgt, "a latency measured", "SELECT coalesce(measured_at > now() - interval '3 seconds', false) FROM cutover.state")
	out.Reset()
	if _, err := Switch(ctx, m.plan, cutover.Options{Out: &out, DryRun: true}); err != nil {
		t.Fatalf("switch --dry-run after a rehearsal: %v\n%s", err, out.String())
	}
	if want := "EVERY TABLE IN FULL inside the downtime window: changes are not tracked (validation.track_changes: false in the plan); it took "; !strings.Contains(out.String(), want+"") ||
		!strings.Contains(out.String(), " in the switch of "+res.Run.Started.UTC().Format("2006-01-02")) {
		t.Errorf("switch --dry-run after a rehearsal does not say how long the last full pass took:\n%s", out.String())
	}
}

// The passes before the block name each table with a key by a pattern that matches it
// alone, whatever its name holds.
func TestExactPattern(t *testing.T) {
	for _, n := range [][2]string{{"public", "accounts"}, {"Sales", "Order"}, {`my "s".x`, "a*b?c"}, {"s", "t"}} {
		p, err := plan.ParsePattern(validate.ExactPattern(n[0], n[1]))
		if err != nil {
			t.Fatalf("%q.%q: %v", n[0], n[1], err)
		}
		if !p.Match(n[0], n[1]) || p.Match(strings.ToLower(n[0])+"x", n[1]) || p.Match(n[0], n[1]+"x") || (n[1] == "a*b?c" && p.Match(n[0], "aXbYc")) {
			t.Errorf("%s matches more or less than %q.%q", p, n[0], n[1])
		}
	}
}
