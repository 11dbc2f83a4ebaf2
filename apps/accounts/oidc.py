"""Staff sign-in with the company's OpenID provider: its configuration, its discovery
document, the role its claims map to, and the calls the beat job makes to it.

Off unless `AMANAH_OIDC_ISSUER` is set (README, "Staff sign-in with your identity
provider (OpenID Connect)"). Nothing here touches the database: the writes are in
`oidc_services`, the sign-in flow (mozilla-django-oidc) in `oidc_auth` and
`oidc_views`.
"""

import logging
import threading
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.accounts.errors import AccountError
from apps.accounts.models import STAFF_ROLES

logger = logging.getLogger(__name__)

# ID tokens are signed with the provider's key from its JWKS: RSA or P-256 ECDSA,
# never a shared secret (HS256) and never unsigned.
SIGNING_ALGORITHMS = ("RS256", "ES256")
# Seconds a provider call may take before it counts as the provider being down.
PROVIDER_TIMEOUT = 10
# Clock skew allowed between the provider and Amanah on an ID token's times.
LEEWAY_SECONDS = 60


class ProviderUnavailable(AccountError):
    """The provider did not answer, or answered something unusable."""

    status = 503
    code = "provider_unavailable"


class SignInRefused(AccountError):
    """The provider signed the person in, but Amanah does not let them in."""

    status = 403
    code = "refused"


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    scopes: str
    role_claim: str
    group_roles: dict[str, str]
    mfa_amr: frozenset[str]
    # Days an account stays active without the provider confirming its role.
    reconfirm_days: int = 7


