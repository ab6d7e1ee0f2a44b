#!/usr/bin/env python3
"""Write docs/reference.md from the catalog of a fresh install: every public function (signature,
result, COMMENT ON) and the extension's tables. `make docs` runs it against a throwaway cluster;
tests/py/test_reference_doc.py fails when the committed file differs from what it renders.

Usage: gen_reference.py [DSN]   (default: $TENANCY_TEST_DSN; a fresh database is made and dropped)
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import psycopg

DOC = Path(__file__).resolve().parent.parent / "docs" / "reference.md"

HEADER = """# tenancy reference (generated)

Generated from the installed extension's catalog by `scripts/gen_reference.py` (`make docs`);
`make test` fails when this file is out of date. The README explains
the semantics; error codes are in the README's Errors table.
"""


def render(dsn: str) -> str:
    out = [HEADER, "\n## Functions\n"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            """
            select p.proname, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid),
                   coalesce(obj_description(p.oid, 'pg_proc'), ''), p.prosecdef
            from pg_proc p
            where p.pronamespace = 'tenancy'::regnamespace and p.proname !~ '^_' and p.prokind = 'f'
            order by p.proname, pg_get_function_arguments(p.oid)
            """
        ).fetchall()
        for name, args, result, comment, secdef in rows:
            out.append(f"\n### `tenancy.{name}({args})` → `{result}`\n")
            if secdef:
                out.append("\n*SECURITY DEFINER*\n")
            out.append(f"\n{comment}\n")
        out.append("\n## Tables\n")
        tables = conn.execute(
            """
            select c.relname, coalesce(obj_description(c.oid, 'pg_class'), ''),
                   string_agg(format('`%s %s`', a.attname, format_type(a.atttypid, a.atttypmod)), ', '
                              order by a.attnum)
            from pg_class c join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
            where c.relnamespace = 'tenancy'::regnamespace and c.relkind in ('r', 'p')
            group by c.oid, c.relname order by c.relname
            """
        ).fetchall()
        for name, comment, columns in tables:
            out.append(f"\n### `tenancy.{name}`\n\n{columns}\n\n{comment}\n")
    return "".join(out)


def render_fresh(server_dsn: str) -> str:
    """Render from a new database with only the extension in it."""
    name = f"tenancy_ref_{secrets.token_hex(4)}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f"create database {name}")
    try:
        dsn = f"{server_dsn} dbname={name}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("set client_min_messages = warning")
            conn.execute("create extension tenancy cascade")
        return render(dsn)
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(f"drop database if exists {name} with (force)")


def main(argv: list[str]) -> int:
    dsn = argv[1] if len(argv) > 1 else os.environ.get("TENANCY_TEST_DSN", "")
    if not dsn:
        print(__doc__, file=sys.stderr)
        return 2
    DOC.write_text(render_fresh(dsn), encoding="utf-8")
    print(f"== wrote {DOC.relative_to(Path.cwd()) if DOC.is_relative_to(Path.cwd()) else DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
