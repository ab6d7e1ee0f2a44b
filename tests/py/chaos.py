"""A bounded, seeded chaos test of the tenant context (SPEC v0.3 §0 and §2).

Several connections, as a real application role (``grant_app``) and one platform role
(``grant_platform``), drive a seeded tenant tree (platform, three partners, their customers, one
suspended customer) and two registered tables whose rows belong to every tenant. A seeded random
sequence interleaves session and local contexts (valid, suspended, unknown and tier-0 ids, also for
the application role), ``reset_tenant``, transactions, savepoints and ``ROLLBACK TO SAVEPOINT``,
PL/pgSQL exception blocks, prepared statements (SQL and protocol level) under every
``plan_cache_mode``, cursors (also ``WITH HOLD``) opened under one context and read under another,
two-phase commit, ``statement_timeout``, ``pg_cancel_backend`` and ``pg_terminate_backend`` from
another connection, the parallel-query settings, fresh backends whose first call runs under them,
``search_path`` changes, and hand-written ``SET tenancy.ctx`` forgeries and copies of other sessions'
values.

A model follows what SPEC §2 says is in force: a session slot, a local slot bound to its
transaction, savepoints restoring what was live when they were taken, a rolled-back transaction
restoring the context before it. Every read is checked against it (rows of the visible tenants only;
a fresh statement sees exactly the visible set; no context means no rows; ``TN007`` for a cursor or
plan made under another context is allowed and counted), so is the tenant of every write (``TN003``
without a context, the current tenant by default, ``42501`` into a tenant it may not write). The
server log is scanned for crashes after every step, and a connection the server closes without
having been told to is a failure.

Cursors are checked as the README documents them: a cursor's rows are decided by the context in force
when it first runs (its first FETCH, or the COMMIT that materializes a ``WITH HOLD`` cursor not yet
read); every fetch, under whatever context, returns rows of that context only, or ``TN007``.

    python tests/py/chaos.py [--seed N] [--seconds S] [--steps N] [--runs N] [--exclude CATEGORY,...]
                             [--keep-going] [--keep]

against TENANCY_TEST_DSN (a superuser DSN; ``make chaos`` provides a throwaway cluster), scanning
TENANCY_TEST_LOG. CHAOS_SEED / CHAOS_SECONDS are the defaults of --seed / --seconds. A failure prints
the seed and the last steps as SQL per connection. The operations are a function of the seed; the
outcomes of the timing operations (cancels, timeouts, terminations) depend on timing too.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import secrets
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import pq

CRASH_PATTERNS = ("terminated by signal", "server process", "PANIC", "all server processes terminated")
CATEGORIES = (
    "parallel",
    "signals",
    "timeout",
    "twophase",
    "cursors",
    "do",
    "forge",
    "prepared",
    "reconnect",
    "search_path",
)
TRACE_LEN = 80
NS = uuid.UUID("5b0c1f0e-7d1c-4d8e-9a43-6e1d3c2b1a00")

# ---------------------------------------------------------------------------------------------
# The world: tenant tree, tables, roles


@dataclass(frozen=True)
class Tenant:
    path: str
    id: str
    tier: int
    parent: str | None
    status: str = "active"


def tenant_uuid(path: str) -> str:
    """Fixed ids (the same in every run), so that a printed trace replays against a fresh setup."""
    return str(uuid.uuid5(NS, "tenancy-chaos/" + path))


TREE: tuple[tuple[str, str | None, str], ...] = (
    ("", None, "active"),
    ("alpha", "", "active"),
    ("alpha/a1", "alpha", "active"),
    ("alpha/a2", "alpha", "active"),
    ("alpha/dormant", "alpha", "suspended"),
    ("beta", "", "active"),
    ("beta/b1", "beta", "active"),
    ("beta/b2", "beta", "active"),
    ("gamma", "", "active"),
    ("gamma/g1", "gamma", "active"),
)
# host -> (tenant path or None for unknown)
DOMAINS = {
    "a1.chaos.test": "alpha/a1",
    "B2.Beta.Chaos.Test:443": "beta/b2",
    "g1.gamma.chaos.test": "gamma/g1",
    "dormant.chaos.test": "alpha/dormant",
    "nowhere.chaos.test": None,
}


class World:
    def __init__(self) -> None:
        self.tenants: dict[str, Tenant] = {}
        for path, parent, status in TREE:
            tier = 0 if parent is None else path.count("/") + 1
            tid = tenant_uuid(path)
            self.tenants[tid] = Tenant(
                path, tid, tier, None if parent is None else tenant_uuid(parent), status
            )
        self.root = tenant_uuid("")
        self.by_path = {t.path: t.id for t in self.tenants.values()}
        self.unknown = [str(uuid.uuid5(NS, f"unknown/{i}")) for i in range(3)]

    def visible(self, tid: str | None) -> frozenset[str]:
        if tid is None or tid not in self.tenants:
            return frozenset()
        t = self.tenants[tid]
        if t.tier == 0:
            return frozenset(self.tenants)
        if t.tier == 1:
            return frozenset([tid, *(c.id for c in self.tenants.values() if c.parent == tid)])
        return frozenset([tid])

    def writable(self, tid: str | None, scope: str) -> frozenset[str]:
        if tid is None:
            return frozenset()
        return frozenset([tid]) if scope == "own" else self.visible(tid)

    def name(self, tid: str | None) -> str:
        if tid is None:
            return "-"
        t = self.tenants.get(tid)
        return (t.path or "platform") if t else f"unknown:{tid[:8]}"

    def names(self, ids: Iterable[str | None]) -> str:
        return "{" + ",".join(sorted(self.name(i) for i in ids)) + "}"


SETUP_SQL = """
create table public.chaos_orders (
    id bigserial primary key, tenant_id uuid not null,
    created_at timestamptz not null default pg_catalog.clock_timestamp(), body text not null default 'chaos');
