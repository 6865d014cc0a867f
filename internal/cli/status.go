package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/internal/humanize"
	"github.com/cutover-dev/cutover/plan"
	"github.com/spf13/cobra"
)

type tableStatus struct {
	Schema         string     `json:"schema"`
	Table          string     `json:"table"`
	State          string     `json:"state"`
	Rows           int64      `json:"rows"`
	Bytes          int64      `json:"bytes"`
	EstimatedBytes int64      `json:"estimated_bytes"`
	Started        *time.Time `json:"started_at,omitempty"`
	Finished       *time.Time `json:"finished_at,omitempty"`
	BytesPerSecond float64    `json:"bytes_per_second"`
	Error          string     `json:"error,omitempty"`
	Inserts        int64      `json:"inserts"`
	Updates        int64      `json:"updates"`
	Deletes        int64      `json:"deletes"`
	Truncates      int64      `json:"truncates"`
	Validation     string     `json:"validation"`
	ValidatedAt    *time.Time `json:"validated_at,omitempty"`
	Mismatches     int64      `json:"validation_mismatches"`
}

type status struct {
	Phase           string              `json:"phase"`
	Mode            string              `json:"mode,omitempty"`
	Slot            string              `json:"slot,omitempty"`
	Position        string              `json:"position,omitempty"`
	Updated         *time.Time          `json:"updated_at,omitempty"`
	CDC             *control.CDCStatus  `json:"cdc,omitempty"`
	Source          *control.SlotStatus `json:"source,omitempty"`
	SourceError     string              `json:"source_error,omitempty"`
	ApplyExceptions int64               `json:"apply_exceptions"`
	Warnings        []string            `json:"warnings,omitempty"`
	Tables          []tableStatus       `json:"tables"`
	ETASeconds      *float64            `json:"eta_seconds,omitempty"`
	// Stands says in words where the migration stands.
	Stands      string                 `json:"stands"`
	Next        string                 `json:"next"`
	Replication string                 `json:"replication,omitempty"`
	Cutover     *control.CutoverStatus `json:"cutover,omitempty"`
	Sides       *control.SidesStatus   `json:"sides,omitempty"`
}

// stands says where the migration stands, for people.
func stands(st control.Status) string {
	if st.Mode == control.ModeCopy {
		switch st.Phase {
		case control.PhaseLoaded:
			return "a one-shot copy (cdc.enabled: false), complete: no change stream, nothing on the source"
		case control.PhaseFinishing, control.PhaseFinished:
		default:
			return "a one-shot copy (cdc.enabled: false): no replication slot, no change stream"
		}
	}
	switch st.Phase {
	case control.PhaseNew, control.PhaseSchema, control.PhaseLoading, control.PhasePostData, control.PhaseLoaded:
		return "" // the tables say it
	case control.PhaseCDC, control.PhaseRolledBack:
		prefix := "replicating source to target"
		if st.Phase == control.PhaseRolledBack {
			prefix = "rolled back: the source is live; replicating source to target"
		}
		if st.Source != nil && !st.Source.Active {
			return prefix + " (no cutover start is running: start it to resume)"
		}
		return prefix
	case control.PhaseSwitching:
		return "switching to the target" + currentStep(st)
	case control.PhaseSwitched:
		if st.Replication == control.ReplicateReverse {
			return "switched: the target is live; reverse replication sends its writes to the source"
		}
		return "switched: the target is live; reverse replication is " + st.Replication
	case control.PhaseRollingBack:
		return "rolling back to the source" + currentStep(st)
	case control.PhaseFinishing:
		return "finishing: cutover finish is stopping the task"
	case control.PhaseFinished:
		return "finished"
	}
	return ""
}

