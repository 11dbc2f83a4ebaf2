"""A reveal belongs to the interaction it was opened under and ends with it.

The foreign key was there (nullable: governance roles reveal without an interaction);
only its help text changes, which alters nothing in the database. Live agents' reveals
that no open interaction accounts for (none recorded, or one since closed or expired)
cannot be attributed to a case that still stands: they end now. Reveals are minutes
long and limited per hour, so the update touches few rows. Going back leaves them
ended: an ended reveal reopens nothing.
"""

from django.db import migrations, models
from django.db.models import Q
from django.utils import timezone

AGENT_ROLES = ("support_agent", "delivery_agent")


def end_unattributable(apps, schema_editor):
    Reveal = apps.get_model("access", "Reveal")
    now = timezone.now()
    Reveal.objects.filter(
        Q(interaction__isnull=True)
        | Q(interaction__closed_at__isnull=False)
        | Q(interaction__expires_at__lte=now),
        status="granted",
        expires_at__gt=now,
        staff__role__in=AGENT_ROLES,
    ).update(expires_at=now)


class Migration(migrations.Migration):
    dependencies = [
        ("access", "0003_access_log_no_duplicate_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="reveal",
            name="interaction",
            field=models.ForeignKey(
                blank=True,
                help_text=(
                    "The case it was opened under; it ends with it. None for "
                    "governance roles, who see customers without one (or once the "
                    "case is disposed of)."
                ),
                null=True,
                on_delete=models.deletion.SET_NULL,
                related_name="+",
                to="access.interaction",
            ),
        ),
        migrations.RunPython(end_unattributable, migrations.RunPython.noop),
    ]
