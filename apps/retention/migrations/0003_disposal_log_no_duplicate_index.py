"""Drop the disposal log's single-column index on policy: the (policy, disposed_at)
index leads with it, and every disposal batch inserts a row per customer here. Only the
index goes (Django's AlterField would also drop and re-add the foreign key)."""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "retention_disposallogentry_policy_id_a1106052"


class Migration(migrations.Migration):
    dependencies = [("retention", "0002_seed_policies")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="disposallogentry",
                    name="policy",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="retention.retentionpolicy",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{INDEX}"',
                    reverse_sql=(
                        f'CREATE INDEX "{INDEX}" ON "retention_disposallogentry" '
                        '("policy_id")'
                    ),
                )
            ],
        ),
    ]
