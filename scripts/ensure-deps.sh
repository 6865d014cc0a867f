#!/usr/bin/env bash
# Installs what `make demo` and `make test` need on Debian/Ubuntu: the PostgreSQL
# server binaries (initdb, postgres, psql) and pg_cron; with the argument `demo`, also
# the MariaDB server (and its client); with `test`, also Chromium, which the
# dashboard's test drives headless, and the MariaDB server; with `fullload`, also
# pgcopydb, a peer of make bench-fullload; with `mysqlbench`, also the MariaDB server,
# sysbench and mydumper (with myloader), for make bench-mysql-fullload and
# bench-mysql-cdc; with `mysqlpgbench`, the MariaDB server, sysbench and pgloader, for
# make bench-mysqlpg-fullload; with `mysqlpgcdc`, the MariaDB server and sysbench, for
# make bench-mysqlpg-cdc. Go itself must already be installed.
set -euo pipefail

if ! command -v go >/dev/null 2>&1; then
  echo "Go is not installed: install Go 1.26 or later from https://go.dev/dl/ and put it on PATH" >&2
  exit 1
fi

have_pg() {
  if [ -n "${CUTOVER_PG_BINDIR:-}" ] && [ -x "$CUTOVER_PG_BINDIR/initdb" ]; then return 0; fi
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && command -v psql >/dev/null 2>&1
}

# can_apt: this runs as root on a system with apt-get.
can_apt() { [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; }

# apt_install installs packages quietly, updating the package lists first only when
# the install fails without it.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "$@" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$@" >/dev/null; }
}

# pg_cron for the server's major version: the switch suspends and resumes its jobs,
# and the tests check that it does.
have_cron() {
  local bindir
  bindir="${CUTOVER_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
  [ -n "$bindir" ] && [ -e "$bindir/../lib/pg_cron.so" ]
}

install_cron() {
  have_cron && return 0
  local major
  major="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 | sed 's|.*/postgresql/\([0-9]*\)/bin|\1|')"
  if ! can_apt || [ -z "$major" ]; then
    echo "warning: pg_cron is not installed (apt-get install postgresql-${major:-NN}-cron): the switch tests need it" >&2
    return 0
  fi
  echo "installing pg_cron (apt-get install postgresql-$major-cron) ..."
  apt_install "postgresql-$major-cron"
}

# PostGIS, which MySQL's spatial types become between engines (make test and make demo
# only: the MySQL to PostgreSQL tests and the demo's sakila, whose address.location is
# a POINT).
install_postgis() {
  [ "${1:-}" = demo ] || [ "${1:-}" = test ] || return 0
  local bindir major
  bindir="${CUTOVER_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
  [ -n "$bindir" ] && ls "$bindir"/../lib/postgis-3.so >/dev/null 2>&1 && return 0
  major="$(echo "$bindir" | sed 's|.*/postgresql/\([0-9]*\)/bin|\1|')"
  if ! can_apt || [ -z "$major" ]; then
    echo "warning: PostGIS is not installed (apt-get install postgresql-${major:-NN}-postgis-3): the MySQL to PostgreSQL spatial tests need it" >&2
    return 0
  fi
  echo "installing PostGIS (apt-get install postgresql-$major-postgis-3) ..."
  apt_install "postgresql-$major-postgis-3"
}

# Chromium for the dashboard's browser test (make test only).
install_browser() {
  [ "${1:-}" = test ] || return 0
  command -v chromium >/dev/null 2>&1 && return 0
  if ! can_apt; then
    echo "warning: Chromium is not installed (apt-get install chromium chromium-driver): the dashboard's browser test needs it" >&2
    return 0
  fi
  echo "installing Chromium for the dashboard's browser test (apt-get install chromium chromium-driver) ..."
  apt_install chromium chromium-driver
}

