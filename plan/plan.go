// Package plan reads and validates the migration plan file (cutover.yaml).
//
// The plan is immutable once loaded: components receive it and never change it.
// Every key, type and value is checked, and every problem is reported with the
// file, line and column it comes from, so an operator can fix a plan in one pass.
package plan

import (
	"time"

	"github.com/cutover-dev/cutover/redact"
)

// DefaultPath is where commands look for the plan when -c is not given.
const DefaultPath = "cutover.yaml"

// Plan is a parsed, validated migration plan.
type Plan struct {
	// Path is the file the plan was read from.
	Path string `yaml:"-"`

	Source        Endpoint   `yaml:"source"`
	Target        Endpoint   `yaml:"target"`
	Tables        Tables     `yaml:"tables"`
	FullLoad      FullLoad   `yaml:"full_load"`
	CDC           CDC        `yaml:"cdc"`
	Validation    Validation `yaml:"validation"`
	API           API        `yaml:"api"`
	ControlSchema string     `yaml:"control_schema"`
	Cutover       Cutover    `yaml:"cutover"`
	// Types overrides the target's type of a source type or column, in a migration
	// between two engines: "tinyint(1)": boolean, "app.film.rating": text.
	Types map[string]string `yaml:"types"`
	// Translation sets the rules a migration between two engines makes the target's
	// schema by.
	Translation Translation `yaml:"translation"`
}

// Translation is how a source's schema becomes a target of another engine's (MySQL
// to PostgreSQL).
type Translation struct {
	// CaseInsensitive is what a case-insensitive collation becomes: none (the target's
	// default, case-sensitive), icu (an ICU nondeterministic collation) or citext.
	CaseInsensitive string `yaml:"case_insensitive"`
	// Enums: type (CREATE TYPE ... AS ENUM) or check (text with a CHECK).
	Enums string `yaml:"enums"`
	// ZeroDates: null (MySQL's zero dates become NULL, NOT NULL relaxed where one is)
	// or error (the load stops on one).
	ZeroDates string `yaml:"zero_dates"`
}

// Endpoint is one side of the migration.
type Endpoint struct {
	URL      string `yaml:"url"`
	Password string `yaml:"password"` // kept out of the URL so it needs no escaping and stays out of logs
}

// Tables selects the tables to migrate with schema.table glob patterns.
type Tables struct {
	Include []Pattern `yaml:"include"`
	Exclude []Pattern `yaml:"exclude"`
}

// FullLoad configures the initial copy.
type FullLoad struct {
	Parallel int `yaml:"parallel"`
	// TargetBinlog false loads a MySQL/MariaDB target's rows without writing them to
	// its binary log (SET sql_log_bin = 0 in the loading sessions): less for the
	// target to write, but a replica of the target would not get them.
	TargetBinlog bool `yaml:"target_binlog"`
}

// NoIdentityPolicy says what CDC does with a table whose UPDATE and DELETE it cannot capture
// (no primary key and no usable replica identity, or REPLICA IDENTITY NOTHING).
type NoIdentityPolicy string

// The policies for tables without a usable replica identity.
const (
	// NoIdentityError refuses to start until the operator fixes the table or picks another policy.
	NoIdentityError NoIdentityPolicy = "error"
	// NoIdentityFull sets REPLICA IDENTITY FULL on the source table when the task starts.
	NoIdentityFull NoIdentityPolicy = "replica_identity_full"
	// NoIdentityInsertsOnly publishes the table for inserts only; its updates and deletes are not replicated.
	NoIdentityInsertsOnly NoIdentityPolicy = "inserts_only"
	// NoIdentityExclude leaves the table out of the migration.
	NoIdentityExclude NoIdentityPolicy = "exclude"
)

var noIdentityPolicies = []string{string(NoIdentityError), string(NoIdentityFull), string(NoIdentityInsertsOnly), string(NoIdentityExclude)}

// ErrorPolicy says what CDC does with a change it cannot apply (a duplicate key, a row
// missing on the target, a value the target rejects).
type ErrorPolicy string

// The policies for changes that cannot be applied. Each records the change in the
// control schema's apply_exceptions.
const (
	// OnErrorStop stops the task; a rerun retries the change (after the operator fixed the target, say).
	OnErrorStop ErrorPolicy = "stop"
	// OnErrorLog skips the change and goes on.
	OnErrorLog ErrorPolicy = "log"
	// OnErrorSuspendTable stops applying changes to the table; the other tables go on.
	OnErrorSuspendTable ErrorPolicy = "suspend_table"
)

var errorPolicies = []string{string(OnErrorStop), string(OnErrorLog), string(OnErrorSuspendTable)}

// DDLPolicy says what CDC does with the source's schema changes.
type DDLPolicy string

// The schema change policies.
const (
	// DDLReplicate carries the source's schema changes to the target in stream order.
	DDLReplicate DDLPolicy = "replicate"
	// DDLStop stops CDC at a schema change of a migrated table, with the statement to
	// run on the target.
	DDLStop DDLPolicy = "stop"
)

var ddlPolicies = []string{string(DDLReplicate), string(DDLStop)}

