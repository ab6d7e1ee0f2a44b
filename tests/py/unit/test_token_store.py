"""plpython/token_store.py on its own: chains, subtrees, labels, the subtree check and the cache."""

from __future__ import annotations

import pytest

from plpython import token_store

ROOT, P1, P2, C1, C2, C3 = (f"00000000-0000-0000-0000-00000000000{i}" for i in range(1, 7))
UUID = "00000000-0000-0000-0000-0000000000a1"
TENANTS = [
    {"id": ROOT, "parent_id": None, "tier": 0, "slug": "platform"},
    {"id": P1, "parent_id": ROOT, "tier": 1, "slug": "bsu"},
    {"id": P2, "parent_id": ROOT, "tier": 1, "slug": "pxw"},
    {"id": C1, "parent_id": P1, "tier": 2, "slug": "acme"},
    {"id": C2, "parent_id": P1, "tier": 2, "slug": "globex"},
    {"id": C3, "parent_id": P1, "tier": 2, "slug": "hooli"},
    {"id": UUID, "parent_id": P2, "tier": 2, "slug": "initech"},
]
BY_ID = token_store.index(TENANTS)
BASE = {"color": {"$type": "color", "text": {"$value": "#333333"}, "bg": {"$value": "#ffffff"}}}
CONTRAST = {
    "tenant_id": ROOT,
    "path": "color.text",
    "rule": "min_contrast",
    "params": {"against": "color.bg", "ratio": 4.5},
}


def test_chain_and_subtree() -> None:
    assert token_store.chain(BY_ID, C1) == [ROOT, P1, C1]
    assert token_store.chain(BY_ID, ROOT) == [ROOT]
    assert token_store.subtree(BY_ID, P1) == [P1, C1, C2, C3]
    assert token_store.subtree(BY_ID, ROOT) == [ROOT, P1, P2, C1, C2, C3, UUID]


def test_labels() -> None:
    assert token_store.label(BY_ID, C1) == "bsu/acme"
    assert token_store.label(BY_ID, ROOT) == "platform"
    assert token_store.relabel(f"tenant {UUID} cannot", BY_ID) == "tenant 'pxw/initech' cannot"
    other = "00000000-0000-0000-0000-0000000000ff"
    assert token_store.relabel(f"tenant {other}", BY_ID) == f"tenant {other}"


def test_check_tops_keeps_the_highest_of_each_branch() -> None:
    assert token_store.check_tops(BY_ID, [C1, P1, UUID, "unknown"]) == [P1, UUID]


def test_effective_applies_only_ancestors_rules() -> None:
    layers = {ROOT: BASE, P1: {"color": {"text": {"$value": "#777777"}}}}
    lock = {"tenant_id": P1, "path": "color.text", "rule": "lock", "params": {}}
    eff = token_store.effective(BY_ID, layers, [lock], P1)
    assert eff["color"]["text"]["$value"] == "#777777"  # a tenant's own rule does not bind it


def test_check_subtree_finds_descendants_and_folds_empty_siblings() -> None:
    layers = {ROOT: BASE, P1: {"color": {"text": {"$value": "#eeeeee"}}}, C1: None, C2: "{}", C3: None}
    found = token_store.check_subtree(BY_ID, layers, [CONTRAST], P1)
    assert len(found) == 1  # one violation per (path, rule, owner)
    (v,) = found
    assert (v["path"], v["rule"], v["owner"], v["tenant"]) == ("color.text", "min_contrast", ROOT, P1)
    # globex and hooli share acme's (empty) layer: judged once, named by count
    assert "also in the tokens of 'bsu/acme'" in v["message"]


def test_check_subtree_reports_descendants_own_violations() -> None:
    lock = {"tenant_id": P1, "path": "space", "rule": "lock", "params": {}}
    layers = {ROOT: BASE, C1: {"space": {"$type": "dimension", "md": {"$value": "4px"}}}}
    found = token_store.check_subtree(BY_ID, layers, [lock], P1)
    assert {(v["path"], v["rule"], v["owner"], v["tenant"]) for v in found} == {
        ("space", "lock", P1, C1),  # the group's own $type
        ("space.md", "lock", P1, C1),
    }
    assert found[0]["message"].startswith("in the tokens of descendant 'bsu/acme'")


def test_check_subtree_clean() -> None:
    layers = {ROOT: BASE}
    assert token_store.check_subtree(BY_ID, layers, [CONTRAST], ROOT) == []


def test_progress_is_reported() -> None:
    seen: list[tuple[int, int]] = []
    token_store.check_subtree(BY_ID, {ROOT: BASE}, [], ROOT, lambda n, of: seen.append((n, of)))
    assert seen[-1] == (7, 7)


def test_refusal_names_path_rule_and_owner() -> None:
    layers = {ROOT: BASE, P1: {"color": {"text": {"$value": "#eeeeee"}, "bg": {"$value": "#fefefe"}}}}
    found = token_store.check_subtree(BY_ID, layers, [CONTRAST], P1)
    sqlstate, message, hint, detail = token_store.refusal(found, BY_ID, P1)
    assert sqlstate == "TN004"
    assert "color.text" in message and "min_contrast" in message and "'platform'" in message
    assert ROOT in message  # the owner by id as well as by path
    assert "Nothing was written" in hint
    assert detail == ""  # one violation, nothing more to tell


def test_cache_is_keyed_and_bounded() -> None:
    cache = token_store.Cache(size=2)
    cache.put("a", "k1", "json", "A1")
    assert cache.get("a", "k1", "json") == "A1"
    assert cache.get("a", "k2", "json") is None  # another fingerprint is a miss
    cache.put("a", "k1", "css::root", "CSS")
    assert cache.get("a", "k1", "json") == "A1"  # same key: entries accumulate
    cache.put("a", "k2", "json", "A2")
    assert cache.get("a", "k1", "css::root") is None  # a new key drops the old entries
    cache.put("b", "k", "json", "B")
    cache.put("c", "k", "json", "C")
    assert cache.get("a", "k2", "json") is None  # oldest out
    assert cache.get("c", "k", "json") == "C"


def test_a_descendant_broken_by_the_write_is_a_violation_not_a_crash() -> None:
    layers = {ROOT: BASE, P1: {}, C1: {"color": {"link": {"$value": "{brand.accent}"}}}}
    found = token_store.check_subtree(BY_ID, layers, [], P1)
    assert [(v["path"], v["rule"], v["owner"], v["tenant"]) for v in found] == [
        ("color.link", "valid", P1, C1)
    ]
    assert "descendant 'bsu/acme'" in found[0]["message"] and "brand.accent" in found[0]["message"]


def test_a_malformed_candidate_is_still_an_error() -> None:
    layers = {ROOT: BASE, P1: {"color": {"x": {"$value": "{nope}"}}}}
    with pytest.raises(token_store.tokens.TokenError) as exc:
        token_store.check_subtree(BY_ID, layers, [], P1)
    assert exc.value.sqlstate == "22023"
