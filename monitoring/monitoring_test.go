package monitoring

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cutover-dev/cutover/internal/metrics"
)

const (
	dashboardFile = "grafana-dashboard.json"
	rulesFile     = "alerts.yml"
)

// exposed returns the metric names the binary's registry serves, as a query may
// name them (a counter's _total, a histogram's _bucket, _sum and _count), and the
// families from its # TYPE lines.
func exposed(t *testing.T) (names map[string]bool, families []string) {
	t.Helper()
	m := metrics.New()
	// One report of each kind, so every vector has a child and shows in the output.
	m.Latency(1500*time.Millisecond, 2*time.Second, 3)
	m.Applied("public.t", "insert", 1)
	m.FullLoadRows("public.t", 1)
	m.Exception()
	m.Mismatched("public.t", 1)
	m.RetainedWAL(1)

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	names = map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" {
			continue
		}
		name, kind := f[2], f[3]
		families = append(families, name)
		names[name] = true
		switch kind {
		case "counter":
			names[strings.TrimSuffix(name, "_total")+"_total"] = true
		case "histogram", "gaugehistogram":
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case "summary":
			names[name+"_sum"], names[name+"_count"] = true, true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cutover_cdc_latency_target_seconds", "cutover_applied_changes_total"} {
		if !names[want] {
			t.Fatalf("the registry does not serve %s: is the exposition parsed right?", want)
		}
	}
	return names, families
}

// metricPrefixes are the names the binary serves: its own and those of the Go
// runtime's and the process's collectors it registers.
var metricPrefixes = []string{"cutover_", "go_", "process_"}

