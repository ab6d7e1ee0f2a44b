#!/usr/bin/env bash
# Build the install scripts of released versions from the project's own git history, for the
# upgrade test: .released/tenancy--V.sql for every V in sql/released.txt but the current one.
# A released version is named by the commit that released it (sql/released-commits.txt); a clone
# needs that commit in its history (a fresh clone of main has it), not a tag.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .released
current=$(sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" tenancy.control)
while read -r version commit; do
    case "$version" in ''|'#'*) continue ;; esac
    [ "$version" = "$current" ] && continue
    out=".released/tenancy--$version.sql"
    [ -s "$out" ] && continue
    if ! git cat-file -e "$commit^{commit}" 2>/dev/null; then
        echo "build-released: commit $commit of tenancy $version is not in this clone's history" >&2
        exit 1
    fi
    tmp=$(mktemp -d)
    git archive "$commit" | tar -x -C "$tmp"
    (cd "$tmp" && make -s --no-print-directory "tenancy--$version.sql" >/dev/null)
    cp "$tmp/tenancy--$version.sql" "$out"
    rm -rf "$tmp"
    echo "== built tenancy $version from commit $commit (for the upgrade test)"
done < sql/released-commits.txt
