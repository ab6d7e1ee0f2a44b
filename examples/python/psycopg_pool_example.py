"""tenancy from Python with psycopg 3 and a psycopg_pool ConnectionPool.

One request = one transaction: `set_tenant_for_domain(host, local => true)` first, then plain SQL.
The context ends at COMMIT, so this works the same directly, with session pooling or behind
PgBouncer in transaction mode.

    python examples/python/psycopg_pool_example.py postgresql://tenancy_example_app:example@127.0.0.1:5432/tenancy_example

(or set TENANCY_EXAMPLE_DSN; the schema is examples/schema.sql). Exits 1 on any isolation failure.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

ACME = "acme.example.com"  # a customer's own domain
GLOBEX = "globex.brandsyncup.com"  # another customer, through the partner's wildcard


def scalar(conn: psycopg.Connection[Any], query: str, params: list[Any] | None = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def reset(conn: psycopg.Connection[Any]) -> None:
    """On return to the pool: no context survives, even a session-level one (defence in depth)."""
    conn.execute("select tenancy.reset_tenant()")
    conn.commit()


def main(dsn: str) -> int:
    failures: list[str] = []

    def check(ok: bool, line: str) -> None:
        print(line if ok else f"FAIL: {line}")
        if not ok:
            failures.append(line)

    # prepare_threshold=None: no server-side prepared statements, which PgBouncer before 1.21
    # cannot route in transaction mode (drop it when you connect directly).
    with ConnectionPool(dsn, min_size=1, max_size=4, kwargs={"prepare_threshold": None}, reset=reset) as pool:
        with pool.connection() as conn:
            # Which tenant owns this host? Needs no context.
            acme = scalar(conn, "select tenancy.resolve_domain(%s)::text", [ACME])
            globex = scalar(conn, "select tenancy.resolve_domain(%s)::text", [GLOBEX])
        print(f"resolved {ACME} -> {acme}, {GLOBEX} -> {globex}")

        with pool.connection() as conn, conn.transaction():
            conn.execute("select tenancy.set_tenant_for_domain(%s, local => true)", [ACME])
            note_id = scalar(conn, "insert into notes (body) values ('hello from psycopg') returning id")
            owners = [str(r[0]) for r in conn.execute("select tenant_id from notes")]
            check(
                len(owners) > 0 and set(owners) == {acme},
                f"acme: wrote note {note_id}, sees {len(owners)} notes, all its own",
            )
            try:
                with conn.transaction():  # a savepoint: the refusal does not end the request
                    conn.execute("insert into notes (tenant_id, body) values (%s, 'sneaky')", [globex])
                check(False, "acme: writing into globex was accepted")
            except psycopg.errors.InsufficientPrivilege as exc:
                check(True, f"acme: writing into globex refused with SQLSTATE {exc.sqlstate}")
            n = scalar(conn, "select count(*) from notes where tenant_id = %s", [globex])
            check(n == 0, f"acme: notes of globex visible: {n}")

        with pool.connection() as conn:
            n = scalar(conn, "select count(*) from notes")
            check(n == 0, f"no context after commit: {n} notes visible")

    print("isolation OK" if not failures else f"isolation FAILED: {len(failures)} check(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TENANCY_EXAMPLE_DSN")
    if not target:
        sys.exit(f"usage: {sys.argv[0]} DSN   (or set TENANCY_EXAMPLE_DSN)")
    sys.exit(main(target))