// CDC configures change data capture.
type CDC struct {
	// Enabled false makes the migration a one-shot copy: one consistent snapshot
	// copied with no replication slot, no publication and no replica identity needed,
	// then the secondary objects and the sequences; no change stream, so no switch.
	Enabled    bool             `yaml:"enabled"`
	NoIdentity NoIdentityPolicy `yaml:"no_identity"`
	OnError    ErrorPolicy      `yaml:"on_error"`
	// DDL: replicate (an event trigger on the source captures schema changes and the
	// applier replays them on the target, in stream order), or stop.
	DDL DDLPolicy `yaml:"ddl"`
	// Heartbeat is how often a heartbeat goes into the source's WAL: it keeps the slot
	// moving and the latency honest while the source is idle.
	Heartbeat Duration `yaml:"heartbeat"`
}

// Validation configures cutover validate and the background validation.
type Validation struct {
	// Continuous validates in the background while cutover start runs: a full pass,
	// then, every Interval, a pass over the rows changed since.
	Continuous bool     `yaml:"continuous"`
	Interval   Duration `yaml:"interval"`
	// TrackChanges has the applier record the keys of the rows it changes, for
	// incremental validation (Continuous implies it). On by default: without it the
	// switch's validation inside the downtime window is a full pass, which grows with
	// the database. It costs the applier one write per table and transaction group.
	TrackChanges bool `yaml:"track_changes"`
	ChunkRows    int  `yaml:"chunk_rows"`
	// AfterLoad validates every table once the full load is complete (with cdc
	// disabled: at the end of the copy, against a source assumed quiet).
	AfterLoad bool `yaml:"after_load"`
	// BusyPercent is the share of time a background validation spends reading; it
	// pauses for the rest, between chunks.
	BusyPercent int `yaml:"busy_percent"`
}

// Tracking reports whether the applier records the rows it changes.
func (v Validation) Tracking() bool { return v.TrackChanges || v.Continuous }

// API configures the HTTP server.
type API struct {
	Listen string `yaml:"listen"`
	Token  string `yaml:"token"`
}

// BlockMode is how the source is closed to writes during the switch.
type BlockMode string

// The ways to block writes on the source.
const (
	BlockRoles    BlockMode = "roles"     // NOLOGIN for every login role but the exempt ones; their sessions ended
	BlockReadOnly BlockMode = "read_only" // default_transaction_read_only on the database; sessions ended
)

// Cutover configures cutover switch (and rollback).
type Cutover struct {
	MaxDowntime      Duration  `yaml:"max_downtime"`
	MaxLatency       Duration  `yaml:"max_latency"`
	SyncTimeout      Duration  `yaml:"sync_timeout"`
	Block            BlockMode `yaml:"block"`
	ExemptRoles      []string  `yaml:"exempt_roles"`
	SequenceHeadroom int64     `yaml:"sequence_headroom"`
	HookTimeout      Duration  `yaml:"hook_timeout"`
	Hooks            Hooks     `yaml:"hooks"`
	Webhooks         []string  `yaml:"webhooks"`
	QA               QA        `yaml:"qa"`
	Approval         bool      `yaml:"approval"`
}

// Hooks are operator commands run at the steps of a switch or rollback.
type Hooks struct {
	Notify      []string `yaml:"notify"`
	SuspendJobs []string `yaml:"suspend_jobs"`
	ResumeJobs  []string `yaml:"resume_jobs"`
	Switch      []string `yaml:"switch"`
	SwitchBack  []string `yaml:"switch_back"`
}

// QA lists the checks run against the target during a switch.
type QA struct {
	SQL      []string `yaml:"sql"`
	Commands []string `yaml:"commands"`
}

// Defaults returns a plan holding every default value.
func Defaults() *Plan {
	return &Plan{
		Tables:        Tables{Include: []Pattern{MustPattern("*.*")}},
		FullLoad:      FullLoad{Parallel: 4, TargetBinlog: true},
		CDC:           CDC{Enabled: true, NoIdentity: NoIdentityError, OnError: OnErrorStop, DDL: DDLReplicate, Heartbeat: Duration(5 * time.Second)},
		Validation:    Validation{Interval: Duration(time.Minute), TrackChanges: true, ChunkRows: 10000, BusyPercent: 50},
		API:           API{Listen: "127.0.0.1:8420"},
		ControlSchema: "cutover",
		Translation:   Translation{CaseInsensitive: "none", Enums: "type", ZeroDates: "null"},
		Cutover: Cutover{
			MaxDowntime: Duration(60 * time.Second),
			MaxLatency:  Duration(5 * time.Second),
			SyncTimeout: Duration(30 * time.Second),
			Block:       BlockRoles,
			HookTimeout: Duration(60 * time.Second),
		},
	}
}

// Secrets returns the passwords the plan holds, so output can be scrubbed of them.
func (p *Plan) Secrets() []string {
	var s []string
	for _, e := range []Endpoint{p.Source, p.Target} {
		for _, pw := range []string{e.Password, redact.Password(e.URL)} {
			if pw != "" {
				s = append(s, pw)
			}
		}
	}
	if p.API.Token != "" {
		s = append(s, p.API.Token)
	}
	return s
}
