package postgres

import (
	"context"
	"testing"

	"github.com/cutover-dev/cutover/pgtest"
)

// A table of built-in types is copied in COPY's binary format, one with an enum as
// text; both arrive whole, and both report the rows they move while moving them.
func TestCopyFormats(t *testing.T) {
	t.Parallel()
	src, tgt := pair(t)
	const schema = `CREATE TYPE mood AS ENUM ('sad', 'happy');
		CREATE TABLE built_in (id int PRIMARY KEY, v text, at timestamptz, raw bytea, n numeric(10, 2)[]);
		CREATE TABLE with_enum (id int PRIMARY KEY, feel mood);`
	src.Exec(t, schema+`
		INSERT INTO built_in SELECT i, 'row ' || i || E'\n\t\\', now() - i * interval '1 min', '\x00ff5c', ARRAY[i / 7.0, NULL]
		FROM generate_series(1, 5000) i;
		INSERT INTO with_enum SELECT i, (ARRAY['sad', 'happy'])[1 + i % 2]::mood FROM generate_series(1, 3000) i;`)
	tgt.Exec(t, schema)

	ctx := context.Background()
	sc, tc := src.Conn(t), tgt.Conn(t)
	var rels []*relation
	for _, name := range []string{"built_in", "with_enum"} {
		rels = append(rels, &relation{oid: pgtest.QueryVal[uint32](t, src, "SELECT $1::regclass::oid", name), schema: "public", name: name, qname: name, kind: "r"})
	}
	if _, err := sc.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"); err != nil {
		t.Fatal(err)
	}
	for _, sameMajor := range []bool{true, false} {
		cp, err := planCopy(ctx, sc, rels, 1, 15, sameMajor)
		if err != nil {
			t.Fatal(err)
		}
		w := newWorker(sc, tc, cp)
		for _, tb := range cp.tables {
			want := map[string]int64{"built_in": 5000, "with_enum": 3000}[tb.Name]
			if binary := cp.specs[tb].binary; binary != (sameMajor && tb.Name == "built_in") {
				t.Errorf("%s (same major version %v): binary %v", tb.Name, sameMajor, binary)
			}
			tgt.Exec(t, "TRUNCATE "+tb.Name)
			var movedRows, movedBytes int64
			rows, bytes, err := w.Copy(ctx, tb, 0, func(r, b int64) { movedRows += r; movedBytes += b })
			if err != nil {
				t.Fatalf("copy %s: %v", tb.Name, err)
			}
			if rows != want || movedRows != want || bytes == 0 || movedBytes != bytes {
				t.Errorf("%s (binary %v): %d rows copied, %d reported while moving (want %d); %d bytes, %d reported",
					tb.Name, cp.specs[tb].binary, rows, movedRows, want, bytes, movedBytes)
			}
			q := "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM " + tb.Name + " t"
			if a, b := pgtest.QueryVal[string](t, src, q), pgtest.QueryVal[string](t, tgt, q); a != b {
				t.Errorf("%s (binary %v): the target's rows differ from the source's", tb.Name, cp.specs[tb].binary)
			}
		}
	}
}
