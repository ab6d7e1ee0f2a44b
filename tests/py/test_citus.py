"""tenancy on a Citus cluster (SPEC 8, docs/citus.md), from outside, as real login roles.

Runs when TENANCY_CITUS_COORDINATOR names a coordinator (a superuser libpq DSN) and
TENANCY_CITUS_WORKERS its workers (`;`-separated DSNs, superuser); skipped otherwise. The
cluster needs tenancy's files installed on every node; the suite creates the extension if it is
missing, distributes the key, and works in its own schema, tenants and roles, which it removes.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

COORD = os.environ.get("TENANCY_CITUS_COORDINATOR", "")
WORKERS = [w for w in os.environ.get("TENANCY_CITUS_WORKERS", "").split(";") if w.strip()]

pytestmark = pytest.mark.skipif(
    not COORD or not WORKERS,
    reason="no Citus cluster: set TENANCY_CITUS_COORDINATOR and TENANCY_CITUS_WORKERS (see docs/citus.md)",
)


def connect(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True)


@dataclass
class Cluster:
    schema: str
    app: str
    platform: str
    password: str
    root: str
    partner: str
    customer: str
    sibling: str
    other_partner: str
    other_customer: str
    tables: list[str] = field(default_factory=list)
    created_tenants: list[str] = field(default_factory=list)

    def dsn(self, base: str, role: str) -> str:
        return make_conninfo(base, user=role, password=self.password)

    def rows_of(self) -> dict[str, int]:
        return {
            self.root: 1,
            self.partner: 2,
            self.customer: 3,
            self.sibling: 4,
            self.other_partner: 5,
            self.other_customer: 6,
        }


def _port(dsn: str) -> int:
    return int(conninfo_to_dict(dsn).get("port") or 5432)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    tag = secrets.token_hex(3)
    password = secrets.token_hex(8)
    with connect(COORD) as su:
        su.execute("set client_min_messages = warning")
        if su.execute("select 1 from pg_extension where extname = 'citus'").fetchone() is None:
            pytest.skip("TENANCY_CITUS_COORDINATOR does not have the citus extension")
        if su.execute("select 1 from pg_extension where extname = 'tenancy'").fetchone() is None:
            su.execute("create extension tenancy cascade")
        su.execute("select tenancy.citus_distribute_key()")
        root = su.execute("select id::text from tenancy.tenants where parent_id is null").fetchone()
        created: list[str] = []

        def tenant(slug: str, parent: str | None) -> str:
            tid = su.execute(
                "insert into tenancy.tenants (slug, parent_id) values (%s, %s) returning id::text",
                [slug, parent],
            ).fetchone()[0]
            created.append(tid)
            return tid

        root_id = root[0] if root else tenant("platform", None)
        partner = tenant(f"cp-{tag}", root_id)
        other_partner = tenant(f"cq-{tag}", root_id)
        c = Cluster(
            schema=f"tnc_{tag}",
            app=f"tnc_app_{tag}",
            platform=f"tnc_plat_{tag}",
            password=password,
            root=root_id,
            partner=partner,
            customer=tenant("acme", partner),
            sibling=tenant("globex", partner),
            other_partner=other_partner,
            other_customer=tenant("initech", other_partner),
        )
        c.created_tenants = created
        su.execute(f"create role {c.app} login password '{password}'")
        su.execute(f"create role {c.platform} login password '{password}'")
        su.execute("select tenancy.grant_app(%s)", [c.app])
        su.execute("select tenancy.grant_platform(%s)", [c.platform])
        su.execute(f"create schema {c.schema}")
        su.execute(f"grant usage on schema {c.schema} to {c.app}, {c.platform}")
        su.execute("set citus.shard_count = 4")
        # no setting Citus calls unsafe (SPEC 8): register_table puts no trigger on the tables here
        assert su.execute("show citus.enable_unsafe_triggers").fetchone() == ("off",)
        for name, order in (("orders", "distribute_first"), ("notes", "register_first")):
            tbl = f"{c.schema}.{name}"
            su.execute(
                f"create table {tbl} (tenant_id uuid not null, id bigserial, body text,"
                " created_at timestamptz not null default now(), primary key (tenant_id, id))"
            )
            # a DBA's habit: ALL (TRUNCATE included) before registering; register_table revokes TRUNCATE
            su.execute(f"grant all on {tbl} to {c.app}")
            if order == "distribute_first":
                su.execute("select create_distributed_table(%s, 'tenant_id')", [tbl])
                su.execute("select tenancy.register_table(%s)", [tbl])
            else:
                su.execute("select tenancy.register_table(%s)", [tbl])
                su.execute("select create_distributed_table(%s, 'tenant_id')", [tbl])
            su.execute(f"grant select, insert, update, delete on {tbl} to {c.app}, {c.platform}")
            su.execute(f"grant usage on sequence {tbl}_id_seq to {c.app}, {c.platform}")
            for tid, n in c.rows_of().items():
                su.execute(
                    f"insert into {tbl} (tenant_id, body) select %s, 'row ' || g"
                    " from generate_series(1, %s) g",
                    [tid, n],
                )
            c.tables.append(tbl)
    yield c
    with connect(COORD) as su:
        su.execute("set client_min_messages = warning")
        su.execute(f"drop schema if exists {c.schema} cascade")
        for tid in reversed(c.created_tenants):
            su.execute("delete from tenancy.tenants where id = %s", [tid])
        for role in (c.app, c.platform):
            su.execute(f"drop owned by {role}")
            su.execute(f"drop role if exists {role}")


def placements(table: str) -> list[tuple[str, int, int]]:
    """(shard name, node port, shard id) of every placement of a distributed table."""
    with connect(COORD) as su:
        rows = su.execute(
            "select nodeport, shardid from run_command_on_placements(%s, 'select 1')", [table]
        ).fetchall()
    return [(f"{table}_{shardid}", port, shardid) for port, shardid in rows]


def worker_dsn(port: int) -> str:
    for w in WORKERS:
        if _port(w) == port:
            return w
    raise AssertionError(f"no worker DSN for port {port}")


def counts(conn: psycopg.Connection, table: str) -> dict[str, int]:
    return {
        t: n for t, n in conn.execute(f"select tenant_id::text, count(*) from {table} group by 1").fetchall()
    }


def in_context(conn: psycopg.Connection, tenant: str) -> None:
    conn.execute("begin")
    conn.execute("select tenancy.set_tenant(%s, true)", [tenant])


# --- the policies reach the shards -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["orders", "notes"])
def test_both_orders_of_register_and_distribute_scope_every_shard(cluster: Cluster, name: str) -> None:
    table = f"{cluster.schema}.{name}"
    with connect(COORD) as su:
        quals = su.execute(
            "select string_agg(concat_ws(' ', pg_get_expr(polqual, polrelid),"
            " pg_get_expr(polwithcheck, polrelid)), ' ') from pg_policy where polrelid = %s::regclass",
            [table],
        ).fetchone()[0]
        assert "SELECT" not in quals.upper(), "a subquery in a policy: Citus would refuse it"
        shards = su.execute(
            f"select result from run_command_on_placements('{table}',"
            " $$select relrowsecurity and relforcerowsecurity and (select count(*) from pg_policy"
            " where polrelid = '%1$s'::regclass"
            " and polname like 'tenancy%%') = 7 from pg_class where oid = '%1$s'::regclass$$)"
        ).fetchall()
    assert len(shards) == 4 and all(r == ("t",) for r in shards)


# --- every tier through the coordinator ---------------------------------------------------------------


@pytest.mark.parametrize("tier", ["customer", "partner", "platform"])
@pytest.mark.parametrize("name", ["orders", "notes"])
def test_each_tier_reads_exactly_its_rows(cluster: Cluster, tier: str, name: str) -> None:
    table = f"{cluster.schema}.{name}"
    ours = {k: v for k, v in cluster.rows_of().items()}
    expected = {
        "customer": {cluster.customer: ours[cluster.customer]},
        "partner": {t: ours[t] for t in (cluster.partner, cluster.customer, cluster.sibling)},
        "platform": ours,
    }[tier]
    tenant = {"customer": cluster.customer, "partner": cluster.partner, "platform": cluster.root}[tier]
    role = cluster.platform if tier == "platform" else cluster.app
    with connect(cluster.dsn(COORD, role)) as conn:
        in_context(conn, tenant)
        assert counts(conn, table) == expected
        conn.execute("rollback")


def test_no_context_reads_nothing_and_tier0_needs_platform(cluster: Cluster) -> None:
    table = f"{cluster.schema}.orders"
    with connect(cluster.dsn(COORD, cluster.app)) as conn:
        assert conn.execute(f"select count(*) from {table}").fetchone() == (0,)
        conn.execute("begin")
        with pytest.raises(psycopg.Error) as err:
            conn.execute("select tenancy.set_tenant(%s, true)", [cluster.root])
        assert err.value.sqlstate == "TN007"
        conn.execute("rollback")


def test_session_context_fails_closed_on_distributed_tables(cluster: Cluster) -> None:
    """Only SET LOCAL reaches the workers: a session context sees no shard rows and cannot write."""
    table = f"{cluster.schema}.orders"
    with connect(cluster.dsn(COORD, cluster.app)) as conn:
        conn.execute("select tenancy.set_tenant(%s)", [cluster.customer])
        assert conn.execute(f"select count(*) from {table}").fetchone() == (0,)
        with pytest.raises(psycopg.Error) as err:
            conn.execute(f"insert into {table} (body) values ('session')")
        assert err.value.sqlstate == "TN003"


def test_reset_and_switch_inside_a_transaction_reach_the_shards(cluster: Cluster) -> None:
    table = f"{cluster.schema}.orders"
    with connect(cluster.dsn(COORD, cluster.app)) as conn:
        in_context(conn, cluster.customer)
        assert counts(conn, table) == {cluster.customer: 3}
        conn.execute("select tenancy.set_tenant(%s, true)", [cluster.other_customer])
        assert counts(conn, table) == {cluster.other_customer: 6}
        conn.execute("select tenancy.reset_tenant()")
        assert conn.execute(f"select count(*) from {table}").fetchone() == (0,)
        conn.execute("rollback")


def test_rollback_to_savepoint_puts_the_earlier_context_back_on_the_coordinator_and_the_shards(
    cluster: Cluster,
) -> None:
    """A table the coordinator keeps for itself is read through the signed context too (tenancy.sctx is
    set): every value the session signed in the transaction stays valid there, not only the latest."""
    dist = f"{cluster.schema}.orders"
    local = f"{cluster.schema}.local_notes"
    with connect(COORD) as su:
        su.execute(f"create table {local} (tenant_id uuid not null, body text)")
        su.execute("select tenancy.register_table(%s)", [local])
        su.execute(f"grant select on {local} to {cluster.app}")
        su.execute(f"insert into {local} values (%s, 'c'), (%s, 's')", [cluster.customer, cluster.sibling])
    try:
        with connect(cluster.dsn(COORD, cluster.app)) as conn:
            in_context(conn, cluster.customer)
            conn.execute("savepoint s")
            conn.execute("select tenancy.set_tenant(%s, true)", [cluster.sibling])
            assert counts(conn, dist) == {cluster.sibling: 4}
            assert counts(conn, local) == {cluster.sibling: 1}
            conn.execute("rollback to savepoint s")
            assert conn.execute("select tenancy.current_tenant()::text").fetchone() == (cluster.customer,)
            assert counts(conn, dist) == {cluster.customer: 3}
            assert counts(conn, local) == {cluster.customer: 1}
            conn.execute("commit")
            # the same value in a later transaction of this session: no context anywhere
            conn.execute("begin")
            conn.execute("select tenancy.set_tenant(%s, true)", [cluster.customer])
            value = conn.execute("select current_setting('tenancy.sctx')").fetchone()[0]
            conn.execute("commit")
            conn.execute("begin")
            conn.execute("set local citus.propagate_set_commands = 'local'")
            conn.execute("select set_config('tenancy.sctx', %s, true)", [value])
            gpid = value.split(".")[6]
            conn.execute(f"set local application_name = 'citus_internal gpid={gpid}'")  # posing as itself
            assert counts(conn, local) == {}
            conn.execute("rollback")
    finally:
        with connect(COORD) as su:
            su.execute(f"drop table {local}")


# --- writes -----------------------------------------------------------------------------------------


def test_writes_land_in_the_tenant_and_another_tenant_is_42501(cluster: Cluster) -> None:
    table = f"{cluster.schema}.orders"
    with connect(cluster.dsn(COORD, cluster.app)) as conn:
        in_context(conn, cluster.customer)
        row = conn.execute(f"insert into {table} (body) values ('new') returning tenant_id::text").fetchone()
        assert row == (cluster.customer,)
        for sql, args in (
            (f"insert into {table} (tenant_id, body) values (%s, 'theirs')", [cluster.other_customer]),
            (
                f"insert into {table} (tenant_id, body) values (%s, 'mine'), (%s, 'theirs')",
                [cluster.customer, cluster.sibling],
            ),
        ):
            conn.execute("savepoint s")
            with pytest.raises(psycopg.Error) as err:
                conn.execute(sql, args)
            assert err.value.sqlstate == "42501", sql
            conn.execute("rollback to savepoint s")
        # Citus refuses to change the distribution column at all (before any policy is asked)
        with pytest.raises(psycopg.Error) as err:
            conn.execute(f"update {table} set tenant_id = %s where body = 'new'", [cluster.other_customer])
        assert err.value.sqlstate == "0A000"
        conn.execute("rollback")
        in_context(conn, cluster.customer)
        # another tenant's rows cannot be touched: zero rows, not an error
        assert (
            conn.execute(f"update {table} set body = 'x' where tenant_id = %s", [cluster.sibling]).rowcount
            == 0
        )
        assert conn.execute(f"delete from {table} where tenant_id = %s", [cluster.sibling]).rowcount == 0
        conn.execute("rollback")
    with connect(cluster.dsn(COORD, cluster.app)) as conn:
        with pytest.raises(psycopg.Error) as err:
            conn.execute(f"insert into {table} (tenant_id, body) values (%s, 'none')", [cluster.customer])
        assert err.value.sqlstate == "TN003"


def test_partner_writes_only_itself_with_write_scope_own(cluster: Cluster) -> None:
    table = f"{cluster.schema}.orders"
    with connect(cluster.dsn(COORD, cluster.app)) as conn:
        in_context(conn, cluster.partner)
        assert conn.execute(
            f"insert into {table} (body) values ('p') returning tenant_id::text"
        ).fetchone() == (cluster.partner,)
        with pytest.raises(psycopg.Error) as err:
            conn.execute(f"insert into {table} (tenant_id, body) values (%s, 'c')", [cluster.customer])
        assert err.value.sqlstate == "42501"
        conn.execute("rollback")


# --- routing ----------------------------------------------------------------------------------------


def _task_count(conn: psycopg.Connection, sql: str, args: list[object]) -> int:
    plan = "\n".join(r[0] for r in conn.execute("explain " + sql, args).fetchall())
    m = re.search(r"Task Count: (\d+)", plan)
    assert m, plan
    return int(m.group(1))


def test_a_customer_query_with_its_tenant_id_runs_as_one_task(cluster: Cluster) -> None:
    table = f"{cluster.schema}.orders"
    with connect(cluster.dsn(COORD, cluster.app)) as conn:
        in_context(conn, cluster.customer)
        point = f"select * from {table} where tenant_id = %s and id = %s"
        listing = f"select * from {table} where tenant_id = %s order by created_at desc limit 50"
        assert _task_count(conn, point, [cluster.customer, 1]) == 1
        assert _task_count(conn, listing, [cluster.customer]) == 1
        assert len(conn.execute(listing, [cluster.customer]).fetchall()) == 3
        # the honest part: without the tenant in the query, Citus asks every shard (RLS still filters)
        assert _task_count(conn, f"select * from {table}", []) == 4
        assert _task_count(conn, f"select * from {table} where tenant_id = tenancy.current_tenant()", []) == 4
        # routed to another tenant's shard: the shard's policy still says no
        assert conn.execute(listing, [cluster.sibling]).fetchall() == []
        conn.execute("rollback")


# --- direct worker connections and forged or copied contexts ---------------------------------------


def test_app_login_on_a_worker_reads_no_shard_rows_without_context(cluster: Cluster) -> None:
    for table in cluster.tables:
        for shard, port, _ in placements(table):
            with connect(cluster.dsn(worker_dsn(port), cluster.app)) as conn:
                assert conn.execute(f"select count(*) from {shard}").fetchone() == (0,), shard
                assert conn.execute(f"select count(*) from {table}").fetchone() == (0,)
                conn.execute("set tenancy.ctx = 'forged'")
                assert conn.execute(f"select count(*) from {shard}").fetchone() == (0,), shard
                with pytest.raises(psycopg.Error) as err:  # the workers hold no tenants
                    conn.execute("select tenancy.set_tenant(%s, true)", [cluster.customer])
                assert err.value.sqlstate == "TN001"
                with pytest.raises(psycopg.Error) as err:
                    conn.execute(
                        f"insert into {shard} (tenant_id, id, body) values (%s, -1, 'x')", [cluster.customer]
                    )
                assert err.value.sqlstate == "TN003"


def _signed(cluster: Cluster, conn: psycopg.Connection, tenant: str) -> str:
    in_context(conn, tenant)
    return conn.execute("select current_setting('tenancy.sctx')").fetchone()[0]


def _customer_shard(cluster: Cluster) -> tuple[str, int]:
    table = f"{cluster.schema}.orders"
    with connect(COORD) as su:
        shardid = su.execute(
            "select get_shard_id_for_distribution_column(%s::regclass, %s::uuid)", [table, cluster.customer]
        ).fetchone()[0]
    for shard, port, sid in placements(table):
        if sid == shardid:
            return shard, port
    raise AssertionError("no placement")


def test_forged_signed_contexts_are_refused_on_a_worker(cluster: Cluster) -> None:
    shard, port = _customer_shard(cluster)
    with connect(cluster.dsn(COORD, cluster.app)) as coord:
        real = _signed(cluster, coord, cluster.customer)
        parts = real.split(".")
        forged = [
            ".".join([*parts[:-1], "0" * 32]),  # wrong MAC
            ".".join([*parts[:2], "0", "*", *parts[4:]]),  # widened to tier 0, old MAC
            ".".join([*parts[:5], str(int(parts[5]) + 10**9), *parts[6:]]),  # expiry pushed out, old MAC
            "c1." + ".".join(["x"] * 7),
            "garbage",
        ]
        coord.execute("rollback")
    with connect(cluster.dsn(worker_dsn(port), cluster.app)) as conn:
        for value in forged:
            conn.execute("begin")
            conn.execute("select set_config('tenancy.sctx', %s, true)", [value])
            assert conn.execute(f"select count(*) from {shard}").fetchone() == (0,), value
            conn.execute("rollback")


def test_a_copied_context_is_refused_elsewhere_and_later(cluster: Cluster) -> None:
    table = f"{cluster.schema}.orders"
    shard, port = _customer_shard(cluster)
    with connect(cluster.dsn(COORD, cluster.app)) as a:
        value = _signed(cluster, a, cluster.customer)
        assert counts(a, table) == {cluster.customer: 3}
        # the same value on a direct worker connection: signed for another session (global pid)
        with connect(cluster.dsn(worker_dsn(port), cluster.app)) as w:
            w.execute("begin")
            w.execute("select set_config('tenancy.sctx', %s, true)", [value])
            assert w.execute(f"select count(*) from {shard}").fetchone() == (0,)
            w.execute("rollback")
        # in another coordinator session: SET LOCAL reaches the workers, who refuse it
        with connect(cluster.dsn(COORD, cluster.app)) as b:
            b.execute("begin")
            b.execute("set local citus.propagate_set_commands = 'local'")
            b.execute(f"set local tenancy.sctx = '{value}'")
            assert b.execute(f"select count(*) from {table}").fetchone() == (0,)
            b.execute("rollback")
        a.execute("commit")
        # replayed in a later transaction of the session that signed it
        a.execute("begin")
        a.execute("set local citus.propagate_set_commands = 'local'")
        a.execute(f"set local tenancy.sctx = '{value}'")
        assert a.execute(f"select count(*) from {table}").fetchone() == (0,)
        a.execute("rollback")


def test_documented_residual_a_spoofed_gpid_on_a_direct_worker_connection(cluster: Cluster) -> None:
    """docs/citus.md says it: a client that reaches a worker directly and copies its own context can pose
    as its coordinator session (application_name) until the context expires. pg_hba must keep clients
    off the workers; this test keeps the sentence true."""
    shard, port = _customer_shard(cluster)
    with connect(cluster.dsn(COORD, cluster.app)) as a:
        value = _signed(cluster, a, cluster.customer)
        gpid = value.split(".")[6]
        a.execute("rollback")
    with connect(cluster.dsn(worker_dsn(port), cluster.app)) as w:
        w.execute(f"set application_name = 'citus_internal gpid={gpid}'")
        w.execute("begin")
        w.execute("select set_config('tenancy.sctx', %s, true)", [value])
        assert w.execute(f"select count(*) from {shard}").fetchone() == (3,)
        w.execute("rollback")


# --- TRUNCATE, which ignores row-level security: the privilege is the guard on Citus -----------------


def _truncate_holders(table: str) -> list[tuple[str, str]]:
    """(node:shard or 'coordinator', roles other than the owner granted TRUNCATE) wherever there are any."""
    acl = (
        "select coalesce(string_agg(a.grantee::regrole::text, ',' order by 1), '') from pg_class c,"
        " aclexplode(c.relacl) a where c.oid = '%s'::regclass and a.privilege_type = 'TRUNCATE'"
        " and a.grantee <> c.relowner"
    )
    with connect(COORD) as su:
        found = [("coordinator", su.execute(acl % table).fetchone()[0])]
        found += [
            (f"{port}:{shard}", result)
            for port, shard, result in su.execute(
                "select nodeport, shardid, result from run_command_on_placements(%s, %s)", [table, acl]
            ).fetchall()
        ]
    return [(where, roles) for where, roles in found if roles]


def test_registered_tables_have_no_trigger_on_the_coordinator_or_the_shards(cluster: Cluster) -> None:
    for table in cluster.tables:
        with connect(COORD) as su:
            assert su.execute(
                "select count(*) from pg_trigger where tgrelid = %s::regclass and not tgisinternal", [table]
            ).fetchone() == (0,)
            shards = su.execute(
                "select result from run_command_on_placements(%s,"
                " $$select count(*) from pg_trigger where tgrelid = '%%s'::regclass and not tgisinternal$$)",
                [table],
            ).fetchall()
        assert shards == [("0",)] * 4, shards


def test_register_table_revoked_the_truncate_that_all_had_granted(cluster: Cluster) -> None:
    """The fixture granted ALL (with TRUNCATE) before register_table, on both orders of distribution."""
    for table in cluster.tables:
        assert _truncate_holders(table) == [], table
        with connect(COORD) as su:
            assert su.execute(
                "select has_table_privilege(%s, %s, 'select, insert, update, delete')", [cluster.app, table]
            ).fetchone() == (True,)


@pytest.mark.parametrize("name", ["orders", "notes"])
def test_an_application_role_cannot_truncate_a_distributed_scoped_table(cluster: Cluster, name: str) -> None:
    table = f"{cluster.schema}.{name}"
    for role, tenant in ((cluster.app, cluster.customer), (cluster.platform, cluster.root)):
        with connect(cluster.dsn(COORD, role)) as conn:
            in_context(conn, tenant)
            with pytest.raises(psycopg.Error) as err:
                conn.execute(f"truncate {table}")
            assert err.value.sqlstate == "42501", role
            assert f"permission denied for table {name}" in str(err.value)
            conn.execute("rollback")
    # and on a worker, straight to a shard: Citus refuses changes to a shard (XX000), and with the
    # setting that lifts that (any role may set it) the privilege refuses it
    shard, port, _ = placements(table)[0]
    with connect(cluster.dsn(worker_dsn(port), cluster.app)) as conn:
        with pytest.raises(psycopg.Error) as err:
            conn.execute(f"truncate {shard}")
        assert "because it is a shard of a distributed table" in str(err.value)
        conn.execute("set citus.enable_manual_changes_to_shards = on")
        with pytest.raises(psycopg.Error) as err:
            conn.execute(f"truncate {shard}")
        assert err.value.sqlstate == "42501"
    with connect(COORD) as su:
        assert su.execute(f"select count(*) from {table}").fetchone()[0] >= sum(cluster.rows_of().values())


@pytest.mark.parametrize(
    "grant",
    [
        "grant all on {table} to {app}",
        "grant truncate on {table} to {app}",
        "grant select, truncate on {table} to public",
        "grant all on all tables in schema {schema} to {app}",
    ],
)
def test_a_grant_of_truncate_on_a_scoped_table_is_refused(cluster: Cluster, grant: str) -> None:
    table = f"{cluster.schema}.orders"
    sql = grant.format(table=table, app=cluster.app, schema=cluster.schema)
    with connect(COORD) as su:
        with pytest.raises(psycopg.Error) as err:
            su.execute(sql)
        assert err.value.sqlstate == "TN006", sql
        assert "cannot be granted to" in err.value.diag.message_primary
        assert "only its owner may truncate it" in err.value.diag.message_primary
        assert "grant select, insert, update, delete" in (err.value.diag.message_hint or "")
        su.execute(f"grant select on {table} to {cluster.app}")  # what is not TRUNCATE goes through
    assert _truncate_holders(table) == []


def test_check_reports_truncate_granted_past_the_guard_on_coordinator_and_shard(cluster: Cluster) -> None:
    table = f"{cluster.schema}.notes"
    with connect(COORD) as su:
        su.execute("set session_replication_role = replica")  # event triggers do not fire
        su.execute(f"grant truncate on {table} to {cluster.app}")
        su.execute("reset session_replication_role")
        try:
            rows = su.execute(
                "select code, severity, object, problem from tenancy.check() where object = %s", [table]
            ).fetchall()
            assert [r[:3] for r in rows if r[0] == "citus_truncate_granted"] == [
                ("citus_truncate_granted", "error", table)
            ], rows
            assert cluster.app in next(r[3] for r in rows if r[0] == "citus_truncate_granted")
            # Citus took the grant to the shards too
            shards = [
                r
                for r in su.execute("select code, object from tenancy.check()").fetchall()
                if r[0] == "citus_shard_truncate" and r[1].startswith(table)
            ]
            assert len(shards) == 4, shards
            with connect(cluster.dsn(COORD, cluster.app)) as conn:
                in_context(conn, cluster.customer)
                conn.execute("savepoint s")
                conn.execute(f"truncate {table}")  # what the finding warns about (rolled back)
                conn.execute("rollback")
        finally:
            su.execute(f"revoke truncate on {table} from {cluster.app}")
        assert _truncate_holders(table) == []
        # a grant made on a worker, straight to one shard
        shard, port, shardid = placements(table)[0]
        with connect(worker_dsn(port)) as w:
            w.execute(f"grant truncate on {shard} to {cluster.app}")
            try:
                found = [
                    r
                    for r in su.execute("select code, object, problem from tenancy.check()").fetchall()
                    if r[0] == "citus_shard_truncate"
                ]
                assert len(found) == 1 and f"shard {shardid} on" in found[0][1], found
                assert cluster.app in found[0][2]
            finally:
                w.execute(f"revoke truncate on {shard} from {cluster.app}")
        assert [r for r in _check(table) if r[0] == "error"] == []


def test_register_table_removes_a_trigger_left_from_before_without_the_setting(cluster: Cluster) -> None:
    """A table registered by an earlier version (with the DBA's setting) carries tenancy_truncate_guard;
    register_table and refresh_policies() drop it without the DBA turning the setting on."""
    table = f"{cluster.schema}.orders"
    with connect(COORD) as su:
        su.execute("begin")
        su.execute("set local citus.enable_unsafe_triggers = on")
        su.execute(
            f"create trigger tenancy_truncate_guard before truncate on {table}"
            " for each statement execute function tenancy._guard_truncate()"
        )
        su.execute("commit")
        assert su.execute("show citus.enable_unsafe_triggers").fetchone() == ("off",)
        assert su.execute("select tenancy.refresh_policies()").fetchone()[0] >= 2
        assert su.execute(
            "select count(*) from pg_trigger where tgrelid = %s::regclass and not tgisinternal", [table]
        ).fetchone() == (0,)
        assert su.execute("show citus.enable_unsafe_triggers").fetchone() == ("off",)
    test_registered_tables_have_no_trigger_on_the_coordinator_or_the_shards(cluster)


# --- check() covers the shards -----------------------------------------------------------------------


def _check(table: str) -> list[tuple[str, str, str]]:
    with connect(COORD) as su:
        rows = su.execute("select severity, object, problem from tenancy.check()").fetchall()
    return [r for r in rows if r[1].startswith(table)]


def test_check_is_clean_then_reports_rls_disabled_on_one_shard(cluster: Cluster) -> None:
    table = f"{cluster.schema}.orders"
    assert [r for r in _check(table) if r[0] == "error"] == []
    shard, port, shardid = placements(table)[0]
    with connect(worker_dsn(port)) as w:
        w.execute(f"alter table {shard} disable row level security")
        try:
            found = [r for r in _check(table) if r[0] == "error"]
            assert any(f"shard {shardid}" in r[1] and "row-level security" in r[2] for r in found), found
        finally:
            w.execute(f"alter table {shard} enable row level security")
    assert [r for r in _check(table) if r[0] == "error"] == []


def test_check_reports_a_policy_edited_or_added_on_one_shard(cluster: Cluster) -> None:
    table = f"{cluster.schema}.notes"
    shard, port, shardid = placements(table)[-1]
    with connect(worker_dsn(port)) as w:
        w.execute(f"create policy leak on {shard} for select using (true)")
        try:
            found = [r for r in _check(table) if r[0] == "error"]
            assert any(f"shard {shardid}" in r[1] and "policies differ" in r[2] for r in found), found
        finally:
            w.execute(f"drop policy leak on {shard}")
        w.execute(f"alter policy tenancy_select on {shard} using (true)")
        found = [r for r in _check(table) if r[0] == "error"]
        assert any(f"shard {shardid}" in r[1] for r in found), found
    with connect(COORD) as su:
        su.execute("select tenancy.register_table(%s)", [table])  # regenerates, on every shard
    assert [r for r in _check(table) if r[0] == "error"] == []


def test_check_reports_a_node_without_the_key(cluster: Cluster) -> None:
    port = _port(WORKERS[0])
    with connect(WORKERS[0]) as w:
        w.execute("delete from tenancy._cluster_key")
    try:
        with connect(COORD) as su:
            rows = su.execute(
                "select object, problem from tenancy.check() where severity = 'error'"
            ).fetchall()
        assert any(f":{port}" in o and "no cluster key" in p for o, p in rows), rows
    finally:
        with connect(COORD) as su:
            su.execute("select tenancy.citus_distribute_key()")


def test_the_key_is_not_readable_by_the_app(cluster: Cluster) -> None:
    for dsn in [COORD, *WORKERS]:
        with connect(cluster.dsn(dsn, cluster.app)) as conn:
            with pytest.raises(psycopg.Error) as err:
                conn.execute("select key from tenancy._cluster_key")
            assert err.value.sqlstate == "42501"
            with pytest.raises(psycopg.Error) as err:
                conn.execute("select tenancy._citus_sign(%s, 2::smallint, null, 0, 0)", [cluster.customer])
            assert err.value.sqlstate == "42501"
