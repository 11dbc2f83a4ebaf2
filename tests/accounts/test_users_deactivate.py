"""Logins of disposed customers stop working; the rows stay for the audit trail."""

import pytest

from apps.accounts.models import Role, User
from apps.accounts.services import token_issue, users_deactivate_bulk
from tests.accounts.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_the_logins_named_are_deactivated_and_keep_no_usable_password():
    gone, kept = UserFactory(role=Role.CUSTOMER), UserFactory(role=Role.CUSTOMER)
    assert users_deactivate_bulk(user_ids=[gone.pk]) == 1
    gone.refresh_from_db()
    kept.refresh_from_db()
    assert not gone.is_active
    assert not gone.has_usable_password()
    assert kept.is_active
    assert kept.check_password(PASSWORD)
    assert User.objects.filter(pk=gone.pk).exists()


def test_no_logins_changes_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert users_deactivate_bulk(user_ids=[]) == 0


def test_their_api_tokens_are_revoked_too():
    staff = UserFactory(role=Role.SUPPORT_AGENT)
    token = token_issue(user=staff).token

    users_deactivate_bulk(user_ids=User.objects.filter(pk=staff.pk).values("pk"))

    token.refresh_from_db()
    assert token.revoked_at is not None
