"""OIDC settings: off when unset, a start-up error when half set, the mapping."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.accounts.oidc import (
    OidcConfig,
    group_roles_parse,
    mfa_method,
    role_for_claims,
)
from tests.config.test_settings import PRODUCTION_ENV, _manage

OIDC_ENV = {
    "AMANAH_OIDC_ISSUER": "https://login.example.com/realms/staff",
    "AMANAH_OIDC_CLIENT_ID": "amanah",
    "AMANAH_OIDC_CLIENT_SECRET": "s3cret-from-the-provider",
    "AMANAH_OIDC_GROUP_ROLES": "amanah-support=support_agent",
}


def test_deploy_checklist_is_clean_without_oidc():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr


def test_deploy_checklist_is_clean_with_oidc_and_asks_the_provider_nothing():
    # login.example.com does not resolve here: start-up must not fetch anything.
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={**PRODUCTION_ENV, **OIDC_ENV},
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "missing",
    ["AMANAH_OIDC_CLIENT_ID", "AMANAH_OIDC_CLIENT_SECRET", "AMANAH_OIDC_GROUP_ROLES"],
)
def test_half_set_oidc_stops_start_up_naming_what_is_missing(missing):
    env = {**PRODUCTION_ENV, **{k: v for k, v in OIDC_ENV.items() if k != missing}}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"Configuration error: {missing} is required with AMANAH_OIDC_ISSUER"
    ]


def test_unknown_role_stops_start_up_naming_it():
    env = {**PRODUCTION_ENV, **OIDC_ENV, "AMANAH_OIDC_GROUP_ROLES": "it=root"}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "AMANAH_OIDC_GROUP_ROLES: unknown role 'root'" in result.stderr


def test_client_secret_may_come_from_a_file(tmp_path):
    secret = tmp_path / "oidc-secret"
    secret.write_text("s3cret-in-a-file")
    env = {k: v for k, v in OIDC_ENV.items() if k != "AMANAH_OIDC_CLIENT_SECRET"}
    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.AMANAH_OIDC_CLIENT_SECRET)",
        env={**PRODUCTION_ENV, **env, "AMANAH_OIDC_CLIENT_SECRET_FILE": str(secret)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "s3cret-in-a-file"


def test_group_roles_parse():
    assert group_roles_parse(" a=support_agent , b=privacy_admin,") == {
        "a": "support_agent",
        "b": "privacy_admin",
    }
    # A group name may hold "=" (the role is after the last one).
    assert group_roles_parse("role=ops=delivery_agent") == {
        "role=ops": "delivery_agent"
    }
    with pytest.raises(ImproperlyConfigured, match="'nobody' is not group=role"):
        group_roles_parse("nobody")
    with pytest.raises(ImproperlyConfigured, match="unknown role 'customer'"):
        group_roles_parse("shoppers=customer")


def _config(**kwargs) -> OidcConfig:
    return OidcConfig(
        issuer="https://idp.example",
        client_id="amanah",
        client_secret="s",
        scopes="openid",
        role_claim=kwargs.get("role_claim", "groups"),
        group_roles={"a": "support_agent", "b": "support_agent", "c": "privacy_admin"},
        mfa_amr=frozenset(kwargs.get("mfa_amr", {"mfa"})),
    )


@pytest.mark.parametrize(
    ("claims", "role", "refusal"),
    [
        ({"groups": ["a"]}, "support_agent", ""),
        ({"groups": ["a", "b", "x"]}, "support_agent", ""),
        ({"groups": "c"}, "privacy_admin", ""),
        ({"groups": ["a", "c"]}, None, "ambiguous"),
        ({"groups": ["x"]}, None, "no_mapped_group"),
        ({"groups": []}, None, "no_mapped_group"),
        # No role claim, or one that is no list or string: the claims say nothing.
        ({}, None, "unknown"),
        ({"groups": None}, None, "unknown"),
        ({"groups": {"a": 1}}, None, "unknown"),
    ],
)
def test_role_for_claims(claims, role, refusal):
    decision = role_for_claims(claims, _config())
    assert (decision.role, decision.refusal) == (role, refusal)


def test_role_claim_is_configurable():
    decision = role_for_claims({"roles": ["c"]}, _config(role_claim="roles"))
    assert decision.role == "privacy_admin"


@pytest.mark.parametrize(
    ("amr", "method"),
    [
        (["mfa"], "mfa"),
        (["pwd", "mfa"], "mfa"),
        # Two kinds of factor (RFC 8176: knowledge, possession, inherence).
        (["pwd", "otp"], "pwd+otp"),
        (["hwk", "user", "fpt"], "hwk+fpt"),
        (["pin", "sc", "pin"], "pin+sc"),
        # One factor, however strong, or two of one kind, is not multi-factor.
        (["hwk"], None),
        (["otp"], None),
        (["sms"], None),
        (["swk"], None),
        (["pwd"], None),
        (["otp", "sms"], None),
        (["face", "iris"], None),
        (["mca"], None),
        ("mfa", None),  # amr is a list (RFC 8176); anything else counts for nothing
        (None, None),
    ],
)
def test_mfa_method(amr, method):
    assert mfa_method(amr, _config()) == method


def test_mfa_amr_names_values_that_count_alone():
    config = _config(mfa_amr={"mfa", "hwk"})
    assert mfa_method(["hwk"], config) == "hwk"
    assert mfa_method(["otp"], config) is None
