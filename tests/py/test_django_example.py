"""examples/django_app against the real cluster: migrate as a non-superuser (grant_migrator), then the
example's own tests under tenancy.django.TenancyTestRunner (two hosts, isolation, cross-tenant write
refused, 404/403, streaming, RLS on in the test database)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import jwt_factory as jf
import pytest
from psycopg.types.json import Jsonb
from tenancy_testlib import connect

pytest.importorskip("django")

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "examples" / "django_app"
ISS = "https://clerk.shop.example"
SIGNER = jf.rsa_signer("shop-1")


def _params(dsn: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in dsn.split())


def test_django_example(server_dsn: str) -> None:
    suffix = secrets.token_hex(3)
    role, password = f"django_{suffix}", secrets.token_hex(8)
    db, template = f"shop_{suffix}", f"tenancy_tpl_{suffix}"
    with connect(server_dsn) as conn:
        conn.execute(f"create role {role} login createdb password '{password}'")
        conn.execute(f"create database {db} owner {role}")
        conn.execute(f"create database {template} is_template true")
    try:
        for name in (db, template):
            with connect(f"{server_dsn} dbname={name}") as conn:
                conn.execute("set client_min_messages = warning")
                conn.execute("create extension tenancy cascade")
                conn.execute(f"grant create on schema public to {role}")
                conn.execute("select tenancy.grant_app(%s), tenancy.grant_migrator(%s)", [role, role])
                root = conn.execute(
                    "insert into tenancy.tenants (tier, slug, name) values (0, 'p', 'P') returning id"
                )
                rid = root.fetchone()[0]  # type: ignore[index]
                for slug, status in (("acme", "active"), ("globex", "active"), ("dormant", "suspended")):
                    tid = conn.execute(
                        "insert into tenancy.tenants (parent_id, tier, slug, name, status)"
                        " values (%s, 1, %s, %s, %s) returning id",
                        [rid, slug, slug, status],
                    ).fetchone()[0]  # type: ignore[index]
                    conn.execute(
                        "update tenancy.tenants set external_id = %s where id = %s", [f"org_{slug}", tid]
                    )
                    conn.execute("insert into tenancy.domain_mappings (domain, tenant_id) values (%s, %s)",
                                 [f"{slug}.test", tid])  # fmt: skip
                conn.execute("select tenancy.add_jwt_issuer(%s, %s)", [ISS, Jsonb(jf.jwks([SIGNER]))])
        now = int(time.time())
        good = SIGNER.sign({"iss": ISS, "exp": now + 300, "org_id": "org_acme"})
        head, _, sig = good.split(".")
        forged = f"{head}.{jf.encode_json({'iss': ISS, 'exp': now + 300, 'org_id': 'org_globex'})}.{sig}"
        p = _params(server_dsn)
        env = dict(os.environ, DJANGO_DB_HOST=p.get("host", ""), DJANGO_DB_PORT=p.get("port", ""),
                   DJANGO_DB_NAME=db, DJANGO_DB_USER=role, DJANGO_DB_PASSWORD=password,
                   DJANGO_TEST_TEMPLATE=template, PYTHONPATH=str(ROOT / "python"),
                   SHOP_TOKEN_ACME=good, SHOP_TOKEN_FORGED=forged)  # fmt: skip
        env.pop("DJANGO_SETTINGS_MODULE", None)
        manage = [sys.executable, str(APP / "manage.py")]
        out = subprocess.run(
            [*manage, "migrate", "-v", "0"], env=env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        # TenantField deconstructs to what the migration says: no change to make
        out = subprocess.run([*manage, "makemigrations", "shop", "--check", "--dry-run"], env=env,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
        assert out.returncode == 0, out.stdout + out.stderr
        with connect(f"{server_dsn} dbname={db}") as conn:
            row = conn.execute(
                "select count(*) from tenancy.scoped_tables where relid = 'shop_order'::regclass"
            )
            assert row.fetchone() == (1,)
        out = subprocess.run([*manage, "test", "shop", "--noinput", "-v", "2"], env=env, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Ran 9 tests" in out.stderr and "OK" in out.stderr, out.stderr
    finally:
        with connect(server_dsn) as conn:
            conn.execute(f"alter database {template} is_template false")
            for name in (db, template, f"test_{db}"):
                conn.execute(f"drop database if exists {name} with (force)")
            conn.execute(f"drop role if exists {role}")
