"""Results: the ratio table with the SPEC §6 targets, text for the terminal, Markdown for
docs/benchmarks.md (between the markers), and the chart."""

from __future__ import annotations

import dataclasses
import math
import pathlib
import re

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the main table: an arm's query against its baseline in one context."""

    context: str
    query: str
    base_us: float  # the baseline's query statement, mean µs
    arm_us: float
    ratio: float  # query statement, median of per-round ratios
    tps_ratio: float  # whole transaction: baseline tps / arm tps
    p50_ratio: float
    p99_ratio: float
    naive_ratio: float | None
    target: float | None  # the query statement's
    tx_target: float | None = None  # the whole transaction's

    @property
    def verdict(self) -> str:
        if self.target is None and self.tx_target is None:
            return ""
        ok = (self.target is None or self.ratio <= self.target) and (
            self.tx_target is None or self.tps_ratio <= self.tx_target
        )
        return "PASS" if ok else "MISS"


@dataclasses.dataclass(frozen=True)
class Check:
    """One line of the second table: a single measurement against a target."""

    name: str
    value: str
    target: str
    passed: bool | None  # None: informational
    ratio: float | None = None  # for the chart

    @property
    def verdict(self) -> str:
        return "" if self.passed is None else ("PASS" if self.passed else "MISS")


def fmt_ratio(x: float | None) -> str:
    if x is None or math.isnan(x):
        return "—"
    return f"{x:.2f}×" if x < 10 else f"{x:.0f}×"


def fmt_us(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


HEADER = [
    "context",
    "query",
    "baseline µs",
    "tenancy µs",
    "statement",
    "target",
    "tx (1/tps)",
    "tx target",
    "",
    "tx p50",
    "tx p99",
    "naive",
]


def _limit(x: float | None) -> str:
    return "—" if x is None else f"≤ {x:.2f}×"


def _cells(r: Row) -> list[str]:
    return [
        r.context,
        r.query,
        fmt_us(r.base_us),
        fmt_us(r.arm_us),
        fmt_ratio(r.ratio),
        _limit(r.target),
        fmt_ratio(r.tps_ratio),
        _limit(r.tx_target),
        r.verdict,
        fmt_ratio(r.p50_ratio),
        fmt_ratio(r.p99_ratio),
        fmt_ratio(r.naive_ratio),
    ]


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(out)


def main_rows(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    return HEADER, [_cells(r) for r in rows]


def check_rows(checks: list[Check]) -> tuple[list[str], list[list[str]]]:
    return ["measurement", "result", "target", ""], [[c.name, c.value, c.target, c.verdict] for c in checks]


def replace_section(path: pathlib.Path, body: str, preamble: str) -> None:
    """Rewrite the part of ``path`` between the markers (create the file with ``preamble`` if needed)."""
    text = path.read_text() if path.exists() else preamble
    if BEGIN not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n{BEGIN}\n{END}\n"
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    path.write_text(pattern.sub(lambda _: f"{BEGIN}\n{body.rstrip()}\n{END}", text, count=1))


COLORS = ("#2b6cb0", "#63b3ed", "#2f855a", "#9ae6b4", "#b0b0b0")


@dataclasses.dataclass(frozen=True)
class ChartData:
    labels: list[str]
    series: list[tuple[str, list[float]]]  # (legend, one value per label)
    targets: list[float]  # NaN: none


def _short(name: str) -> str:
    return name.split(" vs ")[0].replace(" transaction", "\ntx").replace("_domain", "\ndomain")


def _base_name(check: Check) -> str:
    return check.name.split(" [")[0]


def chart_data(tables: dict[str, list[Row]], checks: list[Check]) -> ChartData:
    """Per query: the tenancy ratio under each placement and the naive ratio (first placement);
    then the ratio checks (set_tenant, resolve_domain) under each placement."""
    first = next(iter(tables))
    reads = [r for r in tables[first] if r.query != "write"]
    names = list(dict.fromkeys(_base_name(c) for c in checks if c.ratio is not None))
    labels = [f"{r.context}\n{r.query}" for r in reads]
    labels += [_short(n) for n in names]
    series: list[tuple[str, list[float]]] = []
    for label, rows in tables.items():
        by_name = {_base_name(c): c.ratio for c in checks if c.name.endswith(f"[{label}]")}
        values = [r.ratio for r in rows if r.query != "write"]
        series.append((f"tenancy, {label}", values + [by_name.get(n) or math.nan for n in names]))
    naive = [r.naive_ratio or math.nan for r in reads] + [math.nan] * len(names)
    series = [(name, [v if v is not None else math.nan for v in values]) for name, values in series]
    series.append((f"naive policy, {first}", naive))
    limit = {_base_name(c): float(c.target.strip("≤ ×")) for c in checks if c.ratio is not None}
    targets = [r.target or math.nan for r in reads] + [limit[n] for n in names]
    return ChartData(labels, series, targets)


def chart(tables: dict[str, list[Row]], checks: list[Check], path: pathlib.Path) -> None:
    """Write the bar chart of ``chart_data`` (log scale, red ticks at the targets) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = chart_data(tables, checks)
    xs = list(range(len(data.labels)))
    width = 0.8 / len(data.series)
    fig, ax = plt.subplots(figsize=(max(9.0, 0.8 * len(xs)), 5.0), dpi=110)
    for i, (name, values) in enumerate(data.series):
        offset = (i - (len(data.series) - 1) / 2) * width
        ax.bar([x + offset for x in xs], values, width, label=name, color=COLORS[i % len(COLORS)])
    for x, t in zip(xs, data.targets, strict=True):
        if not math.isnan(t):
            ax.hlines(t, x - 0.45, x + 0.45, colors="#c53030", linewidth=2)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(xs, data.labels, fontsize=7)
    ax.set_ylabel("time ratio vs hand-written filter / no RLS (log scale)")
    ax.set_title("tenancy benchmark: cost ratios (red ticks: SPEC §6 targets)", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
