"""``tenancy migrate``: the pending migrations in every placement, then the shared placement's
privileges copied where they differ.

Per database ONE query reads every placement's history (and one its privileges), so a placement with
nothing pending and nothing to grant costs nothing more. The shared placement and the template go
first, then the other placements in parallel; each placement takes its own advisory lock; each
migration runs in its own transaction with the placement's schema first on the search_path, registers
the new tables that have a ``tenant_id uuid`` column and records itself in the placement's history in
that transaction. A failure is recorded, the others go on, and a rerun resumes from the history.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from psycopg import sql

from . import plan as P
from . import privileges
from .core import Fleet, FleetError, Target, ident, why
from .progress import Progress

REGISTER_NEW = """
select tenancy.register_table(c.oid::regclass)
from pg_catalog.pg_class c
join pg_catalog.pg_attribute a on a.attrelid = c.oid
where c.relnamespace = (select n.oid from pg_catalog.pg_namespace n where n.nspname = %s)
  and c.relkind in ('r', 'p') and not c.relispartition
  and a.attname = 'tenant_id' and a.atttypid = 'uuid'::regtype and not a.attisdropped
  and not exists (select from tenancy.scoped_tables s where s.relid = c.oid)
"""

RECORD = (
    "insert into tenancy.placement_migrations (schema_name, version, name, checksum, transactional)"
    " values (%s, %s, %s, %s, %s)"
)


def applied(conn: psycopg.Connection, schema: str | None = None) -> dict[str, dict[str, str]]:
    """schema -> version -> checksum of the histories in conn's database (one schema, or all)."""
    q = "select schema_name, version, checksum from tenancy.placement_migrations"
    rows = conn.execute(q + (" where schema_name = %s" if schema else ""), [schema] if schema else None)
    out: dict[str, dict[str, str]] = {}
    for s, v, c in rows:
        out.setdefault(s, {})[v] = c
    return out


def _record(conn: psycopg.Connection, target: Target, m: P.Migration) -> None:
    """The history row, the new tables registered and the registry's version: the caller's transaction."""
    conn.execute(REGISTER_NEW, [target.schema])
    conn.execute(RECORD, [target.schema, m.version, m.name, m.checksum, m.transactional])
    if target.kind == "schema":
        conn.execute(
            "update tenancy.placements set schema_version = %s where tenant_id = %s",
            [m.version, target.tenant],
        )
    elif target.kind == "database":
        # the placement's own copy of the registry rows of the tenants housed here
        conn.execute(
            "update tenancy.placements set schema_version = %s"
            " where kind = 'database' and database = pg_catalog.current_database()",
            [m.version],
        )


def _apply(conn: psycopg.Connection, target: Target, m: P.Migration) -> None:
    if m.transactional:
        with conn.transaction():
            conn.execute(sql.SQL("set local search_path = {}").format(ident(target.schema)))
            conn.execute(m.sql)
            _record(conn, target, m)
        return
    # -- tenancy: no-transaction: statement by statement, then the history in a transaction
    conn.execute(sql.SQL("set search_path = {}").format(ident(target.schema)))
    try:
        for stmt in P.split_statements(m.sql):
            conn.execute(stmt)
    finally:
        conn.execute("reset search_path")
    with conn.transaction():
        _record(conn, target, m)


def _result(target: Target, **kw: Any) -> dict[str, Any]:
    return {
        "placement": target.label,
        "kind": target.kind,
        "tenant": target.tenant,
        "database": target.database,
        "schema": target.schema,
        "applied": [],
        **kw,
    }


def migrate_one(fleet: Fleet, target: Target, migs: list[P.Migration]) -> dict[str, Any]:
    """The pending migrations of one placement, under its advisory lock."""
    res = _result(target)
    try:
        with fleet.connection(target.database) as conn:
            key = P.lock_key(target.schema)
            conn.execute("select pg_catalog.pg_advisory_lock(pg_catalog.hashtext(%s))", [key])
            try:
                pl = P.plan(migs, applied(conn, target.schema).get(target.schema, {}))
                if pl.blocked:
                    res.update(status="blocked", error=f"migrations changed since applied: {pl.changed}")
                    return res
                for m in pl.pending:
                    try:
                        _apply(conn, target, m)
                    except psycopg.Error as exc:
                        msg = exc.diag.message_primary or str(exc)
                        error = P.migration_error(m, msg, _position(exc))
                        res.update(status="failed", failed=m.label, error=f"{error} (in {target.label})")
                        return res
                    res["applied"].append(m.label)
            finally:
                if not conn.closed:
                    conn.execute("select pg_catalog.pg_advisory_unlock(pg_catalog.hashtext(%s))", [key])
    except psycopg.Error as exc:
        res.update(status="failed", error=f"{target.label}: {why(exc)}")
        return res
    res["status"] = "migrated" if res["applied"] else "current"
    if target.kind == "database" and res["applied"]:
        fleet.ctl(
            "update tenancy.placements set schema_version = %s where kind = 'database' and database = %s",
            [migs[-1].version, target.database],
        )
    return res


