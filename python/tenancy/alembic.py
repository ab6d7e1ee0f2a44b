"""Alembic operations for tenant-scoped tables: ``op.register_table`` and ``op.unregister_table``.

    # env.py (or any module the migrations import): registers the operations with Alembic
    import tenancy.alembic  # noqa: F401

    # a migration
    def upgrade() -> None:
        op.create_table("orders", sa.Column("id", sa.BigInteger, primary_key=True),
                        sa.Column("tenant_id", sa.Uuid, nullable=False))
        op.register_table("orders")                      # tenancy.register_table('orders')

    def downgrade() -> None:
        op.unregister_table("orders")
        op.drop_table("orders")

Both run ``tenancy.register_table`` / ``tenancy.unregister_table`` with the same arguments (SPEC §3),
as plain SQL with literals, so they work in offline mode (``alembic upgrade --sql``) too. Each
operation reverses to the other (``register_table`` reverses to ``unregister_table``; the reverse of
``unregister_table`` registers with the defaults, since the catalog entry it dropped is not known to
the migration). The migrating role needs to be the table's owner and a member of tenancy's
migrator role (``tenancy.grant_migrator``) or a superuser.
"""

from __future__ import annotations

from typing import Any

from alembic.operations import MigrateOperation, Operations


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def relation(table_name: str, schema: str | None = None) -> str:
    """The regclass literal of a table, each part quoted as an identifier."""
    qualified = _ident(table_name) if schema is None else f"{_ident(schema)}.{_ident(table_name)}"
    return f"{_literal(qualified)}::regclass"


def register_sql(
    table_name: str,
    schema: str | None = None,
    tenant_column: str = "tenant_id",
    write_scope: str = "own",
    shared_rows: bool = False,
) -> str:
    return (
        f"select tenancy.register_table({relation(table_name, schema)}, {_literal(tenant_column)}, "
        f"{_literal(write_scope)}, {'true' if shared_rows else 'false'})"
    )


def unregister_sql(table_name: str, schema: str | None = None) -> str:
    return f"select tenancy.unregister_table({relation(table_name, schema)})"


@Operations.register_operation("register_table")
class RegisterTableOp(MigrateOperation):
    """``op.register_table(table_name, tenant_column='tenant_id', write_scope='own', shared_rows=False,
    schema=None)``: tenancy.register_table on the table."""

    def __init__(
        self,
        table_name: str,
        tenant_column: str = "tenant_id",
        write_scope: str = "own",
        shared_rows: bool = False,
        schema: str | None = None,
    ) -> None:
        self.table_name = table_name
        self.tenant_column = tenant_column
        self.write_scope = write_scope
        self.shared_rows = shared_rows
        self.schema = schema

    @classmethod
    def register_table(cls, operations: Operations, table_name: str, **kw: Any) -> Any:
        return operations.invoke(cls(table_name, **kw))

    def reverse(self) -> UnregisterTableOp:
        return UnregisterTableOp(self.table_name, schema=self.schema)


@Operations.register_operation("unregister_table")
class UnregisterTableOp(MigrateOperation):
    """``op.unregister_table(table_name, schema=None)``: tenancy.unregister_table on the table."""

    def __init__(self, table_name: str, schema: str | None = None) -> None:
        self.table_name = table_name
        self.schema = schema

    @classmethod
    def unregister_table(cls, operations: Operations, table_name: str, **kw: Any) -> Any:
        return operations.invoke(cls(table_name, **kw))

    def reverse(self) -> RegisterTableOp:
        return RegisterTableOp(self.table_name, schema=self.schema)


@Operations.implementation_for(RegisterTableOp)
def _register(operations: Operations, op: RegisterTableOp) -> None:
    operations.execute(
        register_sql(op.table_name, op.schema, op.tenant_column, op.write_scope, op.shared_rows)
    )


@Operations.implementation_for(UnregisterTableOp)
def _unregister(operations: Operations, op: UnregisterTableOp) -> None:
    operations.execute(unregister_sql(op.table_name, op.schema))
