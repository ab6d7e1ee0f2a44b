"""Domain resolution over real connections as an application role (not a superuser)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors
from tenancy_testlib import Tree, audit_lines, connect

# domain -> (tenant attribute of Tree, is_primary, status)
MAPPINGS = {
    "Acme.Example.COM.": ("acme", True, "active"),
    "*.brandsyncup.com": ("brandsyncup", False, "active"),
    "pixelworks.io": ("pixelworks", True, "active"),
    "bücher.example": ("initech", False, "active"),
    "dormant.example.com": ("suspended", False, "active"),
    "soon.example.com": ("globex", False, "pending"),
}
STORED = {
    "acme.example.com",
    "*.brandsyncup.com",
    "pixelworks.io",
    "xn--bcher-kva.example",
    "dormant.example.com",
    "soon.example.com",
}


@pytest.fixture(scope="module")
def mappings(tenancy_db: str, tree: Tree) -> Iterator[set[str]]:
    """The mappings above (those another suite already made are left alone); removed afterwards."""
    mine: list[str] = []
    with connect(tenancy_db) as conn:
        for domain, (attr, primary, status) in MAPPINGS.items():
            row = conn.execute(
                "insert into tenancy.domain_mappings (domain, tenant_id, is_primary, status)"
                " values (%s, %s, %s, %s) on conflict (domain) do nothing returning domain",
                [domain, getattr(tree, attr), primary, status],
            ).fetchone()
            if row is not None:
                mine.append(row[0])
    yield STORED
    with connect(tenancy_db) as conn:
        conn.execute("delete from tenancy.domain_mappings where domain = any(%s)", [mine])


def one(conn: psycopg.Connection, sql: str, params: list[object] | None = None) -> object:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def ctx(conn: psycopg.Connection) -> str | None:
    value = one(conn, "select tenancy.current_tenant()::text")
    return None if value is None else str(value)


def resolve(conn: psycopg.Connection, host: str) -> str | None:
    value = one(conn, "select tenancy.resolve_domain(%s)::text", [host])
    return None if value is None else str(value)


def visible_domains(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute("select domain from tenancy.domain_mappings")}


def test_resolve_domain_before_any_context(app_dsn: str, tree: Tree, mappings: set[str]) -> None:
    with connect(app_dsn) as conn:
        assert ctx(conn) is None
        assert visible_domains(conn) == set(), "without context the table shows nothing"
        assert resolve(conn, "acme.example.com") == tree.acme
        assert resolve(conn, "ACME.Example.com.:443") == tree.acme
        assert resolve(conn, "acme.brandsyncup.com") == tree.acme
        assert resolve(conn, "Globex.BrandSyncUp.com") == tree.globex
        assert resolve(conn, "bücher.example") == tree.initech
        assert resolve(conn, "xn--bcher-kva.example") == tree.initech
        assert resolve(conn, "dormant.example.com") == tree.suspended, "a suspended tenant resolves"
        assert resolve(conn, "dormant.brandsyncup.com") == tree.suspended
        assert resolve(conn, "soon.example.com") is None, "a pending mapping does not"
        assert resolve(conn, "evilbrandsyncup.com") is None
        assert resolve(conn, "a.acme.brandsyncup.com") is None
        assert resolve(conn, "unknown.example.org") is None
        assert ctx(conn) is None, "resolving sets no context"


def test_details_and_primary_domain_without_context(app_dsn: str, tree: Tree, mappings: set[str]) -> None:
    with connect(app_dsn) as conn:
        rows = conn.execute(
            "select tenant_id::text, tier, path, matched, match_kind"
            " from tenancy.resolve_domain_details('acme.brandsyncup.com')"
        ).fetchall()
        assert rows == [(tree.acme, 2, "brandsyncup/acme", "*.brandsyncup.com", "wildcard")]
        rows = conn.execute(
            "select path, match_kind from tenancy.resolve_domain_details('pixelworks.io')"
        ).fetchall()
        assert rows == [("pixelworks", "exact")]
        assert conn.execute("select * from tenancy.resolve_domain_details('nope.example')").fetchall() == []
        assert one(conn, "select tenancy.primary_domain(%s)", [tree.acme]) == "acme.example.com"
        assert one(conn, "select tenancy.primary_domain(%s)", [tree.globex]) is None


def test_set_tenant_for_domain_session(app_dsn: str, tree: Tree, mappings: set[str]) -> None:
    with connect(app_dsn) as conn:
        assert str(one(conn, "select tenancy.set_tenant_for_domain('acme.brandsyncup.com')")) == tree.acme
        assert ctx(conn) == tree.acme
        conn.execute("select 1")
        assert ctx(conn) == tree.acme, "a session context outlives the statement"
        assert visible_domains(conn) == {"acme.example.com"}


def test_set_tenant_for_domain_local(app_dsn: str, tree: Tree, mappings: set[str]) -> None:
    with connect(app_dsn) as conn:
        conn.execute("select tenancy.set_tenant_for_domain('pixelworks.io')")
        with conn.transaction():
            value = one(conn, "select tenancy.set_tenant_for_domain(%s, local => true)", ["ACME.example.com"])
            assert str(value) == tree.acme
            assert ctx(conn) == tree.acme
        assert ctx(conn) == tree.pixelworks, "the session context is back after the transaction"
        with conn.transaction():
            conn.execute("select tenancy.set_tenant_for_domain('bücher.example', true)")
            assert ctx(conn) == tree.initech
        assert ctx(conn) == tree.pixelworks


def test_unknown_domain_is_tn005_naming_the_host(app_dsn: str, tree: Tree, mappings: set[str]) -> None:
    with connect(app_dsn) as conn:
        conn.execute("select tenancy.set_tenant_for_domain('acme.example.com')")
        for host in ("nowhere.example.org", "soon.example.com", "nobody.brandsyncup.com"):
            with pytest.raises(psycopg.Error) as exc:
                conn.execute("select tenancy.set_tenant_for_domain(%s)", [host])
            assert exc.value.sqlstate == "TN005"
            assert f"'{host}'" in str(exc.value), "the message names the host"
        assert ctx(conn) == tree.acme, "a refusal keeps the previous context"


def test_suspended_tenant_resolves_but_is_refused(app_dsn: str, tree: Tree, mappings: set[str]) -> None:
    with connect(app_dsn) as conn, pytest.raises(psycopg.Error) as exc:
        conn.execute("select tenancy.set_tenant_for_domain('dormant.example.com')")
    assert exc.value.sqlstate == "TN002"


@pytest.mark.parametrize("host", ["", "1.2.3.4", "[::1]:443", "https://acme.example.com/", "a..b", "*.x.com"])
def test_malformed_host_is_22023(app_dsn: str, mappings: set[str], host: str) -> None:
    with connect(app_dsn) as conn:
        for sql in ("select tenancy.resolve_domain(%s)", "select tenancy.set_tenant_for_domain(%s)"):
            with pytest.raises(psycopg.Error) as exc:
                conn.execute(sql, [host])
            assert exc.value.sqlstate == "22023"
            assert f"'{host}'" in str(exc.value), "the message names the host"


def test_app_role_cannot_write_mappings(app_dsn: str, tree: Tree, mappings: set[str]) -> None:
    with connect(app_dsn) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [tree.acme])
        statements = [
            (
                "insert into tenancy.domain_mappings (domain, tenant_id) values ('evil.example', %s)",
                [tree.acme],
            ),
            ("update tenancy.domain_mappings set tenant_id = %s", [tree.acme]),
            ("delete from tenancy.domain_mappings", None),
        ]
        for sql, params in statements:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(sql, params)


def test_visibility_per_tier(app_dsn: str, platform_dsn: str, tree: Tree, mappings: set[str]) -> None:
    def seen(dsn: str, tenant: str) -> set[str]:
        with connect(dsn) as conn:
            conn.execute("select tenancy.set_tenant(%s)", [tenant])
            return visible_domains(conn) & mappings

    assert seen(app_dsn, tree.brandsyncup) == {
        "acme.example.com",
        "*.brandsyncup.com",
        "dormant.example.com",
        "soon.example.com",
    }
    assert seen(app_dsn, tree.acme) == {"acme.example.com"}
    assert seen(app_dsn, tree.pixelworks) == {"pixelworks.io", "xn--bcher-kva.example"}
    assert seen(app_dsn, tree.initech) == {"xn--bcher-kva.example"}
    assert seen(platform_dsn, tree.root) == mappings


def test_normalize_host_for_the_app_role(app_dsn: str, mappings: set[str]) -> None:
    with connect(app_dsn) as conn:
        helpers = conn.execute(
            "select p.oid::regprocedure::text from pg_proc p"
            " where p.pronamespace = 'tenancy'::regnamespace"
            "   and p.proname in ('_normalize_host_full', '_normalize_host_py')"
            "   and not has_function_privilege(p.oid, 'execute')"
        ).fetchall()
        assert helpers == [], "normalize_host runs as its caller: its helpers must be executable by PUBLIC"
        assert one(conn, "select tenancy.normalize_host('Bücher.Example.:443')") == "xn--bcher-kva.example"
        with pytest.raises(psycopg.Error) as exc:
            conn.execute("select tenancy.normalize_host('1.2.3.4')")
        assert exc.value.sqlstate == "22023"


# --- audit ------------------------------------------------------------------------------------


def test_unknown_domain_is_audited(app_dsn: str, mappings: set[str], log_offset: int) -> None:
    with connect(app_dsn) as conn, pytest.raises(psycopg.Error), conn.transaction():
        conn.execute("select tenancy.set_tenant_for_domain('ghost.example.net', local => true)")
    lines = [
        line
        for line in audit_lines(log_offset, until=lambda line: line.get("sqlstate") == "TN005")
        if line["event"] == "refused_context" and line["sqlstate"] == "TN005"
    ]
    assert lines, "a TN005 refusal leaves a TENANCY_AUDIT line, which survives the rollback"
    line = lines[-1]
    assert line["asked"] == "set_tenant_for_domain('ghost.example.net', local => true)"
    assert str(line["role"]).startswith("tenancy_app_")
    assert line["reason"]


# --- plans --------------------------------------------------------------------------------------


def test_resolution_uses_indexes_only(tenancy_db: str, tree: Tree, mappings: set[str]) -> None:
    """With thousands of mappings and tenants: no sequential scan of domain_mappings or tenants."""
    with connect(tenancy_db) as conn, conn.transaction(force_rollback=True):
        conn.execute(
            "insert into tenancy.tenants (parent_id, slug, name)"
            " select %s, 'load' || i, 'Load ' || i from generate_series(1, 3000) i",
            [tree.pixelworks],
        )
        conn.execute(
            "insert into tenancy.domain_mappings (domain, tenant_id)"
            " select 'load' || i || '.example.com', %s from generate_series(1, 5000) i",
            [tree.globex],
        )
        conn.execute("analyze tenancy.domain_mappings")
        conn.execute("analyze tenancy.tenants")

        def scans() -> dict[str, tuple[int, int]]:
            rows = conn.execute(
                "select relname, seq_scan, coalesce(idx_scan, 0) from pg_stat_xact_user_tables"
                " where schemaname = 'tenancy' and relname in ('domain_mappings', 'tenants')"
            ).fetchall()
            return {r[0]: (r[1], r[2]) for r in rows}

        before = scans()
        for host in ("load42.example.com", "acme.brandsyncup.com", "nobody.example.org") * 10:
            conn.execute("select tenancy.resolve_domain(%s)", [host])
            conn.execute("select * from tenancy.resolve_domain_details(%s)", [host])
        after = scans()
        for table in ("domain_mappings", "tenants"):
            seq_before, idx_before = before.get(table, (0, 0))
            seq_after, idx_after = after.get(table, (0, 0))
            assert seq_after == seq_before, f"no sequential scan of {table}"
            assert idx_after > idx_before, f"{table} is read through an index"


# --- IDNA 2008 (SPEC v0.3 §3) ------------------------------------------------------------------------


def test_strasse_and_strasse_with_sharp_s_are_two_domains(tenancy_db: str, app_dsn: str, tree: Tree) -> None:
    """`straße.de` is `xn--strae-oqa.de` (as browsers send it), not the owner of `strasse.de`'s domain."""
    with connect(tenancy_db) as conn:
        conn.execute(
            "insert into tenancy.domain_mappings (domain, tenant_id)"
            " values ('strasse.de', %s), ('straße.de', %s)",
            [tree.acme, tree.initech],
        )
    try:
        with connect(app_dsn) as conn:
            assert resolve(conn, "strasse.de") == tree.acme
            assert resolve(conn, "straße.de") == tree.initech
            assert resolve(conn, "xn--strae-oqa.de") == tree.initech
            assert resolve(conn, "STRASSE.DE") == tree.acme
        with connect(tenancy_db) as conn:
            stored = {
                r[0]
                for r in conn.execute("select domain from tenancy.domain_mappings where domain like '%.de'")
            }
            assert {"strasse.de", "xn--strae-oqa.de"} <= stored
    finally:
        with connect(tenancy_db) as conn:
            conn.execute(
                "delete from tenancy.domain_mappings where domain in ('strasse.de', 'xn--strae-oqa.de')"
            )


