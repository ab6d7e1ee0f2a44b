"""Read replicas (SPEC v0.3 §0): a streaming hot standby and a logical subscriber of tenancy's tables
answer every read-side call as the primary does once they have replayed the write, in long-lived
backends too, and nothing on those paths writes.

Every test runs against both (tests/py/standby.py): a real standby (pg_basebackup -R of the
throwaway primary, its own port) and a database of the same cluster subscribed to tenancy's tables
and the application's table. The application role connects to the replica ONCE, before the writes,
and keeps that backend (warm caches, a held context), read-only (``default_transaction_read_only``
on the subscriber, which could write otherwise); the DBA writes on the primary; after
``catch_up()`` (the replica applied everything written so far) the next call on the same replica
backend must see the write. Each test makes its own tenants, so they do not depend on each other's
order.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt_factory as jf
import psycopg
import pytest
from psycopg.types.json import Jsonb
from standby import NoStandby, Standby, Subscriber, logical_subscriber
from tenancy_testlib import Tree, connect, seed_tree

# what a logical subscriber of tenancy subscribes to: tenancy's own tables and the application's
PUBLISHED = [
    "tenancy.tenants",
    "tenancy.domain_mappings",
    "tenancy.token_layers",
    "tenancy.token_rules",
    "tenancy.jwt_issuers",
    "tenancy.placements",
    "public.notes",
]


@dataclass(frozen=True)
class World:
    kind: str  # "standby" or "logical"
    primary: str  # superuser DSN of the test database on the primary
    app: str  # the application role's DSN of the replica
    app_on_primary: str  # the same role on the primary
    tree: Tree
    replica: Standby | Subscriber
    files: frozenset[str]  # the replica's data directory's own files before any test of this module ran

    def write(self, sql: str, args: list[Any] | None = None) -> None:
        """One write on the primary as the DBA, then wait until the replica applied it."""
        with connect(self.primary) as conn:
            conn.execute(sql, args or [])
        self.replica.catch_up()

    def tenant(self, parent: str, slug: str, rows: int = 3) -> str:
        """A new tenant under ``parent`` with ``rows`` rows in public.notes (on the primary, replayed)."""
        with connect(self.primary) as conn:
            row = conn.execute(
                "insert into tenancy.tenants (parent_id, slug) values (%s, %s) returning id::text",
                [parent, f"{slug}-{secrets.token_hex(3)}"],
            ).fetchone()
            assert row is not None
            conn.execute(
                "insert into public.notes (tenant_id, body)"
                " select %s, 'n' || g from generate_series(1, %s) g",
                [row[0], rows],
            )
        self.replica.catch_up()
        return str(row[0])

    def reader(self) -> psycopg.Connection:
        """A long-lived, read-only backend of the application role on the replica."""
        conn = connect(self.app, options="-c default_transaction_read_only=on")
        in_recovery = conn.execute("select pg_is_in_recovery()").fetchone() == (True,)
        assert in_recovery == (self.kind == "standby")
        return conn


# PostgreSQL's own files in a data directory that reading can create on a standby (relation files,
# the relcache init file); anything else new after the calls below was written by someone else
_PG_OWN = re.compile(r"^(\d+(_(fsm|vm|init))?(\.\d+)?|pg_internal\.init(\.\d+)?|pg_filenode\.map)$")
_PG_DIRS = {"pg_wal", "pg_xact", "pg_subtrans", "pg_multixact", "pg_logical", "pg_replslot", "pg_stat", "log"}


def _files(data: Path) -> set[str]:
    out: set[str] = set()
    for path in data.rglob("*"):
        rel = path.relative_to(data)
        if rel.parts[0] in _PG_DIRS or not path.is_file():
            continue
        if rel.parts[0] in ("base", "global") and _PG_OWN.match(path.name):
            continue
        out.add(str(rel))
    return out


def _schema(conn: psycopg.Connection, role: str) -> None:
    """The extension and the application's registered table (primary and subscriber alike)."""
    conn.execute("set client_min_messages = warning")
    conn.execute("create extension tenancy cascade")
    conn.execute(
        "create table public.notes (id bigserial primary key, tenant_id uuid not null, body text not null)"
    )
    conn.execute("select tenancy.register_table('public.notes')")
    conn.execute("select tenancy.grant_app(%s)", [role])
    conn.execute(f"grant select, insert on public.notes to {role}")


