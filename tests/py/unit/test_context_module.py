"""Unit tests of plpython/context.py, without a database: slots mirror the setting's transaction rules."""

from __future__ import annotations

import pytest

from plpython import context


def _st(gd: dict) -> context.State:
    st = context.state(gd)
    st.hooked = True  # no PostgreSQL here: the tests drive the callbacks by hand
    return st


def test_session_outlives_transactions_local_does_not() -> None:
    gd: dict = {}
    st = _st(gd)
    s = context.issue(gd, "p", 1, "app", False)
    context.on_xact(st, context.XACT_COMMIT)
    loc = context.issue(gd, "c", 2, "app", True)
    assert context.verify(gd, loc).tenant == "c"
    context.on_xact(st, context.XACT_COMMIT)
    assert context.verify(gd, loc) is None, "a local token is dead once its transaction ended"
    assert context.verify(gd, s).tenant == "p"


def test_abort_puts_the_session_context_back() -> None:
    gd: dict = {}
    st = _st(gd)
    a = context.issue(gd, "a", 2, "app", False)
    context.on_xact(st, context.XACT_COMMIT)
    b = context.issue(gd, "b", 2, "app", False)
    context.on_xact(st, context.XACT_ABORT)
    assert context.verify(gd, a).tenant == "a", (
        "the rolled-back transaction's setting is restored: no forgery"
    )
    assert context.verify(gd, b) is None


def test_rollback_to_savepoint_restores_the_earlier_local_context() -> None:
    gd: dict = {}
    st = _st(gd)
    a = context.issue(gd, "a", 2, "app", True)
    context.on_subxact(st, context.SUBXACT_START)
    b = context.issue(gd, "b", 1, "app", True)
    assert st.shape == 1
    context.on_subxact(st, context.SUBXACT_ABORT)
    assert context.verify(gd, a).tenant == "a"
    assert context.verify(gd, b) is None
    assert st.shape == 2


def test_reset_kills_every_token() -> None:
    gd: dict = {}
    _st(gd)
    s = context.issue(gd, "a", 2, "app", False)
    loc = context.issue(gd, "b", 2, "app", True)
    context.reset(gd)
    assert context.verify(gd, s) is None
    assert context.verify(gd, loc) is None


def test_shape_change_resets_plans_once() -> None:
    gd: dict = {}
    st = _st(gd)
    calls: list[int] = []
    st.reset_plans = lambda: calls.append(1)
    context.issue(gd, "c1", 2, "app", True)
    context.issue(gd, "c2", 2, "app", True)
    assert calls == [1]
    context.issue(gd, "p", 1, "app", True)
    assert calls == [1, 1]


def test_each_partner_gets_its_own_plans_and_wide_partners_share_one_shape() -> None:
    gd: dict = {}
    st = _st(gd)
    calls: list[int] = []
    st.reset_plans = lambda: calls.append(1)
    context.issue(gd, "p", 1, "app", True, ("p", "c"))
    assert context.plan_partner(gd).visible == ("p", "c") and len(calls) == 1
    context.issue(gd, "p", 1, "app", True, ("p", "c"))  # the same partner again: plans kept
    assert len(calls) == 1
    context.issue(gd, "q", 1, "app", True, ("q",))  # another partner: its set is not P's
    assert context.plan_partner(gd).tenant == "q" and len(calls) == 2
    big = tuple(str(i) for i in range(context.FOLD_LIMIT + 1))
    context.issue(gd, "w1", 1, "app", True, ("w1", *big))
    assert st.shape == context.WIDE and context.plan_partner(gd) is None and len(calls) == 3
    context.issue(gd, "w2", 1, "app", True, ("w2", *big))  # no set in the plan: nothing to redo
    assert len(calls) == 3
    context.issue(gd, "c", 2, "app", True)
    assert context.plan_partner(gd) is None and len(calls) == 4


def test_a_partner_plan_runs_only_for_its_partner() -> None:
    assert context.for_partner(context.Context("p", 1, "app", ("p", "c")), "p") is True
    assert context.for_partner(None, "p") is False
    assert context.for_partner(context.Context("r", 0, "x"), "p") is False
    for other in (context.Context("q", 1, "app", ("q",)), context.Context("c", 2, "app", ("c",))):
        with pytest.raises(context.StalePlan):
            context.for_partner(other, "p")
    with pytest.raises(context.StalePlan):
        context.for_partner(context.Context("p", 1, "app", ("p",)), None)


def test_for_shape_refuses_another_tier() -> None:
    ctx = context.Context("p", 1, "app", ("p", "c"))
    with pytest.raises(context.StalePlan):
        context.for_shape(ctx, 2)
    assert context.for_shape(None, 2) is None
    assert context.for_shape(context.Context("r", 0, "x"), 2).tier == 0


def test_audit_rate_limit_summarises_instead_of_silencing() -> None:
    audit = {"window": 0.0, "seen": set(), "suppressed": 0, "total": 0}
    emitted = [context.audit_decision(audit, f"t{i}", 100.0)[0] for i in range(context.AUDIT_BURST + 30)]
    assert sum(emitted) == context.AUDIT_BURST
    emit, summary = context.audit_decision(audit, "late", 100.0 + context.AUDIT_WINDOW)
    assert emit and summary == 30


def test_lookup_caches_only_fresh_answers() -> None:
    gd: dict = {}
    info = context.TenantInfo(2, "active", ("t",))
    n = []

    def fetch(_t: str) -> context.Fetched:
        n.append(1)
        return context.Fetched(info, fresh=False, stale=False)

    context.lookup(gd, "t", (1, 1, 1), fetch)
    context.lookup(gd, "t", (1, 1, 1), fetch)
    assert len(n) == 2, "an answer from a snapshot that missed the latest write is not cached"
    assert context.lookup(gd, "t", (1, 1, 1), lambda _t: context.Fetched(None, False, True)) == (None, True)