// nextStep says what the operator does next, or waits for.
func nextStep(st control.Status, p *plan.Plan) string {
	running := st.Source == nil || st.Source.Active
	switch st.Phase {
	case "not started":
		return "run cutover check, then cutover start"
	}
	if st.Mode == control.ModeCopy {
		switch st.Phase {
		case control.PhaseLoaded:
			return "nothing to switch: point the applications at the target; cutover validate compares (the source assumed quiet), cutover finish drops the control schema"
		case control.PhaseFinishing, control.PhaseFinished:
		default:
			return "wait for the copy (rerun cutover start if it stopped: it resumes); it exits when the copy is complete"
		}
	}
	switch st.Phase {
	case control.PhaseNew, control.PhaseSchema, control.PhaseLoading, control.PhasePostData, control.PhaseLoaded:
		return "wait for the full load; cutover start then goes on into change data capture (rerun it if it stopped: it resumes)"
	case control.PhaseCDC, control.PhaseRolledBack:
		if !running {
			return "run cutover start: change data capture is not running"
		}
		if st.ApplyExceptions > 0 {
			return fmt.Sprintf("resolve the %d apply exceptions (%s.apply_exceptions on the target), then set resolved", st.ApplyExceptions, p.ControlSchema)
		}
		var mismatched, pending []string
		for _, t := range st.Tables {
			switch t.Validation {
			case control.ValidationMismatched:
				mismatched = append(mismatched, t.Schema+"."+t.Table)
			case control.ValidationValidated, control.ValidationNoKey:
			default:
				pending = append(pending, t.Schema+"."+t.Table)
			}
		}
		switch {
		case len(mismatched) > 0:
			return fmt.Sprintf("repair the %d mismatched tables: cutover validate --repair", len(mismatched))
		case len(pending) > 0:
			return fmt.Sprintf("validate the %d tables not validated yet: cutover validate (or let validation.continuous do it)", len(pending))
		case st.CDC != nil && st.CDC.TargetLatencySeconds > p.Cutover.MaxLatency.D().Seconds():
			return fmt.Sprintf("wait for the target latency (%v) to fall below cutover.max_latency (%v)", seconds(st.CDC.TargetLatencySeconds), p.Cutover.MaxLatency.D())
		}
		return "ready to cut over: cutover switch --dry-run, then cutover switch"
	case control.PhaseSwitching:
		return "wait for the switch" + currentStep(st) + " (if its process died, rerun cutover switch: it picks the run up)"
	case control.PhaseRollingBack:
		return "wait for the rollback" + currentStep(st) + " (if its process died, rerun cutover rollback: it picks the run up)"
	case control.PhaseSwitched:
		return "the target is live: when the applications are sound, cutover finish --yes; to go back, cutover rollback"
	case control.PhaseFinishing:
		return "wait for the running cutover start to stop"
	case control.PhaseFinished:
		return "nothing: the migration is finished"
	}
	return ""
}

func currentStep(st control.Status) string {
	if c := st.Cutover; c != nil && c.LastRun != nil && c.LastRun.Step != "" {
		return ": " + c.LastRun.Step
	}
	return ""
}

// retainedWALWarning is the WAL a slot may hold on the source before status warns.
const retainedWALWarning = 1 << 30

// newStatusDoc turns what the control schema and the source say into the status shown.
func newStatusDoc(st control.Status, p *plan.Plan) status {
	s := status{Phase: st.Phase, Mode: st.Mode, Slot: st.Slot, Position: st.Position, Updated: st.Updated, CDC: st.CDC, Source: st.Source,
		ApplyExceptions: st.ApplyExceptions, Tables: []tableStatus{}, Stands: stands(st), Replication: st.Replication, Cutover: st.Cutover, Sides: st.Sides}
	if sd := st.Sides; sd != nil && !sd.Closed {
		s.Warnings = append(s.Warnings, sd.Open...)
	}
	if c := st.Cutover; c != nil && len(c.BlockedSource) > 0 && len(c.BlockedTarget) > 0 {
		s.Warnings = append(s.Warnings, fmt.Sprintf("roles are blocked on both sides: %s on the source, %s on the target: rerun the interrupted cutover switch or rollback, or give them their login back (ALTER ROLE ... LOGIN)",
			strings.Join(c.BlockedSource, ", "), strings.Join(c.BlockedTarget, ", ")))
	}
	if st.Tables != nil {
		s.Tables, s.ETASeconds = summarize(st.Tables, time.Now())
	}
	s.Next = nextStep(st, p)
	if st.Source != nil && st.Slot != "" && !st.Source.Exists {
		s.Warnings = append(s.Warnings, fmt.Sprintf("the slot %s is not on the source: the change stream cannot resume; the migration must start over (cutover finish, then cutover start)", st.Slot))
	}
	if st.Source != nil && st.Source.RetainedWALBytes > retainedWALWarning {
		s.Warnings = append(s.Warnings, fmt.Sprintf("the slot %s retains %s of WAL on the source: keep cutover start running (or finish the migration) before the source's disk fills",
			st.Slot, humanize.Bytes(st.Source.RetainedWALBytes)))
	}
	if st.ApplyExceptions > 0 {
		s.Warnings = append(s.Warnings, fmt.Sprintf("%d changes could not be applied: see %s.apply_exceptions on the target", st.ApplyExceptions, p.ControlSchema))
	}
	return s
}

