"""Identity tokens: the JWT verifier behind ``tenancy.set_tenant_from_jwt`` (SPEC §2a).

The JOSE layer is tenancy's own and deliberately stricter than common libraries' defaults; the
signature primitives are the distribution's ``cryptography`` package (Debian/Ubuntu:
python3-cryptography), imported at the first key or signature a backend handles.  No I/O, no
clock, no global state besides that import: the caller passes the current time, the per-backend
cache (a dict it owns, e.g. one kept in ``GD``) and the revocation that applies to the token.

Keys and issuers
    ``parse_jwks`` turns a JWKS document into ``{kid: Key}``: RSA keys (RS256; modulus ≥ 2048 bits,
    odd exponent > 1) and EC P-256 keys (ES256; coordinates of exactly 32 bytes, below the field
    prime, and a point on the curve, which ``cryptography`` checks).  A key's algorithm is fixed
    by the key itself; a JWK ``alg`` must agree, a ``use`` must be ``sig``, ``key_ops`` must allow
    ``verify``; a key holding private members (``d``, ``p``, ``q``, ..., an ``oct`` key's ``k``)
    is refused as private key material.  Malformed input raises ``JwksError`` (a ``ValueError``,
    SQLSTATE 22023) naming the key, with a hint.  ``Issuer`` is one registered issuer: its exact
    ``iss`` string, keys, tenant claim path, audiences and leeway; it validates itself and carries
    a ``fingerprint`` of that configuration.

Verification (``verify``), in this order; the first failure raises ``TokenRefused`` (SQLSTATE
TN008) whose ``check`` is one of ``CHECKS`` and whose ``hint`` fits that check:

* ``malformed`` -- not a compact JWS: exactly three base64url segments, *unpadded* and canonical
  (no ``=``, no whitespace, no other characters, unused trailing bits zero, so a token has exactly
  one spelling); header and payload are UTF-8 JSON objects with no duplicate names and no
  NaN/Infinity; at most ``MAX_TOKEN_LENGTH`` characters.
* ``alg`` -- the header ``alg`` is not RS256/ES256 (``none``, ``HS256``, ...), or is not the
  algorithm of the key ``kid`` names (ES256 on an RSA key, RS256 on an EC key).  The algorithm
  used is always the key's.  Header ``jwk``/``jku``/``x5u``/``x5c`` are never looked at.
* ``typ`` -- the header has a ``typ`` that is not ``JWT`` or ``at+jwt`` (case-insensitive;
  RFC 8725 §3.11: another kind of JWT is not an identity token).
* ``crit`` -- the header has ``crit`` (no extension is understood).
* ``issuer`` -- no ``iss``, or ``iss`` is not exactly a registered issuer (``https://a/`` is not
  ``https://a``).
* ``kid`` -- the header has no ``kid`` or it names no key of that issuer.
* ``signature`` -- RS256 (RSASSA-PKCS1-v1_5, SHA-256; the signature is exactly the modulus length)
  or ES256 (ECDSA P-256, SHA-256, 64-byte ``r || s``, ``1 <= r, s < n``) does not verify.
* ``claims`` -- a registered claim is missing or ill-typed: ``exp`` (required, a finite number),
  ``nbf``/``iat`` (numbers when present), ``sub`` (a string when present), ``aud`` (a string or an
  array of strings when present and the issuer has audiences).
* ``expired`` -- ``now >= exp + leeway`` (RFC 7519: the token is valid strictly before ``exp``).
* ``not_yet_valid`` -- ``now + leeway < nbf``, or ``iat`` is more than ``leeway`` in the future.
* ``audience`` -- the issuer has audiences and the token's ``aud`` names none of them; a token
  without ``aud`` is accepted when its ``azp`` is one of them.  (A token that has ``aud`` is
  judged by ``aud`` alone.)
* ``tenant_claim`` -- the issuer's tenant claim path (``o.id``, ``org_id``) does not lead to a
  non-empty string.
* ``revoked`` -- ``revoked_before`` (the latest ``tenancy.revoke_jwt`` that covers the token's
  issuer and subject, in seconds since the epoch) is given and the token has no ``iat`` or an
  ``iat`` before it.

Messages are sentences that say which check failed; they may name the issuer and the kid
(shortened when long) but never contain the token.

Cache
    ``verify(..., cache=d)`` keeps verified tokens in ``d`` keyed by the SHA-256 of the token; an
    entry holds the issuer's ``fingerprint`` at verification time and is served only while the
    issuer registered under the token's ``iss`` in the ``issuers`` passed *now* has the same
    fingerprint (so a dropped issuer, new keys, a new tenant claim, audiences or leeway all miss
    and re-verify).  ``exp``/``nbf``/``iat`` and ``revoked_before`` are checked against the values
    passed on every hit; an expired entry is removed and refused.  At most ``cache_size`` entries:
    the oldest is evicted.  The cached ``Verified`` (and its ``claims``) is shared between hits:
    do not mutate it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import time
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from .packages import MissingPackage

MALFORMED = "22023"
REFUSED = "TN008"

CHECKS = (
    "malformed",
    "alg",
    "typ",
    "crit",
    "issuer",
    "kid",
    "signature",
    "claims",
    "expired",
    "not_yet_valid",
    "audience",
    "tenant_claim",
    "revoked",
)

# What the caller can do about each refusal (the HINT of the TN008 error).
HINTS = {
    "malformed": (
        "Pass the token exactly as the identity provider issued it: a compact JWS of three base64url "
        "parts separated by dots (the session token, without a 'Bearer ' prefix)."
    ),
    "alg": (
        "Only RS256 and ES256 are accepted, and always the algorithm of the registered key that the kid "
        "names; have the identity provider sign with such a key."
    ),
    "typ": (
        "Pass an identity or access token: its header typ, when present, must be JWT or at+jwt (another "
        "kind of JWT is not accepted in its place)."
    ),
    "crit": "The token needs header extensions (crit) that tenancy does not implement; none are supported.",
    "issuer": (
        "Register the identity provider with tenancy.add_jwt_issuer(issuer, jwks, tenant_claim, audiences); "
        "the token's iss must equal the registered issuer exactly (a trailing slash counts)."
    ),
    "kid": (
        "The provider may have rotated its keys: register its current public JWKS (its "
        "/.well-known/jwks.json) again with tenancy.add_jwt_issuer."
    ),
    "signature": (
        "The token was altered, or signed with another key than the registered one its kid names; take a "
        "fresh token, and check that tenancy.jwt_issuers holds the provider's current JWKS."
    ),
    "claims": (
        "The provider must issue exp (required) and, when present, nbf and iat as numbers of seconds, sub "
        "as a string and aud as a string or an array of strings."
    ),
    "expired": (
        "Take a fresh token from the identity provider (session tokens are short-lived); where the "
        "clocks differ, the issuer's leeway (tenancy.add_jwt_issuer) allows for it."
    ),
    "not_yet_valid": (
        "Check the clocks of the database server and of the identity provider; the issuer's leeway "
        "(tenancy.add_jwt_issuer) allows for small differences."
    ),
    "audience": (
        "The token was issued for another application: its aud (or, without aud, its azp) must be one of "
        "the audiences registered with tenancy.add_jwt_issuer."
    ),
    "tenant_claim": (
        "The token names no organization: have the user choose an organization before the token is "
        "issued, or register the claim path that holds its id (tenant_claim of tenancy.add_jwt_issuer)."
    ),
    "revoked": (
        "Tokens of this subject were revoked (tenancy.revoke_jwt): sign in again to get a token issued "
        "after the revocation, or ask the administrator."
    ),
}

JWKS_HINT = (
    "Register the provider's public JWKS (its /.well-known/jwks.json): RSA (RS256) or EC P-256 (ES256) "
    "keys, each with a kid."
)
PRIVATE_HINT = (
    "Register the public JWKS only (the provider's /.well-known/jwks.json, or the key without d, p, q, dp, "
    "dq, qi, oth and k). A private key that was pasted anywhere should be rotated at the provider."
)

MAX_TOKEN_LENGTH = 16384
DEFAULT_CACHE_SIZE = 1024
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 16384

# P-256's field prime and group order (FIPS 186-4 D.1.2.3): bounds of a key's coordinates and of a
# signature's r and s, checked before the encoding is handed to the library.
P256_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


# --------------------------------------------------------------------------------------------------
# The cryptography package (imported once per backend, at the first key or signature)


class _Crypto(NamedTuple):
    invalid_signature: type[Exception]
    rsa_numbers: Any  # RSAPublicNumbers
    ec_numbers: Any  # EllipticCurvePublicNumbers
    p256: Any  # SECP256R1()
    pkcs1v15: Any  # PKCS1v15()
    sha256: Any  # SHA256()
    ecdsa_sha256: Any  # ECDSA(SHA256())
    encode_dss: Any  # encode_dss_signature


_crypto_cache: list[_Crypto] = []


def crypto() -> _Crypto:
    """The primitives of ``cryptography``; ``MissingPackage`` (naming python3-cryptography) without it."""
    if _crypto_cache:
        return _crypto_cache[0]
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
    except ImportError as exc:
        raise MissingPackage(
            "cryptography", "python3-cryptography", "identity-token signatures (RS256, ES256)", exc
        ) from None
    loaded = _Crypto(
        InvalidSignature,
        rsa.RSAPublicNumbers,
        ec.EllipticCurvePublicNumbers,
        ec.SECP256R1(),
        padding.PKCS1v15(),
        hashes.SHA256(),
        ec.ECDSA(hashes.SHA256()),
        utils.encode_dss_signature,
    )
    _crypto_cache.append(loaded)
    return loaded


# --------------------------------------------------------------------------------------------------
# Errors


class JwksError(ValueError):
    """A malformed JWKS document or issuer configuration (SQLSTATE 22023); ``kid`` names the key."""

    sqlstate = MALFORMED

    def __init__(self, message: str, kid: str | None = None, hint: str = JWKS_HINT) -> None:
        super().__init__(message)
        self.message = message
        self.kid = kid
        self.hint = hint


class TokenRefused(Exception):
    """An identity token that does not verify (SQLSTATE TN008).

    ``check`` is the machine name of the failed check (one of ``CHECKS``) and ``hint`` what to do
    about it; ``issuer`` and ``kid`` are the token's claimed issuer and key id when they were read
    before the refusal (unverified: for the audit log, not for decisions).
    """

    sqlstate = REFUSED

    def __init__(
        self,
        check: str,
        message: str,
        issuer: str | None = None,
        kid: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.check = check
        self.message = message
        self.issuer = issuer
        self.kid = kid
        self.hint = hint if hint is not None else HINTS[check]


def _show(value: Any, limit: int = 80) -> str:
    """``repr`` of an untrusted value, shortened."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------------
