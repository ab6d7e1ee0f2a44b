#!/usr/bin/env bash
# Install the built extension into the server found by pg_config (PG_CONFIG names another one), as
# root or through sudo, with the install scripts of the released versions (built from git history by
# scripts/build-released.sh) so that the upgrade test can create them.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-pg_config}
scripts/build-released.sh
SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
"${SUDO[@]}" make --no-print-directory -s install PG_CONFIG="$(command -v "$PG_CONFIG")" >/dev/null
ext="$("$PG_CONFIG" --sharedir)/extension"
for f in .released/tenancy--*.sql; do
    [ -e "$f" ] && "${SUDO[@]}" install -m 644 "$f" "$ext/"
done
echo "== tenancy $(sed -n "s/^default_version = '\(.*\)'/\1/p" tenancy.control) installed into $ext"
