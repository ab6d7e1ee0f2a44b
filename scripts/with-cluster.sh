#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL cluster that has the tenancy extension installed.
#
#   scripts/with-cluster.sh COMMAND [ARGS...]
#
# initdb in a temporary directory, a free port on 127.0.0.1, the Unix socket inside that
# directory; the cluster is always stopped and removed afterwards, also when the command fails or
# is interrupted. As root the server runs as the `postgres` OS user (initdb refuses root).
# The command sees PGHOST, PGPORT, PGUSER, PGDATABASE, TENANCY_TEST_DSN (superuser DSN),
# TENANCY_TEST_LOG (server log file), TENANCY_TEST_SOCKDIR (the cluster's directory), TENANCY_PGBIN
# (the server's programs) and TENANCY_PG_RUNAS (the prefix that runs a server program as the server's
# user, for a standby: tests/py/standby.py).
#
# TENANCY_PG=NN (make test PG=NN) names another major than the host's: the server runs inside the
# debootstrap root of scripts/pg-root.sh (chrooted, as the root's postgres user), its directory
# under the root's /tmp, and TENANCY_PGBIN is the root's host-side programs (pg_dump, pg_basebackup,
# ...). The clients on the host reach it over 127.0.0.1 or the socket's path under the root.
#
# TENANCY_TEST_DSN already set: no cluster is started; the command runs against that server.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

# PG_CONFIG names the server installation (as for `make install`); else the one deps.sh found.
# TENANCY_PG names a major served from a debootstrap root (the Makefile sets it for PG=17 and 18).
PGROOT=""
if [ -n "${TENANCY_PG:-}" ]; then
    PGROOT=$(scripts/pg-root.sh "$TENANCY_PG")
    PGBIN="$PGROOT/.tenancy-bin"
elif [ -n "${PG_CONFIG:-}" ]; then PGBIN=$("$PG_CONFIG" --bindir); else PGBIN=$(cat .deps-pgbin 2>/dev/null || true); fi
[ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ] || PGBIN="/usr/lib/postgresql/$(pg_config --version | sed 's/[^0-9]*\([0-9]*\).*/\1/')/bin"
export TENANCY_PGBIN="$PGBIN"
export PATH="$ROOT/.venv/bin:$PGBIN:$PATH"

if [ -n "${TENANCY_TEST_DSN:-}" ]; then
    echo "== using the existing server at TENANCY_TEST_DSN"
    exec "$@"
fi

RUNAS=()
if [ -n "$PGROOT" ]; then
    # the root's server programs chroot themselves and run as its postgres user (scripts/pg-root.sh)
    DIR=$(mktemp -d "$PGROOT/tmp/tenancy-pg.XXXXXX")
    chmod 755 "$DIR"
    chown "$(awk -F: '$1 == "postgres" { print $3 ":" $4 }' "$PGROOT/etc/passwd")" "$DIR"
    INNER=${DIR#"$PGROOT"}
else
    if [ "$(id -u)" -eq 0 ]; then RUNAS=(runuser -u postgres --); fi
    DIR=$(mktemp -d "${TMPDIR:-/tmp}/tenancy-pg.XXXXXX")
    chmod 755 "$DIR"
    [ "${#RUNAS[@]}" -eq 0 ] || chown postgres: "$DIR"
    INNER=$DIR
fi
DATA="$DIR/data"
LOG="$DIR/server.log"

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # the cluster, and any standby a test left running in its directory (tests/py/standby.py)
    for pid in "$DATA/postmaster.pid" "$DIR"/standby.*/data/postmaster.pid; do
        [ -f "$pid" ] || continue
        "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$(dirname "$pid")" -m immediate -w stop >/dev/null 2>&1 || true
    done
    if [ -n "${TENANCY_KEEP_CLUSTER:-}" ]; then echo "== cluster kept in $DIR"; else rm -rf "$DIR"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
PORT=${TENANCY_TEST_PORT:-$(free_port)}

"${RUNAS[@]}" "$PGBIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 \
    || { cat "$DIR/initdb.log"; exit 1; }
cat >>"$DATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$INNER'
max_connections = 200
shared_buffers = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = logical
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
jit = off
max_prepared_transactions = 20
CONF
"${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null \
    || { cat "$LOG"; exit 1; }

export PGHOST="$DIR" PGPORT="$PORT" PGUSER=postgres PGDATABASE=postgres
export TENANCY_TEST_DSN="host=$DIR port=$PORT user=postgres dbname=postgres"
export TENANCY_TEST_LOG="$LOG"
export TENANCY_TEST_SOCKDIR="$DIR"
export TENANCY_PG_RUNAS="${RUNAS[*]}"
echo "== throwaway cluster: PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT (socket in $DIR)"
"$@"
