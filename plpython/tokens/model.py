"""The token document model: TokenError and its SQLSTATEs, paths and aliases, document validation.

Structure and syntax only; a value is checked against its type by ``values`` when the merged tree
is resolved.
"""

from __future__ import annotations

import math

# Annotations only: importing typing costs a new backend ~20 ms (see docs/development.md).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MALFORMED = "22023"
GOVERNANCE = "TN004"

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
