#!/usr/bin/env bash
# Install what tenancy's build, tests, demo and benchmark need, and nothing that is already there:
#   - the distribution's PostgreSQL (server, dev headers, PL/Python 3, pgTAP, pg_prove, PgBouncer)
#   - the server's Python packages (cryptography, idna: the distribution's, SPEC §0)
#   - debootstrap, for the servers of other majors (make test PG=17|18: scripts/pg-root.sh)
#   - the pinned Python tools (requirements-dev.txt) in the project-local virtualenv .venv
#   - the npm packages of pg-tenancy (clients/node) and the Node.js examples (when Node.js is present)
# Idempotent and quick on a machine that has everything.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# PostgreSQL major the distribution ships (Debian 12: 15). Override with PG_MAJOR=NN.
detect_major() {
    if [ -n "${PG_MAJOR:-}" ]; then echo "$PG_MAJOR"; return; fi
    local v
    v=$(apt-cache depends postgresql 2>/dev/null | sed -n 's/.*Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | head -1)
    if [ -z "$v" ] && [ -d /usr/lib/postgresql ]; then v=$(ls /usr/lib/postgresql | sort -n | tail -1); fi
    echo "${v:-15}"
}

apt_needed=()
need_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" || apt_needed+=("$1"); }

if command -v apt-get >/dev/null; then
    PGV=$(detect_major)
    for p in "postgresql-$PGV" "postgresql-server-dev-$PGV" "postgresql-plpython3-$PGV" \
             "postgresql-$PGV-pgtap" libtap-parser-sourcehandler-pgtap-perl pgbouncer \
             postgresql-contrib python3-cryptography python3-idna debootstrap python3-venv make gcc; do
        need_pkg "$p"
    done
    if [ "${#apt_needed[@]}" -gt 0 ]; then
        echo "== deps: installing ${apt_needed[*]}"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_needed[@]}" >/dev/null
    fi
    # Put the distribution's server binaries (initdb, pg_ctl, pgbench) on the path of our scripts.
    echo "/usr/lib/postgresql/$PGV/bin" > .deps-pgbin
else
    echo "== deps: no apt-get here; expecting PostgreSQL, PL/Python 3 (with the Python packages cryptography and idna)," \
        "pgTAP, pg_prove and PgBouncer installed" >&2
    dirname "$(command -v initdb || echo /usr/bin/initdb)" > .deps-pgbin
fi

# Python tools in .venv, reinstalled only when requirements-dev.txt changes.
stamp=".deps-stamp-$(sha256sum requirements-dev.txt | cut -c1-16)"
if [ ! -x .venv/bin/python ] || [ ! -f "$stamp" ]; then
    echo "== deps: Python tools into .venv (requirements-dev.txt)"
    PY=${PYTHON:-python3}
    [ -x .venv/bin/python ] || "$PY" -m venv .venv
    .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    rm -f .deps-stamp-*
    touch "$stamp"
fi

# npm packages of pg-tenancy (clients/node: its pinned test tools, from its lockfile) and of the
# Node.js examples (which link pg-tenancy from clients/node); skipped, with a reason, without Node.js.
npm_install() {  # DIR: npm install there when its package.json or lockfile changed
    local dir=$1 stamp
    stamp="$dir/node_modules/.stamp-$(cat "$dir/package.json" "$dir/package-lock.json" 2>/dev/null | sha256sum | cut -c1-16)"
    if [ ! -f "$stamp" ]; then
        echo "== deps: npm packages for $dir"
        if [ -f "$dir/package-lock.json" ]; then
            (cd "$dir" && npm ci --silent --no-audit --no-fund >/dev/null)
        else
            (cd "$dir" && npm install --silent --no-audit --no-fund >/dev/null)
        fi
        rm -f "$dir"/node_modules/.stamp-*
        touch "$stamp"
    fi
}
if [ -f clients/node/package.json ] || [ -f examples/node/package.json ]; then
    if command -v npm >/dev/null; then
        for d in clients/node examples/node; do
            [ -f "$d/package.json" ] && npm_install "$d"
        done
    else
        echo "== deps: Node.js not found; the Node.js package tests and examples will be skipped"
    fi
fi
