import pytest
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Role
from apps.accounts.services import user_ensure_staff
from apps.consent.models import PrivacyNotice
from tests.accounts.helpers import sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = user_ensure_staff(
        actor=None, username="pa", role=Role.PRIVACY_ADMIN, password="long-password-1"
    )
    sign_in(client, user)
    return client


def test_privacy_admins_add_purposes_and_publish_notices(
    admin_client, django_capture_on_commit_callbacks
):
    response = admin_client.post(
        reverse("admin:consent_purpose_add"),
        {
            "code": "surveys",
            "name": "Surveys",
            "description": "Occasional questions about our service.",
            "legal_basis": "consent",
            "channel": "email",
            "position": 60,
            "active": "on",
        },
    )
    assert response.status_code == 302
    notice = PrivacyNotice.objects.create(
        version=2,
        title="Notice",
        summary="Surveys added.",
        body="...",
        effective_at=timezone.now(),
    )
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:consent_privacynotice_changelist"),
            {"action": "publish", "_selected_action": [notice.pk]},
        )
    notice.refresh_from_db()
    assert notice.published_at is not None
    # A published notice can no longer be edited.
    page = admin_client.get(
        reverse("admin:consent_privacynotice_change", args=[notice.pk])
    )
    assert b'name="title"' not in page.content
