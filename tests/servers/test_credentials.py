"""E-mail service and OAuth2 credentials in the server admin: typed, validated, stored, hidden."""

import datetime
import json
import logging

import pytest
from django.core.cache import cache
from django.urls import reverse

from audit.models import AuditEvent
from smtpconfig.models import OAuthToken, SmtpServer
from tests.oauth.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    GOOGLE_CLIENT_ID,
    GOOGLE_CLIENT_SECRET,
    MAILBOX,
    REFRESH_TOKEN,
    TENANT_ID,
)
from tests.servers.test_admin import (
    ADD_URL,
    LIST_URL,
    change_url,
    errors_of,
    form_data,
    row_of,
    stored_rows,
)

pytestmark = pytest.mark.django_db

POSTMARK_TOKEN = "pm-9f1c2d3e-4b5a-6789-abcd-ef0123456789"
SES_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture(autouse=True)
def fresh_rate_limit():
    # The diagnostics' per-user counter lives in the cache, which outlives a test's database.
    cache.clear()
    yield
    cache.clear()


def stored(server) -> dict:
    server.refresh_from_db()
    return json.loads(server.credentials) if server.credentials else {}


def service_form(transport, **overrides):
    """The form of a server sending through ``transport``, SMTP fields left empty."""
    fields = {"transport": transport, "host": "", "port": "587", "security": "starttls"}
    fields.update(overrides)
    return form_data(**fields)


def microsoft_form(**overrides):
    fields = {
        "host": "127.0.0.1",
        "use_auth": "on",
        "auth_method": "microsoft_oauth2",
        "username": MAILBOX,
        "ms_tenant_id": TENANT_ID,
        "ms_client_id": CLIENT_ID,
        "ms_client_secret": CLIENT_SECRET,
    }
    fields.update(overrides)
    return form_data(**fields)


# --- E-mail services -----------------------------------------------------------------------


def test_a_service_server_is_saved_with_its_key_and_no_smtp_settings(admin_client):
    response = admin_client.post(
        ADD_URL,
        service_form(
            "postmark", esp_postmark_server_token=POSTMARK_TOKEN, esp_postmark_message_stream="club"
        ),
    )

    assert response.status_code == 302, errors_of(response)
    server = SmtpServer.objects.get()
    assert server.transport == "postmark"
    assert stored(server) == {"server_token": POSTMARK_TOKEN, "message_stream": "club"}
    assert POSTMARK_TOKEN not in repr(stored_rows())


def test_a_missing_service_key_is_an_error_on_its_own_field(admin_client):
    response = admin_client.post(
        ADD_URL, service_form("amazon_ses", esp_amazon_ses_access_key_id="AKIAEXAMPLE")
    )

    errors = errors_of(response)
    assert errors["esp_amazon_ses_secret_access_key"] == [
        "Enter the Secret access key from your Amazon SES account."
    ]
    assert errors["esp_amazon_ses_region"] == [
        "Enter the Region (for example eu-west-1) from your Amazon SES account."
    ]
    assert "esp_amazon_ses_access_key_id" not in errors
    assert not SmtpServer.objects.exists()


def test_only_the_chosen_services_fields_count(admin_client):
    response = admin_client.post(
        ADD_URL, service_form("mailgun", esp_postmark_server_token=POSTMARK_TOKEN)
    )

    assert errors_of(response) == {
        "esp_mailgun_api_key": ["Enter the API key from your Mailgun account."]
    }


def test_a_blank_field_keeps_the_stored_value_and_a_typed_one_replaces_it(
    admin_client, make_server
):
    server = make_server(
        name="SES",
        transport="amazon_ses",
        credentials=json.dumps(
            {"access_key_id": "AKIA1", "secret_access_key": SES_SECRET, "region": "eu-west-1"}
        ),
    )

    response = admin_client.post(
        change_url(server),
        service_form("amazon_ses", name="SES", esp_amazon_ses_region="eu-west-3"),
    )

    assert response.status_code == 302, errors_of(response)
    assert stored(server) == {
        "access_key_id": "AKIA1",
        "secret_access_key": SES_SECRET,
        "region": "eu-west-3",
    }


