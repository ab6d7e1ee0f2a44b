"""The client examples run against the test server, directly and through PgBouncer.

Each example (examples/python, examples/node) connects as the application login of
examples/schema.sql, runs the same scenario (resolve a host, a transaction with a local context,
read and write, a cross-tenant write and read) and exits non-zero on any isolation failure. Run as
a superuser, which bypasses row-level security, each of them must notice and fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pgbouncer
import psycopg
import pytest
from pgbouncer import PgBouncer, ScratchDb, run_pgbouncer, scratch_database, url
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
APP_ROLE, APP_PASSWORD = "tenancy_example_app", "example"  # made by examples/schema.sql

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
EXPECTED = [
    rf"^resolved acme\.example\.com -> {UUID}, globex\.brandsyncup\.com -> {UUID}$",
    r"^acme: wrote note \d+, sees [1-9]\d* notes, all its own$",
    r"^acme: writing into globex refused with SQLSTATE 42501$",
    r"^acme: notes of globex visible: 0$",
    r"^no context after commit: 0 notes visible$",
    r"^isolation OK$",
]


@dataclass(frozen=True)
class Example:
    path: str  # under examples/
    runtime: str  # "python" or "node"

    def command(self) -> list[str]:
        script = str(EXAMPLES / self.path)
        if self.runtime == "python":
            return [sys.executable, script]
        node = shutil.which("node")
        if node is None:
            pytest.skip("Node.js is not installed (no `node` on PATH): the Node examples need it")
        if not (EXAMPLES / "node" / "node_modules" / "pg").is_dir():
            pytest.skip(
                "examples/node/node_modules is missing: run scripts/deps.sh (npm install in examples/node)"
            )
        return [node, script]


ALL = [
    Example("python/psycopg_pool_example.py", "python"),
    Example("python/asyncpg_example.py", "python"),
    Example("node/pg_example.mjs", "node"),
    Example("node/drizzle_example.mjs", "node"),
]
IDS = [Path(e.path).stem for e in ALL]


@pytest.fixture(scope="module")
def example_db(server_dsn: str) -> Iterator[ScratchDb]:
    """A fresh database set up by examples/schema.sql, as a superuser."""
    with scratch_database(server_dsn, "tenancy_examples", extension=False) as db:
        with psycopg.connect(db.dsn, autocommit=True) as conn:
            existed = conn.execute("select 1 from pg_roles where rolname = %s", [APP_ROLE]).fetchone()
            conn.execute("set client_min_messages = warning")
            conn.execute((EXAMPLES / "schema.sql").read_text())
        if existed is None:
            db.roles[APP_ROLE] = APP_PASSWORD  # made here: dropped with the database
        yield db


@pytest.fixture(scope="module")
def example_bouncer(server_dsn: str, example_db: ScratchDb) -> Iterator[PgBouncer]:
    if pgbouncer.binary() is None:
        pytest.skip("PgBouncer is not installed (scripts/deps.sh installs the Debian package `pgbouncer`)")
    # Transaction pooling with fewer server connections than the examples' own pools hold.
    with run_pgbouncer(
        server_dsn, [example_db.name], {APP_ROLE: APP_PASSWORD}, pool_mode="transaction", default_pool_size=2
    ) as b:
        yield b


def run_example(example: Example, dsn: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}  # only the URL we pass
    proc = subprocess.run(
        [*example.command(), url(dsn)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    return proc.returncode, proc.stdout + proc.stderr


def app_dsn(db: ScratchDb) -> str:
    return make_conninfo(db.dsn, user=APP_ROLE, password=APP_PASSWORD)


def assert_isolation_ok(rc: int, out: str) -> None:
    assert rc == 0, out
    for pattern in EXPECTED:
        assert re.search(pattern, out, re.MULTILINE), f"no line matching {pattern!r} in:\n{out}"
    assert "FAIL" not in out, out


@pytest.mark.parametrize("example", ALL, ids=IDS)
def test_example_direct(example: Example, example_db: ScratchDb) -> None:
    assert_isolation_ok(*run_example(example, app_dsn(example_db)))


@pytest.mark.parametrize("example", ALL, ids=IDS)
def test_example_through_pgbouncer_transaction_pooling(
    example: Example, example_db: ScratchDb, example_bouncer: PgBouncer
) -> None:
    def xacts() -> int:
        stats = [r for r in example_bouncer.admin("show stats") if r["database"] == example_db.name]
        return int(stats[0]["total_xact_count"]) if stats else 0

    before = xacts()
    assert_isolation_ok(*run_example(example, example_bouncer.dsn(app_dsn(example_db))))
    assert xacts() - before >= 4, "the example's transactions went through PgBouncer"


@pytest.mark.parametrize("example", ALL, ids=IDS)
def test_example_notices_when_isolation_is_bypassed(example: Example, example_db: ScratchDb) -> None:
    """As a superuser (row-level security does not apply) every check must fail, and the exit code say so."""
    rc, out = run_example(example, example_db.dsn)
    assert rc == 1, out
    assert "FAIL: acme: writing into globex was accepted" in out, out
    assert re.search(r"^FAIL: acme: notes of globex visible: [1-9]", out, re.MULTILINE), out
    assert "isolation FAILED" in out and "isolation OK" not in out, out
