"""A customer's routed point and list queries on a Citus cluster, tenancy against the hand-written query.

Usage (docs/citus.md): .venv/bin/python bench/citus_bench.py [--tenants 200] [--rows 500] [--rounds 2000].
Needs TENANCY_CITUS_COORDINATOR (a superuser DSN) and tenancy installed with its cluster key
(citus_distribute_key). It builds a table distributed by tenant in its own schema, then times,
interleaved round by round over random tenants:

* tenancy: as an application login (grant_app, under RLS): BEGIN; set_tenant($t, local => true);
  the query with `tenant_id = $t` (so Citus routes it to one shard); COMMIT;
* hand-written: as a role that bypasses RLS (the superuser): BEGIN; set_config('app.tenant', $t,
  true); the same query; COMMIT;

all with prepared statements (extended protocol). It prints the median of the whole transaction and of
the query statement alone, and the ratios. It drops its schema and role at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import time

import psycopg
from psycopg.conninfo import make_conninfo

QUERIES = {
    "point": "select * from {t} where tenant_id = %s and id = %s",
    "list": "select * from {t} where tenant_id = %s order by created_at desc limit 50",
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tenants", type=int, default=200)
    ap.add_argument("--rows", type=int, default=500, help="rows per tenant")
    ap.add_argument("--rounds", type=int, default=2000)
    args = ap.parse_args()
    coord = os.environ.get("TENANCY_CITUS_COORDINATOR")
    if not coord:
        print("set TENANCY_CITUS_COORDINATOR (see docs/citus.md)", file=sys.stderr)
        return 2
    tag = secrets.token_hex(3)
    schema, role, password = f"tnc_bench_{tag}", f"tnc_bench_{tag}", secrets.token_hex(8)
    table = f"{schema}.items"
    su = psycopg.connect(coord, autocommit=True)
    su.execute("set client_min_messages = warning")
    root = su.execute("select id from tenancy.tenants where parent_id is null").fetchone()
    root_id = (
        root[0]
        if root
        else su.execute("insert into tenancy.tenants (slug) values ('platform') returning id").fetchone()[0]
    )
    partner = su.execute(
        "insert into tenancy.tenants (slug, parent_id) values (%s, %s) returning id",
        [f"bench-{tag}", root_id],
    ).fetchone()[0]
    tenants = [
        r[0]
        for r in su.execute(
            "insert into tenancy.tenants (slug, parent_id) select 'c' || g, %s from generate_series(1, %s) g"
            " returning id",
            [partner, args.tenants],
        ).fetchall()
    ]
    try:
        su.execute(f"create role {role} login password '{password}'")
        su.execute("select tenancy.grant_app(%s)", [role])
        su.execute(f"create schema {schema}")
        su.execute(f"grant usage on schema {schema} to {role}")
        su.execute(
            f"create table {table} (tenant_id uuid not null, id bigint not null, title text,"
            " created_at timestamptz not null, primary key (tenant_id, id))"
        )
        su.execute(f"create index on {table} (tenant_id, created_at desc)")
        su.execute("select tenancy.register_table(%s)", [table])
        su.execute("select create_distributed_table(%s, 'tenant_id')", [table])
        su.execute(
            f"insert into {table} select t, g, 'item ' || g, now() - g * interval '1 minute'"
            " from unnest(%s::uuid[]) t, generate_series(1, %s) g",
            [tenants, args.rows],
        )
        su.execute(f"analyze {table}")
        su.execute(f"grant select on {table} to {role}")
        app = psycopg.connect(make_conninfo(coord, user=role, password=password), autocommit=True)
        hand = psycopg.connect(coord, autocommit=True)
        results: dict[str, dict[str, list[float]]] = {}
        rng = random.Random(15)

        def one(conn: psycopg.Connection, ctx: str, sql: str, params: list[object]) -> tuple[float, float]:
            t0 = time.perf_counter()
            conn.execute("begin")
            conn.execute(ctx, [params[0]], prepare=True)
            t1 = time.perf_counter()
            conn.execute(sql, params, prepare=True).fetchall()
            t2 = time.perf_counter()
            conn.execute("commit")
            return time.perf_counter() - t0, t2 - t1

        for name, q in QUERIES.items():
            sql = q.format(t=table)
            runs = results[name] = {"tenancy_txn": [], "tenancy_stmt": [], "hand_txn": [], "hand_stmt": []}
            for i in range(args.rounds + 200):
                t = rng.choice(tenants)
                params: list[object] = [t, rng.randint(1, args.rows)] if name == "point" else [t]
                pair = [
                    ("tenancy", app, "select tenancy.set_tenant(%s, true)"),
                    ("hand", hand, "select set_config('app.tenant', %s::text, true)"),
                ]
                if i % 2:
                    pair.reverse()
                for kind, conn, ctx in pair:
                    txn, stmt = one(conn, ctx, sql, params)
                    if i >= 200:  # warm-up: plans cached, connections to the workers open
                        runs[f"{kind}_txn"].append(txn)
                        runs[f"{kind}_stmt"].append(stmt)
        app.execute("begin")
        app.execute("select tenancy.set_tenant(%s, true)", [tenants[0]])
        plan = "\n".join(
            r[0]
            for r in app.execute("explain " + QUERIES["point"].format(t=table), [tenants[0], 1]).fetchall()
        )
        app.execute("rollback")
        versions = su.execute("select citus_version(), version()").fetchone()
        print(f"# {versions[0].split(' on ')[0]}, {versions[1].split(' on ')[0]}")
        print(
            f"# {args.tenants} tenants x {args.rows} rows, {args.rounds} interleaved rounds per query,"
            " medians"
        )
        task = [line.strip() for line in plan.splitlines() if "Task Count" in line]
        print(f"# point query plan as a customer: {task[0] if task else plan}")
        print(
            "| query | tenancy txn (ms) | hand txn (ms) | txn ratio | tenancy stmt (ms) | hand stmt (ms)"
            " | stmt ratio |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for name, runs in results.items():
            med = {k: statistics.median(v) * 1000 for k, v in runs.items()}
            print(
                f"| {name} | {med['tenancy_txn']:.3f} | {med['hand_txn']:.3f} | "
                f"{med['tenancy_txn'] / med['hand_txn']:.2f}x | {med['tenancy_stmt']:.3f} | "
                f"{med['hand_stmt']:.3f} | {med['tenancy_stmt'] / med['hand_stmt']:.2f}x |"
            )
        app.close()
        hand.close()
    finally:
        su.execute(f"drop schema if exists {schema} cascade")
        su.execute("delete from tenancy.tenants where parent_id = %s", [partner])
        su.execute("delete from tenancy.tenants where id = %s", [partner])
        su.execute(f"drop owned by {role}")
        su.execute(f"drop role if exists {role}")
        su.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
