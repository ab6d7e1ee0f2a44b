"""``tenancy health [--migrations DIR]``: every database that houses placements, once.

Per database: ``tenancy.placement_health`` (placements missing or not active, tables missing or not
registered, migrations missing / extra / changed, orphaned schemas and databases), ``tenancy.check()``
(findings about the command's own role, a superuser owning the tables, left out), the privileges
that differ from the shared placement's and, on another server, the extension's version and the
application roles' memberships. In the control database also: partners whose customers live in other
placements (info: the partner's context does not see those rows there). Every finding but ``info``
makes the exit code 1.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg

from . import plan as P
from . import privileges
from .core import Fleet, why
from .listing import customers_apart
from .progress import Progress

# check() findings about the role running the command say nothing about the placements
OWN_ROLE = ("the current role",)

SHARED_TABLES = """
select c.relname::text
from tenancy.scoped_tables s
join pg_catalog.pg_class c on c.oid = s.relid
where c.relnamespace = (select n.oid from pg_catalog.pg_namespace n where n.nspname = %s)
  and not c.relispartition
"""

MEMBERS = """
select m.rolname::text, g.rolname::text
from pg_catalog.pg_auth_members a
join pg_catalog.pg_roles m on m.oid = a.member
join pg_catalog.pg_roles g on g.oid = a.roleid
where g.rolname in ('tenancy_app', 'tenancy_platform', 'tenancy_migrator')
"""


def finding(
    severity: str, database: str, tenant: str | None, placement: str | None, obj: str, problem: str
) -> dict[str, Any]:
    return {
        "severity": severity,
        "database": database,
        "tenant": tenant,
        "placement": placement,
        "object": obj,
        "problem": problem,
    }


class Health:
    def __init__(self, fleet: Fleet, migs: list[P.Migration] | None) -> None:
        self.fleet = fleet
        self.migs = json.dumps([m.as_json() for m in migs]) if migs is not None else None
        with fleet.connection() as c:
            self.tables = [r[0] for r in c.execute(SHARED_TABLES, [fleet.shared_schema])]
            self.want = privileges.read(c, [fleet.shared_schema])[fleet.shared_schema]
            self.members = set(c.execute(MEMBERS).fetchall())

    def common(self, conn: psycopg.Connection, database: str, prefix: str | None) -> list[dict[str, Any]]:
        """placement_health and check() of one database."""
        out = [
            finding(sev, database, tid, placement, obj, problem)
            for sev, tid, placement, obj, problem in conn.execute(
                "select severity, tenant_id::text, placement, object, problem"
                " from tenancy.placement_health(%s, %s, %s, %s)",
                [self.migs, self.tables, self.fleet.shared_schema, prefix],
            )
        ]
        for sev, obj, problem, _hint in conn.execute(
            "select severity, object, problem, hint from tenancy.check()"
        ):
            if problem.startswith(OWN_ROLE) or sev == "info":
                continue
            out.append(finding(sev, database, None, None, obj, f"check(): {problem}"))
        return out

    def privileges(
        self, conn: psycopg.Connection, database: str, labels: dict[str, tuple[str | None, str]]
    ) -> list[dict[str, Any]]:
        """labels: schema -> (tenant, placement label) of the placement schemas in this database."""
        out = []
        for schema, have in privileges.read(conn, labels).items():
            tenant, label = labels[schema]
            for obj, problem in P.privilege_findings(privileges.wanted(self.want, have), have, schema):
                sev = "error" if " lacks " in problem else "warning"
                out.append(
                    finding(sev, database, tenant, label, obj, problem + " (tenancy migrate copies them)")
                )
        return out

    def control(self) -> list[dict[str, Any]]:
        fleet = self.fleet
        with fleet.connection() as c:
            out = self.common(c, fleet.control_db, fleet.prefix)
            schemas = {
                schema: (tid, schema)
                for tid, schema in c.execute(
                    "select tenant_id::text, schema_name from tenancy.placements"
                    " where kind = 'schema' and status <> 'retired'"
                )
            }
            if schemas:
                out += self.privileges(c, fleet.control_db, schemas)
        for pid, (ppath, customers) in customers_apart(fleet).items():
            listed = "; ".join(f"{c}: {k} {w or ''}".rstrip() for c, k, w in customers)
            out.append(
                finding(
                    "info",
                    fleet.control_db,
                    pid,
                    None,
                    ppath,
                    f"{len(customers)} of its customers {'lives' if len(customers) == 1 else 'live'} in other"
                    f" placements ({listed}): a context of"
                    " the partner does not see their rows in its own placement (docs/placements.md: what a"
                    " partner sees)",
                )
            )
        return out

    def database(self, database: str, tenants: list[str]) -> list[dict[str, Any]]:
        tenant = tenants[0] if len(tenants) == 1 else None
        try:
            conn = self.fleet.connect(database)
        except psycopg.OperationalError as exc:
            return [
                finding(
                    "error",
                    database,
                    tenant,
                    database,
                    database,
                    f"placement database is missing or unreachable: {why(exc)}",
                )
            ]
        with conn:
            version = conn.execute(
                "select extversion from pg_catalog.pg_extension where extname = 'tenancy'"
            ).fetchone()
            if version is None or version[0] != self.fleet.version:
                have = version[0] if version else "no tenancy extension"
                return [
                    finding(
                        "error",
                        database,
                        tenant,
                        database,
                        "tenancy",
                        f"extension version: {have} there, {self.fleet.version} in the control database",
                    )
                ]
            out = self.common(conn, database, None)
            out += self.privileges(conn, database, {self.fleet.shared_schema: (tenant, database)})
            if P.service_of(database):
                # another server: a role there that the control server lets take contexts (or register
                # tables) and this one does not (roles and memberships belong to a server)
                there = set(conn.execute(MEMBERS).fetchall())
                roles = {r[0] for r in conn.execute("select rolname::text from pg_catalog.pg_roles")}
                for role, group in sorted(m for m in self.members - there if m[0] in roles):
                    out.append(
                        finding(
                            "warning",
                            database,
                            tenant,
                            database,
                            role,
                            f"role {role} is a member of {group} on the control server, not on this server:"
                            " it cannot do here what it does there (grant it the same here, e.g. with"
                            " tenancy.grant_app)",
                        )
                    )
        return out


def health(fleet: Fleet, migs: list[P.Migration] | None, *, parallel: int = 8) -> list[dict[str, Any]]:
    h = Health(fleet, migs)
    dbs: dict[str, list[str]] = {}
    for tid, db in fleet.ctl(
        "select tenant_id::text, database from tenancy.placements where kind = 'database'"
        " and status <> 'retired' order by database, tenant_id"
    ):
        dbs.setdefault(db, []).append(tid)
    prog = Progress("health", 1 + len(dbs), quiet=fleet.quiet)
    with ThreadPoolExecutor(max_workers=max(parallel, 1)) as ex:
        others = ex.map(lambda db: h.database(db, dbs[db]), dbs)
        findings = h.control()
        prog.step(fleet.control_db)
        for f in others:
            findings.extend(f)
            prog.step()
    prog.close()
    return findings
