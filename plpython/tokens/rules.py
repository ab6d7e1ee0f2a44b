"""Rules (lock, range, one_of, min_contrast), tenant chains, the effective tree and the dry run
behind ``set_tokens`` (violations)."""

from __future__ import annotations

import json
import math
from collections import namedtuple
from collections.abc import Mapping

from .colors import contrast_ratio, parse_color
from .merge import _merge_group, _Problems, _Resolver
from .model import TokenError, _bad, _is_num, _join, _kind, split_path, validate_document
from .values import _quantity

# Annotations only: importing typing costs a new backend ~20 ms (see docs/development.md).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any

RULE_NAMES = ("lock", "range", "one_of", "min_contrast")

# --------------------------------------------------------------------------------------------------
# Rules and chains


class Rule(namedtuple("Rule", "owner owner_tier path segs rule params")):
    __slots__ = ()
    owner: str
    owner_tier: int
    path: str
    segs: tuple[str, ...]
    rule: str
    params: dict[str, Any]


def _maybe_json(value: Any, what: str) -> Any:
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise _bad(f"{what} is not valid JSON: {exc}") from None
    return value


def _bound(value: Any, rule_path: str) -> tuple[float, str | None]:
    q = _quantity(value)
    if q is None:
        raise _bad(f"range rule on {rule_path}: bound {json.dumps(value)} is not a number or a dimension")
    return q


def _normalize_rule(row: Any, position: Mapping[str, int]) -> Rule:
    row = _maybe_json(row, "a token rule")
    if not isinstance(row, Mapping):
        raise _bad(f"a token rule must be an object, not {_kind(row)}")
    for key in ("owner", "path", "rule"):
        if row.get(key) is None:
            raise _bad(f"a token rule is missing {key!r}")
    path = row["path"]
    segs = tuple(split_path(path))
    name = row["rule"]
    if name not in RULE_NAMES:
        raise _bad(f"unknown token rule {name!r} on {path}: expected one of {', '.join(RULE_NAMES)}", path)
    params = _maybe_json(row.get("params"), f"the params of the {name} rule on {path}")
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise _bad(f"the params of the {name} rule on {path} must be an object", path)
    params = dict(params)
    if name == "range":
        if params.get("min") is None and params.get("max") is None:
            raise _bad(f"range rule on {path} needs a min, a max or both", path)
        lo = _bound(params["min"], path) if params.get("min") is not None else None
        hi = _bound(params["max"], path) if params.get("max") is not None else None
        if lo is not None and hi is not None:
            if lo[1] != hi[1]:
                raise _bad(f"range rule on {path}: min and max must use the same unit", path)
            if lo[0] > hi[0]:
                raise _bad(f"range rule on {path}: min is greater than max", path)
        params["_lo"], params["_hi"] = lo, hi
    elif name == "one_of":
        values = params.get("values")
        if not isinstance(values, list) or not values:
            raise _bad(f"one_of rule on {path} needs a non-empty 'values' array", path)
    elif name == "min_contrast":
        split_path(params.get("against"))
        ratio = params.get("ratio")
        if not (_is_num(ratio) and 1 <= ratio <= 21):
            raise _bad(f"min_contrast rule on {path} needs a 'ratio' between 1 and 21", path)
    owner = str(row["owner"])
    tier = row.get("owner_tier")
    if tier is None:
        tier = position.get(owner, -1)
    elif not isinstance(tier, int) or isinstance(tier, bool):
        raise _bad(f"owner_tier of the {name} rule on {path} must be an integer", path)
    return Rule(owner, tier, path, segs, name, params)


