"""tenancy for applications and operators: the client side of the tenancy PostgreSQL extension.

The distribution is ``pg-tenancy`` (not PyPI's unrelated ``tenancy``); it is imported as ``tenancy``.

- ``tenancy.errors``: one exception class per SQLSTATE of the extension (TN001 ... TN009).
- ``tenancy.fleet``: the ``tenancy`` command (provision, migrate, health, move, export, erase, list).
- client helpers for psycopg / psycopg_pool, Django and SQLAlchemy.

The server side (SQL and PL/Python) is installed with ``CREATE EXTENSION tenancy``; see the README.
"""

__version__ = "0.2.0"


def __getattr__(name: str):  # ``tenancy.tenant(...)`` for background jobs, without importing psycopg eagerly
    if name in ("tenant", "tenant_transaction"):
        from . import pg

        return getattr(pg, name)
    raise AttributeError(name)
