package mytest

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// SakilaDir finds the sakila sample (testdata/sakila in this repository, or
// $CUTOVER_SAKILA_DIR): sakila-schema.sql and sakila-data.sql.gz.
func SakilaDir() (string, error) {
	if d := os.Getenv("CUTOVER_SAKILA_DIR"); d != "" {
		return d, nil
	}
	_, file, _, ok := runtime.Caller(0)
	if ok {
		d := filepath.Join(filepath.Dir(file), "..", "testdata", "sakila")
		if _, err := os.Stat(filepath.Join(d, "sakila-schema.sql")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("sakila sample not found: run from the cutover source tree (testdata/sakila) or set CUTOVER_SAKILA_DIR")
}

// LoadSakila loads the sakila schema and data into s with the mariadb client, as
// Oracle's instructions do: the scripts create (and replace) the database sakila.
func LoadSakila(ctx context.Context, s *Server) error {
	dir, err := SakilaDir()
	if err != nil {
		return err
	}
	schema, err := os.Open(filepath.Join(dir, "sakila-schema.sql"))
	if err != nil {
		return err
	}
	defer schema.Close()
	if err := s.Client(ctx, "", schema); err != nil {
		return fmt.Errorf("sakila-schema.sql: %w", err)
	}
	data, err := os.Open(filepath.Join(dir, "sakila-data.sql.gz"))
	if err != nil {
		return err
	}
	defer data.Close()
	zr, err := gzip.NewReader(data)
	if err != nil {
		return fmt.Errorf("sakila-data.sql.gz: %w", err)
	}
	if err := s.Client(ctx, "", zr); err != nil {
		return fmt.Errorf("sakila-data.sql.gz: %w", err)
	}
	return addLocations(ctx, s, dir)
}

// addLocations gives address the column location (GEOMETRY, with its SPATIAL index and
// the data file's values) where the server skipped it: the scripts write it in MySQL
// 5.7.5's version comments, which MariaDB does not run. It is the one change to
// Oracle's scripts, so that MariaDB's sakila has MySQL's geometry column too.
func addLocations(ctx context.Context, s *Server, dir string) error {
	pool, err := s.Open("sakila")
	if err != nil {
		return err
	}
	defer pool.Close()
	var n int
	if err := pool.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.COLUMNS WHERE table_schema = 'sakila' AND table_name = 'address' AND column_name = 'location'").Scan(&n); err != nil || n == 1 {
		return err
	}
	f, err := os.Open(filepath.Join(dir, "sakila-data.sql.gz"))
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		return err
	}
	_, rows, ok := strings.Cut(string(text), "INSERT INTO `address` VALUES ")
	if rows, _, ok = strings.Cut(rows, ");\n"); !ok {
		return errors.New("sakila-data.sql.gz: no INSERT INTO `address`")
	}
	rows = strings.NewReplacer("/*!50705 ", "", ",*/", ",").Replace(rows) + ")"
	for _, q := range []string{
		"ALTER TABLE address ADD COLUMN location GEOMETRY NULL AFTER phone",
		// last_update kept: the rows are as the data file loads them on MySQL
		"INSERT INTO address VALUES " + rows + " ON DUPLICATE KEY UPDATE location = VALUES(location), last_update = last_update",
		"ALTER TABLE address MODIFY location GEOMETRY NOT NULL, ADD SPATIAL KEY idx_location (location)",
	} {
		if _, err := pool.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("sakila: address.location: %.80s: %w", q, err)
		}
	}
	return nil
}

// Client runs the command-line client (mariadb, or mysql) as root on database db
// ("" for none) with script as its input: DELIMITER lines and the like, which only
// the client knows, work.
func (s *Server) Client(ctx context.Context, db string, script io.Reader) error {
	bin, err := exec.LookPath("mariadb")
	if err != nil {
		if bin, err = exec.LookPath("mysql"); err != nil {
			return errors.New("the mariadb client is not installed (apt-get install mariadb-client)")
		}
	}
	args := []string{"--no-defaults", "--protocol=tcp", "-h127.0.0.1", "-P" + strconv.Itoa(s.Port), "-u" + Superuser}
	if db != "" {
		args = append(args, db)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+Password)
	cmd.Stdin = script
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("server %s: %s: %w\n%s", s.Name, filepath.Base(bin), err, out)
	}
	return nil
}
