package plan

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"

	"github.com/cutover-dev/cutover/redact"
	"gopkg.in/yaml.v3"
)

// Init describes the plan `cutover init` writes.
type Init struct {
	SourceURL, TargetURL string
}

// Written is a plan rendered by Render, with the passwords moved out of the URLs.
type Written struct {
	Text string
	// EnvVars names the environment variables the plan now reads passwords from.
	EnvVars []string
}

// Render writes a commented plan holding every option at its default. A password
// given inside a URL is moved out of it into `password: ${CUTOVER_<SIDE>_PASSWORD}`,
// so the plan file can be shared and printed without leaking it.
func Render(in Init) (Written, error) {
	var w Written
	src, srcPW := redact.StripPassword(in.SourceURL)
	tgt, tgtPW := redact.StripPassword(in.TargetURL)
	data := map[string]any{"Source": src, "Target": tgt, "D": Defaults()}
	if srcPW {
		data["SourcePassword"] = "${CUTOVER_SOURCE_PASSWORD}"
		w.EnvVars = append(w.EnvVars, "CUTOVER_SOURCE_PASSWORD")
	}
	if tgtPW {
		data["TargetPassword"] = "${CUTOVER_TARGET_PASSWORD}"
		w.EnvVars = append(w.EnvVars, "CUTOVER_TARGET_PASSWORD")
	}
	var b bytes.Buffer
	if err := planTemplate.Execute(&b, data); err != nil {
		return w, fmt.Errorf("render plan: %w", err)
	}
	w.Text = b.String()
	return w, nil
}

// yamlScalar quotes a value so it reads back as the same string.
func yamlScalar(v any) string {
	out, err := yaml.Marshal(v)
	if err != nil {
		panic(err)
	}
	return strings.TrimSuffix(string(out), "\n")
}

