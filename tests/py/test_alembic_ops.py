"""tenancy.alembic: op.register_table / op.unregister_table, run by Alembic as a migrator role."""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
import tenancy.alembic as ta
from alembic.migration import MigrationContext
from alembic.operations import Operations
from tenancy_testlib import Tree, connect, migrator_role


@pytest.fixture(scope="module")
def migrator(tenancy_db: str, tree: Tree) -> Iterator[str]:
    yield from migrator_role(tenancy_db, "tenancy_alembic")


def _engine(dsn: str) -> sa.Engine:
    return sa.create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn))


def _entry(dsn: str, table: str) -> tuple[str, str, bool] | None:
    with connect(dsn) as conn:
        row = conn.execute(
            "select tenant_column::text, write_scope, shared_rows from tenancy.scoped_tables"
            " where relid = to_regclass(%s)",
            [table],
        ).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def test_register_and_unregister_through_alembic(migrator: str) -> None:
    name = f"Orders {secrets.token_hex(2)}"  # a name that needs quoting
    engine = _engine(migrator)
    with engine.begin() as conn:
        op = Operations(MigrationContext.configure(conn))
        op.create_table(
            name,
            sa.Column("id", sa.BigInteger, primary_key=True),
            sa.Column("owner", sa.Uuid),
            schema="public",
        )
        op.register_table(
            name, tenant_column="owner", write_scope="visible", shared_rows=True, schema="public"
        )
    qualified = f'public."{name}"'
    assert _entry(migrator, qualified) == ("owner", "visible", True)
    with engine.begin() as conn:
        op = Operations(MigrationContext.configure(conn))
        op.invoke(ta.RegisterTableOp(name, schema="public").reverse())  # what a downgrade runs
    assert _entry(migrator, qualified) is None
    with engine.begin() as conn:
        Operations(MigrationContext.configure(conn)).drop_table(name, schema="public")
    engine.dispose()


def test_a_failed_registration_rolls_the_migration_back(migrator: str) -> None:
    """register_table's own errors (22023: no such column) reach Alembic, and its transaction ends."""
    name = f"bad_{secrets.token_hex(3)}"
    engine = _engine(migrator)
    with pytest.raises(sa.exc.DBAPIError) as err, engine.begin() as conn:
        op = Operations(MigrationContext.configure(conn))
        op.create_table(name, sa.Column("id", sa.BigInteger, primary_key=True))
        op.register_table(name)
    assert err.value.orig.sqlstate == "22023"
    with connect(migrator) as conn:
        assert conn.execute("select to_regclass(%s)", [f"public.{name}"]).fetchone() == (None,)
    engine.dispose()


def test_offline_mode_writes_the_sql() -> None:
    buf = io.StringIO()
    ctx = MigrationContext.configure(dialect_name="postgresql", opts={"as_sql": True, "output_buffer": buf})
    op = Operations(ctx)
    op.register_table("it's", schema="app")
    op.unregister_table("it's", schema="app")
    out = buf.getvalue()
    assert "select tenancy.register_table('\"app\".\"it''s\"'::regclass, 'tenant_id', 'own', false)" in out
    assert "select tenancy.unregister_table('\"app\".\"it''s\"'::regclass)" in out
