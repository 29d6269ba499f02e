"""Django settings for registry3d, read from the environment.

Every setting a deployment may change is an environment variable documented
in the README's configuration table. Bad values stop the start-up with a
message naming the variable.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from registry3d.lib.env import env_bool, env_float, env_int, env_list, env_str

PACKAGE_DIR = Path(__file__).resolve().parent
VAR_DIR = Path(env_str("REGISTRY3D_VAR_DIR", "var")).resolve()

PRODUCTION = env_bool("REGISTRY3D_PRODUCTION", False)
DEBUG = env_bool("REGISTRY3D_DEBUG", False) and not PRODUCTION


def _secret_key() -> str:
    """Return SECRET_KEY from the environment, else from ``var/secret_key``.

    The file is written once, readable by its owner only, the first time
    the registry starts without a key, so sessions survive restarts.
    """
    key = env_str("SECRET_KEY")
    if key:
        return key
    path = VAR_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS must name the registry's host names in production, "
        "e.g. ALLOWED_HOSTS=registry.example.org"
    )
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "registry3d.accounts",
    "registry3d.sites",
    "registry3d.audit",
    "registry3d.dictionary",
    "registry3d.cases",
    "registry3d.intake",
    "registry3d.questionnaires",
    "registry3d.reports",
    "registry3d.exports",
    "registry3d.fhir",
    "registry3d.redcap",
    "registry3d.api",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_tasks",
    "django_tasks_db",
    "django_htmx",
    "axes",
    "csp",
]

MIDDLEWARE = [
    "registry3d.lib.request_id.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "registry3d.api.middleware.ApiLimitsMiddleware",
    "registry3d.lib.middleware.RejectNulMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "registry3d.lib.middleware.NoStoreMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "registry3d.accounts.middleware.SessionTimeoutMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "registry3d.sites.middleware.CurrentSiteMiddleware",
    # Last, so a locked-out attempt is answered by axes whatever came before.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "registry3d.urls"
WSGI_APPLICATION = "registry3d.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "registry3d.sites.context_processors.current_site",
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'registry3d.sqlite3'}"
try:
    _database = dj_database_url.parse(DATABASE_URL, conn_max_age=60)
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not usable: {exc}") from None
if _database["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take the write lock up front, so two writers
    # queue instead of failing with "database is locked" half-way through;
    # WAL lets readers go on while one writes. secure_delete overwrites what
    # a change frees, so a redacted value is not left in the file's free
    # pages (some SQLite builds have it on by default, not all).
    _database["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA secure_delete=ON;"
        ),
    }
    _database["CONN_MAX_AGE"] = 0
    if _database["NAME"] not in ("", ":memory:"):
        Path(_database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
elif _database["ENGINE"] == "django.db.backends.postgresql":
    _database["CONN_HEALTH_CHECKS"] = True
else:
    raise ImproperlyConfigured(
        "DATABASE_URL must point to PostgreSQL (postgres://...) or SQLite (sqlite:///path)"
    )
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts and log-in -----------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Failed log-ins: ten in a row for one account lock it for a while, even for
# the right password. Counted per account, not per address, because a
# hospital's staff often share one outgoing address.
AXES_FAILURE_LIMIT = env_int("REGISTRY3D_LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("REGISTRY3D_LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username"]
# axes.W006 asks for locking by address too; we do not, on purpose (above).
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_USERNAME_FORM_FIELD = "username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "registry3d.accounts.views.axes_lockout"
AXES_VERBOSE = False
REGISTRY3D_PROXY_COUNT = env_int("REGISTRY3D_PROXY_COUNT", 0)
AXES_IPWARE_PROXY_COUNT = REGISTRY3D_PROXY_COUNT or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if REGISTRY3D_PROXY_COUNT else ["REMOTE_ADDR"]
)

OTP_TOTP_ISSUER = env_str("REGISTRY3D_NAME", "registry3d")
# Nobody, administrators included, sees another person's two-factor secret
# (the admin's QR code and key pages answer 403).
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# Failed log-ins from one address, across accounts, per minute (then 429).
# Only failures count, so a hospital's staff behind one address log in freely.
REGISTRY3D_LOGIN_FAILURES_PER_MINUTE = env_int(
    "REGISTRY3D_LOGIN_FAILURES_PER_MINUTE", 30, minimum=1
)

# A session ends after this long without a request, and at the latest this
# many hours after its log-in (accounts.middleware.SessionTimeoutMiddleware).
REGISTRY3D_SESSION_IDLE_MINUTES = env_int("REGISTRY3D_SESSION_IDLE_MINUTES", 30, minimum=1)
SESSION_COOKIE_AGE = env_int("REGISTRY3D_SESSION_HOURS", 12, minimum=1) * 3600
PASSWORD_RESET_TIMEOUT = env_int("REGISTRY3D_PASSWORD_LINK_HOURS", 72, minimum=1) * 3600

# --- E-mail ------------------------------------------------------------------

EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
    if EMAIL_USE_TLS and EMAIL_USE_SSL:
        raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are exclusive: set only one")
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "registry3d@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Links in e-mails need the registry's public address; the request's host is
# used when this is empty.
REGISTRY3D_BASE_URL = env_str("REGISTRY3D_BASE_URL").rstrip("/")

# --- Background jobs ---------------------------------------------------------

TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
    }
}

# --- Static files ------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [PACKAGE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Internationalisation ----------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Security ----------------------------------------------------------------

X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Scripts and styles come only from the registry's own static files: no
# inline script, no eval, no other origin; no page may be framed.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Pages carry the CSRF token themselves (forms, htmx headers); no script reads the cookie.
CSRF_COOKIE_HTTPONLY = True
REGISTRY3D_BEHIND_PROXY = env_bool("REGISTRY3D_BEHIND_PROXY", False)
if REGISTRY3D_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("REGISTRY3D_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("REGISTRY3D_HSTS_SECONDS", 365 * 24 * 3600, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("REGISTRY3D_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("REGISTRY3D_HSTS_PRELOAD", True)

# --- Logging -----------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s %(message)s"}
    },
    # Questionnaire links are credentials: no log line shows one. Each line
    # carries its request's correlation id (shown on the error page too).
    "filters": {
        "secrets": {"()": "registry3d.lib.redact.HideSecrets"},
        "request_id": {"()": "registry3d.lib.request_id.RequestIdFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_id", "secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # axes logs every attempt with the username; our audit trail already
        # records them with less detail.
        "axes": {"level": "WARNING"},
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

# --- Registry ----------------------------------------------------------------

REGISTRY3D_NAME = OTP_TOTP_ISSUER
# Operating-room cost per minute for sites that set none: mean inpatient OR
# minute in California, FY2014 (Childers & Maggard-Gibbons, JAMA Surg 2018).
REGISTRY3D_OR_COST_PER_MINUTE = env_float("REGISTRY3D_OR_COST_PER_MINUTE", 37.45, minimum=1)
REGISTRY3D_OR_COST_SOURCE = env_str(
    "REGISTRY3D_OR_COST_SOURCE",
    "registry default: Childers & Maggard-Gibbons, JAMA Surg 2018 (inpatient mean)",
)
# Loaded hourly cost of clinician and non-clinician staff time for sites that
# set none. No published figure fits every site, so there is no default:
# without one, such sites' cases have no labour cost.
REGISTRY3D_CLINICIAN_COST_PER_HOUR = env_float(
    "REGISTRY3D_CLINICIAN_COST_PER_HOUR", None, minimum=1
)
REGISTRY3D_NON_CLINICIAN_COST_PER_HOUR = env_float(
    "REGISTRY3D_NON_CLINICIAN_COST_PER_HOUR", None, minimum=1
)
# The largest 3D model file a site that keeps them stores (larger ones are
# measured, not kept).
REGISTRY3D_MODEL_FILE_MAX_BYTES = env_int(
    "REGISTRY3D_MODEL_FILE_MAX_BYTES", 100 * 1024 * 1024, minimum=1024
)
# Secret behind pseudonymous patient keys; kept outside the database. When
# empty, it is generated once into var/pseudonym_key (back that file up).
REGISTRY3D_PSEUDONYM_KEY = env_str("REGISTRY3D_PSEUDONYM_KEY")
# API limits: body size, JSON nesting, and sustained writes per token.
REGISTRY3D_API_MAX_BODY_BYTES = env_int("REGISTRY3D_API_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)
REGISTRY3D_API_MAX_JSON_DEPTH = 32
REGISTRY3D_API_MAX_UPLOAD_BYTES = env_int(
    "REGISTRY3D_API_MAX_UPLOAD_BYTES", 200 * 1024 * 1024, minimum=1024
)
REGISTRY3D_API_WRITES_PER_SECOND = env_float("REGISTRY3D_API_WRITES_PER_SECOND", 50.0, minimum=0)
REGISTRY3D_API_WRITE_BURST = env_float("REGISTRY3D_API_WRITE_BURST", 200.0, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(2_621_440, REGISTRY3D_API_MAX_BODY_BYTES)
# The data dictionary file; the one shipped with the registry by default.
REGISTRY3D_DICTIONARY = env_str("REGISTRY3D_DICTIONARY")
API_TOKEN_TOUCH_SECONDS = 60
# Physician questionnaires: how long a link works, when reminders go (days
# after the first e-mail, at most two), and how many unknown or dead links
# one address may open in an hour before it must wait.
REGISTRY3D_QUESTIONNAIRE_DAYS = env_int("REGISTRY3D_QUESTIONNAIRE_DAYS", 30, minimum=1)
REGISTRY3D_QUESTIONNAIRE_REMINDER_DAYS = (7, 14)
# Reports: a site whose data completeness for the period is below this share
# sees its own figures and what is missing, not the comparison.
REGISTRY3D_REPORT_MIN_COMPLETENESS = env_float("REGISTRY3D_REPORT_MIN_COMPLETENESS", 0.8, minimum=0)
REGISTRY3D_QUESTIONNAIRE_BAD_LINKS_PER_HOUR = env_int(
    "REGISTRY3D_QUESTIONNAIRE_BAD_LINKS_PER_HOUR", 20, minimum=1
)
