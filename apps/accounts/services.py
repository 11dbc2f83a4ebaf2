"""Writes on user accounts.

Lock order (apps/core/db.py): the user, then their devices and tokens, then the audit
chain.
"""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django_otp import device_classes
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.authtoken.models import Token

from apps.accounts.errors import AccountError
from apps.accounts.models import Role, User
from apps.audit import services as audit
from apps.core.errors import Forbidden

_WRONG_CODE = "That code is not right. Check the time on your phone and try again."
_THROTTLED = "Too many wrong codes. Wait a minute, then enter the newest code."

# What privacy admins may see in the Django admin (where PII is shown masked only).
ADMIN_VIEW_PERMS = (
    "view_customer",
    "view_datakey",
    "view_auditevent",
    "view_user",
    "view_purpose",
    "add_purpose",
    "change_purpose",
    "view_privacynotice",
    "add_privacynotice",
    "change_privacynotice",
    "add_noticechange",
    "change_noticechange",
    "view_noticechange",
    "view_consentevent",
    "view_consentstate",
    "view_disposalrun",
    "view_disposallogentry",
    "query_audience",
)


@transaction.atomic
def user_ensure_staff(
    *,
    actor: User | None,
    username: str,
    role: Role,
    password: str,
    work_phone: str = "",
) -> User:
    """Create a staff user, or reset an existing one's role and password."""
    user, created = User.objects.select_for_update(no_key=True).get_or_create(
        username=username, defaults={"role": role}
    )
    admin_site = role == Role.PRIVACY_ADMIN
    unchanged = (user.role, user.is_active, user.is_staff, user.work_phone) == (
        role,
        True,
        admin_site,
        work_phone,
    )
    if not created and unchanged and user.check_password(password):
        return user
    user.role = role
    user.is_active = True
    user.is_staff = admin_site
    user.work_phone = work_phone
    user.set_password(password)
    user.save()
    if admin_site:
        user.user_permissions.set(
            Permission.objects.filter(codename__in=ADMIN_VIEW_PERMS)
        )
    audit.record(
        actor=actor,
        action="user.created" if created else "user.reset",
        target=user,
        details={"role": role},
    )
    return user


def user_ensure_customer(*, user: User | None, username: str, password: str) -> User:
    """A customer's login with this password, active: `user`, or a new customer user
    named `username` (one write, in the caller's transaction). Raises AccountError (on
    "password") when the password validators refuse it; the message never echoes the
    password."""
    user = user or User(username=username, role=Role.CUSTOMER)
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise AccountError(" ".join(exc.messages), field="password") from None
    user.set_password(password)
    user.is_active = True
    user.save()
    return user


# Second factor (django-otp): a TOTP authenticator plus one-time recovery codes.

RECOVERY_CODE_COUNT = 10


def otp_setup_begin(*, user: User) -> TOTPDevice:
    """Start (or restart) setting up an authenticator; it counts once confirmed."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(
        user=user, name="Authenticator app", confirmed=False
    )


@transaction.atomic
def otp_setup_confirm(*, user: User, device_id: int, token: str) -> list[str]:
    """Confirm the authenticator with its first code; returns new recovery codes.

    Raises AccountError if there is no setup in progress or the code is wrong.
    """
    device = (
        TOTPDevice.objects.select_for_update(no_key=True)
        .filter(user=user, pk=device_id, confirmed=False)
        .first()
    )
    if device is None:
        raise AccountError("Start the setup again.", field="otp_token", code="expired")
    if not device.verify_token(_code(token)):
        raise AccountError(_WRONG_CODE, field="otp_token", code="wrong_code")
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    # One authenticator at a time: setting up a new one retires the old.
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    codes = _recovery_codes_replace(user=user)
    audit.record(actor=user, action="otp.device_confirmed", target=user, details={})
    return codes


@transaction.atomic
def otp_recovery_codes_regenerate(*, user: User) -> list[str]:
    """Replace a user's recovery codes, cancelling the old. Raises AccountError."""
    if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        raise AccountError("Set up an authenticator first.", code="no_device")
    codes = _recovery_codes_replace(user=user)
    audit.record(
        actor=user, action="otp.recovery_codes_regenerated", target=user, details={}
    )
    return codes


