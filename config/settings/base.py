"""Amanah settings, all read from the environment (see README, "Configuration").

DJANGO_DEBUG unset or true: development mode, SQLite by default, development secrets in
a git-ignored file. DJANGO_DEBUG=0: production mode, every secret must be given, and the
secure-transport settings are on.
"""

import ipaddress
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from apps.core.siem import syslog_address
from config.cache import REDIS_CACHE, redis_client_options
from config.dev_secrets import DEV_SECRET_NAMES, load_dev_secrets
from config.env import env

BASE_DIR = Path(__file__).resolve().parent.parent.parent

DEBUG = env.bool("DJANGO_DEBUG", default=True)

_dev_secrets = (
    load_dev_secrets(BASE_DIR / ".dev-secrets.env")
    if DEBUG and not all(env.str(name, default="") for name in DEV_SECRET_NAMES)
    else {}
)


def _required(name: str, *, dev_default: str | None = None) -> str:
    value = env.str(name, default="")
    if value:
        return value
    if DEBUG and dev_default is not None:
        return dev_default
    raise ImproperlyConfigured(f"{name} is required when DJANGO_DEBUG=0")


SECRET_KEY = _required(
    "DJANGO_SECRET_KEY", dev_default=_dev_secrets.get("DJANGO_SECRET_KEY")
)
# Master keys (README, "How the encryption works"): `env` keeps them in
# AMANAH_MASTER_KEYS; `pkcs11` in an HSM token, where AMANAH_MASTER_KEYS (optional)
# holds only older versions still being rotated away.
AMANAH_KEY_PROVIDER = env.str("AMANAH_KEY_PROVIDER", default="env")
AMANAH_MASTER_KEYS = (
    _required("AMANAH_MASTER_KEYS", dev_default=_dev_secrets.get("AMANAH_MASTER_KEYS"))
    if AMANAH_KEY_PROVIDER == "env"
    else env.str("AMANAH_MASTER_KEYS", default="")
)
AMANAH_PKCS11_LIBRARY = env.str("AMANAH_PKCS11_LIBRARY", default="")
AMANAH_PKCS11_TOKEN = env.str("AMANAH_PKCS11_TOKEN", default="")
AMANAH_PKCS11_PIN = env.str("AMANAH_PKCS11_PIN", default="")  # or _PIN_FILE
AMANAH_PKCS11_KEY_LABEL = env.str("AMANAH_PKCS11_KEY_LABEL", default="amanah-master")
# A new master key version every epoch (beat's crypto.key_epoch rotates into it); a
# version is retired once every backup that may hold a key under it has expired.
AMANAH_KEY_EPOCH_DAYS = env.int("AMANAH_KEY_EPOCH_DAYS", default=30)
AMANAH_BACKUP_RETENTION_DAYS = env.int("AMANAH_BACKUP_RETENTION_DAYS", default=35)
AMANAH_BLIND_INDEX_KEY = _required(
    "AMANAH_BLIND_INDEX_KEY", dev_default=_dev_secrets.get("AMANAH_BLIND_INDEX_KEY")
)
# The Ed25519 key that signs consent receipts and audit checkpoints (README, "Signed
# consent receipts"): `env` keeps its seed in AMANAH_SIGNING_KEY; `pkcs11` makes the
# key pair on the token, where AMANAH_SIGNING_KEY (optional) is only still published.
AMANAH_SIGNING_KEY = (
    _required("AMANAH_SIGNING_KEY", dev_default=_dev_secrets.get("AMANAH_SIGNING_KEY"))
    if AMANAH_KEY_PROVIDER == "env"
    else env.str("AMANAH_SIGNING_KEY", default="")
)
# Public keys that signed before (comma-separated base64 of raw 32-byte Ed25519 keys):
# published and accepted, never signing. Put the old key's here when replacing it.
AMANAH_SIGNING_PUBLIC_KEYS_RETIRED = env.str(
    "AMANAH_SIGNING_PUBLIC_KEYS_RETIRED", default=""
)
# Checks of /receipts/verify/ per client address (public, no sign-in).
AMANAH_RECEIPT_VERIFY_RATE = env.str("AMANAH_RECEIPT_VERIFY_RATE", default="20/minute")
ALLOWED_HOSTS = [
    host.strip()
    for host in _required(
        "DJANGO_ALLOWED_HOSTS", dev_default="127.0.0.1,localhost"
    ).split(",")
    if host.strip()
]
DATABASES = {
    "default": env.db_url_config(
        _required("DATABASE_URL", dev_default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
    )
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Solid-state storage: random reads cost little more than sequential ones, so the
    # planner should use the primary-key index for `id = ANY(...)` lookups.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "options", env.str("DATABASE_PG_OPTIONS", default="-c random_page_cost=1.1")
    )
    # Django turns psycopg's prepared statements off (`prepare_threshold` None); the
    # statements apps.core.db's server_cursor asks to prepare (the agents' customer
    # rows, the API token) turn them on for themselves alone (`_LoggedCursor`).
# A streaming replica for the heavy reads (apps/core/replica.py; README, "Read
# replica"): the same connection settings as the primary's, and a short connect
# timeout, so a replica that does not answer costs a request little before its reads
# fall back to the primary. Unset: everything on the primary.
if env.str("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = env.db_url_config(env.str("DATABASE_REPLICA_URL"))
    for _key in ("ATOMIC_REQUESTS", "CONN_MAX_AGE", "CONN_HEALTH_CHECKS"):
        DATABASES["replica"][_key] = DATABASES["default"][_key]
    if DATABASES["replica"]["ENGINE"] == DATABASES["default"]["ENGINE"]:
        DATABASES["replica"]["OPTIONS"] = {
            **DATABASES["default"].get("OPTIONS", {}),
            **DATABASES["replica"].get("OPTIONS", {}),
        }
    if DATABASES["replica"]["ENGINE"].endswith("postgresql"):
        DATABASES["replica"].setdefault("OPTIONS", {}).setdefault(
            "connect_timeout", env.int("DATABASE_REPLICA_CONNECT_TIMEOUT", default=2)
        )
DATABASE_ROUTERS = ["apps.core.replica.ReplicaRouter"]
# The replica serves reads only while its replay lag is within this many seconds; a
# session that sent a change reads from the primary for as long after it.
AMANAH_REPLICA_MAX_LAG_S = env.float("AMANAH_REPLICA_MAX_LAG_S", default=30.0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# State that must hold across processes (throttles, replay guards, cross-process
# locks) lives in this cache: e.g. redis://127.0.0.1:6379/1. Development falls back
# to each process's own memory; production refuses to start without a shared one.
CACHES = {
    "default": env.cache_url_config(
        _required("CACHE_URL", dev_default="locmemcache://amanah")
    )
}
if CACHES["default"]["BACKEND"] == REDIS_CACHE:
    CACHES["default"].setdefault("OPTIONS", {}).update(redis_client_options())
if not DEBUG and CACHES["default"]["BACKEND"].rsplit(".", 1)[-1] in {
    "LocMemCache",
    "DummyCache",
}:
    raise ImproperlyConfigured(
        "CACHE_URL must be a cache every process shares (e.g. redis://...) when "
        "DJANGO_DEBUG=0"
    )

INSTALLED_APPS = [
    "apps.accounts.admin_app.AmanahAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "csp",
    "apps.core",
    "apps.accounts",
    "apps.audit",
    "apps.crypto",
    "apps.customers",
    "apps.webhooks",
    "apps.access",
    "apps.consent",
    "apps.portal",
    "apps.retention",
    "apps.incidents",
    "apps.imports",
    "apps.inventory",
    "apps.requests",
    "apps.monitoring",
    "apps.compliance",
    "apps.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language: the customer's saved choice (apps/portal), else the cookie the
    # switcher sets, else the browser's Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After a change, the session reads from the primary (apps/core/replica.py).
    "apps.core.replica.ReplicaPinMiddleware",
    # The customer's saved language over the cookie and the browser; staff pages
    # in English (apps/portal/language.py).
    "apps.portal.language.CustomerLanguageMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "apps.crypto.middleware.KeyScopeMiddleware",
    # Notes staff searches by email/phone and 404s on customer ids (no values).
    "apps.monitoring.middleware.StaffLookupMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "apps.accounts.middleware.SessionIdleTimeoutMiddleware",
    "apps.accounts.middleware.TwoFactorRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns lockouts into the lockout response.
    "axes.middleware.AxesMiddleware",
]

if not DEBUG:
    # In production WhiteNoise serves the collected static files (`collectstatic`).
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # TIME_ZONE: pages name the zone their times are shown in.
                "django.template.context_processors.tz",
                "apps.core.context_processors.navigation",
                "apps.incidents.context_processors.status_banner",
            ],
        },
    },
]

