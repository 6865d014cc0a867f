package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Schema changes during CDC (cdc.ddl: replicate). pgoutput streams rows, not DDL: an
// event trigger on the source writes each schema change into the WAL as a
// transactional logical message (prefix ddlPrefix), at its place among the
// transaction's row changes, as AWS DMS and pglogical capture them. The applier
// replays the statement on the target in the same target transaction as the rows
// around it, so a kill -9 leaves both or neither.
//
// The message carries the statement as the client sent it (current_query()), its
// search_path, what it created or changed (pg_event_trigger_ddl_commands()), what it
// dropped (sql_drop), the tables it rewrote (table_rewrite), and the values the
// rows that existed before an ADD COLUMN read for it (attmissingval): a default such
// as now() is evaluated once by the source, and the target's replay would take
// another value.

// ddlPrefix marks the logical messages of the source's schema changes.
const ddlPrefix = "cutover_ddl"

// ddlTriggers are the event triggers of a slot's capture, by event.
func ddlTriggers(slot string) map[string]string {
	return map[string]string{"ddl_command_end": slot + "_ddl_end", "sql_drop": slot + "_ddl_drop", "table_rewrite": slot + "_ddl_rewrite"}
}

// ddlTriggerName matches the names ddlTriggers gives.
var ddlTriggerName = regexp.MustCompile(`^cutover_[0-9a-f]+_ddl_(end|drop|rewrite)$`)

// ddlFunction is the capture function of a slot, in the source's schema named as the
// control schema (which no dump carries).
func ddlFunction(controlSchema, slot string) string {
	return pgx.Identifier{controlSchema, slot + "_capture_ddl"}.Sanitize()
}

