package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pgx/v5"
)

// A table logical decoding cannot capture updates and deletes of: no primary key and
// no replica identity index, REPLICA IDENTITY NOTHING, or an identity with a
// generated column (which the stream does not send).
func (r *relation) noIdentity() bool {
	return r.replident == "n" || (r.replident == "d" && r.pkName == "") || (r.replident == "i" && !r.identityIndex) ||
		(r.replident != "f" && r.identityGenerated != "")
}

// published says whether a relation's changes can be streamed: partitions and plain
// tables that are logged. Partitioned roots publish through their partitions.
func (r *relation) published() bool { return r.kind == "r" && r.persistence == "p" }

// applyNoIdentityPolicy leaves out the tables the cdc.no_identity policy excludes.
func applyNoIdentityPolicy(tables []*relation, policy plan.NoIdentityPolicy) []*relation {
	if policy != plan.NoIdentityExclude {
		return tables
	}
	var kept []*relation
	for _, r := range tables {
		if !(r.published() && r.noIdentity()) {
			kept = append(kept, r)
		}
	}
	return kept
}

// publications are the slot's publications: every table, and the tables whose
// inserts only are replicated.
func publications(slot string) (all, insertsOnly string) { return slot, slot + "_inserts" }

// createPublications prepares the source's change stream for the tables. It runs
// before the slot is created: pgoutput reads the publications as of each change, so
// a publication younger than a change cannot publish it.
//
// Tables without a usable replica identity follow the plan's cdc.no_identity:
// replica_identity_full sets REPLICA IDENTITY FULL on them; inserts_only puts them in
// a publication of inserts (and truncates) only. The default, error, never gets here:
// the assessment stops the start before.
func createPublications(ctx context.Context, src *pgx.Conn, slot string, tables []*relation, policy plan.NoIdentityPolicy) error {
	for _, sql := range publicationStatements(slot, tables, policy) {
		if _, err := src.Exec(ctx, sql); err != nil {
			if strings.HasPrefix(sql, "ALTER TABLE") {
				return fmt.Errorf("%s (cdc.no_identity: replica_identity_full): %w", sql, err)
			}
			return fmt.Errorf("%s: %w", firstLine(sql), err)
		}
	}
	return nil
}

// publicationStatements are the statements createPublications runs.
func publicationStatements(slot string, tables []*relation, policy plan.NoIdentityPolicy) []string {
	all, insertsOnly := publications(slot)
	var stmts, full, inserts []string
	for _, r := range tables {
		if !r.published() {
			continue
		}
		if r.noIdentity() && policy == plan.NoIdentityInsertsOnly {
			inserts = append(inserts, "ONLY "+r.qname)
			continue
		}
		if r.noIdentity() && policy == plan.NoIdentityFull {
			stmts = append(stmts, "ALTER TABLE "+r.qname+" REPLICA IDENTITY FULL")
		}
		full = append(full, "ONLY "+r.qname)
	}
	for _, pub := range []struct {
		name, publish string
		tables        []string
	}{{all, "insert, update, delete, truncate", full}, {insertsOnly, "insert, truncate", inserts}} {
		sql := "CREATE PUBLICATION " + pgx.Identifier{pub.name}.Sanitize()
		if len(pub.tables) > 0 {
			sql += " FOR TABLE " + strings.Join(pub.tables, ", ")
		}
		sql += " WITH (publish = '" + pub.publish + "', publish_via_partition_root = false)"
		stmts = append(stmts, sql)
	}
	return stmts
}

// dropPublications drops the slot's publications if they exist.
func dropPublications(ctx context.Context, src *pgx.Conn, slot string) error {
	all, insertsOnly := publications(slot)
	for _, name := range []string{all, insertsOnly} {
		if _, err := src.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
			return fmt.Errorf("drop publication %s on the source: %w", name, err)
		}
	}
	return nil
}

// insertsOnlyTables lists the tables of the slot's inserts-only publication on p's
// source (cdc.no_identity: inserts_only): their updates and deletes are not streamed.
func insertsOnlyTables(ctx context.Context, p *plan.Plan, slot string) ([]string, error) {
	src, err := ConnectSide(ctx, "source", p.Source)
	if err != nil {
		return nil, err
	}
	defer src.Close(context.WithoutCancel(ctx))
	_, insertsOnly := publications(slot)
	var tables []string
	if err := src.QueryRow(ctx, `SELECT coalesce(array_agg(format('%I.%I', schemaname, tablename) ORDER BY 1), '{}')
		FROM pg_publication_tables WHERE pubname = $1`, insertsOnly).Scan(&tables); err != nil {
		return nil, fmt.Errorf("source: list the tables of publication %s: %w", insertsOnly, err)
	}
	return tables, nil
}
