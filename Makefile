# Quick start: `make run` serves the app with demo users; `make test` runs the whole suite.
# Both set up everything they need and are fast when it is already there.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
REDIS_TEST_URL ?= redis://127.0.0.1:6379/0
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-sqlite test-postgres test-js lint services browser-deps deploy-deps migrate demo bench bench-full clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Stamps keep re-runs fast: pip runs again only when a requirements file changes.
$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $(VENV)/.runtime $@

browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Chromium for the browser tests (apt-get)..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

# nginx and coturn: tests/test_deploy.py checks deploy/ with the real binaries. RUNLEVEL=1 keeps
# the packages' scripts from starting the daemons (the tests run their own, on free ports).
deploy-deps:
	@{ [ -x /usr/sbin/nginx ] && [ -x /usr/bin/turnserver ]; } || { \
	  echo "Installing nginx and coturn for the deploy tests (apt-get)..."; \
	  apt-get update -qq && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq nginx coturn >/dev/null; }

services:
	@bash scripts/ensure-services.sh

migrate: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput -v 0

demo: migrate
	$(BIN)/python manage.py seed_demo

# The demo listens on loopback only; `serve` refuses another HOST unless SERVE_ARGS=--insecure-demo
# (DEBUG on, the repository's SECRET_KEY and demo passwords: a trusted network only).
SERVE_ARGS ?=
run: demo
	@echo "callsite: http://$(HOST):$(PORT)/  (admin: http://$(HOST):$(PORT)/admin/, API docs: /api/docs/)"
	$(BIN)/python manage.py serve --bind $(HOST) --port $(PORT) $(SERVE_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/mypy

test: $(VENV)/.dev browser-deps deploy-deps services lint test-js
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

# The browser app's pure modules, with Node's built-in runner (Node 20+; no npm packages).
test-js:
	node --test tests/js/*.test.mjs

test-sqlite: $(VENV)/.dev
	$(BIN)/pytest

# The same suite on PostgreSQL; the browser tests exercise pages, not the database, so they
# run once (above).
test-postgres: $(VENV)/.dev
	DATABASE_URL=$(PG_URL) $(BIN)/pytest -m "not browser"

bench: $(VENV)/.dev services
	$(BIN)/python bench/run.py --quick

bench-full: $(VENV)/.dev services
	$(BIN)/python bench/run.py --full

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
