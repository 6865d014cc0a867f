// Package cli wires cutover's commands to the packages that do the work.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/internal/progress"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/redact"
	"github.com/spf13/cobra"
)

// Exit codes, documented in the user guide.
const (
	ExitOK      = 0 // success
	ExitFailed  = 1 // the command ran and found a problem (check errors, a failed step)
	ExitUsage   = 2 // bad flags or a bad plan file
	ExitRuntime = 3 // the command could not run (I/O, a bug)
)

// ExitError carries an exit code up to main.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}
func (e *ExitError) Unwrap() error { return e.Err }

// app is what every command shares: output that never shows a secret, and the plan path.
type app struct {
	out, errOut *redact.Writer
	log         *slog.Logger
	configPath  string
	terminal    bool // stdout is a terminal (out masks it, so it cannot be asked)
}

// onTerminal reports whether cmd prints to a terminal: stdout is one and the command's
// output was not sent elsewhere (cmd.SetOut, as tests do).
func (a *app) onTerminal(cmd *cobra.Command) bool {
	return a.terminal && cmd.OutOrStdout() == io.Writer(a.out)
}

// loadPlan reads the plan named by -c and registers its secrets for masking.
func (a *app) loadPlan() (*plan.Plan, error) {
	p, err := plan.Load(a.configPath, engine.CheckURL)
	if err != nil {
		return nil, &ExitError{Code: ExitUsage, Err: err}
	}
	a.out.Add(p.Secrets()...)
	a.errOut.Add(p.Secrets()...)
	return p, nil
}

// open loads the plan and the migration between its source's and target's engines.
func (a *app) open(command string) (*plan.Plan, engine.Migration, error) {
	p, err := a.loadPlan()
	if err != nil {
		return nil, nil, err
	}
	m, err := engine.Open(p)
	if err == nil {
		err = engine.Runs(m, command)
	}
	if err != nil {
		return nil, nil, &ExitError{Code: ExitUsage, Err: err}
	}
	return p, m, nil
}

// NewRoot builds the command tree writing to stdout and stderr.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	a := &app{out: redact.NewWriter(stdout), errOut: redact.NewWriter(stderr)}
	if f, ok := stdout.(*os.File); ok {
		a.terminal = progress.IsTerminal(f)
	}
	if pw := os.Getenv("PGPASSWORD"); pw != "" {
		a.out.Add(pw)
		a.errOut.Add(pw)
	}
	a.log = slog.New(slog.NewTextHandler(a.errOut, &slog.HandlerOptions{Level: slog.LevelInfo}))

	root := &cobra.Command{
		Use:   "cutover",
		Short: "Live database migrations with a cut over you can trust",
		Long: `cutover moves a live PostgreSQL database to a new server: a consistent full load,
change data capture from the snapshot's exact position, validation, and a cut over
run as gated steps with a downtime budget and a way back.

Start with:  cutover init --source URL --target URL -o cutover.yaml
then:        cutover check`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(a.out)
	root.SetErr(a.errOut)
	root.PersistentFlags().StringVarP(&a.configPath, "config", "c", plan.DefaultPath, "plan file")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &ExitError{Code: ExitUsage, Err: fmt.Errorf("%w\nsee: %s --help", err, c.CommandPath())}
	})
	root.AddCommand(newVersionCmd(a), newInitCmd(a), newCheckCmd(a), newStartCmd(a), newStatusCmd(a), newValidateCmd(a), newSwitchCmd(a), newApproveCmd(a), newRollbackCmd(a), newFinishCmd(a))
	return root
}

// Main runs cutover with the process's arguments and returns its exit code.
func Main(ctx context.Context, args []string) int {
	root := NewRoot(os.Stdout, os.Stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	code := ExitRuntime
	if errors.As(err, &ee) {
		code = ee.Code
		if ee.Err == nil {
			return code
		}
	} else if isUsageError(err) {
		code = ExitUsage
	}
	fmt.Fprintf(root.ErrOrStderr(), "cutover: %v\n", err)
	return code
}

// isUsageError recognises cobra's own argument errors (unknown command, wrong arg count).
func isUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "unknown flag", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
