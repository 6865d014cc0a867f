package mysql

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/control"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/mytest"
	"github.com/cutover-dev/cutover/plan"
)

func TestMain(m *testing.M) { os.Exit(mytest.Main(m)) }

func assess(t *testing.T, src, tgt string, more ...string) *check.Report {
	t.Helper()
	text := "source: {url: '" + src + "'}\ntarget: {url: '" + tgt + "'}\n" + strings.Join(more, "\n")
	p, err := plan.ParseChecked("p.yaml", []byte(text), func(string) (string, bool) { return "", false }, Engine{}.CheckURL)
	if err != nil {
		t.Fatal(err)
	}
	return Assess(context.Background(), p, engine.AssessOptions{})
}

func mustFind(t *testing.T, r *check.Report, name, object string, sev check.Severity, fix string) {
	t.Helper()
	f := r.Find(name, object)
	if f == nil {
		t.Errorf("no %s finding about %s in %+v", name, object, r.Findings)
		return
	}
	if f.Severity != sev || !strings.Contains(f.Fix, fix) {
		t.Errorf("%s about %s: %s, fix %q; want %s, fix with %q", name, object, f.Severity, f.Fix, sev, fix)
	}
}

// A source set up for change capture passes; the tables it cannot follow are named,
// each with its fix, and a keyless table with a unique index of NOT NULL columns is
// followed by that index.
func TestAssessTables(t *testing.T) {
	src, tgt := mytest.NewDB(t, mytest.Source(t)), mytest.NewDB(t, mytest.Target(t))
	src.Exec(t, `CREATE TABLE with_pk (id int PRIMARY KEY, v text);
		CREATE TABLE by_unique (a int NOT NULL, b varchar(10) NOT NULL, UNIQUE KEY ab (a, b));
		CREATE TABLE nullable_unique (a int, UNIQUE KEY a (a));
		CREATE TABLE prefix_unique (a varchar(100) NOT NULL, UNIQUE KEY a (a(10)));
		CREATE TABLE no_key (a int);
		CREATE TABLE old_engine (id int PRIMARY KEY) ENGINE = MyISAM;`)
	r := assess(t, src.URL(), tgt.URL())
	if r.Source.Engine != "MariaDB" || !strings.HasPrefix(r.Source.Version, "10.") || r.Target.Engine != "MariaDB" || !strings.HasPrefix(r.Target.Version, "10.") {
		t.Errorf("versions %+v, %+v", r.Source, r.Target)
	}
	mustFind(t, r, "primary_key", "table by_unique", check.Info, "")
	for _, table := range []string{"nullable_unique", "prefix_unique", "no_key"} {
		mustFind(t, r, "primary_key", "table "+table, check.Error, "ALTER TABLE `"+table+"` ADD PRIMARY KEY")
	}
	mustFind(t, r, "storage_engine", "table old_engine", check.Error, "ALTER TABLE `old_engine` ENGINE = InnoDB")
	if r.Has("primary_key", "table with_pk") || r.Has("storage_engine", "table with_pk") {
		t.Errorf("with_pk reported: %+v", r.Findings)
	}
	if r.Counts.Errors != 4 || r.Counts.Warnings != 0 {
		t.Errorf("%d errors and %d warnings, want 4 and 0: %+v", r.Counts.Errors, r.Counts.Warnings, r.Findings)
	}
	// A table the plan leaves out is not the migration's concern.
	r = assess(t, src.URL(), tgt.URL(), "tables: {exclude: ['*.no_key', '*.old_engine']}")
	if r.Has("primary_key", "table no_key") || r.Has("storage_engine", "table old_engine") || r.Counts.Errors != 2 {
		t.Errorf("excluded tables reported: %+v", r.Findings)
	}
}

