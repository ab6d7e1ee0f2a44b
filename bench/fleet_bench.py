"""make bench-fleet: the fleet targets of SPEC 6 over N schema placements (default 1,000).

    scripts/with-cluster.sh .venv/bin/python bench/fleet_bench.py [--placements N] [--workers W]

Builds a control database with one partner and N customers, provisions a schema placement for each
(W at a time; the per-placement latency is also sampled sequentially once the fleet is full), then
times the command as an operator runs it (a fresh `tenancy` process each time, Python start-up
included): `migrate` with nothing pending, `migrate` of one new migration, `health`. Prints a
Markdown table (docs/placements.md records a run); --json FILE also writes the numbers.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))

from tenancy.fleet import plan as P  # noqa: E402
from tenancy.fleet.core import Fleet  # noqa: E402
from tenancy.fleet.provision import provision as provision_one  # noqa: E402

MIGRATIONS = {
    "0001_projects.sql": (
        "create table projects (id uuid primary key default gen_random_uuid(), tenant_id uuid not null,"
        " name text not null, created_at timestamptz not null default now());\n"
        "create unique index projects_tenant_id_id on projects (tenant_id, id);\n"
    ),
    "0002_tasks.sql": (
        "create table tasks (id uuid primary key default gen_random_uuid(), tenant_id uuid not null,"
        " project_id uuid not null, title text not null,"
        " foreign key (tenant_id, project_id) references projects (tenant_id, id) on delete cascade);\n"
    ),
}
NEW = {"0003_done.sql": "alter table tasks add column done boolean not null default false;\n"}


class Cpu:
    """CPU seconds of the server's processes (the postmaster, its live children and the children it
    reaped) and of this process's children (the `tenancy` commands): what a run costs whatever else
    the machine is doing, where wall-clock times grow with the load. None where /proc or the data
    directory cannot be read."""

    def __init__(self, dsn: str) -> None:
        self.postmaster: int | None = None
        try:
            with psycopg.connect(dsn) as c:
                datadir = c.execute("show data_directory").fetchone()[0]
            self.postmaster = int(Path(datadir, "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, psycopg.Error):
            pass

    def server(self) -> float | None:
        if self.postmaster is None:
            return None
        total = 0
        for p in Path("/proc").iterdir():
            if not p.name.isdigit():
                continue
            try:
                f = (p / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(p.name) == self.postmaster:
                total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
            elif int(f[1]) == self.postmaster:
                total += int(f[11]) + int(f[12])
        return total / os.sysconf("SC_CLK_TCK")

    def now(self) -> tuple[float | None, float]:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return self.server(), ru.ru_utime + ru.ru_stime


CPU: Cpu | None = None
SPENT: list[float | None] = []  # CPU seconds (server + command) of each tenancy_cmd, in order


def cpu_since(before: tuple[float | None, float]) -> float | None:
    if CPU is None:
        return None
    server, client = CPU.now()
    return None if server is None or before[0] is None else server - before[0] + client - before[1]


def tenancy_cmd(dsn: str, *args: str) -> tuple[int, float, str]:
    exe = Path(sys.executable).parent / "tenancy"
    env = {**os.environ, "TENANCY_DSN": dsn}
    before = CPU.now() if CPU else (None, 0.0)
    t0 = time.perf_counter()
    res = subprocess.run([str(exe), "--quiet", *args], env=env, capture_output=True, text=True)
    took = time.perf_counter() - t0
    SPENT.append(cpu_since(before))
    return res.returncode, took, res.stdout + res.stderr


def cpu_text(seconds: float | None) -> str:
    return "" if seconds is None else f" (CPU {seconds:.2f} s)"


def profile_provision(fleet: Fleet, tenant: str, migs: list[P.Migration]) -> list[tuple[float, int, str]]:
    """One provisioning with every statement timed from the client: (seconds, calls, statement's first
    words), most expensive first."""
    spent: dict[str, list[float]] = {}
    orig = psycopg.Connection.execute

    def timed(self: psycopg.Connection, query: object, params: object = None, **kw: object) -> object:
        text = query if isinstance(query, str) else query.as_string(self)  # type: ignore[attr-defined]
        what = " ".join(str(text).split()[:4])
        t0 = time.perf_counter()
        try:
            return orig(self, query, params, **kw)  # type: ignore[arg-type]
        finally:
            spent.setdefault(what, []).append(time.perf_counter() - t0)

    psycopg.Connection.execute = timed  # type: ignore[method-assign]
    try:
        provision_one(fleet, fleet.resolve(tenant), "schema", migs)
    finally:
        psycopg.Connection.execute = orig  # type: ignore[method-assign]
    return sorted(((sum(v), len(v), k) for k, v in spent.items()), reverse=True)


def backend_cpu(pid: int) -> float:
    """CPU seconds one server process has used (0 where /proc cannot tell)."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def profile_check(dsn: str) -> list[tuple[float, float, str]]:
    """check() in a fresh connection, each of its RETURN QUERY sections timed: a copy of its body in
    pg_temp with a NOTICE before each section (nothing is left behind). (wall seconds, the backend's
    CPU seconds, section), most CPU first."""
    import re

    with psycopg.connect(dsn, autocommit=True) as c:
        src = c.execute("select pg_catalog.pg_get_functiondef('tenancy.check()'::regprocedure)").fetchone()[0]
    labels: list[str] = []

    def mark(m: re.Match[str]) -> str:
        labels.append(" ".join(src[m.end() : m.end() + 400].split())[:90])
        return f"raise notice 'tenancy-profile {len(labels) - 1} %', clock_timestamp(); return query"

    body = re.sub(r"\breturn query\b", mark, src)
    body, n = re.subn(r'FUNCTION tenancy\."?check"?\(\)', "FUNCTION pg_temp.check_profiled()", body, count=1)
    assert n == 1, "check()'s header not found"
    body = re.sub(
        r"\bend\s*\$function\$",
        "raise notice 'tenancy-profile end %', clock_timestamp(); end $function$",
        body,
    )
    stamps: list[tuple[str, float, float]] = []
    with psycopg.connect(dsn, autocommit=True) as c:
        pid = c.info.backend_pid
        c.add_notice_handler(
            lambda d: (
                stamps.append((d.message_primary.split()[1], time.perf_counter(), backend_cpu(pid)))
                if d.message_primary and d.message_primary.startswith("tenancy-profile")
                else None
            )
        )
        c.execute(body)
        t0, c0 = time.perf_counter(), backend_cpu(pid)
        c.execute("select count(*) from pg_temp.check_profiled()").fetchone()
        total, total_cpu = time.perf_counter() - t0, backend_cpu(pid) - c0
    out = [(b[1] - a[1], b[2] - a[2], labels[int(a[0])]) for a, b in itertools.pairwise(stamps)]
    out.append(
        (
            total - sum(w for w, _c, _ in out),
            total_cpu - sum(c for _w, c, _ in out),
            "(before the first section, and the rows' way back)",
        )
    )
    return sorted(out, key=lambda x: x[1], reverse=True)


