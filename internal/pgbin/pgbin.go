// Package pgbin finds PostgreSQL's client and server programs.
package pgbin

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Dir returns the directory of PostgreSQL's programs: $CUTOVER_PG_BINDIR, else the
// newest /usr/lib/postgresql/*/bin (Debian/Ubuntu), else pg_config --bindir.
// want names a program that must be there (initdb for servers, pg_dump for the tool).
func Dir(want string) (string, error) {
	if d := os.Getenv("CUTOVER_PG_BINDIR"); d != "" {
		if _, err := os.Stat(filepath.Join(d, want)); err != nil {
			return "", errors.New("CUTOVER_PG_BINDIR=" + d + " holds no " + want)
		}
		return d, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + want)
	sort.Slice(matches, func(i, j int) bool { return major(matches[i]) > major(matches[j]) })
	if len(matches) > 0 {
		return filepath.Dir(matches[0]), nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(d, want)); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath(want); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New(want + " not found: install PostgreSQL's programs (Debian/Ubuntu: apt-get install postgresql-client, or postgresql for the server), or set CUTOVER_PG_BINDIR to their directory")
}

// Major is the PostgreSQL major version of the programs in dir (from its path), or 0.
func Major(dir string) int { return major(filepath.Join(dir, "x")) }

func major(path string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return v
}
