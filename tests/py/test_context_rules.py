"""SPEC 2's exact context rules (v0.2), attacked as the application role: the 0.1.0 attacks fail."""

from __future__ import annotations

import psycopg
import pytest
from tenancy_testlib import Tree, audit_lines, connect, force_parallel


def test_local_token_dies_with_its_transaction(app_dsn: str, tree: Tree) -> None:
    """A transaction context copied into the next transaction is no context; within one simple-Query
    message two transactions share their start time, the documented exception of SPEC v0.3 §2
    (docs/decisions/0002-context-core-v3.md)."""
    with connect(app_dsn) as conn:
        conn.execute(
            "begin; select tenancy.set_tenant(%s, true);"
            " select set_config('x.tok', current_setting('tenancy.ctx'), false); commit;"
            % ("'" + tree.acme + "'")
        )
        conn.execute("begin")
        conn.execute("select set_config('tenancy.ctx', current_setting('x.tok'), true)")
        assert conn.execute("select tenancy.current_tenant()").fetchone() == (None,)
        conn.execute("commit")
        conn.execute(
            "begin; select tenancy.set_tenant(%s, true);"
            " select set_config('x.tok', current_setting('tenancy.ctx'), false); commit;"
            " begin; select set_config('tenancy.ctx', current_setting('x.tok'), true);"
            " select set_config('x.seen', coalesce(tenancy.current_tenant()::text, 'none'), false); commit;"
            % ("'" + tree.acme + "'")
        )
        assert conn.execute("select current_setting('x.seen')").fetchone()[0] == tree.acme


def test_rollback_to_savepoint_in_the_first_call_of_a_backend(app_dsn: str, tree: Tree) -> None:
    with connect(app_dsn) as conn:
        conn.execute("begin")
        conn.execute("savepoint s")
        conn.execute("select tenancy.set_tenant(%s)", [tree.acme])
        conn.execute("rollback to savepoint s")
        assert conn.execute("select tenancy.current_tenant()").fetchone() == (None,)
        conn.execute("commit")
        assert conn.execute("select tenancy.current_tenant()").fetchone() == (None,)


def test_rolled_back_transaction_context_is_no_forgery(app_dsn: str, tree: Tree, log_offset: int) -> None:
    with connect(app_dsn) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [tree.acme])
        conn.execute("begin")
        conn.execute("select tenancy.set_tenant(%s)", [tree.brandsyncup])
        conn.execute("rollback")
        assert str(conn.execute("select tenancy.current_tenant()").fetchone()[0]) == tree.acme
    assert not [line for line in audit_lines(log_offset) if line["event"] == "forged_context"]


def test_enter_tenant_called_directly_gives_no_more_than_set_tenant(app_dsn: str, tree: Tree) -> None:
    """_enter_tenant (SECURITY DEFINER) answered for a role the login cannot act as is answered for
    the login: claiming to be a superuser gets no tier-0 context."""
    with connect(app_dsn) as conn:
        res = conn.execute(
            "select tenancy._enter_tenant(%s, false, 'postgres', 'set_tenant')", [tree.root]
        ).fetchone()[0]
        assert res[0] == "TN007"
        res = conn.execute(
            "select tenancy._enter_tenant(%s, false, 'postgres', 'set_tenant')", [tree.acme]
        ).fetchone()[0]
        assert len(res) == 2 and res[1] == "2"  # a token, which set_tenant would have set


def test_suspension_seen_at_once_even_in_repeatable_read(app_dsn: str, tenancy_db: str, tree: Tree) -> None:
    with connect(app_dsn) as app, connect(tenancy_db) as dba:
        app.execute("select tenancy.set_tenant(%s)", [tree.initech])
        app.execute("begin isolation level repeatable read")
        app.execute("select 1 from tenancy.domain_mappings limit 1")  # the snapshot is taken here
        dba.execute("update tenancy.tenants set status = 'suspended' where id = %s", [tree.initech])
        try:
            with pytest.raises(psycopg.Error) as err:
                app.execute("select tenancy.set_tenant(%s, true)", [tree.initech])
            assert err.value.sqlstate in ("40001", "TN002")
            app.execute("rollback")
            with pytest.raises(psycopg.Error) as err:
                app.execute("select tenancy.set_tenant(%s, true)", [tree.initech])
            assert err.value.sqlstate == "TN002"
        finally:
            dba.execute("update tenancy.tenants set status = 'active' where id = %s", [tree.initech])


def test_forged_token_under_parallel_mode_leaves_the_backend_usable(app_dsn: str, tree: Tree) -> None:
    with connect(app_dsn) as conn:
        force_parallel(conn)
        conn.execute("select set_config('tenancy.ctx', %s, false)", ["f" * 32])
        assert conn.execute("select count(*) from tenancy.tenants").fetchone()[0] == 0
        assert str(conn.execute("select tenancy.set_tenant(%s)", [tree.acme]).fetchone()[0]) == tree.acme


def test_role_changes_are_seen_at_the_next_set_tenant(server_dsn: str, tenancy_db: str, tree: Tree) -> None:
    """The strict and tier-0 checks ask PostgreSQL's membership cache (pg_has_role) at every call: a
    grant or revoke made while a login is connected applies to its very next set_tenant."""
    role = "tenancy_rules_member"
    with connect(tenancy_db) as dba:
        dba.execute(f"create role {role} login password 'x'")
        dba.execute("select tenancy.grant_platform(%s)", [role])
    try:
        with connect(f"{tenancy_db} user={role} password=x") as conn, connect(tenancy_db) as dba:
            conn.execute("select tenancy.set_tenant(%s)", [tree.root])
            conn.execute("select tenancy.set_tenant(%s)", [tree.acme])
            dba.execute(f"revoke tenancy_platform from {role}")
            with pytest.raises(psycopg.Error) as err:
                conn.execute("select tenancy.set_tenant(%s)", [tree.root])
            assert err.value.sqlstate == "TN007"
            dba.execute("select tenancy.grant_app(%s, strict => true)", [role])
            with pytest.raises(psycopg.Error) as err:
                conn.execute("select tenancy.set_tenant(%s, true)", [tree.acme])
            assert err.value.sqlstate == "TN007" and "strict" in str(err.value)
            dba.execute(f"revoke tenancy_strict from {role}")
            assert str(conn.execute("select tenancy.set_tenant(%s)", [tree.acme]).fetchone()[0]) == tree.acme
    finally:
        with connect(tenancy_db) as dba:
            dba.execute(f"drop owned by {role}")
            dba.execute(f"drop role {role}")
