"""Chromium against one live server, one real `qcluster` and one catching SMTP server.

All three share the test database, a file (tests/settings.py), so the tests commit for real
(``transaction=True``). The browser, the cluster and the sink live for the whole module;
each test makes its own data, flushed after it.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.chromium import chromium_launched
from tests.signin import client_sign_in_verified
from tests.smtp_sink import Sink

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
SCREENSHOTS = ROOT / "docs" / "screenshots"
PASSWORD = "correct horse battery staple 42"
WAIT = 60  # seconds: a generous bound for a condition, never a speed assertion
LAPTOP = {"width": 1280, "height": 800}


def wait_for(condition, *, what: str, timeout: float = WAIT, explain=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}" + (f": {explain()}" if explain else ""))


@pytest.fixture(autouse=True)
def _routing_mailer(routing_mailer):
    """Every journey goes through the real backend."""


@pytest.fixture(scope="module")
def chromium():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium_launched() as browser:
        yield browser


@pytest.fixture(scope="module")
def catching_server():
    """The SMTP server every test's mail server points at."""
    sink = Sink().start()
    yield sink
    sink.stop()


@pytest.fixture(autouse=True)
def _empty_sink(catching_server):
    with catching_server.handler.lock:
        catching_server.handler.received.clear()


@pytest.fixture(scope="module")
def queue_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """`manage.py qcluster` on the test database, with the test run's own broker."""
    with django_db_blocker.unblock():
        database = str(connection.settings_dict["NAME"])
    log_path = tmp_path_factory.mktemp("qcluster") / "qcluster.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=settings.BASE_DIR,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "tests.queue.cluster_settings",
                "MAILADMIN_TEST_DATABASE": database,
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the workers stop with it
        )
    process.log_path = log_path
    yield process
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.fixture
def administrator(transactional_db, django_user_model):
    """A superuser with a confirmed authenticator app."""
    user = django_user_model.objects.create_superuser(
        username="admin", email="admin@club.example", password=PASSWORD
    )
    user.device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    return user


def open_page(chromium, live_server, *, user=None, viewport=LAPTOP, locale="en"):
    """A new browser page, signed in as ``user`` with both factors when one is given.

    The page records the Content Security Policy violations its console reports.
    """
    context = chromium.new_context(locale=locale, viewport=viewport)
    if user is not None:
        client = client_sign_in_verified(Client(), user, user.device)
        context.add_cookies(
            [
                {
                    "name": settings.SESSION_COOKIE_NAME,
                    "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                    "url": live_server.url,
                }
            ]
        )
    page = context.new_page()
    page.csp_violations = []
    page.on(
        "console",
        lambda message: (
            page.csp_violations.append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )
    return page


def screenshot(page, name: str, *, docs: str | None = None) -> None:
    """Save the whole page as a test artifact; with MAILADMIN_README_SCREENSHOTS=1, also the
    visible part as the README's picture ``docs`` (so a test run leaves the tree clean)."""
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
    if docs and os.environ.get("MAILADMIN_README_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"{docs}.png")
