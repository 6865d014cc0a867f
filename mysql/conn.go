// Package mysql is MySQL and MariaDB as cutover's engine. So far: URLs and
// connections, the premigration assessment, and the one-shot copy between two
// servers (a snapshot aligned with the binary log, the schema around the rows, the
// rows by LOAD DATA, the control state on the target) with its finish. The change
// stream from the binary log, validation and the switch come next, through the
// engine-neutral pipeline's interfaces.
package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/redact"
)

// tlsModes are the values of the URL's tls option, as the driver takes them.
var tlsModes = []string{"true", "false", "skip-verify", "preferred"}

// Config parses an endpoint's URL, mysql://user[:password]@host[:port]/database[?tls=…]
// (mariadb:// too), into the driver's configuration. The endpoint's password, when
// set, is used over one in the URL.
func Config(e plan.Endpoint) (*driver.Config, error) {
	u, err := url.Parse(e.URL)
	if err != nil {
		return nil, fmt.Errorf("is not a valid URL: %s", redact.ConnString(err.Error()))
	}
	if u.Scheme != "mysql" && u.Scheme != "mariadb" {
		return nil, fmt.Errorf("has the scheme %q: write mysql://user@host:3306/database", u.Scheme)
	}
	cfg := driver.NewConfig()
	cfg.Net = "tcp"
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	if cfg.User == "" {
		return nil, errors.New("names no user: write mysql://user@host:3306/database")
	}
	if e.Password != "" {
		cfg.Passwd = e.Password
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return nil, errors.New("names no host: write mysql://user@host:3306/database")
	}
	if port == "" {
		port = "3306"
	}
	cfg.Addr = net.JoinHostPort(host, port)
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if cfg.DBName == "" || strings.Contains(cfg.DBName, "/") {
		return nil, errors.New("names no database: write mysql://user@host:3306/database (the database to migrate)")
	}
	for k, v := range u.Query() {
		switch k {
		case "tls":
			if len(v) != 1 || !slices.Contains(tlsModes, v[0]) {
				return nil, fmt.Errorf("has tls=%s: write tls=%s", strings.Join(v, ","), strings.Join(tlsModes, ", tls="))
			}
			cfg.TLSConfig = v[0]
		default:
			return nil, fmt.Errorf("has the option %s, which cutover does not know: the URL takes tls=%s", k, strings.Join(tlsModes, "|"))
		}
	}
	cfg.Timeout = 10 * time.Second
	// an UPDATE counts the rows it found, changed or not: the applier checks that
	// the row it names is there
	cfg.ClientFoundRows = true
	// parameters written into the statement by the driver (bytes as _binary'...',
	// escaped as the session's sql_mode says): one round trip a statement, where a
	// prepared one takes a prepare, an execute and a close
	cfg.InterpolateParams = true
	cfg.Loc = time.UTC
	cfg.Params = map[string]string{"time_zone": "'+00:00'"}
	return cfg, nil
}

// Open opens a pool of connections to an endpoint (of at most n) and checks that it
// answers; side ("source", "target") names it in errors.
func Open(ctx context.Context, side string, e plan.Endpoint, n int) (*sql.DB, error) {
	cfg, err := Config(e)
	if err != nil {
		return nil, fmt.Errorf("%s.url %w", side, err)
	}
	connector, err := driver.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s.url: %w", side, err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(n)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to the %s (%s): %s", side, redact.ConnString(e.URL), redact.ConnString(err.Error()))
	}
	return db, nil
}
