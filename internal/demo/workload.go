package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover-dev/cutover/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// writer is the application: a stream of small transactions against pagila, the kind a
// DVD rental store makes all day, so that the change stream has something to carry.
type writer struct {
	conn *pgx.Conn
	rng  *rand.Rand

	customers, inventory, staff, payments []int32 // ids to pick from
	open                                  []int32 // rentals this writer made and not yet returned
	mine                                  []int32 // rentals this writer made, with their payment

	txns   atomic.Int64
	counts map[string]int // transactions per kind, read after the writer stopped
}

// writeRate is the writer's pace: enough for CDC to have work, little enough not to
// slow the demo on a small machine.
const writeRate = 25 // transactions per second

// firstPaymentMonth starts the six monthly partitions of public.payment the writer
// dates payments into (payment_p2007_01 to _06): a payment_date must fall in a range
// pagila has, or the row would land in its default partition.
var firstPaymentMonth = time.Date(2007, 1, 1, 0, 0, 0, 0, time.UTC)

func newWriter(ctx context.Context, conn *pgx.Conn) (*writer, error) {
	w := &writer{conn: conn, rng: rand.New(rand.NewPCG(1, 2)), counts: map[string]int{}}
	for _, l := range []struct {
		ids *[]int32
		sql string
	}{
		{&w.customers, "SELECT array_agg(customer_id ORDER BY customer_id) FROM public.customer"},
		{&w.inventory, "SELECT array_agg(inventory_id ORDER BY inventory_id) FROM public.inventory"},
		{&w.staff, "SELECT array_agg(staff_id ORDER BY staff_id) FROM public.staff"},
		{&w.payments, "SELECT array_agg(payment_id ORDER BY payment_id) FROM public.payment WHERE payment_date >= '2007-01-01' AND payment_date < '2007-07-01'"},
	} {
		if err := conn.QueryRow(ctx, l.sql).Scan(l.ids); err != nil {
			return nil, fmt.Errorf("the writer: %s: %w", l.sql, err)
		}
		if len(*l.ids) == 0 {
			return nil, fmt.Errorf("the writer: %s: nothing to pick from", l.sql)
		}
	}
	return w, nil
}

// run writes until stop is closed, one transaction per tick; it stops between
// transactions, never inside one.
func (w *writer) run(ctx context.Context, stop <-chan struct{}) error {
	t := time.NewTicker(time.Second / writeRate)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		kind, err := w.one(ctx)
		if err != nil {
			return fmt.Errorf("the writer (%s): %w", kind, err)
		}
		w.counts[kind]++
		w.txns.Add(1)
	}
}

// one makes one transaction of a mix weighted like a shop's day: mostly rentals, some
// returns, customer and stock changes, corrections and cancellations.
func (w *writer) one(ctx context.Context) (string, error) {
	var (
		kind string
		fn   func(context.Context, pgx.Tx) error
	)
	switch n := w.rng.IntN(20); {
	case n < 3 && len(w.open) > 0:
		kind, fn = "return a rental", w.returnRental
	case n < 6:
		kind, fn = "update a customer", w.updateCustomer
	case n < 8:
		kind, fn = "move a copy to the other store", w.moveInventory
	case n < 10:
		kind, fn = "correct a payment", w.correctPayment
	case n < 12 && len(w.mine) > 0:
		kind, fn = "cancel a rental (delete it and its payment)", w.cancelRental
	default:
		kind, fn = "rent a copy and take the payment", w.rent
	}
	return kind, pgx.BeginFunc(ctx, w.conn, func(tx pgx.Tx) error { return fn(ctx, tx) })
}

func (w *writer) pick(ids []int32) int32 { return ids[w.rng.IntN(len(ids))] }

// rent inserts a rental and its payment in one transaction; the payment is dated into
// one of pagila's monthly partitions.
func (w *writer) rent(ctx context.Context, tx pgx.Tx) error {
	customer, staff := w.pick(w.customers), w.pick(w.staff)
	var rental int32
	err := tx.QueryRow(ctx, `INSERT INTO public.rental (inventory_id, customer_id, staff_id, rental_period)
		VALUES ($1, $2, $3, tsrange(now()::timestamp, NULL)) RETURNING rental_id`,
		w.pick(w.inventory), customer, staff).Scan(&rental)
	if err != nil {
		return err
	}
	paid := firstPaymentMonth.AddDate(0, w.rng.IntN(6), w.rng.IntN(28)).Add(time.Duration(w.rng.IntN(86400)) * time.Second)
	var payment int32
	err = tx.QueryRow(ctx, `INSERT INTO public.payment (customer_id, staff_id, rental_id, amount, payment_date)
		VALUES ($1, $2, $3, $4::numeric / 100, $5) RETURNING payment_id`,
		customer, staff, rental, 99+w.rng.IntN(900), paid).Scan(&payment)
	if err != nil {
		return err
	}
	w.open = append(w.open, rental)
	w.mine = append(w.mine, rental)
	w.payments = append(w.payments, payment)
	return nil
}

