"""``tenancy lint``: the findings of ``tenancy.check()`` for CI (SPEC v0.3 §4).

    tenancy lint [--dsn DSN] [--format text|json|sarif] [--baseline FILE] [--write-baseline FILE]
                 [--fail-on error|warning|info] [--ignore CODE ...] [--location PATH]

Every finding has a stable ``code`` (docs/check.md has a section per code: why it matters, how to fix
it, an example). A baseline is a file of accepted findings, keyed by (code, object): the JSON this
command writes with ``--write-baseline`` (or ``--format json``); ``--write-baseline`` accepts this run's
findings. Exit codes: 0 when no finding at or above ``--fail-on`` (default ``warning``) is new, i.e.
absent from the baseline; 1 when one is; 2 for bad usage, an unreadable baseline, or a database that
cannot be reached or has no tenancy extension.

``--format sarif`` writes SARIF 2.1.0 as GitHub code scanning reads it (one rule per code, a
``partialFingerprints`` entry per result, ``baselineState`` against the baseline); the results point
at ``--location`` (a file or directory of the repository, default ``migrations``), since a finding is
about a database object, named in each result's ``logicalLocations``.

Nothing here but ``fetch`` touches a database: the rest are pure functions
(tests/py/unit/test_lint.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OK, PROBLEM, USAGE = 0, 1, 2
SEVERITIES = ("info", "warning", "error")
DOCS = "docs/check.md"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
# GitHub code scanning ranks security alerts by this property of the rule (0.1-10.0)
SECURITY_SEVERITY = {"error": "8.0", "warning": "5.0", "info": "2.0"}


@dataclass(frozen=True)
class Rule:
    code: str
    severity: str  # the usual one; a few codes are reported at another severity (docs/check.md)
    title: str


# One entry per code check() reports; docs/check.md has a section of the same name for each
# (tests/py/unit/test_lint.py keeps the two, and the SQL, in step).
RULES: dict[str, Rule] = {
    r.code: r
    for r in (
        Rule("rls_not_forced", "error", "Row-level security is not enabled and forced on a registered table"),
        Rule("policy_missing", "error", "A generated policy is missing"),
        Rule("policy_altered", "error", "A generated policy's command, role or kind was changed"),
        Rule("policy_edited", "error", "A generated policy's expression was edited"),
        Rule("check_incomplete", "warning", "The policies' expressions could not be compared"),
        Rule(
            "permissive_policy",
            "error",
            "A permissive policy tenancy did not generate widens what every role sees",
        ),
        Rule(
            "restrictive_policy",
            "info",
            "A restrictive policy tenancy did not generate narrows a scoped table",
        ),
        Rule("tenant_index_missing", "warning", "No index is led by the tenant column"),
        Rule("tenant_default_missing", "warning", "The tenant column does not default to the current tenant"),
        Rule("truncate_guard_missing", "error", "The TRUNCATE guard trigger is missing or disabled"),
        Rule(
            "truncate_granted",
            "warning",
            "TRUNCATE, which ignores row-level security, is granted to a non-owner",
        ),
        Rule("table_not_registered", "warning", "A table with a uuid tenant column is not registered"),
        Rule(
            "tenant_column_not_uuid",
            "warning",
            "A table's tenant column is not uuid, so it cannot be registered",
        ),
        Rule(
            "view_bypasses_rls",
            "error",
            "A view reads a scoped table as an owner that bypasses row-level security",
        ),
        Rule(
            "view_owner_privileges",
            "info",
            "A view reads a scoped table with its owner's privileges, under RLS",
        ),
        Rule(
            "matview_stores_rows",
            "error",
            "A materialized view stores scoped rows with no row-level security",
        ),
        Rule(
            "secdef_bypasses_rls",
            "error",
            "A SECURITY DEFINER function reads a scoped table past row-level security",
        ),
        Rule(
            "secdef_reads_scoped", "warning", "A SECURITY DEFINER function reads a scoped table as its owner"
        ),
        Rule(
            "secdef_sets_context", "error", "A SECURITY DEFINER function hands its callers a tier-0 context"
        ),
        Rule(
            "rule_bypasses_rls",
            "error",
            "A rule touches a scoped table as an owner that bypasses row-level security",
        ),
        Rule("rule_touches_scoped", "warning", "A rule touches a scoped table as another table's owner"),
        Rule(
            "unique_without_tenant", "warning", "A unique index lacks the tenant column among its key columns"
        ),
        Rule("primary_key_without_tenant", "info", "A primary key lacks the tenant column"),
        Rule(
            "foreign_key_without_tenant",
            "warning",
            "A foreign key between scoped tables lacks the tenant column",
        ),
        Rule("role_superuser", "error", "The current role is a superuser"),
        Rule("role_bypassrls", "error", "The current role has BYPASSRLS"),
        Rule("role_owns_table", "warning", "The current role owns a scoped table"),
        Rule("schema_owner", "error", "Schema tenancy is owned by another role than the extension's owner"),
        Rule(
            "object_owner",
            "error",
            "An object in schema tenancy is owned by another role than the extension's owner",
        ),
        Rule("citus_no_cluster_key", "error", "The Citus coordinator has no cluster key"),
        Rule("citus_node_unreachable", "error", "tenancy cannot be inspected on a Citus node"),
        Rule("citus_node_key", "error", "A Citus node's cluster key is missing or differs"),
        Rule("citus_shard_unreachable", "error", "A shard of a scoped table cannot be inspected"),
        Rule("citus_shard_rls", "error", "Row-level security is not enabled and forced on a shard"),
        Rule("citus_shard_policies", "error", "A shard's policies differ from the coordinator's"),
        Rule(
            "citus_truncate_granted",
            "error",
            "On Citus, TRUNCATE on a scoped table is granted to a non-owner (the privilege is the guard)",
        ),
        Rule(
            "citus_shard_truncate", "error", "TRUNCATE on a shard of a scoped table is granted to a non-owner"
        ),
        Rule(
            "citus_not_by_tenant",
            "warning",
            "A scoped table is distributed by another column than its tenant column",
        ),
    )
}


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str
    object: str
    problem: str
    hint: str
    new: bool = True

    @property
    def key(self) -> tuple[str, str]:
        return (self.code, self.object)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.code, self.object)


def fingerprint(code: str, obj: str) -> str:
    """What identifies a finding across runs: its code and its object (not the wording)."""
    return hashlib.sha256(f"{code}\0{obj}".encode()).hexdigest()[:32]


@dataclass
class Report:
    findings: list[Finding]
    ignored: int = 0
    database: str | None = None
    fail_on: str = "warning"
    baseline: str | None = None
    problems: list[str] = field(default_factory=list)

    def failing(self) -> list[Finding]:
        floor = SEVERITIES.index(self.fail_on)
        return [f for f in self.findings if f.new and SEVERITIES.index(_severity(f.severity)) >= floor]

    def exit_code(self) -> int:
        return PROBLEM if self.failing() else OK


def _severity(value: str) -> str:
    return value if value in SEVERITIES else "error"


# --- baselines -------------------------------------------------------------------------------------


class BaselineError(Exception):
    """The baseline file cannot be read: exit code 2."""


def load_baseline(text: str) -> set[tuple[str, str]]:
    """(code, object) pairs of a baseline: the JSON of ``--write-baseline`` / ``--format json``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"not JSON: {exc}") from None
    items = data.get("findings") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise BaselineError('expected {"findings": [{"code": ..., "object": ...}, ...]}')
    keys = set()
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("code"), str) or "object" not in item:
            raise BaselineError(f"a finding without code and object: {item!r}")
        keys.add((item["code"], str(item["object"])))
    return keys


