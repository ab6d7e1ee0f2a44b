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
# a section name of the libpq service file ([NAME]); the registry stores 'service=NAME', never more
SERVICE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$")
SERVICE_PREFIX = "service="
NO_TRANSACTION = re.compile(r"^--\s*tenancy:\s*no-transaction\s*$", re.IGNORECASE)
SLUG = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

# exit codes of the command
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


# -- where a database placement is ---------------------------------------------------------------


def service_value(name: str) -> str:
    """The registry's value for a database placement reached through the libpq service NAME (on any
    server; host, port, database and credentials come from the service file, a password file or the
    environment, and none of them is stored)."""
    if not SERVICE_NAME.fullmatch(name or ""):
        raise UsageError(
            f"service name {name!r}: a section name of the libpq service file"
            " (letters, digits, '_', '.', '-')"
        )
    return SERVICE_PREFIX + name


def service_of(database: str | None) -> str | None:
    """NAME for a registry value 'service=NAME', None for a database of the control server."""
    if database and database.startswith(SERVICE_PREFIX):
        return database[len(SERVICE_PREFIX) :]
    return None


def describe_database(database: str) -> str:
    """How messages name a placement database."""
    service = service_of(database)
    return f"the database of service {service}" if service else f"database {database}"


# -- migration failures --------------------------------------------------------------------------


def migration_error(m: Migration, message: str, position: int | None = None) -> str:
    """A failed migration's error naming its file (and the line, when the server gave a position in
    the file's text)."""
    where = m.path.name
    if position and 0 < position <= len(m.sql) + 1:
        where += f" line {m.sql[: position - 1].count(chr(10)) + 1}"
    return f"{where}: {message.strip()}"


# -- privileges ----------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Privilege:
    """One ACL entry of a placement's schema, registered table, column of one, or sequence of one.
    name: '' for the schema, 'projects', 'projects_id_seq', 'projects.name'; grantee: a role name or
    PUBLIC. The object's owner is never listed (ownership is not copied)."""

    kind: str  # schema | table | sequence | column
    name: str
    grantee: str
    privilege: str
    grantable: bool = False

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.name, self.grantee, self.privilege)


@dataclass(frozen=True, order=True)
class Change:
    """A GRANT (of the privilege, WITH GRANT OPTION when grantable) or a REVOKE (of the privilege, or
    of its grant option only when option_only)."""

    grant: bool
    privilege: Privilege
    option_only: bool = False


def privilege_changes(want: Iterable[Privilege], have: Iterable[Privilege]) -> list[Change]:
    """What makes the ACLs `have` equal to `want`, revokes first."""
    w = {p.key: p for p in want}
    h = {p.key: p for p in have}
    out = [Change(False, p) for k, p in h.items() if k not in w]
    out += [Change(False, p, True) for k, p in h.items() if k in w and p.grantable and not w[k].grantable]
    out += [Change(True, p) for k, p in w.items() if k not in h or (p.grantable and not h[k].grantable)]
    return sorted(out)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def privilege_sql(schema: str, c: Change) -> str:
    """The GRANT / REVOKE of one change in placement schema `schema` (identifiers always quoted)."""
    p = c.privilege
    who = "public" if p.grantee == "PUBLIC" else quote_ident(p.grantee)
    what = p.privilege
    if p.kind == "schema":
        on = f"schema {quote_ident(schema)}"
    elif p.kind == "column":
        table, _, column = p.name.partition(".")
        on = f"table {quote_ident(schema)}.{quote_ident(table)}"
        what = f"{p.privilege} ({quote_ident(column)})"
    else:
        on = f"{p.kind} {quote_ident(schema)}.{quote_ident(p.name)}"
    if c.grant:
        return f"grant {what} on {on} to {who}" + (" with grant option" if p.grantable else "")
    return f"revoke {'grant option for ' if c.option_only else ''}{what} on {on} from {who}"


def privilege_findings(
    want: Iterable[Privilege], have: Iterable[Privilege], schema: str
) -> list[tuple[str, str]]:
    """Health's view of the differences, one (object, problem) per object and role."""
    by: dict[tuple[str, str, str], tuple[list[str], list[str]]] = {}
    for c in privilege_changes(want, have):
        p = c.privilege
        missing, extra = by.setdefault((p.kind, p.name, p.grantee), ([], []))
        if c.grant:
            missing.append(p.privilege + (" WITH GRANT OPTION" if p.grantable else ""))
        else:
            extra.append(("the grant option of " if c.option_only else "") + p.privilege)
    out: list[tuple[str, str]] = []
    for (kind, name, grantee), (missing, extra) in sorted(by.items()):
        obj = schema if kind == "schema" else f"{schema}.{name}"
        label = obj if kind == "table" else f"{kind} {obj}"
        role = "PUBLIC" if grantee == "PUBLIC" else f"role {grantee}"
        parts = []
        if missing:
            parts.append(f"{role} lacks {', '.join(missing)}, which the shared placement grants")
        if extra:
            parts.append(f"{role} has {', '.join(extra)}, which the shared placement does not grant")
        out.append((label, "privileges differ: " + "; ".join(parts)))
    return out