var (
	stringLiteral = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	identifier    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// metricNames returns the identifiers of expr that name one of the binary's
// metrics (by prefix), leaving out string literals such as label values.
func metricNames(expr string) []string {
	var out []string
	for _, id := range identifier.FindAllString(stringLiteral.ReplaceAllString(expr, `""`), -1) {
		for _, p := range metricPrefixes {
			if strings.HasPrefix(id, p) && !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	return out
}

// unknownMetrics returns the metric names of expr the binary does not serve.
func unknownMetrics(expr string, served map[string]bool) []string {
	var out []string
	for _, n := range metricNames(expr) {
		if !served[n] {
			out = append(out, n)
		}
	}
	return out
}

// unbalanced reports the first bracket of expr (outside strings) that is not closed
// or not opened.
func unbalanced(expr string) error {
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	var open []rune
	for _, r := range stringLiteral.ReplaceAllString(expr, `""`) {
		switch r {
		case '(', '[', '{':
			open = append(open, r)
		case ')', ']', '}':
			if len(open) == 0 || open[len(open)-1] != pairs[r] {
				return fmt.Errorf("%q closes nothing", r)
			}
			open = open[:len(open)-1]
		}
	}
	if len(open) > 0 {
		return fmt.Errorf("%q is not closed", open[len(open)-1])
	}
	return nil
}

func TestCheckerCatchesUnknownMetrics(t *testing.T) {
	served, _ := exposed(t)
	cases := []struct {
		expr string
		want []string
	}{
		{`sum by (table) (rate(cutover_applied_changes_total{job=~"$job"}[$__rate_interval]))`, nil},
		{`rate(cutover_applied_change_total[5m])`, []string{"cutover_applied_change_total"}},
		{`cutover_cdc_latency_target_second > 60`, []string{"cutover_cdc_latency_target_second"}},
		{`cutover_cdc_latency_target_seconds_total`, []string{"cutover_cdc_latency_target_seconds_total"}},
		{`absent(up{job="cutover", table="cutover_not_a_metric"})`, nil},
		{`rate(process_cpu_seconds_total[5m]) + go_goroutine`, []string{"go_goroutine"}},
	}
	for _, c := range cases {
		if got := unknownMetrics(c.expr, served); !slices.Equal(got, c.want) {
			t.Errorf("unknownMetrics(%s) = %q, want %q", c.expr, got, c.want)
		}
	}
	if err := unbalanced(`sum(rate(x[5m])`); err == nil {
		t.Error("unbalanced missed an unclosed parenthesis")
	}
}

// panel is what the test reads of a Grafana panel; rows hold their panels when collapsed.
type panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	Targets    []struct {
		Expr       string          `json:"expr"`
		RefID      string          `json:"refId"`
		Datasource json.RawMessage `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// input is one of the things Grafana asks for at import (__inputs).
type input struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	PluginID string `json:"pluginId"`
}

type dashboard struct {
	Inputs        []input `json:"__inputs"`
	SchemaVersion int     `json:"schemaVersion"`
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func walk(ps []panel, f func(panel)) {
	for _, p := range ps {
		f(p)
		walk(p.Panels, f)
	}
}

// variableQuery returns a template variable's query, which Grafana stores as a
// string or as an object with a query field.
func variableQuery(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(raw, &o)
	return o.Query
}

var (
	variableRef = regexp.MustCompile(`\$(?:\{([a-zA-Z0-9_]+)(?::[a-z]+)?\}|([a-zA-Z0-9_]+))`)
	grafanaVars = []string{"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms"}
)

func TestDashboard(t *testing.T) {
	served, families := exposed(t)
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.Title == "" || d.UID == "" || d.SchemaVersion < 36 {
		t.Errorf("title %q, uid %q, schemaVersion %d: want a title, a uid and schemaVersion >= 36", d.Title, d.UID, d.SchemaVersion)
	}
	if !slices.ContainsFunc(d.Inputs, func(in input) bool {
		return in.Name == "DS_PROMETHEUS" && in.Type == "datasource" && in.PluginID == "prometheus"
	}) {
		t.Error("__inputs lacks the DS_PROMETHEUS datasource input")
	}

	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		q := variableQuery(v.Query)
		if v.Type == "datasource" && q != "prometheus" {
			t.Errorf("variable %s: a datasource variable of type %q, want prometheus", v.Name, q)
		}
		if v.Type == "query" {
			if bad := unknownMetrics(q, served); len(bad) > 0 {
				t.Errorf("variable %s queries %v, which the binary does not serve", v.Name, bad)
			}
		}
	}
	for _, want := range []string{"datasource", "job", "instance"} {
		if !vars[want] {
			t.Errorf("no %q template variable", want)
		}
	}

	ds := `"${datasource}"`
	ids := map[int]string{}
	used := map[string]bool{}
	walk(d.Panels, func(p panel) {
		if strings.TrimSpace(p.Title) == "" {
			t.Errorf("panel %d (%s) has no title", p.ID, p.Type)
		}
		if p.ID <= 0 {
			t.Errorf("panel %q has no id", p.Title)
		} else if other, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			return
		}
		if !strings.Contains(string(p.Datasource), ds) {
			t.Errorf("panel %q: datasource %s, want uid %s", p.Title, p.Datasource, ds)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			where := fmt.Sprintf("panel %q, query %s", p.Title, tg.RefID)
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("%s: no expr", where)
				continue
			}
			if !strings.Contains(string(tg.Datasource), ds) {
				t.Errorf("%s: datasource %s, want uid %s", where, tg.Datasource, ds)
			}
			if bad := unknownMetrics(tg.Expr, served); len(bad) > 0 {
				t.Errorf("%s uses %v, which the binary does not serve: %s", where, bad, tg.Expr)
			}
			if len(metricNames(tg.Expr)) == 0 && !strings.Contains(tg.Expr, "up{") {
				t.Errorf("%s names no metric of the binary: %s", where, tg.Expr)
			}
			if !strings.Contains(tg.Expr, `instance=~"$instance"`) {
				t.Errorf("%s ignores the instance variable: %s", where, tg.Expr)
			}
			if err := unbalanced(tg.Expr); err != nil {
				t.Errorf("%s: %v: %s", where, err, tg.Expr)
			}
			for _, ref := range variableRef.FindAllStringSubmatch(tg.Expr, -1) {
				name := ref[1] + ref[2]
				if !vars[name] && !slices.Contains(grafanaVars, name) {
					t.Errorf("%s: $%s is not a variable of the dashboard", where, name)
				}
			}
			for _, n := range metricNames(tg.Expr) {
				used[n] = true
			}
		}
	})

	// Every metric of cutover's own has a panel.
	for _, f := range families {
		if strings.HasPrefix(f, "cutover_") && !used[f] {
			t.Errorf("no panel shows %s", f)
		}
	}
}

// ruleFile is Prometheus's rule file format; unknown keys are errors.
type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Limit    int    `yaml:"limit"`
		Rules    []struct {
			Alert         string            `yaml:"alert"`
			Record        string            `yaml:"record"`
			Expr          string            `yaml:"expr"`
			For           string            `yaml:"for"`
			KeepFiringFor string            `yaml:"keep_firing_for"`
			Labels        map[string]string `yaml:"labels"`
			Annotations   map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

var promDuration = regexp.MustCompile(`^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$`)

func TestAlertRules(t *testing.T) {
	served, _ := exposed(t)
	f, err := os.Open(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	var rf ruleFile
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	if len(rf.Groups) == 0 {
		t.Fatalf("%s has no groups", rulesFile)
	}
	groups, alerts := map[string]bool{}, map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" || groups[g.Name] {
			t.Errorf("group name %q is empty or repeated", g.Name)
		}
		groups[g.Name] = true
		for i, r := range g.Rules {
			where := fmt.Sprintf("group %s, rule %d (%s)", g.Name, i, r.Alert+r.Record)
			if (r.Alert == "") == (r.Record == "") {
				t.Errorf("%s: needs exactly one of alert and record", where)
			}
			if r.Alert != "" {
				if alerts[r.Alert] {
					t.Errorf("%s: alert name repeated", where)
				}
				alerts[r.Alert] = true
				if s := r.Labels["severity"]; !slices.Contains([]string{"info", "warning", "critical"}, s) {
					t.Errorf("%s: labels.severity %q, want info, warning or critical", where, s)
				}
				for _, a := range []string{"summary", "description"} {
					if strings.TrimSpace(r.Annotations[a]) == "" {
						t.Errorf("%s: no annotations.%s", where, a)
					}
				}
			}
			for _, d := range []string{r.For, r.KeepFiringFor} {
				if d != "" && d != "0" && !promDuration.MatchString(d) {
					t.Errorf("%s: %q is not a Prometheus duration", where, d)
				}
			}
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("%s: no expr", where)
				continue
			}
			if bad := unknownMetrics(r.Expr, served); len(bad) > 0 {
				t.Errorf("%s uses %v, which the binary does not serve: %s", where, bad, r.Expr)
			}
			if err := unbalanced(r.Expr); err != nil {
				t.Errorf("%s: %v: %s", where, err, r.Expr)
			}
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool is not on PATH: rules not checked with promtool check rules")
		return
	}
	if out, err := exec.Command(promtool, "check", "rules", rulesFile).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules %s: %v\n%s", rulesFile, err, out)
	}
}
