"""The public receipt check answers in the visitor's language, its refusals too (the
signature checks' own sentences stay English for the shell and the audit checks)."""

import json

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from apps.consent.receipts import RECEIPT_ERRORS, receipts_verify
from apps.consent.selectors import consent_receipts_for_customer
from apps.consent.services import consent_record
from apps.crypto.errors import SignatureInvalid
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _language_restored():
    """A page request leaves its language active: give the next test English."""
    with translation.override("en"):
        yield


@pytest.fixture
def receipts():
    customer = make_customer()
    for granted in (True, False):
        consent_record(
            actor=None,
            customer=customer,
            purpose_code="analytics",
            granted=granted,
            source="self_service",
        )
    return consent_receipts_for_customer(customer=customer)["receipts"]


def _altered(receipts):
    receipt = dict(receipts[0])
    receipt["at"] = receipt["at"].replace("20", "19", 1)
    return receipt


@pytest.mark.parametrize("language", ["id", "de", "fa"])
def test_a_refused_receipt_is_explained_in_the_visitors_language(receipts, language):
    response = Client().post(
        reverse("receipt-verify"),
        {"receipt": json.dumps(_altered(receipts))},
        HTTP_ACCEPT_LANGUAGE=language,
    )
    text = response.content.decode()
    with translation.override(language):
        said = str(RECEIPT_ERRORS["bad_signature"])
    with translation.override("en"):
        english = str(RECEIPT_ERRORS["bad_signature"])
    assert response.status_code == 400
    assert said != english
    assert said.replace("'", "&#x27;") in text
    assert "altered after it was signed" not in text


def test_a_bundle_names_the_receipt_in_the_visitors_language(receipts):
    with translation.override("de"), pytest.raises(SignatureInvalid) as caught:
        receipts_verify([receipts[1], _altered(receipts)])
    assert "Receipt 2 of 2" not in caught.value.message
    assert "altered after it was signed" not in caught.value.message
    assert caught.value.code == "bad_signature"


def test_in_english_the_sentences_are_the_checks_own(receipts):
    with pytest.raises(SignatureInvalid) as caught:
        receipts_verify([receipts[1], _altered(receipts)])
    assert caught.value.message == (
        "Receipt 2 of 2: This consent receipt's signature does not match its "
        "content: it was altered after it was signed."
    )
    with pytest.raises(SignatureInvalid, match=r"^This is not a consent receipt\.$"):
        receipts_verify({"type": "something else"})
