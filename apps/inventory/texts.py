"""A change notice's words, in the active language, from the parts kept with it.

The notice keeps what changed (`ChangeNotice.parts`), not a sentence: each customer
reads it in their language when their email is sent, and on their My data page.
"""

from typing import Any

from django.utils import translation
from django.utils.translation import gettext, gettext_lazy

from apps.customers.registry import DataCategory

REASONS = {
    "new country": gettext_lazy("new country"),
    "more categories": gettext_lazy("more categories"),
}


def change_notice_parts(
    *, kind: str, name: str, country: str, reasons: list[str], categories: list[str]
) -> dict[str, Any]:
    """What a notice keeps: `kind` "recipient" or "system"; `reasons` codes of REASONS,
    or ["new"]; `categories` DataCategory values. No personal data."""
    return {
        "kind": kind,
        "name": name,
        "country": country,
        "reasons": list(reasons),
        "categories": list(categories),
    }


def _category(value: str) -> str:
    label = str(DataCategory(value).label) if value in DataCategory.values else value
    # Lower case inside the sentence where the language writes nouns so (German
    # nouns keep their capitals; Persian has none).
    return label.lower() if translation.get_language() in ("en", "id") else label


def change_notice_summary(parts: dict[str, Any]) -> str:
    """The notice's one sentence in the active language."""
    where = f"{parts['name']} ({parts['country']})"
    categories = ", ".join(_category(c) for c in parts["categories"]) or gettext(
        "no personal data"
    )
    values = {"where": where, "categories": categories, "name": parts["name"]}
    if parts["reasons"] == ["new"]:
        if parts["kind"] == "recipient":
            return gettext("New recipient: %(where)s now handles %(categories)s.") % (
                values
            )
        return (
            gettext(
                "New place where data is kept: %(where)s now handles %(categories)s."
            )
            % values
        )
    values["reasons"] = ", ".join(str(REASONS.get(r, r)) for r in parts["reasons"])
    return (
        gettext(
            "Change to %(name)s: %(reasons)s: %(where)s now handles %(categories)s."
        )
        % values
    )
