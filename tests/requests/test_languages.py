"""The emails a request sends are written in the customer's language: their saved
choice, else the language they asked in, else English; the task carries a language
code, never personal data."""

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
    # The task is given the request's id and a language code: nothing personal.
    assert queued == [(str(request.pk), "de")]


def test_without_a_saved_language_the_email_follows_the_one_asked_in(
    sent_languages, django_capture_on_commit_callbacks
):
    jonas = make_account(email="jonas@example.com")
    with translation.override("de"):
        _export(jonas, django_capture_on_commit_callbacks)
    assert sent_languages == ["de"]


def test_a_request_opened_by_staff_is_answered_in_english_unless_one_was_saved(
    sent_languages, queued, django_capture_on_commit_callbacks
):
    from apps.accounts.models import Role
    from tests.accounts.factories import UserFactory

    admin = UserFactory(username="pa-lang", role=Role.PRIVACY_ADMIN)
    jane = make_account(email="jane@example.com")
    with translation.override("fa"):  # whatever the staff page is in
        request = _export(
            jane,
            django_capture_on_commit_callbacks,
            actor=admin,
            verification="Called back on the number on file.",
        )
    assert sent_languages == ["en"]
    assert queued == [(str(request.pk), "")]


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
