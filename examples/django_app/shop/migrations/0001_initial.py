from django.db import migrations, models
from tenancy.django import RegisterTable


class Migration(migrations.Migration):
    initial = True
    dependencies = []  # noqa: RUF012
    operations = [  # noqa: RUF012
        migrations.CreateModel(
            name="Order",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "tenant_id",
                    models.UUIDField(
                        db_index=True, db_default=models.Func(function="tenancy._default_tenant")
                    ),
                ),
                ("title", models.TextField()),
            ],
            options={"db_table": "shop_order"},
        ),
        RegisterTable("order"),  # tenancy (3): row-level security on the table, after Django's own index
    ]
