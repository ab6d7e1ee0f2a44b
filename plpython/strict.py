"""Strict roles (SPEC 2a): a member of ``tenancy_strict`` takes a context only from an identity token.

``tenancy._set_tenant`` (the one path that issues a context from a tenant id) asks ``refusal`` first.
``set_tenant_from_jwt`` verifies the token, then calls ``tenancy.set_tenant`` for the token's tenant
with a *pass* in the backend's state (``jwt_pass``): the tenant id, valid for that one call (taken by
the first ``_set_tenant`` that runs, and removed when set_tenant_from_jwt returns, whatever
happens). No SQL role can write the state, so the only way to a context for a strict role is a
token that verifies.

Strict means: ``current_user`` or ``session_user`` is a member of ``tenancy_strict`` (directly or
through other roles), and is not a superuser (``pg_has_role`` is true for a superuser and every
role, and a superuser is not confined by row-level security anyway). Checking ``session_user`` too
closes ``SET ROLE`` to a non-strict role the login belongs to, and a SECURITY DEFINER function of a
non-strict owner that calls set_tenant. The membership is asked on every call, of PostgreSQL's own
membership cache (``native.py``: no SPI, a few microseconds), so a role made strict while
connected is strict at its very next set_tenant; SQL is the fallback where ctypes is missing. A
role cannot leave ``tenancy_strict`` itself: that takes ADMIN OPTION on it (or CREATEROLE, which a
strict login must not have).

This module is deliberately tiny: it is imported by every backend's first set_tenant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing typing costs a new backend milliseconds: annotations only
    from typing import Any

PASS_KEY = "tenancy.jwt_pass"
STRICT_ROLE = "tenancy_strict"

# The pg_has_role calls answer from the backend's membership cache (a few microseconds); only when
# one is true (a strict role, or a superuser, for whom it is always true) are the catalog rows read.
STRICT_SQL = (
    "select case when pg_catalog.pg_has_role(current_user, 'tenancy_strict', 'MEMBER')"
    " or pg_catalog.pg_has_role(session_user, 'tenancy_strict', 'MEMBER')"
    " then exists (select from pg_catalog.pg_roles r"
    " where r.rolname operator(pg_catalog.=) any (array[current_user, session_user])"
    " and not r.rolsuper and pg_catalog.pg_has_role(r.oid, 'tenancy_strict', 'MEMBER'))"
    " else false end as strict, current_user::text as role"
)

STRICT_HINT = (
    "A strict role (tenancy.grant_app(role, strict => true)) takes a context only with "
    "tenancy.set_tenant_from_jwt(token)."
)


def grant_pass(gd: dict[str, Any], tenant: str) -> None:
    """Let the next ``_set_tenant`` of ``tenant`` through for a strict role (set_tenant_from_jwt only)."""
    gd[PASS_KEY] = str(tenant)


def take_pass(gd: dict[str, Any], tenant: str | None) -> bool:
    """Whether a pass for ``tenant`` was there; the pass is gone afterwards either way."""
    held = gd.pop(PASS_KEY, None)
    return held is not None and tenant is not None and held == str(tenant)


def refusal(plpy: Any, gd: dict[str, Any], tenant: str | None, local: bool) -> list[str] | None:
    """None when ``_set_tenant`` may go on; else the audited TN007 answer for a strict role."""
    if take_pass(gd, tenant):
        return None
    from . import native

    roles = native.functions(gd)
    if roles is not None and not roles.confined(STRICT_ROLE):
        return None
    plan = gd.get("tenancy.plan.strict")
    if plan is None:
        plan = gd["tenancy.plan.strict"] = plpy.prepare(STRICT_SQL)
    row = plpy.execute(plan)[0]
    if not row["strict"]:
        return None
    message = (
        f"role {row['role']} is a strict role: it may take a context only from an identity token"
        f" (tenancy.set_tenant_from_jwt), not with set_tenant({tenant})"
    )
    from . import context

    asked = f"set_tenant({tenant}, local => {'true' if local else 'false'})"
    context.audit(plpy, gd, "refused_context", asked, message, "TN007")
    return ["TN007", message, STRICT_HINT]
