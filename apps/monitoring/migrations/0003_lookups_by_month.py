"""Staff lookups partitioned by month on PostgreSQL
(apps/core/partitions.py); SQLite keeps
the plain table."""

from django.db import migrations

from apps.core.partitions import table_partition, table_unpartition

TABLE, COLUMN = "monitoring_stafflookup", "created_at"


def partition(apps, schema_editor):
    table_partition(schema_editor, table=TABLE, column=COLUMN)


def unpartition(apps, schema_editor):
    table_unpartition(schema_editor, table=TABLE, column=COLUMN)


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0002_alert_notified_at")]

    operations = [migrations.RunPython(partition, unpartition, elidable=False)]
