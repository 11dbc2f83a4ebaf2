from django.apps import AppConfig

from apps.core.navigation import NavItem


class WebhooksConfig(AppConfig):
    name = "apps.webhooks"
    label = "webhooks"
    verbose_name = "Outbound events (webhooks)"
    nav_items = (
        NavItem("Webhooks", "webhooks:list", roles=("privacy_admin",), order=115),
    )
