"""The fleet command end to end against the throwaway cluster: provision, migrate (a failure in one
placement, a rerun resumes, a no-transaction migration), health (each finding, its exit code), move
shared -> schema -> database -> shared with verification and isolation as the application role after
each step (and a move that fails and leaves the tenant where it was), a stale router hitting TN009,
export, erase, list, and the exit code of an unreachable control database."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tenancy.router import Router
from tenancy_testlib import connect
from test_placements import Control, make_control


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
    assert ctl.cli("provision", "nobody/here", "--kind", "schema", "--migrations", m) == 2

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
        return rc, {f"{f['placement']}|{f['object']}|{f['problem']}" for f in out["findings"]}

    assert problems("--migrations", m) == (0, set())
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
