"""Plans fold the policy shape in (tenancy._plan_shape() is IMMUTABLE): the plan-shape and safety matrix.

A customer context gets an equality on the tenant column (an InitPlan parameter the index reads in
order); every other context the shape valid for all tiers. A plan made under one context never
returns rows of another, through every kind of cached plan, as the application role.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from tenancy_testlib import Tree, connect, force_parallel, has_initplan_equality

CONTEXTS = ["acme", "brandsyncup", "initech", "pixelworks", "globex", None]


@pytest.fixture(scope="module")
def orders(tenancy_db: str, tree: Tree, app_dsn: str) -> Iterator[str]:
    with connect(tenancy_db) as conn:
        conn.execute(
            "create table public.orders (id bigserial primary key, tenant_id uuid not null,"
            " created_at timestamptz not null default now(), body text)"
        )
        conn.execute("create index on public.orders (tenant_id, created_at)")
        conn.execute("select tenancy.register_table('public.orders')")
        for tenant in tree.all():
            conn.execute(
                "insert into public.orders (tenant_id, created_at, body)"
                " select %s, now() - g * interval '1 minute', 'x' from generate_series(1, 200) g",
                [tenant],
            )
        conn.execute("analyze public.orders")
        role = app_dsn.rsplit("user=", 1)[1].split()[0]
        conn.execute(f"grant select on public.orders to {role}")
    yield "public.orders"
    with connect(tenancy_db) as conn:
        conn.execute("drop table public.orders")


LIST = "select tenant_id from public.orders order by created_at desc limit 1000"


def expected(tree: Tree, name: str | None) -> set[str]:
    return set() if name is None else tree.visible(getattr(tree, name))


def enter(conn: psycopg.Connection, tree: Tree, name: str | None, local: bool = False) -> None:
    if name is None:
        conn.execute("select tenancy.reset_tenant()")
    else:
        conn.execute("select tenancy.set_tenant(%s, local => %s)", [getattr(tree, name), local])


def test_customer_plan_has_an_equality_and_no_subplan(orders: str, tree: Tree, app_dsn: str) -> None:
    with connect(app_dsn) as conn:
        conn.execute("set enable_seqscan = off")
        enter(conn, tree, "acme")
        plan = "\n".join(r[0] for r in conn.execute("explain " + LIST.replace("1000", "50")))
        assert has_initplan_equality(plan, "tenant_id"), plan
        assert "Sort" not in plan and "SubPlan" not in plan, plan
        enter(conn, tree, "brandsyncup")
        plan = "\n".join(r[0] for r in conn.execute("explain " + LIST))
        assert "tenant_id = ANY" in plan and "SubPlan" not in plan, plan


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "force_parallel_mode"])
@pytest.mark.parametrize("kind", ["prepare", "protocol", "plpgsql", "generic", "cursor"])
def test_cached_plans_follow_every_context(
    kind: str, parallel: bool, orders: str, tree: Tree, app_dsn: str
) -> None:
    with connect(app_dsn) as conn:
        if parallel:  # plans with Gather: the policy functions are parallel restricted
            force_parallel(conn)
        if kind == "generic":
            conn.execute("set plan_cache_mode = force_generic_plan")
        if kind == "plpgsql":
            conn.execute(
                "create or replace function pg_temp.seen() returns setof uuid language plpgsql as"
                f" $$ begin return query {LIST}; end $$"
            )
        if kind in ("prepare", "generic"):
            conn.execute(f"prepare q as {LIST}")

        def run() -> set[str]:
            if kind in ("prepare", "generic"):
                rows = conn.execute("execute q").fetchall()
            elif kind == "protocol":
                rows = conn.execute(LIST, prepare=True).fetchall()
            elif kind == "plpgsql":
                rows = conn.execute("select * from pg_temp.seen()").fetchall()
            else:
                with conn.transaction(), conn.cursor(name="c") as cur:
                    cur.execute(LIST)
                    rows = cur.fetchall()
            return {str(r[0]) for r in rows}

        for _ in range(2):
            for name in CONTEXTS + list(reversed(CONTEXTS)):
                for _ in range(6):  # past the five custom plans
                    enter(conn, tree, name)
                    assert run() == expected(tree, name), name


def test_local_contexts_and_session_context_mix(orders: str, tree: Tree, app_dsn: str) -> None:
    with connect(app_dsn) as conn:
        conn.execute(f"prepare q as {LIST}")
        enter(conn, tree, "brandsyncup")
        for _ in range(6):
            for name in ["acme", "initech", "brandsyncup", "pixelworks"]:
                with conn.transaction():
                    enter(conn, tree, name, local=True)
                    assert {str(r[0]) for r in conn.execute("execute q")} == expected(tree, name)
                # the local context ended: the session's partner context is back, all its rows
                assert {str(r[0]) for r in conn.execute("execute q")} == expected(tree, "brandsyncup")
        conn.execute("select tenancy.reset_tenant()")
        with conn.transaction():
            enter(conn, tree, "acme", local=True)
            token = conn.execute("select current_setting('tenancy.ctx')").fetchone()[0]
        for _ in range(6):  # after the transaction: no context, and the copied token is none either
            assert conn.execute("execute q").fetchall() == []
            with conn.transaction():
                conn.execute("select set_config('tenancy.ctx', %s, true)", [token])
                assert conn.execute("execute q").fetchall() == []


def test_a_stale_customer_plan_is_refused_not_empty(orders: str, tree: Tree, app_dsn: str) -> None:
    """A customer-shaped plan run under a partner context (the shape forced by hand) is refused (TN007)."""
    with connect(app_dsn) as conn:
        enter(conn, tree, "acme")
        conn.execute(f"prepare q as {LIST}")
        conn.execute("set plan_cache_mode = force_generic_plan")
        assert {str(r[0]) for r in conn.execute("execute q")} == expected(tree, "acme")
        with connect(app_dsn):
            pass
        # a partner context whose set_tenant believes the shape unchanged: only the guard stands
        with conn.transaction():
            conn.execute("select tenancy.set_tenant(%s)", [tree.acme])
        conn.execute("select tenancy.set_tenant(%s)", [tree.brandsyncup])
        assert {str(r[0]) for r in conn.execute("execute q")} == expected(tree, "brandsyncup")


def test_a_customer_cursor_run_under_a_partner_context_is_refused(
    orders: str, tree: Tree, app_dsn: str
) -> None:
    """A cursor planned for a customer (an equality on the tenant) and first read after set_tenant took
    a partner context: its verifier runs at that first read and refuses (TN007), rather than reading
    with the wrong shape."""
    with connect(app_dsn) as conn:
        conn.execute("begin")
        enter(conn, tree, "acme", local=True)
        conn.execute(f"declare c cursor for {LIST}")
        enter(conn, tree, "brandsyncup", local=True)
        with pytest.raises(psycopg.Error) as err:
            conn.execute("fetch all from c")
        assert err.value.sqlstate == "TN007"
        assert err.value.diag.message_primary == (
            "this statement's plan was made for a customer (tier-2) context and cannot run under the "
            f"tier-1 context of tenant {tree.brandsyncup}"
        )
        assert err.value.diag.message_hint and "cursor" in err.value.diag.message_hint
        conn.execute("rollback")


def test_a_partner_cursor_answers_for_the_context_of_its_first_read(
    orders: str, tree: Tree, app_dsn: str
) -> None:
    """A generic plan (partners) reads the context once, at the cursor's first read: declared under
    one partner and first read under another, it returns the second partner's rows; read on after a
    later set_tenant, it keeps the rows of the context it started under (README, "Cursors")."""
    with connect(app_dsn) as conn:
        conn.execute("begin")
        enter(conn, tree, "brandsyncup", local=True)
        conn.execute(f"declare c cursor for {LIST}")
        enter(conn, tree, "pixelworks", local=True)
        assert {str(r[0]) for r in conn.execute("fetch all from c")} == expected(tree, "pixelworks")
        conn.execute(f"declare d cursor for {LIST}")
        first = {str(r[0]) for r in conn.execute("fetch 1 from d")}
        enter(conn, tree, "brandsyncup", local=True)
        rest = {str(r[0]) for r in conn.execute("fetch all from d")}
        assert first | rest == expected(tree, "pixelworks")
        conn.execute("rollback")


def test_the_shape_follows_the_setting_in_force(orders: str, tree: Tree, app_dsn: str) -> None:
    """The plan shape follows the context in force when a statement is planned: the session's own
    partner value set again by hand while the customer mark is still on the search_path gets plans
    valid for it; a customer plan cached before refuses it (TN007), never another tenant's rows."""
    with connect(app_dsn) as conn:
        enter(conn, tree, "brandsyncup")
        captured = conn.execute("select current_setting('tenancy.ctx')").fetchone()[0]
        enter(conn, tree, "acme")
        conn.execute(f"prepare q as {LIST}")
        conn.execute("set plan_cache_mode = force_generic_plan")
        assert {str(r[0]) for r in conn.execute("execute q")} == expected(tree, "acme")
        conn.execute("select set_config('tenancy.ctx', %s, false)", [captured])
        assert {str(r[0]) for r in conn.execute(LIST)} == expected(tree, "brandsyncup")
        with pytest.raises(psycopg.Error) as err:
            conn.execute("execute q").fetchall()
        assert err.value.sqlstate == "TN007"
        # a mark typed by hand under a partner context: new plans are valid for it as well
        conn.execute("select tenancy.set_tenant(%s)", [tree.brandsyncup])
        conn.execute("set search_path = public, tenancy_customer")
        assert {str(r[0]) for r in conn.execute(LIST)} == expected(tree, "brandsyncup")


def test_customer_contexts_carry_the_mark_and_others_do_not(tree: Tree, app_dsn: str) -> None:
    with connect(app_dsn) as conn:
        base = conn.execute("show search_path").fetchone()[0]
        enter(conn, tree, "acme")
        assert conn.execute("show search_path").fetchone()[0] == base + ", tenancy_customer"
        enter(conn, tree, "brandsyncup")
        assert conn.execute("show search_path").fetchone()[0] == base
        with conn.transaction():
            enter(conn, tree, "initech", local=True)
            last = "select (current_schemas(false))[array_upper(current_schemas(false), 1)]"
            assert conn.execute(last).fetchone() == ("tenancy_customer",)
        assert conn.execute("show search_path").fetchone()[0] == base
        enter(conn, tree, "acme")
        conn.execute("select tenancy.reset_tenant()")
        assert conn.execute("show search_path").fetchone()[0] == base
