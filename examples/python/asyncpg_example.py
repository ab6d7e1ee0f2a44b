"""tenancy from Python asyncio with an asyncpg pool.

One request = one transaction: `set_tenant_for_domain(host, local => true)` first, then plain SQL.
The context ends at COMMIT, so this works the same directly, with session pooling or behind
PgBouncer in transaction mode.

    python examples/python/asyncpg_example.py postgresql://tenancy_example_app:example@127.0.0.1:5432/tenancy_example

(or set TENANCY_EXAMPLE_DSN; the schema is examples/schema.sql). Exits 1 on any isolation failure.
"""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg

ACME = "acme.example.com"  # a customer's own domain
GLOBEX = "globex.brandsyncup.com"  # another customer, through the partner's wildcard


async def reset(conn: asyncpg.Connection) -> None:
    """On release: asyncpg's own reset (RESET ALL, ...) plus tenancy.reset_tenant(), so that no
    context survives, even a session-level one (defence in depth)."""
    await conn.execute("select tenancy.reset_tenant();\n" + conn.get_reset_query())


async def main(dsn: str) -> int:
    failures: list[str] = []

    def check(ok: bool, line: str) -> None:
        print(line if ok else f"FAIL: {line}")
        if not ok:
            failures.append(line)

    # statement_cache_size=0: asyncpg prepares every statement; with no cache it uses unnamed
    # ones, which PgBouncer before 1.21 can route in transaction mode (drop it when you connect directly).
    async with asyncpg.create_pool(dsn, min_size=1, max_size=4, statement_cache_size=0, reset=reset) as pool:
        # Which tenant owns this host? Needs no context.
        acme = str(await pool.fetchval("select tenancy.resolve_domain($1)", ACME))
        globex = str(await pool.fetchval("select tenancy.resolve_domain($1)", GLOBEX))
        print(f"resolved {ACME} -> {acme}, {GLOBEX} -> {globex}")

        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("select tenancy.set_tenant_for_domain($1, local => true)", ACME)
            note_id = await conn.fetchval(
                "insert into notes (body) values ('hello from asyncpg') returning id"
            )
            owners = [str(r["tenant_id"]) for r in await conn.fetch("select tenant_id from notes")]
            check(
                len(owners) > 0 and set(owners) == {acme},
                f"acme: wrote note {note_id}, sees {len(owners)} notes, all its own",
            )
            try:
                async with conn.transaction():  # a savepoint: the refusal does not end the request
                    await conn.execute("insert into notes (tenant_id, body) values ($1, 'sneaky')", globex)
                check(False, "acme: writing into globex was accepted")
            except asyncpg.InsufficientPrivilegeError as exc:
                check(True, f"acme: writing into globex refused with SQLSTATE {exc.sqlstate}")
            n = await conn.fetchval("select count(*) from notes where tenant_id = $1", globex)
            check(n == 0, f"acme: notes of globex visible: {n}")

        n = await pool.fetchval("select count(*) from notes")
        check(n == 0, f"no context after commit: {n} notes visible")

    print("isolation OK" if not failures else f"isolation FAILED: {len(failures)} check(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TENANCY_EXAMPLE_DSN")
    if not target:
        sys.exit(f"usage: {sys.argv[0]} DSN   (or set TENANCY_EXAMPLE_DSN)")
    sys.exit(asyncio.run(main(target)))
