"""Writes for staff signing in through the company's OpenID provider: the account a
sign-in lands on (created, re-roled, deactivated), and the beat job's check with the
provider.

Lock order (apps/core/db.py): the user's row, then their OIDC link, devices, tokens
and permissions, then the audit chain (last: the events are recorded after every row
is written). Calls to the provider happen outside any transaction.
"""

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from django.contrib.auth.models import Permission
from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.accounts import sealing
from apps.accounts.models import (
    Deactivator,
    OidcIdentity,
    ProviderMfaDevice,
    Role,
    User,
)
from apps.accounts.oidc import (
    GrantRevoked,
    OidcConfig,
    ProviderUnavailable,
    Refreshed,
    SignInRefused,
    mfa_method,
    oidc_config,
    role_for_claims,
    token_refresh,
)
from apps.accounts.services import ADMIN_VIEW_PERMS, user_lock, user_sessions_end
from apps.audit import services as audit
from apps.core.db import advisory_session_lock, advisory_xact_lock

logger = logging.getLogger(__name__)

_USERNAME_OK = re.compile(r"^[\w.+-]{1,100}$")
_EMAIL_LIKE = re.compile(r"@")

REFUSALS = {
    "no_mapped_group": "Your company account is not in a group that has a role in "
    "Amanah. Ask your administrator to add you to one.",
    "ambiguous": "Your company account is in groups that give different roles in "
    "Amanah. Ask your administrator to leave you in one.",
    "unknown": "The identity provider did not say which groups your company account "
    "is in. Ask your administrator to send them to Amanah.",
    "inactive": "This Amanah account is deactivated. Ask a privacy admin.",
}


@dataclass(frozen=True)
class _Event:
    """An audit event to record once every row is written (the audit chain last)."""

    action: str
    target: User | None
    details: dict[str, Any]
    actor: User | None = None


def _events_record(events: list[_Event]) -> None:
    for event in events:
        audit.record(
            actor=event.actor,
            action=event.action,
            target=event.target,
            details=event.details,
        )


@dataclass(frozen=True)
class OidcSignIn:
    """A sign-in the provider vouched for and Amanah accepts: the account, and the
    device that marks the session verified when the provider's MFA counts."""

    user: User
    mfa_device: ProviderMfaDevice | None
    mfa_method: str | None


def _aad(identity: OidcIdentity) -> bytes:
    return f"amanah:v1:accounts_oidcidentity.refresh_token:{identity.pk}".encode()


def _refresh_token_store(identity: OidcIdentity, refresh_token: str | None) -> None:
    if not refresh_token:
        identity.refresh_token_sealed = None
        return
    if identity.data_key is None:
        identity.data_key = sealing.data_key_create()
    identity.refresh_token_sealed = sealing.secret_seal(
        data_key=identity.data_key, plaintext=refresh_token, aad=_aad(identity)
    )


def oidc_refresh_token_get(*, identity: OidcIdentity) -> str | None:
    """The link's refresh token in clear, or None (none kept, key destroyed)."""
    if identity.refresh_token_sealed is None or identity.data_key is None:
        return None
    return sealing.secret_open(
        data_key=identity.data_key,
        blob=identity.refresh_token_sealed,
        aad=_aad(identity),
    )


def _role_set(user: User, role: str) -> None:
    user.role = role
    # As user_ensure_staff: only privacy admins reach the admin site.
    user.is_staff = role == Role.PRIVACY_ADMIN


def _admin_perms(user: User) -> None:
    if user.role == Role.PRIVACY_ADMIN:
        user.user_permissions.set(
            Permission.objects.filter(codename__in=ADMIN_VIEW_PERMS)
        )
    else:
        user.user_permissions.clear()


def _username_for(config: OidcConfig, subject: str, claims: dict[str, Any]) -> str:
    """`preferred_username` when the provider sends one that is no email address
    and no one has; else `oidc-` and a hash of the issuer and subject."""
    wanted = claims.get("preferred_username")
    if (
        isinstance(wanted, str)
        and _USERNAME_OK.match(wanted)
        and not _EMAIL_LIKE.search(wanted)
        and not User.objects.filter(username=wanted).exists()
    ):
        return wanted
    digest = hashlib.sha256(f"{config.issuer}\0{subject}".encode()).hexdigest()
    return f"oidc-{digest[:12]}"


