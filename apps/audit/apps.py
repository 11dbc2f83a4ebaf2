from django.apps import AppConfig

from apps.core.navigation import NavItem


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"
    verbose_name = "Audit trail"
    nav_items = (
        NavItem(
            "Audit trail",
            "audit:event-list",
            roles=("compliance_officer", "privacy_admin"),
            order=120,
        ),
    )

    def ready(self) -> None:
        from apps.audit import checks  # noqa: F401 - registers the checkpoint check
