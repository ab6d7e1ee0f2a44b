"""``TenantField``: the tenant column of a Django model.

    from tenancy.django import TenantField

    class Order(models.Model):
        tenant_id = TenantField()
        title = models.TextField()

A ``UUIDField`` whose value the database fills from the current tenant context: Django leaves it out
of an INSERT (it sends ``DEFAULT``) and reads it back (``RETURNING``), so ``Order.objects.create(title=
...)`` lands in the request's tenant. A plain ``UUIDField`` would send NULL and every create would fail
(``new row violates row-level security policy``). The column's default is the one ``register_table``
sets, so the migration and the registration agree and ``check()`` finds no drift. Indexed (the index
``register_table`` would otherwise create) and not editable in forms (a tenant is not chosen by a
form); both can be overridden. Migrations write it as ``tenancy.django.TenantField()``.
"""

from __future__ import annotations

from typing import Any

from django.db import models


class CurrentTenant(models.Func):
    """The database default of a tenant column: the context's tenant (TN003 without a context)."""

    function = "tenancy._default_tenant"  # the default register_table gives the column (SPEC §4)
    arity = 0

    def __init__(self) -> None:
        super().__init__(output_field=models.UUIDField())


class TenantField(models.UUIDField):
    description = "The row's tenant: a uuid filled by the database from the current tenancy context"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("db_default", CurrentTenant())
        kwargs.setdefault("db_index", True)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, _path, args, kwargs = super().deconstruct()
        if isinstance(kwargs.get("db_default"), CurrentTenant):
            del kwargs["db_default"]
        kwargs.pop("db_index", None)
        if not self.db_index:
            kwargs["db_index"] = False
        kwargs.pop("editable", None)
        if self.editable:
            kwargs["editable"] = True
        return name, "tenancy.django.TenantField", args, kwargs
