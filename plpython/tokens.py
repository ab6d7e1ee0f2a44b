"""Design tokens (W3C DTCG) governed down the tenant tiers: the pure core behind the token functions.

A token document is a JSON object tree.  Keys starting with ``$`` are properties, all other keys
are children.  An object with ``$value`` is a *token*; any other object is a *group*.  A token's
``$type`` is its own or the nearest enclosing group's; a token with neither takes the type of the
token its whole-value alias points to, and otherwise stays untyped.  ``{a.b.c}`` as a whole string
is an alias, also inside composite values (a shadow's ``color``, a typography field, ...).

Every tenant owns one *layer*; the effective tokens of a tenant are the layers from the platform
root down to it, merged then resolved:

* ``merge`` -- groups merge recursively (group properties are replaced one by one); a token is
  atomic: a descendant's token *replaces* the ancestor's token at the same path.  A replacement
  without a ``$type`` of its own (and none inherited in the merged tree) keeps the replaced token's
  type, which is written onto it.  Changing an inherited token's effective ``$type`` is a governance
  violation (TN004); turning a token into a group or back is malformed (22023).
* ``resolve`` -- aliases resolve against the merged tree, so a customer's alias follows its
  partner's brand; each token gets its ``$type`` materialized; values are checked against their
  type (colors, dimensions, numbers, font families, shadows, ...).
* Rules a tenant sets for its descendants (``lock``, ``range``, ``one_of``, ``min_contrast``).  A
  locked path is pruned from every descendant layer (whole path segments: a lock on ``color.status``
  leaves ``color.statusbar`` alone) and *pinned*: every token at or under it keeps the value it
  resolves to in the lock owner's own tree (root..owner), even when a descendant changes the token
  its alias points to.  Pinning happens before the descendant tree is resolved, so the descendant's
  own aliases to a locked token see the pinned value too.

``effective`` never raises for governance: locked overrides are dropped and pinned, a
type-changing override is dropped (the ancestor's token is kept).  Governance is enforced on write
through ``violations`` (the dry run behind ``set_tokens``), which reports only what the candidate
layer breaks.  Malformed input always raises ``TokenError`` with SQLSTATE 22023.

Everything here is pure and deterministic: no I/O, no database, no global state.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

MALFORMED = "22023"
GOVERNANCE = "TN004"

RULE_NAMES = ("lock", "range", "one_of", "min_contrast")

_GROUP_PROPS = frozenset({"$type", "$description", "$extensions", "$deprecated"})
_ROOT_PROPS = _GROUP_PROPS | {"$schema"}
_TOKEN_PROPS = _GROUP_PROPS | {"$value"}
_KEEP_PROPS = ("$description", "$extensions", "$deprecated")
_SCALARS = (str, int, float, bool)


class TokenError(Exception):
    """A malformed document, alias or path (``sqlstate`` 22023) or a governance violation (TN004).

    ``path`` names the offending token or group path when there is one.
    """

    def __init__(self, message: str, sqlstate: str = MALFORMED, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate
        self.path = path


def _bad(message: str, path: str | None = None) -> TokenError:
    return TokenError(message, MALFORMED, path)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _show(path: str) -> str:
    return path or "(root)"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _copy_json(value: Any) -> Any:
    """A structural copy of a JSON value (much cheaper than copy.deepcopy)."""
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------------
# Paths, names and aliases


def _check_segment(seg: str) -> bool:
    return bool(seg) and seg[0] != "$" and "{" not in seg and "}" not in seg


def split_path(path: Any) -> list[str]:
    """The segments of a dotted token path; a bad path raises TokenError 22023."""
    if not isinstance(path, str) or not path:
        raise _bad(f"bad token path {path!r}: a path is a non-empty dotted string like 'color.brand'")
    segs = path.split(".")
    for seg in segs:
        if not _check_segment(seg):
            raise _bad(
                f"bad token path {path!r}: every segment must be non-empty, contain no '{{' or '}}' "
                "and not start with '$'",
                path,
            )
    return segs


def _ref(value: Any) -> str | None:
    """The path a (validated) whole-string alias names, or None when the value is no alias."""
    if isinstance(value, str) and value[:1] == "{":
        return value[1:-1]
    return None


def _check_string(value: str, path: str) -> None:
    if "{" not in value and "}" not in value:
        return
    ok = value[:1] == "{" and value[-1:] == "}" and value.count("{") == 1 and value.count("}") == 1
    if ok:
        ref = value[1:-1]
        ok = bool(ref) and all(_check_segment(s) for s in ref.split("."))
    if not ok:
        raise _bad(
            f"bad alias syntax {value!r} at {path}: an alias is a whole string '{{group.token}}' "
            "and braces may appear nowhere else in a value",
            path,
        )


# --------------------------------------------------------------------------------------------------
# Document validation


def validate_document(doc: Any) -> None:
    """Check that ``doc`` is a well-formed token document; raise TokenError 22023 otherwise.

    Checks structure and syntax only (names, properties, alias syntax).  Values are checked
    against their type when the merged tree is resolved, because a layer may inherit its types
    from an ancestor's groups.
    """
    if not isinstance(doc, dict):
        raise _bad(f"a token document must be a JSON object, not {_kind(doc)}")
    if "$value" in doc:
        raise _bad("the root of a token document is a group and cannot have a $value")
    _validate_group(doc, "")


def _validate_group(node: dict, prefix: str) -> None:
    allowed = _GROUP_PROPS if prefix else _ROOT_PROPS
    for key, val in node.items():
        if not isinstance(key, str):
            raise _bad(f"a key in {_show(prefix)} is not a string", prefix or None)
        if key[:1] == "$":
            if key not in allowed:
                raise _bad(f"unknown property {key} on group {_show(prefix)}", prefix or None)
            _validate_prop(key, val, prefix)
            continue
        path = f"{prefix}.{key}" if prefix else key
        if not key or "." in key or "{" in key or "}" in key:
            raise _bad(
                f"invalid name {key!r} in {_show(prefix)}: token and group names must be non-empty "
                "and contain no '.', '{' or '}'",
                path,
            )
        if not isinstance(val, dict):
            raise _bad(f"{path} must be an object (a group or a token), not {_kind(val)}", path)
        if "$value" in val:
            _validate_token(val, path)
        else:
            _validate_group(val, path)


def _validate_token(node: dict, path: str) -> None:
    for key, val in node.items():
        if key == "$value":
            if isinstance(val, str):
                if "{" in val or "}" in val:
                    _check_string(val, path)
            elif val is None:
                raise _bad(f"the $value of {path} is null", path)
            else:
                _validate_value(val, path)
        elif key in _TOKEN_PROPS:
            _validate_prop(key, val, path)
        elif not isinstance(key, str) or key[:1] != "$":
            raise _bad(f"{path} is both a token and a group: it has a $value and the child {key!r}", path)
        else:
            raise _bad(f"unknown property {key} on token {path}", path)


def _validate_value(value: Any, path: str) -> None:
    if isinstance(value, str):
        _check_string(value, path)
    elif isinstance(value, dict):
        for key, val in value.items():
            if not isinstance(key, str):
                raise _bad(f"the $value of {path} has a key that is not a string", path)
            _validate_value(val, path)
    elif isinstance(value, list):
        for val in value:
            _validate_value(val, path)
    elif value is not None and not _is_num(value) and not isinstance(value, bool):
        raise _bad(f"the $value of {path} holds {_kind(value)}, which is not JSON", path)


def _validate_prop(key: str, val: Any, path: str) -> None:
    where = _show(path)
    if key == "$type":
        if not isinstance(val, str) or not val:
            raise _bad(f"$type on {where} must be a non-empty string, not {_kind(val)}", path or None)
    elif key in ("$description", "$schema"):
        if not isinstance(val, str):
            raise _bad(f"{key} on {where} must be a string, not {_kind(val)}", path or None)
    elif key == "$extensions":
        if not isinstance(val, dict):
            raise _bad(f"$extensions on {where} must be an object, not {_kind(val)}", path or None)
    elif key == "$deprecated" and not isinstance(val, (bool, str)):
        raise _bad(f"$deprecated on {where} must be a boolean or a string", path or None)


# --------------------------------------------------------------------------------------------------
# Colors (sRGB) and WCAG 2.x contrast

_HEX = re.compile(r"#([0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")


def parse_color(color: Any) -> tuple[float, float, float, float]:
    """``(r, g, b, alpha)`` in 0..1 from ``#rgb``, ``#rgba``, ``#rrggbb``, ``#rrggbbaa`` or a DTCG
    sRGB color object ``{"colorSpace": "srgb", "components": [r, g, b], "alpha": a}``.

    Anything else raises TokenError 22023.
    """
    if isinstance(color, str):
        m = _HEX.fullmatch(color)
        if m is None:
            raise _bad(f"{color!r} is not a color: expected #rgb, #rgba, #rrggbb or #rrggbbaa")
        digits = m[1]
        if len(digits) <= 4:
            digits = "".join(c * 2 for c in digits)
        if len(digits) == 6:
            digits += "ff"
        r, g, b, a = (int(digits[i : i + 2], 16) / 255 for i in range(0, 8, 2))
        return r, g, b, a
    if isinstance(color, dict):
        space = color.get("colorSpace")
        if space != "srgb":
            raise _bad(f"unsupported color space {space!r}: only 'srgb' color objects are supported")
        comps = color.get("components")
        if not (
            isinstance(comps, list) and len(comps) == 3 and all(_is_num(c) and 0 <= c <= 1 for c in comps)
        ):
            raise _bad(f"color components {comps!r} must be three numbers between 0 and 1")
        alpha = color.get("alpha", 1)
        if not (_is_num(alpha) and 0 <= alpha <= 1):
            raise _bad(f"color alpha {alpha!r} must be a number between 0 and 1")
        if "hex" in color:
            parse_color(color["hex"])
        return float(comps[0]), float(comps[1]), float(comps[2]), float(alpha)
    raise _bad(f"{_kind(color)} is not a color")


def _linear(c: float) -> float:
    # sRGB linearization.  The current WCAG 2.x text uses the sRGB threshold 0.04045; WCAG 2.0
    # originally printed 0.03928.  No 8-bit channel value lies between the two, so both give
    # identical results for hex colors.
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _over(fg: tuple[float, float, float, float], bg: tuple[float, float, float, float]) -> tuple:
    """Composite ``fg`` over an opaque ``bg`` (simple alpha blending in sRGB, as browsers paint)."""
    a = fg[3]
    return (fg[0] * a + bg[0] * (1 - a), fg[1] * a + bg[1] * (1 - a), fg[2] * a + bg[2] * (1 - a), 1.0)


def relative_luminance(color: str | dict | tuple[float, float, float, float]) -> float:
    """WCAG 2.x relative luminance of an sRGB color (a color value or parsed ``(r, g, b, a)``;
    alpha is ignored here)."""
    r, g, b, _ = color if isinstance(color, tuple) else parse_color(color)
    return 0.2126 * _linear(r) + 0.7152 * _linear(g) + 0.0722 * _linear(b)


_WHITE = (1.0, 1.0, 1.0, 1.0)


def contrast_ratio(fg: str | dict, bg: str | dict) -> float:
    """WCAG 2.x contrast ratio ``(L1 + 0.05) / (L2 + 0.05)``, unrounded (1.0 .. 21.0).

    A translucent background is first composited over white, then a translucent foreground is
    composited over the (now opaque) background -- the color a reader actually sees.  For opaque
    colors the ratio is symmetric.
    """
    b = parse_color(bg)
    if b[3] < 1:
        b = _over(b, _WHITE)
    f = parse_color(fg)
    if f[3] < 1:
        f = _over(f, b)
    lf = relative_luminance(f)
    lb = relative_luminance(b)
    hi, lo = (lf, lb) if lf >= lb else (lb, lf)
    return (hi + 0.05) / (lo + 0.05)


def _hex(rgba: tuple[float, float, float, float]) -> str:
    out = "#" + "".join(f"{round(c * 255):02x}" for c in rgba[:3])
    if rgba[3] < 1:
        out += f"{round(rgba[3] * 255):02x}"
    return out


# --------------------------------------------------------------------------------------------------
# Value checks by type

_QUANTITY = re.compile(r"(-?(?:\d+(?:\.\d+)?|\.\d+))([a-zA-Z%]+)")
_UNIT = re.compile(r"[a-zA-Z%]+")
_KEYWORD = re.compile(r"[A-Za-z][A-Za-z0-9-]*")


def _quantity(value: Any) -> tuple[float, str | None] | None:
    """``(number, unit)`` of a number (unit None), ``"16px"`` or ``{"value": 16, "unit": "px"}``."""
    if _is_num(value):
        return float(value), None
    if isinstance(value, str):
        m = _QUANTITY.fullmatch(value)
        if m is not None:
            return float(m[1]), m[2]
        return None
    if isinstance(value, dict) and set(value) == {"value", "unit"}:
        num, unit = value["value"], value["unit"]
        if _is_num(num) and isinstance(unit, str) and _UNIT.fullmatch(unit):
            return float(num), unit
    return None


def _need(ok: bool, path: str, value: Any, what: str) -> None:
    if not ok:
        raise _bad(f"the value of {path} ({json.dumps(value)}) is not {what}", path)


def _check_dimension(value: Any, path: str) -> None:
    q = _quantity(value)
    _need(q is not None and q[1] is not None, path, value, "a dimension like '16px'")


def _check_font_family(value: Any, path: str) -> None:
    ok = (isinstance(value, str) and value.strip() != "") or (
        isinstance(value, list) and value != [] and all(isinstance(v, str) and v.strip() for v in value)
    )
    _need(ok, path, value, "a font family name or a list of names")


def _check_font_weight(value: Any, path: str) -> None:
    ok = (_is_num(value) and 1 <= value <= 1000) or (
        isinstance(value, str) and _KEYWORD.fullmatch(value) is not None
    )
    _need(ok, path, value, "a font weight (1..1000 or a keyword)")


def _check_color(value: Any, path: str) -> None:
    if isinstance(value, str) and _HEX.fullmatch(value):
        return
    try:
        parse_color(value)
    except TokenError as exc:
        raise _bad(f"the value of {path} is not a valid color: {exc.message}", path) from None


def _check_shadow(value: Any, path: str) -> None:
    layers = value if isinstance(value, list) else [value]
    _need(layers != [], path, value, "a shadow")
    for layer in layers:
        _need(isinstance(layer, dict) and "color" in layer, path, value, "a shadow object with a color")
        _check_color(layer["color"], path)
        for key in ("offsetX", "offsetY", "blur", "spread"):
            if key in layer or key in ("offsetX", "offsetY"):
                _need(
                    _quantity(layer.get(key)) is not None,
                    path,
                    value,
                    f"a shadow with a dimension {key}",
                )
        _need(isinstance(layer.get("inset", False), bool), path, value, "a shadow with a boolean inset")


def _check_typography(value: Any, path: str) -> None:
    _need(isinstance(value, dict), path, value, "a typography object")
    if "fontFamily" in value:
        _check_font_family(value["fontFamily"], path)
    if "fontWeight" in value:
        _check_font_weight(value["fontWeight"], path)
    for key in ("fontSize", "letterSpacing", "lineHeight"):
        if key in value:
            _need(_quantity(value[key]) is not None, path, value, f"a typography object with a valid {key}")


def _check_border(value: Any, path: str) -> None:
    _need(isinstance(value, dict) and {"color", "width", "style"} <= set(value), path, value, "a border")
    _check_color(value["color"], path)
    _check_dimension(value["width"], path)


def _check_type(value: Any, typ: str, path: str) -> None:
    """Check a resolved value against its type; unknown types are not checked."""
    if typ == "color":
        _check_color(value, path)
    elif typ in ("dimension", "duration"):
        _check_dimension(value, path)
    elif typ == "number":
        _need(_is_num(value), path, value, "a number")
    elif typ == "fontFamily":
        _check_font_family(value, path)
    elif typ == "fontWeight":
        _check_font_weight(value, path)
    elif typ == "cubicBezier":
        ok = isinstance(value, list) and len(value) == 4 and all(_is_num(v) for v in value)
        _need(
            ok and 0 <= value[0] <= 1 and 0 <= value[2] <= 1, path, value, "a cubic Bézier [x1, y1, x2, y2]"
        )
    elif typ == "shadow":
        _check_shadow(value, path)
    elif typ == "typography":
        _check_typography(value, path)
    elif typ == "border":
        _check_border(value, path)


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
    """Deep-merge token layers, root first.  See the module docstring for the semantics.

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


