"""Tenant context bookkeeping: the core behind tenancy.set_tenant() and the policies.

The context a session works in is kept in the backend's PL/Python global dict (``GD``), which no
SQL role can read or write. The setting ``tenancy.ctx`` carries only an opaque token:
``set_tenant(..., local => false)`` sets it for the session, ``local => true`` with ``is_local``.

Exact transaction semantics (SPEC 2, v0.2). The state mirrors what PostgreSQL does with the
setting: a transaction callback and a subtransaction callback (``RegisterXactCallback`` and
``RegisterSubXactCallback``, reached through ctypes: standard library only) end the local context
when its transaction ends (commit, abort or PREPARE), put back the state a rolled-back
(sub)transaction changed, and so keep exactly one live token per slot, as the setting has one
value. A token is valid only while it is the live one of its slot, so a local token copied into a
later transaction (even one sent in the same simple-Query message, which shares ``now()``) is dead,
and a token that PostgreSQL itself restores on rollback is live again (no false forgery).

Plan shape (the speed of the policies). The generated policies ask ``tenancy._plan_shape()``, an
IMMUTABLE function that the planner folds into a constant, which tier the plan is made for: a
customer plan compares the tenant column with an equality (``= (select ...)``, an index condition
the planner can use in order), a partner plan compares it with ``= any(<its visible set>)``, the
set folded in as a constant (``_plan_visible()``, also IMMUTABLE: no array is built per statement),
a platform plan has no per-row test at all, and every other plan (none yet, or a partner with more
than FOLD_LIMIT tenants) uses ``= any(visible set)`` from the context, which is valid for every
context. The shape follows the live context (its tier, and for a folded partner the partner); when
it changes, every cached plan of the backend is invalidated (``ResetPlanCache``), so no plan made
for one shape runs under another. Each shaped policy also checks at run time that the
verified context fits the shape it was made for, and refuses (an error, never silently empty rows)
a plan that does not (a cursor opened before the change).

Tenants freshness. ``set_tenant`` looks tenants up through a per-backend cache keyed by a version
file that every write to ``tenancy.tenants`` replaces (non-transactional, read with one ``stat``,
no SQL); the file names the writing transaction, and a lookup is cached only when that transaction
is finished in the lookup's own snapshot. A REPEATABLE READ snapshot older than the latest tenants
write is refused (40001) rather than trusted, so a suspension is seen by the very next set_tenant.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections import namedtuple

# Annotations only: a new backend's first set_tenant imports this module, and typing, secrets and
# json would cost it about 30 ms (json is imported by the audit line, on the refusal path).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

STATE_KEY = "tenancy.context"
PLATFORM_ROLE = "tenancy_platform"
CACHE_KEY = "tenancy.tenant_cache"
SETTING = "tenancy.ctx"

UNCHANGED = object()
# Plan shapes: 0 platform (no per-row test), 2 customer (tenant equality from the context), 1 a
# partner whose visible set is folded into the plan as a constant, WIDE a partner with more than
# FOLD_LIMIT tenants in its set (= any(visible set) from the context at run time, the shape that is
# valid under every context, also used before any context). A folded set costs each cached plan
# 16 bytes per tenant and scoped table, and planning time: beyond FOLD_LIMIT the run-time set wins.
WIDE = 3
FOLD_LIMIT = 10_000

# PostgreSQL's XactEvent and SubXactEvent (access/xact.h, stable since 9.x)
XACT_COMMIT, XACT_PARALLEL_COMMIT, XACT_ABORT, XACT_PARALLEL_ABORT, XACT_PREPARE = 0, 1, 2, 3, 4
SUBXACT_START, SUBXACT_COMMIT, SUBXACT_ABORT = 0, 1, 2
_XACT_END = {XACT_COMMIT, XACT_ABORT, XACT_PREPARE}

AUDIT_BURST = 20  # distinct forged tokens logged one by one per window ...
AUDIT_WINDOW = 60.0  # ... of this many seconds; beyond, one summary line per window


# tenant (str), tier (int), role (str), visible: the tenants this context may see, itself (tier 2),
# itself and its children (tier 1); None for tier 0, whose rows come through the policies of
# tenancy_platform
Context = namedtuple("Context", "tenant tier role visible", defaults=(None,))
# tier, status, visible (as above)
TenantInfo = namedtuple("TenantInfo", "tier status visible")


class StalePlan(Exception):
    """A plan made for one tier's shape runs under a context of another tier."""


