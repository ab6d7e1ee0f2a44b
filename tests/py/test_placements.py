"""Placements in the extension (SPEC 7): the registry and its row-level security, placement_of, the
routing inside set_tenant (search_path, TN009, frozen writes), and isolation inside a schema
placement, checked as an application role over real connections.

Each test module builds its own control database (placements change how set_tenant routes, so the
session's shared tenancy_db is left alone)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from tenancy.fleet.cli import run
from tenancy_testlib import Tree, connect, seed_tree

MIGRATIONS = {
    "0001_projects.sql": """
create table projects (
    id uuid primary key default gen_random_uuid(),
    tenant_id uuid not null,
    name text not null
);
create unique index projects_tenant_id_id on projects (tenant_id, id);
grant select, insert, update, delete on projects to tenancy_app;
""",
    "0002_tasks.sql": """
create table tasks (
    id uuid primary key default gen_random_uuid(),
    tenant_id uuid not null,
    project_id uuid not null,
    title text not null,
    foreign key (tenant_id, project_id) references projects (tenant_id, id) on delete cascade
);
grant select, insert, update, delete on tasks to tenancy_app;
""",
}


@dataclass
class Control:
    dsn: str  # superuser DSN of the control database
    name: str
    app: str  # an application login (grant_app)
    tree: Tree
    migrations: Path
    server: str
    role: str = ""  # the application login's role name and password
    password: str = ""

    def cli(self, *args: str) -> int:
        return run(["--dsn", self.dsn, "--quiet", *args])

    def db_dsn(self, database: str, app: bool = False) -> str:
        base = self.app if app else self.dsn
        return f"{base} dbname={database}"


def make_control(server_dsn: str, tmp: Path, migrations: dict[str, str] | None = None) -> Iterator[Control]:
    name = f"tenancy_pl_{secrets.token_hex(4)}"
    role = f"tenancy_plapp_{secrets.token_hex(3)}"
    password = secrets.token_hex(8)
    with connect(server_dsn) as conn:
        conn.execute(f"create database {name}")
    dsn = f"{server_dsn} dbname={name}"
    with connect(dsn) as conn:
        conn.execute("set client_min_messages = warning")
        conn.execute("create extension tenancy cascade")
        tree = seed_tree(conn)
        conn.execute(f"create role {role} login password '{password}'")
        conn.execute("select tenancy.grant_app(%s)", [role])
    mdir = tmp / "migrations"
    mdir.mkdir()
    for file, text in (migrations or MIGRATIONS).items():
        (mdir / file).write_text(text.lstrip())
    ctl = Control(dsn, name, f"{dsn} user={role} password={password}", tree, mdir, server_dsn, role, password)
    assert ctl.cli("migrate", "--migrations", str(mdir)) == 0
    yield ctl
    with connect(server_dsn) as conn:
        rows = conn.execute(
            "select datname from pg_database where datname like %s", [name[:24] + "%"]
        ).fetchall()
        for (db,) in rows:
            conn.execute(f'drop database if exists "{db}" with (force)')
    with connect(server_dsn) as conn:
        conn.execute(f"drop role if exists {role}")


@pytest.fixture(scope="module")
def ctl(server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Control]:
    yield from make_control(server_dsn, tmp_path_factory.mktemp("placements"))


def sqlstate(exc: pytest.ExceptionInfo[psycopg.Error]) -> str | None:
    return exc.value.sqlstate


def test_placement_of_shared_inherited_and_unknown(ctl: Control) -> None:
    t = ctl.tree
    with connect(ctl.app) as conn:
        # no row: shared, generation 0; an app role may ask without a context (a router does)
        assert conn.execute("select * from tenancy.placement_of(%s)", [t.globex]).fetchone() == (
            "shared",
            None,
            None,
            0,
        )
        with pytest.raises(psycopg.Error) as exc:
            conn.execute("select * from tenancy.placement_of(gen_random_uuid())")
        assert sqlstate(exc) == "TN001"
    assert ctl.cli("provision", "pixelworks", "--kind", "schema", "--migrations", str(ctl.migrations)) == 0
    with connect(ctl.app) as conn:
        schema = "tenant_" + t.pixelworks.replace("-", "")
        # initech has no row: it lives where its partner lives
        for who in (t.pixelworks, t.initech):
            assert conn.execute("select * from tenancy.placement_of(%s)", [who]).fetchone() == (
                "schema",
                schema,
                None,
                1,
            )


def test_registry_rows_are_visible_to_the_visible_tenants_only(ctl: Control) -> None:
    t = ctl.tree
    with connect(ctl.dsn) as conn:
        conn.execute(
            "insert into tenancy.placements (tenant_id, kind, status) values (%s, 'shared', 'active')"
            " on conflict do nothing",
            [t.acme],
        )
    with connect(ctl.app) as conn:
        assert conn.execute("select count(*) from tenancy.placements").fetchone()[0] == 0
        with conn.transaction():
            conn.execute("select tenancy.set_tenant(%s, true)", [t.globex])
            assert conn.execute("select count(*) from tenancy.placements").fetchone()[0] == 0
        with conn.transaction():
            conn.execute("select tenancy.set_tenant(%s, true)", [t.brandsyncup])
            rows = conn.execute("select tenant_id::text from tenancy.placements").fetchall()
            assert rows == [(t.acme,)]
        with conn.transaction():
            conn.execute("select tenancy.set_tenant(%s, true)", [t.initech])
            assert conn.execute("select count(*) from tenancy.placements").fetchone()[0] == 0
        # the registry is read-only for applications
        with pytest.raises(psycopg.Error) as exc, conn.transaction():
            conn.execute("select tenancy.set_tenant(%s, true)", [t.acme])
            conn.execute("update tenancy.placements set status = 'retired'")
        assert sqlstate(exc) == "42501"
        # the routing helper an app role may call shows no tenant ids
        row = conn.execute("select * from tenancy._placement_route(%s)", [t.pixelworks]).fetchone()
        assert not any(isinstance(v, str) and v.count("-") == 4 for v in row)
    with connect(ctl.dsn) as conn:
        conn.execute("delete from tenancy.placements where tenant_id = %s", [t.acme])


def test_schema_placement_routes_the_transaction_and_rls_stays_the_boundary(ctl: Control) -> None:
    t = ctl.tree
    schema = "tenant_" + t.pixelworks.replace("-", "")
    with connect(ctl.app) as conn:
        with conn.transaction():
            conn.execute("select tenancy.set_tenant(%s, true)", [t.initech])
            path = conn.execute("show search_path").fetchone()[0]
            assert path.startswith(schema + ", ")
            conn.execute("insert into projects (name) values ('initech-in-its-schema')")
            # another tenant's id is refused by the generated policy in the placement too
            with pytest.raises(psycopg.Error) as exc, conn.transaction():
                conn.execute("insert into projects (tenant_id, name) values (%s, 'forged')", [t.acme])
            assert sqlstate(exc) == "42501"
            # a second set_tenant in the same transaction takes the routed schema off again
            conn.execute("select tenancy.set_tenant(%s, true)", [t.acme])
            assert conn.execute("show search_path").fetchone()[0] == '"$user", public, tenancy_customer'
            # naming the other tenant's schema: RLS shows nothing
            assert conn.execute(f"select count(*) from {schema}.projects").fetchone()[0] == 0
            assert conn.execute("select count(*) from projects where name like 'initech%'").fetchone()[0] == 0
        # the transaction's path ended with it; a session context does not route the path
        assert "tenant_" not in conn.execute("show search_path").fetchone()[0]
        conn.execute("select tenancy.set_tenant(%s)", [t.initech])
        assert "tenant_" not in conn.execute("show search_path").fetchone()[0]
        assert conn.execute(f"select name from {schema}.projects").fetchall() == [("initech-in-its-schema",)]
        conn.execute("select tenancy.reset_tenant()")
        assert conn.execute(f"select count(*) from {schema}.projects").fetchone()[0] == 0


def test_frozen_placement_reads_and_refuses_writes(ctl: Control) -> None:
    t = ctl.tree
    with connect(ctl.dsn) as conn:
        conn.execute(
            "update tenancy.placements set status = 'read_only' where tenant_id = %s", [t.pixelworks]
        )
    try:
        with connect(ctl.app) as conn:
            with conn.transaction():
                conn.execute("select tenancy.set_tenant(%s, true)", [t.initech])
                assert conn.execute("select count(*) from projects").fetchone()[0] == 1
                with pytest.raises(psycopg.Error) as exc:
                    conn.execute("insert into projects (name) values ('during the move')")
                assert sqlstate(exc) == "25006"  # read-only transaction
            # the application cannot turn it back
            with pytest.raises(psycopg.Error) as exc, conn.transaction():
                conn.execute("select tenancy.set_tenant(%s, true)", [t.initech])
                conn.execute("set transaction read write")
            assert sqlstate(exc) == "25001"
            # a session context outlives the freeze: refused
            for who in (t.initech, t.pixelworks):
                with pytest.raises(psycopg.Error) as exc:
                    conn.execute("select tenancy.set_tenant(%s)", [who])
                assert sqlstate(exc) == "TN009"
                assert "being moved" in str(exc.value)
            # other tenants are not frozen
            with conn.transaction():
                conn.execute("select tenancy.set_tenant(%s, true)", [t.globex])
                conn.execute("insert into projects (name) values ('globex writes')")
                conn.execute("delete from projects where name = 'globex writes'")
        for status in ("provisioning", "failed", "retired"):
            with connect(ctl.dsn) as conn:
                conn.execute(
                    "update tenancy.placements set status = %s where tenant_id = %s", [status, t.pixelworks]
                )
            with connect(ctl.app) as conn, pytest.raises(psycopg.Error) as exc:
                conn.execute("select tenancy.set_tenant(%s, true)", [t.initech])
            assert sqlstate(exc) == "TN009"
            assert status in str(exc.value)
    finally:
        with connect(ctl.dsn) as conn:
            conn.execute(
                "update tenancy.placements set status = 'active' where tenant_id = %s", [t.pixelworks]
            )


def test_database_placement_routing_both_ways(ctl: Control) -> None:
    t = ctl.tree
    assert (
        ctl.cli("provision", "brandsyncup/globex", "--kind", "database", "--migrations", str(ctl.migrations))
        == 0
    )
    with connect(ctl.dsn) as conn:
        db = conn.execute(
            "select database from tenancy.placements where tenant_id = %s", [t.globex]
        ).fetchone()[0]
        conn.execute(f'grant connect on database "{db}" to public')
    # in the control database globex is placed elsewhere: TN009 names the database
    with connect(ctl.app) as conn, pytest.raises(psycopg.Error) as exc:
        conn.execute("select tenancy.set_tenant(%s, true)", [t.globex])
    assert sqlstate(exc) == "TN009"
    assert db in str(exc.value)
    with connect(ctl.db_dsn(db, app=True)) as conn:
        with conn.transaction():
            conn.execute("select tenancy.set_tenant(%s, true)", [t.globex])
            conn.execute("insert into projects (name) values ('globex at home')")
        # its partner lives in the control database; acme is not even known here
        with pytest.raises(psycopg.Error) as exc:
            conn.execute("select tenancy.set_tenant(%s, true)", [t.brandsyncup])
        assert sqlstate(exc) == "TN009"
        assert "shared placement" in str(exc.value)
        with pytest.raises(psycopg.Error) as exc:
            conn.execute("select tenancy.set_tenant(%s, true)", [t.acme])
        assert sqlstate(exc) == "TN001"
        assert conn.execute("select count(*) from projects").fetchone()[0] == 0


def test_a_failing_migration_leaves_no_history_and_no_table(ctl: Control, tmp_path: Path) -> None:
    mdir = tmp_path / "m"
    mdir.mkdir()
    for f in ctl.migrations.iterdir():
        (mdir / f.name).write_text(f.read_text())
    (mdir / "0003_broken.sql").write_text("create table half (id int);\nselect 1 / 0;\n")
    assert ctl.cli("migrate", "--migrations", str(mdir), "--tenant", "pixelworks") == 1
    schema = "tenant_" + ctl.tree.pixelworks.replace("-", "")
    with connect(ctl.dsn) as conn:
        assert conn.execute("select to_regclass(%s)", [f"{schema}.half"]).fetchone()[0] is None
        assert (
            conn.execute(
                "select count(*) from tenancy.placement_migrations where version = '0003'"
            ).fetchone()[0]
            == 0
        )
        ev = conn.execute(
            "select detail->>'failed', detail->>'error' from tenancy.fleet_events"
            " where action = 'migrate_failed' and tenant_id = %s order by id desc limit 1",
            [ctl.tree.pixelworks],
        ).fetchone()
        assert ev == ("0003_broken", f"0003_broken.sql: division by zero (in schema {schema})")
