package redact

import (
	"bytes"
	"strings"
	"testing"
)

func TestConnString(t *testing.T) {
	cases := map[string]string{
		"postgres://u:s3cret@h:5432/db":                     "postgres://u:xxxxx@h:5432/db",
		"postgres://u@h/db?password=s3cret&sslmode=disable": "postgres://u@h/db?password=xxxxx&sslmode=disable",
		"postgres://u@h/db":                                 "postgres://u@h/db",
		"host=h password=s3cret dbname=db":                  "host=h password=xxxxx dbname=db",
		"host=h password='s3 cret' dbname=db":               "host=h password=xxxxx dbname=db",
		"host=h PASSWORD = s3cret":                          "host=h PASSWORD = xxxxx",
	}
	for in, want := range cases {
		if got := ConnString(in); got != want {
			t.Errorf("ConnString(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPassword(t *testing.T) {
	cases := map[string]string{
		"postgres://u:p%40ss@h/db":         "p@ss",
		"postgres://u@h/db?password=q":     "q",
		"postgres://u@h/db":                "",
		"host=h password='it''s' dbname=x": "it",
		`host=h password='a\'b' dbname=x`:  "a'b",
		"host=h password=plain":            "plain",
	}
	for in, want := range cases {
		if got := Password(in); got != want {
			t.Errorf("Password(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWriterMasksEveryForm(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.Add("p@ss word", "ab") // too short to mask safely
	for _, line := range []string{"plain p@ss word here\n", "escaped p%40ss+word\n", "path p@ss%20word\n", "ab stays\n"} {
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	out := buf.String()
	if strings.Contains(out, "p@ss word") || strings.Contains(out, "p%40ss+word") || strings.Contains(out, "p@ss%20word") {
		t.Fatalf("secret leaked:\n%s", out)
	}
	if strings.Count(out, Mask) != 3 || !strings.Contains(out, "ab stays") {
		t.Fatalf("unexpected output:\n%s", out)
	}
}
