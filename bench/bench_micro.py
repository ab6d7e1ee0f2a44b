"""Targeted measurements: set_tenant, resolve_domain, effective_tokens, per-statement verification,
and the plan shapes of the generated policies."""

from __future__ import annotations

import dataclasses
import json
import re
import statistics
import time
from collections.abc import Iterator

import psycopg
from bench_cells import TENANCY, Cell, query_sql, tenant_of
from bench_data import C_OFFSET, C_STRIDE, Ids, Shape

# --- pgbench scripts of the micro cells: (name, role, script) -------------------------------------

SET_CONFIG_TX = "begin;\nselect set_config('app.tenant_id', :tid, true);\ncommit;\n"
SET_TENANT_TX = "begin;\nselect tenancy.set_tenant(:tid, true);\ncommit;\n"


def _host_pick(shape: Shape) -> str:
    """pgbench lines picking an active exact host d<i>.example.com (every tenth i is pending)."""
    exact = shape.mappings - shape.partners
    return f"\\set q random(0, {9 * (exact // 10) - 1})\n\\set i 10 * (:q / 9) + :q % 9 + 1\n"


def domain_scripts(shape: Shape) -> dict[str, str]:
    pick = _host_pick(shape)
    return {
        "raw": pick
        + "select tenant_id from tenancy.domain_mappings where domain = 'd' || :i || '.example.com';\n",
        "resolve": pick + "select tenancy.resolve_domain('d' || :i || '.example.com');\n",
    }


# --- per-statement cost of the context check (inside the server) ----------------------------------

LOOP = """do $$ begin for i in 1..{n} loop
    perform 1 from bench.items where id = {off} + {stride} * (i % {count}){filter};
end loop; end $$"""


def _loop_seconds(conn: psycopg.Connection, n: int, count: int, tenant_filter: str) -> float:
    sql = LOOP.format(n=n, off=C_OFFSET, stride=C_STRIDE, count=count, filter=tenant_filter)
    start = time.perf_counter()
    conn.execute(sql)
    return time.perf_counter() - start


@dataclasses.dataclass(frozen=True)
class StatementCost:
    policy_us: float  # one point lookup through the generated policies
    hand_us: float  # the same with an explicit tenant filter, BYPASSRLS
    statements: int

    @property
    def overhead_us(self) -> float:
        return self.policy_us - self.hand_us


