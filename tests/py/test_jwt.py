"""set_tenant_from_jwt, the JWT issuers and strict roles (SPEC 2a), as real application roles over real
connections, with tokens signed outside the server (tests/py/jwt_factory.py, the cryptography package)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt_factory as jf
import psycopg
import pytest
from psycopg.types.json import Jsonb
from standby import Standby
from tenancy_testlib import Tree, audit_lines, connect

RSA_ISS = "https://clerk.rsa.example.com"
EC_ISS = "https://clerk.ec.example.com"  # Clerk v2 shaped: the organization in o.id
AUD_ISS = "https://auth.aud.example.com"
RSA = jf.rsa_signer("rsa-1")
EC = jf.ec_signer("ec-1")
AUD = jf.rsa_signer("aud-1", seed=1)
OTHER_RSA = jf.rsa_signer("rsa-1", seed=2)  # same kid, another key: a forger's


@pytest.fixture(scope="module")
def orgs(tenancy_db: str, tree: Tree) -> Iterator[dict[str, str]]:
    """External ids of the tree's tenants, and three registered issuers."""
    suffix = secrets.token_hex(3)
    ids = {
        "acme": f"org_acme_{suffix}",
        "globex": f"org_globex_{suffix}",
        "root": f"org_root_{suffix}",
        "dormant": f"org_dormant_{suffix}",
        "initech": f"org_initech_{suffix}",
    }
    tenant = {"acme": tree.acme, "globex": tree.globex, "root": tree.root, "dormant": tree.suspended,
              "initech": tree.initech}  # fmt: skip
    with connect(tenancy_db) as conn:
        for name, ext in ids.items():
            conn.execute("update tenancy.tenants set external_id = %s where id = %s", [ext, tenant[name]])
        conn.execute(
            "insert into tenancy.domain_mappings (domain, tenant_id) values (%s, %s)",
            [f"jwt-{suffix}.example.com", tree.acme],
        )
        conn.execute("select tenancy.add_jwt_issuer(%s, %s)", [RSA_ISS, Jsonb(jf.jwks([RSA]))])
        conn.execute("select tenancy.add_jwt_issuer(%s, %s, 'o.id')", [EC_ISS, Jsonb(jf.jwks([EC]))])
        conn.execute(
            "select tenancy.add_jwt_issuer(%s, %s, audiences => array['https://app.example.com'],"
            " leeway => '5 seconds')",
            [AUD_ISS, Jsonb(jf.jwks([AUD]))],
        )
    yield {**ids, "domain": f"jwt-{suffix}.example.com"}
    with connect(tenancy_db) as conn:
        conn.execute("delete from tenancy.domain_mappings where domain = %s", [f"jwt-{suffix}.example.com"])
        conn.execute("delete from tenancy.jwt_issuers")
        conn.execute(
            "update tenancy.tenants set external_id = null where external_id = any(%s)", [list(ids.values())]
        )


def _role(tenancy_db: str, grant: str) -> Iterator[str]:
    role = f"tenancy_jwt_{secrets.token_hex(3)}"
    password = secrets.token_hex(8)
    with connect(tenancy_db) as conn:
        conn.execute(f"create role {role} login password '{password}'")
        conn.execute(grant.format(role=role))
    yield f"{tenancy_db} user={role} password={password}"
    with connect(tenancy_db) as conn:
        conn.execute(f"drop owned by {role}")
        conn.execute(f"drop role {role}")


@pytest.fixture(scope="module")
def strict_dsn(tenancy_db: str, tree: Tree) -> Iterator[str]:
    yield from _role(tenancy_db, "select tenancy.grant_app('{role}', strict => true)")


@pytest.fixture(scope="module")
def strict_platform_dsn(tenancy_db: str, tree: Tree) -> Iterator[str]:
    yield from _role(
        tenancy_db,
        "select tenancy.grant_platform('{role}'); select tenancy.grant_app('{role}', strict => true)",
    )


