package stat

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Runbook is what the switch benchmarks read of cutover switch --json.
type Runbook struct {
	Outcome  string    `json:"outcome"`
	Reason   string    `json:"reason"`
	Blocked  time.Time `json:"blocked_at"`
	Unlocked time.Time `json:"unlocked_at"`
	Downtime float64   `json:"downtime_seconds"`
	Steps    []struct {
		Name    string     `json:"step"`
		Started time.Time  `json:"started_at"`
		Ended   *time.Time `json:"ended_at"`
		Detail  string     `json:"detail"`
	} `json:"steps"`
}

// Windows gathers, over a benchmark's switches, the write downtimes and how long
// each step inside the window (block to unlock) took.
type Windows struct {
	Downtimes []time.Duration
	steps     map[string][]time.Duration
	order     []string
}

// Add takes one switch's runbook: its write downtime, and its steps inside the
// window as "name took, ..." in their order.
func (w *Windows) Add(rb Runbook) (time.Duration, string) {
	if w.steps == nil {
		w.steps = map[string][]time.Duration{}
	}
	d := time.Duration(rb.Downtime * float64(time.Second))
	w.Downtimes = append(w.Downtimes, d)
	var inside []string
	for _, st := range rb.Steps {
		if st.Ended == nil || st.Started.Before(rb.Blocked) || st.Ended.After(rb.Unlocked) {
			continue
		}
		took := st.Ended.Sub(st.Started)
		if _, ok := w.steps[st.Name]; !ok {
			w.order = append(w.order, st.Name)
		}
		w.steps[st.Name] = append(w.steps[st.Name], took)
		inside = append(inside, fmt.Sprintf("%s %v", st.Name, took.Round(time.Millisecond)))
	}
	return d, strings.Join(inside, ", ")
}

// Steps lists the steps inside the window by their median time, longest first.
func (w *Windows) Steps() string {
	order := slices.Clone(w.order)
	slices.SortStableFunc(order, func(x, y string) int { return int(Median(w.steps[y]) - Median(w.steps[x])) })
	per := make([]string, len(order))
	for i, n := range order {
		per[i] = fmt.Sprintf("%s %v", n, Median(w.steps[n]).Round(time.Millisecond))
	}
	return strings.Join(per, ", ")
}
