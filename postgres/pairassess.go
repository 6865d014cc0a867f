package postgres

import (
	"context"
	"fmt"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/load"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/redact"
)

// AssessPair runs cutover check for a migration from another engine: the source read
// through its half, its schema translated (the report's Mapping, and a finding for
// each thing that is not carried as it is), the target's room for it.
func (Engine) AssessPair(ctx context.Context, p *plan.Plan, src load.SourceHalf, _ engine.AssessOptions) *check.Report {
	r := &check.Report{
		Source: check.Endpoint{URL: redact.ConnString(p.Source.URL)},
		Target: check.Endpoint{URL: redact.ConnString(p.Target.URL), Engine: "PostgreSQL"},
	}
	defer r.Finish()
	fail := func(chk, object string, err error, fix string) {
		r.Add(check.Finding{Severity: check.Error, Check: chk, Object: object, Problem: err.Error(), Fix: fix})
	}
	if err := src.Open(ctx); err != nil {
		fail("connect", "source", err, "")
		return r
	}
	if err := src.TableList(ctx); err != nil {
		fail("tables", "source", err, "")
		return r
	}
	s, err := src.ReadSchema(ctx, true)
	if err != nil {
		fail("schema", "source", err, "")
		return r
	}
	// The target first, for whether it has PostGIS; the mapping is printed without it.
	tgt, tgtErr := ConnectSide(ctx, "target", p.Target)
	postgis := false
	if tgtErr == nil {
		defer tgt.Close(context.WithoutCancel(ctx))
		if postgis, err = targetPostGIS(ctx, tgt); err != nil {
			fail("connect", "target", err, "")
			return r
		}
	}
	tr, err := translate(s, pairSchemaName(s), pairRules(p, s, postgis))
	if err != nil {
		fail("translation", "source", err, "")
		return r
	}
	r.Mapping = tr.mapping()
	for _, f := range tr.findings {
		r.Add(f)
	}
	if len(tr.views) > 0 {
		var refused map[string]error
		why := tgtErr
		if why == nil {
			refused, why = tr.tryViews(ctx, tgt)
		}
		for _, f := range tr.viewFindings(refused, why) {
			r.Add(f)
		}
	}
	if p.CDC.Enabled {
		for _, c := range tr.staleInCDC() {
			r.Add(check.Finding{Severity: check.Error, Check: "translate_generated", Object: "column " + c,
				Problem: "generated on the source and plain on PostgreSQL: the change stream does not carry its values, so change data capture would leave it stale",
				Fix:     "leave its table out of the plan (tables.exclude), or make the column plain on the source"})
		}
	}
	if tgtErr != nil {
		fail("connect", "target", tgtErr, "")
		return r
	}
	if err := tgt.QueryRow(ctx, "SELECT current_setting('server_version')").Scan(&r.Target.Version); err != nil {
		fail("connect", "target", err, "")
		return r
	}
	// The target's checks of a migration between PostgreSQL servers: what the role
	// may do there (create the schema; the applier's session_replication_role), and
	// a control schema there already.
	a := &assessment{plan: p, report: r}
	if a.tgt, err = describe(ctx, "target", tgt); err != nil {
		fail("connect", "target", err, "check the role's privileges")
		return r
	}
	r.Target.Version = shortVersion(a.tgt.version)
	a.run(ctx, func(ctx context.Context) error { return a.loadKeywords(ctx, tgt) })
	a.run(ctx, a.targetPrivileges, a.controlSchema)
	names := tr.tableNames()
	var present []string
	if err := tgt.QueryRow(ctx, `SELECT coalesce(array_agg(t ORDER BY t), '{}') FROM unnest($1::text[]) t WHERE to_regclass(t) IS NOT NULL`, names).Scan(&present); err != nil {
		fail("connect", "target", err, "")
		return r
	}
	if _, ok, err := ReadControl(ctx, tgt, p.ControlSchema); err == nil && !ok {
		for _, n := range present {
			r.Add(check.Finding{Severity: check.Error, Check: "target_tables", Object: "table " + n,
				Problem: "the target has this table already: cutover creates the tables it copies into",
				Fix:     fmt.Sprintf("DROP TABLE %s on the target (or leave the source's table out of the plan)", n)})
		}
	}
	return r
}