def test_full_width_host_resolves(app_dsn: str, tree: Tree, mappings: set[str]) -> None:
    with connect(app_dsn) as conn:
        assert resolve(conn, "ｐｉｘｅｌｗｏｒｋｓ．ｉｏ") == tree.pixelworks
        assert resolve(conn, "ＢＵ\u0308ＣＨＥＲ。example") == tree.initech


def test_a_host_idna_2008_refuses_is_22023(app_dsn: str) -> None:
    with connect(app_dsn) as conn, pytest.raises(errors.InvalidParameterValue) as info:
        conn.execute("select tenancy.resolve_domain('💩.la')")
    assert "IDNA 2008" in (info.value.diag.message_primary or "")


def test_upgrade_from_0_1_0_renormalizes_and_reports(server_dsn: str) -> None:
    """Mappings that 0.1.0 stored by IDNA 2003: one that IDNA 2008 maps otherwise is renormalized (and
    reported), one whose new form another mapping holds is kept and reported (not merged), one IDNA 2008
    refuses is kept and reported; ASCII mappings are untouched."""
    import secrets

    from plpython import hosts

    name = f"tenancy_idna_{secrets.token_hex(3)}"
    with connect(server_dsn) as conn:
        conn.execute(f"create database {name}")
    dsn = f"{server_dsn} dbname={name}"
    try:
        with connect(dsn) as conn:
            conn.execute("set client_min_messages = warning")
            conn.execute("create extension tenancy version '0.1.0' cascade")
            root = one(conn, "insert into tenancy.tenants (slug, name) values ('p', 'P') returning id::text")
            a, b, c = (
                one(
                    conn,
                    "insert into tenancy.tenants (parent_id, slug, name) values (%s, %s, %s)"
                    " returning id::text",
                    [root, slug, slug],
                )
                for slug in ("a", "b", "c")
            )
            old_form = one(conn, "select tenancy.normalize_host(%s)", ["x\u13a0.example"])
            if old_form == hosts.normalize("x\uab70.example"):
                pytest.skip(
                    "this server's Python already maps Cherokee capitals as IDNA 2008 does, in 0.1.0's "
                    f"IDNA 2003 codec ({old_form}): there is nothing for the upgrade to renormalize here"
                )
            # Cherokee capitals (U+13A0...) had no lower case in Unicode 3.2, so IDNA 2003 kept them;
            # IDNA 2008 (UTS #46) maps them to the small letters of Unicode 8 (U+AB70...). The new form of
            # one of them is mapped (typed as punycode) to another tenant.
            conn.execute(
                "insert into tenancy.domain_mappings (domain, tenant_id) values"
                " ('y\u13a0.example', %s), ('x\u13a0.example', %s), (%s, %s), ('💩.la', %s),"
                " ('strasse.example', %s)",
                [a, a, hosts.normalize("x\uab70.example"), b, c, c],
            )
            before = {
                r[0]: r[1]
                for r in conn.execute("select domain, tenant_id::text from tenancy.domain_mappings")
            }
            assert "xn--ls8h.la" in before and len(before) == 5
            warnings: list[str] = []
            conn.add_notice_handler(
                lambda d: (
                    warnings.append(d.message_primary or "") if d.severity_nonlocalized == "WARNING" else None
                )
            )
            conn.execute("alter extension tenancy update")
            after = {
                r[0]: r[1]
                for r in conn.execute("select domain, tenant_id::text from tenancy.domain_mappings")
            }
        old_y, old_x = (
            next(d for d, t in before.items() if d.startswith(p) and t == a) for p in ("xn--y", "xn--x")
        )
        new_y, new_x = hosts.normalize("y\uab70.example"), hosts.normalize("x\uab70.example")
        assert new_y != old_y and new_x != old_x and before[new_x] == b
        assert after[new_y] == a and old_y not in after  # renormalized
        assert after[old_x] == a and after[new_x] == b  # a collision: both kept
        assert after["xn--ls8h.la"] == c and after["strasse.example"] == c  # kept
        assert len(after) == 5
        text = "\n".join(warnings)
        assert f"{old_y} (tenant {a}) renormalized by IDNA 2008 to {new_y}" in text, text
        assert f"{old_x} (tenant {a}) is {new_x} under IDNA 2008, which is mapped to tenant {b}" in text, text
        assert "xn--ls8h.la" in text and "not a valid name under IDNA 2008" in text
        assert "strasse.example" not in text
    finally:
        with connect(server_dsn) as conn:
            conn.execute(f"drop database if exists {name} with (force)")
