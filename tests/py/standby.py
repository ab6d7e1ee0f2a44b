"""A hot standby of the throwaway test cluster, for tests that check what a replica answers once it has
replayed a write (SPEC §0, v0.3).

``hot_standby(primary_dsn)`` copies the cluster with pg_basebackup (streaming replication, the
connection settings written by ``-R``), starts it on a free port beside the primary and yields a
``Standby``; it is stopped and removed afterwards.  It needs the cluster of scripts/with-cluster.sh
(TENANCY_PGBIN, TENANCY_TEST_SOCKDIR); elsewhere the caller skips.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Standby:
    dsn: str  # superuser DSN of the standby (database postgres)
    primary_dsn: str

    def for_db(self, dsn: str) -> str:
        """``dsn`` (of the primary) pointed at the standby: the same database, user and password."""
        host = self.dsn.split("host=")[1].split()[0]
        port = self.dsn.split("port=")[1].split()[0]
        return f"{dsn} host={host} port={port}"

    def catch_up(self, timeout: float = 30.0) -> None:
        """Wait until the standby has replayed everything the primary has written so far."""
        with psycopg.connect(self.primary_dsn, autocommit=True) as conn:
            # the insert position: with synchronous_commit = off a commit may not be written yet
            row = conn.execute("select pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None
        deadline = time.time() + timeout
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while time.time() < deadline:
                done = conn.execute("select pg_last_wal_replay_lsn() >= %s::pg_lsn", [row[0]]).fetchone()
                if done and done[0]:
                    return
                time.sleep(0.05)
        raise AssertionError(f"the standby did not replay up to {row[0]} within {timeout} s")


def available() -> str | None:
    """None when a standby can be made here, else the reason it cannot."""
    if not os.environ.get("TENANCY_PGBIN") or not os.environ.get("TENANCY_TEST_SOCKDIR"):
        return "a standby needs the cluster of scripts/with-cluster.sh (TENANCY_PGBIN, TENANCY_TEST_SOCKDIR)"
    if not os.path.exists(os.path.join(os.environ["TENANCY_PGBIN"], "pg_basebackup")):
        return "pg_basebackup is not installed beside the server"
    return None


@contextmanager
def hot_standby(primary_dsn: str) -> Iterator[Standby]:
    pgbin = os.environ["TENANCY_PGBIN"]
    sockdir = os.environ["TENANCY_TEST_SOCKDIR"]
    runas = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    workdir = tempfile.mkdtemp(prefix="tenancy-standby.")
    os.chmod(workdir, 0o755)
    if runas:
        shutil.chown(workdir, "postgres")
    data = os.path.join(workdir, "data")
    port = _free_port()
    host = primary_dsn.split("host=")[1].split()[0]
    primary_port = primary_dsn.split("port=")[1].split()[0]
    started = False
    try:
        subprocess.run(
            [
                *runas,
                f"{pgbin}/pg_basebackup",
                "-h",
                host,
                "-p",
                primary_port,
                "-U",
                "postgres",
                "-D",
                data,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
            check=True,
            capture_output=True,
        )
        with open(os.path.join(data, "postgresql.auto.conf"), "a", encoding="utf-8") as conf:
            conf.write(f"port = {port}\nhot_standby = on\nunix_socket_directories = '{sockdir}'\n")
        subprocess.run(
            [
                *runas,
                f"{pgbin}/pg_ctl",
                "-D",
                data,
                "-l",
                os.path.join(workdir, "standby.log"),
                "-w",
                "-t",
                "60",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        started = True
        yield Standby(f"host={sockdir} port={port} user=postgres dbname=postgres", primary_dsn)
    finally:
        if started:
            subprocess.run([*runas, f"{pgbin}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
                           capture_output=True)  # fmt: skip
        shutil.rmtree(workdir, ignore_errors=True)
