"""Readable plural names in the admin ("access log entries", not "entrys"): Meta
options only, nothing changes in the database."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("access", "0004_reveal_ends_with_interaction"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="accesslogentry",
            options={"verbose_name_plural": "access log entries"},
        ),
        migrations.AlterModelOptions(
            name="fieldpolicy",
            options={"verbose_name_plural": "field policies"},
        ),
    ]
