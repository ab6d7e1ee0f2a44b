"""check()'s comparison of the generated policies' expressions, made once per kind of table (issue 23):
tables whose generated definitions differ only by their own name share one temporary copy, and each
member is still compared with ITS expected text (its policies deparsed through a relation with the
same column names). An edit of any member (not only the kind's first),
an edit that names another table of the kind, and an edit of a partition are reported; tables with
awkward names and tables of other kinds are not reported by mistake."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from tenancy_testlib import connect


@pytest.fixture(scope="module")
def dba(server_dsn: str) -> Iterator[str]:
    name = f"tenancy_drift_{secrets.token_hex(4)}"
    with connect(server_dsn) as conn:
        conn.execute(f"create database {name}")
    dsn = f"{server_dsn} dbname={name}"
    with connect(dsn) as conn:
        conn.execute("set client_min_messages = warning")
        conn.execute("create extension tenancy cascade")
        for schema in ("s1", "s2", "s3"):
            conn.execute(f"create schema {schema}")
            for table in ("projects", "tasks"):
                conn.execute(f"create table {schema}.{table} (id serial, tenant_id uuid not null, body text)")
                conn.execute("select tenancy.register_table(%s)", [f"{schema}.{table}"])
        # other kinds: another tenant column, another write scope, shared rows
        conn.execute("create table s1.owned_by (id int, org uuid)")
        conn.execute("select tenancy.register_table('s1.owned_by', tenant_column => 'org')")
        conn.execute("create table s1.wide (id int, tenant_id uuid)")
        conn.execute(
            "select tenancy.register_table('s1.wide', write_scope => 'visible', shared_rows => true)"
        )
        # names a regclass literal must quote
        conn.execute("""create table s2."it's" (tenant_id uuid)""")
        conn.execute("""select tenancy.register_table('s2."it''s"')""")
        conn.execute("""create table s2."back\\slash" (tenant_id uuid)""")
        conn.execute("""select tenancy.register_table('s2."back\\slash"')""")
        # the same kind with other column layouts: the tenant column elsewhere, a dropped column
        # before it (deparsed through a relation with the same column names, never another layout)
        conn.execute("create table s1.swapped (tenant_id uuid not null, id serial, body text)")
        conn.execute("select tenancy.register_table('s1.swapped')")
        conn.execute("create table s2.dropped (x int, tenant_id uuid not null, body text)")
        conn.execute("alter table s2.dropped drop column x")
        conn.execute("select tenancy.register_table('s2.dropped')")
        # a partitioned table: its partitions carry the root's policies
        conn.execute(
            "create table s3.events (tenant_id uuid not null, at date not null) partition by range (at)"
        )
        conn.execute(
            "create table s3.events_2026 partition of s3.events"
            " for values from ('2026-01-01') to ('2027-01-01')"
        )
        conn.execute("select tenancy.register_table('s3.events')")
    yield dsn
    with connect(server_dsn) as conn:
        conn.execute(f"drop database if exists {name} with (force)")


def edited(dsn: str) -> set[tuple[str, str]]:
    with connect(dsn) as conn:
        rows = conn.execute(
            "select object, problem from tenancy.check() where problem ~ 'was edited'"
        ).fetchall()
    return {(obj, problem.split(" was edited")[0].removeprefix("generated policy ")) for obj, problem in rows}


def past_the_guard(conn: psycopg.Connection, ddl: str) -> None:
    conn.execute("set session_replication_role = replica")
    try:
        conn.execute(ddl)
    finally:
        conn.execute("set session_replication_role = origin")


def test_a_clean_fleet_of_kinds_has_no_finding(dba: str) -> None:
    assert edited(dba) == set()
    with connect(dba) as conn:
        # the whole comparison: every registered table's policies, with a temporary copy per kind
        assert conn.execute("select count(*) from tenancy._policy_drift()").fetchone() == (0,)


@pytest.mark.parametrize(
    ("table", "policy", "ddl"),
    [
        # a member that is not the kind's first
        ("s3.tasks", "tenancy_select", "alter policy tenancy_select on s3.tasks using (true)"),
        # its own name swapped for another member's: the literal is replaced on the expected side only
        (
            "s2.tasks",
            "tenancy_insert",
            "alter policy tenancy_insert on s2.tasks with check"
            " (tenant_id = (select tenancy._policy_write_tenant('s1.tasks'::regclass)))",
        ),
        ("s3.events_2026", "tenancy_delete", "alter policy tenancy_delete on s3.events_2026 using (false)"),
        (
            "s1.owned_by",
            "tenancy_update",
            "alter policy tenancy_update on s1.owned_by using (org is not null)",
        ),
        (
            "s2.dropped",
            "tenancy_select",
            "alter policy tenancy_select on s2.dropped using (body is not null)",
        ),
        ("s1.swapped", "tenancy_delete", "alter policy tenancy_delete on s1.swapped using (id > 0)"),
        (
            's2."it\'s"',
            "tenancy_platform_select",
            """alter policy tenancy_platform_select on s2."it's" using (true)""",
        ),
    ],
)
def test_an_edit_of_any_member_is_reported_for_that_table_only(
    dba: str, table: str, policy: str, ddl: str
) -> None:
    with connect(dba) as conn:
        past_the_guard(conn, ddl)
    try:
        assert edited(dba) == {(table, policy)}
    finally:
        with connect(dba) as conn:
            conn.execute("select tenancy.refresh_policies()")
    assert edited(dba) == set()