@pytest.fixture(scope="module", params=["standby", "logical"])
def world(request: pytest.FixtureRequest, server_dsn: str) -> Iterator[World]:
    """Its own database (the tests move and delete tenants): the tree, a registered table with rows of
    every tenant, an application role; all applied on the replica of the kind the parameter names."""
    kind = request.param
    name = f"tenancy_replica_{secrets.token_hex(4)}"
    role, password = f"tenancy_app_{secrets.token_hex(3)}", secrets.token_hex(8)
    with connect(server_dsn) as conn:
        conn.execute(f"create database {name}")
        conn.execute(f"create role {role} login password '{password}'")
    primary = f"{server_dsn} dbname={name}"
    app = f"{primary} user={role} password={password}"
    try:
        with connect(primary) as conn:
            _schema(conn, role)
            tree = seed_tree(conn)
            conn.execute(
                "insert into public.notes (tenant_id, body) select t.id, 'n' || g"
                " from tenancy.tenants t, generate_series(1, 3) g"
            )
            conn.execute(
                "insert into tenancy.domain_mappings (domain, tenant_id, is_primary)"
                " values ('acme.example.com', %s, true)",
                [tree.acme],
            )
        if kind == "standby":
            replica: Standby | Subscriber = request.getfixturevalue("standby")
            replica.catch_up()
            files = frozenset(_files(replica.data))
            yield World(kind, primary, replica.dsn(app), app, tree, replica, files)
        else:
            try:
                subscriber = logical_subscriber(primary, PUBLISHED, lambda conn: _schema(conn, role))
                with subscriber as replica:
                    files = frozenset(_files(replica.data))
                    yield World(kind, primary, replica.dsn(app), app, tree, replica, files)
            except NoStandby as exc:
                pytest.skip(str(exc))
    finally:
        with connect(server_dsn) as conn:
            conn.execute(f"drop database if exists {name} with (force)")
            conn.execute(f"drop role if exists {role}")


def seen(conn: psycopg.Connection) -> set[str]:
    """The tenants whose rows of public.notes the current context shows."""
    return {str(r[0]) for r in conn.execute("select distinct tenant_id from public.notes")}


def visible(conn: psycopg.Connection) -> set[str]:
    row = conn.execute("select tenancy.visible_tenants()").fetchone()
    assert row is not None
    return {str(t) for t in row[0] or []}


def enter(conn: psycopg.Connection, tenant: str) -> None:
    conn.execute("select tenancy.set_tenant(%s)", [tenant])


def refusal(conn: psycopg.Connection, sql: str, args: list[Any] | None = None) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as info:
        conn.execute(sql, args or [])
    return info.value


def one(conn: psycopg.Connection, sql: str, args: list[Any] | None = None) -> Any:
    row = conn.execute(sql, args or []).fetchone()
    assert row is not None
    return row[0]


# ------------------------------------------------------------------------------------------------
# the replica is a real one, read-only for the application's backends


def test_the_replica_applies_and_refuses_writes(world: World) -> None:
    with world.reader() as conn:
        enter(conn, world.tree.acme)
        assert seen(conn) == {world.tree.acme}
        err = refusal(conn, "insert into public.notes (body) values ('x')")
        assert err.sqlstate == "25006", err  # read-only transaction (a standby cannot write at all)


# ------------------------------------------------------------------------------------------------
# writes on the primary, seen by the next call of a long-lived replica backend


def test_a_suspension_is_seen_by_the_next_set_tenant(world: World) -> None:
    customer = world.tenant(world.tree.brandsyncup, "susp")
    with world.reader() as conn:
        enter(conn, customer)  # a backend that has already checked this tenant once
        assert seen(conn) == {customer}
        world.write("update tenancy.tenants set status = 'suspended' where id = %s", [customer])
        err = refusal(conn, "select tenancy.set_tenant(%s)", [customer])
        assert err.sqlstate == "TN002", err
        assert customer in (err.diag.message_primary or ""), err.diag.message_primary
        world.write("update tenancy.tenants set status = 'active' where id = %s", [customer])
        enter(conn, customer)
        assert seen(conn) == {customer}


def test_a_suspension_is_seen_through_a_domain(world: World) -> None:
    customer = world.tenant(world.tree.pixelworks, "suspdom")
    host = f"suspdom-{secrets.token_hex(3)}.example.com"
    world.write("insert into tenancy.domain_mappings (domain, tenant_id) values (%s, %s)", [host, customer])
    with world.reader() as conn:
        assert str(one(conn, "select tenancy.set_tenant_for_domain(%s)", [host])) == customer
        world.write("update tenancy.tenants set status = 'suspended' where id = %s", [customer])
        err = refusal(conn, "select tenancy.set_tenant_for_domain(%s)", [host])
        assert err.sqlstate == "TN002", err