def baseline_json(findings: Iterable[Finding]) -> str:
    """A baseline that accepts these findings (sorted, so that it diffs well in a repository)."""
    items = sorted({(f.code, f.object): f for f in findings}.values(), key=lambda f: f.key)
    return (
        json.dumps(
            {
                "tool": "tenancy lint",
                "findings": [
                    {"code": f.code, "object": f.object, "severity": f.severity, "problem": f.problem}
                    for f in items
                ],
            },
            indent=2,
        )
        + "\n"
    )


def classify(
    rows: Iterable[Sequence[Any]],
    baseline: set[tuple[str, str]] | None,
    ignore: Iterable[str] = (),
) -> tuple[list[Finding], int]:
    """check() rows (code, severity, object, problem, hint) as findings, each new or in the baseline;
    the codes in ``ignore`` are left out (and counted)."""
    skip = set(ignore)
    out, ignored = [], 0
    for code, severity, obj, problem, hint in rows:
        if code in skip:
            ignored += 1
            continue
        key = (str(code), str(obj))
        out.append(
            Finding(
                code=str(code),
                severity=str(severity),
                object=str(obj),
                problem=str(problem),
                hint=str(hint or ""),
                new=baseline is None or key not in baseline,
            )
        )
    order = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    out.sort(key=lambda f: (order.get(f.severity, 0), f.code, f.object))
    return out, ignored