def profile_health(dsn: str, mdir: Path) -> list[tuple[float, float, str]]:
    """What `tenancy health --migrations DIR` spends in the control database, piece by piece: (wall
    seconds, CPU seconds of the backend or of the command, part)."""
    from tenancy.fleet.health import SHARED_TABLES
    from tenancy.fleet.privileges import ACLS

    migs = json.dumps([m.as_json() for m in P.discover(mdir)])
    parts: list[tuple[float, float, str]] = []

    def timed(label: str, pid: int | None, fn: object) -> None:
        t0 = time.perf_counter()
        c0 = backend_cpu(pid) if pid else resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
        fn()  # type: ignore[operator]
        c1 = backend_cpu(pid) if pid else resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
        parts.append((time.perf_counter() - t0, c1 - c0, label))

    timed(
        "a fresh `tenancy` process that does nothing (`tenancy --help`)",
        None,
        lambda: tenancy_cmd(dsn, "--help"),
    )
    with psycopg.connect(dsn, autocommit=True) as c:
        tables = [r[0] for r in c.execute(SHARED_TABLES, ["public"])]
        schemas = [
            r[0] for r in c.execute("select schema_name from tenancy.placements where kind = 'schema'")
        ]
        timed(
            "placement_health(migrations, tables, ...)",
            c.info.backend_pid,
            lambda: c.execute(
                "select count(*) from tenancy.placement_health(%s, %s)", [migs, tables]
            ).fetchone(),
        )
        timed(
            f"privileges of {len(schemas) + 1} schemas (one query)",
            c.info.backend_pid,
            lambda: c.execute(ACLS, {"schemas": ["public", *schemas]}).fetchall(),
        )
    with psycopg.connect(dsn, autocommit=True) as c:
        timed(
            "check(), in a fresh connection",
            c.info.backend_pid,
            lambda: c.execute("select count(*) from tenancy.check()").fetchone(),
        )
    return sorted(parts, key=lambda x: x[1], reverse=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--placements", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--sample", type=int, default=20)
    ap.add_argument("--json", default=None, help="also write the results to this file")
    ap.add_argument("--keep", action="store_true", help="leave the fleet's databases for a look afterwards")
    args = ap.parse_args()
    server = os.environ["TENANCY_TEST_DSN"]
    global CPU
    CPU = Cpu(server)
    name = "tenancy_fleetbench"
    drop_fleet(server, name)
    with psycopg.connect(server, autocommit=True) as c:
        c.execute(f"create database {name}")
    dsn = f"{server} dbname={name}"
    n = args.placements
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("set client_min_messages = warning")
        c.execute("create extension tenancy cascade")
        root = c.execute(
            "insert into tenancy.tenants (slug, name) values ('platform', 'P') returning id"
        ).fetchone()[0]
        partner = c.execute(
            "insert into tenancy.tenants (parent_id, slug, name)"
            " values (%s, 'partner', 'Partner') returning id",
            [root],
        ).fetchone()[0]
        c.execute(
            "insert into tenancy.tenants (parent_id, slug, name)"
            " select %s, 'c' || g, 'Customer ' || g from generate_series(1, %s) g",
            [partner, n + args.sample],
        )
        ids = [str(r[0]) for r in c.execute("select id from tenancy.tenants where tier = 2 order by slug")]
    tmp = Path(tempfile.mkdtemp(prefix="fleetbench-"))
    mdir = tmp / "migrations"
    mdir.mkdir()
    for f, text in MIGRATIONS.items():
        (mdir / f).write_text(text)
    rc, _took, out = tenancy_cmd(dsn, "migrate", "--migrations", str(mdir))
    assert rc == 0, out
    migs = P.discover(mdir)

    fleet = Fleet(dsn, quiet=True, per_db=args.workers)
    lat: list[float] = []

    def provision(tid: str) -> None:
        t = fleet.resolve(tid)
        t0 = time.perf_counter()
        provision_one(fleet, t, "schema", migs)
        lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.workers) as ex:
        list(ex.map(provision, ids[:n]))
    build = time.perf_counter() - t0
    par_lat = sorted(lat)
    lat.clear()
    server0, self0 = CPU.server(), resource.getrusage(resource.RUSAGE_SELF)
    for tid in ids[n:]:  # sequential, into a fleet of N
        provision(tid)
    seq_lat = sorted(lat)
    server1, self1 = CPU.server(), resource.getrusage(resource.RUSAGE_SELF)
    seq_cpu = (
        None
        if server0 is None or server1 is None
        else (server1 - server0 + self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime)
        / len(seq_lat)
    )
    with psycopg.connect(dsn, autocommit=True) as c:
        probe = str(
            c.execute(
                "insert into tenancy.tenants (parent_id, slug) values (%s, 'profiled') returning id",
                [partner],
            ).fetchone()[0]
        )
    profile = profile_provision(fleet, probe, migs)
    fleet.close()
    total = n + args.sample

    rc0, t_noop, out0 = tenancy_cmd(dsn, "migrate", "--migrations", str(mdir))
    rc0b, t_noop2, _ = tenancy_cmd(dsn, "migrate", "--migrations", str(mdir))
    for f, text in NEW.items():
        (mdir / f).write_text(text)
    rc1, t_one, out1 = tenancy_cmd(dsn, "migrate", "--migrations", str(mdir), "--parallel", str(args.workers))
    rc2, t_health, out2 = tenancy_cmd(dsn, "health", "--migrations", str(mdir))
    rc3, t_health_nomig, _ = tenancy_cmd(dsn, "health")
    c_noop, c_noop2, c_one, c_health, c_health_nomig = SPENT[-5:]

    def pct(xs: list[float], p: float) -> float:
        return xs[min(len(xs) - 1, int(len(xs) * p))]

    results = {
        "placements": total,
        "provision_parallel_workers": args.workers,
        "provision_all_seconds": round(build, 2),
        "provision_parallel_median_s": round(statistics.median(par_lat), 3),
        "provision_sequential_median_s": round(statistics.median(seq_lat), 3),
        "provision_sequential_p95_s": round(pct(seq_lat, 0.95), 3),
        "migrate_nothing_pending_s": [round(t_noop, 2), round(t_noop2, 2)],
        "migrate_one_new_s": round(t_one, 2),
        "health_s": round(t_health, 2),
        "health_without_migrations_dir_s": round(t_health_nomig, 2),
        "cpu_s": {
            "provision_sequential_mean": seq_cpu,
            "migrate_nothing_pending": [c_noop, c_noop2],
            "migrate_one_new": c_one,
            "health": c_health,
            "health_without_migrations_dir": c_health_nomig,
        },
        "load_average": os.getloadavg(),
        "exit_codes": {"migrate_noop": [rc0, rc0b], "migrate_one": rc1, "health": rc2, "health_nodir": rc3},
    }
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    ok = lambda good: "met" if good else "MISSED"  # noqa: E731
    r = results
    noop_ok = ok(max(t_noop, t_noop2) <= 5)
    print(f"\n| fleet of {total} schema placements | measured | SPEC 6 target | verdict |")
    print("| --- | --- | --- | --- |")
    print(
        f"| provision one (sequential: median / p95) | {r['provision_sequential_median_s']} s"
        f" / {r['provision_sequential_p95_s']} s{cpu_text(seq_cpu)} | ≤ 0.5 s"
        f" | {ok(pct(seq_lat, 0.95) <= 0.5)} |"
    )
    print(
        f"| provision {n} ({args.workers} at a time): total / median each | {r['provision_all_seconds']} s /"
        f" {r['provision_parallel_median_s']} s | | |"
    )
    print(
        f"| `tenancy migrate`, nothing pending | {t_noop:.2f} s{cpu_text(c_noop)},"
        f" {t_noop2:.2f} s{cpu_text(c_noop2)}"
        f" | ≤ 5 s | {noop_ok} |"
    )
    print(f"| `tenancy migrate`, one new migration in every placement | {t_one:.2f} s{cpu_text(c_one)} | | |")
    print(
        f"| `tenancy health --migrations DIR` | {t_health:.2f} s{cpu_text(c_health)} | ≤ 10 s"
        f" | {ok(t_health <= 10)} |"
    )
    print(
        f"| `tenancy health` (no migrations check) | {t_health_nomig:.2f} s{cpu_text(c_health_nomig)} | | |"
    )
    print(
        "\n(CPU: seconds of CPU the server's processes and the command used, whatever else the machine was"
        " doing; on an idle machine with 2 CPUs the wall-clock time of a command that works one step at a"
        " time is about its CPU time plus its waits)"
    )
    print(f"\nexit codes: {results['exit_codes']}")
    took = sum(d for d, _n, _w in profile)
    print(f"\nwhere one more provisioning's {took:.3f} s go (client-side, per kind of statement):\n")
    print("| statement | calls | seconds |\n| --- | --- | --- |")
    for d, calls, what in profile[:8]:
        print(f"| `{what}` | {calls} | {d:.3f} |")
    print("\nwhere `tenancy health --migrations DIR` spends its time (the control database):\n")
    print("| part | wall seconds | CPU seconds |\n| --- | --- | --- |")
    for wall, cpu, what in profile_health(dsn, mdir):
        print(f"| {what} | {wall:.3f} | {cpu:.2f} |")
    print("\nthe sections of check(), in a fresh connection (the backend's CPU):\n")
    print("| section of check() | wall seconds | CPU seconds |\n| --- | --- | --- |")
    for wall, cpu, what in profile_check(dsn)[:8]:
        print(f"| `{what}` | {wall:.3f} | {cpu:.2f} |")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f} (2 CPUs here)")
    if rc0 or rc1 or rc2:
        print(out0[-2000:], out1[-2000:], out2[-2000:])
    if not args.keep:
        drop_fleet(server, name)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def drop_fleet(server: str, name: str) -> None:
    with psycopg.connect(server, autocommit=True) as c:
        c.execute(f"drop database if exists {name} with (force)")
        for (db,) in c.execute(
            "select datname from pg_database where datname like %s", [name + "_t%"]
        ).fetchall():
            c.execute(f'drop database "{db}" with (force)')


if __name__ == "__main__":
    sys.exit(main())