// captureFunction is the event trigger function. SECURITY DEFINER: it reads the
// catalog and writes the message as the migration role, whoever runs the DDL. The
// drops and rewrites of a statement are kept in transaction-local settings until
// its ddl_command_end, which writes one message for the statement.
const captureFunction = `
CREATE OR REPLACE FUNCTION %s() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET DateStyle = 'ISO, MDY' SET IntervalStyle = postgres SET TimeZone = 'UTC' SET extra_float_digits = 3
AS $cutover$
DECLARE
    objs jsonb;
    dropped jsonb := coalesce(nullif(pg_catalog.current_setting('cutover.ddl_dropped', true), '')::jsonb, '[]');
    rewritten jsonb := coalesce(nullif(pg_catalog.current_setting('cutover.ddl_rewritten', true), '')::jsonb, '[]');
    key text;
    prior text;
    seq int;
    failure text;
BEGIN
    IF TG_EVENT = 'sql_drop' THEN
        SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                   'kind', o.object_type, 'schema', o.schema_name, 'name', o.object_name,
                   'identity', o.object_identity, 'address', o.address_names, 'original', o.original, 'oid', o.objid::bigint,
                   'temp', o.is_temporary)), '[]')
          INTO objs FROM pg_catalog.pg_event_trigger_dropped_objects() o;
        PERFORM pg_catalog.set_config('cutover.ddl_dropped', (dropped || objs)::text, true);
        RETURN;
    END IF;
    IF TG_EVENT = 'table_rewrite' THEN
        SELECT rewritten || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array(n.nspname, c.relname))
          INTO rewritten FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = pg_catalog.pg_event_trigger_table_rewrite_oid();
        PERFORM pg_catalog.set_config('cutover.ddl_rewritten', rewritten::text, true);
        RETURN;
    END IF;
    PERFORM pg_catalog.set_config('cutover.ddl_dropped', '', true), pg_catalog.set_config('cutover.ddl_rewritten', '', true);
    -- Which schema change of the client's query string this is: a string may hold
    -- several statements, and the applier replays only this one.
    key := pg_catalog.md5(pg_catalog.current_query() || pg_catalog.statement_timestamp()::text);
    prior := pg_catalog.current_setting('cutover.ddl_seq', true);
    seq := CASE WHEN pg_catalog.split_part(prior, ':', 1) = key THEN pg_catalog.split_part(prior, ':', 2)::int + 1 ELSE 1 END;
    PERFORM pg_catalog.set_config('cutover.ddl_seq', key || ':' || seq, false);
    -- The description is read in a block of its own: should it fail, the application's
    -- schema change goes on and CDC stops at it, saying why. The message is written
    -- outside that block: a transactional message that is the first WAL record of a
    -- subtransaction is decoded after the rest of the transaction, out of order.
    BEGIN
    SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'tag', d.command_tag, 'kind', d.object_type, 'schema', d.schema_name, 'identity', d.object_identity,
               'extension', d.in_extension, 'temp', coalesce(tc.relpersistence = 't', false),
               'table_schema', tn.nspname, 'table', tc.relname, 'relkind', tc.relkind, 'table_oid', tc.oid::bigint,
               'root', (SELECT pg_catalog.jsonb_build_array(rn.nspname, rc.relname)
                        FROM pg_catalog.pg_class rc JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
                        WHERE tc.relispartition AND rc.oid = pg_catalog.pg_partition_root(tc.oid)),
               'missing', (SELECT pg_catalog.jsonb_object_agg(a.attname, a.attmissingval::text)
                           FROM pg_catalog.pg_attribute a
                           WHERE d.command_tag = 'ALTER TABLE' AND a.attrelid = tc.oid AND a.atthasmissing AND NOT a.attisdropped)))
      INTO objs
      FROM pg_catalog.pg_event_trigger_ddl_commands() d
      LEFT JOIN LATERAL (SELECT CASE d.classid
               WHEN 'pg_catalog.pg_class'::pg_catalog.regclass THEN coalesce(
                   (SELECT i.indrelid FROM pg_catalog.pg_index i WHERE i.indexrelid = d.objid),
                   (SELECT dep.refobjid FROM pg_catalog.pg_depend dep
                    WHERE dep.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND dep.objid = d.objid
                      AND dep.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND dep.refobjsubid > 0
                      AND dep.deptype IN ('a', 'i') LIMIT 1),
                   d.objid)
               WHEN 'pg_catalog.pg_constraint'::pg_catalog.regclass THEN (SELECT nullif(c.conrelid, 0) FROM pg_catalog.pg_constraint c WHERE c.oid = d.objid)
               WHEN 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN (SELECT t.tgrelid FROM pg_catalog.pg_trigger t WHERE t.oid = d.objid)
               WHEN 'pg_catalog.pg_attrdef'::pg_catalog.regclass THEN (SELECT ad.adrelid FROM pg_catalog.pg_attrdef ad WHERE ad.oid = d.objid)
               WHEN 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN (SELECT r.ev_class FROM pg_catalog.pg_rewrite r WHERE r.oid = d.objid)
               WHEN 'pg_catalog.pg_policy'::pg_catalog.regclass THEN (SELECT p.polrelid FROM pg_catalog.pg_policy p WHERE p.oid = d.objid)
               WHEN 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass THEN (SELECT s.stxrelid FROM pg_catalog.pg_statistic_ext s WHERE s.oid = d.objid)
             END AS rel) o ON true
      LEFT JOIN pg_catalog.pg_class tc ON tc.oid = o.rel
      LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace;
    EXCEPTION WHEN OTHERS THEN
        failure := SQLERRM;
    END;
    IF failure IS NULL AND objs IS NULL AND dropped = '[]' THEN
        RETURN;
    END IF;
    PERFORM pg_catalog.pg_logical_emit_message(true, '` + ddlPrefix + `', pg_catalog.jsonb_build_object(
        'tag', TG_TAG, 'query', pg_catalog.current_query(), 'search_path', pg_catalog.current_setting('search_path'),
        'seq', seq, 'commands', coalesce(objs, '[]'), 'dropped', dropped, 'rewritten', rewritten, 'error', failure)::text);
END
$cutover$`

