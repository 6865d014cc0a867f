package mysql

import (
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	driver "github.com/go-sql-driver/mysql"
	"github.com/google/uuid"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/plan"
)

// The change stream of a MySQL/MariaDB source, read from its binary log as a replica
// reads it: go-mysql's BinlogSyncer, not its canal, which re-reads the table's current
// definition on a schema change and decodes older events against it. Each table's
// definition comes from the binary log itself (binlog_row_metadata = FULL), what the
// log does not say (generated columns, MariaDB's INET4, INET6 and UUID, stored as
// binary strings) from the catalog. The library's own reconnection is off: it resumes
// from the last event it read, which may be mid-transaction and re-sends what the
// caller has; cdc.Follow opens the stream again at the position the target committed.
//
// Positions are text the target stores with its changes:
//
//   - MariaDB: the GTID state, the last GTID of each domain ("0-1-42,1-2-7", as
//     gtid_binlog_pos and BINLOG_GTID_POS write it);
//   - MySQL with GTIDs: the GTID set ("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42");
//   - MySQL without GTIDs: the file and the offset of the end of the last transaction
//     ("binlog.000001:1234").
//
// A snapshot's Position.String() ("0-1-42 (binlog.000001:1234)") is read too: the
// GTID state when it has one, else the file and offset. The stream starts after the
// position: with a GTID state, after the transactions it holds.

// binlogSource opens the change stream of a MySQL/MariaDB source's database (tables:
// the migrated ones) from a position.
type binlogSource struct {
	cfg       *driver.Config // the source's address, role, password and tls mode (Config)
	serverID  uint32         // the stream's replica id: unique among the source's replicas
	mariadb   bool
	database  string
	tables    map[string]bool // nil: every table of the database
	heartbeat time.Duration
	// control is the control database on the source's server, whose sync_markers the
	// stream passes on as markers (see syncMarkerPrefix); "" for none.
	control string
}

var (
	_ cdc.Source = (*binlogSource)(nil)
	_ cdc.Stream = (*binlogStream)(nil)
)

// defaultHeartbeat is how often an idle source sends a heartbeat, and how often a
// stream that skips transactions sends their position, when the caller sets neither.
const defaultHeartbeat = 10 * time.Second

// newBinlogSource is the change stream of the endpoint's database, of the tables named
// (nil: every table), read as the replica serverID; heartbeat is how long the stream
// may stay silent (0: defaultHeartbeat).
func newBinlogSource(e plan.Endpoint, mariadb bool, serverID uint32, tables []string, heartbeat time.Duration) (*binlogSource, error) {
	cfg, err := Config(e)
	if err != nil {
		return nil, fmt.Errorf("source.url %w", err)
	}
	if serverID == 0 {
		return nil, errors.New("the change stream needs a server_id other than 0 (the source's replicas each have their own)")
	}
	if heartbeat <= 0 {
		heartbeat = defaultHeartbeat
	}
	s := &binlogSource{cfg: cfg, serverID: serverID, mariadb: mariadb, database: cfg.DBName, heartbeat: heartbeat}
	if tables != nil {
		s.tables = map[string]bool{}
		for _, t := range tables {
			s.tables[t] = true
		}
	}
	return s, nil
}

func (s *binlogSource) migrated(schema, table string) bool {
	return schema == s.database && (s.tables == nil || s.tables[table])
}

// Open starts the stream after from, the position of the last transaction the target
// committed (or a snapshot's).
func (s *binlogSource) Open(ctx context.Context, from string) (cdc.Stream, error) {
	pos, err := parseBinlogPosition(from, s.mariadb)
	if err != nil {
		return nil, err
	}
	connector, err := driver.NewConnector(s.cfg.Clone())
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(1)
	st := &binlogStream{src: s, db: db, tables: map[uint64]*binlogTable{}, byName: map[string]*binlogTable{}, ids: map[string]uint32{}}
	if err := st.start(ctx, pos); err != nil {
		db.Close()
		return nil, err
	}
	return st, nil
}

// binlogStream is one reading of the binary log, from Open until Run returns.
type binlogStream struct {
	src        *binlogSource
	db         *sql.DB // the catalog and the character sets
	syncer     *replication.BinlogSyncer
	events     *replication.BinlogStreamer
	collations map[uint64]charset

	// The position after the last transaction read: a GTID state (gtids), or a file
	// and offset.
	gtids  bool
	maria  map[uint32]gomysql.MariadbGTID // MariaDB: each domain's last GTID
	set    gomysql.MysqlGTIDSet           // MySQL
	file   string
	offset uint32

	tables map[uint64]*binlogTable // by TABLE_MAP id; nil: not migrated
	byName map[string]*binlogTable // each migrated table's latest definition
	ids    map[string]uint32       // each table's Relation.ID
	txn    binlogTxn

	out     chan<- cdc.Event
	pending *cdc.Commit // the position of the transactions skipped since the last Commit sent
	sent    time.Time   // when the last Commit was sent

	// wait ends a wait for the next event (see waitUntil).
	wait       context.Context
	waitCancel context.CancelFunc
}

// binlogTxn is the transaction (an event group) being read.
type binlogTxn struct {
	active bool      // since its GTID event (or BEGIN) until its end
	open   bool      // ends at XID or COMMIT (else after its one statement)
	pos    string    // where it commits; "" without GTIDs until its end is read
	at     time.Time // when it committed
	begun  bool      // its Begin was sent
	// markers are the sync markers it wrote (see syncMarkerPrefix)
	markers []string
}

// charset is what the stream needs of a collation's character set.
type charset struct {
	name   string
	maxLen int
}

// start reads the character sets and starts the binary log's dump at pos.
func (st *binlogStream) start(ctx context.Context, pos Position) error {
	s := st.src
	st.collations = map[uint64]charset{}
	rows, err := st.db.QueryContext(ctx, `SELECT co.ID, co.CHARACTER_SET_NAME, cs.MAXLEN FROM information_schema.COLLATIONS co
		JOIN information_schema.CHARACTER_SETS cs ON cs.CHARACTER_SET_NAME = co.CHARACTER_SET_NAME WHERE co.ID IS NOT NULL`)
	if err != nil {
		return fmt.Errorf("source: read the character sets: %w", err)
	}
	for rows.Next() {
		var id uint64
		var c charset
		if err := rows.Scan(&id, &c.name, &c.maxLen); err != nil {
			rows.Close()
			return err
		}
		st.collations[id] = c
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	st.file, st.offset = pos.File, uint32(pos.Offset)
	switch {
	case s.mariadb:
		st.gtids = true
		if pos.GTID == "" {
			// A file and offset: MariaDB's log says the GTID state there.
			var state sql.NullString
			if err := st.db.QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, ?)", pos.File, pos.Offset).Scan(&state); err != nil {
				return fmt.Errorf("source: the GTID state at %s:%d: %w", pos.File, pos.Offset, err)
			}
			if !state.Valid {
				return fmt.Errorf("the source has no binary log position %s:%d (the file was purged, or is not the source's): start the migration over", pos.File, pos.Offset)
			}
			pos.GTID = state.String
		}
		if st.maria, err = parseMariaDBState(pos.GTID); err != nil {
			return err
		}
	case pos.GTID != "":
		st.gtids = true
		set, err := gomysql.ParseMysqlGTIDSet(pos.GTID)
		if err != nil {
			return fmt.Errorf("position %q: %w", pos.GTID, err)
		}
		st.set = *set.(*gomysql.MysqlGTIDSet)
	}

	tlsCfg, preferred := st.tlsConfig()
	err = st.dump(pos, tlsCfg)
	if err != nil && preferred && strings.Contains(err.Error(), "does not support TLS") {
		err = st.dump(pos, nil)
	}
	if err != nil {
		return fmt.Errorf("source: read the binary log from %s: %w", binlogPositionText(pos), err)
	}
	return nil
}