# Accounts and passwords
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses locked-out credentials before any password check.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "apps.portal.auth.CustomerEmailBackend",
    # Staff through the company's OpenID provider; answers nothing when it is off.
    "apps.accounts.oidc_auth.OidcBackend",
    "guardian.backends.ObjectPermissionBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation."
        "UserAttributeSimilarityValidator"
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-guardian: no anonymous user; object permissions are for signed-in staff only.
ANONYMOUS_USER_NAME = None
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"

# Sign-in lockout (django-axes, apps.accounts.lockout). The AXES_FAILURE_LIMIT-th
# failure for one username within the cool-off locks that username, from every
# address, until its failures are older than the cool-off (failures while locked are
# not counted, so the time the answer gives holds). A made-up username locks alike.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=6)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
# An address (behind AMANAH_PROXY_COUNT proxies, the client's own) is locked only at
# AMANAH_ADDRESS_FAILURE_LIMIT failures within the cool-off, whatever the usernames:
# password spraying. 100: even an office of 50 behind one NAT, every one mistyping
# twice in the same 15 minutes, stays below it (and a sign-in clears that person's
# failures), while a sprayer, whom the per-username limit does not slow, gets 100
# guesses per address per cool-off instead of unlimited ones.
AMANAH_ADDRESS_FAILURE_LIMIT = env.int("AMANAH_ADDRESS_FAILURE_LIMIT", default=100)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each counted on its own
AXES_HANDLER = "apps.accounts.lockout.SignInLockoutHandler"
AXES_LOCKOUT_CALLABLE = "apps.accounts.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "apps.accounts.network.client_address"
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_VERBOSE = False
# Customers sign in with an email address: axes keeps a keyed hash, never the address.
AXES_USERNAME_CALLABLE = "apps.portal.auth.axes_username"
# Axes also keeps each failed sign-in's form, masking only the fields named here: the
# customer's email address, the second-factor code and the CSRF token too.
AXES_SENSITIVE_PARAMETERS = [
    "username",
    "ip_address",
    "email",
    "otp_token",
    "csrfmiddlewaretoken",
]

