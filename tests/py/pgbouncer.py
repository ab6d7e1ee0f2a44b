"""A real PgBouncer in front of the test server, and scratch databases to put behind it.

`run_pgbouncer` starts /usr/sbin/pgbouncer (the Debian package that scripts/deps.sh installs) as a
subprocess: listening on 127.0.0.1 on a free port, no Unix socket, its config, auth file and log in
a temporary directory; always stopped and removed on exit. PgBouncer refuses to run as root, so as
root it runs as the `postgres` OS user (the one the throwaway cluster runs as).

`scratch_database` makes a fresh database with the extension (like conftest's `tenancy_db`) plus
login roles with passwords, and drops them all afterwards.
"""

from __future__ import annotations

import getpass
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ADMIN_USER = "tenancy_bouncer_admin"


def binary() -> str | None:
    """The pgbouncer executable, or None when PgBouncer is not installed."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    return "/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_address(dsn: str) -> tuple[str, int]:
    """(127.0.0.1 or a socket directory, port) of a libpq DSN.

    Anything else skips the calling test: these helpers only ever point at this machine.
    """
    params = conninfo_to_dict(dsn)
    host = str(params.get("host") or os.environ.get("PGHOST") or "/var/run/postgresql")
    port = int(params.get("port") or os.environ.get("PGPORT") or 5432)
    if host == "localhost":
        host = "127.0.0.1"
    if not host.startswith("/") and host != "127.0.0.1":
        pytest.skip(f"the server is at {host!r}: PgBouncer and the examples are only run against 127.0.0.1")
    return host, port


def _traversable(directory: str, uid: int, gid: int) -> bool:
    """Whether the user uid (group gid) may pass through ``directory`` and every directory above it."""
    for d in [Path(directory), *Path(directory).parents]:
        st = d.stat()
        bit = stat.S_IXUSR if st.st_uid == uid else stat.S_IXGRP if st.st_gid == gid else stat.S_IXOTH
        if uid != 0 and not st.st_mode & bit:
            return False
    return True


def url(dsn: str) -> str:
    """The same connection as a postgresql:// URL (what node-postgres takes), defaults filled in."""
    params = conninfo_to_dict(dsn)
    host, port = server_address(dsn)
    user = str(params.get("user") or os.environ.get("PGUSER") or getpass.getuser())
    password = params.get("password") or os.environ.get("PGPASSWORD")
    dbname = quote(str(params.get("dbname") or os.environ.get("PGDATABASE") or user), safe="")
    user = quote(user, safe="")
    auth = f"{user}:{quote(str(password), safe='')}@" if password else f"{user}@"
    if host.startswith("/"):
        return f"postgresql://{auth}/{dbname}?host={quote(host, safe='/')}&port={port}"
    return f"postgresql://{auth}{host}:{port}/{dbname}"


@dataclass
class PgBouncer:
    port: int
    workdir: Path
    proc: subprocess.Popen[bytes]
    admin_password: str
    host: str = "127.0.0.1"

    def dsn(self, dsn: str) -> str:
        """`dsn` (a role's DSN to the server) rewritten to go through this PgBouncer."""
        return make_conninfo(dsn, host=self.host, port=str(self.port))

    def log(self) -> str:
        """PgBouncer's log file (or, when it died before opening it, what it wrote to stderr)."""
        for name in ("pgbouncer.log", "pgbouncer.out"):
            path = self.workdir / name
            text = path.read_text(errors="replace") if path.exists() else ""
            if text:
                return text
        return ""

    def admin(self, command: str) -> list[dict[str, Any]]:
        """A SHOW command on the admin console (simple query protocol: a client-side cursor)."""
        with psycopg.connect(
            host=self.host,
            port=self.port,
            dbname="pgbouncer",
            user=ADMIN_USER,
            password=self.admin_password,
            autocommit=True,
            cursor_factory=psycopg.ClientCursor,
        ) as conn:
            cur = conn.execute(command)
            names = [d.name for d in cur.description or []]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def servers(self, database: str, user: str | None = None) -> list[dict[str, Any]]:
        """SHOW SERVERS rows of one database (and user): the server connections PgBouncer holds."""
        return [
            r
            for r in self.admin("show servers")
            if r["database"] == database and (user is None or r["user"] == user)
        ]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: immediate shutdown
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _config(
    server: tuple[str, int],
    databases: list[str],
    port: int,
    workdir: Path,
    pool_mode: str,
    default_pool_size: int,
    settings: Mapping[str, object],
) -> str:
    host, server_port = server
    lines = ["[databases]"]
    lines += [f"{db} = host={host} port={server_port} dbname={db}" for db in databases]
    base: dict[str, object] = {
        "listen_addr": "127.0.0.1",
        "listen_port": port,
        "unix_socket_dir": "",
        "auth_type": "scram-sha-256",
        "auth_file": workdir / "userlist.txt",
        "admin_users": ADMIN_USER,
        "pool_mode": pool_mode,
        "default_pool_size": default_pool_size,
        "min_pool_size": 0,
        "reserve_pool_size": 0,
        "max_client_conn": 500,
        "logfile": workdir / "pgbouncer.log",
        "pidfile": workdir / "pgbouncer.pid",
        "ignore_startup_parameters": "extra_float_digits",
        "log_connections": 0,
        "log_disconnections": 0,
        "server_login_retry": 1,
    }
    base.update(settings)
    lines += ["", "[pgbouncer]"] + [f"{k} = {v}" for k, v in base.items()]
    return "\n".join(lines) + "\n"


