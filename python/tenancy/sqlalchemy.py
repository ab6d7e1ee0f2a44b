"""SQLAlchemy (2.x) integration: the context in every transaction of a session, a pool reset, the tenant
column, and an Alembic hook.

    engine = create_engine(url)
    tenancy.sqlalchemy.install(engine)                     # pool reset: reset_tenant on check-in
    Session = sessionmaker(engine)
    tenancy.sqlalchemy.scope_sessions(Session)             # after_begin: set_tenant(..., local => true)

    with Session(info={"tenancy": {"host": request_host}}) as session, session.begin():
        session.scalars(select(Order)).all()               # this tenant's rows only

    class Order(Base):
        tenant_id: Mapped[uuid.UUID] = tenant_column()     # filled by the database (server_default)

    # alembic env.py
    context.configure(..., include_object=tenancy.sqlalchemy.include_object)

``session.info["tenancy"]`` is a dict with one of ``tenant``, ``host``, ``jwt``; a session without it
takes no context (zero rows, writes refused with TN003). Refusals surface as the classes of
``tenancy.errors`` (``translate``), e.g. ``UnknownDomain`` for TN005.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, FetchedValue, Uuid, event, text
from sqlalchemy.orm import mapped_column

from .errors import translate
from .pg import context_sql

INFO_KEY = "tenancy"


def _set_context(session: Any, transaction: Any, connection: Any) -> None:
    spec = session.info.get(INFO_KEY)
    if not spec or transaction.nested:
        return
    sql, params = context_sql(spec.get("tenant"), spec.get("host"), spec.get("jwt"))
    sql = sql.replace("%s", ":v")
    try:
        connection.execute(text(sql), {"v": params[0]})
    except Exception as exc:
        new = translate(exc)
        if new is exc:
            raise
        raise new from exc


def scope_sessions(session_class: Any) -> None:
    """Every transaction of sessions of ``session_class`` (a sessionmaker or Session subclass) begins by
    taking the context named in ``session.info["tenancy"]``, with local => true."""
    event.listen(session_class, "after_begin", _set_context)


def _reset(dbapi_connection: Any, connection_record: Any, reset_state: Any = None) -> None:
    cur = dbapi_connection.cursor()
    try:
        cur.execute("select tenancy.reset_tenant()")
    finally:
        cur.close()
    dbapi_connection.commit()


def install(engine: Any) -> None:
    """Pool reset on ``engine``: a connection returned to the pool has no tenant context."""
    event.listen(engine, "reset", _reset)


def tenant_column(name: str | None = None, **kw: Any) -> Any:
    """A ``mapped_column`` for the tenant column: uuid, not null, filled by the database's default
    (``tenancy._default_tenant()``, set by register_table), so an INSERT without it lands in the
    current tenant. ``FetchedValue`` tells SQLAlchemy not to send NULL and to fetch the value back."""
    args = (name,) if name else ()
    kw.setdefault("nullable", False)
    kw.setdefault("index", False)
    return mapped_column(*args, Uuid, server_default=FetchedValue(), **kw)


def tenant_column_core(name: str = "tenant_id", **kw: Any) -> Column:
    """The same for a Core ``Table``."""
    kw.setdefault("nullable", False)
    return Column(name, Uuid, server_default=FetchedValue(), **kw)


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic ``include_object``: ignore what tenancy made in the database and the model does not
    declare — the tenant index of a registered table (an index on the tenant column alone, reflected,
    absent from the metadata) — so autogenerate does not want to drop it. Policies and RLS flags are not
    compared by Alembic at all; the column's server default is FetchedValue, which is not compared."""
    if type_ == "index" and reflected and compare_to is None:
        cols = [c.name for c in getattr(obj, "columns", [])]
        if len(cols) == 1 and cols[0] in _tenant_columns(obj):
            return False
    return True


def _tenant_columns(index: Any) -> set[str]:
    table = getattr(index, "table", None)
    info = getattr(table, "info", {}) or {}
    return set(info.get("tenancy_columns", ("tenant_id",)))
