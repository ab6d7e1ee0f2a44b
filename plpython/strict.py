"""Strict roles: a member of ``tenancy_strict`` takes a context only from an identity token.

Strict means: the login (``session_user``) or the role that calls set_tenant (``current_user``) is a
member of ``tenancy_strict`` (directly or through other roles) and is not a superuser. set_tenant's
SQL side asks that (``tenancy._enter``, through PostgreSQL's own membership cache, at every call,
so a role made strict while connected is strict at its very next set_tenant). Checking the login
too closes ``SET ROLE`` to a non-strict role, and a SECURITY DEFINER function of a non-strict owner
that calls set_tenant.

For a strict role the context is minted only with a *pass*: ``set_tenant_from_jwt`` verifies the
token, then grants a pass for the token's tenant (``grant_pass``) and calls ``tenancy.set_tenant``;
the mint takes the pass (``take_pass``), which is gone afterwards either way. No SQL role can write
the backend's PL/Python state, so the only way to a context for a strict role is a token that
verifies.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs a new backend milliseconds: annotations only
    from typing import Any

PASS_KEY = "tenancy.jwt_pass"
STRICT_ROLE = "tenancy_strict"

STRICT_HINT = (
    "A strict role (tenancy.grant_app(role, strict => true)) takes a context only with "
    "tenancy.set_tenant_from_jwt(token)."
)


def grant_pass(gd: dict[str, Any], tenant: str) -> None:
    """Let the next mint of ``tenant`` through for a strict role (set_tenant_from_jwt only)."""
    gd[PASS_KEY] = str(tenant)


def take_pass(gd: dict[str, Any], tenant: str | None) -> bool:
    """Whether a pass for ``tenant`` was there; the pass is gone afterwards either way."""
    held = gd.pop(PASS_KEY, None)
    return held is not None and tenant is not None and held == str(tenant)
