"""Where a typical business keeps personal data and who receives it."""

from django.db import migrations

SYSTEMS = [
    ("Amanah database", "Customer records, encrypted field by field.", "ID", "Jakarta",
     ["identity", "contact", "address", "financial", "sensitive", "free_text"],
     "As the retention policies say", "AES-256-GCM per field, a key per customer; "
     "access on a need-to-know basis, every read logged.", 0),
    ("Encrypted backups", "Nightly backups of the database.", "ID", "Surabaya",
     ["identity", "contact", "address", "financial", "sensitive", "free_text"],
     "35 days", "Encrypted at rest. If your data is erased, backups taken before the "
     "erasure still hold it until they expire, 35 days later.", 35),
    ("Email provider", "Sends our emails.", "US", "", ["contact"], "30 days of logs",
     "TLS in transit; no marketing use by the provider.", 0),
    ("Payment processor", "Takes card payments; we keep only its token and the last 4 "
     "digits.", "SG", "", ["financial"], "As card-network rules require",
     "PCI DSS level 1.", 0),
]
RECIPIENTS = [
    ("Delivery partner", "Delivers orders to your door.", ["identity", "address"], "ID",
     "", None),
    ("Marketing partner", "Sends offers of their own.", ["identity", "contact"], "SG",
     "Standard contractual clauses", "partner_sharing"),
]


def seed(apps, schema_editor):
    System = apps.get_model("inventory", "System")
    Recipient = apps.get_model("inventory", "Recipient")
    Purpose = apps.get_model("consent", "Purpose")
    for name, desc, country, region, cats, retention, security, backups in SYSTEMS:
        System.objects.get_or_create(
            name=name,
            defaults={
                "description": desc,
                "country": country,
                "region": region,
                "data_categories": cats,
                "retention": retention,
                "security": security,
                "backup_days": backups,
            },
        )
    for name, purpose, cats, country, safeguards, gate in RECIPIENTS:
        Recipient.objects.get_or_create(
            name=name,
            defaults={
                "purpose": purpose,
                "data_categories": cats,
                "country": country,
                "safeguards": safeguards,
                "gating_purpose": Purpose.objects.filter(code=gate).first() if gate else None,
            },
        )


def unseed(apps, schema_editor):
    apps.get_model("inventory", "Recipient").objects.filter(
        name__in=[r[0] for r in RECIPIENTS]
    ).delete()
    apps.get_model("inventory", "System").objects.filter(
        name__in=[s[0] for s in SYSTEMS]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("inventory", "0001_initial"), ("consent", "0003_seed_purposes")]

    operations = [migrations.RunPython(seed, unseed)]
