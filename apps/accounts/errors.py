from apps.core.errors import DomainError


class AccountError(DomainError):
    """A sign-in or account rule refused the change."""
