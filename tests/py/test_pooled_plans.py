"""The plan-safety matrix through a real PgBouncer in transaction mode with ONE server connection.

Every client's transaction runs on the same backend, so whatever an earlier client left there (an
SQL-level prepared statement, a protocol-level named statement, the cached plans of a PL/pgSQL or
a PL/Python function, a session's ``plan_cache_mode = force_generic_plan``) is run by the next
clients under their own contexts. Each transaction takes its context with
``set_tenant(..., local => true)`` and must see exactly its tenant's visible set; a transaction
without a context sees nothing. Clients rotate customers of two partners and partners, so that the
shape of the plans changes (customer equality, partner ``= ANY``) while the plans are reused, past
the five custom plans after which PostgreSQL may switch to a generic one.

Not covered because it cannot be made safe by any policy: a ``WITH HOLD`` cursor is materialized
at its commit, under the context of that transaction; a later client fetching from it gets those
rows (docs/poolers.md says so: PgBouncer's transaction mode does not support them either).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pgbouncer
import psycopg
import pytest
from pgbouncer import PgBouncer, ScratchDb, run_pgbouncer, scratch_database
from tenancy_testlib import Tree, seed_tree

pytestmark = pytest.mark.skipif(
    pgbouncer.binary() is None,
    reason="PgBouncer is not installed: no pgbouncer on PATH or /usr/sbin/pgbouncer "
    "(scripts/deps.sh installs the Debian package `pgbouncer`)",
)

LIST = "select tenant_id::text from public.orders order by created_at desc limit 1000"
ROUNDS = 7  # past the five custom plans
KINDS = ("prepare", "protocol", "plpgsql", "plpython", "generic", "cursor")


@dataclass
class World:
    db: ScratchDb
    app: str
    tree: Tree


@pytest.fixture(scope="module")
def world(server_dsn: str) -> Iterator[World]:
    with scratch_database(server_dsn, "tenancy_pooled_plans") as db:
        app = db.add_role("app")
        with psycopg.connect(db.dsn, autocommit=True) as conn:
            tree = seed_tree(conn)
            conn.execute(
                "create table public.orders (id bigserial primary key, tenant_id uuid not null,"
                " created_at timestamptz not null default now())"
            )
            conn.execute("create index on public.orders (tenant_id, created_at)")
            conn.execute("select tenancy.register_table('public.orders')")
            conn.execute(
                "insert into public.orders (tenant_id, created_at)"
                " select t.id, now() - g * interval '1 minute'"
                " from tenancy.tenants t, generate_series(1, 50) g"
            )
            conn.execute("analyze public.orders")
            conn.execute(f"grant select on public.orders to {app}")
            conn.execute(
                f"create function public.seen_plpgsql() returns setof text language plpgsql"
                f" as $$ begin return query {LIST}; end $$"
            )
            # the plan is prepared once per backend and kept in SD, as PL/Python code does
            conn.execute(
                "create function public.seen_plpython() returns setof text language plpython3u as $$\n"
                "plan = SD.get('plan')\n"
                "if plan is None:\n"
                f"    plan = SD['plan'] = plpy.prepare({LIST!r})\n"
                "return [r['tenant_id'] for r in plpy.execute(plan)]\n$$"
            )
            conn.execute(f"grant execute on function public.seen_plpython() to {app}")
        yield World(db, app, tree)


@pytest.fixture(scope="module")
def bouncer(server_dsn: str, world: World) -> Iterator[PgBouncer]:
    with run_pgbouncer(
        server_dsn, [world.db.name], world.db.roles, pool_mode="transaction", default_pool_size=1
    ) as b:
        yield b


def client(bouncer: PgBouncer, world: World) -> psycopg.Connection:
    # no automatic prepared statements (PgBouncer 1.18 does not track them); the test makes its own
    return psycopg.connect(bouncer.dsn(world.db.role_dsn(world.app)), autocommit=True, prepare_threshold=None)


def install(kind: str, conn: psycopg.Connection) -> None:
    """What the first client leaves on the server connection for the others."""
    if kind in ("prepare", "generic"):
        conn.execute("deallocate all")
        conn.execute(f"prepare q as {LIST}")
    if kind == "generic":
        conn.execute("set plan_cache_mode = force_generic_plan")  # a session setting: it stays
    if kind == "protocol":
        conn.pgconn.exec_(b"deallocate all")
        res = conn.pgconn.prepare(b"tq", LIST.encode())
        assert res.status == psycopg.pq.ExecStatus.COMMAND_OK, res.error_message


def runner(kind: str, conn: psycopg.Connection) -> Callable[[], set[str]]:
    def run() -> set[str]:
        if kind in ("prepare", "generic"):
            rows = conn.execute("execute q").fetchall()
        elif kind == "protocol":
            res = conn.pgconn.exec_prepared(b"tq", [])
            assert res.status == psycopg.pq.ExecStatus.TUPLES_OK, res.error_message
            return {(res.get_value(i, 0) or b"").decode() for i in range(res.ntuples)}
        elif kind == "plpgsql":
            rows = conn.execute("select * from public.seen_plpgsql()").fetchall()
        elif kind == "plpython":
            rows = conn.execute("select * from public.seen_plpython()").fetchall()
        else:
            with conn.cursor(name="c") as cur:
                cur.execute(LIST)
                rows = cur.fetchall()
        return {str(r[0]) for r in rows}

    return run


@pytest.mark.parametrize("kind", KINDS)
def test_the_next_clients_of_one_server_connection_see_only_their_rows(
    kind: str, bouncer: PgBouncer, world: World
) -> None:
    t = world.tree
    sequence = [t.acme, t.brandsyncup, t.initech, None, t.pixelworks, t.globex, t.acme, t.acme, t.brandsyncup]
    clients = [client(bouncer, world) for _ in range(3)]
    try:
        install(kind, clients[0])
        pids = set()
        for rnd in range(ROUNDS):
            for i, tenant in enumerate(sequence):
                conn = clients[(rnd + i) % len(clients)]
                run = runner(kind, conn)
                with conn.transaction():
                    pids.add(conn.execute("select pg_backend_pid()").fetchone()[0])
                    if tenant is not None:
                        conn.execute("select tenancy.set_tenant(%s, local => true)", [tenant])
                    seen = run()
                want = set() if tenant is None else t.visible(tenant)
                assert seen == want, f"{kind}, round {rnd}, client {(rnd + i) % 3}, tenant {tenant}"
                # after the transaction: no context, on whichever client comes next
                with clients[(rnd + i + 1) % len(clients)].transaction():
                    assert runner(kind, clients[(rnd + i + 1) % len(clients)])() == set()
        assert len(pids) == 1, f"expected one server connection, saw backends {pids}"
    finally:
        if kind == "generic":
            clients[0].execute("reset plan_cache_mode")
        for c in clients:
            c.close()
