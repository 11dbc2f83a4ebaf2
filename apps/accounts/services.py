"""Writes on user accounts.

Lock order (apps/core/db.py): the user, then their OIDC link, devices, tokens and
permissions, then the audit chain.
"""

import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest
from django.middleware.csrf import rotate_token
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from django_otp import device_classes
from django_otp import login as otp_login
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.errors import AccountError
from apps.accounts.models import (
    API_KEY_PREFIX,
    API_KEY_SHOWN,
    ApiToken,
    ApiTokenKind,
    Deactivator,
    OidcIdentity,
    ProviderMfaDevice,
    Role,
    User,
    api_key_hash,
)
from apps.accounts.scopes import ALL_SCOPES
from apps.accounts.selectors import api_token_list_for
from apps.audit import services as audit
from apps.core.errors import Forbidden, NotFound

# Customers read these too (their two-step sign-in): in the active language.
_WRONG_CODE = gettext_noop(
    "That code is not right. Check the time on your phone and try again."
)
_THROTTLED = gettext_noop(
    "Too many wrong codes. Wait a minute, then enter the newest code."
)

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
    # Active again by Amanah's hand: no earlier deactivation by the provider stands.
    _deactivation_note(user=user, by=None)
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
        raise AccountError(
            gettext("Start the setup again."), field="otp_token", code="expired"
        )
    if not device.verify_token(_code(token)):
        raise AccountError(gettext(_WRONG_CODE), field="otp_token", code="wrong_code")
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
        raise AccountError(gettext(_THROTTLED), field="otp_token", code="throttled")
    if device is None:
        raise AccountError(gettext(_WRONG_CODE), field="otp_token", code="wrong_code")
    return device


