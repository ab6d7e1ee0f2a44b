#!/usr/bin/env bash
# pgTAP through pg_prove, then pytest, against the server in PG* / TENANCY_TEST_DSN
# (scripts/with-cluster.sh provides a throwaway one). Prints both summaries; non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

db=tenancy_pgtap
PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "drop database if exists $db" -c "create database $db" >/dev/null || exit 1
psql -X -q -v ON_ERROR_STOP=1 -d "$db" \
    -c "set client_min_messages = warning" \
    -c "create extension pgtap" -c "create extension tenancy cascade" >/dev/null || exit 1

echo "== pgTAP (pg_prove)"
PGOPTIONS="-c client_min_messages=warning" pg_prove -d "$db" --failures tests/pgtap/*.sql
tap_rc=$?

echo "== pytest"
.venv/bin/python -m pytest tests/py ${PYTEST_ARGS:-}
py_rc=$?
if [ "$py_rc" -eq 5 ]; then echo "pytest collected no tests" >&2; fi
scripts/run-node-tests.sh || py_rc=1  # node --test of clients/node (pg-tenancy): its own "== node:" line says when it failed

echo "== summary: pgTAP $([ $tap_rc -eq 0 ] && echo PASS || echo FAIL), pytest $([ $py_rc -eq 0 ] && echo PASS || echo FAIL)"
[ "$tap_rc" -eq 0 ] && [ "$py_rc" -eq 0 ]
