"""Seed the need-to-know matrix (a frozen copy of apps/access/defaults.py)."""

from django.db import migrations

CATEGORIES = ("identity", "contact", "address", "financial", "sensitive", "free_text")
F, M, H = "full", "masked", "hidden"
POLICY = {
    "support_agent": {
        "identity": (F, False),
        "contact": (M, True),
        "address": (M, False),
        "financial": (M, False),
        "sensitive": (H, False),
        "free_text": (H, False),
    },
    "delivery_agent": {
        "identity": (F, False),
        "contact": (H, False),
        "address": (F, False),
        "financial": (H, False),
        "sensitive": (H, False),
        "free_text": (H, False),
    },
    "compliance_officer": dict.fromkeys(CATEGORIES, (M, False)),
    "privacy_admin": dict.fromkeys(CATEGORIES, (M, True)),
}


def seed(apps, schema_editor):
    FieldPolicy = apps.get_model("access", "FieldPolicy")
    for role, cells in POLICY.items():
        for category, (visibility, revealable) in cells.items():
            FieldPolicy.objects.get_or_create(
                role=role,
                category=category,
                defaults={"visibility": visibility, "revealable": revealable},
            )


def unseed(apps, schema_editor):
    apps.get_model("access", "FieldPolicy").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("access", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
