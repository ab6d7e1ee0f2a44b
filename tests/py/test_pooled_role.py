"""Pooled roles (SPEC v0.3 §2) behind a real PgBouncer in transaction mode.

`grant_app(role, pooled => true)` makes a login a member of `tenancy_pooled`. Through transaction
pooling a session context (`local => false`, the default) stays on the server connection and becomes
the next client's context (tests/py/test_pooler.py shows the leak for an ordinary role). For a pooled
role set_tenant refuses one (TN007, with a hint to use `local => true`), so the mistake cannot leak;
`local => true` works as for any role.

The refusal is set_tenant's (the context core, sql/idempotent/20_context.sql): these tests fail until
that check is in; grant_app's side is tested in tests/py/test_first_hour.py.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pgbouncer
import psycopg
import pytest
from pgbouncer import PgBouncer, ScratchDb, run_pgbouncer, scratch_database
from tenancy_testlib import Tree, seed_tree

pytestmark = pytest.mark.skipif(
    pgbouncer.binary() is None,
    reason="PgBouncer is not installed (scripts/deps.sh installs the Debian package `pgbouncer`)",
)


@dataclass(frozen=True)
class World:
    db: ScratchDb
    pooled: str  # grant_app(role, pooled => true)
    tree: Tree


@pytest.fixture(scope="module")
def world(server_dsn: str) -> Iterator[World]:
    with scratch_database(server_dsn, "tenancy_pooled_role") as db:
        role, password = f"tenancy_pooled_{secrets.token_hex(3)}", secrets.token_hex(8)
        with psycopg.connect(db.dsn, autocommit=True) as conn:
            conn.execute(f"create role {role} login password '{password}'")
            db.roles[role] = password
            conn.execute("select tenancy.grant_app(%s, pooled => true)", [role])
            tree = seed_tree(conn)
            conn.execute(
                "insert into tenancy.domain_mappings (domain, tenant_id) values ('acme.pooled.test', %s)",
                [tree.acme],
            )
            conn.execute(
                "create table public.notes (id serial primary key, tenant_id uuid not null, body text)"
            )
            conn.execute("select tenancy.register_table('public.notes')")
            conn.execute(f"grant select, insert on public.notes to {role}")
            conn.execute(f"grant usage on sequence public.notes_id_seq to {role}")
            conn.execute(
                "insert into public.notes (tenant_id, body) values (%s, 'acme'), (%s, 'globex')",
                [tree.acme, tree.globex],
            )
        yield World(db, role, tree)


def bounced(b: PgBouncer, dsn: str, **kw: object) -> psycopg.Connection:
    # PgBouncer in transaction mode: no server-side prepared statements across transactions
    return psycopg.connect(b.dsn(dsn), prepare_threshold=None, **kw)  # type: ignore[arg-type]


def _refused(conn: psycopg.Connection, sql: str, params: list[object]) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as exc:
        conn.execute(sql, params)
    return exc.value


@pytest.mark.parametrize(
    ("sql", "arg"),
    [
        ("select tenancy.set_tenant(%s)", "acme"),
        ("select tenancy.set_tenant(%s, local => false)", "acme"),
        ("select tenancy.set_tenant_for_domain(%s)", "acme.pooled.test"),
    ],
)
def test_a_session_context_is_refused_to_a_pooled_role_through_pgbouncer(
    server_dsn: str, world: World, sql: str, arg: str
) -> None:
    value = world.tree.acme if arg == "acme" else arg
    with run_pgbouncer(server_dsn, [world.db.name], world.db.roles, default_pool_size=1) as b:
        dsn = world.db.role_dsn(world.pooled)
        with bounced(b, dsn, autocommit=True) as a, bounced(b, dsn, autocommit=True) as victim:
            err = _refused(a, sql, [value])
            assert err.sqlstate == "TN007", err
            assert "local => true" in (err.diag.message_hint or ""), err.diag.message_hint
            # nothing was left on the one server connection for the next client
            row = victim.execute(
                "select tenancy.current_tenant(), (select count(*) from public.notes)"
            ).fetchone()
            assert row == (None, 0)


def test_a_pooled_role_is_refused_a_session_context_on_a_direct_connection_too(world: World) -> None:
    """The rule follows the role, not the path: a pooled login never holds a session context."""
    with psycopg.connect(world.db.role_dsn(world.pooled), autocommit=True) as conn:
        assert _refused(conn, "select tenancy.set_tenant(%s)", [world.tree.acme]).sqlstate == "TN007"
        assert conn.execute("select tenancy.current_tenant()").fetchone() == (None,)


def test_a_pooled_role_takes_transaction_contexts_through_pgbouncer(server_dsn: str, world: World) -> None:
    t = world.tree
    with run_pgbouncer(server_dsn, [world.db.name], world.db.roles, default_pool_size=1) as b:
        dsn = world.db.role_dsn(world.pooled)
        with bounced(b, dsn) as a, bounced(b, dsn, autocommit=True) as victim:
            a_pid = a.execute("select pg_backend_pid() from tenancy.set_tenant(%s, local => true)", [t.acme])
            pid = a_pid.fetchone()
            assert a.execute("select body from public.notes").fetchall() == [("acme",)]
            a.execute("insert into public.notes (body) values ('acme 2')")
            a.commit()
            with a.transaction():
                a.execute("select tenancy.set_tenant_for_domain('acme.pooled.test', local => true)")
                assert a.execute("select count(*) from public.notes").fetchone() == (2,)
            row = victim.execute(
                "select pg_backend_pid(), tenancy.current_tenant(), (select count(*) from public.notes)"
            ).fetchone()
            assert pid is not None and row == (pid[0], None, 0), "same server connection, no context left"
