package engine

import (
	"io"
	"time"

	"github.com/cutover-dev/cutover/internal/metrics"
	"github.com/cutover-dev/cutover/load"
)

// AssessOptions tunes the assessment.
type AssessOptions struct {
	// LongTransaction is the age from which an open source transaction is reported.
	LongTransaction time.Duration
}

// StartOptions tunes cutover start.
type StartOptions struct {
	Out     io.Writer    // messages: the assessment's findings, the outcome
	Display load.Display // progress; plain lines on Out when nil
	Metrics *metrics.Metrics
	// SchemaApplied is the position of a source transaction whose schema change the
	// operator made on the target by hand: CDC does not replay it.
	SchemaApplied string
}
