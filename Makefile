# tenancy — PGXS build. The version lives in tenancy.control and nowhere else.
EXTENSION  = tenancy
EXTVERSION = $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" tenancy.control)

# Sources: sql/build.list names them in order (prelude, run-once, re-runnable); sql/released.txt
# lists the run-once files of released versions. scripts/build_sql.py writes the install script and
# one upgrade script from every released version.
SQL_SRC  = sql/build.list sql/released.txt $(shell sed -n 's/^\(sql\/[^ #]*\.sql\).*/\1/p' sql/build.list)
PY_SRC   = $(shell find plpython -name '*.py' 2>/dev/null)
UPGRADES = $(shell python3 scripts/build_sql.py --upgrade-targets)

DATA_built = $(EXTENSION)--$(EXTVERSION).sql $(UPGRADES)
# user documentation only (docs/development.md is for contributors)
DOCS       = $(filter-out docs/development.md,$(wildcard docs/*.md))

PG_CONFIG ?= pg_config
# PG=NN: build, install and test against PostgreSQL NN. The host's own packages when they are there
# (Debian 12: 15); otherwise (17: trixie, 18: sid) the server of a debootstrap root under
# ~/.cache/tenancy/roots, made on first use (scripts/pg-root.sh, docs/decisions/0001-server-matrix.md).
PG ?=
ifneq ($(strip $(PG)),)
ifneq ($(wildcard /usr/lib/postgresql/$(PG)/bin/pg_config),)
override PG_CONFIG := /usr/lib/postgresql/$(PG)/bin/pg_config
else
override PG_CONFIG := $(shell scripts/pg-root.sh $(PG) --bin)/pg_config
ifeq ($(wildcard $(PG_CONFIG)),)
$(error no PostgreSQL $(PG): scripts/pg-root.sh $(PG) failed (see its messages above))
endif
export TENANCY_PG := $(PG)
endif
export PG_CONFIG
endif
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

PYTHON ?= python3
PY_DIRS = $(wildcard plpython python tests scripts bench examples)

$(EXTENSION)--$(EXTVERSION).sql $(UPGRADES) &: $(SQL_SRC) $(PY_SRC) scripts/build_sql.py tenancy.control
	$(PYTHON) scripts/build_sql.py $(EXTVERSION) .

# docs/reference.md from a fresh install's catalog (make test fails when it is stale).
docs: deps install-ext
	@scripts/with-cluster.sh .venv/bin/python scripts/gen_reference.py

.PHONY: docs pgspot deps lint test test-pgtap test-py demo bench bench-quick bench-jwt bench-fleet install-ext chaos

# Installs what is missing (distribution packages, .venv from requirements-dev.txt).
deps:
	@scripts/deps.sh

# Builds and installs into the server found by pg_config (sudo when not root).
install-ext: all
	@scripts/install-ext.sh

lint: deps
	@scripts/check-version.sh
	@echo "== sqlfluff (postgres dialect) on sql/"
	@$(PYTHON) scripts/build_sql.py --check-released
	@.venv/bin/sqlfluff lint --disable-progress-bar --nocolor sql
	@echo "== ruff on Python"
	@.venv/bin/ruff check $(PY_DIRS)
	@.venv/bin/ruff format --check $(PY_DIRS)

# pgTAP through pg_prove plus pytest, against a throwaway cluster.
test: lint install-ext
	@scripts/with-cluster.sh scripts/run-tests.sh

# The chaos test (tests/py/chaos.py) for longer than make test's minute: CHAOS_SECONDS (default 600),
# CHAOS_SEED (default: a random one, printed), CHAOS_ARGS (e.g. "--runs 10 --keep-going").
CHAOS_SECONDS ?= 600
chaos: deps install-ext
	@CHAOS_SECONDS=$(CHAOS_SECONDS) CHAOS_SEED=$(CHAOS_SEED) scripts/with-cluster.sh .venv/bin/python tests/py/chaos.py $(CHAOS_ARGS)

demo: deps install-ext
	@scripts/with-cluster.sh scripts/demo.sh

bench: deps install-ext
	@scripts/with-cluster.sh .venv/bin/python bench/bench.py $(BENCH_ARGS)

# set_tenant_from_jwt against the SPEC 6 JWT targets (docs/identity.md has a run)
bench-jwt: deps install-ext
	@scripts/with-cluster.sh .venv/bin/python bench/bench_jwt.py

bench-quick: deps install-ext
	@scripts/with-cluster.sh .venv/bin/python bench/bench.py --quick $(BENCH_ARGS)

# SPEC 6 fleet targets over 1,000 schema placements (not in make test; FLEET_ARGS="--placements 100")
bench-fleet: deps install-ext
	@scripts/with-cluster.sh .venv/bin/python bench/fleet_bench.py $(FLEET_ARGS)

# Informational: pgspot's view of the install script (not a gate; see docs/development.md).
pgspot: deps all
	@.venv/bin/pip install -q pgspot==0.9.4 2>&1 | { grep -v "is ignored" || true; }
	@.venv/bin/pgspot --ignore-lang=plpython3u $(EXTENSION)--$(EXTVERSION).sql || true
