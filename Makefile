# The two commands a reader needs: `make run` and `make test`. `make help` lists the rest.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
HOST ?= 127.0.0.1
PORT ?= 8000
TEST_WORKERS ?= 2
# Embedded PostgreSQL data folders: `make run`'s (GATEWAY_DATA_DIR) and the tests'.
DATA_DIR ?= $(or $(GATEWAY_DATA_DIR),.pgdata)
TEST_DATA_DIR ?= .pgdata-test
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help run test lint format schema stop clean install install-dev bench bench-fanout bench-writes

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Installs come only from uv.lock (--frozen): the same versions here, in CI and in the image.
# --compile-bytecode: where PYTHONDONTWRITEBYTECODE is set (containers, CI) every process would
# otherwise compile SQLAlchemy, Strawberry and Alembic from source, ~4 s of CPU per start.
$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --inexact --quiet --compile-bytecode
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(UV) sync --frozen --inexact --quiet --compile-bytecode --extra dev
	@touch $@

install: $(VENV)/.installed ## install the gateway from the lock file

install-dev: $(VENV)/.installed-dev ## install the gateway and its dev tools

# One line for the install (uv's output goes to .venv/install.log, shown only if it fails).
run: ## migrate, seed tenant "demo", print a key and serve on 127.0.0.1:8000
	@$(MAKE) -s -q install 2>/dev/null || { echo "installing dependencies from uv.lock …"; \
		mkdir -p $(VENV); $(MAKE) -s install >$(VENV)/install.log 2>&1 || \
		{ cat $(VENV)/install.log; exit 1; }; }
	@$(PY) -m gateway serve --demo --host $(HOST) --port $(PORT)

# The suite starts processes (replicas, CLI, worker): compile our own sources once for them too.
test: install-dev ## run the suite, TEST_WORKERS=2 in parallel (DATABASE_URL, else an embedded PostgreSQL)
	$(PY) -m compileall -q -j0 gateway schema resolvers drivers bench tests
	$(PY) -m pytest -n $(TEST_WORKERS)

lint: install-dev ## ruff, mypy and the layering contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports

format: install-dev ## format and autofix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

schema: install ## write schema.graphql from the live schema
	$(PY) -m gateway schema-export

# wrk from Debian when absent; PostGraphile 5 and Node 22 from bench/package-lock.json (npm ci).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
bench/node_modules/.installed: bench/package.json bench/package-lock.json
	cd bench && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

bench: install bench/node_modules/.installed ## benchmark vs PostGraphile 5 and raw SQL (BENCH_QUICK=1: ~1 min)
	@command -v wrk >/dev/null || $(SUDO) apt-get install -y wrk || \
		($(SUDO) apt-get update && $(SUDO) apt-get install -y wrk)
	$(PY) -m bench.run

bench-fanout: install ## 1,000 and 10,000 subscribers to circuitBreakerChanged: mutation-to-last-event p50/p99, RSS
	$(PY) -m bench.fanout

bench-writes: install ## writes/s at 16 and 64 writers, NOTIFY_MODE direct vs outbox (pgbench), added latency
	$(PY) -m bench.write_throughput

stop: ## stop the embedded PostgreSQL of `make run` and of the tests if one is running
	@if [ -x $(PY) ]; then $(PY) -c 'import sys; from gateway.database import stop_embedded; \
		stopped = [d for d in sys.argv[1:] if stop_embedded(d)]; \
		print("stopped the embedded PostgreSQL in", *stopped) if stopped else \
		print("no embedded PostgreSQL running")' $(DATA_DIR) $(TEST_DATA_DIR); \
	else echo "no $(VENV): nothing to stop"; fi

clean: stop ## stop the embedded PostgreSQL, remove the virtualenv and caches (keeps the data)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