# Encodings


def _b64decode(text: str) -> bytes:
    """Strict, canonical, unpadded base64url; raises ValueError."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != text.encode("ascii"):
        raise ValueError("not canonical base64url")
    return raw


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise ValueError(f"duplicate member {_show(name)}")
            seen.add(name)
    return obj


def _json(text: str) -> Any:
    """Strict JSON: no NaN/Infinity, no duplicate names; raises ValueError or RecursionError."""
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def _is_num(value: Any) -> bool:
    """A JSON number usable as seconds: a finite float or an int of at most 2**53 in magnitude."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool) and -(2**53) <= value <= 2**53


# --------------------------------------------------------------------------------------------------
# Keys


class RsaKey(NamedTuple):
    """An RSA public key; its algorithm is RS256."""

    kid: str
    n: int
    e: int
    size: int  # modulus length in bytes (= the signature length)
    public: Any  # the cryptography RSAPublicKey

    @property
    def alg(self) -> str:
        return "RS256"

    def ident(self) -> tuple[Any, ...]:
        return ("RSA", self.kid, f"{self.n:x}", f"{self.e:x}")

    def __repr__(self) -> str:
        return f"RsaKey(kid={self.kid!r}, bits={self.n.bit_length()}, e={self.e})"


class EcKey(NamedTuple):
    """A P-256 public key (on the curve: ``cryptography`` checks it); its algorithm is ES256."""

    kid: str
    x: int
    y: int
    public: Any  # the cryptography EllipticCurvePublicKey

    @property
    def alg(self) -> str:
        return "ES256"

    def ident(self) -> tuple[Any, ...]:
        return ("EC", "P-256", self.kid, f"{self.x:x}", f"{self.y:x}")

    def __repr__(self) -> str:
        return f"EcKey(kid={self.kid!r}, x={self.x:#x}, y={self.y:#x})"