// installDDLCapture creates the source's event triggers for a slot. It runs before the
// slot is created, so that no schema change after the snapshot goes uncaptured. A
// role that may not create event triggers (only superusers may; on RDS/Aurora the
// master user, on Cloud SQL cloudsqlsuperuser) gets errNoDDLCapture.
func installDDLCapture(ctx context.Context, src *pgx.Conn, controlSchema, slot string) error {
	fn := ddlFunction(controlSchema, slot)
	stmts := []string{
		"CREATE SCHEMA IF NOT EXISTS " + pgx.Identifier{controlSchema}.Sanitize(),
		fmt.Sprintf(captureFunction, fn),
		"REVOKE ALL ON FUNCTION " + fn + "() FROM PUBLIC",
	}
	for event, name := range ddlTriggers(slot) {
		stmts = append(stmts, fmt.Sprintf("CREATE EVENT TRIGGER %s ON %s EXECUTE FUNCTION %s()", pgx.Identifier{name}.Sanitize(), event, fn))
	}
	tx, err := src.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "42501" {
				return fmt.Errorf("%w: %s", errNoDDLCapture, pgErr.Message)
			}
			return fmt.Errorf("source: install the capture of schema changes: %s: %w", firstLine(s), err)
		}
	}
	return tx.Commit(ctx)
}

// errNoDDLCapture: the migration role may not create the event triggers.
var errNoDDLCapture = errors.New("the source's role may not create event triggers")

// dropDDLCapture drops a slot's event triggers and function, and the schema that held
// it when nothing else is in it.
func dropDDLCapture(ctx context.Context, src *pgx.Conn, controlSchema, slot string) error {
	var stmts []string
	for _, name := range ddlTriggers(slot) {
		stmts = append(stmts, "DROP EVENT TRIGGER IF EXISTS "+pgx.Identifier{name}.Sanitize())
	}
	stmts = append(stmts, "DROP FUNCTION IF EXISTS "+ddlFunction(controlSchema, slot)+"()")
	for _, s := range stmts {
		if _, err := src.Exec(ctx, s); err != nil {
			return fmt.Errorf("source: drop the capture of schema changes: %s: %w", s, err)
		}
	}
	_, err := src.Exec(ctx, `DO $$BEGIN
		IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = `+quoteLiteral(controlSchema)+`)
		   AND NOT EXISTS (SELECT 1 FROM pg_depend WHERE refclassid = 'pg_namespace'::regclass
		                   AND refobjid = (SELECT oid FROM pg_namespace WHERE nspname = `+quoteLiteral(controlSchema)+`)) THEN
			EXECUTE format('DROP SCHEMA %I', `+quoteLiteral(controlSchema)+`);
		END IF; END$$`)
	if err != nil {
		return fmt.Errorf("source: drop the schema %s that held the capture of schema changes: %w", controlSchema, err)
	}
	return nil
}

// ddlCaptured says whether the slot's schema changes are captured (its event trigger
// exists and is enabled).
func ddlCaptured(ctx context.Context, src *pgx.Conn, slot string) (bool, error) {
	var n int
	err := src.QueryRow(ctx, "SELECT count(*) FROM pg_event_trigger WHERE evtname = $1 AND evtenabled <> 'D'", ddlTriggers(slot)["ddl_command_end"]).Scan(&n)
	return n > 0, err
}

// captureInstalled says whether the slot's schema changes are captured on the source.
func captureInstalled(ctx context.Context, p *plan.Plan, slot string) (bool, error) {
	src, err := ConnectSide(ctx, "source", p.Source)
	if err != nil {
		return false, err
	}
	defer src.Close(context.WithoutCancel(ctx))
	ok, err := ddlCaptured(ctx, src, slot)
	if err != nil {
		return false, fmt.Errorf("source: read its event triggers: %w", err)
	}
	return ok, nil
}

// ddlMessage is a captured schema change as the capture function writes it.
type ddlMessage struct {
	Tag        string       `json:"tag"`
	Query      string       `json:"query"`
	SearchPath string       `json:"search_path"`
	Seq        int          `json:"seq"` // the statement's place among the query string's schema changes, from 1
	Commands   []ddlCommand `json:"commands"`
	Dropped    []ddlDropped `json:"dropped"`
	Rewritten  [][2]string  `json:"rewritten"` // schema, name
	Error      *string      `json:"error"`     // the capture failed: what the change did is unknown
}

type ddlCommand struct {
	Tag         string            `json:"tag"`
	Kind        string            `json:"kind"`
	Schema      *string           `json:"schema"`
	Identity    string            `json:"identity"`
	Extension   bool              `json:"extension"`
	Temp        bool              `json:"temp"`
	TableSchema *string           `json:"table_schema"`
	Table       *string           `json:"table"`
	Relkind     *string           `json:"relkind"`
	TableOID    uint32            `json:"table_oid"`
	Root        []string          `json:"root"`
	Missing     map[string]string `json:"missing"`
}

