"""Signed tenant contexts for Citus: what a worker can verify on its own.

On a Citus cluster the shards enforce row-level security in worker backends, where the
coordinator's context (its PL/Python state) does not exist.  ``set_tenant(..., local => true)``
on the coordinator therefore also puts a *signed* copy of the context into the setting
``tenancy.sctx`` with ``SET LOCAL``, which Citus sends to every worker connection of the
transaction (``citus.propagate_set_commands = 'local'``).  The value is::

    c1.<tenant>.<tier>.<visible>.<issued>.<expires>.<gpid>.<mac>

``tenant`` and each visible id are uuids without hyphens, ``visible`` is ``*`` for tier 0 (its
rows come through the policies of tenancy_platform) or the ids joined by ``~``; ``issued`` and
``expires`` are milliseconds since the epoch, ``gpid`` is the coordinator backend's Citus global
pid, and ``mac`` is HMAC-SHA256 (first 128 bits, hex) over everything before it, with the
cluster key that only the extension's owner can read (``tenancy._cluster_key``, the same on every
node).

A worker accepts a value only when the MAC is right, it has not expired, it was issued for the
coordinator session this worker backend serves (Citus names the gpid in its connections'
application_name), and it was not seen before in another transaction of this backend.  The issuing
backend itself accepts it only within the transaction that signed it.  Anything else is no
context, and audited once.

Everything here is pure: the caller passes the state dict, the clock, the key and the Citus
identifiers, so the tests drive it without a database.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any, NamedTuple

SETTING = "tenancy.sctx"
PREFIX = "c1"
ISSUED_KEY = "tenancy.citus.issued"
LAST_KEY = "tenancy.citus.last"
BOUND_KEY = "tenancy.citus.bound"
REFUSED_KEY = "tenancy.citus.refused"
KEY_KEY = "tenancy.citus.key"
OWN_GPID_KEY = "tenancy.citus.own_gpid"
MAX_BOUND = 10000
MAX_ISSUED = 256
SKEW_MS = 60_000  # clocks of coordinator and workers may differ by this much


class Signed(NamedTuple):
    tenant: str
    tier: int
    # None for tier 0; the ids a tier-1 or tier-2 context may see otherwise
    visible: tuple[str, ...] | None
    issued: int
    expires: int
    gpid: int


class Refused(Exception):
    """A value that is not a context here; the message says why (for the audit log)."""


def _compact(uuid: str) -> str:
    return str(uuid).replace("-", "").lower()


def _expand(hex32: str) -> str:
    if len(hex32) != 32 or any(c not in "0123456789abcdef" for c in hex32):
        raise Refused("malformed tenant id")
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"


def mac(key: bytes, payload: str) -> str:
    return hmac.new(key, payload.encode("ascii"), hashlib.sha256).hexdigest()[:32]


def sign(
    key: bytes,
    tenant: str,
    tier: int,
    visible: list[str] | tuple[str, ...] | None,
    now_ms: int,
    ttl_s: int,
    gpid: int,
) -> str:
    """The signed value of a validated context (the caller validated it: set_tenant did)."""
    vis = "*" if tier == 0 else "~".join(_compact(v) for v in (visible or ()))
    payload = ".".join(
        [
            PREFIX,
            _compact(tenant),
            str(int(tier)),
            vis,
            str(int(now_ms)),
            str(int(now_ms) + 1000 * int(ttl_s)),
            str(int(gpid)),
        ]
    )
    return payload + "." + mac(key, payload)


def parse(value: str) -> tuple[Signed, str, str]:
    """(the context, the signed payload, its mac); Refused when the value is not well formed."""
    parts = value.split(".")
    if len(parts) != 8 or parts[0] != PREFIX:
        raise Refused("malformed signed context")
    _, tenant, tier, vis, issued, expires, gpid, tag = parts
    if tier not in ("0", "1", "2") or not (issued.isdigit() and expires.isdigit() and gpid.isdigit()):
        raise Refused("malformed signed context")
    if tier == "0":
        if vis != "*":
            raise Refused("malformed signed context")
        visible = None
    else:
        visible = tuple(_expand(v) for v in vis.split("~")) if vis else ()
    signed = Signed(_expand(tenant), int(tier), visible, int(issued), int(expires), int(gpid))
    return signed, value[: -len(tag) - 1], tag


def check(
    key: bytes | None,
    value: str,
    now_ms: int,
    gpid: int | None,
    reload_key: Callable[[], bytes | None] | None = None,
) -> Signed:
    """Verify one value against the key, the clock and this backend's coordinator session."""
    signed, payload, tag = parse(value)
    if key is None:
        raise Refused("this node has no cluster key (run tenancy.citus_distribute_key() on the coordinator)")
    if not hmac.compare_digest(mac(key, payload), tag):
        fresh = reload_key() if reload_key is not None else None
        if fresh is None or fresh == key or not hmac.compare_digest(mac(fresh, payload), tag):
            raise Refused("bad signature")
    if now_ms > signed.expires:
        raise Refused("expired")
    if now_ms + SKEW_MS < signed.issued:
        raise Refused("issued in the future")
    if gpid is None or gpid != signed.gpid:
        raise Refused(f"signed for the coordinator session {signed.gpid}, used in session {gpid}")
    return signed


