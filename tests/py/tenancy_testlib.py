"""Helpers shared by the pytest suites (no fixtures here: plain functions)."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg


def pg_bin(name: str) -> str:
    """A PostgreSQL program (pg_dump, pg_restore, ...) of the server under test."""
    import pytest

    pgbin = os.environ.get("TENANCY_PGBIN", "")
    path = Path(pgbin) / name if pgbin else None
    if path and path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        pytest.skip(f"{name} not found")
    return found


def dump_and_restore(server_dsn: str, src: str, dst: str, dump: Path) -> subprocess.CompletedProcess[str]:
    """pg_dump -Fc of database src into the file dump, then pg_restore --exit-on-error into dst."""
    params = dict(part.split("=", 1) for part in server_dsn.split())
    env = {**os.environ, "PGHOST": params.get("host", ""), "PGPORT": params.get("port", "")}
    env["PGUSER"] = params.get("user", "")
    subprocess.run([pg_bin("pg_dump"), "-Fc", "-f", str(dump), src], check=True, env=env)
    return subprocess.run(
        [pg_bin("pg_restore"), "--exit-on-error", "-d", dst, str(dump)],
        env=env,
        capture_output=True,
        text=True,
    )


def connect(dsn: str, **kwargs: object) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True, **kwargs)  # type: ignore[arg-type]


# --- what differs between the supported majors (15, 17, 18) ---------------------------------------


def parallel_setting(conn: psycopg.Connection) -> str:
    """The setting that forces a Gather on every plan: force_parallel_mode until 15, renamed
    debug_parallel_query in 16."""
    return "force_parallel_mode" if conn.info.server_version < 160000 else "debug_parallel_query"


def force_parallel(conn: psycopg.Connection) -> None:
    """Plans with a Gather from now on, in this session (the setting of the server's major)."""
    conn.execute(f"set {parallel_setting(conn)} = on")


# How EXPLAIN names an InitPlan's output in a condition: $0 until 16, (InitPlan 1).col1 from 17.
INITPLAN_OUTPUT = r"(\$\d+|\(InitPlan \d+\)\.col\d+)"


def has_initplan_equality(plan: str, column: str) -> bool:
    """Whether the EXPLAIN text ``plan`` compares ``column`` with an InitPlan's output
    (``(tenant_id = $0)`` on 15, ``(tenant_id = (InitPlan 1).col1)`` on 17 and 18)."""
    return re.search(rf"\({re.escape(column)} = {INITPLAN_OUTPUT}\)", plan) is not None


@dataclass(frozen=True)
class Tree:
    root: str
    brandsyncup: str
    acme: str
    globex: str
    pixelworks: str
    initech: str
    suspended: str

    def all(self) -> list[str]:
        return [
            self.root,
            self.brandsyncup,
            self.acme,
            self.globex,
            self.pixelworks,
            self.initech,
            self.suspended,
        ]

    def visible(self, tenant: str) -> set[str]:
        if tenant == self.root:
            return set(self.all())
        if tenant == self.brandsyncup:
            return {self.brandsyncup, self.acme, self.globex, self.suspended}
        if tenant == self.pixelworks:
            return {self.pixelworks, self.initech}
        return {tenant}


def seed_tree(conn: psycopg.Connection) -> Tree:
    def add(parent: str | None, slug: str, status: str = "active") -> str:
        row = conn.execute(
            "insert into tenancy.tenants (parent_id, slug, name, status)"
            " values (%s, %s, %s, %s) returning id",
            [parent, slug, slug.title(), status],
        ).fetchone()
        assert row is not None
        return str(row[0])

    root = add(None, "platform")
    bsu = add(root, "brandsyncup")
    pxw = add(root, "pixelworks")
    return Tree(
        root=root,
        brandsyncup=bsu,
        acme=add(bsu, "acme"),
        globex=add(bsu, "globex"),
        pixelworks=pxw,
        initech=add(pxw, "initech"),
        suspended=add(bsu, "dormant", "suspended"),
    )


def audit_lines(
    since: int, until: Callable[[dict[str, object]], bool] = lambda line: True
) -> list[dict[str, object]]:
    """TENANCY_AUDIT lines written to the server log after byte offset ``since``, as JSON objects.

    Polls for up to 5 s until one of them satisfies ``until`` (the logger writes asynchronously).
    """
    log = Path(os.environ["TENANCY_TEST_LOG"])
    out: list[dict[str, object]] = []
    deadline = time.time() + 5
    while time.time() < deadline:
        with log.open("rb") as fh:
            fh.seek(since)
            text = fh.read().decode("utf-8", "replace")
        out = [
            json.loads(line.split("TENANCY_AUDIT ", 1)[1])
            for line in text.splitlines()
            if "TENANCY_AUDIT " in line
        ]
        if any(until(line) for line in out):
            break
        time.sleep(0.1)
    return out


def migrator_role(tenancy_db: str, prefix: str = "tenancy_mig") -> Iterator[str]:
    """A login made with tenancy.grant_migrator, allowed to create tables in public: yields its DSN,
    then drops what it owns and the role."""
    role, password = f"{prefix}_{secrets.token_hex(3)}", secrets.token_hex(8)
    with connect(tenancy_db) as conn:
        conn.execute(f"create role {role} login password '{password}'")
        conn.execute("select tenancy.grant_migrator(%s)", [role])
        conn.execute(f"grant create on schema public to {role}")
    yield f"{tenancy_db} user={role} password={password}"
    with connect(tenancy_db) as conn:
        conn.execute(f"drop owned by {role} cascade")
        conn.execute(f"drop role {role}")
