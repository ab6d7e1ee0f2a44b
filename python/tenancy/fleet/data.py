"""A tenant's rows in one placement: which tables, counts and checksums, copying, deleting.

Tables are the registered ones of the placement's schema, in foreign-key order (copy in this order,
delete in reverse); rows are those whose tenant column is one of the given tenants.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from . import plan as P
from .core import ident

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


def tables_in(conn: psycopg.Connection, schema: str) -> list[tuple[str, str]]:
    """Registered tables of a placement schema in foreign-key order, with their tenant column."""
    cols = dict(conn.execute(TABLES, [schema]).fetchall())
    edges = [(a, b) for a, b in conn.execute(FKS, [schema]).fetchall()]
    return [(t, cols[t]) for t in P.fk_order(cols, edges)]


def digest(conn: psycopg.Connection, schema: str, table: str, col: str, ids: list[str]) -> tuple[int, str]:
    """Row count and a checksum of the rows (md5 over the sorted md5s of their texts). Compare two only
    from connections made with stable_text (the text of a timestamptz depends on the session)."""
    q = sql.SQL(
        "select count(*), coalesce(md5(string_agg(md5(t::text), '' order by md5(t::text))), '')"
        " from {} t where {} = any(%s::uuid[])"
    ).format(ident(schema, table), ident(col))
    n, d = conn.execute(q, [ids]).fetchone()
    return int(n), d


def copy_rows(
    src: psycopg.Connection,
    s_schema: str,
    dst: psycopg.Connection,
    d_schema: str,
    tables: list[tuple[str, str]],
    ids: list[str],
) -> None:
    """Rows of ids from src to dst (any two servers) in one destination transaction; rows of ids
    already there are replaced, so a rerun starts over."""
    lit = sql.Literal(ids)
    with dst.transaction():
        for table, col in reversed(tables):
            dst.execute(
                sql.SQL("delete from {} where {} = any({}::uuid[])").format(
                    ident(d_schema, table), ident(col), lit
                )
            )
        for table, col in tables:
            out_q = sql.SQL("copy (select * from {} where {} = any({}::uuid[])) to stdout").format(
                ident(s_schema, table), ident(col), lit
            )
            in_q = sql.SQL("copy {} from stdin").format(ident(d_schema, table))
            with src.cursor().copy(out_q) as out, dst.cursor().copy(in_q) as inp:
                for data in out:
                    inp.write(data)
            advance_sequences(dst, d_schema, table)


SEQUENCES = """
select a.attname::text, pg_catalog.pg_get_serial_sequence(c.oid::regclass::text, a.attname)
from pg_catalog.pg_class c
join pg_catalog.pg_attribute a on a.attrelid = c.oid
where c.oid = pg_catalog.to_regclass(%s) and a.attnum > 0 and not a.attisdropped
  and pg_catalog.pg_get_serial_sequence(c.oid::regclass::text, a.attname) is not null
"""


def advance_sequences(conn: psycopg.Connection, schema: str, table: str) -> None:
    """The sequences of a table's serial and identity columns past the values copied in (a placement's
    sequences are its own: the copied rows came from another one)."""
    name = sql.Identifier(schema, table).as_string(conn)
    for col, seq in conn.execute(SEQUENCES, [name]).fetchall():
        conn.execute(
            sql.SQL(
                "select pg_catalog.setval(%s, x.m) from (select max({}) as m from {}) x"
                " where x.m > (select case when s.is_called then s.last_value else s.last_value - 1 end"
                " from {} s)"
            ).format(sql.Identifier(col), sql.Identifier(schema, table), sql.SQL(seq)),
            [seq],
        )


def delete_rows(conn: psycopg.Connection, schema: str, ids: list[str]) -> dict[str, int]:
    """Delete the rows of ids from every registered table of a schema, children first, in one
    transaction; rows deleted per table."""
    deleted: dict[str, int] = {}
    with conn.transaction():
        for table, col in reversed(tables_in(conn, schema)):
            cur = conn.execute(
                sql.SQL("delete from {} where {} = any(%s::uuid[])").format(ident(schema, table), ident(col)),
                [ids],
            )
            deleted[table] = cur.rowcount
    return deleted


def row_counts(conn: psycopg.Connection, schema: str, ids: list[str]) -> dict[str, int]:
    """Tables of the schema that hold rows of ids, with how many."""
    counts: dict[str, int] = {}
    for tbl, col in conn.execute(TABLES, [schema]).fetchall():
        n = conn.execute(
            sql.SQL("select count(*) from {} where {} = any(%s::uuid[])").format(
                ident(schema, tbl), ident(col)
            ),
            [ids],
        ).fetchone()[0]
        if n:
            counts[tbl] = n
    return counts
