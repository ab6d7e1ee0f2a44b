"""Timing of the pure JWT verifier (plpython/identity.py) against the SPEC §6 targets.

    .venv/bin/python bench/identity_timing.py

First verification (no cache) of an RS256 and an ES256 token, and a cache hit: the best of a few
timeit repeats, per call, in CPU time.  Also, without a target, the one-off costs of a backend:
parsing a JWKS (the cryptography key objects; an EC point is checked on the curve) and loading the
module the way the extension loads it (compile + exec of the source).  Needs no database (tokens
are made with the dev dependency cryptography; the verifier uses the virtualenv's cryptography
here, the distribution's in the server).
"""

from __future__ import annotations

import sys
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "py"))

from jwt_factory import ec_signer, jwks, rsa_signer  # noqa: E402

from plpython import identity  # noqa: E402

ISS = "https://clerk.example.com"
TARGETS = {"RS256 first verify": 1e-3, "ES256 first verify": 1e-3, "cache hit": 1e-4}


def per_call(fn, number: int) -> float:
    """Best of 7 repeats, per call, in CPU time of this process (robust to other load on the machine)."""
    return min(timeit.repeat(fn, number=number, repeat=7, timer=time.process_time)) / number


def main() -> int:
    rs, es = rsa_signer("rsa-1"), ec_signer("ec-1")
    issuers = {ISS: identity.make_issuer(ISS, jwks([rs, es]), tenant_claim="o.id", audiences=None)}
    now = time.time()
    claims = {
        "iss": ISS,
        "sub": "user_1",
        "exp": now + 3600,
        "iat": now,
        "nbf": now,
        "azp": "https://app.example.com",
        "o": {"id": "org_1", "rol": "admin"},
        "sid": "sess_1",
    }
    rs_token, es_token = rs.sign(claims), es.sign(claims)
    cache: dict = {}
    identity.verify(es_token, issuers, now, cache=cache)
    results = {
        "RS256 first verify": per_call(lambda: identity.verify(rs_token, issuers, now), 200),
        "ES256 first verify": per_call(lambda: identity.verify(es_token, issuers, now), 50),
        "cache hit": per_call(lambda: identity.verify(es_token, issuers, now, cache=cache), 20000),
    }
    for name, seconds in results.items():
        verdict = "PASS" if seconds <= TARGETS[name] else "MISS"
        print(f"{name:22} {seconds * 1e6:9.1f} µs   target ≤ {TARGETS[name] * 1e6:.0f} µs   {verdict}")
    source = (ROOT / "plpython" / "identity.py").read_text(encoding="utf-8")
    once = {
        "parse JWKS, 1 RSA key": per_call(lambda: identity.parse_jwks(jwks([rs])), 200),
        "parse JWKS, 1 EC key": per_call(lambda: identity.parse_jwks(jwks([es])), 10),
        "load module": per_call(
            lambda: exec(
                compile(source, "plpython/identity.py", "exec"),
                {"__name__": "plpython.identity", "__package__": "plpython"},
            ),
            5,
        ),
    }
    for name, seconds in once.items():
        print(f"{name:22} {seconds * 1e6:9.1f} µs   (once per backend)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
