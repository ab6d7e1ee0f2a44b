"""``tenancy move TENANT --to shared|schema|database [--service NAME]``: a tenant's rows (and those of
the customers that live with it) to another placement, on the same server or another one.

1. build the target at the source's migration version (refused when the histories differ);
2. freeze the source (``moving``: reads go on, writes are refused) and wait for the transactions
   begun before the freeze;
3. copy the rows in foreign-key order in one target transaction;
4. verify row counts and checksums per table;
5. switch the placement and bump its generation in one statement;
6. remove the source (rows deleted, or the schema or the database of its own dropped; a database of a
   libpq service is the operator's and is kept: its registry row says where the tenant went).

A failure before the switch unfreezes the source and removes what was built: the tenant stays
readable, and writable again, where it was.
"""

from __future__ import annotations

import datetime as dt
import time
from contextlib import suppress
from typing import Any

import psycopg
from psycopg import sql

from . import data
from . import plan as P
from .build import build_database, build_schema
from .core import Fleet, FleetError, Tenant, ident
from .migrate import applied

UPSERT_STATUS = (
    "insert into tenancy.placements as p (tenant_id, kind, schema_name, database, status)"
    " values (%s, %s, %s, %s, %s) on conflict (tenant_id) do update set status = excluded.status"
)
UPSERT_HERE = (
    "insert into tenancy.placements as p (tenant_id, kind, database, status)"
    " values (%s, 'database', pg_catalog.current_database(), %s)"
    " on conflict (tenant_id) do update set status = excluded.status"
)


