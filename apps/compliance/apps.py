from django.apps import AppConfig

from apps.core.navigation import NavItem


class ComplianceConfig(AppConfig):
    name = "apps.compliance"
    label = "compliance"
    nav_items = (
        NavItem(
            "Compliance",
            "compliance:home",
            roles=("compliance_officer", "privacy_admin"),
            order=80,
        ),
    )
