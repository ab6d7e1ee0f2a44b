"""A migration operation that registers a model's table with tenancy (and unregisters it backwards).

    from tenancy.django import RegisterTable
    operations = [migrations.CreateModel(name="Order", ...), RegisterTable("Order")]

It takes the model's name (as in ``CreateModel``, any case), not the table's: the table is the model's
``db_table`` in the migration's state.

Put it after the operations that create the table and its indexes: register_table creates its index
led by the tenant column only when none exists, so the index Django declares (``db_index`` / a
ForeignKey on the tenant column) is the only one. The migrating role needs tenancy.grant_migrator
(or to be a superuser) and must own the table.
"""

from __future__ import annotations

from typing import Any

from django.db.migrations.operations.base import Operation


class RegisterTable(Operation):
    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name: str, tenant_column: str = "tenant_id", write_scope: str = "own",
                 shared_rows: bool = False) -> None:  # fmt: skip
        self.model_name = model_name
        self.tenant_column = tenant_column
        self.write_scope = write_scope
        self.shared_rows = shared_rows

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        kwargs = {
            "tenant_column": self.tenant_column,
            "write_scope": self.write_scope,
            "shared_rows": self.shared_rows,
        }
        return self.__class__.__qualname__, [self.model_name], kwargs

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass

    def _table(self, app_label: str, state: Any, schema_editor: Any) -> str:
        model = state.apps.get_model(app_label, self.model_name)
        return schema_editor.quote_name(model._meta.db_table)

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        # Django defers the CREATE INDEX of a new model to the end of the migration: run this table's
        # now, so that register_table sees the index on the tenant column and makes no second one
        table = to_state.apps.get_model(app_label, self.model_name)._meta.db_table
        for stmt in list(schema_editor.deferred_sql):
            refers = getattr(stmt, "references_table", None)
            if refers is not None and refers(table) and "INDEX" in str(getattr(stmt, "template", "")).upper():
                schema_editor.execute(stmt)
                schema_editor.deferred_sql.remove(stmt)
        schema_editor.execute(
            "select tenancy.register_table(%s::regclass, %s, %s, %s)",
            [
                self._table(app_label, to_state, schema_editor),
                self.tenant_column,
                self.write_scope,
                self.shared_rows,
            ],
        )

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        schema_editor.execute(
            "select tenancy.unregister_table(%s::regclass)",
            [self._table(app_label, from_state, schema_editor)],
        )

    def describe(self) -> str:
        return f"Register {self.model_name} as tenant-scoped (tenancy)"

    @property
    def migration_name_fragment(self) -> str:
        return f"register_{self.model_name.lower()}"