def claims(org: str, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    out: dict[str, Any] = {"iss": RSA_ISS, "sub": "user_1", "iat": now - 5, "nbf": now - 5, "exp": now + 120,
                           "org_id": org}  # fmt: skip
    out.update(over)
    return {k: v for k, v in out.items() if v is not None}


def clerk_v2(org: str, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    out: dict[str, Any] = {"v": 2, "iss": EC_ISS, "sub": "user_2", "sid": "sess_1", "azp": "https://app.example.com",
                           "iat": now - 5, "nbf": now - 5, "exp": now + 120,
                           "o": {"id": org, "rol": "admin", "slg": "acme"}}  # fmt: skip
    out.update(over)
    return out


def jwt_state(dsn: str, token: str, local: bool = False) -> tuple[Any, ...]:
    with connect(dsn) as conn:
        conn.execute("select tenancy.set_tenant_from_jwt(%s, %s)", [token, local])
        row = conn.execute("select tenancy.current_tenant()::text, tenancy.current_tier()").fetchone()
        assert row is not None
        return tuple(row)


def refused(dsn: str, token: Any, sql: str = "select tenancy.set_tenant_from_jwt(%s)") -> psycopg.Error:
    with connect(dsn) as conn:
        with pytest.raises(psycopg.Error) as info:
            conn.execute(sql, [token])
        assert conn.execute("select tenancy.current_tenant()").fetchone() == (None,)
    return info.value


# a few words of the hint each check's TN008 carries (plpython/identity.py HINTS)
HINT_WORDS = {
    "malformed": "compact JWS",
    "alg": "RS256 and ES256",
    "typ": "JWT or at+jwt",
    "crit": "crit",
    "issuer": "tenancy.add_jwt_issuer(issuer",
    "kid": "rotated its keys",
    "signature": "altered",
    "claims": "exp (required)",
    "expired": "fresh token",
    "not_yet_valid": "clocks",
    "audience": "another application",
    "tenant_claim": "names no organization",
    "revoked": "tenancy.revoke_jwt",
}


def tn008(dsn: str, token: Any, words: str, check: str | None = None) -> psycopg.Error:
    """The TN008 refusal of ``token``: its message has ``words``; with ``check``, its hint is that check's
    and its DETAIL names it."""
    err = refused(dsn, token)
    assert err.sqlstate == "TN008", err
    message = err.diag.message_primary or ""
    assert message.startswith("identity token refused"), message
    assert words in message, message
    if isinstance(token, str) and len(token) > 20:
        assert token not in message
    hint = err.diag.message_hint or ""
    assert hint, f"a TN008 without a hint: {message}"
    if check is not None:
        assert HINT_WORDS[check] in hint, (check, hint)
        assert err.diag.message_detail == f"check: {check}", err.diag.message_detail
    return err


# ------------------------------------------------------------------------------------------------
# the happy paths


def test_rs256_token_takes_its_organizations_context(app_dsn: str, orgs: dict[str, str], tree: Tree) -> None:
    assert jwt_state(app_dsn, RSA.sign(claims(orgs["acme"]))) == (tree.acme, 2)
    assert jwt_state(app_dsn, RSA.sign(claims(orgs["globex"]))) == (tree.globex, 2)


def test_clerk_v2_token_with_o_id(app_dsn: str, orgs: dict[str, str], tree: Tree) -> None:
    assert jwt_state(app_dsn, EC.sign(clerk_v2(orgs["initech"]))) == (tree.initech, 2)


def test_returns_the_tenant_and_isolates(app_dsn: str, orgs: dict[str, str], tree: Tree) -> None:
    with connect(app_dsn) as conn:
        row = conn.execute(
            "select tenancy.set_tenant_from_jwt(%s)::text", [RSA.sign(claims(orgs["acme"]))]
        ).fetchone()
        assert row == (tree.acme,)
        ids = {r[0] for r in conn.execute("select id::text from tenancy.tenants")}
        assert ids == {tree.acme}


def test_local_context_ends_with_the_transaction(app_dsn: str, orgs: dict[str, str], tree: Tree) -> None:
    with connect(app_dsn) as conn:
        with conn.transaction():
            conn.execute("select tenancy.set_tenant_from_jwt(%s, true)", [RSA.sign(claims(orgs["acme"]))])
            assert conn.execute("select tenancy.current_tenant()::text").fetchone() == (tree.acme,)
        assert conn.execute("select tenancy.current_tenant()").fetchone() == (None,)


def test_audience_and_azp(app_dsn: str, orgs: dict[str, str], tree: Tree) -> None:
    ok = claims(orgs["acme"], iss=AUD_ISS, aud=["https://other", "https://app.example.com"])
    assert jwt_state(app_dsn, AUD.sign(ok))[0] == tree.acme
    azp = claims(orgs["acme"], iss=AUD_ISS, azp="https://app.example.com")
    assert jwt_state(app_dsn, AUD.sign(azp))[0] == tree.acme


# ------------------------------------------------------------------------------------------------
# the vectors of issue 17: every one TN008 naming the failed check, no context


def test_expired(app_dsn: str, orgs: dict[str, str]) -> None:
    now = int(time.time())
    tn008(
        app_dsn,
        RSA.sign(claims(orgs["acme"], exp=now - 61, iat=now - 300, nbf=now - 300)),
        "expired",
        "expired",
    )


def test_expired_within_the_leeway_is_accepted(app_dsn: str, orgs: dict[str, str], tree: Tree) -> None:
    now = int(time.time())
    token = RSA.sign(claims(orgs["acme"], exp=now - 30, iat=now - 300, nbf=now - 300))
    assert jwt_state(app_dsn, token)[0] == tree.acme


def test_not_yet_valid(app_dsn: str, orgs: dict[str, str]) -> None:
    now = int(time.time())
    tn008(
        app_dsn,
        RSA.sign(claims(orgs["acme"], nbf=now + 600, iat=None)),
        "not valid for another",
        "not_yet_valid",
    )


def test_wrong_issuer(app_dsn: str, orgs: dict[str, str]) -> None:
    tn008(
        app_dsn, RSA.sign(claims(orgs["acme"], iss="https://evil.example.com")), "is not registered", "issuer"
    )
    tn008(app_dsn, RSA.sign(claims(orgs["acme"], iss=RSA_ISS + "/")), "is not registered")


def test_wrong_audience(app_dsn: str, orgs: dict[str, str]) -> None:
    tn008(
        app_dsn,
        AUD.sign(claims(orgs["acme"], iss=AUD_ISS, aud="https://evil.example.com")),
        "audience",
        "audience",
    )
    tn008(app_dsn, AUD.sign(claims(orgs["acme"], iss=AUD_ISS)), "'azp'")


def test_unknown_kid(app_dsn: str, orgs: dict[str, str]) -> None:
    tn008(app_dsn, RSA.sign(claims(orgs["acme"]), kid="rsa-2"), "no key with kid", "kid")
    tn008(app_dsn, RSA.sign(claims(orgs["acme"]), kid=None), "no 'kid'")


def test_alg_none(app_dsn: str, orgs: dict[str, str]) -> None:
    tn008(
        app_dsn,
        jf.unsigned(claims(orgs["acme"]), {"kid": "rsa-1", "typ": "JWT"}),
        "'none' is not accepted",
        "alg",
    )


def test_hs256_with_the_public_key_as_secret(app_dsn: str, orgs: dict[str, str]) -> None:
    for secret in (RSA.public_pem(), json.dumps(RSA.jwk).encode()):
        tn008(app_dsn, jf.hs256(claims(orgs["acme"]), secret, {"kid": "rsa-1"}), "'HS256' is not accepted")


def test_tampered_payload(app_dsn: str, orgs: dict[str, str]) -> None:
    head, _, sig = RSA.sign(claims(orgs["acme"])).split(".")
    forged = f"{head}.{jf.encode_json(claims(orgs['globex']))}.{sig}"
    tn008(app_dsn, forged, "signature does not verify", "signature")


def test_signed_by_another_key_with_the_same_kid(app_dsn: str, orgs: dict[str, str]) -> None:
    tn008(app_dsn, OTHER_RSA.sign(claims(orgs["acme"])), "signature does not verify")


def test_rsa_key_used_as_ec_and_vice_versa(app_dsn: str, orgs: dict[str, str]) -> None:
    # header ES256 naming the RSA key, signed with an EC key
    tn008(app_dsn, EC.sign(claims(orgs["acme"]), kid="rsa-1"), "which is RS256")
    # header RS256 naming the EC key, signed with an RSA key
    tn008(app_dsn, RSA.sign(clerk_v2(orgs["acme"]), kid="ec-1"), "which is ES256")


def test_invalid_curve_point_is_refused_at_registration(tenancy_db: str) -> None:
    y = EC.key.public_key().public_numbers().y
    bad = dict(EC.jwk, kid="bad", y=jf.b64_int(y ^ 1, 32))
    with connect(tenancy_db) as conn:
        with pytest.raises(psycopg.Error) as info:
            conn.execute("select tenancy.add_jwt_issuer('https://bad.example', %s)", [Jsonb({"keys": [bad]})])
        assert info.value.sqlstate == "22023"
        assert "not on the P-256 curve" in (info.value.diag.message_primary or "")
        assert conn.execute(
            "select count(*) from tenancy.jwt_issuers where issuer = 'https://bad.example'"
        ).fetchone() == (0,)


def test_invalid_curve_point_written_by_hand_is_not_trusted(
    tenancy_db: str, app_dsn: str, orgs: dict[str, str]
) -> None:
    """A row that bypassed add_jwt_issuer with an off-curve key (an invalid-curve attack's key)."""
    bad = dict(EC.jwk, kid="bad", x=jf.b64_int(1, 32), y=jf.b64_int(2, 32))
    iss = "https://by-hand.example"
    with connect(tenancy_db) as conn:
        conn.execute(
            "insert into tenancy.jwt_issuers (issuer, jwks) values (%s, %s)", [iss, Jsonb({"keys": [bad]})]
        )
    try:
        err = tn008(app_dsn, EC.sign(claims(orgs["acme"], iss=iss), kid="bad"), "does not validate")
        assert "not on the P-256 curve" in (err.diag.message_primary or "")
        assert "again with tenancy.add_jwt_issuer" in (err.diag.message_hint or "")
        assert err.diag.message_detail == "check: issuer"
    finally:
        with connect(tenancy_db) as conn:
            conn.execute("delete from tenancy.jwt_issuers where issuer = %s", [iss])


def test_malformed_tokens(app_dsn: str, orgs: dict[str, str]) -> None:
    tn008(app_dsn, "not.a.jwt", "not", "malformed")
    tn008(app_dsn, "", "3 dot-separated parts")
    tn008(app_dsn, RSA.sign(claims(orgs["acme"])) + "=", "base64url")
    err = refused(app_dsn, None)
    assert err.sqlstate == "TN008"


def test_no_tenant_claim(app_dsn: str, orgs: dict[str, str]) -> None:
    tn008(app_dsn, RSA.sign(claims(orgs["acme"], org_id=None)), "tenant claim 'org_id'", "tenant_claim")
    tn008(app_dsn, EC.sign(clerk_v2(orgs["acme"], o={"rol": "admin"})), "tenant claim 'o.id'")


def test_no_expiry(app_dsn: str, orgs: dict[str, str]) -> None:
    tn008(app_dsn, RSA.sign(claims(orgs["acme"], exp=None)), "no 'exp'", "claims")


# ------------------------------------------------------------------------------------------------
# the tenant the claim names


def test_unknown_external_id_is_tn001(app_dsn: str, orgs: dict[str, str]) -> None:
    err = refused(app_dsn, RSA.sign(claims("org_nobody")))
    assert err.sqlstate == "TN001"
    assert "org_nobody" in (err.diag.message_primary or "")


def test_suspended_tenant_is_tn002(app_dsn: str, orgs: dict[str, str]) -> None:
    assert refused(app_dsn, RSA.sign(claims(orgs["dormant"]))).sqlstate == "TN002"


def test_root_token_for_a_non_platform_role_is_tn007(
    app_dsn: str, strict_dsn: str, orgs: dict[str, str]
) -> None:
    token = RSA.sign(claims(orgs["root"]))
    assert refused(app_dsn, token).sqlstate == "TN007"
    assert refused(strict_dsn, token).sqlstate == "TN007"


def test_root_token_for_a_platform_role(platform_dsn: str, strict_platform_dsn: str, orgs: dict[str, str],
                                        tree: Tree) -> None:  # fmt: skip
    token = RSA.sign(claims(orgs["root"]))
    assert jwt_state(platform_dsn, token) == (tree.root, 0)
    assert jwt_state(strict_platform_dsn, token) == (tree.root, 0)


def test_a_token_is_not_a_context_of_another_session(app_dsn: str, orgs: dict[str, str]) -> None:
    with connect(app_dsn) as one, connect(app_dsn) as two:
        one.execute("select tenancy.set_tenant_from_jwt(%s)", [RSA.sign(claims(orgs["acme"]))])
        ctx = one.execute("select current_setting('tenancy.ctx')").fetchone()
        assert ctx is not None
        two.execute("select set_config('tenancy.ctx', %s, false)", [ctx[0]])
        assert two.execute("select tenancy.current_tenant()").fetchone() == (None,)


# ------------------------------------------------------------------------------------------------
# strict roles


def test_strict_role_is_refused_by_set_tenant_and_set_tenant_for_domain(
    strict_dsn: str, orgs: dict[str, str], tree: Tree
) -> None:
    with connect(strict_dsn) as conn:
        for sql, arg in (
            ("select tenancy.set_tenant(%s)", tree.acme),
            ("select tenancy.set_tenant(%s, true)", tree.acme),
            ("select tenancy.set_tenant_for_domain(%s)", orgs["domain"]),
        ):
            with pytest.raises(psycopg.Error) as info:
                conn.execute(sql, [arg])
            assert info.value.sqlstate == "TN007", info.value
            assert "strict role" in (info.value.diag.message_primary or "")
            assert conn.execute("select tenancy.current_tenant()").fetchone() == (None,)


def test_strict_role_takes_a_context_from_a_token(strict_dsn: str, orgs: dict[str, str], tree: Tree) -> None:
    assert jwt_state(strict_dsn, RSA.sign(claims(orgs["acme"]))) == (tree.acme, 2)
    assert (
        jwt_state(strict_dsn, EC.sign(clerk_v2(orgs["globex"])), local=True)[0] is None
    )  # ended: autocommit
    with connect(strict_dsn) as conn, conn.transaction():
        conn.execute("select tenancy.set_tenant_from_jwt(%s, true)", [EC.sign(clerk_v2(orgs["globex"]))])
        assert conn.execute("select tenancy.current_tenant()::text").fetchone() == (tree.globex,)
        # and after a token, set_tenant is still refused in the same session
        with pytest.raises(psycopg.Error) as info:
            conn.execute("select tenancy.set_tenant(%s, true)", [tree.acme])
        assert info.value.sqlstate == "TN007"


def test_strict_role_reaches_no_context_through_internal_functions(strict_dsn: str, orgs: dict[str, str],
                                                                   tree: Tree) -> None:  # fmt: skip
    with connect(strict_dsn) as conn:
        # every function it may execute that takes a tenant id and is about contexts
        fns = [r[0] for r in conn.execute(
            "select p.oid::regprocedure::text from pg_proc p where p.pronamespace = 'tenancy'::regnamespace"
            " and has_function_privilege(p.oid, 'execute') and p.proname like '%tenant%'"
            " and p.proname not in ('current_tenant', 'visible_tenants', 'reset_tenant')"
        )]  # fmt: skip
        assert "tenancy._enter_tenant(uuid,boolean,name,text)" in fns
        for local in (False, True):
            res = conn.execute(
                "select tenancy._enter_tenant(%s, %s, current_user, 'set_tenant')", [tree.acme, local]
            ).fetchone()
            assert res is not None and res[0][0] == "TN007"
            with pytest.raises(psycopg.Error) as info:
                conn.execute("select tenancy._set_tenant(%s, %s, 'set_tenant')", [tree.acme, local])
            assert info.value.sqlstate == "TN007"
        # the verifier answers only the tenant a verifying token names, and issues no context
        token = RSA.sign(claims(orgs["globex"]))
        for nonce in (None, "", "0" * 32):
            res = conn.execute(
                "select tenancy._jwt_verify(%s, %s, %s, 'user_1', %s)",
                [token, nonce, RSA_ISS, orgs["globex"]],
            ).fetchone()
            assert res is not None and res[0][0] == "42501", res
        # the verifier itself is the extension owner's only
        check = "tenancy._jwt_check(text,text,text,text,text,float8,text)"
        assert conn.execute("select has_function_privilege(%s, 'execute')", [check]).fetchone() == (False,)
        with pytest.raises(psycopg.Error) as info:
            conn.execute("select tenancy.set_tenant(%s)", [tree.globex])
        assert info.value.sqlstate == "TN007"
        assert conn.execute("select tenancy.current_tenant()").fetchone() == (None,)
        # nor can it read the issuers, write them, or make itself non-strict
        for sql in (
            "select * from tenancy.jwt_issuers",
            "select tenancy.add_jwt_issuer('https://evil', '{\"keys\": []}')",
            "select tenancy.drop_jwt_issuer('" + RSA_ISS + "')",
            "select tenancy._jwt_issuer_problem('a', '{}', 'x', null, 0)",
            "revoke tenancy_strict from current_user",
            "select tenancy.grant_app(current_user::regrole)",
        ):
            with pytest.raises(psycopg.Error) as info:
                conn.execute(sql)
            assert info.value.sqlstate in ("42501", "0LP01"), (sql, info.value.sqlstate, info.value)
        with pytest.raises(psycopg.Error) as info:
            conn.execute("select tenancy.set_tenant(%s)", [tree.acme])
        assert info.value.sqlstate == "TN007"


def test_strict_role_set_role_to_a_non_strict_role_is_still_strict(tenancy_db: str, strict_dsn: str,
                                                                    tree: Tree) -> None:  # fmt: skip
    user = strict_dsn.split("user=")[-1].split()[0]
    helper = f"tenancy_jwt_h_{secrets.token_hex(3)}"
    with connect(tenancy_db) as conn:
        conn.execute(f"create role {helper} nologin")
        conn.execute(f"select tenancy.grant_app('{helper}')")
        conn.execute(f"grant {helper} to {user}")
    try:
        with connect(strict_dsn) as conn:
            conn.execute(f"set role {helper}")
            with pytest.raises(psycopg.Error) as info:
                conn.execute("select tenancy.set_tenant(%s)", [tree.acme])
            assert info.value.sqlstate == "TN007"
    finally:
        with connect(tenancy_db) as conn:
            conn.execute(f"drop owned by {helper}")
            conn.execute(f"drop role {helper}")


def test_superuser_is_never_strict(tenancy_db: str, tree: Tree) -> None:
    with connect(tenancy_db) as conn:
        assert conn.execute("select tenancy.set_tenant(%s)::text", [tree.acme]).fetchone() == (tree.acme,)


def test_strict_refusal_is_audited(strict_dsn: str, tree: Tree, log_offset: int) -> None:
    with connect(strict_dsn) as conn, pytest.raises(psycopg.Error):
        conn.execute("select tenancy.set_tenant(%s)", [tree.acme])
    lines = audit_lines(log_offset, lambda line: line["sqlstate"] == "TN007")
    assert any(line["event"] == "refused_context" and "strict role" in str(line["reason"]) for line in lines)


# ------------------------------------------------------------------------------------------------
# audit, cache, issuers


def test_refusals_are_audited_with_the_check_and_never_the_token(app_dsn: str, orgs: dict[str, str],
                                                                 log_offset: int) -> None:  # fmt: skip
    now = int(time.time())
    token = RSA.sign(claims(orgs["acme"], exp=now - 600, iat=now - 900, nbf=now - 900))
    tn008(app_dsn, token, "expired")
    lines = audit_lines(log_offset, lambda line: line["sqlstate"] == "TN008")
    mine = [line for line in lines if line["sqlstate"] == "TN008"]
    assert mine, lines
    line = mine[-1]
    assert line["event"] == "refused_context"
    assert str(line["asked"]).startswith("set_tenant_from_jwt(token sha256:")
    assert str(line["reason"]).startswith("[expired] identity token refused")
    text = json.dumps(lines)
    assert token not in text and token.split(".")[2] not in text and token.split(".")[1] not in text


def test_tn001_and_tn007_via_a_token_are_audited(app_dsn: str, orgs: dict[str, str], log_offset: int) -> None:
    refused(app_dsn, RSA.sign(claims("org_nobody_audit")))
    refused(app_dsn, RSA.sign(claims(orgs["root"])))
    lines = audit_lines(log_offset, lambda line: line["sqlstate"] == "TN007" and "jwt" in str(line["asked"]))
    jwt_lines = [line for line in lines if str(line["asked"]).startswith("set_tenant_from_jwt(")]
    assert {line["sqlstate"] for line in jwt_lines} >= {"TN001", "TN007"}


def test_nothing_is_audited_for_ordinary_use(app_dsn: str, orgs: dict[str, str], log_offset: int) -> None:
    jwt_state(app_dsn, RSA.sign(claims(orgs["acme"])))
    time.sleep(0.3)
    assert [line for line in audit_lines(log_offset, lambda line: False) if "jwt" in str(line["asked"])] == []


def test_verified_token_is_cached(app_dsn: str, orgs: dict[str, str], tree: Tree) -> None:
    token = EC.sign(clerk_v2(orgs["acme"]))
    with connect(app_dsn) as conn:
        conn.execute("select tenancy.set_tenant_from_jwt(%s)", [token])
        # the per-backend cache holds it (keyed by its hash), and the second call is a hit: no ES256 work
        t0 = time.perf_counter()
        for _ in range(20):
            conn.execute("select tenancy.set_tenant_from_jwt(%s)", [token])
        hit = (time.perf_counter() - t0) / 20
        assert conn.execute("select tenancy.current_tenant()::text").fetchone() == (tree.acme,)
    # a fresh ES256 verification costs milliseconds; 20 hits must not cost 20 verifications
    with connect(app_dsn) as conn:
        fresh = []
        for i in range(5):
            t = EC.sign(clerk_v2(orgs["acme"], sid=f"sess_{i}"))
            t0 = time.perf_counter()
            conn.execute("select tenancy.set_tenant_from_jwt(%s)", [t])
            fresh.append(time.perf_counter() - t0)
    assert hit < sorted(fresh)[2], (hit, fresh)


def test_cached_token_expires(app_dsn: str, orgs: dict[str, str]) -> None:
    now = time.time()
    token = RSA.sign(claims(orgs["acme"], exp=now - 58, iat=now - 100, nbf=now - 100))  # leeway 60 s
    with connect(app_dsn) as conn:
        conn.execute("select tenancy.set_tenant_from_jwt(%s)", [token])
        time.sleep(max(0.0, now + 2.2 - time.time()))
        with pytest.raises(psycopg.Error) as info:
            conn.execute("select tenancy.set_tenant_from_jwt(%s)", [token])
        assert info.value.sqlstate == "TN008" and "expired" in (info.value.diag.message_primary or "")


def test_dropped_issuer_is_refused_even_when_cached(tenancy_db: str, app_dsn: str, orgs: dict[str, str],
                                                     tree: Tree) -> None:  # fmt: skip
    iss = "https://dropped.example.com"
    signer = jf.rsa_signer("drop-1", seed=3)
    with connect(tenancy_db) as conn:
        conn.execute("select tenancy.add_jwt_issuer(%s, %s)", [iss, Jsonb(jf.jwks([signer]))])
    token = signer.sign(claims(orgs["acme"], iss=iss))
    with connect(app_dsn) as conn:
        conn.execute("select tenancy.set_tenant_from_jwt(%s)", [token])
        assert conn.execute("select tenancy.current_tenant()::text").fetchone() == (tree.acme,)
        with connect(tenancy_db) as dba:
            dba.execute("select tenancy.drop_jwt_issuer(%s)", [iss])
        with pytest.raises(psycopg.Error) as info:
            conn.execute("select tenancy.set_tenant_from_jwt(%s)", [token])
        assert info.value.sqlstate == "TN008" and "not registered" in (info.value.diag.message_primary or "")


def test_rotated_keys_are_seen_at_once(
    tenancy_db: str, app_dsn: str, orgs: dict[str, str], tree: Tree
) -> None:
    iss = "https://rotating.example.com"
    old, new = jf.rsa_signer("k-old", seed=4), jf.ec_signer("k-new", seed=5)
    with connect(tenancy_db) as conn:
        conn.execute("select tenancy.add_jwt_issuer(%s, %s)", [iss, Jsonb(jf.jwks([old]))])
    try:
        with connect(app_dsn) as conn:
            token = old.sign(claims(orgs["acme"], iss=iss))
            conn.execute("select tenancy.set_tenant_from_jwt(%s)", [token])
            with connect(tenancy_db) as dba:
                dba.execute("select tenancy.add_jwt_issuer(%s, %s)", [iss, Jsonb(jf.jwks([new]))])
            with pytest.raises(psycopg.Error) as info:
                conn.execute("select tenancy.set_tenant_from_jwt(%s)", [token])
            assert info.value.sqlstate == "TN008"
            conn.execute(
                "select tenancy.set_tenant_from_jwt(%s)", [new.sign(claims(orgs["globex"], iss=iss))]
            )
            assert conn.execute("select tenancy.current_tenant()::text").fetchone() == (tree.globex,)
    finally:
        with connect(tenancy_db) as conn:
            conn.execute("delete from tenancy.jwt_issuers where issuer = %s", [iss])


def test_external_id_moved_to_another_tenant_is_followed(tenancy_db: str, app_dsn: str, orgs: dict[str, str],
                                                          tree: Tree) -> None:  # fmt: skip
    ext = f"org_moving_{secrets.token_hex(3)}"
    with connect(tenancy_db) as conn:
        conn.execute("update tenancy.tenants set external_id = %s where id = %s", [ext, tree.pixelworks])
    try:
        token = RSA.sign(claims(ext))
        with connect(app_dsn) as conn:
            conn.execute("select tenancy.set_tenant_from_jwt(%s)", [token])
            assert conn.execute("select tenancy.current_tenant()::text").fetchone() == (tree.pixelworks,)
            with connect(tenancy_db) as dba:
                dba.execute("update tenancy.tenants set external_id = null where id = %s", [tree.pixelworks])
            with pytest.raises(psycopg.Error) as info:
                conn.execute("select tenancy.set_tenant_from_jwt(%s)", [token])
            assert info.value.sqlstate == "TN001"
    finally:
        with connect(tenancy_db) as conn:
            conn.execute("update tenancy.tenants set external_id = null where external_id = %s", [ext])


def test_add_jwt_issuer_validates(tenancy_db: str) -> None:
    with connect(tenancy_db) as conn:
        for args, words in (
            (("https://x", Jsonb({"keys": []}), "org_id", None, "60 seconds"), "empty"),
            (("https://x", Jsonb(jf.jwks([RSA])), "o..id", None, "60 seconds"), "dotted path"),
            (("https://x", Jsonb(jf.jwks([RSA])), "org_id", [], "60 seconds"), "non-empty array"),
            (("https://x", Jsonb(jf.jwks([RSA])), "org_id", None, "-1 seconds"), "negative"),
            (("", Jsonb(jf.jwks([RSA])), "org_id", None, "60 seconds"), "non-empty string"),
            (
                ("https://x", Jsonb({"keys": [dict(RSA.jwk, d="AQAB")]}), "org_id", None, "60 seconds"),
                "private",
            ),
        ):
            with pytest.raises(psycopg.Error) as info:
                conn.execute("select tenancy.add_jwt_issuer(%s, %s, %s, %s, %s::interval)", list(args))
            assert info.value.sqlstate == "22023", (args, info.value)
            assert words in (info.value.diag.message_primary or ""), info.value
        with pytest.raises(psycopg.Error) as info:
            conn.execute("select tenancy.drop_jwt_issuer('https://never.example')")
        assert info.value.sqlstate == "22023"


def test_issuer_functions_are_dba_only(app_dsn: str) -> None:
    with connect(app_dsn) as conn:
        for fn in (
            "tenancy.add_jwt_issuer(text,jsonb,text,text[],interval)",
            "tenancy.drop_jwt_issuer(text)",
        ):
            assert conn.execute("select has_function_privilege(%s, 'execute')", [fn]).fetchone() == (False,)
        assert conn.execute("select has_table_privilege('tenancy.jwt_issuers', 'select')").fetchone() == (
            False,
        )
        assert conn.execute(
            "select has_function_privilege('public', 'tenancy.set_tenant_from_jwt(text,boolean)', 'execute')"
        ).fetchone() == (False,)


# ------------------------------------------------------------------------------------------------
# SPEC v0.3 2a: typ, the audiences warning, a hint per check, private keys


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+jwt", "AT+JWT", "At+Jwt", None])
def test_typ_jwt_or_at_jwt_accepted(app_dsn: str, orgs: dict[str, str], tree: Tree, typ: Any) -> None:
    token = RSA.sign(claims(orgs["acme"]), {"typ": typ})  # None: no typ at all
    assert ("typ" in jf.decode_header(token)) is (typ is not None)
    assert jwt_state(app_dsn, token)[0] == tree.acme


@pytest.mark.parametrize("typ", ["JOSE", "secevent+jwt", "logout+jwt", "dpop+jwt", "", 1, ["JWT"]])
def test_other_typ_refused(app_dsn: str, orgs: dict[str, str], typ: Any) -> None:
    tn008(app_dsn, RSA.sign(claims(orgs["acme"]), {"typ": typ}), "typ", "typ")


def test_a_hint_per_check(app_dsn: str, orgs: dict[str, str]) -> None:
    """Every check that a token can fail over SQL says so with its own hint (and names it in DETAIL)."""
    now = int(time.time())
    cases = {
        "malformed": "x.y",
        "alg": jf.hs256(claims(orgs["acme"]), b"secret", {"kid": "rsa-1"}),
        "typ": RSA.sign(claims(orgs["acme"]), {"typ": "JOSE"}),
        "crit": RSA.sign(claims(orgs["acme"]), {"crit": ["exp"]}),
        "issuer": RSA.sign(claims(orgs["acme"], iss="https://nobody.example")),
        "kid": RSA.sign(claims(orgs["acme"]), kid="rsa-9"),
        "signature": OTHER_RSA.sign(claims(orgs["acme"])),
        "claims": RSA.sign(claims(orgs["acme"], sub=5)),
        "expired": RSA.sign(claims(orgs["acme"], exp=now - 3600, iat=now - 7200, nbf=now - 7200)),
        "not_yet_valid": RSA.sign(claims(orgs["acme"], nbf=now + 3600, iat=None)),
        "audience": AUD.sign(claims(orgs["acme"], iss=AUD_ISS, aud="https://other.example.com")),
        "tenant_claim": RSA.sign(claims(orgs["acme"], org_id="")),
    }
    hints = {}
    for check, token in cases.items():
        hints[check] = tn008(app_dsn, token, "", check).diag.message_hint
    assert len(set(hints.values())) == len(hints), "each check has a hint of its own"


def test_add_jwt_issuer_without_audiences_warns(tenancy_db: str) -> None:
    iss = f"https://warn-{secrets.token_hex(3)}.example"
    notices: list[tuple[str | None, str | None, str | None]] = []
    with connect(tenancy_db) as conn:
        # a Diagnostic is valid only inside the handler: keep its fields
        conn.add_notice_handler(
            lambda d: notices.append((d.severity_nonlocalized, d.message_primary, d.message_hint))
        )
        try:
            conn.execute("select tenancy.add_jwt_issuer(%s, %s)", [iss, Jsonb(jf.jwks([RSA]))])
            warned = [n for n in notices if n[0] == "WARNING"]
            assert len(warned) == 1, notices
            assert "without audiences" in (warned[0][1] or "") and iss in (warned[0][1] or "")
            assert "RFC 8725" in (warned[0][2] or "")
            notices.clear()
            conn.execute(
                "select tenancy.add_jwt_issuer(%s, %s, audiences => array['https://app.example.com'])",
                [iss, Jsonb(jf.jwks([RSA]))],
            )
            assert [n for n in notices if n[0] == "WARNING"] == []
        finally:
            conn.execute("delete from tenancy.jwt_issuers where issuer = %s", [iss])


@pytest.mark.parametrize(
    "private",
    [
        {"d": "AQAB", "p": "AQAB", "q": "AQAB", "dp": "AQAB", "dq": "AQAB", "qi": "AQAB"},
        {"d": "AQAB"},
    ],
)
def test_private_jwk_refused_as_private_key_material(tenancy_db: str, private: dict[str, str]) -> None:
    for signer in (RSA, EC):
        jwk = dict(signer.jwk, **private)
        with connect(tenancy_db) as conn, pytest.raises(psycopg.Error) as info:
            conn.execute(
                "select tenancy.add_jwt_issuer('https://private.example', %s)", [Jsonb({"keys": [jwk]})]
            )
        assert info.value.sqlstate == "22023"
        message = info.value.diag.message_primary or ""
        assert "holds private key material" in message and "key_ops" not in message, message
        assert "public JWKS only" in (info.value.diag.message_hint or "")


def test_private_jwk_with_sign_only_key_ops_names_the_private_key(tenancy_db: str) -> None:
    """What a provider's private JWK export looks like: key_ops ['sign'] and the private members."""
    jwk = dict(RSA.jwk, d="AQAB", p="AQAB", q="AQAB", key_ops=["sign"])
    with connect(tenancy_db) as conn, pytest.raises(psycopg.Error) as info:
        conn.execute("select tenancy.add_jwt_issuer('https://private.example', %s)", [Jsonb({"keys": [jwk]})])
    assert "holds private key material (d, p, q)" in (info.value.diag.message_primary or "")


# ------------------------------------------------------------------------------------------------
# revoke_jwt


@pytest.fixture
def revocable(tenancy_db: str, orgs: dict[str, str]) -> Iterator[str]:
    """An issuer of its own (so that revocations do not touch other tests), removed afterwards."""
    iss = f"https://revoke-{secrets.token_hex(3)}.example"
    with connect(tenancy_db) as conn:
        conn.execute("set client_min_messages = error")
        conn.execute("select tenancy.add_jwt_issuer(%s, %s)", [iss, Jsonb(jf.jwks([RSA, EC]))])
    yield iss
    with connect(tenancy_db) as conn:
        conn.execute("delete from tenancy.jwt_issuers where issuer = %s", [iss])
        conn.execute("delete from tenancy.jwt_revocations where issuer = %s", [iss])


def revoke(tenancy_db: str, *args: Any) -> None:
    with connect(tenancy_db) as conn:
        placeholders = ", ".join(["%s"] * len(args))
        conn.execute(f"select tenancy.revoke_jwt({placeholders})", list(args))


def test_revoke_a_subject_cuts_off_its_cached_tokens_at_once(
    tenancy_db: str, app_dsn: str, orgs: dict[str, str], tree: Tree, revocable: str
) -> None:
    now = int(time.time())
    alice = RSA.sign(claims(orgs["acme"], iss=revocable, sub="user_alice", iat=now - 10))
    bob = EC.sign(claims(orgs["acme"], iss=revocable, sub="user_bob", iat=now - 10))
    with connect(app_dsn) as one, connect(app_dsn) as two:
        for conn in (one, two):  # both backends have verified (and cached) both tokens
            for token in (alice, bob):
                conn.execute("select tenancy.set_tenant_from_jwt(%s)", [token])
        revoke(tenancy_db, revocable, "user_alice")
        for conn in (one, two):
            with pytest.raises(psycopg.Error) as info:
                conn.execute("select tenancy.set_tenant_from_jwt(%s)", [alice])
            assert info.value.sqlstate == "TN008"
            assert "revoked" in (info.value.diag.message_primary or "")
            assert "user_alice" in (info.value.diag.message_primary or "")
            assert HINT_WORDS["revoked"] in (info.value.diag.message_hint or "")
            assert info.value.diag.message_detail == "check: revoked"
            # another subject of the same issuer is not touched
            assert conn.execute("select tenancy.set_tenant_from_jwt(%s)::text", [bob]).fetchone() == (
                tree.acme,
            )


def test_revoke_a_whole_issuer(
    tenancy_db: str, app_dsn: str, orgs: dict[str, str], tree: Tree, revocable: str
) -> None:
    now = int(time.time())
    tokens = [RSA.sign(claims(orgs["acme"], iss=revocable, sub=f"user_{i}", iat=now - 10)) for i in range(3)]
    with connect(app_dsn) as conn:
        for token in tokens:
            conn.execute("select tenancy.set_tenant_from_jwt(%s)", [token])
        revoke(tenancy_db, revocable)
        for token in tokens:
            with pytest.raises(psycopg.Error) as info:
                conn.execute("select tenancy.set_tenant_from_jwt(%s)", [token])
            assert info.value.sqlstate == "TN008" and info.value.diag.message_detail == "check: revoked"


def test_tokens_issued_after_the_revocation_are_accepted(
    tenancy_db: str, app_dsn: str, orgs: dict[str, str], tree: Tree, revocable: str
) -> None:
    now = int(time.time())
    revoke(tenancy_db, revocable, "user_carol", datetime.fromtimestamp(now - 100, UTC))
    before = RSA.sign(claims(orgs["acme"], iss=revocable, sub="user_carol", iat=now - 101))
    after = RSA.sign(claims(orgs["acme"], iss=revocable, sub="user_carol", iat=now - 100))
    no_iat = RSA.sign(claims(orgs["acme"], iss=revocable, sub="user_carol", iat=None))
    tn008(app_dsn, before, "revoked", "revoked")
    err = tn008(app_dsn, no_iat, "has no 'iat'", "revoked")
    assert "revoked" in (err.diag.message_primary or "")
    assert jwt_state(app_dsn, after)[0] == tree.acme
    # a second, earlier revocation does not move the time back; a later one moves it forward
    revoke(tenancy_db, revocable, "user_carol", datetime.fromtimestamp(now - 1000, UTC))
    tn008(app_dsn, before, "revoked", "revoked")
    revoke(tenancy_db, revocable, "user_carol", datetime.fromtimestamp(now + 5, UTC))
    tn008(app_dsn, after, "revoked", "revoked")
    with connect(tenancy_db) as conn:
        rows = conn.execute(
            "select subject, issued_before = to_timestamp(%s) from tenancy.jwt_revocations where issuer = %s",
            [now + 5, revocable],
        ).fetchall()
        assert rows == [("user_carol", True)]


def test_revoke_until_further_notice(
    tenancy_db: str, app_dsn: str, orgs: dict[str, str], tree: Tree, revocable: str
) -> None:
    revoke(tenancy_db, revocable, "user_dave", "infinity")
    future = RSA.sign(claims(orgs["acme"], iss=revocable, sub="user_dave", iat=int(time.time()) + 30))
    tn008(app_dsn, future, "infinity", "revoked")
    with connect(tenancy_db) as conn:
        conn.execute(
            "delete from tenancy.jwt_revocations where issuer = %s and subject = 'user_dave'", [revocable]
        )
    assert jwt_state(app_dsn, future)[0] == tree.acme


def test_revoke_jwt_refuses_unknown_issuers_and_nulls(tenancy_db: str) -> None:
    with connect(tenancy_db) as conn:
        for sql, words in (
            ("select tenancy.revoke_jwt('https://never.example')", "not registered"),
            ("select tenancy.revoke_jwt(null)", "needs an issuer"),
            (f"select tenancy.revoke_jwt('{RSA_ISS}', 'u', null)", "needs an issuer and a time"),
        ):
            with pytest.raises(psycopg.Error) as info:
                conn.execute(sql)
            assert info.value.sqlstate == "22023", sql
            assert words in (info.value.diag.message_primary or ""), info.value
            assert info.value.diag.message_hint


def test_revoke_jwt_is_dba_only(app_dsn: str, strict_dsn: str) -> None:
    for dsn in (app_dsn, strict_dsn):
        with connect(dsn) as conn:
            assert conn.execute(
                "select has_function_privilege('tenancy.revoke_jwt(text,text,timestamptz)', 'execute')"
            ).fetchone() == (False,)
            assert conn.execute(
                "select has_table_privilege('tenancy.jwt_revocations', 'select')"
            ).fetchone() == (False,)
            with pytest.raises(psycopg.Error) as info:
                conn.execute(f"select tenancy.revoke_jwt('{RSA_ISS}')")
            assert info.value.sqlstate == "42501"


def test_revocation_is_seen_by_a_hot_standby(
    tenancy_db: str, app_dsn: str, orgs: dict[str, str], tree: Tree, revocable: str, standby: Standby
) -> None:
    """A long-lived backend of a standby refuses a token it verified (and cached) once it has replayed
    the primary's revoke_jwt, and follows new keys and dropped issuers the same way."""
    now = int(time.time())
    token = EC.sign(claims(orgs["acme"], iss=revocable, sub="user_erin", iat=now - 10))
    replica = standby
    replica.catch_up()
    with connect(replica.dsn(app_dsn)) as conn:
        assert conn.execute("select pg_is_in_recovery()").fetchone() == (True,)
        assert conn.execute("select tenancy.set_tenant_from_jwt(%s)::text", [token]).fetchone() == (
            tree.acme,
        )
        assert conn.execute("select tenancy.set_tenant_from_jwt(%s)::text", [token]).fetchone() == (
            tree.acme,
        )
        revoke(tenancy_db, revocable, "user_erin")
        replica.catch_up()
        with pytest.raises(psycopg.Error) as info:
            conn.execute("select tenancy.set_tenant_from_jwt(%s)", [token])
        assert info.value.sqlstate == "TN008" and info.value.diag.message_detail == "check: revoked"
        # the issuer's keys replaced on the primary: the standby's parsed JWKS follows the row
        other = EC.sign(claims(orgs["acme"], iss=revocable, sub="user_frank", iat=now - 10))
        assert conn.execute("select tenancy.set_tenant_from_jwt(%s)::text", [other]).fetchone() == (
            tree.acme,
        )
        with connect(tenancy_db) as dba:
            dba.execute("set client_min_messages = error")
            dba.execute("select tenancy.add_jwt_issuer(%s, %s)", [revocable, Jsonb(jf.jwks([RSA]))])
        replica.catch_up()
        with pytest.raises(psycopg.Error) as info:
            conn.execute("select tenancy.set_tenant_from_jwt(%s)", [other])
        assert info.value.sqlstate == "TN008" and info.value.diag.message_detail == "check: kid"


# ------------------------------------------------------------------------------------------------
# the distribution's cryptography package


def test_missing_cryptography_is_an_error_naming_the_package(tenancy_db: str, orgs: dict[str, str]) -> None:
    """A backend whose Python cannot import cryptography: one clear error naming python3-cryptography
    (simulated by hiding the package from this backend's interpreter)."""
    with connect(tenancy_db) as conn:
        conn.execute(
            "do language plpython3u $$\n"
            "import sys\n"
            "for name in [m for m in sys.modules if m == 'cryptography' or m.startswith('cryptography.')]:\n"
            "    del sys.modules[name]\n"
            "sys.modules['cryptography'] = None\n"
            "$$"
        )
        for sql, args in (
            ("select tenancy.set_tenant_from_jwt(%s)", [RSA.sign(claims(orgs["acme"], jti="missing"))]),
            ("select tenancy.add_jwt_issuer('https://missing.example', %s)", [Jsonb(jf.jwks([EC]))]),
        ):
            with pytest.raises(psycopg.Error) as info:
                conn.execute(sql, args)
            assert info.value.sqlstate == "58P01", info.value
            assert "Python package cryptography" in (info.value.diag.message_primary or "")
            assert "python3-cryptography" in (info.value.diag.message_hint or "")


def test_token_signed_by_pyjwt(app_dsn: str, orgs: dict[str, str], tree: Tree) -> None:
    """Tokens made by an independent library (PyJWT), RS256 and ES256, typ JWT and at+jwt."""
    import jwt as pyjwt

    for signer, iss, payload in (
        (RSA, RSA_ISS, claims(orgs["acme"])),
        (EC, EC_ISS, clerk_v2(orgs["globex"])),
    ):
        for typ in ("JWT", "at+jwt"):
            token = pyjwt.encode(
                payload, signer.key, algorithm=signer.alg, headers={"kid": signer.kid, "typ": typ}
            )
            expected = tree.acme if iss == RSA_ISS else tree.globex
            assert jwt_state(app_dsn, token)[0] == expected


def test_wycheproof_vectors_with_the_servers_cryptography(tenancy_db: str) -> None:
    """The Wycheproof subset of tests/py/unit/test_identity.py, run by the server's own Python and its
    distribution cryptography package (which may be older than the test virtualenv's)."""
    vectors = (Path(__file__).parent / "unit" / "vectors" / "wycheproof.json").read_text(encoding="utf-8")
    body = (
        "import json\n"
        "plpy.execute('select tenancy._py_boot()')\n"
        "T = [v for k, v in GD.items() if k.startswith('tenancy ')][0]\n"
        "I = T.identity\n"
        "def b64(v, size=None):\n"
        "    import base64\n"
        "    size = size or (v.bit_length() + 7) // 8\n"
        "    return base64.urlsafe_b64encode(v.to_bytes(size, 'big')).rstrip(b'=').decode()\n"
        f"V = json.loads({vectors!r})\n"
        "bad = []\n"
        "runs = 0\n"
        "for name, jwk in (('rsa_signature_2048_sha256', lambda g: {'kty': 'RSA', 'kid': 'w',"
        " 'n': b64(int(g['n'], 16)), 'e': b64(int(g['e'], 16))}), ('ecdsa_secp256r1_sha256_p1363',"
        " lambda g: {'kty': 'EC', 'crv': 'P-256', 'kid': 'w', 'x': b64(int(g['wx'], 16), 32),"
        " 'y': b64(int(g['wy'], 16), 32)})):\n"
        "    for g in V[name]['testGroups']:\n"
        "        key = I.parse_jwks({'keys': [jwk(g)]})['w']\n"
        "        for t in g['tests']:\n"
        "            runs += 1\n"
        "            ok = I._signature_ok(key, bytes.fromhex(t['msg']), bytes.fromhex(t['sig']))\n"
        "            if t['result'] != 'acceptable' and ok != (t['result'] == 'valid'):\n"
        "                bad.append((name, t['tcId']))\n"
        "plpy.notice(json.dumps({'runs': runs, 'bad': bad}))\n"
    )
    out: list[str] = []
    with connect(tenancy_db) as conn:
        conn.add_notice_handler(lambda d: out.append(d.message_primary or ""))
        conn.execute("do language plpython3u $wp$\n" + body + "$wp$")
    result = json.loads(out[-1])
    assert result["runs"] > 300 and result["bad"] == [], result
