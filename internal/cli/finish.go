package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newFinishCmd(a *app) *cobra.Command {
	var yes, keepControl, asJSON bool
	cmd := &cobra.Command{
		Use:   "finish --yes [--keep-control] [--json]",
		Short: "End the migration: stop the task, drop the slot, publications and control schema",
		Long: `Ends the migration. A running cutover start is asked to stop (it does within a few
seconds, cleanly), then the replication slot and the publications are dropped on the
source, so it keeps no more WAL for the migration, and the control schema is dropped
on the target (--keep-control keeps it, with the phase "finished"). The target's
tables and data stay as they are; nothing is replicated any more.

It asks for --yes: once the slot is gone the change stream cannot resume.

With --json it prints {"finished": true|false, "actions": [what it did, in order],
"error": "..."} for scripts.

Exit status: 0 when finished, 1 when a step failed (the message says what to do),
2 for a bad plan or flags.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, m, err := a.open(cmd.Name())
			if err != nil {
				return err
			}
			if !yes {
				return &ExitError{Code: ExitUsage, Err: fmt.Errorf("cutover finish drops the migration's replication slot on the source (the change stream cannot resume after it) and the control schema %s on the target: run cutover finish --yes to do it",
					p.ControlSchema)}
			}
			if !asJSON {
				if err := m.Finish(cmd.Context(), p, cmd.OutOrStdout(), keepControl); err != nil {
					return &ExitError{Code: ExitFailed, Err: err}
				}
				return nil
			}
			var said strings.Builder
			err = m.Finish(cmd.Context(), p, &said, keepControl)
			doc := struct {
				Finished bool     `json:"finished"`
				Actions  []string `json:"actions"`
				Error    string   `json:"error,omitempty"`
			}{Finished: err == nil, Actions: strings.FieldsFunc(said.String(), func(r rune) bool { return r == '\n' })}
			if err != nil {
				doc.Error = err.Error()
			}
			if doc.Actions == nil {
				doc.Actions = []string{}
			}
			if werr := writeJSON(cmd.OutOrStdout(), doc); werr != nil {
				return werr
			}
			if err != nil {
				return &ExitError{Code: ExitFailed, Err: err}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "really end the migration")
	cmd.Flags().BoolVar(&keepControl, "keep-control", false, "keep the control schema on the target")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print what it did as JSON")
	return cmd
}
