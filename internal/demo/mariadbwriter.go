package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// The application's account on both MariaDB servers, as provisioning makes it: the
// switch locks it on the source and unlocks it on the target, the rollback the
// other way round.
const storeUser, storePassword = "rentals", "rentals-pw"

// store is the application on sakila: a DVD rental store's transactions, written as
// the application's account to the server the switch hooks last pointed it to.
// Cut off by a block, it connects again to wherever the hooks point, retrying while
// the account is locked there, as an application with a connection pool would.
type store struct {
	pointer string // the file the hooks write the application's database URL to
	rng     *rand.Rand

	customers, addresses, inventory, films, payments []int64 // ids to pick from
	open, mine                                       []int64 // rentals this writer made: not yet returned; still there

	mu       sync.Mutex
	txns     map[string]int // committed transactions per server ("source", "target")
	counts   map[string]int // committed transactions per kind
	addr     string         // where the writer is connected, "" while it is not
	prev     string         // the side it was connected to last
	lastAt   time.Time      // the last commit
	moves    []move         // its moves from one server to the other
	last     int64          // the rental of the last transaction, once stopped
	lastSide string         // where that rental was written

	sides map[string]string // 127.0.0.1:port -> "source" or "target"
	quit  chan struct{}
	done  chan error
}

// move is a gap in the application's writes: from its last commit on one server to
// its first on the other.
type move struct {
	from, to string
	gap      time.Duration
}

// storeRate is the writer's pace, as the PostgreSQL demo's.
const storeRate = 25 // transactions per second

func startStore(ctx context.Context, pointer string, sides map[string]string, root *sql.DB) (*store, error) {
	s := &store{pointer: pointer, rng: rand.New(rand.NewPCG(3, 4)), txns: map[string]int{}, counts: map[string]int{},
		sides: sides, quit: make(chan struct{}), done: make(chan error, 1)}
	for _, l := range []struct {
		ids *[]int64
		sql string
	}{
		{&s.customers, "SELECT customer_id FROM sakila.customer ORDER BY 1"},
		{&s.addresses, "SELECT address_id FROM sakila.address ORDER BY 1"},
		{&s.inventory, "SELECT inventory_id FROM sakila.inventory ORDER BY 1"},
		{&s.films, "SELECT film_id FROM sakila.film ORDER BY 1"},
		{&s.payments, "SELECT payment_id FROM sakila.payment ORDER BY 1"},
	} {
		rows, err := root.QueryContext(ctx, l.sql)
		if err != nil {
			return nil, fmt.Errorf("the writer: %s: %w", l.sql, err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			*l.ids = append(*l.ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(*l.ids) == 0 {
			return nil, fmt.Errorf("the writer: %s: nothing to pick from", l.sql)
		}
	}
	go func() {
		err := s.run(ctx)
		if err != nil && ctx.Err() == nil {
			say("  the writer stopped: %v\n", err) // now, not only when the demo stops it
		}
		s.done <- err
	}()
	return s, nil
}

// run writes until stop, one transaction per tick, then one last rental (the
// stopped writer's mark, which the demo waits for on the other side).
func (s *store) run(ctx context.Context) error {
	t := time.NewTicker(time.Second / storeRate)
	defer t.Stop()
	var conn *sql.Conn
	var pool *sql.DB
	disconnect := func() {
		if conn != nil {
			conn.Close()
			pool.Close()
			conn, pool = nil, nil
		}
		s.mu.Lock()
		s.addr = ""
		s.mu.Unlock()
	}
	defer disconnect()
	stopping, quit := false, s.quit
	for {
		select {
		case <-quit:
			stopping, quit = true, nil // and from here on at the ticker's pace
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if conn == nil {
			var err error
			if pool, conn, err = s.connect(ctx); err != nil {
				if !cutOff(err) {
					return fmt.Errorf("the writer cannot log in: %w", err)
				}
				if stopping {
					return fmt.Errorf("the writer could not connect to write its last transaction: %w", err)
				}
				continue // locked out, or not yet pointed at the server that is live
			}
		}
		kind, fn := s.pick(stopping)
		commit, err := s.transaction(ctx, conn, fn)
		if err != nil {
			if !cutOff(err) {
				return fmt.Errorf("the writer (%s): %w", kind, err)
			}
			s.mu.Lock()
			side := s.sides[s.addr]
			s.mu.Unlock()
			say("  the writer's session on the %s was ended (%v): it connects again where the hooks point\n", side, err)
			disconnect()
			continue
		}
		s.mu.Lock()
		commit()
		side := s.sides[s.addr]
		if n := len(s.moves); n > 0 && s.moves[n-1].gap == 0 && s.moves[n-1].to == side {
			s.moves[n-1].gap = time.Since(s.lastAt)
		}
		s.lastAt = time.Now()
		s.txns[side]++
		s.counts[kind]++
		if stopping {
			s.last, s.lastSide = s.mine[len(s.mine)-1], side
		}
		s.mu.Unlock()
		if stopping {
			return nil
		}
	}
}

// connect logs in as the application's account to the server the hooks point to.
func (s *store) connect(ctx context.Context) (*sql.DB, *sql.Conn, error) {
	text, err := os.ReadFile(s.pointer)
	if err != nil {
		return nil, nil, err
	}
	u, err := url.Parse(strings.TrimSpace(string(text)))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", s.pointer, err)
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = storeUser, storePassword, "tcp", u.Host, "sakila"
	cfg.Timeout = 5 * time.Second
	pool, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, nil, err
	}
	conn, err := pool.Conn(ctx)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if to := s.sides[u.Host]; s.prev != "" && to != s.prev {
		s.moves = append(s.moves, move{from: s.prev, to: to})
		say("  the writer logged in to the %s, where the hooks point it\n", to)
	}
	s.prev = s.sides[u.Host]
	s.addr = u.Host
	return pool, conn, nil
}

// cutOff says whether err is the application's session ended, or its login refused,
// by a block: anything else stops the demo.
func cutOff(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1927, 1053, 4151: // connection killed, server shutdown, account locked
			return true
		}
	}
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn)
}

