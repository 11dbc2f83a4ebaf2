"""Domain checks on customer input, and on free text staff type about a customer.
Messages never echo the value they refuse."""

import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from itertools import permutations

import phonenumbers
import pycountry
from django.utils.translation import gettext, gettext_noop

from apps.crypto.blind import normalize_email, normalize_phone
from apps.customers.errors import CustomerError

# Customers meet it too (their request's details): translated when raised.
CARD_MESSAGE = gettext_noop(
    "Card numbers must not be stored here: keep only the payment processor's token "
    "and the last 4 digits."
)
# Runs of digits joined by single spaces or dashes, as card numbers are written.
_DIGIT_RUN = re.compile(r"\d+(?:[ -]\d+)*")
_SEPARATOR = re.compile(r"[ -]")
# Thirteen digits anywhere in a text: fewer cannot make a card number (most texts).
_THIRTEEN_DIGITS = re.compile(r"(?:\D*\d){13}")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A phone number as people type one: "+62 812-3456-7890", "0812 3456 7890".
_PHONE = re.compile(r"(?:\+|\b0)\d[\d ()-]{7,}\d")
PERSONAL_DATA_MESSAGE = (
    "The {label} must not contain personal data: it contains {kinds}."
)


class PersonalDataKind(StrEnum):
    """What free text was refused for, as the refusal names it: the kind of value,
    never the value (nor the word that matched), so staff know what to take out."""

    NAME = "the customer's name"
    EMAIL = "the customer's email address"
    PHONE = "the customer's phone number"
    NATIONAL_ID = "the customer's national id"
    ADDRESS = "the customer's address (digits)"
    PAYMENT_TOKEN = "the customer's payment token"  # noqa: S105  # nosec B105 - a label
    AN_EMAIL = "an email address"
    A_PHONE = "a phone number"
    A_CARD = "a card number"
    A_NATIONAL_ID = "a number shaped like a national id"


Kind = PersonalDataKind
# A kind of the customer's own that names what a general shape would: the shape is not
# named again (their national id is "the customer's national id", not also "a card
# number" when it passes Luhn). A second value of that shape in the same text is named
# once this one is gone.
_NAMED_BY_OWN = {
    Kind.AN_EMAIL: Kind.EMAIL,
    Kind.A_PHONE: Kind.PHONE,
    Kind.A_CARD: Kind.NATIONAL_ID,
    Kind.A_NATIONAL_ID: Kind.NATIONAL_ID,
}


def personal_data_message(*, label: str, kinds: list[PersonalDataKind]) -> str:
    """The refusal of free text holding `kinds`: "... it contains the customer's
    name and a phone number." """
    named = [str(kind) for kind in kinds]
    listed = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"
    return PERSONAL_DATA_MESSAGE.format(label=label, kinds=listed)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def personal_data_shapes(text: str) -> list[PersonalDataKind]:
    """The kinds of personal data `text` holds by their shape alone (see
    `personal_data_shapes`), in `PersonalDataKind` order."""
    found = {
        Kind.AN_EMAIL: "@" in text,
        Kind.A_PHONE: bool(_PHONE.search(text)),
        Kind.A_CARD: contains_card_number(text),
        Kind.A_NATIONAL_ID: contains_national_id(text),
    }
    return [kind for kind, present in found.items() if present]


def personal_data_found(
    text: str, markers: "PersonMarkers | None" = None
) -> list[PersonalDataKind]:
    """Every kind of personal data free text holds: the customer's own values
    (`person_mentions`, when their `markers` are given) that no shape any personal
    data has (`personal_data_shapes`) names, then those shapes. Empty: the text may be
    kept. A value of theirs with such a shape is named by the shape ("a phone number",
    not "the customer's phone number"): the refusal must not tell staff that a number
    they guessed is the customer's."""
    shapes = personal_data_shapes(text)
    hidden = {_NAMED_BY_OWN[kind] for kind in shapes}
    own = person_mentions(text, markers) if markers else []
    return [kind for kind in own if kind not in hidden] + shapes


def contains_card_number(text: str) -> bool:
    """True if `text` holds 13-19 digits (spaces or dashes allowed) passing Luhn.

    A candidate is any run of whole digit groups: "4111 1111 1111 1111 12" holds a card,
    while a 20-digit reference written without separators is not cut into windows.
    """
    if not _THIRTEEN_DIGITS.match(text):
        return False
    return any(
        len(digits) >= 13 and luhn_valid(digits)
        for run in _DIGIT_RUN.findall(text)
        for digits in _whole_groups(_SEPARATOR.split(run), longest=19)
    )


