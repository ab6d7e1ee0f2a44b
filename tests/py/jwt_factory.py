"""Identity tokens for tests and benchmarks, made with the PyPI ``cryptography`` package.

Independent of ``plpython/identity.py`` (which must verify what this signs): keys, their public
JWKs and compact JWS tokens, including deliberately broken ones (any header, any ``alg``, raw
signature bytes).

    signer = rsa_signer("k1")
    token = signer.sign({"iss": "https://clerk.example.com", "exp": now + 60, "o": {"id": "org_1"}})
    jwks({signer})  # {"keys": [...public JWKs...]}
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64_int(value: int, size: int | None = None) -> str:
    size = size if size is not None else max(1, (value.bit_length() + 7) // 8)
    return b64(value.to_bytes(size, "big"))


def encode_json(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


@dataclass(frozen=True)
class Signer:
    kid: str
    alg: str  # RS256 or ES256: the key's algorithm
    key: Any  # a cryptography private key

    @property
    def jwk(self) -> dict[str, Any]:
        """The public JWK (with kid, use and alg)."""
        pub = self.key.public_key().public_numbers()
        if self.alg == "RS256":
            return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256", "n": b64_int(pub.n),
                    "e": b64_int(pub.e)}  # fmt: skip
        return {"kty": "EC", "kid": self.kid, "use": "sig", "alg": "ES256", "crv": "P-256",
                "x": b64_int(pub.x, 32), "y": b64_int(pub.y, 32)}  # fmt: skip

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def raw_signature(self, signing_input: bytes) -> bytes:
        if self.alg == "RS256":
            return self.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        r, s = decode_dss_signature(self.key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def sign(
        self,
        claims: Mapping[str, Any],
        header: Mapping[str, Any] | None = None,
        *,
        kid: Any = ...,
        alg: Any = ...,
    ) -> str:
        """A compact JWS of ``claims``: header ``{"alg": <the key's>, "typ": "JWT", "kid": ...}``
        updated with ``header``; ``kid=None``/``alg=None``, or a member None in ``header``, leave that
        member out."""
        head: dict[str, Any] = {"alg": self.alg, "typ": "JWT", "kid": self.kid}
        if kid is not ...:
            head["kid"] = kid
        if alg is not ...:
            head["alg"] = alg
        head.update(header or {})
        head = {k: v for k, v in head.items() if v is not None}
        signing_input = f"{encode_json(head)}.{encode_json(dict(claims))}"
        return f"{signing_input}.{b64(self.raw_signature(signing_input.encode()))}"


@functools.cache
def _rsa_key(bits: int, seed: int) -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@functools.cache
def _ec_key(seed: int) -> Any:
    return ec.generate_private_key(ec.SECP256R1())


def rsa_signer(kid: str, bits: int = 2048, seed: int = 0) -> Signer:
    """An RS256 signer; the key is made once per (bits, seed) per process."""
    return Signer(kid, "RS256", _rsa_key(bits, seed))


def ec_signer(kid: str, seed: int = 0) -> Signer:
    """An ES256 signer; the key is made once per seed per process."""
    return Signer(kid, "ES256", _ec_key(seed))


def jwks(signers: Iterable[Signer]) -> dict[str, Any]:
    return {"keys": [s.jwk for s in signers]}


def decode_header(token: str) -> dict[str, Any]:
    """The (unverified) header of a compact JWS."""
    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))


def hs256(claims: Mapping[str, Any], secret: bytes, header: Mapping[str, Any]) -> str:
    """An HS256 token (what an algorithm-confusion attack sends)."""
    signing_input = f"{encode_json({'alg': 'HS256', **header})}.{encode_json(dict(claims))}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def unsigned(claims: Mapping[str, Any], header: Mapping[str, Any]) -> str:
    """An ``alg: none`` token (empty signature)."""
    return f"{encode_json({'alg': 'none', **header})}.{encode_json(dict(claims))}."
