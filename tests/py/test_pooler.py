"""tenancy behind a real PgBouncer (transaction pooling): a soak, and the session-context hazard.

The soak: 16 clients, each on its own connection through PgBouncer (pool_mode = transaction, four
server connections per login), 500 transactions each. Every transaction takes a random tenant of
any tier with `set_tenant(..., local => true)` or `set_tenant_for_domain(host, local => true)`,
reads a registered table, inserts and updates rows, and checks that what it saw and touched is
exactly that tenant's visible set (computed as superuser from tenancy.tenants). Afterwards no
server connection of the pool carries a context.

The hazard (docs/poolers.md): a session-level `set_tenant` made through transaction pooling stays on
the server connection and is the context of the next client's transaction on it; PgBouncer runs no
reset query in transaction mode. `local => true` does not leak.
"""

from __future__ import annotations

import contextlib
import random
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pgbouncer
import psycopg
import pytest
from pgbouncer import PgBouncer, ScratchDb, run_pgbouncer, scratch_database
from psycopg_pool import ConnectionPool
from tenancy_testlib import seed_tree

needs_pgbouncer = pytest.mark.skipif(
    pgbouncer.binary() is None,
    reason="PgBouncer is not installed: no pgbouncer on PATH or /usr/sbin/pgbouncer "
    "(scripts/deps.sh installs the Debian package `pgbouncer`)",
)

CLIENTS = 16
TX_PER_CLIENT = 500
POOL_SIZE = 4
SEED_ROWS = 5  # per tenant
PROBE_RATE = 0.05  # transactions that ask for a context that must be refused (suspended, root for app)
CROSS_WRITE_RATE = 0.10  # transactions that also try to write a row into an invisible tenant

# DISCARD ALL spelled out (DISCARD ALL itself cannot share a query string) plus reset_tenant():
# the server_reset_query docs/poolers.md recommends for session pooling.
RESET_WITH_TENANCY = (
    "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; SELECT tenancy.reset_tenant(); "
    "DEALLOCATE ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD PLANS; DISCARD TEMP; "
    "DISCARD SEQUENCES"
)


@dataclass(frozen=True)
class Tenant:
    id: str
    path: str
    tier: int
    active: bool
    visible: frozenset[str]
    hosts: tuple[str, ...]  # hosts that resolve to this tenant (exact and wildcard mappings)

    @property
    def label(self) -> str:
        return self.path or "(root)"


@dataclass(frozen=True)
class World:
    db: ScratchDb
    app: str  # tenancy.grant_app
    platform: str  # tenancy.grant_platform
    tenants: dict[str, Tenant]  # by path

    def dsn(self, role: str) -> str:
        return self.db.role_dsn(role)


def _domains(conn: psycopg.Connection) -> dict[str, list[str]]:
    """Seed mappings: root console + a wildcard for partners, a wildcard per partner for its
    customers, a custom domain per customer. Returns path -> hosts that must resolve to it."""
    rows = conn.execute(
        "select t.id, tenancy.tenant_path(t.id), t.tier, t.slug, p.slug"
        " from tenancy.tenants t left join tenancy.tenants p on p.id = t.parent_id"
    ).fetchall()
    mappings: list[tuple[str, str, bool]] = []
    hosts: dict[str, list[str]] = {}
    for tid, path, tier, slug, parent_slug in rows:
        if tier == 0:
            mappings += [("console.soak.test", tid, True), ("*.soak-platform.test", tid, False)]
            hosts[path] = ["console.soak.test", "Console.Soak.Test."]
        elif tier == 1:
            mappings.append((f"*.{slug}.soak-partner.test", tid, False))
            hosts[path] = [f"{slug}.soak-platform.test", f"{slug.upper()}.soak-platform.test:443"]
        else:
            mappings.append((f"{slug}.soak-shop.test", tid, True))
            hosts[path] = [f"{slug}.soak-shop.test", f"{slug}.{parent_slug}.soak-partner.test"]
    for domain, tid, primary in mappings:
        conn.execute(
            "insert into tenancy.domain_mappings (domain, tenant_id, is_primary) values (%s, %s, %s)",
            [domain, tid, primary],
        )
    return hosts


