"""docs/reference.md is the catalog's own description of every public function (signature, result,
COMMENT ON) and of the extension's tables. This test regenerates it from a fresh install and fails
when the committed file differs; `TENANCY_UPDATE_DOCS=1 make test` rewrites it."""

from __future__ import annotations

import os
from pathlib import Path

from tenancy_testlib import connect

DOC = Path(__file__).resolve().parents[2] / "docs" / "reference.md"

HEADER = """# tenancy reference (generated)

Generated from the installed extension's catalog by `tests/py/test_reference_doc.py`; the test fails
when this file is out of date (`TENANCY_UPDATE_DOCS=1 make test` rewrites it). The README explains
the semantics; error codes are in the README's Errors table.
"""


def render(dsn: str) -> str:
    out = [HEADER, "\n## Functions\n"]
    with connect(dsn) as conn:
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


def test_reference_doc_is_current(tenancy_db: str) -> None:
    text = render(tenancy_db)
    if os.environ.get("TENANCY_UPDATE_DOCS") == "1":
        DOC.write_text(text, encoding="utf-8")
    assert DOC.read_text(encoding="utf-8") == text, (
        "docs/reference.md is out of date: run TENANCY_UPDATE_DOCS=1 make test"
    )


def test_every_public_function_is_documented(tenancy_db: str) -> None:
    with connect(tenancy_db) as conn:
        missing = conn.execute(
            "select p.oid::regprocedure::text from pg_proc p"
            " where p.pronamespace = 'tenancy'::regnamespace and p.proname !~ '^_'"
            " and coalesce(obj_description(p.oid, 'pg_proc'), '') = ''"
        ).fetchall()
    assert missing == []
