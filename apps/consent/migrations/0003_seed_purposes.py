"""The purposes a business starts from, and the first privacy notice."""

from django.db import migrations
from django.utils import timezone

PURPOSES = [
    (
        "marketing_email",
        "Marketing emails",
        "Offers and news by email, sent only once you confirm by a link we email you. "
        "You can stop them at any time on your privacy page.",
        "consent",
        "email",
        True,
        10,
    ),
    (
        "marketing_sms",
        "Marketing text messages",
        "Offers by SMS. We ask before sending any, and you can stop them at any time.",
        "consent",
        "sms",
        False,
        20,
    ),
    (
        "marketing_push",
        "App notifications",
        "Offers and reminders as notifications in our app.",
        "consent",
        "push",
        False,
        30,
    ),
    (
        "analytics",
        "Product analytics",
        "How you use our services, measured to improve them. Never sold.",
        "consent",
        "none",
        False,
        40,
    ),
    (
        "partner_sharing",
        "Sharing with partners",
        "Sharing your contact details with selected partners for their own offers (the "
        '"sale or sharing" of personal information under the CCPA). The first time we '
        "see your browser's Global Privacy Control signal while this is on, we turn it "
        "off; turned on again after that, it stays on.",
        "consent",
        "none",
        False,
        50,
    ),
]


def seed(apps, schema_editor):
    Purpose = apps.get_model("consent", "Purpose")
    PrivacyNotice = apps.get_model("consent", "PrivacyNotice")
    for code, name, description, basis, channel, double, position in PURPOSES:
        Purpose.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "description": description,
                "legal_basis": basis,
                "channel": channel,
                "double_opt_in": double,
                "position": position,
            },
        )
    now = timezone.now()
    PrivacyNotice.objects.get_or_create(
        version=1,
        defaults={
            "title": "Privacy notice",
            "summary": "How we collect, use, keep and dispose of your personal data.",
            "body": "We keep your personal data encrypted and show it to staff only as far "
            "as their task needs. Apart from providing the service you signed up for "
            "(support, deliveries, payments) and what the law requires of us (for example "
            "telling you about a breach), we use it only for the purposes on your privacy "
            "page, and only while you agree. We dispose of it on the schedule in our data "
            "policy. Some records are kept without a fixed end, among them our audit "
            "trail, the record of staff asking to see a detail in full, your requests to "
            "us and the notices we sent you. You can change every choice on your privacy "
            "page at any time.",
            "effective_at": now,
            "published_at": now,
        },
    )


def unseed(apps, schema_editor):
    apps.get_model("consent", "PrivacyNotice").objects.filter(version=1).delete()
    apps.get_model("consent", "Purpose").objects.filter(
        code__in=[p[0] for p in PURPOSES]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("consent", "0002_ledger_append_only")]

    operations = [migrations.RunPython(seed, unseed)]
