"""``tenancy provision TENANT --kind schema|database [--service NAME]``: a new tenant's home.

The registry row is written first (provisioning); each step after it is idempotent, so a rerun
resumes: the schema or the database (build.py), the new placement's own health, then active in both
databases. A tenant that already has rows is refused: it is moved (``tenancy move``).
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from . import plan as P
from .build import build_database, build_schema, new_placement_problems
from .core import Fleet, FleetError, Tenant
from .data import row_counts


def provision(
    fleet: Fleet, t: Tenant, kind: str, migs: list[P.Migration], *, service: str | None = None
) -> dict[str, Any]:
    if t.tier == 0:
        raise FleetError("the platform tenant (tier 0) sees every placement and has none of its own")
    if service is not None and kind != "database":
        raise P.UsageError("--service names where a database placement is: use it with --kind database")
    row = fleet.own_row(t.id)
    schema = P.schema_name(t.id)
    database = P.service_value(service) if service is not None else P.database_name(fleet.control_db, t.id)
    if (
        row
        and row["status"] == "active"
        and row["kind"] == kind
        and (kind != "database" or row["database"] == database)
    ):
        return {
            "tenant": t.id,
            "path": t.path,
            "kind": kind,
            "status": "active",
            "note": "already provisioned",
        }
    if row and not (row["kind"] == kind and row["status"] in ("provisioning", "failed")):
        where = row["schema_name"] or row["database"] or "the shared placement"
        raise FleetError(
            f"tenant {t.name} already has a {row['kind']} placement ({where}, {row['status']}):"
            " use tenancy move"
        )
    if row and kind == "database" and row["database"] != database:
        # a failed provisioning elsewhere (another --service): this run goes where it is told
        fleet.ctl("update tenancy.placements set database = %s where tenant_id = %s", [database, t.id])
    if not row:
        db, sch, _ = fleet.home(t)
        with fleet.connection(db) as c:
            existing = row_counts(c, sch, fleet.moving_set(t))
        if existing:
            raise FleetError(
                f"tenant {t.name} already has rows ({existing}):"
                " a tenant with data is moved with tenancy move"
            )
    started = time.monotonic()
    fleet.ctl(
        "insert into tenancy.placements (tenant_id, kind, schema_name, database, status) values"
        " (%s, %s, %s, %s, 'provisioning') on conflict (tenant_id) do update set status = 'provisioning'",
        [t.id, kind, schema if kind == "schema" else None, database if kind == "database" else None],
    )
    try:
        if kind == "schema":
            built = build_schema(fleet, schema, migs, t.id)
            where, sch = fleet.control_db, schema
        else:
            built = build_database(fleet, database, migs, t.id, fleet.moving_set(t))
            where, sch = database, fleet.shared_schema
        problems = new_placement_problems(fleet, where, sch, migs)
        if problems:
            raise FleetError(f"health of the new placement: {'; '.join(problems)}")
        version = migs[-1].version if migs else None
        if kind == "database":
            with fleet.connection(database) as c:
                c.execute(
                    "update tenancy.placements set status = 'active', schema_version = %s"
                    " where tenant_id = %s",
                    [version, t.id],
                )
        fleet.ctl(
            "update tenancy.placements set status = 'active', schema_version = %s where tenant_id = %s",
            [version, t.id],
        )
    except (FleetError, psycopg.Error) as exc:
        fleet.ctl("update tenancy.placements set status = 'failed' where tenant_id = %s", [t.id])
        fleet.event(t.id, kind, "provision_failed", {"error": str(exc), "database": database})
        raise FleetError(f"provisioning {t.name} failed (a rerun resumes): {exc}") from exc
    res = {
        "tenant": t.id,
        "path": t.path,
        "kind": kind,
        "status": "active",
        "schema": schema if kind == "schema" else None,
        "database": database if kind == "database" else None,
        "version": migs[-1].version if migs else None,
        "privileges": len(built.get("privileges") or []),
        "seconds": round(time.monotonic() - started, 3),
    }
    fleet.event(t.id, kind, "provisioned", res)
    return res
