"""Context core v3 (docs/decisions/0002-0004): markings that keep PL/Python out of parallel mode, the
two set_tenant warnings, the audit of forged values, and REPEATABLE READ."""

from __future__ import annotations

import re

import psycopg
import pytest
from tenancy_testlib import Tree, audit_lines, connect

CALL = re.compile(r"tenancy\.([a-z_][a-z0-9_]*)\s*\(")
STRING = re.compile(r"'(?:[^']|'')*'")


def test_no_function_that_may_run_plpython_sql_is_marked_parallel_safe_or_restricted(tenancy_db: str) -> None:
    """A PL/Python function that may run SQL (plpy.execute, or the boot of the modules) must be
    PARALLEL UNSAFE; a function marked SAFE or RESTRICTED may call only functions marked so too, so
    by induction nothing reachable from a parallel-mode query runs PL/Python's SPI."""
    with connect(tenancy_db) as conn:
        rows = conn.execute(
            "select p.proname, l.lanname, p.proparallel, p.prosrc from pg_proc p"
            " join pg_language l on l.oid = p.prolang where p.pronamespace = 'tenancy'::regnamespace"
        ).fetchall()
    marking: dict[str, set[str]] = {}
    for name, _, par, _ in rows:
        marking.setdefault(name, set()).add(par)
    bad = []
    for name, lang, par, src in rows:
        if par == "u":
            continue
        if lang == "plpython3u" and ("plpy.execute" in src or "_py_boot" in src or "plpy.prepare" in src):
            bad.append(f"{name}: PL/Python with SQL marked {par}")
        for called in set(CALL.findall(src if lang == "plpython3u" else STRING.sub("''", src))):
            if "u" in marking.get(called, set()):
                bad.append(f"{name} (marked {par}) calls tenancy.{called}, which is PARALLEL UNSAFE")
    assert not bad, bad


def test_verifiers_are_restricted_so_scans_may_still_run_in_parallel(tenancy_db: str) -> None:
    with connect(tenancy_db) as conn:
        rows = dict(
            conn.execute(
                "select p.proname, p.proparallel from pg_proc p"
                " where p.pronamespace = 'tenancy'::regnamespace"
                " and p.proname in ('_ctx', '_ctx_visible', '_ctx_root', '_ctx_customer',"
                " '_ctx_customer_else', '_ctx_forged',"
                " '_ctx_forged_audit', '_plan_shape')"
            ).fetchall()
        )
    assert rows == {
        "_ctx": "r",
        "_ctx_visible": "r",
        "_ctx_root": "r",
        "_ctx_customer": "r",
        "_ctx_customer_else": "r",
        "_ctx_forged": "r",
        "_ctx_forged_audit": "r",
        "_plan_shape": "r",
    }


def test_no_ctypes_and_no_file_writes_in_the_server_side_python() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "plpython"
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "ctypes" not in text.replace("no ctypes", ""), path
        assert not re.search(r"\bopen\(|os\.(replace|rename|write|open)\(", text), path


class Notice:
    """What a notice said (psycopg's Diagnostic is valid only inside the handler)."""

    def __init__(self, d: psycopg.errors.Diagnostic) -> None:
        self.severity_nonlocalized = d.severity_nonlocalized
        self.message_primary = d.message_primary
        self.message_hint = d.message_hint


def _notices(conn: psycopg.Connection) -> list[Notice]:
    got: list[Notice] = []
    conn.add_notice_handler(lambda d: got.append(Notice(d)))
    return got


def test_local_context_outside_a_transaction_block_warns(app_dsn: str, tree: Tree) -> None:
    with connect(app_dsn) as conn:
        conn.autocommit = True
        got = _notices(conn)
        conn.pgconn.exec_(f"select tenancy.set_tenant('{tree.acme}', true)".encode())  # the simple protocol
        warnings = [d for d in got if d.severity_nonlocalized == "WARNING"]
        assert len(warnings) == 1
        assert warnings[0].message_primary == (
            f"set_tenant({tree.acme}, local => true) outside a transaction block: "
            "the context ends with this statement"
        )
        assert "BEGIN" in (warnings[0].message_hint or "")
        assert conn.execute("select tenancy.current_tenant()").fetchone() == (None,)
        got.clear()
        with conn.transaction():
            conn.pgconn.exec_(f"select tenancy.set_tenant('{tree.acme}', true)".encode())
        assert not [d for d in got if d.severity_nonlocalized == "WARNING"]


