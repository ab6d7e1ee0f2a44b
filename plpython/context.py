"""Tenant context bookkeeping: the pure core behind tenancy.set_tenant().

The context a session works in is kept in the backend's PL/Python global dict
(``GD``), which no SQL role can read or write.  PostgreSQL settings carry only
an opaque random token per slot:

* ``tenancy.ctx_s`` -- the session slot (``set_tenant(..., local => false)``);
* ``tenancy.ctx_l`` -- the transaction slot (``set_tenant(..., local => true)``),
  set with ``is_local`` so PostgreSQL itself drops it at transaction end.

A context is valid only when the token found in the setting is the one this
backend issued last for that slot (a transaction-slot token must also belong to
the current transaction).  A token typed by hand, copied from another session,
or restored after ``reset_tenant`` / a later ``set_tenant`` is therefore no
context at all.  Verification is one dict lookup and two string comparisons.

Everything here is pure: the caller passes the state dict, the settings and
the transaction's start time, so the tests drive it without a database.
"""

from __future__ import annotations

import secrets
from typing import Any, NamedTuple

STATE_KEY = "tenancy.context"
SESSION_SETTING = "tenancy.ctx_s"
LOCAL_SETTING = "tenancy.ctx_l"


class Context(NamedTuple):
    tenant: str
    tier: int
    role: str


def _state(gd: dict[str, Any]) -> dict[str, Any]:
    state = gd.get(STATE_KEY)
    if state is None:
        state = gd[STATE_KEY] = {"s": None, "l": None}
    return state


def new_token() -> str:
    """A fresh 128-bit random token (hex)."""
    return secrets.token_hex(16)


def issue(gd: dict[str, Any], tenant: str, tier: int, role: str, local: bool, txn: str) -> str:
    """Record a validated context in ``gd`` and return the token for its setting.

    A session context also clears the transaction slot, so that it is the one in
    force for the rest of the transaction too.
    """
    state = _state(gd)
    token = new_token()
    ctx = Context(str(tenant), int(tier), str(role))
    if local:
        state["l"] = (token, ctx, str(txn))
    else:
        state["s"] = (token, ctx)
        state["l"] = None
    return token


def reset(gd: dict[str, Any]) -> None:
    """Forget both slots: every token issued before is dead from now on."""
    state = _state(gd)
    state["s"] = None
    state["l"] = None


def verify(
    gd: dict[str, Any],
    session_token: str | None,
    local_token: str | None,
    txn: str,
) -> Context | None:
    """The context in force, or None when there is no valid one.

    A non-empty transaction-slot setting decides alone: if its token is not the
    live one, there is no context (a forged or stale transaction context never
    falls back to the session's).  Which rows a tier-0 context opens is decided by
    the policies: only members of tenancy_platform get the tier-0 policy.
    """
    state = gd.get(STATE_KEY)
    if state is None:
        return None
    ctx: Context | None = None
    if local_token:
        live = state["l"]
        if live is not None and live[0] == local_token and live[2] == txn:
            ctx = live[1]
    elif session_token:
        live = state["s"]
        if live is not None and live[0] == session_token:
            ctx = live[1]
    return ctx


def is_forgery(gd: dict[str, Any], session_token: str | None, local_token: str | None, txn: str) -> bool:
    """True when a setting holds a token this backend did not issue as live.

    Used only to write the audit line; an empty setting is no forgery.
    """
    state = gd.get(STATE_KEY) or {"s": None, "l": None}
    if local_token:
        live = state["l"]
        return not (live is not None and live[0] == local_token)
    if session_token:
        live = state["s"]
        return not (live is not None and live[0] == session_token)
    return False
