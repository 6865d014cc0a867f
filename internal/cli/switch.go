package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"

	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/plan"
	"github.com/spf13/cobra"
)

const switchHelp = `Runs the cut over as gated steps, each printed live with its duration:

   1. gates: change data capture runs and the target latency, measured lately,
      is below cutover.max_latency; no unresolved apply exception; the last
      validation found no table different (with validation.track_changes:
      false, every table must have been validated); reverse replication can
      start on the target; the roles to block exist on the target. A failed
      gate changes nothing.
   2. prevalidate: before the block, while the users still write, an
      incremental validation: each table never validated (after the load,
      after a rollback) or not tracked since gets its full pass here, the
      others their changed rows; then passes over what changed meanwhile
      while a pass takes more than 300ms (at most 5). A difference stops the
      switch here, nobody blocked. With validation.track_changes: false it
      does nothing, and says that step 8 is a full pass inside the downtime
      window.
   3. publications: reverse replication's publications are created on the
      target, before the block (their table locks may wait for autovacuum).
   4. notify: the notify hooks and the webhooks, with the downtime the last
      switch measured.
   5. block: every login role of the source but the exempt ones and the
      migration's own loses its login and its sessions end (or, with
      cutover.block: read_only, the database turns read-only). What was changed
      is recorded in the control schema first.
   6. jobs: the source's pg_cron jobs of its database are set inactive; the
      suspend_jobs hooks run.
   7. sync: a marker written into the source's WAL after the block; the step
      ends when the target has applied it (cutover.sync_timeout).
   8. validate: the rows changed since step 2 (every table in full when
      changes are not tracked).
   9. stop: replication stops.
  10. sequences: every sequence of the migrated schemas is set on the target
      from the source (plus cutover.sequence_headroom).
  11. objects: the target's indexes valid, constraints validated, triggers
      enabled as on the source.
  12. reverse: reverse replication starts, target to source, from the target's
      position now (cutover start runs it), so the source keeps every write
      made on the target and a rollback loses none.
  13. switch: the switch hooks repoint the applications (CUTOVER_TARGET_URL...).
  14. qa: the plan's QA queries (each must return true) and commands, then the
      approval when cutover.approval is set (cutover approve, or --yes).
  15. unlock: the blocked roles log in to the target; the suspended jobs are
      scheduled there; the resume_jobs hooks run.
  16. done: notify; the runbook is written.

The write downtime runs from the block to the unlock. When cutover.max_downtime
runs out before the unlock, or a step before it fails, the switch rolls back by
itself: the steps done are undone, last first (the source's users and jobs as
they were, the applications switched back, replication resumed). After the
unlock it never rolls back by itself: it stops and says what holds.

--dry-run prints every step and every statement it would run, and changes
nothing. A switch interrupted by a crash is picked up by the next cutover switch:
undone before the unlock, finished after it.

The runbook (every step's start, end and outcome, and the downtime) is kept in the
control schema (runs, runbook) and written as cutover-runbook-ID.md and .json.

Between MySQL/MariaDB servers the same steps run with MySQL's means: the block
locks the accounts that may write to the migrated tables (ACCOUNT LOCK) and ends
their sessions; the jobs are the database's events; the sync marker is a row of
the control database's sync_markers read back through the binary log; sequences
are the auto-increment counters, raised where lower; the triggers move to the
side the applications write to; reverse replication reads the target's binary
log. The guide's MySQL section says each.

Exit status: 0 when the target is live, 1 when the switch did not happen (a gate
failed, or it was rolled back) or stopped after the unlock, 2 for a bad plan or
flags, 3 when it could not run.`

func newSwitchCmd(a *app) *cobra.Command {
	var dry, yes, asJSON bool
	var dir string
	cmd := &cobra.Command{
		Use:   "switch [--dry-run] [--yes] [--json] [--runbook-dir DIR]",
		Short: "Cut over to the target: block, sync, validate, reverse replication, switch, QA, unlock",
		Long:  switchHelp,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runSwitch(cmd, engine.Migration.Switch, cutover.Options{DryRun: dry, Yes: yes, RunbookDir: dir}, asJSON)
		},
	}
	cmd.Flags().BoolVar(&dry, "dry-run", false, "print every step and statement, change nothing")
	cmd.Flags().BoolVar(&yes, "yes", false, "approve in advance (cutover.approval)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the runbook as JSON at the end (the steps still print to stderr)")
	cmd.Flags().StringVar(&dir, "runbook-dir", ".", "where to write the runbook files")
	return cmd
}

