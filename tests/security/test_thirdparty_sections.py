"""The queue, lockout and second-factor sections of the admin under their own names."""

import pytest
from django.urls import reverse

from tests.security.conftest import verified_client

SECTIONS = {
    "django_q": "Queue",
    "axes": "Sign-in lockouts",
    "otp_totp": "Second factor: authenticator apps",
    "otp_static": "Second factor: backup codes",
}
# One page of each section, to show each still opens under the renamed configuration.
PAGES = (
    "admin:django_q_schedule_changelist",
    "admin:django_q_failure_changelist",
    "admin:axes_accessattempt_changelist",
    "admin:otp_totp_totpdevice_changelist",
    "admin:otp_static_staticdevice_changelist",
)


@pytest.fixture
def superuser_client(client, make_user):
    return verified_client(client, make_user("root", superuser=True))


def test_the_admin_index_names_each_section(superuser_client):
    page = superuser_client.get(reverse("admin:index")).content.decode()
    for label, name in SECTIONS.items():
        assert f'href="/admin/{label}/"' in page
        assert name in page
    assert "Django Q" not in page
    assert "Otp_Totp" not in page


@pytest.mark.parametrize("label", SECTIONS)
def test_each_section_page_opens_under_its_name(superuser_client, label):
    response = superuser_client.get(reverse("admin:app_list", args=[label]))
    assert response.status_code == 200
    assert SECTIONS[label] in response.content.decode()


@pytest.mark.parametrize("name", PAGES)
def test_the_sections_lists_still_open(superuser_client, name):
    assert superuser_client.get(reverse(name)).status_code == 200


@pytest.mark.parametrize(
    ("language", "names"),
    [
        ("fr", ["File d'attente", "Blocages de connexion", "Second facteur : codes de secours"]),
        ("de", ["Warteschlange", "Anmeldesperren", "Zweiter Faktor: Authenticator-Apps"]),
    ],
)
def test_the_section_names_follow_the_reader_language(superuser_client, language, names):
    superuser_client.cookies["django_language"] = language
    page = superuser_client.get(reverse("admin:index")).content.decode()
    for name in names:
        assert f">{name.replace("'", '&#x27;')}</a>" in page
