"""The navigation bar per role: (label, url name, roles that see it)."""

from django.urls import NoReverseMatch, reverse

from apps.accounts.models import Role

_GOV = (Role.COMPLIANCE_OFFICER, Role.PRIVACY_ADMIN)
_STAFF = (Role.SUPPORT_AGENT, Role.DELIVERY_AGENT, *_GOV)

NAV_ITEMS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Home", "home", _STAFF),
    ("My consents", "portal:consents", (Role.CUSTOMER,)),
    ("My data", "portal:data", (Role.CUSTOMER,)),
    ("Notices about my data", "portal:notices", (Role.CUSTOMER,)),
    ("Staff desk", "staff:desk", _STAFF),
    ("Reveals & relays", "staff:oversight", _GOV),
    ("Access policy", "staff:policy", (Role.PRIVACY_ADMIN,)),
    ("Compliance", "retention:home", _GOV),
    ("Incidents", "incidents:list", _GOV),
    ("Alerts", "monitoring:list", _GOV),
    ("Requests", "requests:queue", _GOV),
    ("Audit trail", "audit:event-list", _GOV),
    ("API docs", "api-docs", _STAFF),
)


def nav_for(role: str) -> list[dict[str, str]]:
    items = []
    for label, url_name, roles in NAV_ITEMS:
        if role not in roles:
            continue
        try:
            items.append({"label": label, "url": reverse(url_name)})
        except NoReverseMatch:
            continue
    return items
