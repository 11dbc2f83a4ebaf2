"""Domain errors: raised by services; rendered by the API, forms and commands."""


class DomainError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, msg: str, *, field: str | None = None, code: str = ""):
        super().__init__(msg)
        self.message = msg
        self.field = field
        self.code = code or self.code


class NotFound(DomainError):
    status, code = 404, "not_found"


class Forbidden(DomainError):
    status, code = 403, "forbidden"


class Conflict(DomainError):
    status, code = 409, "conflict"


class Unprocessable(DomainError):
    """A well-formed request that cannot be carried out as sent (e.g. an
    Idempotency-Key reused with another body)."""

    status, code = 422, "unprocessable"


class PreconditionFailed(DomainError):
    """If-Match names a version that is no longer current."""

    status, code = 412, "precondition_failed"


class PreconditionRequired(DomainError):
    """A change that must say which version it changes (If-Match) did not."""

    status, code = 428, "precondition_required"
