"""Readable plural names in the admin ("access log entries", not "entrys"): Meta
options only, nothing changes in the database."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("retention", "0005_action_label_pseudonymise"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="disposallogentry",
            options={"verbose_name_plural": "disposal log entries"},
        ),
        migrations.AlterModelOptions(
            name="disposalprogress",
            options={"verbose_name_plural": "disposal progress"},
        ),
        migrations.AlterModelOptions(
            name="retentionpolicy",
            options={"ordering": ["code"], "verbose_name_plural": "retention policies"},
        ),
    ]
