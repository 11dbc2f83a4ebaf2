"""How a customer is told who read their data and why (their pages and export)."""

from django.utils.translation import gettext_lazy as _

_WHO = {
    "support_agent": _("A support agent"),
    "delivery_agent": _("A delivery agent"),
    "compliance_officer": _("A compliance officer"),
    "privacy_admin": _("A privacy administrator"),
}
_WHY = {
    "support_case": _("your support case"),
    "delivery": _("your delivery"),
    "search": _("finding your record to help you"),
    "governance": _("privacy oversight"),
}


def access_who(role: str) -> str:
    """Who read, in the customer's words: the staff member's role, never their name."""
    return str(_WHO.get(role, _("A staff member")))


def access_why(purpose: str) -> str:
    """Why they read, in the customer's words (an unknown purpose as its code)."""
    return str(_WHY.get(purpose, purpose))