def test_a_reparented_customer_moves_between_partners(world: World) -> None:
    """Partner A's long-lived replica backend stops seeing a customer moved to partner B."""
    a, b = world.tree.brandsyncup, world.tree.pixelworks
    mover = world.tenant(a, "mover")
    with world.reader() as on_a, world.reader() as on_b:
        enter(on_a, a)
        enter(on_b, b)
        assert mover in seen(on_a) and mover in visible(on_a)
        assert mover not in seen(on_b) and mover not in visible(on_b)
        world.write("update tenancy.tenants set parent_id = %s where id = %s", [b, mover])
        enter(on_a, a)
        assert mover not in visible(on_a), "partner A still has the moved customer in its visible set"
        assert mover not in seen(on_a), "partner A still reads the moved customer's rows"
        assert seen(on_a) <= visible(on_a)
        enter(on_b, b)
        assert mover in visible(on_b) and mover in seen(on_b)
        assert one(on_b, "select tenancy.tenant_path(%s)", [mover]).startswith("pixelworks/")
        enter(on_a, mover)  # the customer itself: still itself only
        assert seen(on_a) == {mover}


def test_a_new_tenant_is_known_at_the_next_call(world: World) -> None:
    a = world.tree.brandsyncup
    with world.reader() as conn:
        enter(conn, a)
        before = visible(conn)
        newcomer = world.tenant(a, "newcomer")
        assert newcomer not in before
        enter(conn, newcomer)
        assert seen(conn) == {newcomer}
        assert one(conn, "select tenancy.current_tier()") == 2
        enter(conn, a)
        assert newcomer in visible(conn) and newcomer in seen(conn)


def test_a_deleted_tenant_is_unknown_at_the_next_call(world: World) -> None:
    a = world.tree.pixelworks
    goner = world.tenant(a, "goner")
    with world.reader() as conn:
        enter(conn, goner)
        assert seen(conn) == {goner}
        enter(conn, a)
        assert goner in visible(conn)
        with connect(world.primary) as primary:
            primary.execute("delete from public.notes where tenant_id = %s", [goner])
            primary.execute("delete from tenancy.tenants where id = %s", [goner])
        world.replica.catch_up()
        err = refusal(conn, "select tenancy.set_tenant(%s)", [goner])
        assert err.sqlstate == "TN001", err
        enter(conn, a)
        assert goner not in visible(conn)


def test_domain_mappings_added_made_pending_and_removed(world: World) -> None:
    customer = world.tenant(world.tree.brandsyncup, "dom")
    host = f"shop-{secrets.token_hex(3)}.example.com"
    with world.reader() as conn:
        assert one(conn, "select tenancy.resolve_domain(%s)", [host]) is None
        assert refusal(conn, "select tenancy.set_tenant_for_domain(%s)", [host]).sqlstate == "TN005"

        world.write(
            "insert into tenancy.domain_mappings (domain, tenant_id) values (%s, %s)", [host, customer]
        )
        assert str(one(conn, "select tenancy.resolve_domain(%s)", [host])) == customer
        row = conn.execute(
            "select tenant_id::text, match_kind from tenancy.resolve_domain_details(%s)", [host]
        ).fetchone()
        assert row == (customer, "exact")
        assert str(one(conn, "select tenancy.set_tenant_for_domain(%s)", [host])) == customer
        assert seen(conn) == {customer}

        world.write("update tenancy.domain_mappings set status = 'pending' where domain = %s", [host])
        assert one(conn, "select tenancy.resolve_domain(%s)", [host]) is None
        assert refusal(conn, "select tenancy.set_tenant_for_domain(%s)", [host]).sqlstate == "TN005"

        world.write(
            "update tenancy.domain_mappings set status = 'active', is_primary = true where domain = %s",
            [host],
        )
        assert str(one(conn, "select tenancy.resolve_domain(%s)", [host])) == customer
        assert one(conn, "select tenancy.primary_domain(%s)", [customer]) == host

        world.write("delete from tenancy.domain_mappings where domain = %s", [host])
        assert one(conn, "select tenancy.resolve_domain(%s)", [host]) is None
        assert one(conn, "select tenancy.primary_domain(%s)", [customer]) is None
        assert refusal(conn, "select tenancy.set_tenant_for_domain(%s)", [host]).sqlstate == "TN005"


