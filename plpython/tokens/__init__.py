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

Modules, by concern (each imports only the ones before it):

* ``model`` -- TokenError and the SQLSTATEs, paths and aliases, document validation;
* ``colors`` -- color parsing, relative luminance, WCAG contrast;
* ``values`` -- value checks by type, quantities;
* ``merge`` -- merge and alias resolution;
* ``rules`` -- rules, chains, ``effective`` and ``violations``;
* ``css_output`` -- CSS custom properties (not ``css``: that name is the entry point below).

This package re-exports their public API, plus the SQL wrappers' entry points.
"""

from __future__ import annotations

from .colors import contrast_ratio, parse_color, relative_luminance
from .css_output import css_name, flatten, to_css
from .merge import merge, resolve
from .model import GOVERNANCE, MALFORMED, TokenError, split_path, validate_document
from .rules import RULE_NAMES, Rule, effective, violations
from .rules import _normalize_rule as _normalize_rule  # the token_rules check in 70_tokens.sql

# Annotations only: importing typing costs a new backend ~20 ms (see docs/development.md).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "GOVERNANCE",
    "MALFORMED",
    "RULE_NAMES",
    "Rule",
    "TokenError",
    "contrast_ratio",
    "css",
    "css_name",
    "effective",
    "effective_json",
    "flatten",
    "merge",
    "parse_color",
    "relative_luminance",
    "resolve",
    "split_path",
    "to_css",
    "validate_document",
    "violations",
    "violations_json",
]

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
