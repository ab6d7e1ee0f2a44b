"""``tenancy list``: every tenant with its placement, status, version and generation, and a note where
a partner's customers live in other placements (the partner's context does not see their rows in its
own placement: docs/placements.md, "What a partner sees")."""

from __future__ import annotations

from typing import Any

from .core import Fleet

# customers with a placement row of their own that puts them elsewhere than their partner
APART = """
select c.parent_id::text, tenancy.tenant_path(c.parent_id), tenancy.tenant_path(c.id), cp.kind,
    coalesce(cp.schema_name, cp.database)
from tenancy.tenants c
join tenancy.placements cp on cp.tenant_id = c.id and cp.status <> 'retired'
left join tenancy.placements pp on pp.tenant_id = c.parent_id
where c.tier = 2
  and row(cp.kind, cp.schema_name, cp.database)
      is distinct from row(coalesce(pp.kind, 'shared'), pp.schema_name, pp.database)
order by 2, 3
"""


def customers_apart(fleet: Fleet) -> dict[str, tuple[str, list[tuple[str, str, str | None]]]]:
    """partner id -> (partner path, [(customer path, kind, schema or database)])."""
    out: dict[str, tuple[str, list[tuple[str, str, str | None]]]] = {}
    for pid, ppath, cpath, kind, where in fleet.ctl(APART):
        out.setdefault(pid, (ppath, []))[1].append((cpath, kind, where))
    return out


def listing(fleet: Fleet) -> list[dict[str, Any]]:
    rows = fleet.ctl(
        "select t.id::text, tenancy.tenant_path(t.id), t.tier, coalesce(p.kind, 'shared'), p.schema_name,"
        " p.database, coalesce(p.status, 'active'), p.schema_version, coalesce(p.generation, 0)"
        " from tenancy.tenants t left join tenancy.placements p on p.tenant_id = t.id"
        " order by tenancy.tenant_path(t.id)"
    )
    apart = customers_apart(fleet)
    apart_customers = {c for _p, cs in apart.values() for c, _k, _w in cs}
    k = ("tenant", "path", "tier", "kind", "schema", "database", "status", "version", "generation")
    out = []
    for r in rows:
        item = dict(zip(k, r[:9], strict=True))
        note = ""
        if item["tenant"] in apart:
            n = len(apart[item["tenant"]][1])
            note = f"{n} customer{'s' if n > 1 else ''} placed elsewhere"
        elif item["path"] in apart_customers:
            note = "placed apart from its partner"
        item["note"] = note
        out.append(item)
    return out
