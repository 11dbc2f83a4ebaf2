"""Customer notices per regime and language, with the elements the laws require.

A notice is built from the incident's plain-language fields and the customer's own
involvement; `validate` refuses one that lacks a required element, so an incomplete
notice can never be sent.
"""

from dataclasses import dataclass

from apps.incidents.errors import NoticeIncomplete

# Required elements, in the order they appear.
ELEMENTS = (
    "what_happened",
    "when",
    "data_involved",
    "what_we_are_doing",
    "what_you_can_do",
    "contact",
)

TEMPLATES: dict[str, dict[str, dict]] = {
    # California Civil Code 1798.82(d)(1): these five headings, in this order.
    "california": {
        "en": {
            "subject": "Notice of Data Breach",
            "headings": {
                "what_happened": "What Happened",
                "data_involved": "What Information Was Involved",
                "what_we_are_doing": "What We Are Doing",
                "what_you_can_do": "What You Can Do",
                "contact": "For More Information",
            },
        }
    },
    "standard": {
        "en": {
            "subject": "Important: an incident involving your personal data",
            "headings": {
                "what_happened": "What happened",
                "data_involved": "Which of your data was involved",
                "what_we_are_doing": "What we are doing",
                "what_you_can_do": "What you can do",
                "contact": "Whom to contact",
            },
        },
        "id": {
            "subject": "Penting: insiden yang melibatkan data pribadi Anda",
            "headings": {
                "what_happened": "Apa yang terjadi",
                "data_involved": "Data Anda yang terlibat",
                "what_we_are_doing": "Apa yang kami lakukan",
                "what_you_can_do": "Apa yang dapat Anda lakukan",
                "contact": "Siapa yang dapat dihubungi",
            },
        },
    },
}
WHEN = {"en": "When: {}", "id": "Waktu: {}"}
REMEDY = {
    "en": "To make up for it we offer you: {}. Your code: {}",
    "id": "Sebagai permohonan maaf kami menawarkan: {}. Kode Anda: {}",
}
GREETING = {"en": "Dear customer,", "id": "Pelanggan yang terhormat,"}


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    regime: str
    language: str


def regime_and_language(country: str, region: str) -> tuple[str, str]:
    if region == "US-CA":
        return "california", "en"
    return "standard", "id" if country == "ID" else "en"


def validate(elements: dict[str, str]) -> None:
    """Raise NoticeIncomplete naming every required element that is empty."""
    missing = [name for name in ELEMENTS if not (elements.get(name) or "").strip()]
    if missing:
        raise NoticeIncomplete(
            "A notice needs every required element; missing: "
            + ", ".join(missing)
            + ".",
            field=missing[0],
        )


def render(
    *,
    elements: dict[str, str],
    country: str,
    region: str,
    remedy: tuple[str, str] | None,
) -> Rendered:
    """The notice for one customer. Raises NoticeIncomplete."""
    validate(elements)
    regime, language = regime_and_language(country, region)
    template = TEMPLATES[regime][language]
    parts = [GREETING[language], ""]
    for name, heading in template["headings"].items():
        text = elements[name]
        if name == "what_happened":
            text = f"{text}\n{WHEN[language].format(elements['when'])}"
        parts += [heading, "-" * len(heading), text, ""]
    if remedy:
        parts.append(REMEDY[language].format(*remedy))
    return Rendered(
        template["subject"], "\n".join(parts).strip() + "\n", regime, language
    )