@contextmanager
def run_pgbouncer(
    server_dsn: str,
    databases: list[str],
    users: Mapping[str, str],
    *,
    pool_mode: str = "transaction",
    default_pool_size: int = 4,
    settings: Mapping[str, object] | None = None,
) -> Iterator[PgBouncer]:
    """PgBouncer in front of the server of `server_dsn` for `databases`, logins `users` (name -> password).

    Clients authenticate with SCRAM against the auth file; PgBouncer logs into the server with the
    same name (and the same password, should the server ask for one). `settings` adds to or
    overrides the [pgbouncer] section (e.g. server_reset_query_always = 1).
    """
    exe = binary()
    if exe is None:
        pytest.skip("PgBouncer is not installed (scripts/deps.sh installs the Debian package `pgbouncer`)")
    server = server_address(server_dsn)
    as_postgres = os.getuid() == 0
    if as_postgres and server[0].startswith("/"):
        pw = pwd.getpwnam("postgres")
        if not _traversable(server[0], pw.pw_uid, pw.pw_gid):
            # the socket of a server in a root under ~/.cache (make test PG=17): PgBouncer, run as
            # postgres, cannot pass /root; the throwaway cluster listens on 127.0.0.1 too
            server = ("127.0.0.1", server[1])
    workdir = Path(tempfile.mkdtemp(prefix="tenancy-pgbouncer."))
    try:
        admin_password = secrets.token_hex(8)
        port = free_port()
        entries = {**users, ADMIN_USER: admin_password}
        (workdir / "userlist.txt").write_text(
            "".join(f'"{name}" "{password}"\n' for name, password in entries.items())
        )
        (workdir / "pgbouncer.ini").write_text(
            _config(server, databases, port, workdir, pool_mode, default_pool_size, settings or {})
        )
        spawn: dict[str, Any] = {}
        if as_postgres:
            pw = pwd.getpwnam("postgres")
            for path in [workdir, *workdir.iterdir()]:
                os.chown(path, pw.pw_uid, pw.pw_gid)
            spawn = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        os.chmod(workdir, 0o700)
        with open(workdir / "pgbouncer.out", "wb") as out:
            proc = subprocess.Popen(
                [exe, str(workdir / "pgbouncer.ini")],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                **spawn,
            )
        bouncer = PgBouncer(port=port, workdir=workdir, proc=proc, admin_password=admin_password)
        try:
            _wait_until_listening(bouncer)
            yield bouncer
        finally:
            bouncer.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_until_listening(bouncer: PgBouncer, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if bouncer.proc.poll() is not None:
            raise RuntimeError(f"pgbouncer exited with {bouncer.proc.returncode}:\n{bouncer.log()}")
        try:
            with socket.create_connection((bouncer.host, bouncer.port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"pgbouncer is not listening after {timeout} s:\n{bouncer.log()}"
                ) from None
            time.sleep(0.05)


@dataclass
class ScratchDb:
    """A fresh database with the extension; `dsn` is its superuser DSN."""

    server_dsn: str
    name: str
    roles: dict[str, str] = field(default_factory=dict)

    @property
    def dsn(self) -> str:
        return make_conninfo(self.server_dsn, dbname=self.name)

    def role_dsn(self, role: str) -> str:
        return make_conninfo(self.dsn, user=role, password=self.roles[role])

    def add_role(self, kind: str) -> str:
        """A login role with a password, granted with tenancy.grant_app ('app') or grant_platform."""
        role = f"tenancy_{kind}_{secrets.token_hex(3)}"
        password = secrets.token_hex(8)
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"create role {role} login password '{password}'")
            self.roles[role] = password
            fn = "grant_platform" if kind == "platform" else "grant_app"
            conn.execute(f"select tenancy.{fn}(%s)", [role])
        return role


@contextmanager
def scratch_database(server_dsn: str, prefix: str, *, extension: bool = True) -> Iterator[ScratchDb]:
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f"create database {name}")
    db = ScratchDb(server_dsn=server_dsn, name=name)
    try:
        if extension:
            with psycopg.connect(db.dsn, autocommit=True) as conn:
                conn.execute("set client_min_messages = warning")
                conn.execute("create extension tenancy cascade")
        yield db
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(f"drop database if exists {name} with (force)")
            for role in db.roles:
                conn.execute(f"drop role if exists {role}")
