"""The SQL side of ``tenancy.set_tenant_from_jwt`` (SPEC 2a), around the verifier ``identity``.

``set_tenant_from_jwt`` (``tenancy._set_tenant_from_jwt``, the caller's rights) reads the token's
    ``iss`` and ``sub`` (from the backend's cache of verified tokens, else from its payload: the
    verifier then checks that those very bytes are signed) and runs one statement,
    ``VERIFY_AND_SET``, with a fresh nonce that it keeps in the backend's state for that statement:

    1. ``tenancy._jwt_verify`` (SECURITY DEFINER, PL/pgSQL) reads, past row-level security and in
       that statement's snapshot, the version of the issuer's row (its ``xmin`` and ``ctid``, which
       every write of the row changes), the latest revocation that covers the issuer and subject, and
       the tenant that holds the external id the token names;
    2. it hands them to ``tenancy._jwt_check`` (PL/Python: ``verify_token``; only the extension's owner
       may execute it), which verifies the token with the issuer's parsed JWKS for that row version
       (parsed again when the version is new), checks expiry and that revocation, and answers the
       tenant (or the refusal); inside this statement only, it grants the strict pass
       (``strict.grant_pass``) for that tenant;
    3. ``tenancy.set_tenant(tenant, local)``, through SQL, when a tenant was answered: it takes the
       pass (a strict role gets through for that one call) and makes every other check (TN002
       suspended, TN007 tier 0 without tenancy_platform).

    The nonce, and any pass left, are removed when the statement ends, whatever happens; the
    verifier refuses to answer outside it.  Refusals are audited here (the token appears
    only as a hash prefix).  One statement, because every PL/Python ``plpy.execute`` runs in a
    subtransaction of its own: the same-token-again call makes one, like set_tenant.

Nothing is older than the snapshot of the call: there is no version counter, no trigger and no time
window, so a hot standby answers as the primary once it has replayed the write, in every backend.
What is kept per backend is only what those reads validate: the parsed JWKS of each issuer, by the
version of its row, and ``identity.verify``'s verified tokens, served while the issuer's configuration
is the same, with expiry and revocation checked on every call.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing typing costs a new backend milliseconds: annotations only
    from typing import Any

from . import identity, strict
from .context import audit
from .packages import MissingPackage

PARSED_KEY = "tenancy.jwt.parsed"
CACHE_KEY = "tenancy.jwt.cache"
NONCE_KEY = "tenancy.jwt.nonce"  # set_tenant_from_jwt's statement is running (its nonce)
TENANT_KEY = "tenancy.jwt.tenant"  # the tenant _jwt_verify answered in it (for the audit line)

# set_tenant_from_jwt's one statement ($1 token, $2 local, $3 nonce, $4 iss, $5 sub, $6 external id):
# the verification (once: OFFSET 0 keeps the subquery, and its volatile call, from being pulled up),
# then set_tenant when a tenant was answered.
VERIFY_AND_SET = (
    "select v.r, case when pg_catalog.cardinality(v.r) operator(pg_catalog.=) 1"
    " then tenancy.set_tenant(v.r[1]::uuid, $2) end as ctx"
    " from (select tenancy._jwt_verify($1, $3, $4, $5, $6) as r offset 0) v"
)

ISSUER_SQL = (
    "select i.xmin::text operator(pg_catalog.||) ':' operator(pg_catalog.||) i.ctid::text as version,"
    " i.jwks::text as jwks, i.tenant_claim, i.audiences,"
    " pg_catalog.date_part('epoch', i.leeway)::float8 as leeway"
    " from tenancy.jwt_issuers i where i.issuer operator(pg_catalog.=) $1"
)
TENANT_SQL = "select t.id::text as id from tenancy.tenants t where t.external_id operator(pg_catalog.=) $1"

TN001_HINT = (
    "Set tenants.external_id of the organization's tenant to the identity provider's organization id."
)
BAD_ROW_HINT = (
    "Register the issuer again with tenancy.add_jwt_issuer, which validates it (the row was written past it)."
)


def _plan(plpy: Any, gd: dict[str, Any], key: str, sql: str, types: list[str] | None = None) -> Any:
    plan = gd.get(key)
    if plan is None:
        plan = gd[key] = plpy.prepare(sql, types or [])
    return plan


def token_ref(token: Any) -> str:
    """What the audit log says of a token: a prefix of its SHA-256, never the token."""
    if not isinstance(token, str):
        return "token null"
    return "token sha256:" + hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:16]


def unpack_sqlstate(code: int) -> str:
    """A SQLSTATE from PostgreSQL's packed form (MAKE_SQLSTATE: 6 bits a character, first lowest), which
    ``plpy.SPIError.spidata`` carries (its ``sqlstate`` attribute is unset for codes without a class,
    such as tenancy's TN codes)."""
    return "".join(chr(((code >> (6 * i)) & 0x3F) + ord("0")) for i in range(5))


def parse_row(row: Any) -> identity.Issuer:
    """The ``Issuer`` of a ``tenancy.jwt_issuers`` row (``JwksError`` when it does not validate)."""
    audiences = row["audiences"]
    return identity.make_issuer(
        row["issuer"],
        row["jwks"],
        row["tenant_claim"],
        list(audiences) if audiences is not None else None,
        float(row["leeway"]),
    )


def issuer_for(
    plpy: Any, gd: dict[str, Any], iss: str, version: str
) -> identity.Issuer | identity.JwksError | None:
    """The parsed issuer ``iss`` at row version ``version``: from the backend's cache, else read and
    parsed (and kept under the version the read saw). None when the row is gone; the JwksError when
    the row does not validate (written by hand past add_jwt_issuer)."""
    parsed = gd.setdefault(PARSED_KEY, {})
    hit = parsed.get(iss)
    if hit is not None and hit[0] == version:
        return hit[1]
    rows = plpy.execute(_plan(plpy, gd, "tenancy.plan.jwt_issuer", ISSUER_SQL, ["text"]), [iss])
    if not len(rows):
        parsed.pop(iss, None)
        return None
    row = dict(rows[0])
    row["issuer"] = iss
    try:
        issuer: identity.Issuer | identity.JwksError = parse_row(row)
    except identity.JwksError as exc:
        issuer = exc
    parsed[iss] = (row["version"], issuer)
    return issuer


def _answer(sqlstate: str, message: str, hint: str, check: str | None = None) -> list[str]:
    return [sqlstate, message, hint, check or ""]


OUTSIDE = _answer(
    "42501",
    "tenancy._jwt_verify answers only inside tenancy.set_tenant_from_jwt",
    "Call tenancy.set_tenant_from_jwt(token, local).",
)


def nonce_ok(gd: dict[str, Any], nonce: Any) -> bool:
    """Whether set_tenant_from_jwt's statement with this nonce is running."""
    live = gd.get(NONCE_KEY)
    return live is not None and live == nonce


def external_guess(gd: dict[str, Any], iss: str | None, cached: Any, claims: Any) -> str | None:
    """The external id the token names, before it is verified: the cached one, or read from the payload
    with the claim path of the issuer's last parsed configuration (the verifier checks it)."""
    if cached is not None:
        return cached.external_id
    hit = gd.get(PARSED_KEY, {}).get(iss)
    if hit is None or not isinstance(hit[1], identity.Issuer) or claims is None:
        return None
    value = identity.claim_value(claims, hit[1].claim_path)
    return value if isinstance(value, str) else None


def verify_token(
    plpy: Any,
    gd: dict[str, Any],
    token: Any,
    now: float,
    nonce: Any,
    iss: str | None,
    external: str | None,
    version: str | None,
    revoked_before: float | None,
    tenant: str | None,
) -> list[str]:
    """``tenancy._jwt_check``: ``[tenant id]``, or ``[sqlstate, message, hint, check]`` (TN008 naming the
    check that failed, TN001, 58P01 when the cryptography package is missing, 42501 outside
    set_tenant_from_jwt's statement).

    ``now`` is the wall clock (seconds since the epoch, for exp/nbf); ``version``, ``revoked_before``
    and ``tenant`` what ``tenancy._jwt_verify`` read in the same statement for the token's issuer
    ``iss`` (as set_tenant_from_jwt read it: the verifier checks it), subject and external id
    ``external``; ``nonce`` that statement's."""
    if not nonce_ok(gd, nonce):
        return OUTSIDE
    cache = gd.setdefault(CACHE_KEY, {})
    try:
        issuers: dict[str, identity.Issuer] = {}
        if iss is not None and version is not None:
            issuer = issuer_for(plpy, gd, iss, version)
            if isinstance(issuer, identity.JwksError):
                return _answer(
                    identity.REFUSED,
                    f"identity token refused: issuer {identity._show(iss)} is registered, but its row does"
                    f" not validate ({issuer.message})",
                    BAD_ROW_HINT,
                    "issuer",
                )
            if issuer is not None:
                issuers[iss] = issuer
        verified = identity.verify(token, issuers, now, cache=cache, revoked_before=revoked_before)
    except identity.TokenRefused as exc:
        return _answer(exc.sqlstate, exc.message, exc.hint, exc.check)
    except MissingPackage as exc:
        return _answer(exc.sqlstate, exc.message, exc.hint)
    if verified.external_id != external:  # the guess was wrong (a first token of a new configuration)
        rows = plpy.execute(
            _plan(plpy, gd, "tenancy.plan.jwt_tenant", TENANT_SQL, ["text"]), [verified.external_id]
        )
        tenant = rows[0]["id"] if len(rows) else None
    if tenant is None:
        return _answer(
            "TN001",
            f"unknown tenant: no tenant has external id {verified.external_id!r} (claim"
            f" {issuers[verified.issuer].tenant_claim!r} of the identity token from issuer"
            f" {verified.issuer!r})",
            TN001_HINT,
        )
    gd[TENANT_KEY] = tenant
    strict.grant_pass(gd, tenant)
    return [tenant]


def _refused(plpy: Any, gd: dict[str, Any], token: Any, local: bool, res: list[str]) -> list[str]:
    sqlstate, message, hint, check = res
    asked = f"set_tenant_from_jwt({token_ref(token)}, local => {'true' if local else 'false'})"
    audit(plpy, gd, "refused_context", asked, f"[{check}] {message}" if check else message, sqlstate)
    # the DETAIL names the check, for applications that act on it (expired: renew the token)
    return [sqlstate, message, hint, f"check: {check}"] if check else [sqlstate, message, hint]


def set_tenant_from_jwt(plpy: Any, gd: dict[str, Any], token: Any, local: bool) -> list[str]:
    """``tenancy._set_tenant_from_jwt``: ``[tenant id]`` or ``[sqlstate, message, hint[, detail]]``
    (audited); a TN008's detail is ``check: <name>`` (``identity.CHECKS``)."""
    try:
        iss, sub, cached, claims = identity.peek(token, gd.setdefault(CACHE_KEY, {}))
    except identity.TokenRefused as exc:
        return _refused(plpy, gd, token, local, _answer(exc.sqlstate, exc.message, exc.hint, exc.check))
    external = external_guess(gd, iss, cached, claims)
    plan = _plan(
        plpy,
        gd,
        "tenancy.plan.jwt_verify_set",
        VERIFY_AND_SET,
        ["text", "bool", "text", "text", "text", "text"],
    )
    nonce = gd[NONCE_KEY] = os.urandom(16).hex()
    try:
        res = plpy.execute(plan, [token, local, nonce, iss, sub, external])[0]["r"]
    except plpy.SPIError as exc:
        # set_tenant's own refusal (TN002, TN007), already audited by it as set_tenant(id): say
        # that it came from a token too
        data = getattr(exc, "spidata", None) or ()
        sqlstate = getattr(exc, "sqlstate", None) or (unpack_sqlstate(data[0]) if data else "XX000")
        message = exc.args[0] if exc.args else str(exc)
        hint = data[2] if len(data) > 2 and data[2] else ""
        asked = f"set_tenant_from_jwt({token_ref(token)}, local => {'true' if local else 'false'})"
        audit(plpy, gd, "refused_context", asked, f"tenant {gd.get(TENANT_KEY)}: {message}", sqlstate)
        return [sqlstate, message, hint]
    finally:
        gd.pop(NONCE_KEY, None)
        gd.pop(TENANT_KEY, None)
        gd.pop(strict.PASS_KEY, None)
    if len(res) > 1:
        return _refused(plpy, gd, token, local, res)
    return res