def _claims(iss: str, org: str) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": iss, "sub": "user_1", "iat": now - 5, "nbf": now - 5, "exp": now + 300, "org_id": org}


def test_jwt_issuers_added_rotated_and_dropped(world: World) -> None:
    customer = world.tenant(world.tree.pixelworks, "jwt")
    org = f"org_{secrets.token_hex(4)}"
    iss = f"https://standby-{secrets.token_hex(3)}.example.com"
    first, second = jf.rsa_signer("sb-1", seed=11), jf.ec_signer("sb-2", seed=12)
    world.write("update tenancy.tenants set external_id = %s where id = %s", [org, customer])
    jwt = "select tenancy.set_tenant_from_jwt(%s)"
    with world.reader() as conn:
        err = refusal(conn, jwt, [first.sign(_claims(iss, org))])
        assert err.sqlstate == "TN008", err  # no such issuer yet (and the backend has looked)

        world.write("select tenancy.add_jwt_issuer(%s, %s)", [iss, Jsonb(jf.jwks([first]))])
        assert str(one(conn, jwt, [first.sign(_claims(iss, org))])) == customer
        assert str(one(conn, "select tenancy.current_tenant()")) == customer
        assert seen(conn) == {customer}

        # a key rotation: the issuer's JWKS replaced on the primary
        world.write("select tenancy.add_jwt_issuer(%s, %s)", [iss, Jsonb(jf.jwks([second]))])
        assert str(one(conn, jwt, [second.sign(_claims(iss, org))])) == customer
        err = refusal(conn, jwt, [first.sign(_claims(iss, org))])
        assert err.sqlstate == "TN008", "a key removed on the primary is still trusted on the replica"

        world.write("select tenancy.drop_jwt_issuer(%s)", [iss])
        err = refusal(conn, jwt, [second.sign(_claims(iss, org))])
        assert err.sqlstate == "TN008", "a dropped issuer is still trusted on the replica"
        # a refused call keeps the context that was in force (README, "Tenant context")
        assert str(one(conn, "select tenancy.current_tenant()")) == customer


def test_token_layers_follow_set_tokens(world: World) -> None:
    a = world.tree.brandsyncup
    customer = world.tenant(a, "tokens")
    with world.reader() as conn:
        enter(conn, customer)
        assert one(conn, "select tenancy.effective_tokens() #>> '{color,brand,primary,$value}'") is None

        world.write(
            "select tenancy.set_tokens(%s, %s)",
            [a, Jsonb({"color": {"$type": "color", "brand": {"primary": {"$value": "#0050b3"}}}})],
        )
        enter(conn, customer)
        assert one(conn, "select tenancy.effective_tokens() #>> '{color,brand,primary,$value}'") == "#0050b3"
        assert "--color-brand-primary: #0050b3" in one(conn, "select tenancy.tokens_css()")

        world.write(
            "select tenancy.set_tokens(%s, %s)",
            [customer, Jsonb({"color": {"brand": {"primary": {"$value": "#111111"}}}})],
        )
        assert one(conn, "select tenancy.effective_tokens() #>> '{color,brand,primary,$value}'") == "#111111"
        assert "--color-brand-primary: #111111" in one(conn, "select tenancy.tokens_css()")

        # re-parented: the customer now inherits from partner B's layer (none)
        world.write(
            "update tenancy.tenants set parent_id = %s where id = %s", [world.tree.pixelworks, customer]
        )
        world.write("select tenancy.set_tokens(%s, %s)", [customer, Jsonb({})])
        enter(conn, customer)
        assert one(conn, "select tenancy.effective_tokens() #>> '{color,brand,primary,$value}'") is None


# ------------------------------------------------------------------------------------------------
# every read-side call works on a read-only replica and writes nothing


