"""Placements carry the shared placement's privileges: on the schema, the registered tables (and their
columns) and the sequences those tables own, the same grants as in the shared schema of the control
database, grants made by hand (``GRANT ... ON ALL TABLES IN SCHEMA public TO app``) included.

``copy`` makes one placement's ACLs equal to the shared ones (on provision, move and migrate);
``findings`` is what health reports. Ownership is not copied: the owner of an object is left out on
both sides.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from . import plan as P
from .core import Fleet, FleetError, own_ddl

ACLS = """
with s as (
    select n.oid, n.nspname, n.nspowner, n.nspacl
    from pg_catalog.pg_namespace n where n.nspname = any(%(schemas)s)
), reg as (
    select c.oid, c.relname, c.relowner, c.relacl, s.nspname
    from s
    join pg_catalog.pg_class c on c.relnamespace = s.oid
    where c.relkind in ('r', 'p') and not c.relispartition
      and exists (select from tenancy.scoped_tables st where st.relid = c.oid)
), objs as (
    select s.nspname as schema, 'schema' as kind, '' as name,
        coalesce(s.nspacl, pg_catalog.acldefault('n', s.nspowner)) as acl, s.nspowner as owner
    from s
    union all
    select reg.nspname, 'table', reg.relname::text,
        coalesce(reg.relacl, pg_catalog.acldefault('r', reg.relowner)), reg.relowner
    from reg
    union all
    select reg.nspname, 'column', reg.relname || '.' || a.attname, a.attacl, reg.relowner
    from reg
    join pg_catalog.pg_attribute a on a.attrelid = reg.oid
    where a.attnum > 0 and not a.attisdropped
    union all
    select reg.nspname, 'sequence', q.relname::text,
        coalesce(q.relacl, pg_catalog.acldefault('s', q.relowner)), q.relowner
    from reg
    join pg_catalog.pg_depend d on d.refclassid = 'pg_catalog.pg_class'::regclass and d.refobjid = reg.oid
        and d.classid = 'pg_catalog.pg_class'::regclass and d.deptype in ('a', 'i')
    join pg_catalog.pg_class q on q.oid = d.objid and q.relkind = 'S'
)
-- one row per ACL entry, and one with nulls for an object that has none (it exists: its privileges
-- can be compared)
select o.schema, o.kind, o.name,
    case when x.grantee = 0 then 'PUBLIC' else pg_catalog.pg_get_userbyid(x.grantee)::text end,
    x.privilege_type, x.is_grantable
from objs o
left join lateral (
    select e.* from pg_catalog.aclexplode(o.acl) e where e.grantee <> o.owner
) x on true
"""


class Acl(set[P.Privilege]):
    """The ACL entries of one placement schema, and which of its objects exist ((kind, name))."""

    def __init__(self) -> None:
        super().__init__()
        self.objects: set[tuple[str, str]] = set()


def read(conn: psycopg.Connection, schemas: Iterable[str]) -> dict[str, Acl]:
    """The ACL entries of each schema (one query for any number of schemas)."""
    names = list(dict.fromkeys(schemas))
    out: dict[str, Acl] = {s: Acl() for s in names}
    for schema, kind, name, grantee, priv, grantable in conn.execute(ACLS, {"schemas": names}):
        out[schema].objects.add((kind, name))
        if grantee is not None:
            out[schema].add(P.Privilege(kind, name, grantee, priv, grantable))
    return out


def wanted(want: set[P.Privilege], have: Acl) -> set[P.Privilege]:
    """The shared placement's entries on the objects this placement has (a missing table is health's
    finding of its own, not a privilege to grant)."""
    return {p for p in want if (p.kind, p.name) in have.objects}


def shared(fleet: Fleet) -> set[P.Privilege]:
    """The shared placement's privileges: what every placement gets."""
    with fleet.connection() as c:
        return read(c, [fleet.shared_schema])[fleet.shared_schema]


def missing_roles(conn: psycopg.Connection, privs: Iterable[P.Privilege]) -> list[str]:
    names = sorted({p.grantee for p in privs if p.grantee != "PUBLIC"})
    if not names:
        return []
    found = {
        r[0]
        for r in conn.execute(
            "select rolname::text from pg_catalog.pg_roles where rolname = any(%s)", [names]
        )
    }
    return [n for n in names if n not in found]


def copy(
    conn: psycopg.Connection,
    schema: str,
    want: set[P.Privilege],
    *,
    where: str,
    have: Acl | None = None,
    dry_run: bool = False,
) -> list[str]:
    """Make the ACLs of placement schema `schema` (on conn's database) equal to `want`; the statements
    run (or, with dry_run, that would run). A role the shared placement grants to that does not exist
    on this server is an error naming it."""
    if have is None:
        have = read(conn, [schema])[schema]
    changes = P.privilege_changes(wanted(want, have), have)
    if not changes:
        return []
    missing = missing_roles(conn, [c.privilege for c in changes if c.grant])
    if missing:
        raise FleetError(
            f"role{'s' if len(missing) > 1 else ''} {', '.join(missing)} (granted privileges in the shared"
            f" placement) {'do' if len(missing) > 1 else 'does'} not exist on the server of this placement"
            f" ({where}): roles belong to a server, so create them there (with the same memberships, e.g."
            " tenancy.grant_app) and run the command again"
        )
    stmts = [P.privilege_sql(schema, c) for c in changes]
    if not dry_run:
        with conn.transaction():
            own_ddl(conn)
            for s in stmts:
                conn.execute(s)
    return stmts
