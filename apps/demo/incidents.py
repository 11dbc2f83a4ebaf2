"""Demo incidents, for `seed_demo`: what the incident pages and the status page show
on a fresh install."""

from datetime import timedelta

from django.utils import timezone

from apps.accounts.models import User
from apps.incidents.models import IncidentStatus
from apps.incidents.selectors import incident_list
from apps.incidents.services import (
    affected_select,
    incident_create,
    incident_text_save,
    incident_transition,
    status_publish,
)


def demo_incidents_ensure(*, actor: User) -> int:
    """An open suspected breach with its deadlines and a resolved outage on the status
    page, if the register is empty (seed_demo)."""
    if incident_list().exists():
        return 0
    now = timezone.now()
    outage = incident_create(
        actor=actor,
        data={
            "title": "Checkout unavailable",
            "kind": "outage",
            "severity": "medium",
            "occurred_at": now - timedelta(days=14, hours=3),
            "detected_at": now - timedelta(days=14, hours=3),
            "aware_at": now - timedelta(days=14, hours=3),
        },
    )
    status_publish(
        actor=actor,
        incident=outage,
        phase="resolved",
        message="Checkout was down for 40 minutes after a failed deployment. No "
        "personal data was exposed. Everything works again.",
        data_at_risk="no",
    )
    incident_transition(actor=actor, incident=outage, status=IncidentStatus.RESOLVED)
    breach = incident_create(
        actor=actor,
        data={
            "title": "Support export shared with the wrong vendor",
            "kind": "suspected_breach",
            "severity": "high",
            "occurred_at": now - timedelta(days=2),
            "detected_at": now - timedelta(hours=30),
            "aware_at": now - timedelta(hours=26),
            "data_categories": ["identity", "contact"],
            "systems": ["support tool", "vendor SFTP"],
            "risk_level": "high",
            "risk_reasoning": "Names and contact details in plain text; the vendor "
            "confirms deletion but we cannot verify it yet.",
            "what_happened": "A support export went to a vendor who should not see it.",
            "what_we_are_doing": "The vendor deleted it; we are checking their logs.",
            "what_you_can_do": "Be wary of messages asking for your password.",
            "contact": "privacy@amanah.example",
        },
    )
    for language, data in BREACH_TRANSLATIONS.items():
        incident_text_save(
            actor=actor, incident=breach, language=language, data=data, create=True
        )
    affected_select(
        actor=actor, incident=breach, scope="countries", countries=["ID", "US", "DE"]
    )
    return 2


# What customers of the demo breach are told, in each language besides English (the
# incident's own fields), so its notices reach each in their own.
BREACH_TRANSLATIONS = {
    "id": {
        "what_happened": "Sebuah ekspor data layanan pelanggan terkirim ke vendor yang "
        "seharusnya tidak melihatnya.",
        "what_we_are_doing": "Vendor tersebut telah menghapusnya; kami sedang "
        "memeriksa log mereka.",
        "what_you_can_do": "Waspadalah terhadap pesan yang meminta kata sandi Anda.",
        "contact": "privacy@amanah.example",
    },
    "de": {
        "what_happened": "Ein Export aus dem Kundendienst ging an einen Dienstleister, "
        "der ihn nicht hätte sehen dürfen.",
        "what_we_are_doing": "Der Dienstleister hat ihn gelöscht; wir prüfen seine "
        "Protokolle.",
        "what_you_can_do": "Seien Sie vorsichtig bei Nachrichten, die nach Ihrem "
        "Passwort fragen.",
        "contact": "privacy@amanah.example",
    },
    "fa": {
        "what_happened": "یک خروجی از داده‌های پشتیبانی مشتریان برای فروشنده‌ای "
        "فرستاده شد که نباید آن را می‌دید.",
        "what_we_are_doing": "فروشنده آن را حذف کرد؛ ما در حال بررسی گزارش‌های "
        "سیستم او هستیم.",
        "what_you_can_do": "مراقب پیام‌هایی باشید که رمز عبور شما را می‌خواهند.",
        "contact": "privacy@amanah.example",
    },
}
