package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/validate"
	"github.com/spf13/cobra"
)

func newValidateCmd(a *app) *cobra.Command {
	var asJSON, incremental, repair bool
	var tables []string
	cmd := &cobra.Command{
		Use:   "validate [--json] [--table PATTERN] [--incremental] [--repair]",
		Short: "Compare every migrated table between source and target, row by row where they differ",
		Long: `Compares the migrated tables between source and target. Each table is split into key
ranges; for each range both databases compute a row count and a hash of the rows
themselves, so equal ranges never leave the servers. Only the ranges that differ are
compared row by row. Each difference is MISSING_TARGET (the row is on the source only),
MISSING_SOURCE (on the target only) or RECORD_DIFF (different values; the columns are
named). They are printed and kept in the control schema's validation_failures table;
each table's validation state goes to table_stats.

A table without a primary key (or another unique key on NOT NULL columns) is compared
whole, as a multiset of rows; the rows that differ are found when it has at most a
million rows.

Validation works while changes flow. Each comparison reads the source in a snapshot,
writes a marker into the source's WAL and reads the target at the point where the
applier reached the marker. A transaction committing as the snapshot was taken can be
on the target at the marker and not in the snapshot: the applier checks what it
applied against the snapshot and names the tables such transactions changed; for
those, validate takes a new point (three tries). A row that differs (in a table
without a key: each differing row, counted on both sides) is read again at later
points and reported only if it stays different. When no cutover start is running,
validate runs change data capture itself meanwhile (and stops it after), so the
target has every change made on the source. When the change stream stops (cutover
start stopped or stopped on an error), validate says why and exits at once.

With --incremental, only the rows changed since each table's last validation are
compared, and those that differed then: the applier records the key of every row it
changes (validation_dirty, in the same transaction as the change). A table never
validated, truncated since, without a key, or with more than a tenth of its rows
changed gets a full pass.

With --repair, the rows that differ are copied again from the source through the
applier: a marker goes into the source's WAL, the rows are read in the snapshot taken
with it, and the applier, on reaching the marker, deletes the target's rows with those
keys and inserts the source's, in one transaction; the changes made after the marker
apply on top. The rows are then compared again (three tries). A table without a key
cannot be repaired row by row.

Exit status: 0 when every table is equal, 1 when a table differs or could not be
validated, 2 for a bad plan or flags, 3 when the validation could not run or finish
(the change stream stopped, SIGINT or SIGTERM).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, m, err := a.open(cmd.Name())
			if err != nil {
				return err
			}
			opts := validate.Options{Incremental: incremental, Repair: repair}
			for _, t := range tables {
				pt, err := plan.ParsePattern(t)
				if err != nil {
					return &ExitError{Code: ExitUsage, Err: fmt.Errorf("--table: %w", err)}
				}
				opts.Tables = append(opts.Tables, pt)
			}
			out := cmd.OutOrStdout()
			if !asJSON {
				opts.Progress = func(tv validate.TableReport) { printTableValidation(out, tv) }
			}
			rep, err := m.Validate(cmd.Context(), p, opts)
			if err != nil {
				if cmd.Context().Err() != nil {
					err = errors.New("interrupted: the validation stopped before it finished; the tables it finished are recorded (cutover status)")
				}
				return &ExitError{Code: ExitRuntime, Err: err}
			}
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				printValidationSummary(out, rep, p.ControlSchema)
			}
			if !rep.Equal {
				return &ExitError{Code: ExitFailed}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().BoolVar(&incremental, "incremental", false, "compare only the rows changed since each table's last validation")
	cmd.Flags().BoolVar(&repair, "repair", false, "copy the rows that differ again from the source, then compare them again")
	cmd.Flags().StringArrayVar(&tables, "table", nil, "validate only the tables matching this schema.table pattern (repeatable)")
	return cmd
}

// differencesShown is how many differences of a table the text report prints.
const differencesShown = 20

func printTableValidation(w io.Writer, tv validate.TableReport) {
	name := tv.Schema + "." + tv.Table
	switch tv.State {
	case control.ValidationError:
		fmt.Fprintf(w, "%-40s error: %s\n", name, tv.Error)
		return
	case control.ValidationValidated, control.ValidationNoKey:
		if tv.Repaired > 0 {
			fmt.Fprintf(w, "%-40s %-10s %d rows repaired, then equal, %.1fs\n", name, tv.State, tv.Repaired, tv.Seconds)
			return
		}
		if tv.Incremental {
			fmt.Fprintf(w, "%-40s %-10s %d changed rows compared, %.1fs\n", name, tv.State, tv.RowsRead, tv.Seconds)
			return
		}
		fmt.Fprintf(w, "%-40s %-10s %d rows, %d chunks, %.1fs\n", name, tv.State, tv.SourceRows, tv.Chunks, tv.Seconds)
		return
	}
	if tv.Incremental {
		fmt.Fprintf(w, "%-40s %-10s %d rows differ (%d changed rows compared), %.1fs\n", name, tv.State, tv.Mismatches, tv.RowsRead, tv.Seconds)
	} else {
		fmt.Fprintf(w, "%-40s %-10s %d rows differ (source %d rows, target %d; %d of %d chunks differ), %.1fs\n",
			name, tv.State, tv.Mismatches, tv.SourceRows, tv.TargetRows, tv.Differing, tv.Chunks, tv.Seconds)
	}
	if tv.Error != "" {
		fmt.Fprintf(w, "    %s\n", tv.Error)
	}
	key := "(" + strings.Join(tv.Key, ", ") + ")"
	if len(tv.Key) == 0 {
		key = "row"
	}
	for i, d := range tv.Differences {
		if i == differencesShown {
			fmt.Fprintf(w, "    ... and %d more\n", tv.Mismatches-int64(i))
			break
		}
		fmt.Fprintf(w, "    %-14s %s = (%s)\n", d.Kind, key, strings.Join(d.Key, ", "))
		for j, c := range d.Columns {
			fmt.Fprintf(w, "        %s: source %s, target %s\n", c, shortValue(d.Source[j]), shortValue(d.Target[j]))
		}
	}
}

// shortValue quotes a value for a terminal, cut to a readable length.
func shortValue(v *string) string {
	if v == nil {
		return "NULL"
	}
	s := *v
	if len(s) > 60 {
		return fmt.Sprintf("%q... (%d bytes)", s[:60], len(s))
	}
	return fmt.Sprintf("%q", s)
}

func printValidationSummary(w io.Writer, rep *validate.Report, controlSchema string) {
	var equal, differ, failed int
	for _, t := range rep.Tables {
		switch t.State {
		case control.ValidationValidated, control.ValidationNoKey:
			equal++
		case control.ValidationError:
			failed++
		default:
			differ++
		}
	}
	fmt.Fprintf(w, "\n%d tables validated in %.1fs: %d equal, %d differ, %d could not be validated",
		len(rep.Tables), rep.Took.Seconds(), equal, differ, failed)
	if !rep.Live {
		fmt.Fprint(w, " (no cutover start was running: validate ran change data capture itself meanwhile)")
	}
	fmt.Fprintln(w)
	if differ > 0 {
		fmt.Fprintf(w, "the differences are in %s.validation_failures\n", controlSchema)
	}
}
