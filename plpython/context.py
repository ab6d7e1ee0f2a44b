"""Tenant contexts: tokens in the setting ``tenancy.ctx``, checked against this backend's registry.

The design and what it gives up: docs/decisions/0002-context-core-v3.md. In short:

- ``set_tenant`` (PL/pgSQL) validates the tenant with SQL, in the caller's snapshot, so a hot
  standby or a logical subscriber answers from what it has replayed; nothing is cached across calls.
- A validated context is *minted* here: a random token (a keyed hash of a counter, 128 bits) is
  recorded in the backend's registry with the context it stands for, and set_tenant puts the token
  into ``tenancy.ctx`` with ``set_config`` (``is_local`` for a transaction context). PostgreSQL's own
  setting machinery then does everything transactional: a rollback, a ``ROLLBACK TO SAVEPOINT`` or
  the end of a transaction puts back the value that was in force, exactly as for ``SET LOCAL``.
- The verifiers (called once per statement by the policies) look the setting's value up in the
  registry: a value that this backend never minted is no context (and audited as forged). A
  transaction context is bound to the transaction that took it: its entry records that
  transaction's start time (``now()``), and the verifiers are given the current one. Two
  transactions share a start time only when they begin in the same simple-Query message
  (docs/security.md, "Context rules").
- No SQL runs in a verifier (they may run in parallel mode, where PL/Python's SPI cannot), and no
  module is imported there: the verifier bodies read the registry from ``GD`` directly.

Everything here is pure: the tests drive it without a database.
"""

from __future__ import annotations

import hashlib
import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: a new backend's first set_tenant imports this module
    from typing import Any

# T.gd keys (the namespace is per extension version, see scripts/build_sql.py)
REGISTRY_KEY = "tenancy.ctx"
SEQ_KEY = "tenancy.ctx.seq"
SESSION_KEEP = 256  # session tokens kept restorable (a rollback may put an older one back)

# registry entry: (tenant, tier, visible, local, xact)
#   tenant  str, the tenant id
#   tier    int 0, 1 or 2
#   visible str, the array literal of the ids the context may see ('{}' for tier 0, whose rows come
#           through the policies of tenancy_platform)
#   local   bool, a transaction context
#   xact    float, the start of the transaction that took it (epoch seconds), for a local one
TENANT, TIER, VISIBLE, LOCAL, XACT = range(5)


class Registry:
    """The contexts this backend minted, by token."""

    __slots__ = ("entries", "local_xact", "locals", "session")

    def __init__(self) -> None:
        self.entries: dict[str, tuple[Any, ...]] = {}
        self.session: list[str] = []  # session tokens, oldest first
        self.locals: list[str] = []  # transaction tokens of the transaction that started at local_xact
        self.local_xact: float | None = None


def registry(gd: dict[str, Any]) -> Registry:
    reg = gd.get(REGISTRY_KEY)
    if reg is None:
        reg = gd[REGISTRY_KEY] = Registry()
    return reg


def new_token(gd: dict[str, Any]) -> str:
    """A token unique in this backend and unguessable: a keyed hash of a counter.

    The key is random per backend and lives only in GD, so no token can be derived from another.
    """
    seq = gd.get(SEQ_KEY)
    if seq is None:
        seq = gd[SEQ_KEY] = [os.urandom(16), 0]
    seq[1] += 1
    return hashlib.blake2b(seq[1].to_bytes(8, "little"), key=seq[0], digest_size=16).hexdigest()


def visible_literal(tier: int, tenant: str, visible: Any) -> str:
    """The array literal a verifier hands the policies: tier 2 itself, tier 1 its set, tier 0 none."""
    if tier == 2:
        return "{" + str(tenant) + "}"
    if tier == 1:
        if isinstance(visible, str):
            return visible
        return "{" + ",".join(str(v) for v in (visible or ())) + "}"
    return "{}"


def mint(
    gd: dict[str, Any],
    tenant: str,
    tier: int,
    visible: Any,
    local: bool,
    xact: float,
) -> str:
    """Record a validated context and return its token (set_tenant puts it into tenancy.ctx).

    Transaction tokens of other transactions are dead (their transaction has ended, or they could
    not be in force): they are dropped. Session tokens stay restorable (a rollback or a ROLLBACK TO
    SAVEPOINT may put one back) up to SESSION_KEEP of them, the oldest dropped first: a dropped
    token that comes back is no context, which fails closed.
    """
    reg = registry(gd)
    entries = reg.entries
    xact = float(xact)
    if reg.local_xact != xact:
        for tok in reg.locals:
            entries.pop(tok, None)
        reg.locals = []
        reg.local_xact = xact
    token = new_token(gd)
    entries[token] = (str(tenant), int(tier), visible_literal(int(tier), tenant, visible), bool(local), xact)
    if local:
        reg.locals.append(token)
    else:
        reg.session.append(token)
        while len(reg.session) > SESSION_KEEP:
            entries.pop(reg.session.pop(0), None)
    return token


def forget(gd: dict[str, Any]) -> None:
    """reset_tenant: every context minted before is dead (not restored by a rollback: like DISCARD)."""
    gd[REGISTRY_KEY] = Registry()


def lookup(gd: dict[str, Any] | None, token: str | None, xact: float) -> tuple[Any, ...] | None:
    """The entry of the context in force, or None (no context, or a value this backend did not mint
    for this transaction)."""
    if not token or gd is None:
        return None
    reg = gd.get(REGISTRY_KEY)
    if reg is None:
        return None
    entry = reg.entries.get(token)
    if entry is None or (entry[LOCAL] and entry[XACT] != xact):
        return None
    return entry


def forged(gd: dict[str, Any] | None, token: str | None, xact: float) -> bool:
    """A value in tenancy.ctx that is not a context in force here: typed by hand, copied from
    another session, or a transaction context replayed in a later transaction."""
    return bool(token) and lookup(gd, token, xact) is None


FORGED_REASON = (
    "the tenancy.ctx setting holds a value that is not a context in force in this session (typed by hand, "
    "copied from another session, or a transaction context replayed after its transaction ended); "
    "treated as no context"
)


def audit(plpy: Any, gd: dict[str, Any], event: str, asked: str, reason: str, sqlstate: str) -> None:
    """One TENANCY_AUDIT server-log line (tenancy._audit: role, session user, database, client address)."""
    plan = gd.get("tenancy.plan.audit")
    if plan is None:
        plan = gd["tenancy.plan.audit"] = plpy.prepare(
            "select tenancy._audit($1, $2, $3, $4)", ["text", "text", "text", "text"]
        )
    plpy.execute(plan, [event, asked, reason, sqlstate])