def test_clearing_removes_the_stored_values_not_typed_again(admin_client, make_server):
    server = make_server(
        name="Mailgun",
        transport="mailgun",
        credentials=json.dumps({"api_key": "key-old", "sender_domain": "mg.club.example"}),
    )

    response = admin_client.post(
        change_url(server),
        service_form(
            "mailgun", name="Mailgun", clear_credentials="on", esp_mailgun_api_key="key-new"
        ),
    )

    assert response.status_code == 302, errors_of(response)
    assert stored(server) == {"api_key": "key-new"}


def test_clearing_a_services_only_key_is_refused_and_keeps_it(admin_client, make_server):
    server = make_server(name="Brevo", transport="brevo", credentials='{"api_key": "xkeysib-1"}')

    response = admin_client.post(
        change_url(server), service_form("brevo", name="Brevo", clear_credentials="on")
    )

    assert errors_of(response) == {
        "esp_brevo_api_key": ["Enter the API key from your Brevo account."]
    }
    assert stored(server) == {"api_key": "xkeysib-1"}


def test_another_service_does_not_inherit_the_previous_services_key(admin_client, make_server):
    server = make_server(name="Relay", transport="postmark", credentials='{"server_token": "t"}')

    response = admin_client.post(change_url(server), service_form("resend", name="Relay"))

    assert errors_of(response) == {
        "esp_resend_api_key": ["Enter the API key from your Resend account."]
    }


def test_smtp_fields_are_neither_required_nor_checked_for_a_service(admin_client, make_server):
    server = make_server(
        name="Brevo",
        transport="brevo",
        host="",
        port=587,
        security="starttls",
        credentials='{"api_key": "xkeysib-1"}',
    )

    response = admin_client.post(
        change_url(server),
        service_form(
            "brevo",
            name="Brevo",
            host="not a host name!",
            port="99999",
            security="ssl",
            use_auth="on",
            username="",
        ),
    )

    assert response.status_code == 302, errors_of(response)
    server.refresh_from_db()
    assert (server.host, server.port) == ("", 587)


def test_switching_a_service_back_to_smtp_requires_the_host(admin_client, make_server):
    server = make_server(name="Brevo", transport="brevo", host="", credentials='{"api_key": "k"}')

    response = admin_client.post(
        change_url(server), form_data(name="Brevo", transport="smtp", host="")
    )

    assert errors_of(response)["host"] == ["Enter the SMTP server's host name."]
    server.refresh_from_db()
    assert server.transport == "brevo"


