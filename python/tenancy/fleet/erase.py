"""``tenancy erase TENANT --confirm``: a tenant and its data, with a receipt. A partner with customers
is refused (erase them first). A placement of its own is dropped (schema, or a database of the
control server); a service's database is the operator's and is kept (the tenant's rows and rows of
the registry go); rows elsewhere are deleted children first. The tenant row goes last (its domains,
tokens and registry row cascade)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .core import Fleet, FleetError, Tenant
from .move import forget_tenants, remove


def erase(fleet: Fleet, t: Tenant) -> dict[str, Any]:
    if t.tier == 0:
        raise FleetError("the platform tenant (tier 0) cannot be erased")
    kids = fleet.ctl("select tenancy.tenant_path(id) from tenancy.tenants where parent_id = %s", [t.id])
    if kids:
        raise FleetError(f"tenant {t.name} has customers ({', '.join(k[0] for k in kids)}): erase them first")
    row = fleet.own_row(t.id)
    db, schema, owner = fleet.home(t)
    own = owner == t.id and row is not None and row["kind"] in ("schema", "database")
    receipt: dict[str, Any] = {
        "tenant": t.id,
        "path": t.path,
        "erased_at": dt.datetime.now(dt.UTC).isoformat(),
        "placement": {"database": db, "schema": schema, "own": own},
    }
    receipt.update(remove(fleet, row["kind"] if own else "shared", db, schema, [t.id], own=own))
    if db != fleet.control_db and "dropped_database" not in receipt:
        with fleet.connection(db) as c:
            forget_tenants(c, [t.id])
    fleet.ctl("delete from tenancy.tenants where id = %s", [t.id])
    fleet.event(t.id, schema, "erased", receipt)
    return receipt
