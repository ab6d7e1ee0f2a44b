"""Merging layers (tokens atomic, groups recursive, inherited ``$type`` kept) and alias resolution."""

from __future__ import annotations

from .model import (
    _KEEP_PROPS,
    _SCALARS,
    GOVERNANCE,
    TokenError,
    _bad,
    _copy_json,
    _join,
    _ref,
    validate_document,
)
from .values import _check_type

# Annotations only: importing typing costs a new backend ~20 ms (see docs/development.md).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

# --------------------------------------------------------------------------------------------------
# Merge


def _type_change(path: str, old: str, new: str) -> TokenError:
    return TokenError(
        f"{path} is an inherited token of type '{old}'; a descendant cannot change its $type to '{new}'",
        GOVERNANCE,
        path,
    )


_Problems = list[tuple[str, str, str]]


def _merge_group(
    base: dict, over: dict, prefix: str, base_inh: str | None, res_inh: str | None, problems: _Problems | None
) -> dict:
    """Merge group ``over`` onto group ``base`` without mutating either (the result shares nodes).

    ``problems`` None: a type change raises TN004.  Otherwise it is recorded there and the ancestor's
    token is kept with its type written onto it.
    """
    out = dict(base)
    for key, val in over.items():
        if key[:1] == "$":
            out[key] = val
    base_child = base.get("$type", base_inh)
    res_child = out.get("$type", res_inh)
    for key, ov in over.items():
        if key[:1] == "$":
            continue
        bv = base.get(key)
        if bv is None:
            out[key] = ov
            continue
        path = _join(prefix, key)
        b_token = "$value" in bv
        if b_token != ("$value" in ov):
            if b_token:
                raise _bad(
                    f"{path} is a token in an ancestor layer; a descendant cannot make it a group", path
                )
            raise _bad(f"{path} is a group in an ancestor layer; a descendant cannot make it a token", path)
        if b_token:
            out[key] = _replace_token(bv, ov, path, base_child, res_child, problems)
        else:
            out[key] = _merge_group(bv, ov, path, base_child, res_child, problems)
    if base_child is not None and res_child != base_child:
        # The group's $type changed: tokens of base that inherited it must keep their type.
        for key, bv in base.items():
            if key[:1] != "$" and key not in over:
                out[key] = _freeze(bv, _join(prefix, key), base_child, res_child, problems)
    return out


def _replace_token(
    bv: dict, ov: dict, path: str, base_inh: str | None, res_inh: str | None, problems: _Problems | None
) -> dict:
    old = bv.get("$type", base_inh)
    new = ov.get("$type", res_inh)
    if new is None:
        return ov if old is None else {**ov, "$type": old}
    if old is not None and new != old:
        if problems is None:
            raise _type_change(path, old, new)
        problems.append((path, old, new))
        return {**bv, "$type": old}
    return ov


def _freeze(node: dict, path: str, inh: str, new: str | None, problems: _Problems | None) -> dict:
    if "$type" in node:
        return node
    if "$value" in node:
        if problems is None:
            raise _type_change(path, inh, str(new))
        problems.append((path, inh, str(new)))
        return {**node, "$type": inh}
    out = node
    for key, val in node.items():
        if key[:1] != "$":
            frozen = _freeze(val, _join(path, key), inh, new, problems)
            if frozen is not val:
                if out is node:
                    out = dict(node)
                out[key] = frozen
    return out


def merge(layers: Sequence[Mapping[str, Any]]) -> dict:
    """Deep-merge token layers, root first.  See the package docstring for the semantics.

    Raises TokenError 22023 for a malformed layer or a token/group flip, TN004 for a $type change.
    The result shares nothing with the inputs.
    """
    docs = list(layers)
    for doc in docs:
        validate_document(doc)
    if not docs:
        return {}
    out = dict(docs[0])
    for doc in docs[1:]:
        out = _merge_group(out, dict(doc), "", None, None, None)
    return _copy_json(out)


# --------------------------------------------------------------------------------------------------
# Resolve


