"""The public data policy in the visitor's language: the page's own words are marked
for translation, and each purpose and policy is given whole in one language, which
privacy admins write per language."""

import pytest
from django.urls import reverse

from apps.accounts.models import Role
from apps.audit.models import AuditEvent
from apps.consent.models import Purpose
from apps.retention.errors import RetentionError
from apps.retention.models import RetentionPolicy
from apps.retention.services import policy_save
from tests.accounts.factories import UserFactory
from tests.accounts.helpers import sign_in

pytestmark = pytest.mark.django_db


def test_the_data_policy_gives_the_purposes_in_the_visitors_language(client):
    html = client.get(
        reverse("data-policy"), HTTP_ACCEPT_LANGUAGE="id"
    ).content.decode()
    assert '<html lang="id"' in html
    assert '<strong lang="id">Email pemasaran</strong>' in html
    assert "Penawaran dan berita melalui email" in html
    assert "Marketing emails" not in html


def test_a_purpose_not_written_in_the_language_is_given_whole_in_english(client):
    Purpose.objects.filter(code="analytics").update(translations={})
    html = client.get(
        reverse("data-policy"), HTTP_ACCEPT_LANGUAGE="de"
    ).content.decode()
    assert '<strong lang="en">Product analytics</strong>' in html
    assert '<span lang="en">How you use our services' in html
    assert '<strong lang="de">Werbe-E-Mails</strong>' in html


def test_persian_reads_right_to_left(client):
    html = client.get(
        reverse("data-policy"), HTTP_ACCEPT_LANGUAGE="fa"
    ).content.decode()
    assert 'dir="rtl"' in html
    assert "ایمیل‌های تبلیغاتی" in html


def test_the_policies_are_given_whole_in_the_visitors_language(client):
    html = client.get(
        reverse("data-policy"), HTTP_ACCEPT_LANGUAGE="de"
    ).content.decode()
    assert ' lang="de">Wenn Ihr Konto geschlossen wird' in html
    assert "Speicherbegrenzung (DSGVO Art. 5 Abs. 1 lit. e, UU PDP Art. 43)" in html
    assert "When your account is closed" not in html


def test_a_policy_not_written_in_the_language_is_given_whole_in_english(client):
    RetentionPolicy.objects.filter(code="access-log").update(translations={})
    html = client.get(
        reverse("data-policy"), HTTP_ACCEPT_LANGUAGE="id"
    ).content.decode()
    assert ' lang="en">The record of when staff looked at your data' in html
    assert 'class="small" lang="en">Accountability (GDPR art. 5(2))' in html
    assert ' lang="id">Ketika akun Anda ditutup' in html


@pytest.fixture
def privacy_admin(client):
    user = UserFactory(username="pa-texts", role=Role.PRIVACY_ADMIN)
    sign_in(client, user)
    return user


def _policy_data(policy, **texts):
    return {
        "covers": policy.covers,
        "category": "",
        "period_days": policy.period_days,
        "trigger": policy.trigger,
        "action": policy.action,
        "legal_basis": policy.legal_basis,
        "description": policy.description,
        "enabled": "on",
        **texts,
    }


def test_privacy_admins_write_a_policy_in_each_language(client, privacy_admin):
    policy = RetentionPolicy.objects.get(code="interactions")
    page = client.get(reverse("retention:policy-edit", args=["interactions"]))
    html = page.content.decode()
    assert 'name="description_fa"' in html
    assert "Aufzeichnungen über Supportfälle" in html  # the saved German, to edit
    response = client.post(
        reverse("retention:policy-edit", args=["interactions"]),
        _policy_data(
            policy, description_id="Dihapus setahun kemudian.", legal_basis_id="Dasar."
        ),
    )
    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.translations == {
        "id": {"description": "Dihapus setahun kemudian.", "legal_basis": "Dasar."}
    }
    event = AuditEvent.objects.get(action="retention.policy_changed")
    assert event.details["changed"] == ["translations"]


def test_half_a_language_is_refused_on_the_missing_field(client, privacy_admin):
    policy = RetentionPolicy.objects.get(code="interactions")
    response = client.post(
        reverse("retention:policy-edit", args=["interactions"]),
        _policy_data(policy, description_de="Gelöscht nach einem Jahr."),
    )
    assert response.status_code == 400
    assert response.context["form"].errors == {
        "legal_basis_de": [
            "Write every text in German, or none: customers get one whole language, "
            "never a mix."
        ]
    }
    policy.refresh_from_db()
    assert policy.translations["de"]["description"].startswith("Aufzeichnungen")


def test_the_service_refuses_an_unknown_language(privacy_admin):
    policy = RetentionPolicy.objects.get(code="interactions")
    data = _policy_data(
        policy, translations={"xx": {"description": "?", "legal_basis": "?"}}
    )
    with pytest.raises(RetentionError) as raised:
        policy_save(actor=privacy_admin, code="interactions", data=data)
    assert raised.value.field == "translations"
    assert "Unknown language 'xx'" in raised.value.message


def test_a_legal_basis_is_lower_case_inside_an_english_sentence_only(client):
    from django.utils import translation

    from apps.consent.models import LegalBasis

    basis = "legitimate_interest"
    Purpose.objects.filter(code="analytics").update(legal_basis=basis)
    english = client.get(
        reverse("data-policy"), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert f"legal basis: {str(LegalBasis(basis).label).lower()}" in english
    german = client.get(
        reverse("data-policy"), HTTP_ACCEPT_LANGUAGE="de"
    ).content.decode()
    with translation.override("de"):
        label = str(LegalBasis(basis).label)
    assert label != label.lower()
    assert label in german
    assert label.lower() not in german
