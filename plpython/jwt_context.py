"""The SQL side of ``tenancy.set_tenant_from_jwt`` (SPEC 2a), around the pure verifier ``identity``.

Two steps, in two functions:

``verify_token`` (``tenancy._jwt_verify``, SECURITY DEFINER: it reads ``tenancy.jwt_issuers`` and
    ``tenancy.tenants`` past row-level security) verifies the token against the registered issuers
    and maps its tenant claim to ``tenants.external_id``.  It answers only the tenant id a token
    that verifies names (or the refusal), never the issuers or any other tenant.  The issuer map is
    kept per backend and rebuilt when the issuers' version counter moves (every write bumps it) or
    after ``RELOAD_AFTER`` seconds (the counter is bumped before the writer commits, so a load that
    raced the commit is not trusted for long); parsed issuers are kept by the content of their row,
    so a rebuild does not parse the same JWKS again.  Verified tokens stay in ``identity.verify``'s
    cache until they expire.  External ids are looked up through a cache that the tenants' version
    counter empties, with the same time bound.

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

ISSUERS_KEY = "tenancy.jwt.issuers"
PARSED_KEY = "tenancy.jwt.parsed"
CACHE_KEY = "tenancy.jwt.cache"
TENANTS_KEY = "tenancy.jwt.tenants"
RELOAD_AFTER = 2.0  # seconds

VERSIONS_SQL = (
    "select pg_catalog.pg_sequence_last_value('tenancy._jwt_issuers_version'::regclass) as issuers,"
    " pg_catalog.pg_sequence_last_value('tenancy._tenants_version'::regclass) as tenants"
)
ISSUERS_SQL = (
    "select i.issuer, i.jwks::text as jwks, i.tenant_claim, i.audiences,"
    " pg_catalog.date_part('epoch', i.leeway)::float8 as leeway from tenancy.jwt_issuers i"
)
TENANT_SQL = "select t.id::text as id from tenancy.tenants t where t.external_id operator(pg_catalog.=) $1"

TN001_HINT = (
    "Set tenants.external_id of the organization's tenant to the identity provider's organization id."
)
TN008_HINT = (
    "Register the identity provider with tenancy.add_jwt_issuer(issuer, jwks, tenant_claim, audiences)."
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


def _row_key(row: Any) -> str:
    ident = (row["issuer"], row["jwks"], row["tenant_claim"], row["audiences"], row["leeway"])
    return hashlib.sha256(repr(ident).encode()).hexdigest()


def build_issuers(rows: list[Any], parsed: dict[str, identity.Issuer]) -> dict[str, identity.Issuer]:
    """The ``issuers`` map of ``identity.verify`` from the table's rows; ``parsed`` keeps the parsed
    issuers by the content of their row (pruned to the rows given). A row that does not parse (written
    by hand past add_jwt_issuer) is left out: its tokens are refused as from an unknown issuer."""
    out: dict[str, identity.Issuer] = {}
    keep: dict[str, identity.Issuer] = {}
    for row in rows:
        key = _row_key(row)
        issuer = parsed.get(key)
        if issuer is None:
            try:
                audiences = row["audiences"]
                issuer = identity.make_issuer(
                    row["issuer"],
                    row["jwks"],
                    row["tenant_claim"],
                    list(audiences) if audiences is not None else None,
                    float(row["leeway"]),
                )
            except identity.JwksError:
                continue
        keep[key] = issuer
        out[issuer.issuer] = issuer
    parsed.clear()
    parsed.update(keep)
    return out


def _issuers(plpy: Any, gd: dict[str, Any], version: int, now: float) -> dict[str, identity.Issuer]:
    state = gd.get(ISSUERS_KEY)
    if state is not None and state[0] == version and now - state[1] <= RELOAD_AFTER:
        return state[2]
    rows = list(plpy.execute(_plan(plpy, gd, "tenancy.plan.jwt_issuers", ISSUERS_SQL)))
    issuers = build_issuers(rows, gd.setdefault(PARSED_KEY, {}))
    gd[ISSUERS_KEY] = (version, now, issuers)
    return issuers


def _tenant(plpy: Any, gd: dict[str, Any], external_id: str, version: int, now: float) -> str | None:
    state = gd.get(TENANTS_KEY)
    if state is None or state["version"] != version:
        state = gd[TENANTS_KEY] = {"version": version, "map": {}}
    hit = state["map"].get(external_id)
    if hit is not None and now - hit[0] <= RELOAD_AFTER:
        return hit[1]
    rows = plpy.execute(_plan(plpy, gd, "tenancy.plan.jwt_tenant", TENANT_SQL, ["text"]), [external_id])
    tenant = rows[0]["id"] if len(rows) else None
    if tenant is not None:
        if len(state["map"]) >= identity.DEFAULT_CACHE_SIZE:
            state["map"].clear()
        state["map"][external_id] = (now, tenant)
    return tenant


def _answer(tenant: str | None = None, sqlstate: str | None = None, message: str | None = None,
            hint: str | None = None, check: str | None = None) -> dict[str, Any]:  # fmt: skip
    return {"tenant": tenant, "sqlstate": sqlstate, "message": message, "hint": hint, "check_name": check}


def verify_token(plpy: Any, gd: dict[str, Any], token: Any, now: float, clock: float) -> dict[str, Any]:
    """``tenancy._jwt_verify``: the tenant a token names, or the refusal (TN008 with its check, TN001).

    ``now`` is the wall clock (seconds since the epoch, for exp/nbf); ``clock`` a monotonic clock
    (for the reload bounds)."""
    row = plpy.execute(_plan(plpy, gd, "tenancy.plan.jwt_versions", VERSIONS_SQL))[0]
    issuers = _issuers(plpy, gd, -1 if row["issuers"] is None else int(row["issuers"]), clock)
    try:
        verified = identity.verify(token, issuers, now, cache=gd.setdefault(CACHE_KEY, {}))
    except identity.TokenRefused as exc:
        return _answer(sqlstate=exc.sqlstate, message=exc.message, hint=TN008_HINT, check=exc.check)
    tenants_version = -1 if row["tenants"] is None else int(row["tenants"])
    tenant = _tenant(plpy, gd, verified.external_id, tenants_version, clock)
    if tenant is None:
        issuer = issuers[verified.issuer]
        return _answer(
            sqlstate="TN001",
            message=(
                f"unknown tenant: no tenant has external id {verified.external_id!r} (claim"
                f" {issuer.tenant_claim!r} of the identity token from issuer {verified.issuer!r})"
            ),
            hint=TN001_HINT,
        )
    return _answer(tenant=tenant)


def set_tenant_from_jwt(plpy: Any, gd: dict[str, Any], token: Any, local: bool) -> list[str]:
    """``tenancy._set_tenant_from_jwt``: ``[tenant id]`` or ``[sqlstate, message, hint]`` (audited)."""
    asked = f"set_tenant_from_jwt({token_ref(token)}, local => {'true' if local else 'false'})"
    res = plpy.execute(_plan(plpy, gd, "tenancy.plan.jwt_verify", "select * from tenancy._jwt_verify($1)",
                             ["text"]), [token])[0]  # fmt: skip
    if res["sqlstate"] is not None:
        reason = res["message"] if res["check_name"] is None else f"[{res['check_name']}] {res['message']}"
        audit(plpy, gd, "refused_context", asked, reason, res["sqlstate"])
        return [res["sqlstate"], res["message"], res["hint"] or ""]
    tenant = res["tenant"]
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
        audit(plpy, gd, "refused_context", asked, f"tenant {tenant}: {message}", sqlstate)
        return [sqlstate, message, hint]
    finally:
        gd.pop(strict.PASS_KEY, None)
    return [tenant]
