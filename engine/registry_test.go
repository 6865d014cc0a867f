package engine_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/load"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/postgres"
	"github.com/cutover-dev/cutover/validate"
)

func TestMain(m *testing.M) {
	engine.Register(postgres.Engine{})
	engine.Register(third{})
	engine.Register(fourth{})
	os.Exit(m.Run())
}

func TestEngineByScheme(t *testing.T) {
	for _, url := range []string{"postgres://m@db:5432/app", "postgresql://m@db/app", "POSTGRES://m@db/app", "host=db dbname=app user=m"} {
		e, err := engine.ForURL(url)
		if err != nil || e.Name() != "PostgreSQL" {
			t.Errorf("%s: got %v, %v; want PostgreSQL", url, e, err)
		}
	}
	_, err := engine.ForURL("mysql://m@db/app")
	if err == nil || err.Error() != "mysql is not supported yet: this cutover migrates PostgreSQL (postgres://, postgresql://) and Third (third://) and Fourth (fourth://)" {
		t.Errorf("mysql: %v", err)
	}
}

func TestPlanURLsCheckedByTheirEngine(t *testing.T) {
	cases := []struct{ source, want string }{
		{"mysql://m@old/app", "source.url: mysql is not supported yet"},
		{"'host=old port=many dbname=app'", "source.url: is not a valid PostgreSQL connection string"},
		{"'postgres://m:secret@old:99999/app'", "source.url: is not a valid PostgreSQL connection string"},
	}
	for _, c := range cases {
		text := "source: {url: " + c.source + "}\ntarget: {url: postgres://m@new/app}\n"
		_, err := plan.ParseChecked("p.yaml", []byte(text), func(string) (string, bool) { return "", false }, engine.CheckURL)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.source, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows the password: %v", c.source, err)
		}
	}
	p, err := plan.ParseChecked("p.yaml", []byte("source: {url: 'host=old dbname=app'}\ntarget: {url: postgres://m@new/app}\n"),
		func(string) (string, bool) { return "", false }, engine.CheckURL)
	if err != nil {
		t.Fatalf("a key=value source: %v", err)
	}
	if _, err := engine.Open(p); err != nil {
		t.Fatalf("open PostgreSQL to PostgreSQL: %v", err)
	}
}

type other struct{}

func (other) Name() string              { return "Other" }
func (other) Schemes() []string         { return []string{"other", "postgres"} }
func (other) CheckURL(url string) error { return nil }

func TestSchemeRegisteredTwicePanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), `scheme "postgres" registered by PostgreSQL and Other`) {
			t.Fatalf("recovered %v", r)
		}
	}()
	engine.Register(other{})
}

// third is an engine that runs no command but cutover validate.
type third struct{}

func (third) Name() string              { return "Third" }
func (third) Schemes() []string         { return []string{"third"} }
func (third) CheckURL(url string) error { return nil }
func (third) Validate(context.Context, *plan.Plan, validate.Options) (*validate.Report, error) {
	return &validate.Report{}, nil
}

