"""Deliverability admin: generate a DKIM key and see its record, service events, domain health."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from smtpconfig.dkim import dkim_txt_record
from smtpconfig.models import DkimKey, ProviderEvent, SmtpServer
from tests.signin import client_sign_in_verified

pytestmark = pytest.mark.django_db


def signed_in(client, user):
    return client_sign_in_verified(client, user)


@pytest.fixture
def admin_client_2fa(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@club.test", "pw")
    return signed_in(client, user)


def test_add_leads_to_generate_and_shows_the_record_to_publish(admin_client_2fa):
    response = admin_client_2fa.get(reverse("admin:smtpconfig_dkimkey_add"))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:smtpconfig_dkimkey_generate")
    response = admin_client_2fa.post(
        reverse("admin:smtpconfig_dkimkey_generate"),
        {"domain": "Club.Test", "selector": "s2026"},
        follow=True,
    )
    assert response.status_code == 200
    key = DkimKey.objects.get()
    assert key.domain == "club.test"
    name, value = dkim_txt_record(key=key)
    page = response.content.decode()
    assert name in page and value in page
    assert "PRIVATE KEY" not in page
    assert key.created_by.username == "root"


def test_generate_refuses_an_invalid_domain_and_stores_nothing(admin_client_2fa):
    response = admin_client_2fa.post(
        reverse("admin:smtpconfig_dkimkey_generate"), {"domain": "not a domain", "selector": "s"}
    )
    assert response.status_code == 200
    assert "is not a domain name" in response.content.decode()
    assert not DkimKey.objects.exists()


def test_new_key_action_replaces_the_key(admin_client_2fa):
    admin_client_2fa.post(
        reverse("admin:smtpconfig_dkimkey_generate"), {"domain": "club.test", "selector": "s1"}
    )
    key = DkimKey.objects.get()
    response = admin_client_2fa.post(
        reverse("admin:smtpconfig_dkimkey_changelist"),
        {"action": "generate_new_key", "_selected_action": [key.pk]},
    )
    assert response.status_code == 302
    assert DkimKey.objects.get().public_key != key.public_key


def test_provider_events_are_read_only(admin_client_2fa):
    event = ProviderEvent.objects.create(
        provider="Postmark", event_id="1", event_type="bounced", recipient="a@example.test"
    )
    changelist = admin_client_2fa.get(reverse("admin:smtpconfig_providerevent_changelist"))
    assert changelist.status_code == 200
    assert admin_client_2fa.get(reverse("admin:smtpconfig_providerevent_add")).status_code == 403
    change = admin_client_2fa.get(reverse("admin:smtpconfig_providerevent_change", args=[event.pk]))
    assert change.status_code == 200
    assert b'name="_save"' not in change.content
    delete = admin_client_2fa.post(
        reverse("admin:smtpconfig_providerevent_delete", args=[event.pk]), {"post": "yes"}
    )
    assert delete.status_code == 403
    assert ProviderEvent.objects.exists()


def test_domain_health_page_shows_a_red_spf_and_the_record(admin_client_2fa, make_server, dns_zone):
    dns_zone("smtp.club.test. 300 IN A 192.0.2.25\n")
    server = make_server(host="smtp.club.test", sender_email="office@club.test")
    response = admin_client_2fa.get(reverse("smtpconfig_server_domain_health", args=[server.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="ma-verdict-fail" data-check="spf"' in page
    assert "v=spf1 a:smtp.club.test ~all" in page


def test_domain_health_page_shows_the_office365_warning(admin_client_2fa, make_server, silent_dns):
    server = make_server(
        host="smtp.office365.com",
        sender_email="office@club.test",
        auth_method=SmtpServer.AuthMethod.PASSWORD,
    )
    response = admin_client_2fa.get(reverse("smtpconfig_server_domain_health", args=[server.pk]))
    page = response.content.decode()
    assert "December 2026" in page
    assert 'class="ma-verdict-unknown" data-check="spf"' in page
    assert "Could not check" in page


def test_domain_health_page_needs_permission(client, django_user_model, make_server, dns_zone):
    dns_zone("")
    server = make_server(sender_email="office@club.test")
    staff = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    signed_in(client, staff)
    url = reverse("smtpconfig_server_domain_health", args=[server.pk])
    assert client.get(url).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_smtpserver"))
    assert client.get(url).status_code == 200


def test_domain_health_page_for_an_unknown_server_is_404(admin_client_2fa):
    url = reverse("smtpconfig_server_domain_health", args=[999999])
    assert admin_client_2fa.get(url).status_code == 404