@pytest.fixture(scope="module")
def world(server_dsn: str) -> Iterator[World]:
    """A database of its own: the tenant tree, domains, public.soak, an app and a platform login."""
    with scratch_database(server_dsn, "tenancy_pooler") as db:
        app = db.add_role("app")
        platform = db.add_role("platform")
        with psycopg.connect(db.dsn, autocommit=True) as conn:
            seed_tree(conn)
            hosts = _domains(conn)
            conn.execute(
                "create table public.soak (id bigserial primary key, tenant_id uuid not null, n int)"
            )
            # write_scope 'visible': a partner may update its customers' rows, so the random updates
            # below exercise both USING (invisible rows untouched) and WITH CHECK.
            conn.execute("select tenancy.register_table('public.soak', write_scope => 'visible')")
            for role in (app, platform):
                conn.execute(f"grant select, insert, update, delete on public.soak to {role}")
                conn.execute(f"grant usage on sequence public.soak_id_seq to {role}")
            conn.execute(
                "insert into public.soak (tenant_id, n) select t.id, 0 from tenancy.tenants t,"
                " generate_series(1, %s)",
                [SEED_ROWS],
            )
            tenants: dict[str, Tenant] = {}
            for tid, path, tier, status, visible in conn.execute(
                "select t.id::text, tenancy.tenant_path(t.id), t.tier, t.status, case t.tier"
                "  when 0 then array(select a.id::text from tenancy.tenants a)"
                "  when 1 then array(select c.id::text from tenancy.tenants c"
                "                    where c.id = t.id or c.parent_id = t.id)"
                "  else array[t.id::text] end"
                " from tenancy.tenants t"
            ):
                tenants[path] = Tenant(
                    tid, path, tier, status == "active", frozenset(visible), tuple(hosts[path])
                )
            for t in tenants.values():  # the mappings resolve as intended (superuser, no context)
                for host in t.hosts:
                    got = conn.execute("select tenancy.resolve_domain(%s)::text", [host]).fetchone()
                    assert got == (t.id,), f"{host} should resolve to {t.path}"
        assert {t.tier for t in tenants.values()} == {0, 1, 2}
        assert any(not t.active for t in tenants.values()), "the tree has a suspended tenant"
        yield World(db=db, app=app, platform=platform, tenants=tenants)


def bounced(bouncer: PgBouncer, dsn: str, autocommit: bool = False) -> psycopg.Connection:
    # PgBouncer 1.18 cannot route named prepared statements in transaction mode: no auto-prepare.
    return psycopg.connect(bouncer.dsn(dsn), autocommit=autocommit, prepare_threshold=None)


@pytest.fixture(scope="module")
def bouncer(server_dsn: str, world: World) -> Iterator[PgBouncer]:
    with run_pgbouncer(
        server_dsn, [world.db.name], world.db.roles, pool_mode="transaction", default_pool_size=POOL_SIZE
    ) as b:
        yield b


@dataclass
class Tally:
    committed: int = 0
    refused_contexts: int = 0  # TN002 (suspended) / TN007 (root for an app login), as expected
    refused_cross_writes: int = 0  # 42501, as expected
    rows_seen: int = 0
    rows_updated: int = 0
    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    backends: set[int] = field(default_factory=set)


class Violation(Exception):
    pass