def _whole_groups(groups: list[str], *, longest: int) -> Iterator[str]:
    """The digits of every run of consecutive whole `groups` of at most `longest`
    digits: a number as people group it, never a window cut through a group."""
    for start in range(len(groups)):
        digits = ""
        for group in groups[start:]:
            digits += group
            if len(digits) > longest:
                break
            yield digits


def refuse_card_numbers(values: dict[str, object], *, country: str = "") -> None:
    """Raise CustomerError naming the first field holding a card number. A national id
    well formed for the customer's country is no card, even when it passes Luhn (one
    Indonesian NIK in ten does)."""
    for name, value in values.items():
        if not isinstance(value, str):
            continue
        if name == "national_id" and national_id_valid(value, country=country):
            continue
        if contains_card_number(value):
            raise CustomerError(gettext(CARD_MESSAGE), field=name, code="card_number")


# National ids -------------------------------------------------------------------------

# The first two digits of a NIK: the province (Kemendagri codes). Papua is 91-96 since
# the 2022 split (Papua 91, Papua Barat 92, Selatan 93, Tengah 94, Pegunungan 95, Barat
# Daya 96); cards issued under the statistics office's numbering carry 94 for Papua and
# 95-97 for the new provinces, so 91-97 all count.
NIK_PROVINCES = frozenset(
    {*range(11, 20), 21, *range(31, 37), 51, 52, 53, *range(61, 66)}
    | {*range(71, 77), 81, 82, *range(91, 98)}
)
_ID_SEPARATORS = re.compile(r"[ .-]")


def nik_valid(digits: str) -> bool:
    """True if `digits` is shaped like an Indonesian NIK: 16 digits, a province
    (`NIK_PROVINCES`), a regency and a district other than 00, the date of birth as
    DDMMYY with 40 added to the day for women (a real date in 19YY or 20YY), and a
    serial other than 0000. No check digit exists: that is all a NIK can be checked
    for without the population register."""
    if len(digits) != 16 or not (digits.isascii() and digits.isdigit()):
        return False
    if int(digits[:2]) not in NIK_PROVINCES or "00" in (digits[2:4], digits[4:6]):
        return False
    day, month, year = int(digits[6:8]), int(digits[8:10]), int(digits[10:12])
    if day > 40:
        day -= 40
    try:
        # 2000 is a leap year: 29 February of YY is real in 19YY or 20YY iff here.
        date(2000 + year, month, day)
    except ValueError:
        return False
    return digits[12:] != "0000"


def national_id_valid(value: str, *, country: str) -> bool:
    """True if `value` is a well-formed national id of `country` (spaces, dots or
    dashes between digits allowed). Only ids a card-number check could mistake for a
    card are known: Indonesia's NIK (16 digits)."""
    if country == "ID":
        return nik_valid(_ID_SEPARATORS.sub("", value))
    return False


def _iran_code_valid(digits: str) -> bool:
    if len(set(digits)) == 1:
        return False
    remainder = sum(int(d) * (10 - i) for i, d in enumerate(digits[:9])) % 11
    check = remainder if remainder < 2 else 11 - remainder
    return int(digits[9]) == check


def _ssn_valid(area: str, group: str, serial: str) -> bool:
    return (
        area not in ("000", "666")
        and area[0] != "9"
        and group != "00"
        and serial != "0000"
    )


# Digit groups joined by single spaces, dots or dashes, as ids are written.
_ID_RUN = re.compile(r"\d+(?:[ .-]\d+)*")
# US Social Security numbers as written (123-45-6789); a bare 9-digit run is as
# likely an order number.
_SSN = re.compile(r"(?<!\d)(\d{3})-(\d{2})-(\d{4})(?!\d)")
# Iranian national codes as the card prints them (001-234567-8), check digit valid.
_IRAN_CODE = re.compile(r"(?<!\d)(\d{3})[ -](\d{6})[ -](\d)(?!\d)")


