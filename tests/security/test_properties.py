"""Properties that must hold for any input, checked with Hypothesis.

- Encryption: any text or date sealed into a field opens to the same value; a changed
  byte, or the value moved to another row or column, fails loudly, never as garbage.
- Masking: each mask shows only what its rule allows (the same output for any two
  values that agree on the allowed part), and a customer read follows the policy
  matrix, whatever the matrix says.
- Audit: after any sequence of appends the chain verifies.

Examples per property come from the Hypothesis profile (`fast` in `make test`,
`security` in `make security`; see tests/security/conftest.py).
"""

import re
import string
import uuid
from datetime import date

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import transaction
from hypothesis import assume, given
from hypothesis import strategies as st

from apps.access.models import Visibility
from apps.access.selectors import Cell
from apps.access.services.reads import _shape
from apps.accounts.models import Role, User
from apps.audit import services as audit
from apps.audit.errors import AuditError
from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_chain_verify
from apps.crypto.aead import seal, unseal
from apps.crypto.errors import IntegrityFailure
from apps.crypto.keys import key_scope
from apps.customers import masking
from apps.customers.models import Customer
from apps.customers.registry import PII_FIELDS, DataCategory
from tests.customers.factories import make_customer

DOT = masking.DOT

# Text as it reaches a field: any Unicode scalar value (surrogates cannot be encoded).
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)


# Encryption


@given(plaintext=st.binary(max_size=2000), aad=st.binary(max_size=100))
def test_sealing_round_trips_any_bytes(plaintext, aad):
    aead = AESGCM(bytes(range(32)))
    assert unseal(aead, seal(aead, plaintext, aad), aad) == plaintext


@given(
    plaintext=st.binary(max_size=200),
    position=st.integers(min_value=0),
    flip=st.integers(min_value=1, max_value=255),
)
def test_a_changed_byte_never_opens(plaintext, position, flip):
    aead = AESGCM(bytes(range(32)))
    blob = bytearray(seal(aead, plaintext, b"t.c:1"))
    # Byte 0 is the format version: a changed one is an unknown format, not garbage.
    position = 1 + position % (len(blob) - 1)
    blob[position] ^= flip
    with pytest.raises(IntegrityFailure):
        unseal(aead, bytes(blob), b"t.c:1")


@given(plaintext=st.binary(max_size=200), aad=st.binary(max_size=40))
def test_a_value_opens_only_where_it_was_sealed(plaintext, aad):
    aead = AESGCM(bytes(range(32)))
    assume(aad != b"t.c:1")
    with pytest.raises(IntegrityFailure):
        unseal(aead, seal(aead, plaintext, b"t.c:1"), aad)


@pytest.fixture
def stored_customer(db) -> Customer:
    return make_customer()


@pytest.mark.django_db
@given(text=any_text, field=st.sampled_from(["notes", "full_name", "address_line"]))
def test_any_text_round_trips_through_an_encrypted_field(stored_customer, text, field):
    setattr(stored_customer, field, text)
    stored_customer.save(update_fields=[field])
    with key_scope():  # a fresh request: the data key is unwrapped again
        loaded = Customer.objects.get(pk=stored_customer.pk)
        assert getattr(loaded, field) == text
    raw = Customer.objects.filter(pk=stored_customer.pk).values_list(field, flat=True)
    if len(text) >= 4:
        assert text.encode() not in bytes(raw[0])


@pytest.mark.django_db
@given(value=st.dates())
def test_any_date_round_trips_through_an_encrypted_field(stored_customer, value):
    stored_customer.date_of_birth = value
    stored_customer.save(update_fields=["date_of_birth"])
    with key_scope():
        assert Customer.objects.get(pk=stored_customer.pk).date_of_birth == value


# Masking: for each kind of value, what its rule lets through. Two values that agree on
# that part must mask alike, so nothing else can leak.

local_part = st.text(string.ascii_letters + string.digits + "._%+-", min_size=1)
domain = st.from_regex(r"[a-z0-9-]{1,20}\.[a-z]{2,6}", fullmatch=True)


@given(first=local_part, rest_a=local_part, rest_b=local_part, domain=domain)
def test_an_email_mask_shows_the_first_letter_and_the_domain_only(
    first, rest_a, rest_b, domain
):
    a = f"{first[0]}{rest_a}@{domain}"
    b = f"{first[0]}{rest_b}@{domain}"
    assert masking.mask_email(a) == masking.mask_email(b) == f"{first[0]}{DOT}@{domain}"


@given(value=any_text)
def test_an_email_mask_never_shows_more_of_the_local_part_than_one_letter(value):
    masked = masking.mask_email(value)
    local, _, domain = value.partition("@")
    assert masked in (DOT, f"{local[:1]}{DOT}@{domain}")


phone_noise = st.text(" +-()./" + string.digits, max_size=20)


@given(a=phone_noise, b=phone_noise, last4=st.from_regex(r"\d{4}", fullmatch=True))
def test_a_phone_mask_shows_the_last_four_digits_only(a, b, last4):
    assert masking.mask_phone(a + last4) == masking.mask_phone(b + last4)
    assert masking.mask_phone(a + last4) == f"•••• {last4}"


@given(value=any_text)
def test_a_phone_mask_holds_no_digit_but_the_last_four(value):
    masked = masking.mask_phone(value)
    digits = re.sub(r"\D", "", value)
    assert re.sub(r"\D", "", masked) == (digits[-4:] if len(digits) >= 4 else "")