# --------------------------------------------------------------------------------------------------
# Rules and chains


class Rule(NamedTuple):
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


class _Chain(NamedTuple):
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
    Governance never raises here (see the module docstring); malformed input raises 22023.
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


# --------------------------------------------------------------------------------------------------
# CSS


def flatten(tree: Mapping[str, Any]) -> list[tuple[str, dict]]:
    """``[(path, token)]`` sorted by path segments; each token is a shallow copy with its inherited
    ``$type`` filled in when it has none of its own."""
    out: list[tuple[str, dict]] = []

    def walk(node: Mapping[str, Any], prefix: str, inh: str | None) -> None:
        t = node.get("$type", inh)
        for key, val in node.items():
            if key[:1] == "$" or not isinstance(val, dict):
                continue
            path = _join(prefix, key)
            if "$value" in val:
                token = dict(val)
                if "$type" not in token and t is not None:
                    token["$type"] = t
                out.append((path, token))
            else:
                walk(val, path, t)

    walk(tree, "", None)
    out.sort(key=lambda item: item[0].split("."))
    return out


_CSS_BAD = re.compile(r"[^a-z0-9_-]")
_CSS_SAFE = re.compile(r"[A-Za-z0-9#%.,()+*/_ -]*")
_CSS_SELECTOR_BAD = re.compile(r"[{};<>\\\n\r]")