@dataclass(frozen=True)
class Provider:
    """What the provider's discovery document says (the endpoints used)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    token_auth_basic: bool


@dataclass(frozen=True)
class RoleDecision:
    """The role the claims map to, or why none: `no_mapped_group`,
    `ambiguous` (mapped groups give different roles) or `unknown` (the claims do
    not say: no role claim, or not a list or string)."""

    role: str | None
    refusal: str = ""


def group_roles_parse(text: str) -> dict[str, str]:
    """`group=role,group=role` as a dict. Raises ImproperlyConfigured naming a bad
    entry or role (a staff role of apps/accounts/models.Role)."""
    mapping: dict[str, str] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        group, sep, role = (s.strip() for s in entry.rpartition("="))
        if not sep or not group or not role:
            raise ImproperlyConfigured(
                f"AMANAH_OIDC_GROUP_ROLES: '{entry}' is not group=role"
            )
        if role not in STAFF_ROLES:
            staff = ", ".join(sorted(STAFF_ROLES))
            raise ImproperlyConfigured(
                f"AMANAH_OIDC_GROUP_ROLES: unknown role '{role}' (one of: {staff})"
            )
        mapping[group] = role
    return mapping


def oidc_config() -> OidcConfig | None:
    """The configuration from settings (read now), or None when OIDC is off. Raises
    ImproperlyConfigured when it is half set or a role is unknown."""
    # Exact: an issuer ending in "/" (Auth0) is that string in every ID token.
    issuer = settings.AMANAH_OIDC_ISSUER
    if not issuer:
        return None
    for name in ("AMANAH_OIDC_CLIENT_ID", "AMANAH_OIDC_CLIENT_SECRET"):
        if not getattr(settings, name):
            raise ImproperlyConfigured(f"{name} is required with AMANAH_OIDC_ISSUER")
    group_roles = group_roles_parse(settings.AMANAH_OIDC_GROUP_ROLES)
    if not group_roles:
        raise ImproperlyConfigured(
            "AMANAH_OIDC_GROUP_ROLES is required with AMANAH_OIDC_ISSUER"
        )
    reconfirm_days = settings.AMANAH_OIDC_RECONFIRM_DAYS
    if not isinstance(reconfirm_days, int) or reconfirm_days < 1:
        raise ImproperlyConfigured("AMANAH_OIDC_RECONFIRM_DAYS must be 1 or more")
    return OidcConfig(
        issuer=issuer,
        client_id=settings.AMANAH_OIDC_CLIENT_ID,
        client_secret=settings.AMANAH_OIDC_CLIENT_SECRET,
        scopes=settings.AMANAH_OIDC_SCOPES,
        role_claim=settings.AMANAH_OIDC_ROLE_CLAIM,
        group_roles=group_roles,
        mfa_amr=frozenset(settings.AMANAH_OIDC_MFA_AMR),
        reconfirm_days=reconfirm_days,
    )


def oidc_enabled() -> bool:
    return bool(settings.AMANAH_OIDC_ISSUER)


def role_for_claims(claims: dict[str, Any], config: OidcConfig) -> RoleDecision:
    """The role the person's groups (the role claim: a list, or one string) map to.
    Several mapped groups giving one role are fine; giving different roles is
    refused as ambiguous (never the most privileged: the provider's groups are to be
    fixed, not guessed from). Claims without the role claim say nothing: `unknown`,
    not "no group"."""
    value = claims.get(config.role_claim)
    groups = [value] if isinstance(value, str) else value
    if not isinstance(groups, list):
        return RoleDecision(role=None, refusal="unknown")
    roles = {
        config.group_roles[g]
        for g in groups
        if isinstance(g, str) and g in config.group_roles
    }
    if not roles:
        return RoleDecision(role=None, refusal="no_mapped_group")
    if len(roles) > 1:
        return RoleDecision(role=None, refusal="ambiguous")
    return RoleDecision(role=roles.pop())


# RFC 8176's authentication methods by the kind of factor they are. Two kinds make
# multi-factor; one method alone (a passkey, an SMS code) is one factor.
FACTOR_KINDS = {
    **dict.fromkeys(("pwd", "pin"), "knowledge"),
    **dict.fromkeys(("otp", "hwk", "swk", "sms", "tel", "sc"), "possession"),
    **dict.fromkeys(("fpt", "face", "iris", "retina", "vbm"), "inherence"),
}


def mfa_method(amr: Any, config: OidcConfig) -> str | None:
    """How the provider's sign-in was multi-factor, or None: the first `amr` value
    (RFC 8176) of `config.mfa_amr` (`mfa` by default), else the methods of at least
    two distinct factor kinds, joined with "+" (`pwd+otp`)."""
    if not isinstance(amr, list):
        return None
    methods = [m for m in amr if isinstance(m, str)]
    alone = next((m for m in methods if m in config.mfa_amr), None)
    if alone is not None:
        return alone
    factors = list(dict.fromkeys(m for m in methods if m in FACTOR_KINDS))
    if len({FACTOR_KINDS[m] for m in factors}) < 2:
        return None
    return "+".join(factors)


# The discovery document, once per process and issuer. Not shared across processes
# on purpose: it is public, changes rarely, and each process can fetch its own.
_providers: dict[str, Provider] = {}
_providers_lock = threading.Lock()


def provider_get(config: OidcConfig) -> Provider:
    """The provider's endpoints from its discovery document, fetched on first use and
    kept for the process. Raises ProviderUnavailable (not kept: tried again next
    time)."""
    found = _providers.get(config.issuer)
    if found is not None:
        return found
    with _providers_lock:
        found = _providers.get(config.issuer)
        if found is None:
            found = _providers[config.issuer] = _discover(config.issuer)
    return found


def provider_forget() -> None:
    """Forget every discovery document (tests; a provider that moved its endpoints)."""
    with _providers_lock:
        _providers.clear()


def _discover(issuer: str) -> Provider:
    # OpenID Connect Discovery 1.0, 4: the issuer's trailing "/" is not doubled.
    url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=PROVIDER_TIMEOUT)
        response.raise_for_status()
        doc = response.json()
    except (requests.RequestException, ValueError):
        logger.warning("oidc.discovery_failed", exc_info=True)
        raise ProviderUnavailable(
            "The identity provider cannot be reached. Try again in a few minutes, or "
            "sign in with your password if you have one."
        ) from None
    if not isinstance(doc, dict) or doc.get("issuer") != issuer:
        # OpenID Connect Discovery 1.0, 4.3: the document names this issuer, exactly.
        logger.warning("oidc.discovery_wrong_issuer")
        raise ProviderUnavailable(
            "The identity provider's configuration names another issuer."
        )
    missing = [
        key
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri")
        if not isinstance(doc.get(key), str)
    ]
    if missing:
        logger.warning("oidc.discovery_incomplete", extra={"missing": missing})
        raise ProviderUnavailable(
            "The identity provider's configuration lacks " + ", ".join(missing) + "."
        )
    methods = doc.get("token_endpoint_auth_methods_supported") or [
        "client_secret_basic"
    ]
    return Provider(
        issuer=issuer,
        authorization_endpoint=doc["authorization_endpoint"],
        token_endpoint=doc["token_endpoint"],
        jwks_uri=doc["jwks_uri"],
        userinfo_endpoint=doc.get("userinfo_endpoint") or None,
        token_auth_basic="client_secret_basic" in methods,
    )


def id_token_verify(
    token: str, *, config: OidcConfig, provider: Provider
) -> dict[str, Any]:
    """The claims of an ID token (or signed userinfo) after checking its signature
    with the provider's JWKS (RS256 or ES256), its issuer, audience and times. The
    nonce is the caller's to check. Raises ProviderUnavailable (JWKS unreachable) or
    SignInRefused (a token that does not verify)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _bad_token() from None
    alg = header.get("alg")
    if alg not in SIGNING_ALGORITHMS:
        raise _bad_token()
    try:
        response = requests.get(provider.jwks_uri, timeout=PROVIDER_TIMEOUT)
        response.raise_for_status()
        keys = jwt.PyJWKSet.from_dict(response.json()).keys
    except (requests.RequestException, ValueError, jwt.PyJWTError):
        logger.warning("oidc.jwks_failed", exc_info=True)
        raise ProviderUnavailable(
            "The identity provider's keys cannot be read."
        ) from None
    kid = header.get("kid")
    candidates = [
        k
        for k in keys
        if (kid is None or k.key_id == kid) and getattr(k, "algorithm_name", alg) == alg
    ]
    for key in candidates:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=config.client_id,
                issuer=provider.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError:
            raise _bad_token() from None
    raise _bad_token()


