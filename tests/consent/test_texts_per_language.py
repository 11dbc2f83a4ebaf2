"""Purposes and privacy notices written per language: a customer gets one whole
language of each (theirs, else English), and the emails consent sends are written
in it."""

import importlib
import json

import pytest
from django.apps import apps
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone, translation

from apps.accounts.models import Role
from apps.accounts.services import user_ensure_staff
from apps.consent import services as consent_services
from apps.consent.forms import NoticeChangeAdminForm, PurposeAdminForm
from apps.consent.models import (
    NOTICE_TEXT_FIELDS,
    PURPOSE_TEXT_FIELDS,
    NoticeChange,
    PrivacyNotice,
    Purpose,
)
from apps.consent.selectors import (
    consent_receipts_for_customer,
    notice_text,
    purpose_text,
)
from apps.consent.services import consent_grant, notice_announce_batch
from apps.customers.services import customer_language_set
from tests.accounts.helpers import sign_in
from tests.consent.factories import consent_answer
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db

seed = importlib.import_module("apps.consent.migrations.0009_texts_per_language")

INDONESIAN = {"name": "Survei", "description": "Pertanyaan sesekali tentang layanan."}


@pytest.fixture
def surveys():
    return Purpose.objects.create(
        code="surveys",
        name="Surveys",
        description="Occasional questions about our service.",
        channel="email",
        double_opt_in=True,
        translations={"id": INDONESIAN},
    )


# The selector ----------------------------------------------------------------------


def test_a_purpose_is_given_in_the_language_asked_for_when_written(surveys):
    text = purpose_text(surveys, "id")
    assert (text.name, text.description, text.language) == (
        "Survei",
        "Pertanyaan sesekali tentang layanan.",
        "id",
    )


@pytest.mark.parametrize("language", ["de", "fa", None, "", "xx"])
def test_a_purpose_missing_a_language_is_given_wholly_in_english(surveys, language):
    text = purpose_text(surveys, language)
    assert (text.name, text.description, text.language) == (
        "Surveys",
        "Occasional questions about our service.",
        "en",
    )


def test_the_seeded_purposes_and_notices_are_written_in_every_language():
    for purpose in Purpose.objects.all():
        assert set(purpose.translations) == {"id", "de", "fa"}, purpose.code
        purpose.full_clean()  # every language whole
        assert purpose_text(purpose, "de").name != purpose.name
    notice = PrivacyNotice.objects.get(version=1)
    assert set(notice.translations) == {"id", "de", "fa"}
    notice.full_clean()
    assert notice_text(notice, "fa").title == "اطلاعیهٔ حریم خصوصی"


def test_an_edited_seeded_text_is_not_given_the_old_translation():
    Purpose.objects.filter(code="analytics").update(
        description="Edited by an administrator.", translations={}
    )
    seed.translate_seeded(apps, None)
    assert Purpose.objects.get(code="analytics").translations == {}
    assert Purpose.objects.get(code="marketing_sms").translations  # left as it was


def test_a_seeded_purpose_renamed_is_not_given_the_old_translation():
    """Its description is the seeded one, its name is not: the seeded translated name
    would say something else."""
    Purpose.objects.filter(code="analytics").update(
        name="Improving our app", translations={}
    )
    seed.translate_seeded(apps, None)
    assert Purpose.objects.get(code="analytics").translations == {}


def _notice_with_change(purpose, *, notice_translations, change_translations):
    notice = PrivacyNotice.objects.create(
        version=7,
        title="Notice",
        summary="Surveys added.",
        body="The body.",
        effective_at=timezone.now(),
        translations=notice_translations,
    )
    NoticeChange.objects.create(
        notice=notice,
        purpose=purpose,
        material=True,
        description="New purpose.",
        translations=change_translations,
    )
    return notice


NOTICE_ID = {"title": "Pemberitahuan", "summary": "Survei ditambahkan.", "body": "Isi."}


def test_a_notice_is_given_whole_in_the_language_when_every_part_is_written(surveys):
    notice = _notice_with_change(
        surveys,
        notice_translations={"id": NOTICE_ID},
        change_translations={"id": {"description": "Tujuan baru."}},
    )
    text = notice_text(notice, "id")
    assert text.language == "id"
    assert (text.title, text.summary, text.body) == (
        "Pemberitahuan",
        "Survei ditambahkan.",
        "Isi.",
    )
    [change] = text.changes
    assert (change.purpose_name, change.description) == ("Survei", "Tujuan baru.")


def test_a_notice_with_one_part_missing_in_a_language_is_given_wholly_in_english(
    surveys,
):
    # The notice is written in Indonesian, its change's description is not.
    notice = _notice_with_change(
        surveys, notice_translations={"id": NOTICE_ID}, change_translations={}
    )
    text = notice_text(notice, "id")
    assert text.language == "en"
    assert (text.title, text.summary) == ("Notice", "Surveys added.")
    [change] = text.changes
    assert (change.purpose_name, change.description) == ("Surveys", "New purpose.")