// tlsConfig is the URL's tls option as the binary log's connection takes it;
// preferred: TLS when the server has it.
func (st *binlogStream) tlsConfig() (cfg *tls.Config, preferred bool) {
	host, _, _ := net.SplitHostPort(st.src.cfg.Addr)
	switch st.src.cfg.TLSConfig {
	case "true":
		return &tls.Config{ServerName: host}, false
	case "skip-verify":
		return &tls.Config{InsecureSkipVerify: true}, false
	case "preferred":
		return &tls.Config{InsecureSkipVerify: true}, true
	}
	return nil, false
}

// dump connects as a replica and asks for the log after pos.
func (st *binlogStream) dump(pos Position, tlsCfg *tls.Config) error {
	s := st.src
	host, port, err := net.SplitHostPort(s.cfg.Addr)
	if err != nil {
		return err
	}
	portNum, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("port %q: %w", port, err)
	}
	flavor := gomysql.MySQLFlavor
	if s.mariadb {
		flavor = gomysql.MariaDBFlavor
	}
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: s.serverID,
		Flavor:   flavor,
		Host:     host,
		Port:     uint16(portNum),
		User:     s.cfg.User,
		Password: s.cfg.Passwd,

		TLSConfig: tlsCfg,
		// The server sends a heartbeat when it has had nothing to send for a period;
		// next takes a silence of three for a dead connection, and Run's end closes
		// it. The library's read timeout is left off: it would set the socket's
		// deadline at every packet, a tenth of the stream's CPU.
		HeartbeatPeriod: s.heartbeat,
		// cdc.Follow reopens the stream at the committed position; the library's retry
		// would resume mid-transaction and send again what was sent.
		DisableRetrySync: true,

		// Values as exact as the log holds them: decimals as their text (not a
		// shopspring decimal, which drops trailing zeros), TIMESTAMP in UTC, MySQL's
		// JSON by its type tags (DOUBLE 1.0 stays 1.0, keys in their stored order).
		UseDecimal:              false,
		TimestampStringLocation: time.UTC,
		RenderJSONAsMySQLText:   true,
		// MariaDB 11.4 writes no LogPos inside transactions: the library computes it.
		FillZeroLogPos: s.mariadb,
		// The stream tracks the GTID state itself.
		DiscardGTIDSet: true,
		// A large transaction streams through: the library reads ahead this many
		// events (a row event is at most binlog_row_event_max_size, 8 KiB by default).
		EventCacheCount:           64,
		PayloadDecoderConcurrency: 1,
		Logger:                    slog.New(slog.DiscardHandler),
	})
	var events *replication.BinlogStreamer
	switch {
	case !st.gtids:
		events, err = syncer.StartSync(gomysql.Position{Name: pos.File, Pos: uint32(pos.Offset)})
	case s.mariadb && len(st.maria) == 0:
		// no GTID yet at that file and offset: from there
		events, err = syncer.StartSync(gomysql.Position{Name: pos.File, Pos: uint32(pos.Offset)})
	case s.mariadb:
		set, perr := gomysql.ParseMariadbGTIDSet(formatMariaDBState(st.maria))
		if perr != nil {
			syncer.Close()
			return perr
		}
		events, err = syncer.StartSyncGTID(set)
	default:
		events, err = syncer.StartSyncGTID(st.set.Clone())
	}
	if err != nil {
		syncer.Close()
		return err
	}
	st.syncer, st.events = syncer, events
	return nil
}

// Run sends the source's transactions on the migrated tables, and, at most every
// heartbeat, the position of those it skipped, until ctx ends or the log cannot be
// read.
func (st *binlogStream) Run(ctx context.Context, out chan<- cdc.Event) error {
	defer st.db.Close()
	defer st.syncer.Close()
	defer func() {
		if st.wait != nil {
			st.waitCancel()
		}
	}()
	st.out = out
	st.sent = time.Now()
	for {
		ev, err := st.next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return st.readError(err)
		}
		if err := st.handle(ctx, ev); err != nil {
			return err
		}
	}
}

// next waits for the next event: when skipped transactions wait to have their
// position sent, no longer than the heartbeat allows; and no longer than three
// heartbeats and a margin in all, as an idle source sends a heartbeat each period.
func (st *binlogStream) next(ctx context.Context) (*replication.BinlogEvent, error) {
	silentSince := time.Now()
	for {
		deadline := silentSince.Add(st.silence())
		flush := st.pending != nil && st.sent.Add(st.src.heartbeat).Before(deadline)
		if flush {
			deadline = st.sent.Add(st.src.heartbeat)
		}
		ev, err := st.events.GetEvent(st.waitUntil(ctx, deadline))
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return ev, err
		}
		st.waitCancel()
		st.wait = nil
		if time.Now().Before(deadline) {
			continue // an earlier wait's deadline: wait on
		}
		if !flush {
			return nil, fmt.Errorf("%w for %v", errSilent, st.silence())
		}
		if err := st.flushPending(ctx); err != nil {
			return nil, err
		}
	}
}

// waitUntil is a context of ctx that ends by deadline: the previous wait's when it
// ends no later, so that one context serves the events of a silence period (one per
// event was a tenth of the stream's CPU). A wait that ends before its deadline is
// taken up again by next.
func (st *binlogStream) waitUntil(ctx context.Context, deadline time.Time) context.Context {
	if st.wait != nil {
		if d, _ := st.wait.Deadline(); !d.After(deadline) {
			return st.wait
		}
		st.waitCancel()
	}
	st.wait, st.waitCancel = context.WithDeadline(ctx, deadline)
	return st.wait
}

// errSilent is a connection that stopped sending: no event, not even a heartbeat.
var errSilent = errors.New("no event and no heartbeat from the source: the connection is dead")

// silence is how long the source may send nothing before the connection is taken
// for dead: it sends a heartbeat each period it has nothing else to send.
func (st *binlogStream) silence() time.Duration { return 3*st.src.heartbeat + 30*time.Second }

// readError says what a failed read of the log means.
func (st *binlogStream) readError(err error) error {
	var me *gomysql.MyError
	if errors.As(err, &me) {
		switch me.Code {
		case 1236: // ER_SOURCE_FATAL_ERROR_READING_BINLOG
			if strings.Contains(me.Message, "server_id") || strings.Contains(me.Message, "server_uuid") {
				return fmt.Errorf("read the source's binary log: %w: another replica of the source uses server_id %d: give the change stream one of its own", err, st.src.serverID)
			}
			return fmt.Errorf("the source cannot send its binary log from the position committed (%s): %w; the log was purged past it or the source was restored or failed over to a server without it: start the migration over", st.positionText(), err)
		case 1227, 1045, 1044: // a privilege the role lacks
			return fmt.Errorf("read the source's binary log: %w: GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO the source's role (MariaDB 10.5+: BINLOG MONITOR and REPLICATION SLAVE)", err)
		}
	}
	return fmt.Errorf("read the source's binary log: %w", err)
}

// binlogFault says whether a stream's error is a fault that may heal (the source
// restarted, the connection was cut), after which the stream may be opened again at
// the committed position; not a change the stream refuses, nor a position gone.
func binlogFault(err error) bool {
	var me *gomysql.MyError
	if errors.As(err, &me) {
		switch me.Code {
		case 1040, 1053, 1152, 1158, 1159, 1160, 1161, 2006, 2013: // too many connections, shutdown, aborted, network errors, connection lost
			return true
		}
		return false
	}
	var refused *binlogRefusal
	if errors.As(err, &refused) || errors.Is(err, context.Canceled) {
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, errSilent) || errors.Is(err, replication.ErrSyncClosed) || errors.Is(err, replication.ErrNeedSyncAgain) ||
		strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "connection reset") ||
		strings.Contains(err.Error(), "broken pipe") || strings.Contains(err.Error(), "connection refused")
}

// binlogRefusal is a change the stream cannot follow: its message names the table
// and the setting or statement that made it.
type binlogRefusal struct{ msg string }

func (e *binlogRefusal) Error() string { return e.msg }

