"""The server admin through Django's test client, as a signed-in administrator."""

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from smtpconfig.models import OutgoingMessage, SmtpServer

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:smtpconfig_smtpserver_changelist")
ADD_URL = reverse("admin:smtpconfig_smtpserver_add")


def change_url(server):
    return reverse("admin:smtpconfig_smtpserver_change", args=[server.pk])


def delete_url(server):
    return reverse("admin:smtpconfig_smtpserver_delete", args=[server.pk])


def form_data(**overrides):
    """The add/change form as a browser posts it; ``None`` leaves a field out (unticked box)."""
    data = {
        "name": "Club",
        "is_active": "on",
        "from_filter": "",
        "sender_name": "Golf Club",
        "sender_email": "office@club.example",
        "reply_to": "",
        "host": "127.0.0.1",
        "port": "2525",
        "security": "none",
        "timeout": "30",
        "max_connections": "1",
        "username": "",
        "new_password": "",
        "limit_period": "none",
        "limit_count": "",
        "_save": "Save",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def stored_rows():
    """Every server row exactly as stored, the encrypted columns as raw tokens."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM smtpconfig_smtpserver ORDER BY id")
        return cursor.fetchall()


def row_of(page: str, name: str) -> str:
    """The change list's table row of the server called ``name``."""
    [row] = [row for row in page.split("<tr")[1:] if f">{name}</a>" in row]
    return row


def errors_of(response):
    assert response.status_code == 200, "the form was accepted"
    form = response.context["adminform"].form
    return {
        field: [str(message) for message in messages] for field, messages in form.errors.items()
    }


# --- List ---------------------------------------------------------------------------------


def test_list_shows_star_address_limit_and_pause(admin_client, make_server):
    make_server(name="Relay", host="127.0.0.1", port=2525, is_default=True)
    make_server(
        name="Office",
        host="smtp.office365.com",
        port=587,
        limit_period="day",
        limit_count=10000,
        paused_until=timezone.now() + timezone.timedelta(hours=1),
        pause_reason="535 authentication failed",
        is_active=False,
    )

    response = admin_client.get(LIST_URL)

    page = response.content.decode()
    assert response.status_code == 200
    relay, office = row_of(page, "Relay"), row_of(page, "Office")
    assert "★" in relay and "★" not in office
    assert "127.0.0.1:2525" in relay
    assert "smtp.office365.com:587" in office
    assert "10,000 recipients per day" in office
    assert "No send limit" in relay
    assert "535 authentication failed" in office
    assert 'alt="False"' in office  # inactive


def test_list_search_finds_by_host_and_filter(admin_client, make_server):
    make_server(name="Relay", host="relay.club.example")
    make_server(name="Info", host="127.0.0.1", from_filter="info@club.example")

    by_host = admin_client.get(LIST_URL, {"q": "relay.club"}).content.decode()
    by_filter = admin_client.get(LIST_URL, {"q": "info@club"}).content.decode()

    assert ">Relay<" in by_host and ">Info<" not in by_host
    assert ">Info<" in by_filter and ">Relay<" not in by_filter


def test_password_never_appears_in_list_or_change_page(admin_client, make_server):
    server = make_server(name="Relay", use_auth=True, username="club", password="Pa55-Word-xyz")

    pages = admin_client.get(LIST_URL).content + admin_client.get(change_url(server)).content

    assert b"Pa55-Word-xyz" not in pages
    server.refresh_from_db()
    assert "Pa55-Word-xyz" not in repr(server)
    assert "Pa55-Word-xyz" not in repr(server.password)


# --- Create ------------------------------------------------------------------------------


def test_first_server_becomes_default_the_next_does_not(admin_client):
    response = admin_client.post(ADD_URL, form_data(name="First"))
    assert response.status_code == 302, errors_of(response)
    response = admin_client.post(ADD_URL, form_data(name="Second"))
    assert response.status_code == 302, errors_of(response)

    assert dict(SmtpServer.objects.values_list("name", "is_default")) == {
        "First": True,
        "Second": False,
    }


def test_create_stores_every_field_normalised_and_the_password_encrypted(admin_client):
    response = admin_client.post(
        ADD_URL,
        form_data(
            name="Club",
            from_filter="Club.Example, Info@CLUB.example; Bücher.example",
            sender_name="Golf Club",
            sender_email="office@club.example",
            reply_to="answers@club.example",
            host="SMTP.Club.Example",
            port="587",
            security="starttls",
            use_auth="on",
            username="club",
            new_password="Pa55-Word-xyz",
            timeout="20",
            max_connections="3",
            limit_period="hour",
            limit_count="500",
        ),
    )

    assert response.status_code == 302, errors_of(response)
    server = SmtpServer.objects.get()
    assert server.from_filter == "club.example, info@club.example, xn--bcher-kva.example"
    assert server.host == "smtp.club.example"
    assert (server.port, server.security, server.timeout) == (587, "starttls", 20)
    assert (server.use_auth, server.username, server.password) == (True, "club", "Pa55-Word-xyz")
    assert (server.limit_period, server.limit_count, server.max_connections) == ("hour", 500, 3)
    assert server.reply_to == "answers@club.example"
    assert b"Pa55-Word-xyz" not in repr(stored_rows()).encode()


# --- Validation: each message, and nothing stored changes ---------------------------------


INVALID_INPUT = [
    ({"port": "0"}, "port", "Ensure this value is greater than or equal to 1."),
    ({"port": "70000"}, "port", "Ensure this value is less than or equal to 65535."),
    (
        {"host": "smtp://mail.club.example"},
        "host",
        "“smtp://mail.club.example” is not a valid host name or IP address (for example "
        "smtp.club.example; no “smtp://” and no port).",
    ),
    (
        {"host": "mail.club.example:587"},
        "host",
        "“mail.club.example:587” is not a valid host name or IP address (for example "
        "smtp.club.example; no “smtp://” and no port).",
    ),
    ({"host": ""}, "host", "Enter the SMTP server's host name."),
    (
        {"from_filter": "club.example, not a domain"},
        "from_filter",
        "“not” is neither a domain (club.example) nor a full address (office@club.example).",
    ),
    (
        {"from_filter": "a(b)@club.example"},
        "from_filter",
        "“a(b)@club.example” is not a valid e-mail address.",
    ),
    (
        {"limit_period": "day", "limit_count": ""},
        "limit_count",
        "Enter the maximum number of recipients per day.",
    ),
    (
        {"limit_period": "none", "limit_count": "100"},
        "limit_count",
        "There is no send limit: leave the number empty, or choose a period (per hour, day or "
        "week).",
    ),
    (
        {"limit_period": "week", "limit_count": "0"},
        "limit_count",
        "Ensure this value is greater than or equal to 1.",
    ),
    (
        {"port": "465", "security": "starttls"},
        "security",
        "Port 465 expects SSL/TLS from the first byte. Choose SSL/TLS, or port 587 with STARTTLS.",
    ),
    (
        {"port": "587", "security": "ssl"},
        "security",
        "Port 587 starts without encryption and switches with STARTTLS. Choose STARTTLS, or "
        "port 465 with SSL/TLS.",
    ),
    (
        {"use_auth": "on", "username": "", "new_password": "x"},
        "username",
        "Enter the SMTP user, or untick SMTP authentication.",
    ),
    (
        {"use_auth": "on", "username": "club", "new_password": ""},
        "new_password",
        "Enter the SMTP password, or untick SMTP authentication.",
    ),
    (
        {"host": "169.254.169.254"},
        "host",
        "169.254.169.254 is a cloud metadata address: the portal never connects there.",
    ),
    ({"sender_email": "not-an-address"}, "sender_email", "Enter a valid email address."),
    ({"timeout": "0"}, "timeout", "Ensure this value is greater than or equal to 1."),
]


@pytest.mark.parametrize(("overrides", "field", "message"), INVALID_INPUT)
def test_invalid_new_server_is_refused_with_a_clear_message(
    admin_client, overrides, field, message
):
    response = admin_client.post(ADD_URL, form_data(**overrides))

    assert message in errors_of(response).get(field, []), errors_of(response)
    assert not SmtpServer.objects.exists()


# A change form may leave the password blank: the stored one is kept.
INVALID_CHANGE = [case for case in INVALID_INPUT if case[1] != "new_password"]


@pytest.mark.parametrize(("overrides", "field", "message"), INVALID_CHANGE)
def test_invalid_change_is_refused_and_changes_nothing(
    admin_client, make_server, overrides, field, message
):
    server = make_server(
        name="Club", host="127.0.0.1", port=2525, use_auth=False, password="Stored-Pa55"
    )
    before = stored_rows()

    response = admin_client.post(change_url(server), form_data(name="Renamed", **overrides))

    assert message in errors_of(response).get(field, []), errors_of(response)
    assert stored_rows() == before


def test_filter_entry_of_another_server_is_refused_naming_it(admin_client, make_server):
    make_server(name="Info desk", from_filter="info@club.example, news.example")
    before = stored_rows()

    response = admin_client.post(
        ADD_URL, form_data(name="Second", from_filter="NEWS.example, Info@Club.example")
    )

    assert errors_of(response)["from_filter"] == [
        "“info@club.example” is already in the filter of server “Info desk”: a sender can be "
        "routed to one server only.",
        "“news.example” is already in the filter of server “Info desk”: a sender can be routed "
        "to one server only.",
    ]
    assert stored_rows() == before


def test_a_server_keeps_its_own_filter_entries_when_edited(admin_client, make_server):
    server = make_server(name="Info desk", from_filter="info@club.example")

    response = admin_client.post(
        change_url(server), form_data(name="Info desk", from_filter="info@club.example")
    )

    assert response.status_code == 302, errors_of(response)


def test_default_server_cannot_be_deactivated(admin_client, make_server):
    server = make_server(name="Relay", is_default=True)
    before = stored_rows()

    response = admin_client.post(change_url(server), form_data(name="Relay", is_active=None))

    assert errors_of(response)["is_active"] == [
        "This is the default server and cannot be deactivated. Make another server the "
        "default first."
    ]
    assert stored_rows() == before


# --- Password: write-only ----------------------------------------------------------------


def test_password_field_never_renders_the_stored_value(admin_client, make_server):
    server = make_server(name="Relay", use_auth=True, username="club", password="Pa55-Word-xyz")

    page = admin_client.get(change_url(server)).content.decode()

    assert "Pa55-Word-xyz" not in page
    assert 'name="new_password"' in page
    assert "A password is stored. Leave blank to keep it." in page


def test_password_not_echoed_when_the_form_has_errors(admin_client, make_server):
    server = make_server(name="Relay")

    response = admin_client.post(
        change_url(server),
        form_data(name="Relay", port="0", use_auth="on", username="u", new_password="Typed-Pw-1"),
    )

    assert response.status_code == 200
    assert b"Typed-Pw-1" not in response.content


def test_blank_password_keeps_the_stored_one(admin_client, make_server):
    server = make_server(name="Relay", use_auth=True, username="club", password="Pa55-Word-xyz")

    response = admin_client.post(
        change_url(server), form_data(name="Relay", use_auth="on", username="club2")
    )

    assert response.status_code == 302, errors_of(response)
    server.refresh_from_db()
    assert (server.username, server.password) == ("club2", "Pa55-Word-xyz")


def test_typed_password_replaces_the_stored_one(admin_client, make_server):
    server = make_server(name="Relay", use_auth=True, username="club", password="Old-Pw-1")

    admin_client.post(
        change_url(server),
        form_data(name="Relay", use_auth="on", username="club", new_password="New-Pw-2"),
    )

    server.refresh_from_db()
    assert server.password == "New-Pw-2"


def test_clear_password_checkbox_clears_it(admin_client, make_server):
    server = make_server(name="Relay", use_auth=True, username="club", password="Old-Pw-1")

    response = admin_client.post(change_url(server), form_data(name="Relay", clear_password="on"))

    assert response.status_code == 302, errors_of(response)
    server.refresh_from_db()
    assert server.password == ""
    with connection.cursor() as cursor:
        cursor.execute("SELECT password FROM smtpconfig_smtpserver WHERE id = %s", [server.pk])
        assert cursor.fetchone() == ("",)


def test_clearing_the_password_while_authentication_needs_it_is_refused(admin_client, make_server):
    server = make_server(name="Relay", use_auth=True, username="club", password="Old-Pw-1")
    before = stored_rows()

    response = admin_client.post(
        change_url(server),
        form_data(name="Relay", use_auth="on", username="club", clear_password="on"),
    )

    assert errors_of(response)["new_password"] == [
        "Enter the SMTP password, or untick SMTP authentication."
    ]
    assert stored_rows() == before


def test_new_password_and_clear_together_are_refused(admin_client, make_server):
    server = make_server(name="Relay", password="Old-Pw-1")
    before = stored_rows()

    response = admin_client.post(
        change_url(server), form_data(name="Relay", new_password="New", clear_password="on")
    )

    assert errors_of(response)["clear_password"] == [
        "Either type a new password or remove the stored one, not both."
    ]
    assert stored_rows() == before


# --- Default server ----------------------------------------------------------------------


def test_set_as_default_action_moves_the_star(admin_client, make_server):
    old = make_server(name="Old", is_default=True)
    new = make_server(name="New")

    response = admin_client.post(
        LIST_URL, {"action": "set_default", "_selected_action": [new.pk]}, follow=True
    )

    assert "“New” is now the default server." in response.content.decode()
    assert list(SmtpServer.objects.filter(is_default=True)) == [new]
    old.refresh_from_db()
    assert not old.is_default


def test_set_as_default_from_the_servers_page(admin_client, make_server):
    make_server(name="Old", is_default=True)
    new = make_server(name="New")

    response = admin_client.post(
        change_url(new), {"CHANGE_FORM-action": "set_default", "_selected_action": [new.pk]}
    )

    assert response.status_code == 302
    assert list(SmtpServer.objects.filter(is_default=True)) == [new]


def test_set_as_default_needs_exactly_one_server(admin_client, make_server):
    old = make_server(name="Old", is_default=True)
    a, b = make_server(name="A"), make_server(name="B")

    response = admin_client.post(
        LIST_URL, {"action": "set_default", "_selected_action": [a.pk, b.pk]}, follow=True
    )

    assert "Select exactly one server to make it the default." in response.content.decode()
    assert list(SmtpServer.objects.filter(is_default=True)) == [old]


def test_inactive_server_cannot_become_default(admin_client, make_server):
    old = make_server(name="Old", is_default=True)
    sleeping = make_server(name="Sleeping", is_active=False)

    response = admin_client.post(
        LIST_URL, {"action": "set_default", "_selected_action": [sleeping.pk]}, follow=True
    )

    assert "“Sleeping” is inactive. Activate it before making it the default server." in (
        response.content.decode()
    )
    assert list(SmtpServer.objects.filter(is_default=True)) == [old]


REFUSAL = (
    "“Main” is the default server and other servers remain. Make another server the default "
    "first (select it and choose “Set as default”), then delete this one."
)


def test_deleting_the_default_while_others_exist_is_refused(admin_client, make_server):
    main = make_server(name="Main", is_default=True)
    make_server(name="Other")

    page = admin_client.get(delete_url(main), follow=True).content.decode()
    posted = admin_client.post(delete_url(main), {"post": "yes"}, follow=True).content.decode()

    assert REFUSAL in page and REFUSAL in posted
    assert SmtpServer.objects.filter(pk=main.pk, is_default=True).exists()


def test_bulk_delete_including_the_default_is_refused(admin_client, make_server):
    main = make_server(name="Main", is_default=True)
    other = make_server(name="Other")
    make_server(name="Third")

    response = admin_client.post(
        LIST_URL,
        {"action": "delete_selected", "_selected_action": [main.pk, other.pk], "post": "yes"},
        follow=True,
    )

    assert REFUSAL in response.content.decode()
    assert SmtpServer.objects.count() == 3


def test_bulk_delete_of_other_servers_asks_then_deletes(admin_client, make_server):
    make_server(name="Main", is_default=True)
    other = make_server(name="Other")

    confirm = admin_client.post(
        LIST_URL, {"action": "delete_selected", "_selected_action": [other.pk]}
    )
    assert confirm.status_code == 200
    assert b"Are you sure" in confirm.content
    done = admin_client.post(
        LIST_URL, {"action": "delete_selected", "_selected_action": [other.pk], "post": "yes"}
    )

    assert done.status_code == 302
    assert list(SmtpServer.objects.values_list("name", flat=True)) == ["Main"]


def test_deleting_every_server_at_once_is_allowed(admin_client, make_server):
    main = make_server(name="Main", is_default=True)
    other = make_server(name="Other")

    admin_client.post(
        LIST_URL,
        {"action": "delete_selected", "_selected_action": [main.pk, other.pk], "post": "yes"},
    )

    assert not SmtpServer.objects.exists()


def test_the_only_server_may_be_deleted_even_if_default(admin_client, make_server):
    main = make_server(name="Main", is_default=True)

    response = admin_client.post(delete_url(main), {"post": "yes"})

    assert response.status_code == 302
    assert not SmtpServer.objects.exists()


def test_a_server_with_sent_mail_is_protected(admin_client, make_server):
    make_server(name="Main", is_default=True)
    used = make_server(name="Used")
    OutgoingMessage.objects.create(server=used, message_id="<1@club.example>", raw=b"x")

    response = admin_client.post(delete_url(used), {"post": "yes"})

    assert response.status_code == 302
    assert admin_client.get(response.url).status_code == 200
    messages = [str(message) for message in get_messages(response.wsgi_request)]
    assert messages == [
        "“Used” has messages in the outbox, whose history names it, and cannot be deleted. "
        "Deactivate it instead."
    ]
    assert SmtpServer.objects.filter(pk=used.pk).exists()


# --- Reset limit -------------------------------------------------------------------------


def test_reset_limit_action_records_when_and_who(admin_client, admin_user, make_server):
    server = make_server(name="Limited", limit_period="day", limit_count=100)
    before = timezone.now()

    response = admin_client.post(
        LIST_URL, {"action": "reset_limit", "_selected_action": [server.pk]}, follow=True
    )

    assert "Send limit reset for: Limited." in response.content.decode()
    server.refresh_from_db()
    assert server.limit_reset_at >= before
    assert server.limit_reset_by == admin_user


# --- Presets -----------------------------------------------------------------------------


def test_office365_preset_prefills_the_add_form_and_shows_limits_and_warning(admin_client):
    response = admin_client.get(ADD_URL, {"preset": "office365"})

    form = response.context["adminform"].form
    assert form.initial["host"] == "smtp.office365.com"
    assert form.initial["port"] == 587
    assert form.initial["security"] == "starttls"
    assert (form.initial["limit_period"], form.initial["limit_count"]) == ("day", 10000)
    page = response.content.decode()
    assert 'value="smtp.office365.com"' in page
    assert "10,000 recipients per day, 30 messages per minute" in page
    assert "volume limits" in page
    assert "hosted mail domain" in page
    assert "December 2026" in page


def test_google_preset_prefills_gmail(admin_client):
    form = admin_client.get(ADD_URL, {"preset": "google"}).context["adminform"].form

    assert (form.initial["host"], form.initial["port"], form.initial["security"]) == (
        "smtp.gmail.com",
        587,
        "starttls",
    )
    assert (form.initial["limit_period"], form.initial["limit_count"]) == ("day", 2000)


def test_add_form_offers_every_preset_and_its_script(admin_client):
    page = admin_client.get(ADD_URL).content.decode()

    for key in ("office365", "google", "generic"):
        assert f'href="?preset={key}"' in page
    assert "smtpconfig/server_presets.js" in page
    assert 'id="server-presets-data"' in page
    assert 'id="preset-information" class="form-row help" hidden' in page


def test_unknown_preset_prefills_nothing(admin_client):
    form = admin_client.get(ADD_URL, {"preset": "nonsense"}).context["adminform"].form

    assert "host" not in form.initial


def test_saving_a_preset_form_creates_the_server(admin_client):
    response = admin_client.post(
        ADD_URL + "?preset=office365",
        form_data(
            host="smtp.office365.com",
            port="587",
            security="starttls",
            use_auth="on",
            username="office@club.example",
            new_password="Pw-1",
            limit_period="day",
            limit_count="10000",
        ),
    )

    assert response.status_code == 302, errors_of(response)
    assert SmtpServer.objects.get().host == "smtp.office365.com"


def test_bulk_delete_including_a_server_the_outbox_names_is_refused(admin_client, make_server):
    make_server(name="Main", is_default=True)
    used = make_server(name="Used")
    spare = make_server(name="Spare")
    OutgoingMessage.objects.create(server=used, message_id="<1@club.example>", raw=b"x")

    response = admin_client.post(
        LIST_URL,
        {"action": "delete_selected", "_selected_action": [used.pk, spare.pk], "post": "yes"},
        follow=True,
    )

    assert "“Used” has messages in the outbox" in response.content.decode()
    assert SmtpServer.objects.count() == 3


def test_an_e_mail_service_server_needs_no_host_or_smtp_password(admin_client, make_server):
    server = make_server(
        name="Mailgun",
        transport="mailgun",
        host="",
        use_auth=True,
        credentials='{"api_key": "key-1"}',
    )

    response = admin_client.post(
        change_url(server), form_data(name="Mailgun", host="", use_auth="on", port="587")
    )

    assert response.status_code == 302, errors_of(response)
    server.refresh_from_db()
    assert server.host == ""


def test_limit_in_the_list_uses_the_readers_number_format(admin_client, make_server):
    make_server(name="Office", limit_period="day", limit_count=10000)

    german = admin_client.get(LIST_URL, headers={"accept-language": "de"}).content.decode()

    assert "10.000" in row_of(german, "Office")


def test_office365_server_page_shows_the_basic_authentication_warning(admin_client, make_server):
    office = make_server(name="Office", host="smtp.office365.com", port=587, security="starttls")
    relay = make_server(name="Relay")

    assert "December 2026" in admin_client.get(change_url(office)).content.decode()
    assert "December 2026" not in admin_client.get(change_url(relay)).content.decode()