// A binary log change capture cannot read is refused, setting by setting, with the
// statements that fix it; a source and target sharing a server_id too.
func TestAssessBinlog(t *testing.T) {
	bad := mytest.StartServer(t, mytest.Options{Name: "badlog", Settings: map[string]string{
		"binlog_format": "STATEMENT", "binlog_row_image": "MINIMAL", "binlog_row_metadata": "MINIMAL",
		"gtid_strict_mode": "OFF", "binlog_expire_logs_seconds": "3600", "log_bin_compress": "ON"}})
	src, tgt := mytest.NewDB(t, bad), mytest.NewDB(t, bad)
	r := assess(t, src.URL(), tgt.URL())
	for name, value := range map[string]string{"binlog_format": "'ROW'", "binlog_row_image": "'FULL'", "binlog_row_metadata": "'FULL'"} {
		mustFind(t, r, name, "source", check.Error, "SET GLOBAL "+name+" = "+value)
	}
	mustFind(t, r, "gtid_strict_mode", "source", check.Warning, "SET GLOBAL gtid_strict_mode = ON")
	mustFind(t, r, "binlog_retention", "source", check.Warning, "binlog retention hours")
	mustFind(t, r, "log_bin_compress", "source", check.Warning, "SET GLOBAL log_bin_compress = OFF")
	mustFind(t, r, "server_id", "target", check.Error, "server_id")

	off := mytest.StartServer(t, mytest.Options{Name: "nolog", Settings: map[string]string{"log-bin": ""}})
	r = assess(t, mytest.NewDB(t, off).URL(), tgt.URL())
	mustFind(t, r, "log_bin", "source", check.Error, "log-bin = binlog")
	if r.Has("binlog_format", "") {
		t.Errorf("binlog_format reported with the binary log off: %+v", r.Findings)
	}

	// A one-shot copy reads no change: the same findings are information.
	r = assess(t, mytest.NewDB(t, off).URL(), tgt.URL(), "cdc: {enabled: false}")
	mustFind(t, r, "log_bin", "source", check.Info, "")
	if r.Failed() {
		t.Errorf("a one-shot copy from a source without a binary log is refused: %+v", r.Findings)
	}
}

// A side that cannot be reached is one finding, and its password is not shown.
func TestAssessUnreachable(t *testing.T) {
	tgt := mytest.NewDB(t, mytest.Target(t))
	r := assess(t, "mysql://root:s3cret@127.0.0.1:1/app", tgt.URL())
	mustFind(t, r, "connection", "source", check.Error, "")
	if !r.Failed() || strings.Contains(r.Findings[0].Problem, "s3cret") {
		t.Errorf("%+v", r.Findings)
	}
}

func TestURLs(t *testing.T) {
	for url, want := range map[string]string{
		"mysql://m@db:3306/app":              "",
		"mariadb://m:pw@db/app?tls=true":     "",
		"mysql://db:3306/app":                "names no user",
		"mysql://m@db:3306/":                 "names no database",
		"mysql://m@:3306/app":                "names no host",
		"mysql://m@db/app?tls=maybe":         "has tls=maybe: write tls=true, tls=false",
		"mysql://m@db/app?sslmode=require":   "has the option sslmode, which cutover does not know",
		"mysql://m:s3cret@db:99999999/app%z": "is not a valid URL",
	} {
		err := Engine{}.CheckURL(url)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", url, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: got %v, want %q", url, err, want)
		case err != nil && strings.Contains(err.Error(), "s3cret"):
			t.Errorf("%s: the error shows the password: %v", url, err)
		}
	}
}