def contains_national_id(text: str) -> bool:
    """True if `text` holds a number shaped like a national id: a NIK (16 digits in
    whole groups, `nik_valid`), a US SSN written 123-45-6789, or an Iranian national
    code written 001-234567-8 with a valid check digit. Persian and Arabic digits
    count. Bare 9- or 10-digit runs are not refused on their shape alone: ticket and
    order numbers look the same (a customer's own id is still found by
    `person_mentions`)."""
    folded = fold(text)
    if any(
        len(digits) == 16 and nik_valid(digits)
        for run in _ID_RUN.findall(folded)
        for digits in _whole_groups(_ID_SEPARATORS.split(run), longest=16)
    ):
        return True
    if any(_ssn_valid(*m.groups()) for m in _SSN.finditer(folded)):
        return True
    return any(
        _iran_code_valid("".join(m.groups())) for m in _IRAN_CODE.finditer(folded)
    )


# One customer's values in free text ------------------------------------------------

# Letters that differ only in how they are typed: Arabic and Persian forms of yeh and
# kaf, tatweel (a stretch), and Latin letters with strokes that NFKD keeps whole.
_FOLD = str.maketrans(
    {
        "\u064a": "\u06cc",  # ARABIC YEH -> FARSI YEH
        "\u0649": "\u06cc",  # ALEF MAKSURA -> FARSI YEH
        "\u0643": "\u06a9",  # ARABIC KAF -> KEHEH
        "\u0629": "\u0647",  # TEH MARBUTA -> HEH
        "\u0640": None,  # TATWEEL
        "\u200c": None,  # ZERO WIDTH NON-JOINER: علی‌رضا and علیرضا are one name
        "\u200d": None,
        "\u00ad": None,  # SOFT HYPHEN
        "\u0131": "i",  # DOTLESS I
        "ø": "o",
        "đ": "d",
        "ð": "d",
        "ł": "l",
        "æ": "ae",
        "œ": "oe",
        "þ": "th",
    }
)
_TOKEN = re.compile(r"[^\W_]+")  # letters and digits of any script
# Digits joined by what people put between them: spaces, dashes, dots, brackets, /.
_NUMBER = re.compile(r"\d(?:[\d .()/-]*\d)?")
MIN_NAME_PART = 3  # "Ann" counts, as a whole word only; "Al" alone does not
MIN_OWN_DIGITS = 6  # fewer digits (a house number) match too many ordinary numbers
MIN_OWN_WORD = 4  # an email's local part, an identifier with letters
# Name particles and titles (English; Indonesian degrees such as S.Kom, S.Sos) that say
# nothing about who someone is on their own.
_PARTICLES = frozenset(
    {"bin", "binti", "bint", "ibn", "van", "von", "der", "den", "del", "della"}
    | {"dos", "das", "les", "los", "mrs", "miss", "prof", "phd", "dds", "dvm"}
    | {"drs", "dra", "haji", "kom", "sos", "farm", "ked", "kep", "psi"}
)
# Common English and Indonesian words that are also given names or surnames, as staff
# write them in a reason ("will call back in May", "grace period", "mark as lost",
# "bill", "case", "hari ini", "bulan depan", "terima kasih", "Jaksa Agung"), and the
# mailboxes an email's local part is often named for. A name part among them counts
# only next to another part of the name or a title (`_name_words`). A short list by
# design, of words used mostly as words: a name such as Frank, Bob or Rahmat is not in
# it, and counts alone.
COMMON_WORDS = frozenset(
    # English: words first, in the sense a reason uses them
    {"will", "may", "mark", "grace", "hope", "case", "bill", "chase", "job", "art"}
    | {"march", "june", "april", "august", "summer", "winter", "autumn", "early"}
    | {"cash", "price", "page", "post", "bond", "bank", "banks", "miles", "long"}
    | {"short", "young", "little", "best", "good", "rich", "white", "brown", "green"}
    | {"black", "gray", "grey", "west", "hall", "hill", "wood", "ward", "cook", "king"}
    | {"major", "judge", "justice", "law", "lane", "field", "bridge", "church", "read"}
    | {"love", "star", "rain", "storm", "stone", "rock", "clay", "bell", "cross"}
    | {"sharp", "strong", "swift", "noble", "wise", "fair", "gold", "golden", "silver"}
    # Indonesian
    | {"dan", "ada", "hari", "bulan", "aman", "untung", "bagus", "utama", "kasih"}
    | {"selamat", "harapan", "sehat", "sabar", "adil", "agung"}
    # Mailboxes
    | {"info", "admin", "sales", "contact", "hello", "mail", "office", "support"}
    | {"billing", "team", "service"}
    # Who a reason is about ("Customer asked ..."), in a name only as a placeholder
    | {"customer", "client", "caller", "user", "member", "guest", "pelanggan"}
)
# How staff name someone in a reason: a common-word part of the name right after one
# ("Pak Hari", "Mr Bill") is the name.
_TITLES = frozenset(
    {"pak", "bapak", "bu", "ibu", "mbak", "mas", "kak", "bang", "mr", "mrs", "ms"}
    | {"miss", "dr", "sir", "madam"}
)


