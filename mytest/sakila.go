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