var planTemplate = template.Must(template.New("plan").Funcs(template.FuncMap{"q": yamlScalar}).Parse(`# cutover plan: one file drives the rehearsal and the production migration.
# Every option is listed with its default. ${NAME} (or ${NAME:-default}) reads
# an environment variable; $${ is a literal ${. Check it with: cutover check

source:
  # The database to migrate from: postgres://user@host:port/dbname?sslmode=require
  # or key=value (host=... dbname=...). The role needs REPLICATION and SELECT on
  # every migrated table; cutover check lists what is missing.
  url: {{q .Source}}
{{- if .SourcePassword}}
  password: {{q .SourcePassword}}
{{- else}}
  # password: ${CUTOVER_SOURCE_PASSWORD}   # or PGPASSWORD, or ~/.pgpass
{{- end}}

target:
  # The database to migrate to; it must exist. Its role needs to create schemas.
  url: {{q .Target}}
{{- if .TargetPassword}}
  password: {{q .TargetPassword}}
{{- else}}
  # password: ${CUTOVER_TARGET_PASSWORD}
{{- end}}

tables:
  # schema.table patterns: * and ? are wildcards; unquoted names fold to lower
  # case as in SQL; "Double-Quoted" parts match exactly. A partition goes with
  # its partitioned table. System schemas and the control schema never match.
  include: {{range .D.Tables.Include}}
    - {{q .String}}{{end}}
  exclude: []

full_load:
  # COPY workers; a large table is split into key ranges so it can use several.
  parallel: {{.D.FullLoad.Parallel}}
  # MySQL/MariaDB targets: false loads the rows without writing them to the
  # target's binary log (SET sql_log_bin = 0, as myloader does by default): less
  # for the target to write, but a replica of the target would not get them.
  # cutover check refuses it while a replica reads the target's binary log.
  target_binlog: {{.D.FullLoad.TargetBinlog}}

cdc:
  # false: a one-shot copy (a maintenance window, a staging copy). cutover start
  # copies from one snapshot with no replication slot, no publication and no
  # replica identity needed, builds the secondary objects, sets the sequences and
  # exits; nothing is left on the source and there is nothing to switch.
  enabled: {{.D.CDC.Enabled}}
  # A table whose UPDATE and DELETE logical decoding cannot capture (no primary
  # key and no replica identity index, or REPLICA IDENTITY NOTHING):
  #   error                 refuse to start until it is fixed (nothing changed on the source)
  #   replica_identity_full set REPLICA IDENTITY FULL on the source table at start
  #   inserts_only          replicate its inserts only; its updates and deletes are lost
  #   exclude               do not migrate it
  no_identity: {{.D.CDC.NoIdentity}}
  # A change the target cannot apply (a duplicate key, a row missing on the target)
  # is recorded in the control schema's apply_exceptions, then:
  #   stop           stop the task; cutover start retries it once the target is fixed
  #   log            skip the change and go on
  #   suspend_table  stop applying changes to that table; the others go on
  on_error: {{.D.CDC.OnError}}
  # Schema changes on the source while CDC runs (ALTER TABLE, CREATE/DROP INDEX,
  # constraints, CREATE/DROP/RENAME TABLE):
  #   replicate  an event trigger on the source captures each one (needs a superuser:
  #              on RDS/Aurora the master user, on Cloud SQL cloudsqlsuperuser) and the
  #              target replays it in stream order, between the rows before and after it
  #   stop       stop CDC at a schema change of a migrated table, with the statement
  #              to run on the target (cutover start --schema-applied then goes on)
  ddl: {{.D.CDC.DDL}}
  # A heartbeat written into the source's WAL keeps the slot moving and the latency
  # figures honest while the source is idle.
  heartbeat: {{.D.CDC.Heartbeat}}

validation:
  # Validate in the background while cutover start runs: a full pass of every table,
  # then, every interval, a pass over the rows changed since (cutover validate
  # --incremental). The states are in cutover status and /metrics.
  continuous: {{.D.Validation.Continuous}}
  interval: {{.D.Validation.Interval}}
  # Record the keys of the rows the applier changes, so that cutover validate
  # --incremental rereads only those (continuous implies it). cutover switch then
  # validates in full before the block, while the users still write, and only the
  # rows changed since inside the downtime window. Turned off, the switch's
  # validation inside the window is a full pass of every table: its downtime grows
  # with the database. It costs the applier one more write per table and
  # transaction group (backlog catch-up 0.80 x native logical replication, 0.70
  # without it).
  track_changes: {{.D.Validation.TrackChanges}}
  # Rows per chunk: both databases count and hash each chunk; only a chunk whose
  # sums differ is compared row by row.
  chunk_rows: {{.D.Validation.ChunkRows}}
  # The share of time the background validation spends reading (it pauses between
  # chunks for the rest), so it does not weigh on the source.
  busy_percent: {{.D.Validation.BusyPercent}}
  # Validate every table once at the end of the full load, before cutover start
  # goes on (or, with cdc disabled, exits 1 when a table differs).
  after_load: {{.D.Validation.AfterLoad}}

api:
  # /metrics, /api/status and the dashboard; "" turns the server off.
  listen: {{q .D.API.Listen}}
  # Required when listen is not a loopback address.
  token: ""

# Schema in the target for cutover's own state (never migrated or validated).
control_schema: {{q .D.ControlSchema}}

# Between two engines (MySQL/MariaDB to PostgreSQL): cutover check prints how every
# column is made on the target. Override a source type's or a column's target type:
#   "tinyint(1)": boolean        "app.film.rating": text
types: {}
translation:
  # What a case-insensitive collation becomes: none (case-sensitive), icu or citext.
  case_insensitive: {{.D.Translation.CaseInsensitive}}
  # ENUM as a PostgreSQL enum type (type) or text with a CHECK (check).
  enums: {{.D.Translation.Enums}}
  # MySQL's zero dates become NULL (null), or stop the load (error).
  zero_dates: {{q .D.Translation.ZeroDates}}

cutover:
  # Write downtime budget: the switch rolls back by itself when it runs out before
  # the users are unlocked.
  max_downtime: {{.D.Cutover.MaxDowntime}}
  # Gate: the switch begins only while the target latency is below this.
  max_latency: {{.D.Cutover.MaxLatency}}
  # How long to wait for the applier to reach the sync marker after the block.
  sync_timeout: {{.D.Cutover.SyncTimeout}}
  # How writes are stopped on the source: roles (NOLOGIN for every login role but
  # the exempt ones and the migration role, sessions ended) or read_only.
  block: {{.D.Cutover.Block}}
  exempt_roles: []
  # Added to every sequence value copied to the target at the switch.
  sequence_headroom: {{.D.Cutover.SequenceHeadroom}}
  # Time limit for each hook command and webhook.
  hook_timeout: {{.D.Cutover.HookTimeout}}
  # Commands run at each step, with CUTOVER_STEP, CUTOVER_TARGET_URL, ... set.
  hooks:
    notify: []
    suspend_jobs: []
    resume_jobs: []
    switch: []        # repoint the applications to the target
    switch_back: []   # repoint them to the source (rollback)
  # URLs that receive a JSON POST when a switch or rollback begins, is done, or rolls back.
  webhooks: []
  qa:
    sql: []           # queries run on the target that must return true
    commands: []      # commands that must exit 0
  # Wait for cutover approve (or --yes) before the users are unlocked.
  approval: {{.D.Cutover.Approval}}
`))