def _position(exc: psycopg.Error) -> int | None:
    pos = exc.diag.statement_position
    return int(pos) if pos and pos.isdigit() else None


def _survey(fleet: Fleet, database: str, schemas: list[str]) -> tuple[Any, Any]:
    """(histories, privileges) of the placements of one database; an exception instead when it failed."""
    try:
        with fleet.connection(database) as conn:
            return applied(conn), privileges.read(conn, schemas)
    except psycopg.Error as exc:
        return exc, None


def migrate(
    fleet: Fleet, migs: list[P.Migration], targets: list[Target], *, parallel: int = 4, dry_run: bool = False
) -> list[dict[str, Any]]:
    by_db: dict[str, list[str]] = {}
    for t in targets:
        by_db.setdefault(t.database, []).append(t.schema)
    with ThreadPoolExecutor(max_workers=max(parallel, 1)) as ex:
        surveys = dict(zip(by_db, ex.map(lambda db: _survey(fleet, db, by_db[db]), by_db), strict=True))
    results: list[dict[str, Any]] = []
    todo: list[tuple[Target, P.Plan]] = []
    for t in targets:
        hist = surveys[t.database][0]
        if isinstance(hist, Exception):
            results.append(_result(t, status="failed", error=f"{t.label}: {why(hist)}"))
            continue
        pl = P.plan(migs, hist.get(t.schema, {}))
        if pl.blocked:
            results.append(
                _result(t, status="blocked", error=f"migrations changed since applied: {pl.changed}")
            )
        else:
            todo.append((t, pl))
    if dry_run:
        want = privileges.shared(fleet)
        for t, pl in todo:
            acl = surveys[t.database][1][t.schema]
            grants = (
                []
                if t.kind in ("shared", "template")
                else P.privilege_changes(privileges.wanted(want, acl), acl)
            )
            status = "pending" if pl.pending or grants else "current"
            results.append(
                _result(
                    t,
                    status=status,
                    pending=[m.label for m in pl.pending],
                    privileges=[P.privilege_sql(t.schema, c) for c in grants],
                )
            )
        return results
    first = [(t, pl) for t, pl in todo if t.kind in ("shared", "template") and pl.pending]
    results += [
        _result(t, status="current") for t, pl in todo if t.kind in ("shared", "template") and not pl.pending
    ]
    rest = [(t, pl) for t, pl in todo if t.kind not in ("shared", "template")]
    want = privileges.shared(fleet)

    def busy(item: tuple[Target, P.Plan]) -> bool:
        t, pl = item
        have = surveys[t.database][1][t.schema]
        return bool(pl.pending) or bool(P.privilege_changes(privileges.wanted(want, have), have))

    prog = Progress("migrate", len(first) + sum(1 for x in rest if busy(x)), quiet=fleet.quiet)
    for t, _pl in first:
        r = migrate_one(fleet, t, migs)
        prog.step(t.label, r["status"] != "failed")
        results.append(r)
    if first:  # the shared placement's privileges once its migrations ran: what every placement gets
        want = privileges.shared(fleet)
    work = [x for x in rest if busy(x)]
    results += [_result(t, status="current") for t, pl in rest if not busy((t, pl))]

    def one(item: tuple[Target, P.Plan]) -> dict[str, Any]:
        t, pl = item
        r = migrate_one(fleet, t, migs) if pl.pending else _result(t, status="current")
        if r["status"] in ("failed", "blocked"):
            return r
        # the privileges surveyed before, unless migrations ran since (they may grant)
        have = None if r["applied"] else surveys[t.database][1][t.schema]
        try:
            with fleet.connection(t.database) as conn:
                r["privileges"] = privileges.copy(conn, t.schema, want, where=t.label, have=have)
        except (FleetError, psycopg.Error) as exc:
            r.update(status="failed", error=f"privileges of {t.label}: {why(exc)}")
            return r
        if r["privileges"] and r["status"] == "current":
            r["status"] = "privileges"
        return r

    with ThreadPoolExecutor(max_workers=max(parallel, 1)) as ex:
        for r in ex.map(one, work):
            prog.step(r["placement"], r["status"] != "failed")
            results.append(r)
    prog.close()
    for r in results:
        if r["status"] in ("failed", "blocked"):
            fleet.event(
                r["tenant"],
                r["placement"],
                "migrate_" + r["status"],
                {k: r.get(k) for k in ("database", "schema", "failed", "error", "applied")},
            )
    return results
