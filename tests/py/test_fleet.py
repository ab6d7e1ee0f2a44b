"""The fleet command end to end against the throwaway cluster: provision, migrate (a failure in one
placement, a rerun resumes, a no-transaction migration), health (each finding, its exit code), move
shared -> schema -> database -> shared with verification and isolation as the application role after
each step (and a move that fails and leaves the tenant where it was), a stale router hitting TN009,
export, erase, list, and the exit code of an unreachable control database."""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from tenancy.router import Router
from tenancy_testlib import connect
from test_placements import MIGRATIONS, Control, make_control


@pytest.fixture(scope="module")
def ctl(server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Control]:
    yield from make_control(server_dsn, tmp_path_factory.mktemp("fleet"))


def hexid(t: str) -> str:
    return t.replace("-", "")


def copy_migrations(ctl: Control, dest: Path, extra: dict[str, str] | None = None) -> Path:
    dest.mkdir(exist_ok=True)
    for f in ctl.migrations.iterdir():
        (dest / f.name).write_text(f.read_text())
    for name, text in (extra or {}).items():
        (dest / name).write_text(text)
    return dest


def cli_json(ctl: Control, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, object]:
    capsys.readouterr()
    rc = ctl.cli("--json", *args)
    out = capsys.readouterr().out
    return rc, json.loads(out) if out.strip() else None


def rows_as_app(ctl: Control, tenant: str, database: str | None = None) -> list[str]:
    """Project names the application role sees in the tenant's context (through the router)."""
    router = Router(ctl.app)
    try:
        with router.transaction(tenant) as conn:
            return sorted(r[0] for r in conn.execute("select name from projects"))
    finally:
        router.close()


