package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/internal/metrics"
)

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServerServesMetricsAndStatus(t *testing.T) {
	m := metrics.New()
	m.Latency(1500*time.Millisecond, 2*time.Second, 3)
	m.Applied("public.t", "insert", 5)
	s, err := Start("127.0.0.1:0", m, Options{Status: func(context.Context) (any, error) { return map[string]string{"phase": "cdc"}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	code, body := get(t, "http://"+s.Addr()+"/metrics", "")
	for _, want := range []string{"cutover_cdc_latency_source_seconds 1.5", "cutover_cdc_latency_target_seconds 2", "cutover_cdc_incoming_changes 3",
		`cutover_applied_changes_total{op="insert",table="public.t"} 5`, "cutover_slot_retained_wal_bytes 0", "cutover_apply_exceptions_total 0"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics %d lacks %q", code, want)
		}
	}
	if code, body := get(t, "http://"+s.Addr()+"/api/status", ""); code != 200 || !strings.Contains(body, `"phase": "cdc"`) {
		t.Errorf("/api/status %d: %s", code, body)
	}
}

func TestServerRequiresTheTokenForData(t *testing.T) {
	doc := func(context.Context) (any, error) { return "ok", nil }
	s, err := Start("127.0.0.1:0", metrics.New(), Options{Token: "s3cret-token", Status: doc, Dashboard: doc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, path := range []string{"/metrics", "/api/status", "/api/dashboard"} {
		if code, _ := get(t, "http://"+s.Addr()+path, ""); code != http.StatusUnauthorized {
			t.Errorf("%s without the token: %d", path, code)
		}
		if code, _ := get(t, "http://"+s.Addr()+path, "wrong"); code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token: %d", path, code)
		}
		if code, _ := get(t, "http://"+s.Addr()+path, "s3cret-token"); code != http.StatusOK {
			t.Errorf("%s with the token: %d", path, code)
		}
	}
	// The page's files hold no data: served without the token, and never with it.
	for path, want := range map[string]string{"/": `<script src="/dashboard/app.js"`, "/dashboard/app.js": "/api/dashboard", "/dashboard/style.css": "svg#chart"} {
		code, body := get(t, "http://"+s.Addr()+path, "")
		if code != http.StatusOK || !strings.Contains(body, want) || strings.Contains(body, "s3cret-token") {
			t.Errorf("%s without the token: %d, lacks %q", path, code, want)
		}
	}
	if code, _ := get(t, "http://"+s.Addr()+"/dashboard/nothing.js", ""); code != http.StatusNotFound {
		t.Errorf("a file the dashboard has not: %d", code)
	}
}

func TestServerMasksSecrets(t *testing.T) {
	leak := func(context.Context) (any, error) {
		return map[string]string{"error": `connect to postgres://u:pa"ss<word>@h/db failed`}, nil
	}
	s, err := Start("127.0.0.1:0", metrics.New(), Options{Status: leak, Dashboard: leak, Secrets: []string{`pa"ss<word>`}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, path := range []string{"/api/status", "/api/dashboard"} {
		code, body := get(t, "http://"+s.Addr()+path, "")
		if code != http.StatusOK || strings.Contains(body, "ss<word") || strings.Contains(body, `ss\u003cword`) || !strings.Contains(body, "postgres://u:") {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}
}

func TestServerSaysWhyItHasNoData(t *testing.T) {
	s, err := Start("127.0.0.1:0", metrics.New(), Options{Dashboard: func(context.Context) (any, error) { return nil, errors.New("target: connection refused") }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if code, body := get(t, "http://"+s.Addr()+"/api/dashboard", ""); code != http.StatusServiceUnavailable || !strings.Contains(body, "connection refused") {
		t.Errorf("/api/dashboard when the target is down: %d %s", code, body)
	}
}

func TestServerSaysWhenTheAddressIsTaken(t *testing.T) {
	s, err := Start("127.0.0.1:0", metrics.New(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Start(s.Addr(), metrics.New(), Options{}); err == nil || !strings.Contains(err.Error(), "api.listen") {
		t.Fatalf("err = %v", err)
	}
}