# MariaDB's server (mariadbd, mariadb-install-db) and client: the MySQL/MariaDB
# engine's tests and make demo's MariaDB part start throwaway servers from it (make
# demo, make test and the MySQL/MariaDB benchmarks only).
install_mariadb() {
  [ "${1:-}" = demo ] || [ "${1:-}" = test ] || [ "${1:-}" = mysqlbench ] || [ "${1:-}" = mysqlpgbench ] || [ "${1:-}" = mysqlpgcdc ] || return 0
  { command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; } && command -v mariadb-install-db >/dev/null 2>&1 &&
    command -v mariadb >/dev/null 2>&1 && return 0
  if ! can_apt; then
    echo "warning: the MariaDB server is not installed (apt-get install mariadb-server): the MySQL/MariaDB engine's tests and make demo's MariaDB part need it" >&2
    return 0
  fi
  echo "installing the MariaDB server for the MySQL/MariaDB tests and demo (apt-get install mariadb-server) ..."
  apt_install mariadb-server
}

# pgcopydb, a peer in make bench-fullload (bench-fullload only).
install_pgcopydb() {
  [ "${1:-}" = fullload ] || return 0
  command -v pgcopydb >/dev/null 2>&1 && return 0
  if ! can_apt; then
    echo "pgcopydb is not installed (apt-get install pgcopydb, or see https://pgcopydb.readthedocs.io): make bench-fullload needs it" >&2
    exit 1
  fi
  echo "installing pgcopydb for make bench-fullload (apt-get install pgcopydb) ..."
  apt_install pgcopydb
}

# install_missing FOR SPEC... installs the Debian packages of SPEC (PACKAGE:COMMAND,...)
# one of whose commands is not on PATH, saying that FOR needs them; it stops the script
# when it cannot (not root, or no apt-get).
install_missing() {
  local what="$1" spec cmd cmds missing=()
  shift
  for spec in "$@"; do
    IFS=, read -ra cmds <<<"${spec#*:}"
    for cmd in "${cmds[@]}"; do
      command -v "$cmd" >/dev/null 2>&1 || { missing+=("${spec%%:*}"); break; }
    done
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if ! can_apt; then
    echo "${missing[*]} not installed (apt-get install ${missing[*]}), which $what needs" >&2
    exit 1
  fi
  echo "installing ${missing[*]} for $what (apt-get install ${missing[*]}) ..."
  apt_install "${missing[@]}"
}

# sysbench (the source's tables and load) and mydumper/myloader (a peer), for the
# MySQL/MariaDB benchmarks (mysqlbench only).
install_mysqlbench() {
  [ "${1:-}" = mysqlbench ] || return 0
  install_missing "make bench-mysql-fullload and bench-mysql-cdc" sysbench:sysbench mydumper:mydumper,myloader
}

# sysbench (the source's tables) and pgloader (the peer), for make
# bench-mysqlpg-fullload (mysqlpgbench only).
install_mysqlpgbench() {
  [ "${1:-}" = mysqlpgbench ] || return 0
  install_missing "make bench-mysqlpg-fullload" sysbench:sysbench pgloader:pgloader
}

# sysbench (the source's tables and load), for make bench-mysqlpg-cdc (mysqlpgcdc only).
install_mysqlpgcdc() {
  [ "${1:-}" = mysqlpgcdc ] || return 0
  install_missing "make bench-mysqlpg-cdc" sysbench:sysbench
}

if have_pg; then
  install_cron
  install_postgis "${1:-}"
  install_browser "${1:-}"
  install_mariadb "${1:-}"
  install_pgcopydb "${1:-}"
  install_mysqlbench "${1:-}"
  install_mysqlpgbench "${1:-}"
  install_mysqlpgcdc "${1:-}"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "PostgreSQL server binaries are missing. Install them as root, then run this again:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y postgresql" >&2
  echo "(or set CUTOVER_PG_BINDIR to a directory holding initdb and postgres)" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "PostgreSQL server binaries are missing and this is not a Debian/Ubuntu system:" >&2
  echo "install PostgreSQL 15 or later and set CUTOVER_PG_BINDIR to the directory of initdb" >&2
  exit 1
fi

echo "installing PostgreSQL (apt-get install postgresql) ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq postgresql postgresql-client >/dev/null
have_pg || { echo "apt-get install postgresql finished but initdb is still missing" >&2; exit 1; }
echo "installed: $(ls -d /usr/lib/postgresql/*/bin | tail -1)"
install_cron
install_postgis "${1:-}"
install_browser "${1:-}"
install_mariadb "${1:-}"
install_pgcopydb "${1:-}"
install_mysqlbench "${1:-}"
install_mysqlpgbench "${1:-}"
