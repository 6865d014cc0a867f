// Package postgres is cutover's PostgreSQL engine: connections, the catalog,
// and the premigration assessment (later: snapshot, change stream, applier).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/redact"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultConnectTimeout applies when the URL sets no connect_timeout.
const DefaultConnectTimeout = 10 * time.Second

// ApplicationName identifies cutover's sessions in pg_stat_activity.
const ApplicationName = "cutover"

// valueSettings are the session settings every connection starts with.
var valueSettings = map[string]string{"DateStyle": "ISO", "IntervalStyle": "postgres", "extra_float_digits": "3"}

// Config builds a connection config for an endpoint of the plan.
func Config(e plan.Endpoint) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(e.URL)
	if err != nil {
		return nil, fmt.Errorf("parse connection string %s: %s", redact.ConnString(e.URL), redact.ConnString(err.Error()))
	}
	if e.Password != "" {
		cfg.Password = e.Password
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = ApplicationName
	}
	// Values travel as text (COPY, the change stream) from one server's output to the
	// other's input: fix the settings that change that text, as pg_dump does. A date
	// written 05/11/2026 by a DMY source would be read as May 11 by an MDY target, and
	// a float written with fewer digits would lose its last bits.
	for k, v := range valueSettings {
		if _, ok := cfg.RuntimeParams[k]; !ok {
			cfg.RuntimeParams[k] = v
		}
	}
	// A database a switch made read-only (cutover.block: read_only) still takes
	// cutover's own writes: reverse replication and its position.
	cfg.RuntimeParams["default_transaction_read_only"] = "off"
	return cfg, nil
}

// Connect opens a regular connection to an endpoint.
func Connect(ctx context.Context, e plan.Endpoint) (*pgx.Conn, error) {
	cfg, err := Config(e)
	if err != nil {
		return nil, err
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// ConnectReplication opens a logical replication connection (replication=database),
// the kind the change stream uses.
func ConnectReplication(ctx context.Context, e plan.Endpoint) (*pgconn.PgConn, error) {
	return connectReplication(ctx, e, nil)
}

// connectReplication is ConnectReplication with session settings over the URL's.
func connectReplication(ctx context.Context, e plan.Endpoint, settings map[string]string) (*pgconn.PgConn, error) {
	cfg, err := Config(e)
	if err != nil {
		return nil, err
	}
	pcfg := cfg.Config.Copy()
	maps.Copy(pcfg.RuntimeParams, settings)
	pcfg.RuntimeParams["replication"] = "database"
	return pgconn.ConnectConfig(ctx, pcfg)
}

// ConnectSide connects to one side of the plan ("source" or "target"); its error says
// what went wrong and how to fix it.
func ConnectSide(ctx context.Context, side string, e plan.Endpoint) (*pgx.Conn, error) {
	return connectSideWith(ctx, side, e, nil)
}

// connectSideWith is ConnectSide with session settings sent as the connection starts
// (over those of the URL): no round trip to set them.
func connectSideWith(ctx context.Context, side string, e plan.Endpoint, settings map[string]string) (*pgx.Conn, error) {
	cfg, err := Config(e)
	if err == nil {
		maps.Copy(cfg.RuntimeParams, settings)
		var conn *pgx.Conn
		if conn, err = pgx.ConnectConfig(ctx, cfg); err == nil {
			return conn, nil
		}
	}
	problem, fix := ConnectProblem(side, e, err)
	return nil, fmt.Errorf("%s\nfix: %s", problem, fix)
}

// ConnectSides opens a connection to each of sides ("source" or "target") at once
// (each one's authentication takes a few milliseconds). On an error none stays open.
func ConnectSides(ctx context.Context, p *plan.Plan, sides ...string) ([]*pgx.Conn, error) {
	specs := make([]connSpec, len(sides))
	for i, s := range sides {
		specs[i].side = s
	}
	return connectAll(ctx, p, specs)
}

// connSpec is a connection connectAll opens: its side, and the session settings it
// starts with.
type connSpec struct {
	side     string
	settings map[string]string
}

func connectAll(ctx context.Context, p *plan.Plan, specs []connSpec) ([]*pgx.Conn, error) {
	conns := make([]*pgx.Conn, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, sp := range specs {
		ep := p.Source
		if sp.side == "target" {
			ep = p.Target
		}
		wg.Go(func() { conns[i], errs[i] = connectSideWith(ctx, sp.side, ep, sp.settings) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			closeAll(ctx, conns)
			return nil, err
		}
	}
	return conns, nil
}

// closeAll closes the connections that are open.
func closeAll(ctx context.Context, conns []*pgx.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close(context.WithoutCancel(ctx))
		}
	}
}

// ConnectProblem explains why a connection to the named side ("source" or "target")
// failed, and how to fix it.
func ConnectProblem(side string, e plan.Endpoint, err error) (problem, fix string) {
	cfg, cfgErr := Config(e)
	if cfgErr != nil {
		return cfgErr.Error(), fmt.Sprintf("correct %s.url in the plan", side)
	}
	addr := net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
	if strings.HasPrefix(cfg.Host, "/") {
		addr = fmt.Sprintf("socket %s/.s.PGSQL.%d", cfg.Host, cfg.Port)
	}
	who := fmt.Sprintf("role %q to database %q at %s", cfg.User, cfg.Database, addr)

	var pgErr *pgconn.PgError
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &pgErr):
		return pgConnectProblem(side, cfg, who, pgErr)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("cannot connect: host name %q does not resolve", cfg.Host),
			fmt.Sprintf("correct the host in %s.url", side)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("cannot connect to %s: connection refused (nothing listens there)", addr),
			fmt.Sprintf("start the server, or correct the host and port in %s.url; the server's listen_addresses and port must cover this address", side)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return fmt.Sprintf("cannot connect to %s: no route to host", addr),
			fmt.Sprintf("correct the host in %s.url, or open the network path (routes, VPN, security groups)", side)
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		return fmt.Sprintf("cannot connect to %s: no answer within %v", addr, cfg.ConnectTimeout),
			fmt.Sprintf("check the address in %s.url and any firewall or security group between here and the server; a slow link can raise connect_timeout in the URL", side)
	case strings.Contains(err.Error(), "SSL") || strings.Contains(err.Error(), "tls"):
		return fmt.Sprintf("cannot connect as %s: TLS failed: %s", who, redact.ConnString(rootCause(err))),
			fmt.Sprintf("set sslmode in %s.url to what the server supports (disable, require, verify-full with sslrootcert=...)", side)
	}
	return fmt.Sprintf("cannot connect as %s: %s", who, redact.ConnString(rootCause(err))),
		fmt.Sprintf("check %s.url and that the server is up", side)
}

