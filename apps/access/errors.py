from apps.core.errors import DomainError, Forbidden


class AccessError(DomainError):
    code = "access_invalid"


class AccessForbidden(Forbidden):
    code = "access_forbidden"


class RateLimited(DomainError):
    status, code = 429, "rate_limited"


class RelayError(DomainError):
    code = "relay_invalid"


class RelayUnauthorized(RelayError):
    status, code = 401, "relay_unauthorized"


class RelayGone(RelayError):
    status, code = 410, "relay_gone"