func refuse(format string, args ...any) error {
	return &binlogRefusal{msg: fmt.Sprintf(format, args...)}
}

// handle reads one event of the log.
func (st *binlogStream) handle(ctx context.Context, ev *replication.BinlogEvent) error {
	h := ev.Header
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		st.file, st.offset = string(e.NextLogName), uint32(e.Position)
	case *replication.MariadbGTIDEvent:
		if err := st.newGroup(ctx); err != nil {
			return err
		}
		st.maria[e.GTID.DomainID] = e.GTID
		st.txn = binlogTxn{active: true, open: !e.IsStandalone(), pos: formatMariaDBState(st.maria), at: time.Unix(int64(h.Timestamp), 0)}
	case *replication.GtidTaggedLogEvent:
		return st.mysqlGTID(ctx, h, &e.GTIDEvent)
	case *replication.GTIDEvent:
		return st.mysqlGTID(ctx, h, e)
	case *replication.QueryEvent:
		return st.query(ctx, h, e)
	case *replication.XIDEvent:
		return st.endGroup(ctx, h)
	case *replication.TableMapEvent:
		return st.tableMap(ctx, e)
	case *replication.RowsEvent:
		return st.rows(ctx, h, e)
	case *replication.TransactionPayloadEvent:
		// MySQL's compressed transaction: its events, decompressed, in order.
		for _, inner := range e.Events {
			if err := st.handle(ctx, inner); err != nil {
				return err
			}
		}
	case *replication.HeartbeatEvent:
		if st.pending != nil && time.Since(st.sent) >= st.src.heartbeat {
			return st.flushPending(ctx)
		}
	case *replication.ExecuteLoadQueryEvent:
		// A statement-based LOAD DATA: its database and statement follow its fixed
		// fields (as a QUERY_EVENT's, and the file's id, start, end and handling).
		body := ev.RawData[replication.EventHeaderSize:]
		at := 26 + int(e.StatusVars)
		if start := at + int(e.SchemaLength) + 1; start < len(body) {
			return st.statement(ctx, h, string(body[start:]), string(body[at:at+int(e.SchemaLength)]), false)
		}
	case *replication.GenericEvent:
		return st.generic(ctx, h)
	}
	return nil
}

// generic is an event the library does not decode: inside a transaction, one that
// could hold row changes the stream would drop is refused.
func (st *binlogStream) generic(ctx context.Context, h *replication.EventHeader) error {
	switch h.EventType {
	case replication.INCIDENT_EVENT:
		return refuse("the source's binary log has an incident event at %s:%d: the source lost changes it did not log (a replica of it would stop there too): start the migration over", st.file, h.LogPos)
	case replication.XA_PREPARE_LOG_EVENT:
		if st.txn.begun {
			return refuse("an XA transaction changed the migrated tables (%s): the stream does not follow XA transactions, prepared and committed apart; commit such changes as ordinary transactions", st.txn.pos)
		}
		return st.endGroup(ctx, h)
	case replication.STOP_EVENT, replication.RAND_EVENT, replication.USER_VAR_EVENT, replication.IGNORABLE_EVENT,
		replication.TRANSACTION_CONTEXT_EVENT, replication.VIEW_CHANGE_EVENT, replication.BEGIN_LOAD_QUERY_EVENT,
		replication.MARIADB_START_ENCRYPTION_EVENT, replication.FORMAT_DESCRIPTION_EVENT, replication.START_EVENT_V3:
		return nil
	}
	if st.txn.active && h.Flags&replication.LOG_EVENT_IGNORABLE_F == 0 {
		return refuse("the source's binary log has an event of type %d (%s) inside a transaction at %s:%d, which this version of cutover cannot read and which may hold row changes: turn off what writes it (MariaDB's log_bin_compress, MySQL's binlog_transaction_compression)",
			h.EventType, h.EventType, st.file, h.LogPos)
	}
	return nil
}

// mysqlGTID starts a MySQL transaction.
func (st *binlogStream) mysqlGTID(ctx context.Context, h *replication.EventHeader, e *replication.GTIDEvent) error {
	if err := st.newGroup(ctx); err != nil {
		return err
	}
	at := time.Unix(int64(h.Timestamp), 0)
	if t := e.ImmediateCommitTime(); !t.IsZero() {
		at = t
	}
	st.txn = binlogTxn{active: true, at: at}
	if !st.gtids {
		// Without GTIDs the transaction commits where it ends: MySQL 8 says its length.
		if e.TransactionLength > 0 && h.LogPos >= h.EventSize {
			st.txn.pos = fmt.Sprintf("%s:%d", st.file, uint64(h.LogPos-h.EventSize)+e.TransactionLength)
		}
		return nil
	}
	if h.EventType == replication.ANONYMOUS_GTID_EVENT {
		return refuse("the source logged a transaction without a GTID after %s (gtid_mode is not ON): SET GLOBAL gtid_mode = ON on the source, or start the migration over from a file and offset", st.positionText())
	}
	sid, err := uuid.FromBytes(e.SID)
	if err != nil {
		return fmt.Errorf("a GTID event: %w", err)
	}
	st.set.AddGTIDWithTag(sid, e.Tag, e.GNO)
	st.txn.pos = st.set.String()
	return nil
}

// newGroup is a GTID event: the transaction before it ended.
func (st *binlogStream) newGroup(ctx context.Context) error {
	if !st.txn.active {
		return nil
	}
	if st.txn.begun {
		return fmt.Errorf("the binary log's transaction at %s has no COMMIT before the next one: the log is damaged, or the stream misread it", st.txn.pos)
	}
	return st.endGroup(ctx, nil)
}

// implicitGroup starts a transaction that began without a GTID event (MySQL 5.6 and
// older without GTIDs).
func (st *binlogStream) implicitGroup(h *replication.EventHeader) {
	if !st.txn.active {
		st.txn = binlogTxn{active: true, at: time.Unix(int64(h.Timestamp), 0)}
	}
}

// endGroup ends the transaction: its Commit when it was sent, else its position is
// sent with the next heartbeat.
func (st *binlogStream) endGroup(ctx context.Context, h *replication.EventHeader) error {
	if !st.gtids && h != nil && h.LogPos > 0 {
		st.offset = h.LogPos
	}
	pos := st.positionText()
	txn := st.txn
	st.txn = binlogTxn{}
	if txn.begun {
		st.pending = nil
		st.sent = time.Now()
		if err := st.send(ctx, &cdc.Commit{Position: pos, CommitTime: txn.at}); err != nil {
			return err
		}
	} else {
		st.pending = &cdc.Commit{Position: pos, CommitTime: txn.at}
		if time.Since(st.sent) >= st.src.heartbeat || len(txn.markers) > 0 {
			if err := st.flushPending(ctx); err != nil {
				return err
			}
		}
	}
	for _, m := range txn.markers {
		if err := st.send(ctx, &cdc.Marker{ID: syncMarkerPrefix + m, Position: pos}); err != nil {
			return err
		}
	}
	return nil
}

// syncMarkerPrefix begins the ID of a marker the switch wrote into the control
// database's sync_markers on the side the stream reads: the applier records that it
// reached it (state.sync_marker), after every transaction before it.
const syncMarkerPrefix = "sync:"

// textOf is a value of a row event as text.
func textOf(v any) any {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return v
}

// flushPending sends the position of the transactions skipped as an empty one, so
// that the target commits it when the migrated tables are idle.
func (st *binlogStream) flushPending(ctx context.Context) error {
	p := st.pending
	st.pending = nil
	st.sent = time.Now()
	if err := st.send(ctx, &cdc.Begin{Position: p.Position, CommitTime: p.CommitTime}); err != nil {
		return err
	}
	return st.send(ctx, p)
}

// positionText is the position after the last transaction read.
func (st *binlogStream) positionText() string {
	switch {
	case st.maria != nil:
		return formatMariaDBState(st.maria)
	case st.gtids:
		return st.set.String()
	}
	return fmt.Sprintf("%s:%d", st.file, st.offset)
}