create index on public.chaos_orders (tenant_id, created_at);
create table public.chaos_notes (id bigserial primary key, tenant_id uuid not null, body text not null);
select tenancy.register_table('public.chaos_orders');
select tenancy.register_table('public.chaos_notes', write_scope => 'visible');
"""
SCOPE = {"chaos_orders": "own", "chaos_notes": "visible"}


@dataclass
class Setup:
    admin_dsn: str  # superuser, in the chaos database
    server_dsn: str
    dbname: str
    app_dsn: str
    platform_dsn: str
    app_role: str
    platform_role: str


def create_setup(server_dsn: str, world: World) -> Setup:
    suffix = secrets.token_hex(3)
    db, app, plat = f"tenancy_chaos_{suffix}", f"chaos_app_{suffix}", f"chaos_platform_{suffix}"
    pw = secrets.token_hex(8)
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f"create database {db}")
        for role in (app, plat):
            conn.execute(f"create role {role} login password '{pw}'")
            # a cursor or prepared transaction holding a row must not stall the driver
            conn.execute(f"alter role {role} set lock_timeout = '150ms'")
    admin = f"{server_dsn} dbname={db}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("set client_min_messages = warning")
        conn.execute("create extension tenancy cascade")
        for path, _parent, status in TREE:
            t = world.tenants[world.by_path[path]]
            slug = path.rsplit("/", 1)[-1] or "platform"
            conn.execute(
                "insert into tenancy.tenants (id, parent_id, slug, name, status) values (%s, %s, %s, %s, %s)",
                [t.id, t.parent, slug, slug, status],
            )
        conn.execute(
            "insert into tenancy.domain_mappings (domain, tenant_id) values"
            " ('a1.chaos.test', %s), ('*.beta.chaos.test', %s), ('*.gamma.chaos.test', %s),"
            " ('dormant.chaos.test', %s)",
            [
                world.by_path["alpha/a1"],
                world.by_path["beta"],
                world.by_path["gamma"],
                world.by_path["alpha/dormant"],
            ],
        )
        conn.execute(SETUP_SQL)
        for tid in world.tenants:
            conn.execute(
                "insert into public.chaos_orders (tenant_id, created_at, body)"
                " select %s, now() - g * interval '1 minute', 'seed' from generate_series(1, 20) g",
                [tid],
            )
            conn.execute(
                "insert into public.chaos_notes (tenant_id, body)"
                " select %s, 'seed' from generate_series(1, 5)",
                [tid],
            )
        conn.execute("analyze public.chaos_orders")
        conn.execute("analyze public.chaos_notes")
        conn.execute("select tenancy.grant_app(%s)", [app])
        conn.execute("select tenancy.grant_platform(%s)", [plat])
        for role in (app, plat):
            conn.execute(
                f"grant select, insert, update, delete on public.chaos_orders, public.chaos_notes to {role}"
            )
            conn.execute(
                f"grant usage on sequence public.chaos_orders_id_seq, public.chaos_notes_id_seq to {role}"
            )
    return Setup(
        admin,
        server_dsn,
        db,
        f"{admin} user={app} password={pw}",
        f"{admin} user={plat} password={pw}",
        app,
        plat,
    )


def drop_setup(setup: Setup) -> None:
    deadline = time.monotonic() + 60  # after a crash the server may still be recovering
    while True:
        try:
            with psycopg.connect(setup.admin_dsn, autocommit=True) as conn:
                for (gid,) in conn.execute(
                    "select gid from pg_prepared_xacts where database = current_database()"
                ).fetchall():
                    conn.execute(f"rollback prepared '{gid}'")
            with psycopg.connect(setup.server_dsn, autocommit=True) as conn:
                conn.execute(f"drop database if exists {setup.dbname} with (force)")
                for role in (setup.app_role, setup.platform_role):
                    conn.execute(f"drop role if exists {role}")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def parallel_settings(server_version: int) -> list[tuple[str, str]]:
    force = "debug_parallel_query" if server_version >= 160000 else "force_parallel_mode"
    return [
        (force, "on"),
        ("parallel_setup_cost", "0"),
        ("parallel_tuple_cost", "0"),
        ("min_parallel_table_scan_size", "0"),
    ]


# ---------------------------------------------------------------------------------------------
# The model


@dataclass(frozen=True)
class Ctx:
    """A context the model believes in force. ``maybe_none``: the contract allows either this
    tenant or no context (a hand-written copy of this backend's own live value, or a context put
    back by a rollback over a reset_tenant)."""

    tenant: str | None
    maybe_none: bool = False
    epoch: int = field(default=0, compare=False)  # reset_tenant calls the backend had run before it


NONE = Ctx(None)


@dataclass
class Token:
    tenant: str
    local: bool
    txn: int  # serial of the transaction that made it


@dataclass
class Savepoint:
    id: int
    name: str
    sess: Ctx
    cur: Ctx


@dataclass
class Txn:
    serial: int
    begin_sess: Ctx
    implicit: bool = False
    aborted: bool = False
    savepoints: list[Savepoint] = field(default_factory=list)


@dataclass
class Cursor:
    name: str
    query: ReadQuery
    hold: bool
    txn: int
    scopes: tuple[int, ...]
    first: Ctx | None = None  # the context in force when it first ran
    materialized: bool = False


@dataclass(frozen=True)
class ReadQuery:
    name: str
    sql: str
    full: bool  # a fresh statement must return exactly the visible set
    only: str | None = None  # the one tenant the query asks for


@dataclass
class Outcome:
    rows: list[tuple[object, ...]] | None = None
    sqlstate: str | None = None
    message: str = ""
    lost: bool = False
    notices: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.sqlstate is None and not self.lost

    def summary(self, world: World) -> str:
        if self.lost:
            return f"CONNECTION LOST ({self.message})"
        if self.sqlstate:
            return f"ERROR {self.sqlstate}: {self.message}"
        if self.rows is None:
            return "ok"
        ids = {str(r[0]) for r in self.rows if r and r[0] is not None and _is_uuid(str(r[0]))}
        tail = f" {world.names(ids)}" if ids else ""
        return f"ok {len(self.rows)} rows{tail}"


def _is_uuid(s: str) -> bool:
    try:
        uuid.UUID(s)
    except ValueError:
        return False
    return True


class Conn:
    def __init__(self, name: str, role: str, dsn: str) -> None:
        self.name, self.role, self.dsn = name, role, dsn
        self.conn: psycopg.Connection | None = None
        self.pid = 0
        self.notices: list[str] = []
        self.fresh()

    def fresh(self) -> None:
        """Model state of a new backend."""
        self.sess: Ctx = NONE
        self.cur: Ctx = NONE
        self.txn: Txn | None = None
        self.tokens: dict[str, Token] = {}
        self.cursors: dict[str, Cursor] = {}
        self.prepared: dict[str, ReadQuery] = {}
        self.proto: set[str] = set()
        self.tempfn = False
        self.hand_mark = False
        self.resets = 0
        self.last_token: str | None = None
        self.expect_death = False
        self.cancel_armed = 0  # statements for which 57014 is an allowed outcome
        self.timeout_on = False
        self.timeout_local = False
        self.parallel = False

    def label(self) -> str:
        state = "" if self.txn is None or self.txn.implicit else ("!" if self.txn.aborted else "*")
        return f"{self.name}[{self.pid}]{state}"


class ChaosFailure(AssertionError):
    pass


# ---------------------------------------------------------------------------------------------
# The engine


def q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


class Chaos:
    def __init__(
        self,
        setup: Setup,
        world: World,
        seed: int,
        *,
        log_path: str | None,
        exclude: Iterable[str] = (),
        n_app: int = 4,
        keep_going: bool = False,
    ) -> None:
        self.setup, self.world, self.seed = setup, world, seed
        self.rng = random.Random(seed)
        self.exclude = set(exclude)
        self.trace: deque[str] = deque(maxlen=TRACE_LEN)
        self.stats: Counter[str] = Counter()
        self.timing: Counter[str] = Counter()
        self.unexpected: list[str] = []
        self.violations: list[str] = []
        self.resync = False
        self.keep_going = keep_going
        self.step = 0
        self.serial = 0
        self.sp_serial = 0
        self.names = 0
        self.pending_gids: list[tuple[str, str]] = []  # (gid, role)
        self.all_tokens: dict[str, str] = {}  # token -> the connection+pid that made it
        # search_path values seen after set_tenant (a core may carry a plan's shape there)
        self.search_paths: set[str] = {"public", '"$user", public', "pg_catalog, public", "public, pg_temp"}
        self.log_path = Path(log_path) if log_path else None
        self.log_offset = self.log_path.stat().st_size if self.log_path and self.log_path.exists() else 0
        self.crash_lines: list[str] = []
        self.conns = [Conn(f"app{i + 1}", "app", setup.app_dsn) for i in range(n_app)]
        self.conns.append(Conn("plat", "platform", setup.platform_dsn))
        self.signaller = psycopg.connect(setup.app_dsn, autocommit=True)  # same role: may signal app backends
        self.admin = psycopg.connect(setup.admin_dsn, autocommit=True)
        self.version = int(self.admin.execute("show server_version_num").fetchone()[0])  # type: ignore[index]
        self.parallel = parallel_settings(self.version)
        if self.admin.execute("show max_prepared_transactions").fetchone() == ("0",):
            self.exclude.add("twophase")  # a server of your own may not allow them
        for c in self.conns:
            self.connect(c, parallel_first=False)
        self.reads = self._reads()

    # -- plumbing ---------------------------------------------------------------------------

    def _reads(self) -> list[ReadQuery]:
        return [
            ReadQuery("orders_all", "select tenant_id::text from public.chaos_orders", True),
            ReadQuery(
                "orders_agg", "select tenant_id::text, count(*) from public.chaos_orders group by 1", True
            ),
            ReadQuery(
                "orders_page",
                "select tenant_id::text from public.chaos_orders order by created_at desc, id desc limit 20",
                False,
            ),
            ReadQuery(
                "notes_join",
                "select distinct n.tenant_id::text from public.chaos_notes n"
                " join public.chaos_orders o on o.tenant_id = n.tenant_id",
                True,
            ),
            ReadQuery("tenants", "select id::text from tenancy.tenants", True),
        ]

    def read_one(self) -> ReadQuery:
        t = self.rng.choice([*self.world.tenants, *self.world.unknown[:1]])
        return ReadQuery(
            "orders_one", f"select tenant_id::text from public.chaos_orders where tenant_id = {q(t)}", True, t
        )

    def pick_read(self) -> ReadQuery:
        return self.read_one() if self.rng.random() < 0.2 else self.rng.choice(self.reads)

    def connect(self, c: Conn, parallel_first: bool) -> None:
        if c.conn is not None:
            with contextlib.suppress(Exception):
                c.conn.close()
        c.fresh()
        opts = ""
        if parallel_first:
            opts = " ".join(f"-c {k}={v}" for k, v in self.parallel)
        conn = psycopg.connect(c.dsn, autocommit=True, options=opts) if opts else None
        if conn is None:
            conn = psycopg.connect(c.dsn, autocommit=True)
        conn.prepare_threshold = None  # psycopg must not prepare (or DEALLOCATE ALL) on its own
        conn.add_notice_handler(lambda d, c=c: c.notices.append(d.message_primary or ""))
        c.conn = conn
        c.pid = conn.info.backend_pid
        c.parallel = parallel_first
        self.record(c, f"-- connect{' (' + opts + ')' if opts else ''}", "ok")

    def record(self, c: Conn | None, sql: str, outcome: str) -> None:
        who = c.label() if c else "admin"
        self.trace.append(f"#{self.step:<6} {who:<16} {' '.join(sql.split())}  -> {outcome}")

    def raw(self, c: Conn, sql: str, proto: str | None = None) -> Outcome:
        """Runs one statement (simple protocol, or a protocol-level prepared statement named
        ``proto``) without touching the model; safe to call from a thread."""
        assert c.conn is not None
        c.notices = []
        out = Outcome()
        try:
            if proto is None:
                cur = c.conn.execute(sql)
                out.rows = cur.fetchall() if cur.description else None
            else:
                out = self._proto(c, proto, sql)
        except psycopg.Error as e:
            out.sqlstate = e.sqlstate
            out.message = (str(e).splitlines() or [""])[0]
            if c.conn.closed or c.conn.broken or e.sqlstate in ("57P01", "57P02", "57P03"):
                out.lost = True
        out.notices = list(c.notices)
        return out

    def _proto(self, c: Conn, name: str, sql: str) -> Outcome:
        assert c.conn is not None
        pg = c.conn.pgconn
        out = Outcome()
        if name not in c.proto:
            res = pg.prepare(name.encode(), sql.encode())
            if res.status != pq.ExecStatus.COMMAND_OK:
                return self._pqerror(c, res)
            c.proto.add(name)  # a protocol-level prepared statement outlives its transaction
        res = pg.exec_prepared(name.encode(), [])
        if res.status not in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
            return self._pqerror(c, res)
        out.rows = [
            tuple(
                None if v is None else v.decode() for v in (res.get_value(i, j) for j in range(res.nfields))
            )
            for i in range(res.ntuples)
        ]
        return out

    def _pqerror(self, c: Conn, res: pq.abc.PGresult) -> Outcome:
        assert c.conn is not None
        state = res.error_field(pq.DiagnosticField.SQLSTATE)
        msg = (res.error_message or b"").decode(errors="replace").strip().splitlines()
        out = Outcome(sqlstate=state.decode() if state else "08006", message=msg[0] if msg else "")
        if c.conn.pgconn.status == pq.ConnStatus.BAD or out.sqlstate in ("57P01", "57P02", "57P03", "08006"):
            out.lost = True
        return out

    def log_crashes(self) -> list[str]:
        """Crash lines the server log got since the run began (read incrementally)."""
        if not self.log_path or not self.log_path.exists():
            return self.crash_lines
        with self.log_path.open("rb") as fh:
            fh.seek(self.log_offset)
            data = fh.read()
        # keep an incomplete last line for the next read
        cut = data.rfind(b"\n") + 1
        self.log_offset += cut
        for line in data[:cut].decode("utf-8", "replace").splitlines():
            if any(p in line for p in CRASH_PATTERNS):
                self.crash_lines.append(line)
        return self.crash_lines

    def violation(self, why: str) -> None:
        """An answer the contract forbids: fatal, or with keep_going recorded and the run goes on."""
        if not self.keep_going:
            self.fail(why)
        self.stats["violation"] += 1
        self.resync = True  # the model no longer knows what is in force there: start afresh
        self.violations.append(f"step {self.step}: {why}\n    " + "\n    ".join(list(self.trace)[-12:]))

    def fail(self, why: str) -> None:
        time.sleep(0.3)  # let the postmaster write its lines
        crashes = self.log_crashes()
        raise ChaosFailure(self.report(why, crashes))

    def report(self, why: str, crashes: list[str] | None = None) -> str:
        lines = [
            f"chaos FAILED at step {self.step} (seed {self.seed}): {why}",
            f"replay: CHAOS_SEED={self.seed} make chaos   (or: python tests/py/chaos.py --seed {self.seed}"
            f" --steps {self.step})",
            f"roles: app={self.setup.app_role} platform={self.setup.platform_role}; tenant ids are fixed:"
            + " ".join(f" {self.world.name(t)}={t}" for t in self.world.tenants),
        ]
        if self.unexpected:
            lines.append(f"before that, {len(self.unexpected)} unexpected outcome(s); the first:")
            lines += ["  " + u.splitlines()[0] for u in self.unexpected[:5]]
        if crashes:
            lines.append("server log:")
            lines += ["  " + ln for ln in crashes[:20]]
        lines.append(
            f"last {len(self.trace)} steps (connection[backend pid], * in a transaction, ! aborted):"
        )
        lines += ["  " + t for t in self.trace]
        return "\n".join(lines)

    def note_unexpected(self, c: Conn, sql: str, out: Outcome, why: str) -> None:
        self.stats["unexpected"] += 1
        msg = (
            f"step {self.step} {c.label()}: {why}: {' '.join(sql.split())[:300]} -> {out.summary(self.world)}"
        )
        msg += "\n    " + "\n    ".join(list(self.trace)[-15:])
        self.unexpected.append(msg)

    # -- the statement wrapper ----------------------------------------------------------------

    def run(
        self,
        c: Conn,
        sql: str,
        *,
        on_ok: Callable[[Outcome], None] | None = None,
        on_any: Callable[[Outcome], None] | None = None,
        allowed: Iterable[str] = (),
        proto: str | None = None,
        during: Callable[[], None] | None = None,
    ) -> Outcome | None:
        """Runs a regular statement and moves the model: effects (on_ok) within the transaction, or
        within an implicit one outside a transaction block; an error aborts the transaction."""
        if c.txn is not None and c.txn.aborted:
            out = self.exec(c, sql, proto, during)
            if out is None:
                return None
            if out.ok:
                self.note_unexpected(c, sql, out, "a statement succeeded in an aborted transaction")
            elif out.sqlstate not in ("25P02", *self.generic_allowed(c)):
                self.note_unexpected(c, sql, out, "expected 25P02 in an aborted transaction")
            return out
        implicit = c.txn is None
        if implicit:
            self.begin_model(c, implicit=True)
        out = self.exec(c, sql, proto, during)
        if out is None:  # the connection is gone (and we had terminated it)
            return None
        if on_any is not None:
            on_any(out)
        if out.ok:
            if on_ok is not None:
                on_ok(out)
            if implicit:
                self.commit_model(c)
        else:
            if out.sqlstate not in (*allowed, *self.generic_allowed(c)):
                self.note_unexpected(c, sql, out, "unexpected error")
            else:
                self.stats[f"error.{out.sqlstate}"] += 1
            if implicit:
                self.rollback_model(c)
            elif c.txn is not None:
                c.txn.aborted = True
        return out

    def generic_allowed(self, c: Conn) -> tuple[str, ...]:
        # lock_timeout (a prepared transaction may hold a row), deadlock, a repeatable read transaction
        # updating a row changed since its snapshot
        allowed = ["55P03", "40P01", "40001"]
        if c.cancel_armed or c.timeout_on:
            allowed.append("57014")
        return tuple(allowed)

    def exec(self, c: Conn, sql: str, proto: str | None = None, during: Callable[[], None] | None = None):
        if during is None:
            out = self.raw(c, sql, proto)
        else:
            box: list[Outcome] = []
            th = threading.Thread(target=lambda: box.append(self.raw(c, sql, proto)), daemon=True)
            th.start()
            during()
            th.join(60)
            if th.is_alive():
                self.record(c, sql, "HUNG")
                self.fail("a statement did not return within 60 s")
            out = box[0]
        if c.cancel_armed:
            c.cancel_armed -= 1
        self.record(
            c, sql if proto is None else f"{sql}  [protocol-prepared {proto}]", out.summary(self.world)
        )
        if out.lost:
            if c.expect_death:
                self.stats["terminated.seen"] += 1
                self.connect(c, parallel_first=self.want_parallel_first())
                return None
            self.fail(f"the server closed {c.name}'s connection unexpectedly ({out.sqlstate}: {out.message})")
        return out

    # -- transaction model --------------------------------------------------------------------

    def begin_model(self, c: Conn, implicit: bool = False) -> None:
        self.serial += 1
        c.txn = Txn(self.serial, c.sess, implicit=implicit)

    def scopes(self, c: Conn) -> tuple[int, ...]:
        return tuple(sp.id for sp in c.txn.savepoints) if c.txn else ()

    def commit_model(self, c: Conn) -> None:
        txn = c.txn
        assert txn is not None
        at_commit = c.cur
        for name, cur in list(c.cursors.items()):
            if not cur.hold:
                del c.cursors[name]
            elif not cur.materialized:
                if cur.first is None:  # materialized now: this is its first run
                    cur.first = at_commit
                cur.materialized = True
        c.cur = c.sess
        c.txn = None
        self.txn_ended(c)

    def txn_ended(self, c: Conn) -> None:
        if c.timeout_local:  # SET LOCAL statement_timeout ends with the transaction
            c.timeout_on = c.timeout_local = False

    def rollback_model(self, c: Conn) -> None:
        txn = c.txn
        assert txn is not None
        for name, cur in list(c.cursors.items()):
            if cur.txn == txn.serial:
                del c.cursors[name]
        c.sess = self.restored(txn.begin_sess, c.resets)
        c.cur = c.sess
        c.txn = None
        self.txn_ended(c)

    def restored(self, ctx: Ctx, resets: int) -> Ctx:
        """A context put back by a rollback. When reset_tenant ran after it was taken (even in a
        rolled-back statement or subtransaction), it may stay forgotten: it, or no context."""
        if ctx.tenant is not None and ctx.epoch < resets:
            return Ctx(ctx.tenant, True, ctx.epoch)
        return ctx

    # -- operations ---------------------------------------------------------------------------

    def pick_conn(self) -> Conn:
        return self.rng.choices(self.conns, weights=[5] * (len(self.conns) - 1) + [3])[0]

    def want_parallel_first(self) -> bool:
        return "parallel" not in self.exclude and self.rng.random() < 0.35

    def one_step(self) -> None:
        c = self.pick_conn()
        if c.txn is not None and c.txn.aborted:
            r = self.rng.random()
            if r < 0.55:
                return self.op_rollback(c)
            if r < 0.75 and c.txn.savepoints:
                return self.op_rollback_to(c)
            if r < 0.85:
                return self.op_commit(c)
        ops: list[tuple[float, Callable[[Conn], None], str]] = [
            (20, self.op_set, ""),
            (4, self.op_set_domain, ""),
            (25, self.op_read, ""),
            (6, self.op_read_ctx, ""),
            (12, self.op_write, ""),
            (3, self.op_reset, ""),
            (6, self.op_forge, "forge"),
            (2, self.op_search_path, "search_path"),
            (6, self.op_do, "do"),
            (4, self.op_declare, "cursors"),
            (6, self.op_fetch, "cursors"),
            (1, self.op_close, "cursors"),
            (4, self.op_prepared, "prepared"),
            (2, self.op_plan_mode, "prepared"),
            (2, self.op_tempfn, "prepared"),
            (3, self.op_parallel, "parallel"),
            (1.5, self.op_timeout, "timeout"),
            (1.5, self.op_cancel, "signals"),
            (0.6, self.op_terminate, "signals"),
            (2, self.op_reconnect, "reconnect"),
            (0.7, self.op_discard, ""),
            (1.5, self.op_resolve, "twophase"),
            (5, self.op_scenario, ""),
        ]
        if c.txn is None:
            ops.append((20, self.op_begin, ""))
        else:
            ops += [
                (4, self.op_commit, ""),
                (3, self.op_rollback, ""),
                (4, self.op_savepoint, ""),
                (3, self.op_rollback_to, ""),
                (1, self.op_release, ""),
                (1.5, self.op_prepare_txn, "twophase"),
            ]
        ops = [o for o in ops if o[2] not in self.exclude]
        fn = self.rng.choices([o[1] for o in ops], weights=[o[0] for o in ops])[0]
        t0 = time.perf_counter()
        fn(c)
        self.timing[fn.__name__] += time.perf_counter() - t0
        if self.resync:
            self.resync = False
            for other in self.conns:
                self.connect(other, parallel_first=False)
        return None

    # transactions

    def op_begin(self, c: Conn) -> None:
        if c.txn is not None:
            return
        level = self.rng.choice(["", "", "", " isolation level repeatable read"])
        out = self.exec(c, "begin" + level)
        if out is not None and out.ok:
            self.begin_model(c)

    def op_commit(self, c: Conn) -> None:
        if c.txn is None:
            return
        had_hold = any(cur.hold and not cur.materialized for cur in c.cursors.values())
        out = self.exec(c, "commit")
        if out is None:
            return
        if out.ok and not c.txn.aborted:
            self.stats["txn.commit"] += 1
            self.commit_model(c)
        else:
            # materializing a held cursor runs its query under the context in force at commit
            allowed = (*self.generic_allowed(c), *(["TN007"] if had_hold else []))
            if not out.ok and out.sqlstate not in allowed:
                self.note_unexpected(c, "commit", out, "commit failed")
            self.stats["txn.commit_rolled_back"] += 1
            self.rollback_model(c)

    def op_rollback(self, c: Conn) -> None:
        if c.txn is None:
            return
        out = self.exec(c, "rollback")
        if out is None:
            return
        if not out.ok:
            self.note_unexpected(c, "rollback", out, "rollback failed")
        self.stats["txn.rollback"] += 1
        self.rollback_model(c)

    def op_savepoint(self, c: Conn) -> None:
        if c.txn is None:
            return
        name = self.rng.choice(["s1", "s2", "s3"])
        out = self.exec(c, f"savepoint {name}")
        if out is None:
            return
        if c.txn.aborted:
            if out.ok or out.sqlstate != "25P02":
                self.note_unexpected(c, "savepoint", out, "expected 25P02")
            return
        if not out.ok:
            if out.sqlstate not in self.generic_allowed(c):
                self.note_unexpected(c, "savepoint", out, "savepoint failed")
            c.txn.aborted = True
            return
        self.sp_serial += 1
        c.txn.savepoints.append(Savepoint(self.sp_serial, name, c.sess, c.cur))

    def op_rollback_to(self, c: Conn) -> None:
        if c.txn is None or not c.txn.savepoints:
            return
        sp = self.rng.choice(c.txn.savepoints)
        # PostgreSQL rolls back to the most recent savepoint of that name
        idx = max(i for i, s in enumerate(c.txn.savepoints) if s.name == sp.name)
        sp = c.txn.savepoints[idx]
        out = self.exec(c, f"rollback to savepoint {sp.name}")
        if out is None:
            return
        if not out.ok:
            if out.sqlstate not in self.generic_allowed(c):
                self.note_unexpected(c, "rollback to savepoint", out, "failed")
            c.txn.aborted = True
            return
        self.stats["txn.rollback_to"] += 1
        self.rollback_to_model(c, idx)

    def rollback_to_model(self, c: Conn, idx: int) -> None:
        txn = c.txn
        assert txn is not None
        sp = txn.savepoints[idx]
        del txn.savepoints[idx + 1 :]
        for name, cur in list(c.cursors.items()):
            if cur.txn == txn.serial and sp.id in cur.scopes:
                del c.cursors[name]
        c.sess = self.restored(sp.sess, c.resets)
        c.cur = self.restored(sp.cur, c.resets)
        txn.aborted = False

    def op_release(self, c: Conn) -> None:
        if c.txn is None or not c.txn.savepoints:
            return
        sp = self.rng.choice(c.txn.savepoints)
        idx = max(i for i, s in enumerate(c.txn.savepoints) if s.name == sp.name)
        out = self.run(c, f"release savepoint {sp.name}")
        if out is not None and out.ok and c.txn is not None:
            del c.txn.savepoints[idx:]

    def op_prepare_txn(self, c: Conn) -> None:
        if c.txn is None or len(self.pending_gids) >= 6:
            return
        self.names += 1
        gid = f"chaos_{self.seed}_{self.names}"
        aborted = c.txn.aborted
        out = self.exec(c, f"prepare transaction {q(gid)}")
        if out is None:
            return
        if out.ok and not aborted:
            self.stats["2pc.prepared"] += 1
            self.pending_gids.append((gid, c.role))
            self.commit_model(c)  # the session keeps what the transaction set, as with COMMIT
            return
        if not out.ok and out.sqlstate not in ("0A000", *self.generic_allowed(c)):
            self.note_unexpected(c, "prepare transaction", out, "prepare failed")
        self.stats["2pc.refused"] += 1
        self.rollback_model(c)
        # an aborted transaction's PREPARE succeeds as a ROLLBACK and leaves nothing prepared
        if out.ok:
            with contextlib.suppress(ValueError):
                self.pending_gids.remove((gid, c.role))

    def op_resolve(self, c: Conn) -> None:
        if c.txn is not None:
            return
        mine = [g for g in self.pending_gids if g[1] == c.role]
        if not mine:
            return
        gid, role = self.rng.choice(mine)
        verb = self.rng.choice(["commit", "rollback"])
        out = self.exec(c, f"{verb} prepared {q(gid)}")
        if out is None:
            return
        if out.ok:
            self.pending_gids.remove((gid, role))
            self.stats[f"2pc.{verb}"] += 1
        elif out.sqlstate not in self.generic_allowed(c):
            self.note_unexpected(c, f"{verb} prepared", out, "failed")

    # contexts

    def expect_set(self, c: Conn, tid: str) -> str | None:
        """The SQLSTATE set_tenant(tid) must raise, or None."""
        t = self.world.tenants.get(tid)
        if t is None:
            return "TN001"
        if t.status != "active":
            return "TN002"
        if t.tier == 0 and c.role != "platform":
            return "TN007"
        return None

    def pick_target(self, c: Conn) -> str:
        r = self.rng.random()
        if r < 0.08:
            return self.rng.choice(self.world.unknown)
        if r < 0.16:
            return self.world.by_path["alpha/dormant"]
        if r < 0.26 or (c.role == "platform" and r < 0.4):
            return self.world.root
        return self.rng.choice([t for t in self.world.tenants if t != self.world.root])

    def set_effect(self, c: Conn, tid: str, local: bool, token: str | None) -> None:
        ctx = Ctx(tid, epoch=c.resets)
        if token:
            assert c.txn is not None
            c.tokens[token] = Token(tid, local, c.txn.serial)
            self.all_tokens.setdefault(token, f"{c.name}/{c.pid}")
        if local:
            c.cur = ctx
        else:
            c.sess = c.cur = ctx

    def op_set(self, c: Conn, tid: str | None = None, local: bool | None = None) -> None:
        tid = tid or self.pick_target(c)
        local = self.rng.random() < 0.5 if local is None else local
        self._set(c, f"tenancy.set_tenant({q(tid)}::uuid, local => {str(local).lower()})", tid, local)

    def op_set_domain(self, c: Conn) -> None:
        host = self.rng.choice(list(DOMAINS))
        path = DOMAINS[host]
        local = self.rng.random() < 0.5
        call = f"tenancy.set_tenant_for_domain({q(host)}, local => {str(local).lower()})"
        self._set(c, call, None if path is None else self.world.by_path[path], local)

    def _set(self, c: Conn, call: str, tid: str | None, local: bool) -> None:
        expect = "TN005" if tid is None else self.expect_set(c, tid)
        sql = (
            f"select {call}::text, pg_catalog.current_setting('tenancy.ctx', true),"
            " pg_catalog.current_setting('search_path')"
        )

        def ok(out: Outcome) -> None:
            got = out.rows[0][0] if out.rows else None
            if expect is not None:
                self.violation(f"{call} succeeded where the contract requires {expect}")
            if got != tid:
                self.violation(f"{call} returned {got}, expected {tid}")
            assert tid is not None
            self.stats["set.ok"] += 1
            token = str(out.rows[0][1]) if out.rows and out.rows[0][1] else None
            self.set_effect(c, tid, local, token)
            c.last_token = token
            self.search_paths.add(str(out.rows[0][2]))

        out = self.run(c, sql, on_ok=ok, allowed=[expect] if expect else [])
        if out is not None and not out.ok and expect and out.sqlstate == expect:
            self.stats[f"set.refused.{expect}"] += 1

    def op_reset(self, c: Conn) -> None:
        def ran(out: Outcome) -> None:
            c.resets += 1  # it ran, whether the statement then commits or not

        def ok(out: Outcome) -> None:
            self.reset_effect(c)

        self.run(c, "select tenancy.reset_tenant()", on_any=ran, on_ok=ok)

    def reset_effect(self, c: Conn) -> None:
        c.sess = c.cur = NONE
        self.stats["reset"] += 1

    def classify(self, c: Conn, value: str) -> Ctx:
        """What a hand-written tenancy.ctx value may be (SPEC §2; docs/decisions/0002 for the
        choices the contract leaves open)."""
        tok = c.tokens.get(value)
        if tok is None:
            return NONE  # junk, a tenant id, another backend's value (also the platform's)
        if tok.local and (c.txn is None or tok.txn != c.txn.serial):
            return NONE  # a transaction context in a later transaction
        # this backend's own value: a session value (also after reset_tenant or a rollback), or a
        # transaction value inside its own transaction (also after ROLLBACK TO SAVEPOINT), may be
        # taken back as the context it named (decisions/0002 gives this up), or be no context
        return Ctx(tok.tenant, True)

    def forge_value(self, c: Conn) -> tuple[str, str]:
        r = self.rng.random()
        foreign = [t for t, who in self.all_tokens.items() if who != f"{c.name}/{c.pid}"]
        own = list(c.tokens)
        if r < 0.3 and foreign:
            return self.rng.choice(foreign), "another session's value"
        if r < 0.55 and own:
            return self.rng.choice(own), "own earlier value"
        if r < 0.65 and own:
            t = self.rng.choice(own)
            return t[:-1] + ("0" if t[-1] != "0" else "1"), "altered own value"
        if r < 0.75:
            return self.rng.choice(list(self.world.tenants)), "a tenant id"
        if r < 0.8:
            return "", "empty"
        return secrets.token_hex(16), "junk"

    def op_forge(self, c: Conn, value: str | None = None, form: str | None = None, kind: str = "") -> None:
        if value is None:
            value, kind = self.forge_value(c)
        ctx = self.classify(c, value)
        form = form or self.rng.choice(["set", "set local", "set_config", "set_config local", "reset"])
        if form == "reset":
            sql, value, ctx, local = "reset tenancy.ctx", "", NONE, False
        elif form.startswith("set_config"):
            local = form.endswith("local")
            sql = f"select pg_catalog.set_config('tenancy.ctx', {q(value)}, {str(local).lower()})"
        else:
            local = form == "set local"
            sql = f"{form} tenancy.ctx = {q(value)}"
        self.stats["forge"] += 1
        in_block = c.txn is not None

        def ok(out: Outcome) -> None:
            if local and form == "set local" and not in_block:
                return  # SET LOCAL outside a transaction block does nothing (a WARNING)
            if local:
                c.cur = ctx
            else:
                c.sess = c.cur = ctx

        self.trace.append(f"        -- forgery: {kind}; the model expects {self.ctx_name(ctx)}")
        self.run(c, sql, on_ok=ok)

    def op_search_path(self, c: Conn) -> None:
        """The application's own setting, also a value copied from another session: it names no
        context, and the context in force must answer as before (statements are schema-qualified)."""
        value = self.rng.choice(sorted(self.search_paths))
        local = c.txn is not None and self.rng.random() < 0.5
        self.stats["search_path"] += 1
        if self.rng.random() < 0.15:

            def reset(out: Outcome) -> None:
                c.hand_mark = False

            self.run(c, "reset search_path", on_ok=reset)
            return

        def ok(out: Outcome) -> None:
            # a value copied from a customer session carries the plan mark of decisions/0003; until
            # the connection resets its search_path a fresh statement may be refused with TN007
            if "tenancy_customer" in value:
                c.hand_mark = True

        self.run(
            c, f"select pg_catalog.set_config('search_path', {q(value)}, {str(local).lower()})", on_ok=ok
        )

    def ctx_name(self, ctx: Ctx) -> str:
        return self.world.name(ctx.tenant) + (" or none" if ctx.maybe_none else "")

    def op_discard(self, c: Conn) -> None:
        if c.txn is not None:
            return
        stmt = self.rng.choice(["discard all", "reset all"])
        out = self.exec(c, stmt)
        if out is None or not out.ok:
            if out is not None:
                self.note_unexpected(c, stmt, out, "failed")
            return
        c.sess = c.cur = NONE
        c.parallel = c.timeout_on = c.hand_mark = False
        if stmt == "discard all":
            c.cursors.clear()
            c.prepared.clear()
            c.proto.clear()
            c.tempfn = False

    # reads

    def allowed_rows(self, ctx: Ctx) -> frozenset[str]:
        return self.world.visible(ctx.tenant)

    def check_rows(
        self, c: Conn, what: str, ids: set[str], ctxs: Iterable[Ctx], query: ReadQuery, fresh: bool
    ):
        ctxs = list(ctxs)
        bound: set[str] = set()
        for ctx in ctxs:
            bound |= self.allowed_rows(ctx)
        if query.only is not None:
            bound &= {query.only}
        extra = ids - bound
        if extra:
            self.violation(
                f"{what} returned rows of {self.world.names(extra)} under "
                f"{' / '.join(self.ctx_name(x) for x in ctxs)} (may see {self.world.names(bound)})"
            )
            return
        if fresh and query.full and len(ctxs) == 1:
            ctx = ctxs[0]
            full = set(bound)
            if ids != full and not (ctx.maybe_none and not ids):
                self.violation(
                    f"{what} under {self.ctx_name(ctx)} returned {self.world.names(ids)},"
                    f" expected exactly {self.world.names(full)}"
                )
        self.stats["read.checked"] += 1

    def read_outcome(self, c: Conn, what: str, query: ReadQuery, fresh: bool, ctxs: list[Ctx] | None = None):
        def any_(out: Outcome) -> None:
            if out.ok:
                ids = {str(r[0]) for r in out.rows or []}
                self.check_rows(c, what, ids, ctxs or [c.cur], query, fresh)
            elif out.sqlstate == "TN007":
                self.stats["read.TN007_stale"] += 1

        return any_

    def read_allowed(self, c: Conn, fresh: bool) -> list[str]:
        # TN007 is the documented answer of a plan (or cursor) made under another context; a
        # statement planned now has no such excuse (none is zero rows), unless the application
        # wrote the customer plan mark into its search_path by hand (docs/decisions/0003)
        return [] if fresh and not c.hand_mark else ["TN007"]

    def op_read(self, c: Conn, query: ReadQuery | None = None, proto: bool | None = None) -> None:
        query = query or self.pick_read()
        if proto is None:
            proto = self.rng.random() < 0.25 and "prepared" not in self.exclude
        if proto:
            name = f"chaos_p_{query.name}" if query.only is None else f"chaos_p_one_{query.only[:8]}"
            self.run(
                c,
                query.sql,
                proto=name,
                on_any=self.read_outcome(c, query.name, query, fresh=False),
                allowed=self.read_allowed(c, False),
            )
            return
        self.run(
            c,
            query.sql,
            on_any=self.read_outcome(c, query.name, query, fresh=True),
            allowed=self.read_allowed(c, True),
        )

    def op_read_ctx(self, c: Conn) -> None:
        sql = (
            "select tenancy.current_tenant()::text, tenancy.current_tier(), tenancy.visible_tenants()::text[]"
        )

        def ok(out: Outcome) -> None:
            assert out.rows
            cur, tier, vis = out.rows[0]
            ctx = c.cur
            options: list[str | None] = [ctx.tenant] + ([None] if ctx.maybe_none else [])
            if cur not in options:
                self.violation(
                    f"current_tenant() is {self.world.name(cur)}, the model expects {self.ctx_name(ctx)}"
                )
            exp_tier = None if cur is None else self.world.tenants[cur].tier  # type: ignore[index]
            if tier != exp_tier:
                self.violation(f"current_tier() is {tier} for {self.world.name(cur)}")
            got = set(vis or [])
            if got != set(self.world.visible(cur)):  # type: ignore[arg-type]
                self.violation(f"visible_tenants() is {self.world.names(got)} under {self.world.name(cur)}")
            self.stats["read.context_checked"] += 1

        self.run(c, sql, on_ok=ok)

    # writes

    def op_write(self, c: Conn) -> None:
        table = self.rng.choice(["chaos_orders", "chaos_notes"])
        scope = SCOPE[table]
        kind = self.rng.choice(["insert_default", "insert", "insert", "update", "move", "delete"])
        t = self.rng.choice(list(self.world.tenants))
        ctx = c.cur
        options = [ctx.tenant] + ([None] if ctx.maybe_none else [])
        chaos_rows = f"select id from public.{table} where body like 'chaos%' order by id desc limit 2"
        ret = "returning tenant_id::text"
        if kind == "insert_default":
            sql = f"insert into public.{table} (body) values ('chaos') {ret}"
        elif kind == "insert":
            sql = f"insert into public.{table} (tenant_id, body) values ({q(t)}, 'chaos') {ret}"
        elif kind == "update":
            sql = f"update public.{table} set body = 'chaos-u' where id in ({chaos_rows}) {ret}"
        elif kind == "move":
            sql = f"update public.{table} set tenant_id = {q(t)} where id in ({chaos_rows}) {ret}"
        else:
            sql = f"delete from public.{table} where id in ({chaos_rows}) {ret}"

        allowed: set[str] = set()
        for opt in options:
            vis, wr = self.world.visible(opt), self.world.writable(opt, scope)
            if opt is None:
                allowed.add("TN003")  # no context: writes are refused
            if kind == "insert" and t not in wr:
                allowed.add("42501")
            if kind == "update" and vis != wr:
                allowed.add("42501")  # a partner's own-scope table: a child's row it sees but may not write
            if kind == "move" and (t not in wr or vis != wr):
                allowed.add("42501")
        if c.hand_mark:
            allowed.add("TN007")  # the plan mark written by hand (docs/decisions/0003)

        def ok(out: Outcome) -> None:
            got = {str(r[0]) for r in out.rows or []}
            for opt in options:
                vis, wr = self.world.visible(opt), self.world.writable(opt, scope)
                if kind == "insert_default" and opt is not None and got == {opt}:
                    break
                if kind == "insert" and got == {t} and t in wr:
                    break
                if kind in ("update", "move") and got <= (vis & wr):
                    break
                if kind == "delete" and got <= vis:
                    break
            else:
                self.violation(
                    f"{kind} into {table} under {self.ctx_name(ctx)} wrote rows of {self.world.names(got)}"
                )
            self.stats["write.ok"] += 1

        out = self.run(c, sql, on_ok=ok, allowed=allowed)
        if out is not None and out.sqlstate in ("42501", "TN003"):
            self.stats[f"write.refused.{out.sqlstate}"] += 1

    # PL/pgSQL exception blocks

    def op_do(self, c: Conn) -> None:
        """A DO block: ops before, inside and after an exception block; every op reports through a
        NOTICE, and the block's own subtransaction rolls back when an inner op fails."""
        ops: list[tuple[str, object]] = []

        def rand_op(inner: bool) -> tuple[str, object]:
            r = self.rng.random()
            if r < 0.4:
                tid = self.pick_target(c) if inner else self.rng.choice(self.valid_for(c))
                return ("set", (tid, self.rng.random() < 0.5))
            if r < 0.7:
                return ("read", self.pick_read())
            if r < 0.78:
                return ("reset", None)
            if r < 0.88 and inner:
                return ("boom", None)
            if r < 0.95:
                return ("forge", (secrets.token_hex(16), self.rng.random() < 0.5))
            return ("read", self.pick_read())

        pre = [rand_op(False) for _ in range(self.rng.randint(0, 2))]
        inner = [rand_op(True) for _ in range(self.rng.randint(1, 3))]
        if self.rng.random() < 0.5:
            inner.append(("read", self.pick_read()))
        post = [rand_op(False) for _ in range(self.rng.randint(0, 1))] + [("read", self.pick_read())]
        ops = pre + inner + post
        body = []

        def emit(i: int, op: tuple[str, object]) -> str:
            kind, arg = op
            if kind == "set":
                tid, local = arg  # type: ignore[misc]
                return (
                    f"perform tenancy.set_tenant({q(tid)}::uuid, {str(local).lower()});"
                    f" raise notice 'chaos|{i}|ok';"
                )
            if kind == "reset":
                return f"perform tenancy.reset_tenant(); raise notice 'chaos|{i}|ok';"
            if kind == "boom":
                return f"perform 1 / 0; raise notice 'chaos|{i}|ok';"
            if kind == "forge":
                value, local = arg  # type: ignore[misc]
                return (
                    f"perform pg_catalog.set_config('tenancy.ctx', {q(value)}, {str(local).lower()});"
                    f" raise notice 'chaos|{i}|ok';"
                )
            query: ReadQuery = arg  # type: ignore[assignment]
            return (
                f"raise notice 'chaos|{i}|%', (select coalesce(string_agg(distinct x, ','), '') from"
                f" ({query.sql}) s(x));"
            )

        for i, op in enumerate(pre):
            body.append(emit(i, op))
        body.append("begin")
        for j, op in enumerate(inner):
            body.append("  " + emit(len(pre) + j, op))
        body.append("exception when others then raise notice 'chaos|caught|%', sqlstate; end;")
        for k, op in enumerate(post):
            body.append(emit(len(pre) + len(inner) + k, op))
        sql = "do $chaos$ begin\n" + "\n".join(body) + "\nend $chaos$"
        self.stats["do"] += 1
        first_inner, first_post = len(pre), len(pre) + len(inner)

        def any_(out: Outcome) -> None:
            # replay the NOTICEs through the model; reads are checked whatever the outcome
            notes = [n.split("|", 2)[1:] for n in out.notices if n.startswith("chaos|")]
            sess, cur, resets = c.sess, c.cur, c.resets
            snap = (sess, cur)
            caught = False
            pos = 0
            for idx, (kind, arg) in enumerate(ops):
                inside = first_inner <= idx < first_post
                if idx == first_inner:
                    snap = (sess, cur)
                if inside and caught:
                    continue
                if inside and pos < len(notes) and notes[pos][0] == "caught":
                    # op idx failed; the block's subtransaction is rolled back
                    self._check_caught(c, (kind, arg), notes[pos][1], sql, cur)
                    pos += 1
                    caught = True
                    sess, cur = self.restored(snap[0], resets), self.restored(snap[1], resets)
                    self.stats["do.caught"] += 1
                    continue
                if pos >= len(notes) or notes[pos][0] != str(idx):
                    break  # the statement failed here
                payload = notes[pos][1]
                pos += 1
                if kind == "set":
                    tid, local = arg  # type: ignore[misc]
                    exp = self.expect_set(c, tid)
                    if exp is not None:
                        self.violation(
                            f"set_tenant({self.world.name(tid)}) succeeded in a DO block, expected {exp}"
                        )
                    cur = Ctx(tid, epoch=resets)
                    if not local:
                        sess = cur
                elif kind == "reset":
                    sess = cur = NONE
                    resets += 1
                elif kind == "forge":
                    _value, local = arg  # type: ignore[misc]
                    cur = NONE
                    if not local:
                        sess = cur
                elif kind == "read":
                    query: ReadQuery = arg  # type: ignore[assignment]
                    ids = set(filter(None, payload.split(",")))
                    self.check_rows(c, f"DO-block read {query.name}", ids, [cur], query, fresh=True)
            if out.ok:
                c.sess, c.cur, c.resets = sess, cur, resets
            else:  # a reset_tenant may have run after its NOTICE was the last one sent
                c.resets = max(resets, c.resets + any(k == "reset" for k, _ in ops))

        self.run(c, sql, on_any=any_, allowed=["TN007"] if c.hand_mark else [])

    def valid_for(self, c: Conn) -> list[str]:
        return [t for t in self.world.tenants if self.expect_set(c, t) is None]

    def _check_caught(self, c: Conn, failed: tuple[str, object], state: str, sql: str, cur: Ctx) -> None:
        kind, arg = failed
        exp: str | None = None
        if kind == "set":
            exp = self.expect_set(c, arg[0])  # type: ignore[index]
        elif kind == "boom":
            exp = "22012"
        if state == exp or (state == "TN007" and c.hand_mark and kind == "read"):
            return
        self.note_unexpected(
            c,
            sql,
            Outcome(sqlstate=state, message=f"caught in the DO block, raised by its {kind}"),
            "DO block",
        )

    # cursors

    def op_declare(self, c: Conn, hold: bool | None = None, query: ReadQuery | None = None) -> str:
        query = query or self.pick_read()
        hold = c.txn is None or (self.rng.random() < 0.4 if hold is None else hold)
        self.names += 1
        name = f"chaos_c{self.names}"
        sql = f"declare {name} no scroll cursor {'with hold ' if hold else ''}for {query.sql}"

        def ok(out: Outcome) -> None:
            assert c.txn is not None
            c.cursors[name] = Cursor(name, query, hold, c.txn.serial, self.scopes(c))
            self.stats["cursor.declare"] += 1

        self.run(c, sql, on_ok=ok, allowed=["TN007"])
        return name

    def op_fetch(self, c: Conn, name: str | None = None, n: int | None = None) -> None:
        if name is None:
            live = [k for k, v in c.cursors.items() if not v.materialized]
            if len(c.cursors) > 6:
                self.op_close(c)
            if not c.cursors:
                self.op_declare(c)
                return
            pool = live if live and self.rng.random() < 0.7 else sorted(c.cursors)
            name = self.rng.choice(sorted(pool))
        if name not in c.cursors:
            return
        cur = c.cursors[name]
        n = n or self.rng.choice([1, 5, 50, 500])
        sql = f"fetch {n} from {cur.name}"
        # a cursor's rows are decided by the context in force when it first runs (README, Tenant
        # context): its first fetch, or the commit that materializes a held cursor never fetched
        first = cur.first if cur.first is not None else c.cur
        self.stats["cursor.fetch_held" if cur.materialized else "cursor.fetch"] += 1
        if cur.first is not None and cur.first != c.cur:
            self.stats["cursor.fetch_under_another_context"] += 1
        check = self.read_outcome(c, f"cursor {cur.name} ({cur.query.name})", cur.query, False, [first])

        def any_(out: Outcome) -> None:
            check(out)
            if out.ok and cur.first is None:
                cur.first = c.cur
            if not out.ok:
                c.cursors.pop(cur.name, None)

        self.run(c, sql, on_any=any_, allowed=["TN007"])

    def op_close(self, c: Conn) -> None:
        if not c.cursors:
            return
        name = self.rng.choice(sorted(c.cursors))

        def ok(out: Outcome) -> None:
            c.cursors.pop(name, None)

        self.run(c, f"close {name}", on_ok=ok)

    # prepared statements, generic plans, PL/pgSQL cached plans

    def op_prepared(self, c: Conn) -> None:
        if c.prepared and self.rng.random() < 0.75:
            name = self.rng.choice(sorted(c.prepared))
            if self.rng.random() < 0.1:

                def gone(out: Outcome) -> None:
                    c.prepared.pop(name, None)

                self.run(c, f"deallocate {name}", on_ok=gone)
                return
            self.execute_prepared(c, name)
            return
        self.prepare(c, self.pick_read())

    def prepare(self, c: Conn, query: ReadQuery) -> str:
        name = f"chaos_s_{query.name}" if query.only is None else f"chaos_s_one_{query.only[:8]}"
        if name in c.prepared:
            return name

        def made(out: Outcome) -> None:
            c.prepared[name] = query  # kept when the transaction rolls back: PREPARE is not transactional

        self.run(c, f"prepare {name} as {query.sql}", on_ok=made)
        return name

    def execute_prepared(self, c: Conn, name: str) -> None:
        if name not in c.prepared:
            return
        query = c.prepared[name]
        self.run(
            c,
            f"execute {name}",
            on_any=self.read_outcome(c, f"execute {name}", query, False),
            allowed=["TN007"],
        )

    def op_plan_mode(self, c: Conn) -> None:
        mode = self.rng.choice(["force_generic_plan", "force_generic_plan", "force_custom_plan", "auto"])
        self.run(c, f"set {'local ' if c.txn and self.rng.random() < 0.3 else ''}plan_cache_mode = {mode}")

    def op_tempfn(self, c: Conn) -> None:
        if not c.tempfn:
            if c.txn is not None:
                return
            out = self.run(
                c,
                "create function pg_temp.chaos_seen() returns text language plpgsql as $f$ begin return"
                " (select coalesce(string_agg(distinct tenant_id::text, ','), '') from public.chaos_orders);"
                " end $f$",
            )
            if out is not None and out.ok:
                c.tempfn = True
            return
        query = self.reads[0]

        def any_(out: Outcome) -> None:
            if out.ok:
                ids = set(filter(None, str(out.rows[0][0] or "").split(","))) if out.rows else set()
                self.check_rows(c, "pg_temp.chaos_seen()", ids, [c.cur], query, fresh=False)
            elif out.sqlstate == "TN007":
                self.stats["read.TN007_stale"] += 1

        self.run(c, "select pg_temp.chaos_seen()", on_any=any_, allowed=["TN007"])

    # settings, timeouts, signals, new backends

    def op_parallel(self, c: Conn) -> None:
        on = self.rng.random() < 0.6
        local = c.txn is not None and self.rng.random() < 0.3
        for k, v in self.parallel:
            if not on:
                v = "off" if k in ("force_parallel_mode", "debug_parallel_query") else "default"
            out = self.run(c, f"set {'local ' if local else ''}{k} = {v}")
            if out is None or not out.ok:
                return
        c.parallel = on

    def slow_statement(
        self, c: Conn, delay: float
    ) -> tuple[str, Callable[[Outcome], None] | None, list[str]]:
        r = self.rng.random()
        d = f"{delay:.3f}"
        if r < 0.4:
            tid = self.pick_target(c)
            local = self.rng.random() < 0.5
            exp = self.expect_set(c, tid)
            sql = f"select tenancy.set_tenant({q(tid)}::uuid, {str(local).lower()})::text, pg_sleep({d})"

            def ok(out: Outcome) -> None:
                if exp is not None:
                    self.violation(f"set_tenant({self.world.name(tid)}) succeeded, expected {exp}")
                self.set_effect(c, tid, local, None)

            return sql, ok, [exp] if exp else []
        if r < 0.6:
            # counted now: whether a cancel lands before or after the reset ran is not known
            c.resets += 1

            def ok2(out: Outcome) -> None:
                self.reset_effect(c)

            return f"select tenancy.reset_tenant(), pg_sleep({d})", ok2, []
        query = self.pick_read()
        sql = f"select s.x from pg_sleep({d}) z, ({query.sql}) s(x)"
        check = self.read_outcome(c, f"slow {query.name}", query, True)

        def ok3(out: Outcome) -> None:
            check(out)

        return sql, ok3, self.read_allowed(c, True)

    def op_timeout(self, c: Conn) -> None:
        ms = self.rng.choice([1, 2, 5, 20, 100])
        in_block = c.txn is not None
        out = self.run(c, f"set {'local ' if in_block else ''}statement_timeout = {ms}")
        if out is None or not out.ok:
            return
        c.timeout_on = True
        c.timeout_local = in_block
        sql, ok, allowed = self.slow_statement(c, self.rng.choice([0, 0.002, 0.01, 0.05]))
        out = self.run(c, sql, on_ok=ok, allowed=allowed)
        if out is not None and out.sqlstate == "57014":
            self.stats["timeout.hit"] += 1
        if not in_block:
            for _ in range(20):
                out = self.run(c, "set statement_timeout = 0")
                if out is None or out.ok:
                    break
            c.timeout_on = False
        elif c.txn is not None and not c.txn.aborted:
            out = self.run(c, "set local statement_timeout = 0")
            if out is not None and out.ok:
                c.timeout_on = c.timeout_local = False
        # inside a block SET LOCAL ends with the transaction: timeout_on stays (57014 allowed)

    def signal(self, c: Conn, fn: str) -> bool:
        conn = self.signaller if c.role == "app" else self.admin
        arg = f"{c.pid}, 5000" if fn == "pg_terminate_backend" else f"{c.pid}"
        try:
            got = conn.execute(f"select {fn}({arg})").fetchone()
        except psycopg.Error as e:
            self.record(None, f"select {fn}({arg})", f"ERROR {e.sqlstate}")
            return False
        self.record(None, f"-- from another connection: select {fn}({arg})", f"ok {got}")
        return bool(got and got[0])

    def op_cancel(self, c: Conn) -> None:
        delay = self.rng.choice([0.0, 0.005, 0.02, 0.05])
        sql, ok, allowed = self.slow_statement(c, self.rng.choice([0.01, 0.05, 0.1]))
        c.cancel_armed = 3  # this statement and, if the signal lands late, the next ones

        def during() -> None:
            time.sleep(delay)
            self.signal(c, "pg_cancel_backend")
            self.stats["cancel.sent"] += 1

        out = self.run(c, sql, on_ok=ok, allowed=allowed, during=during)
        if out is not None and out.sqlstate == "57014":
            self.stats["cancel.hit"] += 1

    def op_terminate(self, c: Conn) -> None:
        self.stats["terminate"] += 1
        if self.rng.random() < 0.5:
            c.expect_death = True
            self.signal(c, "pg_terminate_backend")
            self.connect(c, parallel_first=self.want_parallel_first())
            return
        sql, ok, allowed = self.slow_statement(c, self.rng.choice([0.02, 0.1]))
        delay = self.rng.choice([0.0, 0.01, 0.05])
        c.expect_death = True

        def during() -> None:
            time.sleep(delay)
            self.signal(c, "pg_terminate_backend")

        out = self.run(c, sql, on_ok=ok, allowed=allowed, during=during)
        if out is not None:  # the statement finished first; the backend is gone all the same
            self.connect(c, parallel_first=self.want_parallel_first())

    def op_reconnect(self, c: Conn) -> None:
        self.stats["reconnect"] += 1
        parallel = self.want_parallel_first()
        if parallel:
            self.stats["reconnect.parallel"] += 1
        self.connect(c, parallel_first=parallel)
        if parallel and self.rng.random() < 0.5:
            # the backend's very first tenancy calls under the parallel settings
            self.op_read_ctx(c)
            self.op_read_ctx(c)

    # targeted interleavings, built from the operations above with chosen arguments

    def valid_pick(self, c: Conn, tier: int | None = None) -> str:
        pool = [t for t in self.valid_for(c) if tier is None or self.world.tenants[t].tier == tier]
        return self.rng.choice(pool)

    def ensure_txn(self, c: Conn) -> None:
        if c.txn is not None and c.txn.aborted:
            self.op_rollback(c)
        if c.txn is None:
            self.op_begin(c)

    def end_txn(self, c: Conn) -> None:
        if self.rng.random() < 0.6:
            self.op_commit(c)
        else:
            self.op_rollback(c)

    def op_scenario(self, c: Conn) -> None:
        name = self.rng.choice(
            [
                "cursor_across_contexts",
                "cursor_across_contexts",
                "first_call_in_savepoint",
                "local_value_replayed",
                "own_session_value_as_local",
                "platform_value_copied",
                "rollback_restores",
                "generic_plan_across_contexts",
                "prepared_transaction",
            ]
        )
        if name in ("generic_plan_across_contexts",) and "prepared" in self.exclude:
            return
        if name in ("cursor_across_contexts",) and "cursors" in self.exclude:
            return
        if name == "prepared_transaction" and "twophase" in self.exclude:
            return
        self.trace.append(f"        -- scenario {name} on {c.name}")
        self.stats[f"scenario.{name}"] += 1
        getattr(self, "sc_" + name)(c)

    def sc_cursor_across_contexts(self, c: Conn) -> None:
        self.ensure_txn(c)
        self.op_set(c, self.valid_pick(c), self.rng.random() < 0.7)
        hold = self.rng.random() < 0.4
        name = self.op_declare(c, hold=hold, query=self.rng.choice(self.reads[:3]))
        if self.rng.random() < 0.7:
            self.op_fetch(c, name, 1)
        self.op_set(c, self.valid_pick(c), True)
        self.op_fetch(c, name, 5)
        if self.rng.random() < 0.5:
            self.op_set(c, self.valid_pick(c), self.rng.random() < 0.5)
            self.op_fetch(c, name, 50)
        self.end_txn(c)
        if name in c.cursors:
            self.op_set(c, self.valid_pick(c), False)
            self.op_fetch(c, name, 500)

    def sc_first_call_in_savepoint(self, c: Conn) -> None:
        self.connect(c, parallel_first=False)
        self.op_begin(c)
        self.op_savepoint(c)
        self.op_set(c, self.valid_pick(c), self.rng.random() < 0.5)
        token = c.last_token
        self.op_rollback_to(c)
        self.op_read_ctx(c)  # what was live at the savepoint: no context
        if token:
            self.op_forge(
                c, token, self.rng.choice(["set", "set local", "set_config"]), "value of a rolled-back set"
            )
        self.op_read_ctx(c)
        self.op_read(c, self.reads[0], proto=False)
        self.end_txn(c)

    def sc_local_value_replayed(self, c: Conn) -> None:
        self.ensure_txn(c)
        self.op_set(c, self.valid_pick(c), True)
        token = c.last_token
        self.end_txn(c)
        if not token:
            return
        if self.rng.random() < 0.5:
            self.op_begin(c)
            self.op_forge(
                c, token, self.rng.choice(["set local", "set_config local", "set"]), "ended local value"
            )
        else:
            self.op_forge(c, token, "set", "ended local value")
        self.op_read(c, self.reads[0], proto=False)
        self.op_read_ctx(c)
        if c.txn is not None:
            self.end_txn(c)

    def sc_own_session_value_as_local(self, c: Conn) -> None:
        if c.txn is not None:
            self.op_rollback(c)
        self.op_set(c, self.valid_pick(c, 2), False)
        token = c.last_token
        self.op_begin(c)
        self.op_set(c, self.valid_pick(c, 1), True)
        if token:
            self.op_forge(c, token, "set local", "own session value over a local partner context")
        self.op_read(c, self.rng.choice(self.reads[:3]), proto=False)
        self.op_read_ctx(c)
        self.end_txn(c)

    def sc_platform_value_copied(self, c: Conn) -> None:
        plat = self.conns[-1]
        if plat.txn is not None:
            self.op_rollback(plat)
        self.op_set(plat, self.world.root, self.rng.random() < 0.3)
        token = plat.last_token
        if not token or c is plat:
            return
        self.op_forge(
            c, token, self.rng.choice(["set", "set local", "set_config"]), "the platform session's value"
        )
        self.op_read(c, self.reads[0], proto=False)
        self.op_read_ctx(c)

    def sc_rollback_restores(self, c: Conn) -> None:
        if c.txn is not None:
            self.op_rollback(c)
        self.op_set(c, self.valid_pick(c), False)
        self.op_begin(c)
        self.op_set(c, self.valid_pick(c), self.rng.random() < 0.5)
        self.op_read(c, self.reads[0], proto=False)
        if self.rng.random() < 0.5:
            self.op_savepoint(c)
            self.op_reset(c) if self.rng.random() < 0.5 else self.op_set(c, self.valid_pick(c), False)
            self.op_rollback_to(c)
        self.op_rollback(c)
        self.op_read_ctx(c)
        self.op_read(c, self.rng.choice(self.reads), proto=False)

    def sc_generic_plan_across_contexts(self, c: Conn) -> None:
        self.run(c, "set plan_cache_mode = force_generic_plan")
        query = self.rng.choice(self.reads)
        name = self.prepare(c, query)
        for _ in range(3):
            self.op_set(c, self.valid_pick(c), self.rng.random() < 0.3)
            self.execute_prepared(c, name)
            self.op_read(c, query, proto=True)

    def sc_prepared_transaction(self, c: Conn) -> None:
        self.ensure_txn(c)
        self.op_set(c, self.valid_pick(c), self.rng.random() < 0.5)
        self.op_write(c)
        self.op_prepare_txn(c)
        self.op_read_ctx(c)
        others = [o for o in self.conns if o.role == c.role and o is not c and o.txn is None]
        if others:
            self.op_resolve(self.rng.choice(others))

    # -- driver -------------------------------------------------------------------------------

    def check_log(self) -> None:
        crashes = self.log_crashes()
        if crashes:
            self.fail("the server log reports a crash")

    def run_for(self, seconds: float, max_steps: int | None = None) -> dict[str, object]:
        t0 = time.monotonic()
        deadline = t0 + seconds
        while time.monotonic() < deadline and (max_steps is None or self.step < max_steps):
            self.step += 1
            self.one_step()
            self.check_log()
        elapsed = time.monotonic() - t0
        return {
            "steps": self.step,
            "seconds": round(elapsed, 1),
            "steps_per_second": round(self.step / elapsed, 1),
        }

    def close(self) -> None:
        for c in self.conns:
            if c.conn is not None:
                with contextlib.suppress(Exception):
                    c.conn.close()
        for conn in (self.signaller, self.admin):
            with contextlib.suppress(Exception):
                conn.close()


