r"""The matrix: contexts x queries x arms, and the pgbench script of each cell.

Every transaction is what a pooled application sends: ``BEGIN``, its context call, the query,
``COMMIT``. The arms differ only in the context call, the role and the tenant filter:

- ``tenancy``: ``tenancy.set_tenant(:tid, local => true)``, role made with ``tenancy.grant_app``
  (``tenancy.grant_platform`` for the tier-0 context); no filter, the generated policies filter.
- ``hand``: ``set_config('app.tenant_id', :tid, true)`` (the same shape of transaction, so the
  query is all that differs), a BYPASSRLS role, an explicit filter: ``tenant_id = :tid`` for a
  customer, ``tenant_id = any(:pset)`` for a partner (its set, computed by the application).
- ``naive``: the tutorial: ``set_config('app.tenant_id', ...)`` and a policy that reads it
  (``naive.*`` tables), a role without BYPASSRLS.
- ``norls``: the floor for tier 0: BYPASSRLS, no filter at all.

Contexts: ``customer`` (C), ``partner`` (P, 50 customers), ``wide`` (W, a partner with 5,000
customers: its hand-written set is written into the script as a literal, too long for a pgbench
variable) and ``platform`` (tier 0). Every script runs with the extended protocol (``-M prepared``)
and with the simple protocol (``-M simple``). Two more groups rotate contexts on one connection:
``rotate/customers`` (a different customer every transaction, read with ``\gset`` from
``bench.customers`` in both arms) and ``rotate/tiers`` (C's list, then P's list, on one connection).
"""

from __future__ import annotations

import dataclasses

from bench_data import BASE, C_OFFSET, C_STRIDE, P_OFFSET, P_STRIDE, W_OFFSET, W_STRIDE, Ids, Shape

JOIN_WINDOW = 3750  # seconds of items (one item per second): about 50 of the customer's items

CONTEXTS = ("customer", "partner", "wide", "platform")
QUERIES = ("point", "list", "agg", "join", "write")
PLATFORM_QUERIES = ("point", "agg", "join")
WIDE_QUERIES = ("point", "list", "agg", "join")
PROTOCOLS = ("prepared", "simple")
PROTOCOL_LABELS = {"prepared": "extended protocol (-M prepared)", "simple": "simple protocol (-M simple)"}
LONG_DEFINE = 60_000  # longer values go into the script (one argument of a command is at most 128 kB)


def queries(context: str) -> tuple[str, ...]:
    return {"platform": PLATFORM_QUERIES, "wide": WIDE_QUERIES}.get(context, QUERIES)


@dataclasses.dataclass(frozen=True)
class Arm:
    name: str
    schema: str
    filtered: bool  # an explicit tenant filter in the SQL

    def role(self, context: str) -> str:
        if self.name == "tenancy":
            return "bench_platform" if context == "platform" else "bench_app"
        return "bench_naive" if self.name == "naive" else "bench_hand"

    def context_call(self) -> str:
        if self.name == "tenancy":
            return "select tenancy.set_tenant(:tid, true);"
        return "select set_config('app.tenant_id', :tid, true);"


TENANCY = Arm("tenancy", "bench", False)
HAND = Arm("hand", "bench", True)
NAIVE = Arm("naive", "naive", False)
NORLS = Arm("norls", "bench", False)
ARMS = {a.name: a for a in (TENANCY, HAND, NAIVE, NORLS)}


@dataclasses.dataclass(frozen=True)
class Cell:
    context: str
    query: str
    arm: Arm

    @property
    def key(self) -> str:
        return f"{self.context}/{self.query}/{self.arm.name}"


def arms_for(context: str, protocol: str = "prepared") -> tuple[Arm, ...]:
    """The arms of a context; the tutorial arm only with the extended protocol (it is no baseline)."""
    if context == "platform":
        return (TENANCY, NORLS)
    if context == "wide" or protocol != "prepared":
        return (TENANCY, HAND)
    return (TENANCY, HAND, NAIVE)


def baseline(context: str) -> Arm:
    return NORLS if context == "platform" else HAND


def cells(protocol: str = "prepared") -> list[Cell]:
    return [Cell(c, q, arm) for c in CONTEXTS for q in queries(c) for arm in arms_for(c, protocol)]