def fold(text: str) -> str:
    """Text as names and numbers compare: case folded, accents and other marks
    dropped, Arabic letters in their Persian form, every decimal digit (Persian,
    Arabic-Indic, ...) as an ASCII one."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    kept = []
    for char in decomposed:
        if unicodedata.category(char) in ("Mn", "Me"):
            continue
        if char.isdecimal():
            char = str(unicodedata.decimal(char))
        kept.append(char)
    return "".join(kept).translate(_FOLD)


def _digits(text: str) -> str:
    return "".join(char for char in text if char.isdigit())


@dataclass(frozen=True)
class PersonMarkers:
    """One customer's values as free text must not hold them, folded, each with the
    kind a refusal names: `words` match one or more whole consecutive words of the
    text (names, an email's local part, identifiers with letters), `numbers` match
    inside any number written in it."""

    words: Mapping[str, PersonalDataKind] = field(default_factory=dict)
    numbers: Mapping[str, PersonalDataKind] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.words or self.numbers)


def person_markers(
    *,
    full_name: str = "",
    email: str = "",
    phone: str = "",
    national_id: str = "",
    address_line: str = "",
    payment_token: str = "",
) -> PersonMarkers:
    """What identifies one customer in free text (see `person_mentions`).

    - the name (`_name_words`): each part of `MIN_NAME_PART`+ letters that is not a
      particle, alone unless it is a common word (`COMMON_WORDS`), and the whole name
      written together; parts joined by a zero-width non-joiner count both apart and
      together;
    - the email's local part (`MIN_OWN_WORD`+ characters, not one common word such as
      "hope" or "support"); the address itself has an "@", refused in any text;
    - the phone's national number (without country code or trunk zero: found in
      every way it is dialled), the national id's digits, and digit runs of the
      address line, each when `MIN_OWN_DIGITS`+ digits long; the national id with its
      letters, and the payment token, as words.

    City, postal code, date of birth, card last 4 and notes are not markers: they are
    shared by many people or too short to tell a customer from an order number.
    """
    words: dict[str, PersonalDataKind] = {}
    numbers: dict[str, PersonalDataKind] = {}
    # The name first: an email's local part made of it is named as the name.
    for variant in (full_name.replace("\u200c", " "), full_name):
        _name_words(_TOKEN.findall(fold(variant)), words)
    local_part = email.partition("@")[0]
    for value, kind in (
        (local_part, Kind.EMAIL),
        (national_id, Kind.NATIONAL_ID),
        (payment_token, Kind.PAYMENT_TOKEN),
    ):
        compact = "".join(_TOKEN.findall(fold(value)))
        if (
            len(compact) >= MIN_OWN_WORD
            and not compact.isdigit()
            and compact not in COMMON_WORDS
        ):
            words.setdefault(compact, kind)
    for value, kind in ((national_id, Kind.NATIONAL_ID), (local_part, Kind.EMAIL)):
        digits = _digits(fold(value))
        if len(digits) >= MIN_OWN_DIGITS:
            numbers.setdefault(digits, kind)
    if phone:
        numbers.setdefault(_national_number(phone), Kind.PHONE)
    for digits in map(_digits, _NUMBER.findall(fold(address_line))):
        if len(digits) >= MIN_OWN_DIGITS:
            numbers.setdefault(digits, Kind.ADDRESS)
    return PersonMarkers(
        words=words,
        numbers={n: kind for n, kind in numbers.items() if len(n) >= MIN_OWN_DIGITS},
    )


def _name_words(parts: list[str], words: dict[str, PersonalDataKind]) -> None:
    """Add the name's markers, from its folded `parts`, to `words`.

    A part counts when it has `MIN_NAME_PART`+ letters and is no particle. A part that
    is also a common word ("Will", "May", "Hari") counts only next to another part of
    the name, in either order ("Will May", "May, Will"), after a title ("Pak Hari",
    "Mr Will"), or in the whole name written together: alone it is the word
    ("Customer will call back in May"), and "May called" passes for "Will May" too,
    the price of not refusing the month. When it is the one part of the name that
    counts ("Grace", "Mrs. Grace") it is the whole name, and counts alone."""
    counts = [
        len(part) >= MIN_NAME_PART and not part.isdigit() and part not in _PARTICLES
        for part in parts
    ]
    kept = [part for part, counted in zip(parts, counts, strict=True) if counted]
    for part in kept:
        if part not in COMMON_WORDS or len(kept) == 1:
            words.setdefault(part, Kind.NAME)
    common = {part for part in kept if part in COMMON_WORDS}
    for first, second in permutations(common, 2):
        words.setdefault(first + second, Kind.NAME)
    for part in common:
        for title in _TITLES:
            words.setdefault(title + part, Kind.NAME)
    # Runs of consecutive parts that count match nothing their parts (or pairs) do
    # not: they make a text holding them named for the name, and not for an email's
    # local part or an identifier made of it.
    for start in range(len(parts)):
        for end in range(start + 2, len(parts) + 1):
            if all(counts[start:end]):
                words.setdefault("".join(parts[start:end]), Kind.NAME)
    if len(parts) > 1:
        words.setdefault("".join(parts), Kind.NAME)


def _national_number(phone: str) -> str:
    """The number without its country code or trunk prefix (`81299550144` for
    +62 812-9955-0144): it is inside every way the number is written."""
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return _digits(fold(phone))
    return phonenumbers.national_significant_number(number)


def person_mentions(text: str, markers: PersonMarkers) -> list[PersonalDataKind]:
    """The kinds of the customer's values `text` holds (`person_markers`), in
    `PersonalDataKind` order: a word marker as whole words ("Ann" in "Ann called", not
    in "annual"; "Siti Rahma" also as "sitirahma"), a number marker inside any number
    however grouped. A word found inside a longer one found is named as the longer:
    "CANARY-ID-77310" is the customer's national id, not also their name "Canary"."""
    if not markers:
        return []
    folded = fold(text)
    found: set[PersonalDataKind] = set()
    if markers.words:
        tokens = _TOKEN.findall(folded)
        joined = "".join(tokens)
        starts, ends, at = set(), set(), 0
        for token in tokens:
            starts.add(at)
            at += len(token)
            ends.add(at)
        spans: list[tuple[int, int, PersonalDataKind]] = []
        for word, kind in markers.words.items():
            start = joined.find(word)
            while start != -1:
                if start in starts and start + len(word) in ends:
                    spans.append((start, start + len(word), kind))
                start = joined.find(word, start + 1)
        # Outermost spans only, in one pass: by start, the longer first, a span ending
        # no later than one before it lies inside that one (two words never make the
        # same span: it spells the word).
        reach = -1
        for _start, end, kind in sorted(spans, key=lambda span: (span[0], -span[1])):
            if end > reach:
                found.add(kind)
                reach = end
    if markers.numbers:
        written = [_digits(span) for span in _NUMBER.findall(folded)]
        found |= {
            kind
            for mine, kind in markers.numbers.items()
            if any(mine in number for number in written)
        }
    return [kind for kind in PersonalDataKind if kind in found]


