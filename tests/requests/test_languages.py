"""The emails a request sends are written in the customer's language: their saved
choice, else the language they asked in (kept on the request), else their country's,
else English; the task carries only the request's id, never personal data."""

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import translation

from apps.customers.services import customer_language_set
from apps.requests import services as request_services
from apps.requests import tasks as request_tasks
from apps.requests.services import RequestError, export_download, request_open
from tests.portal.factories import PASSWORD, make_account

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _language_restored():
    """A page request leaves its language active: give the next test English."""
    with translation.override("en"):
        yield


@pytest.fixture
def sent_languages(monkeypatch):
    """The language active when each email was handed to the mail backend."""
    seen: list[str] = []
    send_mail = request_services.send_mail

    def recording(**kwargs):
        seen.append(translation.get_language())
        return send_mail(**kwargs)

    monkeypatch.setattr(request_services, "send_mail", recording)
    return seen


@pytest.fixture
def queued(monkeypatch):
    """The arguments each processing task was queued with."""
    calls: list[tuple] = []
    delay = request_tasks.request_process_task.delay

    def recording(*args):
        calls.append(args)
        return delay(*args)

    monkeypatch.setattr(request_tasks.request_process_task, "delay", recording)
    return calls


def _export(customer, capture, *, actor=None, **kwargs):
    with capture(execute=True):
        return request_open(
            actor=actor or customer.user, customer=customer, kind="access", **kwargs
        )


def test_the_export_email_is_written_in_the_customers_saved_language(
    sent_languages, queued, django_capture_on_commit_callbacks
):
    siti = customer_language_set(
        customer=make_account(email="siti@example.com"), language="id"
    )
    with translation.override("de"):  # the page they asked from says less
        request = _export(siti, django_capture_on_commit_callbacks)
    assert sent_languages == ["id"]
    [message] = mail.outbox
    assert "/me/data/download/" in message.body
    # Written in Indonesian (locale/id), not a sentence of the English.
    with translation.override("id"):
        subject = translation.gettext("Your data is ready")
    assert subject != "Your data is ready"
    assert message.subject == subject
    assert "The copy of your data" not in message.body
    assert "Sign in" not in message.body
    # The task is given the request's id only: nothing personal. The language asked
    # in is kept on the request.
    assert queued == [(str(request.pk),)]
    request.refresh_from_db()
    assert request.language == "de"


def test_without_a_saved_language_the_email_follows_the_one_asked_in(
    sent_languages, django_capture_on_commit_callbacks
):
    jonas = make_account(email="jonas@example.com", country="US", region="")
    with translation.override("de"):
        _export(jonas, django_capture_on_commit_callbacks)
    assert sent_languages == ["de"]


@pytest.mark.parametrize(("country", "language"), [("US", "en"), ("DE", "de")])
def test_a_request_opened_by_staff_is_answered_in_the_countrys_language(
    sent_languages, queued, django_capture_on_commit_callbacks, country, language
):
    """Nothing saved, and staff asking is no language of the customer's: their
    country's (as breach notices and privacy-notice emails), else English."""
    from apps.accounts.models import Role
    from tests.accounts.factories import UserFactory

    admin = UserFactory(username="pa-lang", role=Role.PRIVACY_ADMIN)
    jane = make_account(email="jane@example.com", country=country, region="")
    with translation.override("fa"):  # whatever the staff page is in
        request = _export(
            jane,
            django_capture_on_commit_callbacks,
            actor=admin,
            verification="Called back on the number on file.",
        )
    assert sent_languages == [language]
    assert queued == [(str(request.pk),)]
    request.refresh_from_db()
    assert request.language == ""


def test_a_lost_task_queued_again_still_writes_in_the_saved_language(
    sent_languages, django_capture_on_commit_callbacks
):
    siti = customer_language_set(
        customer=make_account(email="siti@example.com"), language="id"
    )
    request = request_open(actor=siti.user, customer=siti, kind="access")  # not run
    with django_capture_on_commit_callbacks(execute=True):
        request_tasks.request_process_task(str(request.pk))  # as the beat requeues it
    assert sent_languages == ["id"]