def _deactivate(
    *,
    user: User,
    identity: OidcIdentity,
    reason: str,
    via: str,
    events: list[_Event],
) -> None:
    """Deactivate an OIDC-linked account for the provider's sake, as signing out
    everywhere does (sessions and API tokens end), forget its refresh token. In the
    caller's transaction, the user's row and the link locked; the event is the
    caller's to record."""
    user.is_active = False
    user.save(update_fields=["is_active"])
    user_sessions_end(user=user)
    identity.deactivated_at = timezone.now()
    identity.deactivated_by = Deactivator.PROVIDER
    identity.refresh_token_sealed = None
    identity.save(
        update_fields=["deactivated_at", "deactivated_by", "refresh_token_sealed"]
    )
    events.append(_Event("user.deactivated", user, {"reason": reason, "via": via}))


def oidc_sign_in(
    *,
    config: OidcConfig,
    subject: str,
    claims: dict[str, Any],
    amr: Any,
    refresh_token: str | None,
) -> OidcSignIn:
    """The account the provider's person (`subject` at `config.issuer`) signs in to,
    with the role their groups map to now: created at the first sign-in (only when a
    group maps), re-roled, or deactivated when no group maps any more (ambiguous or
    unknown groups are refused, the account left as it is). Raises SignInRefused
    (after committing the deactivation and the audit event)."""
    decision = role_for_claims(claims, config)
    method = mfa_method(amr, config)
    refusal = ""
    device = None
    events: list[_Event] = []
    with transaction.atomic():
        # Two first sign-ins of one person at once (two tabs): one creates the
        # account, the other finds it (step 1 of apps/core/db.py's order).
        advisory_xact_lock(f"accounts.oidc:{config.issuer}:{subject}")
        found = (
            OidcIdentity.objects.filter(issuer=config.issuer, subject=subject)
            .values_list("pk", "user_id")
            .first()
        )
        if found is None:
            if decision.role is None:
                refusal = decision.refusal
                events.append(
                    _Event(
                        "user.oidc_sign_in_refused",
                        None,
                        {"reason": refusal, "account": "absent"},
                    )
                )
            else:
                user = _account_create(
                    config=config,
                    subject=subject,
                    claims=claims,
                    role=decision.role,
                    refresh_token=refresh_token,
                    events=events,
                )
        else:
            user_lock(user_id=found[1])
            identity = (
                OidcIdentity.objects.select_for_update(no_key=True, of=("self",))
                .select_related("user", "data_key")
                .get(pk=found[0])
            )
            user = identity.user
            refusal = _account_update(
                user=user,
                identity=identity,
                role=decision.role,
                refusal=decision.refusal,
                refresh_token=refresh_token,
                events=events,
            )
        if not refusal:
            if method is not None:
                device, _ = ProviderMfaDevice.objects.get_or_create(
                    user=user, defaults={"name": "Identity provider", "confirmed": True}
                )
            events.append(
                _Event(
                    "user.signed_in_oidc",
                    user,
                    {
                        "role": user.role,
                        # Amanah's own step is still to come: `otp.verified`
                        # records it passed.
                        "second_factor": (
                            f"provider:{method}" if method else "amanah_pending"
                        ),
                    },
                    actor=user,
                )
            )
        _events_record(events)
    if refusal:
        logger.info("oidc.sign_in_refused", extra={"reason": refusal})
        raise SignInRefused(REFUSALS[refusal], code=refusal)
    return OidcSignIn(user=user, mfa_device=device, mfa_method=method)


def _account_create(
    *,
    config: OidcConfig,
    subject: str,
    claims: dict[str, Any],
    role: str,
    refresh_token: str | None,
    events: list[_Event],
) -> User:
    now = timezone.now()
    user = User(username=_username_for(config, subject, claims))
    _role_set(user, role)
    # No password: such an account signs in through the provider only.
    user.set_unusable_password()
    user.save()
    _admin_perms(user)
    identity = OidcIdentity.objects.create(
        user=user,
        issuer=config.issuer,
        subject=subject,
        signed_in_at=now,
        confirmed_at=now,
    )
    _refresh_token_store(identity, refresh_token)
    identity.save(update_fields=["data_key", "refresh_token_sealed"])
    events.append(_Event("user.created", user, {"role": role, "via": "oidc"}))
    return user


