"""Drop the access log's single-column indexes on staff and customer: the composite
(staff, created_at) and (customer, created_at) indexes lead with those columns and
serve the same lookups, and every staff read inserts into this table.

Only the indexes go. Django's own AlterField would also drop and re-add both foreign
keys, which re-checks every row of what is the largest table in the schema.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

INDEXES = {
    "access_accesslogentry_customer_id_6ea576c0": "customer_id",
    "access_accesslogentry_staff_id_178e8bcc": "staff_id",
}


class Migration(migrations.Migration):
    dependencies = [
        ("access", "0002_seed_policy"),
        ("customers", "0002_erased_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="accesslogentry",
                    name="customer",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="customers.customer",
                    ),
                ),
                migrations.AlterField(
                    model_name="accesslogentry",
                    name="staff",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=(
                        f'CREATE INDEX "{name}" ON "access_accesslogentry" ("{column}")'
                    ),
                )
                for name, column in INDEXES.items()
            ],
        ),
    ]
