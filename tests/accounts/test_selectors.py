"""Reads of users that other apps build on: monitoring counts staff per role and emails
compliance officers, the audit page filters by username."""

import pytest

from apps.accounts.models import Role, User
from apps.accounts.selectors import (
    user_count_by_role,
    user_emails_for_role,
    user_ids_active_with_roles,
    user_ids_by_username,
)
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_staff_are_counted_per_role_active_only(django_assert_num_queries):
    UserFactory(username="a1", role=Role.SUPPORT_AGENT)
    UserFactory(username="a2", role=Role.SUPPORT_AGENT)
    UserFactory(username="a3", role=Role.SUPPORT_AGENT, is_active=False)
    UserFactory(username="d1", role=Role.DELIVERY_AGENT)
    UserFactory(username="p1", role=Role.PRIVACY_ADMIN)

    with django_assert_num_queries(1):
        counts = user_count_by_role(
            roles={Role.SUPPORT_AGENT, Role.DELIVERY_AGENT, Role.COMPLIANCE_OFFICER}
        )

    # A role nobody holds is missing, not zero.
    assert counts == {Role.SUPPORT_AGENT: 2, Role.DELIVERY_AGENT: 1}


def test_emails_of_a_role_are_active_with_an_address_oldest_first():
    UserFactory(username="c1", role=Role.COMPLIANCE_OFFICER, email="first@x.example")
    UserFactory(username="c2", role=Role.COMPLIANCE_OFFICER, email="")
    UserFactory(
        username="c3",
        role=Role.COMPLIANCE_OFFICER,
        email="gone@x.example",
        is_active=False,
    )
    UserFactory(username="c4", role=Role.COMPLIANCE_OFFICER, email="second@x.example")
    UserFactory(username="p1", role=Role.PRIVACY_ADMIN, email="admin@x.example")

    assert user_emails_for_role(role=Role.COMPLIANCE_OFFICER) == [
        "first@x.example",
        "second@x.example",
    ]
    assert user_emails_for_role(role=Role.SUPPORT_AGENT) == []


def test_the_id_by_username_is_a_subquery_of_that_user_only():
    alice = UserFactory(username="alice")
    UserFactory(username="alicia")

    assert list(User.objects.filter(pk__in=user_ids_by_username(username="alice"))) == [
        alice
    ]
    assert not user_ids_by_username(username="nobody").exists()


def test_ids_with_roles_are_a_subquery_of_active_users_in_those_roles():
    a1 = UserFactory(username="a1", role=Role.SUPPORT_AGENT)
    d1 = UserFactory(username="d1", role=Role.DELIVERY_AGENT)
    UserFactory(username="a2", role=Role.SUPPORT_AGENT, is_active=False)
    UserFactory(username="p1", role=Role.PRIVACY_ADMIN)

    found = User.objects.filter(
        pk__in=user_ids_active_with_roles(
            roles={Role.SUPPORT_AGENT, Role.DELIVERY_AGENT}
        )
    )
    assert set(found) == {a1, d1}
    assert not user_ids_active_with_roles(roles={Role.COMPLIANCE_OFFICER}).exists()
