"""Readable plural names in the admin ("access log entries", not "entrys"): Meta
options only, nothing changes in the database."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0005_recipient_endpoint"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="changenoticedelivery",
            options={"verbose_name_plural": "change notice deliveries"},
        ),
    ]