class State:
    """Per-backend context state: the live token of each slot, as the setting holds it."""

    __slots__ = (
        "audit",
        "callbacks",
        "hooked",
        "l",
        "partner",
        "reset_plans",
        "s",
        "shape",
        "stack",
        "top",
    )

    def __init__(self) -> None:
        self.s: tuple[str, Context] | None = None  # session slot
        self.l: tuple[str, Context] | None = None  # transaction (local) slot
        # (s, l) at the start of each open subtransaction, or UNCHANGED while nothing changed in it
        self.stack: list[Any] = []
        self.top: tuple[Any, Any] | None = None  # (s, l) at the first change in this transaction
        self.shape: int | None = None
        # shape 1: the partner context the plans are made for (its id and visible set are folded in)
        self.partner: Context | None = None
        self.hooked = False
        self.reset_plans: Callable[[], None] = lambda: None
        self.audit: dict[str, Any] = {"window": 0.0, "seen": set(), "suppressed": 0, "total": 0}
        self.callbacks: Any = None


def state(gd: dict[str, Any]) -> State:
    st = gd.get(STATE_KEY)
    if st is None:
        st = gd[STATE_KEY] = State()
    return st


# --- transaction mirroring -------------------------------------------------------------------


def _remember(st: State) -> None:
    """Before a change: what a rollback of this transaction (or subtransaction) puts back."""
    if st.top is None:
        st.top = (st.s, st.l)
    if st.stack and st.stack[-1] is UNCHANGED:
        st.stack[-1] = (st.s, st.l)


def on_xact(st: State, event: int) -> None:
    """Top-level transaction end: the local slot dies; an abort puts the session slot back."""
    if event not in _XACT_END:
        return
    if event == XACT_ABORT and st.top is not None:
        st.s = st.top[0]
    st.l = None
    st.top = None
    st.stack.clear()
    follow_shape(st)


def on_subxact(st: State, event: int) -> None:
    """Savepoints (and PL exception blocks): a rolled-back one puts both slots back."""
    if event == SUBXACT_START:
        st.stack.append(UNCHANGED)  # filled by _remember on the first change inside it
    elif event == SUBXACT_COMMIT:
        if st.stack:
            saved = st.stack.pop()
            if saved is not UNCHANGED and st.stack and st.stack[-1] is UNCHANGED:
                st.stack[-1] = saved  # nothing changed in the parent before: the same state
    elif event == SUBXACT_ABORT and st.stack:
        saved = st.stack.pop()
        if saved is not UNCHANGED:
            st.s, st.l = saved
            follow_shape(st)


def hook(st: State) -> bool:
    """Register the (sub)transaction callbacks once per backend; False where ctypes cannot."""
    if st.hooked:
        return True
    try:
        import ctypes

        lib = ctypes.CDLL(None)
        xact_t = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p)
        sub_t = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p)
        reset = lib.ResetPlanCache
        reset.restype = None
        reset.argtypes = []
        register_xact = lib.RegisterXactCallback
        register_sub = lib.RegisterSubXactCallback
    except (ImportError, OSError, AttributeError):
        return False

    def xact_cb(event: int, _arg: Any) -> None:
        try:
            on_xact(st, event)
        except Exception:
            st.s = st.l = None

    def sub_cb(event: int, _my: int, _parent: int, _arg: Any) -> None:
        try:
            on_subxact(st, event)
        except Exception:
            st.s = st.l = None

    # the ctypes thunks must live as long as the backend: kept on the state (which GD keeps)
    st.callbacks = (xact_t(xact_cb), sub_t(sub_cb))
    register_xact(st.callbacks[0], None)
    register_sub(st.callbacks[1], None)
    st.reset_plans = reset
    st.hooked = True
    return True


# --- tokens, slots, shapes -------------------------------------------------------------------


def new_token(gd: dict[str, Any]) -> str:
    """A token unique in this backend and unguessable: a keyed hash of a counter.

    The key is random per backend and lives only in GD, so no token is derivable from another one.
    blake2b costs about 0.5 microseconds and no system call.
    """
    seq = gd.get("tenancy.token_seq")
    if seq is None:
        seq = gd["tenancy.token_seq"] = [os.urandom(16), 0]
    seq[1] += 1
    return hashlib.blake2b(seq[1].to_bytes(8, "little"), key=seq[0], digest_size=16).hexdigest()


