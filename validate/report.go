package validate

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/plan"
)

// DefaultChunkRows is the rows per chunk a validation aims for.
const DefaultChunkRows = 10000

// Options says what to validate.
type Options struct {
	Tables    []plan.Pattern // only the tables matching one of these; none: every migrated table
	ChunkRows int
	// Incremental compares only the rows changed since each table's last validation
	// (and those that differed then); a table never validated gets a full pass.
	Incremental bool
	// Repair copies the rows that differ again from the source, through the applier
	// (so changes in flight land on top), then compares them again.
	Repair bool
	// RunningOnly: validate only while a cutover start streams the changes (the
	// background validation), never run change data capture here.
	RunningOnly bool
	// BusyPercent below 100 reads chunks a few at a time and pauses between them, so
	// that the validation reads this share of the time.
	BusyPercent int
	// Progress, when set, is told about each table as it finishes.
	Progress func(TableReport)
	// Out gets the messages of the change data capture the validation runs when no
	// cutover start is running (nil: discarded).
	Out io.Writer
}

// Report is the outcome of a validation pass.
type Report struct {
	Tables []TableReport `json:"tables"`
	Equal  bool          `json:"equal"`
	Took   time.Duration `json:"-"`
	// Live: the validation did not run change data capture itself while it compared
	// (cutover start streamed the changes, or a one-shot copy has none).
	Live bool `json:"live"`
	// Points is how many points of the change stream the comparisons read at.
	Points int `json:"points"`
}

// TableReport is one table's outcome.
type TableReport struct {
	Schema      string       `json:"schema"`
	Table       string       `json:"table"`
	State       string       `json:"state"`
	Key         []string     `json:"key"`
	SourceRows  int64        `json:"source_rows"`
	TargetRows  int64        `json:"target_rows"`
	Chunks      int          `json:"chunks"`
	Differing   int          `json:"chunks_differing"`
	RowsRead    int64        `json:"rows_read"` // rows compared one by one (in differing chunks)
	Mismatches  int64        `json:"mismatches"`
	Differences []Difference `json:"differences,omitempty"` // the first failuresKept
	Error       string       `json:"error,omitempty"`
	Seconds     float64      `json:"seconds"`
	// Incremental: only the rows changed since the last validation were compared
	// (RowsRead of them), and those that differed then.
	Incremental bool `json:"incremental"`
	// Repaired is the rows copied again from the source (--repair).
	Repaired int64 `json:"repaired"`
	// InFlight: at the point the table was compared at, source transactions that
	// changed it had reached the target but not the source's snapshot yet (a commit
	// under way as the snapshot was taken): the rows they changed differed there.
	InFlight bool `json:"in_flight"`
	// Rechecked is the rows that differed at the table's point and were compared again
	// at later points; those still different are reported.
	Rechecked int64 `json:"rechecked"`

	// Position is the point of the change stream the table was compared at.
	Position string `json:"-"`
}

// ErrNotEqual is a validation that found tables differing.
var ErrNotEqual = errors.New("tables differ between source and target: cutover status lists them and the control schema's validation_failures holds the rows (was the source written during the copy?)")

// Summary is one line on a validation pass.
func Summary(rep *Report) string {
	counts := map[string]int{}
	var mismatches int64
	for _, t := range rep.Tables {
		counts[t.State]++
		mismatches += t.Mismatches
	}
	msg := fmt.Sprintf("validation: %d tables equal", counts[control.ValidationValidated]+counts[control.ValidationNoKey])
	if n := counts[control.ValidationMismatched]; n > 0 {
		msg += fmt.Sprintf(", %d differ (%d rows; cutover status, validation_failures)", n, mismatches)
	}
	if n := counts[control.ValidationError]; n > 0 {
		msg += fmt.Sprintf(", %d could not be validated (cutover status)", n)
	}
	return msg
}
