package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cutover-dev/cutover/internal/humanize"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/postgres"
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
}

type status struct {
	Phase      string        `json:"phase"`
	Slot       string        `json:"slot,omitempty"`
	Position   string        `json:"position,omitempty"`
	Updated    *time.Time    `json:"updated_at,omitempty"`
	Tables     []tableStatus `json:"tables"`
	ETASeconds *float64      `json:"eta_seconds,omitempty"`
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
			p, err := a.loadPlan()
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
				s, err := readStatus(ctx, p)
				if err != nil {
					return err
				}
				return show(w, s)
			}
			return watchStatus(ctx, w, interval, terminal, func(w io.Writer) error {
				s, err := readStatus(ctx, p)
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

// readStatus reads the status from the target's control schema.
func readStatus(ctx context.Context, p *plan.Plan) (status, error) {
	s := status{Phase: "not started", Tables: []tableStatus{}}
	conn, err := postgres.Connect(ctx, p.Target)
	if err != nil {
		problem, fix := postgres.ConnectProblem("target", p.Target, err)
		return s, &ExitError{Code: ExitFailed, Err: fmt.Errorf("%s\nfix: %s", problem, fix)}
	}
	defer conn.Close(context.WithoutCancel(ctx))
	ctl, ok, err := postgres.ReadControl(ctx, conn, p.ControlSchema)
	if err != nil || !ok {
		return s, err
	}
	st, err := ctl.State(ctx)
	if err != nil {
		return s, err
	}
	s.Phase, s.Slot, s.Position, s.Updated = st.Phase, st.Slot, st.Position, &st.Updated
	stats, err := ctl.TableStats(ctx)
	if err != nil {
		return s, err
	}
	s.Tables, s.ETASeconds = summarize(stats, time.Now())
	return s, nil
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
func summarize(stats []postgres.TableStat, now time.Time) ([]tableStatus, *float64) {
	out := make([]tableStatus, len(stats))
	var doneBytes, leftBytes int64
	var first *time.Time
	for i, t := range stats {
		ts := tableStatus{Schema: t.Schema, Table: t.Table, State: t.State, Rows: t.Rows, Bytes: t.Bytes,
			EstimatedBytes: t.EstimatedBytes, Started: t.Started, Finished: t.Ended, Error: t.Error}
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
		if t.State != postgres.TableLoaded {
			leftBytes += max(t.EstimatedBytes-t.Bytes, 0)
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
	fmt.Fprintf(w, "phase: %s\n", s.Phase)
	if s.Slot != "" {
		fmt.Fprintf(w, "slot: %s  position: %s\n", s.Slot, s.Position)
	}
	if s.ETASeconds != nil {
		fmt.Fprintf(w, "estimated time left: %v\n", (time.Duration(*s.ETASeconds) * time.Second).Round(time.Second))
	}
	if len(s.Tables) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	if bars {
		fmt.Fprintln(tw, "\nTABLE\tPROGRESS\tSTATE\tROWS\tSIZE\tRATE/s")
	} else {
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
		if !bars {
			fmt.Fprintf(tw, "%s.%s\t%s\t%d\t%s\t%s\n", t.Schema, t.Table, state, t.Rows, humanize.Bytes(t.Bytes), rate)
			continue
		}
		fmt.Fprintf(tw, "%s.%s\t%s\t%s\t%d\t%s\t%s\n", t.Schema, t.Table, bar(tablePercent(t)), state, t.Rows, humanize.Bytes(t.Bytes), rate)
		total.rows += t.Rows
		total.bytes += t.Bytes
		total.estimated += max(t.EstimatedBytes, 0)
		if t.State == postgres.TableLoaded {
			total.loaded++
			total.done += max(t.EstimatedBytes, 0)
		} else {
			total.done += min(t.Bytes, max(t.EstimatedBytes, 0))
		}
	}
	if bars {
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
func tablePercent(t tableStatus) int64 {
	switch {
	case t.State == postgres.TableLoaded:
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
