package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/load"
	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// RunCDC is cutover start after the full load: it replicates in the direction the
// control schema says (state.replication) and follows it when a switch or a rollback
// changes it (cdc.Directions): source to target while the migration replicates,
// nothing while a switch holds replication stopped, target to source after the switch.
// It returns at the end of ctx (a clean stop), when cutover finish asks, or on an error.
func RunCDC(ctx context.Context, p *plan.Plan, opts engine.StartOptions) error {
	disp := opts.Display
	if disp == nil {
		disp = &load.Lines{W: opts.Out}
		opts.Display = disp
	}
	r := &directionReader{p: p}
	defer r.close(context.WithoutCancel(ctx))
	return cdc.Directions{Read: r.read, Say: disp.Step, Poll: directionPoll, Finished: load.ErrFinished(p),
		Run: func(ctx context.Context, dir string) error {
			if dir == control.ReplicateReverse {
				return replicate(ctx, reversed(p), opts, true)
			}
			return Replicate(ctx, p, opts)
		}}.Follow(ctx)
}

// reversed is the plan of reverse replication: the target is its source, the source
// its target, where its control schema keeps its position.
func reversed(p *plan.Plan) *plan.Plan {
	r := *p
	r.Source, r.Target = p.Target, p.Source
	r.Validation.Continuous, r.Validation.TrackChanges = false, false
	return &r
}

// directionReader reads the replication direction and the phase from the target, on
// a connection it keeps (a new one once that one failed). A control schema that is
// gone (cutover finish dropped it) reads as finishing.
type directionReader struct {
	p    *plan.Plan
	conn *pgx.Conn
}

func (r *directionReader) read(ctx context.Context) (dir, phase string, err error) {
	if r.conn == nil || r.conn.IsClosed() {
		conn, err := ConnectSide(ctx, "target", r.p.Target)
		if err != nil {
			return "", "", err
		}
		version, err := readControlVersion(ctx, conn, r.p.ControlSchema)
		if err == nil && version != nil && *version != controlVersion {
			// Brings a control schema an older version made up to date.
			_, err = OpenControl(ctx, conn, r.p.ControlSchema)
		}
		if err != nil {
			conn.Close(ctx)
			return "", "", err
		}
		if version == nil {
			conn.Close(ctx)
			return "", control.PhaseFinishing, nil
		}
		r.conn = conn
	}
	err = r.conn.QueryRow(ctx, "SELECT replication, phase FROM "+pgx.Identifier{r.p.ControlSchema, "state"}.Sanitize()).Scan(&dir, &phase)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000") {
		return "", control.PhaseFinishing, nil // dropped since the first read
	}
	if err != nil {
		r.close(ctx)
	}
	return dir, phase, err
}

func (r *directionReader) close(ctx context.Context) {
	if r.conn != nil {
		r.conn.Close(ctx)
		r.conn = nil
	}
}

// directionPoll is how often a running task looks for a new direction: it bounds how
// long a switch waits for replication to stop.
const directionPoll = 50 * time.Millisecond