def test_every_read_side_call_works_on_the_replica_and_no_file_is_written(world: World) -> None:
    tree = world.tree
    iss, org = f"https://ro-{secrets.token_hex(3)}.example.com", f"org_{secrets.token_hex(4)}"
    signer = jf.rsa_signer("ro-1", seed=13)
    with connect(world.primary) as primary:
        primary.execute("update tenancy.tenants set external_id = %s where id = %s", [org, tree.initech])
        primary.execute("select tenancy.add_jwt_issuer(%s, %s)", [iss, Jsonb(jf.jwks([signer]))])
        space = {"space": {"$type": "dimension", "md": {"$value": "16px"}}}
        primary.execute("select tenancy.set_tokens(%s, %s)", [tree.root, Jsonb(space)])
    world.replica.catch_up()
    with world.reader() as conn:
        assert str(one(conn, "select tenancy.set_tenant(%s)", [tree.acme])) == tree.acme
        assert str(one(conn, "select tenancy.current_tenant()")) == tree.acme
        assert one(conn, "select tenancy.current_tier()") == 2
        assert visible(conn) == {tree.acme}
        assert seen(conn) == {tree.acme}
        assert {str(r[0]) for r in conn.execute("select id from tenancy.tenants")} == {tree.acme}
        assert one(conn, "select tenancy.effective_tokens() #>> '{space,md,$value}'") == "16px"
        assert "--space-md: 16px" in one(conn, "select tenancy.tokens_css()")
        assert one(conn, "select count(*) from tenancy.token_violations(%s, '{}')", [tree.acme]) == 0
        assert str(one(conn, "select tenancy.tenant_id('brandsyncup/acme')")) == tree.acme
        assert one(conn, "select tenancy.tenant_path(%s)", [tree.acme]) == "brandsyncup/acme"
        assert one(conn, "select tenancy.normalize_host('ACME.Example.com.')") == "acme.example.com"
        assert str(one(conn, "select tenancy.resolve_domain('acme.example.com')")) == tree.acme
        assert one(conn, "select count(*) from tenancy.resolve_domain_details('acme.example.com')") == 1
        assert one(conn, "select tenancy.primary_domain(%s)", [tree.acme]) == "acme.example.com"
        assert one(conn, "select kind from tenancy.placement_of(%s)", [tree.acme]) == "shared"
        with conn.transaction():
            conn.execute("select tenancy.set_tenant(%s, local => true)", [tree.brandsyncup])
            partner = seen(conn)
            assert partner == visible(conn) and tree.visible(tree.brandsyncup) <= partner
            with conn.transaction():  # a savepoint rolled back puts the partner context back
                conn.execute("select tenancy.set_tenant(%s, local => true)", [tree.globex])
                assert seen(conn) == {tree.globex}
                raise psycopg.Rollback()
            assert seen(conn) == partner
        assert str(one(conn, "select tenancy.current_tenant()")) == tree.acme  # the session context again
        assert (
            str(one(conn, "select tenancy.set_tenant_for_domain('acme.example.com', local => false)"))
            == tree.acme
        )
        assert (
            str(one(conn, "select tenancy.set_tenant_from_jwt(%s)", [signer.sign(_claims(iss, org))]))
            == tree.initech
        )
        assert seen(conn) == {tree.initech}
        conn.execute("select tenancy.reset_tenant()")
        assert one(conn, "select tenancy.current_tenant()") is None
        assert seen(conn) == set()
        # a forged context on the standby is no context (and is audited, not written)
        conn.execute("set tenancy.ctx = 'forged'")
        assert seen(conn) == set()
        assert one(conn, "select tenancy.current_tenant()") is None
        # prepared statements and a generic plan across contexts
        conn.execute("set plan_cache_mode = force_generic_plan")
        conn.execute("prepare q as select distinct tenant_id::text from public.notes")
        for tenant in (tree.acme, tree.pixelworks, tree.globex, tree.brandsyncup):
            enter(conn, tenant)
            assert {r[0] for r in conn.execute("execute q")} == visible(conn) >= tree.visible(tenant)
    # by this test and every one before it in this module (all ran as the application role)
    written = _files(world.replica.data) - world.files
    assert written == set(), f"files written into the replica's data directory: {sorted(written)}"


def test_the_replica_sees_what_the_primary_sees(world: World) -> None:
    """The same calls, the same answers, on both (once replayed)."""
    calls = [
        ("select array(select unnest(tenancy.visible_tenants()) order by 1)::text", world.tree.brandsyncup),
        ("select count(*) from public.notes", world.tree.brandsyncup),
        ("select count(*) from public.notes", world.tree.pixelworks),
        ("select tenancy.tokens_css()", world.tree.acme),
    ]
    world.replica.catch_up()
    with connect(world.app_on_primary) as on_primary, world.reader() as on_replica:
        for sql, tenant in calls:
            enter(on_primary, tenant)
            enter(on_replica, tenant)
            assert one(on_primary, sql) == one(on_replica, sql), sql
