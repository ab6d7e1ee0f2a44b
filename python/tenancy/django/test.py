"""The test runner: the test database has the extension, and the app's tables are registered (so
row-level security is on in tests, as in production).

    TEST_RUNNER = "tenancy.django.TenancyTestRunner"
    DATABASES["default"]["TEST"] = {"TEMPLATE": "tenancy_template"}   # a database with the extension
    TENANCY = {"TEST_SUPERUSER_DSN": "..."}   # optional: creates that template when missing

Django creates the test database (the role needs CREATEDB) from the template, so the extension is
there before migrations run (CREATE EXTENSION needs a superuser: hence the template). Roles are
cluster-wide, so grant_app / grant_migrator given once stay valid in every test database. After the
migrations, every model with the tenant column that is not registered yet (no RegisterTable in its
migrations) is registered, and the runner fails when one cannot be.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connections
from django.test.runner import DiscoverRunner


def ensure_template(superuser_dsn: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(superuser_dsn, autocommit=True) as conn:
        if conn.execute("select 1 from pg_database where datname = %s", [name]).fetchone() is None:
            # is_template: any role with CREATEDB may copy it
            conn.execute(sql.SQL("create database {} is_template true").format(sql.Identifier(name)))
    dsn = f"{superuser_dsn} dbname={name}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("set client_min_messages = warning")
        conn.execute("create extension if not exists tenancy cascade")


def register_models(using: str = "default", tenant_column: str = "tenant_id") -> list[str]:
    """Register every model table that has the tenant column and is not registered; their names."""
    done = []
    with connections[using].cursor() as cur:
        for model in apps.get_models():
            names = {f.column for f in model._meta.concrete_fields}
            if tenant_column not in names or model._meta.proxy or not model._meta.managed:
                continue
            table = model._meta.db_table
            cur.execute("select count(*) from tenancy.scoped_tables where relid = to_regclass(%s)", [table])
            if cur.fetchone()[0] == 0:
                cur.execute("select tenancy.register_table(%s::regclass, %s)", [table, tenant_column])
                done.append(table)
    return done


class TenancyTestRunner(DiscoverRunner):
    def setup_databases(self, **kwargs: Any) -> Any:
        config = getattr(settings, "TENANCY", {})
        dsn = config.get("TEST_SUPERUSER_DSN")
        for alias in connections:
            template = connections[alias].settings_dict.get("TEST", {}).get("TEMPLATE")
            if dsn and template:
                ensure_template(dsn, template)
        result = super().setup_databases(**kwargs)
        for alias in connections:
            register_models(alias, config.get("TENANT_COLUMN", "tenant_id"))
        return result