# Sessions and CSRF: signed out after `AMANAH_SESSION_IDLE_MINUTES` without a request,
# and after `SESSION_COOKIE_AGE` whatever happens.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 60 * 60)
AMANAH_SESSION_IDLE_MINUTES = env.int("AMANAH_SESSION_IDLE_MINUTES", default=30)
# A sign-in's API token stops working this many hours after it was issued (named
# tokens, an integration's, carry their own expiry).
AMANAH_TOKEN_HOURS = env.int("AMANAH_TOKEN_HOURS", default=8)
# Safe retries (apps.core.idempotency): the answer to a request sent with an
# Idempotency-Key is replayed for this many hours (then purged by the beat), and a run
# holds its key this many seconds before a retry may take it over (its process died).
AMANAH_IDEMPOTENCY_HOURS = env.int("AMANAH_IDEMPOTENCY_HOURS", default=24)
AMANAH_IDEMPOTENCY_LEASE_SECONDS = env.int(
    "AMANAH_IDEMPOTENCY_LEASE_SECONDS", default=60
)
# The issuer name authenticator apps show next to the code.
OTP_TOTP_ISSUER = env.str("AMANAH_OTP_ISSUER", default="Amanah")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True  # should a device admin come back
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# Transport security: on whenever DEBUG is off.
SECURE_SSL_REDIRECT = not DEBUG
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = 0 if DEBUG else env.int("DJANGO_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG and env.bool("DJANGO_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
_BEHIND_TLS_PROXY = env.bool("DJANGO_BEHIND_TLS_PROXY", default=False)
if _BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Proxies in front of Django that append to X-Forwarded-For: the client's address is
# the entry this many from the right (apps.accounts.network.client_address), for the
# sign-in lockout, the API throttles and consent evidence alike.
# 0 reads the connection's address and ignores the header, which a client can forge.
if env.str("AXES_PROXY_COUNT", default=""):
    raise ImproperlyConfigured("AXES_PROXY_COUNT is now AMANAH_PROXY_COUNT")
AMANAH_PROXY_COUNT = env.int(
    "AMANAH_PROXY_COUNT", default=1 if _BEHIND_TLS_PROXY else 0
)

# Content Security Policy (django-csp): our own static files only, no inline script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Internationalisation
LANGUAGE_CODE = "en"
# What customers can read Amanah in (apps/core/i18n.py); staff pages stay English.
LANGUAGES = [
    ("en", "English"),
    ("id", "Bahasa Indonesia"),
    ("de", "Deutsch"),
    ("fa", "فارسی"),
]
LANGUAGES_BIDI = ["fa"]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# Static files
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Need-to-know access
AMANAH_REVEAL_MINUTES = env.int("AMANAH_REVEAL_MINUTES", default=10)
AMANAH_REVEALS_PER_HOUR = env.int("AMANAH_REVEALS_PER_HOUR", default=20)
AMANAH_INTERACTION_HOURS = {
    "support_case": env.int("AMANAH_SUPPORT_CASE_HOURS", default=8),
    "delivery": env.int("AMANAH_DELIVERY_HOURS", default=24),
}
AMANAH_INTERACTION_MAX_DAYS = env.int("AMANAH_INTERACTION_MAX_DAYS", default=7)
# Masked contact sessions: the provider adapter (like Django's email backends) and the
# shared secret its webhook signs requests with. A signed request is accepted once, from
# ..._FUTURE_SKEW_SECONDS before its timestamp (the provider's clock ahead of ours) to
# ..._MAX_SKEW_SECONDS after it; CACHE_URL remembers it for that window.
AMANAH_CONTACT_BACKEND = env.str(
    "AMANAH_CONTACT_BACKEND", default="apps.access.contact.LoggingContactBackend"
)
AMANAH_RELAY_SECRET = _required("AMANAH_RELAY_SECRET", dev_default="dev-relay-secret")
AMANAH_RELAY_MAX_SKEW_SECONDS = env.int("AMANAH_RELAY_MAX_SKEW_SECONDS", default=300)
AMANAH_RELAY_FUTURE_SKEW_SECONDS = env.int(
    "AMANAH_RELAY_FUTURE_SKEW_SECONDS", default=30
)

# Where the site is reached from outside, e.g. https://privacy.example.com: every link
# an email carries (opt-in, password reset, export ready, notices, alerts) and every
# unsubscribe URL is built on it (apps.core.links.public_url), never on the Host
# header a request came with. Production: required, and https.
AMANAH_PUBLIC_URL = _required("AMANAH_PUBLIC_URL", dev_default="http://127.0.0.1:8000")
_public = urlsplit(AMANAH_PUBLIC_URL)
if (
    _public.scheme not in ({"http", "https"} if DEBUG else {"https"})
    or not _public.hostname
    or _public.query
    or _public.fragment
):
    raise ImproperlyConfigured(
        "AMANAH_PUBLIC_URL must be an absolute https:// URL (scheme and host, no "
        "query) when DJANGO_DEBUG=0"
        if not DEBUG
        else "AMANAH_PUBLIC_URL must be an absolute http:// or https:// URL (scheme "
        "and host, no query)"
    )

# The erasure journal (README, "Restoring from a backup"): every erasure is appended to
# this file after it commits, so that a restore from a backup taken before it can
# reapply it (`manage.py reapply_erasures`). It must live outside the database and its
# backups; every process that erases (web, workers) appends to it. Production: required
# (and `check --deploy` checks its directory is there and writable).
AMANAH_ERASURE_JOURNAL = _required(
    "AMANAH_ERASURE_JOURNAL", dev_default=str(BASE_DIR / ".erasure-journal.jsonl")
)

# Signed audit checkpoints (README, "Audit checkpoints"): beat writes one here every
# hour, as `audit_checkpoint` does without --output. Like the journal, outside the
# database and its backups. Production: required (`check --deploy` checks it).
AMANAH_AUDIT_CHECKPOINT_DIR = _required(
    "AMANAH_AUDIT_CHECKPOINT_DIR", dev_default=str(BASE_DIR / ".audit-checkpoints")
)

# Security events out (README, "Security events out (SIEM)"): every audit event and
# alert, after it commits, as one JSON line to a syslog collector over TCP
# (tcp://host:port, RFC 5424, octet-counted) and/or appended to a file. Both off unless
# set; a malformed value stops start-up naming it.
AMANAH_SIEM_SYSLOG = env.str("AMANAH_SIEM_SYSLOG", default="")
if AMANAH_SIEM_SYSLOG:
    syslog_address(AMANAH_SIEM_SYSLOG)
AMANAH_SIEM_FILE = env.str("AMANAH_SIEM_FILE", default="")
if AMANAH_SIEM_FILE and not Path(AMANAH_SIEM_FILE).is_absolute():
    raise ImproperlyConfigured("AMANAH_SIEM_FILE must be an absolute path")

# Outbound events (README, "Outbound events (webhooks)"): a failed delivery is retried
# after AMANAH_WEBHOOK_RETRY_SECONDS * 2^(attempt-1) (±20 %, at most
# AMANAH_WEBHOOK_RETRY_MAX seconds), and dead-lettered after
# AMANAH_WEBHOOK_MAX_ATTEMPTS attempts. Endpoints must be https:// unless
# AMANAH_WEBHOOK_ALLOW_HTTP (default: only with DJANGO_DEBUG).
AMANAH_WEBHOOK_MAX_ATTEMPTS = env.int("AMANAH_WEBHOOK_MAX_ATTEMPTS", default=8)
AMANAH_WEBHOOK_RETRY_SECONDS = env.float("AMANAH_WEBHOOK_RETRY_SECONDS", default=30.0)
AMANAH_WEBHOOK_RETRY_MAX = env.float("AMANAH_WEBHOOK_RETRY_MAX", default=6 * 3600.0)
AMANAH_WEBHOOK_ALLOW_HTTP = env.bool("AMANAH_WEBHOOK_ALLOW_HTTP", default=DEBUG)
# Each attempt's wall-clock deadline (resolving, connecting, sending, the answer's
# headers); endpoints' hosts must resolve to public addresses only, or to these
# networks (comma-separated CIDRs, e.g. 10.20.0.0/16 for an on-premises receiver);
# finished deliveries and their events are purged after AMANAH_WEBHOOK_KEEP_DAYS.
AMANAH_WEBHOOK_TIMEOUT = env.float("AMANAH_WEBHOOK_TIMEOUT", default=10.0)
AMANAH_WEBHOOK_ALLOWED_NETWORKS = env.list(
    "AMANAH_WEBHOOK_ALLOWED_NETWORKS", default=[]
)
try:
    for _cidr in AMANAH_WEBHOOK_ALLOWED_NETWORKS:
        ipaddress.ip_network(_cidr, strict=False)
except ValueError:
    raise ImproperlyConfigured(
        "AMANAH_WEBHOOK_ALLOWED_NETWORKS must be comma-separated CIDRs"
    ) from None
AMANAH_WEBHOOK_KEEP_DAYS = env.int("AMANAH_WEBHOOK_KEEP_DAYS", default=30)

# Import of existing customers (README, "Importing existing customers"): the largest
# file the upload page takes; a job no worker finished within
# AMANAH_IMPORT_ABANDON_HOURS is failed and its sealed upload deleted (beat).
AMANAH_IMPORT_MAX_BYTES = env.int("AMANAH_IMPORT_MAX_BYTES", default=50 * 1024**2)
AMANAH_IMPORT_ABANDON_HOURS = env.int("AMANAH_IMPORT_ABANDON_HOURS", default=24)

# Staff sign-in with the company's OpenID provider (README, "Staff sign-in with your
# identity provider (OpenID Connect)"): off unless AMANAH_OIDC_ISSUER is set; its
# endpoints come from the issuer's discovery document. Half set (an issuer without a
# client id, secret or group mapping) or a mapping to an unknown role stops start-up
# naming it (AccountsConfig.ready). MFA: the `amr` values (RFC 8176) that count alone
# (`mfa`); otherwise two factor kinds must be named (`pwd` and `otp`). An OIDC-linked
# account the provider has not confirmed (sign-in, or hourly check) for
# AMANAH_OIDC_RECONFIRM_DAYS is deactivated until its next sign-in.
AMANAH_OIDC_ISSUER = env.str("AMANAH_OIDC_ISSUER", default="")
AMANAH_OIDC_CLIENT_ID = env.str("AMANAH_OIDC_CLIENT_ID", default="")
AMANAH_OIDC_CLIENT_SECRET = env.str("AMANAH_OIDC_CLIENT_SECRET", default="")  # or _FILE
AMANAH_OIDC_SCOPES = env.str("AMANAH_OIDC_SCOPES", default="openid")
AMANAH_OIDC_ROLE_CLAIM = env.str("AMANAH_OIDC_ROLE_CLAIM", default="groups")
AMANAH_OIDC_GROUP_ROLES = env.str("AMANAH_OIDC_GROUP_ROLES", default="")
AMANAH_OIDC_MFA_AMR = env.list("AMANAH_OIDC_MFA_AMR", default=["mfa"])
AMANAH_OIDC_RECONFIRM_DAYS = env.int("AMANAH_OIDC_RECONFIRM_DAYS", default=7)

# Consent and the self-service pages
AMANAH_OPT_IN_HOURS = env.int("AMANAH_OPT_IN_HOURS", default=48)

# Retention: rows per disposal batch (one short transaction each), and the time of
# day (TIME_ZONE, HH:MM) the nightly disposal job runs: it sets the beat job (below),
# and monitoring's off-schedule rule reads it. AMANAH_MONITOR_DISPOSAL_AT, its former
# name, is still read when it is not set.
AMANAH_DISPOSAL_BATCH_SIZE = env.int("AMANAH_DISPOSAL_BATCH_SIZE", default=2000)
# Each disposal batch aims at this many seconds of transaction: the next batch's
# size follows the last one's time, up to AMANAH_DISPOSAL_BATCH_SIZE (walk.py). A
# third of the limit below: a batch can run slow (a checkpoint, a busy disk) and
# still stay within it.
AMANAH_DISPOSAL_BATCH_SECONDS = env.float("AMANAH_DISPOSAL_BATCH_SECONDS", default=0.5)
# and each is held to this (PostgreSQL): one that would take longer is cancelled,
# rolled back and tried again with fewer rows; after eight batches in a row rolled
# back the next runs without it, so disposal goes on (walk.py). 0 turns it off.
# Below the 2 s a disposal transaction may hold its locks, with room for the
# rollback and the commit.
AMANAH_DISPOSAL_TRANSACTION_SECONDS = env.float(
    "AMANAH_DISPOSAL_TRANSACTION_SECONDS", default=1.5
)
AMANAH_DISPOSAL_AT = env.str(
    "AMANAH_DISPOSAL_AT",
    default=env.str("AMANAH_MONITOR_DISPOSAL_AT", default="02:30"),
)
try:
    _DISPOSAL_HOUR, _DISPOSAL_MINUTE = map(int, AMANAH_DISPOSAL_AT.split(":"))
except ValueError:  # the system check monitoring.E001 reports it at start-up
    _DISPOSAL_HOUR, _DISPOSAL_MINUTE = 2, 30

# Incident notices: notices per sending batch; one that fails for a passing reason
# (mail server down) is tried at most ..._MAX_ATTEMPTS times, the first retry after
# ..._RETRY_SECONDS and each next one after twice as long (beat resumes them).
AMANAH_NOTICE_BATCH_SIZE = env.int("AMANAH_NOTICE_BATCH_SIZE", default=500)
AMANAH_NOTICE_MAX_ATTEMPTS = env.int("AMANAH_NOTICE_MAX_ATTEMPTS", default=5)
AMANAH_NOTICE_RETRY_SECONDS = env.int("AMANAH_NOTICE_RETRY_SECONDS", default=300)

# The record of processing activities (/compliance/ropa/): the controller's country;
# a system or recipient elsewhere is a transfer to a third country.
AMANAH_CONTROLLER_COUNTRY = env.str("AMANAH_CONTROLLER_COUNTRY", default="ID")
# The controller's name on reports to an authority; "the controller" until it is set.
AMANAH_CONTROLLER_NAME = env.str("AMANAH_CONTROLLER_NAME", default="")

# Suspicious-access monitoring (apps.monitoring): rules run by the beat every 5 minutes
# and after each reveal; each hit is an alert on /compliance/alerts/.
# Reveal volume: the last hour against the agent's own hourly mean and deviation over
# the baseline days, and their peers' (same role); both z-scores at least ..._Z, and at
# least ..._MIN reveals (AMANAH_REVEALS_PER_HOUR still caps them).
AMANAH_MONITOR_BASELINE_DAYS = env.int("AMANAH_MONITOR_BASELINE_DAYS", default=14)
AMANAH_MONITOR_REVEAL_Z = env.float("AMANAH_MONITOR_REVEAL_Z", default=3.0)
AMANAH_MONITOR_REVEAL_MIN = env.int("AMANAH_MONITOR_REVEAL_MIN", default=10)
# Working hours in TIME_ZONE (start hour inclusive, end hour exclusive); reads outside
# them in the last LOOKBACK minutes are an alert (low), one per person per night.
AMANAH_MONITOR_WORK_HOURS_START = env.int("AMANAH_MONITOR_WORK_HOURS_START", default=7)
AMANAH_MONITOR_WORK_HOURS_END = env.int("AMANAH_MONITOR_WORK_HOURS_END", default=20)
AMANAH_MONITOR_OFF_HOURS_MIN_READS = env.int(
    "AMANAH_MONITOR_OFF_HOURS_MIN_READS", default=1
)
AMANAH_MONITOR_LOOKBACK_MINUTES = env.int("AMANAH_MONITOR_LOOKBACK_MINUTES", default=60)
# Enumeration: searches by email/phone; probing: 404s on customer ids (N in M minutes).
AMANAH_MONITOR_ENUMERATION_SEARCHES = env.int(
    "AMANAH_MONITOR_ENUMERATION_SEARCHES", default=20
)
AMANAH_MONITOR_ENUMERATION_MINUTES = env.int(
    "AMANAH_MONITOR_ENUMERATION_MINUTES", default=10
)
AMANAH_MONITOR_PROBING_NOT_FOUND = env.int(
    "AMANAH_MONITOR_PROBING_NOT_FOUND", default=10
)
AMANAH_MONITOR_PROBING_MINUTES = env.int("AMANAH_MONITOR_PROBING_MINUTES", default=10)
# Consent changes recorded by one staff member in an hour.
AMANAH_MONITOR_CONSENT_CHANGES_PER_HOUR = env.int(
    "AMANAH_MONITOR_CONSENT_CHANGES_PER_HOUR", default=30
)
# Schedules: disposal runs at AMANAH_DISPOSAL_AT (retention's, above), give or take
# the tolerance; a key rotation outside every announced window ("START/END" ISO
# date-times, comma-separated; none announced = every rotation) is off-schedule.
AMANAH_MONITOR_DISPOSAL_TOLERANCE_MINUTES = env.int(
    "AMANAH_MONITOR_DISPOSAL_TOLERANCE_MINUTES", default=60
)
AMANAH_MONITOR_KEY_ROTATION_WINDOWS = env.list(
    "AMANAH_MONITOR_KEY_ROTATION_WINDOWS", default=[]
)
AMANAH_MONITOR_SCHEDULE_LOOKBACK_HOURS = env.int(
    "AMANAH_MONITOR_SCHEDULE_LOOKBACK_HOURS", default=48
)
# Staff lookups (searches, 404s) are kept this long for the rules, then deleted.
AMANAH_MONITOR_LOOKUP_DAYS = env.int("AMANAH_MONITOR_LOOKUP_DAYS", default=30)
# High-severity alerts: end the agent's open reveals at once, and email these addresses
# (empty: the active compliance officers that have an email address).
AMANAH_ALERT_SUSPEND_ON_HIGH = env.bool("AMANAH_ALERT_SUSPEND_ON_HIGH", default=True)
AMANAH_ALERT_EMAILS = env.list("AMANAH_ALERT_EMAILS", default=[])

# Phone numbers without a country code are read as numbers of this region.
AMANAH_DEFAULT_PHONE_REGION = env.str("AMANAH_DEFAULT_PHONE_REGION", default="ID")

# Email
EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
# A mail server: DJANGO_EMAIL_URL, e.g. smtp+tls://user:password@smtp.example:587
# (django-environ's email URL: backend, host, port, credentials, TLS or SSL).
if env.str("DJANGO_EMAIL_URL", default=""):
    globals().update(env.email_url("DJANGO_EMAIL_URL"))
# A mail server that stops answering fails the send after this many seconds (a
# passing failure, tried again) instead of holding a worker until its time limit.
EMAIL_TIMEOUT = env.int("DJANGO_EMAIL_TIMEOUT", default=30)
DEFAULT_FROM_EMAIL = env.str(
    "DJANGO_DEFAULT_FROM_EMAIL", default="privacy@amanah.example"
)

# The consent audience API takes up to 100,000 customer ids in one body (about 4 MB).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int(
    "DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", default=8 * 1024**2
)

