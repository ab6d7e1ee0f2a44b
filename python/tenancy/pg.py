"""psycopg 3 / psycopg_pool helpers: a transaction with the tenant context set, and a pool reset.

    pool = psycopg_pool.ConnectionPool(dsn, reset=tenancy.pg.reset)
    with pool.connection() as conn, tenancy.pg.tenant_transaction(conn, host=request_host):
        conn.execute("select * from orders")           # only this tenant's rows

The context is taken with ``local => true`` inside the transaction, so it ends with it (what
transaction pooling needs) and can never leak to the next user of the connection. Exactly one of
``tenant`` (a uuid), ``host`` (``set_tenant_for_domain``) or ``jwt`` (``set_tenant_from_jwt``, the
only one a strict role may use) is given. Refusals raise the classes of ``tenancy.errors``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import translate


def context_sql(tenant: Any = None, host: str | None = None, jwt: str | None = None) -> tuple[str, list[Any]]:
    """The statement that takes the transaction's context for one of tenant / host / jwt."""
    given = [name for name, value in (("tenant", tenant), ("host", host), ("jwt", jwt)) if value is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of tenant, host or jwt (got {', '.join(given) or 'none'})")
    if tenant is not None:
        return "select tenancy.set_tenant(cast(%s as uuid), true)", [str(tenant)]
    if host is not None:
        return "select tenancy.set_tenant_for_domain(%s, true)", [host]
    return "select tenancy.set_tenant_from_jwt(%s, true)", [jwt]


def set_local_context(conn: Any, tenant: Any = None, host: str | None = None, jwt: str | None = None) -> Any:
    """Take the context in the current transaction of ``conn`` (a psycopg connection or cursor);
    returns the tenant id. Raises tenancy.errors on a refusal."""
    sql, params = context_sql(tenant, host, jwt)
    try:
        row = conn.execute(sql, params).fetchone()
    except Exception as exc:
        new = translate(exc)
        if new is exc:
            raise
        raise new from exc
    return row[0] if row else None


@contextmanager
def tenant_transaction(conn: Any, *, tenant: Any = None, host: str | None = None,
                       jwt: str | None = None) -> Iterator[Any]:  # fmt: skip
    """``with conn.transaction()`` whose context is the tenant (by id, host or identity token)."""
    with conn.transaction() as tx:
        set_local_context(conn, tenant, host, jwt)
        yield tx


def reset(conn: Any) -> None:
    """psycopg_pool ``reset`` callback: the connection goes back without any tenant context."""
    conn.execute("select tenancy.reset_tenant()")
    if not conn.autocommit:
        conn.commit()


@contextmanager
def tenant(
    dsn_or_pool: Any, *, tenant: Any = None, host: str | None = None, jwt: str | None = None
) -> Iterator[Any]:
    """For background jobs: a connection (from a DSN or a psycopg_pool pool) in a transaction with the
    context set; the transaction commits on success, rolls back on an exception.

        with tenancy.pg.tenant(dsn, tenant=job.tenant_id) as conn:
            conn.execute("update invoices set sent = true where id = %s", [job.invoice])
    """
    if isinstance(dsn_or_pool, str):
        import psycopg

        with (
            psycopg.connect(dsn_or_pool) as conn,
            tenant_transaction(conn, tenant=tenant, host=host, jwt=jwt),
        ):
            yield conn
        return
    with dsn_or_pool.connection() as conn, tenant_transaction(conn, tenant=tenant, host=host, jwt=jwt):
        yield conn
