"""Unit tests of plpython/context.py, without a database: the registry behind tenancy.ctx."""

from __future__ import annotations

from plpython import context

T1, T2 = 1000.0, 1001.0  # the start of two transactions (epoch seconds, as now() gives them)


def test_a_minted_token_is_in_force_and_another_value_is_not() -> None:
    gd: dict = {}
    tok = context.mint(gd, "c", 2, None, False, T1)
    assert context.lookup(gd, tok, T1)[:3] == ("c", 2, "{c}")
    assert context.lookup(gd, tok, T2) is not None  # a session context outlives its transaction
    assert context.lookup(gd, "f" * 32, T1) is None
    assert context.forged(gd, "f" * 32, T1)
    assert not context.forged(gd, "", T1)
    assert not context.forged(gd, None, T1)


def test_a_transaction_context_is_bound_to_its_transaction() -> None:
    gd: dict = {}
    tok = context.mint(gd, "c", 2, None, True, T1)
    assert context.lookup(gd, tok, T1) is not None
    assert context.lookup(gd, tok, T2) is None
    assert context.forged(gd, tok, T2)


def test_transaction_tokens_of_earlier_transactions_are_dropped_at_the_next_mint() -> None:
    gd: dict = {}
    old = context.mint(gd, "c", 2, None, True, T1)
    same = context.mint(gd, "d", 2, None, True, T1)
    new = context.mint(gd, "e", 2, None, True, T2)
    reg = context.registry(gd)
    assert old not in reg.entries and same not in reg.entries
    assert new in reg.entries


def test_earlier_contexts_of_the_transaction_stay_restorable() -> None:
    """ROLLBACK TO SAVEPOINT puts an earlier value back: it must still be a context."""
    gd: dict = {}
    first = context.mint(gd, "c", 2, None, True, T1)
    context.mint(gd, "d", 2, None, True, T1)
    assert context.lookup(gd, first, T1) is not None
    session = context.mint(gd, "p", 1, "{p,c}", False, T1)
    context.mint(gd, "q", 1, "{q}", False, T2)
    assert context.lookup(gd, session, T2) is not None  # a rolled-back later set_tenant puts it back


def test_session_tokens_are_bounded() -> None:
    gd: dict = {}
    first = context.mint(gd, "c", 2, None, False, T1)
    for _ in range(context.SESSION_KEEP):
        context.mint(gd, "c", 2, None, False, T1)
    assert context.lookup(gd, first, T1) is None
    assert len(context.registry(gd).session) == context.SESSION_KEEP


def test_tokens_are_unique_and_unguessable_per_backend() -> None:
    a, b = {}, {}
    ta = {context.new_token(a) for _ in range(1000)}
    tb = {context.new_token(b) for _ in range(1000)}
    assert len(ta) == 1000 and not ta & tb
    assert all(len(t) == 32 for t in ta)


def test_visible_literal_per_tier() -> None:
    assert context.visible_literal(2, "c", None) == "{c}"
    assert context.visible_literal(1, "p", ["p", "c"]) == "{p,c}"
    assert context.visible_literal(1, "p", "{p,c}") == "{p,c}"
    assert context.visible_literal(0, "r", None) == "{}"


def test_audit_goes_through_sql_with_identity() -> None:
    calls = []

    class Plpy:
        def prepare(self, sql, types):
            calls.append(("prepare", sql, tuple(types)))
            return "plan"

        def execute(self, plan, args):
            calls.append(("execute", plan, tuple(args)))

    gd: dict = {}
    context.audit(Plpy(), gd, "refused_context", "x", "why", "TN008")
    context.audit(Plpy(), gd, "refused_context", "y", "why", "TN008")
    assert [c[0] for c in calls] == ["prepare", "execute", "execute"]
    assert "tenancy._audit" in calls[0][1]
