package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/internal/api"
	"github.com/cutover-dev/cutover/internal/metrics"
	"github.com/cutover-dev/cutover/internal/progress"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/validate"
	"github.com/spf13/cobra"
)

func newStartCmd(a *app) *cobra.Command {
	var fullLoadOnly bool
	var schemaApplied string
	cmd := &cobra.Command{
		Use:   "start [--full-load-only]",
		Short: "Copy the schema and data from one consistent snapshot, then replicate changes",
		Long: `Runs the migration in the foreground: the schema's pre-data (types, functions, tables
with their primary keys, views), the tables copied in parallel from one consistent
snapshot taken with the replication slot the change stream will use, then the
post-data (secondary indexes, constraints, triggers, materialized views), then
change data capture: every change committed on the source from the snapshot on is
applied to the target, each exactly once, until SIGINT or SIGTERM (a clean stop).

A rerun after a crash, a kill or Ctrl-C resumes: tables already loaded are kept,
partly loaded ones are copied again, and the change stream goes on from the last
position the target committed. On a terminal each table being copied has a live
progress bar; in a pipe or a log each event is a timestamped line. Progress is kept
in the target's control schema: cutover status shows it from another terminal.
While it runs, api.listen serves /metrics (Prometheus) and /api/status (JSON).

Exit status: 0 after a clean stop (or, with --full-load-only, once the full load is
complete), 1 when it stopped on an error (the message names the object and the
fix), 2 for a bad plan or flags.

With cdc.enabled: false in the plan the migration is a one-shot copy: the snapshot is
exported by a plain REPEATABLE READ transaction (no replication slot, no publication,
no replica identity needed), the post-data is built, every sequence is set from the
source, the tables are validated if validation.after_load is true, and the command
exits 0, leaving nothing on the source. A rerun resumes a copy that stopped.

Schema changes on the source during CDC (cdc.ddl: replicate, the default) are
captured by an event trigger and replayed on the target in stream order. One that
cannot be replayed (a DDL inside a function or a DO block, several statements in
one query string, a statement the target refuses) stops CDC with the statement:
make the same change on the target by hand, then run
cutover start --schema-applied <position> to go on after it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, mig, err := a.open(cmd.Name())
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			m := metrics.New()
			if p.API.Listen != "" {
				// The migration matters more than its monitoring: a busy address is said, not fatal.
				o := api.Options{Token: p.API.Token, Status: statusFunc(mig, p), Dashboard: dashboardFunc(mig, p), Secrets: p.Secrets()}
				if srv, err := api.Start(p.API.Listen, m, o); err != nil {
					fmt.Fprintf(out, "warning: %v; going on without the dashboard, /metrics and /api/status\n", err)
				} else {
					defer srv.Close()
					fmt.Fprintf(out, "serving /metrics and /api/status on http://%s\n", srv.Addr())
					fmt.Fprintf(out, "dashboard: %s\n", dashboardURL(srv.Addr(), p.API.Token != ""))
				}
			}
			resume := "cutover start"
			if fullLoadOnly {
				resume = "cutover start --full-load-only"
			}
			opts := engine.StartOptions{Out: out, Display: progress.New(out, a.onTerminal(cmd)), Metrics: m, SchemaApplied: schemaApplied}
			err = mig.Load(ctx, p, opts)
			copyOnly := false
			if err == nil && !fullLoadOnly && ctx.Err() == nil {
				// A one-shot copy (cdc.enabled: false) ends with its load: no change stream.
				copyOnly, err = mig.IsCopy(ctx, p)
			}
			if err == nil && !fullLoadOnly && !copyOnly && ctx.Err() == nil {
				opts.Display = progress.New(out, false) // CDC reports in lines
				err = mig.Replicate(ctx, p, opts)
				if err == nil {
					return nil
				}
				var ae *cdc.ApplyError
				if errors.As(err, &ae) {
					return &ExitError{Code: ExitFailed, Err: err}
				}
				return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%w\nchange data capture stopped: once the cause is fixed, run cutover start to resume from the last applied position", err)}
			}
			if err != nil {
				if ctx.Err() != nil {
					return &ExitError{Code: ExitFailed, Err: fmt.Errorf("interrupted: run %s again to resume", resume)}
				}
				if errors.Is(err, check.ErrNotReady) || errors.Is(err, validate.ErrNotEqual) {
					return &ExitError{Code: ExitFailed, Err: err}
				}
				return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%w\nthe load stopped: once the cause is fixed, run %s again to resume (tables already loaded are kept)", err, resume)}
			}
			if ctx.Err() != nil && !fullLoadOnly && !copyOnly {
				return &ExitError{Code: ExitFailed, Err: fmt.Errorf("interrupted: run %s again to resume", resume)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&fullLoadOnly, "full-load-only", false, "stop after the full load and its post-data")
	cmd.Flags().StringVar(&schemaApplied, "schema-applied", "", "the position of a source transaction whose schema change CDC stopped at, made on the target by hand: go on without replaying it")
	return cmd
}

// dashboardURL is where to open the dashboard; with a token, the page asks for
// it, or takes it from the URL's fragment (#token=...), which is never printed.
func dashboardURL(addr string, token bool) string {
	host, port, err := net.SplitHostPort(addr)
	if err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			host = "localhost" // listening everywhere: this host's name serves too
		}
		addr = net.JoinHostPort(host, port)
	}
	u := "http://" + addr + "/"
	if token {
		u += " (open it as " + u + "#token=TOKEN with the plan's api.token)"
	}
	return u
}

// statusFunc serves /api/status: the control state and the source, read per request.
func statusFunc(m engine.StatusReader, p *plan.Plan) api.StatusFunc {
	return func(ctx context.Context) (any, error) {
		s, err := readStatus(ctx, m, p)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}

// dashboard is what /api/dashboard serves: the status, and what the page draws.
type dashboard struct {
	Generated time.Time `json:"generated_at"`
	Status    status    `json:"status"`
	control.Dashboard
	Limits struct {
		MaxLatencySeconds       float64 `json:"max_latency_seconds"`
		MaxDowntimeSeconds      float64 `json:"max_downtime_seconds"`
		RetainedWALWarningBytes int64   `json:"retained_wal_warning_bytes"`
	} `json:"limits"`
}

func dashboardFunc(m engine.StatusReader, p *plan.Plan) api.StatusFunc {
	return func(ctx context.Context) (any, error) {
		st, figures, err := m.Dashboard(ctx, p)
		if err != nil {
			return nil, err
		}
		d := dashboard{Generated: time.Now(), Status: statusDoc(st, p), Dashboard: figures}
		d.Limits.MaxLatencySeconds = p.Cutover.MaxLatency.D().Seconds()
		d.Limits.MaxDowntimeSeconds = p.Cutover.MaxDowntime.D().Seconds()
		d.Limits.RetainedWALWarningBytes = retainedWALWarning
		return d, nil
	}
}
