package engine_test

import (
	"os"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/postgres"
)

func TestMain(m *testing.M) {
	engine.Register(postgres.Engine{})
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
	if err == nil || err.Error() != "mysql is not supported yet: this cutover migrates PostgreSQL (postgres://, postgresql://)" {
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

type third struct{}

func (third) Name() string              { return "Third" }
func (third) Schemes() []string         { return []string{"third"} }
func (third) CheckURL(url string) error { return nil }

func TestPairOfEnginesWithoutAMigration(t *testing.T) {
	engine.Register(third{})
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