def statement_cost(dsn: str, ids: Ids, shape: Shape, n: int, reps: int) -> StatementCost:
    """A PL/pgSQL loop of ``n`` point lookups, with and without policies, alternating, medians."""
    count = max(shape.rows // C_STRIDE - 1, 1)
    app = psycopg.connect(f"{dsn} user=bench_app", autocommit=True)
    hand = psycopg.connect(f"{dsn} user=bench_hand", autocommit=True)
    with app, hand:
        app.execute("select tenancy.set_tenant(%s)", [ids.customer])
        own = f" and tenant_id = '{ids.customer}'"
        policy, plain = [], []
        for _ in range(reps + 1):  # the first pair warms up
            policy.append(_loop_seconds(app, n, count, ""))
            plain.append(_loop_seconds(hand, n, count, own))
        return StatementCost(
            statistics.median(policy[1:]) / n * 1e6, statistics.median(plain[1:]) / n * 1e6, n
        )


# --- set_tenant inside the server: where the time goes ---------------------------------------------

ARGS = "pg_catalog.current_setting('tenancy.ctx', true), pg_catalog.date_part('epoch', pg_catalog.now())"
EMPTY = "empty transaction (PL/pgSQL loop with COMMIT)"
NOOP = "  an empty PL/Python function, two arguments (for scale)"
CUSTOMER_CHECK = "a customer policy's context check, tenancy._ctx_customer(<setting>, <now>)"
PARTS = {
    EMPTY: "perform 1",
    "set_config('app.tenant_id', ..., true)": "perform pg_catalog.set_config('app.tenant_id', '{t}', true)",
    "tenancy.set_tenant(..., true)": "perform tenancy.set_tenant('{t}', true)",
    "  its validation and mint, tenancy._enter_tenant(...)": (
        "perform tenancy._enter_tenant('{t}', true, current_user, 'set_tenant')"
    ),
    "  its search_path mark, tenancy._set_shape(true, true)": "perform tenancy._set_shape(true, true)",
    "  its routing check, tenancy._route(...)": "perform tenancy._route('{t}', true)",
    NOOP: "perform bench.plpy_noop('{t}', 1.0)",
    CUSTOMER_CHECK: f"perform tenancy._ctx_customer({ARGS})",
    "a partner policy's context check, tenancy._ctx_visible(<setting>, <now>)::uuid[]": (
        f"perform tenancy._ctx_visible({ARGS})::uuid[]"
    ),
}


def check_vs_noop(parts: dict[str, float]) -> float:
    """SPEC v0.3 §6: the per-statement context check against an empty PL/Python call, each net of
    the loop and commit they are measured in."""
    return (parts[CUSTOMER_CHECK] - parts[EMPTY]) / max(parts[NOOP] - parts[EMPTY], 1e-9)


def set_tenant_parts(dsn: str, ids: Ids, n: int) -> dict[str, float]:
    """Microseconds per transaction of set_tenant and of its parts: a server-side loop that commits
    after every call (the first call in a transaction is what a pooled application pays)."""
    out: dict[str, float] = {}
    with psycopg.connect(f"{dsn} user=bench_app", autocommit=True) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [ids.customer])
        for _ in range(2):  # the second pass counts
            for label, stmt in PARTS.items():
                body = stmt.format(t=ids.customer)
                start = time.perf_counter()
                conn.execute(f"do $$ begin for i in 1..{n} loop {body}; commit; end loop; end $$")
                out[label] = (time.perf_counter() - start) / n * 1e6
    return out


# --- effective_tokens ---------------------------------------------------------------------------------


def tokens_installed(conn: psycopg.Connection) -> bool:
    row = conn.execute("select to_regprocedure('tenancy.set_tokens(uuid,jsonb)') is not null").fetchone()
    return bool(row and row[0])


def _group(prefix: str, count: int, value: str, kind: str) -> dict[str, object]:
    return {"$type": kind, **{f"{prefix}{i}": {"$value": value.format(i=i)} for i in range(count)}}


def token_layers(total: int = 500) -> tuple[dict[str, object], dict[str, object], dict[str, object]]:
    """A 3-tier chain with ``total`` tokens: the platform defines them all (colors, sizes, aliases),
    the partner overrides a fifth, the customer a tenth (and its aliases follow the partner)."""
    colors = total * 2 // 5
    sizes = total * 2 // 5
    aliases = total - colors - sizes
    root = {
        "color": {
            "palette": _group("c", colors, "#{i:06x}", "color"),
            "brand": {"$type": "color", "primary": {"$value": "#0050b3"}},
        },
        "size": _group("s", sizes, "{i}px", "dimension"),
        "alias": {
            "$type": "color",
            **{f"a{i}": {"$value": f"{{color.palette.c{i}}}"} for i in range(aliases - 1)},
        },
    }
    partner = {
        "color": {
            "palette": {f"c{i}": {"$value": f"#{(i * 7) % 0xFFFFFF:06x}"} for i in range(0, colors, 2)},
            "brand": {"primary": {"$value": "#aa2200"}},
        },
        "size": {f"s{i}": {"$value": f"{i + 1}px"} for i in range(0, sizes, 4)},
    }
    customer = {
        "color": {
            "palette": {f"c{i}": {"$value": f"#{(i * 13) % 0xFFFFFF:06x}"} for i in range(1, colors, 4)}
        },
        "size": {f"s{i}": {"$value": f"{i + 2}px"} for i in range(1, sizes, 8)},
        "alias": {"brand": {"$value": "{color.brand.primary}"}},
    }
    return root, partner, customer


