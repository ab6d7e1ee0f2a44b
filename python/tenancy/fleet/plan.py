"""The pure part of the fleet command: migration files, checksums, plans, names, exit codes.

Nothing here touches a database, so tests/py/unit/test_fleet_plan.py drives it directly.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

MIGRATION_FILE = re.compile(r"^(?P<version>[0-9]{4,})_(?P<name>[A-Za-z0-9_]+)\.sql$")
NO_TRANSACTION = re.compile(r"^--\s*tenancy:\s*no-transaction\s*$", re.IGNORECASE)
SLUG = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

# exit codes of the command (SPEC 7)
OK, PROBLEM, USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad usage: exit code 2."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path
    sql: str
    checksum: str
    transactional: bool = True

    @property
    def label(self) -> str:
        return f"{self.version}_{self.name}"

    def as_json(self) -> dict[str, str]:
        return {"version": self.version, "name": self.name, "checksum": self.checksum}


def checksum(data: bytes) -> str:
    """sha256 of the file's bytes, hex: what the history records and health compares."""
    return hashlib.sha256(data).hexdigest()


def parse_migration(path: Path, data: bytes) -> Migration:
    m = MIGRATION_FILE.match(path.name)
    if not m:
        raise UsageError(f"{path}: a migration file is named NNNN_name.sql")
    text = data.decode("utf-8")
    first = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    return Migration(
        version=m["version"],
        name=m["name"],
        path=path,
        sql=text,
        checksum=checksum(data),
        transactional=not NO_TRANSACTION.match(first.strip()),
    )


def discover(directory: Path) -> list[Migration]:
    """The migrations of DIR in version order; a missing DIR, a stray .sql name or a version twice is
    a usage error."""
    if not directory.is_dir():
        raise UsageError(f"migrations directory {directory} does not exist")
    found: list[Migration] = []
    for path in sorted(directory.iterdir()):
        if path.suffix != ".sql":
            continue
        found.append(parse_migration(path, path.read_bytes()))
    found.sort(key=lambda m: int(m.version))
    versions = [m.version for m in found]
    dupes = sorted({v for v in versions if versions.count(v) > 1})
    if dupes:
        raise UsageError(f"migration version {dupes[0]} is used by more than one file in {directory}")
    return found


@dataclass
class Plan:
    """What migrate does in one placement: pending migrations in order, or why it must not."""

    pending: list[Migration] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # versions whose applied checksum differs
    extra: list[str] = field(default_factory=list)  # applied versions without a file

    @property
    def blocked(self) -> bool:
        return bool(self.changed)


def plan(migrations: Iterable[Migration], applied: Mapping[str, str]) -> Plan:
    """applied: version -> checksum recorded in the placement's history. A changed migration blocks
    the placement (its schema is not what the file says); an extra one is reported but does not."""
    files = list(migrations)
    by_version = {m.version: m for m in files}
    out = Plan()
    for m in files:
        done = applied.get(m.version)
        if done is None:
            out.pending.append(m)
        elif done != m.checksum:
            out.changed.append(m.version)
    out.extra = sorted((v for v in applied if v not in by_version), key=int)
    return out


def split_statements(sql: str) -> list[str]:
    """Statements of a no-transaction migration: each ends with ';' at the end of a line. Comment
    lines and blank lines between them are dropped. (Dollar-quoted bodies do not belong in such a
    migration: CREATE INDEX CONCURRENTLY and friends are one line or a few.)"""
    out: list[str] = []
    buf: list[str] = []
    for line in sql.splitlines():
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("--")):
            continue
        buf.append(line)
        if stripped.endswith(";"):
            out.append("\n".join(buf).strip())
            buf = []
    if any(x.strip() and not x.strip().startswith("--") for x in buf):
        out.append("\n".join(buf).strip())
    return out


def parse_tenant(arg: str) -> tuple[str, str]:
    """TENANT on the command line: ('id', uuid) or ('path', 'brandsyncup/acme'). '' is the root."""
    arg = arg.strip()
    try:
        return ("id", str(uuid.UUID(arg)))
    except ValueError:
        pass
    parts = [p for p in arg.strip("/").split("/")] if arg.strip("/") else []
    for p in parts:
        if not SLUG.match(p):
            raise UsageError(f"tenant {arg!r} is neither a uuid nor a path of slugs like brandsyncup/acme")
    return ("path", "/".join(parts))


def hexid(tenant: str) -> str:
    return uuid.UUID(tenant).hex


def prefix(control_db: str) -> str:
    """Names the command gives schemas and databases start with this (health finds orphans by it).
    Databases are cluster-wide, so the control database's name is part of it."""
    return f"{control_db[:24]}_t"


def schema_name(tenant: str) -> str:
    return f"tenant_{hexid(tenant)}"


def database_name(control_db: str, tenant: str) -> str:
    return f"{prefix(control_db)}{hexid(tenant)}"


def template_name(control_db: str) -> str:
    return f"{prefix(control_db)}template"


def lock_key(schema: str) -> str:
    """The advisory-lock key text of one placement (hashed by the server with hashtext)."""
    return f"tenancy.migrate:{schema}"


def exit_code(results: Iterable[Mapping[str, object]]) -> int:
    """0 when every step went well, 1 when one failed or found a problem (the others went on)."""
    return PROBLEM if any(r.get("status") in ("failed", "problem", "blocked") for r in results) else OK


def health_exit(findings: Iterable[Mapping[str, object]]) -> int:
    """Every finding but 'info' is a problem."""
    return PROBLEM if any(f.get("severity") != "info" for f in findings) else OK


def fk_order(tables: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[str]:
    """Tables ordered so that every referenced table comes before the tables that reference it
    (copy in this order, delete in reverse). edges: (referencing, referenced). Cycles keep the
    remaining tables in name order at the end."""
    names = sorted(set(tables))
    deps: dict[str, set[str]] = {t: set() for t in names}
    for child, parent in edges:
        if child in deps and parent in deps and child != parent:
            deps[child].add(parent)
    out: list[str] = []
    while deps:
        ready = sorted(t for t, d in deps.items() if not d)
        if not ready:
            out.extend(sorted(deps))
            break
        for t in ready:
            out.append(t)
            del deps[t]
        for d in deps.values():
            d.difference_update(ready)
    return out
