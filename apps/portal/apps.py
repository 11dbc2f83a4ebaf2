from django.apps import AppConfig

from apps.core.navigation import NavItem


class PortalConfig(AppConfig):
    name = "apps.portal"
    label = "portal"
    verbose_name = "Customer self-service"
    nav_items = (
        NavItem("My consents", "portal:consents", roles=("customer",), order=20),
        NavItem("My data", "portal:data", roles=("customer",), order=30),
        NavItem(
            "Notices about my data", "portal:notices", roles=("customer",), order=40
        ),
    )