type ddlDropped struct {
	Kind     string   `json:"kind"`
	Schema   *string  `json:"schema"`
	Name     *string  `json:"name"`
	Identity string   `json:"identity"`
	Address  []string `json:"address"`
	Original bool     `json:"original"`
	OID      uint32   `json:"oid"`
	Temp     bool     `json:"temp"`
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// schemaChange turns a captured message into the stream's event.
func schemaChange(content []byte) (*cdc.SchemaChange, error) {
	var m ddlMessage
	if err := json.Unmarshal(content, &m); err != nil {
		return nil, fmt.Errorf("a schema change message: %w", err)
	}
	sc := &cdc.SchemaChange{Statement: m.Query, Tag: m.Tag, Context: m.SearchPath, Detail: &m}
	for _, c := range m.Commands {
		if c.Extension || c.Temp {
			continue
		}
		o := cdc.SchemaObject{Kind: c.Kind, Schema: str(c.Schema)}
		switch {
		case c.Table != nil && tableKind(str(c.Relkind)):
			// The table itself, or an object of it (column, index, constraint, ...).
			o.Schema, o.Table, o.TableID = str(c.TableSchema), *c.Table, c.TableOID
			if len(c.Root) == 2 {
				o.Root = [2]string{c.Root[0], c.Root[1]}
			}
			if c.Kind == "table" || c.Kind == "foreign table" {
				o.Name = *c.Table
			}
		case c.Table != nil:
			o.Schema, o.Name = str(c.TableSchema), *c.Table // a view, a sequence, ...
		}
		sc.Objects = append(sc.Objects, o)
	}
	for _, d := range m.Dropped {
		if d.Temp {
			continue
		}
		o := cdc.SchemaObject{Kind: d.Kind, Schema: str(d.Schema), Name: str(d.Name), Dropped: true}
		switch {
		case d.Kind == "table" || d.Kind == "foreign table":
			o.Table, o.TableID = o.Name, d.OID
		case len(d.Address) >= 2 && (d.Kind == "table column" || d.Kind == "table constraint" || d.Kind == "trigger" || d.Kind == "rule" || d.Kind == "policy"):
			o.Schema, o.Table = d.Address[0], d.Address[1]
		}
		sc.Objects = append(sc.Objects, o)
	}
	return sc, nil
}

// tableKind: a relkind whose rows are migrated (tables, partitioned tables, foreign tables).
func tableKind(relkind string) bool { return relkind == "r" || relkind == "p" || relkind == "f" }

// quoteQualified quotes schema.name.
func quoteQualified(schema, name string) string { return pgx.Identifier{schema, name}.Sanitize() }

// ddlCapture says whether the source's schema changes will be captured during CDC:
// the migration role creates an event trigger (in a transaction rolled back) to know.
func (a *assessment) ddlCapture(ctx context.Context) error {
	if a.plan.CDC.DDL == plan.DDLStop {
		a.add(check.Info, "ddl", "plan", "cdc.ddl is stop: a schema change of a migrated table on the source stops CDC, with the statement to run on the target", "")
		return nil
	}
	tx, err := a.src.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	_, err = tx.Exec(ctx, `CREATE FUNCTION pg_temp.cutover_probe() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN END';
		CREATE EVENT TRIGGER cutover_probe ON ddl_command_end EXECUTE FUNCTION pg_temp.cutover_probe()`)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "42501":
		a.add(check.Warning, "ddl", "role "+a.src.user,
			fmt.Sprintf("role %s may not create event triggers (%s): the source's schema changes during CDC will not be captured. A column the source adds still reaches the target "+
				"(from the change stream's own description of the table); any other schema change of a migrated table stops CDC until it is made on the target by hand", a.src.user, pgErr.Message),
			"run cutover start as a role that may create event triggers: a superuser; on Amazon RDS and Aurora the master user (rds_superuser), on Cloud SQL a cloudsqlsuperuser role; "+
				"or set cdc.ddl: stop and make each schema change on both sides")
	case err != nil:
		return err
	default:
		a.add(check.Info, "ddl", "role "+a.src.user, "schema changes on the source during CDC are captured by event triggers cutover start creates (cdc.ddl: replicate) and replayed on the target in stream order", "")
	}
	return nil
}
