"""A change notice keeps what changed (`parts`), so that each customer is told in
their language; notices from before keep an empty dict and are told in English."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0006_verbose_names"),
    ]

    operations = [
        migrations.AddField(
            model_name="changenotice",
            name="parts",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
