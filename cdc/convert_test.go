package cdc

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

type sliceSource []Event

func (s sliceSource) Open(context.Context, string) (Stream, error) { return s, nil }
func (s sliceSource) Run(ctx context.Context, events chan<- Event) error {
	for _, e := range s {
		select {
		case events <- e:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// upper names tables in upper case on the target, drops the column "gone", writes
// values in upper case and "zero" as NULL, and skips changes to "copied" before
// position "p2".
type upper struct{ calls int }

func (u *upper) Relation(r *Relation) (*Relation, []func([]byte) (Value, error), error) {
	u.calls++
	out := &Relation{ID: r.ID, Schema: strings.ToUpper(r.Schema), Name: strings.ToUpper(r.Name)}
	var conv []func([]byte) (Value, error)
	for _, c := range r.Columns {
		if c.Name == "gone" {
			conv = append(conv, nil)
			continue
		}
		out.Columns = append(out.Columns, Column{Name: strings.ToUpper(c.Name), Key: c.Key})
		conv = append(conv, func(b []byte) (Value, error) {
			switch string(b) {
			case "zero":
				return Value{Null: true}, nil
			case "bad":
				return Value{}, errors.New("no such value")
			}
			return Value{Text: bytes.ToUpper(b)}, nil
		})
	}
	return out, conv, nil
}

func (u *upper) Skip(r *Relation, pos string) (bool, error) {
	return r.Name == "copied" && pos < "p2", nil
}

func (u *upper) SchemaChange(sc *SchemaChange) error {
	return errors.New("schema change " + sc.Statement + ": apply it by hand")
}

func collect(t *testing.T, src Source, tr Translator) ([]Event, error) {
	t.Helper()
	s, err := Converting(src, tr).Open(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan Event, 100)
	err = s.Run(context.Background(), ch)
	close(ch)
	var out []Event
	for e := range ch {
		out = append(out, e)
	}
	return out, err
}

func TestConvertingStream(t *testing.T) {
	rel := &Relation{Schema: "db", Name: "t", Columns: []Column{{Name: "id", Key: true}, {Name: "gone"}, {Name: "v"}}}
	copied := &Relation{Schema: "db", Name: "copied", Columns: []Column{{Name: "id", Key: true}}}
	u := &upper{}
	events, err := collect(t, sliceSource{
		&Begin{Position: "p1"},
		&Change{Op: Insert, Rel: rel, New: Row{{Text: []byte("a")}, {Text: []byte("x")}, {Text: []byte("zero")}}},
		&Change{Op: Insert, Rel: copied, New: Row{{Text: []byte("1")}}},
		&Change{Op: Update, Rel: rel, Old: Row{{Text: []byte("a")}, {Null: true}, {Null: true}}, New: Row{{Text: []byte("a")}, {Null: true}, {Unchanged: true}}},
		&Commit{Position: "p1"},
		&Begin{Position: "p2"},
		&Change{Op: Insert, Rel: copied, New: Row{{Text: []byte("2")}}},
		&Change{Op: Truncate, Rel: copied, Truncated: []*Relation{copied, rel}},
		&Commit{Position: "p2"},
		&Marker{ID: "m"},
	}, u)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		switch e := e.(type) {
		case *Begin:
			got = append(got, "begin "+e.Position)
		case *Commit:
			got = append(got, "commit "+e.Position)
		case *Marker:
			got = append(got, "marker "+e.ID)
		case *Change:
			line := e.Op.String() + " " + e.Rel.Schema + "." + e.Rel.Name
			for _, r := range []Row{e.Old, e.New} {
				line += " ["
				for _, v := range r {
					switch {
					case v.Null:
						line += " null"
					case v.Unchanged:
						line += " unchanged"
					default:
						line += " " + string(v.Text)
					}
				}
				line += " ]"
			}
			for _, r := range e.Truncated {
				line += " " + r.Name
			}
			got = append(got, line)
		}
	}
	want := []string{
		"begin p1",
		"insert DB.T [ ] [ A null ]",
		"update DB.T [ A null ] [ A unchanged ]",
		"commit p1",
		"begin p2",
		"insert DB.COPIED [ ] [ 2 ]",
		"truncate DB.COPIED [ ] [ ] COPIED T",
		"commit p2",
		"marker m",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if u.calls != 2 {
		t.Errorf("%d relations translated, want 2 (once each)", u.calls)
	}

	// A value the target cannot take, and a schema change, stop the stream with why.
	_, err = collect(t, sliceSource{&Begin{Position: "p3"}, &Change{Op: Insert, Rel: rel, New: Row{{Text: []byte("b")}, {Null: true}, {Text: []byte("bad")}}}}, &upper{})
	if err == nil || err.Error() != "table db.t, column v: no such value" {
		t.Errorf("a bad value: %v", err)
	}
	_, err = collect(t, sliceSource{&Begin{Position: "p3"}, &SchemaChange{Statement: "ALTER TABLE t ADD c int"}, &Commit{Position: "p3"}}, &upper{})
	if err == nil || !strings.Contains(err.Error(), "apply it by hand") {
		t.Errorf("a schema change: %v", err)
	}
}