# Staff input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("translations", "says"),
    [
        ({"xx": INDONESIAN}, "Unknown language 'xx'"),
        ({"en": INDONESIAN}, "Unknown language 'en'"),  # English is the source fields
        ({"id": {"name": "Survei"}}, "exactly: name, description"),
        ({"id": {"name": "Survei", "description": " "}}, "Write the description"),
        (["id"], "keyed by language"),
    ],
)
def test_translations_that_are_not_whole_known_languages_are_refused(
    surveys, translations, says
):
    surveys.translations = translations
    with pytest.raises(ValidationError) as raised:
        surveys.full_clean()
    assert says in " ".join(raised.value.message_dict["translations"])


def _purpose_data(**texts):
    return {
        "code": "surveys",
        "name": "Surveys",
        "description": "Occasional questions.",
        "legal_basis": "consent",
        "channel": "email",
        "position": 60,
        "min_notice_version": 0,
        "active": "on",
        **texts,
    }


def test_the_staff_form_keeps_each_language_written_whole():
    form = PurposeAdminForm(
        data=_purpose_data(
            name_id="Survei",
            description_id="Pertanyaan sesekali.",
            name_de="Umfragen",
            description_de="Gelegentliche Fragen.",
        )
    )
    assert form.is_valid(), form.errors
    purpose = form.save()
    assert purpose.translations == {
        "id": {"name": "Survei", "description": "Pertanyaan sesekali."},
        "de": {"name": "Umfragen", "description": "Gelegentliche Fragen."},
    }
    # Shown again for editing.
    again = PurposeAdminForm(instance=purpose)
    assert again["name_de"].value() == "Umfragen"
    assert again["description_fa"].value() == ""


def test_the_staff_form_refuses_half_a_language_on_the_missing_field():
    form = PurposeAdminForm(data=_purpose_data(name_fa="نظرسنجی"))
    assert not form.is_valid()
    assert list(form.errors) == ["description_fa"]
    assert "Persian" in form.errors["description_fa"][0]


def test_the_change_form_takes_a_description_per_language(surveys):
    notice = PrivacyNotice.objects.create(
        version=9, title="N", summary="S", body="B", effective_at=timezone.now()
    )
    form = NoticeChangeAdminForm(
        data={
            "notice": notice.pk,
            "purpose": surveys.pk,
            "description": "New purpose.",
            "description_id": "Tujuan baru.",
        }
    )
    assert form.is_valid(), form.errors
    assert form.save().translations == {"id": {"description": "Tujuan baru."}}


def test_privacy_admins_write_the_languages_on_the_purposes_admin_page(client):
    user = user_ensure_staff(
        actor=None, username="pa", role=Role.PRIVACY_ADMIN, password="long-password-1"
    )
    sign_in(client, user)
    page = client.get(reverse("admin:consent_purpose_add"))
    for field in PURPOSE_TEXT_FIELDS:
        for code in ("id", "de", "fa"):
            assert f'name="{field}_{code}"' in page.content.decode()
    response = client.post(
        reverse("admin:consent_purpose_add"),
        _purpose_data(name_id="Survei", description_id=""),
    )
    assert response.status_code == 200  # shown again, with the error
    assert not Purpose.objects.filter(code="surveys").exists()
    page = client.get(reverse("admin:consent_privacynotice_add"))
    for field in NOTICE_TEXT_FIELDS:
        assert f'name="{field}_fa"' in page.content.decode()


# Emails ----------------------------------------------------------------------------


@pytest.fixture
def sent_languages(monkeypatch):
    """The language active when each opt-in email was handed to the mail backend."""
    seen: list[str] = []
    send_mail = consent_services.send_mail

    def recording(**kwargs):
        seen.append(translation.get_language())
        return send_mail(**kwargs)

    monkeypatch.setattr(consent_services, "send_mail", recording)
    return seen


def test_the_opt_in_email_to_an_indonesian_customer_is_written_in_indonesian(
    surveys, sent_languages, django_capture_on_commit_callbacks
):
    customer = customer_language_set(
        customer=make_customer(email="siti@example.com"), language="id"
    )
    with django_capture_on_commit_callbacks(execute=True):
        consent_grant(
            actor=None, customer=customer, purpose_code="surveys", source="self_service"
        )
    assert sent_languages == ["id"]
    [message] = mail.outbox
    assert "Survei" in message.subject
    assert "Surveys" not in message.subject + message.body
    assert "/me/confirm/" in message.body
    # Amanah's own sentences in Indonesian too (locale/id): no English one left.
    with translation.override("id"):
        button = translation.gettext("Yes, confirm")
        ignore = translation.gettext(
            "If this was not you, ignore this message: nothing changes."
        )
    assert button != "Yes, confirm"
    assert f'"{button}"' in message.body
    assert ignore in message.body
    for english in ("Please confirm", "You asked", "Confirm within", "If this was"):
        assert english not in message.subject + message.body