func newStatusCmd(a *app) *cobra.Command {
	var (
		asJSON, watch bool
		interval      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status [--json] [--watch [--interval 2s]]",
		Short: "Show where the migration stands (from the target's control schema)",
		Long: `Shows the phase, the slot and position the change stream starts from, and each
table's state, rows, throughput and the estimated time left. It reads the target's
control schema, so it works whether or not cutover start is running.

On a terminal each table has a progress bar (its bytes copied against its size on
the source). --watch shows the status again every --interval until Ctrl-C: redrawn
in place on a terminal, one after another separated by a blank line in a pipe.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if watch && interval <= 0 {
				return &ExitError{Code: ExitUsage, Err: fmt.Errorf("--interval %v: it must be more than 0", interval)}
			}
			p, m, err := a.open(cmd.Name())
			if err != nil {
				return err
			}
			ctx, w, terminal := cmd.Context(), cmd.OutOrStdout(), a.onTerminal(cmd)
			show := func(w io.Writer, s status) error {
				if asJSON {
					enc := json.NewEncoder(w)
					enc.SetIndent("", "  ")
					return enc.Encode(s)
				}
				return writeStatus(w, s, terminal)
			}
			if !watch {
				s, err := readStatus(ctx, m, p)
				if err != nil {
					return err
				}
				return show(w, s)
			}
			return watchStatus(ctx, w, interval, terminal, func(w io.Writer) error {
				s, err := readStatus(ctx, m, p)
				if err != nil {
					return err
				}
				return show(w, s)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	cmd.Flags().BoolVar(&watch, "watch", false, "show the status again every --interval until Ctrl-C")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "how often --watch reads the status")
	return cmd
}

// readStatus reads the status from the target's control state, and the source's side
// when it answers.
func readStatus(ctx context.Context, m engine.StatusReader, p *plan.Plan) (status, error) {
	st, err := m.Status(ctx, p)
	if err != nil {
		var unreachable *engine.Unreachable
		if errors.As(err, &unreachable) {
			err = &ExitError{Code: ExitFailed, Err: err}
		}
		return status{Phase: "unknown", Tables: []tableStatus{}}, err
	}
	s := statusDoc(st, p)
	if mig, ok := m.(engine.Migration); ok {
		s.Next = runnable(s.Next, mig)
	}
	return s, nil
}

// runnable says so when the next step names a command the migration's engines do
// not run yet.
func runnable(next string, m engine.Migration) string {
	for _, c := range []string{"validate", "switch", "rollback"} {
		if strings.Contains(next, "cutover "+c) {
			if err := engine.Runs(m, c); err != nil {
				return next + " (" + err.Error() + ")"
			}
		}
	}
	return next
}

// statusDoc is the status as status --json, /api/status and the dashboard show it.
func statusDoc(st control.Status, p *plan.Plan) status {
	s := newStatusDoc(st, p)
	s.SourceError = st.SourceError
	return s
}

// watchStatus shows the status every interval until ctx ends (Ctrl-C), each time
// written whole at once: over the last one on a terminal, after a blank line in a pipe.
func watchStatus(ctx context.Context, w io.Writer, interval time.Duration, terminal bool, show func(io.Writer) error) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for first := true; ; first = false {
		var frame bytes.Buffer
		if terminal {
			fmt.Fprintf(&frame, "%scutover status every %v until Ctrl-C (%s)\n\n", clearScreen, interval, time.Now().Format("15:04:05"))
		} else if !first {
			frame.WriteString("\n")
		}
		if err := show(&frame); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if _, err := w.Write(frame.Bytes()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// clearScreen moves the cursor home and clears the screen (ANSI).
const clearScreen = "\x1b[H\x1b[2J"

// summarize adds throughput per table and an ETA from the overall rate so far.
func summarize(stats []control.TableStat, now time.Time) ([]tableStatus, *float64) {
	out := make([]tableStatus, len(stats))
	var doneBytes, leftBytes int64
	var first *time.Time
	// COPY's text is not the heap's size: the tables loaded so far say by how much.
	ratio, copied, heap := 1.0, int64(0), int64(0)
	for _, t := range stats {
		if t.State == control.TableLoaded && t.EstimatedBytes > 0 {
			copied, heap = copied+t.Bytes, heap+t.EstimatedBytes
		}
	}
	if copied > 0 && heap > 0 {
		ratio = float64(copied) / float64(heap)
	}
	for i, t := range stats {
		ts := tableStatus{Schema: t.Schema, Table: t.Table, State: t.State, Rows: t.Rows, Bytes: t.Bytes,
			EstimatedBytes: t.EstimatedBytes, Started: t.Started, Finished: t.Ended, Error: t.Error,
			Inserts: t.Inserts, Updates: t.Updates, Deletes: t.Deletes, Truncates: t.Truncates,
			Validation: t.Validation, ValidatedAt: t.ValidatedAt, Mismatches: t.ValidationMismatches}
		if t.Started != nil {
			end := now
			if t.Ended != nil {
				end = *t.Ended
			}
			if secs := end.Sub(*t.Started).Seconds(); secs > 0 {
				ts.BytesPerSecond = float64(t.Bytes) / secs
			}
			if first == nil || t.Started.Before(*first) {
				first = t.Started
			}
		}
		doneBytes += t.Bytes
		if t.State != control.TableLoaded {
			leftBytes += max(int64(float64(t.EstimatedBytes)*ratio)-t.Bytes, 0)
		}
		out[i] = ts
	}
	if first == nil || leftBytes == 0 || doneBytes == 0 {
		return out, nil
	}
	rate := float64(doneBytes) / now.Sub(*first).Seconds()
	eta := float64(leftBytes) / rate
	return out, &eta
}

// writeStatus prints the status as text; with bars (on a terminal) each table has a
// progress bar and a total row closes the table.
func writeStatus(w io.Writer, s status, bars bool) error {
	if s.Stands != "" {
		fmt.Fprintf(w, "phase: %s (%s)\n", s.Phase, s.Stands)
	} else {
		fmt.Fprintf(w, "phase: %s\n", s.Phase)
	}
	if s.Next != "" {
		fmt.Fprintf(w, "next: %s\n", s.Next)
	}
	if sd := s.Sides; sd != nil {
		other := "closed to the applications"
		if !sd.Closed {
			other = "OPEN to the applications too (see the warning)"
		}
		fmt.Fprintf(w, "live: the %s takes the applications' writes; the %s is %s\n", sd.Live, sd.Other, other)
	}
	if c := s.Cutover; c != nil {
		if r := c.LastRun; r != nil {
			fmt.Fprintf(w, "last %s: %s, %s", r.Kind, r.ID, r.Outcome)
			if r.DowntimeSeconds != nil {
				fmt.Fprintf(w, ", write downtime %v", seconds(*r.DowntimeSeconds))
			}
			if r.Reason != "" {
				fmt.Fprintf(w, " (%s)", r.Reason)
			}
			fmt.Fprintln(w)
		}
		if len(c.BlockedSource) > 0 {
			fmt.Fprintf(w, "blocked on the source: %s\n", strings.Join(c.BlockedSource, ", "))
		}
		if len(c.BlockedTarget) > 0 {
			fmt.Fprintf(w, "blocked on the target: %s\n", strings.Join(c.BlockedTarget, ", "))
		}
	}
	if s.Slot != "" {
		fmt.Fprintf(w, "slot: %s  position: %s\n", s.Slot, s.Position)
	}
	if s.ETASeconds != nil {
		fmt.Fprintf(w, "estimated time left: %v\n", (time.Duration(*s.ETASeconds) * time.Second).Round(time.Second))
	}
	if c := s.CDC; c != nil {
		fmt.Fprintf(w, "change data capture: applied up to %s", c.Applied)
		if c.AppliedCommitTime != nil {
			fmt.Fprintf(w, " (committed on the source %s)", c.AppliedCommitTime.Local().Format("2006-01-02 15:04:05"))
		}
		fmt.Fprintln(w)
		if c.MeasuredAt != nil {
			fmt.Fprintf(w, "latency: source %v, target %v; %d transactions pending (measured %s)\n",
				seconds(c.SourceLatencySeconds), seconds(c.TargetLatencySeconds), c.Pending, c.MeasuredAt.Local().Format("15:04:05"))
		}
		fmt.Fprintf(w, "apply exceptions: %d\n", s.ApplyExceptions)
	}
	if src := s.Source; src != nil && src.Exists {
		running := "no task is streaming from it"
		if src.Active {
			running = "cutover start is streaming from it"
		}
		fmt.Fprintf(w, "source slot: retains %s of WAL; %s\n", humanize.Bytes(src.RetainedWALBytes), running)
	}
	if s.SourceError != "" {
		fmt.Fprintf(w, "source: %s\n", s.SourceError)
	}
	for _, warn := range s.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	if len(s.Tables) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	cdcCols := s.CDC != nil
	switch {
	case cdcCols:
		fmt.Fprintln(tw, "\nTABLE\tSTATE\tROWS\tSIZE\tINSERTS\tUPDATES\tDELETES\tTRUNCATES\tVALIDATION")
	case bars:
		fmt.Fprintln(tw, "\nTABLE\tPROGRESS\tSTATE\tROWS\tSIZE\tRATE/s")
	default:
		fmt.Fprintln(tw, "\nTABLE\tSTATE\tROWS\tSIZE\tRATE/s")
	}
	var total struct{ rows, bytes, done, estimated, loaded int64 }
	for _, t := range s.Tables {
		rate := ""
		if t.BytesPerSecond > 0 {
			rate = humanize.Bytes(int64(t.BytesPerSecond))
		}
		state := t.State
		if t.Error != "" {
			state += ": " + t.Error
		}
		if cdcCols {
			fmt.Fprintf(tw, "%s.%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\n", t.Schema, t.Table, state, t.Rows, humanize.Bytes(t.Bytes),
				t.Inserts, t.Updates, t.Deletes, t.Truncates, validationText(t))
			continue
		}
		if !bars {
			fmt.Fprintf(tw, "%s.%s\t%s\t%d\t%s\t%s\n", t.Schema, t.Table, state, t.Rows, humanize.Bytes(t.Bytes), rate)
			continue
		}
		fmt.Fprintf(tw, "%s.%s\t%s\t%s\t%d\t%s\t%s\n", t.Schema, t.Table, bar(tablePercent(t)), state, t.Rows, humanize.Bytes(t.Bytes), rate)
		total.rows += t.Rows
		total.bytes += t.Bytes
		total.estimated += max(t.EstimatedBytes, 0)
		if t.State == control.TableLoaded {
			total.loaded++
			total.done += max(t.EstimatedBytes, 0)
		} else {
			total.done += min(t.Bytes, max(t.EstimatedBytes, 0))
		}
	}
	if bars && !cdcCols {
		pct := int64(100)
		if total.loaded < int64(len(s.Tables)) {
			pct = 0
			if total.estimated > 0 {
				pct = min(total.done*100/total.estimated, 99)
			}
		}
		fmt.Fprintf(tw, "total\t%s\t%d/%d loaded\t%d\t%s\t\n", bar(pct), total.loaded, len(s.Tables), total.rows, humanize.Bytes(total.bytes))
	}
	return tw.Flush()
}

// tablePercent is how much of a table is copied, from its bytes so far and its size
// on the source; COPY's text is not the size of the heap, so it stays below 100 until
// the table is loaded.
// validationText is a table's validation state, with the rows that differed.
func validationText(t tableStatus) string {
	if t.Validation == control.ValidationMismatched {
		return fmt.Sprintf("%s (%d rows)", t.Validation, t.Mismatches)
	}
	return t.Validation
}

func tablePercent(t tableStatus) int64 {
	switch {
	case t.State == control.TableLoaded:
		return 100
	case t.EstimatedBytes <= 0:
		return 0
	}
	return min(t.Bytes*100/t.EstimatedBytes, 99)
}

// bar draws a percentage: [##########----------]  50%.
func bar(pct int64) string {
	const width = 20
	n := int(pct * width / 100)
	return "[" + strings.Repeat("#", n) + strings.Repeat("-", width-n) + "]" + fmt.Sprintf(" %3d%%", pct)
}

func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond)
}
