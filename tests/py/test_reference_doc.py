"""docs/reference.md is what scripts/gen_reference.py renders from a fresh install's catalog (this
test only compares: `make docs` rewrites the file), and every public function has a COMMENT."""

from __future__ import annotations

import sys
from pathlib import Path

from tenancy_testlib import connect

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from gen_reference import DOC, render_fresh  # noqa: E402


def test_reference_doc_is_current(server_dsn: str) -> None:
    assert DOC.read_text(encoding="utf-8") == render_fresh(server_dsn), (
        "docs/reference.md is out of date: run `make docs` and commit it"
    )


def test_every_public_function_is_documented(tenancy_db: str) -> None:
    with connect(tenancy_db) as conn:
        missing = conn.execute(
            "select p.oid::regprocedure::text from pg_proc p"
            " where p.pronamespace = 'tenancy'::regnamespace and p.proname !~ '^_'"
            " and coalesce(obj_description(p.oid, 'pg_proc'), '') = ''"
        ).fetchall()
    assert missing == []
