"""The access log partitioned by month on PostgreSQL
(apps/core/partitions.py); SQLite keeps
the plain table."""

from django.db import migrations

from apps.core.partitions import table_partition, table_unpartition

TABLE, COLUMN = "access_accesslogentry", "created_at"


def partition(apps, schema_editor):
    table_partition(schema_editor, table=TABLE, column=COLUMN)


def unpartition(apps, schema_editor):
    table_unpartition(schema_editor, table=TABLE, column=COLUMN)


class Migration(migrations.Migration):
    dependencies = [("access", "0005_verbose_names")]

    operations = [migrations.RunPython(partition, unpartition, elidable=False)]
