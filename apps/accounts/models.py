from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.crypto import salted_hmac


class Role(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    SUPPORT_AGENT = "support_agent", "Support agent"
    DELIVERY_AGENT = "delivery_agent", "Delivery agent"
    COMPLIANCE_OFFICER = "compliance_officer", "Compliance officer"
    PRIVACY_ADMIN = "privacy_admin", "Privacy admin"


STAFF_ROLES = frozenset(
    {
        Role.SUPPORT_AGENT,
        Role.DELIVERY_AGENT,
        Role.COMPLIANCE_OFFICER,
        Role.PRIVACY_ADMIN,
    }
)
GOVERNANCE_ROLES = frozenset({Role.COMPLIANCE_OFFICER, Role.PRIVACY_ADMIN})


class User(AbstractUser):
    """A person who signs in: a staff member with a role, or a customer.

    Customers' contact details live encrypted on their customer record, never here.
    """

    role = models.CharField(max_length=32, choices=Role.choices, default=Role.CUSTOMER)
    # Staff only: where masked contact sessions connect customers to them.
    work_phone = models.CharField(max_length=20, blank=True)
    # Raised by "sign out everywhere": every session signed before it stops matching.
    session_epoch = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        indexes = [models.Index(fields=["role"], name="accounts_user_role_idx")]

    def __str__(self) -> str:
        return self.username

    def _get_session_auth_hash(self, secret: str | None = None) -> str:
        """Django's session hash (the password's), bound to the session epoch too."""
        return salted_hmac(
            "apps.accounts.models.User.session",
            f"{self.password}:{self.session_epoch}",
            secret=secret,
            algorithm="sha256",
        ).hexdigest()

    @property
    def is_staff_role(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_governance(self) -> bool:
        return self.role in GOVERNANCE_ROLES
