"""The benchmark's data set: tenants, domain mappings, the scoped tables and their naive copy, roles.

Layout (``Shape`` says how much of each):

- tenants: one platform, ``partners`` partners, the rest customers. The partner under test (``P``)
  has exactly 50 customers; the other customers are spread over the other partners. Beside them a
  wide partner (``W``, slug ``wide``) with ``wide`` customers of its own (5,000 in the full run).
- ``bench.items`` (registered with ``tenancy.register_table``) and its child ``bench.item_lines``
  (two lines per item, also registered). Item ``g`` is created at ``BASE + g seconds``, so ids,
  creation times and tenants are interleaved as in a live system.
  The customer under test (``C``, one of P's customers) owns every ``C_STRIDE``-th item (a large
  customer, 1.3 % of the rows) and P itself every ``P_STRIDE``-th, so that pgbench can pick their
  ids with arithmetic; every ``W_STRIDE``-th item goes to W's customers in turn (4 % of the rows);
  every other item goes to a customer drawn from a Zipf distribution (skewed: the largest customer
  holds about 13 % of the rows, the smallest a few dozen).
- ``bench.item_events``: empty, registered; the write transactions insert into it (and update
  ``items``), so that writes do not change what the reads see.
- ``naive.*``: the same rows, with the tutorial policy on ``current_setting('app.tenant_id')``.
- ``domain_mappings``: one wildcard per partner, the rest exact hosts ``d<i>.example.com`` of
  customers (every tenth pending).

Loading uses ``INSERT ... SELECT generate_series`` as the superuser (who bypasses row-level
security; PostgreSQL refuses ``COPY FROM`` into tables with RLS), in chunks, with a progress line.
"""

from __future__ import annotations

import dataclasses
import random
import sys
import time
from collections.abc import Callable

import psycopg

BASE = "2024-01-01 00:00:00+00"
C_STRIDE, C_OFFSET = 75, 7  # the customer under test owns ids = 7 (mod 75)
P_STRIDE, P_OFFSET = 525, 11  # the partner under test owns ids = 11 (mod 525); 525 = 7 * 75
W_STRIDE, W_OFFSET = 25, 3  # the wide partner's customers own ids = 3 (mod 25), round robin
PARTNER_CHILDREN = 50
LINES_PER_ITEM = 2
CHUNK = 50_000

ROLES = {
    "bench_app": "login",  # tenancy.grant_app: customer and partner contexts
    "bench_platform": "login",  # tenancy.grant_platform: tier-0 context
    "bench_hand": "login bypassrls",  # hand-written filters and the no-RLS floor
    "bench_naive": "login",  # the tutorial policy
}


@dataclasses.dataclass(frozen=True)
class Shape:
    rows: int
    tenants: int
    partners: int
    mappings: int
    wide: int = 5_000  # customers of the wide partner W (on top of ``tenants``)

    @property
    def customers(self) -> int:
        return self.tenants - 1 - self.partners


@dataclasses.dataclass(frozen=True)
class Ids:
    """The tenants the benchmark takes contexts of."""

    platform: str
    partner: str  # P, the partner with 50 customers
    customer: str  # C, one of P's customers
    partner_set: tuple[str, ...]  # P and its customers, sorted
    wide: str = ""  # W, the partner with ``Shape.wide`` customers
    wide_set: tuple[str, ...] = ()  # W and its customers, sorted
    customers: int = 0  # rows of bench.customers (k = 1..customers): every customer outside W

    @property
    def partner_set_literal(self) -> str:
        return "{" + ",".join(self.partner_set) + "}"

    @property
    def wide_set_literal(self) -> str:
        return "{" + ",".join(self.wide_set) + "}"


Progress = Callable[[str], None]


def progress_line(text: str) -> None:
    """An updating status line on stderr (carriage return, no newline)."""
    sys.stderr.write(f"\r\033[K{text}")
    sys.stderr.flush()


def _chunked(
    conn: psycopg.Connection, label: str, total: int, sql: str, progress: Progress, per: int = 1
) -> None:
    """Run ``sql`` (parameters: first, last) over 1..total in chunks, reporting progress.

    Each step of 1..total makes ``per`` rows.
    """
    start = time.perf_counter()
    done = 0
    while done < total:
        last = min(done + CHUNK, total)
        conn.execute(sql, [done + 1, last])
        done = last
        elapsed = time.perf_counter() - start
        progress(f"  {label}: {done * per:,}/{total * per:,} rows ({100 * done // total}%) {elapsed:.1f} s")
    progress(f"  {label}: {total * per:,} rows in {time.perf_counter() - start:.1f} s\n")


