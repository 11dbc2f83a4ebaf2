"""Customer notices per regime and language, with the elements the laws require.

A notice is wholly in one language: the texts staff wrote in it (the incident's own
fields are the source language, `IncidentText` the others) and the parts Amanah writes
(headings, sentences, category labels), translated with gettext under
`translation.override(language)`. `validate` refuses one that lacks a required element,
so an incomplete notice can never be sent.

Plain text (email, SMS) puts each heading on its own line after a blank line; the
customer's page shows the same `sections` as HTML headings.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import date

from django.utils import formats, translation
from django.utils.html import format_html, format_html_join, linebreaks
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from apps.incidents.errors import NoticeIncomplete

# Required elements staff write, in the order they appear.
ELEMENTS = (
    "what_happened",
    "what_we_are_doing",
    "what_you_can_do",
    "contact",
)

HEADINGS = {
    # California Civil Code 1798.82(d)(1): these five headings, in this order.
    "california": {
        "what_happened": pgettext_lazy("California notice", "What Happened"),
        "data_involved": pgettext_lazy(
            "California notice", "What Information Was Involved"
        ),
        "what_we_are_doing": pgettext_lazy("California notice", "What We Are Doing"),
        "what_you_can_do": pgettext_lazy("California notice", "What You Can Do"),
        "contact": pgettext_lazy("California notice", "For More Information"),
    },
    "standard": {
        "what_happened": _("What happened"),
        "data_involved": _("Which of your data was involved"),
        "what_we_are_doing": _("What we are doing"),
        "what_you_can_do": _("What you can do"),
        "contact": _("Whom to contact"),
    },
}
SUBJECTS = {
    "california": pgettext_lazy("California notice", "Notice of Data Breach"),
    "standard": _("Important: an incident involving your personal data"),
}


# Where a notice rendered once for many (`NoticeWording`) holds a customer's remedy
# code: a private-use character, taken out of every text staff write (`render`), so
# that only Amanah's own sentence can hold it.
CODE_MARK = "\ue000"


def code_put(text: str, code: str) -> str:
    """`text` with `code` where the mark is."""
    return text.replace(CODE_MARK, code)


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    sections: list[dict[str, str]]
    regime: str
    language: str


def regime_for(region: str) -> str:
    return "california" if region == "US-CA" else "standard"


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
    language: str,
    regime: str,
    when: date,
    categories: list,
    remedy: tuple[str, str] | None,
) -> Rendered:
    """The notice for one customer, wholly in `language`: `elements` are the staff
    texts written in it; `categories` are the data categories (their labels are
    translated); `remedy` is (what is offered, the code), the offer written in it.
    Raises NoticeIncomplete."""
    validate(elements)
    elements = {name: text.replace(CODE_MARK, "") for name, text in elements.items()}
    if remedy:
        remedy = (remedy[0].replace(CODE_MARK, ""), remedy[1])
    with translation.override(language):
        texts = dict(elements)
        texts["what_happened"] = f"{elements['what_happened'].strip()}\n" + gettext(
            "When: %(date)s"
        ) % {"date": formats.date_format(when, "DATE_FORMAT")}
        texts["data_involved"] = ", ".join(str(c.label) for c in categories) or (
            gettext("None of your personal data was involved.")
        )
        sections = [{"heading": "", "text": gettext("Dear customer,")}]
        sections += [
            {"heading": str(heading), "text": texts[name].strip()}
            for name, heading in HEADINGS[regime].items()
        ]
        if remedy:
            sections.append(
                {
                    "heading": "",
                    "text": gettext(
                        "To make up for it we offer you: %(offer)s. Your code: %(code)s"
                    )
                    % {"offer": remedy[0], "code": remedy[1]},
                }
            )
        subject = str(SUBJECTS[regime])
    return Rendered(subject, notice_text(sections), sections, regime, language)


def wording_digest(rendered: Rendered) -> str:
    """SHA-256 of a rendering's words: the same words, the same digest."""
    words = [rendered.language, rendered.subject, rendered.body, rendered.sections]
    return hashlib.sha256(json.dumps(words, sort_keys=True).encode()).hexdigest()


def notice_text(sections: list[dict[str, str]]) -> str:
    """Plain text: paragraphs apart by a blank line, a heading on the line above its
    text (no underlines: they read as noise in a mail client or a screen reader)."""
    blocks = [
        f"{s['heading']}\n{s['text']}" if s["heading"] else s["text"] for s in sections
    ]
    return "\n\n".join(blocks).strip() + "\n"


def notice_html(*, sections: list[dict[str, str]], body: str) -> SafeString:
    """The notice as HTML: each heading an <h3>, each text its paragraphs, escaped.
    A notice stored before it had sections shows its plain text as paragraphs."""
    if not sections:
        # linebreaks(autoescape=True) escaped the text: only its <p> and <br> are ours.
        return mark_safe(linebreaks(body, autoescape=True))  # noqa: S308  # nosec B308 B703
    return format_html_join(
        "\n",
        "{}{}",
        (
            (
                format_html("<h3>{}</h3>", s["heading"]) if s["heading"] else "",
                # Escaped by linebreaks(autoescape=True), as above.
                mark_safe(linebreaks(s["text"], autoescape=True)),  # noqa: S308  # nosec B308 B703
            )
            for s in sections
        ),
    )