func (st *binlogStream) send(ctx context.Context, e cdc.Event) error {
	select {
	case st.out <- e:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// emit sends an event of the transaction, after its Begin.
func (st *binlogStream) emit(ctx context.Context, e cdc.Event) error {
	if !st.txn.begun {
		st.txn.begun = true
		if err := st.send(ctx, &cdc.Begin{Position: st.txn.pos, CommitTime: st.txn.at}); err != nil {
			return err
		}
	}
	return st.send(ctx, e)
}

// query reads a statement the log holds as text: the transaction's bounds, or a
// schema change.
func (st *binlogStream) query(ctx context.Context, h *replication.EventHeader, e *replication.QueryEvent) error {
	q := string(e.Query)
	words := leadingWords(q, 3)
	first, second := "", ""
	if len(words) > 0 {
		first = words[0]
	}
	if len(words) > 1 {
		second = words[1]
	}
	switch {
	case first == "BEGIN" || first == "XA" && second == "START":
		st.implicitGroup(h)
		st.txn.open = true
		return nil
	case first == "COMMIT" || first == "XA" && second == "COMMIT" && st.txn.open:
		return st.endGroup(ctx, h)
	case first == "ROLLBACK" && second != "TO" || first == "XA" && second == "ROLLBACK" && st.txn.open:
		if st.txn.begun {
			return refuse("the source logged a transaction that rolled back after changing the migrated tables (%s), as it does when it also changed a non-transactional table: the stream cannot undo what it sent; keep the migrated tables' changes apart from MyISAM's, then start the migration over", st.txn.pos)
		}
		return st.endGroup(ctx, h)
	case first == "SAVEPOINT" || first == "ROLLBACK" || first == "RELEASE" || first == "XA":
		if st.txn.active && !st.txn.open {
			return st.endGroup(ctx, h) // a statement alone (XA COMMIT of a prepared transaction)
		}
		return nil
	}
	st.implicitGroup(h)
	if err := st.statement(ctx, h, q, string(e.Schema), ansiQuotes(e.StatusVars)); err != nil {
		return err
	}
	if !st.txn.open {
		// a statement alone (a schema change): the transaction is this event
		return st.endGroup(ctx, h)
	}
	return nil
}

// statement reads a statement that is not a transaction's bound: a schema change on a
// migrated table is sent, a TRUNCATE as a truncate; a row change logged as a
// statement (binlog_format STATEMENT or MIXED in a session) is refused.
func (st *binlogStream) statement(ctx context.Context, h *replication.EventHeader, q, current string, ansi bool) error {
	stmt := parseStatement(q, ansi)
	var touched []cdc.SchemaObject
	for _, o := range stmt.objects(current) {
		if o.Kind == "database" && o.Schema == st.src.database || o.Table != "" && st.src.migrated(o.Schema, o.Table) {
			touched = append(touched, o)
		}
	}
	if stmt.dml {
		for _, n := range stmt.names {
			schema, name := n[0], n[1]
			if schema == "" {
				schema = current
			}
			if st.src.migrated(schema, name) {
				return refuse("table %s: the source logged a change to it as a statement (%.200s), not as rows: binlog_format is STATEMENT or MIXED for the session that made it; SET GLOBAL binlog_format = 'ROW' and keep sessions from changing it, then start the migration over",
					tableName{schema, name}.quoted(), q)
			}
		}
		return nil
	}
	if len(touched) == 0 {
		return nil
	}
	if stmt.tag == "TRUNCATE TABLE" {
		rel := st.relationOf(touched[0].Table)
		return st.emit(ctx, &cdc.Change{Op: cdc.Truncate, Rel: rel, Truncated: []*cdc.Relation{rel}})
	}
	return st.emit(ctx, &cdc.SchemaChange{Statement: q, Tag: stmt.tag, Context: current, Objects: stmt.objects(current)})
}

// relationOf is a table's latest Relation; one without columns when its rows have
// not been seen.
func (st *binlogStream) relationOf(table string) *cdc.Relation {
	if t := st.byName[table]; t != nil {
		return t.rel
	}
	return &cdc.Relation{ID: st.relationID(table), Schema: st.src.database, Name: table}
}

func (st *binlogStream) relationID(table string) uint32 {
	id, ok := st.ids[table]
	if !ok {
		id = uint32(len(st.ids) + 1)
		st.ids[table] = id
	}
	return id
}

// ansiQuotes reads sql_mode's ANSI_QUOTES from a statement's status variables, where
// the server writes the flags (code 0, 4 bytes) and then sql_mode (code 1, 8 bytes)
// first.
func ansiQuotes(vars []byte) bool {
	for len(vars) > 0 {
		switch vars[0] {
		case 0:
			if len(vars) < 5 {
				return false
			}
			vars = vars[5:]
		case 1:
			if len(vars) < 9 {
				return false
			}
			return vars[1]&4 != 0 // MODE_ANSI_QUOTES
		default:
			return false
		}
	}
	return false
}

// binlogTable is a migrated table's definition as a TABLE_MAP event gives it.
type binlogTable struct {
	marker bool   // the control database's sync_markers: its inserts are markers
	sig    string // the definition, to tell a new TABLE_MAP of the same table from a changed one
	rel    *cdc.Relation
	cols   []binlogColumn // every column the log has, in its order
}

// binlogColumn is how a column's values are read.
type binlogColumn struct {
	name     string
	typ      byte // the type as rows hold it (for a CHAR, ENUM or SET: its real type)
	fsp      int  // fractional seconds digits of TIME, DATETIME, TIMESTAMP
	unsigned bool
	binary   bool   // a binary string (character set binary)
	length   int    // BINARY(n): n, the bytes the log leaves out (trailing zeros) padded back
	as       string // "inet4", "inet6", "uuid": a binary form written as text
	computed bool   // a generated column: the target computes it
}

// tableMap reads a table's definition.
func (st *binlogStream) tableMap(ctx context.Context, e *replication.TableMapEvent) error {
	schema, name := string(e.Schema), string(e.Table)
	if st.src.control != "" && schema == st.src.control && name == "sync_markers" {
		st.tables[e.TableID] = &binlogTable{marker: true}
		return nil
	}
	if !st.src.migrated(schema, name) {
		st.tables[e.TableID] = nil
		return nil
	}
	if t := st.tables[e.TableID]; t != nil && len(t.cols) == int(e.ColumnCount) {
		return nil // the table id stands for one definition while the server runs
	}
	if len(e.ColumnName) == 0 {
		return refuse("table %s: the binary log does not name its columns (binlog_row_metadata is not FULL): SET GLOBAL binlog_row_metadata = 'FULL' on the source (MySQL 8.0.1+, MariaDB 10.5+), then start the migration over: the events written before hold no names",
			tableName{schema, name}.quoted())
	}
	sig := tableSignature(e)
	if prev := st.byName[name]; prev != nil && prev.sig == sig {
		st.tables[e.TableID] = prev
		return nil
	}
	t, err := st.newTable(ctx, e, sig)
	if err != nil {
		return err
	}
	st.tables[e.TableID] = t
	st.byName[name] = t
	return nil
}

// tableSignature is what a TABLE_MAP says of a table's definition.
func tableSignature(e *replication.TableMapEvent) string {
	return fmt.Sprintf("%x|%v|%x|%x|%v|%v|%q|%q|%q|%v|%v|%v|%v|%v", e.ColumnType, e.ColumnMeta, e.NullBitmap, e.SignednessBitmap,
		e.DefaultCharset, e.ColumnCharset, e.ColumnName, e.EnumStrValue, e.SetStrValue, e.GeometryType, e.PrimaryKey, e.PrimaryKeyPrefix,
		e.EnumSetDefaultCharset, e.EnumSetColumnCharset)
}

// catalogColumn is what the catalog says of a column the log does not.
type catalogColumn struct {
	dataType  string
	generated bool
}

// catalog reads the table's columns as the catalog has them now: it may have changed
// since the event being read, so it is taken only for columns of the same name and of
// a type the log agrees with.
func (st *binlogStream) catalog(ctx context.Context, schema, table string) (map[string]catalogColumn, error) {
	rows, err := st.db.QueryContext(ctx, "SELECT COLUMN_NAME, DATA_TYPE, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", schema, table)
	if err != nil {
		return nil, fmt.Errorf("source: table %s: read its columns: %w", tableName{schema, table}.quoted(), err)
	}
	defer rows.Close()
	cols := map[string]catalogColumn{}
	for rows.Next() {
		var name, typ, extra string
		if err := rows.Scan(&name, &typ, &extra); err != nil {
			return nil, err
		}
		extra = strings.ToUpper(extra)
		cols[name] = catalogColumn{dataType: strings.ToLower(typ),
			generated: strings.Contains(extra, "VIRTUAL") || strings.Contains(extra, "STORED") || strings.Contains(extra, "PERSISTENT")}
	}
	return cols, rows.Err()
}

// newTable makes a table's Relation and readers from its TABLE_MAP (FULL metadata).
func (st *binlogStream) newTable(ctx context.Context, e *replication.TableMapEvent, sig string) (*binlogTable, error) {
	schema, name := string(e.Schema), string(e.Table)
	catalog, err := st.catalog(ctx, schema, name)
	if err != nil {
		return nil, err
	}
	unsigned := e.UnsignedMap()
	collations := e.CollationMap()
	enums, sets := e.EnumStrValueMap(), e.SetStrValueMap()
	geometries := e.GeometryTypeMap()
	t := &binlogTable{sig: sig, rel: &cdc.Relation{ID: st.relationID(name), Schema: schema, Name: name}}
	key := map[int]bool{}
	for _, k := range e.PrimaryKey {
		key[int(k)] = true
	}
	keyComputed := false
	for i := range int(e.ColumnCount) {
		c := binlogColumn{name: string(e.ColumnName[i]), typ: e.ColumnType[i], unsigned: unsigned[i]}
		meta := e.ColumnMeta[i]
		cs, known := st.collations[collations[i]]
		c.binary = collations[i] == 63 // binary
		if !known {
			cs = charset{name: "", maxLen: 1}
		}
		typ := cdc.Type{}
		unsignedName := ""
		if c.unsigned {
			unsignedName = " unsigned"
		}
		switch c.typ {
		case gomysql.MYSQL_TYPE_TINY, gomysql.MYSQL_TYPE_SHORT, gomysql.MYSQL_TYPE_INT24, gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_LONGLONG:
			width := map[byte]int{gomysql.MYSQL_TYPE_TINY: 1, gomysql.MYSQL_TYPE_SHORT: 2, gomysql.MYSQL_TYPE_INT24: 3, gomysql.MYSQL_TYPE_LONG: 4, gomysql.MYSQL_TYPE_LONGLONG: 8}[c.typ]
			names := map[int]string{1: "tinyint", 2: "smallint", 3: "mediumint", 4: "int", 8: "bigint"}
			typ = cdc.Type{Kind: cdc.KindInt, Name: names[width] + unsignedName, Width: width}
			if c.unsigned {
				typ.Kind = cdc.KindUint
			}
		case gomysql.MYSQL_TYPE_YEAR:
			typ = cdc.Type{Kind: cdc.KindUint, Name: "year", Width: 2}
		case gomysql.MYSQL_TYPE_NEWDECIMAL:
			p, s := int(meta>>8), int(meta&0xff)
			typ = cdc.Type{Kind: cdc.KindDecimal, Name: fmt.Sprintf("decimal(%d,%d)%s", p, s, unsignedName), Precision: p, Scale: s}
		case gomysql.MYSQL_TYPE_FLOAT:
			typ = cdc.Type{Kind: cdc.KindFloat32, Name: "float" + unsignedName}
		case gomysql.MYSQL_TYPE_DOUBLE:
			typ = cdc.Type{Kind: cdc.KindFloat64, Name: "double" + unsignedName}
		case gomysql.MYSQL_TYPE_BIT:
			n := int(meta>>8)*8 + int(meta&0xff)
			typ = cdc.Type{Kind: cdc.KindBits, Name: fmt.Sprintf("bit(%d)", n), Width: n, Fixed: true}
		case gomysql.MYSQL_TYPE_DATE, gomysql.MYSQL_TYPE_NEWDATE:
			typ = cdc.Type{Kind: cdc.KindDate, Name: "date"}
		case gomysql.MYSQL_TYPE_DATETIME, gomysql.MYSQL_TYPE_DATETIME2:
			c.fsp = fsp(c.typ, meta)
			typ = cdc.Type{Kind: cdc.KindTimestamp, Name: "datetime" + fspName(c.fsp), Precision: c.fsp}
		case gomysql.MYSQL_TYPE_TIMESTAMP, gomysql.MYSQL_TYPE_TIMESTAMP2:
			c.fsp = fsp(c.typ, meta)
			typ = cdc.Type{Kind: cdc.KindTimestampTZ, Name: "timestamp" + fspName(c.fsp), Precision: c.fsp}
		case gomysql.MYSQL_TYPE_TIME, gomysql.MYSQL_TYPE_TIME2:
			c.fsp = fsp(c.typ, meta)
			typ = cdc.Type{Kind: cdc.KindTime, Name: "time" + fspName(c.fsp), Precision: c.fsp}
		case gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING:
			if c.binary {
				typ = cdc.Type{Kind: cdc.KindBytes, Name: fmt.Sprintf("varbinary(%d)", meta), Width: int(meta)}
			} else {
				n := int(meta) / max(cs.maxLen, 1)
				typ = cdc.Type{Kind: cdc.KindText, Name: fmt.Sprintf("varchar(%d)", n), Width: n}
			}
		case gomysql.MYSQL_TYPE_STRING:
			real, length := stringType(meta)
			switch real {
			case gomysql.MYSQL_TYPE_ENUM:
				c.typ = real
				typ = cdc.Type{Kind: cdc.KindEnum, Name: "enum(" + labelList(enums[i]) + ")", Labels: enums[i]}
			case gomysql.MYSQL_TYPE_SET:
				c.typ = real
				typ = cdc.Type{Kind: cdc.KindSet, Name: "set(" + labelList(sets[i]) + ")", Labels: sets[i]}
			default:
				if c.binary {
					c.length = length
					typ = cdc.Type{Kind: cdc.KindBytes, Name: fmt.Sprintf("binary(%d)", length), Width: length, Fixed: true}
					// MariaDB's INET4, INET6 and UUID are binary strings in the log
					if cc, ok := catalog[c.name]; ok && (cc.dataType == "inet4" && length == 4 || (cc.dataType == "inet6" || cc.dataType == "uuid") && length == 16) {
						c.as = cc.dataType
						typ = cdc.Type{Kind: cdc.KindOther, Name: cc.dataType}
						if c.as == "uuid" {
							typ.Kind = cdc.KindUUID
						}
					}
				} else {
					n := length / max(cs.maxLen, 1)
					typ = cdc.Type{Kind: cdc.KindText, Name: fmt.Sprintf("char(%d)", n), Width: n, Fixed: true}
				}
			}
		case gomysql.MYSQL_TYPE_BLOB:
			sizes := map[uint16]string{1: "tiny", 2: "", 3: "medium", 4: "long"}
			if c.binary {
				width := map[uint16]int{1: 255, 2: 65535, 3: 16777215}[meta]
				typ = cdc.Type{Kind: cdc.KindBytes, Name: sizes[meta] + "blob", Width: width}
			} else {
				// a TEXT's limit is in bytes, not characters: no Width
				typ = cdc.Type{Kind: cdc.KindText, Name: sizes[meta] + "text"}
			}
		case gomysql.MYSQL_TYPE_JSON:
			typ = cdc.Type{Kind: cdc.KindJSON, Name: "json"}
		case gomysql.MYSQL_TYPE_GEOMETRY:
			names := []string{"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection"}
			n := "geometry"
			if g, ok := geometries[i]; ok && int(g) < len(names) {
				n = names[g]
			}
			typ = cdc.Type{Kind: cdc.KindGeometry, Name: n}
		case gomysql.MYSQL_TYPE_VECTOR:
			typ = cdc.Type{Kind: cdc.KindOther, Name: "vector"}
		default:
			return nil, refuse("table %s: column %s has the binary log type %d, which this version of cutover cannot read: leave the table out of the plan",
				tableName{schema, name}.quoted(), quote(c.name), c.typ)
		}
		if cc, ok := catalog[c.name]; ok && cc.generated {
			c.computed = true
			keyComputed = keyComputed || key[i]
		}
		t.cols = append(t.cols, c)
		if !c.computed {
			t.rel.Columns = append(t.rel.Columns, cdc.Column{Name: c.name, Key: key[i], TypeID: uint32(c.typ), Type: typ})
		}
	}
	// A table without a key (not even a unique index of NOT NULL columns, which the log
	// names as its key) is identified by its whole row.
	if len(key) == 0 || keyComputed {
		for i := range t.rel.Columns {
			t.rel.Columns[i].Key = true
		}
	}
	return t, nil
}

// stringType is a CHAR column's real type (CHAR, ENUM or SET) and length in bytes,
// from its TABLE_MAP metadata (as the server's Field_string packs them).
func stringType(meta uint16) (byte, int) {
	if meta < 256 {
		return gomysql.MYSQL_TYPE_STRING, int(meta)
	}
	b0, b1 := byte(meta>>8), byte(meta&0xff)
	if b0&0x30 != 0x30 {
		return b0 | 0x30, int(uint16(b1) | uint16((b0&0x30)^0x30)<<4)
	}
	return b0, int(b1)
}

// fsp is a temporal column's fractional seconds digits: the metadata of the types
// that have them.
func fsp(typ byte, meta uint16) int {
	switch typ {
	case gomysql.MYSQL_TYPE_DATETIME2, gomysql.MYSQL_TYPE_TIMESTAMP2, gomysql.MYSQL_TYPE_TIME2:
		return int(min(meta, 6))
	}
	return 0
}

func fspName(fsp int) string {
	if fsp == 0 {
		return ""
	}
	return fmt.Sprintf("(%d)", fsp)
}

// labelList writes ENUM or SET labels as a column definition does.
func labelList(labels []string) string {
	quoted := make([]string, len(labels))
	for i, l := range labels {
		quoted[i] = "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(l) + "'"
	}
	return strings.Join(quoted, ",")
}

// rows sends a row event's changes to a migrated table.
func (st *binlogStream) rows(ctx context.Context, h *replication.EventHeader, e *replication.RowsEvent) error {
	t := st.tables[e.TableID]
	if t == nil {
		return nil
	}
	st.implicitGroup(h)
	if t.marker {
		if e.Type() == replication.EnumRowsEventTypeInsert {
			for _, r := range e.Rows {
				if len(r) > 0 {
					st.txn.markers = append(st.txn.markers, fmt.Sprint(textOf(r[0])))
				}
			}
		}
		return nil
	}
	if h.EventType == replication.PARTIAL_UPDATE_ROWS_EVENT {
		return refuse("table %s: the source logged a JSON update as a diff (binlog_row_value_options = PARTIAL_JSON): SET GLOBAL binlog_row_value_options = '' on the source and keep sessions from setting it",
			relQuoted(t.rel))
	}
	for _, skipped := range e.SkippedColumns {
		if len(skipped) > 0 {
			return refuse("table %s: the source logged a row change without the whole row (binlog_row_image is MINIMAL or NOBLOB for the session that made it): SET GLOBAL binlog_row_image = 'FULL' on the source and keep sessions from setting it (SET SESSION binlog_row_image needs SUPER or BINLOG ADMIN), then start the migration over",
				relQuoted(t.rel))
		}
	}
	var op cdc.Op
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		op = cdc.Insert
	case replication.EnumRowsEventTypeUpdate:
		op = cdc.Update
	case replication.EnumRowsEventTypeDelete:
		op = cdc.Delete
	default:
		return refuse("table %s: a row event of type %s the stream cannot read", relQuoted(t.rel), h.EventType)
	}
	step := 1
	if op == cdc.Update {
		step = 2
	}
	for i := 0; i+step <= len(e.Rows); i += step {
		first, err := t.row(e.Rows[i])
		if err != nil {
			return err
		}
		c := &cdc.Change{Op: op, Rel: t.rel}
		switch op {
		case cdc.Insert:
			c.New = first
		case cdc.Delete:
			c.Old = first
		case cdc.Update:
			c.Old = first
			if c.New, err = t.row(e.Rows[i+1]); err != nil {
				return err
			}
		}
		if err := st.emit(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

func relQuoted(r *cdc.Relation) string { return tableName{r.Schema, r.Name}.quoted() }

// row is a row image's values, as the full load's SELECT writes them.
func (t *binlogTable) row(vals []any) (cdc.Row, error) {
	row := make(cdc.Row, 0, len(t.rel.Columns))
	for i, c := range t.cols {
		if c.computed {
			continue
		}
		if i >= len(vals) || vals[i] == nil {
			row = append(row, cdc.Value{Null: true})
			continue
		}
		text, err := c.text(vals[i])
		if err != nil {
			return nil, fmt.Errorf("table %s, column %s: %w", relQuoted(t.rel), quote(c.name), err)
		}
		row = append(row, cdc.Value{Text: text})
	}
	return row, nil
}

// text is a value as the full load reads it (copySpec.selectSQL) and LOAD DATA loads
// it back: numbers in decimal (BIT, ENUM, SET, YEAR as theirs), temporal values with
// the column's fractional digits, strings as their bytes, INET4, INET6 and UUID as
// text.
func (c *binlogColumn) text(v any) ([]byte, error) {
	switch c.typ {
	case gomysql.MYSQL_TYPE_TINY, gomysql.MYSQL_TYPE_SHORT, gomysql.MYSQL_TYPE_INT24, gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_LONGLONG:
		return integerText(v, c.unsigned, c.typ)
	case gomysql.MYSQL_TYPE_BIT, gomysql.MYSQL_TYPE_SET, gomysql.MYSQL_TYPE_ENUM:
		// a BIT(64) or a SET of 64 members fills the int64 the library gives
		if n, ok := v.(int64); ok {
			return strconv.AppendUint(nil, uint64(n), 10), nil
		}
	case gomysql.MYSQL_TYPE_YEAR:
		if n, ok := v.(int); ok {
			return strconv.AppendInt(nil, int64(n), 10), nil
		}
	case gomysql.MYSQL_TYPE_FLOAT:
		// The float64 of the float32, shortest: exact without a second rounding, as
		// the copy's `col * 1e0` (which keeps -0, where `+ 0e0` makes it 0).
		if f, ok := v.(float32); ok {
			return strconv.AppendFloat(nil, float64(f), 'g', -1, 64), nil
		}
	case gomysql.MYSQL_TYPE_DOUBLE:
		if f, ok := v.(float64); ok {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("the value %v, which MySQL does not store", f)
			}
			return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
		}
	case gomysql.MYSQL_TYPE_TIME, gomysql.MYSQL_TYPE_TIME2:
		if s, ok := v.(string); ok {
			return timeText(s, c.fsp), nil
		}
	case gomysql.MYSQL_TYPE_JSON:
		switch s := v.(type) {
		case string:
			return []byte(s), nil
		case []byte:
			if len(s) == 0 {
				return []byte("null"), nil // an empty document, which MySQL reads as null
			}
			return bytes.Clone(s), nil
		default:
			return nil, fmt.Errorf("a JSON value of type %T (a partial update?)", v)
		}
	}
	switch s := v.(type) {
	case string:
		return c.bytesText([]byte(s))
	case []byte:
		return c.bytesText(s)
	}
	return nil, fmt.Errorf("the binary log's value %v (%T) for a column of type %d", v, v, c.typ)
}

// bytesText is a string's value: a BINARY(n)'s trailing zeros the log leaves out put
// back, MariaDB's INET4, INET6 and UUID as their text.
func (c *binlogColumn) bytesText(b []byte) ([]byte, error) {
	out := make([]byte, max(len(b), c.length))
	copy(out, b)
	switch c.as {
	case "inet4":
		return []byte(netip.AddrFrom4([4]byte(out)).String()), nil
	case "inet6":
		return []byte(netip.AddrFrom16([16]byte(out)).String()), nil
	case "uuid":
		u, err := uuid.FromBytes(out)
		if err != nil {
			return nil, err
		}
		return []byte(u.String()), nil
	}
	return out, nil
}

// integerText writes an integer of the column's signedness whatever signedness the
// library decoded it with: the bits are the same.
func integerText(v any, unsigned bool, typ byte) ([]byte, error) {
	var bits uint
	switch typ {
	case gomysql.MYSQL_TYPE_TINY:
		bits = 8
	case gomysql.MYSQL_TYPE_SHORT:
		bits = 16
	case gomysql.MYSQL_TYPE_INT24:
		bits = 24
	case gomysql.MYSQL_TYPE_LONG:
		bits = 32
	case gomysql.MYSQL_TYPE_LONGLONG:
		bits = 64
	}
	var u uint64
	switch n := v.(type) {
	case int8:
		u = uint64(n)
	case int16:
		u = uint64(n)
	case int32:
		u = uint64(n)
	case int64:
		u = uint64(n)
	case int:
		u = uint64(n)
	case uint8:
		u = uint64(n)
	case uint16:
		u = uint64(n)
	case uint32:
		u = uint64(n)
	case uint64:
		u = n
	default:
		return nil, fmt.Errorf("an integer decoded as %T", v)
	}
	if bits < 64 {
		u &= 1<<bits - 1
	}
	if unsigned {
		return strconv.AppendUint(nil, u, 10), nil
	}
	i := int64(u<<(64-bits)) >> (64 - bits) // sign-extended
	return strconv.AppendInt(nil, i, 10), nil
}

// timeText writes a TIME with the column's fractional digits, as MySQL does (the
// library leaves them out of a value with no fraction).
func timeText(s string, fsp int) []byte {
	whole, frac, _ := strings.Cut(s, ".")
	if fsp == 0 {
		return []byte(whole)
	}
	frac = (frac + "000000")[:fsp]
	return []byte(whole + "." + frac)
}

// Positions

// The forms of a position's text.
var (
	positionWithFile = regexp.MustCompile(`^(.+) \(([^\s()]+):(\d+)\)$`)
	fileAndOffset    = regexp.MustCompile(`^([^\s:,()]+):(\d+)$`)
)

// parseBinlogPosition reads a position the stream starts after: a GTID state, a file
// and offset, or a snapshot's Position.String().
func parseBinlogPosition(s string, mariadb bool) (Position, error) {
	p := Position{MariaDB: mariadb}
	s = strings.TrimSpace(s)
	if s == "" || strings.HasPrefix(s, "none") {
		return p, fmt.Errorf("no binary log position to start the change stream from (%q): the full load records one when change capture follows it", s)
	}
	if m := positionWithFile.FindStringSubmatch(s); m != nil {
		p.GTID, p.File = m[1], m[2]
		p.Offset, _ = strconv.ParseUint(m[3], 10, 64)
	} else if m := fileAndOffset.FindStringSubmatch(s); m != nil && uuid.Validate(m[1]) != nil {
		p.File = m[1]
		p.Offset, _ = strconv.ParseUint(m[2], 10, 64)
		return p, nil
	} else {
		p.GTID = s
	}
	if mariadb {
		if _, err := parseMariaDBState(p.GTID); err != nil {
			return p, err
		}
		return p, nil
	}
	if _, err := gomysql.ParseMysqlGTIDSet(p.GTID); err != nil {
		if _, merr := parseMariaDBState(p.GTID); merr == nil {
			return p, fmt.Errorf("position %q is a MariaDB GTID state, and the source is MySQL", p.GTID)
		}
		return p, fmt.Errorf("position %q is neither a GTID set (uuid:1-42) nor a file and offset (binlog.000001:1234): %w", p.GTID, err)
	}
	return p, nil
}

// binlogPositionText writes a position as the stream's Commit does: the GTID state
// when there is one, else the file and offset.
func binlogPositionText(p Position) string {
	if p.GTID != "" {
		return p.GTID
	}
	return fmt.Sprintf("%s:%d", p.File, p.Offset)
}

// parseMariaDBState reads MariaDB's GTID state: a GTID (domain-server-sequence) per
// domain, joined by commas.
func parseMariaDBState(s string) (map[uint32]gomysql.MariadbGTID, error) {
	state := map[uint32]gomysql.MariadbGTID{}
	if strings.TrimSpace(s) == "" {
		return state, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		f := strings.Split(strings.TrimSpace(part), "-")
		var nums [3]uint64
		ok := len(f) == 3
		for i := 0; ok && i < 3; i++ {
			bits := 32
			if i == 2 {
				bits = 64
			}
			var err error
			nums[i], err = strconv.ParseUint(f[i], 10, bits)
			ok = err == nil
		}
		if !ok {
			return nil, fmt.Errorf("position %q is not a MariaDB GTID state: write domain-server-sequence per domain, as gtid_binlog_pos does (0-1-42,1-2-7)", s)
		}
		if _, dup := state[uint32(nums[0])]; dup {
			return nil, fmt.Errorf("position %q names domain %d twice", s, nums[0])
		}
		state[uint32(nums[0])] = gomysql.MariadbGTID{DomainID: uint32(nums[0]), ServerID: uint32(nums[1]), SequenceNumber: nums[2]}
	}
	return state, nil
}

// formatMariaDBState writes a GTID state, its domains in order.
func formatMariaDBState(state map[uint32]gomysql.MariadbGTID) string {
	domains := make([]uint32, 0, len(state))
	for d := range state {
		domains = append(domains, d)
	}
	slices.Sort(domains)
	parts := make([]string, len(domains))
	for i, d := range domains {
		g := state[d]
		parts[i] = fmt.Sprintf("%d-%d-%d", g.DomainID, g.ServerID, g.SequenceNumber)
	}
	return strings.Join(parts, ",")
}

// Statements

// statement is what the stream needs of a statement the log holds as text.
type statement struct {
	tag   string      // "ALTER TABLE", "CREATE INDEX", "INSERT", ...
	dml   bool        // a row change logged as a statement
	names [][2]string // for dml: every name that could be a table ([schema, name])
	objs  []stmtObject
}

type stmtObject struct {
	kind          string // "table", "index", "database"
	schema, name  string
	table         string // for an index
	dropped       bool
	renamedSource bool
}

func (s *statement) objects(current string) []cdc.SchemaObject {
	var out []cdc.SchemaObject
	for _, o := range s.objs {
		schema := o.schema
		if schema == "" && o.kind != "database" {
			schema = current
		}
		so := cdc.SchemaObject{Kind: o.kind, Schema: schema, Name: o.name, Table: o.table, Dropped: o.dropped || o.renamedSource}
		if o.kind == "table" {
			so.Table = o.name
		}
		out = append(out, so)
	}
	return out
}

// stmtToken is a word, a quoted name, or a punctuation character of a statement.
type stmtToken struct {
	text   string
	quoted bool // a `name` (or "name" under ANSI_QUOTES)
	str    bool // a 'string'
}

func (t stmtToken) is(word string) bool {
	return !t.quoted && !t.str && strings.EqualFold(t.text, word)
}

func (t stmtToken) name() bool { return t.quoted || !t.str && isStmtWord(t.text) }

func isStmtWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isWordByte(s[i]) {
			return false
		}
	}
	return true
}

// lexStatement splits a statement into tokens, comments left out (but the statements of
// /*! ... */ kept, which the server runs).
func lexStatement(q string, ansi bool) []stmtToken {
	var toks []stmtToken
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case c == '#' || c == '-' && strings.HasPrefix(q[i:], "-- "):
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case strings.HasPrefix(q[i:], "/*!") || strings.HasPrefix(q[i:], "/*M!"):
			i += strings.Index(q[i:], "!") + 1
			for i < len(q) && q[i] >= '0' && q[i] <= '9' {
				i++
			}
		case strings.HasPrefix(q[i:], "/*"):
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				return toks
			}
			i += end + 4
		case strings.HasPrefix(q[i:], "*/"):
			i += 2 // the end of a /*! ... */
		case c == '`' || c == '"' && ansi:
			text, n := quotedText(q[i:], c)
			toks = append(toks, stmtToken{text: text, quoted: true})
			i += n
		case c == '\'' || c == '"':
			text, n := quotedText(q[i:], c)
			toks = append(toks, stmtToken{text: text, str: true})
			i += n
		case isWordByte(c):
			j := i
			for j < len(q) && isWordByte(q[j]) {
				j++
			}
			toks = append(toks, stmtToken{text: q[i:j]})
			i = j
		default:
			toks = append(toks, stmtToken{text: q[i : i+1]})
			i++
		}
	}
	return toks
}