func (w *writer) returnRental(ctx context.Context, tx pgx.Tx) error {
	i := w.rng.IntN(len(w.open))
	rental := w.open[i]
	w.open = append(w.open[:i], w.open[i+1:]...)
	_, err := tx.Exec(ctx, `UPDATE public.rental SET rental_period = tsrange(lower(rental_period), now()::timestamp)
		WHERE rental_id = $1 AND upper_inf(rental_period)`, rental)
	return err
}

// updateCustomer changes an email and now and then the active flag, which the
// generated column customer.active follows.
func (w *writer) updateCustomer(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `UPDATE public.customer
		SET email = lower(first_name || '.' || last_name) || $2 || '@example.org',
		    activebool = CASE WHEN $3 THEN NOT activebool ELSE activebool END
		WHERE customer_id = $1`, w.pick(w.customers), fmt.Sprint(w.rng.IntN(100)), w.rng.IntN(4) == 0)
	return err
}

func (w *writer) moveInventory(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `UPDATE public.inventory
		SET store_id = (SELECT min(store_id) FROM public.store WHERE store_id <> inventory.store_id)
		WHERE inventory_id = $1`, w.pick(w.inventory))
	return err
}

// correctPayment changes an amount or, one time in three, moves the payment to the
// next month, which moves the row to another partition.
func (w *writer) correctPayment(ctx context.Context, tx pgx.Tx) error {
	payment := w.pick(w.payments)
	if w.rng.IntN(3) == 0 {
		_, err := tx.Exec(ctx, `UPDATE public.payment SET payment_date = payment_date + interval '1 month'
			WHERE payment_id = $1 AND payment_date < '2007-06-01'`, payment)
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE public.payment SET amount = amount + 1 WHERE payment_id = $1 AND amount < 900`, payment)
	return err
}

func (w *writer) cancelRental(ctx context.Context, tx pgx.Tx) error {
	i := w.rng.IntN(len(w.mine))
	rental := w.mine[i]
	w.mine = append(w.mine[:i], w.mine[i+1:]...)
	for j, r := range w.open {
		if r == rental {
			w.open = append(w.open[:j], w.open[j+1:]...)
			break
		}
	}
	if _, err := tx.Exec(ctx, "DELETE FROM public.payment WHERE rental_id = $1", rental); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, "DELETE FROM public.rental WHERE rental_id = $1", rental)
	return err
}

// application runs the writer on its own connection until stopped.
type application struct {
	w     *writer
	conn  *pgx.Conn
	began time.Time
	quit  chan struct{}
	done  chan error

	once   sync.Once
	err    error
	took   time.Duration
	cutOff bool // the switch ended its session
}

// appRole is the application's login role, on both servers: the switch blocks it on
// the source and gives it its login on the target.
const appRole, appPassword = "rentals", "rentals-pw"

func appURL(s *pgtest.Server) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/pagila?sslmode=disable", appRole, appPassword, s.Port)
}

func startWriter(ctx context.Context, src *pgtest.Server) (*application, error) {
	conn, err := pgx.Connect(ctx, appURL(src))
	if err != nil {
		return nil, err
	}
	w, err := newWriter(ctx, conn)
	if err != nil {
		conn.Close(ctx)
		return nil, err
	}
	a := &application{w: w, conn: conn, began: time.Now(), quit: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		err := w.run(ctx, a.quit)
		var pgErr *pgconn.PgError
		switch {
		case err != nil && errors.As(err, &pgErr) && pgErr.Code == "57P01":
			// The switch blocked the source: the application's session was ended.
			say("  the writer was cut off by the switch's block after %d transactions: %v\n", w.txns.Load(), pgErr.Message)
			a.cutOff = true
			err = nil
		case err != nil && ctx.Err() == nil:
			say("  the writer stopped: %v\n", err) // now, not only when the demo stops it
		}
		a.done <- err
	}()
	return a, nil
}

// stop stops the writer after its current transaction and says whether it failed.
func (a *application) stop() error {
	a.once.Do(func() {
		close(a.quit)
		a.err = <-a.done
		a.took = time.Since(a.began)
		a.conn.Close(context.Background())
	})
	return a.err
}

// summary prints what the writer did, once it stopped.
func (a *application) summary() {
	n := a.w.txns.Load()
	say("  the writer stopped after %d transactions in %v (%.0f/s):\n", n, a.took.Round(100*time.Millisecond), float64(n)/a.took.Seconds())
	for _, k := range sortedKinds(a.w.counts) {
		say("  %6d  %s\n", a.w.counts[k], k)
	}
}

// sortedKinds orders a writer's kinds of transaction, the most frequent first.
func sortedKinds(counts map[string]int) []string {
	kinds := make([]string, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		if counts[kinds[i]] != counts[kinds[j]] {
			return counts[kinds[i]] > counts[kinds[j]]
		}
		return kinds[i] < kinds[j]
	})
	return kinds
}
