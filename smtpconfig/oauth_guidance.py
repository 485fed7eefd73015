"""The steps an administrator takes at Microsoft or Google before an OAuth2 server can send.

The server form shows them for the chosen authentication method. Step texts are
translatable; the commands and values in them (PowerShell, scopes, host names) are not, so
translators cannot break them. The values known from the form (mailbox, tenant, client id)
are filled in, the others stay as ``<placeholders>``.
"""

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.html import format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from smtpconfig.models import SmtpServer
from smtpconfig.oauth import GOOGLE_SCOPE

# Host names of Exchange Online's client SMTP submission, where basic authentication retires.
_EXCHANGE_ONLINE_HOSTS = ("smtp.office365.com", "smtp-legacy.office365.com")


@dataclass(frozen=True)
class GuidanceStep:
    text: Promise
    commands: tuple[str, ...] = ()


@dataclass(frozen=True)
class GuidanceSection:
    title: Promise
    steps: tuple[GuidanceStep, ...]


def _microsoft(*, mailbox: str, tenant_id: str, client_id: str) -> list[GuidanceSection]:
    mailbox = mailbox or "<mailbox address>"
    tenant_id = tenant_id or "<Directory (tenant) ID>"
    client_id = client_id or "<Application (client) ID>"
    object_id = "<Object ID from Enterprise applications>"
    return [
        GuidanceSection(
            _(
                "In the Microsoft Entra admin center (entra.microsoft.com), "
                "as a Global Administrator"
            ),
            (
                GuidanceStep(
                    _(
                        "Go to Identity › Applications › App registrations and choose New "
                        "registration. Name it (for example “Mailadmin SMTP”), choose “Accounts in "
                        "this organizational directory only”, leave the redirect URI empty and "
                        "choose Register."
                    )
                ),
                GuidanceStep(
                    _(
                        "On the app's Overview page, copy the Application (client) ID and the "
                        "Directory (tenant) ID into this form."
                    )
                ),
                GuidanceStep(
                    _(
                        "Under Certificates & secrets › Client secrets, choose New client "
                        "secret and copy its Value (not its Secret ID) into this form at once: "
                        "it is shown only once. Note its expiry date and enter a new secret here "
                        "before then."
                    )
                ),
                GuidanceStep(
                    _(
                        "Under API permissions, choose Add a permission › APIs my "
                        "organization uses › Office 365 Exchange Online › Application permissions, "
                        "tick "
                        "SMTP.SendAsApp and choose Add permissions. No Microsoft Graph permission "
                        "is needed."
                    )
                ),
                GuidanceStep(
                    _(
                        "Choose Grant admin consent for your organisation and confirm: the status "
                        "of SMTP.SendAsApp must read Granted."
                    )
                ),
                GuidanceStep(
                    _(
                        "Go to Identity › Applications › Enterprise applications, open the same "
                        "app and copy its Object ID. It is not the Object ID shown under App "
                        "registrations."
                    )
                ),
            ),
        ),
        GuidanceSection(
            _("In Exchange Online PowerShell, as an Exchange administrator"),
            (
                GuidanceStep(
                    _("Connect to your organisation:"),
                    (
                        "Install-Module -Name ExchangeOnlineManagement",
                        f"Connect-ExchangeOnline -Organization {tenant_id}",
                    ),
                ),
                GuidanceStep(
                    _("Register the app's service principal in Exchange Online:"),
                    (f"New-ServicePrincipal -AppId {client_id} -ObjectId {object_id}",),
                ),
                GuidanceStep(
                    _("Allow it to use the mailbox this server sends from:"),
                    (
                        f'Add-MailboxPermission -Identity "{mailbox}" -User {object_id} '
                        "-AccessRights FullAccess",
                    ),
                ),
                GuidanceStep(
                    _(
                        "Make sure SMTP AUTH is enabled for that mailbox (in the Microsoft 365 "
                        "admin center: Users › Active users › the mailbox › Mail › Manage email "
                        "apps › Authenticated SMTP):"
                    ),
                    (
                        f'Set-CASMailbox -Identity "{mailbox}" '
                        "-SmtpClientAuthenticationDisabled $false",
                    ),
                ),
            ),
        ),
        GuidanceSection(
            _("In this form"),
            (
                GuidanceStep(
                    _(
                        "SMTP server smtp.office365.com, port 587, security STARTTLS; SMTP user: "
                        "the mailbox address. Then use “Test connection”. Permissions can take up "
                        "to an hour to reach Exchange Online."
                    )
                ),
            ),
        ),
    ]


