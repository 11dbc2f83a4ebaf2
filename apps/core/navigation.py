"""The navigation bar per role. Core knows no app: each app offers its entries in
its AppConfig (`nav_items`), and the bar is what the installed apps offer, in order."""

from dataclasses import dataclass

from django.apps import apps
from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise


@dataclass(frozen=True)
class NavItem:
    """One entry: its label, URL name, the roles (plain role values: AppConfigs load
    before models can be imported) that see it, and its place in the bar."""

    label: str | Promise  # customer entries are translated (gettext_lazy)
    url_name: str
    roles: tuple[str, ...]
    order: int


def nav_items() -> list[NavItem]:
    """Every installed app's entries, in bar order."""
    offered = [
        item
        for config in apps.get_app_configs()
        for item in getattr(config, "nav_items", ())
    ]
    return sorted(offered, key=lambda item: item.order)


def nav_for(role: str) -> list[dict[str, str]]:
    items = []
    for item in nav_items():
        if role not in item.roles:
            continue
        try:
            items.append({"label": str(item.label), "url": reverse(item.url_name)})
        except NoReverseMatch:
            continue
    return items
