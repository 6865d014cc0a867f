package check

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestReportOrderCountsAndOutput(t *testing.T) {
	r := &Report{Source: Endpoint{URL: "postgres://m@a/db", Engine: "PostgreSQL", Version: "15.1"}, Target: Endpoint{URL: "postgres://m@b/db"}}
	r.Add(Finding{Severity: Info, Check: "summary", Object: "tables", Problem: "3 tables"})
	r.Add(Finding{Severity: Warning, Check: "w", Object: "source", Problem: "first warning", Fix: "do this"})
	r.Add(Finding{Severity: Error, Check: "e", Object: "table public.t", Problem: strings.Repeat("long words ", 20), Fix: "ALTER TABLE public.t REPLICA IDENTITY DEFAULT;\nor another way"})
	r.Add(Finding{Severity: Error, Check: "e2", Object: "role m", Problem: "second error"})
	r.Finish()
	if r.Counts != (Counts{Errors: 2, Warnings: 1, Infos: 1}) || !r.Failed() {
		t.Fatalf("counts: %+v", r.Counts)
	}
	if r.Findings[0].Check != "e" || r.Findings[1].Check != "e2" || r.Findings[2].Check != "w" || r.Findings[3].Check != "summary" {
		t.Fatalf("order: %+v", r.Findings)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	out := text.String()
	for _, want := range []string{
		"source: postgres://m@a/db (PostgreSQL 15.1)\n",
		"ERROR    table public.t\n",
		"         fix: ALTER TABLE public.t REPLICA IDENTITY DEFAULT;\n              or another way\n",
		"2 error(s), 1 warning(s), 1 info; not ready",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "         long") && len(line) > 100 {
			t.Errorf("problem text not wrapped: %q", line)
		}
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Findings) != 4 || back.Counts.Errors != 2 || back.Findings[0].Fix == "" {
		t.Fatalf("json round trip: %v %+v", err, back)
	}
}

func TestEmptyReportIsReady(t *testing.T) {
	r := &Report{}
	r.Finish()
	var js bytes.Buffer
	_ = r.WriteJSON(&js)
	if r.Failed() || !strings.Contains(js.String(), `"findings": []`) {
		t.Fatalf("empty report: %s", js.String())
	}
}