Key = RsaKey | EcKey

# RFC 7518 §6.2.2 / §6.3.2 / §6.4.1: the members of an EC, RSA or symmetric ("oct") private key.
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


def _key_int(jwk: Mapping[str, Any], member: str, where: str, size: int | None = None) -> int:
    value = jwk.get(member)
    if not isinstance(value, str) or not value:
        raise JwksError(f"{where} has no {member!r} (a base64url string)")
    try:
        raw = _b64decode(value)
    except ValueError:
        raise JwksError(f"{where}: {member!r} is not unpadded base64url") from None
    if size is not None and len(raw) != size:
        raise JwksError(f"{where}: {member!r} must be exactly {size} bytes, not {len(raw)}")
    return int.from_bytes(raw, "big")


def _parse_key(jwk: Any, index: int) -> Key:
    if not isinstance(jwk, Mapping):
        raise JwksError(f"JWKS key #{index + 1} is not a JSON object")
    kid = jwk.get("kid")
    private = [m for m in _PRIVATE_MEMBERS if m in jwk]
    if private:
        # before anything else: whatever else is wrong with it, this is what the DBA must hear
        name = _show(kid) if isinstance(kid, str) and kid else f"#{index + 1}"
        raise JwksError(
            f"JWKS key {name} holds private key material ({', '.join(private)}): an issuer is registered"
            " with its public keys only",
            kid if isinstance(kid, str) else None,
            PRIVATE_HINT,
        )
    if not isinstance(kid, str) or not kid:
        raise JwksError(f"JWKS key #{index + 1} has no 'kid' (a non-empty string); every key needs one")
    where = f"JWKS key {_show(kid)}"
    kty = jwk.get("kty")
    use = jwk.get("use")
    if use is not None and use != "sig":
        raise JwksError(f"{where} has use {_show(use)}; only signature keys (use 'sig') are accepted", kid)
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        raise JwksError(f"{where} has key_ops {_show(ops)} without 'verify'", kid)
    alg = jwk.get("alg")
    try:
        if kty == "RSA":
            if alg is not None and alg != "RS256":
                raise JwksError(f"{where} is an RSA key with alg {_show(alg)}; an RSA key is RS256", kid)
            n = _key_int(jwk, "n", where)
            e = _key_int(jwk, "e", where)
            bits = n.bit_length()
            if bits < MIN_RSA_BITS:
                raise JwksError(f"{where}: RSA modulus of {bits} bits is too small (at least {MIN_RSA_BITS})")
            if bits > MAX_RSA_BITS:
                raise JwksError(f"{where}: RSA modulus of {bits} bits is too large (at most {MAX_RSA_BITS})")
            if not n & 1:
                raise JwksError(f"{where}: RSA modulus is even")
            if e <= 1 or not e & 1 or e >= n:
                raise JwksError(
                    f"{where}: RSA exponent {e if e < 2**64 else '(huge)'} must be odd, > 1 and < n"
                )
            c = crypto()
            try:
                public = c.rsa_numbers(e, n).public_key()
            except ValueError as exc:
                raise JwksError(f"{where}: not a usable RSA public key ({exc})") from None
            return RsaKey(kid, n, e, (bits + 7) // 8, public)
        if kty == "EC":
            crv = jwk.get("crv")
            if crv != "P-256":
                raise JwksError(f"{where} is on curve {_show(crv)}; only P-256 (ES256) is supported")
            if alg is not None and alg != "ES256":
                raise JwksError(f"{where} is a P-256 key with alg {_show(alg)}; a P-256 key is ES256")
            x = _key_int(jwk, "x", where, 32)
            y = _key_int(jwk, "y", where, 32)
            if x >= P256_P or y >= P256_P:
                raise JwksError(f"{where}: the point's coordinates are out of range (not below p)")
            c = crypto()
            try:
                public = c.ec_numbers(x, y, c.p256).public_key()
            except ValueError:
                raise JwksError(f"{where}: the point (x, y) is not on the P-256 curve") from None
            return EcKey(kid, x, y, public)
    except JwksError as exc:
        exc.kid = kid
        raise
    raise JwksError(f"{where} has kty {_show(kty)}; only 'RSA' and 'EC' (P-256) keys are supported", kid)


def parse_jwks(jwks: str | bytes | Mapping[str, Any]) -> dict[str, Key]:
    """``{kid: Key}`` from a JWKS (``{"keys": [...]}``, a JSON string or an object).

    Raises ``JwksError`` (22023) on anything malformed, naming the key.
    """
    doc: Any = jwks
    if isinstance(jwks, (str, bytes, bytearray)):
        try:
            text = jwks.decode("utf-8") if isinstance(jwks, (bytes, bytearray)) else jwks
            doc = _json(text)
        except (ValueError, RecursionError) as exc:
            raise JwksError(f"the JWKS is not valid JSON ({exc})") from None
    if not isinstance(doc, Mapping):
        raise JwksError('the JWKS must be a JSON object {"keys": [...]}')
    keys = doc.get("keys")
    if not isinstance(keys, list):
        raise JwksError('the JWKS has no "keys" array')
    if not keys:
        raise JwksError('the JWKS "keys" array is empty')
    out: dict[str, Key] = {}
    for i, jwk in enumerate(keys):
        key = _parse_key(jwk, i)
        if key.kid in out:
            raise JwksError(f"the JWKS has two keys with kid {_show(key.kid)}; kids must be unique", key.kid)
        out[key.kid] = key
    return out


# --------------------------------------------------------------------------------------------------
# Issuers


def _fingerprint(
    issuer: str,
    keys: Mapping[str, Key],
    path: tuple[str, ...],
    audiences: tuple[str, ...] | None,
    leeway: float,
) -> str:
    ident = (issuer, sorted(k.ident() for k in keys.values()), path, audiences, float(leeway))
    return hashlib.sha256(repr(ident).encode()).hexdigest()


class Issuer:
    """One registered issuer (``tenancy.add_jwt_issuer``); immutable.

    ``issuer`` is compared exactly with ``iss``; ``keys`` comes from ``parse_jwks``; ``tenant_claim``
    is a dotted path into the claims; ``audiences`` None means ``aud`` is not checked (else a
    non-empty sequence of strings, kept as a tuple); ``leeway`` is in seconds.  Construction
    validates (``JwksError``) and computes ``fingerprint``, a SHA-256 of the whole configuration
    (issuer, every key's material, tenant claim, audiences, leeway) that ties cache entries to it.
    """

    __slots__ = ("audiences", "claim_path", "fingerprint", "issuer", "keys", "leeway", "tenant_claim")

    issuer: str
    keys: Mapping[str, Key]
    tenant_claim: str
    audiences: tuple[str, ...] | None
    leeway: float
    claim_path: tuple[str, ...]
    fingerprint: str

    def __init__(
        self,
        issuer: str,
        keys: Mapping[str, Key],
        tenant_claim: str = "org_id",
        audiences: Sequence[str] | None = None,
        leeway: float = 60.0,
    ) -> None:
        if not isinstance(issuer, str) or not issuer:
            raise JwksError(f"issuer {_show(issuer)} must be a non-empty string")
        if not isinstance(keys, Mapping) or not keys:
            raise JwksError(f"issuer {_show(issuer)} has no keys")
        for kid, key in keys.items():
            if not isinstance(key, (RsaKey, EcKey)) or key.kid != kid:
                raise JwksError(f"issuer {_show(issuer)}: keys must map each kid to its parsed key")
        path = tuple(tenant_claim.split(".")) if isinstance(tenant_claim, str) else ()
        if not path or not all(path):
            raise JwksError(
                f"tenant claim {_show(tenant_claim)} must be a dotted path of non-empty names,"
                " like 'o.id' or 'org_id'"
            )
        auds: tuple[str, ...] | None = None
        if audiences is not None:
            if not isinstance(audiences, (list, tuple)) or not all(
                isinstance(a, str) and a for a in audiences
            ):
                raise JwksError(f"audiences {_show(audiences)} must be null or an array of non-empty strings")
            auds = tuple(audiences)
            if not auds:
                raise JwksError("audiences must be null (no audience check) or a non-empty array")
        if not _is_num(leeway) or leeway < 0:
            raise JwksError(f"leeway {_show(leeway)} must be a non-negative number of seconds")
        frozen = types.MappingProxyType(dict(keys))
        put = object.__setattr__
        put(self, "issuer", issuer)
        put(self, "keys", frozen)
        put(self, "tenant_claim", tenant_claim)
        put(self, "audiences", auds)
        put(self, "leeway", float(leeway))
        put(self, "claim_path", path)
        put(self, "fingerprint", _fingerprint(issuer, frozen, path, auds, float(leeway)))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("an Issuer is immutable; make a new one")

    def __repr__(self) -> str:
        return (
            f"Issuer({self.issuer!r}, kids={sorted(self.keys)!r}, tenant_claim={self.tenant_claim!r},"
            f" audiences={self.audiences!r}, leeway={self.leeway!r})"
        )


def issuer_map(issuers: Iterable[Issuer]) -> dict[str, Issuer]:
    """The ``issuers`` argument of ``verify``: ``{issuer.issuer: issuer}``; a repeated issuer is a
    ``JwksError``."""
    out: dict[str, Issuer] = {}
    for issuer in issuers:
        if issuer.issuer in out:
            raise JwksError(f"issuer {_show(issuer.issuer)} is registered twice")
        out[issuer.issuer] = issuer
    return out


def make_issuer(
    issuer: str,
    jwks: str | bytes | Mapping[str, Any],
    tenant_claim: str = "org_id",
    audiences: Sequence[str] | None = None,
    leeway: float = 60.0,
) -> Issuer:
    """``Issuer(issuer, parse_jwks(jwks), ...)``: what ``add_jwt_issuer`` validates and stores."""
    return Issuer(issuer, parse_jwks(jwks), tenant_claim, audiences, leeway)


# --------------------------------------------------------------------------------------------------
# Signatures (the primitives are cryptography's; the encodings are checked here first)


def _rs256_ok(key: RsaKey, signing_input: bytes, sig: bytes) -> bool:
    """RSASSA-PKCS1-v1_5 with SHA-256; the signature is exactly as long as the modulus."""
    if len(sig) != key.size:
        return False
    c = crypto()
    try:
        key.public.verify(sig, signing_input, c.pkcs1v15, c.sha256)
    except c.invalid_signature:
        return False
    return True


def _es256_ok(key: EcKey, signing_input: bytes, sig: bytes) -> bool:
    """ECDSA P-256 with SHA-256; JOSE's 64-byte ``r || s`` with ``1 <= r, s < n``."""
    if len(sig) != 64:
        return False
    r = int.from_bytes(sig[:32], "big")
    s = int.from_bytes(sig[32:], "big")
    if not (0 < r < P256_N and 0 < s < P256_N):
        return False
    c = crypto()
    try:
        key.public.verify(c.encode_dss(r, s), signing_input, c.ecdsa_sha256)
    except c.invalid_signature:
        return False
    return True


def _signature_ok(key: Key, signing_input: bytes, sig: bytes) -> bool:
    if isinstance(key, RsaKey):
        return _rs256_ok(key, signing_input, sig)
    return _es256_ok(key, signing_input, sig)


# --------------------------------------------------------------------------------------------------
# Verification


class Verified(NamedTuple):
    """A verified identity token."""

    issuer: str
    subject: str | None
    external_id: str  # the tenant claim's value, matched against tenants.external_id
    exp: float
    claims: Mapping[str, Any]
    kid: str


_ALGS = frozenset({"RS256", "ES256"})
_TYPS = frozenset({"jwt", "at+jwt"})


def _segment(text: str, what: str) -> Any:
    try:
        raw = _b64decode(text)
    except ValueError:
        raise TokenRefused(
            "malformed", f"identity token refused: its {what} is not unpadded base64url"
        ) from None
    if what == "signature":
        return raw
    try:
        value = _json(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise TokenRefused("malformed", f"identity token refused: its {what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise TokenRefused("malformed", f"identity token refused: its {what} is not a JSON object")
    return value


def _verify(token: str, issuers: Mapping[str, Issuer], now: float) -> tuple[Verified, Issuer, float | None]:
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenRefused(
            "malformed",
            f"identity token refused: a JWT has 3 dot-separated parts, this one has {len(parts)}",
        )
    header = _segment(parts[0], "header")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in _ALGS:
        raise TokenRefused(
            "alg",
            f"identity token refused: header alg {_show(alg)} is not accepted (only RS256 and ES256,"
            " and always the key's own algorithm)",
        )
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in _TYPS):
        raise TokenRefused(
            "typ",
            f"identity token refused: header typ {_show(typ)} is not an identity token's (JWT or at+jwt)",
        )
    if "crit" in header:
        raise TokenRefused("crit", "identity token refused: its header has 'crit' extensions, none supported")
    claims = _segment(parts[1], "payload")
    sig = _segment(parts[2], "signature")

    iss = claims.get("iss")
    if not isinstance(iss, str):
        raise TokenRefused("issuer", "identity token refused: it has no 'iss' claim (a string)")
    issuer = issuers.get(iss)
    if issuer is None:
        raise TokenRefused(
            "issuer",
            f"identity token refused: issuer {_show(iss)} is not registered (tenancy.add_jwt_issuer)",
            issuer=iss,
        )
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise TokenRefused(
            "kid", f"identity token refused: its header has no 'kid' naming a key of issuer {_show(iss)}", iss
        )
    key = issuer.keys.get(kid)
    if key is None:
        raise TokenRefused(
            "kid", f"identity token refused: issuer {_show(iss)} has no key with kid {_show(kid)}", iss, kid
        )
    if alg != key.alg:
        raise TokenRefused(
            "alg",
            f"identity token refused: header alg {alg} does not match key {_show(kid)} of issuer"
            f" {_show(iss)}, which is {key.alg}",
            iss,
            kid,
        )
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    if not _signature_ok(key, signing_input, sig):
        raise TokenRefused(
            "signature",
            f"identity token refused: the {key.alg} signature does not verify with key {_show(kid)}"
            f" of issuer {_show(iss)}",
            iss,
            kid,
        )

    def bad_claim(message: str) -> TokenRefused:
        return TokenRefused("claims", f"identity token refused: {message}", iss, kid)

    exp = claims.get("exp")
    if exp is None:
        raise bad_claim("it has no 'exp' claim; tokens without an expiry are not accepted")
    if not _is_num(exp):
        raise bad_claim(f"its 'exp' claim {_show(exp)} is not a number of seconds (a finite number)")
    not_before: float | None = None
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if value is not None:
            if not _is_num(value):
                raise bad_claim(
                    f"its {name!r} claim {_show(value)} is not a number of seconds (a finite number)"
                )
            not_before = value if not_before is None else max(not_before, value)
    sub = claims.get("sub")
    if sub is not None and not isinstance(sub, str):
        raise bad_claim(f"its 'sub' claim {_show(sub)} is not a string")

    _check_time(exp, not_before, issuer.leeway, now, iss, kid, claims)

    audiences = issuer.audiences
    if audiences is not None:
        aud = claims.get("aud")
        if aud is not None:
            names = [aud] if isinstance(aud, str) else aud
            if not isinstance(names, list) or not all(isinstance(a, str) for a in names):
                raise bad_claim(f"its 'aud' claim {_show(aud)} is not a string or an array of strings")
            if not any(a in audiences for a in names):
                raise TokenRefused(
                    "audience",
                    f"identity token refused: its audience {_show(aud)} is not one of issuer"
                    f" {_show(iss)}'s audiences",
                    iss,
                    kid,
                )
        else:
            azp = claims.get("azp")
            if not isinstance(azp, str) or azp not in audiences:
                raise TokenRefused(
                    "audience",
                    f"identity token refused: it has no 'aud' and its 'azp' {_show(azp)} is not one of"
                    f" issuer {_show(iss)}'s audiences",
                    iss,
                    kid,
                )

    value = claim_value(claims, issuer.claim_path)
    if not isinstance(value, str) or not value:
        raise TokenRefused(
            "tenant_claim",
            f"identity token refused: its tenant claim {issuer.tenant_claim!r} is missing or not a"
            f" non-empty string (issuer {_show(iss)})",
            iss,
            kid,
        )
    return Verified(iss, sub, value, exp, claims, kid), issuer, not_before


def _check_time(
    exp: float,
    not_before: float | None,
    leeway: float,
    now: float,
    iss: str,
    kid: str,
    claims: Mapping[str, Any],
) -> None:
    if now >= exp + leeway:
        raise TokenRefused(
            "expired",
            f"identity token refused: it expired {now - exp:.0f} s ago (exp {exp}, leeway {leeway:g} s)",
            iss,
            kid,
        )
    if not_before is not None and now + leeway < not_before:
        nbf = claims.get("nbf")
        name = "nbf" if _is_num(nbf) and nbf == not_before else "iat"
        raise TokenRefused(
            "not_yet_valid",
            f"identity token refused: it is not valid for another {not_before - now:.0f} s"
            f" ({name} {not_before}, leeway {leeway:g} s)",
            iss,
            kid,
        )


_last_hash: list[Any] = [None, b""]


def token_hash(token: str) -> bytes:
    """The cache key of a token: SHA-256 of its ASCII text (the last one is remembered: one call of
    set_tenant_from_jwt asks twice, from two PL/Python functions)."""
    if _last_hash[0] == token:
        return _last_hash[1]
    digest = hashlib.sha256(token.encode("ascii")).digest()
    _last_hash[0], _last_hash[1] = token, digest
    return digest


def _when(seconds: float) -> str:
    """A time for a message: UTC, to the second (``infinity`` as such)."""
    if not math.isfinite(seconds):
        return "infinity" if seconds > 0 else "-infinity"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def _check_revoked(verified: Verified, revoked_before: float | None) -> None:
    if revoked_before is None:
        return
    iat = verified.claims.get("iat")
    if iat is None or iat < revoked_before:
        whose = f"issuer {_show(verified.issuer)}"
        if verified.subject is not None:
            whose += f" and subject {_show(verified.subject)}"
        issued = "it has no 'iat'" if iat is None else f"it was issued at {_when(iat)}"
        raise TokenRefused(
            "revoked",
            f"identity token refused: it is revoked (tenancy.revoke_jwt: tokens of {whose} issued before"
            f" {_when(revoked_before)}; {issued})",
            verified.issuer,
            verified.kid,
        )


def peek(
    token: Any, cache: Mapping[bytes, Any] | None = None
) -> tuple[str | None, str | None, Verified | None, dict[str, Any] | None]:
    """``(iss, sub, cached, claims)`` of a token, for the caller to read the issuer's current row and
    the revocations that apply before ``verify``.  From the cache when the token is there (``cached``
    is its ``Verified``, ``claims`` None); else read from the unverified header and payload
    (``cached`` None; ``verify`` then checks that these very bytes are signed).  Raises
    ``TokenRefused`` for what ``verify`` would refuse as malformed."""
    _basic(token)
    if cache is not None:
        entry = cache.get(token_hash(token))
        if entry is not None:
            verified = entry[1]
            return verified.issuer, verified.subject, verified, None
    parts = token.split(".")
    if len(parts) != 3:
        _verify(token, {}, 0.0)  # raises the malformed refusal with its message
    _segment(parts[0], "header")
    claims = _segment(parts[1], "payload")
    iss, sub = claims.get("iss"), claims.get("sub")
    return (iss if isinstance(iss, str) else None), (sub if isinstance(sub, str) else None), None, claims


def claim_value(claims: Mapping[str, Any], path: Sequence[str]) -> Any:
    """The value at a dotted claim path (``("o", "id")``), or None."""
    value: Any = claims
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return value


def _basic(token: Any) -> None:
    if not isinstance(token, str) or not token.isascii():
        raise TokenRefused("malformed", "identity token refused: it is not an ASCII string")
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenRefused(
            "malformed", f"identity token refused: it is longer than {MAX_TOKEN_LENGTH} characters"
        )


def verify(
    token: Any,
    issuers: Mapping[str, Issuer],
    now: float,
    *,
    cache: dict[bytes, Any] | None = None,
    cache_size: int = DEFAULT_CACHE_SIZE,
    revoked_before: float | None = None,
) -> Verified:
    """Verify a compact JWS identity token against the registered ``issuers`` at time ``now``.

    ``issuers`` maps each exact ``iss`` string to its ``Issuer`` (``issuer_map``); ``now`` is seconds
    since the epoch (a float); ``revoked_before`` the revocation that covers the token's issuer and
    subject (seconds since the epoch; None: none).  Returns ``Verified``; every refusal raises
    ``TokenRefused`` (TN008), never anything else (but ``MissingPackage`` when cryptography cannot be
    imported).  ``cache``, a dict the caller keeps for the backend and passes on every call,
    remembers verified tokens for up to ``cache_size`` entries (see the module docstring).
    """
    _basic(token)
    if cache is None:
        verified = _verify(token, issuers, now)[0]
        _check_revoked(verified, revoked_before)
        return verified

    h = token_hash(token)
    entry = cache.get(h)
    if entry is not None:
        fingerprint, verified, not_before = entry
        issuer = issuers.get(verified.issuer)
        if issuer is not None and issuer.fingerprint == fingerprint:
            try:
                _check_time(
                    verified.exp,
                    not_before,
                    issuer.leeway,
                    now,
                    verified.issuer,
                    verified.kid,
                    verified.claims,
                )
            except TokenRefused as exc:
                if exc.check == "expired":
                    del cache[h]
                raise
            _check_revoked(verified, revoked_before)
            return verified
        del cache[h]

    verified, issuer, not_before = _verify(token, issuers, now)
    while cache and len(cache) >= cache_size:
        del cache[next(iter(cache))]
    cache[h] = (issuer.fingerprint, verified, not_before)
    _check_revoked(verified, revoked_before)
    return verified