func pgConnectProblem(side string, cfg *pgx.ConnConfig, who string, e *pgconn.PgError) (string, string) {
	switch e.Code {
	case "28P01":
		return fmt.Sprintf("password authentication failed for %s", who),
			fmt.Sprintf("give the right password: %s.password in the plan (for example ${CUTOVER_%s_PASSWORD}), PGPASSWORD or ~/.pgpass", side, strings.ToUpper(side))
	case "28000":
		if strings.Contains(e.Message, "does not exist") {
			return fmt.Sprintf("cannot connect as %s: %s", who, e.Message),
				fmt.Sprintf("create the role on the %s: CREATE ROLE %s LOGIN PASSWORD '...';", side, pgx.Identifier{cfg.User}.Sanitize())
		}
		return fmt.Sprintf("cannot connect as %s: the server refused it (%s)", who, e.Message),
			fmt.Sprintf("allow it in the %s's pg_hba.conf, e.g. `host %s %s <this machine's address>/32 scram-sha-256`, then SELECT pg_reload_conf();", side, cfg.Database, cfg.User)
	case "3D000":
		return fmt.Sprintf("cannot connect as %s: database %q does not exist", who, cfg.Database),
			fmt.Sprintf("create it on the %s: CREATE DATABASE %s; (or correct the database name in %s.url)", side, pgx.Identifier{cfg.Database}.Sanitize(), side)
	case "53300":
		return fmt.Sprintf("cannot connect as %s: %s", who, e.Message),
			fmt.Sprintf("free connections on the %s or raise max_connections (ALTER SYSTEM SET max_connections = ...; then restart)", side)
	case "57P03":
		return fmt.Sprintf("cannot connect as %s: the server is starting up or shutting down (%s)", who, e.Message),
			"wait for the server to finish starting, then run the command again"
	case "42501":
		return fmt.Sprintf("cannot connect as %s: %s", who, e.Message),
			fmt.Sprintf("grant the role access: GRANT CONNECT ON DATABASE %s TO %s;", pgx.Identifier{cfg.Database}.Sanitize(), pgx.Identifier{cfg.User}.Sanitize())
	}
	return fmt.Sprintf("cannot connect as %s: %s (SQLSTATE %s)", who, e.Message, e.Code),
		fmt.Sprintf("check %s.url and the server's log", side)
}

// rootCause strips pgconn's "failed to connect to ..." wrapping down to the innermost message.
func rootCause(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}
