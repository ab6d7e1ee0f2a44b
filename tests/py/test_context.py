"""Tenant context over real connections as an application role (not a superuser)."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors
from tenancy_testlib import Tree, audit_lines, connect


def ctx(conn: psycopg.Connection) -> tuple[str | None, int | None]:
    row = conn.execute("select tenancy.current_tenant()::text, tenancy.current_tier()").fetchone()
    assert row is not None
    return row[0], row[1]


def visible_slugs(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute("select slug from tenancy.tenants")}


CONTEXT_SETTINGS = ("tenancy.ctx",)


def settings(conn: psycopg.Connection) -> dict[str, str]:
    """The context settings as they are now (placeholders are not listed in pg_settings)."""
    out = {}
    for name in CONTEXT_SETTINGS:
        row = conn.execute("select current_setting(%s, true)", [name]).fetchone()
        out[name] = row[0] if row and row[0] is not None else ""
    return out


def test_app_role_is_not_privileged(app_dsn: str) -> None:
    with connect(app_dsn) as conn:
        row = conn.execute(
            "select rolsuper, rolbypassrls from pg_roles where rolname = current_user"
        ).fetchone()
        assert row == (False, False)


def test_no_context_sees_nothing(app_dsn: str) -> None:
    with connect(app_dsn) as conn:
        assert ctx(conn) == (None, None)
        assert visible_slugs(conn) == set()


def test_session_context_persists_across_transactions(app_dsn: str, tree: Tree) -> None:
    with connect(app_dsn) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [tree.brandsyncup])
        assert ctx(conn) == (tree.brandsyncup, 1)
        assert visible_slugs(conn) == {"brandsyncup", "acme", "globex", "dormant"}
        conn.execute("select 1")
        assert ctx(conn) == (tree.brandsyncup, 1)


def test_local_context_ends_with_the_transaction_and_session_comes_back(app_dsn: str, tree: Tree) -> None:
    with connect(app_dsn) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [tree.brandsyncup])
        with conn.transaction():
            conn.execute("select tenancy.set_tenant(%s, local => true)", [tree.acme])
            assert ctx(conn) == (tree.acme, 2)
            assert visible_slugs(conn) == {"acme"}
        assert ctx(conn) == (tree.brandsyncup, 1), "the session context is back intact after commit"
        with pytest.raises(errors.DivisionByZero), conn.transaction():
            conn.execute("select tenancy.set_tenant(%s, local => true)", [tree.initech])
            conn.execute("select 1/0")
        assert ctx(conn) == (tree.brandsyncup, 1), "and after rollback"


def test_local_context_without_session_context(app_dsn: str, tree: Tree) -> None:
    with connect(app_dsn) as conn:
        with conn.transaction():
            conn.execute("select tenancy.set_tenant(%s, true)", [tree.initech])
            assert ctx(conn) == (tree.initech, 2)
        assert ctx(conn) == (None, None)


def test_reset_tenant(app_dsn: str, tree: Tree) -> None:
    with connect(app_dsn) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [tree.acme])
        conn.execute("select tenancy.reset_tenant()")
        assert ctx(conn) == (None, None)
        assert visible_slugs(conn) == set()


@pytest.mark.parametrize(
    ("tenant_attr", "sqlstate"),
    [("root", "TN007"), ("suspended", "TN002")],
)
def test_refusals_carry_their_sqlstate(app_dsn: str, tree: Tree, tenant_attr: str, sqlstate: str) -> None:
    with connect(app_dsn) as conn:
        with pytest.raises(psycopg.Error) as exc:
            conn.execute("select tenancy.set_tenant(%s)", [getattr(tree, tenant_attr)])
        assert exc.value.sqlstate == sqlstate
        assert getattr(tree, tenant_attr) in str(exc.value), "the message names the tenant"


def test_unknown_tenant_is_tn001(app_dsn: str) -> None:
    with connect(app_dsn) as conn, pytest.raises(psycopg.Error) as exc:
        conn.execute("select tenancy.set_tenant('00000000-0000-0000-0000-00000000dead')")
    assert exc.value.sqlstate == "TN001"


def test_platform_role_takes_tier0(platform_dsn: str, tree: Tree) -> None:
    with connect(platform_dsn) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [tree.root])
        assert ctx(conn) == (tree.root, 0)
        assert len(visible_slugs(conn)) == len(tree.all())


def test_refused_set_tenant_keeps_the_previous_context(app_dsn: str, tree: Tree) -> None:
    with connect(app_dsn) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [tree.acme])
        with pytest.raises(psycopg.Error):
            conn.execute("select tenancy.set_tenant(%s)", [tree.suspended])
        assert ctx(conn) == (tree.acme, 2)


# --- forgery ----------------------------------------------------------------------------------


def test_hand_written_setting_is_no_context(app_dsn: str, tree: Tree) -> None:
    with connect(app_dsn) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [tree.acme])
        for name in CONTEXT_SETTINGS:
            conn.execute("select set_config(%s, %s, false)", [name, "f" * 32])
        assert ctx(conn) == (None, None)
        assert visible_slugs(conn) == set()


def test_settings_copied_from_another_session_are_no_context(app_dsn: str, tree: Tree) -> None:
    with connect(app_dsn) as victim, connect(app_dsn) as attacker:
        victim.execute("select tenancy.set_tenant(%s)", [tree.brandsyncup])
        stolen = settings(victim)
        assert any(stolen.values())
        attacker.execute("select tenancy.set_tenant(%s)", [tree.initech])
        for name, value in stolen.items():
            attacker.execute("select set_config(%s, %s, false)", [name, value])
        assert ctx(attacker) == (None, None)
        assert visible_slugs(attacker) == set()


def test_fresh_session_with_copied_settings_is_no_context(app_dsn: str, tree: Tree) -> None:
    with connect(app_dsn) as victim, connect(app_dsn) as attacker:
        victim.execute("select tenancy.set_tenant(%s)", [tree.brandsyncup])
        for name, value in settings(victim).items():
            attacker.execute("select set_config(%s, %s, false)", [name, value])
        assert ctx(attacker) == (None, None)
        assert visible_slugs(attacker) == set()


def test_replay_after_reset_is_no_context(app_dsn: str, tree: Tree) -> None:
    with connect(app_dsn) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [tree.brandsyncup])
        captured = settings(conn)
        conn.execute("select tenancy.reset_tenant()")
        for name, value in captured.items():
            conn.execute("select set_config(%s, %s, false)", [name, value])
        assert ctx(conn) == (None, None)
        assert visible_slugs(conn) == set()


def test_a_value_postgresql_can_restore_stays_a_context_of_its_session(app_dsn: str, tree: Tree) -> None:
    """docs/decisions/0002: an earlier session context of this very session, set again by hand, is the
    context it was (PostgreSQL puts such values back on rollback: they are never forgeries); a value
    of another session, or made up, is none."""
    with connect(app_dsn) as conn, connect(app_dsn) as other:
        conn.execute("select tenancy.set_tenant(%s)", [tree.brandsyncup])
        captured = settings(conn)
        conn.execute("select tenancy.set_tenant(%s)", [tree.initech])
        for name, value in captured.items():
            conn.execute("select set_config(%s, %s, false)", [name, value])
        assert ctx(conn) == (tree.brandsyncup, 1)
        for name, value in captured.items():
            other.execute("select set_config(%s, %s, false)", [name, value])
        assert ctx(other) == (None, None)


def test_replay_of_a_local_context_in_a_later_transaction(app_dsn: str, tree: Tree) -> None:
    with connect(app_dsn) as conn:
        with conn.transaction():
            conn.execute("select tenancy.set_tenant(%s, true)", [tree.brandsyncup])
            captured = settings(conn)
        with conn.transaction():
            for name, value in captured.items():
                conn.execute("select set_config(%s, %s, true)", [name, value])
            assert ctx(conn) == (None, None)
            assert visible_slugs(conn) == set()


def test_an_earlier_local_context_of_the_same_transaction_is_restorable(app_dsn: str, tree: Tree) -> None:
    """ROLLBACK TO SAVEPOINT puts an earlier transaction context back: within its transaction it stays
    a context; the next transaction cannot use it."""
    with connect(app_dsn) as conn:
        with conn.transaction():
            conn.execute("select tenancy.set_tenant(%s, true)", [tree.brandsyncup])
            conn.execute("savepoint s")
            conn.execute("select tenancy.set_tenant(%s, true)", [tree.initech])
            assert ctx(conn) == (tree.initech, 2)
            conn.execute("rollback to savepoint s")
            assert ctx(conn) == (tree.brandsyncup, 1)
            captured = settings(conn)
        with conn.transaction():
            for name, value in captured.items():
                conn.execute("select set_config(%s, %s, true)", [name, value])
            assert ctx(conn) == (None, None)


def test_public_cannot_execute_context_setters(app_dsn: str) -> None:
    with connect(app_dsn) as conn:
        rows = conn.execute(
            """select p.oid::regprocedure::text from pg_proc p
               where p.pronamespace = 'tenancy'::regnamespace
                 and has_function_privilege('public', p.oid, 'execute')
                 and p.proname in ('set_tenant', '_set_tenant', 'set_tenant_for_domain')"""
        ).fetchall()
        assert rows == []


# --- audit ------------------------------------------------------------------------------------


def test_refused_context_is_audited_and_survives_rollback(app_dsn: str, tree: Tree, log_offset: int) -> None:
    with connect(app_dsn) as conn:
        with pytest.raises(psycopg.Error), conn.transaction():
            conn.execute("select tenancy.set_tenant(%s)", [tree.root])
        lines = [line for line in audit_lines(log_offset) if line["event"] == "refused_context"]
    assert lines, "a refused set_tenant leaves a TENANCY_AUDIT line"
    line = lines[-1]
    assert line["sqlstate"] == "TN007"
    assert tree.root in str(line["asked"])
    assert {"time", "role", "pid", "client_addr", "asked", "reason"} <= set(line)
    assert str(line["role"]).startswith("tenancy_app_")


def test_forged_context_is_audited(app_dsn: str, tree: Tree, log_offset: int) -> None:
    with connect(app_dsn) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [tree.acme])
        conn.execute("select set_config('tenancy.ctx', %s, false)", ["0" * 32])
        assert ctx(conn) == (None, None)
    lines = [line for line in audit_lines(log_offset) if line["event"] == "forged_context"]
    assert lines and "0" * 32 in str(lines[-1]["asked"])
