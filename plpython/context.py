"""Tenant context bookkeeping: the pure core behind tenancy.set_tenant().

The context a session works in is kept in the backend's PL/Python global dict
(``GD``), which no SQL role can read or write.  The setting ``tenancy.ctx``
carries only an opaque token: ``set_tenant(..., local => false)`` sets it for
the session, ``local => true`` with ``is_local``, so that PostgreSQL itself
puts the session's token back when the transaction ends.

A context is valid only when the token found in the setting is the one this
backend issued last for its slot (session or transaction; a transaction token
must also belong to the current transaction).  Tokens need not be secret:
reading one is harmless, because only this backend's ``GD`` can make it valid.
A token typed by hand, copied from another session, or restored after
``reset_tenant`` / a later ``set_tenant`` is therefore no context at all.

Speed matters: the policies verify the context once per statement, so
``verify`` is one dict lookup and two string comparisons, and the set of
visible tenants is fixed when the context is issued.  ``set_tenant`` looks
tenants up through a per-backend cache that a version counter (bumped by every
write to ``tenancy.tenants``) invalidates.

Everything here is pure: the caller passes the state dict, the settings and
the transaction's start time, so the tests drive it without a database.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Any, NamedTuple

STATE_KEY = "tenancy.context"
CACHE_KEY = "tenancy.tenant_cache"
SETTING = "tenancy.ctx"


class Context(NamedTuple):
    tenant: str
    tier: int
    role: str
    # tenants this context may see: itself (tier 2), itself and its children (tier 1);
    # None for tier 0, whose rows come through the policies of tenancy_platform
    visible: tuple[str, ...] | None = None


class TenantInfo(NamedTuple):
    tier: int
    status: str
    visible: tuple[str, ...] | None


def _state(gd: dict[str, Any]) -> dict[str, Any]:
    state = gd.get(STATE_KEY)
    if state is None:
        state = gd[STATE_KEY] = {"s": None, "l": None}
    return state


def new_token(gd: dict[str, Any]) -> str:
    """A token unique in this backend and unguessable: a keyed hash of a counter.

    The key is random per backend and lives only in GD. After RESET ALL / DISCARD ALL (a pooler's
    reset) the session slot is still live in GD, so no token may be derivable from another one
    (a prefix plus a counter would be: the next client could subtract one). blake2b costs about
    0.5 microseconds and no system call (os.urandom per token would cost about 7).
    """
    seq = gd.get("tenancy.token_seq")
    if seq is None:
        seq = gd["tenancy.token_seq"] = [secrets.token_bytes(16), 0]
    seq[1] += 1
    return hashlib.blake2b(seq[1].to_bytes(8, "little"), key=seq[0], digest_size=16).hexdigest()


def issue(
    gd: dict[str, Any],
    tenant: str,
    tier: int,
    role: str,
    local: bool,
    txn: str,
    visible: tuple[str, ...] | None = None,
) -> str:
    """Record a validated context in ``gd`` and return the token for its setting.

    A session context also clears the transaction slot, so that it is the one in
    force for the rest of the transaction too.
    """
    state = _state(gd)
    token = new_token(gd)
    ctx = Context(str(tenant), int(tier), str(role), visible)
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


def verify(gd: dict[str, Any], token: str | None, txn: str) -> Context | None:
    """The context in force, or None when there is no valid one.

    The token must be the live one of the transaction slot (issued in this very
    transaction) or of the session slot.  Which rows a tier-0 context opens is
    decided by the policies: only members of tenancy_platform get the tier-0 policy.
    """
    if not token:
        return None
    state = gd.get(STATE_KEY)
    if state is None:
        return None
    live = state["l"]
    if live is not None and live[0] == token:
        return live[1] if live[2] == txn else None
    live = state["s"]
    if live is not None and live[0] == token:
        return live[1]
    return None


CACHE_TTL = 2.0  # seconds; bounds staleness should a reader race a writer's commit


def lookup(
    gd: dict[str, Any],
    tenant: str,
    version: int | None,
    now: float,
    fetch: Callable[[str], TenantInfo | None],
) -> TenantInfo | None:
    """Tenant info through the per-backend cache.

    ``version`` is the current value of the tenants' version counter; a change
    empties the cache.  A version older than one already seen here is not
    trusted (it bypasses the cache), so a caller cannot pin stale entries.  An
    entry older than CACHE_TTL seconds is fetched again: the counter is bumped
    just before the writer commits, so a reader in between could cache the old
    row under the new version.
    """
    cache = gd.get(CACHE_KEY)
    if cache is None:
        cache = gd[CACHE_KEY] = {"version": None, "max": -1, "map": {}}
    v = -1 if version is None else int(version)
    if v < cache["max"]:
        return fetch(tenant)
    if v != cache["version"]:
        cache["version"] = v
        cache["max"] = v
        cache["map"] = {}
    hit = cache["map"].get(tenant)
    if hit is not None and now - hit[0] <= CACHE_TTL:
        return hit[1]
    info = fetch(tenant)
    if info is not None:
        cache["map"][tenant] = (now, info)
    return info


def current(
    gd: dict[str, Any], token: str | None, txn: str, on_forgery: Callable[[str], None]
) -> Context | None:
    """``verify``, plus one audit call per distinct forged token (``on_forgery(asked)``).

    A forged token is one this backend did not issue as live: typed by hand,
    copied from another session, or replayed after it died.
    """
    ctx = verify(gd, token, txn)
    if ctx is None and token:
        seen = gd.setdefault("tenancy.forgeries", set())
        if token not in seen and len(seen) < 1000:
            seen.add(token)
            on_forgery(f"{SETTING}={token}")
    return ctx


REFUSAL_HINT = "Look the id up with tenancy.tenant_id(path) or tenancy.resolve_domain(host)."


def _plan(plpy: Any, gd: dict[str, Any], key: str, sql: str, types: list[str] | None = None) -> Any:
    plan = gd.get(key)
    if plan is None:
        plan = gd[key] = plpy.prepare(sql, types or [])
    return plan


def audit(plpy: Any, gd: dict[str, Any], event: str, asked: str, reason: str, sqlstate: str) -> None:
    """One TENANCY_AUDIT server-log line (tenancy._audit adds time, role, pid, client address)."""
    plan = _plan(plpy, gd, "tenancy.plan.audit", "select tenancy._audit($1, $2, $3, $4)", ["text"] * 4)
    plpy.execute(plan, [event, asked, reason, sqlstate])


def fetch_tenant(plpy: Any, gd: dict[str, Any], tenant: str) -> TenantInfo | None:
    plan = _plan(
        plpy,
        gd,
        "tenancy.plan.tenant_info",
        "select i.tier, i.status, i.visible::text[] as visible from tenancy._tenant_info($1) as i",
        ["uuid"],
    )
    row = plpy.execute(plan, [tenant])[0]
    if row["tier"] is None:
        return None
    visible = tuple(row["visible"]) if row["visible"] is not None else None
    return TenantInfo(row["tier"], row["status"], visible)


def set_tenant(
    plpy: Any, gd: dict[str, Any], tenant: str | None, local: bool, version: int | None, txn: str, now: float
) -> list[str]:
    """Validate and issue a context: ``[token]``, or ``[sqlstate, message, hint]`` (audited)."""

    def refuse(sqlstate: str, message: str, hint: str = "") -> list[str]:
        asked = f"set_tenant({tenant}, local => {'true' if local else 'false'})"
        audit(plpy, gd, "refused_context", asked, message, sqlstate)
        return [sqlstate, message, hint]

    if tenant is None:
        return refuse("TN001", "unknown tenant NULL: set_tenant needs a tenant id", REFUSAL_HINT)
    info = lookup(gd, tenant, version, now, lambda t: fetch_tenant(plpy, gd, t))
    if info is None:
        return refuse("TN001", f"unknown tenant {tenant}: no tenant has this id", REFUSAL_HINT)
    if info.status != "active":
        return refuse(
            "TN002",
            f"tenant {tenant} is suspended: no context can be set for it",
            "A suspended tenant still resolves (resolve_domain) so a suspension page can be shown; "
            "set its status to 'active' in tenancy.tenants to let it in again.",
        )
    role = ""
    if info.tier == 0:
        plan = _plan(
            plpy,
            gd,
            "tenancy.plan.platform",
            "select pg_catalog.pg_has_role(current_user, 'tenancy_platform', 'MEMBER') as ok,"
            " current_user::text as role",
        )
        row = plpy.execute(plan)[0]
        role = row["role"]
        if not row["ok"]:
            return refuse(
                "TN007",
                f"role {role} may not take the tier-0 (platform) context of tenant {tenant}: "
                "it is not a member of tenancy_platform",
                "A platform login is granted with tenancy.grant_platform(role).",
            )
    return [issue(gd, tenant, info.tier, role, local, txn, info.visible)]


def forged(plpy: Any, gd: dict[str, Any]) -> Callable[[str], None]:
    """The on_forgery callback of ``current`` that writes the audit line."""

    def log(asked: str) -> None:
        audit(
            plpy,
            gd,
            "forged_context",
            asked,
            "the tenancy.ctx setting holds a token that set_tenant did not issue as live in this session "
            "(typed by hand, copied from another session, or replayed); treated as no context",
            "TN007",
        )

    return log