// txn is one transaction's statements; the returned func updates the writer's
// memory once the transaction committed.
type txn func(ctx context.Context, tx *sql.Tx) (func(), error)

func (s *store) transaction(ctx context.Context, conn *sql.Conn, fn txn) (func(), error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	commit, err := fn(ctx, tx)
	if err != nil {
		_ = tx.Rollback()
		return nil, err
	}
	return commit, tx.Commit()
}

// pick chooses a transaction from a mix weighted like a shop's day; the last one
// is always a rental.
func (s *store) pick(last bool) (string, txn) {
	if last {
		return "rent a copy and take the payment", s.rent
	}
	switch n := s.rng.IntN(20); {
	case n < 3 && len(s.open) > 0:
		return "return a rental", s.returnRental
	case n < 5:
		return "update a customer", s.updateCustomer
	case n < 6:
		return "move an address (its GEOMETRY location too)", s.moveAddress
	case n < 8:
		return "move a copy to the other store", s.moveInventory
	case n < 10:
		return "correct a payment", s.correctPayment
	case n < 11:
		return "revise a film's description (a trigger updates film_text)", s.reviseFilm
	case n < 12 && len(s.mine) > 0:
		return "cancel a rental (delete it and its payment)", s.cancelRental
	default:
		return "rent a copy and take the payment", s.rent
	}
}

func (s *store) one(ids []int64) int64 { return ids[s.rng.IntN(len(ids))] }

// rent inserts a rental and its payment; sakila's BEFORE INSERT triggers set their dates
// on the server the application writes to.
func (s *store) rent(ctx context.Context, tx *sql.Tx) (func(), error) {
	customer, staff := s.one(s.customers), 1+s.rng.Int64N(2)
	res, err := tx.ExecContext(ctx, "INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id) VALUES (NOW(), ?, ?, ?)",
		s.one(s.inventory), customer, staff)
	if err != nil {
		return nil, err
	}
	rental, err := res.LastInsertId()
	if err != nil {
		return nil, err
	}
	res, err = tx.ExecContext(ctx, "INSERT INTO payment (customer_id, staff_id, rental_id, amount, payment_date) VALUES (?, ?, ?, ?, NOW())",
		customer, staff, rental, fmt.Sprintf("%d.99", s.rng.IntN(10)))
	if err != nil {
		return nil, err
	}
	payment, err := res.LastInsertId()
	if err != nil {
		return nil, err
	}
	return func() {
		s.open = append(s.open, rental)
		s.mine = append(s.mine, rental)
		s.payments = append(s.payments, payment)
	}, nil
}

