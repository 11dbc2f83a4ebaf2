import pytest

from apps.customers.validation import (
    PersonalDataKind,
    contains_card_number,
    luhn_valid,
    national_id_valid,
    nik_valid,
    person_markers,
    person_mentions,
    personal_data_found,
    personal_data_shapes,
)
from tests.customers.factories import nik, nik_with_luhn


def _shaped(text: str) -> bool:
    """Personal data any free text may not hold, whoever it is about."""
    return bool(personal_data_shapes(text))


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "card 5500 0000 0000 0004 exp 12/29",
        "378282246310005",  # Amex, 15 digits
        "4222222222222",  # Visa, 13 digits
        "6011 0009 9013 9424 12",  # card followed by another group
    ],
)
def test_card_numbers_are_found(text):
    assert contains_card_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111112",  # fails Luhn
        "order 12345",
        "411111111111",  # 12 digits
        "+6281234567890",
        "2024-01-15",
        "",
    ],
)
def test_other_numbers_are_not_cards(text):
    assert not contains_card_number(text)


def test_luhn():
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


@pytest.mark.parametrize(
    ("text", "personal"),
    [
        ("Customer asked for a callback", False),
        ("Known QA account, see ticket 42", False),
        ("Case 2024-113, escalated by the team lead", False),
        ("Called +62 812-3456-7890 back", True),
        ("Her number is 0812 3456 7890", True),
        ("Write to siti@example.com", True),
        ("Card 4111 1111 1111 1111 on file", True),
    ],
)
def test_personal_data_in_free_text(text, personal):
    assert _shaped(text) is personal


# Free text about one customer (issue #15) ---------------------------------------------


def _markers(**values):
    return person_markers(**values)


def _mentions(text, **values) -> bool:
    return bool(person_mentions(text, _markers(**values)))


@pytest.mark.parametrize(
    "text",
    [
        "Customer Canary Zzyzx Quill asked about the refund",
        "customer quill asked about the refund",  # one part, any case
        "CANARY called twice",
        "Spoke with canaryzzyzxquill on chat",  # the whole name written together
        "Asked about Quill's parcel",  # a part followed by punctuation
    ],
)
def test_the_customers_name_is_found_as_whole_words(text):
    assert _mentions(text, full_name="Canary Zzyzx Quill")


@pytest.mark.parametrize(
    "text",
    [
        "Annual review of the account",  # "Ann" inside another word
        "Planned callback, see ticket 42",
        "Customer asked about the refund",
    ],
)
def test_a_name_inside_another_word_is_not_the_name(text):
    assert not _mentions(text, full_name="Ann Lee")


def test_short_name_parts_and_particles_alone_are_not_refused():
    # "Lee" (3 letters) counts; "Al" and the particle "bin" alone do not.
    assert _mentions("Lee called", full_name="Ann Lee")
    assert not _mentions("Al asked", full_name="Al Bin Rashid")
    assert not _mentions("Called the bin collection team", full_name="Ahmad bin Yusuf")
    assert _mentions("Ahmad called", full_name="Ahmad bin Yusuf")
    # Titles and degrees say nothing about who it is.
    assert not _mentions("Mrs asked about the Kom. course", full_name="Mrs. Jane Doe")
    assert not _mentions("Faktur S.Kom dikirim", full_name="Ir. Budi Santoso, S.Kom")
    assert _mentions("Pak Budi menelepon", full_name="Ir. Budi Santoso, S.Kom")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("José Müller", "Customer jose muller asked for a callback"),
        ("Jose Muller", "Customer JOSÉ MÜLLER asked for a callback"),
        ("Nguyễn Thị Ánh", "nguyen asked about the order"),
        ("Siti Nurhaliza", "SITI asked about the order"),
        ("Øyvind Ærø", "oyvind asked about the order"),
    ],
)
def test_names_compare_without_case_or_accents(name, text):
    assert _mentions(text, full_name=name)


@pytest.mark.parametrize(
    "text",
    [
        "مشتری علی‌رضا محمدی تماس گرفت",  # as stored
        "مشتری محمدي تماس گرفت",  # Arabic yeh typed for the Persian one
        "مشتری مُحَمَّدی تماس گرفت",  # with vowel marks
        "Customer علیرضا asked for a callback",  # written without the joiner
        "Customer رضا asked for a callback",  # one part of the joined name
    ],
)
def test_a_persian_name_is_found(text):
    assert _mentions(text, full_name="علی‌رضا محمدی")


