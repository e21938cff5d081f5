# The two commands of the README: `make run` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# `make test` runs on PostgreSQL (and talks to Redis); override either for another server.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/backoffice
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
PYTEST_ARGS ?=

.PHONY: run test lint install install-test services-check migrations bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installs exactly the locked versions (requirements/*.txt, compiled from pyproject.toml).
$(VENV)/.installed-run: requirements/base.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/base.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

$(VENV)/.installed-test: requirements/test.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/test.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@ $(VENV)/.installed-run

install: $(VENV)/.installed-run
install-test: $(VENV)/.installed-test

# Quick start: SQLite file in ./var, jobs run eagerly, demo data, the login printed.
run: install
	@env -u DATABASE_URL -u CELERY_BROKER_URL $(BIN)/python manage.py migrate --noinput
	@env -u DATABASE_URL -u CELERY_BROKER_URL $(BIN)/python manage.py seed_demo
	@echo "Serving on http://127.0.0.1:$(PORT)/admin/  (API docs: http://127.0.0.1:$(PORT)/api/docs/)"
	@env -u DATABASE_URL -u CELERY_BROKER_URL $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

services-check: install-test
	@DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" REDIS_URL="$${REDIS_URL:-$(TEST_REDIS_URL)}" \
		$(BIN)/python scripts/check_services.py

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	DATABASE_URL=sqlite:///:memory: $(BIN)/python manage.py makemigrations --check --dry-run
	DATABASE_URL=sqlite:///:memory: $(BIN)/mypy
	$(BIN)/bandit -c pyproject.toml -r . --severity-level medium

# Every test and check, on PostgreSQL and Redis.
test: services-check lint
	DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" REDIS_URL="$${REDIS_URL:-$(TEST_REDIS_URL)}" \
		$(BIN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

bench: install-test
	DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" $(BIN)/python bench/ledger_post.py
	DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" $(BIN)/python bench/invoice_create.py
	DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" $(BIN)/python bench/admin_changelist.py
	DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" $(BIN)/python bench/dashboard.py

# Recompile the lock files after changing dependencies in pyproject.toml.
lock:
	uv pip compile pyproject.toml --python-version 3.11 -o requirements/base.txt
	uv pip compile pyproject.toml --python-version 3.11 --extra test -o requirements/test.txt

clean:
	rm -rf $(VENV) var staticfiles
