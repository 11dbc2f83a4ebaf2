"""The consent states in (updated_at, id) order: the sync feed's keyset
(`consent.selectors.consent_states_changed_since`)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("consent", "0005_honest_texts_and_notice_v2")]

    operations = [
        migrations.AddIndex(
            model_name="consentstate",
            index=models.Index(
                fields=["updated_at", "id"], name="consent_state_updated"
            ),
        ),
    ]
