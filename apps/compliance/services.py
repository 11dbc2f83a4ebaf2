"""Writes of the compliance pages: the record of processing activities (privacy
admins change an activity, or mark it reviewed), audited in the same transaction.

Lock order (apps/core/db.py): the activity's row, then the audit chain."""

import re
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Role, User
from apps.audit import services as audit
from apps.compliance.models import ActivityBasis, ProcessingActivity
from apps.core.errors import DomainError, Forbidden, NotFound
from apps.customers.registry import DataCategory
from apps.customers.services import free_text_check

ACTIVITY_FIELDS = (
    "name",
    "purpose",
    "legal_basis",
    "data_subjects",
    "data_categories",
    "consent_purpose",
    "owner",
)
ACTIVITY_LINKS = ("systems", "recipients", "retention_policies")
# A code is in the page's URL: lower-case words, and not the new activity's page.
CODE = re.compile(r"[a-z0-9][-a-z0-9_]{0,49}")
RESERVED_CODES = frozenset({"new"})


class RopaError(DomainError):
    code = "ropa_invalid"


def _ensure_privacy_admin(actor: User) -> None:
    if actor.role != Role.PRIVACY_ADMIN:
        raise Forbidden("Only privacy admins change the record of processing.")


def _validate(data: dict[str, Any]) -> None:
    for name in ("name", "purpose", "data_subjects", "owner"):
        if name in data and not str(data[name]).strip():
            raise RopaError("This field is required.", field=name)
    if "legal_basis" in data and data["legal_basis"] not in ActivityBasis.values:
        raise RopaError("Choose a legal basis.", field="legal_basis")
    categories = data.get("data_categories", [])
    if any(c not in DataCategory.values for c in categories):
        raise RopaError("Unknown data category.", field="data_categories")
    # The record is shown and exported for good: it names roles, never people's data.
    for name in ("name", "purpose", "data_subjects", "owner"):
        if name in data:
            free_text_check(text=data[name], field=name, error=RopaError, label=name)


@transaction.atomic
def activity_save(
    *, actor: User, code: str, data: dict[str, Any]
) -> ProcessingActivity:
    """Create or change a processing activity; audited with what changed. Raises
    RopaError, Forbidden."""
    _ensure_privacy_admin(actor)
    _validate(data)
    activity = (
        ProcessingActivity.objects.select_for_update(no_key=True)
        .filter(code=code)
        .first()
    )
    created = activity is None
    if activity is None:
        if not CODE.fullmatch(code) or code in RESERVED_CODES:
            raise RopaError(
                "Give a code of lower-case letters, digits and dashes.", field="code"
            )
        if not all(data.get(f) for f in ("name", "purpose", "legal_basis", "owner")):
            raise RopaError("Give a name, purpose, legal basis and owner.")
        activity = ProcessingActivity(code=code)
    before = {f: getattr(activity, f) for f in ACTIVITY_FIELDS}
    links_before = (
        {}
        if created
        else {
            name: {o.pk for o in getattr(activity, name).all()}
            for name in ACTIVITY_LINKS
        }
    )
    for name in ACTIVITY_FIELDS:
        if name in data:
            value = data[name]
            setattr(activity, name, value.strip() if isinstance(value, str) else value)
    activity.save()
    for name in ACTIVITY_LINKS:
        if name in data:
            getattr(activity, name).set(data[name])
    changed = sorted(
        [f for f in ACTIVITY_FIELDS if before[f] != getattr(activity, f)]
        + [
            name
            for name in ACTIVITY_LINKS
            if name in data
            and links_before.get(name, set()) != {o.pk for o in data[name]}
        ]
    )
    if changed or created:
        audit.record(
            actor=actor,
            action="ropa.activity_created" if created else "ropa.activity_changed",
            target=activity,
            details={"code": code, "changed": changed},
        )
    return activity


@transaction.atomic
def activity_mark_reviewed(*, actor: User, code: str) -> ProcessingActivity:
    """Record that `actor` reviewed the activity today. Raises NotFound, Forbidden."""
    _ensure_privacy_admin(actor)
    activity = (
        ProcessingActivity.objects.select_for_update(no_key=True)
        .filter(code=code)
        .first()
    )
    if activity is None:
        raise NotFound("No such processing activity.")
    activity.reviewed_at = timezone.localdate()
    activity.reviewed_by = actor
    activity.save(update_fields=["reviewed_at", "reviewed_by", "updated_at"])
    audit.record(
        actor=actor,
        action="ropa.activity_reviewed",
        target=activity,
        details={"code": code, "reviewed_at": activity.reviewed_at.isoformat()},
    )
    return activity
