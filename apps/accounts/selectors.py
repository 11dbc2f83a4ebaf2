from collections.abc import Iterable
from typing import Literal

from django.db import connection
from django.db.models import Count, QuerySet
from django.utils import timezone
from django_otp import device_classes
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import (
    API_KEY_PREFIX,
    ApiToken,
    ProviderMfaDevice,
    User,
    api_key_hash,
)
from apps.core.db import (
    model_columns_sql,
    model_from_row,
    model_source_sql,
    server_cursor,
)


def user_get_by_username(*, username: str) -> User | None:
    return User.objects.filter(username=username).first()


def user_ids_by_username(*, username: str) -> QuerySet:
    """The id of the user named `username` (none, or one), as a subquery
    (`values("pk")`) for another app's filter on its own user column."""
    return User.objects.filter(username=username).values("pk")


def user_ids_active_with_roles(*, roles: Iterable[str]) -> QuerySet:
    """The ids of the active users holding any of these roles, as a subquery
    (`values("pk")`) for another app's filter on its own user column."""
    return User.objects.filter(role__in=roles, is_active=True).values("pk")


def user_count_by_role(*, roles: Iterable[str]) -> dict[str, int]:
    """How many active users hold each of these roles (a role nobody holds is
    missing): one grouped query."""
    return dict(
        User.objects.filter(role__in=roles, is_active=True)
        .values("role")
        .annotate(n=Count("pk"))
        .values_list("role", "n")
    )


def user_emails_for_role(*, role: str) -> list[str]:
    """The addresses of the active users holding `role` who have one, oldest account
    first."""
    return list(
        User.objects.filter(role=role, is_active=True)
        .exclude(email="")
        .order_by("pk")
        .values_list("email", flat=True)
    )


def api_token_list_for(*, user: User) -> QuerySet[ApiToken]:
    """`user`'s live API tokens (neither revoked nor expired), newest first."""
    return ApiToken.objects.filter(
        user=user, revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).order_by("-created_at", "-pk")


def api_token_get_for(*, user: User, token_id: int) -> ApiToken | None:
    """One of `user`'s live API tokens, or None (another person's, revoked, expired,
    none)."""
    return api_token_list_for(user=user).filter(pk=token_id).first()


# Every API call looks its token up. One statement, prepared once per connection
# (apps.core.db.server_cursor), reads the token and its user without the ORM's SQL
# compilation.
_TOKEN_WITH_USER_SQL = " ".join(  # nosec B608 - names from the models
    (
        f"SELECT {model_columns_sql(ApiToken, 't')}, {model_columns_sql(User, 'u')}",
        f"FROM {model_source_sql(ApiToken, 't')}",
        f"JOIN {model_source_sql(User, 'u')}",
        "ON u.id = t.user_id WHERE t.key_hash = %s",
    )
)


def token_get_with_user(*, key: str) -> ApiToken | None:
    """The API token whose key is `key`, its user loaded with it, or None if there is
    none (revoked and expired ones included: the caller tells them apart)."""
    if not key.startswith(API_KEY_PREFIX):
        return None
    key_hash = api_key_hash(key)
    if connection.vendor != "postgresql":
        return ApiToken.objects.select_related("user").filter(key_hash=key_hash).first()
    with server_cursor() as cursor:
        cursor.execute(_TOKEN_WITH_USER_SQL, [key_hash], prepare=True)
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(ApiToken._meta.concrete_fields)
    token = model_from_row(ApiToken, row[:split])
    token.user = model_from_row(User, row[split:])
    return token


def user_needs_second_factor(*, user: User) -> Literal["setup", "verify"] | None:
    """What a signed-in user must still do about their second factor, if anything.

    Staff must have a confirmed device and use it at each sign-in; a customer who chose
    to set one up uses it too.
    """
    # `is_verified` is set by django-otp's middleware; without it nothing was verified.
    if getattr(user, "is_verified", lambda: False)():
        return None
    if user_has_own_second_factor(user=user):
        return "verify"
    return "setup" if user.is_staff_role else None


def user_has_own_second_factor(*, user: User) -> bool:
    """Whether `user` has a confirmed second factor of Amanah's own (authenticator,
    recovery codes). The identity provider's (`ProviderMfaDevice`) is not one: it
    verifies only the sessions whose sign-in asserted MFA."""
    return any(
        model.objects.devices_for_user(user, confirmed=True).exists()
        for model in device_classes()
        if model is not ProviderMfaDevice
    )


def otp_current_code(*, user: User) -> str | None:
    """The code the user's newest authenticator shows now (for development demos)."""
    # The newest: while a new phone is being set up, that is the one to show.
    device = TOTPDevice.objects.filter(user=user).order_by("-id").first()
    if device is None:
        return None
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"
