"""Shared fixtures: a fresh database with the extension, a seeded tenant tree, and login roles.

The server comes from TENANCY_TEST_DSN (scripts/with-cluster.sh starts a throwaway cluster and
sets it). With TENANCY_TEST_BACKEND=container the same suite runs against a testcontainers
PostgreSQL instead (skipped, with the reason, where no Docker engine answers).
Tests that only import plpython/ modules need no server at all.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # plpython/ is a package: tests import it as plpython
sys.path.insert(0, str(Path(__file__).resolve().parent))

from standby import NoStandby, Standby, streaming_standby  # noqa: E402
from tenancy_testlib import Tree, connect, seed_tree  # noqa: E402


def _container_dsn() -> Iterator[str]:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
    except Exception as exc:  # no engine, no socket, no permission
        pytest.skip(
            "TENANCY_TEST_BACKEND=container needs a Docker engine; "
            f"none answered here ({exc.__class__.__name__})"
        )
    from container import tenancy_container  # pragma: no cover - needs Docker

    with tenancy_container() as dsn:  # pragma: no cover
        yield dsn


@pytest.fixture(scope="session")
def server_dsn() -> Iterator[str]:
    if os.environ.get("TENANCY_TEST_BACKEND") == "container":
        yield from _container_dsn()
        return
    dsn = os.environ.get("TENANCY_TEST_DSN")
    if not dsn:
        pytest.skip("no server: run through `make test` or set TENANCY_TEST_DSN")
    yield dsn


@pytest.fixture(scope="session")
def tenancy_db(server_dsn: str) -> Iterator[str]:
    """A fresh database with the extension installed; its superuser DSN."""
    name = f"tenancy_py_{secrets.token_hex(4)}"
    with connect(server_dsn) as conn:
        conn.execute(f"create database {name}")
    dsn = f"{server_dsn} dbname={name}"
    with connect(dsn) as conn:
        conn.execute("set client_min_messages = warning")
        conn.execute("create extension tenancy cascade")
    yield dsn
    with connect(server_dsn) as conn:
        conn.execute(f"drop database if exists {name} with (force)")


@pytest.fixture(scope="session")
def tree(tenancy_db: str) -> Tree:
    """platform -> brandsyncup (acme, globex) and pixelworks (initech); acme has acme.example.com."""
    with connect(tenancy_db) as conn:
        return seed_tree(conn)


def _login_role(server_dsn: str, tenancy_db: str, kind: str) -> Iterator[str]:
    role = f"tenancy_{kind}_{secrets.token_hex(3)}"
    password = secrets.token_hex(8)
    with connect(tenancy_db) as conn:
        conn.execute(f"create role {role} login password '{password}'")
        fn = "grant_platform" if kind == "platform" else "grant_app"
        conn.execute(f"select tenancy.{fn}(%s)", [role])
    yield f"{tenancy_db} user={role} password={password}"
    with connect(tenancy_db) as conn:
        conn.execute(f"drop owned by {role}")
        conn.execute(f"drop role {role}")


@pytest.fixture(scope="session")
def app_dsn(server_dsn: str, tenancy_db: str, tree: Tree) -> Iterator[str]:
    """DSN of an application login (tenancy.grant_app), not a superuser, under RLS."""
    yield from _login_role(server_dsn, tenancy_db, "app")


@pytest.fixture(scope="session")
def platform_dsn(server_dsn: str, tenancy_db: str, tree: Tree) -> Iterator[str]:
    """DSN of a platform login (tenancy.grant_platform)."""
    yield from _login_role(server_dsn, tenancy_db, "platform")


@pytest.fixture
def log_offset() -> int:
    """The server log's size now: audit lines written after it are this test's."""
    path = os.environ.get("TENANCY_TEST_LOG")
    if not path or not Path(path).exists():
        pytest.skip(
            "the server log is not readable here (TENANCY_TEST_LOG unset): audit lines cannot be asserted"
        )
    return Path(path).stat().st_size


@pytest.fixture(scope="session")
def standby(server_dsn: str) -> Iterator[Standby]:
    """A streaming hot standby of the throwaway primary (tests/py/standby.py), made on first use."""
    try:
        with streaming_standby(server_dsn) as replica:
            yield replica
    except NoStandby as exc:
        pytest.skip(str(exc))
