package plan

import (
	"strings"
	"testing"
	"time"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

const minimal = "source: {url: postgres://m@old:5432/app}\ntarget: {url: postgres://m@new:5432/app}\n"

func TestMinimalPlanGetsDefaults(t *testing.T) {
	p, err := Parse("cutover.yaml", []byte(minimal), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if p.FullLoad.Parallel != 4 || p.ControlSchema != "cutover" || p.API.Listen != "127.0.0.1:8420" ||
		p.CDC.NoIdentity != NoIdentityError || p.Cutover.MaxDowntime.D() != time.Minute || p.Cutover.Block != BlockRoles {
		t.Fatalf("defaults not applied: %+v", p)
	}
	if !p.Tables.Includes("public", "film") || !p.Tables.Includes("Sales", "Order") {
		t.Fatal("default include should match every table")
	}
	// Tracked changes keep the switch's validation inside the downtime window to the
	// rows changed since the pass before the block.
	if !p.Validation.TrackChanges || !p.Validation.Tracking() || p.Validation.Continuous {
		t.Fatalf("validation defaults: %+v, want track_changes on, continuous off", p.Validation)
	}
	if !p.CDC.Enabled || p.Validation.AfterLoad {
		t.Fatalf("cdc.enabled should default to true, validation.after_load to false: %+v %+v", p.CDC, p.Validation)
	}
	cp, err := Parse("cutover.yaml", []byte(minimal+"cdc: {enabled: false}\nvalidation: {after_load: true}\n"), env(nil))
	if err != nil || cp.CDC.Enabled || !cp.Validation.AfterLoad {
		t.Fatalf("a one-shot copy's plan: %v %+v", err, cp)
	}
	off, err := Parse("cutover.yaml", []byte(minimal+"validation: {track_changes: false}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if off.Validation.Tracking() {
		t.Fatal("validation.track_changes: false still tracks")
	}
}

func TestFullPlan(t *testing.T) {
	text := `
source:
  url: postgres://migrator@old-db:5432/app
  password: ${SRC_PW}
target: {url: "host=new-db dbname=app user=migrator"}
tables:
  include: ["public.*", "sales.*", '"Mixed Case"."Order"*']
  exclude: ["public.tmp_*"]
full_load:
  parallel: ${WORKERS:-8}
cdc: {no_identity: inserts_only}
api: {listen: "0.0.0.0:9000", token: "${TOKEN}"}
control_schema: cutover_ctl
cutover:
  max_downtime: 90s
  exempt_roles: [postgres, migrator]
  hooks: {switch: ["./repoint-app.sh"]}
  webhooks: ["https://hooks.example.com/x"]
  qa: {sql: ["select count(*) > 0 from public.film"]}
  approval: true
`
	p, err := Parse("p.yaml", []byte(text), env(map[string]string{"SRC_PW": "s3cret!", "TOKEN": "tok-123456"}))
	if err != nil {
		t.Fatal(err)
	}
	if p.Source.Password != "s3cret!" || p.FullLoad.Parallel != 8 || p.API.Token != "tok-123456" {
		t.Fatalf("env not expanded: %+v", p)
	}
	if p.Cutover.MaxDowntime.D() != 90*time.Second || !p.Cutover.Approval || p.Cutover.Hooks.Switch[0] != "./repoint-app.sh" {
		t.Fatalf("cutover not parsed: %+v", p.Cutover)
	}
	cases := []struct {
		schema, table string
		want          bool
	}{
		{"public", "film", true},
		{"public", "tmp_x", false},
		{"sales", "orders", true},
		{"Mixed Case", "OrderLines", true},
		{"Mixed Case", "orderlines", false},
		{"mixed case", "OrderLines", false},
		{"other", "film", false},
	}
	for _, c := range cases {
		if got := p.Tables.Includes(c.schema, c.table); got != c.want {
			t.Errorf("Includes(%q, %q) = %v, want %v", c.schema, c.table, got, c.want)
		}
	}
	if got := p.Secrets(); len(got) != 2 || got[0] != "s3cret!" || got[1] != "tok-123456" {
		t.Errorf("Secrets() = %q", got)
	}
}

func TestPatterns(t *testing.T) {
	cases := []struct {
		pattern, schema, table string
		want                   bool
	}{
		{"Public.Film", "public", "film", true},
		{`"Public".film`, "public", "film", false},
		{`"a.b".c`, "a.b", "c", true},
		{`"a.b".c`, "a", "b.c", false},
		{`s."t*"`, "s", "t*", true},
		{`s."t*"`, "s", "tx", false},
		{`s.t?`, "s", "tx", true},
		{`s.t?`, "s", "txy", false},
		{`s."say ""hi"""`, "s", `say "hi"`, true},
		{`*.*`, "x", "y", true},
	}
	for _, c := range cases {
		p, err := ParsePattern(c.pattern)
		if err != nil {
			t.Fatalf("%s: %v", c.pattern, err)
		}
		if got := p.Match(c.schema, c.table); got != c.want {
			t.Errorf("%s Match(%q, %q) = %v, want %v", c.pattern, c.schema, c.table, got, c.want)
		}
	}
	if !MustPattern("public.film").Exact() || MustPattern("public.f*").Exact() {
		t.Error("Exact() wrong")
	}
}

// Each bad input is rejected with file:line:column, the key and what was expected.
func TestBadPlans(t *testing.T) {
	cases := []struct{ name, text, want string }{
		{"typo in a key", minimal + "full_lod: {parallel: 2}\n",
			`p.yaml:3:1: full_lod: unknown key (did you mean "full_load"?); expected one of: source, target, tables, full_load, cdc, validation, api, control_schema, cutover`},
		{"typo in a nested key", minimal + "tables:\n  inclde: [public.*]\n",
			`p.yaml:4:3: tables.inclde: unknown key (did you mean "include"?)`},
		{"wrong type", minimal + "full_load: {parallel: many}\n",
			`p.yaml:3:23: full_load.parallel: expected a whole number, got "many"`},
		{"list expected", minimal + "tables: {include: public.*}\n",
			`p.yaml:3:19: tables.include: expected a list`},
		{"bad value", minimal + "full_load: {parallel: 0}\n",
			`p.yaml:3:23: full_load.parallel: expected a number of workers from 1 to 64, got 0`},
		{"bad duration", minimal + "cutover: {max_downtime: soon}\n",
			`p.yaml:3:25: cutover.max_downtime: expected a duration such as 60s, 5m or 1h30m, got "soon"`},
		{"bad enum", minimal + "cdc: {no_identity: ignore}\n",
			`p.yaml:3:20: cdc.no_identity: expected one of error, replica_identity_full, inserts_only, exclude, got "ignore"`},
		{"bad pattern", minimal + "tables: {include: [film]}\n",
			`p.yaml:3:20: tables.include[0]: pattern "film": expected schema.table`},
		{"unclosed quote", minimal + "tables: {include: ['\"Sales.x']}\n",
			`tables.include[0]: pattern "\"Sales.x": a double quote is not closed`},
		{"missing source", "target: {url: postgres://m@new/app}\n",
			`p.yaml:1:1: source.url: is required`},
		{"unset variable", "source:\n  url: postgres://m@old/app\n  password: ${NOPE}\ntarget: {url: postgres://m@new/app}\n",
			`p.yaml:3:13: source.password: environment variable NOPE is not set`},
		{"no scheme", "source: {url: '://m@old/app'}\ntarget: {url: postgres://m@new/app}\n",
			`source.url: is not a valid URL`},
		{"same database", "source: {url: postgres://m@db/app}\ntarget: {url: postgres://m@db/app}\n",
			`target.url: is the same as source.url`},
		{"open api without token", minimal + "api: {listen: \":8420\"}\n",
			`api.listen: ":8420" is reachable from other hosts, so api.token is required`},
		{"bad control schema", minimal + "control_schema: pg_mine\n",
			`p.yaml:3:17: control_schema: "pg_mine" is reserved`},
		{"duplicate key", minimal + "full_load: {parallel: 2}\nfull_load: {parallel: 3}\n",
			`p.yaml:4:1: full_load: given twice`},
		{"not yaml", "source: [\n", `p.yaml`},
		{"empty", "", `the plan is empty`},
		{"password twice", "source: {url: 'postgres://m:pw@old/app', password: pw2}\ntarget: {url: postgres://m@new/app}\n",
			`source.password: the password is also in source.url`},
		{"validation after the load with cdc", minimal + "validation: {after_load: true}\n",
			`validation.after_load: validates at the end of a one-shot copy (cdc.enabled: false)`},
		{"continuous validation of a copy", minimal + "cdc: {enabled: false}\nvalidation: {continuous: true}\n",
			`validation.continuous: validates during change data capture, and cdc.enabled is false`},
		{"string expected", minimal + "cutover: {exempt_roles: [postgres, 42]}\n",
			`p.yaml:3:36: cutover.exempt_roles[1]: expected a string, got a number`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(c.text), env(nil))
			if err == nil {
				t.Fatal("accepted a bad plan")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error\n  %s\ndoes not contain\n  %s", err, c.want)
			}
		})
	}
}

func TestEveryErrorIsReported(t *testing.T) {
	_, err := Parse("p.yaml", []byte(minimal+"full_lod: {}\napi: {lisen: x}\n"), env(nil))
	list, ok := err.(ErrorList)
	if !ok || len(list) != 2 || list[0].Line != 3 || list[1].Line != 4 {
		t.Fatalf("want two positioned errors, got %v", err)
	}
}

func TestEnvExpansion(t *testing.T) {
	e := env(map[string]string{"A": "x", "EMPTY": ""})
	for in, want := range map[string]string{
		"${A}":           "x",
		"pre-${A}-post":  "pre-x-post",
		"${B:-dflt}":     "dflt",
		"${EMPTY:-dflt}": "",
		"$${A}":          "${A}",
		"no vars":        "no vars",
		"$A":             "$A",
	} {
		got, err := expandEnv(in, e)
		if err != nil || got != want {
			t.Errorf("expandEnv(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"${A", "${1X}", "${B}"} {
		if _, err := expandEnv(bad, e); err == nil {
			t.Errorf("expandEnv(%q) accepted", bad)
		}
	}
}

// The plan cutover init writes loads back unchanged, with passwords moved out of the URLs.
func TestRenderRoundTrip(t *testing.T) {
	w, err := Render(Init{SourceURL: "postgres://mig:p%40ss@old:5432/app?sslmode=disable", TargetURL: "host=new dbname=app user=mig password='x y'"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(w.Text, "p@ss") || strings.Contains(w.Text, "p%40ss") || strings.Contains(w.Text, "x y") {
		t.Fatalf("password left in the plan:\n%s", w.Text)
	}
	if len(w.EnvVars) != 2 {
		t.Fatalf("EnvVars = %v", w.EnvVars)
	}
	p, err := Parse("init.yaml", []byte(w.Text), env(map[string]string{"CUTOVER_SOURCE_PASSWORD": "p@ss", "CUTOVER_TARGET_PASSWORD": "x y"}))
	if err != nil {
		t.Fatalf("%v\n%s", err, w.Text)
	}
	if p.Source.URL != "postgres://mig@old:5432/app?sslmode=disable" || p.Source.Password != "p@ss" || p.Target.Password != "x y" {
		t.Fatalf("round trip: %+v", p)
	}
	d := Defaults()
	if p.FullLoad != d.FullLoad || p.Cutover.MaxDowntime != d.Cutover.MaxDowntime || p.API != d.API || p.CDC != d.CDC || p.Validation != d.Validation {
		t.Fatalf("rendered defaults differ: %+v", p)
	}
	if !strings.Contains(w.Text, "track_changes: true") {
		t.Fatalf("cutover init's plan does not track changes:\n%s", w.Text)
	}
}