// A role without the privileges a step needs is told, per side, the GRANT to give;
// a target without local_infile is an error.
func TestAssessPrivileges(t *testing.T) {
	srv := mytest.StartServer(t, mytest.Options{Name: "grants", Settings: map[string]string{"local-infile": "0"}})
	src, tgt := mytest.NewDB(t, srv), mytest.NewDB(t, srv)
	src.Exec(t, fmt.Sprintf("CREATE USER lim IDENTIFIED BY 'pw'; GRANT SELECT ON `%s`.* TO lim; GRANT SELECT ON `%s`.* TO lim", src.Name, tgt.Name))
	url := func(db string) string { return fmt.Sprintf("mysql://lim:pw@127.0.0.1:%d/%s", srv.Port, db) }
	r := assess(t, url(src.Name), url(tgt.Name))
	mustFind(t, r, "local_infile", "target", check.Error, "SET GLOBAL local_infile = ON")
	var said []string
	for _, f := range r.Findings {
		if f.Check == "privilege" {
			said = append(said, f.Object+": "+f.Fix)
		}
	}
	for _, want := range []string{"source: GRANT RELOAD ON *.*", "source: GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.*",
		"target: GRANT ALL ON `" + tgt.Name + "`.*", "target: GRANT ALL ON `cutover`.*", "target: GRANT SELECT ON mysql.*"} {
		found := false
		for _, s := range said {
			found = found || strings.HasPrefix(s, want)
		}
		if !found {
			t.Errorf("no privilege finding %q in %q", want, said)
		}
	}
	for _, s := range said {
		if strings.Contains(s, "GRANT SELECT, SHOW VIEW") {
			t.Errorf("the source's SELECT is there: %q", s)
		}
	}
}

// problemHas fails the test when the finding's problem lacks a text.
func problemHas(t *testing.T, r *check.Report, name, object, text string) {
	t.Helper()
	if f := r.Find(name, object); f == nil || !strings.Contains(f.Problem, text) {
		t.Errorf("%s about %s: want a problem with %q, got %+v", name, object, text, f)
	}
}

