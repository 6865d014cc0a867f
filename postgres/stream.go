package postgres

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/plan"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// statusInterval is how often the stream tells the source what the target committed,
// even when the source asks for nothing.
const statusInterval = 5 * time.Second

// heartbeatPrefix marks the logical messages cutover writes into the source's WAL.
const heartbeatPrefix = "cutover_heartbeat"

// appliedPrefix marks a transaction a cutover applier wrote (reverse replication into
// the source): a stream skips it, so no change goes back where it came from.
const appliedPrefix = "cutover_applied"

// stream reads a slot's changes with pgoutput and turns them into cdc events.
type stream struct {
	conn *pgconn.PgConn
	slot string

	// from is the position the target has applied: transactions committed before it
	// are skipped. tableFrom holds, for tables a resumed load copied at a later
	// snapshot, that snapshot's position: their changes committed before it are in
	// the copy already.
	from      pglogrepl.LSN
	tableFrom map[string]pglogrepl.LSN

	rels map[uint32]*cdc.Relation

	mu       sync.Mutex
	flushed  pglogrepl.LSN // committed on the target
	lastRead pglogrepl.LSN // end of the last transaction read
	walEnd   pglogrepl.LSN // what the source said it has sent, when nothing was pending

	lat *cdc.Latency
}

// openStream starts streaming the slot's changes for the publications from a position.
func openStream(ctx context.Context, ep plan.Endpoint, slot string, publications []string, from string, tableFrom map[string]string, lat *cdc.Latency, settings map[string]string) (*stream, error) {
	lsn, err := pglogrepl.ParseLSN(from)
	if err != nil {
		return nil, fmt.Errorf("position %q: %w", from, err)
	}
	s := &stream{slot: slot, from: lsn, flushed: lsn, lastRead: lsn, rels: map[uint32]*cdc.Relation{}, tableFrom: map[string]pglogrepl.LSN{}, lat: lat}
	for t, pos := range tableFrom {
		l, err := pglogrepl.ParseLSN(pos)
		if err != nil {
			return nil, fmt.Errorf("table %s: position %q: %w", t, pos, err)
		}
		s.tableFrom[t] = l
	}
	conn, err := connectReplication(ctx, ep, settings)
	if err != nil {
		return nil, fmt.Errorf("replication connection to the source: %w", err)
	}
	pubs := ""
	for i, p := range publications {
		if i > 0 {
			pubs += ","
		}
		pubs += p
	}
	err = pglogrepl.StartReplication(ctx, conn, slot, lsn, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names '" + pubs + "'", "messages 'true'"},
	})
	if err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("start streaming slot %s from %s: %w", slot, lsn, err)
	}
	s.conn = conn
	return s, nil
}

// Flushed records that the target committed everything up to pos.
func (s *stream) Flushed(pos string) {
	lsn, err := pglogrepl.ParseLSN(pos)
	if err != nil {
		return
	}
	s.mu.Lock()
	if lsn > s.flushed {
		s.flushed = lsn
	}
	s.mu.Unlock()
}

// confirmed is the position to report to the source: what the target committed, or,
// when everything read is committed, what the source said it has sent (so an idle or
// unrelated WAL does not pin the slot).
func (s *stream) confirmed() pglogrepl.LSN {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flushed >= s.lastRead && s.walEnd > s.flushed {
		return s.walEnd
	}
	return s.flushed
}

func (s *stream) sendStatus(ctx context.Context) error {
	pos := s.confirmed()
	return pglogrepl.SendStandbyStatusUpdate(ctx, s.conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: pos, WALFlushPosition: pos, WALApplyPosition: pos})
}

