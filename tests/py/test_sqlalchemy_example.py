"""examples/sqlalchemy_app against the real cluster: two hosts, isolation, the tenant column filled by the
database, a cross-tenant write refused, TN005 as UnknownDomain, the pool reset, Alembic autogenerate quiet."""

from __future__ import annotations

import secrets
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tenancy_testlib import connect

pytest.importorskip("sqlalchemy")
pytest.importorskip("alembic")

import sqlalchemy as sa
from tenancy import errors

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "sqlalchemy_app"))
import app


@pytest.fixture(scope="module")
def shop(server_dsn: str) -> Iterator[tuple[str, dict[str, str]]]:
    suffix = secrets.token_hex(3)
    role, password, db = f"sa_{suffix}", secrets.token_hex(8), f"sa_{suffix}"
    with connect(server_dsn) as conn:
        conn.execute(f"create role {role} login password '{password}'")
        conn.execute(f"create database {db} owner {role}")
    tenants: dict[str, str] = {}
    with connect(f"{server_dsn} dbname={db}") as conn:
        conn.execute("set client_min_messages = warning")
        conn.execute("create extension tenancy cascade")
        conn.execute("select tenancy.grant_app(%s), tenancy.grant_migrator(%s)", [role, role])
        rid = conn.execute(
            "insert into tenancy.tenants (tier, slug, name) values (0, 'p', 'P') returning id"
        ).fetchone()
        for slug in ("acme", "globex"):
            row = conn.execute(
                "insert into tenancy.tenants (parent_id, tier, slug, name)"
                " values (%s, 1, %s, %s) returning id",
                [rid[0], slug, slug],  # type: ignore[index]
            ).fetchone()
            tenants[slug] = str(row[0])  # type: ignore[index]
            conn.execute("insert into tenancy.domain_mappings (domain, tenant_id) values (%s, %s)",
                         [f"{slug}.test", row[0]])  # type: ignore[index]  # fmt: skip
    params = dict(part.split("=", 1) for part in server_dsn.split())
    port = int(params["port"]) if "port" in params else None
    url = sa.engine.URL.create(
        "postgresql+psycopg", username=role, password=password, database=db, port=port,
        query={"host": params.get("host", "")},
    )  # fmt: skip
    # the migration, as the owner (a migrator): create the tables, register them
    engine = sa.create_engine(url)
    app.Base.metadata.create_all(engine)
    with engine.begin() as conn:
        for table in ("sa_project", "sa_task"):
            conn.execute(sa.text("select tenancy.register_table(cast(:t as regclass))"), {"t": table})
    engine.dispose()
    yield url.render_as_string(hide_password=False), tenants
    with connect(server_dsn) as conn:
        conn.execute(f"drop database if exists {db} with (force)")
        conn.execute(f"drop role if exists {role}")


def test_two_hosts_isolated_and_tenant_filled(shop: tuple[str, dict[str, str]]) -> None:
    url, tenants = shop
    sessions = app.make_sessions(url)
    app.add_project(sessions, "acme.test", "a1")
    app.add_project(sessions, "globex.test", "g1")
    assert app.project_names(sessions, "acme.test") == ["a1"]
    assert app.project_names(sessions, "globex.test") == ["g1"]
    with sessions() as session, session.begin():  # no context: zero rows
        assert session.scalars(sa.select(app.Project)).all() == []
    with sessions(info={"tenancy": {"tenant": tenants["acme"]}}) as session, session.begin():
        assert {str(p.tenant_id) for p in session.scalars(sa.select(app.Project))} == {tenants["acme"]}


def test_cross_tenant_write_refused(shop: tuple[str, dict[str, str]]) -> None:
    url, tenants = shop
    sessions = app.make_sessions(url)
    with pytest.raises(sa.exc.DBAPIError) as info:
        app.add_project(sessions, "acme.test", "evil", uuid.UUID(tenants["globex"]))
    assert info.value.orig.sqlstate == "42501"  # type: ignore[union-attr]
    assert "evil" not in app.project_names(sessions, "globex.test")


def test_unknown_host_is_unknown_domain(shop: tuple[str, dict[str, str]]) -> None:
    sessions = app.make_sessions(shop[0])
    with pytest.raises(errors.UnknownDomain):
        app.project_names(sessions, "nobody.test")


def test_pool_reset_leaves_no_context(shop: tuple[str, dict[str, str]]) -> None:
    engine = sa.create_engine(shop[0], pool_size=1, max_overflow=0)
    import tenancy.sqlalchemy as tsa

    tsa.install(engine)
    with engine.connect() as conn:
        conn.execute(sa.text("select tenancy.set_tenant_for_domain('acme.test')"))  # a session context
        conn.commit()
    with engine.connect() as conn:
        assert conn.execute(sa.text("select tenancy.current_tenant()")).scalar() is None
    engine.dispose()


def test_alembic_autogenerate_is_quiet(shop: tuple[str, dict[str, str]]) -> None:
    import tenancy.sqlalchemy as tsa
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = sa.create_engine(shop[0])
    with engine.connect() as conn:
        noisy = compare_metadata(MigrationContext.configure(conn), app.Base.metadata)
        assert any(d[0] == "remove_index" for d in noisy), noisy  # tenancy's index, without the hook
        ctx = MigrationContext.configure(conn, opts={"include_object": tsa.include_object})
        assert compare_metadata(ctx, app.Base.metadata) == []
    engine.dispose()
