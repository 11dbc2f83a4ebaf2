"""Correct three seeded texts that promised more than Amanah does.

The marketing-email purpose promised an unsubscribe link in every email: Amanah sends no
marketing mail, so it cannot promise what the sending system puts in it. The partner
sharing purpose said the browser's Global Privacy Control signal turns it off: only the
first time it is seen, and a later "on" stands. Notice v1 said
the data is used "only for what you agreed to" and disposed of "on schedule": the service
itself, the law and records with no retention policy use or keep data beyond that.

A published notice never changes (it is what customers agreed under), so the correction
is published as version 2 with no change to any purpose: as through the admin, that emails
nobody (only customers with an answer for a changed purpose hear of a notice) and asks no
one to renew a consent. The row is written directly, as v1 was, so no `notice.published`
audit event records it. It is added only while v1 holds the seeded text and no later
version exists; a text an administrator has edited is left alone.
"""

from django.db import migrations
from django.utils import timezone

PURPOSE = "marketing_email"
OLD_PURPOSE = (
    "Offers and news by email. You confirm by a link we send, and every email has a "
    "one-click unsubscribe link."
)
NEW_PURPOSE = (
    "Offers and news by email, sent only once you confirm by a link we email you. You "
    "can stop them at any time on your privacy page."
)
GPC_PURPOSE = "partner_sharing"
OLD_GPC_PURPOSE = (
    "Sharing your contact details with selected partners for their own offers (the "
    '"sale or sharing" of personal information under the CCPA). Your browser\'s '
    "Global Privacy Control signal turns this off."
)
NEW_GPC_PURPOSE = (
    "Sharing your contact details with selected partners for their own offers (the "
    '"sale or sharing" of personal information under the CCPA). The first time we see '
    "your browser's Global Privacy Control signal while this is on, we turn it off; "
    "turned on again after that, it stays on."
)

OLD_BODY = (
    "We keep your personal data encrypted, use it only for what you agreed to, show it "
    "to staff only as far as their task needs, and dispose of it on schedule. You can "
    "change every choice on your privacy page at any time."
)
NEW_BODY = (
    "We keep your personal data encrypted and show it to staff only as far as their "
    "task needs. Apart from providing the service you signed up for (support, "
    "deliveries, payments) and what the law requires of us (for example telling you "
    "about a breach), we use it only for the purposes on your privacy page, and only "
    "while you agree. We dispose of it on the schedule in our data policy. Some records "
    "are kept without a fixed end, among them our audit trail, the record of staff "
    "asking to see a detail in full, your requests to us and the notices we sent you. "
    "You can change every choice on your privacy page at any time."
)
NEW_SUMMARY = (
    "Clearer wording on what we use your data for besides what you agreed to, and on "
    "what we keep without a fixed end. None of your choices changed."
)


def correct(apps, schema_editor):
    Purpose = apps.get_model("consent", "Purpose")
    PrivacyNotice = apps.get_model("consent", "PrivacyNotice")
    Purpose.objects.filter(code=PURPOSE, description=OLD_PURPOSE).update(
        description=NEW_PURPOSE
    )
    Purpose.objects.filter(code=GPC_PURPOSE, description=OLD_GPC_PURPOSE).update(
        description=NEW_GPC_PURPOSE
    )
    v1 = PrivacyNotice.objects.filter(
        version=1, body=OLD_BODY, published_at__isnull=False
    ).first()
    if v1 is None or PrivacyNotice.objects.filter(version__gt=1).exists():
        return
    now = timezone.now()
    PrivacyNotice.objects.create(
        version=2,
        title=v1.title,
        summary=NEW_SUMMARY,
        body=NEW_BODY,
        effective_at=now,
        published_at=now,
    )


def restore(apps, schema_editor):
    Purpose = apps.get_model("consent", "Purpose")
    PrivacyNotice = apps.get_model("consent", "PrivacyNotice")
    ConsentEvent = apps.get_model("consent", "ConsentEvent")
    Purpose.objects.filter(code=PURPOSE, description=NEW_PURPOSE).update(
        description=OLD_PURPOSE
    )
    Purpose.objects.filter(code=GPC_PURPOSE, description=NEW_GPC_PURPOSE).update(
        description=OLD_GPC_PURPOSE
    )
    # A notice someone has answered under stays: the ledger names its version.
    if ConsentEvent.objects.filter(notice_version__gte=2).exists():
        return
    PrivacyNotice.objects.filter(version=2, body=NEW_BODY, summary=NEW_SUMMARY).delete()


class Migration(migrations.Migration):
    dependencies = [("consent", "0004_ledger_refuse_truncate")]

    operations = [migrations.RunPython(correct, restore)]