def shape_of(st: State) -> int | None:
    live = st.l or st.s
    return None if live is None else live[1].tier


def follow_shape(st: State) -> None:
    """The plan shape follows the live context; a change invalidates every cached plan.

    The shape is the tier, and for a partner (tier 1) the partner itself: its visible set is folded
    into the plans as a constant, so another partner needs plans of its own. No context keeps the
    shape: every shape gives zero rows without a context.
    """
    live = st.l or st.s
    if live is None:
        return
    ctx = live[1]
    shape, partner = ctx.tier, None
    if ctx.tier == 1:
        if len(ctx.visible or ()) <= FOLD_LIMIT:
            partner = ctx
        else:
            shape = WIDE  # the set comes from the context at run time: one shape for every such partner
    if shape != st.shape or partner != st.partner:
        st.shape = shape
        st.partner = partner
        st.reset_plans()


def issue(
    gd: dict[str, Any],
    tenant: str,
    tier: int,
    role: str,
    local: bool,
    visible: tuple[str, ...] | None = None,
) -> str:
    """Record a validated context in ``gd`` and return the token for its setting.

    A session context also ends the transaction slot, as a session SET overrides a SET LOCAL.
    """
    st = state(gd)
    _remember(st)
    token = new_token(gd)
    ctx = Context(str(tenant), int(tier), str(role), visible)
    if local:
        st.l = (token, ctx)
    else:
        st.s = (token, ctx)
        st.l = None
    follow_shape(st)
    return token


def reset(gd: dict[str, Any]) -> None:
    """Forget both slots: every token issued before is dead (unless a rollback undoes the reset)."""
    st = state(gd)
    hook(st)
    _remember(st)
    st.s = None
    st.l = None


def verify(gd: dict[str, Any], token: str | None) -> Context | None:
    """The context in force, or None: the token must be the live one of a slot."""
    if not token:
        return None
    st = gd.get(STATE_KEY)
    if st is None:
        return None
    live = st.l
    if live is not None and live[0] == token:
        return live[1]
    live = st.s
    if live is not None and live[0] == token:
        return live[1]
    return None


def for_shape(ctx: Context | None, shape: int) -> Context | None:
    """The context a plan of ``shape`` may use: None gives its zero rows; StalePlan refuses.

    Shape 2 (equality on the tenant) serves tier 2, and tier 0 (whose rows come through the
    platform policies); shape 0 (no per-row test) serves tier 0 only.
    """
    if ctx is None or ctx.tier == shape or ctx.tier == 0:
        return ctx
    raise StalePlan(
        f"this statement's plan was made for a tier-{shape} context and cannot run under the tier-{ctx.tier} "
        f"context of tenant {ctx.tenant}"
    )


def for_partner(ctx: Context | None, partner: str | None) -> bool:
    """A partner-shaped plan (``partner``'s set folded in) may run: True for that partner's own
    context, False for none or tier 0 (zero rows from this policy; tier 0 reads through the
    platform policies); StalePlan for any other context."""
    if ctx is None or ctx.tier == 0:
        return False
    if ctx.tier == 1 and partner is not None and ctx.tenant == partner:
        return True
    raise StalePlan(
        f"this statement's plan was made for the context of partner {partner} and cannot run under the "
        f"tier-{ctx.tier} context of tenant {ctx.tenant}"
    )


def plan_partner(gd: dict[str, Any]) -> Context | None:
    """The partner context folded into plans made now (shape 1), or None."""
    st = gd.get(STATE_KEY)
    return None if st is None or st.shape != 1 else st.partner


STALE_HINT = (
    "Run the statement again: it is planned anew. A cursor opened under another context must be reopened."
)


# --- audit -----------------------------------------------------------------------------------