@dataclasses.dataclass(frozen=True)
class TokenTimes:
    cold_connection_ms: list[float]
    cold_after_write_ms: list[float]
    cached_ms: list[float]
    tokens: int


def _timed(conn: psycopg.Connection, tenant: str) -> float:
    start = time.perf_counter()
    conn.execute("select tenancy.effective_tokens(%s)", [tenant]).fetchone()
    return (time.perf_counter() - start) * 1e3


def _count_tokens(doc: object) -> int:
    if isinstance(doc, dict):
        return (
            1 if "$value" in doc else sum(_count_tokens(v) for k, v in doc.items() if not k.startswith("$"))
        )
    return 0


def effective_tokens(admin: psycopg.Connection, dsn: str, ids: Ids, reps: int) -> TokenTimes:
    root, partner, customer = token_layers()
    for tenant, doc in ((ids.platform, root), (ids.partner, partner), (ids.customer, customer)):
        admin.execute("select tenancy.set_tokens(%s, %s::jsonb)", [tenant, json.dumps(doc)])
    cold, after_write, cached = [], [], []
    for _ in range(reps):
        with psycopg.connect(f"{dsn} user=bench_app", autocommit=True) as app:
            app.execute("select tenancy.set_tenant(%s)", [ids.customer])
            cold.append(_timed(app, ids.customer))
            cached += [_timed(app, ids.customer) for _ in range(20)]
            admin.execute("select tenancy.set_tokens(%s, %s::jsonb)", [ids.customer, json.dumps(customer)])
            after_write.append(_timed(app, ids.customer))
    with psycopg.connect(f"{dsn} user=bench_app", autocommit=True) as app:
        app.execute("select tenancy.set_tenant(%s)", [ids.customer])
        row = app.execute("select tenancy.effective_tokens(%s)", [ids.customer]).fetchone()
    return TokenTimes(cold, after_write, cached, _count_tokens(row[0] if row else None))


# --- plan shapes ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PlanCheck:
    context: str
    query: str
    lines: list[str]

    @property
    def equality(self) -> bool:
        """The tenant compared with one value (the customer's shape), in an index condition or filter."""
        return any(("Index Cond:" in ln or "Filter:" in ln) and "tenant_id = $" in ln for ln in self.lines)

    @property
    def index_cond(self) -> bool:
        return any("Index Cond:" in ln and "tenant_id = " in ln for ln in self.lines)

    @property
    def pk_lookup(self) -> bool:
        """A unique-key probe with the tenant check as a filter (point lookups)."""
        text = "\n".join(self.lines)
        return "items_pkey" in text and "Index Cond: (id =" in text and "Filter: (tenant_id = " in text

    @property
    def function_per_row(self) -> bool:
        """A function call in a per-row condition (the InitPlans run once per statement)."""
        return any(("Filter:" in ln or "Cond:" in ln) and "tenancy." in ln for ln in self.lines)

    @property
    def tenant_test(self) -> bool:
        return any(("Filter:" in ln or "Cond:" in ln) and "tenant_id" in ln for ln in self.lines)

    @property
    def subplan(self) -> bool:
        return any("SubPlan" in ln for ln in self.lines)

    @property
    def initplan(self) -> bool:
        return any("InitPlan" in ln for ln in self.lines)

    @property
    def sort(self) -> bool:
        """A Sort node: the rows come unordered (informational; not part of the SPEC's shape)."""
        return any(ln.strip().startswith("->  Sort") or ln.strip().startswith("Sort ") for ln in self.lines)

    @property
    def ok(self) -> bool:
        if self.subplan or self.function_per_row:
            return False
        if self.context == "platform":  # the tier-0 full read: no per-row tenant test at all
            return not self.tenant_test or self.query != "agg"
        if self.context == "customer" and not self.equality:
            return False
        return (self.index_cond or self.pk_lookup) and self.initplan


UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
UUID_LIST = re.compile("{" + UUID + "(?:," + UUID + ")+}")


