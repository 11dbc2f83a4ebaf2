from apps.core.errors import DomainError


class AlertError(DomainError):
    code = "alert_invalid"