class Move:
    def __init__(
        self, fleet: Fleet, t: Tenant, to: str, migs: list[P.Migration], service: str | None
    ) -> None:
        if t.tier == 0:
            raise FleetError("the platform tenant (tier 0) is not placed")
        if service is not None and to != "database":
            raise P.UsageError("--service names where a database placement is: use it with --to database")
        self.fleet, self.t, self.to, self.migs = fleet, t, to, migs
        self.row = fleet.own_row(t.id)
        self.s_db, self.s_schema, self.owner = fleet.home(t)
        cur_kind = self.row["kind"] if self.row else "shared"
        self.own_source = self.owner == t.id and cur_kind in ("schema", "database")
        self.source_kind = cur_kind if self.own_source else "shared"
        self.ids = fleet.moving_set(t) if self.owner in (t.id, None) else [t.id]
        self.schema = P.schema_name(t.id)
        self.database = P.service_value(service) if service else P.database_name(fleet.control_db, t.id)
        self.d_db, self.d_schema = {
            "shared": (fleet.control_db, fleet.shared_schema),
            "schema": (fleet.control_db, self.schema),
            "database": (self.database, fleet.shared_schema),
        }[to]
        # the placement the tenant is in now, as the control database's registry says it
        eff = fleet.own_row(self.owner) if self.owner else None
        self.current = (eff["kind"], eff["schema_name"], eff["database"]) if eff else ("shared", None, None)
        self.inserted_row = self.row is None
        self.built = self.frozen = False
        self.steps: list[dict[str, Any]] = []
        self.report: dict[str, Any] = {
            "tenant": t.id,
            "path": t.path,
            "from": {"database": self.s_db, "schema": self.s_schema},
            "to": {"kind": to, "database": self.d_db, "schema": self.d_schema},
            "tenants": self.ids,
            "steps": self.steps,
        }

    @property
    def new_values(self) -> tuple[str, str | None, str | None]:
        return (
            self.to,
            self.schema if self.to == "schema" else None,
            self.database if self.to == "database" else None,
        )

    def already_there(self) -> bool:
        return (self.d_db, self.d_schema) == (self.s_db, self.s_schema)

    # -- the steps -----------------------------------------------------------------------------
    def build(self) -> None:
        if self.to == "schema":
            build_schema(self.fleet, self.schema, self.migs, None)
        elif self.to == "database":
            build_database(self.fleet, self.database, self.migs, self.t.id, self.ids)
        self.built = self.to != "shared"

    def same_version(self, src: psycopg.Connection, dst: psycopg.Connection) -> str | None:
        a = applied(src, self.s_schema).get(self.s_schema, {})
        b = applied(dst, self.d_schema).get(self.d_schema, {})
        if a != b:
            raise FleetError(
                f"source and target are not at the same version (versions {sorted(a)} / {sorted(b)}, or a"
                " migration changed since the source ran it): run tenancy health / migrate first"
            )
        version = max(a, key=int) if a else None
        self.steps.append({"step": "build", "version": version})
        return version

    def set_status(self, status: str) -> None:
        """The freeze (and its end) in the control database and in a source database placement."""
        self.fleet.ctl(UPSERT_STATUS, [self.t.id, *self.current, status])
        if self.s_db != self.fleet.control_db:
            with self.fleet.connection(self.s_db) as c:
                c.execute(UPSERT_HERE, [self.t.id, status])

    def freeze(self, src: psycopg.Connection) -> None:
        self.set_status("moving")
        self.frozen = True
        since = src.execute("select pg_catalog.clock_timestamp()").fetchone()[0]
        wait_quiet(src, since)
        self.steps.append({"step": "freeze"})

    def copy_and_verify(self, src: psycopg.Connection, dst: psycopg.Connection) -> None:
        tables = data.tables_in(src, self.s_schema)
        data.copy_rows(src, self.s_schema, dst, self.d_schema, tables, self.ids)
        verify = []
        for table, col in tables:
            sn, sd = data.digest(src, self.s_schema, table, col, self.ids)
            dn, dd = data.digest(dst, self.d_schema, table, col, self.ids)
            verify.append({"table": table, "rows": sn, "checksum": sd, "ok": (sn, sd) == (dn, dd)})
            if (sn, sd) != (dn, dd):
                raise FleetError(f"table {table}: source {sn} rows {sd[:12]}, target {dn} rows {dd[:12]}")
        self.steps.append({"step": "copy", "tables": verify})

    def switch(self, version: str | None) -> int:
        if self.to == "database":
            with self.fleet.connection(self.d_db) as c:
                c.execute(
                    "update tenancy.placements set status = 'active', schema_version = %s"
                    " where tenant_id = %s",
                    [version, self.t.id],
                )
        gen = self.fleet.ctl(
            "insert into tenancy.placements as p"
            " (tenant_id, kind, schema_name, database, status, schema_version)"
            " values (%s, %s, %s, %s, 'active', %s)"
            " on conflict (tenant_id) do update set kind = excluded.kind,"
            " schema_name = excluded.schema_name, database = excluded.database, status = 'active',"
            " schema_version = excluded.schema_version, generation = p.generation + 1"
            " returning generation",
            [self.t.id, *self.new_values, version],
        )[0][0]
        self.steps.append({"step": "switch", "generation": gen})
        return gen

    def point_source_here(self, gen: int, status: str) -> None:
        """The source database's row of the tenant says where it went (set_tenant there is TN009)."""
        with self.fleet.connection(self.s_db) as c:
            c.execute(
                "insert into tenancy.placements as p"
                " (tenant_id, kind, schema_name, database, status, generation)"
                " values (%s, %s, %s, %s, %s, %s) on conflict (tenant_id) do update set kind = excluded.kind,"
                " schema_name = excluded.schema_name, database = excluded.database, status = excluded.status,"
                " generation = excluded.generation",
                [self.t.id, *self.new_values, status, gen],
            )

    def remove_source(self, gen: int) -> None:
        if self.s_db != self.fleet.control_db and not self.own_source:
            # the tenant lived in its partner's database: its row there now says where it went
            self.point_source_here(gen, "active")
        if self.own_source and self.source_kind == "database" and P.service_of(self.s_db):
            # a service's database is kept: the rows go, the tenant's row there is retired, naming
            # where it went (a stale router gets TN009 there and asks again)
            self.point_source_here(gen, "retired")
        removed = remove(
            self.fleet, self.source_kind, self.s_db, self.s_schema, self.ids, own=self.own_source
        )
        self.steps.append({"step": "remove_source", **removed})

    def undo(self) -> None:
        """Unfreeze the source and remove what was built (the tenant stays where it was)."""
        if self.frozen:
            if self.inserted_row:
                for db in dict.fromkeys([self.fleet.control_db, self.s_db]):
                    with self.fleet.connection(db) as c:
                        c.execute("delete from tenancy.placements where tenant_id = %s", [self.t.id])
            else:
                self.set_status("active")
        if self.built and P.service_of(self.d_db):
            # a service's database is kept: the copied rows go, the tenant's row there is retired,
            # naming where the tenant still is
            with self.fleet.connection(self.d_db) as c:
                data.delete_rows(c, self.d_schema, self.ids)
                c.execute(
                    "update tenancy.placements set kind = %s, schema_name = %s, database = %s,"
                    " status = 'retired' where tenant_id = %s",
                    [*self.current, self.t.id],
                )
        elif self.built:
            remove(self.fleet, self.to, self.d_db, self.d_schema, self.ids, own=True)
        elif self.to == "shared" and self.frozen:
            with suppress(psycopg.Error), self.fleet.connection(self.d_db) as c:
                data.delete_rows(c, self.d_schema, self.ids)

    # -- the whole move ------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        try:
            self.build()
            with (
                self.fleet.connect(self.s_db, stable_text=True) as src,
                self.fleet.connect(self.d_db, stable_text=True) as dst,
            ):
                version = self.same_version(src, dst)
                self.freeze(src)
                self.copy_and_verify(src, dst)
            gen = self.switch(version)
        except (FleetError, psycopg.Error) as exc:
            self.undo()
            self.fleet.event(self.t.id, self.to, "move_failed", {**self.report, "error": str(exc)})
            raise FleetError(f"move of {self.t.name} to {self.to} failed, nothing changed: {exc}") from exc
        self.remove_source(gen)
        self.report.update(status="active", generation=gen)
        self.fleet.event(self.t.id, self.to, "moved", self.report)
        return self.report


