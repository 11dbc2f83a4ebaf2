"""The staff request page: a status change and the extension together, the extension
offered only where the request's law allows one, and a link to the customer."""

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.errors import Forbidden
from apps.customers.models import Customer
from apps.requests.models import DataRequest, RequestEvent
from apps.requests.services import (
    RequestError,
    request_extend,
    request_handle,
    request_open,
)
from tests.accounts.helpers import sign_in
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db


def _open(privacy_admin, **where):
    return request_open(
        actor=privacy_admin,
        customer=make_customer(**where),
        kind="objection",  # unsaid what to: it waits for a privacy admin
        verification="Video call, ID card checked",
    )


def _page(client, request) -> str:
    return client.get(reverse("requests:detail", args=[request.pk])).content.decode()


def test_the_extension_and_a_status_change_apply_together(client, privacy_admin):
    request = _open(privacy_admin, country="DE", region="")
    due = request.due_at
    sign_in(client, privacy_admin)
    response = client.post(
        reverse("requests:detail", args=[request.pk]),
        {"status": "in_progress", "extend": "on", "note": "Many linked requests"},
    )
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.extended
    assert request.due_at > due
    assert request.status == "in_progress"
    notes = list(
        RequestEvent.objects.filter(request=request)
        .order_by("at", "pk")
        .values_list("status", "note")
    )
    # The status change first (it may lock the customer's row, before the audit
    # chain), then the extension.
    assert notes[-2:] == [
        ("in_progress", "Many linked requests"),
        ("in_progress", "extended: Many linked requests"),
    ]


@pytest.mark.parametrize("status", ["completed", "refused"])
def test_a_request_being_closed_is_not_extended(client, privacy_admin, status):
    request = _open(privacy_admin, country="DE", region="")
    due = request.due_at
    sign_in(client, privacy_admin)
    response = client.post(
        reverse("requests:detail", args=[request.pk]),
        {"status": status, "extend": "on", "note": "Many linked requests"},
    )
    assert response.status_code == 400
    assert "A request being closed is not extended" in response.content.decode()
    request.refresh_from_db()
    assert (request.extended, request.due_at, request.status) == (
        False,
        due,
        "received",
    )
    with pytest.raises(RequestError, match="being closed") as raised:
        request_handle(
            actor=privacy_admin,
            request=request,
            status=status,
            note="Many linked requests",
            extend=True,
        )
    assert raised.value.field == "status"


def test_the_extension_alone_keeps_the_status(client, privacy_admin):
    request = _open(privacy_admin, country="DE", region="")
    sign_in(client, privacy_admin)
    response = client.post(
        reverse("requests:detail", args=[request.pk]),
        {"status": "", "extend": "on", "note": "Many linked requests"},
    )
    assert response.status_code == 302
    request.refresh_from_db()
    assert (request.extended, request.status) == (True, "received")


def test_a_refused_status_change_takes_the_extension_back(client, privacy_admin):
    # A restriction request whose customer was erased meanwhile: accepting it is
    # refused (nothing is left to restrict), with a valid reason for the extension.
    customer = make_customer(country="DE", region="")
    request = request_open(
        actor=privacy_admin,
        customer=customer,
        kind="restriction",
        verification="Video call, ID card checked",
    )
    Customer.objects.filter(pk=customer.pk).update(erased_at=timezone.now())
    due = request.due_at
    sign_in(client, privacy_admin)
    response = client.post(
        reverse("requests:detail", args=[request.pk]),
        {"status": "in_progress", "extend": "on", "note": "Many linked requests"},
    )
    assert response.status_code == 400
    assert "nothing is left to restrict" in response.content.decode()
    request.refresh_from_db()
    assert (request.extended, request.due_at, request.status) == (
        False,
        due,
        "received",
    )
    assert not AuditEvent.objects.filter(action="request.extended").exists()
    # Neither asked for: said so.
    response = client.post(
        reverse("requests:detail", args=[request.pk]), {"status": "", "note": ""}
    )
    assert response.status_code == 400
    assert "Choose the next status, or use the extension." in response.content.decode()


@pytest.mark.parametrize(
    ("country", "region"), [("ID", "ID-JK"), ("BR", "BR-SP"), ("SG", "")]
)
def test_no_extension_box_where_the_law_allows_none(
    client, privacy_admin, country, region
):
    request = _open(privacy_admin, country=country, region=region)
    sign_in(client, privacy_admin)
    html = _page(client, request)
    assert 'name="extend"' not in html
    assert "no extension" in html
    # Posted anyway: ignored, and without a status it is refused.
    due = request.due_at
    response = client.post(
        reverse("requests:detail", args=[request.pk]),
        {"status": "", "extend": "on", "note": "Many linked requests"},
    )
    assert response.status_code == 400
    request.refresh_from_db()
    assert (request.extended, request.due_at) == (False, due)


def test_the_extension_box_where_the_law_allows_one_until_used(client, privacy_admin):
    request = _open(privacy_admin, country="US", region="US-CA")
    sign_in(client, privacy_admin)
    html = _page(client, request)
    assert 'name="extend"' in html
    assert "Use the extension the law allows (45 more days, once)" in html
    request_extend(actor=privacy_admin, request=request, reason="Many requests")
    assert 'name="extend"' not in _page(client, request)


def test_only_a_privacy_admin_extends(compliance_officer, privacy_admin):
    request = _open(privacy_admin, country="DE", region="")
    with pytest.raises(Forbidden):
        request_extend(actor=compliance_officer, request=request, reason="Many")
    request.refresh_from_db()
    assert not request.extended


def test_the_page_links_to_the_customer_for_governance_roles(
    client, privacy_admin, compliance_officer
):
    request = _open(privacy_admin)
    link = reverse("staff:customer", args=[request.customer_id])
    for user in (privacy_admin, compliance_officer):
        sign_in(client, user)
        assert f'href="{link}"' in _page(client, request)
        # And the link leads somewhere the role may see.
        assert client.get(link).status_code == 200
    # A customer deleted by disposal: no link.
    DataRequest.objects.filter(pk=request.pk).update(customer=None)
    assert 'href="/staff/customers/' not in _page(client, request)
