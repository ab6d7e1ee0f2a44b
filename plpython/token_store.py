"""The token functions' glue between the tables and ``tokens``: chains, subtrees, governance of a
write for a tenant and every descendant, a small per-backend cache, and labels in messages.

Pure: the SQL wrappers load the rows (``tenancy.tenants``, ``token_layers``, ``token_rules``) and
pass them in as plain dicts; nothing here reads a table or talks to the server.

Row shapes::

    tenant: {"id": str, "parent_id": str | None, "tier": int, "slug": str}
    layer:  {tenant_id: str -> JSON text | dict | None}
    rule:   {"tenant_id": str, "path": str, "rule": str, "params": JSON text | dict | None}
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict

from . import tokens

# Annotations only: importing typing costs a new backend ~20 ms (see docs/development.md).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any

Tenant = dict  # a tenant row: Mapping[str, Any]
Violation = dict  # dict[str, Any]

_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def index(tenants: Iterable[Tenant]) -> dict[str, Tenant]:
    return {str(t["id"]): t for t in tenants}


def chain(by_id: Mapping[str, Tenant], tenant: str) -> list[str]:
    """Ids from the root down to ``tenant`` (which must be in ``by_id`` with its ancestors)."""
    out: list[str] = []
    cur: str | None = str(tenant)
    while cur is not None:
        if cur in out or cur not in by_id:
            raise tokens.TokenError(f"tenant {tenant} has a broken parent chain")
        out.append(cur)
        parent = by_id[cur].get("parent_id")
        cur = None if parent is None else str(parent)
    out.reverse()
    return out


def subtree(by_id: Mapping[str, Tenant], top: str) -> list[str]:
    """``top`` and its descendants, parents before children, siblings by slug."""
    children: dict[str, list[Tenant]] = {}
    for t in by_id.values():
        if t.get("parent_id") is not None:
            children.setdefault(str(t["parent_id"]), []).append(t)
    out, todo = [], [str(top)]
    while todo:
        cur = todo.pop(0)
        out.append(cur)
        todo.extend(str(c["id"]) for c in sorted(children.get(cur, ()), key=lambda c: str(c["slug"])))
    return out


def label(by_id: Mapping[str, Tenant], tenant: str) -> str:
    """The tenant's path (``brandsyncup/acme``); the root is named by its slug."""
    if tenant not in by_id:
        return tenant
    ids = chain(by_id, tenant)
    if len(ids) == 1:
        return str(by_id[ids[0]]["slug"])
    return "/".join(str(by_id[i]["slug"]) for i in ids[1:])


def relabel(message: str, by_id: Mapping[str, Tenant]) -> str:
    """Tenant ids in a message become ``'path'`` (the id stays in the ``owner`` column)."""
    return _UUID.sub(
        lambda m: f"'{label(by_id, m.group(0))}'" if m.group(0) in by_id else m.group(0), message
    )


def _rules_for(rules: Iterable[Mapping[str, Any]], ids: Sequence[str]) -> list[dict]:
    """Rule rows of the tenants in ``ids`` in the shape ``tokens`` takes (owner = tenant_id)."""
    wanted = set(ids)
    return [
        {"owner": str(r["tenant_id"]), "path": r["path"], "rule": r["rule"], "params": r.get("params")}
        for r in rules
        if str(r["tenant_id"]) in wanted
    ]