// quotedText reads a quoted name or string (the quote doubled, or backslashed in a
// string, inside it).
func quotedText(q string, quote byte) (string, int) {
	var b strings.Builder
	for i := 1; i < len(q); i++ {
		switch {
		case q[i] == '\\' && quote != '`' && i+1 < len(q):
			b.WriteByte(q[i+1])
			i++
		case q[i] == quote && i+1 < len(q) && q[i+1] == quote:
			b.WriteByte(quote)
			i++
		case q[i] == quote:
			return b.String(), i + 1
		default:
			b.WriteByte(q[i])
		}
	}
	return b.String(), len(q)
}

// leadingWords are a statement's first n words, upper case.
func leadingWords(q string, n int) []string {
	var words []string
	for _, t := range lexStatement(q, false) {
		if len(words) == n || t.quoted || t.str || !isStmtWord(t.text) {
			break
		}
		words = append(words, strings.ToUpper(t.text))
	}
	return words
}

// objectWords are the kinds of object a schema statement names after its verb.
var objectWords = []string{"TABLE", "INDEX", "VIEW", "TRIGGER", "DATABASE", "SCHEMA", "PROCEDURE", "FUNCTION", "EVENT",
	"SEQUENCE", "USER", "ROLE", "SERVER", "TABLESPACE", "PACKAGE", "LOGFILE"}

