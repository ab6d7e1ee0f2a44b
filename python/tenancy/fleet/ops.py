"""The fleet operations against the control database and the placements (psycopg 3).

Every operation returns plain dicts (what ``--json`` prints); failures of one placement are recorded
(in the result and in ``tenancy.fleet_events`` of the control database) and the others go on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from . import plan as P
from .progress import Progress


class FleetError(Exception):
    """A step failed: exit code 1 (the message says which and why)."""


@dataclass(frozen=True)
class Tenant:
    id: str
    path: str
    tier: int
    parent: str | None


@dataclass(frozen=True)
class Target:
    """One placement as migrate sees it: a schema in a database."""

    database: str
    schema: str
    tenant: str | None
    kind: str  # shared | template | schema | database

    @property
    def label(self) -> str:
        if self.kind in ("shared", "template"):
            return f"{self.kind} {self.database}.{self.schema}"
        return f"{self.kind} {self.database if self.kind == 'database' else self.schema}"


class Pool:
    """At most `size` connections to one database (the bound on connections per database)."""

    def __init__(self, conninfo: str, size: int) -> None:
        self.conninfo = conninfo
        self._sem = threading.BoundedSemaphore(max(size, 1))
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()

    @contextmanager
    def conn(self) -> Iterator[psycopg.Connection]:
        with self._sem:
            with self._lock:
                c = self._idle.pop() if self._idle else None
            if c is None or c.closed:
                c = psycopg.connect(self.conninfo, autocommit=True)
            ok = False
            try:
                yield c
                ok = True
            finally:
                if ok and not c.closed and c.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                    with self._lock:
                        self._idle.append(c)
                else:
                    c.close()

    def close(self) -> None:
        with self._lock:
            for c in self._idle:
                c.close()
            self._idle.clear()


REGISTER_NEW = """
select tenancy.register_table(c.oid::regclass)
from pg_catalog.pg_class c
join pg_catalog.pg_attribute a on a.attrelid = c.oid
where c.relnamespace = (select n.oid from pg_catalog.pg_namespace n where n.nspname = %s)
  and c.relkind in ('r', 'p') and not c.relispartition
  and a.attname = 'tenant_id' and a.atttypid = 'uuid'::regtype and not a.attisdropped
  and not exists (select from tenancy.scoped_tables s where s.relid = c.oid)
"""

TABLES = """
select c.relname::text, s.tenant_column::text
from tenancy.scoped_tables s
join pg_catalog.pg_class c on c.oid = s.relid
where c.relnamespace = (select n.oid from pg_catalog.pg_namespace n where n.nspname = %s)
  and not c.relispartition
"""

FKS = """
select cl.relname::text, cf.relname::text
from pg_catalog.pg_constraint k
join pg_catalog.pg_class cl on cl.oid = k.conrelid
join pg_catalog.pg_class cf on cf.oid = k.confrelid
where k.contype = 'f'
  and cl.relnamespace = (select n.oid from pg_catalog.pg_namespace n where n.nspname = %s)
  and cf.relnamespace = cl.relnamespace
