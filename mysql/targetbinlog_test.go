package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/mytest"
	"github.com/cutover-dev/cutover/plan"
)

// A load with full_load.target_binlog false writes the rows and leaves them out of
// the target's binary log; the same load with the default writes them there. Either
// way the secondary index is built and the rows are the source's.
func TestFullLoadWithoutTheTargetBinlog(t *testing.T) {
	srcDB := mytest.NewDB(t, mytest.Source(t))
	srcDB.Exec(t, `CREATE TABLE items (id int PRIMARY KEY, k int NOT NULL, v varchar(20), KEY k (k));
		INSERT INTO items SELECT seq, seq % 7, concat('v', seq) FROM seq_1_to_3000`)
	for _, binlog := range []bool{false, true} {
		t.Run(fmt.Sprint("target_binlog=", binlog), func(t *testing.T) {
			tgtDB := mytest.NewDB(t, mytest.Target(t))
			tgt := tgtDB.Open(t)
			from := binlogFiles(t, tgt)
			ctlName := "cutover_b" + tgtDB.Name
			t.Cleanup(func() { _ = tgtDB.Server.Exec(context.Background(), "", "DROP DATABASE IF EXISTS "+quote(ctlName)) })
			p := plan.Defaults()
			p.Source, p.Target, p.ControlSchema = plan.Endpoint{URL: srcDB.URL()}, plan.Endpoint{URL: tgtDB.URL()}, ctlName
			p.CDC.Enabled, p.FullLoad.TargetBinlog = false, binlog
			p.Cutover.ExemptRoles = []string{"root"}
			if err := FullLoad(context.Background(), p, engine.StartOptions{Out: io.Discard}); err != nil {
				t.Fatal(err)
			}
			var n, sum int64
			if err := tgt.QueryRow("SELECT count(*), sum(id * k + length(v)) FROM items").Scan(&n, &sum); err != nil {
				t.Fatal(err)
			}
			var wantSum int64
			if err := srcDB.Open(t).QueryRow("SELECT sum(id * k + length(v)) FROM items").Scan(&wantSum); err != nil {
				t.Fatal(err)
			}
			if n != 3000 || sum != wantSum {
				t.Errorf("target: %d rows, sum %d; want 3000, %d", n, sum, wantSum)
			}
			var index string
			if err := tgt.QueryRow("SELECT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'items' AND INDEX_NAME = 'k'").Scan(&index); err != nil {
				t.Errorf("the secondary index k on the target: %v", err)
			}
			logged := rowEventsOf(t, tgt, from, tgtDB.Name, "items")
			if binlog && logged == 0 {
				t.Errorf("target_binlog true: no row event of %s.items in the target's binary log", tgtDB.Name)
			}
			if !binlog && logged != 0 {
				t.Errorf("target_binlog false: %d row events of %s.items in the target's binary log", logged, tgtDB.Name)
			}
		})
	}
}

// binlogFiles are the server's binary log files now, the last with its size: where
// what comes next begins.
func binlogFiles(t *testing.T, db *sql.DB) map[string]int64 {
	t.Helper()
	rows, err := queryRows(context.Background(), db, "SHOW BINARY LOGS")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]int64{}
	for _, r := range rows {
		var size int64
		fmt.Sscan(r[1], &size)
		files[r[0]] = size
	}
	return files
}

// rowEventsOf counts the row events of table in database, in the server's binary log
// after from (binlogFiles): each follows a table map naming its table.
func rowEventsOf(t *testing.T, db *sql.DB, from map[string]int64, database, table string) int {
	t.Helper()
	ctx := context.Background()
	var files []string
	for f := range binlogFiles(t, db) {
		files = append(files, f)
	}
	slices.Sort(files)
	n := 0
	for _, f := range files {
		start := from[f] // 0: a file begun since, read whole
		rows, err := queryRows(ctx, db, fmt.Sprintf("SHOW BINLOG EVENTS IN '%s' FROM %d", f, max(start, 4)))
		if err != nil {
			t.Fatal(err)
		}
		mapped := false
		for _, r := range rows {
			switch typ, info := r[2], r[5]; {
			case typ == "Table_map":
				mapped = strings.Contains(info, "(`"+database+"`.`"+table+"`)") || strings.Contains(info, "("+database+"."+table+")")
			case strings.HasSuffix(typ, "_rows_v1") || strings.HasSuffix(typ, "_rows"):
				if mapped {
					n++
				}
			}
		}
	}
	return n
}

// cutover check on full_load.target_binlog false: an account that cannot turn the
// binary log off is refused with the GRANT; a session reading the target's binary
// log (a replica) is refused, named; with neither, it is information.
func TestAssessTargetBinlog(t *testing.T) {
	srv := mytest.StartServer(t, mytest.Options{Name: "tbinlog"})
	src, tgt := mytest.NewDB(t, mytest.Source(t)), mytest.NewDB(t, srv)
	off := "full_load: {target_binlog: false}"

	r := assess(t, src.URL(), tgt.URL(), off)
	mustFind(t, r, "target_binlog", "target", check.Info, "")

	tgt.Exec(t, fmt.Sprintf("CREATE USER nolog IDENTIFIED BY 'pw'; GRANT ALL ON `%s`.* TO nolog; GRANT PROCESS ON *.* TO nolog", tgt.Name))
	limited := fmt.Sprintf("mysql://nolog:pw@127.0.0.1:%d/%s", srv.Port, tgt.Name)
	r = assess(t, src.URL(), limited, off)
	mustFind(t, r, "target_binlog", "target", check.Error, "GRANT BINLOG ADMIN ON *.*")
	if r = assess(t, src.URL(), limited); r.Has("target_binlog", "target") {
		t.Errorf("the default plan has a target_binlog finding: %+v", r.Find("target_binlog", "target"))
	}

	// a replica of the target: a binary log dump on it
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{ServerID: 4242, Flavor: gomysql.MariaDBFlavor,
		Host: "127.0.0.1", Port: uint16(srv.Port), User: mytest.Superuser, Password: mytest.Password, Logger: slog.New(slog.DiscardHandler)})
	defer syncer.Close()
	if _, err := syncer.StartSync(gomysql.Position{Name: "binlog.000001", Pos: 4}); err != nil {
		t.Fatal(err)
	}
	db := tgt.Open(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var dumps int
		if err := db.QueryRow("SELECT count(*) FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'").Scan(&dumps); err != nil {
			t.Fatal(err)
		}
		if dumps > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the binary log dump never showed in the target's process list")
		}
		if err := db.Ping(); err != nil { // a round trip between polls
			t.Fatal(err)
		}
	}
	r = assess(t, src.URL(), tgt.URL(), off)
	mustFind(t, r, "target_binlog", "target", check.Error, "leave full_load.target_binlog out of the plan")
	problemHas(t, r, "target_binlog", "target", "replicas read the target's binary log (session ")
}
