"""The need-to-know matrix a new installation starts from (seeded by migration 0002)."""

from apps.accounts.models import Role
from apps.customers.registry import DataCategory

F, M, H = "full", "masked", "hidden"

# role -> category -> (visibility, revealable)
DEFAULT_POLICY: dict[str, dict[str, tuple[str, bool]]] = {
    # A support agent talks to the customer: name in full, contact and address masked,
    # contact revealable for a few minutes with a reason; sensitive data never.
    Role.SUPPORT_AGENT: {
        DataCategory.IDENTITY: (F, False),
        DataCategory.CONTACT: (M, True),
        DataCategory.ADDRESS: (M, False),
        DataCategory.FINANCIAL: (M, False),
        DataCategory.SENSITIVE: (H, False),
        DataCategory.FREE_TEXT: (H, False),
    },
    # A driver needs the name and drop-off point, and reaches the customer only through
    # the masked contact session.
    Role.DELIVERY_AGENT: {
        DataCategory.IDENTITY: (F, False),
        DataCategory.CONTACT: (H, False),
        DataCategory.ADDRESS: (F, False),
        DataCategory.FINANCIAL: (H, False),
        DataCategory.SENSITIVE: (H, False),
        DataCategory.FREE_TEXT: (H, False),
    },
    Role.COMPLIANCE_OFFICER: {category: (M, False) for category in DataCategory.values},
    Role.PRIVACY_ADMIN: {category: (M, True) for category in DataCategory.values},
}
