from apps.core.errors import Conflict, DomainError


class RetentionError(DomainError):
    code = "retention_invalid"


class HoldConflict(Conflict):
    code = "legal_hold"
