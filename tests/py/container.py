"""TENANCY_TEST_BACKEND=container: the suite against a testcontainers PostgreSQL with PL/Python 3 and
pgTAP and this extension installed (image built from tests/docker/Dockerfile). Needs a Docker engine."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "tenancy-test:15"


@contextmanager
def tenancy_container() -> Iterator[str]:
    from testcontainers.postgres import PostgresContainer  # type: ignore[import-untyped]

    subprocess.run(["make", "-s", "all"], cwd=ROOT, check=True)
    subprocess.run(
        ["docker", "build", "-q", "-t", IMAGE, "-f", "tests/docker/Dockerfile", "."], cwd=ROOT, check=True
    )
    with PostgresContainer(IMAGE, username="postgres", password="postgres", dbname="postgres") as pg:
        host, port = pg.get_container_host_ip(), pg.get_exposed_port(5432)
        yield f"host={host} port={port} user=postgres password=postgres dbname=postgres"
