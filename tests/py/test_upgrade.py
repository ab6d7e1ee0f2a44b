"""ALTER EXTENSION tenancy UPDATE from every released version gives what a fresh install gives.

A database is made with the released version (its install script is built from the project's own
git history by scripts/build-released.sh), filled with tenants of every tier, domain mappings, two
registered tables (one partitioned) with rows, token layers and rules, and login roles; then
upgraded. A second database gets a fresh install of this version and the same content. Their
catalogs must be equal: functions (signature, source, volatility, security, configuration, ACL,
comment), relations, columns and defaults, indexes, constraints, policies, triggers, event
triggers, types, comments, extension members and the config-dump list; the upgraded rows must be
intact, isolation must hold as the application role, and a dump of the upgraded database must
restore.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from tenancy_testlib import connect, dump_and_restore

ROOT = Path(__file__).resolve().parents[2]
CURRENT = re.search(r"default_version\s*=\s*'([^']+)'", (ROOT / "tenancy.control").read_text())[1]
RELEASED = sorted(
    {
        line.split()[0]
        for line in (ROOT / "sql/released.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    - {CURRENT}
)

ROOT_ID = "00000000-0000-4000-8000-000000000000"
BSU = "00000000-0000-4000-8000-000000000001"
ACME = "00000000-0000-4000-8000-000000000011"
GLOBEX = "00000000-0000-4000-8000-000000000012"
PXW = "00000000-0000-4000-8000-000000000002"
INITECH = "00000000-0000-4000-8000-000000000021"
ALL = [ROOT_ID, BSU, ACME, GLOBEX, PXW, INITECH]


@pytest.fixture(scope="module")
def roles(server_dsn: str) -> Iterator[dict[str, str]]:
    """Login roles (cluster-wide, so the same in both databases): app, platform, token admin."""
    suffix = secrets.token_hex(3)
    names = {k: f"upg_{k}_{suffix}" for k in ("app", "platform", "tokens")}
    password = secrets.token_hex(8)
    with connect(server_dsn) as conn:
        for name in names.values():
            conn.execute(f"create role {name} login password '{password}'")
    yield {**names, "password": password}
    with connect(server_dsn) as conn:
        for name in names.values():
            for db in conn.execute("select datname from pg_database where datname like 'tenancy_upg%'"):
                with connect(f"{server_dsn} dbname={db[0]}") as c2:
                    c2.execute(f"drop owned by {name}")
            conn.execute(f"drop role {name}")


def fill(conn: psycopg.Connection, roles: dict[str, str]) -> None:
    """The same content in any version: only calls 0.1.0 already had."""
    conn.execute("set client_min_messages = warning")
    for tid, parent, slug in [
        (ROOT_ID, None, "platform"),
        (BSU, ROOT_ID, "brandsyncup"),
        (PXW, ROOT_ID, "pixelworks"),
        (ACME, BSU, "acme"),
        (GLOBEX, BSU, "globex"),
        (INITECH, PXW, "initech"),
    ]:
        conn.execute(
            "insert into tenancy.tenants (id, parent_id, slug, created_at, updated_at)"
            " values (%s, %s, %s, '2026-01-01', '2026-01-01')",
            [tid, parent, slug],
        )
    conn.execute("update tenancy.tenants set status = 'suspended' where id = %s", [GLOBEX])
    conn.execute(
        "insert into tenancy.domain_mappings (domain, tenant_id, is_primary, created_at) values"
        " ('acme.example.com', %s, true, '2026-01-01'), ('*.brandsyncup.com', %s, false, '2026-01-01')",
        [ACME, BSU],
    )
    conn.execute(
        "create table public.orders (id bigint generated always as identity primary key,"
        " tenant_id uuid not null, note text, created_at timestamptz not null default '2026-01-02')"
    )
    conn.execute("create index orders_tenant_created on public.orders (tenant_id, created_at)")
    conn.execute("select tenancy.register_table('public.orders')")
    conn.execute("create table public.events (tenant_id uuid, id bigint, kind text) partition by list (kind)")
    conn.execute("create table public.events_a partition of public.events for values in ('a')")
    conn.execute("create table public.events_b partition of public.events for values in ('b')")
    conn.execute(
        "select tenancy.register_table('public.events', write_scope => 'visible', shared_rows => true)"
    )
    conn.execute(
        "insert into public.orders (tenant_id, note) select t.id, 'order ' || g"
        " from unnest(%s::uuid[]) t(id), generate_series(1, 3) g",
        [ALL],
    )
    conn.execute(
        "insert into public.events (tenant_id, id, kind)"
        " select t.id, g, case when g %% 2 = 0 then 'a' else 'b' end"
        " from unnest(%s::uuid[]) t(id), generate_series(1, 4) g",
        [ALL],
    )
    conn.execute("insert into public.events (tenant_id, id, kind) values (null, 0, 'a')")
    conn.execute(
        "select tenancy.set_tokens(%s, %s::jsonb)",
        [
            ROOT_ID,
            '{"color": {"$type": "color", "error": {"$value": "#d32f2f"}, "bg": {"$value": "#ffffff"}}}',
        ],
    )
    conn.execute("select tenancy.set_token_rule(%s, 'color.error', 'lock')", [ROOT_ID])
    conn.execute(
        "select tenancy.set_tokens(%s, %s::jsonb)",
        [BSU, '{"color": {"brand": {"$value": "#0050b3"}}}'],
    )
    conn.execute(
        "select tenancy.set_token_rule(%s, 'color.brand', 'min_contrast', %s::jsonb)",
        [BSU, '{"against": "color.bg", "ratio": 4.5}'],
    )
    conn.execute("update tenancy.token_layers set updated_at = '2026-01-03'")
    conn.execute("update tenancy.token_rules set created_at = '2026-01-03'")
    conn.execute("select tenancy.grant_app(%s)", [roles["app"]])
    conn.execute("select tenancy.grant_platform(%s)", [roles["platform"]])
    conn.execute("select tenancy.grant_token_admin(%s)", [roles["tokens"]])
    for role in (roles["app"], roles["platform"]):
        conn.execute(
            f"grant select, insert, update, delete on public.orders, public.events, public.events_a to {role}"
        )


SNAPSHOT = {
    "functions": """
        select p.proname, pg_get_function_identity_arguments(p.oid), pg_get_function_result(p.oid),
            p.prosrc, p.provolatile, p.prosecdef, p.proconfig, p.proparallel, p.proisstrict, l.lanname,
            (select array_agg(a.grantee::regrole::text || ':' || a.privilege_type
                order by a.grantee::regrole::text || ':' || a.privilege_type)
             from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a),
            obj_description(p.oid, 'pg_proc')
        from pg_proc p join pg_language l on l.oid = p.prolang
        where p.pronamespace = 'tenancy'::regnamespace
    """,
    "relations": """
        select c.oid::regclass::text, c.relkind, c.relrowsecurity, c.relforcerowsecurity, c.reloptions,
            c.relispartition, c.relpersistence,
            (select array_agg(a.grantee::regrole::text || ':' || a.privilege_type
                order by a.grantee::regrole::text || ':' || a.privilege_type)
             from aclexplode(c.relacl) a),
            obj_description(c.oid, 'pg_class')
        from pg_class c
        where c.relnamespace in ('tenancy'::regnamespace, 'public'::regnamespace)
    """,
    "columns": """
        select a.attrelid::regclass::text, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
            a.attnotnull, a.attidentity, pg_get_expr(d.adbin, d.adrelid),
            col_description(a.attrelid, a.attnum)
        from pg_attribute a
        join pg_class c on c.oid = a.attrelid
        left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
        where c.relnamespace in ('tenancy'::regnamespace, 'public'::regnamespace)
          and c.relkind in ('r', 'p', 'v', 'm', 'c', 'f') and a.attnum > 0 and not a.attisdropped
    """,
    "indexes": """
        select i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        from pg_index i join pg_class c on c.oid = i.indrelid
        where c.relnamespace in ('tenancy'::regnamespace, 'public'::regnamespace)
    """,
    "constraints": """
        select con.conrelid::regclass::text, con.conname, pg_get_constraintdef(con.oid), con.condeferrable
        from pg_constraint con join pg_class c on c.oid = con.conrelid
        where c.relnamespace in ('tenancy'::regnamespace, 'public'::regnamespace)
    """,
    "policies": """
        select schemaname, tablename, policyname, permissive, roles, cmd, qual, with_check from pg_policies
    """,
    "triggers": """
        select t.tgrelid::regclass::text, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled
        from pg_trigger t where not t.tgisinternal
    """,
    "event_triggers": """
        select e.evtname, e.evtevent, e.evtfoid::regprocedure::text, e.evttags, e.evtenabled
        from pg_event_trigger e
    """,
    "types": """
        select t.typname, t.typtype,
            (select array_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) order by a.attnum)
             from pg_attribute a where a.attrelid = t.typrelid and a.attnum > 0)
        from pg_type t
        where t.typnamespace = 'tenancy'::regnamespace and (t.typtype <> 'c' or t.typrelid in (
            select oid from pg_class where relkind = 'c'))
    """,
    "extension": """
        select x.extversion, (select array_agg(c::regclass::text order by 1) from unnest(x.extconfig) c),
            x.extcondition, x.extrelocatable, x.extnamespace::regnamespace::text
        from pg_extension x where x.extname = 'tenancy'
    """,
    "members": """
        select pg_describe_object(d.classid, d.objid, d.objsubid)
        from pg_depend d join pg_extension x on x.oid = d.refobjid
        where d.refclassid = 'pg_extension'::regclass and d.deptype = 'e' and x.extname = 'tenancy'
    """,
    "comments": """
        select pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description
        from pg_description d
        where d.objoid in (
            select d2.objid from pg_depend d2 join pg_extension x on x.oid = d2.refobjid
            where d2.deptype = 'e' and x.extname = 'tenancy'
        ) or d.objoid = 'tenancy'::regnamespace
    """,
    "schema": "select nspname, nspacl::text[] from pg_namespace where nspname in ('tenancy', 'public')",
    "sequence_acl": """
        select c.oid::regclass::text,
            (select array_agg(a.grantee::regrole::text || ':' || a.privilege_type
                order by a.grantee::regrole::text || ':' || a.privilege_type)
             from aclexplode(c.relacl) a)
        from pg_class c where c.relkind = 'S' and c.relnamespace = 'tenancy'::regnamespace
    """,
    "data": """
        select 'tenants', row(id, parent_id, tier, slug, name, status, external_id, settings)::text
        from tenancy.tenants
        union all select 'domains', row(m.*)::text from tenancy.domain_mappings m
        union all select 'scoped', row(s.relid::text, s.tenant_column, s.write_scope, s.shared_rows)::text
        from tenancy.scoped_tables s
        union all select 'layers', row(l.tenant_id, l.tokens)::text from tenancy.token_layers l
        union all select 'rules', row(r.tenant_id, r.path, r.rule, r.params)::text from tenancy.token_rules r
        union all select 'orders', row(o.*)::text from public.orders o
        union all select 'events', row(e.*)::text from public.events e
    """,
}


def snapshot(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    return {name: sorted(conn.execute(sql).fetchall(), key=repr) for name, sql in SNAPSHOT.items()}


def _database(server_dsn: str, label: str) -> str:
    name = f"tenancy_upg_{label}_{secrets.token_hex(3)}"
    with connect(server_dsn) as conn:
        conn.execute(f"create database {name}")
    return name


def _drop(server_dsn: str, *names: str) -> None:
    with connect(server_dsn) as conn:
        for name in names:
            conn.execute(f"drop database if exists {name} with (force)")


@pytest.fixture(scope="module", params=RELEASED)
def upgraded(
    request: pytest.FixtureRequest, server_dsn: str, roles: dict[str, str]
) -> Iterator[tuple[str, str]]:
    """(upgraded database, fresh database), both filled the same way."""
    old = _database(server_dsn, "old")
    new = _database(server_dsn, "new")
    try:
        with connect(f"{server_dsn} dbname={old}") as conn:
            conn.execute("set client_min_messages = warning")
            conn.execute(f"create extension tenancy version '{request.param}' cascade")
            fill(conn, roles)
            conn.execute("alter extension tenancy update")
        with connect(f"{server_dsn} dbname={new}") as conn:
            conn.execute("set client_min_messages = warning")
            conn.execute("create extension tenancy cascade")
            fill(conn, roles)
        yield old, new
    finally:
        _drop(server_dsn, old, new)


def test_released_versions_are_known() -> None:
    assert RELEASED, "sql/released.txt names no released version before this one"


@pytest.mark.parametrize("part", list(SNAPSHOT))
def test_upgrade_equals_fresh_install(upgraded: tuple[str, str], server_dsn: str, part: str) -> None:
    old, new = upgraded
    with connect(f"{server_dsn} dbname={old}") as a, connect(f"{server_dsn} dbname={new}") as b:
        got, want = snapshot(a)[part], snapshot(b)[part]
    missing = [row for row in want if row not in got]
    extra = [row for row in got if row not in want]
    assert (missing, extra) == ([], []), f"{part}: upgraded lacks {missing[:5]} and has extra {extra[:5]}"


def test_upgraded_isolation_as_the_application_role(
    upgraded: tuple[str, str], server_dsn: str, roles: dict[str, str]
) -> None:
    old, _ = upgraded
    dsn = f"{server_dsn} dbname={old} user={roles['app']} password={roles['password']}"
    with connect(dsn) as conn:
        assert conn.execute("select count(*) from public.orders").fetchone() == (0,)
        with conn.transaction():
            conn.execute("select tenancy.set_tenant(%s, true)", [ACME])
            rows = conn.execute("select distinct tenant_id::text from public.orders").fetchall()
            assert rows == [(ACME,)]
            conn.execute("insert into public.orders (note) values ('after upgrade')")
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute("insert into public.orders (tenant_id, note) values (%s, 'x')", [INITECH])
        with conn.transaction():
            conn.execute("select tenancy.set_tenant(%s, true)", [BSU])
            seen = {r[0] for r in conn.execute("select distinct tenant_id::text from public.events")}
            assert seen == {BSU, ACME, GLOBEX, None}
            assert conn.execute("select count(*) from public.events_a").fetchone() == (7,)
        for tenant, sqlstate in ((ROOT_ID, "TN007"), (GLOBEX, "TN002")):
            with pytest.raises(psycopg.Error) as refused:
                conn.execute("select tenancy.set_tenant(%s)", [tenant])
            assert refused.value.sqlstate == sqlstate
        with conn.transaction():
            conn.execute("select tenancy.set_tenant_for_domain('acme.example.com', true)")
            assert conn.execute(
                "select tenancy.effective_tokens() #>> '{color,error,$value}'"
            ).fetchone() == ("#d32f2f",)


def test_upgraded_database_dumps_and_restores(
    upgraded: tuple[str, str], server_dsn: str, tmp_path: Path
) -> None:
    old, _ = upgraded
    restored = _database(server_dsn, "restored")
    try:
        result = dump_and_restore(server_dsn, old, restored, tmp_path / "upgraded.dump")
        assert result.returncode == 0, result.stderr
        with connect(f"{server_dsn} dbname={old}") as a, connect(f"{server_dsn} dbname={restored}") as b:
            for part in ("data", "policies", "functions", "triggers", "event_triggers"):
                got, want = snapshot(b)[part], snapshot(a)[part]
                missing = [row for row in want if row not in got]
                extra = [row for row in got if row not in want]
                assert (missing, extra) == ([], []), f"{part}: restored lacks {missing[:3]}, has {extra[:3]}"

    finally:
        _drop(server_dsn, restored)
