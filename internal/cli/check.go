package cli

import (
	"time"

	"github.com/cutover-dev/cutover/engine"
	"github.com/spf13/cobra"
)

func newCheckCmd(a *app) *cobra.Command {
	var asJSON bool
	var longTx time.Duration
	cmd := &cobra.Command{
		Use:   "check [--json]",
		Short: "Assess whether the source and target are ready for the migration",
		Long: `Premigration assessment: connects to both databases and reports every finding
with its severity (error, warning, info), the object it is about, and the exact fix.

Exit status: 0 when there is no error finding, 1 when there is one, 2 for a bad
plan file or flags.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, m, err := a.open(cmd.Name())
			if err != nil {
				return err
			}
			report := m.Assess(cmd.Context(), p, engine.AssessOptions{LongTransaction: longTx})
			if asJSON {
				err = report.WriteJSON(cmd.OutOrStdout())
			} else {
				err = report.WriteText(cmd.OutOrStdout())
			}
			if err != nil {
				return err
			}
			if report.Failed() {
				return &ExitError{Code: ExitFailed}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().DurationVar(&longTx, "long-transaction", time.Minute, "report source transactions open longer than this")
	return cmd
}
