from django.db import models
from tenancy.django import TenantField


class Order(models.Model):
    tenant_id = TenantField()  # filled by the database from the current tenant context
    title = models.TextField()

    class Meta:
        db_table = "shop_order"