def test_a_persian_name_does_not_refuse_other_persian_text():
    assert not _mentions("مشتری تماس گرفت و بازپرداخت خواست", full_name="علی‌رضا محمدی")


@pytest.mark.parametrize(
    "text",
    [
        "Called 0812 9955 0144 back",
        "Called 812-9955-0144 back",  # the local form without its trunk zero
        "number 62 812 9955 0144",
        "number (0812) 9955.0144",
        "number ۰۸۱۲۹۹۵۵۰۱۴۴",  # Persian digits
    ],
)
def test_the_customers_phone_digits_are_found_however_written(text):
    assert _mentions(text, phone="+6281299550144")


@pytest.mark.parametrize(
    "text",
    [
        "Asked about CANARY-ID-77310",
        "Asked about canary id 77310",
        "Asked about CANARYID77310",
    ],
)
def test_the_customers_national_id_is_found_with_or_without_separators(text):
    assert _mentions(text, national_id="CANARY-ID-77310")


def test_national_id_digits_are_found_inside_a_number():
    markers = {"national_id": "3174 0123 4567 8901"}
    assert _mentions("KTP 3174-0123-4567-8901 checked", **markers)
    assert _mentions("KTP 3174012345678901 checked", **markers)
    assert not _mentions("ticket 31740123 checked", **markers)


def test_the_customers_email_local_part_is_found():
    values = {"email": "canary.zzyzx@canary-amanah.example"}
    assert _mentions("wrote from canary.zzyzx yesterday", **values)
    assert _mentions("wrote from Canary Zzyzx yesterday", **values)
    assert not _mentions("wrote from the shop yesterday", **values)


def test_long_address_digits_and_payment_tokens_are_found_short_ones_not():
    values = {"address_line": "Jl. Sudirman 12, Kav. 5580123", "payment_token": ""}
    assert _mentions("parcel for plot 5580123", **values)
    assert not _mentions("parcel 12 of 40", **values)  # the house number alone
    assert _mentions(
        "token tok_1NxQ8v2eZvKYlo2C failed", payment_token="tok_1NxQ8v2eZvKYlo2C"
    )


# Common words in names ------------------------------------------------------------


def test_a_common_word_in_the_name_is_the_name_only_next_to_another_part():
    """A name part that is also a common word ("Will", "May") counts when written next
    to another part of the name, in either order, or with the name written whole; alone
    it is the word, not the customer."""
    name = {"full_name": "Will May"}
    assert not _mentions("Customer will call back in May", **name)
    assert not _mentions("May called about the refund", **name)  # the month, or her?
    assert _mentions("Will May called about the refund", **name)
    assert _mentions("May, Will asked for a callback", **name)
    assert _mentions("Chat with willmay on the shop", **name)


def test_a_common_word_next_to_an_uncommon_part_does_not_hide_it():
    name = {"full_name": "Mark Budi Santoso"}
    assert not _mentions("Mark the parcel as lost", **name)
    assert _mentions("Budi called", **name)
    assert _mentions("Pak Santoso called", **name)


def test_a_placeholder_name_does_not_refuse_every_reason():
    """A record named "Test Customer 0042" (imports, demo and load-test data): a
    reason saying "Customer asked ..." is about a customer, not this one."""
    name = {"full_name": "Bench Customer 000123"}
    assert not _mentions("Customer asked to confirm their contact details", **name)
    assert _mentions("Bench Customer called", **name)


def test_a_common_word_of_the_name_after_a_title_is_the_name():
    name = {"full_name": "Hari Wibowo"}
    assert not _mentions("Pengiriman dijadwalkan hari Senin", **name)
    assert _mentions("Pak Hari menelepon soal paket", **name)
    assert _mentions("Spoke with Mr. Hari about the refund", **name)


@pytest.mark.parametrize(
    ("full_name", "text"),
    [
        ("Rahmat Hidayat", "Pak Rahmat menelepon"),
        ("Bob Williams", "Spoke with Bob re refund"),
        ("Frank Tan", "Frank asked for a callback"),
    ],
)
def test_a_part_used_mostly_as_a_name_counts_alone(full_name, text):
    assert _mentions(text, full_name=full_name)


