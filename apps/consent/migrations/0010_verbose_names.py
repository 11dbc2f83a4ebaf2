"""Readable plural names in the admin ("access log entries", not "entrys"): Meta
options only, nothing changes in the database."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0009_texts_per_language"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="noticedelivery",
            options={"verbose_name_plural": "notice deliveries"},
        ),
        migrations.AlterModelOptions(
            name="optinrequest",
            options={"verbose_name": "opt-in request"},
        ),
    ]