def _account_update(
    *,
    user: User,
    identity: OidcIdentity,
    role: str | None,
    refusal: str,
    refresh_token: str | None,
    events: list[_Event],
) -> str:
    """Apply what the provider says now; the refusal's code, or "" to sign in."""
    if role is None:
        # Only "no_mapped_group" is the provider removing the person; ambiguous or
        # unknown groups are its configuration to fix, and refused only.
        if refusal == "no_mapped_group" and user.is_active:
            _deactivate(
                user=user,
                identity=identity,
                reason=refusal,
                via="sign_in",
                events=events,
            )
        else:
            events.append(
                _Event(
                    "user.oidc_sign_in_refused",
                    user,
                    {
                        "reason": refusal,
                        "account": "active" if user.is_active else "inactive",
                    },
                )
            )
        return refusal
    if not user.is_active:
        if identity.deactivated_by != Deactivator.PROVIDER:
            # Deactivated last by Amanah (or without a note): it stays so.
            events.append(
                _Event(
                    "user.oidc_sign_in_refused",
                    user,
                    {"reason": "inactive", "account": "inactive"},
                )
            )
            return "inactive"
        user.is_active = True
        identity.deactivated_at = None
        identity.deactivated_by = ""
        events.append(
            _Event("user.reactivated", user, {"role": role, "via": "sign_in"})
        )
    if user.role != role:
        _role_change(user=user, role=role, via="sign_in", events=events)
    user.save(update_fields=["is_active", "role", "is_staff"])
    _refresh_token_store(identity, refresh_token)
    identity.signed_in_at = identity.confirmed_at = timezone.now()
    if refresh_token:
        identity.refresh_refused_at = None
    identity.save(
        update_fields=[
            "deactivated_at",
            "deactivated_by",
            "data_key",
            "refresh_token_sealed",
            "signed_in_at",
            "confirmed_at",
            "refresh_refused_at",
        ]
    )
    return ""


def _role_change(*, user: User, role: str, via: str, events: list[_Event]) -> None:
    before = user.role
    _role_set(user, role)
    _admin_perms(user)
    events.append(
        _Event("user.role_changed", user, {"from": before, "to": role, "via": via})
    )


# The beat job


def oidc_account_check(*, identity_id: int) -> str:
    """Ask the provider, with the link's refresh token, what the person's groups are
    now (read as a sign-in reads them). Returns what happened: "changed" or
    "unchanged" (one role: confirmed), "deactivated" (no mapped group), "ambiguous"
    or "unknown" (the role left as it is, not confirmed), "refused" (`invalid_grant`:
    the token forgotten, the account left as it is), "skipped" (inactive, no token,
    OIDC off) or "unavailable" (the provider did not answer; tried again at the
    next run). Raises SignInRefused (a refreshed ID token that does not verify)."""
    config = oidc_config()
    if config is None:
        return "skipped"
    identity = (
        OidcIdentity.objects.select_related("user", "data_key")
        .filter(pk=identity_id, user__is_active=True, issuer=config.issuer)
        .first()
    )
    if identity is None:
        return "skipped"
    refresh_token = oidc_refresh_token_get(identity=identity)
    if not refresh_token:
        return "skipped"
    sealed_before = _bytes(identity.refresh_token_sealed)
    # The provider is asked outside any transaction: no lock waits on the network.
    refreshed: Refreshed | None
    try:
        refreshed = token_refresh(config=config, refresh_token=refresh_token)
    except GrantRevoked:
        # Mostly an expired token (idle or maximum session time): it says nothing
        # about the person. The account waits for its next sign-in, and is
        # deactivated if none comes within AMANAH_OIDC_RECONFIRM_DAYS.
        refreshed = None
    except ProviderUnavailable:
        logger.warning("oidc.check_unavailable", extra={"user_id": identity.user_id})
        return "unavailable"
    if refreshed is not None and refreshed.claims.get("sub") not in (
        None,
        identity.subject,
    ):
        logger.warning("oidc.check_wrong_subject", extra={"user_id": identity.user_id})
        return "unavailable"
    events: list[_Event] = []
    with transaction.atomic():
        user_lock(user_id=identity.user_id)
        identity = (
            OidcIdentity.objects.select_for_update(no_key=True, of=("self",))
            .select_related("user", "data_key")
            .get(pk=identity.pk)
        )
        user = identity.user
        if not user.is_active:
            return "skipped"
        # A sign-in meanwhile kept a newer token: that one stays.
        token_kept = _bytes(identity.refresh_token_sealed) == sealed_before
        now = timezone.now()
        if refreshed is None:
            if not token_kept:
                return "skipped"
            identity.refresh_token_sealed = None
            identity.refresh_refused_at = now
            identity.save(update_fields=["refresh_token_sealed", "refresh_refused_at"])
            logger.info("oidc.check_token_refused", extra={"user_id": user.pk})
            return "refused"
        identity.checked_at = now
        fields = ["checked_at"]
        decision = role_for_claims(refreshed.claims, config)
        if decision.refusal == "no_mapped_group":
            _deactivate(
                user=user,
                identity=identity,
                reason="no_mapped_group",
                via="check",
                events=events,
            )
            outcome = "deactivated"
        else:
            if decision.role is None:
                logger.warning(
                    "oidc.check_no_role",
                    extra={"user_id": user.pk, "reason": decision.refusal},
                )
                outcome = decision.refusal
            else:
                identity.confirmed_at = now
                fields.append("confirmed_at")
                outcome = "unchanged"
                if user.role != decision.role:
                    _role_change(
                        user=user, role=decision.role, via="check", events=events
                    )
                    user.save(update_fields=["role", "is_staff"])
                    outcome = "changed"
            if token_kept:
                _refresh_token_store(identity, refreshed.refresh_token)
                fields += ["data_key", "refresh_token_sealed"]
        identity.save(update_fields=fields)
        _events_record(events)
    return outcome


