"""Value checks by type (color, dimension, number, font family and weight, cubic Bézier, shadow,
typography, border) and the quantity parser they share with rules and CSS."""

from __future__ import annotations

import json
import re

from .colors import _HEX, parse_color
from .model import TokenError, _bad, _is_num

# Annotations only: importing typing costs a new backend ~20 ms (see docs/development.md).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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
