"""Production settings need their secrets; development makes its own."""

import base64
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from config.dev_secrets import load_dev_secrets
from tests.settings_probe import settings_value

ROOT = Path(__file__).resolve().parents[2]


def _key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


PRODUCTION_ENV = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "AMANAH_MASTER_KEYS": f"1:{_key()}",
    "AMANAH_BLIND_INDEX_KEY": _key(),
    "DJANGO_ALLOWED_HOSTS": "amanah.example",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/amanah",
    "AMANAH_RELAY_SECRET": secrets.token_urlsafe(32),
    "CACHE_URL": "redis://127.0.0.1:6379/1",
    "AMANAH_PUBLIC_URL": "https://amanah.example",
    "AMANAH_ERASURE_JOURNAL": os.path.join(
        tempfile.gettempdir(), "amanah-test-deploy-erasure-journal.jsonl"
    ),
    "AMANAH_SIGNING_KEY": _key(),
    "AMANAH_AUDIT_CHECKPOINT_DIR": tempfile.gettempdir(),
}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV}
    clean["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    return subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("missing", sorted(set(PRODUCTION_ENV) - {"DJANGO_DEBUG"}))
def test_production_refuses_to_start_without(missing):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = _manage("check", env=env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines == [f"Configuration error: {missing} is required when DJANGO_DEBUG=0"]


@pytest.mark.parametrize("url", ["locmemcache://", "dummycache://"])
def test_production_refuses_a_cache_each_process_keeps_alone(url):
    result = _manage("check", env={**PRODUCTION_ENV, "CACHE_URL": url})
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "Configuration error: CACHE_URL must be a cache every process shares "
        "(e.g. redis://...) when DJANGO_DEBUG=0"
    ]


@pytest.mark.parametrize(
    "url",
    [
        "http://amanah.example",  # links to sign-in and reset pages, in the clear
        "amanah.example",
        "/me/",
        "https://",
        "ftp://amanah.example",
        "https://amanah.example/?from=mail",
        "https://amanah.example/#top",
    ],
)
def test_production_refuses_a_public_url_that_is_not_absolute_https(url):
    result = _manage("check", env={**PRODUCTION_ENV, "AMANAH_PUBLIC_URL": url})
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "Configuration error: AMANAH_PUBLIC_URL must be an absolute https:// URL "
        "(scheme and host, no query) when DJANGO_DEBUG=0"
    ]


def test_development_has_a_public_url_of_its_own_and_takes_http():
    assert _setting("s.AMANAH_PUBLIC_URL", {}) == "http://127.0.0.1:8000"
    got = _setting("s.AMANAH_PUBLIC_URL", {"AMANAH_PUBLIC_URL": "http://localhost:9"})
    assert got == "http://localhost:9"


def test_development_refuses_a_public_url_that_is_not_absolute():
    clean = {k: v for k, v in os.environ.items() if k != "AMANAH_PUBLIC_URL"}
    result = _manage(
        "check",
        env={**clean, "DJANGO_DEBUG": "1", "AMANAH_PUBLIC_URL": "127.0.0.1:8000"},
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "Configuration error: AMANAH_PUBLIC_URL must be an absolute http:// or "
        "https:// URL (scheme and host, no query)"
    ]


def test_production_with_master_keys_in_an_hsm_needs_no_env_keys(softhsm):
    """With `pkcs11` AMANAH_MASTER_KEYS is optional (older versions only) and the
    deploy checklist passes against the token."""
    env = {
        k: v
        for k, v in PRODUCTION_ENV.items()
        if k not in {"AMANAH_MASTER_KEYS", "AMANAH_SIGNING_KEY"}
    }
    env |= softhsm.settings("deploy-check") | {"SOFTHSM2_CONF": softhsm.conf}
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stderr
    env["AMANAH_PKCS11_PIN"] = "wrong"
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "The PIN for PKCS#11 token" in result.stderr


