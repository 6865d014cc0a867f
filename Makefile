# cutover: `make demo` shows the migration on throwaway local servers; `make test` runs the suite.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS := -X github.com/cutover-dev/cutover/internal/cli.version=$(VERSION) -X github.com/cutover-dev/cutover/internal/cli.commit=$(COMMIT)

.PHONY: build demo test test-faults deps demo-deps vet lint clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/cutover ./cmd/cutover

# ENGINE=postgres, ENGINE=mariadb or ENGINE=mysqlpg (MariaDB to PostgreSQL) runs one part of the demo; PAUSE=1 stops at each stage.
demo: demo-deps build
	CUTOVER_BIN=bin/cutover CUTOVER_DEMO_PAUSE=$(PAUSE) CUTOVER_DEMO_ENGINE=$(ENGINE) $(GO) run ./internal/demo

test:
	@scripts/ensure-deps.sh test
	$(GO) test -race -count=1 -timeout 20m ./...

# The fault matrix of the switch and the rollback (every step failed, killed and held
# past the budget, under a writer): a few minutes, so apart from make test; CI runs both.
test-faults:
	@scripts/ensure-deps.sh test
	CUTOVER_FAULTS=1 $(GO) test -race -count=1 -timeout 30m -run 'TestFaultMatrix|TestMySQLFaultMatrix' ./cmd/cutover/

deps:
	@scripts/ensure-deps.sh

demo-deps:
	@scripts/ensure-deps.sh demo

lint vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: the files above are not formatted"; exit 1; }

clean:
	rm -rf bin

.PHONY: bench-fullload
bench-fullload: deps build
	@scripts/ensure-deps.sh fullload
	$(GO) run ./bench/fullload -scale $(or $(SCALE),30) -runs $(or $(RUNS),3)

.PHONY: bench-validate
bench-validate: deps build
	$(GO) run ./bench/validate -scale $(or $(SCALE),30) -runs $(or $(RUNS),3)

.PHONY: bench-cdc
bench-cdc: deps build
	$(GO) run ./bench/cdc -scale $(or $(SCALE),30) -load $(or $(LOAD),60s) -backlog $(or $(BACKLOG),30s) -runs $(or $(RUNS),2) $(if $(TRACK),-track)

.PHONY: bench-switch
bench-switch: deps build
	$(GO) run ./bench/switch -scale $(or $(SCALE),30) -runs $(or $(RUNS),5)

# MySQL/MariaDB: SCALE is rows per sysbench table (the issue's 250000), TABLES the tables.
.PHONY: bench-mysql-fullload
bench-mysql-fullload: deps build
	@scripts/ensure-deps.sh mysqlbench
	$(GO) run ./bench/mysqlfullload -scale $(or $(SCALE),250000) -tables $(or $(TABLES),8) -runs $(or $(RUNS),3)

.PHONY: bench-mysql-cdc
bench-mysql-cdc: deps build
	@scripts/ensure-deps.sh mysqlbench
	$(GO) run ./bench/mysqlcdc -scale $(or $(SCALE),250000) -tables $(or $(TABLES),8) -load $(or $(LOAD),60s) -backlog $(or $(BACKLOG),30s) -runs $(or $(RUNS),2)

.PHONY: bench-mysql-switch
bench-mysql-switch: deps build
	@scripts/ensure-deps.sh mysqlbench
	$(GO) run ./bench/mysqlswitch -scale $(or $(SCALE),250000) -tables $(or $(TABLES),8) -runs $(or $(RUNS),5)

# MySQL/MariaDB into PostgreSQL: cutover's one-shot copy vs pgloader, the same sysbench tables.
.PHONY: bench-mysqlpg-fullload
bench-mysqlpg-fullload: deps build
	@scripts/ensure-deps.sh mysqlpgbench
	$(GO) run ./bench/mysqlpgfullload -scale $(or $(SCALE),250000) -tables $(or $(TABLES),8) -runs $(or $(RUNS),3)

# Issue 20's speed goal between engines: cutover's change data capture from MariaDB into
# PostgreSQL under sysbench oltp_read_write (THREADS, 4, for TIME seconds, 60), its target
# latency by heartbeats (p50/p95/p99/max), the catch-up, then the copy checked.
# SCALE is rows per sysbench table, TABLES the tables; PROFILE=prefix writes cutover's CPU
# profile of the change data capture to prefix.PID.
.PHONY: bench-mysqlpg-cdc
bench-mysqlpg-cdc: deps build
	@scripts/ensure-deps.sh mysqlpgcdc
	$(GO) run ./bench/mysqlpgcdc -scale $(or $(SCALE),250000) -tables $(or $(TABLES),8) -time $(or $(TIME),60)s -threads $(or $(THREADS),4) $(if $(PROFILE),-cpuprofile $(PROFILE))

# The switch's write downtime from MariaDB to PostgreSQL (the goal: at most 1 s):
# sysbench oltp_read_write --threads=4 writes on the source as the application's account
# for WRITE (10s), then cutover switch; every table compared on both sides, then
# cutover rollback for the next of RUNS (5). SCALE is rows per sysbench table (250000),
# TABLES the tables (8).
.PHONY: bench-mysqlpg-switch
bench-mysqlpg-switch: deps build
	@scripts/ensure-deps.sh mysqlpgcdc
	$(GO) run ./bench/mysqlpgswitch -scale $(or $(SCALE),250000) -tables $(or $(TABLES),8) -runs $(or $(RUNS),5) -write $(or $(WRITE),10s)