// parseStatement tells what a statement is and what it names: enough to know whether
// it touches a migrated table.
func parseStatement(q string, ansi bool) *statement {
	toks := lexStatement(q, ansi)
	s := &statement{}
	if len(toks) == 0 {
		return s
	}
	verb := strings.ToUpper(toks[0].text)
	// the object's kind: the first object word among the statement's first words
	obj, at := "", -1
	for i := 1; i < len(toks) && i < 12; i++ {
		if toks[i].quoted || toks[i].str {
			continue
		}
		if w := strings.ToUpper(toks[i].text); slices.Contains(objectWords, w) {
			obj, at = w, i
			break
		}
		if toks[i].text == "(" || toks[i].is("ON") {
			break
		}
	}
	s.tag = verb
	if obj != "" {
		s.tag = verb + " " + obj
	}
	switch verb {
	case "INSERT", "REPLACE", "UPDATE", "DELETE", "LOAD":
		s.tag, s.dml = verb, true
		for i := 0; i < len(toks); {
			n, next := nameAt(toks, i)
			if next == i {
				i++
				continue
			}
			if !isKeyword(toks[i]) {
				s.names = append(s.names, n)
			}
			i = next
		}
		return s
	case "TRUNCATE":
		i := 1
		if i < len(toks) && toks[i].is("TABLE") {
			i++
		}
		s.tag = "TRUNCATE TABLE"
		if n, next := nameAt(toks, i); next > i {
			s.objs = append(s.objs, stmtObject{kind: "table", schema: n[0], name: n[1]})
		}
		return s
	}
	if at < 0 {
		return s
	}
	i := at + 1
	i = skipWords(toks, i, "IF", "NOT", "EXISTS")
	switch obj {
	case "TABLE":
		switch verb {
		case "CREATE", "ALTER":
			n, next := nameAt(toks, i)
			if next == i {
				return s
			}
			s.objs = append(s.objs, stmtObject{kind: "table", schema: n[0], name: n[1]})
			if verb == "ALTER" {
				// ALTER TABLE t ... RENAME [TO|AS] u (not RENAME COLUMN, INDEX or KEY)
				for j := next; j < len(toks); j++ {
					if !toks[j].is("RENAME") || j+1 >= len(toks) || toks[j+1].is("COLUMN") || toks[j+1].is("INDEX") || toks[j+1].is("KEY") {
						continue
					}
					k := skipWords(toks, j+1, "TO", "AS")
					if u, after := nameAt(toks, k); after > k {
						s.objs[0].renamedSource = true
						s.objs = append(s.objs, stmtObject{kind: "table", schema: u[0], name: u[1]})
					}
				}
			}
		case "DROP", "RENAME":
			for {
				n, next := nameAt(toks, i)
				if next == i {
					break
				}
				o := stmtObject{kind: "table", schema: n[0], name: n[1], dropped: verb == "DROP", renamedSource: verb == "RENAME"}
				s.objs = append(s.objs, o)
				i = next
				if verb == "RENAME" && i < len(toks) && toks[i].is("TO") {
					if u, after := nameAt(toks, i+1); after > i+1 {
						s.objs = append(s.objs, stmtObject{kind: "table", schema: u[0], name: u[1]})
						i = after
					}
				}
				if i >= len(toks) || toks[i].text != "," {
					break
				}
				i++
			}
		}
	case "INDEX":
		// CREATE [UNIQUE|...] INDEX i [USING ...] ON t; DROP INDEX i ON t
		idx, next := nameAt(toks, i)
		for j := next; j < len(toks); j++ {
			if toks[j].is("ON") {
				if n, after := nameAt(toks, j+1); after > j+1 {
					s.objs = append(s.objs, stmtObject{kind: "index", schema: n[0], name: idx[1], table: n[1], dropped: verb == "DROP"})
				}
				break
			}
		}
	case "DATABASE", "SCHEMA":
		if n, next := nameAt(toks, i); next > i {
			s.objs = append(s.objs, stmtObject{kind: "database", schema: n[1], dropped: verb == "DROP"})
		}
	}
	return s
}