def test_production_settings_pass_the_deploy_checklist():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_development_secrets_are_created_once_with_a_warning(tmp_path, capsys):
    path = tmp_path / ".dev-secrets.env"
    first = load_dev_secrets(path)
    assert "WARNING" in capsys.readouterr().err
    assert set(first) == {
        "DJANGO_SECRET_KEY",
        "AMANAH_MASTER_KEYS",
        "AMANAH_BLIND_INDEX_KEY",
        "AMANAH_SIGNING_KEY",
    }
    assert oct(path.stat().st_mode & 0o777) == "0o600"

    assert load_dev_secrets(path) == first
    assert capsys.readouterr().err == ""


def test_gitignore_keeps_development_secrets_out_of_the_repository():
    assert ".dev-secrets.env" in (ROOT / ".gitignore").read_text().splitlines()


def test_the_development_erasure_journal_is_kept_out_of_the_repository():
    journal = _setting("s.AMANAH_ERASURE_JOURNAL", {"AMANAH_ERASURE_JOURNAL": ""})
    assert journal == str(ROOT / ".erasure-journal.jsonl")
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "/.erasure-journal.jsonl" in ignored


def test_production_refuses_a_checkpoint_directory_that_is_not_there(tmp_path):
    result = _manage(
        "check",
        "--deploy",
        env={
            **PRODUCTION_ENV,
            "AMANAH_AUDIT_CHECKPOINT_DIR": str(tmp_path / "not-mounted"),
        },
    )
    assert result.returncode != 0
    assert "audit.E003" in result.stderr
    assert "not-mounted" in result.stderr


def test_production_refuses_a_malformed_signing_key():
    result = _manage(
        "check", env={**PRODUCTION_ENV, "AMANAH_SIGNING_KEY": "bm90IDMyIGJ5dGVz"}
    )
    assert result.returncode != 0
    assert "crypto.E004" in result.stderr
    assert "AMANAH_SIGNING_KEY must be 32 bytes" in result.stderr


def test_the_development_checkpoints_are_kept_out_of_the_repository():
    directory = _setting(
        "s.AMANAH_AUDIT_CHECKPOINT_DIR", {"AMANAH_AUDIT_CHECKPOINT_DIR": ""}
    )
    assert directory == str(ROOT / ".audit-checkpoints")
    assert "/.audit-checkpoints/" in (ROOT / ".gitignore").read_text().splitlines()


def test_production_refuses_a_journal_directory_that_is_not_there(tmp_path):
    journal = str(tmp_path / "not-mounted" / "erasure-journal.jsonl")
    result = _manage(
        "check",
        "--deploy",
        env={**PRODUCTION_ENV, "AMANAH_ERASURE_JOURNAL": journal},
    )
    assert result.returncode != 0
    assert "customers.E003" in result.stderr
    assert "not-mounted" in result.stderr


def _setting(expression: str, env: dict[str, str]) -> str:
    """What `expression` over the development settings is, with `env` set."""
    return settings_value(
        expression, env, unset={"DJANGO_BEHIND_TLS_PROXY", "AMANAH_PROXY_COUNT"}
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "0"),
        ({"DJANGO_BEHIND_TLS_PROXY": "1"}, "1"),
        ({"DJANGO_BEHIND_TLS_PROXY": "1", "AMANAH_PROXY_COUNT": "2"}, "2"),
        ({"AMANAH_PROXY_COUNT": "1"}, "1"),
    ],
    ids=["direct", "behind-the-proxy", "two-proxies", "count-alone"],
)
def test_the_proxy_count_trusts_one_hop_behind_the_tls_proxy(env, expected):
    got = _setting("s.AMANAH_PROXY_COUNT", env)
    assert got == expected


def test_the_old_axes_proxy_count_is_refused_with_its_new_name():
    clean = {k: v for k, v in os.environ.items() if k != "AMANAH_PROXY_COUNT"}
    result = _manage(
        "check", env={**clean, "DJANGO_DEBUG": "1", "AXES_PROXY_COUNT": "1"}
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "Configuration error: AXES_PROXY_COUNT is now AMANAH_PROXY_COUNT"
    ]


def test_a_mail_server_comes_from_django_email_url():
    got = _setting(
        "s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS, s.EMAIL_TIMEOUT",
        {"DJANGO_EMAIL_URL": "smtp+tls://amanah:secret@smtp.example.com:587"},
    )
    assert (
        got
        == "django.core.mail.backends.smtp.EmailBackend smtp.example.com 587 True 30"
    )