def audit_decision(audit: dict[str, Any], token: str, now: float) -> tuple[bool, int]:
    """Rate limit of forgery lines: (log this one?, suppressed count to summarise now).

    The first AUDIT_BURST distinct forged tokens of a window are logged one by one; later ones
    are counted, and the count is logged as one summary line when the next window begins. No cap
    silences the log.
    """
    summary = 0
    if now - audit["window"] >= AUDIT_WINDOW:
        summary = audit["suppressed"]
        audit["window"] = now
        audit["seen"] = set()
        audit["suppressed"] = 0
    if token in audit["seen"]:
        return False, summary
    audit["total"] += 1
    if len(audit["seen"]) < AUDIT_BURST:
        audit["seen"].add(token)
        return True, summary
    audit["suppressed"] += 1
    return False, summary


def audit_line(gd: dict[str, Any], event: str, asked: str, reason: str, sqlstate: str, **extra: Any) -> str:
    """One TENANCY_AUDIT line built without SQL (usable in parallel mode, in any snapshot)."""
    who = gd.get("tenancy.audit_who") or {}
    body = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "event": event,
        "sqlstate": sqlstate,
        "role": who.get("role"),
        "session_user": who.get("session_user"),
        "pid": os.getpid(),
        "client_addr": who.get("client_addr"),
        "application_name": who.get("application_name"),
        "database": who.get("database"),
        "asked": asked,
        "reason": reason,
    }
    body.update(extra)
    import json

    return "TENANCY_AUDIT " + json.dumps(body)


FORGED_REASON = (
    "the tenancy.ctx setting holds a token that is not the live context of this session (typed by hand, "
    "copied from another session, or replayed after its transaction ended or after reset_tenant); "
    "treated as no context"
)


def current(gd: dict[str, Any], token: str | None, log: Callable[[str], None]) -> Context | None:
    """``verify``, plus a rate-limited audit line per forged token (``log`` writes a server-log line)."""
    ctx = verify(gd, token)
    if ctx is None and token:
        st = state(gd)
        emit, summary = audit_decision(st.audit, token, time.monotonic())
        if summary:
            log(
                audit_line(
                    gd,
                    "forged_context_summary",
                    f"{summary} more forged tokens",
                    FORGED_REASON,
                    "TN007",
                    suppressed=summary,
                )
            )
        if emit:
            log(audit_line(gd, "forged_context", f"{SETTING}={token}", FORGED_REASON, "TN007"))
    return ctx


# --- tenants: version file and cache ---------------------------------------------------------


def version_path(dboid: int) -> str:
    """The version file of one database (backends run in the data directory)."""
    return f"pg_stat_tmp/tenancy_{int(dboid)}.version"


