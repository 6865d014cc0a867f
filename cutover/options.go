package cutover

import (
	"errors"
	"io"
)

// Options configures cutover switch and cutover rollback.
type Options struct {
	DryRun bool
	// Yes approves the switch in advance (cutover.approval).
	Yes bool
	// RunbookDir is where the runbook files are written ("" : the current directory).
	RunbookDir string
	Out        io.Writer
}

// Result is the run and where its runbook was written.
type Result struct {
	Run            *Run
	Markdown, JSON string // runbook files
}

// ErrGates is a switch that did not begin: a gate failed, nothing changed.
var ErrGates = errors.New("the switch did not begin")
