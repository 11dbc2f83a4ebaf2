"""Synthetic customers for demos and benchmarks (Faker: id_ID, fa_IR, en_US, de_DE)."""

import random
import secrets
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import phonenumbers
import pycountry
from faker import Faker

from apps.customers.models import CustomerStatus

# Locale, country, weight: a spread of jurisdictions for reports and deadline rules.
LOCALES = (
    ("id_ID", "ID", 40),
    ("fa_IR", "IR", 15),
    ("en_US", "US", 30),
    ("de_DE", "DE", 15),
)


def _mobile_template(country: str) -> str:
    """The country's example mobile number (E.164): the shape demo phones follow."""
    example = phonenumbers.example_number_for_type(
        country, phonenumbers.PhoneNumberType.MOBILE
    )
    if example is None:  # phonenumbers has one for every country in LOCALES.
        raise ValueError(f"No example mobile number for {country}.")
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)


class DemoCustomers:
    """Generates valid customer rows; seeded, so a seed gives the same people."""

    def __init__(self, seed: int | None = None):
        self.random = random.Random(seed)  # noqa: S311 - demo data, not secrets  # nosec B311
        self.fakers = {}
        for locale, country, _ in LOCALES:
            fake = Faker(locale)
            fake.seed_instance(self.random.randrange(2**32))
            self.fakers[country] = fake
        self.countries = [country for _, country, _ in LOCALES]
        self.weights = [weight for *_, weight in LOCALES]
        self.regions = {
            c: [
                s.code
                for s in pycountry.subdivisions.get(country_code=c)
                if "-" in s.code
            ]
            for c in self.countries
        }
        self.phone_templates = {c: _mobile_template(c) for c in self.countries}

    def phone(self, country: str) -> str:
        template = self.phone_templates[country]
        while True:
            tail = "".join(self.random.choice("0123456789") for _ in range(4))
            candidate = template[:-4] + tail
            if phonenumbers.is_valid_number(phonenumbers.parse(candidate)):
                return candidate

    def row(self, now: datetime) -> dict[str, Any]:
        rnd = self.random
        country = rnd.choices(self.countries, self.weights)[0]
        fake = self.fakers[country]
        created = now - timedelta(days=rnd.uniform(1, 6 * 365))
        closed = rnd.random() < 0.12
        dormant = rnd.random() < 0.10
        if closed:
            # Closed at any time since joining: about half of them long enough ago for
            # the closed-accounts policy to be due.
            last_activity = created + (now - created) * rnd.random()
        elif dormant:
            last_activity = created + timedelta(days=rnd.uniform(0, 60))
        else:
            last_activity = created + (now - created) * rnd.random() ** 0.3
        local = f"{fake.user_name()}.{secrets.token_hex(4)}"
        return {
            "country": country,
            "region": rnd.choice(self.regions[country]) if rnd.random() < 0.8 else "",
            "full_name": fake.name(),
            "email": f"{local}@example.{country.lower()}",
            "phone": self.phone(country) if rnd.random() < 0.9 else "",
            "address_line": fake.street_address(),
            "city": fake.city(),
            "postal_code": fake.postcode(),
            "date_of_birth": date(1940, 1, 1) + timedelta(days=rnd.randrange(66 * 365)),
            "national_id": str(rnd.randrange(10**11, 10**12)),
            "notes": "" if rnd.random() < 0.8 else "Prefers contact in the afternoon.",
            "card_last4": f"{rnd.randrange(10000):04d}" if rnd.random() < 0.6 else "",
            "status": CustomerStatus.CLOSED if closed else CustomerStatus.ACTIVE,
            "created_at": created,
            "last_activity_at": last_activity,
            "closed_at": min(last_activity, now) if closed else None,
        }

    def rows(self, count: int) -> Iterator[dict[str, Any]]:
        now = datetime.now(UTC)
        for _ in range(count):
            yield self.row(now)
