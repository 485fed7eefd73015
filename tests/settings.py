"""Test settings: production defaults (DEBUG off) with fixed test-only secrets."""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789")
os.environ.setdefault(
    "MAILADMIN_ENCRYPTION_KEYS",
    "Yv8mSPLZzgoZ5rvwRIB6MnsJKj3jq6o8SWzc2xAN6GQ=,PFhVv-cTm7tn1BqN3yGOEkJzRNTUA27_8Ndm7aB6Fe8=",
)

# The test client and the live server speak plain HTTP on loopback; the HTTPS settings are
# tested on their own (tests/security) and by `check --deploy` in .ci/deploy-check.
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SESSION_COOKIE_SECURE", "0")
os.environ.setdefault("CSRF_COOKIE_SECURE", "0")

from mailadmin.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file unique to this run, not memory: the queue's tests share the test database with
    # real `qcluster` and `drain_outbox` processes.
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.gettempdir(), f"mailadmin-test-{os.getpid()}.sqlite3")
    }

# Tests send nothing off loopback: DNS checks ask a resolver on 127.0.0.1 (the tests that
# check domains start their own and point here; elsewhere nothing answers: "could not check").
MAILADMIN["DNS_NAMESERVERS"] = ["127.0.0.1"]  # noqa: F405
MAILADMIN["DNS_PORT"] = 9  # noqa: F405
MAILADMIN["DNS_TIMEOUT"] = 1  # noqa: F405
