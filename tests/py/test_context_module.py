"""Unit and property tests of plpython/context.py, without a database."""

from __future__ import annotations

import context
from hypothesis import given
from hypothesis import strategies as st


def test_issue_and_verify_session() -> None:
    gd: dict = {}
    tok = context.issue(gd, "t1", 2, "app", False, "1.0")
    assert context.verify(gd, tok, "", "1.0") == ("t1", 2, "app")
    assert context.verify(gd, tok, "", "2.0") == ("t1", 2, "app"), "a session context outlives transactions"


def test_local_bound_to_transaction() -> None:
    gd: dict = {}
    tok = context.issue(gd, "t1", 2, "app", True, "1.0")
    assert context.verify(gd, "", tok, "1.0") is not None
    assert context.verify(gd, "", tok, "2.0") is None


def test_local_overrides_session_and_session_survives() -> None:
    gd: dict = {}
    s = context.issue(gd, "partner", 1, "app", False, "1.0")
    l_tok = context.issue(gd, "cust", 2, "app", True, "2.0")
    assert context.verify(gd, s, l_tok, "2.0").tenant == "cust"
    assert context.verify(gd, s, "", "3.0").tenant == "partner"


def test_invalid_local_never_falls_back_to_session() -> None:
    gd: dict = {}
    s = context.issue(gd, "partner", 1, "app", False, "1.0")
    assert context.verify(gd, s, "forged", "1.0") is None


def test_reset_kills_every_token() -> None:
    gd: dict = {}
    s = context.issue(gd, "a", 2, "app", False, "1.0")
    context.reset(gd)
    assert context.verify(gd, s, "", "1.0") is None


@given(st.lists(st.tuples(st.text(min_size=1, max_size=8), st.booleans()), min_size=2, max_size=12))
def test_only_the_latest_token_per_slot_is_live(steps: list[tuple[str, bool]]) -> None:
    gd: dict = {}
    issued = [(context.issue(gd, tenant, 2, "r", local, "tx"), local) for tenant, local in steps]
    live_local = next((t for t, loc in reversed(issued) if loc), None)
    for tok, local in issued[:-1]:
        if local and tok != live_local:
            assert context.verify(gd, "", tok, "tx") is None
        if not local:
            last_session_index = max(i for i, (_, loc) in enumerate(issued) if not loc)
            if issued[last_session_index][0] != tok:
                assert context.verify(gd, tok, "", "tx") is None


@given(st.text(max_size=40))
def test_unknown_tokens_are_no_context(token: str) -> None:
    gd: dict = {}
    context.issue(gd, "a", 2, "app", False, "1.0")
    context.issue(gd, "b", 2, "app", True, "1.0")
    live = {gd[context.STATE_KEY]["s"][0], gd[context.STATE_KEY]["l"][0]}
    if token not in live:
        assert context.verify(gd, token, "", "1.0") is None
        assert context.verify(gd, "", token, "1.0") is None if token else True
