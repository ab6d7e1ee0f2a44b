from django.db import models


class Order(models.Model):
    # filled by the database (tenancy._default_tenant()) when not given: the current tenant
    tenant_id = models.UUIDField(db_index=True, db_default=models.Func(function="tenancy._default_tenant"))
    title = models.TextField()

    class Meta:
        db_table = "shop_order"