// Run reads the stream until ctx ends or the connection fails, sending events to out.
func (s *stream) Run(ctx context.Context, out chan<- cdc.Event) error {
	defer s.conn.Close(context.WithoutCancel(ctx))
	nextStatus := time.Now().Add(statusInterval)
	var (
		inTxn   bool
		skip    bool // the transaction was applied before
		txnLSN  pglogrepl.LSN
		pending []cdc.Event // a transaction's first events, sent once it proves not empty
	)
	send := func(e cdc.Event) error {
		if b, ok := e.(*cdc.Begin); ok {
			s.lat.Read(b.CommitTime)
		}
		select {
		case out <- e:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// sendInTxn sends an event of the transaction, after its first events held back.
	sendInTxn := func(e cdc.Event) error {
		for _, p := range pending {
			if err := send(p); err != nil {
				return err
			}
		}
		pending = pending[:0]
		return send(e)
	}
	// Reads wait for the source in short polls on the connection's deadline, not on a
	// context (pgconn watches a context with a goroutine per read), and the socket wakes
	// the reader only once readLowWater bytes are waiting. A reader woken for every
	// message the walsender sends takes the CPU from the walsender on a busy source:
	// on 2 shared cores that made the stream lag by seconds under pgbench.
	setReadLowWater(s.conn.Conn(), readLowWater)
	var pollEnd time.Time
	for {
		now := time.Now()
		if now.After(nextStatus) {
			if err := s.sendStatus(ctx); err != nil {
				return fmt.Errorf("report the applied position to the source: %w", err)
			}
			nextStatus = now.Add(statusInterval)
		}
		if now.After(pollEnd) {
			if err := ctx.Err(); err != nil {
				return err
			}
			pollEnd = now.Add(pollEvery)
			if err := s.conn.Conn().SetReadDeadline(pollEnd); err != nil {
				return fmt.Errorf("read the change stream: %w", err)
			}
		}
		msg, err := s.conn.ReceiveMessage(context.Background())
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				continue
			}
			return fmt.Errorf("read the change stream: %w", err)
		}
		switch msg := msg.(type) {
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("change stream: %w", pgconn.ErrorResponseToPgError(msg))
		case *pgproto3.CopyData:
			if len(msg.Data) == 0 {
				continue
			}
			switch msg.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(msg.Data[1:])
				if err != nil {
					return err
				}
				if !inTxn {
					s.mu.Lock()
					s.walEnd = max(s.walEnd, ka.ServerWALEnd)
					s.mu.Unlock()
					s.lat.CaughtUp(true)
				}
				if ka.ReplyRequested {
					if err := s.sendStatus(ctx); err != nil {
						return fmt.Errorf("report the applied position to the source: %w", err)
					}
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(msg.Data[1:])
				if err != nil {
					return err
				}
				m, err := parseMessage(xld.WALData)
				if err != nil {
					return fmt.Errorf("decode the change stream at %s: %w", xld.WALStart, err)
				}
				switch m := m.(type) {
				case *pglogrepl.RelationMessage:
					rel := &cdc.Relation{ID: m.RelationID, Schema: m.Namespace, Name: m.RelationName}
					for _, c := range m.Columns {
						rel.Columns = append(rel.Columns, cdc.Column{Name: c.Name, Key: c.Flags&1 != 0, TypeID: c.DataType})
					}
					s.rels[m.RelationID] = rel
				case *pglogrepl.BeginMessage:
					inTxn, txnLSN = true, m.FinalLSN
					skip = m.FinalLSN < s.from
					pending = append(pending[:0], &cdc.Begin{Position: m.FinalLSN.String(), CommitTime: m.CommitTime, TxnID: uint64(m.Xid)})
				case *pglogrepl.CommitMessage:
					inTxn = false
					s.mu.Lock()
					s.lastRead = m.TransactionEndLSN
					s.mu.Unlock()
					if skip {
						// Applied before the stop: the target has it. Nothing to wait for.
						s.Flushed(m.TransactionEndLSN.String())
						continue
					}
					for _, e := range pending {
						if err := send(e); err != nil {
							return err
						}
					}
					pending = pending[:0]
					if err := send(&cdc.Commit{Position: m.TransactionEndLSN.String(), CommitTime: m.CommitTime}); err != nil {
						return err
					}
				case *pglogrepl.LogicalDecodingMessage:
					// A heartbeat (transactional) carries no change: its transaction moves
					// the applied position and measures the latency when the source is idle.
					// A validation marker (not transactional) comes as soon as it is read,
					// after every transaction committed before it.
					if m.Transactional && m.Prefix == appliedPrefix && inTxn {
						skip = true
						continue
					}
					if m.Transactional && m.Prefix == ddlPrefix && inTxn && !skip {
						sc, err := schemaChange(m.Content)
						if err != nil {
							return fmt.Errorf("change stream at %s: %w", m.LSN, err)
						}
						if err := sendInTxn(sc); err != nil {
							return err
						}
						continue
					}
					if !m.Transactional && m.Prefix == markerPrefix && m.LSN >= s.from {
						if err := send(&cdc.Marker{ID: string(m.Content), Position: m.LSN.String()}); err != nil {
							return err
						}
					}
				default:
					if skip {
						continue
					}
					c, err := s.change(m, txnLSN)
					if err != nil {
						return err
					}
					if c == nil {
						continue
					}
					if err := sendInTxn(c); err != nil {
						return err
					}
				}
			}
		}
	}
}