def test_a_post_without_transport_or_method_keeps_the_stored_ones(admin_client, make_server):
    server = make_server(
        name="Office",
        use_auth=True,
        auth_method="microsoft_oauth2",
        username=MAILBOX,
        credentials=json.dumps(
            {"tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        ),
    )

    response = admin_client.post(change_url(server), form_data(name="Office", use_auth="on"))

    assert response.status_code == 302, errors_of(response)
    server.refresh_from_db()
    assert server.auth_method == "microsoft_oauth2"
    assert stored(server)["client_secret"] == CLIENT_SECRET


# --- OAuth2 sign-in ------------------------------------------------------------------------


def test_microsoft_sign_in_needs_no_password_and_stores_the_app(admin_client):
    response = admin_client.post(ADD_URL, microsoft_form())

    assert response.status_code == 302, errors_of(response)
    server = SmtpServer.objects.get()
    assert server.auth_method == "microsoft_oauth2"
    assert server.password == ""
    assert stored(server) == {
        "tenant_id": TENANT_ID,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }


def test_microsoft_sign_in_names_each_missing_value(admin_client):
    response = admin_client.post(ADD_URL, microsoft_form(ms_client_id="", ms_client_secret=""))

    errors = errors_of(response)
    expected = ["Required for Microsoft 365 (OAuth2) sign-in: follow the steps shown for it."]
    assert errors["ms_client_id"] == expected
    assert errors["ms_client_secret"] == expected
    assert "new_password" not in errors
    assert not SmtpServer.objects.exists()


def test_a_malformed_tenant_is_refused_by_the_oauth_parser(admin_client):
    response = admin_client.post(ADD_URL, microsoft_form(ms_tenant_id="not a tenant!"))

    assert errors_of(response) == {
        "ms_tenant_id": [
            "The directory (tenant) ID must be a GUID or a domain name such as "
            "club.onmicrosoft.com."
        ]
    }


def test_google_service_account_key_is_stored_as_the_key_document(
    admin_client, service_account_key
):
    info, _public = service_account_key

    response = admin_client.post(
        ADD_URL,
        microsoft_form(
            auth_method="google_oauth2",
            ms_tenant_id="",
            ms_client_id="",
            ms_client_secret="",
            google_service_account_key=json.dumps(info),
        ),
    )

    assert response.status_code == 302, errors_of(response)
    assert stored(SmtpServer.objects.get()) == {"service_account_info": info}


def test_a_key_that_is_not_googles_json_is_refused_and_not_shown_back(admin_client):
    # A marker no random token of the page (CSRF, CSP nonce) can contain: "." and "!".
    pasted = '{"type": "authorized_user", "private_key": "-----BEGIN PRIVATE KEY-----k.Zz9!"}'

    response = admin_client.post(
        ADD_URL,
        form_data(
            host="127.0.0.1",
            use_auth="on",
            auth_method="google_oauth2",
            google_service_account_key=pasted,
        ),
    )

    assert errors_of(response) == {
        "google_service_account_key": [
            "The service account key is not the JSON file Google provides."
        ]
    }
    assert "k.Zz9!" not in response.content.decode()


def test_text_that_is_not_json_is_refused_without_quoting_it(admin_client):
    response = admin_client.post(
        ADD_URL,
        form_data(
            host="127.0.0.1",
            use_auth="on",
            auth_method="google_oauth2",
            google_service_account_key="private_key: Secret-Part-77",
        ),
    )

    errors = errors_of(response)
    assert errors["google_service_account_key"] == [
        "The service account key is not the JSON file Google provides."
    ]
    assert "Secret-Part-77" not in response.content.decode()


def test_google_refresh_token_names_each_missing_value(admin_client):
    response = admin_client.post(
        ADD_URL,
        form_data(
            host="127.0.0.1",
            use_auth="on",
            auth_method="google_oauth2",
            google_client_id=GOOGLE_CLIENT_ID,
        ),
    )

    errors = errors_of(response)
    assert errors["google_client_secret"] == ["Required for sign-in with a refresh token."]
    assert errors["google_refresh_token"] == ["Required for sign-in with a refresh token."]


def test_google_with_nothing_typed_says_what_to_enter(admin_client):
    response = admin_client.post(
        ADD_URL, form_data(host="127.0.0.1", use_auth="on", auth_method="google_oauth2")
    )

    assert "Paste the service account key" in errors_of(response)["google_service_account_key"][0]


def test_google_key_and_refresh_token_together_are_refused(admin_client, service_account_key):
    info, _public = service_account_key

    response = admin_client.post(
        ADD_URL,
        form_data(
            host="127.0.0.1",
            use_auth="on",
            auth_method="google_oauth2",
            google_service_account_key=json.dumps(info),
            google_client_id=GOOGLE_CLIENT_ID,
            google_client_secret=GOOGLE_CLIENT_SECRET,
            google_refresh_token=REFRESH_TOKEN,
        ),
    )

    assert "not both" in errors_of(response)["google_service_account_key"][0]


def test_a_new_refresh_token_keeps_the_stored_client(admin_client, make_server):
    server = make_server(
        name="Workspace",
        use_auth=True,
        auth_method="google_oauth2",
        credentials=json.dumps(
            {
                "client_id": GOOGLE_CLIENT_ID,
                "client_secret": GOOGLE_CLIENT_SECRET,
                "refresh_token": "1//old",
            }
        ),
    )

    response = admin_client.post(
        change_url(server),
        form_data(
            name="Workspace",
            use_auth="on",
            auth_method="google_oauth2",
            google_refresh_token=REFRESH_TOKEN,
        ),
    )

    assert response.status_code == 302, errors_of(response)
    assert stored(server) == {
        "client_id": GOOGLE_CLIENT_ID,
        "client_secret": GOOGLE_CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
    }


def test_back_to_password_sign_in_drops_the_oauth_secrets(admin_client, make_server):
    server = make_server(
        name="Office",
        use_auth=True,
        auth_method="microsoft_oauth2",
        username=MAILBOX,
        credentials=json.dumps(
            {"tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        ),
    )

    response = admin_client.post(
        change_url(server),
        form_data(
            name="Office",
            use_auth="on",
            auth_method="password",
            username=MAILBOX,
            new_password="Pw-1",
        ),
    )

    assert response.status_code == 302, errors_of(response)
    server.refresh_from_db()
    assert (server.auth_method, server.credentials, server.password) == ("password", "", "Pw-1")


def test_password_sign_in_still_requires_the_password(admin_client):
    response = admin_client.post(
        ADD_URL, form_data(use_auth="on", auth_method="password", username="club")
    )

    assert errors_of(response)["new_password"] == [
        "Enter the SMTP password, or untick SMTP authentication."
    ]


# --- The cached token ----------------------------------------------------------------------


@pytest.fixture
def microsoft_with_token(make_server):
    server = make_server(
        name="Office",
        use_auth=True,
        auth_method="microsoft_oauth2",
        username=MAILBOX,
        credentials=json.dumps(
            {"tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        ),
    )
    OAuthToken.objects.create(
        server=server,
        access_token="cached-access-token",
        expires_at=datetime.datetime(2099, 1, 1, tzinfo=datetime.UTC),
    )
    return server


@pytest.mark.parametrize(
    "change",
    [
        {"username": "other@club.example"},
        {"ms_client_secret": "a-new-client-secret"},
        {
            "auth_method": "google_oauth2",
            "google_client_id": GOOGLE_CLIENT_ID,
            "google_client_secret": "s",
            "google_refresh_token": "r",
        },
    ],
    ids=["mailbox", "credentials", "method"],
)
def test_changing_the_sign_in_drops_the_cached_token(admin_client, microsoft_with_token, change):
    fields = {"name": "Office", "use_auth": "on", "auth_method": "microsoft_oauth2"}
    fields["username"] = MAILBOX
    fields.update(change)

    response = admin_client.post(change_url(microsoft_with_token), form_data(**fields))

    assert response.status_code == 302, errors_of(response)
    assert not OAuthToken.objects.filter(server=microsoft_with_token).exists()
    event = AuditEvent.objects.latest("pk")
    assert CLIENT_SECRET not in json.dumps(event.after) + json.dumps(event.before)


def test_other_changes_keep_the_cached_token(admin_client, microsoft_with_token):
    response = admin_client.post(
        change_url(microsoft_with_token),
        form_data(
            name="Office renamed",
            use_auth="on",
            auth_method="microsoft_oauth2",
            username=MAILBOX,
        ),
    )

    assert response.status_code == 302, errors_of(response)
    assert OAuthToken.objects.filter(server=microsoft_with_token).exists()


# --- Guided setup --------------------------------------------------------------------------


def test_office365_preset_proposes_microsoft_oauth2(admin_client):
    response = admin_client.get(ADD_URL, {"preset": "office365"})

    assert response.context["adminform"].form.initial["auth_method"] == "microsoft_oauth2"
    page = response.content.decode()
    assert '<option value="microsoft_oauth2" selected>' in page


def test_every_methods_steps_are_in_the_page_under_their_heading(admin_client):
    page = admin_client.get(ADD_URL).content.decode()

    assert "Microsoft 365 (OAuth2) sign-in</h2>" in page
    assert "Google Workspace (OAuth2) sign-in</h2>" in page
    assert "Microsoft Entra admin center" in page
    assert "SMTP.SendAsApp" in page
    assert "Manage Domain Wide Delegation" in page
    assert "https://mail.google.com/" in page
    assert 'class="module aligned oauth-credentials auth-microsoft_oauth2"' in page
    assert "smtpconfig/server_form.js" in page


def test_the_steps_name_the_servers_tenant_app_and_mailbox(admin_client, make_server):
    server = make_server(
        name="Office",
        use_auth=True,
        auth_method="microsoft_oauth2",
        username=MAILBOX,
        credentials=json.dumps(
            {"tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        ),
    )

    page = admin_client.get(change_url(server)).content.decode()

    assert f"Connect-ExchangeOnline -Organization {TENANT_ID}" in page
    assert f"New-ServicePrincipal -AppId {CLIENT_ID}" in page
    assert f"Set-CASMailbox -Identity &quot;{MAILBOX}&quot;" in page
    assert CLIENT_SECRET not in page


def test_the_steps_escape_what_the_administrator_typed(admin_client, make_server):
    server = make_server(
        name="Office",
        use_auth=True,
        auth_method="microsoft_oauth2",
        username='<img src=x onerror="alert(1)">@club.example',
    )

    page = admin_client.get(change_url(server)).content.decode()

    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;@club.example" in page


def test_optional_service_values_say_so(admin_client):
    form = admin_client.get(ADD_URL).context["adminform"].form

    assert form.fields["esp_postmark_message_stream"].help_text == "Optional."
    assert form.fields["esp_postmark_server_token"].help_text == ""


def test_office365_password_server_shows_the_retirement_warning_once(admin_client, make_server):
    office = make_server(
        name="Office",
        host="smtp.office365.com",
        port=587,
        security="starttls",
        use_auth=True,
        username=MAILBOX,
        password="Pw-1",
    )

    page = admin_client.get(change_url(office)).content.decode()

    assert page.count("December 2026") == 1
    assert "Switch this server to “Microsoft 365 (OAuth2)”" in page


def test_office365_oauth_server_shows_no_retirement_warning(admin_client, make_server):
    office = make_server(
        name="Office",
        host="smtp.office365.com",
        security="starttls",
        use_auth=True,
        auth_method="microsoft_oauth2",
        credentials=json.dumps(
            {"tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        ),
    )

    page = admin_client.get(change_url(office)).content.decode()

    assert "server-warning" not in page


def test_the_list_marks_office365_servers_still_on_passwords(admin_client, make_server):
    make_server(name="Office", host="smtp.office365.com", use_auth=True, username="u", password="p")
    make_server(
        name="Modern",
        host="smtp.office365.com",
        use_auth=True,
        auth_method="microsoft_oauth2",
        credentials="{}",
    )
    make_server(name="Club mailings", transport="postmark", host="", credentials="{}")

    page = admin_client.get(LIST_URL).content.decode()

    assert "basic-auth-retiring" in row_of(page, "Office")
    assert "basic-auth-retiring" not in row_of(page, "Modern")
    assert "Microsoft 365 (OAuth2)" in row_of(page, "Modern")
    assert ">Postmark</td>" in row_of(page, "Club mailings")


def test_the_change_page_links_to_the_domain_health_page(admin_client, make_server):
    server = make_server(name="Relay")

    page = admin_client.get(change_url(server)).content.decode()

    url = reverse("smtpconfig_server_domain_health", args=[server.pk])
    assert f'href="{url}"' in page
    assert admin_client.get(url).status_code == 200


# --- Secrets stay secret -------------------------------------------------------------------


def test_no_credential_appears_in_pages_errors_logs_repr_or_the_database(admin_client, caplog):
    caplog.set_level(logging.DEBUG)
    service = admin_client.post(
        ADD_URL,
        service_form("postmark", name="Postmark", esp_postmark_server_token=POSTMARK_TOKEN),
    )
    office = admin_client.post(ADD_URL, microsoft_form(name="Office"))
    assert service.status_code == office.status_code == 302
    # A failing form with both secrets typed, re-rendered with its errors.
    failing = admin_client.post(
        ADD_URL,
        microsoft_form(name="Broken", ms_tenant_id="", esp_postmark_server_token=POSTMARK_TOKEN),
    )
    assert failing.status_code == 200

    servers = list(SmtpServer.objects.order_by("name"))
    pages = [admin_client.get(LIST_URL), failing]
    pages += [admin_client.get(change_url(server)) for server in servers]
    pages += [
        admin_client.get(reverse("admin:smtpconfig_smtpserver_history", args=[server.pk]))
        for server in servers
    ]
    texts = [response.content.decode() for response in pages]
    texts += [repr(server) for server in servers]
    texts += [repr(server.credentials) for server in servers]
    texts += [str(failing.context["adminform"].form.errors)]
    texts += [caplog.text, repr(stored_rows())]
    texts += [json.dumps([event.before, event.after]) for event in AuditEvent.objects.all()]
    for text in texts:
        assert POSTMARK_TOKEN not in text
        assert CLIENT_SECRET not in text
    assert [stored(server) for server in servers][0]["client_secret"] == CLIENT_SECRET


# --- Test connection through the admin ----------------------------------------------------


def test_an_office365_server_set_up_in_the_form_passes_test_connection(
    admin_client, token_endpoint, xoauth2_peer
):
    peer = xoauth2_peer()
    token_endpoint.register_microsoft_app(
        tenant_id=TENANT_ID, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, mailboxes=[MAILBOX]
    )
    response = admin_client.post(
        ADD_URL,
        microsoft_form(host=peer.host, port=str(peer.port), security="none"),
    )
    assert response.status_code == 302, errors_of(response)
    server = SmtpServer.objects.get()

    page = admin_client.post(
        reverse("admin:smtpconfig_smtpserver_test_connection", args=[server.pk])
    ).content.decode()

    assert f"signed in with OAuth2 as {MAILBOX}" in page
    assert "diagnostic-ok" in page
    assert token_endpoint.requests["microsoft_token"] == 1


def test_without_an_smtp_user_oauth_signs_in_as_the_sender(
    admin_client, token_endpoint, xoauth2_peer
):
    peer = xoauth2_peer()
    token_endpoint.register_microsoft_app(
        tenant_id=TENANT_ID, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, mailboxes=[MAILBOX]
    )
    response = admin_client.post(
        ADD_URL,
        microsoft_form(
            host=peer.host, port=str(peer.port), security="none", username="", sender_email=MAILBOX
        ),
    )
    assert response.status_code == 302, errors_of(response)

    page = admin_client.post(
        reverse("admin:smtpconfig_smtpserver_test_connection", args=[SmtpServer.objects.get().pk])
    ).content.decode()

    assert f"signed in with OAuth2 as {MAILBOX}" in page
    assert len(peer.received) == 0


def test_a_refused_app_is_reported_with_the_providers_words(
    admin_client, token_endpoint, xoauth2_peer
):
    peer = xoauth2_peer()
    token_endpoint.register_microsoft_app(
        tenant_id=TENANT_ID,
        client_id=CLIENT_ID,
        client_secret="another-secret",
        mailboxes=[MAILBOX],
    )
    admin_client.post(ADD_URL, microsoft_form(host=peer.host, port=str(peer.port), security="none"))

    page = admin_client.post(
        reverse("admin:smtpconfig_smtpserver_test_connection", args=[SmtpServer.objects.get().pk])
    ).content.decode()

    assert "diagnostic-failed" in page
    assert "Microsoft 365 refused the OAuth2 sign-in" in page
    assert CLIENT_SECRET not in page