func newRollbackCmd(a *app) *cobra.Command {
	var dry, asJSON bool
	var dir string
	cmd := &cobra.Command{
		Use:   "rollback [--dry-run] [--json] [--runbook-dir DIR]",
		Short: "Go back to the source after a switch, with the writes made on the target",
		Long: `Returns a switched migration to the source, as gated steps:

  1. gates: the migration is switched, reverse replication's slot is there.
  2. notify.
  3. block the target's users (as the switch blocked the source's).
  4. suspend the target's pg_cron jobs; suspend_jobs hooks.
  5. sync: a marker written into the target's WAL; the step ends when reverse
     replication has applied it to the source (cutover start runs it; without
     one, the rollback runs it for the while).
  6. stop reverse replication.
  7. sequences: set on the source from the target.
  8. switch_back hooks repoint the applications to the source.
  9. unlock the source: its users log in again, its jobs resume.
 10. drop reverse replication's slot and publications; forward replication
     resumes (skipping what reverse replication wrote), so a later cutover switch
     can try again.
 11. notify; the runbook.

Before the unlock, a failed step undoes the rollback: the target stays live.

Between MySQL/MariaDB servers: the target's accounts are locked, its events
disabled; the source gets its triggers back at the unlock, and forward
replication goes on from the source's position recorded there.

Exit status: 0 when the source is live again, 1 when the rollback did not happen
or stopped after the unlock, 2 for a bad plan or flags, 3 when it could not run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runSwitch(cmd, engine.Migration.Rollback, cutover.Options{DryRun: dry, RunbookDir: dir}, asJSON)
		},
	}
	cmd.Flags().BoolVar(&dry, "dry-run", false, "print every step and statement, change nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the runbook as JSON at the end")
	cmd.Flags().StringVar(&dir, "runbook-dir", ".", "where to write the runbook files")
	return cmd
}

type switchFunc func(engine.Migration, context.Context, *plan.Plan, cutover.Options) (*cutover.Result, error)

func (a *app) runSwitch(cmd *cobra.Command, run switchFunc, opts cutover.Options, asJSON bool) error {
	p, m, err := a.open(cmd.Name())
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	opts.Out = out
	if asJSON {
		opts.Out = cmd.ErrOrStderr()
	}
	if opts.RunbookDir != "" {
		if err := os.MkdirAll(opts.RunbookDir, 0o755); err != nil {
			return &ExitError{Code: ExitUsage, Err: fmt.Errorf("--runbook-dir: %w", err)}
		}
	}
	// An interrupt during the downtime must roll back, not leave the users blocked:
	// the runner undoes with a context of its own.
	res, err := run(m, cmd.Context(), p, opts)
	if asJSON && res != nil {
		if jerr := writeJSON(out, res.Run); jerr != nil {
			return jerr
		}
	}
	if err == nil {
		return nil
	}
	var rb *cutover.RolledBack
	var st *cutover.Stopped
	switch {
	case errors.As(err, &rb), errors.As(err, &st), errors.Is(err, cutover.ErrGates), res != nil:
		return &ExitError{Code: ExitFailed, Err: err}
	}
	return &ExitError{Code: ExitRuntime, Err: err}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newApproveCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "approve [--json]",
		Short: "Approve the running switch (cutover.approval): the users are unlocked on the target",
		Long: `With cutover.approval: true, a switch waits after its QA step for an operator to
approve it (the downtime budget keeps counting). cutover approve, from another
terminal, approves the running switch.

Exit status: 0 when approved, 1 when no switch is waiting, 2 for a bad plan.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, m, err := a.open(cmd.Name())
			if err != nil {
				return err
			}
			by := "unknown"
			if u, err := user.Current(); err == nil {
				by = u.Username
			}
			if h, err := os.Hostname(); err == nil {
				by += "@" + h
			}
			id, err := m.Approve(cmd.Context(), p, by)
			if err != nil {
				return &ExitError{Code: ExitFailed, Err: err}
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), map[string]string{"run_id": id, "approved_by": by})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "approved switch %s (as %s)\n", id, by)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the approved run as JSON")
	return cmd
}
