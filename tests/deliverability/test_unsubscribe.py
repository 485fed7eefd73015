"""One-click unsubscribe (RFC 8058): signed links, POST without login, GET only confirms."""

import pytest
from django.urls import reverse

from blacklist.models import BlacklistEntry
from smtpconfig.exceptions import ConfigurationError
from smtpconfig.unsubscribe import unsubscribe_headers, unsubscribe_token

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.MAILADMIN = {**settings.MAILADMIN, "PUBLIC_URL": "https://mail.club.test/"}


def link_path(address: str) -> str:
    return reverse("unsubscribe", kwargs={"token": unsubscribe_token(address=address)})


def test_headers_carry_a_signed_https_link_and_the_one_click_post():
    headers = unsubscribe_headers(address="Member@Example.TEST")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = headers["List-Unsubscribe"]
    assert url.startswith("<https://mail.club.test/unsubscribe/") and url.endswith("/>")
    assert url[1:-1].removeprefix("https://mail.club.test") == link_path("member@example.test")


def test_headers_need_the_public_url(settings):
    settings.MAILADMIN = {**settings.MAILADMIN, "PUBLIC_URL": ""}
    with pytest.raises(ConfigurationError):
        unsubscribe_headers(address="member@example.test")


def test_one_click_post_without_login_blacklists_the_address(client):
    response = client.post(
        link_path("member@example.test"),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    entry = BlacklistEntry.objects.get()
    assert entry.email == "member@example.test"
    assert entry.reason == BlacklistEntry.Reason.UNSUBSCRIBE
    # The recipient asked: not an event an e-mail service reported.
    assert entry.source == BlacklistEntry.Source.RECIPIENT
    assert entry.get_source_display() == "The recipient"
    assert entry.created_by is None


def test_post_is_not_blocked_by_csrf(client):
    client.handler.enforce_csrf_checks = True
    response = client.post(link_path("member@example.test"), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert BlacklistEntry.objects.filter(email="member@example.test").exists()


def test_get_only_asks_for_confirmation(client):
    response = client.get(link_path("member@example.test"))
    assert response.status_code == 200
    assert b"member@example.test" in response.content
    assert b'method="post"' in response.content
    assert not BlacklistEntry.objects.exists()


def test_tampered_signature_is_refused_and_nothing_listed(client):
    token = unsubscribe_token(address="member@example.test")
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for path in (
        reverse("unsubscribe", kwargs={"token": forged}),
        reverse("unsubscribe", kwargs={"token": "someone@else.test"}),
        reverse("unsubscribe", kwargs={"token": token.replace(token.split(":")[0], "eyJ4Ijox")}),
    ):
        assert client.post(path).status_code == 400
        assert client.get(path).status_code == 400
    assert not BlacklistEntry.objects.exists()


def test_already_listed_address_stays_as_it_is(client):
    BlacklistEntry.objects.create(email="member@example.test", reason=BlacklistEntry.Reason.BOUNCE)
    assert client.post(link_path("member@example.test")).status_code == 200
    assert BlacklistEntry.objects.get().reason == BlacklistEntry.Reason.BOUNCE


def test_other_methods_are_refused(client):
    assert client.put(link_path("member@example.test")).status_code == 405
    assert not BlacklistEntry.objects.exists()
