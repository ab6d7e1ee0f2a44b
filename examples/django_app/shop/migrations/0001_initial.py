import tenancy.django
from django.db import migrations, models
from tenancy.django import RegisterTable


class Migration(migrations.Migration):
    initial = True
    dependencies = []  # noqa: RUF012
    operations = [  # noqa: RUF012
        migrations.CreateModel(
            name="Order",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("tenant_id", tenancy.django.TenantField()),
                ("title", models.TextField()),
            ],
            options={"db_table": "shop_order"},
        ),
        RegisterTable("Order"),  # tenancy (3): row-level security on the table, after Django's own index
    ]
