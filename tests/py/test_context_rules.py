"""SPEC 2's exact context rules (v0.2), attacked as the application role: the 0.1.0 attacks fail."""

from __future__ import annotations

import psycopg
import pytest
from tenancy_testlib import Tree, audit_lines, connect


def test_local_token_dies_with_its_transaction_in_one_message(app_dsn: str, tree: Tree) -> None:
    with connect(app_dsn) as conn:
        conn.execute(
            "begin; select tenancy.set_tenant(%s, true);"
            " select set_config('x.tok', current_setting('tenancy.ctx'), false); commit;"
            " begin; select set_config('tenancy.ctx', current_setting('x.tok'), true);"
            " select set_config('x.seen', coalesce(tenancy.current_tenant()::text, 'none'), false); commit;"
            % ("'" + tree.acme + "'")
        )
        assert conn.execute("select current_setting('x.seen')").fetchone()[0] == "none"


def test_rolled_back_transaction_context_is_no_forgery(app_dsn: str, tree: Tree, log_offset: int) -> None:
    with connect(app_dsn) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [tree.acme])
        conn.execute("begin")
        conn.execute("select tenancy.set_tenant(%s)", [tree.brandsyncup])
        conn.execute("rollback")
        assert str(conn.execute("select tenancy.current_tenant()").fetchone()[0]) == tree.acme
    assert not [line for line in audit_lines(log_offset) if line["event"] == "forged_context"]


def test_tenant_info_refuses_direct_calls(app_dsn: str, tree: Tree) -> None:
    with connect(app_dsn) as conn, pytest.raises(psycopg.Error) as err:
        conn.execute("select * from tenancy._tenant_info(%s, 'guess', '0')", [tree.brandsyncup])
    assert err.value.sqlstate == "42501"


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
        conn.execute("set force_parallel_mode = on")
        conn.execute("select set_config('tenancy.ctx', %s, false)", ["f" * 32])
        assert conn.execute("select count(*) from tenancy.tenants").fetchone()[0] == 0
        assert str(conn.execute("select tenancy.set_tenant(%s)", [tree.acme]).fetchone()[0]) == tree.acme
