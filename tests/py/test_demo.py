"""`make demo` reads true: scripts/demo.sh runs against the test server and its key lines say what
its own output shows (issue 14, item 7). On 0.1.0's demo this fails: tenants printed with the
context's tier, the session context printed as NULL after "is back", "more rockets" silently rolled
back (acme's total 200, not 260), policy roles as {-}, and no TN006 for a permissive policy or a
TRUNCATE.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict
from tenancy_testlib import connect, pg_bin

ROOT = Path(__file__).resolve().parents[2]

# every ERROR the demo prints is a deliberate one, in this order
EXPECTED_ERRORS = [
    "row-level security on public.orders is managed by tenancy",  # TN006
    "permissive policy see_all on the tenant-scoped table public.orders is refused",  # TN006
    "unknown domain 'unknown.example.org'",  # TN005
    'new row violates row-level security policy for table "orders"',  # 42501
    "no tenant context",  # TN003
    "TRUNCATE of the tenant-scoped table public.orders is refused for role demo_app",  # TN006
    "role demo_app may not take the tier-0 (platform) context",  # TN007
    "token governance: color.error is protected",  # TN004
    "token governance: color.text (#9e9e9e) has a contrast",  # TN004
]


def section(out: str, number: str) -> str:
    match = re.search(rf"^== {re.escape(number)}\. .*?(?=^== |\Z)", out, re.M | re.S)
    assert match, f"section {number} missing"
    return match.group(0)


def rows(text: str) -> list[list[str]]:
    """The cells of every table row (psql border 1) in a piece of output."""
    return [[c.strip() for c in line.split("|")] for line in text.splitlines() if " | " in line]


@pytest.fixture(scope="module")
def demo(server_dsn: str) -> str:
    params = conninfo_to_dict(server_dsn)
    db = f"tenancy_demo_{secrets.token_hex(3)}"
    env = dict(os.environ, TENANCY_DEMO_DB=db)
    for key, var in (("host", "PGHOST"), ("port", "PGPORT"), ("user", "PGUSER"), ("password", "PGPASSWORD")):
        if params.get(key):
            env[var] = str(params[key])
    env["PATH"] = f"{Path(pg_bin('psql')).parent}{os.pathsep}{env.get('PATH', '')}"
    if shutil.which("bash") is None:
        pytest.skip("bash is needed to run scripts/demo.sh")
    try:
        proc = subprocess.run(
            ["bash", str(ROOT / "scripts/demo.sh")], env=env, capture_output=True, text=True, timeout=120
        )
    finally:
        with connect(server_dsn) as conn:
            conn.execute(f"drop database if exists {db} with (force)")
            conn.execute("drop role if exists demo_app")
            conn.execute("drop role if exists demo_console")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


def test_the_demo_prints_only_its_deliberate_errors(demo: str) -> None:
    errors = [line for line in demo.splitlines() if "ERROR:" in line]
    assert len(errors) == len(EXPECTED_ERRORS), errors
    for line, expected in zip(errors, EXPECTED_ERRORS, strict=True):
        assert expected in line, (line, expected)


def test_policy_roles_print_as_names(demo: str) -> None:
    policies = {r[0]: r[2] for r in rows(section(demo, "3b")) if r[0].startswith("tenancy_")}
    assert policies["tenancy_select"] == "{public}"
    assert policies["tenancy_platform_select"] == "{tenancy_platform}"
    assert "{-}" not in demo


def test_tenants_show_their_own_tier_beside_the_context_tier(demo: str) -> None:
    partner = section(demo, "5")
    tiers = {r[1]: r[0] for r in rows(partner) if r[0].isdigit()}
    assert tiers == {"brandsyncup": "1", "brandsyncup/acme": "2", "brandsyncup/globex": "2"}
    assert re.search(r"context_tier\s*\n-+\s*\n\s*1\s*$", partner, re.M)
    root = section(demo, "2")
    assert re.search(r"^\s*0 \| ''\s+\| The Platform", root, re.M)  # the root's path is '', not NULL


def test_the_session_context_is_back_after_the_local_transaction(demo: str) -> None:
    customer = section(demo, "6")
    after = customer.split("the session context (brandsyncup) is back:", 1)[1]
    assert re.match(r"\s*current_path\s*\n-+\s*\n\s*brandsyncup\s*\n", after), after[:200]
    assert re.search(r"^\s*\(null\)\s+\|\s+0\s*$", customer, re.M)  # after reset_tenant(): no context, 0 rows


def test_the_more_rockets_insert_is_kept_and_counted_in_the_totals(demo: str) -> None:
    assert "more rockets" in section(demo, "6")
    totals = {r[0]: (r[1], r[2]) for r in rows(section(demo, "8")) if len(r) == 3 and r[1].isdigit()}
    assert totals["brandsyncup/acme"] == ("3", "260")  # 120 + 80 + the 60 written in section 6
    assert totals["brandsyncup"] == ("1", "900")


def test_check_reports_what_the_demo_set_up(demo: str) -> None:
    found = {(r[0], r[1], r[2], r[3]) for r in rows(section(demo, "9")) if len(r) >= 4}
    assert ("view_bypasses_rls", "error", "public.order_totals") in {f[:3] for f in found}, found
    assert any(
        (c, s) == ("restrictive_policy", "info") and "restrictive policy positive_amounts" in p
        for c, s, _, p in found
    ), found
    assert any(
        (c, s) == ("truncate_granted", "warning") and "TRUNCATE is granted to demo_app" in p
        for c, s, _, p in found
    ), found
