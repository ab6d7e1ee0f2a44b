"""Django integration of tenancy.

settings.py::

    MIDDLEWARE = [..., "tenancy.django.TenancyMiddleware"]
    TENANCY = {"SOURCE": "host"}            # or "jwt": Authorization: Bearer <token> (or the cookie COOKIE)
    TEST_RUNNER = "tenancy.django.TenancyTestRunner"

Migrations::

    from tenancy.django import RegisterTable
    operations = [migrations.CreateModel(...), RegisterTable("order")]

See docs/identity.md and the README section "From Django / SQLAlchemy".
"""

from .middleware import TenancyMiddleware, stream_in_tenant, tenant
from .operations import RegisterTable
from .test import TenancyTestRunner

__all__ = ["RegisterTable", "TenancyMiddleware", "TenancyTestRunner", "stream_in_tenant", "tenant"]
