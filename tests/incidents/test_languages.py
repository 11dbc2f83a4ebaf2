"""Breach notices and status updates in the customer's language: wholly one language,
never a mix (issue 21)."""

import struct

import pytest
from django.utils import translation

from apps.audit.models import AuditEvent
from apps.customers.models import Customer
from apps.incidents.errors import IncidentError
from apps.incidents.models import IncidentNotice, IncidentText, NoticeWording
from apps.incidents.services import (
    affected_select,
    incident_text_save,
    notices_queue,
    status_publish,
)
from apps.incidents.tasks import notices_send_task
from tests.accounts.helpers import sign_in
from tests.customers.factories import make_customer
from tests.incidents.factories import make_incident
from tests.portal.factories import PASSWORD, make_account

pytestmark = pytest.mark.django_db

# Indonesian for the fixed parts of a notice and an update (what the catalog holds).
INDONESIAN = {
    "Important: an incident involving your personal data": (
        "Penting: insiden yang melibatkan data pribadi Anda"
    ),
    "Dear customer,": "Pelanggan yang terhormat,",
    "What happened": "Apa yang terjadi",
    "Which of your data was involved": "Data Anda yang terlibat",
    "What we are doing": "Apa yang kami lakukan",
    "What you can do": "Apa yang dapat Anda lakukan",
    "Whom to contact": "Siapa yang dapat dihubungi",
    "When: %(date)s": "Waktu: %(date)s",
    "To make up for it we offer you: %(offer)s. Your code: %(code)s": (
        "Sebagai permohonan maaf kami menawarkan: %(offer)s. Kode Anda: %(code)s"
    ),
    "Contact details": "Detail kontak",
    "Identity": "Identitas",
    "Voucher": "Voucher",
    "Identified": "Teridentifikasi",
    "Your data is not at risk": "Data Anda tidak berisiko",
    "Not written in your language: shown in %(language)s.": (
        "Tidak ditulis dalam bahasa Anda: ditampilkan dalam %(language)s."
    ),
}
ENGLISH_FIXED = [
    "Dear customer",
    "What happened",
    "Which of your data",
    "What we are doing",
    "What you can do",
    "Whom to contact",
    "When:",
    "Contact details",
]
INDONESIAN_TEXT = {
    "what_happened": "Ekspor yang salah konfigurasi membuat vendor melihat kontak.",
    "what_we_are_doing": "Kami menutup ekspor dan mengaudit setiap vendor.",
    "what_you_can_do": "Waspadai pesan yang meminta kata sandi Anda.",
    "contact": "privasi@amanah.example, +62 21 5091 0000",
}


def mo_file(messages: dict[str, str]) -> bytes:
    """A GNU gettext catalog (.mo) holding `messages`, with its header."""
    messages = {"": "Content-Type: text/plain; charset=UTF-8\n", **messages}
    keys = sorted(messages)
    ids = b"".join(k.encode() + b"\0" for k in keys)
    strs = b"".join(messages[k].encode() + b"\0" for k in keys)
    start = 7 * 4 + 16 * len(keys)
    offsets, pos = [], 0
    for k in keys:
        offsets += [len(k.encode()), start + pos]
        pos += len(k.encode()) + 1
    trans, pos = [], 0
    for k in keys:
        trans += [len(messages[k].encode()), start + len(ids) + pos]
        pos += len(messages[k].encode()) + 1
    header = struct.pack(
        "Iiiiiii", 0x950412DE, 0, len(keys), 7 * 4, 7 * 4 + 8 * len(keys), 0, 0
    )
    return (
        header
        + struct.pack(f"{len(offsets)}i", *offsets)
        + struct.pack(f"{len(trans)}i", *trans)
        + ids
        + strs
    )


@pytest.fixture
def indonesian(settings, tmp_path):
    """The Indonesian catalog for the fixed parts, ahead of the project's own, so the
    tests do not depend on the state of locale/ (LOCALE_PATHS resets the cache)."""
    folder = tmp_path / "id" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "django.mo").write_bytes(mo_file(INDONESIAN))
    settings.LOCALE_PATHS = [tmp_path, *settings.LOCALE_PATHS]
    yield
    translation.activate(settings.LANGUAGE_CODE)


def _queue_for(actor, incident, customer):
    affected_select(
        actor=actor, incident=incident, scope="list", customer_ids=str(customer.pk)
    )
    notices_queue(actor=actor, incident=incident)
    return IncidentNotice.objects.get(customer_id=customer.pk, channel="email")


def _with_language(customer, language):
    Customer.objects.filter(pk=customer.pk).update(language=language)
    return customer