def test_the_opt_in_email_follows_the_page_language_when_none_was_saved(
    surveys, sent_languages, django_capture_on_commit_callbacks
):
    customer = make_customer(email="siti@example.com")
    with translation.override("id"), django_capture_on_commit_callbacks(execute=True):
        consent_grant(
            actor=None, customer=customer, purpose_code="surveys", source="self_service"
        )
    assert sent_languages == ["id"]
    assert "Survei" in mail.outbox[0].subject


def test_the_opt_in_email_is_wholly_english_when_the_purpose_lacks_the_language(
    surveys, sent_languages, django_capture_on_commit_callbacks
):
    customer = customer_language_set(
        customer=make_customer(email="jonas@example.com"), language="de"
    )
    with django_capture_on_commit_callbacks(execute=True):
        consent_grant(
            actor=None, customer=customer, purpose_code="surveys", source="self_service"
        )
    assert sent_languages == ["en"]
    assert mail.outbox[0].subject == "Please confirm: Surveys"


def test_the_notice_email_is_written_in_each_customers_language(surveys, monkeypatch):
    notice = _notice_with_change(
        surveys,
        notice_translations={"id": NOTICE_ID},
        change_translations={"id": {"description": "Tujuan baru."}},
    )
    siti = customer_language_set(
        customer=make_customer(email="siti@example.com"), language="id"
    )
    jane = make_customer(email="jane@example.com", country="GB", region="")
    for customer in (siti, jane):
        consent_answer(customer, "surveys")
    seen: dict[str, str] = {}
    send = consent_services.send_unless_refused

    def recording(message, **kwargs):
        seen[message.to[0]] = translation.get_language()
        return send(message, **kwargs)

    monkeypatch.setattr(consent_services, "send_unless_refused", recording)
    assert (
        notice_announce_batch(notice_id=notice.pk, customer_ids=[siti.pk, jane.pk]) == 2
    )
    assert seen == {"siti@example.com": "id", "jane@example.com": "en"}
    by_address = {m.to[0]: m for m in mail.outbox}
    assert "Survei ditambahkan." in by_address["siti@example.com"].body
    assert "- Survei: Tujuan baru." in by_address["siti@example.com"].body
    assert "Surveys added." not in by_address["siti@example.com"].body
    assert "- Surveys: New purpose." in by_address["jane@example.com"].body


def test_the_notice_email_without_a_saved_language_is_in_the_countrys(
    surveys, monkeypatch
):
    """As a breach notice would be (apps/customers/selectors.customer_language)."""
    notice = _notice_with_change(
        surveys,
        notice_translations={"id": NOTICE_ID},
        change_translations={"id": {"description": "Tujuan baru."}},
    )
    budi = make_customer(email="budi@example.com", country="ID")
    consent_answer(budi, "surveys")
    seen: list[str] = []
    send = consent_services.send_unless_refused

    def recording(message, **kwargs):
        seen.append(translation.get_language())
        return send(message, **kwargs)

    monkeypatch.setattr(consent_services, "send_unless_refused", recording)
    assert notice_announce_batch(notice_id=notice.pk, customer_ids=[budi.pk]) == 1
    assert seen == ["id"]
    assert "Survei ditambahkan." in mail.outbox[0].body


def test_an_opt_in_staff_started_is_in_the_customers_language_not_the_staff_page(
    surveys, sent_languages, django_capture_on_commit_callbacks, support_agent
):
    budi = make_customer(email="budi@example.com", country="ID")
    with translation.override("en"), django_capture_on_commit_callbacks(execute=True):
        consent_grant(
            actor=support_agent,
            customer=budi,
            purpose_code="surveys",
            source="staff",
            reason="Customer asked on the phone",
        )
    assert sent_languages == ["id"]
    assert "Survei" in mail.outbox[0].subject


# The public receipt check ----------------------------------------------------------


def test_the_receipt_check_names_the_purpose_in_the_visitors_language(client):
    customer = make_customer(email="siti@example.com")
    consent_answer(customer, "analytics")
    bundle = consent_receipts_for_customer(customer=customer)
    html = client.post(
        reverse("receipt-verify"),
        {"receipt": json.dumps(bundle["receipts"][0])},
        HTTP_ACCEPT_LANGUAGE="id",
    ).content.decode()
    assert '<html lang="id"' in html
    assert "— Analitik produk: " in html
    assert "Product analytics" not in html