// Triggers, routines and events, which the load does not create, are each named with
// when and how they come to the target (by the switch, or by hand after a one-shot copy); a trigger already on the target is an
// error; views say what definer they get; a foreign key to a table the target will
// not have is an error, the others are carried.
func TestAssessObjects(t *testing.T) {
	other := mytest.NewDB(t, mytest.Source(t)) // dropped after src, whose table references it
	src, tgt := mytest.NewDB(t, mytest.Source(t)), mytest.NewDB(t, mytest.Target(t))
	// a definer on both servers
	viewer := fmt.Sprintf("`v%d`@`%%`", os.Getpid())
	for _, db := range []*mytest.DB{src, tgt} {
		db.Exec(t, "CREATE USER "+viewer)
		t.Cleanup(func() { db.Exec(t, "DROP USER "+viewer) })
	}
	other.Exec(t, "CREATE TABLE p (id int PRIMARY KEY)")
	src.Exec(t, fmt.Sprintf(`CREATE TABLE b (id int PRIMARY KEY, c_id int);
		CREATE TABLE c (id int PRIMARY KEY);
		CREATE TABLE a (id int PRIMARY KEY, b_id int, p_id int,
			CONSTRAINT a_b FOREIGN KEY (b_id) REFERENCES b (id),
			CONSTRAINT a_p FOREIGN KEY (p_id) REFERENCES %s.p (id));
		ALTER TABLE b ADD CONSTRAINT b_c FOREIGN KEY (c_id) REFERENCES c (id);
		CREATE TRIGGER a_ins BEFORE INSERT ON a FOR EACH ROW SET NEW.b_id = NEW.b_id;
		CREATE TRIGGER c_ins BEFORE INSERT ON c FOR EACH ROW SET NEW.id = NEW.id;
		CREATE PROCEDURE p_clean() DELETE FROM c;
		CREATE FUNCTION f_two() RETURNS int DETERMINISTIC RETURN 2;
		CREATE EVENT e_on ON SCHEDULE EVERY 1 DAY DO DELETE FROM c;
		CREATE EVENT e_off ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM c;
		CREATE VIEW v_same AS SELECT id FROM a;
		CREATE DEFINER = %[2]s VIEW v_definer AS SELECT id FROM a;
		CREATE DEFINER = %[2]s SQL SECURITY INVOKER VIEW v_invoker AS SELECT id FROM a;
		CREATE DEFINER = 'ghost'@'%%' VIEW v_ghost AS SELECT id FROM a;`, quote(other.Name), viewer))
	tgt.Exec(t, "CREATE TABLE a (id int PRIMARY KEY); CREATE TRIGGER early AFTER INSERT ON a FOR EACH ROW DO 1")
	r := assess(t, src.URL(), tgt.URL(), "tables: {exclude: ['*.c']}")

	mustFind(t, r, "trigger", "trigger a_ins", check.Info, "")
	problemHas(t, r, "trigger", "trigger a_ins", "BEFORE INSERT on table a) is not created by the load")
	problemHas(t, r, "trigger", "trigger a_ins", "cutover switch creates it on the target once the last change is applied")
	if r.Has("trigger", "trigger c_ins") {
		t.Errorf("the trigger of a table left out is reported: %+v", r.Find("trigger", "trigger c_ins"))
	}
	mustFind(t, r, "target_trigger", "trigger early", check.Error, "DROP TRIGGER `"+tgt.Name+"`.`early` on the target")
	mustFind(t, r, "routine", "procedure p_clean", check.Info, "")
	mustFind(t, r, "routine", "function f_two", check.Info, "")
	mustFind(t, r, "event", "event e_on", check.Warning, "SET GLOBAL event_scheduler = ON on the target (it is OFF)")
	problemHas(t, r, "event", "event e_on", "cutover switch disables it on the source and enables it on the target")
	mustFind(t, r, "event", "event e_off", check.Info, "")

	mustFind(t, r, "view", "view v_invoker", check.Info, "")
	problemHas(t, r, "view", "view v_invoker", "SQL SECURITY INVOKER: it runs with its caller's privileges")
	mustFind(t, r, "view", "view v_same", check.Info, "")
	problemHas(t, r, "view", "view v_same", "with its definer `root`@`127.0.0.1` (the target's migration role) and SQL SECURITY DEFINER, as on the source")
	mustFind(t, r, "view", "view v_definer", check.Warning, "ALTER DEFINER = "+viewer+" VIEW `"+tgt.Name+"`.`v_definer` AS")
	if f := r.Find("view", "view v_definer"); f != nil && strings.Contains(f.Fix, "CREATE USER") {
		t.Errorf("the definer exists on the target: %q", f.Fix)
	}
	mustFind(t, r, "view", "view v_ghost", check.Warning, "CREATE USER `ghost`@`%` on the target")
	problemHas(t, r, "view", "view v_ghost", "`ghost`@`%` does not exist on the target")

	mustFind(t, r, "foreign_key", "foreign key b_c", check.Error, "include c in the plan's tables, or on the source: ALTER TABLE `b` DROP FOREIGN KEY `b_c`")
	mustFind(t, r, "foreign_key", "foreign key a_p", check.Error, "create `"+other.Name+"`.`p` on the target with its rows before the load ends, or on the source: ALTER TABLE `a` DROP FOREIGN KEY `a_p`")
	mustFind(t, r, "foreign_key", "foreign keys", check.Info, "")
	problemHas(t, r, "foreign_key", "foreign keys", "the migrated tables' foreign keys (1) are added after the load")
	mustFind(t, r, "server_id", "stream", check.Info, "")
	problemHas(t, r, "server_id", "stream", "at random when the load begins, from 2147483648 to 4294967295")

	// A one-shot copy: the triggers are created after it.
	r = assess(t, src.URL(), tgt.URL(), "tables: {exclude: ['*.c']}", "cdc: {enabled: false}")
	mustFind(t, r, "trigger", "trigger a_ins", check.Warning, "after the copy, before the applications write to the target")
	mustFind(t, r, "event", "event e_on", check.Warning, "ALTER EVENT `e_on` DISABLE on the source, and ALTER EVENT `e_on` ENABLE on the target, and SET GLOBAL event_scheduler = ON on the target (it is OFF)")
	if r.Has("server_id", "stream") {
		t.Errorf("a one-shot copy has no stream: %+v", r.Find("server_id", "stream"))
	}
}

