from datetime import date
from typing import Any

from faker import Faker

from apps.customers.models import Customer
from apps.customers.services import customer_create
from apps.customers.validation import luhn_valid

fake = Faker("en_US")

# A canary: these values must never appear in any log line (see tests/conftest.py).
CANARY = {
    "full_name": "Canary Zzyzx Quill",
    "email": "canary.zzyzx@canary-amanah.example",
    "phone": "+62 812-9955-0144",
    "phone_e164": "+6281299550144",
    "national_id": "CANARY-ID-77310",
    "address_line": "7 Canary Zzyzx Lane",
}


def customer_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "country": "ID",
        "region": "ID-JK",
        "full_name": "Jane Doe",
        "email": f"{fake.unique.user_name()}@example.com",
        "phone": "+62 812-3456-7890",
        "address_line": "Jl. Sudirman 1",
        "city": "Jakarta",
        "postal_code": "10220",
        "date_of_birth": date(1987, 6, 5),
        "national_id": "3174012345678901",
        "notes": "Prefers afternoon deliveries.",
        "payment_token": "tok_1NxQ8v2eZvKYlo2C",
        "card_last4": "4242",
    }
    data.update(overrides)
    return data


def make_customer(actor=None, **overrides: Any) -> Customer:
    return customer_create(actor=actor, data=customer_data(**overrides))


def make_canary(actor=None) -> Customer:
    fields = {k: v for k, v in CANARY.items() if k != "phone_e164"}
    return make_customer(actor=actor, **fields)


def nik(
    *,
    province="31",
    regency="74",
    district="01",
    day=5,
    month=6,
    year=87,
    woman=False,
    serial="0001",
) -> str:
    """A NIK built from its parts: region, date of birth (+40 on the day for
    women), serial."""
    dd = day + 40 if woman else day
    return f"{province}{regency}{district}{dd:02d}{month:02d}{year:02d}{serial}"


def nik_with_luhn(passes: bool, **parts) -> str:
    """A NIK with these parts whose serial makes it pass (or fail) Luhn."""
    for serial in range(1, 100):
        value = nik(serial=f"{serial:04d}", **parts)
        if luhn_valid(value) is passes:
            return value
    raise AssertionError("no serial found")