def _normalize_chain(chain: Any) -> tuple[list[str], list[dict]]:
    chain = _maybe_json(chain, "the tenant chain")
    if not isinstance(chain, (list, tuple)) or not chain:
        raise _bad("the tenant chain must be a non-empty list of (tenant, layer) pairs, root first")
    ids: list[str] = []
    docs: list[dict] = []
    for item in chain:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise _bad("each element of the tenant chain must be a (tenant, layer) pair")
        tid = str(item[0])
        if tid in ids:
            raise _bad(f"tenant {tid} appears twice in the chain")
        doc = _maybe_json(item[1], f"the token layer of tenant {tid}")
        if doc is None:
            doc = {}
        try:
            validate_document(doc)
        except TokenError as exc:
            raise TokenError(f"token layer of tenant {tid}: {exc.message}", exc.sqlstate, exc.path) from None
        ids.append(tid)
        docs.append(doc)
    return ids, docs


def _applicable(rules: Iterable[Any] | None, ids: list[str]) -> list[tuple[int, Rule]]:
    """Rules owned by an ancestor of the last tenant, with the owner's chain index."""
    rules = _maybe_json(rules, "the token rules")
    position = {tid: i for i, tid in enumerate(ids)}
    out = []
    for row in rules or ():
        rule = _normalize_rule(row, position)
        index = position.get(rule.owner)
        if index is not None and index < len(ids) - 1:
            out.append((index, rule))
    return out


def _get_at(tree: dict, segs: Sequence[str]) -> Any:
    node: Any = tree
    for seg in segs:
        if not isinstance(node, dict) or "$value" in node:
            return None
        node = node.get(seg)
    return node


def _set_at(tree: dict, segs: Sequence[str], value: dict | None) -> dict:
    """A copy of ``tree`` with the node at ``segs`` replaced (or removed when value is None).

    Only the dicts along the path are copied; the path's parents must be groups.
    """
    if not segs:
        return tree if value is None else value
    head, rest = segs[0], segs[1:]
    child = tree.get(head)
    out = dict(tree)
    if rest:
        if not isinstance(child, dict) or "$value" in child:
            if value is None:
                return tree
            child = {}
        out[head] = _set_at(child, rest, value)
    elif value is None:
        if head not in out:
            return tree
        del out[head]
    else:
        out[head] = value
    return out


class _Chain(namedtuple("_Chain", "ids merged problems locks final")):
    __slots__ = ()
    ids: list[str]
    merged: list[dict]  # merged[i]: layers 0..i merged (descendant layers pruned at locks)
    problems: _Problems  # type changes made by the last layer
    locks: list[tuple[int, Rule]]
    final: dict  # merged, pinned, resolved tree of the last tenant


def _build(ids: list[str], docs: list[dict], rules: list[tuple[int, Rule]]) -> _Chain:
    locks = [(i, r) for i, r in rules if r.rule == "lock"]
    merged = [docs[0]]
    problems: _Problems = []
    last = len(docs) - 1
    for k in range(1, len(docs)):
        layer = docs[k]
        for i, lock in locks:
            if i < k:
                layer = _set_at(layer, lock.segs, None)
        found: _Problems = []
        merged.append(_merge_group(merged[-1], layer, "", None, None, found))
        if k == last:
            problems = found
    tree = merged[-1]
    # Pin: the ancestor-most owner is applied last, so its values win over nested locks.
    resolvers: dict[int, _Resolver] = {}
    for i, lock in sorted(locks, key=lambda x: (-x[0], x[1].segs)):
        resolver = resolvers.get(i)
        if resolver is None:
            resolver = resolvers[i] = _Resolver(merged[i])
        pinned = resolver.subtree_out(lock.path)
        if pinned is not None:
            tree = _set_at(tree, lock.segs, pinned)
    return _Chain(ids, merged, problems, locks, _Resolver(tree).tree_out())


def effective(
    chain_layers: Sequence[tuple[str, Mapping[str, Any] | None]], rules: Iterable[Any] = ()
) -> dict:
    """The effective tokens of the last tenant of ``chain_layers`` (``[(tenant_id, layer)]``, root
    first): merged, pinned at the ancestors' locks, resolved.

    ``rules`` may hold any rule rows; only those owned by an ancestor of the last tenant apply.
    Governance never raises here (see the package docstring); malformed input raises 22023.
    """
    ids, docs = _normalize_chain(chain_layers)
    return _build(ids, docs, _applicable(rules, ids)).final