# REST API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.ApiTokenAuthentication",
        "apps.accounts.authentication.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    # JSON only, refusing bodies nested too deep (400); token sign-in also takes a
    # form, for `curl -d`.
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # No `?format=`: every operation answers JSON (or says it answers CSV).
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_SCHEMA_CLASS": "apps.core.schema.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": None,
    "EXCEPTION_HANDLER": "apps.core.exceptions.exception_handler",
    # Throttles count in the shared cache (CACHES): every operation per token
    # (AMANAH_API_RATE), token sign-in per client address too (AMANAH_TOKEN_RATE).
    "DEFAULT_THROTTLE_CLASSES": [
        "apps.accounts.throttling.ApiRateThrottle",
        "apps.accounts.throttling.ClientAddressThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "token": env.str("AMANAH_TOKEN_RATE", default="30/minute")
    },
}
# Requests per token (a session per user) per window, on every API operation.
AMANAH_API_RATE = env.str("AMANAH_API_RATE", default="600/minute")
# Sync lists (`updated_since`) answer changes once this many seconds old
# (apps/core/sync.py says why).
AMANAH_SYNC_SETTLE_SECONDS = env.int("AMANAH_SYNC_SETTLE_SECONDS", default=5)
SPECTACULAR_SETTINGS = {
    "TITLE": "Amanah API",
    "DESCRIPTION": "Customer-data governance: encrypted records, consent, access.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI served from our own static files: no CDN, nothing for the CSP to allow.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The schema and docs map every endpoint: staff only (ApiDocsPermission reads
    # AMANAH_API_DOCS_OPEN at each request).
    "SERVE_PERMISSIONS": ["apps.accounts.permissions.ApiDocsPermission"],
    # Output enums named for what they are where field names collide ("status").
    "ENUM_NAME_OVERRIDES": {
        "CustomerStatusEnum": "apps.customers.models.CustomerStatus",
        "RequestStatusEnum": "apps.requests.models.RequestStatus",
        "RequestKindEnum": "apps.requests.models.RequestKind",
        "IncidentStatusEnum": "apps.incidents.models.IncidentStatus",
        "IncidentKindEnum": "apps.incidents.models.IncidentKind",
        "IncidentSeverityEnum": "apps.incidents.models.Severity",
        "AlertStatusEnum": "apps.monitoring.models.AlertStatus",
        "AlertSeverityEnum": "apps.monitoring.models.AlertSeverity",
        "InteractionKindEnum": "apps.access.models.InteractionKind",
        "ApiTokenKindEnum": "apps.accounts.models.ApiTokenKind",
        "RoleEnum": "apps.accounts.models.Role",
        "InventoryKindEnum": [("system", "system"), ("recipient", "recipient")],
    },
}
# Development serves /api/schema/ and /api/docs/ to anyone; production to signed-in
# staff only. Not read from the environment: production has no switch to open them.
AMANAH_API_DOCS_OPEN = DEBUG

