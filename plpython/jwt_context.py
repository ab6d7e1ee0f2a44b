"""The SQL side of ``tenancy.set_tenant_from_jwt`` (SPEC 2a), around the verifier ``identity``.

Two steps, in two functions:

``verify_token`` (``tenancy._jwt_verify``, SECURITY DEFINER: it reads ``tenancy.jwt_issuers``,
    ``tenancy.jwt_revocations`` and ``tenancy.tenants`` past row-level security) verifies the token
    and maps its tenant claim to ``tenants.external_id``.  It answers only the tenant id a token
    that verifies names (or the refusal), never the issuers or any other tenant.

    Nothing it answers is older than the snapshot of the call: every call reads, in one prepared
    statement, the version of the issuer's row (its ``xmin`` and ``ctid``, which every write of the
    row changes), the latest revocation that covers the token's issuer and subject, and the tenant
    that holds the external id.  There is no version counter, no trigger and no time window, so a
    hot standby answers as the primary once it has replayed the write, in every backend.  What is
    kept per backend is only what those reads validate: the parsed JWKS of each issuer, by the
    version of its row (a new version is parsed again), and ``identity.verify``'s verified tokens,
    served while the issuer's configuration is the same, re-checked for expiry and revocation on
    every call.

``set_tenant_from_jwt`` (``tenancy._set_tenant_from_jwt``, the caller's rights) audits refusals
    (the token appears only as a hash prefix), then calls ``tenancy.set_tenant`` for the tenant with
    a pass (``strict.grant_pass``) so that a strict role gets through for that call; set_tenant makes
    every other check (TN002 suspended, TN007 tier 0 without tenancy_platform) and issues the context.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing typing costs a new backend milliseconds: annotations only
    from typing import Any

from . import identity, strict
from .context import audit
from .packages import MissingPackage

PARSED_KEY = "tenancy.jwt.parsed"
CACHE_KEY = "tenancy.jwt.cache"

# One statement per call: the issuer row's version, the revocation that covers (issuer, subject)
# (a revocation of the whole issuer, subject null, and one of that subject: at most one row each),
# and the tenant of the external id. Every name qualified: the plan is kept for the backend.
STATE_SQL = (
    "select (select i.xmin::text operator(pg_catalog.||) ':' operator(pg_catalog.||) i.ctid::text"
    " from tenancy.jwt_issuers i where i.issuer operator(pg_catalog.=) $1) as version,"
    " pg_catalog.date_part('epoch', greatest("
    "(select r.issued_before from tenancy.jwt_revocations r"
    " where r.issuer operator(pg_catalog.=) $1 and r.subject is null),"
    " (select r.issued_before from tenancy.jwt_revocations r"
    " where r.issuer operator(pg_catalog.=) $1 and r.subject operator(pg_catalog.=) $2))) as revoked_before,"
    " (select t.id::text from tenancy.tenants t where t.external_id operator(pg_catalog.=) $3) as tenant"
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


def verify_token(plpy: Any, gd: dict[str, Any], token: Any, now: float) -> list[str]:
    """``tenancy._jwt_verify``: ``[tenant id]``, or ``[sqlstate, message, hint, check]`` (TN008 naming the
    check that failed, TN001, or 58P01 when the cryptography package is missing).

    ``now`` is the wall clock (seconds since the epoch, for exp/nbf)."""
    cache = gd.setdefault(CACHE_KEY, {})
    try:
        iss, sub, cached, claims = identity.peek(token, cache)
        if iss is None:  # no iss: verify says so (and checks the header first)
            identity.verify(token, {}, now)
        if cached is not None:
            external = cached.external_id
        else:
            hit = gd.get(PARSED_KEY, {}).get(iss)
            guess = None
            if hit is not None and isinstance(hit[1], identity.Issuer) and claims is not None:
                guess = identity.claim_value(claims, hit[1].claim_path)
            external = guess if isinstance(guess, str) else None
        plan = _plan(plpy, gd, "tenancy.plan.jwt_state", STATE_SQL, ["text", "text", "text"])
        state = plpy.execute(plan, [iss, sub, external])[0]
        version = state["version"]
        issuers: dict[str, identity.Issuer] = {}
        if version is not None:
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
        verified = identity.verify(token, issuers, now, cache=cache, revoked_before=state["revoked_before"])
    except identity.TokenRefused as exc:
        return _answer(exc.sqlstate, exc.message, exc.hint, exc.check)
    except MissingPackage as exc:
        return _answer(exc.sqlstate, exc.message, exc.hint)
    tenant = state["tenant"]
    if verified.external_id != external:
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
    return [tenant]


def set_tenant_from_jwt(plpy: Any, gd: dict[str, Any], token: Any, local: bool) -> list[str]:
    """``tenancy._set_tenant_from_jwt``: ``[tenant id]`` or ``[sqlstate, message, hint[, detail]]``
    (audited); a TN008's detail is ``check: <name>`` (``identity.CHECKS``)."""
    plan = _plan(plpy, gd, "tenancy.plan.jwt_verify", "select tenancy._jwt_verify($1) as r", ["text"])
    res = plpy.execute(plan, [token])[0]["r"]
    if len(res) > 1:
        sqlstate, message, hint, check = res
        asked = f"set_tenant_from_jwt({token_ref(token)}, local => {'true' if local else 'false'})"
        audit(plpy, gd, "refused_context", asked, f"[{check}] {message}" if check else message, sqlstate)
        # the DETAIL names the check, for applications that act on it (expired: renew the token)
        return [sqlstate, message, hint, f"check: {check}"] if check else [sqlstate, message, hint]
    tenant = res[0]
    plan = _plan(
        plpy, gd, "tenancy.plan.jwt_set", "select tenancy.set_tenant($1, $2) as id", ["uuid", "bool"]
    )
    strict.grant_pass(gd, tenant)
    try:
        plpy.execute(plan, [tenant, local])
    except plpy.SPIError as exc:
        # set_tenant's own refusal (TN002, TN007), already audited by it as set_tenant(id): say
        # that it came from a token too
        data = getattr(exc, "spidata", None) or ()
        sqlstate = getattr(exc, "sqlstate", None) or (unpack_sqlstate(data[0]) if data else "XX000")
        message = exc.args[0] if exc.args else str(exc)
        hint = data[2] if len(data) > 2 and data[2] else ""
        asked = f"set_tenant_from_jwt({token_ref(token)}, local => {'true' if local else 'false'})"
        audit(plpy, gd, "refused_context", asked, f"tenant {tenant}: {message}", sqlstate)
        return [sqlstate, message, hint]
    finally:
        gd.pop(strict.PASS_KEY, None)
    return [tenant]
