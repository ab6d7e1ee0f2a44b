"""Django integration of tenancy (README, "Django").

settings.py::

    MIDDLEWARE = [..., "tenancy.django.TenancyMiddleware"]
    TENANCY = {"SOURCE": "host"}            # or "jwt": Authorization: Bearer <token> (or the cookie COOKIE)
    TEST_RUNNER = "tenancy.django.TenancyTestRunner"

Models::

    from tenancy.django import TenantField
    class Order(models.Model):
        tenant_id = TenantField()           # filled by the database from the current context

Migrations::

    from tenancy.django import RegisterTable
    operations = [migrations.CreateModel(name="Order", ...), RegisterTable("Order")]

See the README section "Django" and docs/identity.md.
"""

from .fields import TenantField
from .middleware import TenancyMiddleware, stream_in_tenant, tenant
from .operations import RegisterTable
from .test import TenancyTestRunner

__all__ = [
    "RegisterTable",
    "TenancyMiddleware",
    "TenancyTestRunner",
    "TenantField",
    "stream_in_tenant",
    "tenant",
]
