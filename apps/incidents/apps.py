from django.apps import AppConfig

from apps.core.navigation import NavItem


class IncidentsConfig(AppConfig):
    name = "apps.incidents"
    label = "incidents"
    verbose_name = "Incidents and breach response"
    nav_items = (
        NavItem(
            "Incidents",
            "incidents:list",
            roles=("compliance_officer", "privacy_admin"),
            order=90,
        ),
    )