# Celery: with no broker configured every task runs eagerly in-process, so the embedded
# default needs no services.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task's message stays unacknowledged until the task ends (acks_late). If its worker
# dies, the broker hands the message to another: RabbitMQ as soon as the connection
# drops; Redis only once the message has been unacknowledged for the visibility timeout
# (kombu's default: an hour). A task still running at that moment would run twice at
# once, so every task is stopped well before it: a soft limit raises in the task, the
# hard limit a tenth later ends its process (prefork pool; `make worker` uses it). A
# task stopped by a limit fails and is not redelivered (it would only fail again); a
# worker process killed mid-task (OOM, SIGKILL) has its message put back at once.
# The longest tasks: a disposal batch aims at half a second
# (AMANAH_DISPOSAL_BATCH_SECONDS, bench/retention.py and bench/scale.py measure its
# longest); an export of 10,000
# access-log rows a few seconds (bench/export.py); a batch of 500 incident or notice
# emails is bound by the mail server: 250 s at half a second each. So: 10 minutes per
# task, 15 minutes of visibility; RabbitMQ's own limit (consumer_timeout, 30 minutes by
# default) is above both. A task queued with a countdown waits unacknowledged in a
# worker until it is due, so countdowns stay below the visibility timeout too (a retry
# with backoff: 32 s at most).
AMANAH_BROKER_VISIBILITY_TIMEOUT = env.int(
    "AMANAH_BROKER_VISIBILITY_TIMEOUT", default=900
)
CELERY_TASK_TIME_LIMIT = env.int("AMANAH_TASK_TIME_LIMIT", default=600)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - max(
    CELERY_TASK_TIME_LIMIT // 10, 1
)
if not 2 <= CELERY_TASK_TIME_LIMIT < AMANAH_BROKER_VISIBILITY_TIMEOUT:
    raise ImproperlyConfigured(
        f"AMANAH_TASK_TIME_LIMIT ({CELERY_TASK_TIME_LIMIT} s) must be below "
        f"AMANAH_BROKER_VISIBILITY_TIMEOUT ({AMANAH_BROKER_VISIBILITY_TIMEOUT} s): a "
        "task still running when its message is handed on would run twice at once."
    )
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": AMANAH_BROKER_VISIBILITY_TIMEOUT
}
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Queueing a task while the broker restarts: tried again for about five seconds before
# the caller sees the error (kombu's own policy gives up after 0.6 s).
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 8,
    "interval_start": 0,
    "interval_step": 0.25,
    "interval_max": 1,
}
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    "retention-purge-nightly": {
        "task": "retention.purge_expired",
        "schedule": crontab(hour=_DISPOSAL_HOUR, minute=_DISPOSAL_MINUTE),
    },
    # The retention report's clock histograms: pending deltas folded into their
    # counts (apps/retention/clocks.py).
    "retention-compact-clock-counts": {
        "task": "retention.compact_clock_counts",
        "schedule": timedelta(minutes=1),
    },
    "access-expire-interactions": {
        "task": "access.expire_interactions",
        "schedule": timedelta(minutes=1),
    },
    "audit-verify-chain-nightly": {
        "task": "audit.verify_chain",
        "schedule": timedelta(hours=24),
    },
    # A signed checkpoint of the chain's head, to AMANAH_AUDIT_CHECKPOINT_DIR.
    "audit-checkpoint-hourly": {
        "task": "audit.write_checkpoint",
        "schedule": crontab(minute=7),
    },
    "monitoring-evaluate-rules": {
        "task": "monitoring.evaluate_rules",
        "schedule": timedelta(minutes=5),
    },
    "requests-process-stalled": {
        "task": "requests.process_stalled",
        "schedule": timedelta(minutes=10),
    },
    "incidents-send-due-notices": {
        "task": "incidents.send_due_notices",
        "schedule": timedelta(minutes=5),
    },
    # OIDC-linked staff: still mapped to a role at the provider (with a refresh
    # token), confirmed within AMANAH_OIDC_RECONFIRM_DAYS? (apps/accounts/
    # oidc_services.py; nothing to do when OIDC is off)
    "accounts-oidc-accounts-check": {
        "task": "accounts.oidc_accounts_check",
        "schedule": crontab(minute=23),
    },
    "core-idempotency-purge": {
        "task": "core.idempotency_purge",
        "schedule": timedelta(hours=1),
    },
    # The partitioned logs' monthly partitions, made months ahead (apps/core/
    # partitions.py; nothing to do on SQLite).
    "core-partitions-ensure": {
        "task": "core.partitions_ensure",
        "schedule": crontab(hour=2, minute=41),
    },
    # Erasures a process committed but did not append to the journal (it died first,
    # or the file could not be written and its retries ran out).
    "customers-erasure-journal-flush": {
        "task": "customers.erasure_journal_flush",
        "schedule": timedelta(minutes=5),
    },
    # A new master key version when the epoch ends, every data key rotated into it,
    # versions past the backup retention retired (apps/crypto/masterkeys.py).
    "crypto-key-epoch": {
        "task": "crypto.key_epoch",
        "schedule": crontab(hour=3, minute=15),
    },
    # Uploads no worker finished: failed, their sealed files deleted.
    "imports-cleanup": {
        "task": "imports.cleanup",
        "schedule": timedelta(hours=1),
    },
    # Webhook deliveries whose retry time came (new ones are queued on commit).
    "webhooks-deliver": {
        "task": "webhooks.deliver",
        "schedule": timedelta(seconds=30),
    },
    # Finished webhook deliveries and their events, past AMANAH_WEBHOOK_KEEP_DAYS.
    "webhooks-purge": {
        "task": "webhooks.purge",
        "schedule": crontab(hour=4, minute=40),
    },
}

# Logging: event names and ids only, never PII (see STYLE.md).
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "apps.core.logs.EventFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {
        "handlers": ["console"],
        "level": env.str("DJANGO_LOG_LEVEL", default="INFO"),
    },
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
    },
}
