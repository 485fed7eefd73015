"""The setup steps shown in the server form, and the basic-authentication retirement warning."""

import pytest
from django.utils import translation

from smtpconfig.models import SmtpServer
from smtpconfig.oauth_guidance import (
    basic_auth_retirement_warning,
    oauth_guidance_for,
    oauth_guidance_html,
)


def _all_text(sections) -> str:
    return "\n".join(
        [str(section.title) for section in sections]
        + [str(step.text) for section in sections for step in section.steps]
        + [command for section in sections for step in section.steps for command in step.commands]
    )


def test_microsoft_steps_name_the_permission_consent_and_exchange_commands():
    text = _all_text(
        oauth_guidance_for(
            auth_method=SmtpServer.AuthMethod.MICROSOFT_OAUTH2,
            mailbox="office@club.example",
            tenant_id="9f8b2c1e-4a6d-4e0f-8b7a-1c2d3e4f5a6b",
            client_id="3c9d8e7f-1a2b-4c5d-9e8f-7a6b5c4d3e2f",
        )
    )

    for expected in [
        "Microsoft Entra admin center",
        "App registrations",
        "New client secret",
        "Office 365 Exchange Online",
        "SMTP.SendAsApp",
        "Grant admin consent",
        "Enterprise applications",
        "Connect-ExchangeOnline -Organization 9f8b2c1e-4a6d-4e0f-8b7a-1c2d3e4f5a6b",
        "New-ServicePrincipal -AppId 3c9d8e7f-1a2b-4c5d-9e8f-7a6b5c4d3e2f -ObjectId",
        'Add-MailboxPermission -Identity "office@club.example"',
        "-AccessRights FullAccess",
        'Set-CASMailbox -Identity "office@club.example" -SmtpClientAuthenticationDisabled $false',
        "smtp.office365.com, port 587",
    ]:
        assert expected in text


def test_google_steps_name_the_delegation_and_the_scope():
    text = _all_text(
        oauth_guidance_for(
            auth_method=SmtpServer.AuthMethod.GOOGLE_OAUTH2, mailbox="office@club.example"
        )
    )

    for expected in [
        "Service accounts",
        "Create new key › JSON",
        "admin.google.com",
        "Manage Domain Wide Delegation",
        "https://mail.google.com/",
        "office@club.example",
        "refresh token",
        "smtp.gmail.com, port 587",
    ]:
        assert expected in text


def test_unknown_values_stay_placeholders():
    text = _all_text(oauth_guidance_for(auth_method=SmtpServer.AuthMethod.MICROSOFT_OAUTH2))
    assert 'Add-MailboxPermission -Identity "<mailbox address>"' in text
    assert "-AppId <Application (client) ID>" in text


def test_password_sign_in_has_no_steps():
    assert oauth_guidance_for(auth_method=SmtpServer.AuthMethod.PASSWORD) == []
    assert oauth_guidance_html(auth_method=SmtpServer.AuthMethod.PASSWORD) == ""


def test_html_escapes_values_and_keeps_commands_as_code():
    html = oauth_guidance_html(
        auth_method=SmtpServer.AuthMethod.MICROSOFT_OAUTH2, mailbox="<script>@club.example"
    )

    assert "<script>" not in html
    assert "&lt;script&gt;@club.example" in html
    assert "<pre><code>Install-Module -Name ExchangeOnlineManagement</code></pre>" in html
    assert html.count("<ol>") == 3


def test_commands_stay_literal_in_any_language():
    with translation.override("fr"):
        sections = oauth_guidance_for(auth_method=SmtpServer.AuthMethod.MICROSOFT_OAUTH2)
        commands = [c for section in sections for step in section.steps for c in step.commands]
    assert "Install-Module -Name ExchangeOnlineManagement" in commands


@pytest.mark.parametrize(
    ("host", "auth_method", "use_auth", "warned"),
    [
        ("smtp.office365.com", SmtpServer.AuthMethod.PASSWORD, True, True),
        ("SMTP.Office365.com.", SmtpServer.AuthMethod.PASSWORD, True, True),
        ("smtp-legacy.office365.com", SmtpServer.AuthMethod.PASSWORD, True, True),
        ("smtp.office365.com", SmtpServer.AuthMethod.MICROSOFT_OAUTH2, True, False),
        ("smtp.office365.com", SmtpServer.AuthMethod.PASSWORD, False, False),
        ("club-example.mail.protection.outlook.com", SmtpServer.AuthMethod.PASSWORD, True, False),
        ("smtp.gmail.com", SmtpServer.AuthMethod.PASSWORD, True, False),
    ],
)
def test_retirement_warning_only_for_password_sign_in_to_exchange_online(
    host, auth_method, use_auth, warned
):
    server = SmtpServer(host=host, auth_method=auth_method, use_auth=use_auth)

    warning = basic_auth_retirement_warning(server=server)

    assert bool(warning) is warned
    if warned:
        assert "Microsoft 365 (OAuth2)" in warning
