from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "apps.monitoring"
    label = "monitoring"
    verbose_name = "Suspicious-access monitoring"

    def ready(self) -> None:
        from apps.monitoring import checks  # noqa: F401 - registers the system check
