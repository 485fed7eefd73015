"""Production settings: check --deploy is clean, HTTPS, HSTS, cookies, proxy header, CSP."""

import json
import os
import subprocess
import sys
from pathlib import Path

from django.test import Client, override_settings
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "x" * 20 + "-production-like-but-made-up-for-this-test-0123456789",
    "MAILADMIN_ENCRYPTION_KEYS": "Yv8mSPLZzgoZ5rvwRIB6MnsJKj3jq6o8SWzc2xAN6GQ=",
    "ALLOWED_HOSTS": "mail.club.example",
}

PRINT_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({name: getattr(s, name, None) for name in [
    "DEBUG", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
    "SECURE_PROXY_SSL_HEADER", "SESSION_COOKIE_AGE"]} | {
    "idle": s.MAILADMIN["SESSION_IDLE_TIMEOUT"], "proxies": s.MAILADMIN["TRUSTED_PROXY_COUNT"]}))
"""


def production_settings(**extra):
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "mailadmin.settings"}
    env.update(PRODUCTION_ENV, **extra)
    result = subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result


def test_the_ci_deploy_check_is_clean():
    result = subprocess.run(
        [str(ROOT / ".ci" / "deploy-check")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_defaults_are_secure():
    result = production_settings()
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["DEBUG"] is False
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] and values["SECURE_HSTS_PRELOAD"]
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"]
    assert values["SECURE_PROXY_SSL_HEADER"] is None
    assert values["idle"] == 1800 and values["proxies"] == 0


def test_the_environment_configures_proxy_header_and_lifetimes():
    result = production_settings(
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
        SESSION_IDLE_TIMEOUT="600",
        SESSION_MAX_AGE="7200",
        TRUSTED_PROXY_COUNT="2",
        SECURE_HSTS_SECONDS="86400",
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SESSION_COOKIE_AGE"] == 7200
    assert values["idle"] == 600 and values["proxies"] == 2
    assert values["SECURE_HSTS_SECONDS"] == 86400


def test_a_malformed_proxy_header_stops_the_start():
    result = production_settings(SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO")
    assert result.returncode != 0
    assert "SECURE_PROXY_SSL_HEADER must be a header and its value" in result.stderr


@override_settings(
    SECURE_SSL_REDIRECT=True,
    SECURE_HSTS_SECONDS=31536000,
    SECURE_HSTS_INCLUDE_SUBDOMAINS=True,
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
)
def test_https_redirect_hsts_and_the_proxy_header(db):
    client = Client()
    response = client.get(reverse("admin:login"))
    assert response.status_code == 301
    assert response["Location"].startswith("https://")
    response = client.get(reverse("admin:login"), HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200
    assert response["Strict-Transport-Security"].startswith("max-age=31536000; includeSubDomains")


@override_settings(SESSION_COOKIE_SECURE=True, CSRF_COOKIE_SECURE=True)
def test_cookies_are_secure_and_http_only(staff_member):
    client = Client()
    response = client.get(reverse("admin:login"))
    assert response.cookies["csrftoken"]["secure"]
    response = client.post(
        reverse("admin:login"),
        {"username": "bob", "password": "correct horse battery staple 42"},
    )
    session_cookie = response.cookies["sessionid"]
    assert session_cookie["secure"] and session_cookie["httponly"]
    assert session_cookie["samesite"] == "Lax"


def test_content_security_policy_allows_only_the_portals_own_scripts_and_styles(db):
    response = Client().get(reverse("admin:login"))
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"].split()[0] == "'self'"
    assert policy["style-src"].split()[0] == "'self'"
    for directive in ("script-src", "style-src"):
        sources = policy[directive].split()
        assert all(s == "'self'" or s.startswith("'nonce-") for s in sources), sources
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_pages_carry_no_inline_script_or_style_attribute(staff_member):
    client = Client()
    client.post(
        reverse("admin:login"),
        {"username": "bob", "password": "correct horse battery staple 42"},
    )
    for url in [
        reverse("admin:index"),
        reverse("security:two_factor"),
        reverse("security:two_factor_setup"),
    ]:
        page = client.get(url).content.decode()
        assert " style=" not in page, url
        assert " onclick=" not in page and " onload=" not in page, url
