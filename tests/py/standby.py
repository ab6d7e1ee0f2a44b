"""Read replicas of the throwaway primary, for the replica tests (tests/py/test_standby.py).

A real streaming hot standby (``streaming_standby``) and a logical subscriber (``logical_subscriber``).

``pg_basebackup -R`` of the cluster scripts/with-cluster.sh started, into its own data directory
inside that cluster's temporary directory, started on its own port on 127.0.0.1 (its Unix socket in
the same directory), read-only by construction. ``catch_up()`` waits until the standby has replayed
everything the primary has written so far. The standby is stopped and its directory removed when
the context ends, also on failure; scripts/with-cluster.sh stops any standby left in its directory.

The programs are the server's own (TENANCY_PGBIN: for PostgreSQL 17 and 18 the wrappers of
scripts/pg-root.sh, which run them inside the server's root), as the user the server runs as
(TENANCY_PG_RUNAS on the host's own server run as root: ``runuser -u postgres --``).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo


class NoStandby(Exception):
    """The standby cannot be made here (the reason is the message)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Standby:
    """A streaming hot standby: the whole cluster, read-only, on its own port."""

    primary_dsn: str  # superuser DSN of the primary
    port: int
    data: Path
    log: Path

    def dsn(self, dsn: str) -> str:
        """``dsn`` (of the primary: any database, any role) pointed at the standby."""
        params = conninfo_to_dict(dsn)
        params["port"] = str(self.port)
        return make_conninfo(**params)  # type: ignore[arg-type]

    def lsn(self) -> str:
        """The primary's WAL insert position now: everything written so far ends before it."""
        with psycopg.connect(self.primary_dsn, autocommit=True) as conn:
            # the insert position, not the write position: with synchronous_commit = off a commit
            # record can be inserted and not yet written when the test asks
            return str(conn.execute("select pg_current_wal_insert_lsn()").fetchone()[0])  # type: ignore[index]

    def catch_up(self, timeout: float = 30.0) -> None:
        """Waits until the standby has replayed everything the primary has written so far."""
        target = self.lsn()
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.dsn(self.primary_dsn), autocommit=True) as conn:
            while True:
                row = conn.execute(
                    "select pg_last_wal_replay_lsn() >= %s::pg_lsn, pg_last_wal_replay_lsn()::text", [target]
                ).fetchone()
                assert row is not None
                if row[0]:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"the standby replayed up to {row[1]} only, not {target}, in {timeout} s"
                    )
                time.sleep(0.02)


def _program(name: str) -> str:
    pgbin = os.environ.get("TENANCY_PGBIN", "")
    path = Path(pgbin) / name
    if pgbin and path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        raise NoStandby(f"{name} not found (TENANCY_PGBIN={pgbin!r})")
    return found


def _run(args: list[str], what: str, timeout: float = 300) -> None:
    runas = shlex.split(os.environ.get("TENANCY_PG_RUNAS", ""))
    proc = subprocess.run([*runas, *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}): {proc.stdout[-2000:]}{proc.stderr[-2000:]}")


