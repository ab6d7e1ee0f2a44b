"""Running pgbench: one custom script per cell, per-transaction logs, per-statement latencies.

``run_script`` runs one script for a few seconds over one connection, with prepared statements
(``pgbench -n -M prepared -r -l``) or the simple protocol (``-M simple``), and returns a ``Run``:
throughput, every transaction's latency (from the per-transaction log) and the mean latency of each
statement (``-r``).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import statistics
import subprocess
import tempfile

TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.M)
STMT = re.compile(r"^\s+([0-9.]+)\s+[0-9]+\s+(.*)$")


class PgbenchError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class Run:
    tps: float
    latencies_us: list[float]  # every transaction, microseconds
    statements_ms: list[tuple[str, float]]  # (statement text, mean latency in ms)

    def body_ms(self) -> float:
        """Mean latency of the statements other than BEGIN, the context call and COMMIT."""
        return sum(ms for text, ms in self.statements_ms if not _is_frame(text))


def _is_frame(text: str) -> bool:
    t = text.strip().lower()
    return t.startswith(
        ("begin", "commit", "select tenancy.set_tenant", "select set_config", "select id as tid from", "\\")
    )


@dataclasses.dataclass(frozen=True)
class Pgbench:
    """How to call pgbench: binary, database, the CPU set to pin it to, clients."""

    binary: str
    dbname: str
    cpus: tuple[int, ...] | None = None
    clients: int = 1

    def command(
        self,
        role: str,
        script: pathlib.Path,
        seconds: int,
        log_prefix: str,
        defines: dict[str, str],
        protocol: str = "prepared",
    ) -> list[str]:
        cmd = [] if self.cpus is None else ["taskset", "-c", ",".join(map(str, self.cpus))]
        cmd += [
            self.binary,
            "-n",
            "-M",
            protocol,
            "-r",
            "-l",
            f"--log-prefix={log_prefix}",
            "-T",
            str(seconds),
            "-c",
            str(self.clients),
            "-j",
            str(self.clients),
            "-U",
            role,
        ]
        for key, value in defines.items():
            cmd += ["-D", f"{key}={value}"]
        return [*cmd, "-f", str(script), self.dbname]


def _parse_statements(out: str) -> list[tuple[str, float]]:
    lines = out.split("statement latencies in milliseconds", 1)
    if len(lines) < 2:
        return []
    found: list[tuple[str, float]] = []
    for line in lines[1].splitlines()[1:]:
        m = STMT.match(line)
        if m:
            found.append((m.group(2), float(m.group(1))))
    return found


def _read_logs(folder: pathlib.Path, prefix: str) -> list[float]:
    out: list[float] = []
    for path in folder.glob(f"{prefix}.*"):
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2].isdigit():
                out.append(float(fields[2]))
    return out


def run_script(
    pg: Pgbench,
    role: str,
    script_text: str,
    seconds: int,
    defines: dict[str, str],
    options: str = "",
    protocol: str = "prepared",
) -> Run:
    with tempfile.TemporaryDirectory(prefix="tenancy-bench-") as tmp:
        folder = pathlib.Path(tmp)
        script = folder / "script.sql"
        script.write_text(script_text)
        prefix = "tx"
        cmd = pg.command(role, script, seconds, str(folder / prefix), defines, protocol)
        proc = subprocess.run(
            cmd, capture_output=True, text=True, cwd=tmp, env=os.environ | {"PGOPTIONS": options}, check=False
        )
        m = TPS.search(proc.stdout)
        if proc.returncode != 0 or m is None or "aborted" in proc.stderr:
            raise PgbenchError(
                f"pgbench failed ({proc.returncode}) as {role}:\n{script_text}\n{proc.stderr[-2000:]}"
            )
        return Run(float(m.group(1)), _read_logs(folder, prefix), _parse_statements(proc.stdout))


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclasses.dataclass
class Series:
    """The runs of one cell over the rounds."""

    runs: list[Run] = dataclasses.field(default_factory=list)

    def latencies(self) -> list[float]:
        return [x for r in self.runs for x in r.latencies_us]

    def p50(self) -> float:
        return percentile(self.latencies(), 0.5)

    def p99(self) -> float:
        return percentile(self.latencies(), 0.99)

    def tps(self) -> float:
        return statistics.median(r.tps for r in self.runs)

    def body_ms(self) -> float:
        return statistics.median(r.body_ms() for r in self.runs)


def round_ratios(arm: Series, base: Series, key: str) -> float:
    """Median over the rounds of arm/base, for ``key`` in tps (base/arm: a cost ratio) or body."""
    pairs = zip(arm.runs, base.runs, strict=True)
    if key == "tps":
        return statistics.median(b.tps / a.tps for a, b in pairs)
    return statistics.median(a.body_ms() / b.body_ms() for a, b in pairs)
