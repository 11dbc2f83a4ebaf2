from apps.core.errors import DomainError, Forbidden


class AccessError(DomainError):
    code = "access_invalid"


class AccessForbidden(Forbidden):
    code = "access_forbidden"


class RevealsSuspended(Forbidden):
    """A monitoring alert holds the staff member's reveals suspended
    (`apps.access.watchers.reveals_suspended_since`): no reveal is opened until it is
    dismissed or escalated."""

    code = "reveals_suspended"


# What a suspended staff member is told, on the API and on the customer page alike.
REVEALS_SUSPENDED = (
    "Your reveals are suspended while a monitoring alert about your access is "
    "reviewed; nothing was revealed. A compliance officer or privacy admin lifts the "
    "suspension by dismissing the alert or escalating it to an incident."
)


class RateLimited(DomainError):
    status, code = 429, "rate_limited"


class RelayError(DomainError):
    code = "relay_invalid"


class RelayUnauthorized(RelayError):
    status, code = 401, "relay_unauthorized"


class RelayGone(RelayError):
    status, code = 410, "relay_gone"