def oidc_account_expire(*, identity_id: int, reconfirm_days: int) -> str:
    """Deactivate an OIDC-linked account the provider has not confirmed (a sign-in,
    or a check that mapped one role) for `reconfirm_days`, as the provider's removal
    does: a later sign-in that maps brings it back. Returns "unconfirmed", or
    "skipped" (inactive, or confirmed meanwhile)."""
    user_id = (
        OidcIdentity.objects.filter(pk=identity_id)
        .values_list("user_id", flat=True)
        .first()
    )
    if user_id is None:
        return "skipped"
    events: list[_Event] = []
    with transaction.atomic():
        user_lock(user_id=user_id)
        identity = (
            OidcIdentity.objects.select_for_update(no_key=True, of=("self",))
            .select_related("user")
            .get(pk=identity_id)
        )
        user = identity.user
        confirmed = identity.confirmed_at or identity.created_at
        if not user.is_active or confirmed >= timezone.now() - timedelta(
            days=reconfirm_days
        ):
            return "skipped"
        _deactivate(
            user=user,
            identity=identity,
            reason="not_reconfirmed",
            via="check",
            events=events,
        )
        _events_record(events)
    return "unconfirmed"


def _bytes(value: bytes | memoryview | None) -> bytes | None:
    return None if value is None else bytes(value)


def _isolated(check: Callable[[], str], *, user_id: int) -> str:
    """One account's outcome; "error" when it failed (the others still run)."""
    try:
        return check()
    except Exception as error:
        # The id only: the error may come from the provider's answer.
        logger.warning(
            "oidc.check_failed",
            extra={"user_id": user_id, "error": type(error).__name__},
        )
        return "error"


def oidc_accounts_check() -> dict[str, int]:
    """The beat job: `oidc_account_check` for every active OIDC-linked account
    holding a refresh token, then `oidc_account_expire` for every active one the
    provider has not confirmed for AMANAH_OIDC_RECONFIRM_DAYS (with or without a
    token). Each account on its own: one failing is counted as "error". Returns the
    count of each outcome ("skipped" expiries are not counted)."""
    config = oidc_config()
    if config is None:
        return {}
    # One run at a time in all processes: two would use one refresh token twice,
    # which providers that rotate tokens answer by revoking them all.
    with advisory_session_lock("accounts.oidc_accounts_check") as got:
        if not got:
            logger.info("oidc.accounts_check_busy")
            return {"busy": 1}
        return _accounts_check(config)


def _accounts_check(config: OidcConfig) -> dict[str, int]:
    counts: dict[str, int] = {}
    linked = OidcIdentity.objects.filter(user__is_active=True).order_by("pk")
    with_token = linked.filter(issuer=config.issuer, refresh_token_sealed__isnull=False)
    for identity_id, user_id in list(with_token.values_list("pk", "user_id")):
        check = partial(oidc_account_check, identity_id=identity_id)
        outcome = _isolated(check, user_id=user_id)
        counts[outcome] = counts.get(outcome, 0) + 1
    # After the checks, which confirmed whom they could.
    cutoff = timezone.now() - timedelta(days=config.reconfirm_days)
    stale = linked.annotate(confirmed=Coalesce("confirmed_at", "created_at")).filter(
        confirmed__lt=cutoff
    )
    for identity_id, user_id in list(stale.values_list("pk", "user_id")):
        expire = partial(
            oidc_account_expire,
            identity_id=identity_id,
            reconfirm_days=config.reconfirm_days,
        )
        outcome = _isolated(expire, user_id=user_id)
        if outcome != "skipped":
            counts[outcome] = counts.get(outcome, 0) + 1
    logger.info("oidc.accounts_checked", extra=counts)
    return counts