def test_a_mention_inside_a_longer_one_is_named_as_the_longer():
    """Overlapping and nested mentions (a name part found 125 times, inside runs of the
    name found too) come down to the outermost; an identifier holding the name is the
    identifier."""
    markers = person_markers(full_name=" ".join(["Ann"] * 50))
    assert person_mentions("ann " * 125, markers) == [PersonalDataKind.NAME]
    markers = person_markers(full_name="Canary Quill", national_id="CANARY-ID-77310")
    assert person_mentions("ref canary-id-77310", markers) == [
        PersonalDataKind.NATIONAL_ID
    ]


def test_common_indonesian_words_in_a_name():
    name = {"full_name": "Bagus Hari Utama"}
    assert not _mentions("Pembayaran utama dilakukan hari Senin, bagus", **name)
    assert _mentions("Bagus Hari menelepon", **name)
    assert _mentions("Pak Hari Utama menelepon", **name)


def test_a_one_word_name_counts_even_when_it_is_a_common_word():
    # The whole name is the one word: "Grace" alone is how she is named.
    assert _mentions("Asked about the grace period", full_name="Grace")
    assert not _mentions("Asked about the grace period", full_name="Grace Budiman")


def test_a_mailbox_that_is_a_common_word_is_no_marker():
    assert not _mentions("We hope to call back", email="hope@example.com")
    assert not _mentions("Forwarded to support", email="support@example.com")
    assert _mentions("Wrote from hope.budiman", email="hope.budiman@example.com")


# Which kind of value a refusal names ------------------------------------------------

Kind = PersonalDataKind
CANARY_VALUES = {
    "full_name": "Canary Zzyzx Quill",
    "email": "kiwi.bird@canary-amanah.example",
    "phone": "+6281299550144",
    "national_id": "CANARY-ID-77310",
    "address_line": "Jl. Sudirman 12, Kav. 5580123",
    "payment_token": "tok_1NxQ8v2eZvKYlo2C",
}


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("Customer Canary Zzyzx Quill asked", [Kind.NAME]),
        ("Customer QUILL asked", [Kind.NAME]),
        ("Asked about CANARY-ID-77310", [Kind.NATIONAL_ID]),  # not "canary", a name
        ("Called 812 9955 0144 back", [Kind.PHONE]),
        ("Called +62 812-9955-0144 back", [Kind.A_PHONE]),  # not "the customer's"
        ("Wrote from kiwi.bird yesterday", [Kind.EMAIL]),
        ("Wrote from kiwibird yesterday", [Kind.EMAIL]),
        ("Parcel for plot 5580123", [Kind.ADDRESS]),
        ("Token tok_1NxQ8v2eZvKYlo2C failed", [Kind.PAYMENT_TOKEN]),
        ("Write to someone@example.com", [Kind.AN_EMAIL]),
        ("Her number is 0812 3456 7890", [Kind.A_PHONE]),
        ("Card 4111 1111 1111 1111 on file", [Kind.A_CARD]),
        ("SSN 123-45-6789 on the form", [Kind.A_NATIONAL_ID]),
        ("Quill called from 0812 3456 7890", [Kind.NAME, Kind.A_PHONE]),
        ("Customer asked about order 4521", []),
    ],
)
def test_what_free_text_holds_is_named_by_kind(text, kinds):
    assert personal_data_found(text, _markers(**CANARY_VALUES)) == kinds


def test_without_a_customer_only_the_shapes_are_named():
    assert personal_data_found("Customer Canary Zzyzx Quill asked") == []
    assert personal_data_found("Called +62 812-9955-0144 back") == [Kind.A_PHONE]


def test_a_value_of_the_customers_with_a_general_shape_is_named_by_the_shape():
    """The refusal does not confirm that a number staff typed is the customer's."""
    value = nik_with_luhn(True)
    shapes = [Kind.A_CARD, Kind.A_NATIONAL_ID]
    assert personal_data_found(f"KTP {value} checked") == shapes
    found = personal_data_found(f"KTP {value} checked", _markers(national_id=value))
    assert found == shapes
    found = personal_data_found(
        "Called from +62 812-9955-0144", _markers(phone="+6281299550144")
    )
    assert found == [Kind.A_PHONE]