"""

# check() findings about the role running the command (a superuser, owner of the tables it
# migrated) say nothing about the placements
OWN_ROLE = ("the current role",)


def _ident(*names: str) -> sql.Composable:
    return sql.Identifier(*names)


class Fleet:
    def __init__(self, dsn: str, *, shared_schema: str = "public", quiet: bool = False, per_db: int = 4):
        self.dsn = dsn
        self.shared_schema = shared_schema
        self.quiet = quiet
        self.per_db = per_db
        self.ctl = psycopg.connect(dsn, autocommit=True)  # OperationalError: the caller exits 2
        self.control_db: str = self.ctl.info.dbname
        self.prefix = P.prefix(self.control_db)
        self._pools: dict[str, Pool] = {}
        self._plock = threading.Lock()
        self._ctl_lock = threading.Lock()

    # -- connections ---------------------------------------------------------------------------
    def conninfo(self, database: str) -> str:
        return make_conninfo(self.dsn, dbname=database)

    def pool(self, database: str) -> Pool:
        with self._plock:
            p = self._pools.get(database)
            if p is None:
                p = self._pools[database] = Pool(self.conninfo(database), self.per_db)
            return p

    def close(self) -> None:
        for p in self._pools.values():
            p.close()
        self._pools.clear()
        self.ctl.close()

    def drop_pool(self, database: str) -> None:
        with self._plock:
            p = self._pools.pop(database, None)
        if p:
            p.close()

    def ctl_exec(self, query: Any, params: Sequence[Any] | None = None) -> list[tuple]:
        with self._ctl_lock:
            cur = self.ctl.execute(query, params)
            return cur.fetchall() if cur.description is not None else []

    def event(self, tenant: str | None, placement: str, action: str, detail: dict[str, Any]) -> None:
        self.ctl_exec(
            "insert into tenancy.fleet_events (tenant_id, placement, action, detail) values (%s, %s, %s, %s)",
            [tenant, placement, action, json.dumps(detail, default=str)],
        )

    def database_exists(self, name: str) -> bool:
        return bool(self.ctl_exec("select from pg_catalog.pg_database where datname = %s", [name]))

    # -- tenants and placements ----------------------------------------------------------------
    def resolve(self, arg: str) -> Tenant:
        kind, value = P.parse_tenant(arg)
        try:
            if kind == "path":
                value = str(self.ctl_exec("select tenancy.tenant_id(%s)", [value])[0][0])
            rows = self.ctl_exec(
                "select t.id::text, tenancy.tenant_path(t.id), t.tier, t.parent_id::text"
                " from tenancy.tenants t where t.id = %s",
                [value],
            )
        except psycopg.Error as exc:
            raise P.UsageError(f"unknown tenant {arg!r}: {exc.diag.message_primary or exc}") from exc
        if not rows:
            raise P.UsageError(f"unknown tenant {arg!r}: no tenant has this id")
        tid, path, tier, parent = rows[0]
        return Tenant(tid, path or "", tier, parent)

    def own_row(self, tenant: str) -> dict[str, Any] | None:
        rows = self.ctl_exec(
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
        rows = self.ctl_exec(
            "select t.id::text from tenancy.tenants t where t.parent_id = %s"
            " and not exists (select from tenancy.placements p where p.tenant_id = t.id) order by t.id",
            [t.id],
        )
        return [t.id] + [r[0] for r in rows]

    def targets(self, tenant: Tenant | None = None) -> list[Target]:
        out: list[Target] = []
        if tenant is None:
            out.append(Target(self.control_db, self.shared_schema, None, "shared"))
            tmpl = P.template_name(self.control_db)
            if self.database_exists(tmpl):
                out.append(Target(tmpl, self.shared_schema, None, "template"))
        rows = self.ctl_exec(
            "select tenant_id::text, kind, schema_name, database from tenancy.placements"
            " where kind <> 'shared' and status not in ('retired', 'provisioning')"
            + (" and tenant_id = %s" if tenant else "")
            + " order by kind, tenant_id",
            [tenant.id] if tenant else None,
        )
        for tid, kind, schema, database in rows:
            if kind == "schema":
                out.append(Target(self.control_db, schema, tid, "schema"))
            else:
                out.append(Target(database, self.shared_schema, tid, "database"))
        if tenant is not None and not out:
            db, schema, _owner = self.home(tenant)
            out.append(Target(db, schema, None, "shared" if db == self.control_db else "database"))
        return out

    # -- migrate -------------------------------------------------------------------------------
    def applied(self, conn: psycopg.Connection, schema: str | None = None) -> dict[str, dict[str, str]]:
        q = "select schema_name, version, checksum from tenancy.placement_migrations"
        rows = conn.execute(q + (" where schema_name = %s" if schema else ""), [schema] if schema else None)
        out: dict[str, dict[str, str]] = {}
        for s, v, c in rows:
            out.setdefault(s, {})[v] = c
        return out

    def _apply(self, conn: psycopg.Connection, target: Target, m: P.Migration) -> None:
        path = sql.SQL("set local search_path = {}").format(_ident(target.schema))
        record = (
            "insert into tenancy.placement_migrations (schema_name, version, name, checksum, transactional)"
            " values (%s, %s, %s, %s, %s)"
        )
        args = [target.schema, m.version, m.name, m.checksum, m.transactional]
        if m.transactional:
            with conn.transaction():
                conn.execute(path)
                conn.execute(m.sql)
                conn.execute(REGISTER_NEW, [target.schema])
                conn.execute(record, args)
                if target.tenant:
                    # the registry row of this placement (the control's for a schema, the local
                    # copy in a database placement): same transaction
                    conn.execute(
                        "update tenancy.placements set schema_version = %s where tenant_id = %s",
                        [m.version, target.tenant],
                    )
            return
        # -- tenancy: no-transaction: statement by statement, then the history in a transaction
        conn.execute(sql.SQL("set search_path = {}").format(_ident(target.schema)))
        try:
            for stmt in P.split_statements(m.sql):
                conn.execute(stmt)
        finally:
            conn.execute("reset search_path")
        with conn.transaction():
            conn.execute(REGISTER_NEW, [target.schema])
            conn.execute(record, args)
            if target.tenant:
                conn.execute(
                    "update tenancy.placements set schema_version = %s where tenant_id = %s",
                    [m.version, target.tenant],
                )

    def migrate_one(self, target: Target, migs: list[P.Migration]) -> dict[str, Any]:
        res: dict[str, Any] = {
            "placement": target.label,
            "kind": target.kind,
            "tenant": target.tenant,
            "database": target.database,
            "schema": target.schema,
            "applied": [],
        }
        try:
            with self.pool(target.database).conn() as conn:
                key = P.lock_key(target.schema)
                conn.execute("select pg_catalog.pg_advisory_lock(pg_catalog.hashtext(%s))", [key])
                try:
                    pl = P.plan(migs, self.applied(conn, target.schema).get(target.schema, {}))
                    if pl.blocked:
                        res.update(status="blocked", error=f"migrations changed since applied: {pl.changed}")
                        return res
                    for m in pl.pending:
                        try:
                            self._apply(conn, target, m)
                        except psycopg.Error as exc:
                            res.update(status="failed", failed=m.label, error=str(exc).strip())
                            return res
                        res["applied"].append(m.label)
                finally:
                    if not conn.closed:
                        conn.execute("select pg_catalog.pg_advisory_unlock(pg_catalog.hashtext(%s))", [key])
        except psycopg.Error as exc:
            res.update(status="failed", error=str(exc).strip())
            return res
        res["status"] = "migrated" if res["applied"] else "current"
        if target.kind == "database" and res["applied"]:
            self.ctl_exec(
                "update tenancy.placements set schema_version = %s where tenant_id = %s",
                [migs[-1].version, target.tenant],
            )
        return res

    def migrate(
        self, migs: list[P.Migration], targets: list[Target], *, parallel: int = 4, dry_run: bool = False
    ) -> list[dict[str, Any]]:
        """Control database and template first, then the placements in parallel. Per database ONE
        query reads every placement's history; a placement with nothing pending costs nothing more."""
        histories: dict[str, dict[str, dict[str, str]] | Exception] = {}
        for db in dict.fromkeys(t.database for t in targets):
            try:
                with self.pool(db).conn() as conn:
                    histories[db] = self.applied(conn)
            except psycopg.Error as exc:
                histories[db] = exc
        results: list[dict[str, Any]] = []
        todo: list[Target] = []
        for t in targets:
            hist = histories[t.database]
            base = {
                "placement": t.label,
                "kind": t.kind,
                "tenant": t.tenant,
                "database": t.database,
                "schema": t.schema,
                "applied": [],
            }
            if isinstance(hist, Exception):
                results.append({**base, "status": "failed", "error": str(hist).strip()})
                continue
            pl = P.plan(migs, hist.get(t.schema, {}))
            if pl.blocked:
                results.append(
                    {**base, "status": "blocked", "error": f"migrations changed since applied: {pl.changed}"}
                )
            elif not pl.pending:
                results.append({**base, "status": "current"})
            elif dry_run:
                results.append({**base, "status": "pending", "pending": [m.label for m in pl.pending]})
            else:
                todo.append(t)
        first = [t for t in todo if t.kind in ("shared", "template")]
        rest = [t for t in todo if t.kind not in ("shared", "template")]
        prog = Progress("migrate", len(todo), quiet=self.quiet)
        for t in first:
            r = self.migrate_one(t, migs)
            prog.step(t.label, r["status"] != "failed")
            results.append(r)
        with ThreadPoolExecutor(max_workers=max(parallel, 1)) as ex:
            for r in ex.map(lambda t: self.migrate_one(t, migs), rest):
                prog.step(r["placement"], r["status"] != "failed")
                results.append(r)
        prog.close()
        for r in results:
            if r["status"] in ("failed", "blocked"):
                self.event(
                    r["tenant"],
                    r["placement"],
                    "migrate_" + r["status"],
                    {k: r.get(k) for k in ("database", "schema", "failed", "error", "applied")},
                )
        return results

    # -- health --------------------------------------------------------------------------------
    def expected_tables(self) -> list[str]:
        return [r[0] for r in self.ctl_exec(TABLES, [self.shared_schema])]

    def _findings(
        self,
        conn: psycopg.Connection,
        database: str,
        migs: list[P.Migration] | None,
        tables: list[str],
        prefix: str | None,
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        rows = conn.execute(
            "select severity, tenant_id::text, placement, object, problem"
            " from tenancy.placement_health(%s, %s, %s, %s)",
            [
                json.dumps([m.as_json() for m in migs]) if migs is not None else None,
                tables,
                self.shared_schema,
                prefix,
            ],
        ).fetchall()
        for sev, tid, placement, obj, problem in rows:
            out.append(
                {
                    "severity": sev,
                    "database": database,
                    "tenant": tid,
                    "placement": placement,
                    "object": obj,
                    "problem": problem,
                }
            )
        for sev, obj, problem, _hint in conn.execute(
            "select severity, object, problem, hint from tenancy.check()"
        ):
            if problem.startswith(OWN_ROLE) or sev == "info":
                continue
            out.append(
                {
                    "severity": sev,
                    "database": database,
                    "tenant": None,
                    "placement": None,
                    "object": obj,
                    "problem": f"check(): {problem}",
                }
            )
        return out

    def health(self, migs: list[P.Migration] | None) -> list[dict[str, Any]]:
        tables = self.expected_tables()
        dbs = self.ctl_exec(
            "select tenant_id::text, database, status from tenancy.placements where kind = 'database'"
            " and status <> 'retired' order by database"
        )
        prog = Progress("health", 1 + len(dbs), quiet=self.quiet)
        with self._ctl_lock:
            findings = self._findings(self.ctl, self.control_db, migs, tables, self.prefix)
        prog.step(self.control_db)

        def one(row: tuple) -> list[dict[str, Any]]:
            tid, db, _status = row
            try:
                with self.pool(db).conn() as conn:
                    return self._findings(conn, db, migs, tables, None)
            except psycopg.OperationalError as exc:
                why = str(exc).split("FATAL:")[-1].strip()[:200]
                return [
                    {
                        "severity": "error",
                        "database": db,
                        "tenant": tid,
                        "placement": db,
                        "object": db,
                        "problem": f"placement database is missing or unreachable: {why}",
                    }
                ]

        with ThreadPoolExecutor(max_workers=8) as ex:
            for f in ex.map(one, dbs):
                findings.extend(f)
                prog.step()
        prog.close()
        return findings

    # -- building placements -------------------------------------------------------------------
    def tenant_rows_into(self, conn: psycopg.Connection, ids: list[str]) -> None:
        """The tenants rows a database placement needs (the root, the partner, the moving set) with the
        same uuids, parents first. Idempotent."""
        rows = self.ctl_exec(
            "with recursive up as (select t.* from tenancy.tenants t where t.id = any(%s::uuid[])"
            " union select p.* from tenancy.tenants p join up on up.parent_id = p.id)"
            " select distinct id, parent_id, tier, slug, name, status, external_id, settings::text,"
            " created_at, updated_at from up order by tier",
            [ids],
        )
        with conn.transaction():
            for r in rows:
                conn.execute(
                    "insert into tenancy.tenants (id, parent_id, tier, slug, name, status, external_id,"
                    " settings,"
                    " created_at, updated_at) values (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)"
                    " on conflict (id) do nothing",
                    list(r),
                )

    def ensure_template(self, migs: list[P.Migration]) -> str:
        name = P.template_name(self.control_db)
        if not self.database_exists(name):
            self.ctl_exec(sql.SQL("create database {} template template0").format(_ident(name)))
        with psycopg.connect(self.conninfo(name), autocommit=True) as c:
            c.execute("set client_min_messages = warning")
            c.execute("create extension if not exists tenancy cascade")
        r = self.migrate_one(Target(name, self.shared_schema, None, "template"), migs)
        self.drop_pool(name)  # CREATE DATABASE ... TEMPLATE needs it unused
        if r["status"] in ("failed", "blocked"):
            raise FleetError(f"template {name}: {r.get('error')}")
        return name

    def build_database(
        self, name: str, migs: list[P.Migration], tenant: str, ids: list[str]
    ) -> dict[str, Any]:
        """Create (or finish) a database placement: from the template, the extension, the tenants rows,
        its registry row (status provisioning), the migrations. Each step idempotent."""
        if not self.database_exists(name):
            tmpl = self.ensure_template(migs)
            try:
                self.ctl_exec(sql.SQL("create database {} template {}").format(_ident(name), _ident(tmpl)))
            except psycopg.errors.ObjectInUse:
                # someone is connected to the template: start from template0 instead
                self.ctl_exec(sql.SQL("create database {} template template0").format(_ident(name)))
        with psycopg.connect(self.conninfo(name), autocommit=True) as c:
            c.execute("set client_min_messages = warning")
            c.execute("create extension if not exists tenancy cascade")
            self.tenant_rows_into(c, ids)
            c.execute(
                "insert into tenancy.placements (tenant_id, kind, database, status)"
                " values (%s, 'database', %s,"
                " 'provisioning') on conflict (tenant_id) do nothing",
                [tenant, name],
            )
        r = self.migrate_one(Target(name, self.shared_schema, tenant, "database"), migs)
        if r["status"] in ("failed", "blocked"):
            raise FleetError(f"database {name}: migrations: {r.get('error')}")
        return r

    def build_schema(self, schema: str, migs: list[P.Migration], tenant: str | None) -> dict[str, Any]:
        self.ctl_exec(sql.SQL("create schema if not exists {}").format(_ident(schema)))
        # application roles (members of tenancy_app) look names up there; the tables' own grants come
        # from the migrations, and row-level security decides which rows
        self.ctl_exec(sql.SQL("grant usage on schema {} to tenancy_app").format(_ident(schema)))
        r = self.migrate_one(Target(self.control_db, schema, tenant, "schema"), migs)
        if r["status"] in ("failed", "blocked"):
            raise FleetError(f"schema {schema}: migrations: {r.get('error')}")
        return r

    def placement_findings(self, database: str, schema: str, migs: list[P.Migration]) -> list[dict[str, Any]]:
        """The health of ONE new placement (what provision checks before it says active): its
        migrations and its tables. Three queries on a pooled connection, whatever the fleet's size."""
        tables = self.expected_tables()
        with self.pool(database).conn() as c:
            pl = P.plan(migs, self.applied(c, schema).get(schema, {}))
            present = dict(
                c.execute(
                    "select c.relname::text,"
                    " exists (select from tenancy.scoped_tables s where s.relid = c.oid)"
                    " from pg_catalog.pg_class c where c.relkind in ('r', 'p') and c.relnamespace ="
                    " (select n.oid from pg_catalog.pg_namespace n where n.nspname = %s)",
                    [schema],
                ).fetchall()
            )
        out = [
            {"placement": schema, "object": m.label, "problem": "migration is missing"} for m in pl.pending
        ]
        out += [{"placement": schema, "object": v, "problem": "migration changed"} for v in pl.changed]
        out += [{"placement": schema, "object": v, "problem": "migration is extra"} for v in pl.extra]
        for t in tables:
            if t not in present:
                out.append({"placement": schema, "object": t, "problem": "table is missing"})
            elif not present[t]:
                out.append({"placement": schema, "object": t, "problem": "table is not registered"})
        return out

    def has_rows(self, database: str, schema: str, ids: list[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        with psycopg.connect(self.conninfo(database), autocommit=True) as c:
            for tbl, col in c.execute(TABLES, [schema]).fetchall():
                n = c.execute(
                    sql.SQL("select count(*) from {} where {} = any(%s::uuid[])").format(
                        _ident(schema, tbl), _ident(col)
                    ),
                    [ids],
                ).fetchone()[0]
                if n:
                    counts[tbl] = n
        return counts

    def provision(self, t: Tenant, kind: str, migs: list[P.Migration]) -> dict[str, Any]:
        if t.tier == 0:
            raise FleetError("the platform tenant (tier 0) sees every placement and has none of its own")
        row = self.own_row(t.id)
        schema = P.schema_name(t.id)
        database = P.database_name(self.control_db, t.id)
        if row and row["status"] == "active" and row["kind"] == kind:
            return {
                "tenant": t.id,
                "path": t.path,
                "kind": kind,
                "status": "active",
                "note": "already provisioned",
            }
        if row and not (row["kind"] == kind and row["status"] in ("provisioning", "failed")):
            raise FleetError(
                f"tenant {t.path or t.id} already has a {row['kind']} placement ({row['status']}):"
                " use tenancy move"
            )
        db, sch, _ = self.home(t)
        existing = self.has_rows(db, sch, self.moving_set(t)) if not row else {}
        if existing:
            raise FleetError(
                f"tenant {t.path or t.id} already has rows ({existing}): a tenant with data is moved "
                "with tenancy move"
            )
        started = time.monotonic()
        self.ctl_exec(
            "insert into tenancy.placements (tenant_id, kind, schema_name, database, status) values"
            " (%s, %s, %s, %s, 'provisioning') on conflict (tenant_id) do update set status = 'provisioning'",
            [t.id, kind, schema if kind == "schema" else None, database if kind == "database" else None],
        )
        try:
            if kind == "schema":
                self.build_schema(schema, migs, t.id)
                where, sch = self.control_db, schema
            else:
                self.build_database(database, migs, t.id, self.moving_set(t))
                where, sch = database, self.shared_schema
            problems = self.placement_findings(where, sch, migs)
            if problems:
                raise FleetError(f"health of the new placement: {problems}")
            version = migs[-1].version if migs else None
            if kind == "database":
                with psycopg.connect(self.conninfo(database), autocommit=True) as c:
                    c.execute(
                        "update tenancy.placements set status = 'active', schema_version = %s"
                        " where tenant_id = %s",
                        [version, t.id],
                    )
            self.ctl_exec(
                "update tenancy.placements set status = 'active', schema_version = %s where tenant_id = %s",
                [version, t.id],
            )
        except (FleetError, psycopg.Error) as exc:
            self.ctl_exec("update tenancy.placements set status = 'failed' where tenant_id = %s", [t.id])
            self.event(t.id, kind, "provision_failed", {"error": str(exc)})
            raise FleetError(f"provisioning {t.path or t.id} failed (a rerun resumes): {exc}") from exc
        took = time.monotonic() - started
        res = {
            "tenant": t.id,
            "path": t.path,
            "kind": kind,
            "status": "active",
            "schema": schema if kind == "schema" else None,
            "database": database if kind == "database" else None,
            "version": migs[-1].version if migs else None,
            "seconds": round(took, 3),
        }
        self.event(t.id, kind, "provisioned", res)
        return res

    # -- data: tables, digests, copy -----------------------------------------------------------
    @staticmethod
    def tables_in(conn: psycopg.Connection, schema: str) -> list[tuple[str, str]]:
        """Registered tables of a placement schema in foreign-key order, with their tenant column."""
        cols = dict(conn.execute(TABLES, [schema]).fetchall())
        edges = [(a, b) for a, b in conn.execute(FKS, [schema]).fetchall()]
        return [(t, cols[t]) for t in P.fk_order(cols, edges)]

    @staticmethod
    def digest(
        conn: psycopg.Connection, schema: str, table: str, col: str, ids: list[str]
    ) -> tuple[int, str]:
        q = sql.SQL(
            "select count(*), coalesce(md5(string_agg(md5(t::text), '' order by md5(t::text))), '')"
            " from {} t where {} = any(%s::uuid[])"
        ).format(_ident(schema, table), _ident(col))
        n, d = conn.execute(q, [ids]).fetchone()
        return int(n), d

    def copy_rows(
        self,
        src: psycopg.Connection,
        s_schema: str,
        dst: psycopg.Connection,
        d_schema: str,
        tables: list[tuple[str, str]],
        ids: list[str],
    ) -> None:
        """Rows of ids from src to dst in one destination transaction (rows of ids already there are
        replaced: a rerun starts over)."""
        lit = sql.Literal(ids)
        with dst.transaction():
            for table, col in reversed(tables):
                dst.execute(
                    sql.SQL("delete from {} where {} = any({}::uuid[])").format(
                        _ident(d_schema, table), _ident(col), lit
                    )
                )
            for table, col in tables:
                out_q = sql.SQL("copy (select * from {} where {} = any({}::uuid[])) to stdout").format(
                    _ident(s_schema, table), _ident(col), lit
                )
                in_q = sql.SQL("copy {} from stdin").format(_ident(d_schema, table))
                with src.cursor().copy(out_q) as out, dst.cursor().copy(in_q) as inp:
                    for data in out:
                        inp.write(data)

    def wait_quiet(self, conn: psycopg.Connection, since: dt.datetime, timeout: float = 15.0) -> None:
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

    # -- move ----------------------------------------------------------------------------------
    def move(self, t: Tenant, to: str, migs: list[P.Migration]) -> dict[str, Any]:
        if t.tier == 0:
            raise FleetError("the platform tenant (tier 0) is not placed")
        row = self.own_row(t.id)
        cur_kind = row["kind"] if row else "shared"
        s_db, s_schema, owner = self.home(t)
        own_source = owner == t.id and cur_kind in ("schema", "database")
        if row and row["status"] == "active" and cur_kind == to and owner == t.id:
            return {"tenant": t.id, "path": t.path, "to": to, "status": "active", "note": "already there"}
        ids = self.moving_set(t) if owner in (t.id, None) else [t.id]
        schema = P.schema_name(t.id)
        database = P.database_name(self.control_db, t.id)
        d_db, d_schema = {
            "shared": (self.control_db, self.shared_schema),
            "schema": (self.control_db, schema),
            "database": (database, self.shared_schema),
        }[to]
        if (d_db, d_schema) == (s_db, s_schema):
            return {"tenant": t.id, "path": t.path, "to": to, "status": "active", "note": "already there"}
        steps: list[dict[str, Any]] = []
        report = {
            "tenant": t.id,
            "path": t.path,
            "from": {"database": s_db, "schema": s_schema},
            "to": {"kind": to, "database": d_db, "schema": d_schema},
            "tenants": ids,
            "steps": steps,
        }
        inserted_row = row is None
        built = False
        frozen = False

        eff = self.own_row(owner) if owner else None
        eff_vals = (eff["kind"], eff["schema_name"], eff["database"]) if eff else ("shared", None, None)

        def mark(database: str, status: str, vals: tuple[str, str | None, str | None] = eff_vals) -> None:
            upsert = (
                "insert into tenancy.placements as p (tenant_id, kind, schema_name, database, status)"
                " values (%s, %s, %s, %s, %s) on conflict (tenant_id) do update set status = excluded.status"
            )
            if database == self.control_db:
                self.ctl_exec(upsert, [t.id, *vals, status])
            else:
                with psycopg.connect(self.conninfo(database), autocommit=True) as c:
                    c.execute(upsert, [t.id, *vals, status])

        def set_status(status: str) -> None:
            mark(self.control_db, status)
            if s_db != self.control_db:
                mark(s_db, status)

        def unfreeze() -> None:
            if not inserted_row:
                set_status("active")
                return
            for db in dict.fromkeys([self.control_db, s_db]):
                with psycopg.connect(self.conninfo(db), autocommit=True) as c:
                    c.execute("delete from tenancy.placements where tenant_id = %s", [t.id])

        try:
            # 1. the target at the same version
            if to == "schema":
                self.build_schema(schema, migs, None)
            elif to == "database":
                self.build_database(database, migs, t.id, ids)
            built = to != "shared"
            with (
                psycopg.connect(self.conninfo(s_db), autocommit=True) as src,
                psycopg.connect(self.conninfo(d_db), autocommit=True) as dst,
            ):
                a = self.applied(src, s_schema).get(s_schema, {})
                b = self.applied(dst, d_schema).get(d_schema, {})
                if a != b:
                    raise FleetError(
                        f"source and target are not at the same version (versions {sorted(a)} / {sorted(b)},"
                        " or "
                        "a migration changed since the source ran it): run tenancy health / migrate first"
                    )
                steps.append({"step": "build", "version": max(a, key=int) if a else None})
                # 2. freeze writes
                set_status("moving")
                frozen = True
                since = src.execute("select pg_catalog.clock_timestamp()").fetchone()[0]
                self.wait_quiet(src, since)
                steps.append({"step": "freeze"})
                # 3. copy, 4. verify
                tables = self.tables_in(src, s_schema)
                self.copy_rows(src, s_schema, dst, d_schema, tables, ids)
                verify = []
                for table, col in tables:
                    sn, sd = self.digest(src, s_schema, table, col, ids)
                    dn, dd = self.digest(dst, d_schema, table, col, ids)
                    verify.append({"table": table, "rows": sn, "checksum": sd, "ok": (sn, sd) == (dn, dd)})
                    if (sn, sd) != (dn, dd):
                        raise FleetError(
                            f"table {table}: source {sn} rows {sd[:12]}, target {dn} rows {dd[:12]}"
                        )
                steps.append({"step": "copy", "tables": verify})
            # 5. switch and bump the generation in one step
            version = max(a, key=int) if a else None
            if to == "database":
                with psycopg.connect(self.conninfo(d_db), autocommit=True) as c:
                    c.execute(
                        "update tenancy.placements set status = 'active', schema_version = %s"
                        " where tenant_id = %s",
                        [version, t.id],
                    )
            gen = self.ctl_exec(
                "insert into tenancy.placements as p"
                " (tenant_id, kind, schema_name, database, status, schema_version)"
                " values (%s, %s, %s, %s, 'active', %s)"
                " on conflict (tenant_id) do update set kind = excluded.kind,"
                " schema_name = excluded.schema_name, database = excluded.database, status = 'active',"
                " schema_version = excluded.schema_version, generation = p.generation + 1"
                " returning generation",
                [
                    t.id,
                    to,
                    schema if to == "schema" else None,
                    database if to == "database" else None,
                    version,
                ],
            )[0][0]
            steps.append({"step": "switch", "generation": gen})
        except (FleetError, psycopg.Error) as exc:
            # the tenant stays readable (and writable again) where it was
            if frozen:
                unfreeze()
            if built:
                self._remove(to, d_db, d_schema, ids, own=True)
            elif to == "shared" and frozen:
                with suppress(psycopg.Error), psycopg.connect(self.conninfo(d_db), autocommit=True) as c:
                    tables = self.tables_in(c, d_schema)
                    with c.transaction():
                        for table, col in reversed(tables):
                            c.execute(
                                sql.SQL("delete from {} where {} = any(%s::uuid[])").format(
                                    _ident(d_schema, table), _ident(col)
                                ),
                                [ids],
                            )
            self.event(t.id, to, "move_failed", {**report, "error": str(exc)})
            raise FleetError(f"move of {t.path or t.id} to {to} failed, nothing changed: {exc}") from exc
        if s_db != self.control_db and not own_source:
            # the tenant lived in its partner's database: its row there now says where it went
            with psycopg.connect(self.conninfo(s_db), autocommit=True) as c:
                c.execute(
                    "update tenancy.placements set kind = %s, schema_name = %s, database = %s,"
                    " status = 'active',"
                    " generation = %s where tenant_id = %s",
                    [
                        to,
                        schema if to == "schema" else None,
                        database if to == "database" else None,
                        gen,
                        t.id,
                    ],
                )
        # 6. remove the source
        removed = self._remove(cur_kind if own_source else "shared", s_db, s_schema, ids, own=own_source)
        steps.append({"step": "remove_source", **removed})
        report["status"] = "active"
        report["generation"] = gen
        self.event(t.id, to, "moved", report)
        return report

    def _remove(self, kind: str, database: str, schema: str, ids: list[str], *, own: bool) -> dict[str, Any]:
        if own and kind == "schema":
            self.ctl_exec(sql.SQL("drop schema if exists {} cascade").format(_ident(schema)))
            self.ctl_exec("delete from tenancy.placement_migrations where schema_name = %s", [schema])
            return {"dropped_schema": schema}
        if own and kind == "database":
            self.drop_pool(database)
            self.ctl_exec(sql.SQL("drop database if exists {} with (force)").format(_ident(database)))
            return {"dropped_database": database}
        deleted: dict[str, int] = {}
        with psycopg.connect(self.conninfo(database), autocommit=True) as c, c.transaction():
            for table, col in reversed(self.tables_in(c, schema)):
                cur = c.execute(
                    sql.SQL("delete from {} where {} = any(%s::uuid[])").format(
                        _ident(schema, table), _ident(col)
                    ),
                    [ids],
                )
                deleted[table] = cur.rowcount
        return {"deleted_rows": deleted}

    # -- export / erase / list -----------------------------------------------------------------
    def export(self, t: Tenant, out: Path) -> dict[str, Any]:
        db, schema, _owner = self.home(t)
        out.mkdir(parents=True, exist_ok=True)
        tables: list[dict[str, Any]] = []
        with psycopg.connect(self.conninfo(db), autocommit=True) as c:
            c.execute("begin isolation level repeatable read read only")
            try:
                for table, col in self.tables_in(c, schema):
                    path = out / f"{table}.csv"
                    h = hashlib.sha256()
                    q = sql.SQL(
                        "copy (select * from {} where {} = {}::uuid) to stdout with (format csv, header)"
                    ).format(_ident(schema, table), _ident(col), sql.Literal(t.id))
                    with path.open("wb") as f, c.cursor().copy(q) as cp:
                        for data in cp:
                            f.write(data)
                            h.update(data)
                    n, d = self.digest(c, schema, table, col, [t.id])
                    tables.append(
                        {"table": table, "file": path.name, "rows": n, "sha256": h.hexdigest(), "checksum": d}
                    )
            finally:
                c.execute("commit")
        manifest = {
            "tenant": t.id,
            "path": t.path,
            "database": db,
            "schema": schema,
            "exported_at": dt.datetime.now(dt.UTC).isoformat(),
            "tables": tables,
        }
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        self.event(
            t.id, schema, "exported", {"out": str(out), "tables": {x["table"]: x["rows"] for x in tables}}
        )
        return manifest

    def erase(self, t: Tenant) -> dict[str, Any]:
        if t.tier == 0:
            raise FleetError("the platform tenant (tier 0) cannot be erased")
        kids = self.ctl_exec(
            "select tenancy.tenant_path(id) from tenancy.tenants where parent_id = %s", [t.id]
        )
        if kids:
            raise FleetError(
                f"tenant {t.path} has customers ({', '.join(k[0] for k in kids)}): erase them first"
            )
        row = self.own_row(t.id)
        db, schema, owner = self.home(t)
        own = owner == t.id and row is not None and row["kind"] in ("schema", "database")
        receipt: dict[str, Any] = {
            "tenant": t.id,
            "path": t.path,
            "erased_at": dt.datetime.now(dt.UTC).isoformat(),
            "placement": {"database": db, "schema": schema, "own": own},
        }
        receipt.update(self._remove(row["kind"] if own else "shared", db, schema, [t.id], own=own))
        if db != self.control_db and not own:
            with psycopg.connect(self.conninfo(db), autocommit=True) as c:
                c.execute("delete from tenancy.tenants where id = %s", [t.id])
        self.ctl_exec("delete from tenancy.tenants where id = %s", [t.id])
        self.event(t.id, schema, "erased", receipt)
        return receipt

    def list(self) -> list[dict[str, Any]]:
        rows = self.ctl_exec(
            "select t.id::text, tenancy.tenant_path(t.id), t.tier, coalesce(p.kind, 'shared'), p.schema_name,"
            " p.database, coalesce(p.status, 'active'), p.schema_version, coalesce(p.generation, 0)"
            " from tenancy.tenants t left join tenancy.placements p on p.tenant_id = t.id"
            " order by tenancy.tenant_path(t.id)"
        )
        k = ("tenant", "path", "tier", "kind", "schema", "database", "status", "version", "generation")
        return [dict(zip(k, r, strict=True)) for r in rows]
