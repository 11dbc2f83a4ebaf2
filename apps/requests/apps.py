from django.apps import AppConfig

from apps.core.navigation import NavItem


class RequestsConfig(AppConfig):
    name = "apps.requests"
    label = "dsr"
    verbose_name = "Data subject requests"
    nav_items = (
        NavItem(
            "Requests",
            "requests:queue",
            roles=("compliance_officer", "privacy_admin"),
            order=110,
        ),
    )
