from django.apps import AppConfig

from apps.core.navigation import NavItem
from apps.core.partitions import PartitionedLog


class MonitoringConfig(AppConfig):
    name = "apps.monitoring"
    label = "monitoring"
    verbose_name = "Suspicious-access monitoring"
    partitioned_logs = (PartitionedLog("StaffLookup", "created_at"),)
    nav_items = (
        NavItem(
            "Alerts",
            "monitoring:list",
            roles=("compliance_officer", "privacy_admin"),
            order=100,
        ),
    )

    def ready(self) -> None:
        from apps.access.watchers import reveal_opened_watch, reveals_suspended_source
        from apps.monitoring import checks  # noqa: F401 - registers the system check
        from apps.monitoring.selectors import alert_reveals_suspended_since
        from apps.monitoring.services import reveal_rules_schedule

        # The one inversion of the layers: access runs this after each reveal commits,
        # without importing monitoring (apps/access/watchers.py).
        reveal_opened_watch(reveal_rules_schedule)
        # And says whose reveals an alert holds suspended (the staff customer page
        # offers them no reveal form meanwhile, and reveal_open refuses them).
        reveals_suspended_source(alert_reveals_suspended_since)
