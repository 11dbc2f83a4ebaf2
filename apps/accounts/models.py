import hashlib

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django_otp.models import Device


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


# The stubs cannot see the reverse manager django-otp's abstract Device gives
# ProviderMfaDevice (below).
class User(AbstractUser):  # type: ignore[django-manager-missing]
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


class ApiTokenKind(models.TextChoices):
    SIGN_IN = "sign_in", "Sign-in"
    NAMED = "named", "Named (an integration's)"


# What every key starts with: a secret scanner (or a person) can tell an Amanah key.
API_KEY_PREFIX = "amk_"
# How much of a key is kept in clear, to recognise a token in a list.
API_KEY_SHOWN = 8


def api_key_hash(key: str) -> str:
    """The stored form of an API key. A key is 256 random bits: a fast hash is enough
    (nothing to guess), and it lets one indexed lookup find the token."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """An API token: a sign-in's (every scope, `AMANAH_TOKEN_HOURS`), or a named one
    an integration holds (its scopes, its own expiry). Only the key's hash is kept."""

    # Indexed with created_at below (a user's tokens, newest first).
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="api_tokens", db_index=False
    )
    kind = models.CharField(max_length=16, choices=ApiTokenKind.choices)
    # Blank for sign-in tokens.
    name = models.CharField(max_length=100, blank=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_prefix = models.CharField(max_length=API_KEY_SHOWN, editable=False)
    # Scope values (apps/accounts/scopes.py); null for sign-in tokens: every scope.
    scopes = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    # Written at most once a minute (services.api_token_touch), not per request.
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token"
        indexes = [
            models.Index(
                fields=["user", "-created_at"], name="accounts_apitoken_user_idx"
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(kind=ApiTokenKind.SIGN_IN, name="", scopes__isnull=True)
                    | (
                        models.Q(kind=ApiTokenKind.NAMED, scopes__isnull=False)
                        & ~models.Q(name="")
                    )
                ),
                name="accounts_apitoken_kind_shape",
            )
        ]

    def __str__(self) -> str:
        return f"{self.key_prefix}… ({self.get_kind_display()})"


class Deactivator(models.TextChoices):
    """Who deactivated an OIDC-linked account last."""

    PROVIDER = "provider", "The identity provider"
    AMANAH = "amanah", "Amanah"


class OidcIdentity(models.Model):
    """A staff account's identity at the company's OpenID provider: the provider
    (`issuer`) and its stable id for the person (`subject`, the ID token's `sub`).
    Accounts are matched by this pair, never by an email address. The refresh token
    (when the provider issues one) is sealed under the link's own data key
    (apps/accounts/sealing.py): the beat job uses it to ask the provider whether the
    person still has a role."""

    user = models.OneToOneField(
        User, on_delete=models.CASCADE, related_name="oidc_identity"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    # A string reference: accounts sits below crypto (docs/ARCHITECTURE.md).
    data_key = models.ForeignKey(
        "crypto.DataKey", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The refresh token, sealed (AES-256-GCM) under `data_key`; null when none.
    refresh_token_sealed = models.BinaryField(null=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    signed_in_at = models.DateTimeField(null=True, blank=True)
    # The beat job's last check that read the person's claims from the provider.
    checked_at = models.DateTimeField(null=True, blank=True)
    # The provider's last confirmation of the person's role: a sign-in, or a check
    # whose claims map to one role. Older than AMANAH_OIDC_RECONFIRM_DAYS: deactivated.
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # When the provider refused the refresh token (`invalid_grant`, mostly expiry):
    # the account cannot be checked from then until its next sign-in.
    refresh_refused_at = models.DateTimeField(null=True, blank=True)
    # The latest deactivation: when, and by whom. Only an account the provider
    # deactivated comes back at a sign-in that maps again; one Amanah deactivated
    # (admin, disposal) or with no note (deactivated some other way) does not.
    deactivated_at = models.DateTimeField(null=True, blank=True)
    deactivated_by = models.CharField(
        max_length=16, choices=Deactivator.choices, blank=True
    )

    class Meta:
        verbose_name = "OIDC identity"
        verbose_name_plural = "OIDC identities"
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "subject"], name="accounts_oidcidentity_issuer_sub"
            )
        ]

    def __str__(self) -> str:
        return f"OIDC identity of user {self.user_id}"


class ProviderMfaDevice(Device):
    """The identity provider's second factor, as django-otp sees it: a session whose
    ID token asserted MFA (`amr`) is marked verified with this device, as Amanah's own
    second step marks it with the authenticator. It accepts no code of its own, and it
    is not one of Amanah's own factors (`selectors.user_has_own_second_factor`)."""

    def verify_token(self, token: str) -> bool:
        return False
