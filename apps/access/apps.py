from django.apps import AppConfig

from apps.core.navigation import NavItem
from apps.core.partitions import PartitionedLog


class AccessConfig(AppConfig):
    name = "apps.access"
    label = "access"
    verbose_name = "Need-to-know access"
    partitioned_logs = (PartitionedLog("AccessLogEntry", "created_at"),)
    nav_items = (
        NavItem(
            "Staff desk",
            "staff:desk",
            roles=(
                "support_agent",
                "delivery_agent",
                "compliance_officer",
                "privacy_admin",
            ),
            order=50,
        ),
        NavItem(
            "Reveals & relays",
            "staff:oversight",
            roles=("compliance_officer", "privacy_admin"),
            order=60,
        ),
        NavItem("Access policy", "staff:policy", roles=("privacy_admin",), order=70),
    )
