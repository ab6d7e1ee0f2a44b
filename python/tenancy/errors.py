"""One exception class per SQLSTATE of the tenancy extension, and ``translate`` from driver errors.

    try:
        cur.execute("select tenancy.set_tenant_for_domain(%s, true)", [host])
    except psycopg.Error as exc:
        raise tenancy.errors.translate(exc) from exc

Custom SQLSTATEs (TN001 ...) have no class in psycopg.errors: psycopg raises a generic
``psycopg.Error`` whose ``.sqlstate`` says which. ``translate`` turns that into the class below (an
error of another SQLSTATE is returned unchanged). Works for psycopg 3, psycopg2, Django's and
SQLAlchemy's wrappers (it follows ``__cause__`` / ``.orig`` to the driver's error).
"""

from __future__ import annotations

from typing import Any


class TenancyError(Exception):
    """An error raised by the tenancy extension; ``sqlstate`` is its code, ``message`` its sentence."""

    sqlstate = ""
    http_status = 500

    def __init__(
        self, message: str = "", *, hint: str | None = None, cause: BaseException | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.cause = cause


class UnknownTenant(TenancyError):
    sqlstate, http_status = "TN001", 404


class TenantSuspended(TenancyError):
    sqlstate, http_status = "TN002", 403


class NoTenantContext(TenancyError):
    sqlstate, http_status = "TN003", 500


class TokenGovernance(TenancyError):
    sqlstate, http_status = "TN004", 422


class UnknownDomain(TenancyError):
    sqlstate, http_status = "TN005", 404


class InvariantGuard(TenancyError):
    sqlstate, http_status = "TN006", 500


class ContextNotAllowed(TenancyError):
    sqlstate, http_status = "TN007", 403


class IdentityTokenRefused(TenancyError):
    sqlstate, http_status = "TN008", 403

    @property
    def check(self) -> str | None:
        """The failed check's name (``expired``, ``signature``, ...) when the message names one."""
        for name in (
            "expired",
            "signature",
            "audience",
            "not valid",
            "not registered",
            "kid",
            "alg",
            "tenant claim",
        ):
            if name in self.message:
                return name
        return None


class TenantPlacedElsewhere(TenancyError):
    sqlstate, http_status = "TN009", 503


BY_SQLSTATE: dict[str, type[TenancyError]] = {
    cls.sqlstate: cls
    for cls in (
        UnknownTenant,
        TenantSuspended,
        NoTenantContext,
        TokenGovernance,
        UnknownDomain,
        InvariantGuard,
        ContextNotAllowed,
        IdentityTokenRefused,
        TenantPlacedElsewhere,
    )
}


def _driver_error(exc: BaseException) -> BaseException:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if _sqlstate(cur):
            return cur
        cur = getattr(cur, "orig", None) or cur.__cause__
    return exc


def _sqlstate(exc: BaseException) -> str | None:
    return getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)


def _message(exc: BaseException) -> tuple[str, str | None]:
    diag = getattr(exc, "diag", None)
    if diag is not None and getattr(diag, "message_primary", None):
        return diag.message_primary, getattr(diag, "message_hint", None)
    return str(exc).split("\n", 1)[0], None


def translate(exc: BaseException) -> BaseException:
    """The tenancy exception for a driver error of a TN SQLSTATE; any other error unchanged."""
    if isinstance(exc, TenancyError):
        return exc
    driver = _driver_error(exc)
    cls = BY_SQLSTATE.get(_sqlstate(driver) or "")
    if cls is None:
        return exc
    message, hint = _message(driver)
    return cls(message, hint=hint, cause=exc)


def raise_translated(exc: BaseException) -> Any:
    """``raise translate(exc) from exc``, as an expression."""
    new = translate(exc)
    if new is exc:
        raise exc
    raise new from exc
