"""``tenancy``: the fleet command (SPEC 7).

    tenancy [--dsn DSN] [--json] [--quiet] COMMAND ...

    provision TENANT --kind schema|database [--migrations DIR]
    migrate [--migrations DIR] [--tenant T] [--parallel N] [--per-database N] [--dry-run]
    health [--migrations DIR]
    move TENANT --to shared|schema|database [--migrations DIR]
    export TENANT --out DIR
    erase TENANT --confirm
    list
    lint [--format text|json|sarif] [--baseline FILE] [--fail-on error|warning|info]   (lint.py)

TENANT is a path (``brandsyncup/acme``) or a uuid. ``--dsn`` or ``TENANCY_DSN`` names the control
database (a superuser or the extension's owner: the command creates schemas and databases). Exit
codes: 0 all well, 1 a problem was found or a step failed (the others went on), 2 bad usage or the
control database unreachable. Progress goes to stderr, results to stdout (``--json`` for machines).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import psycopg

from . import lint
from . import plan as P


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dsn", default=argparse.SUPPRESS, help="control database (default: $TENANCY_DSN)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="JSON on stdout")
    common.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress display")
    common.add_argument(
        "--shared-schema", default=argparse.SUPPRESS, help="schema of the shared placement (default public)"
    )
    ap = argparse.ArgumentParser(prog="tenancy", description=__doc__.split("\n\n")[0], parents=[common])
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def migrations(p: argparse.ArgumentParser) -> None:
        p.add_argument("--migrations", type=Path, default=Path("migrations"), help="default ./migrations")

    p = sub.add_parser("provision", parents=[common], help="a new tenant's home: a schema or a database")
    p.add_argument("tenant")
    p.add_argument("--kind", choices=["schema", "database"], required=True)
    migrations(p)
    p = sub.add_parser("migrate", parents=[common], help="run pending migrations in every placement")
    migrations(p)
    p.add_argument("--tenant")
    p.add_argument("--parallel", type=int, default=4)
    p.add_argument(
        "--per-database", type=int, default=None, help="connections per database (default: --parallel)"
    )
    p.add_argument("--dry-run", action="store_true")
    p = sub.add_parser("health", parents=[common], help="placements, tables, migrations, orphans, check()")
    p.add_argument(
        "--migrations", type=Path, default=None, help="compare with DIR (default ./migrations if present)"
    )
    p = sub.add_parser("move", parents=[common], help="move a tenant to another placement")
    p.add_argument("tenant")
    p.add_argument("--to", choices=["shared", "schema", "database"], required=True)
    migrations(p)
    p = sub.add_parser("export", parents=[common], help="a tenant's rows of every registered table")
    p.add_argument("tenant")
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("erase", parents=[common], help="erase a tenant and its data, with a receipt")
    p.add_argument("tenant")
    p.add_argument("--confirm", action="store_true")
    p.add_argument("--receipt", type=Path, default=None, help="also write the receipt to this file")
    sub.add_parser("list", parents=[common], help="tenants and their placements")
    lint.add_parser(sub, common)
    return ap


def _print(args: argparse.Namespace, payload: Any, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(text)


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in cols] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()]
    lines += ["  ".join(x.ljust(w) for x, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def _migrations(path: Path | None, *, required: bool = True) -> list[P.Migration] | None:
    if path is None:
        path = Path("migrations")
        if not path.is_dir():
            if required:
                raise P.UsageError("no migrations directory: give --migrations DIR")
            return None
    return P.discover(path)


def run(argv: list[str] | None = None) -> int:
    from .ops import Fleet, FleetError  # psycopg only when a command runs

    ap = _parser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    dsn = getattr(args, "dsn", None) or os.environ.get("TENANCY_DSN")
    if not dsn:
        print("tenancy: no control database: give --dsn or set TENANCY_DSN", file=sys.stderr)
        return P.USAGE
    if args.command == "lint":  # one database, no fleet
        return lint.run(args, dsn)
    try:
        fleet = Fleet(
            dsn,
            shared_schema=getattr(args, "shared_schema", "public"),
            quiet=getattr(args, "quiet", False),
            per_db=getattr(args, "per_database", None) or getattr(args, "parallel", 4),
        )
    except psycopg.Error as exc:
        print(f"tenancy: the control database is unreachable: {str(exc).strip()}", file=sys.stderr)
        return P.USAGE
    try:
        return _dispatch(fleet, args)
    except P.UsageError as exc:
        print(f"tenancy: {exc}", file=sys.stderr)
        return P.USAGE
    except (FleetError, psycopg.Error) as exc:
        print(f"tenancy {args.command}: {str(exc).strip()}", file=sys.stderr)
        if getattr(args, "json", False):
            print(json.dumps({"status": "failed", "error": str(exc).strip()}))
        return P.PROBLEM
    finally:
        fleet.close()


def _dispatch(fleet: Any, args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "list":
        rows = fleet.list()
        _print(
            args,
            rows,
            _table(rows, ["path", "tenant", "kind", "schema", "database", "status", "version", "generation"]),
        )
        return P.OK
    if cmd == "migrate":
        migs = _migrations(args.migrations)
        tenant = fleet.resolve(args.tenant) if args.tenant else None
        results = fleet.migrate(migs, fleet.targets(tenant), parallel=args.parallel, dry_run=args.dry_run)
        code = P.exit_code(results)
        shown = results if args.dry_run or code else [r for r in results if r["status"] != "current"]
        current = sum(1 for r in results if r["status"] == "current")
        text = _table(
            [{**r, "applied": ",".join(r.get("applied") or r.get("pending") or [])} for r in shown],
            ["placement", "status", "applied", "error"],
        )
        _print(
            args,
            {"status": "ok" if code == 0 else "problem", "placements": results},
            f"{text}\n{len(results)} placements, {current} already current",
        )
        return code
    if cmd == "health":
        migs = _migrations(args.migrations, required=False)
        findings = fleet.health(migs)
        code = P.health_exit(findings)
        _print(
            args,
            {"status": "ok" if code == 0 else "problem", "findings": findings},
            _table(findings, ["severity", "database", "placement", "object", "problem"])
            if findings
            else "all well",
        )
        return code
    if cmd == "provision":
        res = fleet.provision(fleet.resolve(args.tenant), args.kind, _migrations(args.migrations))
        _print(
            args,
            res,
            f"{res['path']}: {res['kind']} placement {res.get('schema') or res.get('database') or ''}"
            f" {res['status']}".rstrip(),
        )
        return P.OK
    if cmd == "move":
        res = fleet.move(fleet.resolve(args.tenant), args.to, _migrations(args.migrations))
        lines = [f"{res['path']}: moved to {args.to} (generation {res.get('generation', '-')})"]
        for step in res.get("steps", []):
            if step["step"] == "copy":
                lines += [
                    f"  {x['table']}: {x['rows']} rows, checksum {x['checksum'][:12]} verified"
                    for x in step["tables"]
                ]
        _print(args, res, "\n".join(lines) if "note" not in res else f"{res['path']}: {res['note']}")
        return P.OK
    if cmd == "export":
        res = fleet.export(fleet.resolve(args.tenant), args.out)
        _print(
            args,
            res,
            _table(res["tables"], ["table", "rows", "sha256"]) + f"\nmanifest: {args.out}/manifest.json",
        )
        return P.OK
    if cmd == "erase":
        if not args.confirm:
            raise P.UsageError("erase deletes a tenant and all its data: add --confirm")
        res = fleet.erase(fleet.resolve(args.tenant))
        if args.receipt:
            args.receipt.write_text(json.dumps(res, indent=2, default=str) + "\n")
        _print(args, res, json.dumps(res, indent=2, default=str))
        return P.OK
    raise P.UsageError(f"unknown command {cmd}")


def main(argv: list[str] | None = None) -> None:
    sys.exit(run(argv))


if __name__ == "__main__":  # pragma: no cover
    main()