class _Resolver:
    """Lazy, memoized alias resolution over one (validated) tree."""

    def __init__(self, tree: dict) -> None:
        self.tree = tree
        self.done: dict[str, tuple[Any, str | None]] = {}
        self.found: dict[str, tuple[bool, dict, str | None] | None] = {}
        self.stack: list[str] = []
        self.on_stack: set[str] = set()

    def find(self, path: str) -> tuple[bool, dict, str | None] | None:
        """``(is_token, node, type)`` at ``path`` (type: own or inherited), or None."""
        if path in self.found:
            return self.found[path]
        node: Any = self.tree
        inh = node.get("$type")
        hit: tuple[bool, dict, str | None] | None = None
        segs = path.split(".")
        last = len(segs) - 1
        for i, seg in enumerate(segs):
            child = node.get(seg) if seg[:1] != "$" else None
            if not isinstance(child, dict):
                break
            if "$value" in child:
                if i == last:
                    hit = (True, child, child.get("$type", inh))
                break
            node = child
            inh = node.get("$type", inh)
            if i == last:
                hit = (False, node, inh)
        self.found[path] = hit
        return hit

    def _chain_note(self) -> str:
        return f" (alias chain: {' -> '.join(self.stack)})" if len(self.stack) > 1 else ""

    def target(self, ref: str, referrer: str) -> tuple[dict, str | None]:
        hit = self.find(ref)
        if hit is None:
            raise _bad(
                f"dangling alias at {referrer}: {{{ref}}} names no token{self._chain_note()}", referrer
            )
        if not hit[0]:
            raise _bad(
                f"alias at {referrer}: {{{ref}}} names a group, not a token{self._chain_note()}", referrer
            )
        return hit[1], hit[2]

    def value(self, path: str, node: dict, typ: str | None) -> tuple[Any, str | None]:
        """The resolved ``(value, type)`` of the token ``node`` at ``path``."""
        hit = self.done.get(path)
        if hit is not None:
            return hit
        raw = node["$value"]
        if (isinstance(raw, str) and raw[:1] != "{") or not isinstance(raw, (str, dict, list)):
            # A plain value: no alias to follow, no cycle possible.
            if typ is not None:
                _check_type(raw, typ, path)
            hit = self.done[path] = (raw, typ)
            return hit
        links: list[tuple[str, str | None, str]] = []
        pushed = 0
        p, n, t = path, node, typ
        try:
            while True:
                if p in self.on_stack:
                    cycle = [*self.stack[self.stack.index(p) :], p]
                    raise _bad(f"circular alias: {' -> '.join(cycle)}", cycle[0])
                self.stack.append(p)
                self.on_stack.add(p)
                pushed += 1
                raw = n["$value"]
                ref = _ref(raw)
                if ref is None:
                    val = self._compose(raw, p)
                    if t is not None:
                        _check_type(val, t, p)
                    self.done[p] = (val, t)
                    break
                n2, t2 = self.target(ref, p)
                links.append((p, t, ref))
                if ref in self.done:
                    break
                p, n, t = ref, n2, t2
            for q, qt, ref in reversed(links):
                val, rt = self.done[ref]
                if qt is None:
                    qt = rt
                elif rt is None:
                    _check_type(val, qt, q)
                elif rt != qt:
                    raise _bad(
                        f"alias type mismatch at {q}: the token is of type '{qt}' but {{{ref}}} is "
                        f"of type '{rt}'",
                        q,
                    )
                self.done[q] = (val, qt)
        except RecursionError:
            raise _bad(f"aliases nest too deeply under {path}", path) from None
        finally:
            for _ in range(pushed):
                self.on_stack.discard(self.stack.pop())
        return self.done[path]

    def _compose(self, raw: Any, path: str) -> Any:
        if isinstance(raw, str):
            ref = _ref(raw)
            if ref is None:
                return raw
            node, typ = self.target(ref, path)
            return self.value(ref, node, typ)[0]
        if isinstance(raw, dict):
            return {k: self._compose(v, path) for k, v in raw.items()}
        if isinstance(raw, list):
            return [self._compose(v, path) for v in raw]
        return raw

    def token_out(self, path: str, node: dict, typ: str | None) -> dict:
        val, typ = self.value(path, node, typ)
        token: dict[str, Any] = {}
        if typ is not None:
            token["$type"] = typ
        token["$value"] = val if isinstance(val, _SCALARS) else _copy_json(val)
        if len(node) > 1:
            for prop in _KEEP_PROPS:
                if prop in node:
                    token[prop] = _copy_json(node[prop])
        return token

    def group_out(self, node: dict, prefix: str, inh: str | None) -> dict:
        t = node.get("$type", inh)
        out: dict[str, Any] = {}
        for key, val in node.items():
            if key[:1] == "$":
                out[key] = _copy_json(val)
            elif "$value" in val:
                out[key] = self.token_out(f"{prefix}.{key}" if prefix else key, val, val.get("$type", t))
            else:
                out[key] = self.group_out(val, f"{prefix}.{key}" if prefix else key, t)
        return out

    def subtree_out(self, path: str) -> dict | None:
        hit = self.find(path)
        if hit is None:
            return None
        is_token, node, typ = hit
        return self.token_out(path, node, typ) if is_token else self.group_out(node, path, typ)

    def tree_out(self) -> dict:
        return self.group_out(self.tree, "", None)


def resolve(tree: Mapping[str, Any]) -> dict:
    """Resolve every alias of ``tree`` (a merged document) and materialize each token's ``$type``.

    Circular or dangling aliases, an alias to a group, a type mismatch along an alias or a value
    that does not fit its type raise TokenError 22023 naming the path or the chain.
    """
    validate_document(tree)
    return _Resolver(dict(tree)).tree_out()