def layers_of(ids: Sequence[str], layers: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [(i, layers.get(i)) for i in ids]


def effective(
    by_id: Mapping[str, Tenant], layers: Mapping[str, Any], rules: Iterable[Mapping[str, Any]], tenant: str
) -> dict:
    ids = chain(by_id, tenant)
    return tokens.effective(layers_of(ids, layers), _with_tiers(_rules_for(rules, ids[:-1]), by_id))


def check_subtree(
    by_id: Mapping[str, Tenant],
    layers: Mapping[str, Any],
    rules: Sequence[Mapping[str, Any]],
    top: str,
    progress: Callable[[int, int], None] | None = None,
) -> list[Violation]:
    """Governance problems of ``top`` and of every descendant, each judged against its ancestors'
    rules with the layers as given (put a candidate layer into ``layers`` for a dry run).

    Descendants without a layer of their own under one parent have the same effective tree, so
    they are judged once; a problem found there is reported for the first of them (by slug) and
    says how many share it.  Violations come sorted within a tenant; tenants in subtree order.
    """
    out: list[Violation] = []
    seen_empty: dict[str, int] = {}
    order = subtree(by_id, top)
    empty_count: dict[str, int] = {}
    for tid in order:
        parent = by_id[tid].get("parent_id")
        if tid != top and layers.get(tid) in (None, {}, "{}") and parent is not None:
            empty_count[str(parent)] = empty_count.get(str(parent), 0) + 1
    for n, tid in enumerate(order, 1):
        if progress is not None:
            progress(n, len(order))
        parent = by_id[tid].get("parent_id")
        empty = tid != top and parent is not None and layers.get(tid) in (None, {}, "{}")
        if empty:
            key = str(parent)
            if key in seen_empty:
                continue
            seen_empty[key] = 1
        ids = chain(by_id, tid)
        try:
            found = tokens.violations(
                layers_of(ids, layers), _with_tiers(_rules_for(rules, ids[:-1]), by_id), tid
            )
        except tokens.TokenError as exc:
            if tid == top:
                raise  # the candidate itself is malformed: 22023
            # a descendant's layer, valid before, no longer resolves (an alias to a token the write
            # removes, a type it changes): the write breaks the descendant, like a rule would
            found = [{"path": exc.path or "", "rule": "valid", "owner": top, "message": exc.message}]
        for v in found:
            msg = v["message"]
            if tid != top:
                msg = f"in the tokens of descendant {tid}: {msg}"
            if empty and empty_count.get(str(parent), 1) > 1:
                others = empty_count[str(parent)] - 1
                msg += f" (and {others} more children of {parent} without a layer of their own)"
            out.append({**v, "message": relabel(msg, by_id), "tenant": tid})
    return _fold(out, by_id)


def _fold(found: list[Violation], by_id: Mapping[str, Tenant]) -> list[Violation]:
    """One violation per (path, rule, owner): the first (the top tenant's own, when it has it) says
    which descendants share it."""
    first: dict[tuple[str, str, str], Violation] = {}
    also: dict[tuple[str, str, str], list[str]] = {}
    for v in found:
        key = (v["path"], v["rule"], str(v["owner"]))
        if key in first:
            also[key].append(label(by_id, v["tenant"]))
        else:
            first[key] = dict(v)
            also[key] = []
    out = []
    for key, v in first.items():
        if also[key]:
            names = ", ".join(f"'{n}'" for n in also[key][:5])
            more = f" and {len(also[key]) - 5} more" if len(also[key]) > 5 else ""
            v["message"] += f" (also in the tokens of {names}{more})"
        out.append(v)
    return out


def _with_tiers(rules: list[dict], by_id: Mapping[str, Tenant]) -> list[dict]:
    return [{**r, "owner_tier": int(by_id[r["owner"]]["tier"])} for r in rules if r["owner"] in by_id]


def check_tops(by_id: Mapping[str, Tenant], tops: Iterable[str]) -> list[str]:
    """The tenants of ``tops`` that are not below another one of them (each subtree checked once)."""
    wanted = [str(t) for t in tops if str(t) in by_id]
    keep = []
    for t in dict.fromkeys(wanted):
        ancestors = chain(by_id, t)[:-1]
        if not any(a in wanted for a in ancestors):
            keep.append(t)
    return keep


def error(exc: tokens.TokenError, by_id: Mapping[str, Tenant] | None = None) -> list[str]:
    """A TokenError as the ``{sqlstate, message, hint}`` array the SQL wrappers raise."""
    msg = exc.message if by_id is None else relabel(exc.message, by_id)
    hint = "Fix the token document: see the W3C Design Tokens format and docs/tokens.md."
    return [exc.sqlstate, msg, hint]


def refusal(found: Sequence[Violation], by_id: Mapping[str, Tenant], tenant: str) -> list[str]:
    """TN004 for a write that breaks governance: the first violation, the rest in the detail."""
    first = found[0]
    detail = "; ".join(v["message"] for v in found[1:11])
    if len(found) > 11:
        detail += f"; and {len(found) - 11} more"
    owner = str(first["owner"])
    return [
        tokens.GOVERNANCE,
        f"token governance: {first['message']} "
        f"[rule: {first['rule']}, owner: '{label(by_id, owner)}' {owner}]",
        "Nothing was written. tenancy.token_violations(tenant, tokens) lists every violation of a "
        "candidate layer.",
        detail,
    ]


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Cache:
    """Effective trees and CSS per tenant, keyed by a fingerprint of everything they depend on (the
    chain's ids and the revisions of its layers and of its ancestors' rules); bounded, oldest out."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self.data: OrderedDict[str, tuple[str, dict[str, str]]] = OrderedDict()

    def get(self, tenant: str, key: str, what: str) -> str | None:
        hit = self.data.get(tenant)
        if hit is None or hit[0] != key:
            return None
        self.data.move_to_end(tenant)
        return hit[1].get(what)

    def put(self, tenant: str, key: str, what: str, value: str) -> None:
        hit = self.data.get(tenant)
        entry = hit[1] if hit is not None and hit[0] == key else {}
        entry[what] = value
        self.data[tenant] = (key, entry)
        self.data.move_to_end(tenant)
        while len(self.data) > self.size:
            self.data.popitem(last=False)
