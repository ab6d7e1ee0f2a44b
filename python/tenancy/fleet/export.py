"""``tenancy export TENANT --out DIR``: a tenant's rows of every registered table of its placement, as
CSV with a header (one repeatable-read snapshot, timestamps in UTC), and manifest.json with the rows,
the sha256 of each file and the row checksum ``move`` verifies with."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from psycopg import sql

from . import data
from .core import Fleet, Tenant, ident


def export(fleet: Fleet, t: Tenant, out: Path) -> dict[str, Any]:
    db, schema, _owner = fleet.home(t)
    out.mkdir(parents=True, exist_ok=True)
    tables: list[dict[str, Any]] = []
    with fleet.connect(db, stable_text=True) as c:
        c.execute("begin isolation level repeatable read read only")
        try:
            for table, col in data.tables_in(c, schema):
                path = out / f"{table}.csv"
                h = hashlib.sha256()
                q = sql.SQL(
                    "copy (select * from {} where {} = {}::uuid) to stdout with (format csv, header)"
                ).format(ident(schema, table), ident(col), sql.Literal(t.id))
                with path.open("wb") as f, c.cursor().copy(q) as cp:
                    for chunk in cp:
                        f.write(chunk)
                        h.update(chunk)
                n, d = data.digest(c, schema, table, col, [t.id])
                tables.append(
                    {"table": table, "file": path.name, "rows": n, "sha256": h.hexdigest(), "checksum": d}
                )
        finally:
            c.execute("commit")
    manifest = {
        "tenant": t.id,
        "path": t.path,
        "database": db,
        "schema": schema,
        "exported_at": dt.datetime.now(dt.UTC).isoformat(),
        "tables": tables,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    fleet.event(
        t.id, schema, "exported", {"out": str(out), "tables": {x["table"]: x["rows"] for x in tables}}
    )
    return manifest
