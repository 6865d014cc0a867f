package postgres

import (
	"reflect"
	"testing"
)

func TestSplitStatements(t *testing.T) {
	for _, c := range []struct {
		sql  string
		want []string
	}{
		{"ALTER TABLE t ADD c int", []string{"ALTER TABLE t ADD c int"}},
		{"BEGIN; ALTER TABLE t ADD c int;\nCOMMIT;", []string{"BEGIN", "ALTER TABLE t ADD c int", "COMMIT"}},
		{"ALTER TABLE t ADD \"a;b\" text DEFAULT 'x;y'; SELECT 1", []string{"ALTER TABLE t ADD \"a;b\" text DEFAULT 'x;y'", "SELECT 1"}},
		{"SELECT E'it\\'s;'; SELECT 'a''b;'", []string{"SELECT E'it\\'s;'", "SELECT 'a''b;'"}},
		{"CREATE FUNCTION f() RETURNS int AS $f$ SELECT 1; $f$ LANGUAGE sql; SELECT 2", []string{"CREATE FUNCTION f() RETURNS int AS $f$ SELECT 1; $f$ LANGUAGE sql", "SELECT 2"}},
		{"/* a; /* nested; */ b; */ ALTER TABLE t ADD c int -- x; y\n; -- only a comment;\n", []string{"/* a; /* nested; */ b; */ ALTER TABLE t ADD c int -- x; y"}},
		{"SELECT $1; SELECT a$b FROM t", []string{"SELECT $1", "SELECT a$b FROM t"}},
	} {
		if got := splitStatements(c.sql); !reflect.DeepEqual(got, c.want) {
			t.Errorf("splitStatements(%q) = %q, want %q", c.sql, got, c.want)
		}
	}
}

func TestStatementOf(t *testing.T) {
	for _, c := range []struct {
		query, tag string
		seq        int
		want       string // "" when it cannot be replayed
	}{
		{"ALTER TABLE t ADD c int", "ALTER TABLE", 1, "ALTER TABLE t ADD c int"},
		{"BEGIN; INSERT INTO t VALUES (1); ALTER TABLE t ADD c int; INSERT INTO t VALUES (2); COMMIT", "ALTER TABLE", 1, "ALTER TABLE t ADD c int"},
		{"CREATE ROLE r; GRANT r TO s; CREATE UNIQUE INDEX i ON t (a); ALTER TABLE t ADD c int", "ALTER TABLE", 2, "ALTER TABLE t ADD c int"},
		{"CREATE OR REPLACE FUNCTION f() RETURNS int AS 'SELECT 1' LANGUAGE sql", "CREATE FUNCTION", 1, "CREATE OR REPLACE FUNCTION f() RETURNS int AS 'SELECT 1' LANGUAGE sql"},
		{"SELECT * INTO t2 FROM t", "SELECT INTO", 1, "SELECT * INTO t2 FROM t"},
		{"DO $$ BEGIN EXECUTE 'ALTER TABLE t ADD c int'; END $$", "ALTER TABLE", 1, ""},
		{"SELECT make_tables()", "CREATE TABLE", 1, ""},
		{"ALTER TABLE t ADD c int; SELECT add_more()", "ALTER TABLE", 2, ""},
	} {
		got, reason := statementOf(c.query, c.tag, c.seq)
		if got != c.want || (c.want == "") != (reason != "") {
			t.Errorf("statementOf(%q, %q, %d) = %q (%s), want %q", c.query, c.tag, c.seq, got, reason, c.want)
		}
	}
}

func TestWithoutConcurrently(t *testing.T) {
	for in, want := range map[string]string{
		"CREATE INDEX CONCURRENTLY i ON t (a)":                      "CREATE INDEX i ON t (a)",
		"create unique index concurrently if not exists i on t (a)": "create unique index if not exists i on t (a)",
		"DROP INDEX CONCURRENTLY i":                                 "DROP INDEX i",
		"ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY":            "ALTER TABLE p DETACH PARTITION p1",
		"CREATE INDEX concurrently_idx ON t (a)":                    "CREATE INDEX concurrently_idx ON t (a)",
		"ALTER TABLE p DETACH PARTITION p1 FINALIZE":                "ALTER TABLE p DETACH PARTITION p1 FINALIZE",
	} {
		if got := withoutConcurrently(in); got != want {
			t.Errorf("withoutConcurrently(%q) = %q, want %q", in, got, want)
		}
	}
}
