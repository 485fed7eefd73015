"""Mailadmin settings.

The environment is read here and only here (django-environ; a ``.env`` file next to
``manage.py`` is read too). Apps read the ``MAILADMIN`` dict through the getters in
``smtpconfig.conf`` at run time, so ``override_settings`` works in tests.

Embedded defaults: SQLite under ``var/`` and django-q2's ORM broker. ``DATABASE_URL``
switches to PostgreSQL, ``REDIS_URL`` switches the queue to Redis.
"""

from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

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
    "blacklist",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "anymail",
    "django_q",
    "simple_history",
    "import_export",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
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
                "mailadmin.context_processors.mail_settings",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'mailadmin.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, workers) write to one file: wait for the lock instead of
    # failing at once, and take the write lock at BEGIN so a claim cannot be overtaken.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
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
    STORAGES["staticfiles"] = {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
    }

LOGIN_URL = "admin:login"

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

MAILADMIN = {
    "ENCRYPTION_KEYS": ENCRYPTION_KEYS,
    # Seconds a worker may hold a claimed message before another may take it.
    "LEASE_SECONDS": env.int("MAILADMIN_LEASE_SECONDS", default=120),
    "BATCH_SIZE": env.int("MAILADMIN_BATCH_SIZE", default=200),
    "RETRY_FIRST_DELAY": env.int("MAILADMIN_RETRY_FIRST_DELAY", default=60),
    "RETRY_MAX_DELAY": env.int("MAILADMIN_RETRY_MAX_DELAY", default=3600),
    "RETRY_MAX_AGE": env.int("MAILADMIN_RETRY_MAX_AGE", default=3 * 24 * 3600),
    "SMTP_TIMEOUT": env.int("MAILADMIN_SMTP_TIMEOUT", default=30),
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
