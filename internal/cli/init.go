package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/redact"
	"github.com/spf13/cobra"
)

func newInitCmd(a *app) *cobra.Command {
	var source, target, output string
	var force bool
	cmd := &cobra.Command{
		Use:   "init --source URL --target URL [-o FILE]",
		Short: "Write a commented plan file with every option and its default",
		Long: `Write a commented plan (cutover.yaml) to stdout, or to FILE with -o.

A password given inside a URL is moved out of it: the plan reads it from
CUTOVER_SOURCE_PASSWORD / CUTOVER_TARGET_PASSWORD, so the file can be shared.`,
		Example: `  cutover init --source postgres://migrator@old-db:5432/app --target postgres://migrator@new-db:5432/app -o cutover.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, s := range []string{source, target} {
				if pw := redact.Password(s); pw != "" {
					a.out.Add(pw)
					a.errOut.Add(pw)
				}
			}
			w, err := plan.Render(plan.Init{SourceURL: source, TargetURL: target})
			if err != nil {
				return err
			}
			// The plan must load as written; a URL that does not parse is caught now, not at check.
			env := func(string) (string, bool) { return "placeholder", true }
			if _, err := plan.ParseChecked("--source/--target", []byte(w.Text), env, engine.CheckURL); err != nil {
				return &ExitError{Code: ExitUsage, Err: err}
			}
			if output == "" {
				_, err := fmt.Fprint(cmd.OutOrStdout(), w.Text)
				a.notePasswords(w, source, target)
				return err
			}
			flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
			if force {
				flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
			}
			f, err := os.OpenFile(output, flags, 0o600)
			if errors.Is(err, fs.ErrExist) {
				return &ExitError{Code: ExitUsage, Err: fmt.Errorf("%s exists already: remove it, pick another -o, or pass --force to overwrite it", output)}
			}
			if err != nil {
				return err
			}
			if _, err := f.WriteString(w.Text); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s; next: cutover check -c %s\n", output, output)
			a.notePasswords(w, source, target)
			return nil
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "source connection URL (required)")
	cmd.Flags().StringVar(&target, "target", "", "target connection URL (required)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the plan to this file instead of stdout")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite the output file if it exists")
	_ = cmd.MarkFlagRequired("source")
	_ = cmd.MarkFlagRequired("target")
	return cmd
}

func (a *app) notePasswords(w plan.Written, urls ...string) {
	if len(w.EnvVars) == 0 {
		return
	}
	// ~/.pgpass is libpq's: a MySQL/MariaDB side reads its password from the plan only.
	pgpass := " (or use ~/.pgpass)"
	for _, u := range urls {
		if scheme, _, ok := strings.Cut(u, "://"); ok && !strings.HasPrefix(strings.ToLower(scheme), "postgres") {
			pgpass = ""
		}
	}
	fmt.Fprintf(a.errOut, "the password given in the URL was moved out of the plan: export %s before running cutover%s\n",
		strings.Join(w.EnvVars, " and "), pgpass)
}
