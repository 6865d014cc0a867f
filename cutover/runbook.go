package cutover

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Outcome is how a step ended.
type Outcome string

// Step outcomes.
const (
	Running    Outcome = "running"
	Done       Outcome = "done"
	Failed     Outcome = "failed"
	Planned    Outcome = "dry run"
	Undone     Outcome = "undone"
	UndoFailed Outcome = "undo failed"
)

// StepRecord is one step of a run as the runbook keeps it.
type StepRecord struct {
	Seq      int        `json:"seq"`
	Name     string     `json:"step"`
	Title    string     `json:"title"`
	Started  time.Time  `json:"started_at"`
	Ended    *time.Time `json:"ended_at,omitempty"`
	Outcome  Outcome    `json:"outcome"`
	Detail   string     `json:"detail,omitempty"`
	Error    string     `json:"error,omitempty"`
	Operator bool       `json:"operator_time,omitempty"` // hooks, QA, approval: the operator's time
}

// Took is how long the step ran (so far).
func (s *StepRecord) Took() time.Duration {
	if s.Ended == nil {
		return 0
	}
	return s.Ended.Sub(s.Started)
}

// Run is one switch or rollback: its steps and the write downtime it caused.
type Run struct {
	ID      string     `json:"id"`
	Kind    string     `json:"kind"` // switch or rollback
	DryRun  bool       `json:"dry_run,omitempty"`
	Started time.Time  `json:"started_at"`
	Ended   *time.Time `json:"ended_at,omitempty"`
	// Outcome: running, done, dry run, rolled back, rollback incomplete, stopped, failed.
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
	// BlockedAt and UnlockedAt bound the write downtime: from the block of the old
	// side's users to their unlock on the new side (or back on the old side, when
	// the run was rolled back).
	BlockedAt  *time.Time `json:"blocked_at,omitempty"`
	UnlockedAt *time.Time `json:"unlocked_at,omitempty"`
	// Downtime is UnlockedAt - BlockedAt; ToolDowntime leaves out the operator's time
	// (their hooks, QA, the approval).
	Downtime     time.Duration `json:"-"`
	ToolDowntime time.Duration `json:"-"`
	// Expected is the downtime the last rehearsal measured, when there was one.
	Expected time.Duration `json:"-"`
	Steps    []*StepRecord `json:"steps"`
}

// measure sets the downtime figures from the step records.
func (r *Run) measure() {
	if r.BlockedAt == nil || r.UnlockedAt == nil {
		return
	}
	r.Downtime = r.UnlockedAt.Sub(*r.BlockedAt)
	r.ToolDowntime = r.Downtime
	for _, s := range r.Steps {
		if s.Operator && s.Ended != nil && !s.Started.Before(*r.BlockedAt) && !s.Ended.After(*r.UnlockedAt) {
			r.ToolDowntime -= s.Took()
		}
	}
}

// MarshalJSON writes durations in seconds.
func (r *Run) MarshalJSON() ([]byte, error) {
	type plain Run
	return json.Marshal(struct {
		*plain
		Downtime     *float64 `json:"downtime_seconds,omitempty"`
		ToolDowntime *float64 `json:"tool_downtime_seconds,omitempty"`
		Expected     *float64 `json:"expected_downtime_seconds,omitempty"`
	}{(*plain)(r), seconds(r.Downtime, r.UnlockedAt != nil), seconds(r.ToolDowntime, r.UnlockedAt != nil), seconds(r.Expected, r.Expected > 0)})
}

// UnmarshalJSON reads what MarshalJSON wrote, durations included.
func (r *Run) UnmarshalJSON(b []byte) error {
	type plain Run
	doc := struct {
		*plain
		Downtime     *float64 `json:"downtime_seconds"`
		ToolDowntime *float64 `json:"tool_downtime_seconds"`
		Expected     *float64 `json:"expected_downtime_seconds"`
	}{plain: (*plain)(r)}
	if err := json.Unmarshal(b, &doc); err != nil {
		return err
	}
	for _, d := range []struct {
		from *float64
		to   *time.Duration
	}{{doc.Downtime, &r.Downtime}, {doc.ToolDowntime, &r.ToolDowntime}, {doc.Expected, &r.Expected}} {
		if d.from != nil {
			*d.to = time.Duration(*d.from * float64(time.Second))
		}
	}
	return nil
}

func seconds(d time.Duration, ok bool) *float64 {
	if !ok {
		return nil
	}
	s := d.Seconds()
	return &s
}

// WriteMarkdown writes the runbook of a run for people.
func (r *Run) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	title := "Switch"
	if r.Kind == "rollback" {
		title = "Rollback"
	}
	fmt.Fprintf(&b, "# %s %s: %s\n\n", title, r.ID, r.Outcome)
	fmt.Fprintf(&b, "- started: %s\n", r.Started.UTC().Format(time.RFC3339Nano))
	if r.Ended != nil {
		fmt.Fprintf(&b, "- ended: %s (%v)\n", r.Ended.UTC().Format(time.RFC3339Nano), r.Ended.Sub(r.Started).Round(time.Millisecond))
	}
	if r.Reason != "" {
		fmt.Fprintf(&b, "- reason: %s\n", r.Reason)
	}
	if r.UnlockedAt != nil {
		fmt.Fprintf(&b, "- write downtime: %v (without the operator's hooks, QA and approval: %v)\n",
			r.Downtime.Round(time.Millisecond), r.ToolDowntime.Round(time.Millisecond))
	}
	if r.Expected > 0 {
		fmt.Fprintf(&b, "- expected downtime (last rehearsal): %v\n", r.Expected.Round(time.Millisecond))
	}
	b.WriteString("\n| # | step | started | took | outcome | detail |\n|---|---|---|---|---|---|\n")
	for _, s := range r.Steps {
		detail := s.Detail
		if s.Error != "" {
			detail = strings.TrimSpace(detail + " " + s.Error)
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %v | %s | %s |\n", s.Seq, s.Title, s.Started.UTC().Format("15:04:05.000"),
			s.Took().Round(time.Millisecond), s.Outcome, mdCell(detail))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", "<br>")
}
