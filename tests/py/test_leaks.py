"""The sloppy setups of issue 14, tried as an attacker would: each one is built by the DBA, the leak
is shown (or its refusal) as the application role over a real connection, and tenancy.check()
must report it with a hint.

Every test here fails on 0.1.0: there the permissive policy, the TRUNCATE and the DROP EXTENSION
went through, and check() reported none of the setups below (nor got the superuser's ownership
right). The module works in a database of its own, so that its deliberately broken objects never
meet the other suites' check() assertions.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from tenancy_testlib import Tree, connect, seed_tree


@dataclass(frozen=True)
class Db:
    dba: str  # superuser DSN
    app: str  # grant_app login, under RLS
    app_role: str
    platform: str  # grant_platform login
    platform_role: str
    tree: Tree


@pytest.fixture(scope="module")
def db(server_dsn: str) -> Iterator[Db]:
    name = f"tenancy_leaks_{secrets.token_hex(4)}"
    suffix = secrets.token_hex(3)
    app_role, platform_role = f"leak_app_{suffix}", f"leak_platform_{suffix}"
    with connect(server_dsn) as conn:
        conn.execute(f"create database {name}")
    dba = f"{server_dsn} dbname={name}"
    with connect(dba) as conn:
        conn.execute("set client_min_messages = warning")
        conn.execute("create extension tenancy cascade")
        tree = seed_tree(conn)
        for role, fn in ((app_role, "grant_app"), (platform_role, "grant_platform")):
            conn.execute(f"create role {role} login password 'leaks'")
            conn.execute(f"select tenancy.{fn}(%s)", [role])
    yield Db(
        dba=dba,
        app=f"{dba} user={app_role} password=leaks",
        app_role=app_role,
        platform=f"{dba} user={platform_role} password=leaks",
        platform_role=platform_role,
        tree=tree,
    )
    with connect(server_dsn) as conn:
        conn.execute(f"drop database if exists {name} with (force)")
        for role in (app_role, platform_role):
            conn.execute(f"drop role if exists {role}")


def scoped_table(db: Db, name: str, extra: str = "") -> None:
    """A registered table with one row for each of acme, globex and initech, usable by the app role."""
    t = db.tree
    with connect(db.dba) as conn:
        conn.execute(f"create table public.{name} (id serial, tenant_id uuid not null, body text{extra})")
        conn.execute("select tenancy.register_table(%s)", [f"public.{name}"])
        conn.execute(
            f"insert into public.{name} (tenant_id, body)"
            " values (%s, 'acme'), (%s, 'globex'), (%s, 'initech')",
            [t.acme, t.globex, t.initech],
        )
        conn.execute(
            f"grant select, insert, update, delete on public.{name} to {db.app_role}, {db.platform_role}"
        )
        conn.execute(f"grant usage on sequence public.{name}_id_seq to {db.app_role}, {db.platform_role}")


def findings(dsn: str, obj: str) -> list[tuple[str, str, str]]:
    with connect(dsn) as conn:
        rows = conn.execute(
            "select severity, problem, hint from tenancy.check() where object = %s", [obj]
        ).fetchall()
    assert all(hint for _, _, hint in rows), rows
    return rows


def sqlstate_of(conn: psycopg.Connection, sql: str, params: list[object] | None = None) -> str | None:
    with pytest.raises(psycopg.Error) as exc:
        conn.execute(sql, params)
    return exc.value.sqlstate


def bodies(conn: psycopg.Connection, sql: str, params: list[object] | None = None) -> set[str]:
    return {r[0] for r in conn.execute(sql, params).fetchall()}


def past_the_guard(conn: psycopg.Connection, *ddl: str) -> None:
    """DDL with event triggers off (session_replication_role = replica, as a careless restore script
    runs): how a table registered by 0.1.0, or a guard-less script, gets what the guards refuse now."""
    conn.execute("set session_replication_role = replica")
    for sql in ddl:
        conn.execute(sql)
    conn.execute("set session_replication_role = origin")


# 1. a permissive policy of one's own


def test_a_permissive_policy_is_refused_and_its_leak_is_reported(db: Db) -> None:
    scoped_table(db, "perm")
    with connect(db.dba) as conn:
        assert sqlstate_of(conn, "create policy open_all on public.perm using (true)") == "TN006"
        assert (
            sqlstate_of(
                conn,
                "create policy tutorial on public.perm for select"
                " using (tenant_id = current_setting('app.tenant_id', true)::uuid)",
            )
            == "TN006"
        )
        conn.execute("create policy narrow on public.perm as restrictive using (body <> 'hidden')")
        # the leak the guard now stops: the tutorial's policy left in place
        past_the_guard(
            conn,
            "create policy tutorial on public.perm for select"
            " using (tenant_id = current_setting('app.tenant_id', true)::uuid)",
        )
    with connect(db.app) as conn:
        assert conn.execute("select count(*) from public.perm").fetchone() == (0,)
        conn.execute(
            "select set_config('app.tenant_id', %s, false)", [db.tree.initech]
        )  # any role may SET any custom setting
        assert bodies(conn, "select body from public.perm") == {"initech"}  # read without a context
    rows = findings(db.app, "public.perm")
    assert any(s == "error" and "permissive policy tutorial was not generated" in p for s, p, _ in rows), rows
    assert any(s == "info" and "restrictive policy narrow" in p for s, p, _ in rows), rows
    # refresh_policies keeps it (the upgrade script ends with it) but no longer silently
    notices: list[str] = []
    with connect(db.dba) as conn:
        conn.add_notice_handler(lambda d: notices.append(f"{d.severity_nonlocalized}: {d.message_primary}"))
        conn.execute("select tenancy.refresh_policies()")
    assert any(n.startswith("WARNING") and "tutorial" in n for n in notices), notices
    with connect(db.dba) as conn:
        conn.execute("drop policy tutorial on public.perm")
    assert not any("tutorial" in p for _, p, _ in findings(db.app, "public.perm"))


def test_register_table_refuses_a_table_with_a_permissive_policy(db: Db) -> None:
    with connect(db.dba) as conn:
        conn.execute("create table public.legacy (id int, tenant_id uuid)")
        conn.execute("create policy legacy_open on public.legacy using (true)")
        assert sqlstate_of(conn, "select tenancy.register_table('public.legacy')") == "TN006"
        assert conn.execute(
            "select count(*) from tenancy.scoped_tables where relid = 'public.legacy'::regclass"
        ).fetchone() == (0,)


# 2. an edited generated policy


def test_an_edited_generated_policy_is_reported_and_repaired(db: Db) -> None:
    scoped_table(db, "edited")
    with connect(db.dba) as conn:
        past_the_guard(conn, "alter policy tenancy_select on public.edited using (true)")
    with connect(db.app) as conn:
        assert len(bodies(conn, "select body from public.edited")) == 3  # no context, every row
    rows = findings(db.app, "public.edited")
    assert any(s == "error" and "tenancy_select was edited" in p for s, p, _ in rows), rows
    with connect(db.dba) as conn:
        conn.execute("select tenancy.refresh_policies()")
    with connect(db.app) as conn:
        assert conn.execute("select count(*) from public.edited").fetchone() == (0,)
    assert not any("edited" in p for _, p, _ in findings(db.app, "public.edited"))


# 3. TRUNCATE


def test_truncate_is_refused_below_tier_0_and_its_grant_reported(db: Db) -> None:
    scoped_table(db, "trunc")
    with connect(db.dba) as conn:
        conn.execute(f"grant truncate on public.trunc to {db.app_role}, {db.platform_role}")
    with connect(db.app) as conn:
        assert sqlstate_of(conn, "truncate public.trunc") == "TN006"
        conn.execute("select tenancy.set_tenant(%s)", [db.tree.brandsyncup])
        assert sqlstate_of(conn, "truncate public.trunc") == "TN006"
    with connect(db.platform) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [db.tree.acme])
        assert sqlstate_of(conn, "truncate public.trunc") == "TN006"  # a platform role, not at tier 0
    with connect(db.dba) as conn:
        assert conn.execute("select count(*) from public.trunc").fetchone() == (3,)
    rows = findings(db.app, "public.trunc")
    assert any(f"TRUNCATE is granted to {db.app_role}" in p for _, p, _ in rows), rows
    with connect(db.platform) as conn:  # the platform console at tier 0 may
        conn.execute("select tenancy.set_tenant(%s)", [db.tree.root])
        conn.execute("truncate public.trunc")
    with connect(db.dba) as conn:
        assert conn.execute("select count(*) from public.trunc").fetchone() == (0,)


# 4. materialized view over a chain of security_invoker views


def test_a_materialized_view_over_a_chain_of_views_is_reported(db: Db) -> None:
    scoped_table(db, "mvsrc")
    with connect(db.dba) as conn:
        conn.execute("create view public.mv_a with (security_invoker = true) as select * from public.mvsrc")
        conn.execute("create view public.mv_b with (security_invoker = true) as select * from public.mv_a")
        conn.execute("select tenancy.set_tenant(%s)", [db.tree.root])  # a refresh job at tier 0
        conn.execute("create materialized view public.mv_copy as select * from public.mv_b")
        conn.execute(f"grant select on public.mv_copy to {db.app_role}")
    with connect(db.app) as conn:
        assert len(bodies(conn, "select body from public.mv_copy")) == 3  # no context, every tenant
    rows = findings(db.app, "public.mv_copy")
    assert any(s == "error" and "through public.mv_a, public.mv_b" in p for s, p, _ in rows), rows


# 4. SECURITY DEFINER reaching a scoped table through an ordinary function


def test_a_security_definer_function_through_an_ordinary_one_is_reported(db: Db) -> None:
    scoped_table(db, "sdsrc")
    with connect(db.dba) as conn:
        conn.execute(
            "create function public.sd_inner() returns setof text language sql"
            " as $$ select body from public.sdsrc $$"
        )
        conn.execute(
            "create function public.sd_outer() returns setof text language sql security definer"
            " as $$ select * from public.sd_inner() $$"
        )
        conn.execute(f"grant execute on function public.sd_outer() to {db.app_role}")
    with connect(db.app) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [db.tree.acme])
        assert bodies(conn, "select body from public.sdsrc") == {"acme"}
        assert bodies(conn, "select public.sd_outer()") == {"acme", "globex", "initech"}
    rows = findings(db.app, "public.sd_outer()")
    assert any(s == "error" and "-> public.sd_inner()" in p for s, p, _ in rows), rows


# 4. a rule on another table that writes into a scoped table


def test_a_rule_writing_into_a_scoped_table_is_reported(db: Db) -> None:
    scoped_table(db, "rulesink")
    with connect(db.dba) as conn:
        conn.execute("create table public.rule_inbox (target uuid, body text)")
        conn.execute(
            "create rule inbox_fanout as on insert to public.rule_inbox do also"
            " insert into public.rulesink (tenant_id, body) values (new.target, new.body)"
        )
        conn.execute(f"grant insert on public.rule_inbox to {db.app_role}")
    with connect(db.app) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [db.tree.acme])
        assert (
            sqlstate_of(
                conn,
                "insert into public.rulesink (tenant_id, body) values (%s, 'direct')",
                [db.tree.initech],
            )
            == "42501"
        )
        conn.execute("insert into public.rule_inbox values (%s, 'planted')", [db.tree.initech])
    with connect(db.dba) as conn:  # the rule ran as the inbox's owner: past row-level security
        assert conn.execute(
            "select count(*) from public.rulesink where body = 'planted' and tenant_id = %s",
            [db.tree.initech],
        ).fetchone() == (1,)
    rows = findings(db.app, "inbox_fanout on public.rule_inbox")
    assert any(s == "error" and "DO ALSO ON INSERT" in p for s, p, _ in rows), rows


# 4. unique index (email) INCLUDE (tenant_id)


def test_a_unique_index_with_the_tenant_column_only_included_is_reported(db: Db) -> None:
    scoped_table(db, "emails", ", email text")
    with connect(db.dba) as conn:
        conn.execute("create unique index emails_email_key on public.emails (email) include (tenant_id)")
        conn.execute("update public.emails set email = body || '@example.com'")
    with connect(db.app) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [db.tree.acme])
        assert conn.execute("select count(*) from public.emails").fetchone() == (1,)
        # the existence oracle: acme learns that some other tenant has initech@example.com
        assert (
            sqlstate_of(
                conn, "insert into public.emails (body, email) values ('probe', 'initech@example.com')"
            )
            == "23505"
        )
    rows = findings(db.app, "public.emails_email_key")
    assert any("among its key columns" in p for _, p, _ in rows), rows


# 4. a SECURITY DEFINER wrapper of set_tenant


def test_a_security_definer_wrapper_of_set_tenant_is_reported(db: Db) -> None:
    scoped_table(db, "platform_rows")
    with connect(db.dba) as conn:
        conn.execute(
            "create function public.enter_tenant(t uuid) returns uuid language sql security definer"
            " as $$ select tenancy.set_tenant(t) $$"
        )
        conn.execute(f"grant execute on function public.enter_tenant(uuid) to {db.app_role}")
    with connect(db.app) as conn:
        assert sqlstate_of(conn, "select tenancy.set_tenant(%s)", [db.tree.root]) == "TN007"
        # set_tenant asks the roles of the login, not of the wrapper's owner: the customer-serving
        # login does not get the platform's context through it (docs/decisions/0002)
        assert sqlstate_of(conn, "select public.enter_tenant(%s)", [db.tree.root]) == "TN007"
        assert conn.execute("select tenancy.current_tier()").fetchone() == (None,)
    rows = findings(db.app, "public.enter_tenant(uuid)")
    assert any(s == "error" and "tier-0" in p for s, p, _ in rows), rows


# 5. the owner finding


def test_the_owner_finding_is_right_for_superusers_and_owners(db: Db) -> None:
    owner = f"leak_owner_{secrets.token_hex(3)}"
    with connect(db.dba) as conn:
        conn.execute(f"create role {owner} login password 'leaks'")
        conn.execute(f"grant usage on schema tenancy to {owner}")
        conn.execute(f"select tenancy.grant_app('{owner}')")
        conn.execute("create table public.owned (id int, tenant_id uuid)")
        conn.execute(f"alter table public.owned owner to {owner}")
        conn.execute("select tenancy.register_table('public.owned')")
    try:
        assert not any("owns" in p for _, p, _ in findings(db.dba, "public.owned"))
        as_owner = f"{db.dba} user={owner} password=leaks"
        assert any(f"{owner} owns this scoped table" in p for _, p, _ in findings(as_owner, "public.owned"))
    finally:
        with connect(db.dba) as conn:
            conn.execute("drop table public.owned")
            conn.execute(f"drop owned by {owner}")
            conn.execute(f"drop role {owner}")


# 6. DROP EXTENSION with registered tables


def test_drop_extension_is_refused_while_tables_are_registered(server_dsn: str) -> None:
    name = f"tenancy_dropext_{secrets.token_hex(4)}"
    with connect(server_dsn) as conn:
        conn.execute(f"create database {name}")
    dsn = f"{server_dsn} dbname={name}"
    try:
        with connect(dsn) as conn:
            conn.execute("set client_min_messages = warning")
            conn.execute("create extension tenancy cascade")
            conn.execute("create table public.kept (id int, tenant_id uuid)")
            conn.execute("select tenancy.register_table('public.kept')")
            for sql in (
                "drop extension tenancy cascade",
                "drop extension if exists tenancy",
                "drop schema tenancy cascade",
            ):
                with pytest.raises(psycopg.Error) as exc:
                    conn.execute(sql)
                assert exc.value.sqlstate == "TN006", sql
                assert "unregister_table" in (exc.value.diag.message_hint or "")
            assert (
                conn.execute(
                    "select count(*) from pg_policy where polrelid = 'public.kept'::regclass"
                ).fetchone()[0]
                > 0
            )
            conn.execute("select tenancy.unregister_table(relid) from tenancy.scoped_tables")
            conn.execute("drop extension tenancy cascade")
            row = conn.execute(
                "select relrowsecurity, relforcerowsecurity,"
                " (select count(*) from pg_trigger where tgrelid = c.oid)"
                " from pg_class c where oid = 'public.kept'::regclass"
            ).fetchone()
            assert row == (False, False, 0)  # an ordinary table again
    finally:
        with connect(server_dsn) as conn:
            conn.execute(f"drop database if exists {name} with (force)")


# What tenancy does not protect against (README "Security"): the side channels are real, as documented


def test_the_documented_side_channels_are_real(db: Db) -> None:
    scoped_table(db, "sidech")
    with connect(db.app) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [db.tree.acme])
        conn.execute("set enable_indexscan = off")
        conn.execute("set enable_bitmapscan = off")
        row = conn.execute("explain (analyze, costs off, format json) select * from public.sidech").fetchone()
        assert row is not None
        plan = row[0][0]["Plan"]
        assert plan["Actual Rows"] == 1  # acme's own row
        assert plan["Rows Removed by Filter"] == 2  # the other tenants' rows, counted
        # a shared sequence: the gap between acme's ids counts the others' inserts
        first = conn.execute("insert into public.sidech (body) values ('a1') returning id").fetchone()
    with connect(db.dba) as conn:
        conn.execute(
            "insert into public.sidech (tenant_id, body) values (%s, 'g1'), (%s, 'g2')",
            [db.tree.globex, db.tree.globex],
        )
    with connect(db.app) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [db.tree.acme])
        second = conn.execute("insert into public.sidech (body) values ('a2') returning id").fetchone()
    assert first is not None and second is not None and second[0] - first[0] == 3


def test_check_says_so_where_it_cannot_compare_expressions(db: Db) -> None:
    scoped_table(db, "readonly")
    with connect(db.app) as conn, conn.transaction():
        conn.execute("set transaction read only")  # as on a hot standby: no temporary tables
        rows = conn.execute(
            "select severity, problem from tenancy.check() where object = 'tenancy.check()'"
        ).fetchall()
    assert rows and rows[0][0] == "warning" and "could not be compared" in rows[0][1], rows
