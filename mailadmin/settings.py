"""Mailadmin settings.

The environment is read here and only here (django-environ; a ``.env`` file next to
``manage.py`` is read too). Apps read the ``MAILADMIN`` dict through the getters in
``smtpconfig.conf`` at run time, so ``override_settings`` works in tests.

Embedded defaults: SQLite under ``var/`` and django-q2's ORM broker. ``DATABASE_URL``
switches to PostgreSQL, ``REDIS_URL`` switches the queue to Redis.
"""

import secrets
from datetime import timedelta
from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Where the embedded database, generated development secrets and caught mail live.
VAR_DIR = Path(env.str("MAILADMIN_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=False)


def _secret_from_env_or_var(name: str, make) -> str:
    """Return the variable ``name``; with DEBUG on, generate it once into ``var/`` and reuse it.

    With DEBUG off a missing value is a start-up error naming the variable: a production
    site must never run on a key nobody chose.
    """
    value = env.str(name, default="")
    if value:
        return value
    if not DEBUG:
        raise ImproperlyConfigured(
            f"The environment variable {name} is not set. It is required when DEBUG is off; "
            f"set it in the environment or in the .env file next to manage.py."
        )
    path = VAR_DIR / name.lower()
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_from_env_or_var("SECRET_KEY", get_random_secret_key)
ENCRYPTION_KEYS = [
    key.strip()
    for key in _secret_from_env_or_var(
        "MAILADMIN_ENCRYPTION_KEYS", lambda: Fernet.generate_key().decode()
    ).split(",")
    if key.strip()
]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "mailadmin",
    "smtpconfig",
    "audit",
    "blacklist",
    "mailadmin.security",
    # The default admin site, refusing administrators who have not passed the second factor.
    "mailadmin.security.apps.SecureAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "anymail",
    # The queue, lockout and second-factor sections under translatable names.
    "mailadmin.apps_thirdparty.QueueConfig",
    "simple_history",
    "import_export",
    "mailadmin.apps_thirdparty.LockoutConfig",
    "django_otp",
    "mailadmin.apps_thirdparty.AuthenticatorAppConfig",
    "mailadmin.apps_thirdparty.BackupCodeConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "mailadmin.security.middleware.SessionTimeoutMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "mailadmin.security.middleware.SecondFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes requires: it turns a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "mailadmin.urls"
WSGI_APPLICATION = "mailadmin.wsgi.application"

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
                "django.template.context_processors.csp",
                "mailadmin.context_processors.mail_settings",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'mailadmin.sqlite3'}"),
}
# Keep connections open between requests and tasks: django-q2 closes "old" connections each
# time it queues a task, and with no age every queued message would open two new ones.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, workers) write to one file: wait for the lock instead of
    # failing at once, and take the write lock at BEGIN so a claim cannot be overtaken.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
    # SQLite makes the file, not its folder: a new machine has no var/ until something
    # writes there, and every command would fail with "unable to open database file".
    if str(DATABASES["default"]["NAME"]) not in ("", ":memory:"):
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en")
LANGUAGES = [("en", _("English")), ("fr", _("French")), ("de", _("German"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="Europe/Paris")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
if DEBUG:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

LOGIN_URL = "admin:login"

# --- Sign-in security -------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    # First, so a locked-out username and address never reach the password check.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Five wrong passwords lock that username from that address only: one attacker cannot lock
# out everybody behind the club's router, and a colleague elsewhere still signs in.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "mailadmin.security.views.lockout_response"
AXES_CLIENT_IP_CALLABLE = "mailadmin.security.network.client_ip_address"

OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Mailadmin")
# Administrators can remove a colleague's device, never read its secret.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# The absolute lifetime of a session; the idle timeout is MAILADMIN["SESSION_IDLE_TIMEOUT"].
SESSION_COOKIE_AGE = env.int("SESSION_MAX_AGE", default=10 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True

# HTTPS: on by default when DEBUG is off; a proxy that terminates TLS must say so through
# SECURE_PROXY_SSL_HEADER, e.g. "HTTP_X_FORWARDED_PROTO,https".
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
_proxy_ssl_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
if _proxy_ssl_header:
    if len(_proxy_ssl_header) != 2:
        raise ImproperlyConfigured(
            "SECURE_PROXY_SSL_HEADER must be a header and its value, "
            "e.g. HTTP_X_FORWARDED_PROTO,https."
        )
    SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Only the portal's own scripts and styles; templates that need an inline one mark it with
# {% csp_nonce_attr %}.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
# POST fields, frame variables and settings that look like secrets are masked in error
# reports, whether or not a view marked them.
DEFAULT_EXCEPTION_REPORTER_FILTER = "mailadmin.security.reporting.SecretsExceptionReporterFilter"

# Every message the club's code sends goes through Mailadmin's routing backend.
MAILERS = {
    "default": {"BACKEND": "smtpconfig.backends.routing.EmailBackend"},
}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="mailadmin@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

REDIS_URL = env.str("REDIS_URL", default="")
Q_CLUSTER = {
    "name": "mailadmin",
    "workers": env.int("Q_WORKERS", default=2),
    # A drain pass is bounded by its batch size; `retry` must stay above `timeout`
    # (checked by smtpconfig's system checks) or a slow pass would be run twice.
    "timeout": 300,
    "retry": 360,
    "max_attempts": 1,
    "catch_up": False,
    "save_limit": 1000,
    "ack_failures": True,
    "poll": 0.5,
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# Rate limits need one cache for all web processes: Redis when the site scales out, this
# process's memory on the embedded single-process stack.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "mailadmin",
        }
    }

MAILADMIN = {
    "ENCRYPTION_KEYS": ENCRYPTION_KEYS,
    # Seconds a worker may hold a claimed message before another may take it.
    "LEASE_SECONDS": env.int("MAILADMIN_LEASE_SECONDS", default=120),
    "BATCH_SIZE": env.int("MAILADMIN_BATCH_SIZE", default=200),
    "RETRY_FIRST_DELAY": env.int("MAILADMIN_RETRY_FIRST_DELAY", default=60),
    "RETRY_MAX_DELAY": env.int("MAILADMIN_RETRY_MAX_DELAY", default=3600),
    "RETRY_MAX_AGE": env.int("MAILADMIN_RETRY_MAX_AGE", default=3 * 24 * 3600),
    "SMTP_TIMEOUT": env.int("MAILADMIN_SMTP_TIMEOUT", default=30),
    # A CA bundle (path) SMTP servers' certificates are checked against instead of the public
    # CAs: a relay with the club's own CA. Tests set it to a certificate made on the fly.
    "SMTP_CA_FILE": env.str("MAILADMIN_SMTP_CA_FILE", default=None),
    # SMTP hosts on loopback or private networks (local relays) are allowed unless narrowed.
    "OUTBOUND_ALLOW_PRIVATE": env.bool("MAILADMIN_OUTBOUND_ALLOW_PRIVATE", default=True),
    "OUTBOUND_ALLOW_LOOPBACK": env.bool("MAILADMIN_OUTBOUND_ALLOW_LOOPBACK", default=True),
    # Seconds without a request after which a session ends (SESSION_MAX_AGE bounds it too).
    "SESSION_IDLE_TIMEOUT": env.int("SESSION_IDLE_TIMEOUT", default=30 * 60),
    # Reverse proxies in front of the portal that append to X-Forwarded-For; 0: none. The
    # client's address (lockouts, audit trail) is read that many hops from the right.
    "TRUSTED_PROXY_COUNT": env.int("TRUSTED_PROXY_COUNT", default=0),
    # "Test connection" / "Send test mail": at most this many per user and period (seconds).
    "TEST_ACTION_LIMIT": env.int("MAILADMIN_TEST_ACTION_LIMIT", default=10),
    "TEST_ACTION_PERIOD": env.int("MAILADMIN_TEST_ACTION_PERIOD", default=600),
    # Public address of the portal (https://mail.club.example): one-click unsubscribe links.
    "PUBLIC_URL": env.str("MAILADMIN_PUBLIC_URL", default=""),
    # Name servers for the domain-health checks (comma-separated IPs); empty: the system's.
    "DNS_NAMESERVERS": env.list("MAILADMIN_DNS_NAMESERVERS", default=[]),
    "DNS_PORT": env.int("MAILADMIN_DNS_PORT", default=53),
}

# Tracking webhooks of the e-mail services (/anymail/<service>/tracking/): the "user:password"
# the services post with (comma-separated to rotate), and the keys of the services that sign.
WEBHOOK_SECRET = env.list("ANYMAIL_WEBHOOK_SECRET", default=[])
if not WEBHOOK_SECRET and DEBUG:
    # A development site gets one made up once (in var/), like its other secrets.
    WEBHOOK_SECRET = [
        _secret_from_env_or_var(
            "ANYMAIL_WEBHOOK_SECRET", lambda: f"tracking:{secrets.token_urlsafe(24)}"
        )
    ]
ANYMAIL = {
    key: value
    for key, value in {
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MAILGUN_WEBHOOK_SIGNING_KEY": env.str("ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY", default=""),
        "RESEND_SIGNING_SECRET": env.str("ANYMAIL_RESEND_SIGNING_SECRET", default=""),
    }.items()
    if value
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # aiosmtpd logs every SMTP command at INFO; the catching server prints its own summary.
    "loggers": {"mail.log": {"level": "WARNING"}},
}