def _transaction(
    conn: psycopg.Connection,
    rng: random.Random,
    world: World,
    tenant: Tenant,
    refusal: str | None,
    max_id: int,
    tally: Tally,
) -> None:
    def expect(ok: bool, what: str) -> None:
        if not ok:
            raise Violation(f"{tenant.label}: {what}")

    with conn.transaction():
        if rng.random() < 0.5:
            row = conn.execute("select tenancy.set_tenant(%s, local => true)::text", [tenant.id]).fetchone()
            how = "set_tenant"
        else:
            host = rng.choice(tenant.hosts)
            row = conn.execute(
                "select tenancy.set_tenant_for_domain(%s, local => true)::text", [host]
            ).fetchone()
            how = f"set_tenant_for_domain({host})"
        expect(refusal is None, f"{how} was accepted; expected {refusal}")
        expect(row == (tenant.id,), f"{how} returned {row}")

        seen = dict(conn.execute("select tenant_id::text, count(*) from public.soak group by 1").fetchall())
        expect(
            set(seen) == tenant.visible, f"saw tenants {sorted(seen)}, visible set {sorted(tenant.visible)}"
        )
        tally.rows_seen += sum(seen.values())

        row = conn.execute(
            "insert into public.soak (n) values (0) returning id, tenant_id::text, pg_backend_pid()"
        ).fetchone()
        assert row is not None
        new_id, owner, pid = row
        tally.backends.add(pid)
        expect(owner == tenant.id, f"inserted row landed in {owner}")

        ids = [new_id, *(rng.randint(1, max_id) for _ in range(4))]
        touched = [
            r[0]
            for r in conn.execute(
                "update public.soak set n = n + 1 where id = any(%s::bigint[]) returning tenant_id::text",
                [ids],
            )
        ]
        expect(tenant.id in touched, "its own new row was not updated")
        expect(set(touched) <= tenant.visible, f"updated rows of {sorted(set(touched) - tenant.visible)}")
        tally.rows_updated += len(touched)

        invisible = sorted({t.id for t in world.tenants.values()} - tenant.visible)
        if invisible and rng.random() < CROSS_WRITE_RATE:
            victim = rng.choice(invisible)
            try:
                with conn.transaction():  # a savepoint
                    conn.execute("insert into public.soak (tenant_id, n) values (%s, -1)", [victim])
            except psycopg.errors.InsufficientPrivilege:
                tally.refused_cross_writes += 1
            else:
                expect(False, f"insert into invisible tenant {victim} was accepted")
    tally.committed += 1


def _client(
    bouncer: PgBouncer, world: World, platform: bool, seed: int, start: threading.Barrier, tally: Tally
) -> None:
    rng = random.Random(seed)
    tenants = list(world.tenants.values())
    choices = [t for t in tenants if t.active and (platform or t.tier > 0)]
    probes = [(t, "TN002") for t in tenants if not t.active]
    if not platform:
        probes += [(t, "TN007") for t in tenants if t.tier == 0]
    max_id = len(tenants) * SEED_ROWS + CLIENTS * TX_PER_CLIENT
    try:
        with bounced(bouncer, world.dsn(world.platform if platform else world.app)) as conn:
            start.wait()
            for _ in range(TX_PER_CLIENT):
                refusal: str | None = None
                if rng.random() < PROBE_RATE:
                    tenant, refusal = rng.choice(probes)
                else:
                    tenant = rng.choice(choices)
                try:
                    _transaction(conn, rng, world, tenant, refusal, max_id, tally)
                except Violation as exc:
                    tally.violations.append(str(exc))
                except psycopg.Error as exc:
                    if refusal is not None and exc.sqlstate == refusal:
                        tally.refused_contexts += 1
                    else:
                        tally.errors.append(f"{tenant.label}: {exc.sqlstate} {exc}")
    except Exception as exc:  # a client that dies is an error, not a silent shortfall
        tally.errors.append(f"client died: {exc!r}")
        start.abort()


@dataclass
class Soak:
    tallies: list[Tally]
    seconds: float
    xact_count: int  # PgBouncer's own count of transactions for the database
    server_connections: int

    def total(self, name: str) -> int:
        return sum(getattr(t, name) for t in self.tallies)

    def summary(self) -> str:
        tx = self.total("committed") + self.total("refused_contexts")
        return (
            f"soak through PgBouncer (transaction pooling, default_pool_size={POOL_SIZE}): "
            f"{CLIENTS} clients x {TX_PER_CLIENT} tx = {tx} transactions in {self.seconds:.1f} s "
            f"({tx / self.seconds:.0f} tx/s); committed {self.total('committed')}, "
            f"refused contexts {self.total('refused_contexts')}, "
            f"refused cross-tenant writes {self.total('refused_cross_writes')}, "
            f"rows seen {self.total('rows_seen')}, rows updated {self.total('rows_updated')}, "
            f"server backends used {len(set().union(*(t.backends for t in self.tallies)))}, "
            f"PgBouncer xacts {self.xact_count}; "
            f"violations {self.total_len('violations')}, errors {self.total_len('errors')}"
        )

    def total_len(self, name: str) -> int:
        return sum(len(getattr(t, name)) for t in self.tallies)