# --------------------------------------------------------------------------------------------------
# Violations (dry run)


def _index(tree: dict) -> tuple[dict[str, dict], set[str]]:
    tokens: dict[str, dict] = {}
    groups: set[str] = set()

    def walk(node: dict, prefix: str) -> None:
        for key, val in node.items():
            if key[:1] == "$":
                continue
            path = _join(prefix, key)
            if "$value" in val:
                tokens[path] = val
            else:
                groups.add(path)
                walk(val, path)

    walk(tree, "")
    return tokens, groups


def _targets(rule: Rule, tokens: dict[str, dict], groups: set[str]) -> tuple[list[str], bool]:
    """Token paths a rule applies to, and whether the rule names a token exactly."""
    if rule.path in tokens:
        return [rule.path], True
    if rule.path in groups:
        prefix = rule.path + "."
        return sorted(p for p in tokens if p.startswith(prefix)), False
    return [], False


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _floor3(x: float) -> str:
    # Truncated, never rounded up: a ratio of 4.4999 must not print as 4.500.
    return f"{math.floor(x * 1000) / 1000:.3f}"


def _norm(value: Any) -> Any:
    if isinstance(value, bool):
        return ("bool", value)
    if _is_num(value):
        return float(value)
    if isinstance(value, dict):
        return tuple(sorted((k, _norm(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", *(_norm(v) for v in value))
    return value


def _canon(value: Any, typ: str | None) -> Any:
    if typ == "color":
        try:
            r, g, b, a = parse_color(value)
        except TokenError:
            return ("raw", _norm(value))
        return ("color", round(r * 255), round(g * 255), round(b * 255), round(a * 255))
    q = _quantity(value)
    if q is not None and q[1] is not None:
        return ("quantity", *q)
    return ("raw", _norm(value))


def _who(rule: Rule) -> str:
    return f"tenant {rule.owner}"


def _check_rule(rule: Rule, tokens: dict[str, dict], groups: set[str], out: list[dict]) -> None:
    paths, exact = _targets(rule, tokens, groups)

    def report(path: str, message: str) -> None:
        out.append({"path": path, "rule": rule.rule, "owner": rule.owner, "message": message})

    for path in paths:
        token = tokens[path]
        value, typ = token["$value"], token.get("$type")
        if rule.rule == "range":
            q = _quantity(value)
            if q is None:
                if exact:
                    report(
                        path,
                        f"{path} = {_shown(value)} is not a number or a dimension, so the range "
                        f"rule on {rule.path} set by {_who(rule)} cannot hold",
                    )
                continue
            lo, hi = rule.params["_lo"], rule.params["_hi"]
            bound_unit = (lo or hi)[1]
            if q[1] != bound_unit:
                report(
                    path,
                    f"{path} = {_shown(value)} does not use the unit of the range "
                    f"({bound_unit or 'no unit'}) set on {rule.path} by {_who(rule)}",
                )
            elif lo is not None and q[0] < lo[0]:
                report(
                    path,
                    f"{path} = {_shown(value)} is below the minimum "
                    f"{_shown(rule.params['min'])} set on {rule.path} by {_who(rule)}",
                )
            elif hi is not None and q[0] > hi[0]:
                report(
                    path,
                    f"{path} = {_shown(value)} is above the maximum "
                    f"{_shown(rule.params['max'])} set on {rule.path} by {_who(rule)}",
                )
        elif rule.rule == "one_of":
            allowed = rule.params["values"]
            mine = _canon(value, typ)
            if all(_canon(v, typ) != mine for v in allowed):
                report(
                    path,
                    f"{path} = {_shown(value)} is not one of {json.dumps(allowed)}, the values "
                    f"allowed on {rule.path} by {_who(rule)}",
                )
        elif rule.rule == "min_contrast":
            against = rule.params["against"]
            if path == against or (not exact and typ != "color"):
                continue
            need = rule.params["ratio"]
            bg = tokens.get(against)
            if bg is None:
                report(
                    path,
                    f"{path} must have a contrast of {need}:1 against {against}, which is not a "
                    f"token (min_contrast rule on {rule.path} set by {_who(rule)})",
                )
                continue
            try:
                ratio = contrast_ratio(value, bg["$value"])
            except TokenError:
                report(
                    path,
                    f"{path} and {against} must both be colors for the min_contrast rule on "
                    f"{rule.path} set by {_who(rule)}",
                )
                continue
            if ratio < need:
                report(
                    path,
                    f"{path} ({_shown(value)}) has a contrast of {_floor3(ratio)}:1 against "
                    f"{against} ({_shown(bg['$value'])}), below the {need}:1 required on {rule.path} "
                    f"by {_who(rule)}",
                )


def _layer_nodes_at(layer: dict, segs: tuple[str, ...]) -> list[str]:
    """Paths of the tokens (and property-carrying groups) a layer sets at or under ``segs``."""
    node = _get_at(layer, segs)
    if not isinstance(node, dict):
        return []
    base = ".".join(segs)
    if "$value" in node:
        return [base]
    found: list[str] = []

    def walk(n: dict, prefix: str) -> None:
        if any(k[:1] == "$" for k in n):
            found.append(prefix)
        for key, val in n.items():
            if key[:1] == "$":
                continue
            path = _join(prefix, key)
            if "$value" in val:
                found.append(path)
            else:
                walk(val, path)

    walk(node, base)
    return found


def violations(
    chain_layers: Sequence[tuple[str, Mapping[str, Any] | None]], rules: Iterable[Any], tenant: str
) -> list[dict]:
    """Governance problems the candidate layer of ``tenant`` (the last element of ``chain_layers``)
    would cause, as ``{"path", "rule", "owner", "message"}`` dicts sorted by path, rule, owner.

    ``rules`` are the rules of the tenant's ancestors (others are ignored).  Reported: any token or
    group property the layer sets at or under a locked path (even with an equal value), a change of
    an inherited token's ``$type`` (rule ``"type"``, owner: the ancestor that defined the token), and
    ``range`` / ``one_of`` / ``min_contrast`` failures in the tenant's effective tree.  A malformed
    layer or rule raises TokenError 22023 instead.
    """
    ids, docs = _normalize_chain(chain_layers)
    if ids[-1] != str(tenant):
        raise _bad(f"the last layer of the chain belongs to {ids[-1]}, not to the candidate tenant {tenant}")
    applicable = _applicable(rules, ids)
    chain = _build(ids, docs, applicable)
    out: list[dict] = []
    candidate = docs[-1]
    for _, lock in chain.locks:
        word = "protected" if lock.owner_tier == 0 else "locked"
        for path in _layer_nodes_at(candidate, lock.segs):
            out.append(
                {
                    "path": path,
                    "rule": "lock",
                    "owner": lock.owner,
                    "message": f"{path} is {word} by {_who(lock)} (lock on {lock.path}); "
                    f"tenant {ids[-1]} cannot override it",
                }
            )
    for path, old, new in chain.problems:
        segs = path.split(".")
        owner = next(
            (ids[j] for j in range(len(ids) - 1) if "$value" in (_get_at(chain.merged[j], segs) or {})),
            ids[0],
        )
        out.append(
            {
                "path": path,
                "rule": "type",
                "owner": owner,
                "message": f"{path} is a token of type '{old}' defined by tenant {owner}; tenant {ids[-1]} "
                f"cannot change its $type to '{new}'",
            }
        )
    tokens, groups = _index(chain.final)
    for _, rule in applicable:
        if rule.rule != "lock":
            _check_rule(rule, tokens, groups, out)
    out.sort(key=lambda v: (v["path"], v["rule"], v["owner"], v["message"]))
    return out
