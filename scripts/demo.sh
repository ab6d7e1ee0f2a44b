#!/usr/bin/env bash
# The walkthrough behind `make demo`: a sample platform -> partners -> customers, seen as each tenant.
set -euo pipefail
cd "$(dirname "$0")/.."
export PGOPTIONS="-c client_min_messages=warning"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "drop database if exists tenancy_demo" -c "create database tenancy_demo"
psql -X -q -v ON_ERROR_STOP=1 -d tenancy_demo -P footer=off -f examples/demo.sql
