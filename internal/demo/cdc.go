package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// controlSchema is the plan's control_schema: the demo keeps cutover init's default.
const controlSchema = "cutover"

// capture is cutover start running in the background, in change data capture.
type capture struct {
	*background
	api  string // where it serves /metrics and /api/status: http://host:port
	from string // the position change data capture began at
}

// startCDC starts cutover start in the background and waits until the full load is
// done and change data capture runs.
func (d *demo) startCDC(ctx context.Context, app *application) (*capture, error) {
	began := time.Now()
	bg, err := d.background(ctx, "start", "-c", d.plan)
	if err != nil {
		return nil, err
	}
	c := &capture{background: bg}
	line, err := bg.waitLine(ctx, "serving /metrics and /api/status on http://", time.Minute)
	if err == nil {
		c.api = line[strings.LastIndex(line, "http://"):]
		say("\n  >>> the dashboard: open %s/ in a browser while the demo runs", c.api)
		if pauses() {
			say(" (the demo pauses at each stage)\n")
		} else {
			say("\n  >>> (make demo PAUSE=1 pauses at each stage to look at it)\n")
		}
		line, err = bg.waitLine(ctx, "change data capture from slot", 5*time.Minute)
	}
	if err != nil {
		bg.stop(time.Minute)
		return nil, err
	}
	c.from = line[strings.LastIndex(line, " ")+1:]
	say("\n  full load done and change data capture running %v after cutover start; the writer has made %d transactions\n",
		time.Since(began).Round(time.Millisecond), app.w.txns.Load())
	return c, nil
}

// watchCDC lets change data capture run under the writer until cutover's first
// periodic report, checks the target is applying, and shows status and metrics.
func (d *demo) watchCDC(ctx context.Context, c *capture, tc *pgx.Conn) error {
	if _, err := c.waitLine(ctx, "transactions applied", time.Minute); err != nil {
		return err
	}
	pos, cmp, err := applied(ctx, tc, c.from)
	if err != nil {
		return err
	}
	if cmp <= 0 {
		return fmt.Errorf("the target's applied position is %q, not past %s where change data capture began, with the writer running", pos, c.from)
	}
	say("  the target has applied the source up to %s (change data capture began at %s)\n", pos, c.from)
	if _, err := d.cutover(ctx, "status", "-c", d.plan); err != nil {
		return err
	}
	if err := showLatencyMetrics(ctx, c.api); err != nil {
		return err
	}
	return showDashboard(ctx, c.api)
}

// showDashboard reads what the dashboard draws, /api/dashboard, and sums it up.
func showDashboard(ctx context.Context, api string) error {
	say("\n  $ curl -s %s/api/dashboard   (what the dashboard at %s/ draws)\n", api, api)
	body, err := get(ctx, api+"/api/dashboard")
	if err != nil {
		return err
	}
	var doc struct {
		Status struct {
			Phase  string `json:"phase"`
			Next   string `json:"next"`
			Tables []any  `json:"tables"`
		} `json:"status"`
		History []any `json:"latency_history"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("GET %s/api/dashboard: %w", api, err)
	}
	say("  phase %s, %d tables, %d latency points so far; next: %s\n", doc.Status.Phase, len(doc.Status.Tables), len(doc.History), doc.Status.Next)
	return nil
}

// get reads a page cutover start serves.
func get(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = errors.New(resp.Status)
	}
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return body, nil
}

// pauses says whether the demo waits for Enter at each stage (make demo PAUSE=1).
func pauses() bool {
	return os.Getenv("CUTOVER_DEMO_PAUSE") != "" && os.Getenv("CUTOVER_DEMO_PAUSE") != "0"
}

// pause waits for Enter when the demo pauses, so the dashboard can be looked at.
func pause(api, what string) {
	if !pauses() {
		return
	}
	say("\n  >>> paused: %s; the dashboard is at %s/ — press Enter to go on ", what, api)
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
}

// applied reads the target's applied position (the source position of the last
// transaction the target committed) and compares it with lsn: -1 before it (or
// nothing applied yet), 0 at it, 1 past it.
func applied(ctx context.Context, tc *pgx.Conn, lsn string) (pos string, cmp int, err error) {
	err = tc.QueryRow(ctx, `SELECT applied_position,
		CASE WHEN applied_position = '' THEN -1 ELSE sign(pg_wal_lsn_diff(applied_position::pg_lsn, $1::pg_lsn))::int END
		FROM `+pgx.Identifier{controlSchema, "state"}.Sanitize(), lsn).Scan(&pos, &cmp)
	if err != nil {
		return "", 0, fmt.Errorf("read the applied position on the target: %w", err)
	}
	return pos, cmp, nil
}

// showLatencyMetrics prints the latency gauges cutover start serves on /metrics.
func showLatencyMetrics(ctx context.Context, api string) error {
	say("\n  $ curl -s %s/metrics | grep ^cutover_cdc_latency_\n", api)
	body, err := get(ctx, api+"/metrics")
	if err != nil {
		return err
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "cutover_cdc_latency_") {
			lines = append(lines, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("GET %s/metrics: %w", api, err)
	}
	if len(lines) == 0 {
		return fmt.Errorf("GET %s/metrics: no cutover_cdc_latency_ lines", api)
	}
	say("%s\n", strings.Join(lines, "\n"))
	if !slices.ContainsFunc(lines, func(l string) bool { return !strings.HasSuffix(l, " 0") }) {
		say("  (0 means caught up: AWS DMS's meaning of latency, as the README explains)\n")
	}
	return nil
}