def _google(*, mailbox: str) -> list[GuidanceSection]:
    mailbox = mailbox or "<mailbox address>"
    return [
        GuidanceSection(
            _("With a service account (recommended) — in the Google Cloud console"),
            (
                GuidanceStep(
                    _(
                        "Choose or create a project, go to IAM & Admin › Service accounts and "
                        "choose Create service account. It needs no role."
                    )
                ),
                GuidanceStep(
                    _(
                        "Open it, go to Keys › Add key › Create new key › JSON, and paste the "
                        "whole downloaded file into this form as the service account key; then "
                        "delete "
                        "the file. If key creation is refused, an organisation policy forbids "
                        "service account keys: use a refresh token instead."
                    )
                ),
                GuidanceStep(
                    _(
                        "On its Details tab, copy the Unique ID (the numeric OAuth 2 client ID) "
                        "for the next step."
                    )
                ),
            ),
        ),
        GuidanceSection(
            _("Then in the Google Admin console (admin.google.com), as a super administrator"),
            (
                GuidanceStep(
                    _(
                        "Go to Security › Access and data control › API controls › Manage Domain "
                        "Wide Delegation and choose Add new. Enter the Unique ID as Client ID and "
                        "exactly this OAuth scope, then choose Authorize. It can take up to 24 "
                        "hours to apply:"
                    ),
                    (GOOGLE_SCOPE,),
                ),
                GuidanceStep(
                    _(
                        "The mailbox must be an existing Google Workspace user with Gmail turned "
                        "on. This server signs in as:"
                    ),
                    (mailbox,),
                ),
            ),
        ),
        GuidanceSection(
            _("Or with a refresh token — in the Google Cloud console"),
            (
                GuidanceStep(
                    _(
                        "Under APIs & Services › OAuth consent screen, choose the user type "
                        "Internal (refresh tokens of an external app in testing expire after 7 "
                        "days)."
                    )
                ),
                GuidanceStep(
                    _(
                        "Under Credentials › Create credentials › OAuth client ID, choose Web "
                        "application with this authorised redirect URI, and copy the client ID "
                        "and client secret into this form:"
                    ),
                    ("https://developers.google.com/oauthplayground",),
                ),
                GuidanceStep(
                    _(
                        "In the OAuth 2.0 Playground (developers.google.com/oauthplayground), "
                        "open the settings, tick “Use your own OAuth credentials” and enter them. "
                        "Signed in as the mailbox user, authorise this scope, exchange the "
                        "authorization code for tokens and copy the refresh token into this form:"
                    ),
                    (GOOGLE_SCOPE,),
                ),
            ),
        ),
        GuidanceSection(
            _("In this form"),
            (
                GuidanceStep(
                    _(
                        "SMTP server smtp.gmail.com, port 587, security STARTTLS; SMTP user: the "
                        "mailbox address. Then use “Test connection”."
                    )
                ),
            ),
        ),
    ]


def oauth_guidance_for(
    *, auth_method: str, mailbox: str = "", tenant_id: str = "", client_id: str = ""
) -> list[GuidanceSection]:
    """The setup steps for ``auth_method``; none for password sign-in."""
    if auth_method == SmtpServer.AuthMethod.MICROSOFT_OAUTH2:
        return _microsoft(mailbox=mailbox, tenant_id=tenant_id, client_id=client_id)
    if auth_method == SmtpServer.AuthMethod.GOOGLE_OAUTH2:
        return _google(mailbox=mailbox)
    return []


def oauth_guidance_html(
    *, auth_method: str, mailbox: str = "", tenant_id: str = "", client_id: str = ""
) -> SafeString:
    """The steps as HTML (sections, numbered steps, commands as code), escaped throughout."""
    sections = oauth_guidance_for(
        auth_method=auth_method, mailbox=mailbox, tenant_id=tenant_id, client_id=client_id
    )
    return format_html_join(
        "",
        '<section class="oauth-guidance"><h4>{}</h4><ol>{}</ol></section>',
        (
            (
                section.title,
                format_html_join(
                    "",
                    "<li>{}{}</li>",
                    (
                        (
                            step.text,
                            format_html_join(
                                "", "<pre><code>{}</code></pre>", ((c,) for c in step.commands)
                            ),
                        )
                        for step in section.steps
                    ),
                ),
            )
            for section in sections
        ),
    )


def basic_auth_retirement_warning(*, server: SmtpServer) -> str:
    """The warning for a server still signing in to Exchange Online with a password, else ''."""
    if not (
        server.use_auth
        and server.auth_method == SmtpServer.AuthMethod.PASSWORD
        and (server.host or "").strip().lower().rstrip(".") in _EXCHANGE_ONLINE_HOSTS
    ):
        return ""
    return str(
        _(
            "Microsoft is retiring user name and password sign-in (basic authentication) "
            "for SMTP in Exchange Online: from the end of December 2026 it is off by "
            "default for existing organisations. Switch this server to “Microsoft 365 "
            "(OAuth2)” and follow the steps shown for it."
        )
    )