def otp_verify(*, user: User, token: str) -> Device:
    """The device that accepts `token` (an authenticator or recovery code).

    Raises AccountError when none does. Devices throttle repeated failures; while one
    does, even the right code is refused, and the message says to wait, not that the
    code is wrong.
    """
    token = _code(token)
    # Committed before a refusal is raised: a wrong code's throttle count must stay.
    with transaction.atomic():
        # The devices locked while the code is checked: two processes given the same
        # code at once accept it once (its step, or its recovery code, is then used).
        confirmed = _devices_locked(user)
        # An authenticator code goes to the authenticator, anything else to the
        # recovery codes: a failure then counts against (and a throttle speaks for)
        # the right one.
        lengths = {d.digits for d in confirmed if isinstance(d, TOTPDevice)}
        authenticator_code = token.isdigit() and len(token) in lengths
        devices = [
            d for d in confirmed if isinstance(d, TOTPDevice) == authenticator_code
        ]
        throttled = any(not d.verify_is_allowed()[0] for d in devices)
        device = next((d for d in devices if d.verify_token(token)), None)
        if isinstance(device, StaticDevice):
            left = StaticToken.objects.filter(device=device).count()
            audit.record(
                actor=user,
                action="otp.recovery_code_used",
                target=user,
                details={"codes_left": left},
            )
    if device is None and throttled:
        raise AccountError(_THROTTLED, field="otp_token", code="throttled")
    if device is None:
        raise AccountError(_WRONG_CODE, field="otp_token", code="wrong_code")
    return device


@transaction.atomic
def otp_disable(*, actor: User, user: User) -> None:
    """Remove a user's second factor. Staff cannot go without one. Raises Forbidden."""
    if user.is_staff_role and actor.pk == user.pk:
        raise Forbidden("Staff accounts must keep a second factor.")
    if actor.pk != user.pk and actor.role != Role.PRIVACY_ADMIN:
        raise Forbidden("Only privacy admins may reset another person's second factor.")
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    _sessions_end(user=user)
    audit.record(actor=actor, action="otp.reset", target=user, details={})


def _devices_locked(user: User) -> list[Device]:
    """The user's confirmed devices, locked for this transaction. As django-otp's
    `for_verify` does, but FOR NO KEY UPDATE (apps/core/db.py): new recovery codes
    refer to their device, and the check of that reference, at commit after the
    audit chain, must not wait on a verification holding the device."""
    return [
        device
        for model in device_classes()
        for device in model.objects.devices_for_user(user, confirmed=True)
        .select_for_update(no_key=True)
        .order_by("pk")
    ]


def _recovery_codes_replace(*, user: User) -> list[str]:
    # The device stays (only its codes change): a session verified with a recovery
    # code remains verified. Locked first, as a verification locks it.
    device, _ = StaticDevice.objects.select_for_update(no_key=True).get_or_create(
        user=user, defaults={"name": "Recovery codes"}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
    return codes


def _code(token: str) -> str:
    """A typed code as the devices compare it: no spaces or dashes ("123 456",
    "123-456"), lower case (recovery codes)."""
    return "".join(token.split()).replace("-", "").lower()


# Disposal


def users_deactivate_bulk(*, user_ids: QuerySet[Any] | list[int]) -> int:
    """Stop many logins signing in: inactive, with no usable password (the rows stay:
    the audit trail names them). For the customers a disposal erases; runs in the
    caller's transaction, whose service records what it disposed of. `user_ids`: the
    ids, or a subquery of them (one statement). Returns the logins changed."""
    if isinstance(user_ids, list) and not user_ids:
        return 0
    return User.objects.filter(pk__in=user_ids).update(
        is_active=False, password=make_password(None)
    )


# Sessions and API tokens


@transaction.atomic
def user_sign_out_everywhere(*, user: User) -> None:
    """End every session and API token of `user`, on every device."""
    _sessions_end(user=user)
    audit.record(
        actor=user, action="user.signed_out_everywhere", target=user, details={}
    )


def _sessions_end(*, user: User) -> None:
    # Sessions carry a hash bound to the epoch (User._get_session_auth_hash), so
    # raising it invalidates all of them without scanning the session table.
    User.objects.filter(pk=user.pk).update(session_epoch=F("session_epoch") + 1)
    user.refresh_from_db(fields=["session_epoch"])
    Token.objects.filter(user=user).delete()


def token_expires_at(*, token: Token) -> datetime:
    return token.created + timedelta(hours=settings.AMANAH_TOKEN_HOURS)


def token_is_expired(*, token: Token) -> bool:
    """Whether an API token is older than `AMANAH_TOKEN_HOURS`."""
    return token_expires_at(token=token) <= timezone.now()


def user_lock(*, user_id: int) -> None:
    """Lock a person's row in the caller's transaction, where a per-person limit is
    counted (reveals per hour, token issue): step 2 of the lock order
    (apps/core/db.py). NO KEY UPDATE: rows that merely refer to the person (their
    audit events, alerts about them) are still written meanwhile."""
    User.objects.select_for_update(no_key=True).filter(pk=user_id).first()


@transaction.atomic
def token_issue(*, user: User) -> Token:
    """The staff member's API token: the current one, or a fresh one if it has
    expired. Raises Forbidden for anyone else (customers use their pages)."""
    if not user.is_staff_role:
        raise Forbidden("API tokens are for staff.")
    # Lock the user, not the token: with no token row yet there is nothing to lock,
    # and two sign-ins at once would both create one (a unique-key error).
    user_lock(user_id=user.pk)
    token = Token.objects.filter(user=user).first()
    if token is not None and not token_is_expired(token=token):
        return token
    if token is not None:
        token.delete()
    return Token.objects.create(user=user)
