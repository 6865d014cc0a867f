package pgtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
)

// PagilaDir finds the pagila sample (testdata/pagila in this repository, or $CUTOVER_PAGILA_DIR).
func PagilaDir() (string, error) {
	if d := os.Getenv("CUTOVER_PAGILA_DIR"); d != "" {
		return d, nil
	}
	_, file, _, ok := runtime.Caller(0)
	if ok {
		d := filepath.Join(filepath.Dir(file), "..", "testdata", "pagila")
		if _, err := os.Stat(filepath.Join(d, "pagila-schema.sql")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("pagila sample not found: run from the cutover source tree (testdata/pagila) or set CUTOVER_PAGILA_DIR")
}

// LoadPagila loads the pagila schema and data into database db on s.
func LoadPagila(ctx context.Context, s *Server, db string) error {
	dir, err := PagilaDir()
	if err != nil {
		return err
	}
	for _, f := range []string{"pagila-schema.sql", "pagila-data.sql"} {
		if _, err := s.Psql(ctx, db, "-f", filepath.Join(dir, f)); err != nil {
			return err
		}
	}
	return nil
}
