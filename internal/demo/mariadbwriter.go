package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// The application's account on both servers, as provisioning makes it (on PostgreSQL
// a login role): the switch locks it on the source and unlocks it on the target, the
// rollback the other way round.
const storeUser, storePassword = "rentals", "rentals-pw"

// store is the application on sakila: a DVD rental store's transactions, written as
// the application's account to the server the switch hooks last pointed it to.
// Cut off by a block, it connects again to wherever the hooks point, retrying while
// the account is locked there, as an application with a connection pool would.
// It speaks both engines: a mysql:// URL in the pointer file is MariaDB's sakila, a
// postgres:// one the schema sakila that cutover translated it into.
type store struct {
	pointer string // the file the hooks write the application's database URL to
	rng     *rand.Rand
	spatial bool      // sakila's address.location (GEOMETRY on MariaDB, PostGIS's geometry on PostgreSQL) is there
	pg      bool      // connected to PostgreSQL, not MariaDB (the writer's goroutine's)
	held    chan bool // the demo pauses and resumes the writer between transactions

	customers, addresses, inventory, films, payments []int64 // ids to pick from
	open, mine                                       []int64 // rentals this writer made: not yet returned; still there

	mu       sync.Mutex
	txns     map[string]int   // committed transactions per server ("source", "target")
	counts   map[string]int   // committed transactions per kind
	addr     string           // where the writer is connected, "" while it is not
	prev     string           // the side it was connected to last
	lastAt   time.Time        // the last commit
	moves    []move           // its moves from one server to the other
	firstOn  map[string]int64 // per side, its first rental there since it last moved there
	last     int64            // the rental of the last transaction, once stopped
	lastSide string           // where that rental was written

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
	s := &store{pointer: pointer, rng: rand.New(rand.NewPCG(3, 4)), txns: map[string]int{}, counts: map[string]int{}, firstOn: map[string]int64{},
		sides: sides, held: make(chan bool), quit: make(chan struct{}), done: make(chan error, 1)}
	if err := root.QueryRowContext(ctx, "SELECT count(*) = 1 FROM information_schema.COLUMNS WHERE table_schema = 'sakila' AND table_name = 'address' AND column_name = 'location'").Scan(&s.spatial); err != nil {
		return nil, fmt.Errorf("the writer: %w", err)
	}
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
	var conn session
	disconnect := func() {
		if conn != nil {
			conn.close()
			conn = nil
		}
		s.mu.Lock()
		s.addr = ""
		s.mu.Unlock()
	}
	defer disconnect()
	stopping, quit, held := false, s.quit, false
	for {
		select {
		case <-quit:
			stopping, quit = true, nil // and from here on at the ticker's pace
		case held = <-s.held:
			continue
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if held && !stopping {
				continue
			}
		}
		if conn == nil {
			var err error
			if conn, err = s.connect(ctx); err != nil {
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
		if kind == rentKind && s.firstOn[side] == 0 {
			s.firstOn[side] = s.mine[len(s.mine)-1]
		}
		if stopping {
			s.last, s.lastSide = s.mine[len(s.mine)-1], side
		}
		s.mu.Unlock()
		if stopping {
			return nil
		}
	}
}

// connect logs in as the application's account to the server the hooks point to,
// with the driver of its engine.
func (s *store) connect(ctx context.Context) (session, error) {
	text, err := os.ReadFile(s.pointer)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(strings.TrimSpace(string(text)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.pointer, err)
	}
	var conn session
	switch u.Scheme {
	case "postgres", "postgresql":
		conn, err = connectPostgres(ctx, u.Host)
	case "mysql", "mariadb":
		conn, err = connectMariaDB(ctx, u.Host)
	default:
		return nil, fmt.Errorf("%s: %q is neither a mysql:// nor a postgres:// URL", s.pointer, u.Redacted())
	}
	if err != nil {
		return nil, err
	}
	s.pg = u.Scheme != "mysql" && u.Scheme != "mariadb"
	s.mu.Lock()
	defer s.mu.Unlock()
	if to := s.sides[u.Host]; s.prev != "" && to != s.prev {
		s.moves = append(s.moves, move{from: s.prev, to: to})
		delete(s.firstOn, to)
		say("  the writer logged in to the %s, where the hooks point it\n", to)
	}
	s.prev = s.sides[u.Host]
	s.addr = u.Host
	return conn, nil
}

// txn is one transaction's statements; the returned func updates the writer's
// memory once the transaction committed.
type txn func(ctx context.Context, tx storeTx) (func(), error)

func (s *store) transaction(ctx context.Context, conn session, fn txn) (func(), error) {
	tx, err := conn.begin(ctx)
	if err != nil {
		return nil, err
	}
	commit, err := fn(ctx, tx)
	if err != nil {
		tx.rollback(ctx)
		return nil, err
	}
	return commit, tx.commit(ctx)
}

// rentKind is the writer's rental, the transaction whose rows the demo follows.
const rentKind = "rent a copy and take the payment"

// pick chooses a transaction from a mix weighted like a shop's day; the last one
// is always a rental. On PostgreSQL the film descriptions stay as they are: sakila's
// triggers, which copy them to film_text, are not carried there.
func (s *store) pick(last bool) (string, txn) {
	if last {
		return rentKind, s.rent
	}
	switch n := s.rng.IntN(20); {
	case n < 3 && len(s.open) > 0:
		return "return a rental", s.returnRental
	case n < 5:
		return "update a customer", s.updateCustomer
	case n < 6 && s.spatial:
		return "move an address (its GEOMETRY location too)", s.moveAddress
	case n < 6:
		return "move an address", s.moveAddress
	case n < 8:
		return "move a copy to the other store", s.moveInventory
	case n < 10:
		return "correct a payment", s.correctPayment
	case n < 11 && !s.pg:
		return "revise a film's description (a trigger updates film_text)", s.reviseFilm
	case n < 12 && len(s.mine) > 0:
		return "cancel a rental (delete it and its payment)", s.cancelRental
	default:
		return rentKind, s.rent
	}
}

func (s *store) one(ids []int64) int64 { return ids[s.rng.IntN(len(ids))] }

// rent inserts a rental and its payment, dated now.
func (s *store) rent(ctx context.Context, tx storeTx) (func(), error) {
	customer, staff := s.one(s.customers), 1+s.rng.Int64N(2)
	rental, err := tx.insert(ctx, "INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id) VALUES (NOW(), ?, ?, ?)", "rental_id",
		s.one(s.inventory), customer, staff)
	if err != nil {
		return nil, err
	}
	payment, err := tx.insert(ctx, "INSERT INTO payment (customer_id, staff_id, rental_id, amount, payment_date) VALUES (?, ?, ?, ?, NOW())", "payment_id",
		customer, staff, rental, fmt.Sprintf("%d.99", s.rng.IntN(10)))
	if err != nil {
		return nil, err
	}
	return func() {
		s.open = append(s.open, rental)
		s.mine = append(s.mine, rental)
		s.payments = append(s.payments, payment)
	}, nil
}

func (s *store) returnRental(ctx context.Context, tx storeTx) (func(), error) {
	i := s.rng.IntN(len(s.open))
	rental := s.open[i]
	err := tx.exec(ctx, "UPDATE rental SET return_date = NOW() WHERE rental_id = ? AND return_date IS NULL", rental)
	return func() { s.open = remove(s.open, rental) }, err
}

// updateCustomer changes an email and now and then the active flag (tinyint(1) on
// MariaDB, smallint on PostgreSQL).
func (s *store) updateCustomer(ctx context.Context, tx storeTx) (func(), error) {
	err := tx.exec(ctx, fmt.Sprintf(`UPDATE customer SET email = concat(lower(first_name), '.', lower(last_name), %d, '@example.org'),
		active = CASE WHEN ? THEN 1 - active ELSE active END WHERE customer_id = ?`, s.rng.IntN(100)), s.rng.IntN(4) == 0, s.one(s.customers))
	return func() {}, err
}

// moveAddress changes an address and, where the column is, its location, a point in
// address.location (GEOMETRY, SPATIAL indexed on MariaDB; PostGIS's geometry, GiST
// indexed on PostgreSQL). The point's text is the writer's, so that the statement is
// the same on both engines: ST_PointFromText reads it on either, SRID 0.
func (s *store) moveAddress(ctx context.Context, tx storeTx) (func(), error) {
	suite, address := fmt.Sprintf("Suite %d", 1+s.rng.IntN(500)), s.one(s.addresses)
	if !s.spatial {
		return func() {}, tx.exec(ctx, "UPDATE address SET address2 = ? WHERE address_id = ?", suite, address)
	}
	point := fmt.Sprintf("POINT(%.6f %.6f)", s.rng.Float64()*360-180, s.rng.Float64()*180-90)
	return func() {}, tx.exec(ctx, "UPDATE address SET address2 = ?, location = ST_PointFromText(?) WHERE address_id = ?", suite, point, address)
}

func (s *store) moveInventory(ctx context.Context, tx storeTx) (func(), error) {
	return func() {}, tx.exec(ctx, "UPDATE inventory SET store_id = 3 - store_id WHERE inventory_id = ?", s.one(s.inventory))
}

func (s *store) correctPayment(ctx context.Context, tx storeTx) (func(), error) {
	return func() {}, tx.exec(ctx, "UPDATE payment SET amount = amount + 1 WHERE payment_id = ? AND amount < 900", s.one(s.payments))
}

// reviseFilm changes a film's description: sakila's trigger upd_film copies it to
// film_text (FULLTEXT indexed) on the server that has the triggers, the one the
// application writes to.
func (s *store) reviseFilm(ctx context.Context, tx storeTx) (func(), error) {
	return func() {}, tx.exec(ctx, "UPDATE film SET description = concat(substring_index(description, ' (revision ', 1), ' (revision ', ?, ')') WHERE film_id = ?",
		s.rng.IntN(1000), s.one(s.films))
}

func (s *store) cancelRental(ctx context.Context, tx storeTx) (func(), error) {
	rental := s.one(s.mine)
	if err := tx.exec(ctx, "DELETE FROM payment WHERE rental_id = ?", rental); err != nil {
		return nil, err
	}
	err := tx.exec(ctx, "DELETE FROM rental WHERE rental_id = ?", rental)
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

// firstRental is the first rental the writer made on side since it last moved there
// (0: none yet). Each side's keys go on past the other's after a switch or a
// rollback, so the rentals from it on are the ones made on that side since.
func (s *store) firstRental(side string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.firstOn[side]
}

// hold pauses the writer between two transactions (on), or resumes it.
func (s *store) hold(on bool) error {
	select {
	case s.held <- on: // taken by the writer between two transactions
		return nil
	case err := <-s.done:
		s.done <- err
		return fmt.Errorf("the writer stopped: %v", err)
	}
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