@pytest.mark.parametrize(
    "text",
    [
        "Order 4521, ticket 42, case 2024-113",
        "Refund of 125000 IDR on 2024-01-15",
        "Escalated to the team lead at 14:30",
    ],
)
def test_ordinary_numbers_do_not_mention_the_customer(text):
    assert not _mentions(
        text,
        full_name="Canary Zzyzx Quill",
        phone="+6281299550144",
        national_id="CANARY-ID-77310",
        email="canary.zzyzx@canary-amanah.example",
        address_line="7 Canary Zzyzx Lane",
    )


def test_an_erased_or_empty_customer_has_no_markers():
    assert not _markers()
    assert not _mentions("Customer Canary asked", full_name="")


# National ids in general ----------------------------------------------------------


@pytest.mark.parametrize("passes_luhn", [True, False])
@pytest.mark.parametrize(
    "parts",
    [
        {},
        {"woman": True, "day": 31, "month": 12, "year": 0},
        {"province": "11", "regency": "71"},  # Aceh, Banda Aceh
        {"province": "94"},  # Papua (statistics code)
        {"province": "96"},  # Papua Barat Daya (2022)
        {"day": 29, "month": 2, "year": 4},  # a leap day
    ],
)
def test_real_shaped_niks_are_valid_whether_or_not_they_pass_luhn(parts, passes_luhn):
    value = nik_with_luhn(passes_luhn, **parts)
    assert luhn_valid(value) is passes_luhn
    assert nik_valid(value)
    assert national_id_valid(value, country="ID")
    spaced = " ".join(value[i : i + 4] for i in range(0, 16, 4))
    assert national_id_valid(spaced, country="ID")


@pytest.mark.parametrize(
    "parts",
    [
        {"province": "20"},  # no such province
        {"province": "99"},
        {"regency": "00"},
        {"district": "00"},
        {"day": 32},
        {"day": 0},
        {"woman": True, "day": 32},  # 72
        {"month": 13},
        {"month": 0},
        {"day": 29, "month": 2, "year": 3},  # no 29 February in 1903 or 2003
        {"day": 31, "month": 4},
        {"serial": "0000"},
    ],
)
def test_malformed_niks_are_not_valid(parts):
    assert not nik_valid(nik(**parts))


def test_only_the_customers_country_decides():
    value = nik_with_luhn(True)
    assert not national_id_valid(value, country="DE")
    assert not national_id_valid(value + "1", country="ID")
    assert not national_id_valid("4111111111111111", country="ID")  # province 41


@pytest.mark.parametrize(
    "text",
    [
        f"KTP {nik_with_luhn(False)} checked",  # a NIK that is no card number
        "KTP " + " ".join(nik_with_luhn(False)[i : i + 4] for i in range(0, 16, 4)),
        f"KTP {nik_with_luhn(False, woman=True, day=17)}.",
        "SSN 123-45-6789 on the form",
    ],
)
def test_national_id_shaped_numbers_are_personal_data(text):
    assert _shaped(text)


def iran_code(first9: str) -> str:
    """An Iranian national code: nine digits and their check digit."""
    remainder = sum(int(d) * (10 - i) for i, d in enumerate(first9)) % 11
    return first9 + str(remainder if remainder < 2 else 11 - remainder)


def test_iranian_national_codes_written_as_on_the_card_are_personal_data():
    code = iran_code("459012345")
    digits_fa = code.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    assert _shaped(f"code {code[:3]}-{code[3:9]}-{code[9]} given")
    assert _shaped(f"کد ملی {digits_fa[:3]}-{digits_fa[3:9]}-{digits_fa[9]}")
    wrong = code[:9] + str((int(code[9]) + 1) % 10)
    assert not _shaped(f"code {wrong[:3]}-{wrong[3:9]}-{wrong[9]}")
    # Bare, ten digits are as likely an order number: not refused on their shape.
    assert not _shaped(f"order {code}")


@pytest.mark.parametrize(
    "text",
    [
        "Order 4521, ticket 42, case 2024-113",
        "Order 1234567890123456",  # 16 digits, not a NIK (province 12, month 78)
        "Ticket 9876543210 was closed",  # 10 digits
        "Order 123456789 shipped",  # 9 digits, no dashes
        "SSN-like 666-12-3456, 900-12-3456, 123-00-4567 and 123-45-0000 are no SSNs",
        "Refund of 125000 IDR on 2024-01-15",
        "Shipment 31740105068700",  # 14 digits
    ],
)
def test_ordinary_numbers_are_not_national_ids(text):
    assert not _shaped(text)
