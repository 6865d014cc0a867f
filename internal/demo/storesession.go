package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// session is the writer's connection to one server, MariaDB or PostgreSQL, as the
// application's account.
type session interface {
	begin(ctx context.Context) (storeTx, error)
	close()
}

// storeTx is one transaction of the writer. Its statements are written once for both
// engines, with MariaDB's placeholders (?).
type storeTx interface {
	exec(ctx context.Context, query string, args ...any) error
	// insert runs an INSERT and returns the new row's key, the column key.
	insert(ctx context.Context, query, key string, args ...any) (int64, error)
	commit(ctx context.Context) error
	rollback(ctx context.Context)
}

// mariaSession is a session on MariaDB: one connection of database/sql's pool.
type mariaSession struct {
	pool *sql.DB
	conn *sql.Conn
}

func connectMariaDB(ctx context.Context, host string) (session, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = storeUser, storePassword, "tcp", host, "sakila"
	cfg.Timeout = 5 * time.Second
	pool, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, err
	}
	conn, err := pool.Conn(ctx)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &mariaSession{pool: pool, conn: conn}, nil
}

func (m *mariaSession) begin(ctx context.Context) (storeTx, error) {
	tx, err := m.conn.BeginTx(ctx, nil)
	return mariaTx{tx}, err
}

func (m *mariaSession) close() {
	m.conn.Close()
	m.pool.Close()
}

type mariaTx struct{ tx *sql.Tx }

func (t mariaTx) exec(ctx context.Context, query string, args ...any) error {
	_, err := t.tx.ExecContext(ctx, query, args...)
	return err
}

// insert reads the key MariaDB generated: LAST_INSERT_ID.
func (t mariaTx) insert(ctx context.Context, query, _ string, args ...any) (int64, error) {
	res, err := t.tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

func (t mariaTx) commit(context.Context) error { return t.tx.Commit() }
func (t mariaTx) rollback(context.Context)     { _ = t.tx.Rollback() }

// pgSession is a session on PostgreSQL, in the database sakila whose schema sakila
// cutover translated MariaDB's tables into. Its search_path is sakila, then public,
// where CREATE EXTENSION postgis put PostGIS's functions (ST_PointFromText).
type pgSession struct{ conn *pgx.Conn }

func connectPostgres(ctx context.Context, host string) (session, error) {
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://%s:%s@%s/sakila?sslmode=disable&connect_timeout=5&search_path=sakila,public", storeUser, storePassword, host))
	if err != nil {
		return nil, err
	}
	return pgSession{conn}, nil
}

func (p pgSession) begin(ctx context.Context) (storeTx, error) {
	tx, err := p.conn.Begin(ctx)
	return pgTx{tx}, err
}

func (p pgSession) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.conn.Close(ctx)
}

type pgTx struct{ tx pgx.Tx }

func (t pgTx) exec(ctx context.Context, query string, args ...any) error {
	_, err := t.tx.Exec(ctx, placeholders(query), args...)
	return err
}

// insert reads the key the identity generated: RETURNING.
func (t pgTx) insert(ctx context.Context, query, key string, args ...any) (int64, error) {
	var id int64
	err := t.tx.QueryRow(ctx, placeholders(query)+" RETURNING "+key, args...).Scan(&id)
	return id, err
}

func (t pgTx) commit(ctx context.Context) error { return t.tx.Commit(ctx) }
func (t pgTx) rollback(ctx context.Context)     { _ = t.tx.Rollback(ctx) }

// placeholders makes MariaDB's placeholders (?) PostgreSQL's ($1, $2...); the
// writer's statements have no ? elsewhere.
func placeholders(query string) string {
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r != '?' {
			b.WriteRune(r)
			continue
		}
		n++
		fmt.Fprintf(&b, "$%d", n)
	}
	return b.String()
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
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// the session terminated by the block; the role's login refused (NOLOGIN)
		return pe.Code == "57P01" || pe.Code == "28000"
	}
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, io.ErrUnexpectedEOF)
}
