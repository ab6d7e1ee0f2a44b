#!/usr/bin/env bash
# The version lives in tenancy.control; META.json and CHANGELOG.md must agree with it.
set -euo pipefail
cd "$(dirname "$0")/.."
v=$(sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" tenancy.control)
python3 - "$v" <<'PY'
import json, sys
v = sys.argv[1]
meta = json.load(open("META.json"))
bad = [k for k, got in (("version", meta["version"]), ("provides.tenancy.version", meta["provides"]["tenancy"]["version"])) if got != v]
if bad:
    sys.exit(f"META.json {', '.join(bad)} differ from tenancy.control ({v})")
if f"## {v}" not in open("CHANGELOG.md").read():
    sys.exit(f"CHANGELOG.md has no section for {v}")
print(f"== version {v}: tenancy.control, META.json and CHANGELOG.md agree")
PY
