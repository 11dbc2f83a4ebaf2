"""What each role may do, in words shown on the home page."""

from apps.accounts.models import Role

ROLE_CAPABILITIES: dict[str, tuple[str, ...]] = {
    Role.CUSTOMER: (
        "See what Amanah holds about you, masked, on your self-service pages.",
        "Switch each consent on or off, and unsubscribe in one click.",
        "See who looked at your data and why; ask for a copy or for erasure.",
    ),
    Role.SUPPORT_AGENT: (
        "Find a customer by exact email or phone to open a support case.",
        "See the customers assigned to you, with contact details masked.",
        "Reveal a customer's contact details for a few minutes, giving a reason.",
    ),
    Role.DELIVERY_AGENT: (
        "See the name and drop-off address of customers on your open deliveries.",
        "Reach the customer through a masked contact session, never their own number.",
    ),
    Role.COMPLIANCE_OFFICER: (
        "Read the audit trail and verify it has not been tampered with.",
        "Run retention reports and follow disposal runs.",
        "Review reveals, contact relays and suspicious-access alerts.",
    ),
    Role.PRIVACY_ADMIN: (
        "Manage customer records; personal data stays masked unless revealed "
        "with a reason.",
        "Edit the access policy, retention policies and legal holds.",
        "Read the audit trail and handle customers' requests.",
    ),
}


def capabilities_for(role: str) -> tuple[str, ...]:
    return ROLE_CAPABILITIES.get(role, ())
