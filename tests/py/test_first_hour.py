"""Issue 24, the first hour of a new user (SPEC v0.3 §0, §2, §4): finding codes and `tenancy lint`,
non-uuid tenant columns said out loud, a view owner held to row-level security, grant_app's pooled
roles, and the schema `tenancy` squatted before CREATE EXTENSION.

The module works in databases of its own: its sloppy objects never meet other suites' check()."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from tenancy.fleet import cli, lint
from tenancy_testlib import Tree, connect, seed_tree

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Db:
    dba: str  # superuser DSN
    app: str  # grant_app login
    app_role: str
    owner: str  # a table owner that is not a superuser
    owner_role: str
    tree: Tree


@pytest.fixture(scope="module")
def db(server_dsn: str) -> Iterator[Db]:
    name = f"tenancy_first_{secrets.token_hex(4)}"
    suffix = secrets.token_hex(3)
    app_role, owner_role = f"fh_app_{suffix}", f"fh_owner_{suffix}"
    with connect(server_dsn) as conn:
        conn.execute(f"create database {name}")
    dba = f"{server_dsn} dbname={name}"
    with connect(dba) as conn:
        conn.execute("set client_min_messages = warning")
        conn.execute("create extension tenancy cascade")
        tree = seed_tree(conn)
        conn.execute(f"create role {app_role} login password 'fh'")
        conn.execute("select tenancy.grant_app(%s)", [app_role])
        conn.execute(f"create role {owner_role} login password 'fh'")
        conn.execute("select tenancy.grant_migrator(%s)", [owner_role])
        conn.execute(f"grant create on schema public to {owner_role}")
    yield Db(dba, f"{dba} user={app_role} password=fh", app_role, f"{dba} user={owner_role} password=fh",
             owner_role, tree)  # fmt: skip
    with connect(server_dsn) as conn:
        conn.execute(f"drop database if exists {name} with (force)")
        for role in (app_role, owner_role):
            conn.execute(f"drop role if exists {role}")


def findings(dsn: str, obj: str | None = None) -> list[tuple[str, str, str, str, str]]:
    with connect(dsn) as conn:
        rows = conn.execute(
            "select code, severity, object, problem, hint from tenancy.check()"
            " where %s::text is null or object = %s",
            [obj, obj],
        ).fetchall()
    return rows


# --- codes ---------------------------------------------------------------------------------------------


def test_check_has_a_code_first_and_every_code_is_documented(db: Db) -> None:
    with connect(db.dba) as conn:
        cols = conn.execute("select pg_get_function_result('tenancy.check()'::regprocedure)").fetchone()
        assert cols == ("TABLE(code text, severity text, object text, problem text, hint text)",)
        conn.execute("create table public.fh_loose (id int, tenant_id uuid)")
    rows = findings(db.dba)
    assert rows, "a superuser has at least role_superuser"
    unknown = {r[0] for r in rows} - set(lint.RULES)
    assert unknown == set(), f"codes check() returned that lint.RULES / docs/check.md do not know: {unknown}"
    assert ("table_not_registered", "warning", "public.fh_loose") in {r[:3] for r in rows}
    assert all(r[4] for r in rows), "every finding has a hint"


# --- non-uuid tenant columns ---------------------------------------------------------------------------


def test_register_table_refuses_a_text_column_with_the_alter_that_fixes_it(db: Db) -> None:
    with connect(db.dba) as conn:
        conn.execute("create table public.fh_text (id int, tenant_id text)")
        conn.execute("insert into public.fh_text values (1, %s)", [db.tree.acme])
        with pytest.raises(psycopg.Error) as exc:
            conn.execute("select tenancy.register_table('public.fh_text')")
        diag = exc.value.diag
        assert exc.value.sqlstate == "22023"
        assert (
            diag.message_primary
            == "cannot register public.fh_text: its tenant column tenant_id is text, not uuid"
        )
        hint = diag.message_hint or ""
        fix = re.search(
            r"alter table public\.fh_text alter column tenant_id type uuid using tenant_id::uuid;", hint
        )
        assert fix, hint
        assert "select tenancy.register_table('public.fh_text');" in hint
        # the hint is right: its statements register the table
        conn.execute(fix.group(0))
        conn.execute("select tenancy.register_table('public.fh_text')")
        assert conn.execute(
            "select count(*) from tenancy.scoped_tables where relid = 'public.fh_text'::regclass"
        ).fetchone() == (1,)


def test_register_table_refuses_a_bigint_column_with_a_mapping_to_write(db: Db) -> None:
    with connect(db.dba) as conn:
        conn.execute("create table public.fh_big (id int, org_id bigint)")
        with pytest.raises(psycopg.Error) as exc:
            conn.execute("select tenancy.register_table('public.fh_big', 'org_id')")
        assert exc.value.sqlstate == "22023"
        hint = exc.value.diag.message_hint or ""
        assert "a bigint does not cast to uuid" in hint
        assert "alter table public.fh_big alter column org_id type uuid using <" in hint
        assert "select tenancy.register_table('public.fh_big', tenant_column => 'org_id');" in hint


def test_auto_register_says_why_it_skips_a_non_uuid_column_and_check_lists_it(db: Db) -> None:
    said: dict[str | None, str | None] = {}  # a Diagnostic is valid only inside the handler

    def keep(d: psycopg.errors.Diagnostic) -> None:
        if d.severity_nonlocalized == "NOTICE":
            said[d.message_primary] = d.message_hint

    with connect(db.dba) as conn:
        conn.add_notice_handler(keep)
        conn.execute("set tenancy.auto_register = on")
        conn.execute("create table public.fh_auto_text (id int, tenant_id varchar(36))")
        conn.execute("create table public.fh_auto_uuid (id int, tenant_id uuid)")
    skip = [m for m in said if m and m.startswith("tenancy: public.fh_auto_text is not registered")]
    assert skip, said
    assert "tenant column tenant_id is character varying, not uuid" in skip[0]
    assert "type uuid using tenant_id::uuid" in (said[skip[0]] or "")
    assert "tenancy: registered public.fh_auto_uuid as tenant-scoped (tenancy.auto_register is on)" in said
    rows = findings(db.dba, "public.fh_auto_text")
    assert [(r[0], r[1]) for r in rows] == [("tenant_column_not_uuid", "warning")]
    assert "of type character varying(36), not uuid" in rows[0][3]
    assert (
        "alter table public.fh_auto_text alter column tenant_id type uuid using tenant_id::uuid;"
        in rows[0][4]
    )


# --- a view owned by a role held to row-level security -------------------------------------------------


def test_a_view_owned_by_a_role_held_to_rls_reads_through_the_policies(db: Db) -> None:
    t = db.tree
    with connect(db.owner) as conn:  # not a superuser: owns the table and the view
        conn.execute("create table public.fh_docs (id serial, tenant_id uuid not null, body text)")
        conn.execute("select tenancy.register_table('public.fh_docs')")
        conn.execute("create view public.fh_docs_v as select id, tenant_id, body from public.fh_docs")
        conn.execute(f"grant select on public.fh_docs_v to {db.app_role}")
    with connect(db.dba) as conn:
        conn.execute(
            "insert into public.fh_docs (tenant_id, body)"
            " values (%s, 'acme'), (%s, 'globex'), (%s, 'initech')",
            [t.acme, t.globex, t.initech],
        )
        conn.execute("create view public.fh_docs_su as select id, tenant_id, body from public.fh_docs")
        conn.execute(f"grant select on public.fh_docs_su to {db.app_role}")
    with connect(db.app) as conn:
        assert conn.execute("select count(*) from public.fh_docs_v").fetchone() == (0,), "no context: no rows"
        with conn.transaction():
            conn.execute("select tenancy.set_tenant(%s, local => true)", [t.acme])
            assert conn.execute("select body from public.fh_docs_v").fetchall() == [("acme",)]
            # the app has no privilege on the table itself: the owner lends its privileges, not its rows
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute("select count(*) from public.fh_docs")
            # a superuser's view is the real leak: every tenant's rows
            assert conn.execute("select count(*) from public.fh_docs_su").fetchone() == (3,)
    own = findings(db.dba, "public.fh_docs_v")
    assert [(r[0], r[1]) for r in own] == [("view_owner_privileges", "info")], own
    assert "row-level security still applies" in own[0][3]
    su = findings(db.dba, "public.fh_docs_su")
    assert [(r[0], r[1]) for r in su] == [("view_bypasses_rls", "error")], su
    assert su[0][4] == "alter view public.fh_docs_su set (security_invoker = true);"


# --- grant_app(role, strict, pooled) -------------------------------------------------------------------


def _members(conn: psycopg.Connection, role: str) -> set[str]:
    rows = conn.execute(
        "select g.rolname from pg_auth_members m join pg_roles g on g.oid = m.roleid"
        " join pg_roles r on r.oid = m.member where r.rolname = %s",
        [role],
    ).fetchall()
    return {r[0] for r in rows}


def test_grant_app_pooled_strict_and_the_old_calls(db: Db) -> None:
    suffix = secrets.token_hex(3)
    roles = [f"fh_g{i}_{suffix}" for i in range(5)]
    with connect(db.dba) as conn:
        try:
            for role in roles:
                conn.execute(f"create role {role} nologin")
            conn.execute("select tenancy.grant_app(%s)", [roles[0]])
            conn.execute("select tenancy.grant_app(%s, pooled => true)", [roles[1]])
            conn.execute("select tenancy.grant_app(%s, true, true)", [roles[2]])  # positional: strict, pooled
            conn.execute("select tenancy.grant_app(%s, strict => true)", [roles[3]])
            conn.execute("select tenancy.grant_token_admin(%s)", [roles[4]])  # calls grant_app(role)
            assert _members(conn, roles[0]) == {"tenancy_app"}
            assert _members(conn, roles[1]) == {"tenancy_app", "tenancy_pooled"}
            assert _members(conn, roles[2]) == {"tenancy_app", "tenancy_strict", "tenancy_pooled"}
            assert _members(conn, roles[3]) == {"tenancy_app", "tenancy_strict"}
            assert _members(conn, roles[4]) == {"tenancy_app"}
            conn.execute("select tenancy.grant_app(%s)", [roles[1]])  # without pooled: never removes it
            assert "tenancy_pooled" in _members(conn, roles[1])
            assert conn.execute(
                "select rolcanlogin from pg_roles where rolname = 'tenancy_pooled'"
            ).fetchone() == (False,)
            assert conn.execute(
                "select count(*) from pg_proc where proname = 'grant_app'"
                " and pronamespace = 'tenancy'::regnamespace"
            ).fetchone() == (1,), "one grant_app: the two-argument one was dropped"
            comment = conn.execute(
                "select obj_description('tenancy.grant_app(regrole, boolean, boolean)'::regprocedure)"
            ).fetchone()
            assert comment is not None and "pooled => true" in comment[0]
            with pytest.raises(psycopg.Error) as exc:
                conn.execute("select tenancy.grant_app(null)")
            assert exc.value.sqlstate == "22023" and exc.value.diag.message_hint
        finally:
            for role in roles:
                conn.execute(f"drop owned by {role}")
                conn.execute(f"drop role if exists {role}")


# --- the schema tenancy squatted before CREATE EXTENSION (SPEC v0.3 §0) ------------------------------


@pytest.fixture
def scratch(server_dsn: str) -> Iterator[tuple[str, str, str]]:
    """A database without the extension, and a login with CREATE on it: (superuser DSN, its DSN, role)."""
    name = f"tenancy_squat_{secrets.token_hex(4)}"
    role = f"fh_squat_{secrets.token_hex(3)}"
    with connect(server_dsn) as conn:
        conn.execute(f"create database {name}")
        conn.execute(f"create role {role} login password 'squat'")
        conn.execute(f"grant create on database {name} to {role}")
    dba = f"{server_dsn} dbname={name}"
    yield dba, f"{dba} user={role} password=squat", role
    with connect(server_dsn) as conn:
        conn.execute(f"drop database if exists {name} with (force)")
        conn.execute(f"drop role if exists {role}")


SQUAT_FN = (
    "create function tenancy.set_tenant(t text) returns uuid language sql"
    " as $$ select '00000000-0000-0000-0000-000000000001'::uuid $$"
)


def test_create_extension_refuses_a_schema_squatted_by_another_role(scratch: tuple[str, str, str]) -> None:
    dba, squatter, role = scratch
    with connect(squatter) as conn:
        conn.execute("create schema tenancy")
        conn.execute(SQUAT_FN)
    with connect(dba) as conn:
        conn.execute("set client_min_messages = warning")
        with pytest.raises(psycopg.Error) as exc:
            conn.execute("create extension tenancy cascade")
        diag = exc.value.diag
        assert exc.value.sqlstate == "TN006"
        assert diag.message_primary == (
            "cannot install tenancy into schema tenancy: it already exists and is owned by"
            f" {role}, not by postgres who is installing the extension"
        )
        assert "tenancy.set_tenant(text)" in (diag.message_detail or "")
        assert "drop schema tenancy cascade" in (diag.message_hint or "")
        assert conn.execute("select count(*) from pg_extension where extname = 'tenancy'").fetchone() == (0,)
        # the DBA looks, drops it, installs; the squatter's function is gone
        conn.execute("drop schema tenancy cascade")
        conn.execute("create extension tenancy cascade")
        assert conn.execute(
            "select count(*) from pg_proc where oid = to_regprocedure('tenancy.set_tenant(text)')"
        ).fetchone() == (0,)


def test_create_extension_refuses_objects_of_another_role_in_the_dbas_schema(
    scratch: tuple[str, str, str],
) -> None:
    dba, squatter, role = scratch
    with connect(dba) as conn:
        conn.execute("create schema tenancy")  # the DBA's own: accepted as such
        conn.execute(f"grant create, usage on schema tenancy to {role}")
    with connect(squatter) as conn:
        conn.execute(SQUAT_FN)
    with connect(dba) as conn:
        conn.execute("set client_min_messages = warning")
        with pytest.raises(psycopg.Error) as exc:
            conn.execute("create extension tenancy cascade")
        assert exc.value.sqlstate == "TN006"
        assert exc.value.diag.message_primary == (
            "cannot install tenancy into schema tenancy: it already holds function tenancy.set_tenant(t text)"
            f" (owned by {role}), made by another role"
        )
        conn.execute("drop function tenancy.set_tenant(text)")
        conn.execute("create extension tenancy cascade")  # the DBA's own (empty) schema is fine
        assert conn.execute(
            "select nspowner::regrole::text from pg_namespace where nspname = 'tenancy'"
        ).fetchone() == ("postgres",)
        assert conn.execute("select count(*) from pg_roles where rolname = 'tenancy_pooled'").fetchone() == (
            1,
        )
        conn.execute("drop extension tenancy")
        assert conn.execute("select count(*) from pg_roles where rolname = 'tenancy_pooled'").fetchone() == (
            1,
        ), "tenancy_pooled survives DROP EXTENSION (roles are cluster-wide)"


def test_check_reports_a_schema_and_objects_of_another_owner(scratch: tuple[str, str, str]) -> None:
    """An install that predates the refusal (or an ALTER SCHEMA ... OWNER since) is reported."""
    dba, squatter, role = scratch
    with connect(dba) as conn:
        conn.execute("set client_min_messages = warning")
        conn.execute("create extension tenancy cascade")
        tid = conn.execute(
            "insert into tenancy.tenants (slug, name) values ('root', 'Root') returning id::text"
        ).fetchone()
        conn.execute(f"alter schema tenancy owner to {role}")
    with connect(squatter) as conn:
        conn.execute(SQUAT_FN)
    with connect(dba) as conn:
        # why it matters: a call with a string literal now goes to the squatter's function
        assert conn.execute("select tenancy.set_tenant(%s::text)", [tid[0]]).fetchone() == (
            uuid.UUID("00000000-0000-0000-0000-000000000001"),
        )
    rows = {r[0]: r for r in findings(dba)}
    assert rows["schema_owner"][1:3] == ("error", "schema tenancy")
    assert f"owned by {role}, not by the extension's owner postgres" in rows["schema_owner"][3]
    assert rows["schema_owner"][4].startswith("alter schema tenancy owner to postgres;")
    assert rows["object_owner"][1:3] == ("error", "tenancy.set_tenant(text)")
    assert rows["object_owner"][4].startswith("drop function tenancy.set_tenant(text);")
    with connect(dba) as conn:
        conn.execute("drop function tenancy.set_tenant(text)")
        conn.execute("alter schema tenancy owner to postgres")
    assert not {"schema_owner", "object_owner"} & {r[0] for r in findings(dba)}


# --- tenancy lint ---------------------------------------------------------------------------------------


SCHEMA = json.loads((ROOT / "tests" / "py" / "data" / "sarif-schema-2.1.0.json").read_text())


def _lint(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.run(["lint", *argv])
    return code, capsys.readouterr().out


def test_lint_gates_on_new_findings_only(db: Db, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    base = tmp_path / "baseline.json"
    code, out = _lint(capsys, "--dsn", db.dba)
    assert code == 1 and "role_superuser" in out and "docs/check.md" in out
    code, out = _lint(capsys, "--dsn", db.dba, "--write-baseline", str(base))
    assert code == 0, out
    accepted = json.loads(base.read_text())["findings"]
    assert {"code": "role_superuser", "object": "postgres"} in [
        {"code": f["code"], "object": f["object"]} for f in accepted
    ]
    code, out = _lint(capsys, "--dsn", db.dba, "--baseline", str(base), "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["status"] == "ok" and not any(f["new"] for f in report["findings"])

    with connect(db.dba) as conn:
        conn.execute("create table public.fh_new_text (id int, tenant_id text)")
    code, out = _lint(capsys, "--dsn", db.dba, "--baseline", str(base), "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["status"] == "problem"
    assert [(f["code"], f["object"]) for f in report["findings"] if f["new"]] == [
        ("tenant_column_not_uuid", "public.fh_new_text")
    ]
    assert report["findings"][0]["docs"].startswith("docs/check.md#")
    # the gate: --fail-on error lets the new warning through; --ignore leaves the code out
    assert _lint(capsys, "--dsn", db.dba, "--baseline", str(base), "--fail-on", "error")[0] == 0
    assert (
        _lint(capsys, "--dsn", db.dba, "--baseline", str(base), "--ignore", "tenant_column_not_uuid")[0] == 0
    )

    code, out = _lint(capsys, "--dsn", db.dba, "--baseline", str(base), "--format", "sarif")
    sarif = json.loads(out)
    errors = [e.message for e in jsonschema.Draft4Validator(SCHEMA).iter_errors(sarif)]
    assert code == 1 and errors == []
    new = [r for r in sarif["runs"][0]["results"] if r["baselineState"] == "new"]
    assert [(r["ruleId"], r["level"]) for r in new] == [("tenant_column_not_uuid", "warning")]
    assert new[0]["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "public.fh_new_text"
    with connect(db.dba) as conn:
        conn.execute("drop table public.fh_new_text")


def test_lint_as_a_command_and_its_usage_errors(db: Db, tmp_path: Path) -> None:
    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tenancy.fleet.cli", "lint", *argv],
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    out = run("--dsn", db.app, "--format", "text")
    assert out.returncode in (0, 1), out.stderr
    assert "role_superuser" not in out.stdout  # the application role is no superuser
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    out = run("--dsn", db.app, "--baseline", str(bad))
    assert out.returncode == 2 and "cannot be read" in out.stderr
    out = run("--dsn", f"{db.dba} port=1")
    assert out.returncode == 2 and "unreachable" in out.stderr
    out = run("--dsn", db.dba, "--format", "xml")
    assert out.returncode == 2
