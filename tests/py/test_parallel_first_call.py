"""No tenancy call crashes a backend under the parallel-query settings (SPEC v0.3 §0).

The sequence of issue 21: a login with no grants at all, in a fresh connection (the backend's first
tenancy call), under the parallel settings, calls a function PUBLIC may execute twice. On 0.2.0's
first core the first call failed with "cannot start subtransactions during a parallel operation" and
the second killed the backend (SIGSEGV), and with it every backend of the cluster. Here every such
function is called that way, under force_parallel_mode / debug_parallel_query and under the cost
settings alone inside a parallel aggregate (the functions not marked parallel unsafe: an unsafe one
keeps the query serial): an error is fine, a lost connection or a crash line in the server log is not.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from chaos import CRASH_PATTERNS, parallel_settings, wait_for_server
from tenancy_testlib import connect

# a value for each argument type the functions take; null for anything else
ARGS = {
    "uuid": "'00000000-0000-0000-0000-000000000000'::uuid",
    "text": "''::text",
    "name": "''::name",
    "boolean": "false",
    "smallint": "0::smallint",
    "integer": "0",
    "bigint": "0::bigint",
    "double precision": "0::float8",
    "oid": "0::oid",
    "regclass": "'pg_catalog.pg_class'::regclass",
    "regrole": "current_user::regrole",
    "jsonb": "'{}'::jsonb",
    "text[]": "'{}'::text[]",
    "uuid[]": "'{}'::uuid[]",
}


@pytest.fixture(scope="module")
def nogrant_dsn(tenancy_db: str) -> Iterator[str]:
    role, password = f"tenancy_nogrant_{secrets.token_hex(3)}", secrets.token_hex(8)
    with connect(tenancy_db) as conn:
        conn.execute(f"create role {role} login password '{password}'")
    yield f"{tenancy_db} user={role} password={password}"
    for attempt in range(3):  # the server may be recovering from a crash this test provoked
        wait_for_server(tenancy_db)
        try:
            with connect(tenancy_db) as conn:
                conn.execute(f"drop owned by {role}")
                conn.execute(f"drop role {role}")
            break
        except psycopg.OperationalError:
            if attempt == 2:
                raise


def public_functions(dsn: str) -> list[tuple[str, str, str]]:
    """(signature, call, proparallel) of every tenancy function the role may execute."""
    with connect(dsn) as conn:
        rows = conn.execute(
            "select p.oid::regprocedure::text, p.proname, p.prokind, p.proparallel,"
            " array(select pg_catalog.format_type(t, null) from unnest(p.proargtypes::oid[]) t)"
            " from pg_catalog.pg_proc p"
            " where p.pronamespace = 'tenancy'::regnamespace"
            " and pg_catalog.has_function_privilege(p.oid, 'execute')"
            " order by 1"
        ).fetchall()
    out = []
    for sig, name, kind, parallel, types in rows:
        args = ", ".join(ARGS.get(t, f"null::{t}") for t in types)
        call = f"tenancy.{name}({args})"
        out.append((sig, f"call {call}" if kind == "p" else call, parallel))
    return out


def fresh_connection(dsn: str, options: str) -> psycopg.Connection:
    try:
        return psycopg.connect(dsn, autocommit=True, options=options)
    except psycopg.OperationalError:  # the server is still recovering from a crash seen before
        wait_for_server(dsn)
        return psycopg.connect(dsn, autocommit=True, options=options)


def crash_lines(since: int) -> list[str]:
    path = os.environ.get("TENANCY_TEST_LOG")
    if not path:
        return []
    with Path(path).open("rb") as fh:
        fh.seek(since)
        text = fh.read().decode("utf-8", "replace")
    return [ln for ln in text.splitlines() if any(p in ln for p in CRASH_PATTERNS)]


@pytest.mark.parametrize("mode", ["force", "aggregate"])
def test_first_calls_under_parallel_settings_never_crash(
    mode: str, nogrant_dsn: str, tenancy_db: str
) -> None:
    log = os.environ.get("TENANCY_TEST_LOG")
    if not log:
        pytest.skip("TENANCY_TEST_LOG is not set: the server log cannot be checked for crashes")
    with connect(tenancy_db) as conn:
        version = int(conn.execute("show server_version_num").fetchone()[0])  # type: ignore[index]
    settings = parallel_settings(version)
    if mode == "aggregate":  # no force setting: a parallel plan of its own choosing
        settings = [*settings[1:], ("enable_indexscan", "off"), ("enable_indexonlyscan", "off")]
        settings.append(("enable_bitmapscan", "off"))
    options = " ".join(f"-c {k}={v}" for k, v in settings)
    functions = public_functions(nogrant_dsn)
    assert functions, "the role may execute no tenancy function at all"
    if mode == "aggregate":  # a parallel unsafe function keeps the whole query serial
        functions = [f for f in functions if f[2] != "u" and not f[1].startswith("call ")]
    since = Path(log).stat().st_size
    killed: list[str] = []
    for sig, call, _parallel in functions:
        sql = call if call.startswith("call ") else f"select {call}"
        if mode == "aggregate":
            sql = f"select {call}, count(*) from pg_catalog.pg_attribute"
        with fresh_connection(nogrant_dsn, options) as conn:
            try:
                for _ in range(2):
                    try:
                        conn.execute(sql)
                    except psycopg.Error as e:
                        if conn.broken or conn.closed:
                            raise
                        assert e.sqlstate, e  # any error with a SQLSTATE is an answer
                conn.execute("select 1")
            except psycopg.OperationalError as e:
                killed.append(f"{sig}: {str(e).strip().splitlines()[0]}")
                wait_for_server(tenancy_db)
    time.sleep(0.3)  # the postmaster's lines
    crashes = crash_lines(since)
    assert not killed and not crashes, (
        f"{len(killed)} of {len(functions)} functions lost their connection under {options}:\n"
        + "\n".join(killed)
        + "\nserver log:\n"
        + "\n".join(crashes[:9])
    )
