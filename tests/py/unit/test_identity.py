"""plpython/identity.py: the JWT verifier behind tenancy.set_tenant_from_jwt (no database).

Tokens and keys are made independently: with the PyPI ``cryptography`` package (tests/py/jwt_factory.py)
and with PyJWT.  The signature primitives are also checked against a subset of Project Wycheproof's
vectors (tests/py/unit/vectors/wycheproof.json: C2SP/wycheproof, Apache License 2.0, see
tests/py/unit/vectors/WYCHEPROOF-LICENSE; the file names its source files and commit).
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from jwt_factory import b64, b64_int, ec_signer, encode_json, hs256, jwks, rsa_signer, unsigned

from plpython import identity
from plpython.identity import JwksError, TokenRefused, make_issuer, parse_jwks, verify

ISS = "https://clerk.example.com"
NOW = 1_750_000_000.0
RS = rsa_signer("rsa-1")
ES = ec_signer("ec-1")


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


DROP = _Drop()  # a claim value meaning "leave this claim out"


def claims(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISS,
        "sub": "user_2abc",
        "exp": NOW + 300,
        "iat": NOW - 10,
        "nbf": NOW - 10,
        "o": {"id": "org_2acme", "rol": "admin", "slg": "acme"},
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not DROP}


def issuers(
    tenant_claim: str = "o.id",
    audiences: Any = None,
    leeway: float = 60,
    signers: tuple = (RS, ES),
    iss: str = ISS,
) -> dict[str, identity.Issuer]:
    return {iss: make_issuer(iss, jwks(signers), tenant_claim, audiences, leeway)}


ISSUERS = issuers()


def refused(token: Any, iss: Any = None, now: float = NOW, **kw: Any) -> TokenRefused:
    with pytest.raises(TokenRefused) as info:
        verify(token, ISSUERS if iss is None else iss, now, **kw)
    err = info.value
    assert err.check in identity.CHECKS
    assert err.sqlstate == "TN008"
    assert err.message.startswith("identity token refused: ")
    if isinstance(token, str) and token.count(".") == 2:
        for segment in token.split("."):
            if len(segment) > 12:
                assert segment not in err.message, "a refusal must never echo the token"
    return err


def segments(token: str) -> list[str]:
    return token.split(".")


def resign_payload(token: str, payload: dict[str, Any]) -> str:
    """The token with its payload replaced and its signature kept."""
    h, _, s = segments(token)
    return f"{h}.{encode_json(payload)}.{s}"


def with_signature(token: str, sig: bytes) -> str:
    h, p, _ = segments(token)
    return f"{h}.{p}.{b64(sig)}"


# --------------------------------------------------------------------------------------------------
# Valid tokens


@pytest.mark.parametrize("signer", [RS, ES], ids=["RS256", "ES256"])
def test_valid_token(signer):
    token = signer.sign(claims())
    v = verify(token, ISSUERS, NOW)
    assert v == identity.Verified(ISS, "user_2abc", "org_2acme", NOW + 300, claims(), signer.kid)
    assert isinstance(v, tuple)  # a NamedTuple


def test_clerk_v2_token():
    # The shape of a Clerk session token, version 2: the organization is under "o".
    payload = {
        "azp": "https://app.example.com",
        "exp": NOW + 60,
        "fva": [0, -1],
        "iat": NOW,
        "iss": ISS,
        "nbf": NOW - 5,
        "o": {"id": "org_2xYz", "rol": "admin", "slg": "acme", "per": "", "fpm": ""},
        "sid": "sess_2abc",
        "sts": "active",
        "sub": "user_2def",
        "v": 2,
    }
    v = verify(RS.sign(payload), issuers(tenant_claim="o.id"), NOW)
    assert (v.external_id, v.subject, v.issuer) == ("org_2xYz", "user_2def", ISS)


def test_clerk_v1_token():
    payload = {
        "azp": "https://app.example.com",
        "exp": NOW + 60,
        "iat": NOW,
        "iss": ISS,
        "nbf": NOW - 5,
        "org_id": "org_1abc",
        "org_role": "org:admin",
        "org_slug": "acme",
        "sid": "sess_1",
        "sub": "user_1",
    }
    iss = {ISS: make_issuer(ISS, jwks([RS]))}  # the default tenant claim is org_id
    assert iss[ISS].tenant_claim == "org_id"
    assert verify(RS.sign(payload), iss, NOW).external_id == "org_1abc"
    # a v1 token is refused under the v2 path, and vice versa
    assert refused(RS.sign(payload), issuers(tenant_claim="o.id")).check == "tenant_claim"
    assert refused(RS.sign(claims()), issuers(tenant_claim="org_id")).check == "tenant_claim"


def test_subject_optional_and_claims_kept():
    v = verify(ES.sign(claims(sub=DROP, extra={"a": [1, 2]})), ISSUERS, NOW)
    assert v.subject is None
    assert v.claims["extra"] == {"a": [1, 2]}


def test_minimal_token_needs_only_iss_exp_and_tenant_claim():
    v = verify(RS.sign({"iss": ISS, "exp": NOW + 1, "o": {"id": "org_x"}}), ISSUERS, NOW)
    assert v.external_id == "org_x"


@pytest.mark.parametrize("bits", [3072, 4096])
def test_larger_rsa_keys(bits):
    signer = rsa_signer(f"rsa-{bits}", bits=bits)
    assert verify(signer.sign(claims()), issuers(signers=(signer,)), NOW).kid == f"rsa-{bits}"


def test_many_es256_signatures_verify():
    # r and s below 2^248 (a leading zero byte) happen in about 1 of 128 signatures; 300 make it likely
    for i in range(300):
        token = ES.sign(claims(jti=str(i)))
        verify(token, ISSUERS, NOW)


def test_several_keys_and_issuers():
    rs2, es2 = rsa_signer("rsa-2", seed=2), ec_signer("ec-2", seed=2)
    other = "https://other.example.org"
    iss = {**issuers(signers=(RS, rs2)), **issuers(signers=(ES, es2), iss=other)}
    assert verify(rs2.sign(claims()), iss, NOW).kid == "rsa-2"
    assert verify(es2.sign(claims(iss=other)), iss, NOW).issuer == other
    # a kid of the other issuer is unknown here
    assert refused(ES.sign(claims()), iss).check == "kid"


# --------------------------------------------------------------------------------------------------
# Time


def test_expired():
    err = refused(RS.sign(claims(exp=NOW - 120)))
    assert err.check == "expired"
    assert "expired 120 s ago" in err.message
    assert (err.issuer, err.kid) == (ISS, "rsa-1")


def test_expiry_leeway_boundaries():
    token = ES.sign(claims(exp=NOW))
    assert verify(token, ISSUERS, NOW + 59.5).external_id  # within the 60 s leeway
    assert refused(token, now=NOW + 60).check == "expired"  # valid strictly before exp + leeway
    strict = issuers(leeway=0)
    assert refused(token, strict, now=NOW).check == "expired"
    assert verify(token, strict, NOW - 0.001)


def test_not_yet_valid():
    assert refused(RS.sign(claims(nbf=NOW + 120))).check == "not_yet_valid"


def test_nbf_leeway_boundaries():
    token = RS.sign(claims(nbf=NOW + 60, iat=DROP))
    assert verify(token, ISSUERS, NOW)  # now + leeway == nbf
    err = refused(token, now=NOW - 0.5)
    assert err.check == "not_yet_valid" and "nbf" in err.message
    assert refused(token, issuers(leeway=0)).check == "not_yet_valid"


def test_issued_in_the_future():
    err = refused(ES.sign(claims(iat=NOW + 61, nbf=DROP)))
    assert err.check == "not_yet_valid" and "iat" in err.message
    assert verify(ES.sign(claims(iat=NOW + 60, nbf=DROP)), ISSUERS, NOW)


@pytest.mark.parametrize(
    "over",
    [
        {"exp": DROP},
        {"exp": str(NOW + 300)},
        {"exp": True},
        {"exp": None},
        {"exp": 10**30},
        {"exp": [NOW + 300]},
        {"nbf": "0"},
        {"iat": False},
        {"sub": 42},
    ],
    ids=repr,
)
def test_ill_typed_registered_claims(over):
    err = refused(RS.sign(claims(**over)))
    assert err.check == "claims"
    assert next(iter(over)) in err.message


def test_float_and_int_times():
    assert verify(RS.sign(claims(exp=int(NOW) + 10, nbf=int(NOW), iat=NOW - 0.5)), ISSUERS, NOW)


# --------------------------------------------------------------------------------------------------
# Issuer and audience


def test_unknown_issuer():
    err = refused(RS.sign(claims(iss="https://evil.example.com")))
    assert err.check == "issuer" and "'https://evil.example.com'" in err.message


def test_issuer_trailing_slash_differs():
    assert refused(RS.sign(claims(iss=ISS + "/"))).check == "issuer"
    assert refused(RS.sign(claims(iss=ISS.upper()))).check == "issuer"


@pytest.mark.parametrize("iss", [DROP, None, 1, [ISS], {"v": ISS}])
def test_missing_or_ill_typed_iss(iss):
    assert refused(RS.sign(claims(iss=iss))).check == "issuer"


def test_long_issuer_is_shortened_in_the_message():
    err = refused(RS.sign(claims(iss="https://x/" + "a" * 5000)))
    assert err.check == "issuer" and len(err.message) < 300


AUD = ("https://api.example.com", "app-2")


@pytest.mark.parametrize(
    "over",
    [{"aud": "app-2"}, {"aud": ["other", "https://api.example.com"]}, {"azp": "app-2"}],
    ids=repr,
)
def test_audience_accepted(over):
    assert verify(ES.sign(claims(**over)), issuers(audiences=AUD), NOW)


@pytest.mark.parametrize(
    "over",
    [
        {"aud": "other"},
        {"aud": []},
        {"aud": ["x", "y"]},
        {"azp": "other"},
        {},
        # a token with aud is judged by aud alone, whatever its azp
        {"aud": "other", "azp": "app-2"},
    ],
    ids=repr,
)
def test_audience_refused(over):
    assert refused(ES.sign(claims(**over)), issuers(audiences=AUD)).check == "audience"


@pytest.mark.parametrize("aud", [1, {"a": 1}, ["ok", 2], True])
def test_ill_typed_aud(aud):
    assert refused(ES.sign(claims(aud=aud)), issuers(audiences=["ok"])).check == "claims"


def test_no_audience_check_without_audiences():
    assert verify(ES.sign(claims(aud="anything", azp="whatever")), ISSUERS, NOW)


# --------------------------------------------------------------------------------------------------
# Keys and algorithms


def test_unknown_kid():
    err = refused(RS.sign(claims(), kid="rsa-9"))
    assert err.check == "kid" and "'rsa-9'" in err.message


@pytest.mark.parametrize("kid", [None, 7, ["rsa-1"]])
def test_missing_or_ill_typed_kid(kid):
    assert refused(RS.sign(claims(), kid=kid)).check == "kid"


def test_alg_none():
    for header in ({"kid": "rsa-1"}, {"kid": "ec-1"}, {}):
        assert refused(unsigned(claims(), header)).check == "alg"
    err = refused(unsigned(claims(), {"kid": "rsa-1", "typ": "JWT"}))
    assert "'none'" in err.message


def test_hs256_with_the_rsa_public_key_as_secret():
    # The classic algorithm confusion: HMAC keyed with the public key's bytes.
    pub = RS.key.public_key().public_numbers()
    for secret in (RS.public_pem(), json.dumps(RS.jwk).encode(), pub.n.to_bytes(256, "big")):
        token = hs256(claims(), secret, {"kid": "rsa-1", "typ": "JWT"})
        err = refused(token)
        assert err.check == "alg" and "HS256" in err.message


@pytest.mark.parametrize("alg", [None, "rs256", "RS384", "PS256", "ES384", "EdDSA", "", 256, ["RS256"]])
def test_other_algs(alg):
    assert refused(RS.sign(claims(), alg=alg)).check == "alg"


def test_header_es256_on_an_rsa_key():
    # signed by the EC key, but the kid names the RSA key
    err = refused(ES.sign(claims(), kid="rsa-1"))
    assert err.check == "alg" and "RS256" in err.message
    # and an RSA signature labelled ES256
    assert refused(RS.sign(claims(), alg="ES256")).check == "alg"


def test_header_rs256_on_an_ec_key():
    assert refused(RS.sign(claims(), kid="ec-1")).check == "alg"
    assert refused(ES.sign(claims(), alg="RS256")).check == "alg"


def test_crit_refused():
    assert refused(RS.sign(claims(), {"crit": ["exp"], "exp": 1})).check == "crit"
    assert refused(RS.sign(claims(), {"crit": [], "b64": False})).check == "crit"


def test_embedded_jwk_header_is_not_trusted():
    attacker = ec_signer("ec-1", seed=99)
    token = attacker.sign(claims(), {"jwk": attacker.jwk, "jku": "https://evil.example.com/jwks"})
    assert refused(token).check == "signature"


def test_a_known_key_of_another_issuer_is_refused():
    other = {
        "https://b.example.com": make_issuer("https://b.example.com", jwks([rsa_signer("rsa-1", seed=5)]))
    }
    # same kid, other key: the signature must not verify
    assert refused(RS.sign(claims(iss="https://b.example.com")), other).check == "signature"


# --------------------------------------------------------------------------------------------------
# Signatures


@pytest.mark.parametrize("signer", [RS, ES], ids=["RS256", "ES256"])
def test_tampered_payload(signer):
    token = signer.sign(claims())
    forged = resign_payload(token, claims(o={"id": "org_victim"}))
    assert refused(forged).check == "signature"
    # also the very same claims re-encoded with different spacing
    h, _, s = segments(token)
    respaced = f"{h}.{b64(json.dumps(claims()).encode())}.{s}"
    assert refused(respaced).check == "signature"


@pytest.mark.parametrize("signer", [RS, ES], ids=["RS256", "ES256"])
def test_tampered_header(signer):
    token = signer.sign(claims())
    _, p, s = segments(token)
    other_header = encode_json({"alg": signer.alg, "kid": signer.kid})  # no typ: other bytes
    assert refused(f"{other_header}.{p}.{s}").check == "signature"


@pytest.mark.parametrize("signer", [RS, ES], ids=["RS256", "ES256"])
def test_tampered_signature(signer):
    token = signer.sign(claims())
    sig = bytearray(base64.urlsafe_b64decode(segments(token)[2] + "=="))
    for index in (0, len(sig) // 2, len(sig) - 1):
        bad = bytearray(sig)
        bad[index] ^= 0x01
        assert refused(with_signature(token, bytes(bad))).check == "signature"


@pytest.mark.parametrize("signer", [RS, ES], ids=["RS256", "ES256"])
def test_signature_of_wrong_length(signer):
    token = signer.sign(claims())
    sig = base64.urlsafe_b64decode(segments(token)[2] + "==")
    for bad in (sig[:-1], sig + b"\x00", b"\x00" + sig, sig[1:], b"", sig * 2):
        assert refused(with_signature(token, bad)).check == "signature"


def test_rsa_signature_not_below_modulus():
    token = RS.sign(claims())
    n = RS.key.public_key().public_numbers().n
    sig = int.from_bytes(base64.urlsafe_b64decode(segments(token)[2] + "=="), "big")
    for value in (sig + n, n, 2**2048 - 1):
        if value < 2**2048:
            assert refused(with_signature(token, value.to_bytes(256, "big"))).check == "signature"


def test_rsa_encoding_must_be_exact():
    # A correctly "signed" block whose EMSA-PKCS1-v1_5 padding is wrong (no DigestInfo) is refused:
    # raw RSA on the bare hash, made with the private key.
    token = RS.sign(claims())
    h, p, _ = segments(token)
    digest = hashlib.sha256(f"{h}.{p}".encode()).digest()
    priv = RS.key.private_numbers()
    n = priv.public_numbers.n
    info = bytes.fromhex("3031300d060960864801650304020105000420") + digest
    for em in (
        b"\x00\x01" + b"\xff" * (256 - 3 - 32) + b"\x00" + digest,  # no DigestInfo
        b"\x00\x02" + b"\xff" * (256 - 3 - 51) + b"\x00" + info,  # block type 2
        b"\x00\x01" + b"\xff" * (256 - 4 - 51) + b"\x00\x00" + info,  # padding one byte short
        b"\x00\x01" + b"\xff" * (256 - 3 - 51 - 2) + b"\x00" + info + b"\x00\x00",  # trailing bytes
    ):
        sig = pow(int.from_bytes(em, "big"), priv.d, n).to_bytes(256, "big")
        assert refused(with_signature(token, sig)).check == "signature"


def test_ecdsa_r_s_range():
    token = ES.sign(claims())
    sig = base64.urlsafe_b64decode(segments(token)[2] + "==")
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    n = identity.P256_N
    for rr, ss in ((0, s), (r, 0), (r + n, s), (r, s + n), (0, 0), (n, n)):
        if rr < 2**256 and ss < 2**256:
            bad = rr.to_bytes(32, "big") + ss.to_bytes(32, "big")
            assert refused(with_signature(token, bad)).check == "signature"
    # (r, n - s) is also a valid ECDSA signature: ES256 in JOSE does not forbid it, so it verifies
    assert verify(with_signature(token, r.to_bytes(32, "big") + (n - s).to_bytes(32, "big")), ISSUERS, NOW)


def test_ecdsa_der_signature_refused():
    token = ES.sign(claims())
    h, p, _ = segments(token)
    der = ES.key.sign(f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256()))
    assert refused(with_signature(token, der)).check == "signature"


# --------------------------------------------------------------------------------------------------
# Malformed


def _valid() -> str:
    return RS.sign(claims())


def header_bytes(token: str, raw: bytes) -> str:
    _, p, s = segments(token)
    return f"{b64(raw)}.{p}.{s}"


def payload_bytes(token: str, raw: bytes) -> str:
    h, _, s = segments(token)
    return f"{h}.{b64(raw)}.{s}"


@pytest.mark.parametrize(
    "make",
    [
        lambda t: "",
        lambda t: ".",
        lambda t: "..",
        lambda t: t.rsplit(".", 1)[0],
        lambda t: t + ".",
        lambda t: t + ".AAAA",
        lambda t: t + "=",
        lambda t: t.replace(".", "=.", 1),
        lambda t: " " + t,
        lambda t: t + "\n",
        lambda t: "Bearer " + t,
        lambda t: t.replace("-", "+").replace("_", "/") if ("-" in t or "_" in t) else t + "+",
        lambda t: t[:-1] + "é",
        lambda t: t + "A" * 20000,
        lambda t: header_bytes(t, b"not json"),
        lambda t: header_bytes(t, b'["alg", "RS256"]'),
        lambda t: header_bytes(t, b'{"alg": "RS256", "kid": "rsa-1"'),
        lambda t: payload_bytes(t, b"{}}"),
        lambda t: payload_bytes(t, b"[1]"),
        lambda t: payload_bytes(t, b'"claims"'),
        lambda t: payload_bytes(t, b'{"exp": NaN}'),
        lambda t: payload_bytes(t, b'{"exp": -Infinity}'),
        lambda t: payload_bytes(t, b"\xff\xfe"),
        lambda t: payload_bytes(t, b'{"iss": "\xc3"}'),
        lambda t: payload_bytes(t, b"[" * 5000),
        lambda t: payload_bytes(t, b'{"a": ' + b"1" * 5000 + b"}"),
        lambda t: payload_bytes(t, b""),
        lambda t: f"{segments(t)[0]}.A.{segments(t)[2]}",
    ],
)
def test_malformed(make):
    assert refused(make(_valid())).check == "malformed"


@pytest.mark.parametrize("token", [None, 42, b"a.b.c", ["a", "b", "c"]])
def test_not_a_string(token):
    assert refused(token).check == "malformed"


def test_duplicate_claim_names_refused():
    # {"iss": <registered>, ..., "iss": <other>}: a parser that kept either one would be ambiguous
    h = encode_json({"alg": "RS256", "kid": "rsa-1"})
    body = json.dumps(claims())[:-1] + ', "o": {"id": "org_victim"}}'
    signing_input = f"{h}.{b64(body.encode())}"
    token = f"{signing_input}.{b64(RS.raw_signature(signing_input.encode()))}"
    assert refused(token).check == "malformed"
    dup_header = b64(b'{"alg":"RS256","kid":"rsa-1","kid":"ec-1"}')
    assert refused(f"{dup_header}.{segments(_valid())[1]}.{segments(_valid())[2]}").check == "malformed"


def test_non_canonical_base64_refused():
    # Changing only the unused low bits of the last character decodes to the same bytes: refused.
    token = RS.sign(claims())
    h, p, s = segments(token)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(s[-1])
    unused = {2: 4, 3: 2}[len(s) % 4]  # bits of the last character that carry no data
    sibling = alphabet[last ^ 1]
    assert unused >= 1
    assert base64.urlsafe_b64decode(s[:-1] + sibling + "==") == base64.urlsafe_b64decode(s + "==")
    assert refused(f"{h}.{p}.{s[:-1]}{sibling}").check == "malformed"


# --------------------------------------------------------------------------------------------------
# Tenant claim


@pytest.mark.parametrize(
    "over",
    [
        {"o": DROP},
        {"o": {"id": ""}},
        {"o": {"id": 42}},
        {"o": {"id": None}},
        {"o": "org_x"},
        {"o": {"rol": "admin"}},
        {"o": {"id": ["org_x"]}},
        {"o": [{"id": "org_x"}]},
    ],
    ids=repr,
)
def test_tenant_claim_refused(over):
    err = refused(RS.sign(claims(**over)))
    assert err.check == "tenant_claim" and "'o.id'" in err.message


def test_deep_tenant_claim_path():
    iss = issuers(tenant_claim="ext.tenant.id")
    payload = claims(ext={"tenant": {"id": "org_deep"}})
    assert verify(RS.sign(payload), iss, NOW).external_id == "org_deep"


# --------------------------------------------------------------------------------------------------
# Refusal order: signature before claims, so an unsigned token learns nothing about its claims


def test_signature_is_checked_before_claims():
    token = RS.sign(claims(exp=NOW - 1000, o=DROP))
    forged = resign_payload(token, claims(exp=NOW - 1000, o=DROP, x=1))
    assert refused(forged).check == "signature"
    assert refused(token).check == "expired"


# --------------------------------------------------------------------------------------------------
# Bit flips and random input (hypothesis)

TOKENS = {"RS256": RS.sign(claims()), "ES256": ES.sign(claims())}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(alg=st.sampled_from(sorted(TOKENS)), data=st.data())
def test_any_single_bit_flip_is_refused(alg, data):
    raw = bytearray(TOKENS[alg].encode("ascii"))
    index = data.draw(st.integers(0, len(raw) - 1), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    raw[index] ^= 1 << bit
    refused(raw.decode("latin-1"))


@pytest.mark.parametrize("alg", sorted(TOKENS))
def test_every_bit_flip_of_the_signature_is_refused(alg):
    token = TOKENS[alg]
    start = token.rindex(".") + 1
    raw = token.encode("ascii")
    for index in range(start, len(raw)):
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[index] ^= 1 << bit
            refused(flipped.decode("latin-1"))


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=300) | st.from_regex(r"[A-Za-z0-9_\-]{0,40}\.[A-Za-z0-9_\-]{0,40}\.[A-Za-z0-9_\-]{0,90}")
)
def test_random_input_only_ever_refused(text):
    refused(text)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b"{}",
                b"[]",
                b'{"alg":"RS256","kid":"rsa-1"}',
                b'{"alg":"ES256","kid":"ec-1"}',
                b'{"iss":"https://clerk.example.com","exp":1e400}',
                b"null",
                b'"x"',
                b"1",
            ]
        ),
        min_size=2,
        max_size=2,
    ),
    st.binary(max_size=300),
)
def test_random_json_segments_only_ever_refused(parts, sig):
    refused(f"{b64(parts[0])}.{b64(parts[1])}.{b64(sig)}")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=60, deadline=None)
@given(
    extra=st.dictionaries(st.text(max_size=8).filter(lambda k: k not in claims()), json_values, max_size=4)
)
def test_any_extra_claims_round_trip(extra):
    payload = claims(**extra)
    assert verify(RS.sign(payload), ISSUERS, NOW).claims == payload


# --------------------------------------------------------------------------------------------------
# JWKS


def test_parse_jwks_accepts_json_text_and_objects():
    doc = jwks([RS, ES])
    for given_ in (doc, json.dumps(doc), json.dumps(doc).encode()):
        keys = parse_jwks(given_)
        assert sorted(keys) == ["ec-1", "rsa-1"]
        assert keys["rsa-1"].alg == "RS256" and keys["ec-1"].alg == "ES256"
        assert keys["rsa-1"].size == 256


def test_parse_jwks_without_alg_and_use():
    bare = [{k: v for k, v in s.jwk.items() if k not in ("alg", "use")} for s in (RS, ES)]
    keys = parse_jwks({"keys": bare})
    assert keys["rsa-1"].alg == "RS256" and keys["ec-1"].alg == "ES256"
    iss = {ISS: identity.Issuer(ISS, keys, "o.id")}
    assert verify(ES.sign(claims()), iss, NOW)


def _jwk(signer: Any, **over: Any) -> dict[str, Any]:
    jwk = dict(signer.jwk)
    jwk.update(over)
    return {k: v for k, v in jwk.items() if v is not DROP}


def _bad_jwks(doc: Any) -> JwksError:
    with pytest.raises(JwksError) as info:
        parse_jwks(doc)
    assert isinstance(info.value, ValueError)
    assert info.value.sqlstate == "22023"
    return info.value


P = identity.P256_P


@pytest.mark.parametrize(
    ("jwk", "words"),
    [
        (
            _jwk(
                ES,
                y=b64_int((int.from_bytes(base64.urlsafe_b64decode(ES.jwk["y"] + "=="), "big") + 1) % P, 32),
            ),
            "not on the P-256 curve",
        ),
        (_jwk(ES, x=b64_int(P, 32)), "out of range"),
        (_jwk(ES, y=b64_int(P + 1, 32)), "out of range"),
        (_jwk(ES, x=b64_int(0, 32), y=b64_int(0, 32)), "not on the P-256 curve"),
        (_jwk(ES, x=b64_int(1, 31)), "32 bytes"),
        (_jwk(ES, y=b64(b"\x00" + base64.urlsafe_b64decode(ES.jwk["y"] + "=="))), "32 bytes"),
        (_jwk(ES, crv="P-384"), "P-384"),
        (_jwk(ES, crv=DROP), "curve"),
        (_jwk(ES, alg="RS256"), "ES256"),
        (_jwk(ES, alg="ES384"), "ES256"),
        (_jwk(ES, x=DROP), "'x'"),
        (_jwk(ES, d="AAAA"), "holds private key material (d)"),
        (_jwk(RS, alg="ES256"), "RS256"),
        (_jwk(RS, alg="PS256"), "RS256"),
        (_jwk(RS, alg="none"), "RS256"),
        (_jwk(RS, use="enc"), "use"),
        (_jwk(RS, key_ops=["encrypt"]), "key_ops"),
        (_jwk(RS, e=b64_int(65536)), "exponent"),
        (_jwk(RS, e=b64_int(1)), "exponent"),
        (
            _jwk(RS, n=b64_int(int.from_bytes(base64.urlsafe_b64decode(RS.jwk["n"] + "=="), "big") - 1)),
            "even",
        ),
        (_jwk(RS, n=DROP), "'n'"),
        (_jwk(RS, n=RS.jwk["n"] + "="), "base64url"),
        (_jwk(RS, n=RS.jwk["n"][:10] + "+" + RS.jwk["n"][11:]), "base64url"),
        (_jwk(RS, e=""), "'e'"),
        (_jwk(RS, p="AAAA", q="AAAA"), "holds private key material (p, q)"),
        (_jwk(RS, kty="oct", k="c2VjcmV0"), "holds private key material (k)"),
        (_jwk(RS, d="AAAA", key_ops=["sign"]), "holds private key material (d)"),
        (_jwk(RS, kty="oct"), "kty"),
        (_jwk(RS, kty="OKP"), "kty"),
        (_jwk(RS, kty=DROP), "kty"),
    ],
)
def test_bad_keys(jwk, words):
    err = _bad_jwks({"keys": [jwk]})
    assert words in err.message
    assert repr(jwk["kid"]) in err.message and err.kid == jwk["kid"]


def test_rsa_key_too_small():
    small = rsa_signer("rsa-small", bits=1024)
    err = _bad_jwks(jwks([small]))
    assert "'rsa-small'" in err.message and "1024 bits is too small" in err.message


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ("not json", "not valid JSON"),
        ('{"keys": [], "keys": []}', "not valid JSON"),
        ("[]", "JSON object"),
        ({}, '"keys"'),
        ({"keys": {}}, '"keys"'),
        ({"keys": []}, "empty"),
        ({"keys": ["x"]}, "#1 is not a JSON object"),
        ({"keys": [_jwk(RS, kid=DROP)]}, "no 'kid'"),
        ({"keys": [_jwk(RS, kid="")]}, "no 'kid'"),
        ({"keys": [_jwk(RS, kid=5)]}, "no 'kid'"),
        ({"keys": [RS.jwk, _jwk(ES, kid="rsa-1")]}, "two keys with kid 'rsa-1'"),
        (b"\xff", "not valid JSON"),
        (42, "JSON object"),
    ],
)
def test_malformed_jwks(doc, words):
    assert words in _bad_jwks(doc).message


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"issuer": ""}, "issuer"),
        ({"issuer": None}, "issuer"),
        ({"tenant_claim": ""}, "tenant claim"),
        ({"tenant_claim": "o..id"}, "tenant claim"),
        ({"tenant_claim": "o."}, "tenant claim"),
        ({"tenant_claim": None}, "tenant claim"),
        ({"audiences": []}, "non-empty"),
        ({"audiences": "app"}, "audiences"),
        ({"audiences": [""]}, "audiences"),
        ({"audiences": [1]}, "audiences"),
        ({"leeway": -1}, "leeway"),
        ({"leeway": float("nan")}, "leeway"),
        ({"leeway": True}, "leeway"),
    ],
)
def test_bad_issuer_config(kw, words):
    args: dict[str, Any] = {"issuer": ISS, "jwks": jwks([RS])}
    args.update(kw)
    with pytest.raises(JwksError) as info:
        make_issuer(**args)
    assert words in info.value.message


def test_issuer_is_immutable_and_copies_its_keys():
    keys = parse_jwks(jwks([RS]))
    iss = identity.Issuer(ISS, keys)
    keys.clear()
    assert list(iss.keys) == ["rsa-1"]
    with pytest.raises(AttributeError):
        iss.leeway = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        iss.keys["x"] = None  # type: ignore[index]
    assert "rsa-1" in repr(iss)


def test_issuer_map():
    a, b = make_issuer(ISS, jwks([RS])), make_issuer(ISS + "/", jwks([ES]))
    assert identity.issuer_map([a, b]) == {ISS: a, ISS + "/": b}
    with pytest.raises(JwksError, match="registered twice"):
        identity.issuer_map([a, make_issuer(ISS, jwks([ES]))])
    assert "RsaKey(kid='rsa-1', bits=2048, e=65537)" in repr(a.keys)
    assert "EcKey(kid='ec-1', x=0x" in repr(b.keys["ec-1"])


def test_fingerprint_covers_the_whole_configuration():
    base = make_issuer(ISS, jwks([RS, ES]), "o.id", ["a"], 60)
    same = make_issuer(ISS, json.dumps(jwks([ES, RS])), "o.id", ("a",), 60.0)
    assert base.fingerprint == same.fingerprint
    variants = [
        make_issuer(ISS + "/", jwks([RS, ES]), "o.id", ["a"], 60),
        make_issuer(ISS, jwks([RS]), "o.id", ["a"], 60),
        make_issuer(ISS, jwks([RS, ec_signer("ec-1", seed=3)]), "o.id", ["a"], 60),
        make_issuer(ISS, jwks([RS, ES]), "org_id", ["a"], 60),
        make_issuer(ISS, jwks([RS, ES]), "o.id", ["a", "b"], 60),
        make_issuer(ISS, jwks([RS, ES]), "o.id", None, 60),
        make_issuer(ISS, jwks([RS, ES]), "o.id", ["a"], 61),
    ]
    assert len({base.fingerprint, *(v.fingerprint for v in variants)}) == len(variants) + 1


# --------------------------------------------------------------------------------------------------
# Cache


@pytest.fixture
def count_signatures(monkeypatch):
    calls = []
    real = identity._signature_ok

    def counting(*args):
        calls.append(args[0].kid)
        return real(*args)

    monkeypatch.setattr(identity, "_signature_ok", counting)
    return calls


@pytest.mark.parametrize("signer", [RS, ES], ids=["RS256", "ES256"])
def test_cache_hit_returns_the_same_result(signer, count_signatures):
    cache: dict = {}
    token = signer.sign(claims())
    first = verify(token, ISSUERS, NOW, cache=cache)
    again = verify(token, ISSUERS, NOW + 1, cache=cache)
    assert again is first and count_signatures == [signer.kid]
    assert first == verify(token, ISSUERS, NOW)  # the same as without a cache
    assert list(cache) == [identity.token_hash(token)]


def test_cache_expired_entry_refused_on_hit(count_signatures):
    cache: dict = {}
    token = RS.sign(claims(exp=NOW + 10))
    verify(token, ISSUERS, NOW, cache=cache)
    err = refused(token, now=NOW + 70, cache=cache)
    assert err.check == "expired" and (err.issuer, err.kid) == (ISS, "rsa-1")
    assert cache == {}
    assert count_signatures == ["rsa-1"]  # refused from the cache, not re-verified
    assert refused(token, now=NOW + 70, cache=cache).check == "expired"  # and again, now from scratch


def test_cache_rechecks_nbf_on_hit():
    cache: dict = {}
    token = RS.sign(claims(nbf=NOW, iat=DROP))
    verify(token, ISSUERS, NOW, cache=cache)
    assert refused(token, now=NOW - 61, cache=cache).check == "not_yet_valid"
    assert verify(token, ISSUERS, NOW, cache=cache)


def test_cache_not_served_for_another_issuer_config(count_signatures):
    cache: dict = {}
    token = ES.sign(claims())
    verify(token, ISSUERS, NOW, cache=cache)
    # the issuer re-added with other keys (the kid now names another key): verified again, refused
    rotated = issuers(signers=(RS, ec_signer("ec-1", seed=7)))
    assert refused(token, rotated, cache=cache).check == "signature"
    # re-added without that key
    assert refused(token, issuers(signers=(RS,)), cache=cache).check == "kid"
    # dropped
    assert refused(token, {}, cache=cache).check == "issuer"
    # re-added with audiences the token does not have
    assert refused(token, issuers(audiences=["x"]), cache=cache).check == "audience"
    # re-added with another tenant claim
    assert refused(token, issuers(tenant_claim="org_id"), cache=cache).check == "tenant_claim"
    # a shorter leeway: the cached entry is not used with the old one
    late = NOW + 300 + 30
    verify(token, ISSUERS, late, cache=cache)
    assert refused(token, issuers(leeway=0), now=late, cache=cache).check == "expired"
    assert count_signatures == ["ec-1"] * 6


def test_cache_served_for_an_equal_config_rebuilt(count_signatures):
    cache: dict = {}
    token = RS.sign(claims())
    verify(token, issuers(), NOW, cache=cache)
    verify(token, issuers(), NOW, cache=cache)  # a new Issuer object, same configuration
    assert count_signatures == ["rsa-1"]


def test_cache_is_bounded_oldest_evicted():
    cache: dict = {}
    tokens = [RS.sign(claims(jti=str(i))) for i in range(5)]
    for t in tokens:
        verify(t, ISSUERS, NOW, cache=cache, cache_size=3)
    assert list(cache) == [identity.token_hash(t) for t in tokens[2:]]
    assert len(cache) == 3


def test_refusals_are_not_cached():
    cache: dict = {}
    refused(RS.sign(claims(o=DROP)), cache=cache)
    refused(RS.sign(claims(iss="x")), cache=cache)
    assert cache == {}


def test_cache_keyed_by_token_not_by_claims(count_signatures):
    # two tokens with the same claims (ECDSA signatures are randomized): two entries
    cache: dict = {}
    a, b = ES.sign(claims()), ES.sign(claims())
    assert a != b
    verify(a, ISSUERS, NOW, cache=cache)
    verify(b, ISSUERS, NOW, cache=cache)
    assert len(cache) == 2 and len(count_signatures) == 2


# --------------------------------------------------------------------------------------------------
# typ (RFC 8725 §3.11)


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+jwt", "AT+JWT", "aT+jWt"])
def test_typ_accepted(typ):
    assert verify(RS.sign(claims(), {"typ": typ}), ISSUERS, NOW)


def test_no_typ_accepted():
    assert verify(RS.sign(claims(), {"typ": None}), ISSUERS, NOW)


@pytest.mark.parametrize(
    "typ",
    ["JOSE", "JOSE+JSON", "secevent+jwt", "logout+jwt", "application/jwt", "jwt ", "", 1, None.__class__],
)
def test_typ_refused(typ):
    value = "NoneType" if typ is None.__class__ else typ
    err = refused(RS.sign(claims(), {"typ": value}))
    assert err.check == "typ" and "JWT or at+jwt" in err.message


def test_typ_is_checked_before_the_issuer_and_the_signature():
    token = with_signature(RS.sign(claims(iss="https://nobody"), {"typ": "JOSE"}), b"\x00" * 256)
    assert refused(token).check == "typ"


# --------------------------------------------------------------------------------------------------
# A hint per check


def test_every_check_has_its_own_hint():
    assert set(identity.HINTS) == set(identity.CHECKS)
    assert len(set(identity.HINTS.values())) == len(identity.CHECKS)
    for check in identity.CHECKS:
        err = TokenRefused(check, "identity token refused: x")
        assert err.hint == identity.HINTS[check]


@pytest.mark.parametrize(
    ("token", "check"),
    [
        ("a.b", "malformed"),
        (hs256(claims(), b"k", {"kid": "rsa-1"}), "alg"),
        (RS.sign(claims(), {"typ": "JOSE"}), "typ"),
        (RS.sign(claims(), {"crit": ["b64"]}), "crit"),
        (RS.sign(claims(iss="https://x")), "issuer"),
        (RS.sign(claims(), kid="nope"), "kid"),
        (rsa_signer("rsa-1", seed=9).sign(claims()), "signature"),
        (RS.sign(claims(exp="soon")), "claims"),
        (RS.sign(claims(exp=NOW - 100)), "expired"),
        (RS.sign(claims(nbf=NOW + 100, iat=DROP)), "not_yet_valid"),
        (RS.sign(claims(o=DROP)), "tenant_claim"),
    ],
)
def test_refusals_carry_the_hint_of_their_check(token, check):
    err = refused(token)
    assert err.check == check and err.hint == identity.HINTS[check]


# --------------------------------------------------------------------------------------------------
# Revocation (the caller passes the revocation that covers the token's issuer and subject)


def test_revoked_before_iat():
    token = RS.sign(claims(iat=NOW - 10))
    assert verify(token, ISSUERS, NOW, revoked_before=NOW - 11)
    assert verify(token, ISSUERS, NOW, revoked_before=NOW - 10)  # issued at the revocation: not before it
    err = refused(token, revoked_before=NOW - 9)
    assert err.check == "revoked" and "user_2abc" in err.message and err.hint == identity.HINTS["revoked"]
    assert "tenancy.revoke_jwt" in err.message


def test_revoked_without_iat_counts_as_before():
    token = RS.sign(claims(iat=DROP))
    assert verify(token, ISSUERS, NOW)
    err = refused(token, revoked_before=0.0)
    assert err.check == "revoked" and "no 'iat'" in err.message


def test_revoked_infinity():
    err = refused(RS.sign(claims(iat=NOW + 30)), revoked_before=float("inf"))
    assert err.check == "revoked" and "infinity" in err.message


def test_revocation_applies_to_cached_tokens(count_signatures):
    cache: dict = {}
    token = ES.sign(claims())
    verify(token, ISSUERS, NOW, cache=cache)
    assert refused(token, cache=cache, revoked_before=NOW).check == "revoked"
    assert count_signatures == ["ec-1"]  # refused from the cache, and the entry stays: the row may go
    assert verify(token, ISSUERS, NOW, cache=cache) and count_signatures == ["ec-1"]


def test_revocation_is_checked_after_the_signature():
    forged = with_signature(RS.sign(claims(iat=DROP)), b"\x01" * 256)
    assert refused(forged, revoked_before=NOW).check == "signature"


# --------------------------------------------------------------------------------------------------
# peek: what the caller reads before verify


def test_peek_reads_the_unverified_payload_then_the_cache():
    cache: dict = {}
    token = RS.sign(claims(sub="user_9"))
    iss, sub, cached, payload = identity.peek(token, cache)
    assert (iss, sub, cached) == (ISS, "user_9", None) and payload == claims(sub="user_9")
    verified = verify(token, ISSUERS, NOW, cache=cache)
    assert identity.peek(token, cache) == (ISS, "user_9", verified, None)
    assert identity.peek(RS.sign(claims(iss=5, sub=DROP)))[:3] == (None, None, None)


@pytest.mark.parametrize("token", ["a.b", "", None, "x" * 20000, "a.b.c", "é.b.c"])
def test_peek_refuses_what_verify_refuses_as_malformed(token):
    with pytest.raises(TokenRefused) as info:
        identity.peek(token)
    assert info.value.check == "malformed"


# --------------------------------------------------------------------------------------------------
# The cryptography package


def test_missing_cryptography_names_the_package(monkeypatch):
    monkeypatch.setattr(identity, "_crypto_cache", [])
    monkeypatch.setitem(sys.modules, "cryptography", None)
    for name in [m for m in sys.modules if m.startswith("cryptography.")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(identity.MissingPackage) as info:
        parse_jwks(jwks([ES]))
    assert info.value.sqlstate == "58P01"
    assert "cryptography" in info.value.message and "python3-cryptography" in info.value.hint


def test_no_curve_or_modular_arithmetic_left():
    source = Path(identity.__file__).read_text(encoding="utf-8")
    for marker in ("pow(", "_mul2", "_double", "wNAF", "_G_TABLES", "% _P"):
        assert marker not in source, marker


# --------------------------------------------------------------------------------------------------
# Project Wycheproof: RSA PKCS#1 v1.5 SHA-256 (2048-bit keys) and ECDSA P-256 SHA-256 (P1363, JOSE's r || s)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "wycheproof.json").read_text(encoding="utf-8"))


def _wycheproof(name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(group, test) for group in VECTORS[name]["testGroups"] for test in group["tests"]]


def _rsa_key(group: dict[str, Any]) -> identity.RsaKey:
    n, e = int(group["n"], 16), int(group["e"], 16)
    jwk = {"kty": "RSA", "kid": "w", "n": b64_int(n), "e": b64_int(e)}
    return parse_jwks({"keys": [jwk]})["w"]


@pytest.mark.parametrize(
    ("group", "test"), _wycheproof("rsa_signature_2048_sha256"), ids=lambda v: str(v.get("tcId", ""))
)
def test_wycheproof_rsa_pkcs1_sha256(group, test):
    key = _rsa_key(group)
    ok = identity._signature_ok(key, bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"]))
    if test["result"] == "valid":
        assert ok, test
    elif test["result"] == "invalid":
        assert not ok, test
    # "acceptable": either answer is allowed


@pytest.mark.parametrize(
    ("group", "test"), _wycheproof("ecdsa_secp256r1_sha256_p1363"), ids=lambda v: str(v.get("tcId", ""))
)
def test_wycheproof_ecdsa_p256_sha256(group, test):
    x, y = int(group["wx"], 16), int(group["wy"], 16)
    jwk = {"kty": "EC", "crv": "P-256", "kid": "w", "x": b64_int(x, 32), "y": b64_int(y, 32)}
    key = parse_jwks({"keys": [jwk]})["w"]
    ok = identity._signature_ok(key, bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"]))
    assert ok is (test["result"] == "valid"), test


def test_wycheproof_subset_is_what_it_says():
    assert VECTORS["source"] == "https://github.com/C2SP/wycheproof" and len(VECTORS["commit"]) == 40
    assert (
        len(_wycheproof("ecdsa_secp256r1_sha256_p1363"))
        == VECTORS["ecdsa_secp256r1_sha256_p1363"]["numberOfTests"]
    )
    results = {t["result"] for _, t in _wycheproof("rsa_signature_2048_sha256")}
    assert results == {"valid", "invalid", "acceptable"}


# --------------------------------------------------------------------------------------------------
# Tokens made by an independent library (PyJWT)


@pytest.mark.parametrize("signer", [RS, ES], ids=["RS256", "ES256"])
@pytest.mark.parametrize("typ", ["JWT", "at+jwt"])
def test_pyjwt_tokens_verify(signer, typ):
    import jwt as pyjwt

    token = pyjwt.encode(claims(), signer.key, algorithm=signer.alg, headers={"kid": signer.kid, "typ": typ})
    assert verify(token, ISSUERS, NOW).external_id == "org_2acme"


def test_what_pyjwt_accepts_and_tenancy_refuses():
    """Where tenancy is stricter than a common library's defaults."""
    import jwt as pyjwt

    pub = RS.key.public_key()
    # a padded signature segment: PyJWT decodes it, tenancy wants canonical unpadded base64url
    token = RS.sign(claims())
    padded = token + "=" * (-len(token.split(".")[2]) % 4 or 4)
    pyjwt.decode(padded, pub, algorithms=["RS256"], options={"verify_exp": False})
    assert refused(padded).check == "malformed"
    # duplicate claim names: Python's json keeps the last one; tenancy refuses the token
    h, _, _ = segments(token)
    dup = b64(b'{"iss":"https://clerk.example.com","exp":1750000300,"o":{"id":"a"},"o":{"id":"b"}}')
    signing_input = f"{h}.{dup}"
    forged = f"{signing_input}.{b64(RS.raw_signature(signing_input.encode()))}"
    assert pyjwt.decode(forged, pub, algorithms=["RS256"], options={"verify_exp": False})["o"] == {"id": "b"}
    assert refused(forged).check == "malformed"
    # a token without exp: PyJWT accepts it unless told to require exp
    no_exp = RS.sign(claims(exp=DROP))
    assert pyjwt.decode(no_exp, pub, algorithms=["RS256"])
    assert refused(no_exp).check == "claims"
