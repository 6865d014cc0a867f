package api

import (
	"context"
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
	s, err := Start("127.0.0.1:0", "", m, func(context.Context) (any, error) { return map[string]string{"phase": "cdc"}, nil })
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

func TestServerRequiresTheToken(t *testing.T) {
	s, err := Start("127.0.0.1:0", "s3cret-token", metrics.New(), func(context.Context) (any, error) { return "ok", nil })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, path := range []string{"/metrics", "/api/status"} {
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
}

func TestServerSaysWhenTheAddressIsTaken(t *testing.T) {
	s, err := Start("127.0.0.1:0", "", metrics.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Start(s.Addr(), "", metrics.New(), nil); err == nil || !strings.Contains(err.Error(), "api.listen") {
		t.Fatalf("err = %v", err)
	}
}
