"""Identity tokens: the pure JWT verifier behind ``tenancy.set_tenant_from_jwt`` (SPEC §2a).

Standard library only (it runs inside PL/Python).  No I/O, no clock, no global state: the caller
passes the current time and, for the per-backend cache, a dict it owns (e.g. one kept in ``GD``).

Keys and issuers
    ``parse_jwks`` turns a JWKS document into ``{kid: Key}``: RSA keys (RS256; modulus ≥ 2048 bits,
    odd exponent > 1) and EC P-256 keys (ES256; the public point is checked to be on the curve).
    A key's algorithm is fixed by the key itself; a JWK ``alg`` must agree, a ``use`` must be
    ``sig``.  Malformed input raises ``JwksError`` (a ``ValueError``, SQLSTATE 22023) naming the
    key.  ``Issuer`` is one registered issuer: its exact ``iss`` string, keys, tenant claim path,
    audiences and leeway; it validates itself and carries a ``fingerprint`` of that configuration.

Verification (``verify``), in this order; the first failure raises ``TokenRefused`` (SQLSTATE
TN008) whose ``check`` is one of ``CHECKS``:

* ``malformed`` -- not a compact JWS: exactly three base64url segments, *unpadded* and canonical
  (no ``=``, no whitespace, no other characters, unused trailing bits zero, so a token has exactly
  one spelling); header and payload are UTF-8 JSON objects with no duplicate names and no
  NaN/Infinity; at most ``MAX_TOKEN_LENGTH`` characters.
* ``alg`` -- the header ``alg`` is not RS256/ES256 (``none``, ``HS256``, ...), or is not the
  algorithm of the key ``kid`` names (ES256 on an RSA key, RS256 on an EC key).  The algorithm
  used is always the key's.  Header ``jwk``/``jku``/``x5u``/``x5c`` are never looked at.
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

Messages are sentences that say which check failed; they may name the issuer and the kid
(shortened when long) but never contain the token.

Cache
    ``verify(..., cache=d)`` keeps verified tokens in ``d`` keyed by the SHA-256 of the token; an
    entry holds the issuer's ``fingerprint`` at verification time and is served only while the
    issuer registered under the token's ``iss`` in the ``issuers`` passed *now* has the same
    fingerprint (so a dropped issuer, new keys, a new tenant claim, audiences or leeway all miss
    and re-verify).  ``exp``/``nbf``/``iat`` are re-checked against ``now`` on every hit; an
    expired entry is removed and refused.  At most ``cache_size`` entries: the oldest is evicted.
    The cached ``Verified`` (and its ``claims``) is shared between hits: do not mutate it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

MALFORMED = "22023"
REFUSED = "TN008"

CHECKS = (
    "malformed",
    "alg",
    "crit",
    "issuer",
    "kid",
    "signature",
    "claims",
    "expired",
    "not_yet_valid",
    "audience",
    "tenant_claim",
)

MAX_TOKEN_LENGTH = 16384
DEFAULT_CACHE_SIZE = 1024
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 16384

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


# --------------------------------------------------------------------------------------------------
# Errors


class JwksError(ValueError):
    """A malformed JWKS document or issuer configuration (SQLSTATE 22023); ``kid`` names the key."""

    sqlstate = MALFORMED

    def __init__(self, message: str, kid: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kid = kid


class TokenRefused(Exception):
    """An identity token that does not verify (SQLSTATE TN008).

    ``check`` is the machine name of the failed check (one of ``CHECKS``); ``issuer`` and ``kid``
    are the token's claimed issuer and key id when they were read before the refusal (unverified:
    for the audit log, not for decisions).
    """

    sqlstate = REFUSED

    def __init__(self, check: str, message: str, issuer: str | None = None, kid: str | None = None) -> None:
        super().__init__(message)
        self.check = check
        self.message = message
        self.issuer = issuer
        self.kid = kid


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
# P-256 (NIST curve, a = -3).  Points are affine (x, y) or Jacobian (X, Y, Z), Z == 0 at infinity.
#
# u1*G + u2*Q is one multi-scalar multiplication: each scalar is split into four 64-bit pieces,
# u = a0 + a1*2^64 + a2*2^128 + a3*2^192, so that u*P = sum(ai * (2^(64 i) P)); with the odd
# multiples of the four points 2^(64 i) P precomputed (for G once at import: a constant; for a key
# once when its JWK is parsed), the eight pieces share one chain of 64 doublings and each adds
# about 11 of its table's points (width-w NAF digits).  Plain double-and-add would need 256
# doublings and 128 additions; Shamir's trick alone 256 doublings and about 75 additions.

_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
_GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5

_INF = (0, 1, 0)
_SPLIT = 4  # pieces per scalar
_PIECE = 64  # bits per piece (_SPLIT * _PIECE = 256)
_G_WINDOW = 6  # wNAF width for G's tables (16 points each)
_Q_WINDOW = 5  # wNAF width for a key's tables (8 points each)

Jacobian = tuple[int, int, int]
Affine = tuple[int, int]
# For each piece i: the odd multiples 1B, 3B, 5B, ... of B = 2^(64 i) P, affine, as (x, y, -y mod p).
Tables = tuple[tuple[tuple[int, int, int], ...], ...]


def _on_curve(x: int, y: int) -> bool:
    return 0 <= x < _P and 0 <= y < _P and (y * y - (x * x * x - 3 * x + _B)) % _P == 0


def _double(X: int, Y: int, Z: int) -> Jacobian:
    """2P (dbl-2001-b, a = -3)."""
    if not Z or not Y:
        return _INF
    p = _P
    delta = Z * Z % p
    gamma = Y * Y % p
    beta = X * gamma % p
    alpha = 3 * (X - delta) * (X + delta) % p
    X3 = (alpha * alpha - 8 * beta) % p
    Z3 = ((Y + Z) * (Y + Z) - gamma - delta) % p
    Y3 = (alpha * (4 * beta - X3) - 8 * gamma * gamma) % p
    return X3, Y3, Z3


def _add_affine(X1: int, Y1: int, Z1: int, x2: int, y2: int) -> Jacobian:
    """P + Q with Q affine (mixed addition); handles P = Q, P = -Q and P at infinity."""
    if not Z1:
        return x2, y2, 1
    p = _P
    z1z1 = Z1 * Z1 % p
    h = (x2 * z1z1 - X1) % p
    r = (y2 * Z1 * z1z1 - Y1) % p
    if not h:
        return _double(X1, Y1, Z1) if not r else _INF
    hh = h * h % p
    hhh = h * hh % p
    v = X1 * hh % p
    X3 = (r * r - hhh - 2 * v) % p
    Y3 = (r * (v - X3) - Y1 * hhh) % p
    return X3, Y3, Z1 * h % p


def _batch_affine(points: list[Jacobian]) -> list[Affine]:
    """Jacobian -> affine with one inversion (Montgomery's trick); no point may be at infinity."""
    p = _P
    prefix = [1] * (len(points) + 1)
    for i, (_, _, Z) in enumerate(points):
        prefix[i + 1] = prefix[i] * Z % p
    inv = pow(prefix[-1], -1, p)
    out: list[Affine] = [(0, 0)] * len(points)
    for i in range(len(points) - 1, -1, -1):
        X, Y, Z = points[i]
        zi = inv * prefix[i] % p
        inv = inv * Z % p
        zi2 = zi * zi % p
        out[i] = (X * zi2 % p, Y * zi2 * zi % p)
    return out


def _tables(x: int, y: int, window: int) -> Tables:
    """The odd-multiple tables of 2^(64 i) (x, y) for i < 4 (x, y on the curve, not infinity)."""
    count = 1 << (window - 2)
    bases: list[Jacobian] = [(x, y, 1)]
    for _ in range(_SPLIT - 1):
        X, Y, Z = bases[-1]
        for _ in range(_PIECE):
            X, Y, Z = _double(X, Y, Z)
        bases.append((X, Y, Z))
    affine_bases = _batch_affine(bases)
    twos = _batch_affine([_double(bx, by, 1) for bx, by in affine_bases])
    multiples: list[Jacobian] = []
    for (bx, by), (tx, ty) in zip(affine_bases, twos, strict=True):
        point: Jacobian = (bx, by, 1)
        multiples.append(point)
        for _ in range(count - 1):
            point = _add_affine(*point, tx, ty)
            multiples.append(point)
    flat = _batch_affine(multiples)
    return tuple(
        tuple((ax, ay, (_P - ay) % _P) for ax, ay in flat[i * count : (i + 1) * count]) for i in range(_SPLIT)
    )


def _wnaf(k: int, w: int) -> list[tuple[int, int]]:
    """The nonzero width-w NAF digits of k >= 0 as (bit position, odd digit), lowest first."""
    out: list[tuple[int, int]] = []
    full, half, mask = 1 << w, 1 << (w - 1), (1 << w) - 1
    pos = 0
    while k:
        zeros = (k & -k).bit_length() - 1
        k >>= zeros
        pos += zeros
        d = k & mask
        if d >= half:
            d -= full
        out.append((pos, d))
        k = (k - d) >> w
        pos += w
    return out


def _unpack_tables(data: str, window: int) -> Tables:
    raw = base64.b64decode(data)
    count = 1 << (window - 2)
    coords = [int.from_bytes(raw[i : i + 32], "big") for i in range(0, len(raw), 32)]
    points = [(coords[j], coords[j + 1], (_P - coords[j + 1]) % _P) for j in range(0, len(coords), 2)]
    return tuple(tuple(points[i * count : (i + 1) * count]) for i in range(_SPLIT))


# G's tables, _tables(_GX, _GY, _G_WINDOW), as x || y (32 bytes each, big-endian) per point, in
# base64: a constant, spelt out so that loading the module costs no curve arithmetic (computing it
# takes a few ms); tests/py/test_identity.py recomputes it.
_G_TABLES_DATA = (
    "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpZP40Li/hp/m47n60p8D54WK84zV2sxXs7LtkBoN79R9V7L5NGmMwpE"
    "yPfvlR1L8WXmxrch762phftBZhvG5/1shzRkDEmY/343SwbOGmSi7NgqsDY4T7g9mnmxJ6J9UDJRWQt6UVFA0teEyFYIZo/f"
    "74yC/R9b5SQhVUoNw9Az7eDBfaiQSnJ9iuG/Nr+KeSYNAS8A1NgIiNHQu0T9oW2kjlM7b6C/e0YluzBmfAH7YH75+LioD+9b"
    "MAYocDGHsqNz6x294DMYNm0Gn4Om9ZAAU8c2M8sEGyHFXhqGwfQAtOpo17b+3wtxh4k41R1x+HKeCsuMLG34s9eeikuQlJ7g"
    "KidEyXLJ/OeHAUqWSo6gyE1xT+qk3oI/6FoiSk3QSPo+0RO3iDtMWQY4N52wwhzaFnQu0CVQSL9DM5HTdLwh0ZCZIJrMxMii"
    "JMhDr6T0xooJDQTaXpiJ2uL47vzoKjdAF3yDeuCsSVphgF3y2F7i/HkuKEtl6tWKmOFdnUYHLAFju1jNTr6lWKJAka20D05y"
    "Ju4Uw6H7TfOcQ7vi78e/2PBFTcaXGrrnrfs3iZmIgmWuA6+S3joO8WNmjGPlm51ftbk+41kuLR9OZZTlH5ZD5io7Ic51tfo/"
    "R+Wc3g0DTzZHd2kEwPHMOpwJhLZvdTAaX6aGePDWSvi6GrzjRzinPqoAXua1uVcoYjGFZXdkjoOBsoBEKNVzPzL3h/9x8fzc"
    "y20oYRAsDCXOObfBcQjFB3gsRSJXiEiVwfx7dKsD7YNY12FLJNnvUVw15xANbWzkpJZxbjD6PgPjkVB1K87NqjJQ/PaGY3x7"
    "LkrIbrRzvKU6WCE59CsVI/12Nk5nOZ6DQufDQmZ9NZOXswkNHX64jIl808M7VmqCFd4koHHUjAkOkccjnCZA19KKPjnUWD+m"
    "PAvApd9kpP5nLlcwRcp4ll32XDtVDboiGiJzO7jgvW1+aIM1deelrhOARlQxQK1VOmfiVUsMC7aF9PUtjAf6hEFlL8W3bxsk"
    "hKTcRfIA1ocn0PGHLx/PQyba8mcWOvsNjBiK9zWnYYqp7RazAveTJBhP+lgZ2A1R3rovrEYR83hXY1W9aD5Uq/LiARc7CIPR"
    "wKZuJ2aI81mkxtkIJsuZlUW97Mxj8EkWINJCwmCQbm/W0zre+hlbB6fDbaCQhTuM/YzRxoi1ikHe3Wk9HHhN74SquhbuGV1+"
    "P3gkX1WKXcsJoWarS5Xt7VUMEkWT0bymMB2eUC3H4F2oXaAmp66aoPrJ231SqVs+Pj+aoKG0W4tlUbb2swYSI+DSPAJrAX1y"
    "KY2a5GiHymHVjbauoX7iZw+oIrwoEaqlhJJZLjJuJd4pSTuqrWUffpDnXLSOFNtjv/RK6PXbqA1vStS8s98YizSxplBQ/oL1"
    "5BEkVF9GLueFssBk/5EvXOWWZF576kvI2+86ErIo6/V1LEU/fbPN7PZLJ4850RU2Y8f6LS/MbQDcmAs05kz44I9NCCBKA/gf"
    "EQsDdsQCFGd4Ufus7BbynCTa/2PlhNZzKIpa5IYHsDCEQyuFMY7mc0xuuJ+EYccMh74VVvsph0n0OqESs2F8Ohh4TkSfZHHX"
    "FPbhJCscqvgylfJTi7vtTlTt2Bx1p28IjXbtf0oeGucXd6j9rHHmcfyddKemCiUyCzlgXWuCSZNYovngfQXmua71bddwOgN9"
    "nDNldIwMsD7OjjPJ+m+tgQarZMWsVWDgwbaC+HF/pr15i7LTLTALglQAYV47EJWUHvAg3M5+u6JA7m27J49nb+qKmc7BDME6"
    "+yLxH561JYNZRHayWnoUsAl/bA9LlpUwasMA+XAS1MtVsngZej8Xrk5KgWPB1qITld0UTPq/oyxPObUkb7VmQ7XCPsHwoZWP"
    "JXSkW3noyNEDP0o+4pxvqEAECF+yxD1mpDs/UUhjb4r2lmoWrdYRBOMyfg7VlFGeKBeYJhxr2w7oJ1qEZJNdtboN4wepAx2y"
    "waXuVyw8dV4tdFOjRAG/ATo0g2wdFmg4zNE/0gAGQ/CJiWXk0t9JGG0Fqlm34m2w1+9B9SzkeBTmcLw+uxmA3IgSAEYJ+2Nf"
    "KlzYirV4LvTJg8AUvljq4JNy73rovntYjUOwHIgY74yVs5BtrSegC1rdqv6m6/9CXyREdOUI20q5WbXxpzpXGnUgvnZad0Et"
    "LZk3TTDoenQ4sfykwIfOvuOLkM5f9cAtbXhQqq8j9IoHBGJa7NUWxyBMWs7tqzKF3qP1uuJW7eFCXoqWhd+O2izufxx2P0RA"
    "S/57IRQE7+pKIImPAP3laBkRT+7RThu4kJpZEggvJIF7viYhp1HK57eT78uJ1pw1oKj8j9HrbWMPZdQIvlYc9BSIDUIRG1zF"
    "ZzmAgwgoZtsEmSF+c91eodZjcKkQQ1hs+okyR/i+HNUVkW6RkL/zkmjbgbGYxWQovelp5Vy74j2LzXziLJytsIKD8azlmMRi"
    "XdUUaZmvekq0hfbZ/IV09DjMKttfO28Nhw/hTLyww67REo/jkuyHTEZaU/UuDXGvOPjr6rdOc2/dmPS+iM2+Sjd7VxwODau0"
    "SQU/B2DFOb/d7hoCgB9KO/GAm9EexbAZrPQ4/GbOXvgM/SKLFacRUdjAxWjFsbqImzkqBT9VKKWFHOH4G0ecGEeynSC4Pucn"
    "sPAp7GOoq/OmbNWZaF/dbvLyTw7Hc3+bYQjJ0E6ynZ1EfXOb7tteZ/uYL9WIxnZu/DX/fcKX6sNXyE/J14m9hS1IJauDQTHu"
    "4S6dlTpKr/c9NJuVp/rlAAx+M8ly4lsy+LZTPgPKAX9YsU35Zd709t362FYIJjLCc+GZjt6m22jDD0717ERUhi8EbdpQqj7G"
    "a71w3ZxcoO1pvSWwrnYNqfNSidNVgoR8VI7xhynt+3VfAXMHLPhyfGbV1Ov5JOdTdcF4HsXsE/uT3wihtQ4b2MVi/FcpLQ8E"
    "qkW1wusTogzP0Gt02kQXFkg0GF+2c04BrxQf/9bfI9cjlctnMBgBfrZHt6m3K6kTgQOzlYfaeVAAMDB4a3eXd6Cue+TODf9Q"
    "B1XnTErV3NEVEtbQjxXb6YEIkogymiR7BMgZBXktuGD+Fq+nU62eTdJJstgjgVvCspN0ZM/Cd3p9ZgDboNCYSYj7qEzDcslp"
    "aKEMDX6wu97dLKKkltoSw6nvaVXqJrprUSrvZJ05vg/SZtpFtRR4jUhKnijgDP3OgEFHgeRJcvjhoKzL7AVb645Q9udVXG8s"
    "Gh6l1Bc5sX45xIpClHIMq+B5aPt+mMhUGDb4MHfuvL8ISipx0IAlTqbUU/V0sYXJCuk7huanPH5Q2zWJMefmoCSb+35GsRu2"
    "KoKP3+wmxCpwKPbdFHh+E6lC4+3B4gs3J4o57vWq22SRBjNDufgIysinSHlRmViDtjbWvnNgo4/93q0xkp/xx4M3+uTUjRC4"
    "5rIohGj4/qwOAIcjMsR0aZqeTqD8fnu4UXA1FZAzGR2LWpCeu3+G/5dbVkB6Pp/iQ0yzKtk2zwsJgBdmjpZ0xipxmFRilnI2"
    "zF5ziGxfjsYAoMAMA3r6YwcxfB3QEyDl4gTjuAytF5HRJIFp+qzk52U+tgXFMk70M/l0G7O1dWbsZOA/mAeSPou5KydDtPcK"
    "HmsmBtuVzQwyUvAGujIzcnF69d8evuBLFjSpA4KljAq5+vG7j6TtS7RN/8HTfx1pZvFJNTvYdGTGqpXY8LDzKnnOaAZer858"
    "f3RphDKmLaNoJjWXG7PerX4MksNKD8fX9/GOxcWO9l/vxulaMKjoerLQDM9W5DvpWl5OC8go3/KaoPpmaa1CzvP0/q7Q/pQB"
    "vkoHAdRHi8mVbV748CXT8+MJX1Qw0hCmur0PxP56FX82SCSH0a/wwsrCN7Zu82hYdE2w5OR80sv/QVT6HAusWCGdycb5rzOL"
    "z4aDS1nsqnUV+aZk5BRQUYPVTuS6m7IcmVD1BsJtqfD11bKzaB+C4GVghDNwog0INlhjpvwLyMOSMzIqXxR/44hsfiZPpAMl"
    "qKmjfu/wlzmTC+c/qS9qj5UrlZpEpWaA3KQkPmhrDUpT6p0lUeI05Cxc/1gq7rqnptOWd6eEknYnNv+DRDFfxZZDlZGjxrlK"
    "bPIP+zE3KL5nT4R0mwuIFma4ur0tJ+zfgkqSDCKEBZvyurgzw1f19AfvZtfF3tsNr8js574mzzUkBv3GocyNPMBUtWnPFdhk"
    "LbMyXbid5qUG1AxSIf1QXp9HDjsczkqLVGJUJ3QJB/6C305fwG3EYBTzpy918owLsoPLlSzlQWrGlRQ8F8fAXuThiMmMlkIK"
    "J1IWIRIXy9HPFdlGhC2zALlhPQLY//JrJh78m8ErDGp9nluNOOR6YhMkwi+P7pSdgK4dQVQDaLCKnSrb44b86f3IhSzWT/95"
    "fjQL4eObXTATrSVZvesBH21I39d6LCeRSap+WdnnaS3zCzNfVujKSvEDPpUV64A0PLRyRRZd0S89XnlkngVHYwgCEOoqPolh"
    "6HMIelqwzjCTpcAee7mJI6SRI/tPxU5vZfClYwyNsT61FD38VAU1yC1EDpBJgML0wWqENY4VpcFmoWIEk1vt/8SVdAg9WbhE"
    "P7C5KRYScruzXaDgF9ZwMeVHBJlrsPZSomGlZp4gR7qdRnrmghfflMpyYhyZZm3IbEIK53FwCdNX/s1O3bJBWNqwlDngjoPV"
    "0HY7qd4z5DgcMYa+r7tyOgC9vbri33HBdjy8HlROHO84WuhvINILPW6WMwyktE47uHNIQSTDoePZvZr6VvrgHLlTQRycKok5"
    "Bxy75L/HNxp66m9JRo0SwnQGakDIGMeWzi6DrOHNLe1TfVaFhhWuYCyPkl43RAAaXan18bXfkpqmoRojIzmulT6fOZzkU59t"
    "Pswy3+lgNnuS9tNKNANojedi/SvB1B/m42tZCeKXdDrEtgJi9x6wRZ39fZjwTx5FySgf5Y5MnRiLNwKPSBihGLAvki1OlM57"
    "5n1EXdNVJMAFr0j6YsiXSO+eXqmmURNvE9N+uO4i+EyPnzMFMkVmzEo9DSvfeFk6CbIDCwzW4cLtdnTIobrbYDpCTBfMJRYW"
    "XIst+mBjVIMdMKiCV5I0JErDzVXa9oznCOwWzXhd1EBdRfW1+BgBW0BNrJithPgHWw0nZzHlIT9/2N1eYNE1EcAGGk1gwQ2E"
    "FdfOv0K4eY92ZGzujwcehURsF1iuMyzZKhuxoYFoBUF7PJoKCqgDT1Myu9XpvuCfK9uY/Wj6nhkNjZd5v43ET3XMyza7V6jM"
    "rYyqfDlvmRjCCUQaO9jnNs6Y+jVnv8gunLchPqlUW+b5E66B83GtFyKOxLeSDX6D2PnuK87PmDKVM2ONKXqnnkucpwFD/zLl"
    "ZPgARTxjJpFzHc+XTrMIuhWNRYWKNxhro+OEqKRx/ZkcDEiQ+m3ZFqdIvOQ9MCQj3lAs2DcoQVBnVmu8X5v1zw=="
)
_G_TABLES = _unpack_tables(_G_TABLES_DATA, _G_WINDOW)


def _mul2(u1: int, u2: int, q_tables: Tables) -> Jacobian:
    """u1*G + u2*Q (0 <= u1, u2 < 2^256) for the key whose tables are ``q_tables``."""
    steps: list[list[tuple[int, int]] | None] = [None] * (_PIECE + 2)
    mask = (1 << _PIECE) - 1
    for u, tables, window in ((u1, _G_TABLES, _G_WINDOW), (u2, q_tables, _Q_WINDOW)):
        for i in range(_SPLIT):
            table = tables[i]
            for pos, d in _wnaf((u >> (_PIECE * i)) & mask, window):
                x, y, ny = table[(d if d > 0 else -d) >> 1]
                step = steps[pos]
                if step is None:
                    step = steps[pos] = []
                step.append((x, y if d > 0 else ny))
    p = _P
    X, Y, Z = _INF
    for pos in range(_PIECE + 1, -1, -1):
        if Z:
            # doubling, inlined (see _double)
            delta = Z * Z % p
            gamma = Y * Y % p
            beta = X * gamma % p
            alpha = 3 * (X - delta) * (X + delta) % p
            X3 = (alpha * alpha - 8 * beta) % p
            Z = ((Y + Z) * (Y + Z) - gamma - delta) % p
            Y = (alpha * (4 * beta - X3) - 8 * gamma * gamma) % p
            X = X3
            if not Z:
                X, Y, Z = _INF
        step = steps[pos]
        if step is None:
            continue
        for x2, y2 in step:
            if not Z:
                X, Y, Z = x2, y2, 1
                continue
            # mixed addition, inlined (see _add_affine)
            z1z1 = Z * Z % p
            h = (x2 * z1z1 - X) % p
            r = (y2 * Z * z1z1 - Y) % p
            if not h:
                X, Y, Z = _double(X, Y, Z) if not r else _INF
                continue
            hh = h * h % p
            hhh = h * hh % p
            v = X * hh % p
            X3 = (r * r - hhh - 2 * v) % p
            Y = (r * (v - X3) - Y * hhh) % p
            Z = Z * h % p
            X = X3
    return X, Y, Z


# --------------------------------------------------------------------------------------------------
# Keys


class RsaKey(NamedTuple):
    """An RSA public key; its algorithm is RS256."""

    kid: str
    n: int
    e: int
    size: int  # modulus length in bytes (= the signature length)

    @property
    def alg(self) -> str:
        return "RS256"

    def ident(self) -> tuple[Any, ...]:
        return ("RSA", self.kid, f"{self.n:x}", f"{self.e:x}")


class EcKey(NamedTuple):
    """A P-256 public key (validated on the curve); its algorithm is ES256."""

    kid: str
    x: int
    y: int
    tables: Tables  # precomputed multiples of the point, for _mul2

    @property
    def alg(self) -> str:
        return "ES256"

    def ident(self) -> tuple[Any, ...]:
        return ("EC", "P-256", self.kid, f"{self.x:x}", f"{self.y:x}")

    def __repr__(self) -> str:
        return f"EcKey(kid={self.kid!r}, x={self.x:#x}, y={self.y:#x})"


Key = RsaKey | EcKey

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
    private = [m for m in _PRIVATE_MEMBERS if m in jwk]
    if private:
        raise JwksError(
            f"{where} contains private key material ({', '.join(private)}); register the public JWKS only",
            kid,
        )
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
            return RsaKey(kid, n, e, (bits + 7) // 8)
        if kty == "EC":
            crv = jwk.get("crv")
            if crv != "P-256":
                raise JwksError(f"{where} is on curve {_show(crv)}; only P-256 (ES256) is supported")
            if alg is not None and alg != "ES256":
                raise JwksError(f"{where} is a P-256 key with alg {_show(alg)}; a P-256 key is ES256")
            x = _key_int(jwk, "x", where, 32)
            y = _key_int(jwk, "y", where, 32)
            if x >= _P or y >= _P:
                raise JwksError(f"{where}: the point's coordinates are out of range (not below p)")
            if not _on_curve(x, y):
                raise JwksError(f"{where}: the point (x, y) is not on the P-256 curve")
            return EcKey(kid, x, y, _tables(x, y, _Q_WINDOW))
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
# Signatures

# DER of DigestInfo { AlgorithmIdentifier { id-sha256, NULL }, OCTET STRING (32 bytes) }
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def _rs256_ok(key: RsaKey, signing_input: bytes, sig: bytes) -> bool:
    k = key.size
    if len(sig) != k:
        return False
    s = int.from_bytes(sig, "big")
    if s >= key.n:
        return False
    em = pow(s, key.e, key.n).to_bytes(k, "big")
    t = _SHA256_DIGEST_INFO + hashlib.sha256(signing_input).digest()
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return hmac.compare_digest(em, expected)


def _es256_ok(key: EcKey, signing_input: bytes, sig: bytes) -> bool:
    if len(sig) != 64:
        return False
    r = int.from_bytes(sig[:32], "big")
    s = int.from_bytes(sig[32:], "big")
    n = _N
    if not (0 < r < n and 0 < s < n):
        return False
    e = int.from_bytes(hashlib.sha256(signing_input).digest(), "big")
    w = pow(s, -1, n)
    X, _, Z = _mul2(e * w % n, r * w % n, key.tables)
    if not Z:
        return False
    zi = pow(Z, -1, _P)
    return X * zi * zi % _P % n == r


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

    value: Any = claims
    for name in issuer.claim_path:
        value = value.get(name) if isinstance(value, dict) else None
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


def token_hash(token: str) -> bytes:
    """The cache key of a token: SHA-256 of its ASCII text."""
    return hashlib.sha256(token.encode("ascii")).digest()


def verify(
    token: Any,
    issuers: Mapping[str, Issuer],
    now: float,
    *,
    cache: dict[bytes, Any] | None = None,
    cache_size: int = DEFAULT_CACHE_SIZE,
) -> Verified:
    """Verify a compact JWS identity token against the registered ``issuers`` at time ``now``.

    ``issuers`` maps each exact ``iss`` string to its ``Issuer`` (``issuer_map``); ``now`` is seconds
    since the epoch (a float).  Returns ``Verified``; every refusal raises ``TokenRefused`` (TN008),
    never anything else.  ``cache``, a dict the caller keeps for the backend and passes on every
    call, remembers verified tokens for up to ``cache_size`` entries (see the module docstring).
    """
    if not isinstance(token, str) or not token.isascii():
        raise TokenRefused("malformed", "identity token refused: it is not an ASCII string")
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenRefused(
            "malformed", f"identity token refused: it is longer than {MAX_TOKEN_LENGTH} characters"
        )
    if cache is None:
        return _verify(token, issuers, now)[0]

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
            return verified
        del cache[h]

    verified, issuer, not_before = _verify(token, issuers, now)
    while cache and len(cache) >= cache_size:
        del cache[next(iter(cache))]
    cache[h] = (issuer.fingerprint, verified, not_before)
    return verified
