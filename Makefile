# tenancy — PGXS build. The version lives in tenancy.control and nowhere else.
EXTENSION  = tenancy
EXTVERSION = $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" tenancy.control)

# Concatenation order of the install script (explicit, not $(wildcard) order).
SQL_SRC = \
	sql/src/00_schema.sql \
	sql/src/10_tenants.sql \
	sql/src/20_context.sql \
	sql/src/30_domains.sql \
	sql/src/40_scoped.sql \
	sql/src/50_guards.sql \
	sql/src/60_check.sql \
	sql/src/70_tokens.sql \
	sql/src/90_grants.sql

PY_SRC = $(wildcard plpython/*.py)

DATA_built = $(EXTENSION)--$(EXTVERSION).sql
DATA       = $(wildcard sql/updates/$(EXTENSION)--*--*.sql)
DOCS       = $(wildcard docs/*.md)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

PYTHON ?= python3
PY_DIRS = $(wildcard plpython tests scripts bench examples)

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_SRC) $(PY_SRC) scripts/build_sql.py tenancy.control
	$(PYTHON) scripts/build_sql.py $(EXTVERSION) $@ $(SQL_SRC)

.PHONY: pgspot deps lint test test-pgtap test-py demo bench bench-quick install-ext

# Installs what is missing (distribution packages, .venv from requirements-dev.txt).
deps:
	@scripts/deps.sh

# Builds and installs into the server found by pg_config (sudo when not root).
install-ext: all
	@scripts/install-ext.sh

lint: deps
	@scripts/check-version.sh
	@echo "== sqlfluff (postgres dialect) on sql/"
	@.venv/bin/sqlfluff lint --disable-progress-bar --nocolor sql/src $(wildcard sql/updates/*.sql)
	@echo "== ruff on Python"
	@.venv/bin/ruff check $(PY_DIRS)
	@.venv/bin/ruff format --check $(PY_DIRS)

# pgTAP through pg_prove plus pytest, against a throwaway cluster.
test: lint install-ext
	@scripts/with-cluster.sh scripts/run-tests.sh

demo: deps install-ext
	@scripts/with-cluster.sh scripts/demo.sh

bench: deps install-ext
	@scripts/with-cluster.sh .venv/bin/python bench/bench.py $(BENCH_ARGS)

bench-quick: deps install-ext
	@scripts/with-cluster.sh .venv/bin/python bench/bench.py --quick $(BENCH_ARGS)

# Informational: pgspot's view of the install script (not a gate; see docs/development.md).
pgspot: deps all
	@.venv/bin/pip install -q pgspot==0.9.4 2>&1 | { grep -v "is ignored" || true; }
	@.venv/bin/pgspot --ignore-lang=plpython3u $(EXTENSION)--$(EXTVERSION).sql || true
