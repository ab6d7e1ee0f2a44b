"""Unit and property tests of plpython/context.py, without a database."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from plpython import context


def test_issue_and_verify_session() -> None:
    gd: dict = {}
    tok = context.issue(gd, "t1", 2, "app", False, "1.0")
    assert context.verify(gd, tok, "1.0")[:3] == ("t1", 2, "app")
    assert context.verify(gd, tok, "2.0")[:3] == ("t1", 2, "app"), "a session context outlives transactions"


def test_local_bound_to_transaction() -> None:
    gd: dict = {}
    tok = context.issue(gd, "t1", 2, "app", True, "1.0")
    assert context.verify(gd, tok, "1.0") is not None
    assert context.verify(gd, tok, "2.0") is None


def test_local_overrides_session_and_session_survives() -> None:
    gd: dict = {}
    s = context.issue(gd, "partner", 1, "app", False, "1.0")
    l_tok = context.issue(gd, "cust", 2, "app", True, "2.0")
    assert context.verify(gd, l_tok, "2.0").tenant == "cust"
    # the transaction ends: PostgreSQL puts the session token back into the setting
    assert context.verify(gd, s, "3.0").tenant == "partner"


def test_session_set_kills_the_transaction_token() -> None:
    gd: dict = {}
    l_tok = context.issue(gd, "cust", 2, "app", True, "1.0")
    context.issue(gd, "partner", 1, "app", False, "1.0")
    assert context.verify(gd, l_tok, "1.0") is None


def test_reset_kills_every_token() -> None:
    gd: dict = {}
    s = context.issue(gd, "a", 2, "app", False, "1.0")
    l_tok = context.issue(gd, "b", 2, "app", True, "1.0")
    context.reset(gd)
    assert context.verify(gd, s, "1.0") is None
    assert context.verify(gd, l_tok, "1.0") is None


def test_tokens_are_unique_in_a_backend() -> None:
    gd: dict = {}
    tokens = {context.issue(gd, "a", 2, "app", i % 2 == 0, "1.0") for i in range(1000)}
    assert len(tokens) == 1000


@given(st.lists(st.tuples(st.text(min_size=1, max_size=8), st.booleans()), min_size=2, max_size=12))
def test_only_the_latest_token_per_slot_is_live(steps: list[tuple[str, bool]]) -> None:
    gd: dict = {}
    issued = [(context.issue(gd, tenant, 2, "r", local, "tx"), local) for tenant, local in steps]
    live = {gd[context.STATE_KEY]["s"][0] if gd[context.STATE_KEY]["s"] else None}
    if gd[context.STATE_KEY]["l"]:
        live.add(gd[context.STATE_KEY]["l"][0])
    for tok, _ in issued:
        assert (context.verify(gd, tok, "tx") is not None) == (tok in live)


@given(st.text(max_size=40))
def test_unknown_tokens_are_no_context(token: str) -> None:
    gd: dict = {}
    a = context.issue(gd, "a", 2, "app", False, "1.0")
    b = context.issue(gd, "b", 2, "app", True, "1.0")
    if token not in {a, b}:
        assert context.verify(gd, token, "1.0") is None


def test_visible_set_is_fixed_at_issue() -> None:
    gd: dict = {}
    tok = context.issue(gd, "p", 1, "app", True, "1.0", ("p", "c1", "c2"))
    assert context.verify(gd, tok, "1.0").visible == ("p", "c1", "c2")


def test_forgery_is_reported_once_per_setting() -> None:
    gd: dict = {}
    context.issue(gd, "a", 2, "app", False, "1.0")
    seen: list[str] = []
    for _ in range(3):
        assert context.current(gd, "forged", "1.0", seen.append) is None
    assert len(seen) == 1 and "forged" in seen[0]
    assert context.current(gd, "", "1.0", seen.append) is None
    assert len(seen) == 1, "no setting is no forgery"


class Fetcher:
    def __init__(self) -> None:
        self.calls = 0
        self.status = "active"

    def __call__(self, tenant: str) -> context.TenantInfo:
        self.calls += 1
        return context.TenantInfo(2, self.status, (tenant,))


def test_lookup_caches_per_version() -> None:
    gd: dict = {}
    fetch = Fetcher()
    assert context.lookup(gd, "t", 5, 0.0, fetch).status == "active"
    context.lookup(gd, "t", 5, 0.5, fetch)
    assert fetch.calls == 1, "a hit at the same version"
    fetch.status = "suspended"
    assert context.lookup(gd, "t", 6, 0.6, fetch).status == "suspended", "a new version empties the cache"
    assert fetch.calls == 2


def test_lookup_never_trusts_an_older_version() -> None:
    gd: dict = {}
    fetch = Fetcher()
    context.lookup(gd, "t", 7, 0.0, fetch)
    fetch.status = "suspended"
    assert context.lookup(gd, "t", 3, 0.1, fetch).status == "suspended"
    assert fetch.calls == 2


def test_lookup_entries_expire() -> None:
    gd: dict = {}
    fetch = Fetcher()
    context.lookup(gd, "t", 1, 0.0, fetch)
    context.lookup(gd, "t", 1, context.CACHE_TTL + 0.1, fetch)
    assert fetch.calls == 2