def test_provision_migrate_failure_and_resume(
    ctl: Control, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    t = ctl.tree
    m = str(ctl.migrations)
    assert ctl.cli("provision", "brandsyncup/acme", "--kind", "schema", "--migrations", m) == 0
    assert ctl.cli("provision", "pixelworks/initech", "--kind", "schema", "--migrations", m) == 0
    # idempotent; a second kind is a move, not a provision
    assert ctl.cli("provision", "brandsyncup/acme", "--kind", "schema", "--migrations", m) == 0
    assert ctl.cli("provision", t.acme, "--kind", "database", "--migrations", m) == 1
    # a tenant that has rows is moved, not provisioned
    with connect(ctl.dsn) as conn:
        conn.execute("insert into public.projects (tenant_id, name) values (%s, 'globex-1')", [t.globex])
    assert ctl.cli("provision", "brandsyncup/globex", "--kind", "schema", "--migrations", m) == 1
    assert ctl.cli("provision", "", "--kind", "schema", "--migrations", m) == 1  # the platform tenant
    capsys.readouterr()
    assert ctl.cli("provision", "nobody/here", "--kind", "schema", "--migrations", m) == 2
    err = capsys.readouterr().err
    assert err == "tenancy: unknown tenant path 'nobody/here': no tenant 'nobody' there\n"

    # 0003 fails in initech's schema only (a table there is in its way); the others go on
    acme_schema, initech_schema = f"tenant_{hexid(t.acme)}", f"tenant_{hexid(t.initech)}"
    with connect(ctl.dsn) as conn:
        conn.execute(f"create table {initech_schema}.labels (x int)")
    mdir = copy_migrations(
        ctl,
        tmp_path / "m",
        {
            "0003_labels.sql": "create table labels (id uuid primary key default gen_random_uuid(),"
            " tenant_id uuid not null, label text);\n",
            "0004_index.sql": (
                "-- tenancy: no-transaction\ncreate index concurrently labels_label on labels (label);\n"
            ),
        },
    )
    rc, out = cli_json(ctl, capsys, "migrate", "--migrations", str(mdir), "--dry-run")
    assert rc == 0 and all(p["status"] == "pending" for p in out["placements"])
    rc, out = cli_json(ctl, capsys, "migrate", "--migrations", str(mdir), "--parallel", "3")
    assert rc == 1
    by = {p["schema"]: p for p in out["placements"]}
    assert by[initech_schema]["status"] == "failed" and by[initech_schema]["failed"] == "0003_labels"
    # the error names the file and the placement
    assert by[initech_schema]["error"] == (
        f'0003_labels.sql: relation "labels" already exists (in schema {initech_schema})'
    )
    assert by[acme_schema]["applied"] == ["0003_labels", "0004_index"]
    assert by["public"]["status"] == "migrated"
    with connect(ctl.dsn) as conn:
        # registered in every placement it reached, in the same run
        assert (
            conn.execute(
                "select count(*) from tenancy.scoped_tables where relid::text like '%%labels'"
            ).fetchone()[0]
            == 2
        )
        assert (
            conn.execute(
                "select count(*) from tenancy.fleet_events where action = 'migrate_failed'"
                " and placement like %s",
                [f"%{initech_schema}"],
            ).fetchone()[0]
            >= 1
        )
        conn.execute(f"drop table {initech_schema}.labels")
    rc, out = cli_json(ctl, capsys, "migrate", "--migrations", str(mdir))
    assert rc == 0
    resumed = [p for p in out["placements"] if p["status"] != "current"]
    assert [(p["schema"], p["applied"]) for p in resumed] == [(initech_schema, ["0003_labels", "0004_index"])]
    rc, out = cli_json(ctl, capsys, "health", "--migrations", str(mdir))
    assert rc == 0, out
    ctl.migrations = mdir


def test_health_findings_and_exit_codes(
    ctl: Control, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    t = ctl.tree
    m = str(ctl.migrations)
    acme_schema = f"tenant_{hexid(t.acme)}"
    orphan_schema = "tenant_" + "0" * 32
    orphan_db = f"{ctl.name[:24]}_t" + "0" * 32

    def problems(*args: str) -> tuple[int, set[str]]:
        rc, out = cli_json(ctl, capsys, "health", *args)
        return rc, {
            f"{f['placement']}|{f['object']}|{f['problem']}"
            for f in out["findings"]
            if f["severity"] != "info"
        }

    assert problems("--migrations", m) == (0, set())
    # a partner whose customer has a placement of its own: said (info), not a problem
    rc, out = cli_json(ctl, capsys, "health", "--migrations", m)
    info = [f for f in out["findings"] if f["severity"] == "info" and f["object"] == "brandsyncup"]
    assert rc == 0 and len(info) == 1
    assert info[0]["problem"].startswith(
        "1 of its customers lives in other placements (brandsyncup/acme: schema"
    )
    assert "does not see their rows" in info[0]["problem"]
    changes = [
        (
            f"alter table {acme_schema}.tasks rename to tasks_gone",
            f"{acme_schema}|{acme_schema}.tasks|table is missing",
        ),
        (
            f"select tenancy.unregister_table('{acme_schema}.labels')",
            f"{acme_schema}|{acme_schema}.labels|table is not registered",
        ),
        (f"create schema {orphan_schema}", f"{orphan_schema}|{orphan_schema}|orphaned schema"),
        (f"create database {orphan_db}", f"{orphan_db}|{orphan_db}|orphaned database"),
        (
            "insert into tenancy.placement_migrations values ('public', '0099', 'ghost', 'x')",
            "public|0099_ghost|migration is extra",
        ),
        (f"create table {acme_schema}.loose (tenant_id uuid)", "check(): "),
    ]
    with connect(ctl.dsn) as conn:
        for ddl, expected in changes:
            conn.execute(ddl)
            rc, found = problems("--migrations", m)
            assert rc == 1
            assert any(f.startswith(expected) or expected in f for f in found), (expected, found)
        # the undo, in reverse
        conn.execute(f"drop table {acme_schema}.loose")
        conn.execute("delete from tenancy.placement_migrations where version = '0099'")
        conn.execute(f"drop database {orphan_db}")
        conn.execute(f"drop schema {orphan_schema}")
        conn.execute(f"select tenancy.register_table('{acme_schema}.labels')")
        conn.execute(f"alter table {acme_schema}.tasks_gone rename to tasks")
    # a migration file that is new (missing everywhere) and one that changed
    mdir = copy_migrations(ctl, tmp_path / "h", {"0005_more.sql": "select 1;\n"})
    rc, found = problems("--migrations", str(mdir))
    assert rc == 1 and f"{acme_schema}|0005_more|migration is missing (not applied)" in found
    (mdir / "0005_more.sql").unlink()
    (mdir / "0001_projects.sql").write_text((mdir / "0001_projects.sql").read_text() + "-- edited\n")
    rc, found = problems("--migrations", str(mdir))
    assert rc == 1 and any("0001_projects|migration changed" in f for f in found)
    # a migrate does not run over a changed migration
    assert ctl.cli("migrate", "--migrations", str(mdir)) == 1
    # a placement schema dropped behind the command's back
    with connect(ctl.dsn) as conn:
        conn.execute(f"alter schema {acme_schema} rename to moved_away")
        try:
            rc, found = problems("--migrations", m)
            assert rc == 1 and f"{acme_schema}|{acme_schema}|placement schema is missing" in found
        finally:
            conn.execute(f"alter schema moved_away rename to {acme_schema}")
    assert problems("--migrations", m) == (0, set())


def test_move_round_trip_with_isolation_and_a_stale_router(
    ctl: Control, capsys: pytest.CaptureFixture[str]
) -> None:
    t = ctl.tree
    m = str(ctl.migrations)
    with connect(ctl.dsn) as conn:
        conn.execute("delete from public.projects")
        for tenant, names in ((t.globex, ["g1", "g2", "g3"]), (t.brandsyncup, ["b1"]), (t.suspended, ["d1"])):
            for n in names:
                pid = conn.execute(
                    "insert into public.projects (tenant_id, name) values (%s, %s) returning id", [tenant, n]
                ).fetchone()[0]
                conn.execute(
                    "insert into public.tasks (tenant_id, project_id, title) values (%s, %s, 'do')",
                    [tenant, pid],
                )
    stale = Router(ctl.app)
    try:
        with stale.transaction(t.globex) as conn:  # caches "globex is shared"
            assert conn.execute("select count(*) from projects").fetchone()[0] == 3
        for to in ("schema", "database", "shared"):
            rc, out = cli_json(ctl, capsys, "move", "brandsyncup/globex", "--to", to, "--migrations", m)
            assert rc == 0, out
            copy = next(s for s in out["steps"] if s["step"] == "copy")
            assert {x["table"]: x["rows"] for x in copy["tables"]}["projects"] == 3
            assert all(x["ok"] for x in copy["tables"])
            if to == "database":
                with connect(ctl.dsn) as conn:
                    db = conn.execute(
                        "select database from tenancy.placements where tenant_id = %s", [t.globex]
                    ).fetchone()[0]
                    conn.execute(f'grant connect on database "{db}" to public')
            # the stale router hits TN009 (or its dropped database), refreshes once, and lands
            before = stale.refreshes
            with stale.transaction(t.globex) as conn:
                assert sorted(r[0] for r in conn.execute("select name from projects")) == ["g1", "g2", "g3"]
                # isolation as the application role: nobody else's rows, wherever we are
                assert (
                    conn.execute(
                        "select count(*) from projects where tenant_id <> %s", [t.globex]
                    ).fetchone()[0]
                    == 0
                )
            # a schema move stays in the same database: set_tenant routes it, nothing to refresh
            assert stale.refreshes == before + (0 if to == "schema" else 1)
            # the other tenants stayed where they were, and see nothing of globex
            # (the partner sees its customers' rows where they live with it: shared)
            seen = ["b1", "d1"] + (["g1", "g2", "g3"] if to == "shared" else [])
            assert rows_as_app(ctl, t.brandsyncup) == seen
            assert rows_as_app(ctl, t.acme) == []
            with connect(ctl.dsn) as conn:
                where = conn.execute(
                    "select count(*) from public.projects where tenant_id = %s", [t.globex]
                ).fetchone()[0]
                assert where == (3 if to == "shared" else 0)  # the source was removed
                assert (
                    conn.execute(
                        "select generation, status from tenancy.placements where tenant_id = %s", [t.globex]
                    ).fetchone()[1]
                    == "active"
                )
        rc, out = cli_json(ctl, capsys, "health", "--migrations", m)
        assert rc == 0, out
    finally:
        stale.close()


def test_a_failed_move_leaves_the_tenant_where_it_was(
    ctl: Control, capsys: pytest.CaptureFixture[str]
) -> None:
    t = ctl.tree
    m = str(ctl.migrations)
    tmpl = f"{ctl.name[:24]}_ttemplate"
    # the target database comes from the template: a trigger there alters what is copied, so the
    # verification fails after the freeze
    with connect(ctl.db_dsn(tmpl)) as conn:
        conn.execute(
            "create function public.mangle() returns trigger language plpgsql as"
            " $$ begin new.name := new.name || '!'; return new; end $$"
        )
        conn.execute(
            "create trigger mangle before insert on public.projects for each row"
            " execute function public.mangle()"
        )
    try:
        rc, _out = cli_json(ctl, capsys, "move", "brandsyncup/globex", "--to", "database", "--migrations", m)
        assert rc == 1
        with connect(ctl.dsn) as conn:
            assert conn.execute(
                "select kind, status from tenancy.placements where tenant_id = %s", [t.globex]
            ).fetchone() == ("shared", "active")
            assert (
                conn.execute(
                    "select count(*) from pg_database where datname = %s",
                    [f"{ctl.name[:24]}_t{hexid(t.globex)}"],
                ).fetchone()[0]
                == 0
            )
            assert (
                conn.execute(
                    "select detail->>'error' from tenancy.fleet_events where action = 'move_failed'"
                    " order by id desc limit 1"
                )
                .fetchone()[0]
                .startswith("table projects")
            )
        assert rows_as_app(ctl, t.globex) == ["g1", "g2", "g3"]
        with Router(ctl.app).transaction(t.globex) as conn:  # writable again
            conn.execute("update projects set name = name where name = 'g1'")
    finally:
        with connect(ctl.db_dsn(tmpl)) as conn:
            conn.execute("drop trigger mangle on public.projects")
            conn.execute("drop function public.mangle()")


def test_export_erase_and_list(ctl: Control, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    t = ctl.tree
    out_dir = tmp_path / "export"
    rc, manifest = cli_json(ctl, capsys, "export", "brandsyncup/globex", "--out", str(out_dir))
    assert rc == 0
    counts = {x["table"]: x["rows"] for x in manifest["tables"]}
    assert counts["projects"] == 3 and counts["tasks"] == 3
    with (out_dir / "projects.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["tenant_id"] for r in rows} == {t.globex} and len(rows) == 3
    assert json.loads((out_dir / "manifest.json").read_text())["tenant"] == t.globex

    assert ctl.cli("erase", "brandsyncup/globex") == 2  # no --confirm
    assert ctl.cli("erase", "pixelworks", "--confirm") == 1  # has a customer
    receipt = tmp_path / "receipt.json"
    rc, res = cli_json(ctl, capsys, "erase", "brandsyncup/globex", "--confirm", "--receipt", str(receipt))
    assert rc == 0
    deleted = res["deleted_rows"]
    assert deleted["tasks"] == 3 and deleted["projects"] == 3 and deleted["labels"] == 0
    assert list(deleted).index("tasks") < list(deleted).index("projects")  # foreign-key-safe order
    rc, res = cli_json(ctl, capsys, "erase", "pixelworks/initech", "--confirm")
    assert rc == 0 and res["dropped_schema"] == f"tenant_{hexid(t.initech)}"
    with connect(ctl.dsn) as conn:
        assert (
            conn.execute(
                "select count(*) from tenancy.tenants where id in (%s, %s)", [t.globex, t.initech]
            ).fetchone()[0]
            == 0
        )
        assert (
            conn.execute("select count(*) from public.projects where tenant_id = %s", [t.globex]).fetchone()[
                0
            ]
            == 0
        )
        assert (
            conn.execute("select to_regnamespace(%s)", [f"tenant_{hexid(t.initech)}"]).fetchone()[0] is None
        )
        assert (
            conn.execute("select count(*) from tenancy.fleet_events where action = 'erased'").fetchone()[0]
            == 2
        )
    assert json.loads(receipt.read_text())["tenant"] == t.globex
    rc, listed = cli_json(ctl, capsys, "list")
    assert rc == 0
    kinds = {r["path"]: r["kind"] for r in listed}
    assert kinds["brandsyncup/acme"] == "schema" and "brandsyncup/globex" not in kinds
    rc, out = cli_json(ctl, capsys, "health", "--migrations", str(ctl.migrations))
    assert rc == 0, out


def test_unreachable_control_database_is_exit_2(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "tenancy"
    env = {**os.environ, "TENANCY_DSN": f"host={tmp_path} port=1 dbname=nothing connect_timeout=2"}
    res = subprocess.run([str(exe), "list"], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "unreachable" in res.stderr


# -- placements carry the shared placement's privileges --------------------------------------------

BARE = {  # the migrations grant nothing: the DBA grants by hand in the shared schema
    "0001_projects.sql": MIGRATIONS["0001_projects.sql"].replace(
        "grant select, insert, update, delete on projects to tenancy_app;\n", ""
    ),
    "0002_notes.sql": "create table notes (id bigserial primary key, tenant_id uuid not null, body text);\n",
}


@pytest.fixture(scope="module")
def bare(server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Control]:
    auditor = f"tenancy_auditor_{secrets.token_hex(3)}"
    with connect(server_dsn) as conn:
        conn.execute(f"create role {auditor}")
    gen = make_control(server_dsn, tmp_path_factory.mktemp("bare"), BARE)
    ctl = next(gen)
    ctl.auditor = auditor  # type: ignore[attr-defined]
    with connect(ctl.dsn) as conn:
        # as many DBAs do: privileges by hand, for the whole shared schema
        conn.execute("revoke usage on schema public from public")
        conn.execute(f"grant usage on schema public to {ctl.role}")
        conn.execute(f"grant select, insert, update, delete on all tables in schema public to {ctl.role}")
        conn.execute(f"grant usage on all sequences in schema public to {ctl.role}")
        conn.execute(f"grant select (name) on projects to {auditor} with grant option")
    yield ctl
    with suppress(StopIteration):
        next(gen)
    with connect(server_dsn) as conn:
        conn.execute(f"drop role if exists {auditor}")


def app_writes_and_reads(ctl: Control, tenant: str, text: str) -> list[str]:
    """As the application role: a row into notes (a bigserial: the sequence's privilege) and one into
    projects, then every project name the tenant sees."""
    router = Router(ctl.app)
    try:
        with router.transaction(tenant) as conn:
            conn.execute("insert into notes (body) values (%s)", [text])
            conn.execute("insert into projects (name) values (%s)", [text])
            return sorted(r[0] for r in conn.execute("select name from projects"))
    finally:
        router.close()


def test_placements_carry_the_privileges_granted_by_hand(
    bare: Control, capsys: pytest.CaptureFixture[str]
) -> None:
    t = bare.tree
    m = str(bare.migrations)
    schema = f"tenant_{hexid(t.acme)}"
    assert app_writes_and_reads(bare, t.acme, "shared") == ["shared"]
    with connect(bare.dsn) as conn:
        conn.execute("delete from public.notes")
        conn.execute("delete from public.projects")
    # provision: the schema, its tables, their sequence and a column get the shared grants
    assert bare.cli("provision", "brandsyncup/acme", "--kind", "schema", "--migrations", m) == 0
    assert app_writes_and_reads(bare, t.acme, "in its schema") == ["in its schema"]
    with connect(bare.dsn) as conn:
        acl = conn.execute(
            "select has_schema_privilege(%s, %s, 'usage'), has_schema_privilege('public', %s, 'usage'),"
            " has_sequence_privilege(%s, %s, 'usage'), has_column_privilege(%s, %s, 'name', 'select'),"
            " has_column_privilege(%s, %s, 'name', 'select with grant option')",
            [
                bare.role,
                schema,
                schema,
                bare.role,
                f"{schema}.notes_id_seq",
                bare.auditor,  # type: ignore[attr-defined]
                f"{schema}.projects",
                bare.auditor,  # type: ignore[attr-defined]
                f"{schema}.projects",
            ],
        ).fetchone()
    assert acl == (True, False, True, True, True)
    rc, out = cli_json(bare, capsys, "health", "--migrations", m)
    assert rc == 0, out
    # a privilege lost and one gained in the placement: health says which, per role and table
    with connect(bare.dsn) as conn:
        conn.execute(f"revoke delete on {schema}.projects from {bare.role}")
        conn.execute(f"grant references on {schema}.notes to {bare.role}")
    rc, out = cli_json(bare, capsys, "health", "--migrations", m)
    found = {(f["severity"], f["object"], f["problem"]) for f in out["findings"] if f["severity"] != "info"}
    assert rc == 1
    assert found == {
        (
            "error",
            f"{schema}.projects",
            f"privileges differ: role {bare.role} lacks DELETE, which the shared placement grants"
            " (tenancy migrate copies them)",
        ),
        (
            "warning",
            f"{schema}.notes",
            f"privileges differ: role {bare.role} has REFERENCES, which the shared placement does not grant"
            " (tenancy migrate copies them)",
        ),
    }
    # migrate makes them equal again (nothing else to do)
    rc, out = cli_json(bare, capsys, "migrate", "--migrations", m, "--dry-run")
    pending = next(p for p in out["placements"] if p["schema"] == schema)
    assert pending["status"] == "pending" and pending["pending"] == []
    assert sorted(pending["privileges"]) == [
        f'grant DELETE on table "{schema}"."projects" to "{bare.role}"',
        f'revoke REFERENCES on table "{schema}"."notes" from "{bare.role}"',
    ]
    rc, out = cli_json(bare, capsys, "migrate", "--migrations", m)
    assert rc == 0 and [p["status"] for p in out["placements"] if p["schema"] == schema] == ["privileges"]
    assert cli_json(bare, capsys, "health", "--migrations", m)[0] == 0
    # move: a database of its own gets them too, and the app works there at once
    rc, out = cli_json(bare, capsys, "move", "brandsyncup/acme", "--to", "database", "--migrations", m)
    assert rc == 0, out
    assert app_writes_and_reads(bare, t.acme, "in its database") == ["in its database", "in its schema"]
    assert cli_json(bare, capsys, "health", "--migrations", m)[0] == 0
    rc, out = cli_json(bare, capsys, "move", "brandsyncup/acme", "--to", "shared", "--migrations", m)
    assert rc == 0, out
    assert app_writes_and_reads(bare, t.acme, "back") == ["back", "in its database", "in its schema"]


# -- placements on another server ---------------------------------------------------------------


@dataclass
class Server:
    dsn: str  # superuser, over the Unix socket
    port: int
    password: str  # of postgres over TCP (scram): only in the password file


SCRAM = ["--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server2() -> Iterator[Server]:
    """A second throwaway cluster on 127.0.0.1 with the same binaries (TENANCY_PGBIN), password
    authentication over TCP; PGSERVICEFILE names services eu1 and eu2 there and PGPASSFILE has the
    password, so the command stores and is given no credentials."""
    pgbin = Path(os.environ.get("TENANCY_PGBIN", ""))
    if not (pgbin / "initdb").exists():
        pytest.skip("a second server needs TENANCY_PGBIN (scripts/with-cluster.sh sets it)")
    if os.environ.get("TENANCY_PG"):
        pytest.skip(
            f"a second server of PostgreSQL {os.environ['TENANCY_PG']} would have to run inside its "
            "debootstrap root (scripts/pg-root.sh), which this fixture does not do yet; the host's major "
            "runs these tests"
        )
    root = os.geteuid() == 0
    runas = ["runuser", "-u", "postgres", "--"] if root else []
    d = Path(tempfile.mkdtemp(prefix="tenancy-pg2."))
    d.chmod(0o755)
    if root:
        shutil.chown(d, "postgres")
    data, port, password = d / "data", _free_port(), secrets.token_hex(8)
    subprocess.run(
        [*runas, str(pgbin / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust", *SCRAM],
        check=True,
        capture_output=True,
    )
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{d}'\n"
            "max_connections = 40\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            "log_min_messages = warning\njit = off\n"
        )
    subprocess.run(
        [*runas, str(pgbin / "pg_ctl"), "-D", str(data), "-l", str(d / "log"), "-w", "-t", "60", "start"],
        check=True,
        capture_output=True,
    )
    services, passfile = d / "pg_service.conf", d / "pgpass"
    try:
        dsn = f"host={d} port={port} user=postgres dbname=postgres"
        with connect(dsn) as conn:
            conn.execute(f"alter role postgres password '{password}'")
            conn.execute("create database tenants_eu")
            conn.execute("create database tenants_eu2")
        services.write_text(
            "".join(
                f"[{name}]\nhost=127.0.0.1\nport={port}\ndbname={db}\nuser=postgres\n\n"
                for name, db in (("eu1", "tenants_eu"), ("eu2", "tenants_eu2"))
            )
        )
        passfile.write_text(f"127.0.0.1:{port}:*:postgres:{password}\n")
        passfile.chmod(0o600)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PGSERVICEFILE", str(services))
            mp.setenv("PGPASSFILE", str(passfile))
            yield Server(dsn, port, password)
    finally:
        subprocess.run(
            [*runas, str(pgbin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def far(server_dsn: str, server2: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Control]:
    """A control database on the first server whose app role also exists on the second (same password:
    the router takes it from its own DSN)."""
    gen = make_control(server_dsn, tmp_path_factory.mktemp("far"))
    ctl = next(gen)
    with connect(server2.dsn) as conn:
        conn.execute(f"create role {ctl.role} login password '{ctl.password}'")
    yield ctl
    with suppress(StopIteration):
        next(gen)
    with connect(server2.dsn) as conn:
        for db in ("tenants_eu", "tenants_eu2"):
            conn.execute(f"drop database if exists {db} with (force)")
        conn.execute(f"drop role if exists {ctl.role}")


def in_server2(server2: Server, db: str, query: str, params: list[object] | None = None) -> list[tuple]:
    with connect(f"{server2.dsn} dbname={db}") as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def test_provision_on_another_server(
    far: Control, server2: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    t = far.tree
    m = str(far.migrations)
    with connect(far.dsn) as conn:
        conn.execute("create role tenancy_reporter_far")
        conn.execute("grant select on public.projects to tenancy_reporter_far")
    try:
        # a role granted privileges in the shared placement must exist there: named, and a rerun resumes
        rc = far.cli(
            "provision", "brandsyncup/acme", "--kind", "database", "--service", "eu1", "--migrations", m
        )
        assert rc == 1
        err = capsys.readouterr().err
        assert (
            "role tenancy_reporter_far" in err and "does not exist on the server of this placement" in err
        ), err
        assert "a rerun resumes" in err
        with connect(server2.dsn) as conn:
            conn.execute("create role tenancy_reporter_far")
        rc, out = cli_json(
            far,
            capsys,
            "provision",
            "brandsyncup/acme",
            "--kind",
            "database",
            "--service",
            "eu1",
            "--migrations",
            m,
        )
        assert rc == 0, out
        assert out["database"] == "service=eu1" and out["privileges"] >= 1
    finally:
        with connect(far.dsn) as conn:
            conn.execute("revoke all on public.projects from tenancy_reporter_far")
            conn.execute("drop role tenancy_reporter_far")
        with connect(f"{server2.dsn} dbname=tenants_eu") as conn:
            conn.execute("revoke all on public.projects from tenancy_reporter_far")
            conn.execute("drop role tenancy_reporter_far")
    # the registry holds the service's name and nothing else; the extension was created there
    with connect(far.dsn) as conn:
        assert conn.execute(
            "select database from tenancy.placements where tenant_id = %s", [t.acme]
        ).fetchone() == ("service=eu1",)
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "update tenancy.placements set database = 'host=x password=secret' where tenant_id = %s",
                [t.acme],
            )
    assert in_server2(
        server2, "tenants_eu", "select extversion from pg_extension where extname = 'tenancy'"
    ) == [("0.2.0",)]
    # the app role exists there but may not take contexts yet: health says so
    rc, out = cli_json(far, capsys, "health", "--migrations", m)
    assert rc == 1
    assert any(
        f["object"] == far.role and "member of tenancy_app on the control server" in f["problem"]
        for f in out["findings"]
    ), out
    in_server2(server2, "tenants_eu", "select tenancy.grant_app(%s)", [far.role])
    rc, out = cli_json(far, capsys, "health", "--migrations", m)
    assert rc == 0, out
    # the router goes there through the service, as the app role; the control database refuses
    assert rows_as_app(far, t.acme) == []
    router = Router(far.app)
    try:
        with router.transaction(t.acme) as conn:
            conn.execute("insert into projects (name) values ('acme in eu1')")
        assert router.placement(t.acme).database == "service=eu1"
    finally:
        router.close()
    assert rows_as_app(far, t.acme) == ["acme in eu1"]
    with connect(far.app) as conn, pytest.raises(psycopg.Error) as exc:
        conn.execute("select tenancy.set_tenant(%s, true)", [t.acme])
    assert exc.value.sqlstate == "TN009" and "the database of libpq service eu1" in str(exc.value)
    rc, listed = cli_json(far, capsys, "list")
    assert {r["path"]: r["database"] for r in listed}["brandsyncup/acme"] == "service=eu1"


def test_move_to_another_server_and_back(
    far: Control, server2: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    t = far.tree
    m = str(far.migrations)
    with connect(far.dsn) as conn:
        for n in ("g1", "g2", "g3"):
            pid = conn.execute(
                "insert into public.projects (tenant_id, name) values (%s, %s) returning id", [t.globex, n]
            ).fetchone()[0]
            conn.execute(
                "insert into public.tasks (tenant_id, project_id, title) values (%s, %s, 'do')",
                [t.globex, pid],
            )
    assert in_server2(
        server2, "tenants_eu2", "select count(*) from pg_extension where extname = 'tenancy'"
    ) == [(0,)]
    assert rows_as_app(far, t.globex) == ["g1", "g2", "g3"]
    # there (eu2, a database of another server), back (shared), there again, back to a schema
    steps = [("database", "eu2"), ("shared", None), ("database", "eu2"), ("schema", None)]
    for to, service in steps:
        args = ["move", "brandsyncup/globex", "--to", to, "--migrations", m]
        if service:
            args += ["--service", service]
        if to == "database":  # the app role must be able to take contexts there (roles belong to a server)
            with suppress(psycopg.Error):
                in_server2(server2, "tenants_eu2", "select tenancy.grant_app(%s)", [far.role])
        rc, out = cli_json(far, capsys, *args)
        assert rc == 0, out
        copy = next(s for s in out["steps"] if s["step"] == "copy")
        assert {x["table"]: x["rows"] for x in copy["tables"]} == {"projects": 3, "tasks": 3}
        assert all(x["ok"] for x in copy["tables"])
        # the application role reads after each step, wherever the tenant is now
        assert rows_as_app(far, t.globex) == ["g1", "g2", "g3"]
        assert rows_as_app(far, t.brandsyncup) == ([] if to != "shared" else ["g1", "g2", "g3"])
        there = in_server2(server2, "tenants_eu2", "select count(*) from public.projects")
        assert there == [(3 if to == "database" else 0,)]
        if to != "database":
            # the service's database is kept; its row of globex says where globex went: TN009 there
            with (
                connect(
                    f"host=127.0.0.1 port={server2.port} dbname=tenants_eu2 user={far.role}",
                    password=far.password,
                ) as conn,
                pytest.raises(psycopg.Error) as exc,
            ):
                conn.execute("select tenancy.set_tenant(%s, true)", [t.globex])
            assert exc.value.sqlstate == "TN009" and "retired" in str(exc.value)
    rc, out = cli_json(far, capsys, "health", "--migrations", m)
    assert rc == 0, out


def test_migrate_export_and_erase_across_servers(
    far: Control, server2: Server, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    t = far.tree
    mdir = copy_migrations(
        far,
        tmp_path / "m",
        {
            "0003_labels.sql": "create table labels (id uuid primary key default gen_random_uuid(),"
            " tenant_id uuid not null);\n"
        },
    )
    rc, out = cli_json(far, capsys, "migrate", "--migrations", str(mdir))
    assert rc == 0, out
    by = {p["placement"]: p for p in out["placements"]}
    assert by["database service eu1"]["applied"] == ["0003_labels"]
    assert in_server2(
        server2,
        "tenants_eu",
        "select count(*) from tenancy.scoped_tables where relid = 'public.labels'::regclass",
    ) == [(1,)]
    assert in_server2(server2, "tenants_eu", "select version from tenancy.placement_migrations order by 1")[
        -1
    ] == ("0003",)
    with connect(far.dsn) as conn:
        assert conn.execute(
            "select schema_version from tenancy.placements where tenant_id = %s", [t.acme]
        ).fetchone() == ("0003",)
    rc, out = cli_json(far, capsys, "health", "--migrations", str(mdir))
    assert rc == 0, out
    rc, manifest = cli_json(far, capsys, "export", "brandsyncup/acme", "--out", str(tmp_path / "x"))
    assert rc == 0 and manifest["database"] == "service=eu1"
    assert {x["table"]: x["rows"] for x in manifest["tables"]}["projects"] == 1
    # erase: the service's database stays (it is the operator's), the tenant's rows and rows go
    rc, receipt = cli_json(far, capsys, "erase", "brandsyncup/acme", "--confirm")
    assert rc == 0 and receipt["deleted_rows"]["projects"] == 1
    assert in_server2(server2, "tenants_eu", "select count(*) from public.projects") == [(0,)]
    assert in_server2(
        server2, "tenants_eu", "select count(*) from tenancy.tenants where id = %s", [t.acme]
    ) == [(0,)]
    rc, out = cli_json(far, capsys, "health", "--migrations", str(mdir))
    assert rc == 0, out