@transaction.atomic
def otp_disable(*, actor: User, user: User) -> None:
    """Remove a user's second factor. Staff cannot go without one. Raises Forbidden."""
    if user.is_staff_role and actor.pk == user.pk:
        raise Forbidden("Staff accounts must keep a second factor.")
    if actor.pk != user.pk and actor.role != Role.PRIVACY_ADMIN:
        raise Forbidden("Only privacy admins may reset another person's second factor.")
    user_lock(user_id=user.pk)  # the user's row before their devices (core/db.py)
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    user_sessions_end(user=user)
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
    # A new password hash ends their sessions (the session hash is bound to it).
    changed = User.objects.filter(pk__in=user_ids).update(
        is_active=False, password=make_password(None)
    )
    # Amanah deactivated them last: a provider's sign-in does not bring them back.
    # (The OIDC link before the tokens: apps/core/db.py's order.)
    OidcIdentity.objects.filter(user_id__in=user_ids).update(
        deactivated_at=timezone.now(), deactivated_by=Deactivator.AMANAH
    )
    # As every deactivation does: no API token outlives it (staff-only, so rarely any).
    ApiToken.objects.filter(user_id__in=user_ids, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    return changed


def _deactivation_note(*, user: User, by: Deactivator | None) -> None:
    """Note on the user's OIDC link (if any) who deactivated the account last, or
    (None) that it is active again. A sign-in through the provider reactivates only
    an account the provider's answers deactivated (oidc_services)."""
    OidcIdentity.objects.filter(user=user).update(
        deactivated_at=None if by is None else timezone.now(),
        deactivated_by="" if by is None else by,
    )


def _active_set_check(*, actor: User, user: User, active: bool) -> None:
    """Whether `actor` may set `user` active or inactive. Raises Forbidden (not a
    privacy admin or superuser) or AccountError (a customer's login, their own)."""
    if not (actor.is_superuser or actor.role == Role.PRIVACY_ADMIN):
        raise Forbidden("Only privacy admins may deactivate or reactivate accounts.")
    if not user.is_staff_role:
        # Customers' logins end with their disposal, not here.
        raise AccountError(
            "Only staff accounts are deactivated or reactivated here.",
            field="is_active",
            code="not_staff",
        )
    if not active and actor.pk == user.pk:
        raise AccountError(
            "You cannot deactivate your own account; ask another privacy admin.",
            field="is_active",
            code="self",
        )


@transaction.atomic
def user_active_set(*, actor: User, user: User, active: bool) -> bool:
    """Deactivate or reactivate the staff account `user` by a privacy admin's (or a
    superuser's) hand; audited. A deactivation ends the person's sessions and API
    tokens (as signing out everywhere does) and is noted on an OIDC link as Amanah's:
    the identity provider never undoes it. Returns False (nothing recorded) when the
    account was so already. Raises Forbidden (anyone else), AccountError (a
    customer's login; one's own account; the last active privacy admin, who would
    leave no one to reactivate accounts).

    Lock order: the users' rows (step 3) in id order, in one statement: the account
    and, for a privacy admin's, every active privacy admin's, so that two admins
    deactivating each other at once cannot leave none; then the OIDC link, the
    tokens, the audit chain."""
    _active_set_check(actor=actor, user=user, active=active)
    guard = Q(pk=user.pk)
    if not active and user.role == Role.PRIVACY_ADMIN:
        guard |= Q(role=Role.PRIVACY_ADMIN, is_active=True)
    locked = {
        row.pk: row
        for row in User.objects.select_for_update(no_key=True)
        .filter(guard)
        .order_by("pk")
        .only("pk", "role", "is_active")
    }
    current = locked.get(user.pk)
    if current is None:
        raise NotFound("No such account.")
    user.is_active = current.is_active
    user.role = current.role
    _active_set_check(actor=actor, user=user, active=active)
    if current.is_active == active:
        return False
    if not active and user.role == Role.PRIVACY_ADMIN:
        others = [
            row
            for pk, row in locked.items()
            if pk != user.pk and row.is_active and row.role == Role.PRIVACY_ADMIN
        ]
        if not others:
            raise AccountError(
                f"{user.username} is the last active privacy admin: make someone else "
                "a privacy admin first.",
                field="is_active",
                code="last_privacy_admin",
            )
    User.objects.filter(pk=user.pk).update(is_active=active)
    user.is_active = active
    _deactivation_note(user=user, by=None if active else Deactivator.AMANAH)
    details: dict[str, Any] = {"via": "admin"}
    if not active:
        details["tokens_revoked"] = user_sessions_end(user=user)
    audit.record(
        actor=actor,
        action="user.reactivated" if active else "user.deactivated",
        target=user,
        details=details,
    )
    return True


# Sessions and API tokens


@transaction.atomic
def user_sign_out_everywhere(*, user: User) -> None:
    """End every session and API token (sign-in and named) of `user`, on every
    device."""
    user_sessions_end(user=user)
    audit.record(
        actor=user, action="user.signed_out_everywhere", target=user, details={}
    )


def user_sessions_end(*, user: User) -> int:
    """End every session and API token of `user`, in the caller's transaction (which
    records why). Locks the user's row, then their tokens (the lock order). Returns
    how many live tokens were revoked."""
    # Sessions carry a hash bound to the epoch (User._get_session_auth_hash), so
    # raising it invalidates all of them without scanning the session table.
    User.objects.filter(pk=user.pk).update(session_epoch=F("session_epoch") + 1)
    user.refresh_from_db(fields=["session_epoch"])
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


def session_verify(*, request: HttpRequest, device: Device) -> None:
    """Mark the request's session verified with `device` (a second factor passed),
    under a new session key and CSRF token.

    As `login()` does at the password step: a session id (or CSRF token) seen before
    the second step must not be worth a verified session after it. django-otp's
    `login` only records the device.

    Amanah's own step passed (an authenticator or recovery code) is audited as
    `otp.verified`: a sign-in through the identity provider without its MFA is
    recorded as `amanah_pending` until then. The provider's MFA is not: its sign-in's
    `user.signed_in_oidc` says so.
    """
    user = request.user
    if isinstance(user, User) and not isinstance(device, ProviderMfaDevice):
        factor = (
            "recovery_code" if isinstance(device, StaticDevice) else "authenticator"
        )
        with transaction.atomic():
            audit.record(
                actor=user,
                action="otp.verified",
                target=user,
                details={"factor": factor},
            )
    otp_login(request, device)
    request.session.cycle_key()
    rotate_token(request)


def user_lock(*, user_id: int) -> None:
    """Lock a person's row in the caller's transaction, where a per-person limit is
    counted (reveals per hour, token issue): step 2 of the lock order
    (apps/core/db.py). NO KEY UPDATE: rows that merely refer to the person (their
    audit events, alerts about them) are still written meanwhile."""
    User.objects.select_for_update(no_key=True).filter(pk=user_id).first()


# A user's live sign-in tokens: each sign-in adds one; beyond this many the oldest are
# revoked, so a loop signing in cannot grow the table without bound.
SIGN_IN_TOKENS_MAX = 100
NAMED_TOKEN_DAYS_DEFAULT = 90
_EMAIL_LIKE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
NAMED_TOKEN_DAYS_MAX = 365
# How stale `last_used_at` may be: it is written at most this often per token.
TOKEN_USE_PRECISION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedToken:
    """A token just made, and its key: the only time the key exists outside the
    client (the database keeps its hash)."""

    token: ApiToken
    key: str

    @property
    def expires_at(self) -> datetime:
        return self.token.expires_at


def _api_token_make(
    *,
    user: User,
    kind: ApiTokenKind,
    now: datetime,
    lasts: timedelta,
    name: str = "",
    scopes: list[str] | None = None,
) -> IssuedToken:
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        kind=kind,
        name=name,
        key_hash=api_key_hash(key),
        key_prefix=key[:API_KEY_SHOWN],
        scopes=scopes,
        created_at=now,
        expires_at=now + lasts,
    )
    return IssuedToken(token=token, key=key)


