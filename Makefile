# vtag developer entry points (GNU make). The local stack is managed by scripts/stack.sh.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.ONESHELL:

export VTAG_HOME ?= $(CURDIR)/.vtag
export VTAG_BIN_DIR ?= $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)/release

STACK := scripts/stack.sh
SERVICES := scripts/run-services.sh

.PHONY: help install build stack run test bench stop clean-data

help:
	@echo "make install     install PostgreSQL, tansu and the Python venv's servers if missing (scripts/stack.sh install)"
	@echo "make build       cargo build --release --bins"
	@echo "make stack       install + build + start postgres, kafka (tansu), schema registry, opensearch, bolt"
	@echo "make run         stack + the vtag services (scripts/run-services.sh start)"
	@echo "make test        start the stack and run the workspace tests against it"
	@echo "make bench       stack + vtag-bench (pipeline) + vtag-bench-tagging (engine, 1M retroactive rule edit: ~30 min)"
	@echo "                 + vtag-bench-costs (1M-row FOCUS import, costAllocation over 100k resources x 30 days)"
	@echo "                 + vtag-bench-compliance (20-policy sweep over 1M resources, tag change -> violation latency)"
	@echo "                 + vtag-bench-search, vtag-bench-graph, vtag-bench-postgres (read model rebuilds from offset 0 vs raw _bulk / UNWIND MERGE / COPY)"
	@echo "make stop        stop the services and the stack"
	@echo "make clean-data  stop, then delete $(VTAG_HOME)"

install:
	$(STACK) install

build:
	cargo build --release --bins

stack: install build
	$(STACK) start

run: stack
	if [[ -f $(SERVICES) ]]; then
	  bash $(SERVICES) start
	else
	  echo "make run: $(SERVICES) does not exist yet; the stack is up, services were not started"
	fi

# Tests use the debug profile end to end (one compile of everything, no release build): the
# binaries they spawn and the stack's registry come from target/debug.
test: export VTAG_BIN_DIR = $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)/debug
test: install
	cargo build --workspace --bins --tests
	$(STACK) start
	eval "$$($(STACK) env)"
	if cargo nextest --version >/dev/null 2>&1; then
	  cargo nextest run --workspace --no-fail-fast
	else
	  cargo test --workspace --no-fail-fast
	fi

# BENCH_ARGS / BENCH_TAGGING_ARGS / BENCH_COSTS_ARGS / BENCH_COMPLIANCE_ARGS / BENCH_SEARCH_ARGS / BENCH_GRAPH_ARGS / BENCH_POSTGRES_ARGS pass options through (e.g. BENCH_TAGGING_ARGS=--engine-only).
bench: stack
	eval "$$($(STACK) env)"
	cargo run --release -p vtag-tests --bin vtag-bench -- $(BENCH_ARGS)
	cargo run --release -p vtag-tests --bin vtag-bench-tagging -- $(BENCH_TAGGING_ARGS)
	cargo run --release -p vtag-tests --bin vtag-bench-costs -- $(BENCH_COSTS_ARGS)
	cargo run --release -p vtag-tests --bin vtag-bench-compliance -- $(BENCH_COMPLIANCE_ARGS)
	cargo run --release -p vtag-tests --bin vtag-bench-search -- $(BENCH_SEARCH_ARGS)
	cargo run --release -p vtag-tests --bin vtag-bench-graph -- $(BENCH_GRAPH_ARGS)
	cargo run --release -p vtag-tests --bin vtag-bench-postgres -- $(BENCH_POSTGRES_ARGS)

stop:
	if [[ -f $(SERVICES) ]]; then bash $(SERVICES) stop; fi
	$(STACK) stop

clean-data: stop
	rm -rf -- "$(VTAG_HOME)"
	echo "removed $(VTAG_HOME)"
