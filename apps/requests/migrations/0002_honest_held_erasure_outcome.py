"""Correct the outcome shown to customers whose erasure a legal hold stopped: it said
their data's use was restricted, and nothing restricts it. The hold's reason is kept."""

from django.db import migrations

OLD = (
    "We cannot erase your data yet: we are legally required to keep it (",
    "). We have restricted its use to that purpose only.",
)
NEW = (
    "We cannot erase your data yet: the law requires us to keep it (",
    "). Please ask again once that obligation has ended.",
)


def _rewrite(apps, old: tuple[str, str], new: tuple[str, str]) -> None:
    DataRequest = apps.get_model("dsr", "DataRequest")
    rows = DataRequest.objects.filter(
        kind="erasure", outcome__startswith=old[0], outcome__endswith=old[1]
    )
    for request in rows.only("pk", "outcome").iterator():
        reason = request.outcome[len(old[0]) : -len(old[1])]
        request.outcome = f"{new[0]}{reason}{new[1]}"
        request.save(update_fields=["outcome"])


def correct(apps, schema_editor):
    _rewrite(apps, OLD, NEW)


def restore(apps, schema_editor):
    _rewrite(apps, NEW, OLD)


class Migration(migrations.Migration):
    dependencies = [("dsr", "0001_initial")]

    operations = [migrations.RunPython(correct, restore)]
