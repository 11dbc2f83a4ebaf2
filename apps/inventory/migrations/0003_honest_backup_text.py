"""Correct the seeded security text of the backups system, shown on every customer's
My data page: backups taken before an erasure still hold the data until they expire.
A text an administrator has edited since is left alone."""

from django.db import migrations

SYSTEM = "Encrypted backups"
OLD = (
    "Encrypted at rest; erased customers' keys are gone, so their data in backups "
    "cannot be read."
)
NEW = (
    "Encrypted at rest. If your data is erased, backups taken before the erasure still "
    "hold it until they expire, 35 days later."
)


def correct(apps, schema_editor):
    apps.get_model("inventory", "System").objects.filter(
        name=SYSTEM, security=OLD
    ).update(security=NEW)


def restore(apps, schema_editor):
    apps.get_model("inventory", "System").objects.filter(
        name=SYSTEM, security=NEW
    ).update(security=OLD)


class Migration(migrations.Migration):
    dependencies = [("inventory", "0002_seed_inventory")]

    operations = [migrations.RunPython(correct, restore)]