def clean_country(value: str) -> str:
    code = (value or "").strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise CustomerError(
            "Enter an ISO 3166-1 alpha-2 country code, such as ID or DE.",
            field="country",
        )
    return code


def clean_region(value: str, *, country: str) -> str:
    code = (value or "").strip().upper()
    if not code:
        return ""
    subdivision = pycountry.subdivisions.get(code=code)
    if subdivision is None or subdivision.country_code != country:
        raise CustomerError(
            "Enter an ISO 3166-2 region code of the customer's country, such as ID-JK.",
            field="region",
        )
    return code


def clean_email(value: str) -> str:
    email = normalize_email(value or "")
    if not _EMAIL.match(email) or len(email) > 254:
        raise CustomerError("Enter a valid email address.", field="email")
    return email


def clean_phone(value: str, *, country: str) -> str:
    try:
        return normalize_phone(value or "", region=country)
    except ValueError:
        raise CustomerError(
            "Enter a valid phone number, with its country code if it is abroad.",
            field="phone",
        ) from None


def clean_date_of_birth(value: date) -> date:
    if value > date.today():  # noqa: DTZ011 - a calendar date, not an instant
        raise CustomerError(
            "The date of birth is in the future.", field="date_of_birth"
        )
    if value.year < 1900:
        raise CustomerError("The date of birth is before 1900.", field="date_of_birth")
    return value


def clean_card_last4(value: str) -> str:
    if not re.fullmatch(r"\d{4}", value or ""):
        raise CustomerError(
            "Give exactly the last 4 digits of the card.", field="card_last4"
        )
    return value