word = st.text(st.characters(exclude_categories=("Cs", "Z", "Cc")), min_size=1)


@given(parts=st.lists(st.tuples(word, word), min_size=1, max_size=5))
def test_a_name_mask_shows_initials_only(parts):
    a = " ".join(first for first, _ in parts)
    b = " ".join(first[0] + other for first, other in parts)  # same initials
    assert masking.mask_name(a) == masking.mask_name(b)


@given(value=any_text)
def test_a_name_mask_shows_one_character_per_word(value):
    masked = masking.mask_name(value)
    parts = value.split()
    assert masked == (" ".join(f"{p[0]}{DOT}" for p in parts) or DOT)


@given(a=any_text, b=any_text, tail=st.text(min_size=2, max_size=2))
def test_a_national_id_mask_shows_the_last_two_characters_only(a, b, tail):
    assume(a and b)
    assert masking.mask_national_id(a + tail) == masking.mask_national_id(b + tail)
    assert masking.mask_national_id(a + tail) == f"{DOT}{tail}"


@given(value=any_text.filter(lambda v: len(v) <= 2))
def test_a_short_national_id_shows_nothing(value):
    assert masking.mask_national_id(value) == DOT


@given(a=st.dates(), month=st.integers(1, 12), day=st.integers(1, 28))
def test_a_date_of_birth_mask_shows_the_year_only(a, month, day):
    b = date(a.year, month, day)
    assert masking.mask_date_of_birth(a) == masking.mask_date_of_birth(b) == str(a.year)


@given(a=any_text, b=any_text)
def test_hidden_kinds_show_nothing_of_the_value(a, b):
    for kind in ("address_line", "postal_code", "token"):
        assert masking.mask_value(kind, a or "x") == masking.mask_value(kind, b or "y")
    assert masking.mask_value("free_text", a or "x") is None


@given(value=any_text)
def test_a_card_mask_shows_at_most_four_characters(value):
    masked = masking.mask_card_last4(value)
    assert masked.startswith("•••• ")
    assert len(masked) <= len("•••• ") + 4
    assert value.endswith(masked.removeprefix("•••• "))


# A customer read follows the policy matrix, whatever it says.

VISIBILITIES = [Visibility.FULL, Visibility.MASKED, Visibility.HIDDEN]
matrices = st.fixed_dictionaries(
    {category: st.sampled_from(VISIBILITIES) for category in DataCategory.values}
)
customer_values = st.fixed_dictionaries(
    {
        "full_name": any_text,
        "email": st.emails(),
        "phone": phone_noise,
        "address_line": any_text,
        "city": any_text,
        "postal_code": any_text,
        "date_of_birth": st.none() | st.dates(),
        "national_id": any_text,
        "notes": any_text,
        "payment_token": any_text,
        "card_last4": st.from_regex(r"\d{4}", fullmatch=True),
    }
)


@given(
    role=st.sampled_from([r for r in Role.values if r != Role.CUSTOMER]),
    policy=matrices,
    values=customer_values,
    revealed=st.sets(st.sampled_from([f.name for f in PII_FIELDS])),
    capped=st.booleans(),
)
def test_a_read_shows_each_field_as_the_policy_says_and_no_more(
    role, policy, values, revealed, capped
):
    matrix = {(role, c): Cell(v, False) for c, v in policy.items()}
    customer = Customer(id=uuid.uuid4(), country="ID", **values)
    data, shown = _shape(
        actor=User(role=role),
        customer=customer,
        matrix=matrix,
        revealed=revealed,
        capped=capped,
    )
    for spec in PII_FIELDS:
        visibility = policy[spec.category]
        if spec.name in revealed:
            visibility = Visibility.FULL
        if capped and visibility == Visibility.FULL:
            visibility = Visibility.MASKED
        value = values[spec.name]
        if visibility == Visibility.HIDDEN:
            assert spec.name not in data
            assert spec.name not in shown
        elif visibility == Visibility.MASKED:
            assert data[spec.name] == masking.mask_field(spec.name, value)
            # A mask that keeps the value whole (a city) shows it in full, and says so.
            whole = value is not None and data[spec.name] == masking.show_full(value)
            expected = None if value is None else ("full" if whole else "masked")
            assert shown.get(spec.name) == expected
        else:
            expected = value.isoformat() if isinstance(value, date) else value
            assert data[spec.name] == expected


# Audit: the chain verifies after any sequence of appends.

# Detail values as callers write them: ids, codes, counts, flags, lists of those.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | any_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(string.ascii_lowercase + "_", min_size=1), children, max_size=4
        )
    ),
    max_leaves=12,
)
appends = st.lists(
    st.tuples(
        st.from_regex(r"[a-z]{1,12}\.[a-z_]{1,16}", fullmatch=True),
        st.dictionaries(
            st.text(string.ascii_lowercase + "_", min_size=1), json_values, max_size=5
        ),
    ),
    min_size=1,
    max_size=8,
)


@pytest.mark.django_db
@given(events=appends)
def test_the_audit_chain_verifies_after_any_sequence_of_appends(events):
    before = AuditEvent.objects.count()
    recorded = 0
    for action, details in events:
        try:
            with transaction.atomic():
                audit.record(actor=None, action=action, details=details)
        except AuditError:
            continue  # refused (a PII-named key, an email address): nothing written
        recorded += 1
    assert AuditEvent.objects.count() == before + recorded
    report = audit_chain_verify()
    assert report.ok, report.summary