def move(
    fleet: Fleet, t: Tenant, to: str, migs: list[P.Migration], *, service: str | None = None
) -> dict[str, Any]:
    m = Move(fleet, t, to, migs, service)
    if m.already_there():
        return {"tenant": t.id, "path": t.path, "to": to, "status": "active", "note": "already there"}
    return m.run()


def wait_quiet(conn: psycopg.Connection, since: dt.datetime, timeout: float = 15.0) -> None:
    """Wait for the transactions that began before the freeze (they may still write)."""
    deadline = time.monotonic() + timeout
    while True:
        n = conn.execute(
            "select count(*) from pg_catalog.pg_stat_activity where datname = current_database()"
            " and pid <> pg_catalog.pg_backend_pid() and xact_start < %s",
            [since],
        ).fetchone()[0]
        if not n:
            return
        if time.monotonic() > deadline:
            raise FleetError(f"{n} transaction(s) begun before the freeze are still open")
        time.sleep(0.05)


def remove(
    fleet: Fleet, kind: str, database: str, schema: str, ids: list[str], *, own: bool
) -> dict[str, Any]:
    """A placement's rows of ids, or the placement itself: DROP SCHEMA / DROP DATABASE of its own; a
    service's database is kept (only its rows of ids are deleted)."""
    if own and kind == "schema":
        fleet.ctl(sql.SQL("drop schema if exists {} cascade").format(ident(schema)))
        fleet.ctl("delete from tenancy.placement_migrations where schema_name = %s", [schema])
        return {"dropped_schema": schema}
    if own and kind == "database" and P.service_of(database) is None:
        fleet.ctl(sql.SQL("drop database if exists {} with (force)").format(ident(database)))
        return {"dropped_database": database}
    with fleet.connection(database) as c:
        deleted = data.delete_rows(c, schema, ids)
    return {"deleted_rows": deleted}


def forget_tenants(conn: psycopg.Connection, ids: list[str]) -> None:
    """The registry and tenants rows of ids in a database placement that no longer houses them
    (customers first; a partner with another customer there keeps its row)."""
    with conn.transaction():
        conn.execute("delete from tenancy.placements where tenant_id = any(%s::uuid[])", [ids])
        conn.execute("delete from tenancy.tenants where id = any(%s::uuid[]) and tier = 2", [ids])
        conn.execute(
            "delete from tenancy.tenants t where t.id = any(%s::uuid[]) and t.tier = 1"
            " and not exists (select from tenancy.tenants c where c.parent_id = t.id)",
            [ids],
        )
