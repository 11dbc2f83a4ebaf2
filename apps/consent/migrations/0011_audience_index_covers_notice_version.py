"""The audience index carries the notice version (its last column), so that an
audience is read from the index alone (PostgreSQL's index-only scan)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0010_verbose_names"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="consentstate",
            name="consent_state_granted",
        ),
        migrations.AddIndex(
            model_name="consentstate",
            index=models.Index(
                condition=models.Q(("granted", True)),
                fields=["purpose", "customer", "notice_version"],
                name="consent_state_granted",
            ),
        ),
    ]
