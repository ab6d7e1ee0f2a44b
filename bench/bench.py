"""`make bench`: tenancy's generated policies against hand-written filters, the tutorial policy and no
RLS, on a skewed multi-tenant data set; the SPEC §6 targets with PASS/MISS.

    .venv/bin/python bench/bench.py [--quick] [--scale N] [--rounds R] [--seconds S] [--no-write]

Needs a superuser DSN (TENANCY_TEST_DSN, as scripts/with-cluster.sh exports it) and pgbench
(TENANCY_PGBIN). Makes a fresh database, loads it (bench_data), then runs every cell of the
matrix (bench_cells) as short pgbench runs, round robin: the arms of a query back to back, in an
order that rotates every round, under each CPU placement and with each protocol (extended and
simple), so that drift and bursts of load land on every arm alike; ratios are medians of per-round
ratios. Then the targeted measurements
(bench_micro), the plan shapes, and EXPLAIN (ANALYZE, BUFFERS) of every query that misses its
target. Prints the tables and (unless --no-write) rewrites the results section of
docs/benchmarks.md and docs/benchmarks.png. Exits 0 whatever the verdicts: this is a measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import os
import pathlib
import platform
import signal
import sys
import time

import bench_cells as bc
import bench_micro as bm
import bench_report as br
import psycopg
from bench_data import Ids, Shape, create_roles, drop_roles, find_ids, load, progress_line, sizes
from bench_pgbench import Pgbench, PgbenchError, Series, round_ratios, run_script

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
PNG = ROOT / "docs" / "benchmarks.png"
DB = "tenancy_bench"
DB_SETTINGS = {"jit": "off", "max_parallel_workers_per_gather": "0"}
PLACEMENTS = {"one-cpu": "1 CPU", "split": "2 CPUs", "free": "unpinned"}


@dataclasses.dataclass(frozen=True)
class Config:
    shape: Shape
    rounds: int
    seconds: int
    warmup: int
    loop: int  # statements per server-side loop


def config(args: argparse.Namespace) -> Config:
    if args.quick:
        cfg = Config(Shape(100_000, 200, 5, 20_000, wide=500), 2, 1, 1, 5_000)
    else:
        cfg = Config(Shape(1_000_000, 1_000, 20, 100_000), 4, 2, 1, 20_000)
    shape = dataclasses.replace(cfg.shape, rows=int(cfg.shape.rows * args.scale))
    return dataclasses.replace(
        cfg, shape=shape, rounds=args.rounds or cfg.rounds, seconds=args.seconds or cfg.seconds
    )


# --- jobs: one pgbench script per (group, arm) --------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Job:
    group: str
    arm: str
    role: str
    script: str
    defines: dict[str, str]
    options: str = ""  # PGOPTIONS
    protocol: str = "prepared"  # pgbench -M


def gkey(context: str, query: str, protocol: str) -> str:
    """The key of a group of arms (one query in one context with one protocol)."""
    return f"{context}/{query}" + ("" if protocol == "prepared" else "@simple")


def _job(
    group: str,
    arm: str,
    role: str,
    script: str,
    defines: dict[str, str],
    protocol: str = "prepared",
    **kw: str,
) -> Job:
    text, short = bc.inline_long(script, bc.quoted(defines, protocol))
    return Job(group, arm, role, text, short, protocol=protocol, **kw)


def matrix_jobs(shape: Shape, ids: Ids) -> list[list[Job]]:
    groups: dict[str, list[Job]] = {}
    for protocol in bc.PROTOCOLS:
        for cell in bc.cells(protocol):
            group = gkey(cell.context, cell.query, protocol)
            job = _job(
                group,
                cell.arm.name,
                cell.arm.role(cell.context),
                bc.script(cell, shape),
                bc.defines(cell, ids),
                protocol=protocol,
            )
            groups.setdefault(group, []).append(job)
        for arm in (bc.TENANCY, bc.HAND):
            role = arm.role("customer")
            g = gkey("rotate", "customers", protocol)
            script = bc.rotate_customers(arm, ids.customers, protocol)
            groups.setdefault(g, []).append(_job(g, arm.name, role, script, {}, protocol=protocol))
            g = gkey("rotate", "tiers", protocol)
            defs = bc.rotate_defines(ids)
            groups.setdefault(g, []).append(
                _job(g, arm.name, role, bc.rotate_tiers(arm), defs, protocol=protocol)
            )
    for v in bc.variants(shape):
        group = gkey(v.context, v.query, "prepared")
        groups[group].append(
            _job(group, v.name, v.role, v.script, bc.variant_defines(v, ids), options=v.options)
        )
    return list(groups.values())


def micro_jobs(shape: Shape, ids: Ids) -> list[list[Job]]:
    tid = {"tid": ids.customer}
    domain = bm.domain_scripts(shape)
    out = [
        [
            _job(gkey("context", "set_tenant", p), "set_config", "bench_app", bm.SET_CONFIG_TX, tid, p),
            _job(gkey("context", "set_tenant", p), "set_tenant", "bench_app", bm.SET_TENANT_TX, tid, p),
        ]
        for p in bc.PROTOCOLS
    ]
    return [
        *out,
        [
            Job("domain/resolve", "raw", "bench_hand", domain["raw"], {}),
            Job("domain/resolve", "resolve", "bench_hand", domain["resolve"], {}),
        ],
    ]


Results = dict[tuple[str, str, str], Series]  # (placement, group, arm)


def run_rounds(pg: Pgbench, placement: Placement, groups: list[list[Job]], cfg: Config) -> Results:
    modes = placement.modes
    results: Results = {(m, j.group, j.arm): Series() for m in modes for g in groups for j in g}
    total = cfg.rounds * len(results)
    start = time.perf_counter()
    placement.use(modes[0])
    for group in groups:  # warm-up: caches and plans, not counted
        for job in group:
            progress_line(f"  warm-up {job.group} {job.arm}")
            run_script(pg, job.role, job.script, cfg.warmup, job.defines, job.options, job.protocol)
    done = 0
    for rnd in range(cfg.rounds):
        for group in groups:
            for mode in modes:
                cpus = placement.use(mode)
                k = rnd % len(group)
                for job in group[k:] + group[:k]:
                    elapsed = time.perf_counter() - start
                    left = elapsed / done * (total - done) if done else 0
                    progress_line(
                        f"  round {rnd + 1}/{cfg.rounds} {job.group} {job.arm} [{PLACEMENTS[mode]}] "
                        f"({done + 1}/{total}), {elapsed:.0f} s, ~{left:.0f} s left"
                    )
                    run = run_script(
                        dataclasses.replace(pg, cpus=cpus),
                        job.role,
                        job.script,
                        cfg.seconds,
                        job.defines,
                        job.options,
                        job.protocol,
                    )
                    results[(mode, job.group, job.arm)].runs.append(run)
                    done += 1
    progress_line(f"  {total} pgbench runs in {time.perf_counter() - start:.0f} s\n")
    return results


# --- CPU placement ------------------------------------------------------------------------------------


def postmaster_pid(conn: psycopg.Connection) -> int | None:
    row = conn.execute("select pg_backend_pid()").fetchone()
    try:
        stat = pathlib.Path(f"/proc/{row[0] if row else 0}/stat").read_text()
    except OSError:
        return None  # not a local server
    return int(stat.rsplit(")", 1)[1].split()[1])


@dataclasses.dataclass
class Placement:
    """Pins new backends (through the postmaster's CPU affinity) and pgbench to CPUs.

    ``one-cpu``: both on the last CPU (no network, no wake-up across CPUs: the CPU cost);
    ``split``: backends on the first CPU, pgbench on the last (every statement is a cross-CPU round
    trip, as with a client elsewhere); ``free``: no pinning.
    """

    modes: tuple[str, ...]
    pid: int | None = None
    saved: set[int] | None = None
    cpus: list[int] = dataclasses.field(default_factory=list)

    def setup(self, conn: psycopg.Connection) -> str:
        self.cpus = sorted(os.sched_getaffinity(0))
        self.pid = postmaster_pid(conn)
        reason = "one CPU only" if len(self.cpus) < 2 else "not a local server" if self.pid is None else ""
        if self.modes == ("free",) or reason:
            self.modes = ("free",)
            return f"not pinned{f' ({reason})' if reason else ''}"
        try:
            self.saved = os.sched_getaffinity(self.pid)
        except OSError as exc:
            self.modes = ("free",)
            return f"not pinned ({exc})"
        return "; ".join(f"{PLACEMENTS[m]}: {self.describe(m)}" for m in self.modes)

    def describe(self, mode: str) -> str:
        server, client = self._cpus(mode)
        return f"backends on CPU {server}, pgbench on CPU {client}"

    def _cpus(self, mode: str) -> tuple[int, int]:
        return (self.cpus[-1] if mode == "one-cpu" else self.cpus[0]), self.cpus[-1]

    def use(self, mode: str) -> tuple[int, ...] | None:
        """Pin for ``mode``; returns the CPUs for pgbench (None: unpinned)."""
        if mode == "free" or self.pid is None:
            return None
        server, client = self._cpus(mode)
        os.sched_setaffinity(self.pid, {server})
        return (client,)

    def restore(self) -> None:
        if self.pid is not None and self.saved is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self.pid, self.saved)


# --- machine ------------------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


SETTINGS = (
    "shared_buffers",
    "work_mem",
    "jit",
    "max_parallel_workers_per_gather",
    "fsync",
    "synchronous_commit",
    "random_page_cost",
)


def machine(conn: psycopg.Connection) -> dict[str, str]:
    row = conn.execute("select version()").fetchone()
    shown = [(s, conn.execute(f"show {s}").fetchone()) for s in SETTINGS]
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{os.cpu_count()} × {cpu_model()}",
        "os": f"{platform.system()} {platform.release()}",
        "postgres": str(row[0]) if row else "?",
        "settings": ", ".join(f"{s}={r[0]}" for s, r in shown if r is not None),
    }


# --- building the report --------------------------------------------------------------------------------

# SPEC 6 (v0.2): (query statement, whole transaction) per context; None: no target
STATEMENT_TARGET, TX_TARGET = 1.05, 1.10
WIDE_TARGET = 1.10  # a partner with 5,000 children: the query statement
PLATFORM_TARGET = 1.05  # the tier-0 full read (agg) against no RLS
SET_TENANT_TARGET = 1.15
RESOLVE_TARGET = 1.5
TOKENS_TARGET_MS = 5.0
ROTATIONS = ("customers", "tiers")


def targets(context: str, query: str) -> tuple[float | None, float | None]:
    if query == "write" or context == "rotate":
        return None, None
    if context == "platform":
        return (PLATFORM_TARGET if query == "agg" else None), None
    if context == "wide":
        return WIDE_TARGET, None
    return STATEMENT_TARGET, TX_TARGET


def row_keys() -> list[tuple[str, str]]:
    keys = [(c, q) for c in bc.CONTEXTS for q in bc.queries(c)]
    return keys + [("rotate", q) for q in ROTATIONS]


def matrix_rows(res: Results, mode: str, protocol: str) -> list[br.Row]:
    rows: list[br.Row] = []
    for context, query in row_keys():
        base = bc.baseline(context).name
        g = gkey(context, query, protocol)
        arm, ref = res[(mode, g, "tenancy")], res[(mode, g, base)]
        naive = res.get((mode, g, "naive"))
        target, tx_target = targets(context, query)
        rows.append(
            br.Row(
                context,
                query,
                ref.body_ms() * 1e3,
                arm.body_ms() * 1e3,
                round_ratios(arm, ref, "body"),
                round_ratios(arm, ref, "tps"),
                arm.p50() / ref.p50(),
                arm.p99() / ref.p99(),
                round_ratios(naive, ref, "body") if naive else None,
                target,
                tx_target,
            )
        )
    return rows


def variant_table(res: Results, modes: tuple[str, ...], shape: Shape) -> tuple[list[str], list[list[str]]]:
    """Each variant's ratio beside the plain tenancy arm's, against the same baseline, per placement."""
    header = ["context", "query", "variant"]
    header += [f"{kind} [{PLACEMENTS[m]}]" for m in modes for kind in ("tenancy", "variant")]
    rows = []
    for v in bc.variants(shape):
        g = gkey(v.context, v.query, "prepared")
        cells = [v.context, v.query, v.label]
        for m in modes:
            ref = res[(m, g, bc.baseline(v.context).name)]
            for arm in ("tenancy", v.name):
                cells.append(br.fmt_ratio(round_ratios(res[(m, g, arm)], ref, "body")))
        rows.append(cells)
    return header, rows


def _pair_check(name: str, unit: str, base: Series, arm: Series, target: float) -> br.Check:
    ratio = round_ratios(arm, base, "tps")
    value = (
        f"{br.fmt_ratio(ratio)} ({1e6 / base.tps():.1f} → {1e6 / arm.tps():.1f} µs/{unit}; "
        f"p50 {br.fmt_ratio(arm.p50() / base.p50())}, p99 {br.fmt_ratio(arm.p99() / base.p99())})"
    )
    return br.Check(name, value, f"≤ {target}×", ratio <= target, ratio)


def micro_checks(res: Results, mode: str) -> list[br.Check]:
    out = [
        _pair_check(
            f"set_tenant transaction vs bare set_config transaction [{PLACEMENTS[mode]}, {p}]",
            "tx",
            res[(mode, gkey("context", "set_tenant", p), "set_config")],
            res[(mode, gkey("context", "set_tenant", p), "set_tenant")],
            SET_TENANT_TARGET,
        )
        for p in bc.PROTOCOLS
    ]
    return [
        *out,
        _pair_check(
            f"resolve_domain vs raw indexed lookup [{PLACEMENTS[mode]}, prepared]",
            "call",
            res[(mode, "domain/resolve", "raw")],
            res[(mode, "domain/resolve", "resolve")],
            RESOLVE_TARGET,
        ),
    ]


def token_checks(t: bm.TokenTimes | None, note: str) -> list[br.Check]:
    target = f"≤ {TOKENS_TARGET_MS:g} ms"
    if t is None:
        return [br.Check("effective_tokens, 3-tier chain of 500 tokens", note, target, None)]
    out = []
    for name, values in (
        ("cold (first call in a new connection)", t.cold_connection_ms),
        ("cold (first call after a set_tokens write)", t.cold_after_write_ms),
        ("cached (repeated calls in one connection)", t.cached_ms),
    ):
        med = sorted(values)[len(values) // 2]
        value = f"{med:.2f} ms median, {max(values):.2f} ms max (n={len(values)})"
        out.append(
            br.Check(f"effective_tokens {name}, {t.tokens} tokens", value, target, med <= TOKENS_TARGET_MS)
        )
    return out


def measure_tokens(dsn: str, ids: Ids) -> tuple[bm.TokenTimes | None, str]:
    with psycopg.connect(dsn, autocommit=True) as admin:
        if not bm.tokens_installed(admin):
            return None, "skipped: token SQL layer not installed"
        try:
            return bm.effective_tokens(admin, dsn, ids, reps=10), ""
        except psycopg.Error as exc:
            return None, f"error: {str(exc).strip().splitlines()[0]}"


def _where(c: bm.PlanCheck) -> str:
    if c.context == "platform":
        return "a tenant test per row" if c.tenant_test else "no tenant test per row"
    kind = "an equality" if c.equality else "= ANY"
    if c.index_cond:
        return f"Index Cond on tenant_id ({kind})"
    return (
        f"primary-key probe, tenant in Filter ({kind})" if c.pk_lookup else "no index condition on tenant_id"
    )


def plan_section(checks: list[bm.PlanCheck]) -> str:
    out = []
    for c in checks:
        out.append(
            f"{'PASS' if c.ok else 'MISS'} {c.context}/{c.query}: {_where(c)}; "
            f"InitPlan {'yes' if c.initplan else 'no'}; SubPlan {'yes' if c.subplan else 'no'}; "
            f"function per row {'yes' if c.function_per_row else 'no'}"
            + ("; note: a Sort of the visible rows, no ordered index scan" if c.sort else "")
        )
        out += [f"    {ln}" for ln in c.lines]
    return "\n".join(out)


def misses_section(dsn: str, rows: list[br.Row], shape: Shape, ids: Ids) -> str:
    out: list[str] = []
    seen: set[tuple[str, str]] = set()
    for r in rows:
        if r.verdict != "MISS" or (r.context, r.query) in seen:
            continue
        seen.add((r.context, r.query))
        for arm in (bc.TENANCY, bc.baseline(r.context)):
            cell = bc.Cell(r.context, r.query, arm)
            sql = bm.abbreviate(bc.query_sql(cell, shape, ids))
            out.append(f"-- {cell.key} as {arm.role(r.context)}: {sql}")
            out += bm.explain_analyze(dsn, cell, shape, ids)
            out.append("")
    return "\n".join(out)


@dataclasses.dataclass
class Output:
    tables: dict[str, list[br.Row]]  # "placement, protocol" -> rows
    variants: tuple[list[str], list[list[str]]]
    checks: list[br.Check]
    stmt: bm.StatementCost
    parts: dict[str, float]
    invalidation: list[bm.Invalidation]
    plans: list[bm.PlanCheck]
    misses: str
    info: dict[str, str]

    def _stmt_lines(self) -> list[str]:
        s = self.stmt
        lines = [
            f"context check per statement: {s.overhead_us:+.1f} µs (point lookup through the policies "
            f"{s.policy_us:.1f} µs, hand-written {s.hand_us:.1f} µs; PL/pgSQL loop of {s.statements:,})",
            "",
            "µs per transaction (PL/pgSQL loop, one call then COMMIT):",
        ]
        lines += [f"  {v:6.2f}  {k}" for k, v in self.parts.items()]
        lines += [
            "",
            "plan invalidation (PL/pgSQL loop: set_tenant, then N point lookups, each a cached plan",
            "of its own; µs per round; same tier: another customer; tier change: customer and partner",
            "alternating):",
        ]
        for inv in self.invalidation:
            lines.append(
                f"  N = {inv.statements:5,}: same tier {inv.same_tier_us:9.1f}, "
                f"tier change {inv.tier_change_us:9.1f}"
                f"  → {inv.tier_change_us - inv.same_tier_us:+9.1f} µs per change, "
                f"{inv.per_statement_us:.1f} µs per cached statement re-planned"
            )
        return lines

    def text(self) -> str:
        blocks: list[str] = []
        for label, rows in self.tables.items():
            h, r = br.main_rows(rows)
            blocks += ["", f"queries [{label}]:", br.text_table(h, r)]
        blocks += ["", "variants (ratio against the same baseline):", br.text_table(*self.variants)]
        ch, cr = br.check_rows(self.checks)
        blocks += ["", br.text_table(ch, cr), "", *self._stmt_lines(), ""]
        blocks += ["plan shapes (EXPLAIN as the application role):", plan_section(self.plans)]
        if self.misses:
            blocks += ["", "EXPLAIN (ANALYZE, BUFFERS) of the misses:", self.misses]
        return "\n".join(blocks)

    def markdown(self) -> str:
        info = "\n".join(f"- **{k}**: {v}" for k, v in self.info.items())
        parts = ["## Results", "", info, "", "![ratios](benchmarks.png)", ""]
        for label, rows in self.tables.items():
            h, r = br.main_rows(rows)
            parts += [f"### Queries, {label}", "", br.markdown_table(h, r), ""]
        parts += ["### Variants (same rounds, same baseline)", "", br.markdown_table(*self.variants), ""]
        ch, cr = br.check_rows(self.checks)
        parts += ["### Context, domains, tokens", "", br.markdown_table(ch, cr), ""]
        parts += ["### Where the context's time goes", "", "```", *self._stmt_lines(), "```", ""]
        parts += [
            "### Plan shapes (EXPLAIN as the application role)",
            "",
            "```",
            plan_section(self.plans),
            "```",
        ]
        if self.misses:
            parts += ["", "### EXPLAIN (ANALYZE, BUFFERS) of the misses", "", "```", self.misses, "```"]
        return "\n".join(parts)

    def write(self) -> None:
        br.replace_section(DOC, self.markdown(), PREAMBLE)
        ratios = [c for c in self.checks if c.ratio is not None]
        br.chart(self.tables, ratios, PNG)


PREAMBLE = "# Benchmarks\n\nRun with `make bench`; the script `bench/bench.py` writes the section below.\n"


# --- main ----------------------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--dsn", default=os.environ.get("TENANCY_TEST_DSN", ""), help="superuser DSN")
    p.add_argument("--quick", action="store_true", help="100k rows, 200 tenants, 1-second runs")
    p.add_argument("--scale", type=float, default=1.0, help="multiply the number of rows")
    p.add_argument("--rounds", type=int, default=0, help="round-robin rounds (default 4, quick 2)")
    p.add_argument("--seconds", type=int, default=0, help="seconds per pgbench run (default 2, quick 1)")
    p.add_argument(
        "--placement",
        choices=("both", "one-cpu", "split", "free"),
        default="both",
        help="CPU pinning of backends and pgbench (default both: one-cpu and split, interleaved)",
    )
    p.add_argument("--no-write", action="store_true", help="do not touch docs/")
    p.add_argument("--keep", action="store_true", help=f"keep the database {DB} and the roles")
    p.add_argument("--reuse", action="store_true", help=f"reuse the database {DB} kept by --keep")
    return p.parse_args(argv)


def prepare(admin: psycopg.Connection, dsn: str, cfg: Config, reuse: bool) -> tuple[Ids, float]:
    """A loaded database: returns the context ids and the load time."""
    if reuse:
        with psycopg.connect(dsn, autocommit=True) as conn:
            return find_ids(conn), 0.0
    admin.execute(f"drop database if exists {DB} with (force)")
    create_roles(admin)
    admin.execute(f"create database {DB}")
    for key, value in DB_SETTINGS.items():
        admin.execute(f"alter database {DB} set {key} = {value}")
    start = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        ids = load(conn, cfg.shape)
    return ids, time.perf_counter() - start


def measure(args: argparse.Namespace, cfg: Config, admin: psycopg.Connection, placement: Placement) -> Output:
    started = time.perf_counter()
    dsn = f"{args.dsn} dbname={DB}"
    s = cfg.shape
    print(f"== loading {s.rows:,} rows, {s.tenants:,} tenants, {s.mappings:,} domain mappings", flush=True)
    ids, load_s = prepare(admin, dsn, cfg, args.reuse)
    with psycopg.connect(dsn, autocommit=True) as conn:
        pinned = placement.setup(conn)
        info = machine(conn) | {"placement": pinned}
        data = sizes(conn)
    pg = Pgbench(f"{os.environ.get('TENANCY_PGBIN', '/usr/lib/postgresql/15/bin')}/pgbench", DB)
    print(f"== pgbench: {cfg.rounds} rounds × {cfg.seconds} s per run; {pinned}", flush=True)
    res = run_rounds(pg, placement, matrix_jobs(s, ids) + micro_jobs(s, ids), cfg)
    placement.restore()
    print("== server-side loops, tokens, plans", flush=True)
    stmt = bm.statement_cost(dsn, ids, s, cfg.loop, reps=5)
    parts = bm.set_tenant_parts(dsn, ids, cfg.loop)
    invalidation = bm.invalidation_cost(dsn, ids, (1, 100, 1000), rounds=200, reps=3)
    tokens, note = measure_tokens(dsn, ids)
    tables = {f"{PLACEMENTS[m]}, {p}": matrix_rows(res, m, p) for p in bc.PROTOCOLS for m in placement.modes}
    checks = [c for m in placement.modes for c in micro_checks(res, m)] + token_checks(tokens, note)
    ratio = bm.check_vs_noop(parts)
    checks.append(
        br.Check(
            "per-statement context check vs an empty PL/Python call (server-side loop)",
            f"{br.fmt_ratio(ratio)} ({parts[bm.CUSTOMER_CHECK] - parts[bm.EMPTY]:.2f} vs "
            f"{parts[bm.NOOP] - parts[bm.EMPTY]:.2f} µs)",
            "≤ 1.5×",
            ratio <= 1.5,
            ratio,
        )
    )
    misses = misses_section(dsn, [r for rows in tables.values() for r in rows], s, ids)
    info |= {
        "data": "; ".join(f"{k} {v}" for k, v in data.items()),
        "run": f"{cfg.rounds} rounds × {cfg.seconds} s per pgbench run, placement and protocol, 1 client; "
        f"load {load_s:.0f} s, whole run {(time.perf_counter() - started) / 60:.1f} min",
        "command": "make bench-quick" if args.quick else "make bench",
    }
    variants = variant_table(res, placement.modes, s)
    plans = list(bm.plan_checks(dsn, ids, s))
    return Output(tables, variants, checks, stmt, parts, invalidation, plans, misses, info)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the finally clause runs
    args = parse(argv)
    cfg = config(args)
    modes = ("one-cpu", "split") if args.placement == "both" else (args.placement,)
    placement = Placement(modes)
    admin = psycopg.connect(args.dsn, autocommit=True)
    try:
        out = measure(args, cfg, admin, placement)
        print(out.text())
        if not args.no_write:
            out.write()
            print(f"== wrote {DOC.relative_to(ROOT)} and {PNG.relative_to(ROOT)}")
    except PgbenchError as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 1
    finally:
        placement.restore()
        if not args.keep:
            admin.execute(f"drop database if exists {DB} with (force)")
            drop_roles(admin)
        admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