def test_an_indonesian_customer_reads_a_wholly_indonesian_notice(
    indonesian, privacy_admin
):
    incident = make_incident(
        privacy_admin, remedy_kind="voucher", remedy_description="A 20% voucher"
    )
    incident_text_save(
        actor=privacy_admin,
        incident=incident,
        language="id",
        data={**INDONESIAN_TEXT, "remedy_description": "Voucher 20%"},
        create=True,
    )
    customer = make_customer(country="ID", region="ID-JK")  # no language chosen
    notice = _queue_for(privacy_admin, incident, customer)
    assert notice.language == "id"
    assert (
        notice.subject
        == INDONESIAN["Important: an incident involving your personal data"]
    )
    for text in INDONESIAN_TEXT.values():
        assert text in notice.body
    for heading in ("Apa yang terjadi", "Data Anda yang terlibat", "Waktu: "):
        assert heading in notice.body
    assert "Detail kontak" in notice.body
    assert "Voucher 20%" in notice.body
    # Nothing English: neither what staff wrote in English nor Amanah's fixed parts.
    for english in [
        incident.what_happened,
        incident.what_we_are_doing,
        incident.what_you_can_do,
        "A 20% voucher",
        *ENGLISH_FIXED,
    ]:
        assert english not in notice.body
    assert "---" not in notice.body


def test_without_an_indonesian_version_the_notice_is_wholly_english(
    indonesian, privacy_admin
):
    incident = make_incident(privacy_admin)
    customer = make_customer(country="ID", region="ID-JK")
    notice = _queue_for(privacy_admin, incident, customer)
    assert notice.language == "en"
    assert notice.subject == "Important: an incident involving your personal data"
    assert incident.what_happened in notice.body
    for english in ENGLISH_FIXED:
        assert english in notice.body
    for indonesian_text in INDONESIAN.values():
        if indonesian_text != "Voucher":
            assert indonesian_text.split("%")[0] not in notice.body
    assert "---" not in notice.body


@pytest.mark.parametrize(
    ("country", "saved", "expected"),
    [
        ("ID", "de", "de"),  # the saved choice beats the country
        ("DE", "id", "id"),
        ("DE", "", "de"),  # none saved: the country's
        ("IR", "", "fa"),
        ("US", "", "en"),
        ("ID", "fa", "en"),  # theirs not written: English, never the country's
    ],
)
def test_the_saved_language_beats_the_country(privacy_admin, country, saved, expected):
    incident = make_incident(privacy_admin)
    for language in ("id", "de"):
        incident_text_save(
            actor=privacy_admin,
            incident=incident,
            language=language,
            data={**INDONESIAN_TEXT, "what_happened": f"Text in {language}."},
            create=True,
        )
    if country == "IR":
        incident_text_save(
            actor=privacy_admin,
            incident=incident,
            language="fa",
            data={**INDONESIAN_TEXT, "what_happened": "Text in fa."},
            create=True,
        )
    customer = _with_language(make_customer(country=country, region=""), saved)
    notice = _queue_for(privacy_admin, incident, customer)
    assert notice.language == expected
    if expected != "en":
        assert f"Text in {expected}." in notice.body
    else:
        assert incident.what_happened in notice.body


def test_the_in_app_notice_has_html_headings_and_escapes_what_staff_wrote(
    privacy_admin,
):
    incident = make_incident(
        privacy_admin, what_happened="A <script>bad</script> export."
    )
    customer = make_customer()
    affected_select(
        actor=privacy_admin,
        incident=incident,
        scope="list",
        customer_ids=str(customer.pk),
    )
    notices_queue(actor=privacy_admin, incident=incident)
    notice = IncidentNotice.objects.get(customer_id=customer.pk, channel="in_app")
    html = notice.body_html
    assert "<h3>What happened</h3>" in html
    assert "&lt;script&gt;" in html
    assert "<script>" not in html
    assert notice.direction == "ltr"


def test_a_persian_notice_reads_right_to_left(privacy_admin):
    incident = make_incident(privacy_admin)
    incident_text_save(
        actor=privacy_admin,
        incident=incident,
        language="fa",
        data={**INDONESIAN_TEXT, "what_happened": "یک خروجی اشتباه."},
        create=True,
    )
    customer = make_customer(country="IR", region="")
    notice = _queue_for(privacy_admin, incident, customer)
    assert (notice.language, notice.direction) == ("fa", "rtl")


def test_a_notice_s_language_is_its_wording_s_and_nowhere_else():
    """Ten million notices keep one wording's language, not ten million copies of
    it that could disagree with their words."""
    notice = IncidentNotice(wording=NoticeWording(language="fa", subject="s"))
    assert (notice.language, notice.direction) == ("fa", "rtl")
    assert "language" not in {f.name for f in IncidentNotice._meta.concrete_fields}