def create_roles(conn: psycopg.Connection) -> None:
    for role, attrs in ROLES.items():
        exists = conn.execute("select 1 from pg_roles where rolname = %s", [role]).fetchone()
        conn.execute(f"{'alter' if exists else 'create'} role {role} {attrs}")


def drop_roles(conn: psycopg.Connection) -> None:
    for role in ROLES:
        try:
            conn.execute(f"drop role if exists {role}")
        except psycopg.Error as exc:  # still used in another database: leave it
            print(f"note: role {role} kept: {str(exc).strip()}", file=sys.stderr)


def _tenants(conn: psycopg.Connection, shape: Shape, rng: random.Random) -> Ids:
    conn.execute("insert into tenancy.tenants (slug, name) values ('platform', 'Platform')")
    conn.execute(
        """insert into tenancy.tenants (parent_id, slug, name)
           select tenancy.tenant_id(''), 'p' || lpad(i::text, 2, '0'), 'Partner ' || i
           from generate_series(1, %s) i""",
        [shape.partners],
    )
    # partner p01 gets exactly 50 customers, the others share the rest round robin
    others = shape.customers - PARTNER_CHILDREN
    parents = [1] * PARTNER_CHILDREN + [2 + i % (shape.partners - 1) for i in range(others)]
    rng.shuffle(parents)
    conn.execute(
        """insert into tenancy.tenants (parent_id, slug, name)
           select tenancy.tenant_id('p' || lpad(p::text, 2, '0')), 'c' || lpad(i::text, 4, '0'),
                  'Customer ' || i
           from unnest(%s::int[]) with ordinality as u(p, i)""",
        [parents],
    )
    conn.execute(
        "insert into tenancy.tenants (parent_id, slug, name)"
        " values (tenancy.tenant_id(''), 'wide', 'Wide partner')"
    )
    conn.execute(
        """insert into tenancy.tenants (parent_id, slug, name)
           select tenancy.tenant_id('wide'), 'w' || lpad(i::text, 5, '0'), 'Wide customer ' || i
           from generate_series(1, %s) i""",
        [shape.wide],
    )
    return find_ids(conn)


def find_ids(conn: psycopg.Connection) -> Ids:
    """The platform, P (partner p01), C (P's first customer by slug) and P's visible set."""
    partner = _one(conn, "select tenancy.tenant_id('p01')::text")
    customer = _one(
        conn, "select id::text from tenancy.tenants where parent_id = %s order by slug limit 1", [partner]
    )
    wide = _one(conn, "select tenancy.tenant_id('wide')::text")
    platform = _one(conn, "select tenancy.tenant_id('')::text")
    row = conn.execute("select to_regclass('bench.customers') is not null").fetchone()
    customers = int(_one(conn, "select count(*) from bench.customers")) if row and row[0] else 0
    return Ids(platform, partner, customer, _family(conn, partner), wide, _family(conn, wide), customers)


def _family(conn: psycopg.Connection, partner: str) -> tuple[str, ...]:
    rows = conn.execute("select id::text from tenancy.tenants where id = %s or parent_id = %s", [partner] * 2)
    return tuple(sorted(r[0] for r in rows))


def _one(conn: psycopg.Connection, sql: str, params: list[object] | None = None) -> str:
    row = conn.execute(sql, params).fetchone()
    assert row is not None, sql
    return str(row[0])


def _weights(conn: psycopg.Connection, ids: Ids, rng: random.Random) -> tuple[list[float], list[str]]:
    """Zipf weights (1/rank) over the customers other than C: thresholds for width_bucket, tenant ids.

    The twenty largest ranks go to customers outside P, so that P's size is a typical partner's.
    """
    rows = conn.execute(
        "select id::text, parent_id::text = %s from tenancy.tenants"
        " where tier = 2 and id <> %s and parent_id <> %s order by id",
        [ids.partner, ids.customer, ids.wide],
    ).fetchall()
    outside = [r[0] for r in rows if not r[1]]
    inside = [r[0] for r in rows if r[1]]
    rng.shuffle(outside)
    rest = outside[20:] + inside
    rng.shuffle(rest)
    ranked = outside[:20] + rest
    weights = [1.0 / (k + 1) for k in range(len(ranked))]
    total = sum(weights)
    thresholds, acc = [], 0.0
    for w in weights:
        thresholds.append(acc / total)
        acc += w
    return thresholds, ranked


