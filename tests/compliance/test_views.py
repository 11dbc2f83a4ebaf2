"""The compliance home: compliance roles only; it leads to each task and says how
many customers' requests are overdue."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.requests.models import DataRequest
from apps.requests.services import request_open
from tests.accounts.helpers import sign_in
from tests.portal.factories import make_account

pytestmark = pytest.mark.django_db


def test_the_home_is_at_compliance():
    assert reverse("compliance:home") == "/compliance/"


@pytest.mark.parametrize("role", ["compliance_officer", "privacy_admin"])
def test_compliance_roles_see_every_task(client, request, role):
    sign_in(client, request.getfixturevalue(role))
    response = client.get(reverse("compliance:home"))
    assert response.status_code == 200
    html = response.content.decode()
    for name in ("requests:queue", "retention:report", "retention:holds"):
        assert f'href="{reverse(name)}"' in html
    assert "overdue records" not in html


@pytest.mark.parametrize("role", ["support_agent", "delivery_agent"])
def test_other_staff_are_refused(client, request, role):
    sign_in(client, request.getfixturevalue(role))
    assert client.get(reverse("compliance:home")).status_code == 403


def test_the_home_counts_overdue_requests(client, compliance_officer):
    customer = make_account()
    request_open(actor=customer.user, customer=customer, kind="access")
    DataRequest.objects.update(due_at=timezone.now() - timedelta(days=1))
    sign_in(client, compliance_officer)
    html = client.get(reverse("compliance:home")).content.decode()
    assert "1 overdue" in html
