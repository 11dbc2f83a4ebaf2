"""Clock histograms for the retention report (apps/retention/clocks.py): the compacted
counts, the deltas, and on PostgreSQL the statement triggers that write the deltas.
After migrating a database with rows, `retention_report --rebuild` counts them.

The functions are written from the models and the policies' clocks as they are when
this runs (`clocks._functions`); a later change to either needs a migration that
installs them again, with the new fingerprint (tests/retention/test_clock_counts.py
compares the code's functions with FUNCTIONS_SHA256 of the latest such migration)."""

from django.db import migrations, models

from apps.retention.clocks import clock_triggers_install, clock_triggers_remove

# sha256 of json.dumps(clocks._functions(), sort_keys=True) when this was written.
FUNCTIONS_SHA256 = "ad50cf874016d5935b37da25a41bc07b31f6177b5a802c60348ceb5da11da858"


def install(apps, schema_editor):
    clock_triggers_install(schema_editor)


def remove(apps, schema_editor):
    clock_triggers_remove(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("retention", "0008_disposal_log_by_month"),
        # The access log's table is swapped for a partitioned one there: the triggers
        # go on the new table.
        ("access", "0006_access_log_by_month"),
        ("consent", "0010_verbose_names"),
        ("customers", "0006_language"),
    ]

    operations = [
        migrations.CreateModel(
            name="ClockDelta",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("scope", models.CharField(max_length=48)),
                ("day", models.DateField()),
                ("rows", models.BigIntegerField()),
            ],
        ),
        migrations.CreateModel(
            name="ClockCount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                ("scope", models.CharField(max_length=48)),
                ("day", models.DateField()),
                ("rows", models.BigIntegerField()),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("scope", "day"), name="retention_clock_day"
                    )
                ],
            },
        ),
        migrations.RunPython(install, remove, elidable=False),
    ]
