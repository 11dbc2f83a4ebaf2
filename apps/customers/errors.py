from apps.core.errors import Conflict, DomainError


class CustomerError(DomainError):
    code = "customer_invalid"


class CustomerConflict(Conflict):
    code = "customer_conflict"