def wait_for_server(dsn: str, seconds: float = 60) -> None:
    """After a crash the postmaster reinitializes: wait until it accepts connections again."""
    deadline = time.monotonic() + seconds
    time.sleep(0.5)  # the postmaster may not have noticed the crash yet
    while True:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("select 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def run_chaos(
    server_dsn: str,
    seed: int,
    seconds: float,
    *,
    max_steps: int | None = None,
    log_path: str | None = None,
    exclude: Iterable[str] = (),
    keep: bool = False,
    keep_going: bool = False,
    out: Callable[[str], None] = print,
) -> dict[str, object]:
    """One seeded run against a fresh database; raises ChaosFailure with the report on failure.

    keep_going: record contract violations and go on (a crash or a lost connection still stops
    the run); the failure then lists them all."""
    wait_for_server(server_dsn)
    world = World()
    setup = create_setup(server_dsn, world)
    chaos: Chaos | None = None
    try:
        chaos = Chaos(setup, world, seed, log_path=log_path, exclude=exclude, keep_going=keep_going)
        try:
            result = chaos.run_for(seconds, max_steps)
        except ChaosFailure as e:
            if chaos.violations:
                e.args = (str(e) + "\n\nviolations recorded before:\n" + "\n".join(chaos.violations[:20]),)
            raise
        result["seed"] = seed
        result["stats"] = dict(sorted(chaos.stats.items()))
        out(
            f"chaos seed {seed}: {result['steps']} steps in {result['seconds']} s"
            f" ({result['steps_per_second']} steps/s)"
        )
        out("  " + ", ".join(f"{k}={v}" for k, v in sorted(chaos.stats.items())))
        if chaos.unexpected or chaos.violations:
            raise ChaosFailure(
                f"chaos seed {seed}: {len(chaos.violations)} violation(s), {len(chaos.unexpected)} unexpected"
                f" outcome(s) (replay: CHAOS_SEED={seed} make chaos)\n"
                + "\n".join(chaos.violations[:20] + chaos.unexpected[:20])
            )
        return result
    finally:
        if chaos is not None:
            chaos.close()
        if not keep:
            drop_setup(setup)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    env_seed = os.environ.get("CHAOS_SEED")
    ap.add_argument("--seed", type=int, default=int(env_seed) if env_seed else None, help="default: random")
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("CHAOS_SECONDS", "300")))
    ap.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    ap.add_argument("--runs", type=int, default=1, help="consecutive seeds from --seed, sharing --seconds")
    ap.add_argument(
        "--exclude",
        default=os.environ.get("CHAOS_EXCLUDE", ""),
        help=f"comma-separated categories to leave out: {', '.join(CATEGORIES)}",
    )
    ap.add_argument(
        "--keep-going",
        action="store_true",
        default=bool(os.environ.get("CHAOS_KEEP_GOING")),
        help="record violations and go on (crashes still stop a run)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the chaos database")
    args = ap.parse_args(argv)
    dsn = os.environ.get("TENANCY_TEST_DSN")
    if not dsn:
        print("TENANCY_TEST_DSN is not set (make chaos starts a throwaway cluster)", file=sys.stderr)
        return 2
    log = os.environ.get("TENANCY_TEST_LOG")
    if not log:
        print(
            "warning: TENANCY_TEST_LOG is not set: a crash is seen only as lost connections", file=sys.stderr
        )
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**9)
    exclude = [x for x in re.split(r"[,\s]+", args.exclude) if x]
    unknown = set(exclude) - set(CATEGORIES)
    if unknown:
        print(f"unknown categories: {sorted(unknown)}", file=sys.stderr)
        return 2
    print(f"chaos: seed {seed}, {args.seconds:g} s, {args.runs} run(s), excluding {exclude or 'nothing'}")
    failed = 0
    for i in range(args.runs):
        try:
            run_chaos(
                dsn,
                seed + i,
                args.seconds / args.runs,
                max_steps=args.steps,
                log_path=log,
                exclude=exclude,
                keep=args.keep,
                keep_going=args.keep_going,
            )
        except ChaosFailure as e:
            print(str(e), file=sys.stderr)
            failed += 1
    print(f"chaos: {args.runs - failed} of {args.runs} run(s) passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