def test_a_role_that_bypasses_rls_is_warned(tenancy_db: str, tree: Tree) -> None:
    with connect(tenancy_db) as conn:  # a superuser
        got = _notices(conn)
        conn.execute("select tenancy.set_tenant(%s)", [tree.acme])
        warnings = [d for d in got if d.severity_nonlocalized == "WARNING"]
        assert len(warnings) == 1
        assert "bypasses row-level security" in (warnings[0].message_primary or "")
        assert "every row of every tenant stays visible" in (warnings[0].message_primary or "")
        assert "grant_app" in (warnings[0].message_hint or "")


def test_an_application_role_is_not_warned(app_dsn: str, tree: Tree) -> None:
    with connect(app_dsn) as conn:
        got = _notices(conn)
        conn.execute("select tenancy.set_tenant(%s)", [tree.acme])
        with conn.transaction():
            conn.execute("select tenancy.set_tenant(%s, true)", [tree.initech])
        assert not [d for d in got if d.severity_nonlocalized == "WARNING"]


def test_every_distinct_forged_value_has_its_own_line_with_identity(
    app_dsn: str, tree: Tree, log_offset: int
) -> None:
    values = [f"{i:032x}" for i in range(30)]
    with connect(app_dsn) as conn:
        conn.execute("set application_name = 'forger'")
        for value in values:  # a fresh backend: nothing was ever booted in it
            conn.execute("select set_config('tenancy.ctx', %s, false)", [value])
            assert conn.execute("select count(*) from tenancy.tenants").fetchone() == (0,)
    lines = [line for line in audit_lines(log_offset) if line["event"] == "forged_context"]
    seen = {line["asked"].split("=", 1)[1] for line in lines}
    assert seen == set(values)
    role = app_dsn.rsplit("user=", 1)[1].split()[0]
    for line in lines:
        assert line["role"] == role and line["session_user"] == role
        assert line["database"] and line["application_name"] == "forger"
        assert "client_addr" in line


def test_forged_value_in_parallel_mode_as_a_first_call(
    app_dsn: str, tree: Tree, parallel_settings: list[str]
) -> None:
    """The crash of issue 21: a backend's first tenancy call in parallel mode, twice, from every
    verifier; the connection survives and answers."""
    for sql in (
        "select tenancy._ctx('', 0)",
        "select tenancy.current_tenant()",
        "select count(*) from tenancy.tenants",
        "select tenancy._ctx_visible('x', 0)",
        "select tenancy._ctx_customer('x', 0)",
    ):
        with connect(app_dsn) as conn:
            for setting in parallel_settings:
                conn.execute(setting)
            conn.execute("select set_config('tenancy.ctx', 'forged', false)")
            for _ in range(3):
                conn.execute(sql).fetchall()
            assert conn.execute("select 1").fetchone() == (1,)
            conn.execute("select tenancy.set_tenant(%s)", [tree.acme])
            assert str(conn.execute("select tenancy.current_tenant()").fetchone()[0]) == tree.acme


@pytest.fixture
def parallel_settings(server_dsn: str) -> list[str]:
    with connect(server_dsn) as conn:
        major = int(conn.execute("show server_version_num").fetchone()[0]) // 10000
    force = "force_parallel_mode" if major < 16 else "debug_parallel_query"
    return [
        f"set {force} = on",
        "set parallel_setup_cost = 0",
        "set parallel_tuple_cost = 0",
        "set min_parallel_table_scan_size = 0",
    ]


def test_repeatable_read_refuses_a_snapshot_older_than_a_reparenting(
    app_dsn: str, tenancy_db: str, tree: Tree
) -> None:
    """A customer moved away from its partner after the transaction's snapshot: the partner's
    set_tenant in that transaction is 40001, never the old set."""
    with connect(app_dsn) as app, connect(tenancy_db) as dba:
        app.execute("begin isolation level repeatable read")
        app.execute("select 1 from tenancy.domain_mappings limit 1")  # the snapshot is taken here
        dba.execute("update tenancy.tenants set name = name || ' (renamed)' where id = %s", [tree.acme])
        try:
            with pytest.raises(psycopg.Error) as err:
                app.execute("select tenancy.set_tenant(%s, true)", [tree.brandsyncup])
            assert err.value.sqlstate == "40001"
            assert "Retry the transaction" in (err.value.diag.message_hint or "")
            app.execute("rollback")
            app.execute("begin isolation level repeatable read")
            app.execute("select tenancy.set_tenant(%s, true)", [tree.brandsyncup])
            app.execute("rollback")
        finally:
            dba.execute(
                "update tenancy.tenants set name = replace(name, ' (renamed)', '') where id = %s", [tree.acme]
            )
