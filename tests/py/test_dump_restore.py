"""pg_dump / pg_restore keeps tenants, the catalog (and domains and tokens) and the generated policies;
DROP EXTENSION leaves nothing behind but the role and the schema created from the control file."""

from __future__ import annotations

import secrets
from pathlib import Path

from tenancy_testlib import connect, dump_and_restore, seed_tree


def test_dump_restore_round_trip(server_dsn: str, tmp_path: Path) -> None:
    src, dst = f"tenancy_dump_{secrets.token_hex(3)}", f"tenancy_restore_{secrets.token_hex(3)}"
    with connect(server_dsn) as conn:
        conn.execute(f"create database {src}")
        conn.execute(f"create database {dst}")
    try:
        with connect(f"{server_dsn} dbname={src}") as conn:
            conn.execute("set client_min_messages = warning")
            conn.execute("create extension tenancy cascade")
            tree = seed_tree(conn)
            # a parent updated after its children moves behind them in the heap (and in the dump)
            conn.execute("update tenancy.tenants set name = 'Renamed' where tier = 0")
            conn.execute(
                "create table public.orders (id bigserial primary key, tenant_id uuid not null, x int)"
            )
            conn.execute("select tenancy.register_table('public.orders')")
            conn.execute("insert into public.orders (tenant_id, x) select id, 1 from tenancy.tenants")
            conn.execute(
                "insert into tenancy.domain_mappings (domain, tenant_id) values ('acme.example.com', %s)",
                [tree.acme],
            )
            conn.execute(
                "select tenancy.set_tokens(%s, %s::jsonb)",
                [tree.root, '{"color": {"$type": "color", "error": {"$value": "#d32f2f"}}}'],
            )
            conn.execute("select tenancy.set_token_rule(%s, 'color.error', 'lock')", [tree.root])
            conn.execute(
                "select tenancy.set_tokens(%s, %s::jsonb)",
                [tree.brandsyncup, '{"color": {"brand": {"$value": "#0050b3"}}}'],
            )
            tokens_before = conn.execute("select tenancy.effective_tokens(%s)", [tree.acme]).fetchone()
            before = conn.execute(
                "select id, parent_id, tier, slug, name from tenancy.tenants order by id"
            ).fetchall()
        restore = dump_and_restore(server_dsn, src, dst, tmp_path / "db.dump")
        assert restore.returncode == 0, restore.stderr
        with connect(f"{server_dsn} dbname={dst}") as conn:
            after = conn.execute(
                "select id, parent_id, tier, slug, name from tenancy.tenants order by id"
            ).fetchall()
            assert after == before
            assert conn.execute("select relid::text from tenancy.scoped_tables").fetchall() == [("orders",)]
            policies = conn.execute(
                "select count(*) from pg_policy"
                " where polrelid = 'public.orders'::regclass and polname like 'tenancy_%'"
            ).fetchone()
            assert policies == (7,)
            flags = conn.execute(
                "select relrowsecurity, relforcerowsecurity from pg_class"
                " where oid = 'public.orders'::regclass"
            ).fetchone()
            assert flags == (True, True)
            assert conn.execute("select count(*) from tenancy.domain_mappings").fetchone() == (1,)
            tokens_after = conn.execute("select tenancy.effective_tokens(%s)", [tree.acme]).fetchone()
            assert tokens_after == tokens_before
            assert conn.execute("select count(*) from tenancy.token_rules").fetchone() == (1,)
            assert [
                r
                for r in conn.execute(
                    "select code, object, problem from tenancy.check() where severity = 'error'"
                )
                if r[0] != "role_superuser"
            ] == []
    finally:
        with connect(server_dsn) as conn:
            conn.execute(f"drop database if exists {src} with (force)")
            conn.execute(f"drop database if exists {dst} with (force)")


def test_drop_extension_leaves_nothing_but_role_and_schema(server_dsn: str) -> None:
    name = f"tenancy_drop_{secrets.token_hex(3)}"
    with connect(server_dsn) as conn:
        conn.execute(f"create database {name}")
    try:
        with connect(f"{server_dsn} dbname={name}") as conn:
            conn.execute("set client_min_messages = warning")
            before = conn.execute("select count(*) from pg_class").fetchone()
            conn.execute("create extension tenancy cascade")
            conn.execute("create table public.t (id int, tenant_id uuid)")
            conn.execute("select tenancy.register_table('public.t')")
            conn.execute("select tenancy.unregister_table('public.t')")
            conn.execute("drop table public.t")
            conn.execute("drop extension tenancy")
            assert conn.execute("select count(*) from pg_class").fetchone() == before
            assert conn.execute(
                "select count(*) from pg_proc where pronamespace = 'tenancy'::regnamespace"
            ).fetchone() == (0,)
            assert conn.execute(
                "select count(*) from pg_event_trigger where evtname like 'tenancy%'"
            ).fetchone() == (0,)
            assert conn.execute(
                "select count(*) from pg_type where typnamespace = 'tenancy'::regnamespace"
            ).fetchone() == (0,)
            assert conn.execute(
                "select count(*) from pg_roles where rolname = 'tenancy_platform'"
            ).fetchone() == (1,)
            conn.execute("drop schema tenancy")
            conn.execute("create extension tenancy")  # and it installs again
    finally:
        with connect(server_dsn) as conn:
            conn.execute(f"drop database if exists {name} with (force)")
