from apps.core.errors import DomainError


class AuditError(DomainError):
    code = "audit_invalid"
