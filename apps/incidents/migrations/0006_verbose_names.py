"""Readable plural names in the admin ("access log entries", not "entrys"): Meta
options only, nothing changes in the database."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0005_texts_per_language"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="timelineentry",
            options={
                "ordering": ["at", "pk"],
                "verbose_name_plural": "timeline entries",
            },
        ),
    ]
