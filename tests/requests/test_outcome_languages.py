"""Outcomes Amanah writes with values in them (the purposes of a marketing objection,
a hold's reason) are on My data in the page's language, never English inside another
language: from the parts stored beside the English text
(`DataRequest.outcome_parts`, selectors.request_outcome_text)."""

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from apps.consent.models import Purpose
from apps.requests.models import DataRequest, RequestKind, RequestStatus
from apps.requests.selectors import request_outcome_text
from apps.requests.services import request_open, request_transition
from apps.retention.services import hold_place
from tests.accounts.helpers import sign_in
from tests.consent.factories import consent_answer
from tests.portal.factories import make_account

pytestmark = pytest.mark.django_db

MY_DATA = reverse("portal:data")


@pytest.fixture
def offers():
    Purpose.objects.filter(direct_marketing=True).update(direct_marketing=False)
    return Purpose.objects.create(
        code="offers",
        name="Special offers",
        description="Our offers by email.",
        direct_marketing=True,
        translations={
            "de": {"name": "Sonderangebote", "description": "Unsere Angebote."}
        },
    )


def _german_page(client, customer) -> str:
    sign_in(client, customer.user)
    client.post(reverse("portal:language"), {"language": "de"})
    return client.get(MY_DATA).content.decode()


def test_a_marketing_objection_is_told_in_german_with_german_purpose_names(
    client, offers
):
    me = make_account()
    consent_answer(me, "offers")
    request = request_open(
        actor=me.user, customer=me, kind=RequestKind.OBJECTION, objection_to="marketing"
    )
    request.refresh_from_db()
    # Staff and every other reader keep the English text.
    assert request.outcome.startswith(
        "We no longer use your data for direct marketing (special offers): we "
        "withdrew what you had agreed to or asked for (special offers)."
    )
    page = _german_page(client, me)
    assert (
        "Wir verwenden Ihre Daten nicht mehr für Direktwerbung (Sonderangebote): "
        "Wir haben zurückgenommen, wozu Sie eingewilligt oder worum Sie gebeten "
        "hatten (Sonderangebote)."
    ) in page
    assert "We no longer use" not in page
    assert "special offers" not in page


def test_a_purpose_not_written_in_the_language_is_marked_english(offers):
    offers.translations = {}
    offers.save()
    me = make_account()
    request = request_open(
        actor=me.user, customer=me, kind=RequestKind.OBJECTION, objection_to="marketing"
    )
    request.refresh_from_db()
    with translation.override("id"):
        text = request_outcome_text(request)
    assert (
        "Kami tidak lagi menggunakan data Anda untuk pemasaran langsung "
        '(<span lang="en">special offers</span>)' in text
    )
    assert "Anda tidak pernah menyetujui satu pun di antaranya" in text


def test_a_held_erasure_quotes_the_reason_as_written_inside_german(
    client, privacy_admin, django_capture_on_commit_callbacks
):
    me = make_account()
    hold_place(actor=privacy_admin, customer=me, reason="Chargeback dispute pending")
    with django_capture_on_commit_callbacks(execute=True):
        request = request_open(actor=me.user, customer=me, kind="erasure")
    request.refresh_from_db()
    assert request.outcome.startswith(
        "We cannot erase your data yet: the law requires us to keep it (Chargeback "
        "dispute pending)."
    )
    assert request.outcome_parts == {
        "code": "held_reason",
        "params": {"hold": request.outcome_parts["params"]["hold"]},
    }
    page = _german_page(client, me)
    assert (
        "Wir können Ihre Daten noch nicht löschen: Das Gesetz verpflichtet uns, sie "
        "aufzubewahren (<bdi>Chargeback dispute pending</bdi>)."
    ) in page
    assert "We cannot erase" not in page


def test_an_outcome_without_parts_is_shown_as_before(client):
    me = make_account()
    DataRequest.objects.create(
        customer=me,
        opened_by=me.user,
        kind=RequestKind.ACCESS,
        status=RequestStatus.COMPLETED,
        received_at=timezone.now(),
        due_at=timezone.now(),
        outcome="Your data was erased.",
    )
    DataRequest.objects.create(
        customer=me,
        opened_by=me.user,
        kind=RequestKind.RECTIFICATION,
        status=RequestStatus.REFUSED,
        received_at=timezone.now(),
        due_at=timezone.now(),
        outcome="We could not confirm it is you <here>.",
    )
    page = _german_page(client, me)
    with translation.override("de"):
        erased = translation.gettext("Your data was erased.")
    assert erased != "Your data was erased."
    assert erased in page
    # A staff note: as written (escaped), as before.
    assert "We could not confirm it is you &lt;here&gt;." in page


def test_a_staff_note_stays_as_written_before_amanah_s_sentence_in_german(
    client, privacy_admin
):
    me = make_account()
    request = request_open(actor=me.user, customer=me, kind="restriction")
    request_transition(actor=privacy_admin, request=request, status="in_progress")
    request_transition(
        actor=privacy_admin, request=request, status="completed", note="Done as asked"
    )
    request.refresh_from_db()
    assert request.outcome == (
        "Done as asked. The use of your data is restricted: we keep it, and use it "
        "only for legal claims, not for marketing or sharing. We will tell you "
        "before the restriction is lifted."
    )
    page = _german_page(client, me)
    assert (
        "Done as asked. Die Verarbeitung Ihrer Daten ist eingeschränkt: Wir "
        "speichern sie"
    ) in page
    assert "The use of your data" not in page


def test_a_lifted_restriction_is_told_with_its_dates_in_the_language():
    lifted = {
        "code": "lifted",
        "params": {"placed": "2026-01-05", "lifted": "2026-02-01"},
    }
    request = DataRequest(
        outcome=(
            "We upheld your objection: we no longer use your data for what you "
            "objected to. The use of your data was restricted from 2026-01-05 until "
            "2026-02-01, when we lifted the restriction after telling you."
        ),
        outcome_parts={
            "code": "sentences",
            "params": {"sentences": [{"code": "upheld_bare"}, lifted]},
        },
    )
    with translation.override("id"):
        text = request_outcome_text(request)
    assert text == (
        "Kami menerima keberatan Anda: kami tidak lagi menggunakan data Anda untuk "
        "hal yang menjadi keberatan Anda. Pemrosesan data Anda dibatasi sejak "
        "2026-01-05 hingga 2026-02-01, saat kami mencabut pembatasan tersebut "
        "setelah memberi tahu Anda."
    )
    # Parts that do not match the stored text: the stored text, as before.
    request.outcome = "Something else."
    with translation.override("id"):
        assert request_outcome_text(request) == "Something else."
