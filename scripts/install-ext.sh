#!/usr/bin/env bash
# Install the built extension into the server found by pg_config (as root, or through sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then
    make --no-print-directory -s install >/dev/null
else
    sudo make --no-print-directory -s install PG_CONFIG="$(command -v pg_config)" >/dev/null
fi
echo "== tenancy $(sed -n "s/^default_version = '\(.*\)'/\1/p" tenancy.control) installed into $(pg_config --sharedir)/extension"
