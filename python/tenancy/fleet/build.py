"""Building a placement (provision and move): a schema in the control database, or a database of its
own (a new database on the control server, from a template the command keeps migrated, or the
database a libpq service names on any server), at the fleet's migration version, with the shared
placement's privileges. Every step is idempotent, so a rerun resumes.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from . import plan as P
from . import privileges
from .core import Fleet, FleetError, Target, ident, own_ddl, why
from .migrate import migrate_one


def ensure_extension(fleet: Fleet, conn: psycopg.Connection, where: str) -> None:
    """The extension in a placement database, created when missing, at the control database's version."""
    row = conn.execute("select extversion from pg_catalog.pg_extension where extname = 'tenancy'").fetchone()
    if row is None:
        conn.execute("set client_min_messages = warning")
        try:
            conn.execute("create extension tenancy cascade")
        except psycopg.Error as exc:
            raise FleetError(
                f"cannot create the extension tenancy in {where}: {why(exc)}"
                " (is it installed on that server, with plpython3u? the role must be a superuser there)"
            ) from exc
        finally:
            conn.execute("reset client_min_messages")
        row = conn.execute(
            "select extversion from pg_catalog.pg_extension where extname = 'tenancy'"
        ).fetchone()
    if row[0] != fleet.version:
        raise FleetError(
            f"{where} has tenancy {row[0]}, the control database {fleet.version}:"
            " run ALTER EXTENSION tenancy UPDATE there (after installing the same version on that server)"
        )


def ensure_template(fleet: Fleet, migs: list[P.Migration]) -> str:
    """The template database of the control server's database placements, migrated."""
    name = P.template_name(fleet.control_db)
    if not fleet.database_exists(name):
        fleet.ctl(sql.SQL("create database {} template template0").format(ident(name)))
    with fleet.connect(name) as c:
        ensure_extension(fleet, c, f"database {name}")
    r = migrate_one(fleet, Target(name, fleet.shared_schema, None, "template"), migs)
    if r["status"] in ("failed", "blocked"):
        raise FleetError(f"template {name}: {r.get('error')}")
    return name


def tenant_rows_into(fleet: Fleet, conn: psycopg.Connection, ids: list[str]) -> None:
    """The tenants rows a database placement needs (the tenants, their ancestors) with the same uuids."""
    rows = fleet.tenant_rows(ids)
    with conn.transaction():
        for r in rows:
            conn.execute(
                "insert into tenancy.tenants (id, parent_id, tier, slug, name, status, external_id, settings,"
                " created_at, updated_at) values (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)"
                " on conflict (id) do nothing",
                list(r),
            )


def copy_privileges(fleet: Fleet, conn: psycopg.Connection, schema: str, where: str) -> list[str]:
    return privileges.copy(conn, schema, privileges.shared(fleet), where=where)


def build_schema(fleet: Fleet, schema: str, migs: list[P.Migration], tenant: str | None) -> dict[str, Any]:
    """A schema placement in the control database: the schema, the migrations, the privileges."""
    with fleet.connection() as c, c.transaction():
        own_ddl(c)
        c.execute(sql.SQL("create schema if not exists {}").format(ident(schema)))
    r = migrate_one(fleet, Target(fleet.control_db, schema, tenant, "schema"), migs)
    if r["status"] in ("failed", "blocked"):
        raise FleetError(f"schema {schema}: migrations: {r.get('error')}")
    with fleet.connection() as c:
        r["privileges"] = copy_privileges(fleet, c, schema, f"schema {schema}")
    return r


def build_database(
    fleet: Fleet, database: str, migs: list[P.Migration], tenant: str, ids: list[str]
) -> dict[str, Any]:
    """A database placement: a new database of the control server from the template, or the database of
    a libpq service; the extension, the tenants rows, its registry row (provisioning), the migrations,
    the privileges."""
    where = P.describe_database(database)
    if P.service_of(database) is None and not fleet.database_exists(database):
        tmpl = ensure_template(fleet, migs)
        try:
            fleet.ctl(sql.SQL("create database {} template {}").format(ident(database), ident(tmpl)))
        except psycopg.errors.ObjectInUse:
            # someone is connected to the template: start from template0 instead
            fleet.ctl(sql.SQL("create database {} template template0").format(ident(database)))
    try:
        conn = fleet.connect(database)
    except psycopg.OperationalError as exc:
        raise FleetError(f"{where} is unreachable: {why(exc)}") from exc
    with conn:
        ensure_extension(fleet, conn, where)
        tenant_rows_into(fleet, conn, ids)
        # the placement's own copy of its registry row names it by its name there (set_tenant there
        # compares it with current_database())
        conn.execute(
            "insert into tenancy.placements (tenant_id, kind, database, status)"
            " values (%s, 'database', pg_catalog.current_database(), 'provisioning')"
            " on conflict (tenant_id) do update set kind = 'database', schema_name = null,"
            " database = excluded.database, status = 'provisioning'",
            [tenant],
        )
    r = migrate_one(fleet, Target(database, fleet.shared_schema, tenant, "database"), migs)
    if r["status"] in ("failed", "blocked"):
        raise FleetError(f"{where}: migrations: {r.get('error')}")
    with fleet.connect(database) as conn:
        r["privileges"] = copy_privileges(fleet, conn, fleet.shared_schema, where)
    return r


def new_placement_problems(fleet: Fleet, database: str, schema: str, migs: list[P.Migration]) -> list[str]:
    """The health of ONE new placement (what provision checks before it says active): its migrations
    and its tables against the shared placement's. A few queries, whatever the fleet's size."""
    with fleet.connection() as c:
        tables = [r[0] for r in c.execute(_SHARED_TABLES, [fleet.shared_schema])]
    with fleet.connection(database) as c:
        applied = {
            v: s
            for v, s in c.execute(
                "select version, checksum from tenancy.placement_migrations where schema_name = %s", [schema]
            )
        }
        present = dict(
            c.execute(
                "select c.relname::text, exists (select from tenancy.scoped_tables s where s.relid = c.oid)"
                " from pg_catalog.pg_class c where c.relkind in ('r', 'p') and c.relnamespace ="
                " (select n.oid from pg_catalog.pg_namespace n where n.nspname = %s)",
                [schema],
            ).fetchall()
        )
    pl = P.plan(migs, applied)
    out = [f"migration {m.label} is missing" for m in pl.pending]
    out += [f"migration {v} changed" for v in pl.changed]
    out += [f"migration {v} is extra" for v in pl.extra]
    for t in tables:
        if t not in present:
            out.append(f"table {t} is missing")
        elif not present[t]:
            out.append(f"table {t} is not registered")
    return out


_SHARED_TABLES = """
select c.relname::text
from tenancy.scoped_tables s
join pg_catalog.pg_class c on c.oid = s.relid
where c.relnamespace = (select n.oid from pg_catalog.pg_namespace n where n.nspname = %s)
  and not c.relispartition
"""
