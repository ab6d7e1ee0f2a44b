#!/usr/bin/env bash
# node --test for the npm package pg-tenancy (clients/node) and the Node.js examples it runs
# (examples/node/next_route.mjs, examples/node/worker.mjs behind PgBouncer), plus `tsc --noEmit` on
# a TypeScript consumer, against the server in PG* / TENANCY_TEST_DSN (scripts/with-cluster.sh).
# Skips with the reason where Node.js or the npm packages are missing, and on a targeted run
# (PYTEST_ARGS set) unless NODE_TEST_ARGS names what to run (e.g. NODE_TEST_ARGS=test/pg.test.mjs).
set -uo pipefail
cd "$(dirname "$0")/../clients/node"

echo "== node --test (clients/node)"
if ! command -v node >/dev/null; then
    echo "== node: skipped (Node.js not found: no node on PATH)"; exit 0
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
    echo "== node: skipped (Node.js $(node --version) is older than 20, which the test runner options need)"; exit 0
fi
if [ ! -d node_modules/pg ] || [ ! -d ../../examples/node/node_modules/pg-tenancy ]; then
    echo "== node: skipped (the npm packages of clients/node and examples/node are missing: run make deps)"; exit 0
fi
if [ -n "${PYTEST_ARGS:-}" ] && [ -z "${NODE_TEST_ARGS:-}" ]; then
    echo "== node: skipped (a targeted run: PYTEST_ARGS is set and NODE_TEST_ARGS is not)"; exit 0
fi
# shellcheck disable=SC2086  # NODE_TEST_ARGS is a list of files
node --test --test-concurrency=1 --test-reporter=spec ${NODE_TEST_ARGS:-test/*.test.mjs}
rc=$?
echo "== node: $([ $rc -eq 0 ] && echo PASS || echo FAIL)"
exit $rc
