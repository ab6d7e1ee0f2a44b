#!/usr/bin/env bash
# The walkthrough behind `make demo`: a sample platform -> partners -> customers, seen as each tenant.
# Runs against the server in PG* (make demo: a throwaway cluster). It (re)creates the database
# $TENANCY_DEMO_DB (default tenancy_demo) and the login roles demo_app and demo_console.
set -euo pipefail
cd "$(dirname "$0")/.."
db=${TENANCY_DEMO_DB:-tenancy_demo}
export PGOPTIONS="-c client_min_messages=warning"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "drop database if exists $db with (force)" \
    -c "drop role if exists demo_app" -c "drop role if exists demo_console" -c "create database $db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" -P footer=off -f examples/demo.sql
