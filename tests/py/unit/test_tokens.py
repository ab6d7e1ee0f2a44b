"""Unit and property tests of plpython/tokens/ (design tokens), without a database."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plpython import tokens

TokenError = tokens.TokenError


def raises(sqlstate: str, fn: Any, *args: Any) -> TokenError:
    with pytest.raises(TokenError) as info:
        fn(*args)
    assert info.value.sqlstate == sqlstate, info.value.message
    return info.value


def doc_from(flat: dict[str, Any]) -> dict:
    """{'a.b': token} -> nested document."""
    out: dict = {}
    for path, token in flat.items():
        node = out
        *parents, leaf = path.split(".")
        for seg in parents:
            node = node.setdefault(seg, {})
        node[leaf] = token
    return out


def value_at(tree: dict, path: str) -> Any:
    node: Any = tree
    for seg in path.split("."):
        node = node[seg]
    return node["$value"]


def node_at(tree: dict, path: str) -> Any:
    node: Any = tree
    for seg in path.split("."):
        if not isinstance(node, dict) or seg not in node:
            return None
        node = node[seg]
    return node


def lock(owner: str, path: str, tier: int = 0) -> dict:
    return {"owner": owner, "owner_tier": tier, "path": path, "rule": "lock", "params": None}


# --------------------------------------------------------------------------------------------------
# WCAG contrast


def reference_ratio(a: str, b: str) -> float:
    """An independent, straight-from-the-text WCAG 2.x computation for 6-digit hex colors."""

    def lum(h: str) -> float:
        chans = [int(h[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in chans]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    la, lb = lum(a), lum(b)
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


def test_contrast_black_white_is_21() -> None:
    assert tokens.contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0, abs=1e-12)
    assert tokens.contrast_ratio("#fff", "#000") == pytest.approx(21.0, abs=1e-12)


def test_contrast_hand_computed_grays() -> None:
    r777 = tokens.contrast_ratio("#777777", "#ffffff")
    r767 = tokens.contrast_ratio("#767676", "#ffffff")
    assert r777 == pytest.approx(4.478, abs=5e-4)
    assert r777 < 4.5, "#777777 on white fails AA"
    assert r767 == pytest.approx(4.542, abs=5e-4)
    assert r767 >= 4.5, "#767676 on white passes AA"
    assert r777 == pytest.approx(reference_ratio("#777777", "#ffffff"), rel=1e-12)


def test_contrast_same_color_is_one() -> None:
    for c in ("#000000", "#0050b3", "#ffffff", "#abc"):
        assert tokens.contrast_ratio(c, c) == pytest.approx(1.0, abs=1e-12)


hex6 = st.integers(0, 0xFFFFFF).map(lambda n: f"#{n:06x}")


@given(hex6, hex6)
def test_contrast_symmetric_bounded_and_matches_reference(a: str, b: str) -> None:
    ab = tokens.contrast_ratio(a, b)
    assert ab == tokens.contrast_ratio(b, a)
    assert 1.0 <= ab <= 21.0 + 1e-9
    assert ab == pytest.approx(reference_ratio(a, b), rel=1e-12)


def test_contrast_boundary_is_compared_unrounded() -> None:
    ratio = tokens.contrast_ratio("#d33980", "#ffffff")
    assert 4.4999 < ratio < 4.5
    assert round(ratio, 2) == 4.5, "rounding would wrongly pass it"
    root = {"color": {"$type": "color", "text": {"$value": "#d33980"}, "bg": {"$value": "#ffffff"}}}
    rules = [
        {
            "owner": "root",
            "owner_tier": 0,
            "path": "color.text",
            "rule": "min_contrast",
            "params": {"against": "color.bg", "ratio": 4.5},
        }
    ]
    found = tokens.violations([("root", root), ("c", {})], rules, "c")
    assert [(v["path"], v["rule"], v["owner"]) for v in found] == [("color.text", "min_contrast", "root")]
    assert "4.499:1" in found[0]["message"], found[0]["message"]


def test_color_forms_agree() -> None:
    same = ["#fff", "#ffff", "#ffffff", "#FFFFFFFF", {"colorSpace": "srgb", "components": [1, 1, 1]}]
    for c in same:
        assert tokens.parse_color(c) == (1.0, 1.0, 1.0, 1.0), c
    assert tokens.relative_luminance("#ffffff") == pytest.approx(1.0)
    assert tokens.relative_luminance("#000") == 0.0
    assert tokens.parse_color("#0000") == (0.0, 0.0, 0.0, 0.0)


def test_translucent_foreground_is_composited_over_background() -> None:
    alpha = 0x80 / 255
    blended = {"colorSpace": "srgb", "components": [1 - alpha] * 3}
    assert tokens.contrast_ratio("#00000080", "#ffffff") == pytest.approx(
        tokens.contrast_ratio(blended, "#ffffff"), rel=1e-12
    )
    assert tokens.contrast_ratio("#00000000", "#ffffff") == pytest.approx(1.0)


@pytest.mark.parametrize(
    "bad",
    [
        "#12",
        "#12345",
        "red",
        "rgb(0,0,0)",
        "",
        12,
        None,
        {"colorSpace": "display-p3", "components": [1, 0, 0]},
        {"colorSpace": "srgb", "components": [1.2, 0, 0]},
        {"colorSpace": "srgb", "components": [1, 0]},
        {"colorSpace": "srgb", "components": [1, 0, 0], "alpha": 2},
    ],
)
def test_bad_colors_raise_22023(bad: Any) -> None:
    raises("22023", tokens.contrast_ratio, bad, "#ffffff")


# --------------------------------------------------------------------------------------------------
# Merge


def test_merge_descendant_token_replaces_ancestor_token() -> None:
    root = {
        "color": {
            "$type": "color",
            "brand": {"$value": "#0050b3", "$description": "brand blue", "$extensions": {"x": 1}},
            "text": {"$value": "#111111"},
        },
        "shadow": {
            "$type": "shadow",
            "card": {"$value": {"color": "#000000", "offsetX": "1px", "offsetY": "1px", "blur": "2px"}},
        },
    }
    partner = {
        "color": {"brand": {"$value": "#ff0000"}},
        "shadow": {"card": {"$value": {"color": "#111111", "offsetX": "0px", "offsetY": "4px"}}},
    }
    merged = tokens.merge([root, partner])
    assert merged["color"]["brand"] == {"$value": "#ff0000"}, (
        "a token is atomic: no $description carried over"
    )
    assert merged["color"]["text"] == {"$value": "#111111"}
    assert merged["shadow"]["card"]["$value"] == {"color": "#111111", "offsetX": "0px", "offsetY": "4px"}


def test_merge_groups_recursively_and_group_properties_one_by_one() -> None:
    root = {"color": {"$type": "color", "$description": "colors", "a": {"$value": "#000"}}}
    partner = {
        "color": {"$description": "partner colors", "b": {"$value": "#fff"}, "sub": {"c": {"$value": "#111"}}}
    }
    merged = tokens.merge([root, partner])
    assert merged == {
        "color": {
            "$type": "color",
            "$description": "partner colors",
            "a": {"$value": "#000"},
            "b": {"$value": "#fff"},
            "sub": {"c": {"$value": "#111"}},
        }
    }


def test_merge_does_not_mutate_inputs_and_shares_nothing() -> None:
    root = {"color": {"$type": "color", "a": {"$value": "#000"}}}
    partner = {"color": {"b": {"$value": "#fff"}}}
    before = copy.deepcopy([root, partner])
    merged = tokens.merge([root, partner])
    merged["color"]["a"]["$value"] = "#123456"
    merged["color"]["b"]["$value"] = "#123456"
    assert [root, partner] == before


def test_merge_refuses_type_change_tn004() -> None:
    root = {"size": {"md": {"$type": "dimension", "$value": "16px"}}}
    err = raises("TN004", tokens.merge, [root, {"size": {"md": {"$type": "number", "$value": 16}}}])
    assert err.path == "size.md"
    assert "size.md" in err.message and "dimension" in err.message


def test_merge_refuses_type_change_through_an_inherited_group_type() -> None:
    root = {"color": {"$type": "color", "text": {"$value": "#000"}}}
    # the partner's token inherits 'dimension' from its own group type: a change of effective type
    err = raises("TN004", tokens.merge, [root, {"color": {"$type": "dimension", "text": {"$value": "1px"}}}])
    assert err.path == "color.text"
    # changing only the group's $type would silently retype the inherited token
    err = raises("TN004", tokens.merge, [root, {"color": {"$type": "dimension"}}])
    assert err.path == "color.text"


def test_merge_untyped_replacement_keeps_the_inherited_type() -> None:
    root = {"size": {"md": {"$type": "dimension", "$value": "16px", "$description": "medium"}}}
    merged = tokens.merge([root, {"size": {"md": {"$value": "18px"}}}])
    assert merged["size"]["md"] == {"$value": "18px", "$type": "dimension"}
    # a group type change that no inherited token feels is allowed
    root2 = {"g": {"$type": "color", "a": {"$type": "number", "$value": 1}}}
    assert tokens.merge([root2, {"g": {"$type": "dimension"}}])["g"]["$type"] == "dimension"


def test_merge_refuses_token_group_flips_22023() -> None:
    root = {"color": {"$type": "color", "brand": {"$value": "#000"}, "red": {"500": {"$value": "#f00"}}}}
    err = raises("22023", tokens.merge, [root, {"color": {"brand": {"light": {"$value": "#fff"}}}}])
    assert err.path == "color.brand"
    err = raises("22023", tokens.merge, [root, {"color": {"red": {"$value": "#f00"}}}])
    assert err.path == "color.red"


SCHEMA = {
    "color.brand.primary": "color",
    "color.brand.secondary": "color",
    "color.text": "color",
    "size.sm": "dimension",
    "size.lg.x": "dimension",
    "font.weight": "number",
    "font.family": "fontFamily",
}
GROUP_TYPES = {"color": "color", "size": "dimension"}


def value_for(typ: str) -> st.SearchStrategy:
    if typ == "color":
        return hex6
    if typ == "dimension":
        return st.builds(lambda n, u: f"{n}{u}", st.integers(0, 99), st.sampled_from(["px", "rem"]))
    if typ == "number":
        return st.integers(1, 9) | st.floats(0, 1, allow_nan=False)
    return st.lists(st.sampled_from(["Inter", "Helvetica Neue", "sans-serif"]), min_size=1, max_size=3)


@st.composite
def layers(draw: st.DrawFn, own_types: bool | None = None) -> dict:
    chosen = draw(st.lists(st.sampled_from(sorted(SCHEMA)), unique=True, max_size=len(SCHEMA)))
    flat = {}
    for path in chosen:
        token: dict[str, Any] = {"$value": draw(value_for(SCHEMA[path]))}
        if own_types if own_types is not None else draw(st.booleans()):
            token["$type"] = SCHEMA[path]
        if draw(st.booleans()):
            token["$description"] = draw(st.sampled_from(["a", "b"]))
        flat[path] = token
    doc = doc_from(flat)
    for group, typ in GROUP_TYPES.items():
        if group in doc and draw(st.booleans()):
            doc[group]["$type"] = typ
    if doc and draw(st.booleans()):
        first = min(k for k in doc if not k.startswith("$"))
        doc[first]["$description"] = draw(st.sampled_from(["x", "y"]))
    return doc


@given(layers(own_types=True), layers(own_types=True), layers(own_types=True))
def test_merge_is_associative_exactly_with_typed_tokens(a: dict, b: dict, c: dict) -> None:
    whole = tokens.merge([a, b, c])
    assert whole == tokens.merge([tokens.merge([a, b]), c])
    assert whole == tokens.merge([a, tokens.merge([b, c])])


@given(layers(), layers(), layers())
def test_merge_is_associative_up_to_materialized_types(a: dict, b: dict, c: dict) -> None:
    whole = tokens.resolve(tokens.merge([a, b, c]))
    assert whole == tokens.resolve(tokens.merge([tokens.merge([a, b]), c]))
    assert whole == tokens.resolve(tokens.merge([a, tokens.merge([b, c])]))


@given(layers())
def test_merge_of_one_layer_is_the_layer(x: dict) -> None:
    assert tokens.merge([x]) == x
    assert tokens.merge([x, {}]) == x
    assert tokens.merge([{}, x]) == x
    assert tokens.merge([]) == {}


# --------------------------------------------------------------------------------------------------
# Aliases


def test_alias_simple_and_chained() -> None:
    tree = {
        "color": {
            "$type": "color",
            "blue": {"600": {"$value": "#0050b3"}},
            "brand": {"$value": "{color.blue.600}", "$description": "d", "$extensions": {"k": {"v": 1}}},
            "link": {"$value": "{color.brand}"},
            "focus": {"$value": "{color.link}"},
        }
    }
    out = tokens.resolve(tree)
    assert out["color"]["brand"] == {
        "$type": "color",
        "$value": "#0050b3",
        "$description": "d",
        "$extensions": {"k": {"v": 1}},
    }
    assert out["color"]["link"] == {"$type": "color", "$value": "#0050b3"}
    assert out["color"]["focus"]["$value"] == "#0050b3"
    assert out["color"]["$type"] == "color"


def test_alias_untyped_token_takes_the_target_type() -> None:
    tree = {"size": {"md": {"$type": "dimension", "$value": "16px"}}, "gap": {"$value": "{size.md}"}}
    assert tokens.resolve(tree)["gap"] == {"$type": "dimension", "$value": "16px"}


def test_alias_inside_composites() -> None:
    tree = {
        "color": {"$type": "color", "shadow": {"$value": "#00000040"}},
        "size": {"$type": "dimension", "md": {"$value": "16px"}},
        "font": {"base": {"$type": "fontFamily", "$value": ["Inter", "sans-serif"]}},
        "elevation": {
            "$type": "shadow",
            "card": {
                "$value": {"color": "{color.shadow}", "offsetX": "0px", "offsetY": "2px", "blur": "4px"}
            },
            "stack": {
                "$value": ["{elevation.card}", {"color": "#000000", "offsetX": "1px", "offsetY": "1px"}]
            },
        },
        "text": {
            "body": {
                "$type": "typography",
                "$value": {"fontFamily": "{font.base}", "fontSize": "{size.md}", "fontWeight": 400},
            }
        },
    }
    out = tokens.resolve(tree)
    assert out["elevation"]["card"]["$value"] == {
        "color": "#00000040",
        "offsetX": "0px",
        "offsetY": "2px",
        "blur": "4px",
    }
    assert out["elevation"]["stack"]["$value"][0] == out["elevation"]["card"]["$value"]
    assert out["text"]["body"]["$value"] == {
        "fontFamily": ["Inter", "sans-serif"],
        "fontSize": "16px",
        "fontWeight": 400,
    }
    # the resolved tree shares no mutable value between tokens
    out["elevation"]["card"]["$value"]["color"] = "#ffffff"
    assert out["elevation"]["stack"]["$value"][0]["color"] == "#00000040"


def test_customer_alias_follows_partner_brand() -> None:
    root = {"color": {"$type": "color", "brand": {"$value": "#0050b3"}, "link": {"$value": "{color.brand}"}}}
    partner = {"color": {"brand": {"$value": "#e4002b"}}}
    customer = {"color": {"button": {"$value": "{color.brand}"}}}
    eff = tokens.effective([("root", root), ("partner", partner), ("cust", customer)], [])
    assert eff["color"]["button"]["$value"] == "#e4002b"
    assert eff["color"]["link"]["$value"] == "#e4002b", "the platform's alias follows the partner brand"


def test_circular_alias_names_the_chain() -> None:
    tree = {"color": {"$type": "color", "a": {"$value": "{color.b}"}, "b": {"$value": "{color.a}"}}}
    err = raises("22023", tokens.resolve, tree)
    assert "circular alias: color.a -> color.b -> color.a" in err.message
    self_ref = {"x": {"$type": "color", "$value": "{x}"}}
    assert "circular alias: x -> x" in raises("22023", tokens.resolve, self_ref).message


def test_circular_alias_through_a_composite() -> None:
    tree = {
        "c": {"$type": "color", "$value": "{s}"},
        "s": {"$type": "shadow", "$value": {"color": "{c}", "offsetX": "0px", "offsetY": "0px"}},
    }
    err = raises("22023", tokens.resolve, tree)
    assert "circular alias" in err.message and "c -> s -> c" in err.message


def test_dangling_alias_names_path_and_target() -> None:
    tree = {"color": {"$type": "color", "a": {"$value": "{color.b}"}, "b": {"$value": "{color.nope}"}}}
    err = raises("22023", tokens.resolve, tree)
    assert err.path == "color.b"
    assert "dangling alias" in err.message and "{color.nope}" in err.message
    assert "color.a -> color.b" in err.message


def test_alias_to_a_group_is_refused() -> None:
    tree = {"color": {"$type": "color", "red": {"500": {"$value": "#f00"}}, "a": {"$value": "{color.red}"}}}
    err = raises("22023", tokens.resolve, tree)
    assert err.path == "color.a" and "group" in err.message


def test_alias_type_mismatch_is_refused() -> None:
    tree = {
        "size": {"$type": "dimension", "md": {"$value": "16px"}},
        "c": {"$type": "color", "$value": "{size.md}"},
    }
    err = raises("22023", tokens.resolve, tree)
    assert err.path == "c" and "dimension" in err.message


def test_values_are_checked_against_their_type() -> None:
    for typ, bad in [("color", "#12345"), ("dimension", "16"), ("number", "1"), ("fontFamily", [])]:
        err = raises("22023", tokens.resolve, {"t": {"$type": typ, "$value": bad}})
        assert err.path == "t", typ
    # also through an alias to an untyped token
    err = raises("22023", tokens.resolve, {"u": {"$value": "16px"}, "c": {"$type": "color", "$value": "{u}"}})
    assert err.path == "c"


# --------------------------------------------------------------------------------------------------
# Locks and pinning

LOCK_ROOT = {
    "color": {
        "$type": "color",
        "red": {"500": {"$value": "#e00000"}, "600": {"$value": "#c00000"}},
        "error": {"$value": "{color.red.600}"},
        "status": {"ok": {"$value": "#00aa00"}, "bad": {"$value": "{color.red.500}"}},
        "statusbar": {"$value": "#333333"},
        "brand": {"$value": "#0050b3"},
    }
}
LOCK_PATHS = [
    "color.red.500",
    "color.red.600",
    "color.error",
    "color.status.ok",
    "color.status.bad",
    "color.status.new",
    "color.statusbar",
    "color.brand",
    "color.extra",
]


def lock_value(path: str) -> st.SearchStrategy:
    if path.startswith("color.red."):
        return hex6
    return hex6 | st.sampled_from(["{color.red.500}", "{color.red.600}"])


@st.composite
def lock_layers(draw: st.DrawFn) -> dict:
    chosen = draw(st.lists(st.sampled_from(LOCK_PATHS), unique=True))
    return doc_from({p: {"$value": draw(lock_value(p))} for p in chosen})


def leaf_paths(node: Any, prefix: str) -> dict[str, Any]:
    if isinstance(node, dict) and "$value" in node:
        return {prefix: node["$value"]}
    out: dict[str, Any] = {}
    if isinstance(node, dict):
        for k, v in node.items():
            if not k.startswith("$"):
                out.update(leaf_paths(v, f"{prefix}.{k}" if prefix else k))
    return out


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    lock_layers(),
    lock_layers(),
    st.sampled_from(["color.error", "color.status", "color.red", "color.red.600"]),
    st.sampled_from(["root", "partner"]),
)
def test_locked_path_is_never_overridden(partner: dict, customer: dict, locked: str, owner: str) -> None:
    chain = [("root", LOCK_ROOT), ("partner", partner), ("cust", customer)]
    rules = [lock(owner, locked, 0 if owner == "root" else 1)]
    owner_layers = [LOCK_ROOT] if owner == "root" else [LOCK_ROOT, partner]
    owner_tree = tokens.resolve(tokens.merge(owner_layers))
    eff = tokens.effective(chain, rules)
    # at and under the lock, the customer sees exactly the owner's resolved tokens, nothing added
    assert leaf_paths(node_at(eff, locked), locked) == leaf_paths(node_at(owner_tree, locked), locked)
    # every attempt of the customer is reported, and nothing else is reported as a lock
    seg = locked.split(".")
    attempts = {p for p in leaf_paths(customer, "") if p.split(".")[: len(seg)] == seg}
    found = tokens.violations(chain, rules, "cust")
    assert {v["path"] for v in found if v["rule"] == "lock"} == attempts
    assert all(v["owner"] == owner for v in found)
    if owner == "root":
        p_attempts = {p for p in leaf_paths(partner, "") if p.split(".")[: len(seg)] == seg}
        found_p = tokens.violations(chain[:2], rules, "partner")
        assert {v["path"] for v in found_p if v["rule"] == "lock"} == p_attempts
    # a lock is not a freeze of anything else: an unlocked override shows through
    for path, value in leaf_paths(customer, "").items():
        if path.split(".")[: len(seg)] != seg and owner == "root" and not path.startswith("color.red"):
            expected = value if not value.startswith("{") else value_at(eff, value[1:-1])
            assert value_at(eff, path) == expected


def test_lock_respects_segment_boundaries() -> None:
    chain = [
        ("root", LOCK_ROOT),
        ("cust", {"color": {"statusbar": {"$value": "#ffffff"}, "status": {"ok": {"$value": "#111111"}}}}),
    ]
    rules = [lock("root", "color.status")]
    eff = tokens.effective(chain, rules)
    assert eff["color"]["statusbar"]["$value"] == "#ffffff", "color.statusbar is not under color.status"
    assert eff["color"]["status"]["ok"]["$value"] == "#00aa00"
    found = tokens.violations(chain, rules, "cust")
    assert [(v["path"], v["rule"], v["owner"]) for v in found] == [("color.status.ok", "lock", "root")]
    assert "protected" in found[0]["message"]


def test_pinning_follows_aliases() -> None:
    root = {
        "color": {
            "$type": "color",
            "red": {"600": {"$value": "#c00000"}},
            "error": {"$value": "{color.red.600}"},
        }
    }
    customer = {
        "color": {"red": {"600": {"$value": "#00ff00"}}, "alert": {"$value": "{color.error}"}},
    }
    chain = [("root", root), ("partner", {}), ("cust", customer)]
    eff = tokens.effective(chain, [lock("root", "color.error")])
    assert eff["color"]["red"]["600"]["$value"] == "#00ff00", "the alias target itself is not locked"
    assert eff["color"]["error"] == {"$type": "color", "$value": "#c00000"}
    assert eff["color"]["alert"]["$value"] == "#c00000", "aliases to a pinned token see the pinned value"
    assert tokens.violations(chain, [lock("root", "color.error")], "cust") == []
    # without the lock the alias follows the customer's red
    assert tokens.effective(chain, [])["color"]["error"]["$value"] == "#00ff00"


def test_a_locked_token_cannot_be_retyped_or_turned_into_a_group() -> None:
    rules = [lock("root", "color.error")]
    for customer in (
        {"color": {"error": {"x": {"$value": "#000000"}}}},
        {"color": {"error": {"$type": "dimension", "$value": "2px"}}},
    ):
        chain = [("root", LOCK_ROOT), ("cust", customer)]
        assert tokens.effective(chain, rules)["color"]["error"] == {"$type": "color", "$value": "#c00000"}
        found = tokens.violations(chain, rules, "cust")
        assert {v["rule"] for v in found} == {"lock"}, found


def test_lock_override_is_reported_even_with_an_equal_value() -> None:
    chain = [("root", LOCK_ROOT), ("p", {"color": {"brand": {"$value": "#0050b3"}}})]
    found = tokens.violations(chain, [lock("root", "color.brand")], "p")
    assert [(v["path"], v["rule"]) for v in found] == [("color.brand", "lock")]


def test_partner_lock_binds_its_customers_not_itself() -> None:
    partner = {"color": {"brand": {"$value": "#e4002b"}}}
    customer = {"color": {"brand": {"$value": "#00ff00"}}}
    rules = [lock("partner", "color.brand", 1)]
    assert tokens.violations([("root", LOCK_ROOT), ("partner", partner)], rules, "partner") == []
    chain = [("root", LOCK_ROOT), ("partner", partner), ("cust", customer)]
    found = tokens.violations(chain, rules, "cust")
    assert [(v["path"], v["owner"]) for v in found] == [("color.brand", "partner")]
    assert "locked by tenant partner" in found[0]["message"]
    assert tokens.effective(chain, rules)["color"]["brand"]["$value"] == "#e4002b"


def test_rules_of_non_ancestors_are_ignored() -> None:
    chain = [("root", LOCK_ROOT), ("cust", {"color": {"brand": {"$value": "#000000"}}})]
    rules = [lock("someone-else", "color.brand", 1)]
    assert tokens.violations(chain, rules, "cust") == []
    assert tokens.effective(chain, rules)["color"]["brand"]["$value"] == "#000000"


# --------------------------------------------------------------------------------------------------
# range / one_of / min_contrast and the violations report

RULE_ROOT = {
    "size": {"$type": "dimension", "md": {"$value": "16px"}, "lg": {"$value": "24px"}},
    "ratio": {"$type": "number", "$value": 1.5},
    "color": {"$type": "color", "text": {"$value": "#222222"}, "bg": {"$value": "#ffffff"}},
    "font": {"weight": {"$type": "fontWeight", "$value": 400}},
}


def rule(rule_name: str, path: str, params: dict, owner: str = "root", tier: int = 0) -> dict:
    return {"owner": owner, "owner_tier": tier, "path": path, "rule": rule_name, "params": params}


def triples(found: list[dict]) -> list[tuple[str, str, str]]:
    return [(v["path"], v["rule"], v["owner"]) for v in found]


def test_range_on_dimensions_and_numbers() -> None:
    rules = [
        rule("range", "size", {"min": "4px", "max": "32px"}),
        rule("range", "ratio", {"min": 1, "max": 2}),
    ]
    ok = [("root", RULE_ROOT), ("c", {"size": {"md": {"$value": {"value": 20, "unit": "px"}}}})]
    assert tokens.violations(ok, rules, "c") == []
    bad = {
        "size": {
            "md": {"$value": "40px"},
            "lg": {"$value": "2rem"},
            "xs": {"$value": {"value": 2, "unit": "px"}},
        },
        "ratio": {"$value": 2.5},
    }
    found = tokens.violations([("root", RULE_ROOT), ("c", bad)], rules, "c")
    assert triples(found) == [
        ("ratio", "range", "root"),
        ("size.lg", "range", "root"),
        ("size.md", "range", "root"),
        ("size.xs", "range", "root"),
    ]
    by_path = {v["path"]: v["message"] for v in found}
    assert "above the maximum" in by_path["size.md"]
    assert "unit" in by_path["size.lg"]
    assert "below the minimum" in by_path["size.xs"]


def test_one_of() -> None:
    rules = [
        rule("one_of", "font.weight", {"values": [400, 700]}),
        rule("one_of", "color.text", {"values": ["#222222", "#000000"]}),
    ]
    ok = {"font": {"weight": {"$value": 700}}, "color": {"text": {"$value": "#000"}}}
    assert tokens.violations([("root", RULE_ROOT), ("c", ok)], rules, "c") == []
    bad = {"font": {"weight": {"$value": 500}}, "color": {"text": {"$value": "#111111"}}}
    found = tokens.violations([("root", RULE_ROOT), ("c", bad)], rules, "c")
    assert triples(found) == [("color.text", "one_of", "root"), ("font.weight", "one_of", "root")]


def test_min_contrast() -> None:
    rules = [rule("min_contrast", "color.text", {"against": "color.bg", "ratio": 4.5}, "p", 1)]
    chain = [("root", RULE_ROOT), ("p", {}), ("c", {"color": {"bg": {"$value": "#777777"}}})]
    found = tokens.violations(chain, rules, "c")
    assert triples(found) == [("color.text", "min_contrast", "p")]
    assert "color.bg" in found[0]["message"] and "4.5" in found[0]["message"]
    good = [("root", RULE_ROOT), ("p", {}), ("c", {"color": {"text": {"$value": "#767676"}}})]
    assert tokens.violations(good, rules, "c") == []


def test_violations_report_type_changes_and_sort() -> None:
    customer = {
        "size": {"md": {"$type": "number", "$value": 3}},
        "color": {"text": {"$value": "#eeeeee"}},
    }
    rules = [
        rule("min_contrast", "color.text", {"against": "color.bg", "ratio": 4.5}),
        rule("range", "size", {"max": "32px"}),
    ]
    found = tokens.violations([("root", RULE_ROOT), ("p", {}), ("c", customer)], rules, "c")
    assert triples(found) == [("color.text", "min_contrast", "root"), ("size.md", "type", "root")]
    assert "dimension" in found[1]["message"] and "number" in found[1]["message"]
    # effective never raises for governance: it keeps the ancestor's token
    eff = tokens.effective([("root", RULE_ROOT), ("c", customer)], rules)
    assert eff["size"]["md"] == {"$type": "dimension", "$value": "16px"}


def test_unknown_rule_and_bad_rule_input_raise_22023() -> None:
    chain = [("root", RULE_ROOT), ("c", {})]
    raises("22023", tokens.violations, chain, [rule("maximum", "size", {})], "c")
    raises("22023", tokens.violations, chain, [rule("lock", "size..md", {})], "c")
    raises("22023", tokens.violations, chain, [rule("lock", "", {})], "c")
    raises("22023", tokens.violations, chain, [rule("range", "size", {})], "c")
    raises("22023", tokens.violations, chain, [rule("range", "size", {"min": "8px", "max": "2rem"})], "c")
    raises("22023", tokens.violations, chain, [rule("one_of", "size", {"values": []})], "c")
    raises("22023", tokens.violations, chain, [rule("min_contrast", "color.text", {"ratio": 3})], "c")
    raises("22023", tokens.violations, chain, [], "someone-else")
    raises("22023", tokens.effective, [], [])


# --------------------------------------------------------------------------------------------------
# CSS

CSS_TREE = {
    "type": {
        "heading": {
            "$type": "typography",
            "$value": {"fontFamily": "Inter", "fontSize": "24px", "fontWeight": 700, "lineHeight": 1.2},
        }
    },
    "space": {
        "$type": "dimension",
        "md": {"$value": "16px"},
        "lg": {"$value": {"value": 1.5, "unit": "rem"}},
    },
    "color": {
        "$type": "color",
        "surface": {"$value": {"colorSpace": "srgb", "components": [1, 1, 1], "hex": "#FFFFFF"}},
        "overlay": {"$value": {"colorSpace": "srgb", "components": [0, 0, 0], "alpha": 0.5}},
        "brand": {"primary": {"$value": "#0050b3"}},
    },
    "opacity": {"disabled": {"$type": "number", "$value": 0.4}},
    "font": {"body": {"$type": "fontFamily", "$value": ["Inter", "Helvetica Neue", "sans-serif"]}},
    "shadow": {
        "card": {
            "$type": "shadow",
            "$value": {
                "color": "#00000040",
                "offsetX": "0px",
                "offsetY": "2px",
                "blur": "4px",
                "spread": "0px",
            },
        }
    },
    "ease": {"$type": "cubicBezier", "$value": [0.4, 0, 0.2, 1]},
}

CSS_EXPECTED = """:root {
  --color-brand-primary: #0050b3;
  --color-overlay: rgba(0, 0, 0, 0.5);
  --color-surface: #ffffff;
  --ease: cubic-bezier(0.4, 0, 0.2, 1);
  --font-body: Inter, "Helvetica Neue", sans-serif;
  --opacity-disabled: 0.4;
  --shadow-card: 0px 2px 4px 0px #00000040;
  --space-lg: 1.5rem;
  --space-md: 16px;
  --type-heading-font-family: Inter;
  --type-heading-font-size: 24px;
  --type-heading-font-weight: 700;
  --type-heading-line-height: 1.2;
}
"""


def test_css_exact_output() -> None:
    assert tokens.to_css(tokens.resolve(CSS_TREE)) == CSS_EXPECTED
    assert tokens.to_css({}) == ":root {\n}\n"
    assert tokens.to_css({"a": {"$type": "number", "$value": 1}}, "[data-theme=dark]") == (
        "[data-theme=dark] {\n  --a: 1;\n}\n"
    )


def reorder(node: Any, rnd: Any) -> Any:
    if isinstance(node, dict) and "$value" not in node:
        items = list(node.items())
        rnd.shuffle(items)
        return {k: reorder(v, rnd) for k, v in items}
    return node


@given(st.randoms(use_true_random=False))
def test_css_order_is_stable(rnd: Any) -> None:
    assert tokens.to_css(tokens.resolve(reorder(CSS_TREE, rnd))) == CSS_EXPECTED


def test_css_names_are_sanitized_and_lower_case() -> None:
    tree = {
        "Color": {
            "Brand Primary": {"$type": "color", "$value": "#0050B3"},
            "x_y/z": {"$type": "color", "$value": "#000"},
        }
    }
    assert tokens.to_css(tree) == ":root {\n  --color-brand-primary: #0050B3;\n  --color-x_y-z: #000;\n}\n"
    clash = {"a": {"b-c": {"$type": "number", "$value": 1}, "b c": {"$type": "number", "$value": 2}}}
    raises("22023", tokens.to_css, clash)


def test_css_values_cannot_break_out() -> None:
    raises("22023", tokens.validate_document, {"x": {"$value": "red } body { color: red"}})
    tree = {"note": {"$value": "red; color: blue"}, "tag": {"$value": "</style><script>"}}
    out = tokens.to_css(tree)
    assert '--note: "red; color: blue";' in out
    assert "</style>" not in out and "<" not in out
    assert out.count(";") == 3, "one declaration per token (plus the quoted one)"
    for bad in ("body { x", ":root;", "a\nb", ""):
        raises("22023", tokens.to_css, {}, bad)


def test_css_of_unresolved_aliases_uses_var() -> None:
    tree = {"color": {"$type": "color", "a": {"$value": "#000"}, "b": {"$value": "{color.a}"}}}
    assert "--color-b: var(--color-a);" in tokens.to_css(tree)


def test_css_entry_point_from_a_chain() -> None:
    root = {"color": {"$type": "color", "brand": {"$value": "#0050b3"}, "link": {"$value": "{color.brand}"}}}
    chain = [["root", json.dumps(root)], ["p", {"color": {"brand": {"$value": "#E4002B"}}}], ["c", None]]
    assert tokens.css(chain, "[]") == ":root {\n  --color-brand: #E4002B;\n  --color-link: #E4002B;\n}\n"
    assert tokens.effective_json(json.dumps(chain), [])["color"]["link"]["$value"] == "#E4002B"
    assert tokens.violations_json(chain, [], "c") == []
    raises("22023", tokens.effective_json, "[not json", [])


def test_flatten_sorted_with_inherited_types() -> None:
    flat = tokens.flatten(
        {"b": {"$type": "color", "x": {"$value": "#000"}}, "a": {"$type": "number", "$value": 1}}
    )
    assert flat == [("a", {"$type": "number", "$value": 1}), ("b.x", {"$value": "#000", "$type": "color"})]


# --------------------------------------------------------------------------------------------------
# Malformed documents


@pytest.mark.parametrize(
    ("doc", "path", "needle"),
    [
        (
            {"color": {"brand": {"$value": "#000", "light": {"$value": "#fff"}}}},
            "color.brand",
            "both a token and a group",
        ),
        ([], None, "JSON object"),
        ("{}", None, "JSON object"),
        (None, None, "JSON object"),
        ({"$value": 1}, None, "root"),
        ({"a": {"$type": "color", "$value": "{color.a"}}, "a", "bad alias syntax"),
        ({"a": {"$type": "color", "$value": "x {color.a} y"}}, "a", "bad alias syntax"),
        ({"a": {"$type": "color", "$value": "{}"}}, "a", "bad alias syntax"),
        ({"a": {"$type": "color", "$value": "{color..a}"}}, "a", "bad alias syntax"),
        ({"a": {"$type": "shadow", "$value": {"color": "{oops"}}}, "a", "bad alias syntax"),
        ({"a.b": {"$type": "color", "$value": "#000"}}, "a.b", "invalid name"),
        ({"{a}": {"$type": "color", "$value": "#000"}}, "{a}", "invalid name"),
        ({"a": {"$vaule": "#000"}}, "a", "unknown property $vaule"),
        ({"a": {"$value": None}}, "a", "null"),
        ({"a": {"$type": 3, "$value": 1}}, "a", "$type"),
        ({"a": {"$type": "color", "$value": "#000", "$extensions": []}}, "a", "$extensions"),
        ({"a": "#000"}, "a", "must be an object"),
    ],
)
def test_malformed_documents_raise_22023(doc: Any, path: str | None, needle: str) -> None:
    err = raises("22023", tokens.validate_document, doc)
    assert err.path == path
    assert needle in err.message, err.message
    raises("22023", tokens.merge, [{}, doc])
    if not isinstance(doc, str):  # the chain entry points read a string layer as JSON text
        raises("22023", tokens.effective, [("root", doc if doc is not None else [])], [])


def test_a_group_may_carry_only_a_type() -> None:
    doc = {"color": {"$type": "color", "$description": "empty for now"}}
    tokens.validate_document(doc)
    assert tokens.resolve(doc) == doc


# --------------------------------------------------------------------------------------------------
# Speed


def big_chain() -> list[tuple[str, dict]]:
    root: dict = {"color": {"$type": "color"}, "size": {"$type": "dimension"}}
    for g in range(10):
        grp = root["color"][f"g{g}"] = {}
        for i in range(30):
            grp[f"c{i}"] = {"$value": f"#{(g * 30 + i) * 997:06x}", "$description": "a color"}
        for i in range(10):
            grp[f"a{i}"] = {"$value": f"{{color.g{g}.c{i}}}"}
        root["size"][f"g{g}"] = {f"s{i}": {"$value": f"{i * 2}px"} for i in range(10)}
    partner = {"color": {f"g{g}": {f"c{i}": {"$value": "#112233"} for i in range(10)} for g in range(10)}}
    customer = {"color": {f"g{g}": {f"c{i}": {"$value": "#445566"} for i in range(5)} for g in range(10)}}
    return [("root", root), ("partner", partner), ("cust", customer)]


def test_effective_for_500_tokens_is_fast() -> None:
    chain = big_chain()
    rules = [lock("root", f"color.g{g}.a1") for g in range(10)] + [lock("partner", "color.g1", 1)]
    eff = tokens.effective(chain, rules)
    assert len(tokens.flatten(eff)) == 500
    runs = 50
    start = time.perf_counter()
    for _ in range(runs):
        tokens.effective(chain, rules)
    per_call = (time.perf_counter() - start) / runs * 1000
    print(f"\neffective(): 3-tier chain, 500 tokens: {per_call:.2f} ms per call")
    assert per_call < 50, "sanity bound only"
