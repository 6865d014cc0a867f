package plan

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// keyPaths lists every key of the plan file as its dotted path.
func keyPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := prefix + name
		out = append(out, path)
		ft := f.Type
		if ft.Kind() == reflect.Struct && ft.NumField() > 0 && ft.Field(0).Tag.Get("yaml") != "" {
			out = append(out, keyPaths(ft, path+".")...)
		}
	}
	return out
}

// The user guide's plan reference names every key of the plan.
func TestTheGuideDocumentsEveryKey(t *testing.T) {
	guide, err := os.ReadFile("../docs/guide.md")
	if err != nil {
		t.Fatal(err)
	}
	paths := keyPaths(reflect.TypeOf(Plan{}), "")
	if len(paths) < 30 {
		t.Fatalf("found only %d keys: %v", len(paths), paths)
	}
	for _, path := range paths {
		if !strings.Contains(string(guide), "`"+path+"`") {
			t.Errorf("docs/guide.md does not document `%s`", path)
		}
	}
}
