import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_user("desk", password="pw", is_staff=True)
    client.force_login(user)
    return client


@pytest.fixture
def servers(make_server):
    club = make_server(
        name="Club server", from_filter="club.example", sender_email="info@club.example"
    )
    default = make_server(
        name="Default relay", is_default=True, sender_email="office@relay.example"
    )
    return club, default


def check(client, sender, reply_to=""):
    response = client.get(reverse("routing_check"), {"sender": sender, "reply_to": reply_to})
    assert response.status_code == 200
    return response.content.decode()


def test_a_sender_in_a_filtered_domain_goes_to_that_server_unchanged(staff_client, servers):
    page = check(staff_client, "Info <INFO@Club.example>")
    assert "Sent by <strong>Club server</strong>" in page
    assert "The From is kept as it is." in page
    assert "matched domain club.example on server Club server" in page


def test_another_sender_goes_to_the_default_with_the_from_rewritten(staff_client, servers):
    page = check(staff_client, "someone@else.example")
    assert "Sent by <strong>Default relay</strong>" in page
    assert "The From is rewritten" in page
    assert "no filter matched; default server Default relay" in page


def test_an_invalid_sender_is_a_clear_error(staff_client, servers):
    page = check(staff_client, "not an address")
    assert "not a valid e-mail address" in page


def test_without_any_server_the_page_says_so(staff_client):
    page = check(staff_client, "info@club.example")
    assert "No active SMTP server" in page


def test_only_staff_may_check_routing(client, django_user_model):
    member = django_user_model.objects.create_user("member", password="pw")
    client.force_login(member)
    assert client.get(reverse("routing_check")).status_code == 403
    client.logout()
    assert client.get(reverse("routing_check")).status_code == 302