def version_key(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def write_version(path: str, xid: str) -> None:
    """Replace the version file (atomic rename: a new inode, so every reader's key changes)."""
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(str(xid))
    os.replace(tmp, path)


def read_version(path: str) -> str:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip() or "0"
    except OSError:
        return "0"


# info (TenantInfo or None); fresh: the snapshot saw the latest tenants write finished (cacheable);
# stale: the snapshot is older than a finished tenants write (REPEATABLE READ): refuse
Fetched = namedtuple("Fetched", "info fresh stale")


def lookup(
    gd: dict[str, Any], tenant: str, key: Any, fetch: Callable[[str], Fetched]
) -> tuple[TenantInfo | None, bool]:
    """Tenant info through the per-backend cache: (info, stale snapshot?).

    ``key`` identifies the version file's current content (None: unknown, nothing is cached).
    """
    cache = gd.get(CACHE_KEY)
    if cache is None:
        cache = gd[CACHE_KEY] = {"key": None, "map": {}}
    if key is not None and key == cache["key"]:
        hit = cache["map"].get(tenant)
        if hit is not None:
            return hit, False
    got = fetch(tenant)
    if got.stale:
        return None, True
    if got.fresh and key is not None:
        if key != cache["key"]:
            cache["key"] = key
            cache["map"] = {}
        if got.info is not None:
            cache["map"][tenant] = got.info
    return got.info, False


REFUSAL_HINT = "Look the id up with tenancy.tenant_id(path) or tenancy.resolve_domain(host)."


def _plan(plpy: Any, gd: dict[str, Any], key: str, sql: str, types: list[str] | None = None) -> Any:
    plan = gd.get(key)
    if plan is None:
        plan = gd[key] = plpy.prepare(sql, types or [])
    return plan


def who(plpy: Any, gd: dict[str, Any]) -> dict[str, Any]:
    """The audit line's identity fields, read once per backend (and the role on every refusal)."""
    plan = _plan(
        plpy,
        gd,
        "tenancy.plan.who",
        "select current_user::text as role, session_user::text as session_user,"
        " pg_catalog.inet_client_addr()::text as client_addr,"
        " pg_catalog.current_setting('application_name', true) as application_name,"
        " pg_catalog.current_database()::text as database,"
        " (select d.oid::bigint from pg_catalog.pg_database d"
        " where d.datname = pg_catalog.current_database()) as dboid",
    )
    row = dict(plpy.execute(plan)[0])
    gd["tenancy.audit_who"] = row
    return row


def fetch_tenant(plpy: Any, gd: dict[str, Any], tenant: str, xid: str) -> Fetched:
    """One tenant past RLS, through the nonce-guarded _tenant_info, with the snapshot's freshness."""
    nonce = gd["tenancy.info_nonce"] = os.urandom(16).hex()
    plan = _plan(
        plpy,
        gd,
        "tenancy.plan.tenant_info",
        "select i.tier, i.status, i.visible::text[] as visible, i.fresh, i.stale"
        " from tenancy._tenant_info($1, $2, $3) as i",
        ["uuid", "text", "text"],
    )
    try:
        row = plpy.execute(plan, [tenant, nonce, xid])[0]
    finally:
        gd.pop("tenancy.info_nonce", None)
    if row["tier"] is None:
        return Fetched(None, bool(row["fresh"]), bool(row["stale"]))
    visible = tuple(row["visible"]) if row["visible"] is not None else None
    return Fetched(TenantInfo(row["tier"], row["status"], visible), bool(row["fresh"]), bool(row["stale"]))


def nonce_ok(gd: dict[str, Any], nonce: str | None) -> bool:
    live = gd.get("tenancy.info_nonce")
    return live is not None and nonce is not None and hmac.compare_digest(live, nonce)


def set_tenant(plpy: Any, gd: dict[str, Any], tenant: str | None, local: bool) -> list[str]:
    """Validate and issue a context: ``[token]``, or ``[sqlstate, message, hint]`` (audited).

    The one entry point that issues a context for a tenant id: set_tenant, set_tenant_for_domain
    and set_tenant_from_jwt (with the tenant its verified token names) all come here.
    """
    st = state(gd)

    def refuse(sqlstate: str, message: str, hint: str = "") -> list[str]:
        asked = f"set_tenant({tenant}, local => {'true' if local else 'false'})"
        who(plpy, gd)
        plpy.log(audit_line(gd, "refused_context", asked, message, sqlstate))
        return [sqlstate, message, hint]

    if not hook(st):
        return [
            "0A000",
            "tenancy cannot bind a context to its transaction on this server: PostgreSQL's transaction "
            "callbacks are not reachable from PL/Python (ctypes)",
            "",
        ]
    if tenant is None:
        return refuse("TN001", "unknown tenant NULL: set_tenant needs a tenant id", REFUSAL_HINT)
    ident = gd.get("tenancy.audit_who") or who(plpy, gd)
    path = version_path(ident["dboid"])
    key = version_key(path)
    if key is None:
        # no write since this database's files were made: "0", unless a writer got there first
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, b"0")
            os.close(fd)
        except OSError:
            pass
        key = version_key(path)
    info, stale = lookup(gd, tenant, key, lambda t: fetch_tenant(plpy, gd, t, read_version(path)))
    if stale:
        return [
            "40001",
            f"tenant {tenant} cannot be checked in this transaction: tenancy.tenants changed after its "
            "snapshot was taken (REPEATABLE READ or SERIALIZABLE)",
            "Retry the transaction, or call set_tenant before its first query.",
        ]
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
        from . import native

        roles = native.functions(gd)
        if roles is not None and roles.is_member(roles.user(), PLATFORM_ROLE):
            return [issue(gd, tenant, info.tier, roles.current_user(), local, info.visible)]
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
    return [issue(gd, tenant, info.tier, role, local, info.visible)]


def audit(plpy: Any, gd: dict[str, Any], event: str, asked: str, reason: str, sqlstate: str) -> None:
    """One TENANCY_AUDIT server-log line for a refusal decided outside set_tenant (strict roles, JWT)."""
    who(plpy, gd)
    plpy.log(audit_line(gd, event, asked, reason, sqlstate))