func (s *store) returnRental(ctx context.Context, tx *sql.Tx) (func(), error) {
	i := s.rng.IntN(len(s.open))
	rental := s.open[i]
	_, err := tx.ExecContext(ctx, "UPDATE rental SET return_date = NOW() WHERE rental_id = ? AND return_date IS NULL", rental)
	return func() { s.open = remove(s.open, rental) }, err
}

func (s *store) updateCustomer(ctx context.Context, tx *sql.Tx) (func(), error) {
	_, err := tx.ExecContext(ctx, `UPDATE customer SET email = concat(lower(first_name), '.', lower(last_name), ?, '@example.org'),
		active = IF(?, 1 - active, active) WHERE customer_id = ?`, s.rng.IntN(100), s.rng.IntN(4) == 0, s.one(s.customers))
	return func() {}, err
}

// moveAddress changes an address and its location, a point in address.location
// (GEOMETRY, SPATIAL indexed).
func (s *store) moveAddress(ctx context.Context, tx *sql.Tx) (func(), error) {
	_, err := tx.ExecContext(ctx, "UPDATE address SET address2 = ?, location = ST_PointFromText(concat('POINT(', ?, ' ', ?, ')')) WHERE address_id = ?",
		fmt.Sprintf("Suite %d", 1+s.rng.IntN(500)), s.rng.Float64()*360-180, s.rng.Float64()*180-90, s.one(s.addresses))
	return func() {}, err
}

func (s *store) moveInventory(ctx context.Context, tx *sql.Tx) (func(), error) {
	_, err := tx.ExecContext(ctx, "UPDATE inventory SET store_id = 3 - store_id WHERE inventory_id = ?", s.one(s.inventory))
	return func() {}, err
}

func (s *store) correctPayment(ctx context.Context, tx *sql.Tx) (func(), error) {
	_, err := tx.ExecContext(ctx, "UPDATE payment SET amount = amount + 1 WHERE payment_id = ? AND amount < 900", s.one(s.payments))
	return func() {}, err
}

// reviseFilm changes a film's description: sakila's trigger upd_film copies it to
// film_text (FULLTEXT indexed) on the server that has the triggers, the one the
// application writes to.
func (s *store) reviseFilm(ctx context.Context, tx *sql.Tx) (func(), error) {
	_, err := tx.ExecContext(ctx, "UPDATE film SET description = concat(substring_index(description, ' (revision ', 1), ' (revision ', ?, ')') WHERE film_id = ?",
		s.rng.IntN(1000), s.one(s.films))
	return func() {}, err
}

func (s *store) cancelRental(ctx context.Context, tx *sql.Tx) (func(), error) {
	rental := s.one(s.mine)
	if _, err := tx.ExecContext(ctx, "DELETE FROM payment WHERE rental_id = ?", rental); err != nil {
		return nil, err
	}
	_, err := tx.ExecContext(ctx, "DELETE FROM rental WHERE rental_id = ?", rental)
	return func() { s.mine, s.open = remove(s.mine, rental), remove(s.open, rental) }, err
}

func remove(ids []int64, id int64) []int64 {
	for i, v := range ids {
		if v == id {
			return append(ids[:i], ids[i+1:]...)
		}
	}
	return ids
}

// side says where the writer is connected: "source", "target" or "" between servers.
func (s *store) side() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sides[s.addr]
}

// committed returns the transactions committed on side so far.
func (s *store) committed(side string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.txns[side]
}

// lastRental is the newest rental the writer made that is still there.
func (s *store) lastRental() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.mine) == 0 {
		return 0
	}
	return s.mine[len(s.mine)-1]
}

// stop ends the writer after one last rental and returns the rental and the side it
// was written on.
func (s *store) stop() (int64, string, error) {
	close(s.quit)
	err := <-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.lastSide, err
}

// summary prints what the writer did, once it stopped.
func (s *store) summary() {
	s.mu.Lock()
	defer s.mu.Unlock()
	say("  the writer committed %d transactions on the source and %d on the target:\n", s.txns["source"], s.txns["target"])
	for _, k := range sortedKinds(s.counts) {
		say("  %6d  %s\n", s.counts[k], k)
	}
}