def _items(conn: psycopg.Connection, shape: Shape, ids: Ids, rng: random.Random, progress: Progress) -> None:
    thresholds, ranked = _weights(conn, ids, rng)
    conn.execute("select setseed(%s)", [0.42])
    conn.execute(
        """create temp table weights as select %s::float8[] as th, %s::uuid[] as ids, %s::uuid[] as wide""",
        [thresholds, ranked, [t for t in ids.wide_set if t != ids.wide]],
    )
    sql = f"""
        insert into bench.items (id, tenant_id, created_at, amount, payload)
        select g,
               case when g %% {C_STRIDE} = {C_OFFSET} then '{ids.customer}'::uuid
                    when g %% {P_STRIDE} = {P_OFFSET} then '{ids.partner}'::uuid
                    when g %% {W_STRIDE} = {W_OFFSET}
                        then w.wide[1 + (g / {W_STRIDE}) %% cardinality(w.wide)]
                    else w.ids[width_bucket(random(), w.th)] end,
               timestamptz '{BASE}' + g * interval '1 second',
               round((random() * 1000)::numeric, 2),
               md5(g::text) || ' ' || repeat(chr(97 + (g %% 26)::int), (g %% 40)::int)
        from weights w, generate_series(%s::bigint, %s::bigint) g"""
    _chunked(conn, "bench.items", shape.rows, sql, progress)
    conn.execute("select setval('bench.items_id_seq', %s)", [shape.rows])


def _lines(conn: psycopg.Connection, shape: Shape, progress: Progress) -> None:
    sql = f"""
        insert into bench.item_lines (item_id, tenant_id, qty, price, sku)
        select i.id, i.tenant_id, 1 + (i.id * l) %% 7, round((10 + (i.id * l) %% 90)::numeric, 2),
               'sku-' || ((i.id * 31 + l) %% 5000)
        from bench.items i, generate_series(1, {LINES_PER_ITEM}) l
        where i.id between %s and %s
        order by i.id, l"""
    _chunked(conn, "bench.item_lines", shape.rows, sql, progress, LINES_PER_ITEM)


SCHEMA = """
create schema bench;
create table bench.items (
    id bigserial primary key,
    tenant_id uuid not null,
    created_at timestamptz not null default now(),
    amount numeric(12, 2) not null,
    payload text not null
);
create index items_tenant_created on bench.items (tenant_id, created_at);
create table bench.item_lines (
    id bigserial primary key,
    item_id bigint not null,
    tenant_id uuid not null,
    qty int not null,
    price numeric(12, 2) not null,
    sku text not null
);
create index item_lines_tenant_item on bench.item_lines (tenant_id, item_id);
create table bench.item_events (
    id bigserial primary key,
    tenant_id uuid not null,
    item_id bigint not null,
    kind text not null,
    at timestamptz not null default now()
);
create index item_events_tenant_item on bench.item_events (tenant_id, item_id);
create table bench.customers (k int primary key, id uuid not null)
"""


def _schema(conn: psycopg.Connection) -> None:
    for stmt in filter(str.strip, SCHEMA.split(";")):
        conn.execute(stmt)


def _register(conn: psycopg.Connection) -> None:
    conn.execute("select tenancy.register_table('bench.items')")
    conn.execute("select tenancy.register_table('bench.item_lines')")
    conn.execute("select tenancy.register_table('bench.item_events')")


NAIVE_POLICY = """
create policy naive_isolation on naive.{table} for all
using (tenant_id = current_setting('app.tenant_id')::uuid
       or tenant_id in (select id from naive.tenants
                        where parent_id = current_setting('app.tenant_id')::uuid))
with check (tenant_id = current_setting('app.tenant_id')::uuid)
"""


def _naive(conn: psycopg.Connection, progress: Progress) -> None:
    """The tutorial's setup: a copy of the tables with a policy on a custom setting."""
    start = time.perf_counter()
    conn.execute("create schema naive")
    conn.execute("create table naive.tenants as select id, parent_id from tenancy.tenants")
    conn.execute("alter table naive.tenants add primary key (id)")
    conn.execute("create index on naive.tenants (parent_id)")
    for table in ("items", "item_lines", "item_events"):
        conn.execute(f"create table naive.{table} (like bench.{table} including all)")
        conn.execute(f"insert into naive.{table} select * from bench.{table}")
        seq = f"naive.{table}_id_seq"
        conn.execute(f"create sequence {seq} owned by naive.{table}.id")
        conn.execute(f"select setval('{seq}', (select max(id) from naive.{table}))")
        conn.execute(f"alter table naive.{table} alter id set default nextval('{seq}')")
        conn.execute(
            f"alter table naive.{table} alter tenant_id set default current_setting('app.tenant_id')::uuid"
        )
        conn.execute(f"alter table naive.{table} enable row level security")
        conn.execute(f"alter table naive.{table} force row level security")
        conn.execute(NAIVE_POLICY.format(table=table))
        progress(f"  naive.{table}: copied, {time.perf_counter() - start:.1f} s")
    progress(f"  naive copy with the tutorial policy: {time.perf_counter() - start:.1f} s\n")


