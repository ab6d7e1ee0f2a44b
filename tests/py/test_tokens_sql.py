"""Design tokens through SQL, from outside: application roles over real connections see the tokens of
the tenants their context sees, cannot write them, token admins write within their context and the
rules, and every backend's cache follows writes made by other sessions."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import psycopg
import pytest
from tenancy_testlib import Tree, connect

PLATFORM = {
    "color": {
        "$type": "color",
        "brand": {"primary": {"$value": "#333333"}},
        "text": {"$value": "{color.brand.primary}"},
        "bg": {"$value": "#ffffff"},
        "error": {"$value": "#d32f2f"},
    },
    "space": {"$type": "dimension", "md": {"$value": "16px"}},
}
PARTNER = {"color": {"brand": {"primary": {"$value": "#0050b3"}}}}


def j(value: object) -> str:
    return json.dumps(value)


@pytest.fixture(scope="module")
def tokens(tenancy_db: str, tree: Tree) -> Iterator[None]:
    with connect(tenancy_db) as conn:
        conn.execute("select tenancy.set_tokens(%s, %s::jsonb)", [tree.root, j(PLATFORM)])
        conn.execute("select tenancy.set_token_rule(%s, 'color.error', 'lock')", [tree.root])
        conn.execute(
            "select tenancy.set_token_rule(%s, 'color.text', 'min_contrast', %s::jsonb)",
            [tree.root, j({"against": "color.bg", "ratio": 4.5})],
        )
        conn.execute("select tenancy.set_tokens(%s, %s::jsonb)", [tree.brandsyncup, j(PARTNER)])
    yield
    with connect(tenancy_db) as conn:
        conn.execute("delete from tenancy.token_rules")
        conn.execute("delete from tenancy.token_layers")


@pytest.fixture(scope="module")
def admin_dsn(tenancy_db: str, tokens: None) -> Iterator[str]:
    role = f"tenancy_tokadmin_{secrets.token_hex(3)}"
    with connect(tenancy_db) as conn:
        conn.execute(f"create role {role} login")
        conn.execute("select tenancy.grant_token_admin(%s)", [role])
    yield f"{tenancy_db} user={role}"
    with connect(tenancy_db) as conn:
        conn.execute(f"drop owned by {role}")
        conn.execute(f"drop role {role}")


def value(conn: psycopg.Connection, sql: str, args: list[object] | None = None) -> object:
    row = conn.execute(sql, args or []).fetchone()
    assert row is not None
    return row[0]


def sqlstate(conn: psycopg.Connection, sql: str, args: list[object] | None = None) -> str | None:
    try:
        conn.execute(sql, args or [])
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


def test_customer_reads_its_effective_tokens_and_css(app_dsn: str, tree: Tree, tokens: None) -> None:
    with connect(app_dsn) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [tree.acme])
        eff = value(conn, "select tenancy.effective_tokens()")
        assert isinstance(eff, dict)
        assert eff["color"]["text"]["$value"] == "#0050b3"  # the alias follows the partner's brand
        css = value(conn, "select tenancy.tokens_css()")
        assert isinstance(css, str)
        assert "  --color-brand-primary: #0050b3;\n" in css
        assert "  --space-md: 16px;\n" in css
        assert value(conn, "select tenancy.contrast_ratio('#000000', '#ffffff')") == 21


def test_tokens_of_tenants_outside_the_context_are_refused(app_dsn: str, tree: Tree, tokens: None) -> None:
    with connect(app_dsn) as conn:
        assert sqlstate(conn, "select tenancy.effective_tokens()") == "TN003"
        assert sqlstate(conn, "select tenancy.effective_tokens(%s)", [tree.acme]) == "42501"
        conn.execute("select tenancy.set_tenant(%s)", [tree.acme])
        for other in (tree.initech, tree.globex, tree.brandsyncup, tree.root):
            assert sqlstate(conn, "select tenancy.effective_tokens(%s)", [other]) == "42501", other
            assert sqlstate(conn, "select tenancy.tokens_css(%s)", [other]) == "42501", other
            assert sqlstate(conn, "select * from tenancy.token_violations(%s, '{}')", [other]) == "42501"
        # the internal reader that skips the check is not executable
        assert (
            sqlstate(conn, "select tenancy._tokens_core('effective', %s, null, null)", [tree.initech])
            == "42501"
        )


def test_token_tables_follow_tenant_visibility(app_dsn: str, tree: Tree, tokens: None) -> None:
    with connect(app_dsn) as conn:
        assert value(conn, "select count(*) from tenancy.token_layers") == 0
        conn.execute("select tenancy.set_tenant(%s)", [tree.brandsyncup])
        seen = {str(r[0]) for r in conn.execute("select tenant_id from tenancy.token_layers")}
        assert seen == {tree.brandsyncup}
        assert (
            value(conn, "select count(*) from tenancy.token_rules") == 0
        )  # the platform's rules are not its
        # ... but its effective tokens include the platform's layer
        assert value(conn, "select tenancy.effective_tokens() #>> '{color,error,$value}'") == "#d32f2f"


def test_application_roles_cannot_write_tokens(app_dsn: str, tree: Tree, tokens: None) -> None:
    with connect(app_dsn) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [tree.acme])
        assert sqlstate(conn, "select tenancy.set_tokens(%s, '{}')", [tree.acme]) == "42501"
        assert (
            sqlstate(conn, "insert into tenancy.token_layers (tenant_id) values (%s)", [tree.acme]) == "42501"
        )
        assert sqlstate(conn, "select tenancy.set_token_rule(%s, 'x', 'lock')", [tree.acme]) == "42501"


def test_token_admin_writes_within_its_context_and_the_rules(
    admin_dsn: str, tenancy_db: str, tree: Tree
) -> None:
    with connect(admin_dsn) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [tree.brandsyncup])
        layer = {"space": {"md": {"$value": "20px"}}}
        conn.execute("select tenancy.set_tokens(%s, %s::jsonb)", [tree.acme, j(layer)])
        assert (
            value(conn, "select tenancy.effective_tokens(%s) #>> '{space,md,$value}'", [tree.acme]) == "20px"
        )
        # a protected token: TN004 and nothing written
        with pytest.raises(psycopg.Error) as exc:
            conn.execute(
                "select tenancy.set_tokens(%s, %s::jsonb)",
                [tree.acme, j({"color": {"error": {"$value": "#ff0000"}}})],
            )
        assert exc.value.sqlstate == "TN004"
        assert "color.error" in str(exc.value) and "protected" in str(exc.value)
        assert (
            value(conn, "select tenancy.effective_tokens(%s) #>> '{space,md,$value}'", [tree.acme]) == "20px"
        )
        # outside the context: row-level security refuses
        assert sqlstate(conn, "select tenancy.set_tokens(%s, '{}')", [tree.initech]) == "42501"
        conn.execute("select tenancy.set_tenant(%s)", [tree.acme])
        assert sqlstate(conn, "select tenancy.set_tokens(%s, '{}')", [tree.brandsyncup]) == "42501"
        assert (
            sqlstate(conn, "select tenancy.set_token_rule(%s, 'color', 'lock')", [tree.brandsyncup])
            == "42501"
        )
    with connect(tenancy_db) as conn:
        conn.execute("delete from tenancy.token_layers where tenant_id = %s", [tree.acme])


def test_cache_follows_writes_from_other_sessions(
    app_dsn: str, tenancy_db: str, tree: Tree, tokens: None
) -> None:
    with connect(app_dsn) as reader, connect(tenancy_db) as writer:
        reader.execute("select tenancy.set_tenant(%s)", [tree.globex])
        q = "select tenancy.effective_tokens() #>> '{color,brand,primary,$value}'"
        assert value(reader, q) == "#0050b3"
        assert value(reader, q) == "#0050b3"  # cached
        writer.execute(
            "select tenancy.set_tokens(%s, %s::jsonb)",
            [tree.brandsyncup, j({"color": {"brand": {"primary": {"$value": "#1a237e"}}}})],
        )
        assert value(reader, q) == "#1a237e"
        # an uncommitted write is not seen by the reader, and a rolled-back one never
        with writer.transaction():
            writer.execute(
                "select tenancy.set_tokens(%s, %s::jsonb)",
                [tree.brandsyncup, j({"color": {"brand": {"primary": {"$value": "#004d40"}}}})],
            )
            assert value(reader, q) == "#1a237e"
            assert (
                value(
                    writer,
                    "select tenancy.effective_tokens(%s) #>> '{color,brand,primary,$value}'",
                    [tree.globex],
                )
                == "#004d40"
            )
            raise psycopg.Rollback()
        assert value(reader, q) == "#1a237e"
        assert (
            value(
                writer,
                "select tenancy.effective_tokens(%s) #>> '{color,brand,primary,$value}'",
                [tree.globex],
            )
            == "#1a237e"
        )
        writer.execute("select tenancy.set_tokens(%s, %s::jsonb)", [tree.brandsyncup, j(PARTNER)])
        assert value(reader, q) == "#0050b3"


def test_platform_reads_any_tenant(platform_dsn: str, tree: Tree, tokens: None) -> None:
    with connect(platform_dsn) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [tree.root])
        for t in (tree.acme, tree.initech, tree.brandsyncup):
            assert isinstance(value(conn, "select tenancy.effective_tokens(%s)", [t]), dict)


def test_token_admin_needs_a_context_and_tier_0_writes_any_tenant(
    tenancy_db: str, tree: Tree, tokens: None
) -> None:
    role = f"tenancy_tokroot_{secrets.token_hex(3)}"
    with connect(tenancy_db) as conn:
        conn.execute(f"create role {role} login")
        conn.execute("select tenancy.grant_token_admin(%s)", [role])
        conn.execute(f"grant tenancy_platform to {role}")
    try:
        with connect(f"{tenancy_db} user={role}") as conn:
            assert sqlstate(conn, "select tenancy.set_tokens(%s, '{}')", [tree.initech]) == "TN003"
            conn.execute("select tenancy.set_tenant(%s)", [tree.root])
            conn.execute(
                "select tenancy.set_tokens(%s, %s::jsonb)",
                [tree.initech, j({"space": {"md": {"$value": "18px"}}})],
            )
            q = "select tenancy.effective_tokens(%s) #>> '{space,md,$value}'"
            assert value(conn, q, [tree.initech]) == "18px"
            conn.execute("delete from tenancy.token_layers where tenant_id = %s", [tree.initech])
    finally:
        with connect(tenancy_db) as conn:
            conn.execute(f"drop owned by {role}")
            conn.execute(f"drop role {role}")