def css_name(path: str) -> str:
    """``color.brand.primary`` -> ``--color-brand-primary`` (lower-case, other characters -> '-')."""
    return "--" + "-".join(_CSS_BAD.sub("-", seg.lower()) for seg in path.split("."))


def _css_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\a ").replace("<", "\\3c ")
    return f'"{escaped}"'


def _num(x: Any) -> str:
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def _css_generic(value: Any) -> str:
    if _is_num(value):
        return _num(value)
    if isinstance(value, str):
        return value if _CSS_SAFE.fullmatch(value) else _css_string(value)
    return _css_string(json.dumps(value, sort_keys=True))


def _css_quantity(value: Any, path: str) -> str:
    if (ref := _ref(value)) is not None:
        return f"var({css_name(ref)})"
    q = _quantity(value)
    if q is None:
        raise _bad(f"the value of {path} ({json.dumps(value)}) is not a number or a dimension", path)
    if isinstance(value, str):
        return value
    return _num(q[0]) + (q[1] or "")


def _css_color(value: Any, path: str) -> str:
    if (ref := _ref(value)) is not None:
        return f"var({css_name(ref)})"
    _check_color(value, path)
    if isinstance(value, str):
        return value
    rgba = parse_color(value)
    if rgba[3] >= 1:
        given = value.get("hex")
        return given.lower() if isinstance(given, str) else _hex(rgba)
    r, g, b = (round(c * 255) for c in rgba[:3])
    return f"rgba({r}, {g}, {b}, {_num(round(rgba[3], 4))})"