@contextmanager
def streaming_standby(primary_dsn: str) -> Iterator[Standby]:
    """A hot standby of the primary at ``primary_dsn`` (a superuser DSN), stopped and removed afterwards."""
    sockdir = os.environ.get("TENANCY_TEST_SOCKDIR")
    if not sockdir or not Path(sockdir).is_dir():
        raise NoStandby(
            "a standby needs the throwaway cluster of scripts/with-cluster.sh (TENANCY_TEST_SOCKDIR unset):"
            " not against an existing server or a container"
        )
    params = conninfo_to_dict(primary_dsn)
    port = _free_port()
    work = Path(tempfile.mkdtemp(prefix="standby.", dir=sockdir))
    data, log = work / "data", work / "server.log"
    owner = Path(sockdir).stat()
    os.chown(work, owner.st_uid, owner.st_gid)  # the server's user owns the cluster's directory
    standby = Standby(primary_dsn=primary_dsn, port=port, data=data, log=log)
    try:
        host = [
            "-h",
            "127.0.0.1",
            "-p",
            str(params.get("port", "5432")),
            "-U",
            str(params.get("user", "postgres")),
        ]
        _run(
            [_program("pg_basebackup"), "-D", str(data), "-R", "-X", "stream", "-c", "fast", *host],
            "pg_basebackup",
        )
        conf = data / "postgresql.conf"
        with conf.open("a", encoding="utf-8") as fh:  # later lines win over the primary's copy
            fh.write(f"\n# the standby (tests/py/standby.py)\nport = {port}\nhot_standby = on\n")
        _run([_program("pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start"], "pg_ctl start")
        with psycopg.connect(standby.dsn(primary_dsn), autocommit=True) as conn:
            row = conn.execute("select pg_is_in_recovery()").fetchone()
            assert row is not None and row[0], "the standby is not in recovery"
        standby.catch_up()
        yield standby
    finally:
        if (data / "postmaster.pid").exists():
            # the removal below runs anyway; scripts/with-cluster.sh stops a standby left running
            with contextlib.suppress(Exception):
                _run(
                    [_program("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], "pg_ctl stop", 60
                )
        shutil.rmtree(work, ignore_errors=True)


# --- a logical subscriber ---------------------------------------------------------------------------


def _one(conn: psycopg.Connection, sql: str, args: list[object] | None = None) -> object:
    row = conn.execute(sql, args or []).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return row[0]


MARKS = "public.replica_marks"  # published with the tables: a row seen on the subscriber marks a position


@dataclass
class Subscriber:
    """A database of the same cluster that subscribes (logical replication) to tables of another."""

    publisher_dsn: str  # superuser DSN of the published database
    subscriber_dsn: str  # superuser DSN of the subscribing database
    data: Path  # the cluster's data directory (publisher and subscriber share it)

    def dsn(self, dsn: str) -> str:
        """``dsn`` (of the published database: any role) pointed at the subscribing database."""
        params = conninfo_to_dict(dsn)
        params["dbname"] = str(conninfo_to_dict(self.subscriber_dsn)["dbname"])
        return make_conninfo(**params)  # type: ignore[arg-type]

    def catch_up(self, timeout: float = 30.0) -> None:
        """Waits until the subscriber has applied every transaction committed on the publisher so far
        (a mark written now has arrived: the apply worker applies commits in their order)."""
        with psycopg.connect(self.publisher_dsn, autocommit=True) as conn:
            mark = _one(conn, f"insert into {MARKS} default values returning id")
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.subscriber_dsn, autocommit=True) as conn:
            while not _one(conn, f"select exists (select from {MARKS} where id = %s)", [mark]):
                if time.monotonic() > deadline:
                    raise AssertionError(f"the subscriber has not applied mark {mark} in {timeout} s")
                time.sleep(0.02)


@contextmanager
def logical_subscriber(
    publisher_dsn: str, tables: list[str], prepare: Callable[[psycopg.Connection], None]
) -> Iterator[Subscriber]:
    """A new database of the same cluster subscribed to ``tables`` of the database of
    ``publisher_dsn`` (a superuser DSN). ``prepare`` makes the subscriber's schema (the extension,
    the application's tables) before the subscription copies the rows. Dropped afterwards."""
    sockdir = os.environ.get("TENANCY_TEST_SOCKDIR")
    if not sockdir or not Path(sockdir).is_dir():
        raise NoStandby("a logical subscriber needs the throwaway cluster of scripts/with-cluster.sh")
    params = conninfo_to_dict(publisher_dsn)
    with psycopg.connect(publisher_dsn, autocommit=True) as pub:
        if pub.execute("show wal_level").fetchone() != ("logical",):
            raise NoStandby("the server's wal_level is not logical (scripts/with-cluster.sh sets it)")
        pub.execute(f"create table {MARKS} (id bigint generated always as identity primary key)")
        name = f"{params['dbname']}_sub"
        pub.execute(f"create database {name}")
    subscriber_dsn = make_conninfo(publisher_dsn, dbname=name)
    sub = Subscriber(publisher_dsn=publisher_dsn, subscriber_dsn=subscriber_dsn, data=Path(sockdir) / "data")
    slot = name
    try:
        with psycopg.connect(subscriber_dsn, autocommit=True) as conn:
            conn.execute(f"create table {MARKS} (id bigint primary key)")
            prepare(conn)
        with psycopg.connect(publisher_dsn, autocommit=True) as pub:
            pub.execute(f"create publication {slot} for table {', '.join([*tables, MARKS])}")
            # in the same cluster CREATE SUBSCRIPTION cannot make its slot itself (it would wait for
            # its own transaction): the slot is made here
            pub.execute("select pg_create_logical_replication_slot(%s, 'pgoutput')", [slot])
        source = make_conninfo(
            host="127.0.0.1",
            port=str(params.get("port", "5432")),
            user=str(params.get("user", "postgres")),
            dbname=str(params["dbname"]),
        )
        with psycopg.connect(subscriber_dsn, autocommit=True) as conn:
            conn.execute(
                f"create subscription {slot} connection '{source}' publication {slot}"
                f" with (create_slot = false, slot_name = '{slot}')"
            )
            deadline = time.monotonic() + 60
            while _one(conn, "select count(*) from pg_subscription_rel where srsubstate <> 'r'"):
                if time.monotonic() > deadline:
                    raise AssertionError("the subscriber did not copy the published tables in 60 s")
                time.sleep(0.05)
        sub.catch_up()
        yield sub
    finally:
        with contextlib.suppress(psycopg.Error), psycopg.connect(subscriber_dsn, autocommit=True) as conn:
            conn.execute(f"alter subscription {slot} disable")
            conn.execute(f"alter subscription {slot} set (slot_name = none)")
            conn.execute(f"drop subscription {slot}")
        with psycopg.connect(publisher_dsn, autocommit=True) as pub:
            deadline = time.monotonic() + 30
            while _one(
                pub,
                "select exists (select from pg_replication_slots where slot_name = %s and active)",
                [slot],
            ):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            pub.execute(
                "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = %s",
                [slot],
            )
            pub.execute(f"drop publication if exists {slot}")
            pub.execute(f"drop table if exists {MARKS}")
            pub.execute(f"drop database if exists {name} with (force)")
