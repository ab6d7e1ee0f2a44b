"""plpython/citus.py: the signed contexts Citus workers verify, without a database."""

from __future__ import annotations

import pytest

from plpython import citus as C

KEY = b"k" * 32
T2 = "20000000-0000-0000-0000-000000000011"
T1 = "10000000-0000-0000-0000-000000000001"
NOW = 1_796_000_000.5
GPID = 10000012345


def signed(tenant: str = T2, tier: int = 2, visible: tuple[str, ...] | None = (T2,), now: float = NOW) -> str:
    return C.sign(KEY, tenant, tier, visible, int(now * 1000), 300, GPID)


def run(
    gd: dict,
    value: str | None,
    now: float = NOW,
    gpid: int | None = GPID,
    txn=(1, 7),
    key: bytes | None = KEY,
):
    refused: list[tuple[str, str]] = []
    got = C.current(
        gd, value, now, lambda: (key, gpid, txn), lambda: None, lambda v, r: refused.append((v, r))
    )
    return got, refused


def test_a_signed_context_round_trips() -> None:
    got, refused = run({}, signed(T1, 1, (T1, T2)))
    assert refused == []
    assert got is not None and (got.tenant, got.tier, got.visible) == (T1, 1, (T1, T2))


def test_tier0_carries_no_visible_set() -> None:
    got, _ = run({}, signed(T1, 0, None))
    assert got is not None and got.tier == 0 and got.visible is None
    assert ".0.*." in signed(T1, 0, None)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: [*p[:-1], "0" * 32],
        lambda p: [*p[:2], "0", "*", *p[4:]],
        lambda p: [*p[:3], p[3] + "~" + "1" * 32, *p[4:]],
        lambda p: [*p[:5], str(int(p[5]) + 10**9), *p[6:]],
        lambda p: [*p[:6], "1", *p[7:]],
        lambda p: ["c2", *p[1:]],
        lambda p: p[:7],
    ],
)
def test_any_change_is_refused_and_audited_once(mutate) -> None:
    value = ".".join(mutate(signed().split(".")))
    gd: dict = {}
    got, refused = run(gd, value)
    assert got is None and len(refused) == 1
    got, refused = run(gd, value, now=NOW + 1)
    assert got is None and refused == []


def test_a_key_that_differs_is_refused() -> None:
    got, refused = run({}, signed(), key=b"x" * 32)
    assert got is None and "bad signature" in refused[0][1]
    got, refused = run({}, signed(), key=None)
    assert got is None and "no cluster key" in refused[0][1]


def test_a_rotated_key_is_reloaded_once() -> None:
    value = C.sign(b"n" * 32, T2, 2, (T2,), int(NOW * 1000), 300, GPID)
    got = C.current({}, value, NOW, lambda: (KEY, GPID, (1, 7)), lambda: b"n" * 32, lambda v, r: None)
    assert got is not None and got.tenant == T2


def test_expired_and_future_contexts_are_refused() -> None:
    assert run({}, signed(), now=NOW + 301)[0] is None
    assert run({}, signed(), now=NOW + 299)[0] is not None
    assert run({}, signed(now=NOW + 3600), now=NOW)[0] is None


def test_another_coordinator_session_is_refused() -> None:
    got, refused = run({}, signed(), gpid=GPID + 1)
    assert got is None and "session" in refused[0][1]
    assert run({}, signed(), gpid=None)[0] is None


def test_a_later_distributed_transaction_of_the_same_backend_is_a_replay() -> None:
    gd: dict = {}
    value = signed()
    assert run(gd, value, txn=(1, 7))[0] is not None
    assert run(gd, value, now=NOW + 0.001, txn=(1, 7))[0] is not None  # same distributed transaction
    got, refused = run(gd, value, now=NOW + 1, txn=(1, 8))
    assert got is None and "replayed" in refused[0][1]


def test_the_issuing_backend_accepts_only_its_own_transaction() -> None:
    gd: dict = {}
    value = signed()
    s, _, _ = C.parse(value)
    C.issued(gd, value, NOW, s)
    assert run(gd, value, gpid=None, key=None)[0] == s  # no key, no Citus lookup needed
    got, refused = run(gd, value, now=NOW + 5)
    assert got is None and "later transaction" in refused[0][1]
    # forgotten (reset_tenant), then shown again with an application_name naming this session
    C.forget(gd)
    gd.pop(C.REFUSED_KEY)  # (the value's refusal was audited above: once per value)
    got, refused = run(gd, value, now=NOW, txn=(1, 9))
    assert got is None and "no longer holds" in refused[0][1]
    # another backend (a worker's) accepts it: it never signed
    assert run({}, value, now=NOW, txn=(1, 9))[0] == s


def test_every_value_signed_in_the_transaction_stays_in_force_after_rollback_to_savepoint() -> None:
    gd: dict = {}
    first, second = signed(T2), signed(T1, 1, (T1, T2))
    for value in (first, second):
        C.issued(gd, value, NOW, C.parse(value)[0])
    assert run(gd, second, gpid=None, key=None)[0].tenant == T1
    assert run(gd, first, gpid=None, key=None)[0].tenant == T2  # put back by ROLLBACK TO SAVEPOINT
    # a new transaction starts a new set
    third = signed(T2, now=NOW + 10)
    C.issued(gd, third, NOW + 10, C.parse(third)[0])
    got, refused = run(gd, first, now=NOW + 10, gpid=None)
    assert got is None and refused


def test_empty_values_are_no_context_without_audit() -> None:
    assert run({}, None) == (None, [])
    assert run({}, "") == (None, [])


def test_results_are_cached_per_value_and_transaction() -> None:
    gd: dict = {}
    calls: list[int] = []

    def env():
        calls.append(1)
        return KEY, GPID, (1, 7)

    value = signed()
    for _ in range(3):
        assert C.current(gd, value, NOW, env, lambda: None, lambda v, r: None) is not None
    assert len(calls) == 1


def test_the_gpid_comes_from_citus_application_name_only() -> None:
    assert C.gpid_of("citus_internal gpid=10000012345") == 10000012345
    assert C.gpid_of("citus_internal gpid=10000012345 extra") == 10000012345
    for name in (
        None,
        "",
        "psql",
        "citus_internal gpid=",
        "citus_internal gpid=12x",
        "x citus_internal gpid=1",
    ):
        assert C.gpid_of(name) is None
