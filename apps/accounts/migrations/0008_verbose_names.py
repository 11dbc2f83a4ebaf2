"""Readable plural names in the admin ("access log entries", not "entrys"): Meta
options only, nothing changes in the database."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_oidc_identity"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="apitoken",
            options={"verbose_name": "API token"},
        ),
        migrations.AlterModelOptions(
            name="oidcidentity",
            options={
                "verbose_name": "OIDC identity",
                "verbose_name_plural": "OIDC identities",
            },
        ),
    ]
