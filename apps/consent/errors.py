from apps.core.errors import DomainError, Forbidden


class ConsentError(DomainError):
    code = "consent_invalid"


class ConsentForbidden(Forbidden):
    code = "consent_forbidden"


class TokenInvalid(ConsentError):
    code = "token_invalid"


class TokenExpired(ConsentError):
    status, code = 410, "token_expired"
