"""The disposal log partitioned by month on PostgreSQL
(apps/core/partitions.py); SQLite keeps
the plain table."""

from django.db import migrations

from apps.core.partitions import table_partition, table_unpartition

TABLE, COLUMN = "retention_disposallogentry", "disposed_at"


def partition(apps, schema_editor):
    table_partition(schema_editor, table=TABLE, column=COLUMN)


def unpartition(apps, schema_editor):
    table_unpartition(schema_editor, table=TABLE, column=COLUMN)


class Migration(migrations.Migration):
    dependencies = [("retention", "0007_texts_per_language")]

    operations = [migrations.RunPython(partition, unpartition, elidable=False)]