// nameAt reads a name at toks[i], qualified or not: [schema, name] and the index after
// it (i when there is none).
func nameAt(toks []stmtToken, i int) ([2]string, int) {
	if i >= len(toks) || !toks[i].name() {
		return [2]string{}, i
	}
	if i+2 < len(toks) && toks[i+1].text == "." && !toks[i+1].quoted && toks[i+2].name() {
		return [2]string{toks[i].text, toks[i+2].text}, i + 3
	}
	return [2]string{"", toks[i].text}, i + 1
}

func skipWords(toks []stmtToken, i int, words ...string) int {
	for i < len(toks) && slices.ContainsFunc(words, toks[i].is) {
		i++
	}
	return i
}

// isKeyword: a word a DML statement has around its tables, never a table (a table so
// named would be quoted).
func isKeyword(t stmtToken) bool {
	if t.quoted {
		return false
	}
	switch strings.ToUpper(t.text) {
	case "INSERT", "REPLACE", "UPDATE", "DELETE", "LOAD", "DATA", "INTO", "FROM", "SET", "VALUES", "VALUE", "WHERE", "SELECT",
		"IGNORE", "LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "QUICK", "AND", "OR", "NOT", "NULL", "LOCAL", "INFILE", "TABLE":
		return true
	}
	return false
}