# --- output ----------------------------------------------------------------------------------------


def render_text(report: Report) -> str:
    lines = []
    for f in report.findings:
        mark = "" if f.new or report.baseline is None else " (baseline)"
        lines.append(f"{f.severity:<8} {f.code}  {f.object}{mark}")
        lines.append(f"         {f.problem}")
        if f.hint:
            lines.append(f"         fix: {f.hint}")
    total, new = len(report.findings), len([f for f in report.findings if f.new])
    failing = len(report.failing())
    summary = f"{total} finding{'s' if total != 1 else ''}"
    if report.baseline is not None:
        summary += f", {new} not in the baseline"
    if report.ignored:
        summary += f", {report.ignored} ignored"
    summary += f"; {failing} at or above {report.fail_on} fail the run" if failing else "; the run passes"
    lines.append(summary + f" (each code is explained in {DOCS})")
    return "\n".join(lines)


def render_json(report: Report) -> str:
    return (
        json.dumps(
            {
                "tool": "tenancy lint",
                "database": report.database,
                "status": "problem" if report.failing() else "ok",
                "fail_on": report.fail_on,
                "baseline": report.baseline,
                "ignored": report.ignored,
                "findings": [
                    {**asdict(f), "fingerprint": f.fingerprint, "docs": f"{DOCS}#{f.code}"}
                    for f in report.findings
                ],
            },
            indent=2,
        )
        + "\n"
    )


def _rule(code: str) -> Rule:
    return RULES.get(code) or Rule(code, "warning", f"tenancy check() finding {code}")


def render_sarif(report: Report, location: str = "migrations", version: str | None = None) -> dict[str, Any]:
    """SARIF 2.1.0: one run, one rule per code seen, one result per finding."""
    codes = sorted({f.code for f in report.findings})
    index = {c: i for i, c in enumerate(codes)}
    rules = []
    for code in codes:
        rule = _rule(code)
        text = f"{rule.title}. Why it matters, how to fix it and an example: {DOCS}#{code}"
        rules.append(
            {
                "id": code,
                "name": "".join(part.capitalize() for part in code.split("_")),
                "shortDescription": {"text": rule.title},
                "fullDescription": {"text": text},
                "help": {"text": text, "markdown": f"**{rule.title}.** See `{DOCS}`, section `{code}`."},
                "defaultConfiguration": {"level": SARIF_LEVEL[_severity(rule.severity)]},
                "properties": {
                    "tags": ["security", "tenancy"],
                    "precision": "high",
                    "security-severity": SECURITY_SEVERITY[_severity(rule.severity)],
                },
            }
        )
    results = []
    for f in report.findings:
        result: dict[str, Any] = {
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            "level": SARIF_LEVEL[_severity(f.severity)],
            "message": {"text": f"{f.object}: {f.problem}." + (f" Fix: {f.hint}" if f.hint else "")},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": location},
                        "region": {"startLine": 1},
                    },
                    "logicalLocations": [{"name": f.object, "fullyQualifiedName": f.object}],
                }
            ],
            "partialFingerprints": {"tenancyFinding/v1": f.fingerprint},
            "properties": {"object": f.object, "severity": f.severity, "hint": f.hint},
        }
        if report.baseline is not None:
            result["baselineState"] = "new" if f.new else "unchanged"
        results.append(result)
    driver: dict[str, Any] = {"name": "tenancy lint", "rules": rules}
    if version:
        driver["version"] = version
        driver["semanticVersion"] = version
    run: dict[str, Any] = {
        "tool": {"driver": driver},
        "results": results,
        "columnKind": "unicodeCodePoints",
    }
    if report.database:
        run["automationDetails"] = {"id": f"tenancy-lint/{report.database}/"}
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


