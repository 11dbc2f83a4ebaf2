"""Retention policies a real business would start from."""

from django.db import migrations

POLICIES = [
    (
        "closed-accounts",
        "closed_accounts",
        "",
        730,
        "closed",
        "crypto_shred",
        "Storage limitation (GDPR art. 5(1)(e), UU PDP art. 43); two years covers "
        "disputes and chargebacks after an account closes.",
        "When your account is closed, we keep your details for two years in case of "
        "disputes or refunds. Then we destroy the key that encrypts them, and from then "
        "on they cannot be read in our database. Backups taken before that still hold "
        "them until those backups expire, at most 35 days later.",
    ),
    (
        "inactive-customers",
        "inactive_customers",
        "",
        1095,
        "last_activity",
        "anonymize",
        "Storage limitation (GDPR art. 5(1)(e)): no purpose remains for details nobody "
        "has entered or changed in three years.",
        "Three years after your details were last entered or changed (when your account "
        "was opened, when you asked us to correct them, or when our staff updated them), "
        "we destroy the key to your personal details and remove your region. Signing in "
        "or using our services does not restart this clock. What remains is a record "
        "number with your country, account status and dates, and the records linked to "
        "it (your consent history, our record of who looked at your data, your "
        "requests), kept as this page describes.",
    ),
    (
        "customer-notes",
        "customer_pii",
        "free_text",
        730,
        "created",
        "delete",
        "Data minimisation (GDPR art. 5(1)(c)): free-text notes are only useful while a "
        "matter is current.",
        "Notes our staff write on your record are deleted once your account is two "
        "years old; a note written after that is deleted at our next scheduled "
        "clean-up.",
    ),
    (
        "access-log",
        "access_log",
        "",
        365,
        "created",
        "delete",
        "Accountability (GDPR art. 5(2)); one year lets you see who looked at your data "
        "and lets us investigate misuse.",
        "The record of when staff looked at your data, in which role and why, is kept "
        "for one year. When a staff member asks to see a detail in full, that request "
        "(who asked, and the reason given) is kept without a fixed end, in our audit "
        "records.",
    ),
    (
        "consent-proof",
        "consent_events",
        "",
        1825,
        "consent_withdrawn",
        "delete",
        "Proof of consent (GDPR art. 7(1)); limitation periods for claims about "
        "marketing run up to five years.",
        "When you withdraw a consent, we keep the record of what you agreed to and when "
        "for five years, as proof, and then delete it.",
    ),
    (
        "interactions",
        "interactions",
        "",
        365,
        "interaction_closed",
        "delete",
        "Storage limitation; one year after a support case or delivery closes covers "
        "complaints about it.",
        "Records of support cases, deliveries and the masked calls made for them are "
        "deleted one year after they close.",
    ),
]


def seed(apps, schema_editor):
    RetentionPolicy = apps.get_model("retention", "RetentionPolicy")
    for code, covers, category, days, trigger, action, basis, text in POLICIES:
        RetentionPolicy.objects.get_or_create(
            code=code,
            defaults={
                "covers": covers,
                "category": category,
                "period_days": days,
                "trigger": trigger,
                "action": action,
                "legal_basis": basis,
                "description": text,
            },
        )


def unseed(apps, schema_editor):
    apps.get_model("retention", "RetentionPolicy").objects.filter(
        code__in=[p[0] for p in POLICIES]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("retention", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
