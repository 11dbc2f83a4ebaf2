from importlib import import_module

from django.apps import apps
from django.utils import timezone

from apps.consent.models import (
    ConsentEvent,
    ConsentSource,
    NoticeChange,
    PrivacyNotice,
    Purpose,
)
from apps.consent.services import consent_record


def reseed_purposes() -> None:
    """Seed the purposes and notice v1 as migration 0003 does (after a flush), the
    direct-marketing ones marked as 0007 marks them, translated as 0009 does."""
    import_module("apps.consent.migrations.0003_seed_purposes").seed(apps, None)
    import_module("apps.consent.migrations.0007_objection").mark(apps, None)
    import_module("apps.consent.migrations.0009_texts_per_language").translate_seeded(
        apps, None
    )


def consent_answer(
    customer,
    code: str,
    granted: bool = True,
    *,
    source: str = ConsentSource.API,
) -> ConsentEvent:
    """The customer's answer for purpose `code` (a grant unless `granted` is False),
    recorded with no staff actor, as the API does unless `source` says otherwise."""
    return consent_record(
        actor=None,
        customer=customer,
        purpose_code=code,
        granted=granted,
        source=source,
    )


def notice_changing(code: str, summary: str, **change) -> PrivacyNotice:
    """Privacy notice v2, not yet published, with one change to purpose `code`
    (`change` holds the rest of it: description, material)."""
    notice = PrivacyNotice.objects.create(
        version=2,
        title="Privacy notice",
        summary=summary,
        body="...",
        effective_at=timezone.now(),
    )
    NoticeChange.objects.create(
        notice=notice, purpose=Purpose.objects.get(code=code), **change
    )
    return notice
