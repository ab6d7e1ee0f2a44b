"""What every command shares: connections (a psycopg_pool per database, as tenancy.router keeps them),
the control database's registry (tenants, placements, events) and where a tenant's rows live.

A placement database is named by its registry value: a database of the control server (its name) or
``service=NAME``, the database a libpq service names on any server (host, port, database and
credentials from the service file, a password file or the environment: none is stored).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

from . import plan as P


class FleetError(Exception):
    """A step failed: exit code 1 (the message says which and why)."""


@dataclass(frozen=True)
class Tenant:
    id: str
    path: str
    tier: int
    parent: str | None

    @property
    def name(self) -> str:
        return self.path or self.id


@dataclass(frozen=True)
class Target:
    """One placement as migrate sees it: a schema in a database (a registry value)."""

    database: str
    schema: str
    tenant: str | None
    kind: str  # shared | template | schema | database

    @property
    def label(self) -> str:
        if self.kind in ("shared", "template"):
            return f"{self.kind} {self.database}.{self.schema}"
        if self.kind == "database":
            service = P.service_of(self.database)
            return f"database service {service}" if service else f"database {self.database}"
        return f"schema {self.schema}"


# session settings under which a row's text (what move and export checksum) is the same on every
# server and in every session
STABLE_TEXT = (
    "set timezone = 'UTC'; set datestyle = 'ISO, YMD'; set intervalstyle = 'postgres';"
    " set extra_float_digits = 1; set bytea_output = 'hex'"
)


def ident(*names: str) -> sql.Composable:
    return sql.Identifier(*names)


class Fleet:
    """The control database, the pools and the registry reads every command uses."""

    def __init__(self, dsn: str, *, shared_schema: str = "public", quiet: bool = False, per_db: int = 4):
        self.dsn = dsn
        self.shared_schema = shared_schema
        self.quiet = quiet
        self.per_db = max(per_db, 1)
        # one direct connection first: an unreachable control database is libpq's own message (exit 2)
        with psycopg.connect(dsn, autocommit=True) as c:
            self.control_db: str = c.info.dbname
            row = c.execute(
                "select extversion from pg_catalog.pg_extension where extname = 'tenancy'"
            ).fetchone()
        if row is None:
            raise P.UsageError(
                f"database {self.control_db} has no tenancy extension: is it the control database?"
            )
        self.version: str = row[0]
        self.prefix = P.prefix(self.control_db)
        # every placement in the control database (shared, schemas, the template's migrations) goes
        # through this pool: never more than per_db connections to it, as tenancy.router bounds them.
        # No reset callback: psycopg_pool runs one in a worker, so a connection handed back would not be
        # ready for the next statement and the pool would grow (a new backend: PL/Python loaded again);
        # a command leaves no session state behind (it unlocks and resets what it sets)
        self._pool = ConnectionPool(
            self.conninfo(self.control_db),
            min_size=0,
            max_size=self.per_db,
            kwargs={"autocommit": True},
            num_workers=1,
            timeout=120,
            name="tenancy-control",
            open=True,
        )

    # -- connections ---------------------------------------------------------------------------
    def conninfo(self, database: str) -> str:
        """libpq parameters of a placement database: the service alone (it supplies everything), or the
        control DSN with another database name."""
        service = P.service_of(database)
        if service is not None:
            return make_conninfo(f"service={service}")
        return make_conninfo(self.dsn, dbname=database)

    @contextmanager
    def connection(self, database: str | None = None) -> Iterator[psycopg.Connection]:
        """An autocommit connection: pooled for the control database; a database placement is visited
        once per command, so it gets a connection of its own (an unreachable one fails at once, with
        libpq's message, rather than after a pool's timeout)."""
        if database is None or database == self.control_db:
            with self._pool.connection() as c:
                yield c
            return
        with self.connect(database) as c:
            yield c

    def connect(self, database: str, *, stable_text: bool = False) -> psycopg.Connection:
        """A connection of its own (a copy, a freeze, DDL that must not share a pooled session)."""
        conn = psycopg.connect(self.conninfo(database), autocommit=True)
        if stable_text:
            conn.execute(STABLE_TEXT)
        return conn

    def close(self) -> None:
        self._pool.close()

    def ctl(self, query: Any, params: Sequence[Any] | dict[str, Any] | None = None) -> list[tuple]:
        with self.connection() as c:
            cur = c.execute(query, params)
            return cur.fetchall() if cur.description is not None else []

    def event(self, tenant: str | None, placement: str, action: str, detail: dict[str, Any]) -> None:
        self.ctl(
            "insert into tenancy.fleet_events (tenant_id, placement, action, detail) values (%s, %s, %s, %s)",
            [tenant, placement, action, json.dumps(detail, default=str)],
        )

    def database_exists(self, name: str) -> bool:
        return bool(self.ctl("select from pg_catalog.pg_database where datname = %s", [name]))

    # -- tenants and placements ----------------------------------------------------------------
    def resolve(self, arg: str) -> Tenant:
        kind, value = P.parse_tenant(arg)
        try:
            if kind == "path":
                value = str(self.ctl("select tenancy.tenant_id(%s)", [value])[0][0])
            rows = self.ctl(
                "select t.id::text, tenancy.tenant_path(t.id), t.tier, t.parent_id::text"
                " from tenancy.tenants t where t.id = %s",
                [value],
            )
        except psycopg.Error as exc:
            # the server's message names the tenant already ("unknown tenant path 'x/y': ...")
            raise P.UsageError(exc.diag.message_primary or str(exc).strip()) from exc
        if not rows:
            raise P.UsageError(f"unknown tenant {value}: no tenant has this id")
        tid, path, tier, parent = rows[0]
        return Tenant(tid, path or "", tier, parent)

    def own_row(self, tenant: str) -> dict[str, Any] | None:
        rows = self.ctl(
            "select kind, schema_name, database, status, schema_version, generation"
            " from tenancy.placements where tenant_id = %s",
            [tenant],
        )
        if not rows:
            return None
        k = ("kind", "schema_name", "database", "status", "schema_version", "generation")
        return dict(zip(k, rows[0], strict=True))

    def home(self, t: Tenant) -> tuple[str, str, str | None]:
        """(database, schema, owner) where the tenant's rows live; owner is the tenant whose placement
        row it is (None: shared)."""
        for who in [t.id] + ([t.parent] if t.tier == 2 and t.parent else []):
            row = self.own_row(who)
            if row:
                if row["kind"] == "schema":
                    return (self.control_db, row["schema_name"], who)
                if row["kind"] == "database":
                    return (row["database"], self.shared_schema, who)
                return (self.control_db, self.shared_schema, who)
        return (self.control_db, self.shared_schema, None)

    def moving_set(self, t: Tenant) -> list[str]:
        """The tenant and, for a partner, its customers without a placement row (they live with it)."""
        if t.tier != 1:
            return [t.id]
        rows = self.ctl(
            "select t.id::text from tenancy.tenants t where t.parent_id = %s"
            " and not exists (select from tenancy.placements p where p.tenant_id = t.id) order by t.id",
            [t.id],
        )
        return [t.id] + [r[0] for r in rows]

    def targets(self, tenant: Tenant | None = None) -> list[Target]:
        """The placements migrate visits: the shared one and the template first (all of them), then one
        per schema and per database (a database housing several tenants once)."""
        out: list[Target] = []
        if tenant is None:
            out.append(Target(self.control_db, self.shared_schema, None, "shared"))
            tmpl = P.template_name(self.control_db)
            if self.database_exists(tmpl):
                out.append(Target(tmpl, self.shared_schema, None, "template"))
        rows = self.ctl(
            "select tenant_id::text, kind, schema_name, database from tenancy.placements"
            " where kind <> 'shared' and status not in ('retired', 'provisioning')"
            + (" and tenant_id = %s" if tenant else "")
            + " order by kind, tenant_id",
            [tenant.id] if tenant else None,
        )
        seen: set[tuple[str, str]] = set()
        for tid, kind, schema, database in rows:
            t = (
                Target(self.control_db, schema, tid, "schema")
                if kind == "schema"
                else Target(database, self.shared_schema, tid, "database")
            )
            if (t.database, t.schema) not in seen:
                seen.add((t.database, t.schema))
                out.append(t)
        if tenant is not None and not out:
            db, schema, _owner = self.home(tenant)
            out.append(Target(db, schema, None, "shared" if db == self.control_db else "database"))
        return out

    def tenant_rows(self, ids: list[str]) -> list[tuple]:
        """The tenants rows a database placement needs (the tenants, their ancestors), parents first."""
        return self.ctl(
            "with recursive up as (select t.* from tenancy.tenants t where t.id = any(%s::uuid[])"
            " union select p.* from tenancy.tenants p join up on up.parent_id = p.id)"
            " select distinct id, parent_id, tier, slug, name, status, external_id, settings::text,"
            " created_at, updated_at from up order by tier",
            [ids],
        )


def own_ddl(conn: psycopg.Connection) -> None:
    """Mark the command's own DDL in the current transaction (CREATE SCHEMA, GRANT, REVOKE: nothing that
    can change a registered table's row-level security) as tenancy's, so the DDL guards need not look at
    every registered table for each statement. Never for a migration's SQL, nor for a DROP (the guards
    keep the catalog in step with it)."""
    conn.execute(
        "select tenancy._internal_ddl(true)"
        " where pg_catalog.has_function_privilege('tenancy._internal_ddl(boolean)', 'execute')"
    )


def why(exc: BaseException) -> str:
    """An error's message without libpq's connection preamble."""
    msg = str(exc).strip()
    return msg.split("FATAL:")[-1].strip()[:300] if "FATAL:" in msg else msg[:300]
