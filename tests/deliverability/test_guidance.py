"""Provider guidance: the Office 365 basic-authentication warning."""

import pytest
from django.utils import translation

from smtpconfig.guidance import server_warnings
from smtpconfig.models import SmtpServer


@pytest.mark.parametrize(
    "host", ["smtp.office365.com", "SMTP.Office365.com.", "smtp-mail.outlook.com", "outlook.com"]
)
def test_office365_with_password_warns_about_december_2026(host):
    server = SmtpServer(host=host, auth_method=SmtpServer.AuthMethod.PASSWORD)
    with translation.override("en"):
        (warning,) = server_warnings(server)
    assert "December 2026" in warning
    assert "OAuth2" in warning


@pytest.mark.parametrize(
    "fields",
    [
        {"host": "smtp.office365.com", "auth_method": SmtpServer.AuthMethod.MICROSOFT_OAUTH2},
        {"host": "smtp.gmail.com", "auth_method": SmtpServer.AuthMethod.PASSWORD},
        {"host": "notoffice365.com", "auth_method": SmtpServer.AuthMethod.PASSWORD},
        {"host": "office365.com.evil.test", "auth_method": SmtpServer.AuthMethod.PASSWORD},
        {
            "host": "smtp.office365.com",
            "auth_method": SmtpServer.AuthMethod.PASSWORD,
            "transport": SmtpServer.Transport.POSTMARK,
        },
    ],
)
def test_no_warning_otherwise(fields):
    assert server_warnings(SmtpServer(**fields)) == []