def _mappings(conn: psycopg.Connection, shape: Shape, progress: Progress) -> None:
    start = time.perf_counter()
    conn.execute(
        """insert into tenancy.domain_mappings (domain, tenant_id)
           select '*.' || slug || '.example.net', id from tenancy.tenants where tier = 1"""
    )
    conn.execute(
        """insert into tenancy.domain_mappings (domain, tenant_id, status)
           select 'd' || i || '.example.com', c.ids[1 + i %% cardinality(c.ids)],
                  case when i %% 10 = 0 then 'pending' else 'active' end
           from (select array_agg(id order by id) ids from tenancy.tenants where tier = 2) c,
                generate_series(1, %s) i""",
        [shape.mappings - shape.partners],
    )
    progress(f"  tenancy.domain_mappings: {shape.mappings:,} in {time.perf_counter() - start:.1f} s\n")


GRANTS = """
select tenancy.grant_app('bench_app');
select tenancy.grant_platform('bench_platform');
select tenancy.grant_app('bench_hand');
grant usage on schema bench to bench_app, bench_platform, bench_hand;
grant execute on function bench.plpy_noop(text, float8) to bench_app;
grant select, insert, update on all tables in schema bench to bench_app, bench_platform, bench_hand;
grant usage on all sequences in schema bench to bench_app, bench_platform, bench_hand;
grant select on tenancy.domain_mappings to bench_hand;
grant select on bench.customers to bench_app, bench_hand;
grant usage on schema naive to bench_naive;
grant select, insert, update on all tables in schema naive to bench_naive;
grant usage on all sequences in schema naive to bench_naive
"""


def _grants(conn: psycopg.Connection) -> None:
    for stmt in filter(str.strip, GRANTS.split(";")):
        conn.execute(stmt)


def load(conn: psycopg.Connection, shape: Shape, progress: Progress = progress_line) -> Ids:
    """Create and fill everything in the (fresh) database ``conn`` is connected to."""
    rng = random.Random(8)
    conn.execute("set client_min_messages = warning")
    conn.execute("set work_mem = '256MB'")
    conn.execute("set maintenance_work_mem = '512MB'")
    conn.execute("create extension tenancy cascade")
    ids = _tenants(conn, shape, rng)
    progress(f"  tenancy.tenants: {shape.tenants:,}\n")
    _schema(conn)
    _items(conn, shape, ids, rng, progress)
    _lines(conn, shape, progress)
    _register(conn)
    # customers to rotate through (pgbench picks k and reads the id with \gset): those outside W
    conn.execute(
        "insert into bench.customers select row_number() over (order by id), id from tenancy.tenants"
        " where tier = 2 and parent_id <> %s",
        [ids.wide],
    )
    _mappings(conn, shape, progress)
    _naive(conn, progress)
    conn.execute(
        "create function bench.plpy_noop(p text, t float8) returns text language plpython3u as 'return p'"
    )
    _grants(conn)
    start = time.perf_counter()
    progress("  vacuum analyze ...")
    conn.execute("vacuum (analyze)")
    progress(f"  vacuum analyze: {time.perf_counter() - start:.1f} s\n")
    return find_ids(conn)


def sizes(conn: psycopg.Connection) -> dict[str, str]:
    """Row counts and total sizes (with indexes) of the benchmark's tables."""
    out: dict[str, str] = {}
    for table in (
        "bench.items",
        "bench.item_lines",
        "naive.items",
        "naive.item_lines",
        "tenancy.tenants",
        "tenancy.domain_mappings",
    ):
        row = conn.execute(
            f"select count(*), pg_size_pretty(pg_total_relation_size('{table}')) from {table}"
        ).fetchone()
        assert row is not None
        out[table] = f"{row[0]:,} rows, {row[1]}"
    return out
