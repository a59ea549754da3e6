# Two commands on a fresh machine: `make run` serves the API, `make test` passes the tests.
# Everything below installs itself into .venv from the pinned constraints.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?=

.PHONY: install run seed test lint format typecheck bench soak clean help graphiql audit schema

help:
	@echo "make run    - install, seed an SQLite database with demo data, serve http://$(HOST):$(PORT)/graphql"
	@echo "make test   - install and run the whole test suite (SQLite, and PostgreSQL when reachable)"
	@echo "make schema - write the schema's SDL to schema.graphql (after changing the schema)"
	@echo "make lint   - ruff (lint + format check), mypy, and the layer contracts (import-linter)"
	@echo "make bench  - Batchery vs stock Strawberry vs no GraphQL, then bulk jobs: a 1,000,000-record job"
	@echo "              vs 200-record requests, worker RSS; then 100 variable sets vs a JSON batch vs 100 requests"
	@echo "              and a streamed batch's first result; then peak RSS per concurrent request"
	@echo "              (BENCH_QUICK=1: a smoke run; see docs/performance.md)"
	@echo "make soak   - a real server under a mixed load at saturation for SOAK_SECONDS (default 600);"
	@echo "              fails on any 5xx, a memory or descriptor leak, a temp file left (benchmarks/soak.py)"
	@echo "make audit  - the graphql-http audits (GraphQL over HTTP) against a fresh live server;"
	@echo "              AUDIT_URL=http://127.0.0.1:8000/graphql make audit checks a running one"

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

seed: install
	$(BIN)/batchery seed --if-empty

run: seed graphiql
	$(BIN)/batchery serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app schema loaders
	$(BIN)/lint-imports

# The schema's SDL, committed: tests/schema/test_sdl_file.py fails when it is out of date.
schema: install
	$(BIN)/batchery schema > schema.graphql

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The benchmark suite (docs/performance.md). wrk comes from Debian's packages; without it (not
# root, no apt) the suite says so and falls back to a slower Python load generator.
bench: install
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "bench: installing wrk from Debian's packages (apt-get install -y wrk)"; \
	  apt-get install -y wrk >/dev/null 2>&1 || \
	  { apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null 2>&1; } || \
	  echo "bench: could not install wrk (needs root and apt); run 'sudo apt-get install wrk' for real numbers"; }
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.jobs
	$(BIN)/python -m benchmarks.variable_batching
	$(BIN)/python -m benchmarks.memory

# Saturates the machine for SOAK_SECONDS (default 10 minutes); a 12-second smoke runs in make test.
soak: install
	$(BIN)/python -m benchmarks.soak

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache .import_linter_cache

# GraphiQL's assets, fetched from the npm registry into an ignored folder (no CDN at run time).
GRAPHIQL_DIR := app/http/static/vendor
GRAPHIQL_STAMP := $(GRAPHIQL_DIR)/.stamp

$(GRAPHIQL_STAMP):
	@mkdir -p $(GRAPHIQL_DIR)
	@tmp=$$(mktemp -d) && cd $$tmp && \
	if npm pack --silent graphiql@3.8.3 react@18.3.1 react-dom@18.3.1 >/dev/null 2>&1; then \
	  tar xzf graphiql-3.8.3.tgz package/graphiql.min.js package/graphiql.min.css && \
	  tar xzf react-18.3.1.tgz package/umd/react.production.min.js && \
	  tar xzf react-dom-18.3.1.tgz package/umd/react-dom.production.min.js && \
	  cp package/graphiql.min.js package/graphiql.min.css package/umd/*.js $(CURDIR)/$(GRAPHIQL_DIR)/ && \
	  touch $(CURDIR)/$(GRAPHIQL_STAMP); \
	else \
	  echo "note: could not fetch GraphiQL from the npm registry (is npm installed?); /graphql will say how to fix it"; \
	fi; rm -rf $$tmp

graphiql: $(GRAPHIQL_STAMP)

# The graphql-http server audits (npm package, pinned in tests/audit/package-lock.json, installed
# into the ignored tests/audit/node_modules). Without AUDIT_URL, a live server on a free port and a
# fresh SQLite database is started for the run and stopped after it.
AUDIT_DIR := tests/audit
AUDIT_URL ?=

$(AUDIT_DIR)/node_modules/.package-lock.json: $(AUDIT_DIR)/package-lock.json
	cd $(AUDIT_DIR) && npm ci --no-audit --no-fund --silent

audit: install $(AUDIT_DIR)/node_modules/.package-lock.json
ifeq ($(strip $(AUDIT_URL)),)
	$(BIN)/python -m tests.live.server node $(AUDIT_DIR)/audit.mjs
else
	node $(AUDIT_DIR)/audit.mjs $(AUDIT_URL)
endif
