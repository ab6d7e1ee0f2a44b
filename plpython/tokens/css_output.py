"""CSS output: the tokens of a tree as CSS custom properties."""

from __future__ import annotations

import json
import re

from .colors import _hex, parse_color
from .model import _bad, _is_num, _join, _ref, validate_document
from .values import _KEYWORD, _check_color, _quantity

# Annotations only: importing typing costs a new backend ~20 ms (see docs/development.md).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


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
