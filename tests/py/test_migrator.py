"""tenancy.grant_migrator: a migrator registers and unregisters the tables it owns, and nothing more."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from tenancy_testlib import Tree, connect, migrator_role


@pytest.fixture(scope="module")
def migrator_dsn(tenancy_db: str, tree: Tree) -> Iterator[str]:
    yield from migrator_role(tenancy_db)


@pytest.fixture(scope="module")
def other_migrator_dsn(tenancy_db: str, tree: Tree) -> Iterator[str]:
    yield from migrator_role(tenancy_db)


def registered(conn: psycopg.Connection, table: str) -> bool:
    row = conn.execute(
        "select count(*) from tenancy.scoped_tables where relid = %s::regclass", [table]
    ).fetchone()
    return row == (1,)


def test_migrator_registers_and_unregisters_its_own_table(migrator_dsn: str, tenancy_db: str) -> None:
    name = f"mig_{secrets.token_hex(3)}"
    with connect(migrator_dsn) as conn:
        conn.execute(f"create table public.{name} (id bigint primary key, tenant_id uuid not null)")
        conn.execute("select tenancy.register_table(%s)", [f"public.{name}"])
        assert registered(conn, f"public.{name}")
        row = conn.execute(
            "select relrowsecurity, relforcerowsecurity from pg_class where oid = %s::regclass",
            [f"public.{name}"],
        ).fetchone()
        assert row == (True, True)
        conn.execute("select tenancy.unregister_table(%s)", [f"public.{name}"])
        assert not registered(conn, f"public.{name}")
        conn.execute(f"drop table public.{name}")


def test_migrator_auto_register(migrator_dsn: str) -> None:
    name = f"mig_auto_{secrets.token_hex(3)}"
    with connect(migrator_dsn) as conn:
        conn.execute("set tenancy.auto_register = on")
        conn.execute(f"create table public.{name} (id bigint primary key, tenant_id uuid not null)")
        assert registered(conn, f"public.{name}")
        conn.execute(f"drop table public.{name}")
        assert conn.execute("select count(*) from tenancy.scoped_tables where relid::text = %s",
                            [f"{name}"]).fetchone() == (0,)  # fmt: skip


def test_migrator_cannot_touch_another_roles_table(migrator_dsn: str, other_migrator_dsn: str) -> None:
    name = f"mig_other_{secrets.token_hex(3)}"
    with connect(other_migrator_dsn) as owner:
        owner.execute(f"create table public.{name} (id bigint primary key, tenant_id uuid not null)")
        owner.execute(f"grant select on public.{name} to public")
    with connect(migrator_dsn) as conn:
        for sql in (
            "select tenancy.register_table(%s)",
            "insert into tenancy.scoped_tables (relid, tenant_column, write_scope, shared_rows)"
            " values (%s::regclass, 'tenant_id', 'own', false)",
        ):
            with pytest.raises(psycopg.Error) as info:
                conn.execute(sql, [f"public.{name}"])
            assert info.value.sqlstate == "42501", info.value
            assert not registered(conn, f"public.{name}")
    with connect(other_migrator_dsn) as owner:
        owner.execute("select tenancy.register_table(%s)", [f"public.{name}"])
    with connect(migrator_dsn) as conn:
        for sql in (
            "select tenancy.unregister_table(%s)",
            "delete from tenancy.scoped_tables where relid = %s::regclass",
            "update tenancy.scoped_tables set write_scope = 'visible' where relid = %s::regclass",
        ):
            with pytest.raises(psycopg.Error) as info:
                conn.execute(sql, [f"public.{name}"])
            assert info.value.sqlstate == "42501", (sql, info.value)
        assert registered(conn, f"public.{name}")
        row = conn.execute("select write_scope from tenancy.scoped_tables where relid = %s::regclass",
                           [f"public.{name}"]).fetchone()  # fmt: skip
        assert row == ("own",)


def test_migrator_gets_no_context_and_no_issuers(migrator_dsn: str, tree: Tree) -> None:
    with connect(migrator_dsn) as conn:
        for sql in (f"select tenancy.set_tenant('{tree.acme}')", "select * from tenancy.jwt_issuers",
                    "select tenancy.grant_app(current_user::regrole)"):  # fmt: skip
            with pytest.raises(psycopg.Error) as info:
                conn.execute(sql)
            assert info.value.sqlstate == "42501", (sql, info.value)