// charsetsWith0900 is a copy of the server's character set files with MySQL 8's
// default collation, utf8mb4_0900_ai_ci, which MariaDB lacks, defined in it: a
// source server started with it has the collation, the shared target not.
func charsetsWith0900(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cutover-charsets-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const from = "/usr/share/mysql/charsets/"
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Skipf("no character set files to extend: %v", err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(from + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "Index.xml" {
			b = []byte(strings.Replace(string(b), "</charsets>", `<charset name="utf8mb4">
  <collation name="utf8mb4_0900_ai_ci" id="1800"><rules><reset>a</reset><i>b</i></rules></collation>
</charset>
</charsets>`, 1))
		}
		if err := os.WriteFile(dir+"/"+e.Name(), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A migrated table whose collation the target lacks is an error naming the
// collation, where it is used, and the nearest one the target has.
func TestAssessCollations(t *testing.T) {
	srv := mytest.StartServer(t, mytest.Options{Name: "mysql8ish", Settings: map[string]string{"character-sets-dir": charsetsWith0900(t)}})
	src, tgt := mytest.NewDB(t, srv), mytest.NewDB(t, mytest.Target(t))
	src.Exec(t, `CREATE TABLE whole (id int PRIMARY KEY, v varchar(10)) COLLATE utf8mb4_0900_ai_ci;
		CREATE TABLE one_column (id int PRIMARY KEY, v varchar(10) COLLATE utf8mb4_0900_ai_ci, w varchar(10));
		CREATE TABLE plain (id int PRIMARY KEY, v varchar(10));
		CREATE TABLE left_out (id int PRIMARY KEY, v varchar(10)) COLLATE utf8mb4_0900_ai_ci;`)
	r := assess(t, src.URL(), tgt.URL(), "tables: {exclude: ['*.left_out']}")
	mustFind(t, r, "collation", "table whole", check.Error, "on the source: ALTER TABLE `whole` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_uca1400_ai_ci")
	problemHas(t, r, "collation", "table whole", "has no collation utf8mb4_0900_ai_ci (the table's default, column v): the table's CREATE TABLE fails there")
	mustFind(t, r, "collation", "table one_column", check.Error, "MySQL 8's default utf8mb4_0900_ai_ci, for one, does not exist in MariaDB")
	problemHas(t, r, "collation", "table one_column", "utf8mb4_0900_ai_ci (column v)")
	for _, table := range []string{"plain", "left_out"} {
		if r.Has("collation", "table "+table) {
			t.Errorf("table %s reported: %+v", table, r.Find("collation", "table "+table))
		}
	}
}

// A target whose defaults differ from the source's is told how (the character sets,
// the time zone: information; sql_mode: a warning), and the zero dates of the source
// its sql_mode refuses are counted per column, with the UPDATE or the sql_mode that
// settles them. The load itself writes them as they are: its session allows them.
func TestAssessDefaultsAndZeroDates(t *testing.T) {
	strict := mytest.StartServer(t, mytest.Options{Name: "strict", Settings: map[string]string{
		"sql-mode": "STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE", "character-set-server": "latin1", "collation-server": "latin1_swedish_ci",
		"default-time-zone": "+02:00"}})
	src, tgt := mytest.NewDB(t, mytest.Source(t)), mytest.NewDB(t, strict)
	src.Exec(t, `SET SESSION sql_mode = '';
		CREATE TABLE dates (id int PRIMARY KEY, d date, dt datetime NOT NULL, ts timestamp NULL, fine date);
		INSERT INTO dates VALUES (1, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '2024-01-01'),
			(2, '2024-00-15', '2024-01-01 10:00:00', NULL, '2024-01-02'),
			(3, '2024-01-01', '2024-05-00 10:00:00', NULL, NULL),
			(4, NULL, '2024-01-01 10:00:00', '2024-01-01 10:00:00', '2024-01-03');
		CREATE TABLE clean (id int PRIMARY KEY, d date);
		INSERT INTO clean VALUES (1, '2024-01-01'), (2, NULL);`)
	r := assess(t, src.URL(), tgt.URL())

	mustFind(t, r, "sql_mode", "target", check.Warning, "SET GLOBAL sql_mode = '"+mytest.QueryVal[string](t, src, "SELECT @@GLOBAL.sql_mode")+"'")
	problemHas(t, r, "sql_mode", "target", "the target's sql_mode is 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE'")
	mustFind(t, r, "time_zone", "target", check.Info, "")
	problemHas(t, r, "time_zone", "target", "the target's time zone is +02:00, the source's UTC")
	problemHas(t, r, "time_zone", "target", "SET GLOBAL time_zone = 'UTC' there to match")
	mustFind(t, r, "charset", "target server", check.Info, "")
	problemHas(t, r, "charset", "target server", "the target server's default is latin1 (latin1_swedish_ci), the source's utf8mb4 (utf8mb4_general_ci)")
	mustFind(t, r, "charset", "target", check.Info, "")
	problemHas(t, r, "charset", "target", "ALTER DATABASE `"+tgt.Name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")

	mustFind(t, r, "zero_date", "table dates", check.Warning, "UPDATE `dates` SET `d` = NULL WHERE (MONTH(`d`) = 0 OR DAYOFMONTH(`d`) = 0)")
	mustFind(t, r, "zero_date", "table dates", check.Warning, "UPDATE `dates` SET `dt` = <a date of your choice> WHERE")
	mustFind(t, r, "zero_date", "table dates", check.Warning, "or on the target: SET GLOBAL sql_mode = 'STRICT_ALL_TABLES'")
	problemHas(t, r, "zero_date", "table dates", "(2 in column d, 2 in column dt, 1 in column ts)")
	if r.Has("zero_date", "table clean") {
		t.Errorf("a table without zero dates reported: %+v", r.Find("zero_date", "table clean"))
	}
	// The fix's condition finds the rows counted.
	if n := mytest.QueryVal[int](t, src, "SELECT count(*) FROM dates WHERE (MONTH(`d`) = 0 OR DAYOFMONTH(`d`) = 0)"); n != 2 {
		t.Errorf("the fix's condition finds %d rows, want 2", n)
	}

	// What the finding says of the load: it writes the zero dates as they are into
	// the target whose sql_mode refuses them; the applications' sessions cannot.
	srcDB, tgtDB := src.Open(t), tgt.Open(t)
	createLike(t, srcDB, tgtDB, []string{"dates"})
	copyTables(t, srcDB, tgtDB, src.Name, tgt.Name, []string{"dates"}, nil)
	if a, b := image(t, srcDB, "dates"), image(t, tgtDB, "dates"); !slices.Equal(a, b) {
		t.Errorf("zero dates loaded otherwise:\n%q\n%q", a, b)
	}
	if _, err := tgtDB.Exec("INSERT INTO dates VALUES (5, '0000-00-00', '2024-01-01', NULL, NULL)"); err == nil || !strings.Contains(err.Error(), "1292") {
		t.Errorf("the target's sql_mode took a zero date: %v", err)
	}

	// A target whose sql_mode takes zero dates has nothing to say of them.
	r = assess(t, src.URL(), mytest.NewDB(t, mytest.Target(t)).URL())
	if r.Has("zero_date", "") || r.Has("sql_mode", "") || r.Has("time_zone", "") || r.Has("charset", "") {
		t.Errorf("a target with the source's defaults: %+v", r.Findings)
	}
}

// A binary log kept shorter than the load's estimate (the plan's tables at loadRate)
// is an error, shorter than a day a warning; on RDS, the 'binlog retention hours' of
// mysql.rds_configuration is the setting read, and fixed by CALL.
func TestAssessRetention(t *testing.T) {
	srv := mytest.StartServer(t, mytest.Options{Name: "shortlog", Settings: map[string]string{"binlog_expire_logs_seconds": "1"}})
	src, tgt := mytest.NewDB(t, srv), mytest.NewDB(t, mytest.Target(t))
	// about 50 MiB: a load of 3 s at loadRate
	src.Exec(t, `CREATE TABLE big (id int PRIMARY KEY, b longblob);
		INSERT INTO big SELECT seq, repeat('x', 60000) FROM seq_1_to_800;
		ANALYZE TABLE big;`)
	r := assess(t, src.URL(), tgt.URL())
	mustFind(t, r, "binlog_retention", "source", check.Error, "SET GLOBAL binlog_expire_logs_seconds = 604800")
	problemHas(t, r, "binlog_retention", "source", "the binary log is kept 1 s, and the load of the plan's tables (")
	problemHas(t, r, "binlog_retention", "source", "MiB of data and indexes) is estimated at 3s at 20 MiB/s")
	// Without the table, the load is short: a day is still wanted.
	r = assess(t, src.URL(), tgt.URL(), "tables: {exclude: ['*.big']}")
	mustFind(t, r, "binlog_retention", "source", check.Warning, "CALL mysql.rds_set_configuration('binlog retention hours', 168)")

	// RDS: its configuration table is what is read.
	src.Exec(t, `CREATE TABLE mysql.rds_configuration (name varchar(100) PRIMARY KEY, value varchar(100));
		INSERT INTO mysql.rds_configuration VALUES ('binlog retention hours', NULL)`)
	r = assess(t, src.URL(), tgt.URL())
	mustFind(t, r, "binlog_retention", "source", check.Error, "CALL mysql.rds_set_configuration('binlog retention hours', 168)")
	problemHas(t, r, "binlog_retention", "source", "'binlog retention hours' is not set (NULL)")
	src.Exec(t, "UPDATE mysql.rds_configuration SET value = '2'")
	r = assess(t, src.URL(), tgt.URL())
	mustFind(t, r, "binlog_retention", "source", check.Warning, "CALL mysql.rds_set_configuration('binlog retention hours', 168)")
	if f := r.Find("binlog_retention", "source"); f != nil && (strings.Contains(f.Fix, "SET GLOBAL") || !strings.Contains(f.Problem, "'binlog retention hours' is 2")) {
		t.Errorf("RDS's retention: %+v", f)
	}
	src.Exec(t, "UPDATE mysql.rds_configuration SET value = '168'")
	if r = assess(t, src.URL(), tgt.URL()); r.Has("binlog_retention", "") {
		t.Errorf("a week's retention reported: %+v", r.Find("binlog_retention", ""))
	}
	// a one-shot copy reads no binary log
	src.Exec(t, "UPDATE mysql.rds_configuration SET value = NULL")
	r = assess(t, src.URL(), tgt.URL(), "cdc: {enabled: false}")
	mustFind(t, r, "binlog_retention", "source", check.Info, "")
}

// The server_id of a migration's stream is checked against the replicas connected to
// the source: one of them with it is a warning.
func TestAssessStreamServerID(t *testing.T) {
	src, tgt := mytest.NewDB(t, mytest.Source(t)), mytest.NewDB(t, mytest.Target(t))
	ctx := context.Background()
	ctlName := tgt.Name + "_ctl"
	t.Cleanup(func() { tgt.Exec(t, "DROP DATABASE IF EXISTS "+quote(ctlName)) })
	ctl, err := openControl(ctx, tgt.Open(t), ctlName)
	if err != nil {
		t.Fatal(err)
	}
	stream := binlogOf(t, src, nil, 0)
	id := strconv.FormatUint(uint64(stream.serverID), 10)
	if err := ctl.SetState(ctx, control.State{Phase: control.PhaseCDC, Slot: streamSlot + id}); err != nil {
		t.Fatal(err)
	}
	r := assess(t, src.URL(), tgt.URL(), "control_schema: "+ctlName)
	mustFind(t, r, "server_id", "stream", check.Info, "")
	problemHas(t, r, "server_id", "stream", "this migration's stream reads the binary log as server_id "+id+";")

	streamFrom(t, stream, gtidPos(t, src)) // registered with the source when it returns
	r = assess(t, src.URL(), tgt.URL(), "control_schema: "+ctlName)
	mustFind(t, r, "server_id", "stream", check.Warning, "if it is another replica: give it another server_id")
	problemHas(t, r, "server_id", "stream", "a replica connected to the source uses server_id "+id)
}