def _filter(cell: Cell, alias: str = "") -> str:
    if not cell.arm.filtered:
        return ""
    col = f"{alias}tenant_id"
    if cell.context in ("partner", "wide") and cell.query != "write":
        return f"{col} = any(:pset::uuid[])"
    return f"{col} = :tid"


def _where(cell: Cell, alias: str = "") -> str:
    f = _filter(cell, alias)
    return f" where {f}" if f else ""


def _and(cell: Cell, alias: str = "") -> str:
    f = _filter(cell, alias)
    return f" and {f}" if f else ""


def _pick(context: str, shape: Shape, own: bool) -> str:
    """A pgbench expression for an item id: the customer's rows, the partner's own (for writes)."""
    if context == "platform":
        return f"random(1, {shape.rows})"
    if own and context == "partner":
        return f"{P_OFFSET} + {P_STRIDE} * random(0, {(shape.rows - P_OFFSET) // P_STRIDE})"
    if context == "wide":
        return f"{W_OFFSET} + {W_STRIDE} * random(0, {(shape.rows - W_OFFSET) // W_STRIDE})"
    return f"{C_OFFSET} + {C_STRIDE} * random(0, {(shape.rows - C_OFFSET) // C_STRIDE})"


def body(cell: Cell, shape: Shape) -> list[str]:
    """The statements of a cell (after BEGIN and the context call)."""
    s = cell.arm.schema
    q = cell.query
    if q == "point":
        return [
            f"\\set id {_pick(cell.context, shape, False)}",
            f"select id, tenant_id, created_at, amount, payload from {s}.items where id = :id{_and(cell)};",
        ]
    if q == "list":
        return [
            f"select id, created_at, amount from {s}.items{_where(cell)} order by created_at desc limit 50;"
        ]
    if q == "agg":
        return [f"select count(*), sum(amount) from {s}.items{_where(cell)};"]
    if q == "join":
        return [
            f"\\set t random(0, {max(shape.rows - JOIN_WINDOW, 0)})",
            f"select count(*), sum(l.qty * l.price) from {s}.items i join {s}.item_lines l"
            f" on l.tenant_id = i.tenant_id and l.item_id = i.id"
            f" where i.created_at >= timestamptz '{BASE}' + :t * interval '1 second'"
            f" and i.created_at < timestamptz '{BASE}' + (:t + {JOIN_WINDOW}) * interval '1 second'"
            f"{_and(cell, 'i.')};",
        ]
    col, val = (", tenant_id", ", :tid") if cell.arm.filtered else ("", "")
    return [
        f"\\set wid {_pick(cell.context, shape, True)}",
        f"update {s}.items set amount = amount + 1 where id = :wid{_and(cell)};",
        f"insert into {s}.item_events (item_id, kind{col}) values (:wid, 'amount'{val});",
    ]


def script(cell: Cell, shape: Shape) -> str:
    lines = ["begin;", cell.arm.context_call(), *body(cell, shape), "commit;"]
    return "\n".join(lines) + "\n"


def tenant_of(context: str, ids: Ids) -> str:
    return {"customer": ids.customer, "partner": ids.partner, "wide": ids.wide, "platform": ids.platform}[
        context
    ]


def defines(cell: Cell, ids: Ids) -> dict[str, str]:
    out = {"tid": tenant_of(cell.context, ids)}
    if cell.context in ("partner", "wide") and cell.arm.filtered:
        out["pset"] = ids.partner_set_literal if cell.context == "partner" else ids.wide_set_literal
    return out


def inline_long(script_text: str, values: dict[str, str]) -> tuple[str, dict[str, str]]:
    """Variables too long for pgbench's command line written into the script as literals."""
    short = {}
    for key, value in values.items():
        if len(value) > LONG_DEFINE:
            literal = value if value.startswith("'") else "'" + value.replace("'", "''") + "'"
            script_text = script_text.replace(f":{key}", literal)
        else:
            short[key] = value
    return script_text, short