def test_a_lost_task_queued_again_still_writes_in_the_language_asked_in(
    sent_languages, queued, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    jonas = make_account(email="jonas@example.com", country="US", region="")
    with translation.override("de"):  # the task is lost: never run
        request = request_open(actor=jonas.user, customer=jonas, kind="access")
    later = timezone.now() + timedelta(days=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert request_services.requests_process_stalled(now=later) == 1
    assert queued == [(str(request.pk),)]
    assert sent_languages == ["de"]


def test_the_download_link_errors_are_in_the_active_language(monkeypatch):
    siti = make_account(email="siti@example.com")
    seen: list[str] = []

    def gettext(message):
        seen.append(translation.get_language())
        return message

    monkeypatch.setattr(request_services, "gettext", gettext)
    with translation.override("id"), pytest.raises(RequestError):
        export_download(token="tampered", customer=siti)
    assert seen == ["id"]


def test_a_done_export_says_so_on_my_data_in_the_customers_language(
    client, django_capture_on_commit_callbacks
):
    siti = customer_language_set(
        customer=make_account(email="siti@example.com"), language="id"
    )
    _export(siti, django_capture_on_commit_callbacks)
    client.post(
        reverse("portal:login"), {"email": "siti@example.com", "password": PASSWORD}
    )
    page = client.get(reverse("portal:data")).content.decode()
    outcome = "Your data is ready to download (once, within 24 hours)."
    with translation.override("id"):
        translated = translation.gettext(outcome)
    assert translated != outcome  # locale/id has it
    assert translated in page
    assert "Your data is ready to download" not in page


def _export_files(customer, capture) -> tuple[dict, str]:
    import io
    import json
    import zipfile

    request = _export(customer, capture)
    request.refresh_from_db()
    _, data = export_download(
        token=request_services.export_token(request), customer=customer
    )
    archive = zipfile.ZipFile(io.BytesIO(data))
    return (
        json.loads(archive.read("my-data.json")),
        archive.read("my-data.html").decode(),
    )


def test_the_export_file_is_in_the_customers_language(
    django_capture_on_commit_callbacks,
):
    from apps.consent.services import consent_record

    siti = customer_language_set(
        customer=make_account(email="siti@example.com", full_name="Siti Rahma"),
        language="id",
    )
    consent_record(
        actor=None, customer=siti, purpose_code="analytics", granted=True, source="api"
    )
    contents, page = _export_files(siti, django_capture_on_commit_callbacks)
    with translation.override("id"):
        heading = translation.gettext("Your details")
        label = translation.gettext("Full name")
        consents = translation.gettext("Your consents")
    assert heading != "Your details"
    assert label != "Full name"
    assert '<html lang="id" dir="ltr">' in page
    assert f"<h2>{heading}</h2>" in page
    assert f"<h2>{consents}</h2>" in page
    assert contents["customer"]["fields"][label] == "Siti Rahma"
    for english in (
        "Your data</h1>",
        "Your details",
        "Your consents",
        "Who looked at your data",
        "Notices we sent you",
        "Generated ",
        "Full name",
    ):
        assert english not in page
    # The JSON keeps ISO dates for other services.
    assert contents["generated_at"][:4].isdigit()


def test_a_persian_export_reads_right_to_left(django_capture_on_commit_callbacks):
    customer = customer_language_set(
        customer=make_account(email="sara@example.com"), language="fa"
    )
    _contents, page = _export_files(customer, django_capture_on_commit_callbacks)
    assert '<html lang="fa" dir="rtl">' in page


def test_a_card_number_in_a_requests_details_is_refused_in_the_active_language():
    from apps.customers.errors import CustomerError
    from apps.customers.validation import CARD_MESSAGE

    customer = make_account(email="anna@example.com")
    with translation.override("de"):
        german = translation.gettext(CARD_MESSAGE)
        with pytest.raises(CustomerError) as caught:
            request_open(
                actor=customer.user,
                customer=customer,
                kind="access",
                details="my card 4111 1111 1111 1111",
            )
    assert german != CARD_MESSAGE
    assert caught.value.message == german
    with pytest.raises(CustomerError, match=r"^Card numbers must not be stored here"):
        request_open(
            actor=customer.user,
            customer=customer,
            kind="access",
            details="my card 4111 1111 1111 1111",
        )