@pytest.fixture(scope="module")
def soak(world: World, bouncer: PgBouncer) -> Soak:
    tallies = [Tally() for _ in range(CLIENTS)]
    start = threading.Barrier(CLIENTS + 1)
    threads = [
        threading.Thread(
            target=_client, args=(bouncer, world, i % 4 == 0, 1000 + i, start, tallies[i]), daemon=True
        )
        for i in range(CLIENTS)
    ]
    for t in threads:
        t.start()
    # A client that cannot start breaks the barrier; its error is in its tally, the test reports it.
    with contextlib.suppress(threading.BrokenBarrierError):
        start.wait(timeout=60)
    began = time.monotonic()
    for t in threads:
        t.join(timeout=600)
    seconds = time.monotonic() - began
    assert not any(t.is_alive() for t in threads), "soak clients still running after 600 s"
    stats = [r for r in bouncer.admin("show stats") if r["database"] == world.db.name]
    return Soak(
        tallies=tallies,
        seconds=seconds,
        xact_count=int(stats[0]["total_xact_count"]) if stats else 0,
        server_connections=len(bouncer.servers(world.db.name)),
    )


@needs_pgbouncer
def test_soak_isolation_through_pgbouncer(soak: Soak) -> None:
    summary = soak.summary()
    violations = [v for t in soak.tallies for v in t.violations]
    errors = [e for t in soak.tallies for e in t.errors]
    assert not violations, f"{summary}\nfirst violations: {violations[:10]}"
    assert not errors, f"{summary}\nfirst errors: {errors[:10]}"
    tx = soak.total("committed") + soak.total("refused_contexts")
    assert tx == CLIENTS * TX_PER_CLIENT, summary
    # Every kind of check actually ran: refusals, cross-tenant writes, rows seen and updated.
    assert soak.total("refused_contexts") > 0 and soak.total("refused_cross_writes") > 0, summary
    assert soak.total("rows_seen") > tx and soak.total("rows_updated") >= soak.total("committed"), summary
    # The traffic went through PgBouncer and was multiplexed: 16 clients on at most 2 x 4 backends.
    assert soak.xact_count >= tx, summary
    backends = set().union(*(t.backends for t in soak.tallies))
    assert 1 < len(backends) <= 2 * POOL_SIZE, summary
    assert soak.server_connections <= 2 * POOL_SIZE, summary
    print(summary)


@needs_pgbouncer
def test_no_context_left_on_any_server_connection_after_the_soak(
    soak: Soak, world: World, bouncer: PgBouncer
) -> None:
    """Hold POOL_SIZE transactions open at once per login, so that every server connection of the
    pool serves one of them: none has a context, none shows a row."""
    for role in (world.app, world.platform):
        pooled = {r["remote_pid"] for r in bouncer.servers(world.db.name, role)}
        assert pooled, f"the soak left server connections for {role}"
        conns = [bounced(bouncer, world.dsn(role)) for _ in range(POOL_SIZE)]
        try:
            results = [
                c.execute(
                    "select pg_backend_pid(), tenancy.current_tenant(), current_setting('tenancy.ctx', true),"
                    " (select count(*) from public.soak)"
                ).fetchone()
                for c in conns
            ]
        finally:
            for c in conns:
                c.rollback()
                c.close()
        pids = {r[0] for r in results if r is not None}
        assert len(pids) == POOL_SIZE and pooled <= pids, (pooled, results)
        for _pid, tenant, _setting, count in (r for r in results if r is not None):
            assert tenant is None and count == 0, results


def _show_config(bouncer: PgBouncer) -> dict[str, str]:
    return {r["key"]: r["value"] for r in bouncer.admin("show config")}


