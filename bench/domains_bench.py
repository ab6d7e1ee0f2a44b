"""resolve_domain against a raw primary-key lookup, with many mappings (SPEC §6: ≤ 1.5×).

    .venv/bin/python bench/domains_bench.py [--dsn DSN] [--mappings 100000] [--lookups 20000]

Given a superuser DSN, makes a fresh database with the extension, a platform, 100 partners with
10 customers each, and ``n_mappings`` mappings (one wildcard ``*.pN.example.net`` per partner, the
rest exact hosts of customers), then times, in the same run and over the same hosts:

- ``raw``: ``select tenant_id from tenancy.domain_mappings where domain = $1`` (the host already
  normalized; one index probe),
- ``resolve``: ``select tenancy.resolve_domain($1)`` (the same hosts),
- ``resolve_wildcard`` and ``resolve_miss``: resolution of ``<customer>.pN.example.net`` and of an
  unknown host (for information; not part of the ratio).

Every statement is prepared once and executed over one connection, as an application does (each
call its own transaction, as autocommit); ROUNDS short rounds run the two forms back to back in
alternating order, so that drift and bursts of load affect both alike.
The ratio is the median of the per-round ratios.  The database is dropped afterwards.
``run(dsn, n_mappings, n_lookups)`` returns the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import sys
import time

import psycopg

PARTNERS = 100
CUSTOMERS_PER_PARTNER = 10
ROUNDS = 40


def _connect(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True)


def _load(conn: psycopg.Connection, n_mappings: int) -> None:
    conn.execute("set client_min_messages = warning")
    conn.execute("create extension tenancy cascade")
    conn.execute("insert into tenancy.tenants (slug, name) values ('platform', 'Platform')")
    conn.execute(
        """insert into tenancy.tenants (parent_id, slug, name)
           select tenancy.tenant_id(''), 'p' || i, 'Partner ' || i from generate_series(1, %s) i""",
        [PARTNERS],
    )
    conn.execute(
        """insert into tenancy.tenants (parent_id, slug, name)
           select p.id, 'c' || j, p.name || ' customer ' || j
           from tenancy.tenants p, generate_series(1, %s) j where p.tier = 1""",
        [CUSTOMERS_PER_PARTNER],
    )
    conn.execute(
        """insert into tenancy.domain_mappings (domain, tenant_id)
           select '*.' || p.slug || '.example.net', p.id from tenancy.tenants p where p.tier = 1"""
    )
    # the rest: exact hosts of customers, round robin, every tenth pending
    conn.execute(
        """insert into tenancy.domain_mappings (domain, tenant_id, status)
           select 'shop' || i || '.customer' || (i %% 997) || '.example.com',
                  c.ids[1 + i %% cardinality(c.ids)],
                  case when i %% 10 = 0 then 'pending' else 'active' end
           from (select array_agg(id order by id) ids from tenancy.tenants where tier = 2) c,
                generate_series(1, %s) i""",
        [max(n_mappings - PARTNERS, 0)],
    )
    conn.execute("analyze tenancy.domain_mappings")
    conn.execute("analyze tenancy.tenants")


def _time(conn: psycopg.Connection, sql: str, hosts: list[str]) -> float:
    """Seconds per call, over all hosts, one prepared statement."""
    cur = conn.cursor()
    start = time.perf_counter()
    for host in hosts:
        cur.execute(sql, [host], prepare=True)
        cur.fetchone()
    return (time.perf_counter() - start) / len(hosts)


def _one(conn: psycopg.Connection, sql: str, host: str) -> object:
    row = conn.execute(sql, [host]).fetchone()
    return None if row is None else row[0]


def run(dsn: str, n_mappings: int = 100_000, n_lookups: int = 20_000) -> dict[str, float | int]:
    """Load ``n_mappings`` into a fresh database and time ``n_lookups`` of each form (see module doc)."""
    name = f"tenancy_bench_domains_{secrets.token_hex(3)}"
    with _connect(dsn) as admin:
        admin.execute(f"create database {name}")
    try:
        with _connect(f"{dsn} dbname={name}") as conn:
            _load(conn, n_mappings)
            rng = random.Random(4)
            active = [
                r[0]
                for r in conn.execute(
                    "select domain from tenancy.domain_mappings where status = 'active' and domain !~ '^[*]'"
                )
            ]
            hosts = [rng.choice(active) for _ in range(n_lookups)]
            wild = [f"c{rng.randint(1, CUSTOMERS_PER_PARTNER)}.p{rng.randint(1, PARTNERS)}.example.net"]
            wild = wild * max(n_lookups // 10, 1)
            miss = ["nobody.example.org"] * max(n_lookups // 10, 1)
            raw_sql = "select tenant_id from tenancy.domain_mappings where domain = %s"
            resolve_sql = "select tenancy.resolve_domain(%s)"
            for sql in (raw_sql, resolve_sql):  # warm-up: plans, caches, the regex cache
                _time(conn, sql, hosts[:500])
            # short rounds, the two forms back to back in alternating order: a burst of load on
            # the machine lands on both, and the median of the per-round ratios ignores it
            per_round = max(len(hosts) // ROUNDS, 1)
            raw: list[float] = []
            resolve: list[float] = []
            for i in range(ROUNDS):
                chunk = hosts[i * per_round : (i + 1) * per_round] or hosts
                pairs: list[tuple[list[float], str]] = [(raw, raw_sql), (resolve, resolve_sql)]
                for bucket, sql in pairs if i % 2 == 0 else reversed(pairs):
                    bucket.append(_time(conn, sql, chunk))
            assert _one(conn, resolve_sql, wild[0]) is not None, "the wildcard host resolves"
            assert _one(conn, resolve_sql, miss[0]) is None, "the unknown host does not"
            wildcard = _time(conn, resolve_sql, wild)
            unknown = _time(conn, resolve_sql, miss)
            mappings = conn.execute("select count(*) from tenancy.domain_mappings").fetchone()
        raw_us = statistics.median(raw) * 1e6
        resolve_us = statistics.median(resolve) * 1e6
        ratio = statistics.median(b / a for a, b in zip(raw, resolve, strict=True))
        return {
            "mappings": int(mappings[0]) if mappings else 0,
            "lookups": len(hosts),
            "raw_us": round(raw_us, 2),
            "resolve_us": round(resolve_us, 2),
            "ratio": round(ratio, 3),
            "resolve_wildcard_us": round(wildcard * 1e6, 2),
            "resolve_miss_us": round(unknown * 1e6, 2),
        }
    finally:
        with _connect(dsn) as admin:
            admin.execute(f"drop database if exists {name} with (force)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("TENANCY_TEST_DSN", ""), help="superuser DSN")
    parser.add_argument("--mappings", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    res = run(args.dsn, args.mappings, args.lookups)
    if args.json:
        print(json.dumps(res))
    else:
        print(
            f"resolve_domain vs raw lookup, {res['mappings']} mappings, {res['lookups']} lookups: "
            f"raw {res['raw_us']} µs, resolve_domain {res['resolve_us']} µs, ratio {res['ratio']}x "
            f"(target <= 1.5); wildcard {res['resolve_wildcard_us']} µs, unknown {res['resolve_miss_us']} µs"
        )
    return 0 if float(res["ratio"]) <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