def test_a_language_version_is_whole_and_once(privacy_admin):
    incident = make_incident(privacy_admin)
    with pytest.raises(IncidentError, match="what_you_can_do"):
        incident_text_save(
            actor=privacy_admin,
            incident=incident,
            language="id",
            data={**INDONESIAN_TEXT, "what_you_can_do": " "},
            create=True,
        )
    incident_text_save(
        actor=privacy_admin,
        incident=incident,
        language="id",
        data=INDONESIAN_TEXT,
        create=True,
    )
    with pytest.raises(IncidentError) as duplicate:
        incident_text_save(
            actor=privacy_admin,
            incident=incident,
            language="id",
            data=INDONESIAN_TEXT,
            create=True,
        )
    assert (duplicate.value.field, duplicate.value.code) == ("language", "duplicate")
    for language in ("en", "xx"):
        with pytest.raises(IncidentError, match="Not a language"):
            incident_text_save(
                actor=privacy_admin,
                incident=incident,
                language=language,
                data=INDONESIAN_TEXT,
                create=True,
            )
    assert IncidentText.objects.filter(incident=incident).count() == 1
    assert AuditEvent.objects.filter(action="incident.text_saved").count() == 1


# The staff form -----------------------------------------------------------------


def _add(client, incident, language, **fields):
    data = {"action": "text_add", "text-new-language": language}
    data.update({f"text-new-{k}": v for k, v in {**INDONESIAN_TEXT, **fields}.items()})
    return client.post(f"/compliance/incidents/{incident.pk}/", data)


def test_staff_add_and_change_a_language_version_on_the_incident_page(
    client, privacy_admin
):
    incident = make_incident(privacy_admin)
    sign_in(client, privacy_admin)
    response = _add(client, incident, "id")
    assert response.status_code == 302
    text = IncidentText.objects.get(incident=incident, language="id")
    assert text.what_happened == INDONESIAN_TEXT["what_happened"]
    page = client.get(f"/compliance/incidents/{incident.pk}/").content.decode()
    assert "Bahasa Indonesia version" in page
    data = {
        "action": "text_edit",
        "text_language": "id",
        **{f"text-id-{k}": v for k, v in INDONESIAN_TEXT.items()},
        "text-id-what_happened": "Teks yang diubah.",
    }
    assert client.post(f"/compliance/incidents/{incident.pk}/", data).status_code == 302
    text.refresh_from_db()
    assert text.what_happened == "Teks yang diubah."


@pytest.mark.parametrize("language", ["xx", "en", ""])
def test_the_language_form_refuses_an_unknown_language(client, privacy_admin, language):
    incident = make_incident(privacy_admin)
    sign_in(client, privacy_admin)
    response = _add(client, incident, language)
    assert response.status_code == 400
    assert response.context["text_add_form"].errors["language"]
    assert not IncidentText.objects.exists()


def test_the_language_form_refuses_a_second_version_in_one_language(
    client, privacy_admin
):
    incident = make_incident(privacy_admin)
    sign_in(client, privacy_admin)
    assert _add(client, incident, "id").status_code == 302
    response = _add(client, incident, "id", what_happened="Lagi.")
    assert response.status_code == 400
    assert "already" in response.context["text_add_form"].errors["language"][0]
    assert IncidentText.objects.get().what_happened == INDONESIAN_TEXT["what_happened"]


def test_the_language_form_wants_every_required_element(client, privacy_admin):
    incident = make_incident(privacy_admin)
    sign_in(client, privacy_admin)
    response = _add(client, incident, "de", contact="")
    assert response.status_code == 400
    assert response.context["text_add_form"].errors["contact"]


# The status page ---------------------------------------------------------------


def _publish(actor, incident, **texts):
    return status_publish(
        actor=actor,
        incident=incident,
        phase="identified",
        message="Payments fail; your data is not at risk.",
        data_at_risk="no",
        texts=texts,
    )


