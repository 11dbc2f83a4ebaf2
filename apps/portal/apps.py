from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from apps.core.navigation import NavItem


class PortalConfig(AppConfig):
    name = "apps.portal"
    label = "portal"
    verbose_name = "Customer self-service"
    nav_items = (
        NavItem(_("My consents"), "portal:consents", roles=("customer",), order=20),
        NavItem(_("My data"), "portal:data", roles=("customer",), order=30),
        NavItem(
            _("Notices about my data"), "portal:notices", roles=("customer",), order=40
        ),
    )
