"""Every admin page's header: the portal's own pages, the one stylesheet, the language switch."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def header(client, url=None):
    response = client.get(url or reverse("admin:index"))
    assert response.status_code == 200
    return response.content.decode()


def test_club_staff_see_dashboard_routing_compose_and_history(client, club_staff):
    client.force_login(club_staff)
    page = header(client)
    assert f'href="{reverse("admin:index")}">Dashboard</a>' in page
    assert f'href="{reverse("routing_check")}">Routing check</a>' in page
    assert f'href="{reverse("mailadmin_compose")}">Compose a mail</a>' in page
    assert f'href="{reverse("mailadmin_history_lookup")}">Member history</a>' in page


def test_blacklist_managers_are_not_offered_compose(client, blacklist_manager):
    client.force_login(blacklist_manager)
    page = header(client)
    assert reverse("routing_check") in page
    assert reverse("mailadmin_compose") not in page


def test_one_stylesheet_of_the_portal_on_every_page(client, club_staff):
    client.force_login(club_staff)
    for url in (reverse("admin:index"), reverse("routing_check"), reverse("mailadmin_compose")):
        page = header(client, url)
        assert page.count("/static/mailadmin/portal.css") == 1
        assert "outbox.css" not in page and "templates.css" not in page


def test_the_language_switch_is_a_labelled_form_that_works_without_javascript(client, club_staff):
    client.force_login(club_staff)
    page = header(client, reverse("routing_check") + "?sender=a%40b.example")
    assert f'action="{reverse("set_language")}" method="post"' in page
    assert '<label for="ma-language">Language</label>' in page
    assert '<option value="fr" lang="fr">Français</option>' in page
    assert '<option value="de" lang="de">Deutsch</option>' in page
    assert 'name="next" value="/routing/?sender=a%40b.example"' in page

    response = client.post(
        reverse("set_language"), {"language": "fr", "next": "/routing/?sender=a%40b.example"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/routing/?sender=a%40b.example"
    assert response.cookies["django_language"].value == "fr"


def test_a_page_without_inline_script_or_style(client, club_staff):
    client.force_login(club_staff)
    page = header(client)
    assert "style=" not in page
    assert "<script>" not in page


def test_the_sign_in_page_offers_the_language_switch_before_signing_in(client):
    page = header(client, reverse("admin:login") + "?next=/admin/")
    assert f'action="{reverse("set_language")}" method="post"' in page
    assert 'name="next" value="/admin/login/?next=/admin/"' in page
    assert "mailadmin-nav" not in page  # no portal links for a visitor

    client.post(reverse("set_language"), {"language": "de", "next": "/admin/login/"})
    page = header(client, reverse("admin:login"))
    assert '<html lang="de"' in page
    assert "Anmelden" in page or "Benutzername" in page
