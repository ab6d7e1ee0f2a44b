"""``tenancy``: the fleet command. Where each tenant's rows live (the shared tables, a schema of its own,
or a database of its own on any server), and the work on every placement at once.

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

DESCRIPTION = (
    "Placements of the tenancy extension: where each tenant's rows live, and the work on all of them."
)

EPILOG = """\
TENANT is a path (brandsyncup/acme) or a uuid. The control database is --dsn or $TENANCY_DSN, as a role
that may create schemas and databases. Exit codes: 0 all well, 1 a problem was found or a step failed
(the others went on), 2 bad usage or the control database unreachable.

examples:
  export TENANCY_DSN="host=db.internal dbname=app user=postgres"
  tenancy migrate --migrations ./migrations
  tenancy provision brandsyncup/acme --kind schema
  tenancy provision brandsyncup/globex --kind database --service tenants-eu
  tenancy health --migrations ./migrations
  tenancy move brandsyncup/acme --to database --service tenants-eu
  tenancy list

'tenancy COMMAND --help' describes each command."""

TENANT = "a path (brandsyncup/acme) or a uuid"

# name -> (one line, description, examples)
COMMANDS: dict[str, tuple[str, str, list[str]]] = {
    "provision": (
        "give a new tenant a schema or a database of its own",
        "A new tenant's home: a schema in the control database, a new database on the control server,\n"
        "or (--service NAME) the database that the libpq service NAME names, on any server (host, port,\n"
        "database and credentials come from the service file, a password file or the environment;\n"
        "none is stored). The extension is created there when missing. The placement gets every\n"
        "migration and the shared placement's privileges. A tenant that already has rows is moved\n"
        "instead (tenancy move). A rerun resumes a provisioning that failed.",
        [
            "tenancy provision brandsyncup/acme --kind schema",
            "tenancy provision brandsyncup/globex --kind database",
            "tenancy provision brandsyncup/initech --kind database --service tenants-eu",
        ],
    ),
    "migrate": (
        "run the pending migrations in every placement",
        "Runs the files NNNN_name.sql of --migrations (default ./migrations) that a placement has not run\n"
        "yet: the shared placement and the template first, then every other placement in parallel,\n"
        "each migration in its own transaction with its history row. A placement that fails is reported\n"
        "(file, placement, error) and the others go on; a rerun resumes. Then the shared placement's\n"
        "privileges are copied where a placement's differ.",
        [
            "tenancy migrate --migrations ./migrations",
            "tenancy migrate --dry-run",
            "tenancy migrate --tenant brandsyncup/acme",
        ],
    ),
    "health": (
        "report what is wrong with any placement",
        "Placements missing or not active, tables missing or not registered, migrations missing, extra\n"
        "or changed (with --migrations, default ./migrations when present), orphaned schemas and\n"
        "databases, privileges that differ from the shared placement's, tenancy.check() in every\n"
        "database, and partners whose customers live in other placements (info). Exit code 1 on any\n"
        "finding but info.",
        ["tenancy health", "tenancy health --migrations ./migrations --json"],
    ),
    "move": (
        "move a tenant's rows to another placement",
        "Builds the target at the same migration version, freezes the source (reads go on, writes are\n"
        "refused), copies the rows of the tenant (and of the customers that live with it), verifies\n"
        "row counts and checksums per table, switches the placement, then removes the source. Any\n"
        "failure before the switch leaves the tenant where it was. --service NAME moves to the database\n"
        "of a libpq service, on any server.",
        [
            "tenancy move brandsyncup/acme --to schema",
            "tenancy move brandsyncup/acme --to database --service tenants-eu",
            "tenancy move brandsyncup/acme --to shared",
        ],
    ),
    "export": (
        "write a tenant's rows as CSV files with a manifest",
        "One CSV file per registered table (one snapshot, timestamps in UTC) and manifest.json with the\n"
        "row counts, the sha256 of each file and the row checksums.",
        ["tenancy export brandsyncup/acme --out ./acme-export"],
    ),
    "erase": (
        "delete a tenant and all its data, with a receipt",
        "Drops the tenant's own schema or database (a service's database is kept, its rows deleted),\n"
        "or deletes its rows, then the tenant itself. A partner with customers is refused.",
        ["tenancy erase brandsyncup/acme --confirm --receipt ./acme-erased.json"],
    ),
    "list": (
        "list the tenants and their placements",
        "Every tenant with its placement (kind, schema or database), status, migration version and\n"
        "generation, and a note on partners whose customers live in other placements.",
        ["tenancy list", "tenancy list --json"],
    ),
}


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--dsn", default=argparse.SUPPRESS, help="the control database (default: $TENANCY_DSN)"
    )
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="results as JSON on stdout"
    )
    common.add_argument(
        "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress on stderr"
    )
    common.add_argument(
        "--shared-schema", default=argparse.SUPPRESS, help="schema of the shared placement (default public)"
    )
    raw = argparse.RawDescriptionHelpFormatter
    ap = argparse.ArgumentParser(
        prog="tenancy", description=DESCRIPTION, epilog=EPILOG, formatter_class=raw, parents=[common]
    )
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")

    def add(name: str) -> argparse.ArgumentParser:
        line, text, examples = COMMANDS[name]
        epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
        description = f"{line[0].upper()}{line[1:]}.\n\n{text}"
        return sub.add_parser(
            name, parents=[common], help=line, description=description, epilog=epilog, formatter_class=raw
        )

    def migrations(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--migrations", type=Path, default=Path("migrations"), metavar="DIR", help="default ./migrations"
        )

    p = add("provision")
    p.add_argument("tenant", metavar="TENANT", help=TENANT)
    p.add_argument(
        "--kind", choices=["schema", "database"], required=True, help="a schema or a database of its own"
    )
    p.add_argument(
        "--service", metavar="NAME", help="with --kind database: the database of this libpq service"
    )
    migrations(p)
    p = add("migrate")
    migrations(p)
    p.add_argument("--tenant", metavar="TENANT", help="only this tenant's placement")
    p.add_argument("--parallel", type=int, default=4, metavar="N", help="placements at a time (default 4)")
    p.add_argument(
        "--per-database",
        type=int,
        default=None,
        metavar="N",
        help="connections per database (default: --parallel)",
    )
    p.add_argument("--dry-run", action="store_true", help="list what would run, run nothing")
    p = add("health")
    p.add_argument(
        "--migrations",
        type=Path,
        default=None,
        metavar="DIR",
        help="compare with DIR (default ./migrations if present)",
    )
    p = add("move")
    p.add_argument("tenant", metavar="TENANT", help=TENANT)
    p.add_argument(
        "--to",
        choices=["shared", "schema", "database"],
        required=True,
        help="the shared tables, a schema, a database",
    )
    p.add_argument("--service", metavar="NAME", help="with --to database: the database of this libpq service")
    migrations(p)
    p = add("export")
    p.add_argument("tenant", metavar="TENANT", help=TENANT)
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p = add("erase")
    p.add_argument("tenant", metavar="TENANT", help=TENANT)
    p.add_argument("--confirm", action="store_true", help="required: the data is gone afterwards")
    p.add_argument(
        "--receipt", type=Path, default=None, metavar="FILE", help="also write the receipt to FILE"
    )
    add("list")
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
    from .core import Fleet, FleetError  # psycopg_pool only when a command runs

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
    except P.UsageError as exc:
        print(f"tenancy: {exc}", file=sys.stderr)
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
    handler = {
        "list": _list,
        "migrate": _migrate,
        "health": _health,
        "provision": _provision,
        "move": _move,
        "export": _export,
        "erase": _erase,
    }[args.command]
    return handler(fleet, args)


def _list(fleet: Any, args: argparse.Namespace) -> int:
    from .listing import listing

    rows = listing(fleet)
    cols = ["path", "tenant", "kind", "schema", "database", "status", "version", "generation"]
    if any(r["note"] for r in rows):
        cols.append("note")
    _print(args, rows, _table(rows, cols))
    return P.OK


def _migrate(fleet: Any, args: argparse.Namespace) -> int:
    from .migrate import migrate

    migs = _migrations(args.migrations)
    tenant = fleet.resolve(args.tenant) if args.tenant else None
    results = migrate(fleet, migs, fleet.targets(tenant), parallel=args.parallel, dry_run=args.dry_run)
    code = P.exit_code(results)
    shown = results if args.dry_run or code else [r for r in results if r["status"] != "current"]
    current = sum(1 for r in results if r["status"] == "current")

    def applied(r: dict[str, Any]) -> str:
        done = list(r.get("applied") or r.get("pending") or [])
        n = len(r.get("privileges") or [])
        return ",".join(done + ([f"{n} privilege{'s' if n > 1 else ''}"] if n else []))

    text = _table([{**r, "applied": applied(r)} for r in shown], ["placement", "status", "applied", "error"])
    _print(
        args,
        {"status": "ok" if code == 0 else "problem", "placements": results},
        f"{text}\n{len(results)} placements, {current} already current",
    )
    return code


def _health(fleet: Any, args: argparse.Namespace) -> int:
    from .health import health

    findings = health(fleet, _migrations(args.migrations, required=False))
    code = P.health_exit(findings)
    _print(
        args,
        {"status": "ok" if code == 0 else "problem", "findings": findings},
        _table(findings, ["severity", "database", "placement", "object", "problem"])
        if findings
        else "all well",
    )
    return code


def _provision(fleet: Any, args: argparse.Namespace) -> int:
    from .provision import provision

    migs = _migrations(args.migrations)
    res = provision(fleet, fleet.resolve(args.tenant), args.kind, migs, service=args.service)
    where = res.get("schema") or res.get("database") or ""
    _print(args, res, f"{res['path']}: {res['kind']} placement {where} {res['status']}".replace("  ", " "))
    return P.OK


def _move(fleet: Any, args: argparse.Namespace) -> int:
    from .move import move

    migs = _migrations(args.migrations)
    res = move(fleet, fleet.resolve(args.tenant), args.to, migs, service=args.service)
    if "note" in res:
        _print(args, res, f"{res['path']}: {res['note']}")
        return P.OK
    lines = [f"{res['path']}: moved to {args.to} (generation {res.get('generation', '-')})"]
    for step in res.get("steps", []):
        if step["step"] == "copy":
            lines += [
                f"  {x['table']}: {x['rows']} rows"
                + (f", checksum {x['checksum'][:12]}" if x["rows"] else "")
                + " verified"
                for x in step["tables"]
            ]
    _print(args, res, "\n".join(lines))
    return P.OK


def _export(fleet: Any, args: argparse.Namespace) -> int:
    from .export import export

    res = export(fleet, fleet.resolve(args.tenant), args.out)
    text = _table(res["tables"], ["table", "rows", "sha256"]) + f"\nmanifest: {args.out}/manifest.json"
    _print(args, res, text)
    return P.OK


def _erase(fleet: Any, args: argparse.Namespace) -> int:
    from .erase import erase

    if not args.confirm:
        raise P.UsageError("erase deletes a tenant and all its data: add --confirm")
    res = erase(fleet, fleet.resolve(args.tenant))
    if args.receipt:
        args.receipt.write_text(json.dumps(res, indent=2, default=str) + "\n")
    _print(args, res, json.dumps(res, indent=2, default=str))
    return P.OK


def main(argv: list[str] | None = None) -> None:
    sys.exit(run(argv))


if __name__ == "__main__":  # pragma: no cover
    main()
