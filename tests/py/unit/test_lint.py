"""tenancy lint without a database: the codes are the ones check() returns and docs/check.md explains,
baselines, exit codes, and SARIF that validates against the SARIF 2.1.0 schema (tests/py/data)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tenancy.fleet import lint

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "check.md"
SCHEMA = json.loads((ROOT / "tests" / "py" / "data" / "sarif-schema-2.1.0.json").read_text())
CHECK_SQL = [ROOT / "sql" / "idempotent" / "60_check.sql", ROOT / "sql" / "idempotent" / "65_citus.sql"]


def sarif_errors(doc: dict) -> list[str]:
    validator = jsonschema.Draft4Validator(SCHEMA)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def rows(*specs: tuple[str, str, str]) -> list[tuple[str, str, str, str, str]]:
    return [(code, sev, obj, f"problem of {obj}", f"fix {obj}") for code, sev, obj in specs]


def test_every_code_has_its_section_in_docs_check_md() -> None:
    sections = re.findall(r"^### `([a-z_0-9]+)`", DOC.read_text(), flags=re.MULTILINE)
    assert sorted(sections) == sorted(lint.RULES), "docs/check.md and lint.RULES name different codes"
    assert len(sections) == len(set(sections))
    text = DOC.read_text()
    for code in lint.RULES:
        body = text.split(f"### `{code}`", 1)[1].split("\n### ", 1)[0]
        for part in ("**Why it matters.**", "**How to fix it.**", "**Example.**"):
            assert part in body, f"{code}: no {part}"


def test_every_code_is_one_check_can_return() -> None:
    sql = "\n".join(p.read_text() for p in CHECK_SQL)
    missing = [code for code in lint.RULES if f"'{code}'" not in sql]
    assert missing == []


def test_a_finding_is_new_unless_its_code_and_object_are_in_the_baseline() -> None:
    base = lint.load_baseline(
        json.dumps({"findings": [{"code": "role_superuser", "object": "postgres", "problem": "old words"}]})
    )
    found, ignored = lint.classify(
        rows(("role_superuser", "error", "postgres"), ("table_not_registered", "warning", "public.t")), base
    )
    assert ignored == 0
    assert {(f.code, f.new) for f in found} == {("role_superuser", False), ("table_not_registered", True)}
    assert lint.Report(found).exit_code() == lint.PROBLEM
    # the same object under another code is another finding
    found, _ = lint.classify(rows(("role_bypassrls", "error", "postgres")), base)
    assert found[0].new


def test_fail_on_and_ignore() -> None:
    found, ignored = lint.classify(
        rows(("restrictive_policy", "info", "public.t"), ("role_owns_table", "warning", "public.t")),
        None,
        ignore=["role_owns_table"],
    )
    assert ignored == 1 and [f.code for f in found] == ["restrictive_policy"]
    assert lint.Report(found, fail_on="warning").exit_code() == lint.OK  # info does not fail by default
    assert lint.Report(found, fail_on="info").exit_code() == lint.PROBLEM


def test_a_written_baseline_accepts_what_it_lists() -> None:
    two = rows(("policy_edited", "error", "public.a"), ("schema_owner", "error", "schema x"))
    found, _ = lint.classify(two, None)
    text = lint.baseline_json(found)
    again, _ = lint.classify(two, lint.load_baseline(text))
    assert not any(f.new for f in again)
    assert json.loads(text)["findings"][0]["code"] == "policy_edited"  # sorted: reviewable in a repository


@pytest.mark.parametrize(
    "text",
    ["not json", "[1, 2]", '{"findings": [{"object": "x"}]}', '{"findings": 3}'],
)
def test_a_malformed_baseline_is_refused(text: str) -> None:
    with pytest.raises(lint.BaselineError):
        lint.load_baseline(text)


def test_sarif_validates_against_the_sarif_2_1_0_schema() -> None:
    base = {("role_superuser", "postgres")}
    found, _ = lint.classify(
        rows(
            ("role_superuser", "error", "postgres"),
            ("view_owner_privileges", "info", "public.v"),
            ("tenant_column_not_uuid", "warning", "public.t"),
            ("some_future_code", "warning", "public.u"),  # a code this version does not know
        ),
        base,
    )
    doc = lint.render_sarif(lint.Report(found, database="app", baseline="b.json"), "db/migrations", "0.2.0")
    assert sarif_errors(doc) == []
    run = doc["runs"][0]
    assert doc["version"] == "2.1.0" and run["tool"]["driver"]["name"] == "tenancy lint"
    ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    for result in run["results"]:
        # what GitHub code scanning needs of each result
        assert ids[result["ruleIndex"]] == result["ruleId"]
        assert result["message"]["text"] and result["level"] in ("error", "warning", "note")
        loc = result["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uri"] == "db/migrations" and loc["region"]["startLine"] == 1
        assert re.fullmatch(r"[0-9a-f]{32}", result["partialFingerprints"]["tenancyFinding/v1"])
    states = {r["ruleId"]: r["baselineState"] for r in run["results"]}
    assert states["role_superuser"] == "unchanged" and states["tenant_column_not_uuid"] == "new"
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels["view_owner_privileges"] == "note"


def test_the_schema_check_is_real() -> None:
    """The validation above would catch a broken document."""
    found, _ = lint.classify(rows(("role_superuser", "error", "postgres")), None)
    doc = lint.render_sarif(lint.Report(found))
    doc["runs"][0]["results"][0]["level"] = "fatal"
    del doc["version"]
    assert len(sarif_errors(doc)) == 2


def test_text_output_names_the_docs_and_the_fix() -> None:
    found, _ = lint.classify(rows(("table_not_registered", "warning", "public.t")), set())
    out = lint.render_text(lint.Report(found, baseline="b.json"))
    assert "table_not_registered  public.t" in out and "fix: fix public.t" in out
    assert "1 not in the baseline" in out and "docs/check.md" in out