def _staff_only(user: User) -> None:
    if not user.is_staff_role:
        raise Forbidden("API tokens are for staff.")


@transaction.atomic
def token_issue(*, user: User) -> IssuedToken:
    """A new sign-in token for the staff member (every scope, for
    `AMANAH_TOKEN_HOURS`); each sign-in gets its own. Raises Forbidden for anyone
    else (customers use their pages)."""
    _staff_only(user)
    # The user first (step 2 of the lock order): their count of live tokens is a
    # per-person limit, and two sign-ins at once must not both skip the revocation.
    user_lock(user_id=user.pk)
    now = timezone.now()
    ApiToken.objects.filter(user=user, expires_at__lte=now).delete()
    beyond = ApiToken.objects.filter(
        user=user, kind=ApiTokenKind.SIGN_IN, revoked_at__isnull=True
    ).order_by("-created_at", "-pk")[SIGN_IN_TOKENS_MAX - 1 :]
    ApiToken.objects.filter(pk__in=list(beyond.values_list("pk", flat=True))).update(
        revoked_at=now
    )
    return _api_token_make(
        user=user,
        kind=ApiTokenKind.SIGN_IN,
        now=now,
        lasts=timedelta(hours=settings.AMANAH_TOKEN_HOURS),
    )


@transaction.atomic
def api_token_create(
    *,
    actor: User,
    name: str,
    scopes: Iterable[str],
    expires_in_days: int = NAMED_TOKEN_DAYS_DEFAULT,
) -> IssuedToken:
    """A named token for an integration of `actor`'s, with these scopes, expiring in
    `expires_in_days` (1-365); its key is returned this once. Raises Forbidden for
    anyone but staff, AccountError on a bad name, scopes or expiry."""
    _staff_only(actor)
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise AccountError("Give a name of 1 to 100 characters.", field="name")
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise AccountError("A name may not hold control characters.", field="name")
    # The name is audited, and the audit trail holds no contact details.
    if _EMAIL_LIKE.search(name):
        raise AccountError(
            "Name the integration, not a person: no email addresses.", field="name"
        )
    wanted = set(scopes)
    if not wanted:
        raise AccountError("Choose at least one scope.", field="scopes", code="empty")
    unknown = wanted - set(ALL_SCOPES)
    if unknown:
        raise AccountError(
            f"Unknown scope: {', '.join(sorted(unknown))}.",
            field="scopes",
            code="unknown",
        )
    if not 1 <= expires_in_days <= NAMED_TOKEN_DAYS_MAX:
        raise AccountError(
            f"A token lasts 1 to {NAMED_TOKEN_DAYS_MAX} days.", field="expires_in_days"
        )
    # The user first: two creations at once must not both find the name free.
    user_lock(user_id=actor.pk)
    now = timezone.now()
    if api_token_list_for(user=actor).filter(name=name).exists():
        raise AccountError(
            "You have a token with that name already; choose another or revoke it.",
            field="name",
            code="duplicate",
        )
    issued = _api_token_make(
        user=actor,
        kind=ApiTokenKind.NAMED,
        name=name,
        scopes=[scope for scope in ALL_SCOPES if scope in wanted],
        now=now,
        lasts=timedelta(days=expires_in_days),
    )
    token = issued.token
    audit.record(
        actor=actor,
        action="api_token.created",
        target=actor,
        details={"id": token.pk, "token_name": token.name, "scopes": token.scopes},
    )
    return issued


@transaction.atomic
def api_token_revoke(*, actor: User, token_id: int) -> ApiToken:
    """Revoke one of `actor`'s live tokens. Raises NotFound for any other id (another
    person's, revoked, expired)."""
    token = (
        api_token_list_for(user=actor)
        .select_for_update(no_key=True)
        .filter(pk=token_id)
    ).first()
    if token is None:
        raise NotFound("No such token.")
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit.record(
        actor=actor,
        action="api_token.revoked",
        target=actor,
        details={"id": token.pk, "token_name": token.name, "scopes": token.scopes},
    )
    return token


def api_token_touch(*, token: ApiToken) -> None:
    """Note that `token` was used now: at most once per TOKEN_USE_PRECISION, so an
    API call writes nothing most of the time. One conditional UPDATE, in its own
    statement after any transaction the caller is in: a row lock on the token held
    through a request would wait, and make others wait, against the lock order."""
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < (
        TOKEN_USE_PRECISION
    ):
        return
    token.last_used_at = now

    def touch() -> None:
        ApiToken.objects.filter(pk=token.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - TOKEN_USE_PRECISION)
        ).update(last_used_at=now)

    transaction.on_commit(touch)
