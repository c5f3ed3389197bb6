# The two commands a reader needs: `make run` and `make test`. `make help` lists the rest.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
HOST ?= 127.0.0.1
PORT ?= 8000
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help run test lint format schema clean install install-dev bench bench-fanout

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Installs come only from uv.lock (--frozen): the same versions here, in CI and in the image.
$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --inexact --quiet
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(UV) sync --frozen --inexact --quiet --extra dev
	@touch $@

install: $(VENV)/.installed ## install the gateway from the lock file

install-dev: $(VENV)/.installed-dev ## install the gateway and its dev tools

# One line for the install (uv's output goes to .venv/install.log, shown only if it fails).
run: ## migrate, seed tenant "demo", print a key and serve on 127.0.0.1:8000
	@$(MAKE) -s -q install 2>/dev/null || { echo "installing dependencies from uv.lock …"; \
		mkdir -p $(VENV); $(MAKE) -s install >$(VENV)/install.log 2>&1 || \
		{ cat $(VENV)/install.log; exit 1; }; }
	@$(PY) -m gateway serve --demo --host $(HOST) --port $(PORT)

test: install-dev ## run the whole suite (DATABASE_URL, else an embedded PostgreSQL)
	$(PY) -m pytest

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

bench-fanout: install ## 1,000 subscribers to circuitBreakerChanged: mutation-to-last-event p50/p99, RSS
	$(PY) -m bench.fanout

clean: ## remove the virtualenv and caches (keeps the demo database)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
