"""Issue 21's customer-side defects: what the pages say after an action is true and
where the customer is."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.access.models import AccessLogEntry
from tests.accounts.factories import UserFactory
from tests.portal.factories import PASSWORD, make_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer():
    return make_account()


@pytest.fixture
def signed_in(client, customer):
    client.post(
        reverse("portal:login"), {"email": "siti@example.com", "password": PASSWORD}
    )
    return client


def confirmation_path(signed_in, capture) -> str:
    with capture(execute=True):
        signed_in.post(
            reverse("portal:consent-toggle", args=["marketing_email"]), {"granted": "1"}
        )
    [message] = mail.outbox
    link = next(w for w in message.body.split() if "/me/confirm/" in w)
    return urlsplit(link).path


def test_a_used_confirmation_link_says_it_was_confirmed(
    signed_in, django_capture_on_commit_callbacks
):
    path = confirmation_path(signed_in, django_capture_on_commit_callbacks)
    anonymous = Client()
    page = anonymous.post(path).content.decode()
    assert "<h1>Confirmed</h1>" in page
    # The way back: to the consents and My data.
    assert f'href="{reverse("portal:consents")}"' in page
    assert f'href="{reverse("portal:data")}"' in page

    again = anonymous.get(path).content.decode()
    assert "<h1>Already confirmed</h1>" in again
    assert "Yes, confirm" not in again
    twice = anonymous.post(path)
    assert twice.status_code == 200
    assert "<h1>Already confirmed</h1>" in twice.content.decode()


def test_a_tampered_confirmation_link_still_says_it_cannot_be_used(client):
    path = reverse("portal:opt-in-confirm", args=["not-a-token"])
    assert "Yes, confirm" in client.get(path).content.decode()
    response = client.post(path)
    assert response.status_code == 400
    assert "This link cannot be used" in response.content.decode()


def test_the_correction_fields_are_only_for_a_correction(signed_in):
    page = signed_in.get(reverse("portal:data")).content.decode()
    form = page.split('class="request-form"', 1)[1].split("</form>")[0]
    correction = form.split('class="for-kind for-rectification"', 1)[1].split(
        "</fieldset>"
    )[0]
    assert 'name="field"' in correction
    assert 'name="new_value"' in correction
    objection = form.split('class="for-kind for-objection"', 1)[1].split("</fieldset>")[
        0
    ]
    assert 'name="objection_to"' in objection
    outside = form.replace(correction, "").replace(objection, "")
    assert 'name="field"' not in outside
    assert 'name="new_value"' not in outside
    assert 'name="kind"' in outside
    assert 'name="details"' in outside


@pytest.mark.django_db(transaction=True)  # the copy is made on commit
def test_a_copy_done_at_once_says_it_is_done(signed_in):
    # Without a task queue (tests, `make run`) the copy is made before the redirect.
    response = signed_in.post(reverse("portal:data"), {"kind": "access"}, follow=True)
    page = response.content.decode()
    assert "Your request is done: download your data below." in page
    assert "We will answer by the date shown" not in page
    # On a phone the page's top is far above: the message is where the page lands,
    # first in the requests section, and not again at the top.
    assert response.redirect_chain == [
        (reverse("portal:data") + "#request-message", 302)
    ]
    requests = page.split('id="requests"', 1)[1]
    assert 'id="request-message"' in requests.split("<table", 1)[0]
    assert page.count("Your request is done: download your data below.") == 1


def test_a_request_left_open_says_when_it_is_answered(signed_in):
    response = signed_in.post(
        reverse("portal:data"),
        {"kind": "restriction", "details": "Please."},
        follow=True,
    )
    assert (
        "Your request is recorded. We will answer by the date shown."
        in response.content.decode()
    )


def test_the_staff_sign_in_links_to_the_customer_sign_in(client):
    page = client.get(reverse("accounts:login")).content.decode()
    assert f'href="{reverse("portal:login")}"' in page
    assert "Are you a customer?" in page


def test_a_refused_request_opens_at_its_errors(signed_in):
    # No new value for a correction: the answer is the page again, opened (the form's
    # own anchor) at the form, whose errors come first, each linked to its field.
    response = signed_in.post(
        reverse("portal:data"), {"kind": "rectification", "field": "email"}
    )
    assert response.status_code == 400
    page = response.content.decode()
    form = page.split('id="request-form"', 1)[1]
    assert f'action="{reverse("portal:data")}#request-form"' in page
    errors = form.split('id="request-errors"', 1)[1].split("</div>", 1)[0]
    assert 'href="#id_new_value"' in errors
    assert form.index('id="request-errors"') < form.index('name="kind"')


def test_reads_within_one_minute_show_one_time_not_a_range(signed_in, customer):
    staff = UserFactory(role="support_agent")
    at = timezone.now().replace(second=5, microsecond=0)
    for seconds in (0, 20):
        AccessLogEntry.objects.create(
            staff=staff,
            staff_role="support_agent",
            customer=customer,
            fields={"email": "masked"},
            purpose="support_case",
            created_at=at + timedelta(seconds=seconds),
        )
    page = signed_in.get(reverse("portal:data")).content.decode()
    row = page.split("Who looked at my data", 1)[1].split("</tr>", 2)[1]
    when = row.split("<td", 2)[1]
    assert "\u2013" not in when, when  # no range "3:59 p.m. to 3:59 p.m."
    assert ">2</td>" in row
