"""The fleet command's pure part: migration files, plans, statement splitting, names, exit codes."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from tenancy.fleet import plan as P
from tenancy.fleet.cli import run


def write(d: Path, name: str, text: str) -> Path:
    p = d / name
    p.write_text(text)
    return p


def test_discover_orders_by_number_and_checksums_the_bytes(tmp_path: Path) -> None:
    write(tmp_path, "0010_later.sql", "select 10;\n")
    write(tmp_path, "0002_first.sql", "select 2;\n")
    write(tmp_path, "README.md", "not a migration")
    migs = P.discover(tmp_path)
    assert [m.label for m in migs] == ["0002_first", "0010_later"]
    assert migs[0].checksum == P.checksum(b"select 2;\n")
    assert all(m.transactional for m in migs)


def test_no_transaction_mark_is_the_first_line_only(tmp_path: Path) -> None:
    a = P.parse_migration(
        Path("0001_a.sql"), b"-- tenancy: no-transaction\ncreate index concurrently i on t (x);\n"
    )
    b = P.parse_migration(Path("0002_b.sql"), b"select 1;\n-- tenancy: no-transaction\n")
    assert not a.transactional
    assert b.transactional


@pytest.mark.parametrize("name", ["1_short.sql", "0001-dash.sql", "0001_.sql", "abcd_x.sql", "0001_a b.sql"])
def test_bad_file_names_are_usage_errors(tmp_path: Path, name: str) -> None:
    write(tmp_path, name, "select 1;")
    with pytest.raises(P.UsageError):
        P.discover(tmp_path)


def test_duplicate_version_and_missing_dir_are_usage_errors(tmp_path: Path) -> None:
    write(tmp_path, "0001_a.sql", "select 1;")
    write(tmp_path, "0001_b.sql", "select 2;")
    with pytest.raises(P.UsageError, match="0001"):
        P.discover(tmp_path)
    with pytest.raises(P.UsageError, match="does not exist"):
        P.discover(tmp_path / "nope")


def _migs(*pairs: tuple[str, str]) -> list[P.Migration]:
    return [P.parse_migration(Path(f"{v}_m{v}.sql"), body.encode()) for v, body in pairs]


def test_plan_pending_changed_extra() -> None:
    migs = _migs(("0001", "a"), ("0002", "b"), ("0003", "c"))
    applied = {"0001": migs[0].checksum, "0002": "forged", "0009": "x"}
    pl = P.plan(migs, applied)
    assert [m.version for m in pl.pending] == ["0003"]
    assert pl.changed == ["0002"]
    assert pl.extra == ["0009"]
    assert pl.blocked


def test_plan_nothing_pending() -> None:
    migs = _migs(("0001", "a"), ("0002", "b"))
    pl = P.plan(migs, {m.version: m.checksum for m in migs})
    assert not pl.pending and not pl.changed and not pl.extra and not pl.blocked


def test_split_statements() -> None:
    text = (
        "-- tenancy: no-transaction\n\ncreate index concurrently a on t (x);\n"
        "-- note\ncreate index\n concurrently b on t (y);\n"
    )
    assert P.split_statements(text) == [
        "create index concurrently a on t (x);",
        "create index\n concurrently b on t (y);",
    ]
    assert P.split_statements("-- only a comment\n") == []
    assert P.split_statements("select 1") == ["select 1"]


def test_parse_tenant() -> None:
    u = uuid.uuid4()
    assert P.parse_tenant(str(u).upper()) == ("id", str(u))
    assert P.parse_tenant("brandsyncup/acme") == ("path", "brandsyncup/acme")
    assert P.parse_tenant("/brandsyncup/") == ("path", "brandsyncup")
    assert P.parse_tenant("") == ("path", "")
    for bad in ("Brand/acme", "a//b", "-x", "acme; drop table t", "a/b_c"):
        with pytest.raises(P.UsageError):
            P.parse_tenant(bad)


def test_names_are_valid_identifiers_and_per_control_database() -> None:
    t = str(uuid.uuid4())
    assert P.schema_name(t) == "tenant_" + uuid.UUID(t).hex
    long_ctl = "x" * 63
    for name in (P.schema_name(t), P.database_name(long_ctl, t), P.template_name(long_ctl)):
        assert len(name) <= 63 and name == name.lower()
    assert P.database_name("a", t) != P.database_name("b", t)
    assert P.database_name("ctl", t).startswith(P.prefix("ctl"))


def test_exit_codes() -> None:
    assert P.exit_code([{"status": "current"}, {"status": "migrated"}, {"status": "pending"}]) == 0
    assert P.exit_code([{"status": "current"}, {"status": "failed"}]) == 1
    assert P.exit_code([{"status": "blocked"}]) == 1
    assert P.exit_code([]) == 0
    assert P.health_exit([{"severity": "info"}]) == 0
    assert P.health_exit([{"severity": "info"}, {"severity": "warning"}]) == 1


def test_fk_order() -> None:
    order = P.fk_order(
        ["tasks", "projects", "comments", "tags"], [("tasks", "projects"), ("comments", "tasks")]
    )
    assert order.index("projects") < order.index("tasks") < order.index("comments")
    assert set(order) == {"tasks", "projects", "comments", "tags"}
    cyc = P.fk_order(["a", "b"], [("a", "b"), ("b", "a"), ("a", "a")])
    assert sorted(cyc) == ["a", "b"]


def test_cli_usage_errors_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("TENANCY_DSN", raising=False)
    assert run(["list"]) == 2
    assert "TENANCY_DSN" in capsys.readouterr().err
    assert run(["nonsense"]) == 2
    assert run(["move", "acme", "--to", "mars", "--dsn", "x"]) == 2
    assert run(["provision", "acme", "--dsn", "x"]) == 2  # --kind is required


def test_help_describes_every_command_without_contract_jargon(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--help"]) == 0
    top = capsys.readouterr().out
    assert "SPEC" not in top and "examples:" in top
    from tenancy.fleet.cli import COMMANDS

    for name, (line, _text, examples) in COMMANDS.items():
        assert f"{name}  " in top or f"{name}\n" in top
        assert line in " ".join(top.split())  # the one-line description, in the command list
        assert run([name, "--help"]) == 0
        out = capsys.readouterr().out
        assert "SPEC" not in out
        assert "examples:" in out and all(e in out for e in examples)
        assert line[1:] in out


def test_service_values() -> None:
    assert P.service_value("tenants-eu") == "service=tenants-eu"
    assert P.service_of("service=tenants-eu") == "tenants-eu"
    assert P.service_of("app_t0123") is None and P.service_of(None) is None
    assert P.describe_database("service=eu1") == "the database of service eu1"
    assert P.describe_database("app_t0123") == "database app_t0123"
    for bad in ("", "eu 1", "host=x password=y", "a" * 64, "-x", "eu1\n"):
        with pytest.raises(P.UsageError, match="service"):
            P.service_value(bad)


def test_a_failed_migration_names_its_file_and_line() -> None:
    m = P.parse_migration(Path("migrations/0003_broken.sql"), b"create table half (id int);\nselect 1 / 0;\n")
    assert P.migration_error(m, "division by zero") == "0003_broken.sql: division by zero"
    # a position in the file's text (a parse error) becomes its line
    assert P.migration_error(m, 'syntax error at or near "1"', 36) == (
        '0003_broken.sql line 2: syntax error at or near "1"'
    )
    assert P.migration_error(m, "x", 10_000) == "0003_broken.sql: x"


def test_privilege_changes_and_statements() -> None:
    sel = P.Privilege("table", "projects", "app", "SELECT")
    dele = P.Privilege("table", "projects", "app", "DELETE")
    col = P.Privilege("column", "projects.name", "auditor", "SELECT", True)
    seq = P.Privilege("sequence", "notes_id_seq", "app", "USAGE")
    use = P.Privilege("schema", "", "PUBLIC", "USAGE")
    want = {sel, dele, col, seq}
    have = {sel, P.Privilege("column", "projects.name", "auditor", "SELECT"), use}
    changes = P.privilege_changes(want, have)
    stmts = [P.privilege_sql('tenant_"x', c) for c in changes]
    assert stmts == [
        'revoke USAGE on schema "tenant_""x" from public',
        'grant SELECT ("name") on table "tenant_""x"."projects" to "auditor" with grant option',
        'grant USAGE on sequence "tenant_""x"."notes_id_seq" to "app"',
        'grant DELETE on table "tenant_""x"."projects" to "app"',
    ]
    # the grant option only, the other way round
    back = P.privilege_changes(have, want)
    assert P.Change(False, col, True) in back
    assert P.privilege_sql("s", P.Change(False, col, True)) == (
        'revoke grant option for SELECT ("name") on table "s"."projects" from "auditor"'
    )
    assert P.privilege_changes(want, want) == []


def test_privilege_findings_one_per_object_and_role() -> None:
    want = {P.Privilege("table", "projects", "app", p) for p in ("SELECT", "INSERT", "DELETE")}
    have = {
        P.Privilege("table", "projects", "app", "SELECT"),
        P.Privilege("table", "notes", "app", "REFERENCES"),
    }
    have.add(P.Privilege("schema", "", "PUBLIC", "USAGE"))
    assert P.privilege_findings(want, have, "tenant_x") == [
        ("schema tenant_x", "privileges differ: PUBLIC has USAGE, which the shared placement does not grant"),
        (
            "tenant_x.notes",
            "privileges differ: role app has REFERENCES, which the shared placement does not grant",
        ),
        (
            "tenant_x.projects",
            "privileges differ: role app lacks DELETE, INSERT, which the shared placement grants",
        ),
    ]


def test_only_the_objects_a_placement_has_are_compared() -> None:
    from tenancy.fleet.privileges import Acl, wanted

    want = {
        P.Privilege("table", "projects", "app", "SELECT"),
        P.Privilege("column", "projects.name", "auditor", "SELECT"),
        P.Privilege("table", "tasks", "app", "SELECT"),  # a table this placement lacks: health's own finding
    }
    have = Acl()
    have.objects |= {("schema", ""), ("table", "projects"), ("column", "projects.name")}
    assert wanted(want, have) == {
        P.Privilege("table", "projects", "app", "SELECT"),
        P.Privilege("column", "projects.name", "auditor", "SELECT"),
    }