def abbreviate(text: str) -> str:
    """Long uuid array literals (the partner's set) shortened to their size."""
    return UUID_LIST.sub(lambda m: "{<" + str(m.group(0).count(",") + 1) + " uuids>}", text)


def _explain(conn: psycopg.Connection, sql: str, analyze: bool = False) -> list[str]:
    opts = "analyze, buffers" if analyze else "costs off"
    return [abbreviate(str(r[0])) for r in conn.execute(f"explain ({opts}) {sql}")]


def plan_checks(dsn: str, ids: Ids, shape: Shape) -> Iterator[PlanCheck]:
    for context in ("customer", "partner", "wide", "platform"):
        role = TENANCY.role(context)
        with psycopg.connect(f"{dsn} user={role}", autocommit=True) as conn:
            conn.execute("select tenancy.set_tenant(%s)", [tenant_of(context, ids)])
            for query in ("agg",) if context == "platform" else ("point", "list", "agg", "join"):
                sql = query_sql(Cell(context, query, TENANCY), shape, ids)
                yield PlanCheck(context, query, _explain(conn, sql))


def explain_analyze(dsn: str, cell: Cell, shape: Shape, ids: Ids) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of a cell's query, as its role, in its context (run twice: warm)."""
    tid = tenant_of(cell.context, ids)
    with psycopg.connect(f"{dsn} user={cell.arm.role(cell.context)}", autocommit=True) as conn:
        if cell.arm.name == "tenancy":
            conn.execute("select tenancy.set_tenant(%s)", [tid])
        else:
            conn.execute("select set_config('app.tenant_id', %s, false)", [tid])
        sql = query_sql(cell, shape, ids)
        _explain(conn, sql, analyze=True)
        return _explain(conn, sql, analyze=True)


# --- plan invalidation: what a tier change costs a backend with many cached statements -------------


@dataclasses.dataclass(frozen=True)
class Invalidation:
    statements: int  # cached statements in the backend (the loop's own PL/pgSQL statements)
    same_tier_us: float  # one round: set_tenant to another customer, then every statement once
    tier_change_us: float  # the same with set_tenant alternating customer and partner

    @property
    def per_statement_us(self) -> float:
        """What each cached statement costs the next time it runs after a tier change."""
        return (self.tier_change_us - self.same_tier_us) / max(self.statements, 1)


def _rotation_block(first: str, second: str, statements: int, rounds: int) -> str:
    body = "\n".join(
        f"        perform 1 from bench.items where id = {C_OFFSET} + {C_STRIDE} * {i};"
        for i in range(statements)
    )
    return f"""do $$ begin for r in 1..{rounds} loop
        perform tenancy.set_tenant(case when r % 2 = 0 then '{first}'::uuid else '{second}'::uuid end);
{body}
    end loop; end $$"""


def invalidation_cost(
    dsn: str, ids: Ids, counts: tuple[int, ...], rounds: int, reps: int
) -> list[Invalidation]:
    """Server-side loops of ``rounds`` context changes, each followed by ``n`` cached statements
    (point lookups, each a statement of the loop: a plan of its own), same tier against alternating
    tiers; medians of ``reps`` alternating pairs, after a warm-up pair."""
    other = next(c for c in ids.partner_set if c not in (ids.partner, ids.customer))
    out = []
    with psycopg.connect(f"{dsn} user=bench_app", autocommit=True) as conn:
        for n in counts:
            same = _rotation_block(ids.customer, other, n, rounds)
            change = _rotation_block(ids.customer, ids.partner, n, rounds)
            times: dict[str, list[float]] = {"same": [], "change": []}
            for _ in range(reps + 1):
                for key, sql in (("same", same), ("change", change)):
                    start = time.perf_counter()
                    conn.execute(sql)
                    times[key].append((time.perf_counter() - start) / rounds * 1e6)
            out.append(
                Invalidation(n, statistics.median(times["same"][1:]), statistics.median(times["change"][1:]))
            )
    return out
