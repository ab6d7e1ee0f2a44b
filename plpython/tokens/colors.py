"""Colors: parsing (hex strings and DTCG sRGB objects), WCAG 2.x relative luminance and contrast."""

from __future__ import annotations

import re

from .model import _bad, _is_num, _kind

# Annotations only: importing typing costs a new backend ~20 ms (see docs/development.md).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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
