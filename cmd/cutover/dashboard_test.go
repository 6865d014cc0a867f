package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/cutover-dev/cutover/pgtest"
	"github.com/cutover-dev/cutover/redact"
)

// browser starts headless Chromium for a test.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("Chromium is not installed: run make test (as root it installs it), or apt-get install chromium chromium-driver")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 1400), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// page reads what the dashboard shows.
type page struct {
	t   *testing.T
	ctx context.Context
	l   *live // the task serving it
}

// text is the text of the first element sel matches, "" when there is none.
func (p page) text(sel string) string {
	p.t.Helper()
	var s string
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, chromedp.Evaluate(fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent`, sel), &s)); err != nil {
		p.t.Fatalf("read %s: %v", sel, err)
	}
	return s
}

// waitShows waits until the page shows, at sel, what want returns (read again from
// the control tables each time): the page refreshes itself every 2 seconds. A
// minute without agreeing fails.
func (p page) waitShows(what, sel string, want func() string) {
	p.t.Helper()
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		got, w := p.text(sel), want()
		if got == w {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the dashboard shows %s = %q, the control tables say %q", what, got, w)
		}
		select {
		case <-tick.C:
		case <-p.l.done:
			p.t.Fatalf("cutover start ended while the dashboard was read:\n%s", p.l.output())
		}
	}
}

func (p page) screenshot(name string) {
	p.t.Helper()
	dir := os.Getenv("CUTOVER_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "bin", "screenshots")
	}
	var png []byte
	if err := chromedp.Run(p.ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	abs, _ := filepath.Abs(file)
	p.t.Logf("screenshot: %s", abs)
}

// commas formats n as the page does (en-US grouping).
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// The dashboard in a real browser during a real migration: it asks for the token,
// then shows the phase, the tables' counters and validation state, the latency
// history and an apply exception as the control tables hold them; the switch's
// steps live, and its runbook with the downtime after it. Not parallel: it
// switches, which blocks every login role of its servers.
func TestDashboardInABrowser(t *testing.T) {
	src, tgt := pgtest.NewDB(t, pgtest.CronServer(t, "source")), pgtest.NewDB(t, pgtest.CronServer(t, "target"))
	src.Exec(t, `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 500) i`)
	dir := t.TempDir()
	const token = "dash-token-0123456789"
	password := redact.Password(src.URL())
	if password == "" {
		t.Fatal("the test servers' URLs have no password: the test would not see one leak")
	}
	plan := fmt.Sprintf(`source: {url: %q}
target: {url: %q}
cdc: {on_error: log}
api: {listen: "127.0.0.1:0", token: %q}
cutover: {hook_timeout: 5m, hooks: {switch: ["touch switching; while [ ! -e go-on ]; do sleep 0.05; done"]}}
`, src.URL(), tgt.URL(), token)
	if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
	task := startLive(t, dir, false, "start")
	task.waitFor(t, "the dashboard's address", func(out string) bool { return strings.Contains(out, "dashboard: http://") })
	url := regexp.MustCompile(`dashboard: (http://\S+)`).FindStringSubmatch(task.output())[1]
	if strings.Contains(task.output(), token) {
		t.Fatal("cutover start printed the api.token")
	}
	task.waitFor(t, "change data capture", func(out string) bool { return strings.Contains(out, "change data capture from slot") })

	// Changes, and one the target refuses (a row already there): an apply exception.
	// table_stats counts the source's changes, the refused insert with them.
	tgt.Exec(t, "INSERT INTO t VALUES (9001, 'already on the target')")
	src.Exec(t, `INSERT INTO t SELECT i, 'new' || i FROM generate_series(501, 530) i;
		UPDATE t SET v = v || '!' WHERE id <= 12; DELETE FROM t WHERE id BETWEEN 100 AND 104;
		INSERT INTO t VALUES (9001, 'already on the target')`)
	waitForTarget(t, tgt, task, "SELECT count(*) = 1 FROM cutover.apply_exceptions")
	waitForTarget(t, tgt, task, "SELECT inserts = 31 AND updates = 12 AND deletes = 5 FROM cutover.table_stats")

	ctx := browser(t)
	p := page{t: t, ctx: ctx, l: task}
	// Without the token the page asks for it; the data is not shown.
	if err := chromedp.Run(ctx, chromedp.Navigate(url), chromedp.WaitVisible("#token-form", chromedp.ByQuery)); err != nil {
		t.Fatalf("the dashboard without the token: %v", err)
	}
	if p.text("#tables tbody") != "" {
		t.Fatal("the dashboard shows tables without the token")
	}
	if err := chromedp.Run(ctx, chromedp.SendKeys("#token-input", token, chromedp.ByQuery), chromedp.Click("#token-form button", chromedp.ByQuery),
		chromedp.WaitVisible("#main", chromedp.ByQuery)); err != nil {
		t.Fatalf("the dashboard with the token typed in: %v", err)
	}
	// Opened as the start command says, with the token in the fragment.
	if err := chromedp.Run(ctx, chromedp.Navigate(url+"#token="+token), chromedp.WaitVisible("#main", chromedp.ByQuery)); err != nil {
		t.Fatalf("the dashboard with #token=: %v", err)
	}
	var address string
	if err := chromedp.Run(ctx, chromedp.Location(&address)); err != nil || strings.Contains(address, token) {
		t.Fatalf("the token stays in the address bar: %q (%v)", address, err)
	}

	q := func(sql string) func() string {
		return func() string { return pgtest.QueryVal[string](t, tgt, sql) }
	}
	row := `#tables tr[data-table="public.t"] td[data-col="%s"]`
	p.waitShows("the phase", "#phase", q("SELECT phase FROM cutover.state"))
	p.waitShows("which side is live", "#sides", func() string { return "live: source; target closed" })
	for _, col := range []string{"rows", "inserts", "updates", "deletes", "truncates"} {
		col := col
		p.waitShows("public.t's "+col, fmt.Sprintf(row, col), func() string {
			return commas(pgtest.QueryVal[int64](t, tgt, "SELECT "+col+" FROM cutover.table_stats WHERE table_name = 't'"))
		})
	}
	p.waitShows("the apply exceptions", "#exceptions-count", q("SELECT count(*)::text FROM cutover.apply_exceptions WHERE NOT resolved"))
	p.waitShows("the apply exception's id", "#exceptions tbody tr td:first-child", q("SELECT id::text FROM cutover.apply_exceptions"))
	if got := p.text("#exceptions tbody tr td.detail"); !strings.Contains(got, "duplicate key") {
		t.Errorf("the apply exception's error on the dashboard: %q", got)
	}

	// The chart draws latency_history: its last point is a row of the table, and it
	// has every row of the hour up to that point.
	var chart struct{ At, Points, Last string }
	deadline := time.Now().Add(time.Minute)
	for chart.At == "" {
		if time.Now().After(deadline) {
			t.Fatal("the chart drew no point in a minute")
		}
		// One read, so that a refresh cannot fall between the figures.
		if err := chromedp.Run(ctx, chromedp.Evaluate(`(c => ({At: c.dataset.lastAt || "", Points: c.dataset.points || "", Last: c.dataset.lastTarget || ""}))(document.getElementById("chart"))`, &chart)); err != nil {
			t.Fatal(err)
		}
	}
	points, _ := strconv.Atoi(chart.Points)
	last, _ := strconv.ParseFloat(chart.Last, 64)
	if n := pgtest.QueryVal[int](t, tgt, "SELECT count(*)::int FROM cutover.latency_history WHERE measured_at <= $1::timestamptz AND measured_at >= $1::timestamptz - interval '1 hour'", chart.At); points != n || n == 0 {
		t.Errorf("the chart has %d points up to %s, latency_history %d", points, chart.At, n)
	}
	if want := pgtest.QueryVal[float64](t, tgt, "SELECT extract(epoch FROM target_latency)::float8 FROM cutover.latency_history WHERE measured_at = $1::timestamptz", chart.At); last != want {
		t.Errorf("the chart's last target latency is %v, latency_history says %v", last, want)
	}

	// Validation, and the exception resolved: the switch's gates hold.
	if r := run(t, dir, nil, "validate"); r.code != 0 {
		t.Fatalf("validate: %+v", r)
	}
	tgt.Exec(t, "UPDATE cutover.apply_exceptions SET resolved = true")
	p.waitShows("public.t's validation", fmt.Sprintf(row, "validation"), q("SELECT validation_state FROM cutover.table_stats WHERE table_name = 't'"))
	p.waitShows("no apply exceptions", "#exceptions-count", q("SELECT count(*)::text FROM cutover.apply_exceptions WHERE NOT resolved"))

	// The switch, live: the page shows the running step as the runbook table has it.
	sw := startLive(t, dir, false, "switch", "--yes")
	waitFile(t, filepath.Join(dir, "switching"), sw)
	step := `#steps tr[data-step="%s"] td:nth-child(3)`
	p.waitShows("the switch step's outcome", fmt.Sprintf(step, "switch"), q("SELECT outcome FROM cutover.runbook WHERE step = 'switch'"))
	if got := p.text(fmt.Sprintf(step, "switch")); got != "running" {
		t.Fatalf("the switch step shows %q during the switch hook", got)
	}
	p.waitShows("the block step's outcome", fmt.Sprintf(step, "block"), q("SELECT outcome FROM cutover.runbook WHERE step = 'block'"))
	p.waitShows("the phase", "#phase", q("SELECT phase FROM cutover.state"))
	if got := p.text("#run-summary"); !strings.Contains(got, "writes blocked for") {
		t.Errorf("the run's summary during the switch: %q", got)
	}
	p.screenshot("dashboard-switching.png")
	if err := os.WriteFile(filepath.Join(dir, "go-on"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := sw.wait(t); code != 0 {
		t.Fatalf("switch: exit %d\n%s", code, out)
	}
	p.waitShows("the run's outcome", "#run-outcome", q("SELECT outcome FROM cutover.runs"))
	if got, want := p.text("#run-title"), "Switch "+pgtest.QueryVal[string](t, tgt, "SELECT id FROM cutover.runs"); got != want {
		t.Errorf("the run's title: %q, want %q", got, want)
	}
	downtime := pgtest.QueryVal[float64](t, tgt, "SELECT extract(epoch FROM downtime)::float8 FROM cutover.runs")
	if got := p.text("#run-summary"); !strings.Contains(got, "write downtime "+pageSeconds(downtime)) {
		t.Errorf("the runbook's summary: %q, want the downtime %s", got, pageSeconds(downtime))
	}
	p.waitShows("the phase after the switch", "#phase", q("SELECT phase FROM cutover.state"))
	p.screenshot("dashboard-switched.png")

	// Nothing the page holds is a secret.
	var html string
	if err := chromedp.Run(ctx, chromedp.OuterHTML("html", &html, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{token, password} {
		if strings.Contains(html, secret) {
			t.Errorf("the dashboard holds the secret %q", secret)
		}
	}
	if r := run(t, dir, nil, "finish", "--yes"); r.code != 0 {
		t.Fatalf("finish: %+v", r)
	}
	if code, out := task.wait(t); code != 0 {
		t.Fatalf("the task: exit %d\n%s", code, out)
	}
}

// pageSeconds formats seconds as the page does.
func pageSeconds(s float64) string {
	switch {
	case s < 1:
		return fmt.Sprintf("%d ms", int64(s*1000+0.5))
	case s < 10:
		return fmt.Sprintf("%.2f s", s)
	case s < 120:
		return fmt.Sprintf("%.1f s", s)
	}
	return fmt.Sprintf("%d min %d s", int(s)/60, int(s+0.5)%60)
}
