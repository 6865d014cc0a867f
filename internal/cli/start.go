package cli

import (
	"errors"
	"fmt"

	"github.com/cutover-dev/cutover/internal/progress"
	"github.com/cutover-dev/cutover/postgres"
	"github.com/spf13/cobra"
)

func newStartCmd(a *app) *cobra.Command {
	var fullLoadOnly bool
	cmd := &cobra.Command{
		Use:   "start [--full-load-only]",
		Short: "Copy the schema and data from one consistent snapshot (then replicate changes)",
		Long: `Runs the migration in the foreground: the schema's pre-data (types, functions, tables
with their primary keys, views), the tables copied in parallel from one consistent
snapshot taken with the replication slot the change stream will use, then the
post-data (secondary indexes, constraints, triggers, materialized views).

A rerun after a crash or Ctrl-C resumes: tables already loaded are kept, partly
loaded ones are copied again. On a terminal each table being copied has a live
progress bar; in a pipe or a log each event is a timestamped line. Progress is kept
in the target's control schema: cutover status shows it from another terminal.

Exit status: 0 when the full load is complete, 1 when it stopped on an error
(the message names the object and the fix), 2 for a bad plan or flags.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !fullLoadOnly {
				return &ExitError{Code: ExitUsage, Err: errors.New("change data capture is not in this version yet: run cutover start --full-load-only")}
			}
			p, err := a.loadPlan()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			err = postgres.FullLoad(cmd.Context(), p, postgres.StartOptions{Out: out, Display: progress.New(out, a.onTerminal(cmd))})
			if err != nil {
				if cmd.Context().Err() != nil {
					return &ExitError{Code: ExitFailed, Err: errors.New("interrupted: run cutover start --full-load-only again to resume")}
				}
				if errors.Is(err, postgres.ErrNotReady) {
					return &ExitError{Code: ExitFailed, Err: err}
				}
				return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%w\nthe load stopped: once the cause is fixed, run cutover start --full-load-only again to resume (tables already loaded are kept)", err)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&fullLoadOnly, "full-load-only", false, "stop after the full load and its post-data")
	return cmd
}
