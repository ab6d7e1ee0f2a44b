"""The isolation matrix, from outside: application roles over real connections.

Every tier x select / insert / update / delete / COPY TO / RETURNING / ON CONFLICT / prepared
statements reused across set_tenant switches / no context. Nothing of another tenant is ever seen
or changed, and each refusal carries the SQLSTATE from the SPEC.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from tenancy_testlib import Tree, connect

CONTEXTS = ["root", "brandsyncup", "pixelworks", "acme", "initech"]


@pytest.fixture(scope="module")
def items(tenancy_db: str, tree: Tree, app_dsn: str, platform_dsn: str) -> Iterator[str]:
    """public.items, registered, 3 rows per tenant; readable and writable by the app and platform roles."""
    with connect(tenancy_db) as conn:
        conn.execute(
            "create table public.items (id bigserial primary key, tenant_id uuid not null, body text)"
        )
        conn.execute("select tenancy.register_table('public.items')")
        for tenant in tree.all():
            for i in range(3):
                conn.execute(
                    "insert into public.items (tenant_id, body) values (%s, %s)", [tenant, f"row {i}"]
                )
        for dsn in (app_dsn, platform_dsn):
            role = dsn.rsplit("user=", 1)[1].split()[0]
            conn.execute(f"grant select, insert, update, delete on public.items to {role}")
            conn.execute(f"grant usage on sequence public.items_id_seq to {role}")
    yield "public.items"
    with connect(tenancy_db) as conn:
        conn.execute("drop table public.items")


def dsn_for(name: str, app_dsn: str, platform_dsn: str) -> str:
    return platform_dsn if name == "root" else app_dsn


def snapshot(tenancy_db: str) -> dict[int, tuple[str, str]]:
    with connect(tenancy_db) as conn:
        return {r[0]: (str(r[1]), r[2]) for r in conn.execute("select id, tenant_id, body from public.items")}


def other_tenant_row(tenancy_db: str, tree: Tree, me: str) -> tuple[int, str]:
    """Some row of a tenant that `me` cannot see."""
    invisible = [t for t in tree.all() if t not in tree.visible(me)]
    with connect(tenancy_db) as conn:
        row = conn.execute(
            "select id, tenant_id from public.items where tenant_id = %s limit 1", [invisible[0]]
        ).fetchone()
    assert row is not None
    return row[0], str(row[1])


@pytest.mark.parametrize("name", CONTEXTS)
def test_select_and_copy_see_exactly_the_visible_tenants(
    name: str, items: str, tree: Tree, app_dsn: str, platform_dsn: str
) -> None:
    me = getattr(tree, name)
    with connect(dsn_for(name, app_dsn, platform_dsn)) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [me])
        seen = {str(r[0]) for r in conn.execute("select tenant_id from public.items")}
        assert seen == tree.visible(me)
        with conn.cursor().copy("copy public.items (tenant_id) to stdout") as copy:
            copied = {bytes(line).decode().strip() for line in copy}
        assert copied == tree.visible(me)


@pytest.mark.parametrize("name", CONTEXTS)
def test_writes_stay_inside_the_context(
    name: str, items: str, tree: Tree, app_dsn: str, platform_dsn: str, tenancy_db: str
) -> None:
    me = getattr(tree, name)
    other_id, other_tenant = other_tenant_row(tenancy_db, tree, me) if name != "root" else (None, None)
    before = snapshot(tenancy_db)
    with connect(dsn_for(name, app_dsn, platform_dsn)) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [me])
        # INSERT ... RETURNING: lands in the current tenant
        row = conn.execute("insert into public.items (body) values ('new') returning tenant_id").fetchone()
        assert row is not None and str(row[0]) == me
        # UPDATE ... RETURNING: own rows; with write_scope 'own' a visible child's row is refused (42501)
        touched = {
            str(r[0])
            for r in conn.execute(
                "update public.items set body = body where tenant_id = %s returning tenant_id", [me]
            )
        }
        assert touched == {me}
        children = sorted(tree.visible(me) - {me})
        if children:
            with pytest.raises(psycopg.Error) as exc:
                conn.execute("update public.items set body = body where tenant_id = %s", [children[0]])
            assert exc.value.sqlstate == "42501"
        if other_id is not None:
            # rows of other tenants: invisible to UPDATE and DELETE
            assert (
                conn.execute("update public.items set body = 'pwned' where id = %s", [other_id]).rowcount == 0
            )
            assert conn.execute("delete from public.items where id = %s", [other_id]).rowcount == 0
            # writing a row into another tenant: refused by WITH CHECK
            with pytest.raises(psycopg.Error) as exc:
                conn.execute("insert into public.items (tenant_id, body) values (%s, 'x')", [other_tenant])
            assert exc.value.sqlstate == "42501"
            mine = conn.execute("select id from public.items where tenant_id = %s limit 1", [me]).fetchone()
            assert mine is not None
            with pytest.raises(psycopg.Error) as exc:
                conn.execute("update public.items set tenant_id = %s where id = %s", [other_tenant, mine[0]])
            assert exc.value.sqlstate == "42501"
            # ON CONFLICT against another tenant's row: DO NOTHING writes nothing, DO UPDATE is refused
            conn.execute(
                "insert into public.items (id, tenant_id, body) values (%s, %s, 'x')"
                " on conflict (id) do nothing",
                [other_id, me],
            )
            with pytest.raises(psycopg.Error) as exc:
                conn.execute(
                    "insert into public.items (id, tenant_id, body) values (%s, %s, 'x')"
                    " on conflict (id) do update set body = 'pwned'",
                    [other_id, me],
                )
            assert exc.value.sqlstate == "42501"
        conn.execute("delete from public.items where body = 'new'")
    after = snapshot(tenancy_db)
    invisible = {i: v for i, v in before.items() if v[0] not in tree.visible(me)}
    assert {i: after.get(i) for i in invisible} == invisible, "no row of an invisible tenant changed"


def test_partner_cannot_write_into_its_customer_with_own_scope(items: str, tree: Tree, app_dsn: str) -> None:
    with connect(app_dsn) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [tree.brandsyncup])
        with pytest.raises(psycopg.Error) as exc:
            conn.execute("insert into public.items (tenant_id, body) values (%s, 'x')", [tree.acme])
        assert exc.value.sqlstate == "42501"


def test_no_context(items: str, tree: Tree, app_dsn: str) -> None:
    with connect(app_dsn) as conn:
        assert conn.execute("select count(*) from public.items").fetchone() == (0,)
        with conn.cursor().copy("copy public.items to stdout") as copy:
            assert list(copy) == []
        for sql, args in [
            ("update public.items set body = 'x'", []),
            ("delete from public.items", []),
            ("insert into public.items (body) values ('x')", []),
            ("insert into public.items (tenant_id, body) values (%s, 'x')", [tree.acme]),
        ]:
            with pytest.raises(psycopg.Error) as exc:
                conn.execute(sql, args)
            assert exc.value.sqlstate == "TN003"


def test_prepared_statements_follow_set_tenant_switches(items: str, tree: Tree, app_dsn: str) -> None:
    with connect(app_dsn, prepare_threshold=0) as conn:
        for _ in range(3):  # enough executions for a generic plan
            for name in ["acme", "initech", "brandsyncup", "globex"]:
                me = getattr(tree, name)
                conn.execute("select tenancy.set_tenant(%s)", [me])
                seen = {
                    str(r[0]) for r in conn.execute("select tenant_id from public.items where id > %s", [0])
                }
                assert seen == tree.visible(me)
        conn.execute("select tenancy.reset_tenant()")
        assert conn.execute("select count(*) from public.items where id > %s", [0]).fetchone() == (0,)


def test_local_contexts_in_consecutive_transactions(items: str, tree: Tree, app_dsn: str) -> None:
    with connect(app_dsn) as conn:
        for name in ["acme", "initech", "pixelworks", "acme"]:
            me = getattr(tree, name)
            with conn.transaction():
                conn.execute("select tenancy.set_tenant(%s, local => true)", [me])
                seen = {str(r[0]) for r in conn.execute("select tenant_id from public.items")}
                assert seen == tree.visible(me)
            assert conn.execute("select count(*) from public.items").fetchone() == (0,)


def test_tier0_is_refused_to_application_roles(items: str, tree: Tree, app_dsn: str) -> None:
    with connect(app_dsn) as conn:
        with pytest.raises(psycopg.Error) as exc:
            conn.execute("select tenancy.set_tenant(%s)", [tree.root])
        assert exc.value.sqlstate == "TN007"
        assert conn.execute("select count(*) from public.items").fetchone() == (0,)


@pytest.fixture(scope="module")
def shared(tenancy_db: str, tree: Tree, app_dsn: str, platform_dsn: str) -> Iterator[str]:
    """public.shared_items (write_scope visible, shared_rows): one row per tenant and two shared rows."""
    with connect(tenancy_db) as conn:
        conn.execute("create table public.shared_items (id serial primary key, tenant_id uuid, body text)")
        conn.execute(
            "select tenancy.register_table('public.shared_items',"
            " write_scope => 'visible', shared_rows => true)"
        )
        conn.execute("insert into public.shared_items (tenant_id, body) select id, slug from tenancy.tenants")
        conn.execute("insert into public.shared_items (tenant_id, body) values (null, 's1'), (null, 's2')")
        for dsn in (app_dsn, platform_dsn):
            role = dsn.rsplit("user=", 1)[1].split()[0]
            conn.execute(f"grant select, insert, update, delete on public.shared_items to {role}")
            conn.execute(f"grant usage on sequence public.shared_items_id_seq to {role}")
    yield "public.shared_items"
    with connect(tenancy_db) as conn:
        conn.execute("select tenancy.unregister_table('public.shared_items')")
        conn.execute("drop table public.shared_items")


@pytest.mark.parametrize("name", ["acme", "brandsyncup"])
def test_shared_rows_are_read_only_below_tier_0(name: str, shared: str, tree: Tree, app_dsn: str) -> None:
    me = getattr(tree, name)
    with connect(app_dsn) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [me])
        bodies = {r[0] for r in conn.execute("select body from public.shared_items where tenant_id is null")}
        assert bodies == {"s1", "s2"}, "shared rows are visible"
        assert conn.execute("update public.shared_items set body = 'x' where tenant_id is null").rowcount == 0
        assert (
            conn.execute("update public.shared_items set tenant_id = %s where body = 's1'", [me]).rowcount
            == 0
        )
        assert conn.execute("delete from public.shared_items where tenant_id is null").rowcount == 0
        with pytest.raises(psycopg.Error) as exc:
            conn.execute("insert into public.shared_items (tenant_id, body) values (null, 'mine')")
        assert exc.value.sqlstate == "42501"
        assert conn.execute(
            "select count(*) from public.shared_items where tenant_id is null"
        ).fetchone() == (2,)


def test_shared_rows_are_written_at_tier_0(shared: str, tree: Tree, platform_dsn: str) -> None:
    with connect(platform_dsn) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [tree.root])
        with conn.transaction():
            assert conn.execute("update public.shared_items set body = 'x' where body = 's2'").rowcount == 1
            raise psycopg.Rollback()


def test_check_runs_as_the_application_role(items: str, tree: Tree, app_dsn: str) -> None:
    with connect(app_dsn) as conn:
        rows = conn.execute("select severity, object, problem from tenancy.check()").fetchall()
        assert not any("superuser" in r[2] for r in rows), rows


def test_a_role_without_grant_app_sees_zero_rows(items: str, tenancy_db: str, tree: Tree) -> None:
    """SELECT on a scoped table alone (no grant_app): the policies still apply, no context, no rows."""
    role = f"tenancy_plain_{secrets.token_hex(3)}"
    with connect(tenancy_db) as conn:
        conn.execute(f"create role {role} login")
        conn.execute(f"grant select, insert, update, delete on public.items to {role}")
    try:
        with connect(f"{tenancy_db} user={role}") as conn:
            assert conn.execute("select count(*) from public.items").fetchone() == (0,)
            with pytest.raises(psycopg.Error) as exc:
                conn.execute("insert into public.items (tenant_id, body) values (%s, 'x')", [tree.acme])
            assert exc.value.sqlstate in ("TN003", "42501")
            with pytest.raises(psycopg.Error) as exc:
                conn.execute("select tenancy.set_tenant(%s)", [tree.acme])
            assert exc.value.sqlstate == "42501"  # no grant_app: it cannot take a context
    finally:
        with connect(tenancy_db) as conn:
            conn.execute(f"drop owned by {role}")
            conn.execute(f"drop role {role}")