@needs_pgbouncer
def test_session_context_leaks_through_transaction_pooling(server_dsn: str, world: World) -> None:
    """Client A calls set_tenant(..., local => false) through transaction pooling; client B, which
    never called set_tenant, gets the same server connection and works in A's tenant.
    Then the same with local => true: nothing leaks."""
    acme = world.tenants["brandsyncup/acme"]
    with run_pgbouncer(server_dsn, [world.db.name], world.db.roles, default_pool_size=1) as b:
        config = _show_config(b)
        # PgBouncer has a reset query, but does not run it in transaction mode by default.
        assert config["server_reset_query"] == "DISCARD ALL"
        assert config["server_reset_query_always"] == "0"
        dsn = world.dsn(world.app)
        with bounced(b, dsn, autocommit=True) as a, bounced(b, dsn, autocommit=True) as victim:
            a_pid = a.execute("select pg_backend_pid() from tenancy.set_tenant(%s)", [acme.id]).fetchone()
            row = victim.execute("select pg_backend_pid(), tenancy.current_tenant()::text").fetchone()
            seen = {r[0] for r in victim.execute("select distinct tenant_id::text from public.soak")}
            assert a_pid is not None and row == (a_pid[0], acme.id), (
                "B runs on A's server connection, in A's tenant"
            )
            assert seen == {acme.id}, "B reads A's tenant's rows"
            victim.execute("select tenancy.reset_tenant()")

            with a.transaction():
                a.execute("select tenancy.set_tenant(%s, local => true)", [acme.id])
                mine = a.execute("select count(*), pg_backend_pid() from public.soak").fetchone()
            assert mine is not None and mine[0] > 0
            row = victim.execute(
                "select pg_backend_pid(), tenancy.current_tenant(), (select count(*) from public.soak)"
            ).fetchone()
            assert row == (mine[1], None, 0), "with local => true the context ended at A's COMMIT"
            assert len(b.servers(world.db.name, world.app)) == 1


def test_discard_all_and_reset_all_clear_the_context(world: World) -> None:
    """What a pooler's reset query does to the context, on a direct connection."""
    acme = world.tenants["brandsyncup/acme"]
    with psycopg.connect(world.dsn(world.app), autocommit=True) as conn:
        for reset in ("DISCARD ALL", "RESET ALL", "select tenancy.reset_tenant()"):
            conn.execute("select tenancy.set_tenant(%s)", [acme.id])
            assert conn.execute("select count(*) > 0 from public.soak").fetchone() == (True,)
            conn.execute(reset)
            row = conn.execute(
                "select tenancy.current_tenant(), (select count(*) from public.soak)"
            ).fetchone()
            assert row == (None, 0), reset
        # inside a transaction, for a local context
        with conn.transaction():
            conn.execute("select tenancy.set_tenant(%s, local => true)", [acme.id])
            conn.execute("RESET ALL")
            assert conn.execute("select tenancy.current_tenant()").fetchone() == (None,)


@needs_pgbouncer
def test_server_reset_query_always_discards_a_session_context(server_dsn: str, world: World) -> None:
    """server_reset_query_always = 1: PgBouncer runs DISCARD ALL after every transaction, so a
    session-level context no longer reaches the next client (nor the same client's next transaction)."""
    acme = world.tenants["brandsyncup/acme"]
    settings = {"server_reset_query_always": 1}
    with run_pgbouncer(
        server_dsn, [world.db.name], world.db.roles, default_pool_size=1, settings=settings
    ) as b:
        dsn = world.dsn(world.app)
        with bounced(b, dsn, autocommit=True) as a, bounced(b, dsn, autocommit=True) as victim:
            a_pid = a.execute("select pg_backend_pid() from tenancy.set_tenant(%s)", [acme.id]).fetchone()
            row = victim.execute(
                "select pg_backend_pid(), tenancy.current_tenant(), (select count(*) from public.soak)"
            ).fetchone()
            assert a_pid is not None and row == (a_pid[0], None, 0)


def _guess_previous_tokens(token: str) -> list[str]:
    """Tokens this backend issued just before `token`, if tokens are a prefix and a hex counter."""
    m = re.fullmatch(r"([0-9a-f]{16})([0-9a-f]+)", token)
    if not m:
        return []
    prefix, n = m.group(1), int(m.group(2), 16)
    return [f"{prefix}{k:x}" for k in range(max(1, n - 5), n)]


