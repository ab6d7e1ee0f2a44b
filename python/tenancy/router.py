"""A client router for placements: given a tenant, a connection to the database its rows live in
(from a bounded pool per database) and a transaction with the context set.

    router = Router("host=... dbname=app user=app_login")
    with router.transaction(tenant_id) as conn:
        conn.execute("select * from projects")   # a schema placement's schema is first on the path

The placement comes from ``tenancy.placement_of(tenant)`` in the control database and is cached;
``set_tenant(tenant, local => true)`` checks it again inside the transaction, so a stale cache fails
closed with ``TN009``, and the router then refreshes the placement and retries once.

``set_tenant`` is the transaction's first statement, so a retry repeats nothing of the caller's work.
Credentials come from the control DSN, whose database name is replaced by the placement's database
(the registry stores none). A placement on another server is ``service=NAME`` in the registry: the
router connects with the libpq service NAME (host, port and database from the service file) as the
control DSN's user, with its password when it has one (else a password file or the environment);
``service_conninfo`` replaces that rule.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

TN009 = "TN009"


class PlacedElsewhere(Exception):
    """TN009 twice: the placement changed again while the router retried (or is being moved)."""


@dataclass(frozen=True)
class Placement:
    kind: str
    schema_name: str | None
    database: str | None
    generation: int


SERVICE = "service="
# what a service connection takes from the control DSN: who the application is, not where
CARRIED = ("user", "password", "application_name", "connect_timeout")


class Router:
    def __init__(
        self,
        control_dsn: str,
        *,
        pool_size: int = 4,
        timeout: float = 10.0,
        service_conninfo: Callable[[str], str] | None = None,
    ) -> None:
        self.control_dsn = control_dsn
        self.control_db = conninfo_to_dict(control_dsn).get("dbname")
        self.pool_size = pool_size
        self.timeout = timeout
        self.service_conninfo = service_conninfo or self._service_conninfo
        self._pools: dict[str, ConnectionPool] = {}
        self._placements: dict[str, Placement] = {}
        self._lock = threading.Lock()
        self.refreshes = 0

    def pool(self, database: str | None) -> ConnectionPool:
        key = database or ""
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                dsn = self.conninfo(database)
                pool = ConnectionPool(
                    dsn, min_size=0, max_size=self.pool_size, timeout=self.timeout, open=True
                )
                self._pools[key] = pool
            return pool

    def conninfo(self, database: str | None) -> str:
        """libpq parameters of a placement's database (None: the control database)."""
        if not database:
            return self.control_dsn
        if database.startswith(SERVICE):
            return self.service_conninfo(database[len(SERVICE) :])
        return make_conninfo(self.control_dsn, dbname=database)

    def _service_conninfo(self, service: str) -> str:
        own = conninfo_to_dict(self.control_dsn)
        return make_conninfo(f"service={service}", **{k: own[k] for k in CARRIED if own.get(k)})

    def placement(self, tenant: str, *, refresh: bool = False) -> Placement:
        with self._lock:
            cached = self._placements.get(tenant)
        if cached is not None and not refresh:
            return cached
        with self.pool(None).connection() as conn:
            row = conn.execute(
                "select kind, schema_name, database, generation from tenancy.placement_of(%s)", [tenant]
            ).fetchone()
        found = Placement(*row)
        with self._lock:
            self._placements[tenant] = found
        if refresh:
            self.refreshes += 1
        return found

    def forget(self, tenant: str) -> None:
        with self._lock:
            self._placements.pop(tenant, None)

    @contextmanager
    def transaction(self, tenant: str) -> Iterator[psycopg.Connection]:
        """A connection in a transaction whose first statement set the tenant's context."""
        for attempt in (0, 1):
            place = self.placement(tenant, refresh=attempt == 1)
            try:
                cm = self.pool(place.database).connection()
                conn = cm.__enter__()
            except (psycopg.OperationalError, PoolTimeout) as exc:
                # the placement's database is gone (moved away and dropped): ask again, once
                if attempt == 0:
                    continue
                raise PlacedElsewhere(
                    f"tenant {tenant}: database {place.database} unreachable: {exc}"
                ) from exc
            try:
                try:
                    conn.execute("select tenancy.set_tenant(%s, local => true)", [tenant])
                except psycopg.Error as exc:
                    with suppress(psycopg.Error):
                        conn.rollback()
                    # TN009: placed elsewhere; a lost connection: its database was dropped by a move
                    stale = exc.sqlstate == TN009 or isinstance(exc, psycopg.OperationalError)
                    if stale and attempt == 0:
                        continue
                    if exc.sqlstate == TN009:
                        raise PlacedElsewhere(str(exc).strip()) from exc
                    raise
                try:
                    yield conn
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()
                return
            finally:
                cm.__exit__(None, None, None)

    def close(self) -> None:
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for p in pools:
            p.close()
