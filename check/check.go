// Package check holds the premigration assessment's findings and their reports.
//
// The findings are engine-neutral: an engine (postgres/ today, mysql/ later)
// inspects the source and target and reports what stands in the migration's way,
// each with the object it is about and the exact fix.
package check

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Severity ranks a finding.
type Severity string

// The severities, most severe first.
const (
	Error   Severity = "error"   // the migration cannot run (or would lose data) until fixed
	Warning Severity = "warning" // it can run, but something needs a decision or will hurt
	Info    Severity = "info"    // worth knowing
)

func (s Severity) rank() int {
	switch s {
	case Error:
		return 0
	case Warning:
		return 1
	}
	return 2
}

// Finding is one result of the assessment.
type Finding struct {
	Severity Severity `json:"severity"`
	// Check names the assessment that produced it, e.g. "replica_identity".
	Check string `json:"check"`
	// Object is what the finding is about: `source`, `table public.country`, `role migrator`.
	Object string `json:"object"`
	// Problem says what is wrong (or, for info, what is so).
	Problem string `json:"problem"`
	// Fix is the exact SQL or setting that resolves it; empty for info.
	Fix string `json:"fix,omitempty"`
}

// Endpoint describes one side as the assessment saw it.
type Endpoint struct {
	URL     string `json:"url"`              // password masked
	Engine  string `json:"engine,omitempty"` // the server's kind: PostgreSQL, MySQL, MariaDB
	Version string `json:"version,omitempty"`
}

// Report is the outcome of an assessment.
type Report struct {
	Source   Endpoint  `json:"source"`
	Target   Endpoint  `json:"target"`
	Findings []Finding `json:"findings"`
	Counts   Counts    `json:"counts"`
	// Mapping is how a migration between two engines makes the source's tables on
	// the target; nil between servers of one engine.
	Mapping *Mapping `json:"mapping,omitempty"`
}

// Mapping is how each of the source's tables is made on a target of another engine,
// column by column.
type Mapping struct {
	Tables []TableMapping `json:"tables"`
}

// TableMapping is one table's.
type TableMapping struct {
	Source  string          `json:"source"`
	Target  string          `json:"target"`
	Columns []ColumnMapping `json:"columns"`
}

// ColumnMapping is one column's: its name and type on each side, and what changes
// on the way (a NOT NULL relaxed, a collation that compares otherwise).
type ColumnMapping struct {
	Source     string `json:"source"`
	SourceType string `json:"source_type"`
	Target     string `json:"target"`
	TargetType string `json:"target_type"`
	Note       string `json:"note,omitempty"`
}

// Counts tallies findings by severity.
type Counts struct {
	Errors   int `json:"errors"`
	Warnings int `json:"warnings"`
	Infos    int `json:"infos"`
}

// Add appends a finding.
func (r *Report) Add(f Finding) { r.Findings = append(r.Findings, f) }

// Finish sorts the findings (most severe first, stable within a severity) and counts them.
func (r *Report) Finish() {
	sort.SliceStable(r.Findings, func(i, j int) bool { return r.Findings[i].Severity.rank() < r.Findings[j].Severity.rank() })
	r.Counts = Counts{}
	for _, f := range r.Findings {
		switch f.Severity {
		case Error:
			r.Counts.Errors++
		case Warning:
			r.Counts.Warnings++
		default:
			r.Counts.Infos++
		}
	}
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
}

// Failed reports whether any finding is an error.
func (r *Report) Failed() bool { return r.Counts.Errors > 0 }

// Has reports whether the report holds a finding of the given check about object.
func (r *Report) Has(check, object string) bool { return r.Find(check, object) != nil }

// Find returns the first finding of the given check about object ("" matches any object).
func (r *Report) Find(check, object string) *Finding {
	for i, f := range r.Findings {
		if f.Check == check && (object == "" || f.Object == object) {
			return &r.Findings[i]
		}
	}
	return nil
}

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for a person at a terminal.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "source: %s", r.Source.URL)
	if r.Source.Version != "" {
		fmt.Fprintf(&b, " (%s %s)", r.Source.Engine, r.Source.Version)
	}
	fmt.Fprintf(&b, "\ntarget: %s", r.Target.URL)
	if r.Target.Version != "" {
		fmt.Fprintf(&b, " (%s %s)", r.Target.Engine, r.Target.Version)
	}
	b.WriteString("\n\n")
	if r.Mapping != nil {
		r.Mapping.writeText(&b)
	}
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "%-7s  %s\n", strings.ToUpper(string(f.Severity)), f.Object)
		writeIndented(&b, "", wrap(f.Problem, 90))
		if f.Fix != "" {
			writeIndented(&b, "fix: ", f.Fix)
		}
		b.WriteString("\n")
	}
	verdict := "ready: no errors"
	if r.Failed() {
		verdict = "not ready: fix the errors above and run cutover check again"
	}
	fmt.Fprintf(&b, "%d error(s), %d warning(s), %d info; %s\n", r.Counts.Errors, r.Counts.Warnings, r.Counts.Infos, verdict)
	_, err := io.WriteString(w, b.String())
	return err
}

// wrap breaks text into lines of at most width runes at spaces.
func wrap(text string, width int) string {
	var out []string
	for _, para := range strings.Split(text, "\n") {
		line := ""
		for _, word := range strings.Fields(para) {
			if line != "" && len([]rune(line))+1+len([]rune(word)) > width {
				out = append(out, line)
				line = word
				continue
			}
			if line != "" {
				line += " "
			}
			line += word
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

func writeIndented(b *strings.Builder, label, text string) {
	const indent = "         "
	for i, line := range strings.Split(text, "\n") {
		if i == 0 {
			fmt.Fprintf(b, "%s%s%s\n", indent, label, line)
		} else {
			fmt.Fprintf(b, "%s%s%s\n", indent, strings.Repeat(" ", len(label)), line)
		}
	}
}

// ErrNotReady is returned when the assessment found errors before anything changed.
var ErrNotReady = errors.New("cutover check found errors (above): fix them, then run cutover start again")

// writeText writes the mapping table by table, a column a line, aligned.
func (m *Mapping) writeText(b *strings.Builder) {
	for _, t := range m.Tables {
		fmt.Fprintf(b, "table %s -> %s\n", t.Source, t.Target)
		var w [3]int
		for _, c := range t.Columns {
			w[0], w[1], w[2] = max(w[0], len(c.Source)), max(w[1], len(c.SourceType)), max(w[2], len(c.Target))
		}
		for _, c := range t.Columns {
			line := fmt.Sprintf("  %-*s  %-*s  -> %-*s  %s", w[0], c.Source, w[1], c.SourceType, w[2], c.Target, c.TargetType)
			if c.Note != "" {
				line += "  (" + c.Note + ")"
			}
			b.WriteString(line + "\n")
		}
		b.WriteString("\n")
	}
}