def _bad_token() -> SignInRefused:
    logger.warning("oidc.id_token_invalid")
    return SignInRefused("The identity provider's answer could not be verified.")


@dataclass(frozen=True)
class Refreshed:
    """What the token endpoint answered to a refresh: the claims to re-derive the
    role from, and the refresh token to keep (a rotated one, or the same)."""

    claims: dict[str, Any]
    refresh_token: str


class GrantRevoked(AccountError):
    """The provider refused the refresh token (`invalid_grant`): expired (the usual
    case: idle and maximum session times), revoked, or the person removed. It does
    not say which: the account can no longer be checked, nothing more."""

    code = "invalid_grant"


def token_refresh(*, config: OidcConfig, refresh_token: str) -> Refreshed:
    """Use `refresh_token` at the token endpoint and read the person's claims now,
    as a sign-in reads them: userinfo merged with the new ID token (whose claims
    win). Raises GrantRevoked (`invalid_grant`), SignInRefused (an ID token that
    does not verify, userinfo of another subject) or ProviderUnavailable (anything
    else: tried again at the next run)."""
    provider = provider_get(config)
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    auth = None
    if provider.token_auth_basic:
        auth = (config.client_id, config.client_secret)
    else:
        data |= {"client_id": config.client_id, "client_secret": config.client_secret}
    try:
        response = requests.post(
            provider.token_endpoint, data=data, auth=auth, timeout=PROVIDER_TIMEOUT
        )
        answer = response.json()
    except (requests.RequestException, ValueError):
        logger.warning("oidc.refresh_failed", exc_info=True)
        raise ProviderUnavailable("The identity provider cannot be reached.") from None
    if response.status_code != 200 or not isinstance(answer, dict):
        error = answer.get("error") if isinstance(answer, dict) else None
        if error == "invalid_grant":
            raise GrantRevoked("The identity provider refused the refresh token.")
        logger.warning(
            "oidc.refresh_refused",
            extra={"status": response.status_code, "error": error},
        )
        raise ProviderUnavailable("The identity provider refused the refresh.")
    id_claims: dict[str, Any] = {}
    if isinstance(answer.get("id_token"), str):
        id_claims = id_token_verify(
            answer["id_token"], config=config, provider=provider
        )
    userinfo: dict[str, Any] = {}
    if provider.userinfo_endpoint and isinstance(answer.get("access_token"), str):
        userinfo = userinfo_get(provider=provider, access_token=answer["access_token"])
    if not id_claims and not userinfo:
        raise ProviderUnavailable("The identity provider returned no claims.")
    if id_claims and userinfo.get("sub", id_claims["sub"]) != id_claims["sub"]:
        # OpenID Connect Core 5.3.2: userinfo of someone else is not to be used.
        raise _bad_token()
    claims = {**userinfo, **id_claims}
    return Refreshed(
        claims=claims, refresh_token=answer.get("refresh_token") or refresh_token
    )


def userinfo_get(*, provider: Provider, access_token: str) -> dict[str, Any]:
    """The userinfo endpoint's claims (JSON). Raises ProviderUnavailable."""
    if provider.userinfo_endpoint is None:
        return {}
    try:
        response = requests.get(
            provider.userinfo_endpoint,
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=PROVIDER_TIMEOUT,
        )
        response.raise_for_status()
        claims = response.json()
    except (requests.RequestException, ValueError):
        logger.warning("oidc.userinfo_failed", exc_info=True)
        raise ProviderUnavailable("The identity provider cannot be reached.") from None
    if not isinstance(claims, dict):
        raise ProviderUnavailable("The identity provider's userinfo is not an object.")
    return claims