def bind(gd: dict[str, Any], value: str, txn: object | None) -> None:
    """First use of a value in a transaction of this backend binds it there; another one is a replay.

    Citus runs each coordinator transaction in one transaction per worker connection, so on a worker
    ``txn`` is the worker transaction's start (``now()``): a later coordinator transaction that
    sends the same value reaches this backend in a new transaction and is refused. None: no binding.
    """
    if txn is None:
        return
    bound = gd.get(BOUND_KEY)
    if bound is None:
        bound = gd[BOUND_KEY] = {}
    prev = bound.get(value)
    if prev is None:
        if len(bound) >= MAX_BOUND:
            bound.clear()
        bound[value] = txn
    elif prev != txn:
        raise Refused("replayed: first used in an earlier transaction of this backend")


def issued(gd: dict[str, Any], value: str, txn_now: float, signed: Signed) -> None:
    """Remember what this backend signed in this transaction (its now()), and its own global pid.

    Every value of the transaction is kept, not only the latest: ``ROLLBACK TO SAVEPOINT`` puts an
    earlier one back into the setting (on the workers too, where Citus mirrors the savepoint).
    """
    mine = gd.get(ISSUED_KEY)
    if mine is None or mine[0] != txn_now or len(mine[1]) >= MAX_ISSUED:
        mine = gd[ISSUED_KEY] = (txn_now, {})
    mine[1][value] = signed
    gd[OWN_GPID_KEY] = signed.gpid
    gd.pop(LAST_KEY, None)


def forget(gd: dict[str, Any]) -> None:
    gd.pop(ISSUED_KEY, None)
    gd.pop(LAST_KEY, None)


def current(
    gd: dict[str, Any],
    value: str | None,
    txn_now: float,
    env: Callable[[], tuple[bytes | None, int | None, object | None]],
    reload_key: Callable[[], bytes | None],
    on_refused: Callable[[str, str], None],
) -> Signed | None:
    """The signed context in force, or None.  Verified once per (value, transaction) per backend.

    ``txn_now`` is the backend's transaction start (epoch seconds), ``env()`` gives (key, gpid,
    the transaction to bind to) and is called only on a cache miss; ``on_refused(value, reason)``
    is called once per distinct refused value.
    """
    if not value:
        return None
    last = gd.get(LAST_KEY)
    if last is not None and last[0] == value and last[1] == txn_now:
        return last[2]
    result: Signed | None
    mine = gd.get(ISSUED_KEY)
    try:
        if mine is not None and value in mine[1]:
            if mine[0] != txn_now:
                raise Refused("replayed in a later transaction of the session that signed it")
            result = mine[1][value]
        else:
            key, gpid, txn = env()
            result = check(key, value, int(txn_now * 1000), gpid, reload_key)
            # a value of this very session that it no longer holds (an earlier transaction, or one
            # reset_tenant forgot), presented with an application_name that names this session
            if result.gpid == gd.get(OWN_GPID_KEY):
                raise Refused("replayed: signed by this session for a context it no longer holds")
            bind(gd, value, txn)
    except Refused as refusal:
        result = None
        seen = gd.setdefault(REFUSED_KEY, set())
        if value not in seen and len(seen) < 1000:
            seen.add(value)
            on_refused(value, str(refusal))
    gd[LAST_KEY] = (value, txn_now, result)
    return result


def _load_key(plpy: Any, gd: dict[str, Any], force: bool = False) -> tuple[bytes | None, int]:
    cached = gd.get(KEY_KEY)
    if cached is None or force:
        plpy.execute("select tenancy._citus_load_key()")
        cached = gd[KEY_KEY]
    return cached[0], cached[1]


def gpid_of(application_name: str | None) -> int | None:
    """The coordinator session's global pid that Citus puts in its connections' application_name."""
    prefix = "citus_internal gpid="
    if not application_name or not application_name.startswith(prefix):
        return None
    digits = application_name[len(prefix) :].split(" ", 1)[0]
    return int(digits) if digits.isdigit() else None


def _reload(plpy: Any, gd: dict[str, Any]) -> bytes | None:
    """The key again after a MAC failure (a rotation), at most every 5 seconds."""
    import time

    cached = gd.get(KEY_KEY)
    if cached is not None and time.monotonic() - cached[2] < 5.0:
        return None
    return _load_key(plpy, gd, force=True)[0]


def _audit(plpy: Any, gd: dict[str, Any], value: str, reason: str) -> None:
    plan = gd.get("tenancy.plan.citus_audit")
    if plan is None:
        plan = gd["tenancy.plan.citus_audit"] = plpy.prepare(
            "select tenancy._audit($1, $2, $3, $4)", ["text", "text", "text", "text"]
        )
    plpy.execute(
        plan,
        [
            "forged_context",
            f"{SETTING}={value[:120]}",
            f"signed context refused: {reason}; treated as no context",
            "TN007",
        ],
    )


def in_force(
    plpy: Any, gd: dict[str, Any], value: str | None, txn_now: float, application_name: str | None
) -> Signed | None:
    """``current`` with the database behind it: no SPI but the key's first load (a hit is a tuple compare)."""
    if not value:
        return None
    last = gd.get(LAST_KEY)
    if last is not None and last[0] == value and last[1] == txn_now:
        return last[2]
    return current(
        gd,
        value,
        txn_now,
        lambda: (_load_key(plpy, gd)[0], gpid_of(application_name), txn_now),
        lambda: _reload(plpy, gd),
        lambda v, r: _audit(plpy, gd, v, r),
    )
