package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/cutover-dev/cutover/internal/humanize"
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
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [--json]",
		Short: "Show where the migration stands (from the target's control schema)",
		Long: `Shows the phase, the slot and position the change stream starts from, and each
table's state, rows, throughput and the estimated time left. It reads the target's
control schema, so it works whether or not cutover start is running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := a.loadPlan()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			conn, err := postgres.Connect(ctx, p.Target)
			if err != nil {
				problem, fix := postgres.ConnectProblem("target", p.Target, err)
				return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%s\nfix: %s", problem, fix)}
			}
			defer conn.Close(ctx)
			ctl, ok, err := postgres.ReadControl(ctx, conn, p.ControlSchema)
			if err != nil {
				return err
			}
			s := status{Phase: "not started", Tables: []tableStatus{}}
			if ok {
				st, err := ctl.State(ctx)
				if err != nil {
					return err
				}
				s.Phase, s.Slot, s.Position, s.Updated = st.Phase, st.Slot, st.Position, &st.Updated
				stats, err := ctl.TableStats(ctx)
				if err != nil {
					return err
				}
				s.Tables, s.ETASeconds = summarize(stats, time.Now())
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			}
			return writeStatus(cmd, s)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

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

func writeStatus(cmd *cobra.Command, s status) error {
	w := cmd.OutOrStdout()
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
	fmt.Fprintln(tw, "\nTABLE\tSTATE\tROWS\tSIZE\tRATE/s")
	for _, t := range s.Tables {
		rate := ""
		if t.BytesPerSecond > 0 {
			rate = humanize.Bytes(int64(t.BytesPerSecond))
		}
		state := t.State
		if t.Error != "" {
			state += ": " + t.Error
		}
		fmt.Fprintf(tw, "%s.%s\t%s\t%d\t%s\t%s\n", t.Schema, t.Table, state, t.Rows, humanize.Bytes(t.Bytes), rate)
	}
	return tw.Flush()
}