# --- the command -----------------------------------------------------------------------------------


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """The ``lint`` subcommand of the ``tenancy`` command."""
    p = sub.add_parser(
        "lint", parents=[common], help="check() findings for CI: text, JSON or SARIF, baseline"
    )
    p.add_argument("--format", choices=["text", "json", "sarif"], default=None, help="default text")
    p.add_argument("--baseline", type=Path, default=None, help="accepted findings (JSON): only new ones fail")
    p.add_argument("--write-baseline", type=Path, default=None, help="write the findings as a baseline")
    p.add_argument("--fail-on", choices=list(SEVERITIES), default="warning", help="default warning")
    p.add_argument("--ignore", action="append", default=[], metavar="CODE", help="leave out a code (repeat)")
    p.add_argument("--location", default="migrations", help="the repository path SARIF results point at")


def fetch(dsn: str) -> tuple[str, list[tuple[Any, ...]]]:
    """The database's name and the rows of tenancy.check() (code, severity, object, problem, hint)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("select code, severity, object, problem, hint from tenancy.check()").fetchall()
        return conn.info.dbname, rows


def run(args: argparse.Namespace, dsn: str) -> int:
    import psycopg

    from .. import __version__

    fmt = args.format or ("json" if getattr(args, "json", False) else "text")
    baseline = None
    if args.baseline is not None:
        try:
            baseline = load_baseline(args.baseline.read_text(encoding="utf-8"))
        except (OSError, BaselineError) as exc:
            print(f"tenancy lint: the baseline {args.baseline} cannot be read: {exc}", file=sys.stderr)
            return USAGE
    try:
        database, rows = fetch(dsn)
    except psycopg.errors.UndefinedFunction:
        print("tenancy lint: the database has no tenancy.check() (CREATE EXTENSION tenancy)", file=sys.stderr)
        return USAGE
    except psycopg.OperationalError as exc:
        print(f"tenancy lint: the database is unreachable: {str(exc).strip()}", file=sys.stderr)
        return USAGE
    except psycopg.Error as exc:
        print(f"tenancy lint: check() failed: {str(exc).strip()}", file=sys.stderr)
        return USAGE
    findings, ignored = classify(rows, baseline, args.ignore)
    source = args.baseline
    if args.write_baseline is not None:  # the findings of this run are the accepted ones from now on
        args.write_baseline.write_text(baseline_json(findings), encoding="utf-8")
        findings, ignored = classify(rows, {f.key for f in findings}, args.ignore)
        source = args.write_baseline
    report = Report(
        findings=findings,
        ignored=ignored,
        database=database,
        fail_on=args.fail_on,
        baseline=str(source) if source is not None else None,
    )
    if fmt == "sarif":
        print(json.dumps(render_sarif(report, args.location, __version__), indent=2))
    elif fmt == "json":
        print(render_json(report), end="")
    else:
        print(render_text(report))
    return report.exit_code()
