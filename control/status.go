package control

import (
	"time"

	"github.com/cutover-dev/cutover/cutover"
)

// Status is where a migration stands: what cutover status and /api/status show.
type Status struct {
	Phase string `json:"phase"`
	// Mode is "cdc", or "copy" for a one-shot copy (cdc.enabled: false).
	Mode     string      `json:"mode"`
	Slot     string      `json:"slot,omitempty"`
	Position string      `json:"position,omitempty"` // where the change stream starts
	Updated  *time.Time  `json:"updated_at,omitempty"`
	CDC      *CDCStatus  `json:"cdc,omitempty"`
	Source   *SlotStatus `json:"source,omitempty"`
	Tables   []TableStat `json:"-"`
	// ApplyExceptions counts the unresolved rows of apply_exceptions.
	ApplyExceptions int64 `json:"apply_exceptions"`
	// Replication is the direction cutover start replicates in: forward, stopped, reverse.
	Replication string         `json:"replication,omitempty"`
	Cutover     *CutoverStatus `json:"cutover,omitempty"`
	// Sides says which side takes the applications' writes and whether the other is
	// closed to them; nil for a one-shot copy, or when the source could not be read.
	Sides *SidesStatus `json:"sides,omitempty"`
	// SourceError says why the source could not be read (its slot, its side), when
	// the migration has a slot there.
	SourceError string `json:"-"`
}

// SidesStatus is the one writable side: Live takes the applications' writes (source or
// target); Other should not. Open says how Other is open to them (empty: closed).
type SidesStatus struct {
	Live   string   `json:"live"`
	Other  string   `json:"other"`
	Closed bool     `json:"other_closed"`
	Open   []string `json:"other_open,omitempty"`
}

// CutoverStatus is where switches and rollbacks left the migration.
type CutoverStatus struct {
	ReverseSlot string `json:"reverse_slot,omitempty"`
	// LastRun is the latest switch or rollback; Step its step running or last run.
	LastRun *RunSummary `json:"last_run,omitempty"`
	// Blocked lists, per side, the roles a switch or rollback blocked and did not give back.
	BlockedSource []string `json:"blocked_on_source,omitempty"`
	BlockedTarget []string `json:"blocked_on_target,omitempty"`
}

// RunSummary is one switch or rollback, as status shows it.
type RunSummary struct {
	ID              string     `json:"id"`
	Kind            string     `json:"kind"`
	Outcome         string     `json:"outcome"`
	Reason          string     `json:"reason,omitempty"`
	Started         time.Time  `json:"started_at"`
	Ended           *time.Time `json:"ended_at,omitempty"`
	DowntimeSeconds *float64   `json:"downtime_seconds,omitempty"`
	Step            string     `json:"step,omitempty"`
}

// CDCStatus is the change stream's state as the running task last recorded it.
type CDCStatus struct {
	Applied              string     `json:"applied_position"`
	AppliedCommitTime    *time.Time `json:"applied_commit_time,omitempty"`
	AppliedAt            *time.Time `json:"applied_at,omitempty"`
	SourceLatencySeconds float64    `json:"source_latency_seconds"`
	TargetLatencySeconds float64    `json:"target_latency_seconds"`
	Pending              int64      `json:"pending_transactions"`
	MeasuredAt           *time.Time `json:"measured_at,omitempty"`
}

// SlotStatus is the slot as the source sees it.
type SlotStatus struct {
	Exists           bool  `json:"slot_exists"`
	Active           bool  `json:"slot_active"` // a task is streaming from it
	RetainedWALBytes int64 `json:"retained_wal_bytes"`
}

// Dashboard is what the web dashboard shows besides the status: the last hour's
// latency, the latest apply exceptions and the running or last cut over run.
type Dashboard struct {
	History    []LatencyPoint   `json:"latency_history"`
	Exceptions []ApplyException `json:"apply_exceptions"`
	Run        *cutover.Run     `json:"run,omitempty"`
}

// LatencyPoint is one row of latency_history.
type LatencyPoint struct {
	At               time.Time `json:"at"`
	SourceSeconds    float64   `json:"source_latency_seconds"`
	TargetSeconds    float64   `json:"target_latency_seconds"`
	Pending          int64     `json:"pending_transactions"`
	RetainedWALBytes *int64    `json:"retained_wal_bytes,omitempty"`
}

// ApplyException is one unresolved row of apply_exceptions, as the dashboard lists it.
type ApplyException struct {
	ID        int64      `json:"id"`
	Table     string     `json:"table"`
	Operation string     `json:"operation"`
	Error     string     `json:"error"`
	Position  string     `json:"position"`
	Commit    *time.Time `json:"commit_time,omitempty"`
	Policy    string     `json:"policy"`
	At        time.Time  `json:"created_at"`
}