// change converts a row message; nil when the change is in the table's copy already.
func (s *stream) change(m pglogrepl.Message, txn pglogrepl.LSN) (*cdc.Change, error) {
	rel := func(id uint32) (*cdc.Relation, error) {
		r, ok := s.rels[id]
		if !ok {
			return nil, fmt.Errorf("change stream: a change to relation %d came before its description", id)
		}
		return r, nil
	}
	inCopy := func(r *cdc.Relation) bool {
		from, ok := s.tableFrom[r.Schema+"."+r.Name]
		return ok && txn < from
	}
	var c *cdc.Change
	switch m := m.(type) {
	case *pglogrepl.InsertMessage:
		r, err := rel(m.RelationID)
		if err != nil {
			return nil, err
		}
		c = &cdc.Change{Op: cdc.Insert, Rel: r, New: row(m.Tuple)}
	case *pglogrepl.UpdateMessage:
		r, err := rel(m.RelationID)
		if err != nil {
			return nil, err
		}
		c = &cdc.Change{Op: cdc.Update, Rel: r, New: row(m.NewTuple)}
		if m.OldTuple != nil {
			c.Old = row(m.OldTuple)
		}
	case *pglogrepl.DeleteMessage:
		r, err := rel(m.RelationID)
		if err != nil {
			return nil, err
		}
		c = &cdc.Change{Op: cdc.Delete, Rel: r, Old: row(m.OldTuple)}
	case *pglogrepl.TruncateMessage:
		c = &cdc.Change{Op: cdc.Truncate, Cascade: m.Option&1 != 0, Restart: m.Option&2 != 0}
		for _, id := range m.RelationIDs {
			r, err := rel(id)
			if err != nil {
				return nil, err
			}
			if !inCopy(r) {
				c.Truncated = append(c.Truncated, r)
			}
		}
		if len(c.Truncated) == 0 {
			return nil, nil
		}
		c.Rel = c.Truncated[0]
		return c, nil
	default:
		return nil, nil // type and origin messages carry nothing to apply
	}
	if inCopy(c.Rel) {
		return nil, nil
	}
	return c, nil
}

// parseMessage decodes a pgoutput message. pglogrepl refuses the insert of a row
// without columns (a table with none, or only generated ones): its 7 bytes are the
// relation and an empty tuple.
func parseMessage(data []byte) (pglogrepl.Message, error) {
	if len(data) == 8 && data[0] == 'I' && data[5] == 'N' && data[6] == 0 && data[7] == 0 {
		return &pglogrepl.InsertMessage{RelationID: binary.BigEndian.Uint32(data[1:5]), Tuple: &pglogrepl.TupleData{}}, nil
	}
	return pglogrepl.Parse(data)
}

func row(t *pglogrepl.TupleData) cdc.Row {
	if t == nil {
		return nil
	}
	r := make(cdc.Row, len(t.Columns))
	for i, c := range t.Columns {
		switch c.DataType {
		case pglogrepl.TupleDataTypeNull:
			r[i].Null = true
		case pglogrepl.TupleDataTypeToast:
			r[i].Unchanged = true
		default:
			r[i].Text = c.Data
		}
	}
	return r
}

// The stream's reads: a poll ends at least this often, so a message smaller than the
// low-water mark, a stop or a status report waits no longer than that.
const (
	pollEvery    = 5 * time.Millisecond
	readLowWater = 32 << 10
)