func TestPairOfEnginesWithoutAMigration(t *testing.T) {
	p, err := plan.ParseChecked("p.yaml", []byte("source: {url: third://old/app}\ntarget: {url: postgres://m@new/app}\n"),
		func(string) (string, bool) { return "", false }, engine.CheckURL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = engine.Open(p)
	if err == nil || !strings.Contains(err.Error(), "a migration from Third to PostgreSQL is not supported yet") {
		t.Fatalf("got %v", err)
	}
}

// An engine that runs some of the commands (a new one, command by command) gets a
// migration between two of its servers whose other commands say they do not run yet.
func TestEngineWithSomeCommands(t *testing.T) {
	p, err := plan.ParseChecked("p.yaml", []byte("source: {url: third://old/app}\ntarget: {url: third://new/app}\n"),
		func(string) (string, bool) { return "", false }, engine.CheckURL)
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(t.Context(), p, engine.StartOptions{}); err == nil || err.Error() != "cutover start does not run on Third yet: this cutover runs cutover validate there" {
		t.Errorf("start: %v", err)
	}
	if r := m.Assess(t.Context(), p, engine.AssessOptions{}); !r.Failed() || r.Findings[0].Check != "engine" {
		t.Errorf("check: %+v", r.Findings)
	}
	if _, err := m.Validate(t.Context(), p, validate.Options{}); err != nil {
		t.Errorf("validate: %v", err)
	}
}

// The commands learn before they begin whether they run on the plan's engines.
func TestRunsSaysWhichCommandsRun(t *testing.T) {
	third, err := plan.ParseChecked("p.yaml", []byte("source: {url: third://old/app}\ntarget: {url: third://new/app}\n"),
		func(string) (string, bool) { return "", false }, engine.CheckURL)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := plan.ParseChecked("p.yaml", []byte("source: {url: postgres://old/app}\ntarget: {url: postgres://new/app}\n"),
		func(string) (string, bool) { return "", false }, engine.CheckURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p       *plan.Plan
		command string
		want    string
	}{
		{third, "validate", ""}, {third, "init", ""},
		{third, "switch", "cutover switch does not run on Third yet: this cutover runs cutover validate there"},
		{third, "finish", "cutover finish does not run on Third yet"},
		{pg, "switch", ""}, {pg, "start", ""},
	} {
		m, err := engine.Open(c.p)
		if err != nil {
			t.Fatal(err)
		}
		err = engine.Runs(m, c.command)
		if (c.want == "") != (err == nil) || (err != nil && !strings.HasPrefix(err.Error(), c.want)) {
			t.Errorf("%s on %s: got %v, want %q", c.command, c.p.Source.URL, err, c.want)
		}
	}
}

// fourth can be the source of a migration to another engine; PostgreSQL can be its
// target: the two make a pair, whose commands that do not run yet say so.
type fourth struct{}

func (fourth) Name() string              { return "Fourth" }
func (fourth) Schemes() []string         { return []string{"fourth"} }
func (fourth) CheckURL(url string) error { return nil }
func (fourth) LoadSource(*plan.Plan, load.Display) load.SourceHalf {
	return nil
}
func (fourth) Feed(context.Context, *plan.Plan, control.State) (*engine.ChangeFeed, error) {
	return nil, nil
}
func (fourth) Scanner(context.Context, *plan.Plan) (*engine.SourceScanner, error) { return nil, nil }
func (fourth) AssessSource(context.Context, *plan.Plan, engine.AssessOptions) *check.Report {
	return &check.Report{}
}

func TestPairOfEngines(t *testing.T) {
	p, err := plan.ParseChecked("p.yaml", []byte("source: {url: fourth://old/app}\ntarget: {url: postgres://m@new/app}\n"),
		func(string) (string, bool) { return "", false }, engine.CheckURL)
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.Open(p)
	if err != nil {
		t.Fatalf("open Fourth to PostgreSQL: %v", err)
	}
	for command, want := range map[string]string{
		"check": "", "start": "", "status": "", "finish": "",
		"validate": "",
		"switch":   "cutover switch does not run from Fourth to PostgreSQL yet",
		"rollback": "cutover rollback does not run from Fourth to PostgreSQL yet",
	} {
		err := engine.Runs(m, command)
		if (want == "") != (err == nil) || (err != nil && !strings.HasPrefix(err.Error(), want)) {
			t.Errorf("%s: got %v, want %q", command, err, want)
		}
	}
	// PostgreSQL is no source of a pair: the other way is refused, naming the pair
	// that is.
	back, err := plan.ParseChecked("p.yaml", []byte("source: {url: postgres://m@old/app}\ntarget: {url: fourth://new/app}\n"),
		func(string) (string, bool) { return "", false }, engine.CheckURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Open(back); err == nil || !strings.Contains(err.Error(), "a migration from PostgreSQL to Fourth is not supported yet") ||
		!strings.Contains(err.Error(), "and Fourth to PostgreSQL") {
		t.Errorf("PostgreSQL to Fourth: %v", err)
	}
}