@needs_pgbouncer
def test_context_hidden_by_discard_all_cannot_be_revived(server_dsn: str, world: World) -> None:
    """Session pooling with PgBouncer's default reset (DISCARD ALL): A leaves a session context behind;
    B gets the server connection, learns the token format from a context of its own and types a guess."""
    acme = world.tenants["brandsyncup/acme"]
    initech = world.tenants["pixelworks/initech"]
    with run_pgbouncer(
        server_dsn, [world.db.name], world.db.roles, pool_mode="session", default_pool_size=1
    ) as b:
        dsn = world.dsn(world.app)
        with bounced(b, dsn, autocommit=True) as a:
            a.execute("select tenancy.set_tenant(%s)", [acme.id])
        with bounced(b, dsn) as victim:
            assert victim.execute("select tenancy.current_tenant()").fetchone() == (None,)
            victim.execute("select tenancy.set_tenant(%s, local => true)", [initech.id])
            own = victim.execute("select current_setting('tenancy.ctx')").fetchone()
            victim.commit()
            assert own is not None
            revived = []
            guesses = _guess_previous_tokens(own[0])
            assert guesses, f"no guess could be made from {own[0]!r}"
            for guess in guesses:
                victim.execute("select set_config('tenancy.ctx', %s, true)", [guess])
                row = victim.execute("select tenancy.current_tenant()::text").fetchone()
                if row is not None and row[0] is not None:
                    revived.append(row[0])
                victim.rollback()
            assert revived == [], f"a guessed token revived the context of {revived}"


@needs_pgbouncer
def test_reset_tenant_in_server_reset_query_kills_the_context(server_dsn: str, world: World) -> None:
    """Session pooling with the reset query docs/poolers.md recommends: even A's exact token is dead."""
    acme = world.tenants["brandsyncup/acme"]
    with run_pgbouncer(
        server_dsn,
        [world.db.name],
        world.db.roles,
        pool_mode="session",
        default_pool_size=1,
        settings={"server_reset_query": RESET_WITH_TENANCY},
    ) as b:
        assert _show_config(b)["server_reset_query"] == RESET_WITH_TENANCY, "PgBouncer kept all of it"
        dsn = world.dsn(world.app)
        with bounced(b, dsn, autocommit=True) as a:
            row = a.execute(
                "select pg_backend_pid(), current_setting('tenancy.ctx') from tenancy.set_tenant(%s)",
                [acme.id],
            ).fetchone()
            assert row is not None
            a_pid, a_token = row
            a.execute("create temp table leftover (x int)")
        with bounced(b, dsn, autocommit=True) as victim:
            with victim.transaction():
                victim.execute("select set_config('tenancy.ctx', %s, true)", [a_token])
                got = victim.execute(
                    "select pg_backend_pid(), tenancy.current_tenant(), (select count(*) from public.soak)"
                ).fetchone()
            assert got == (a_pid, None, 0), "same server connection, and A's token is no context"
            # the whole reset query ran, up to its last statements
            assert victim.execute("select to_regclass('pg_temp.leftover')").fetchone() == (None,)


def test_psycopg_pool_reset_callback_ends_a_session_context(world: World) -> None:
    """A client-side pool hands the same session to the next borrower: a session-level context leaks
    unless the pool's reset callback calls tenancy.reset_tenant() (examples/python)."""
    acme = world.tenants["brandsyncup/acme"]

    def reset(conn: psycopg.Connection) -> None:
        conn.execute("select tenancy.reset_tenant()")
        conn.commit()

    def next_borrower_sees(pool: ConnectionPool) -> tuple[object, ...] | None:
        with pool.connection() as conn:
            conn.execute("select tenancy.set_tenant(%s)", [acme.id])  # session-level: the mistake
        with pool.connection() as conn:
            return conn.execute(
                "select tenancy.current_tenant()::text, (select count(*) > 0 from public.soak)"
            ).fetchone()

    dsn = world.dsn(world.app)
    with ConnectionPool(dsn, min_size=1, max_size=1) as pool:
        assert next_borrower_sees(pool) == (acme.id, True), "without a reset the context leaks"
        with pool.connection() as conn:
            conn.execute("select tenancy.reset_tenant()")
    with ConnectionPool(dsn, min_size=1, max_size=1, reset=reset) as pool:
        assert next_borrower_sees(pool) == (None, False)
