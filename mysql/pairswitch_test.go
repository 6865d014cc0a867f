package mysql

import (
	"context"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/cutover"
	"github.com/cutover-dev/cutover/mytest"
	"github.com/cutover-dev/cutover/plan"
)

// The source's gates for a switch to another engine refuse a migrated column of a
// character set reverse replication cannot write back (latin2 here), and name it;
// latin1, ascii and UTF-8 columns, and tables left out of the migration, pass.
func TestPairGatesCharsets(t *testing.T) {
	src := mytest.NewDB(t, mytest.Source(t))
	src.Exec(t, `CREATE TABLE ok (id int PRIMARY KEY, a varchar(10) CHARACTER SET latin1, b text CHARACTER SET ascii, c char(3) CHARACTER SET utf8mb3, d longtext CHARACTER SET utf8mb4, e enum('x') CHARACTER SET latin2);
		CREATE TABLE polish (id int PRIMARY KEY, name varchar(20) CHARACTER SET latin2, note tinytext CHARACTER SET cp1250);
		CREATE TABLE skipped (id int PRIMARY KEY, name varchar(20) CHARACTER SET koi8r);`)
	gates := func(more string) string {
		t.Helper()
		text := "source: {url: '" + src.URL() + "'}\ntarget: {url: 'postgres://u@127.0.0.1:1/db'}\n" + more
		p, err := plan.Parse("p.yaml", []byte(text), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		sw, err := Engine{}.SwitchSource(context.Background(), p, cutover.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer sw.Close()
		return strings.Join(sw.Gates(context.Background()), "\n")
	}
	got := gates("tables: {exclude: ['*.skipped']}\n")
	if !strings.Contains(got, "character sets of `polish`.`name` (latin2), `polish`.`note` (cp1250) (it writes latin1, ascii and UTF-8)") ||
		strings.Contains(got, "`ok`") || strings.Contains(got, "skipped") {
		t.Errorf("gates:\n%s", got)
	}
	if got := gates("tables: {include: ['*.ok']}\n"); strings.Contains(got, "character set") {
		t.Errorf("gates of the table ok alone:\n%s", got)
	}
}