def test_the_status_page_shows_each_update_wholly_in_one_language(
    client, indonesian, privacy_admin
):
    incident = make_incident(privacy_admin, kind="outage", title="Checkout is down")
    _publish(
        privacy_admin,
        incident,
        id={"title": "Pembayaran terganggu", "message": "Pembayaran gagal."},
    )
    other = make_incident(privacy_admin, kind="outage", title="Slow search")
    _publish(privacy_admin, other)  # English only

    html = client.get("/status/", HTTP_ACCEPT_LANGUAGE="id").content.decode()
    # Newest first: the English-only one, then the one written in Indonesian.
    english_update, indonesian_update = html.split('<article class="update"')[1:]
    assert 'lang="id"' in indonesian_update
    assert "Pembayaran terganggu" in indonesian_update
    assert "Pembayaran gagal." in indonesian_update
    assert "Teridentifikasi" in indonesian_update
    assert "Data Anda tidak berisiko" in indonesian_update
    assert "Checkout is down" not in html
    assert "Payments fail" not in indonesian_update
    # The English-only one, wholly English, and said so (in the visitor's language).
    assert 'lang="en"' in english_update
    assert "Slow search" in english_update
    assert "Identified" in english_update
    assert "Your data is not at risk" in english_update
    assert "Teridentifikasi" not in english_update
    assert "Tidak ditulis dalam bahasa Anda: ditampilkan dalam" in html
    assert html.count("Tidak ditulis dalam bahasa Anda") == 1

    english = client.get("/status/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Checkout is down" in english
    assert "Pembayaran" not in english
    assert "Not written in your language" not in english


def test_the_status_feed_carries_every_language(client, privacy_admin):
    incident = make_incident(privacy_admin, kind="outage", title="Checkout is down")
    _publish(
        privacy_admin,
        incident,
        de={"title": "Kasse gestört", "message": "Zahlungen schlagen fehl."},
    )
    update = client.get("/status.json").json()["updates"][0]
    assert update["message"].startswith("Payments fail")
    assert update["texts"] == {
        "de": {"title": "Kasse gestört", "message": "Zahlungen schlagen fehl."}
    }


def test_an_update_in_a_language_needs_its_title_and_message(client, privacy_admin):
    incident = make_incident(privacy_admin, kind="outage", title="Checkout is down")
    with pytest.raises(IncidentError) as refused:
        _publish(privacy_admin, incident, id={"title": "", "message": "Gagal."})
    assert refused.value.field == "message_id"
    with pytest.raises(IncidentError):
        _publish(privacy_admin, incident, xx={"title": "T", "message": "M"})
    assert not incident.status_updates.exists()
    sign_in(client, privacy_admin)
    response = client.post(
        f"/compliance/incidents/{incident.pk}/",
        {
            "action": "status",
            "phase": "identified",
            "message": "Payments fail; your data is not at risk.",
            "data_at_risk": "no",
            "title_id": "Pembayaran terganggu",
        },
    )
    assert response.status_code == 400
    assert response.context["status_form"].errors["message_id"]
    assert not incident.status_updates.exists()


def test_a_status_update_in_a_language_holding_personal_data_is_refused(
    privacy_admin,
):
    incident = make_incident(privacy_admin, kind="outage", title="Checkout is down")
    with pytest.raises(IncidentError) as refused:
        _publish(
            privacy_admin,
            incident,
            id={"title": "Gangguan", "message": "Kirim email ke jane@example.com."},
        )
    assert refused.value.field == "message_id"
    assert refused.value.code == "personal_data"


def test_my_notices_shows_the_notice_with_headings_in_its_language(
    client, indonesian, privacy_admin
):
    incident = make_incident(privacy_admin)
    incident_text_save(
        actor=privacy_admin,
        incident=incident,
        language="id",
        data=INDONESIAN_TEXT,
        create=True,
    )
    me = make_account(email="me@example.com", country="ID", region="ID-JK")
    _queue_for(privacy_admin, incident, me)
    notices_send_task.delay(str(incident.pk))
    client.post("/me/login/", {"email": "me@example.com", "password": PASSWORD})
    page = client.get("/me/notices/").content.decode()
    assert 'lang="id" dir="ltr"' in page
    assert "<h3>Apa yang terjadi</h3>" in page
    assert INDONESIAN_TEXT["what_we_are_doing"] in page
    assert incident.what_we_are_doing not in page
    assert "-----" not in page


PERSIAN_MESSAGE = "پرداخت‌ها انجام نمی‌شوند."  # noqa: RUF001 - Persian letters


def test_the_status_banner_says_which_language_it_is_in(client, privacy_admin):
    incident = make_incident(privacy_admin, kind="outage", title="Checkout is down")
    _publish(
        privacy_admin,
        incident,
        fa={"title": "پرداخت مختل است", "message": PERSIAN_MESSAGE},
    )
    # The banner shows on signed-in customers' pages.
    client.force_login(make_account(email="sara@example.com").user)
    html = client.get("/privacy/", HTTP_ACCEPT_LANGUAGE="fa").content.decode()
    assert f'<span lang="fa" dir="rtl">{PERSIAN_MESSAGE}</span>' in html
    html = client.get("/privacy/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert (
        '<span lang="en" dir="ltr">Payments fail; your data is not at risk.</span>'
        in html
    )


def test_the_status_page_names_each_component_in_one_whole_language(client):
    from apps.incidents.models import StatusComponent

    StatusComponent.objects.create(name="Warehouse", position=99)
    client.cookies["django_language"] = "de"
    page = client.get("/status/").content.decode()
    assert '<span lang="de" dir="ltr">Zahlungen</span>' in page  # seeded (0007)
    assert '<span lang="en" dir="ltr">Warehouse</span>' in page  # none written
    client.cookies["django_language"] = "fa"
    page = client.get("/status/").content.decode()
    assert '<span lang="fa" dir="rtl">پرداخت‌ها</span>' in page  # noqa: RUF001