def _css_family(value: Any) -> str:
    if (ref := _ref(value)) is not None:
        return f"var({css_name(ref)})"
    names = value if isinstance(value, list) else [value]
    return ", ".join(n if _KEYWORD.fullmatch(n) else _css_string(n) for n in names)


def _css_weight(value: Any) -> str:
    if (ref := _ref(value)) is not None:
        return f"var({css_name(ref)})"
    return _css_generic(value)


def _css_shadow(value: Any, path: str) -> str:
    layers = value if isinstance(value, list) else [value]
    parts = []
    for layer in layers:
        words = ["inset"] if layer.get("inset") is True else []
        for key in ("offsetX", "offsetY", "blur", "spread"):
            words.append(_css_quantity(layer.get(key, 0), path))
        words.append(_css_color(layer["color"], path))
        parts.append(" ".join(words))
    return ", ".join(parts)


def _kebab(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"-\1", name).lower()


_TYPOGRAPHY_FIELDS = ("fontFamily", "fontSize", "fontWeight", "letterSpacing", "lineHeight")


def _css_entries(path: str, token: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``[(name suffix, css value)]`` for one token."""
    typ, value = token.get("$type"), token["$value"]
    ref = _ref(value)
    if typ == "typography":
        if ref is not None:
            return [(f"-{_kebab(f)}", f"var({css_name(ref)}-{_kebab(f)})") for f in _TYPOGRAPHY_FIELDS]
        if not isinstance(value, dict):
            raise _bad(f"the value of {path} is not a typography object", path)
        entries = []
        for key in sorted(value, key=_kebab):
            sub = value[key]
            if key == "fontFamily":
                css = _css_family(sub)
            elif key == "fontWeight":
                css = _css_weight(sub)
            elif key in ("fontSize", "letterSpacing"):
                css = _css_quantity(sub, path)
            elif (sub_ref := _ref(sub)) is not None:
                css = f"var({css_name(sub_ref)})"
            else:
                css = _css_generic(sub)
            entries.append((f"-{_CSS_BAD.sub('-', _kebab(key))}", css))
        return entries
    if ref is not None:
        return [("", f"var({css_name(ref)})")]
    if typ == "color":
        css = _css_color(value, path)
    elif typ in ("dimension", "duration"):
        css = _css_quantity(value, path)
    elif typ == "fontFamily":
        css = _css_family(value)
    elif typ == "fontWeight":
        css = _css_weight(value)
    elif typ == "cubicBezier" and isinstance(value, list):
        css = "cubic-bezier(" + ", ".join(_num(v) if _is_num(v) else _css_generic(v) for v in value) + ")"
    elif typ == "shadow" and isinstance(value, (dict, list)):
        css = _css_shadow(value, path)
    elif typ == "border" and isinstance(value, dict):
        style = value.get("style")
        style_css = style if isinstance(style, str) and _KEYWORD.fullmatch(style) else "dashed"
        css = f"{_css_quantity(value.get('width'), path)} {style_css} {_css_color(value.get('color'), path)}"
    elif typ == "transition" and isinstance(value, dict):
        timing = value.get("timingFunction")
        timing_css = (
            "cubic-bezier(" + ", ".join(_num(v) for v in timing) + ")"
            if isinstance(timing, list) and all(_is_num(v) for v in timing)
            else _css_generic(timing)
        )
        css = (
            f"{_css_quantity(value.get('duration', '0ms'), path)} {timing_css} "
            f"{_css_quantity(value.get('delay', '0ms'), path)}"
        )
    elif typ == "gradient" and isinstance(value, list):
        stops = []
        for stop in value:
            if not isinstance(stop, dict) or not _is_num(stop.get("position")):
                raise _bad(f"the value of {path} is not a gradient (a list of color stops)", path)
            stops.append(f"{_css_color(stop.get('color'), path)} {_num(round(stop['position'] * 100, 4))}%")
        css = ", ".join(stops)
    elif typ == "strokeStyle":
        css = value if isinstance(value, str) and _KEYWORD.fullmatch(value) else "dashed"
    else:
        css = _css_generic(value)
    return [("", css)]


def to_css(tree: Mapping[str, Any], selector: str = ":root") -> str:
    """CSS custom properties for every token of ``tree``, sorted by path.

    Serialization: colors as given (hex strings) or, for DTCG color objects, ``hex`` when opaque and
    ``rgba(r, g, b, a)`` when translucent; dimensions and durations ``16px``; numbers plain;
    font families comma-joined, names that are not plain identifiers double-quoted; cubic Béziers
    ``cubic-bezier(...)``; shadows ``[inset] offsetX offsetY blur spread color`` (comma-joined
    layers); borders ``width style color``; transitions ``duration timing delay``; gradients the
    comma-joined ``color position%`` stops (to use inside ``linear-gradient(...)``); typography as
    one sub-property per field (``--x-font-family``, ``--x-font-size``, ...), no shorthand.  An
    alias still present (unresolved tree) becomes ``var(--target)``.  Any other string that is not
    plainly safe is emitted as a quoted CSS string, so no value can break out of its declaration.
    Two paths that map to the same property name raise TokenError 22023.
    """
    if not isinstance(selector, str) or not selector.strip() or _CSS_SELECTOR_BAD.search(selector):
        raise _bad(f"bad CSS selector {selector!r}")
    validate_document(tree)
    lines = []
    seen: dict[str, str] = {}
    for path, token in flatten(tree):
        base = css_name(path)
        for suffix, css in _css_entries(path, token):
            name = base + suffix
            if name in seen:
                raise _bad(f"{path} and {seen[name]} both map to the CSS property {name}", path)
            seen[name] = path
            lines.append(f"  {name}: {css};\n")
    return f"{selector} {{\n{''.join(lines)}}}\n"


# --------------------------------------------------------------------------------------------------
# Entry points for the SQL wrappers (inputs may be Python objects or JSON text)


def effective_json(chain: Any, rules: Any) -> dict:
    """``effective`` for SQL: ``chain`` is ``[[tenant_id, layer], ...]`` root first (JSON text or
    objects; a null layer is an empty one), ``rules`` the rule rows (JSON text or objects)."""
    return effective(chain, rules)


def violations_json(chain: Any, rules: Any, tenant: Any) -> list[dict]:
    """``violations`` for SQL (same inputs as ``effective_json`` plus the candidate tenant)."""
    return violations(chain, rules, str(tenant))


def css(chain: Any, rules: Any, selector: str = ":root") -> str:
    """The effective tokens of the chain's last tenant as CSS custom properties."""
    return to_css(effective(chain, rules), selector)
