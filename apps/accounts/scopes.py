"""What an API token may do, on top of what its holder's role may do.

A sign-in token and a browser session carry every scope; a named token (an
integration's) carries the ones it was given. The role still decides: a scope never
lets a token do what its holder may not.
"""

from django.db import models


class Scope(models.TextChoices):
    READ = "read", "Read what the role may see (lists, details, searches)"
    AUDIENCE = "audience", "Ask who may be contacted for a purpose"
    CUSTOMERS_WRITE = (
        "customers:write",
        "Create, change, close and erase customers; change consents",
    )
    CUSTOMERS_REVEAL = "customers:reveal", "Reveal full values, with a reason"
    CASES_WRITE = "cases:write", "Open and close interactions"
    COMPLIANCE_WRITE = (
        "compliance:write",
        "Move requests and incidents on; change the inventory",
    )


ALL_SCOPES: tuple[str, ...] = tuple(Scope.values)