def query_sql(cell: Cell, shape: Shape, ids: Ids) -> str:
    """The cell's read query with its variables filled in (for EXPLAIN)."""
    sql = next(line for line in body(cell, shape) if not line.startswith("\\")).rstrip(";")
    values = {
        ":id": str((W_OFFSET + W_STRIDE * 10) if cell.context == "wide" else (C_OFFSET + C_STRIDE * 10)),
        ":t": str(shape.rows // 2),
        ":tid": f"'{defines(cell, ids)['tid']}'",
        ":pset": f"'{defines(cell, ids).get('pset', '')}'",
    }
    for var in sorted(values, key=len, reverse=True):
        sql = sql.replace(var, values[var])
    return sql


# --- variants: the same query changed in one respect, to show where a miss comes from ----------------

GENERIC = "-c plan_cache_mode=force_generic_plan"


@dataclasses.dataclass(frozen=True)
class Variant:
    context: str
    query: str
    name: str  # the arm's key in the results
    label: str
    role: str
    script: str
    options: str = ""  # PGOPTIONS for pgbench's connection


def variants(shape: Shape) -> list[Variant]:
    """Informational arms run in the same rounds as the matrix."""
    listing = script(Cell("customer", "list", TENANCY), shape).replace(
        "from bench.items order", "from bench.items where tenant_id = tenancy.current_tenant() order"
    )
    both = script(Cell("partner", "join", HAND), shape).replace(
        "i.tenant_id = any(:pset::uuid[]);",
        "i.tenant_id = any(:pset::uuid[]) and l.tenant_id = any(:pset::uuid[]);",
    )
    return [
        Variant(
            "customer",
            "list",
            "tenancy+current",
            "tenancy, plus `tenant_id = tenancy.current_tenant()`",
            "bench_app",
            listing,
        ),
        Variant(
            "customer",
            "join",
            "tenancy-generic",
            "tenancy, `plan_cache_mode = force_generic_plan`",
            "bench_app",
            script(Cell("customer", "join", TENANCY), shape),
            GENERIC,
        ),
        Variant(
            "partner",
            "join",
            "tenancy-generic",
            "tenancy, `plan_cache_mode = force_generic_plan`",
            "bench_app",
            script(Cell("partner", "join", TENANCY), shape),
            GENERIC,
        ),
        Variant("partner", "join", "hand-both", "hand-written, filter on both tables", "bench_hand", both),
    ]


def variant_defines(v: Variant, ids: Ids) -> dict[str, str]:
    arm = HAND if v.role == "bench_hand" else TENANCY
    return defines(Cell(v.context, v.query, arm), ids)


# --- rotating contexts on one connection --------------------------------------------------------------

LIST_BODY = "select id, created_at, amount from {s}.items{where} order by created_at desc limit 50;"
PICK_CUSTOMER = "select {id} as tid from bench.customers where k = :k \\gset"


def quoted(values: dict[str, str], protocol: str) -> dict[str, str]:
    """Variables as the protocol needs them: the simple protocol pastes them into the SQL text."""
    if protocol == "prepared":
        return values
    return {k: "'" + v.replace("'", "''") + "'" for k, v in values.items()}


def rotate_customers(arm: Arm, count: int, protocol: str) -> str:
    """A list page of a different customer in every transaction (the pick is the same in both arms)."""
    where = " where tenant_id = :tid" if arm.filtered else ""
    return (
        "\n".join(
            [
                f"\\set k random(1, {count})",
                PICK_CUSTOMER.format(id="id" if protocol == "prepared" else "quote_literal(id)"),
                "begin;",
                arm.context_call(),
                LIST_BODY.format(s=arm.schema, where=where),
                "commit;",
            ]
        )
        + "\n"
    )


def rotate_tiers(arm: Arm) -> str:
    """C's list page, then P's, on one connection: every transaction changes the tier."""
    lines: list[str] = []
    for tid, where in (
        (":cid", " where tenant_id = :cid"),
        (":pid", " where tenant_id = any(:pset::uuid[])"),
    ):
        call = arm.context_call().replace(":tid", tid)
        lines += [
            "begin;",
            call,
            LIST_BODY.format(s=arm.schema, where=where if arm.filtered else ""),
            "commit;",
        ]
    return "\n".join(lines) + "\n"


def rotate_defines(ids: Ids) -> dict[str, str]:
    return {"cid": ids.customer, "pid": ids.partner, "pset": ids.partner_set_literal}
