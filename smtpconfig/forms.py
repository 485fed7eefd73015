"""Forms of the server admin: the server itself (secrets write-only) and the test mail."""

import json

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from smtpconfig.esp import ESP_SERVICES, esp_credentials_validate
from smtpconfig.hosts import UnsafeHost, host_check
from smtpconfig.models import SmtpServer
from smtpconfig.oauth import OAUTH_METHODS, OAuthCredentialsInvalid, oauth_credentials_parse
from smtpconfig.services import from_filter_conflicts
from smtpconfig.validation import (
    FromFilterError,
    HostError,
    from_filter_format,
    host_normalize,
    parse_from_filter,
)

# Ports whose security is fixed by convention (RFC 8314): a mismatch hangs or fails on
# connect with an obscure error, so it is refused when saved, with the fix spelled out.
IMPLICIT_TLS_PORTS = {465}
STARTTLS_PORTS = {25, 587}

# One sentence per period: languages place and inflect the period differently.
LIMIT_COUNT_REQUIRED = {
    SmtpServer.LimitPeriod.HOUR: _("Enter the maximum number of recipients per hour."),
    SmtpServer.LimitPeriod.DAY: _("Enter the maximum number of recipients per day."),
    SmtpServer.LimitPeriod.WEEK: _("Enter the maximum number of recipients per week."),
}


# What an administrator finds in each service's console, by credentials key.
ESP_KEY_LABELS = {
    "server_token": _("Server API token"),
    "api_key": _("API key"),
    "secret_key": _("Secret key"),
    "access_key_id": _("Access key ID"),
    "secret_access_key": _("Secret access key"),
    "region": _("Region (for example eu-west-1)"),
    "configuration_set_name": _("Configuration set"),
    "message_stream": _("Message stream"),
    "sender_domain": _("Sending domain"),
    "api_url": _("API URL"),
    "subaccount": _("Subaccount"),
}
# Keys that name or locate an account without authenticating to it: typed in clear text.
ESP_PUBLIC_KEYS = frozenset(
    {"region", "configuration_set_name", "message_stream", "sender_domain", "api_url", "subaccount"}
)
# Fields that only an SMTP server uses: for an e-mail service they are neither required
# nor validated, and what was stored stays.
SMTP_ONLY_FIELDS = ("host", "port", "security", "username")

MICROSOFT_FIELDS = {
    "tenant_id": "ms_tenant_id",
    "client_id": "ms_client_id",
    "client_secret": "ms_client_secret",
}
GOOGLE_TOKEN_FIELDS = {
    "client_id": "google_client_id",
    "client_secret": "google_client_secret",
    "refresh_token": "google_refresh_token",
}
GOOGLE_KEY_FIELD = "google_service_account_key"
# Identifiers typed in clear text, whose stored value the form may show.
PUBLIC_OAUTH_FIELDS = frozenset({"ms_tenant_id", "ms_client_id", "google_client_id"})


def esp_field_name(transport: str, key: str) -> str:
    """The form field of one credentials key of one e-mail service."""
    return f"esp_{transport}_{key}"


def esp_field_names(transport: str) -> list[str]:
    service = ESP_SERVICES[transport]
    return [esp_field_name(transport, key) for key in [*service.required, *service.optional]]


def credentials_stored(*, server: SmtpServer) -> dict:
    """The server's stored credentials document; empty when none or unreadable."""
    try:
        document = json.loads(str(server.credentials or "") or "{}")
    except ValueError:
        # Unreadable: nothing to keep, the form asks for the values again.
        return {}
    return document if isinstance(document, dict) else {}


class SecretTextarea(forms.Textarea):
    """A textarea that never sends its value back to the browser, not even after an error."""

    def format_value(self, value):
        return None


def _secret_input():
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


def _esp_credential_fields() -> dict[str, forms.Field]:
    fields = {}
    for transport, service in ESP_SERVICES.items():
        for key in [*service.required, *service.optional]:
            public = key in ESP_PUBLIC_KEYS
            fields[esp_field_name(transport, key)] = forms.CharField(
                label=ESP_KEY_LABELS.get(key, key),
                required=False,
                help_text="" if key in service.required else _("Optional."),
                widget=forms.TextInput(attrs={"autocomplete": "off"})
                if public
                else _secret_input(),
            )
    return fields


# Declared on a base class so the admin's fieldsets can name them like any form field.
EspCredentialFields = type("EspCredentialFields", (forms.Form,), _esp_credential_fields())


class SmtpServerForm(EspCredentialFields, forms.ModelForm):
    """A server as typed in the admin.

    Secrets are never sent to the browser. ``new_password`` starts blank, blank keeps the
    stored one, and ``clear_password`` removes it. The credentials of an e-mail service or an
    OAuth2 sign-in are typed the same way, one field per value; they are stored together as
    the encrypted JSON document ``credentials`` (see ``credentials_document``), and
    ``clear_credentials`` removes the stored ones.
    """

    new_password = forms.CharField(
        label=_("SMTP password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    clear_password = forms.BooleanField(label=_("Remove the stored password"), required=False)

    ms_tenant_id = forms.CharField(label=_("Directory (tenant) ID"), required=False)
    ms_client_id = forms.CharField(label=_("Application (client) ID"), required=False)
    ms_client_secret = forms.CharField(
        label=_("Client secret (its value)"), required=False, widget=_secret_input()
    )
    google_service_account_key = forms.CharField(
        label=_("Service account key (JSON)"),
        required=False,
        widget=SecretTextarea(attrs={"rows": 4, "autocomplete": "off"}),
        help_text=_("Paste the whole JSON key file Google provides."),
    )
    google_client_id = forms.CharField(label=_("OAuth client ID"), required=False)
    google_client_secret = forms.CharField(
        label=_("OAuth client secret"), required=False, widget=_secret_input()
    )
    google_refresh_token = forms.CharField(
        label=_("Refresh token"), required=False, widget=_secret_input()
    )
    clear_credentials = forms.BooleanField(
        label=_("Remove the stored credentials"),
        required=False,
        help_text=_("Values typed above replace them; the others are removed."),
    )

    class Meta:
        model = SmtpServer
        fields = [
            "name",
            "from_filter",
            "sender_name",
            "sender_email",
            "reply_to",
            "transport",
            "host",
            "port",
            "security",
            "use_auth",
            "auth_method",
            "username",
            "timeout",
            "limit_period",
            "limit_count",
            "max_connections",
            "is_active",
        ]
        widgets = {"from_filter": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A post without these keeps what is stored (forms and scripts that predate them).
        for name in ("transport", "auth_method"):
            if name in self.fields:
                self.fields[name].required = False
        if "username" in self.fields:
            self.fields["username"].help_text = _(
                "With OAuth2 sign-in: the mailbox address. Left empty, the sender e-mail is used."
            )
        if "new_password" in self.fields:
            self.fields["new_password"].help_text = (
                _("A password is stored. Leave blank to keep it.")
                if self.instance.password
                else _("No password is stored.")
            )
        self._describe_stored_credentials()
        # The new credentials document, or ``None`` to keep the stored one (set by clean()).
        self.credentials_document: str | None = None

    def _describe_stored_credentials(self):
        """Say which credentials are stored, showing only values that are no secret."""
        stored = credentials_stored(server=self.instance)
        if not stored:
            return
        fields = {}
        if self.instance.transport in ESP_SERVICES:
            fields = {
                esp_field_name(self.instance.transport, key): key
                for key in stored
                if key in ESP_KEY_LABELS
            }
        elif self.instance.auth_method == SmtpServer.AuthMethod.MICROSOFT_OAUTH2:
            fields = {field: key for key, field in MICROSOFT_FIELDS.items()}
        elif self.instance.auth_method == SmtpServer.AuthMethod.GOOGLE_OAUTH2:
            fields = {field: key for key, field in GOOGLE_TOKEN_FIELDS.items()}
            fields[GOOGLE_KEY_FIELD] = "service_account_info"
        for name, key in fields.items():
            value = stored.get(key)
            if name not in self.fields or not value:
                continue
            shown = isinstance(value, str) and (
                key in ESP_PUBLIC_KEYS or name in PUBLIC_OAUTH_FIELDS
            )
            self.fields[name].help_text = (
                _("Stored: %(value)s. Leave blank to keep it.") % {"value": value}
                if shown
                else _("A value is stored. Leave blank to keep it.")
            )

    def _chosen(self, name: str) -> str:
        if name not in self.fields:
            return getattr(self.instance, name)
        return self[name].value() or getattr(self.instance, name)

    @property
    def chosen_transport(self) -> str:
        """The transport as typed (the stored one until the form is posted)."""
        return self._chosen("transport")

    @property
    def chosen_auth_method(self) -> str:
        return self._chosen("auth_method")

    @property
    def sends_by_smtp(self) -> bool:
        return self.chosen_transport == SmtpServer.Transport.SMTP

    def clean_transport(self):
        return self.cleaned_data.get("transport") or self.instance.transport

    def clean_auth_method(self):
        return self.cleaned_data.get("auth_method") or self.instance.auth_method

    def clean_host(self):
        host = self.cleaned_data.get("host", "")
        if not host.strip():
            if self.sends_by_smtp:
                raise forms.ValidationError(
                    _("Enter the SMTP server's host name."), code="required"
                )
            return ""
        try:
            return host_normalize(host)
        except HostError as error:
            raise forms.ValidationError(str(error), code="invalid_host") from error

    def clean_from_filter(self):
        try:
            entries = parse_from_filter(self.cleaned_data.get("from_filter", ""))
        except FromFilterError as error:
            raise forms.ValidationError(str(error), code="invalid_filter_entry") from error
        conflicts = from_filter_conflicts(entries=entries, server_id=self.instance.pk)
        if conflicts:
            raise forms.ValidationError(
                [
                    forms.ValidationError(
                        _(
                            "“%(entry)s” is already in the filter of server “%(server)s”: a "
                            "sender can be routed to one server only."
                        ),
                        code="filter_entry_claimed",
                        params={"entry": entry, "server": server},
                    )
                    for entry, server in sorted(conflicts.items())
                ]
            )
        return from_filter_format(entries)

    def clean(self):
        cleaned = super().clean()
        self._clean_limit(cleaned)
        self._clean_authentication(cleaned)
        if self.sends_by_smtp:
            self._clean_security(cleaned)
            self._clean_destination(cleaned)
        else:
            self._ignore_smtp_fields(cleaned)
        self._clean_credentials(cleaned)
        if self.instance.is_default and cleaned.get("is_active") is False:
            self.add_error(
                "is_active",
                forms.ValidationError(
                    _(
                        "This is the default server and cannot be deactivated. Make another "
                        "server the default first."
                    ),
                    code="default_inactive",
                ),
            )
        return cleaned

    def _ignore_smtp_fields(self, cleaned):
        # An e-mail service has no SMTP host, port or user: whatever those fields hold is
        # neither checked nor saved, and the stored values stay for a switch back to SMTP.
        for name in SMTP_ONLY_FIELDS:
            if name in self.errors:
                del self.errors[name]
            cleaned[name] = getattr(self.instance, name)

    def _clean_credentials(self, cleaned):
        transport = self.chosen_transport
        method = self.chosen_auth_method
        stored = credentials_stored(server=self.instance)
        if cleaned.get("clear_credentials"):
            stored = {}
        if transport in ESP_SERVICES:
            same = self.instance.transport == transport
            document = self._esp_document(cleaned, transport, stored if same else {})
        elif method in OAUTH_METHODS:
            same = (
                self.instance.transport == SmtpServer.Transport.SMTP
                and self.instance.auth_method == method
            )
            base = stored if same else {}
            if method == SmtpServer.AuthMethod.MICROSOFT_OAUTH2:
                document = self._microsoft_document(cleaned, base)
            else:
                document = self._google_document(cleaned, base)
        else:
            # Password sign-in keeps no service or OAuth2 secret it no longer uses.
            document = {}
        if document is not None and document != credentials_stored(server=self.instance):
            self.credentials_document = json.dumps(document, sort_keys=True) if document else ""

    def _esp_document(self, cleaned, transport: str, base: dict) -> dict | None:
        service = ESP_SERVICES[transport]
        document = dict(base)
        for key in [*service.required, *service.optional]:
            typed = cleaned.get(esp_field_name(transport, key))
            if typed:
                document[key] = typed
        missing = [key for key in service.required if not document.get(key)]
        for key in missing:
            self.add_error(
                esp_field_name(transport, key),
                forms.ValidationError(
                    _("Enter the %(value)s from your %(service)s account."),
                    code="credential_required",
                    params={
                        "value": ESP_KEY_LABELS.get(key, key),
                        "service": SmtpServer.Transport(transport).label,
                    },
                ),
            )
        if missing:
            return None
        try:
            return esp_credentials_validate(transport=transport, credentials=document)
        except ValidationError as error:
            self.add_error(None, error)
            return None

    def _oauth_required(self) -> bool:
        return bool(self.cleaned_data.get("use_auth"))

    def _oauth_check(self, document: dict, *, field: str | None) -> bool:
        try:
            oauth_credentials_parse(
                auth_method=self.chosen_auth_method, credentials=json.dumps(document)
            )
        except OAuthCredentialsInvalid as error:
            # The message names what is wrong, never a value typed.
            self.add_error(field, forms.ValidationError(str(error), code="oauth_invalid"))
            return False
        return True

    def _microsoft_document(self, cleaned, base: dict) -> dict | None:
        document = {key: base[key] for key in MICROSOFT_FIELDS if base.get(key)}
        for key, field in MICROSOFT_FIELDS.items():
            if cleaned.get(field):
                document[key] = cleaned[field]
        if not self._oauth_required():
            return document
        missing = [key for key in MICROSOFT_FIELDS if not document.get(key)]
        for key in missing:
            self.add_error(
                MICROSOFT_FIELDS[key],
                forms.ValidationError(
                    _(
                        "Required for Microsoft 365 (OAuth2) sign-in: follow the steps shown "
                        "for it."
                    ),
                    code="oauth_required",
                ),
            )
        if missing or not self._oauth_check(document, field="ms_tenant_id"):
            return None
        return document

    def _google_document(self, cleaned, base: dict) -> dict | None:
        key_text = cleaned.get(GOOGLE_KEY_FIELD)
        typed = {
            key: cleaned[field] for key, field in GOOGLE_TOKEN_FIELDS.items() if cleaned.get(field)
        }
        if key_text and typed:
            self.add_error(
                GOOGLE_KEY_FIELD,
                forms.ValidationError(
                    _(
                        "Enter either a service account key or a client ID, client secret and "
                        "refresh token, not both."
                    ),
                    code="oauth_both",
                ),
            )
            return None
        if key_text:
            try:
                document = {"service_account_info": json.loads(key_text)}
            except ValueError:
                # Without the decoder's message: it quotes the text around the error.
                self.add_error(
                    GOOGLE_KEY_FIELD,
                    forms.ValidationError(
                        _("The service account key is not the JSON file Google provides."),
                        code="oauth_invalid",
                    ),
                )
                return None
        elif typed:
            kept = {} if "service_account_info" in base else base
            document = {**{key: kept[key] for key in GOOGLE_TOKEN_FIELDS if kept.get(key)}, **typed}
        else:
            document = dict(base)
        if not self._oauth_required():
            return document
        if "service_account_info" in document:
            return document if self._oauth_check(document, field=GOOGLE_KEY_FIELD) else None
        if not document:
            self.add_error(
                GOOGLE_KEY_FIELD,
                forms.ValidationError(
                    _(
                        "Paste the service account key, or enter a client ID, client secret "
                        "and refresh token, as the steps shown for it explain."
                    ),
                    code="oauth_required",
                ),
            )
            return None
        missing = [key for key in GOOGLE_TOKEN_FIELDS if not document.get(key)]
        for key in missing:
            self.add_error(
                GOOGLE_TOKEN_FIELDS[key],
                forms.ValidationError(
                    _("Required for sign-in with a refresh token."), code="oauth_required"
                ),
            )
        if missing or not self._oauth_check(document, field=None):
            return None
        return document

    def _clean_destination(self, cleaned):
        host = cleaned.get("host")
        if not host or self.has_error("host"):
            return
        try:
            host_check(host=host, port=cleaned.get("port") or 25)
        except UnsafeHost as error:
            self.add_error("host", error)

    def _clean_limit(self, cleaned):
        period = cleaned.get("limit_period")
        count = cleaned.get("limit_count")
        if period is None:
            return
        if period != SmtpServer.LimitPeriod.NONE and count is None:
            self.add_error(
                "limit_count",
                forms.ValidationError(LIMIT_COUNT_REQUIRED[period], code="limit_count_required"),
            )
        if period == SmtpServer.LimitPeriod.NONE and count is not None:
            self.add_error(
                "limit_count",
                forms.ValidationError(
                    _(
                        "There is no send limit: leave the number empty, or choose a period "
                        "(per hour, day or week)."
                    ),
                    code="limit_count_without_period",
                ),
            )

    def _clean_security(self, cleaned):
        port = cleaned.get("port")
        security = cleaned.get("security")
        if not self.sends_by_smtp or port is None or security is None:
            return
        if port in IMPLICIT_TLS_PORTS and security != SmtpServer.Security.SSL:
            self.add_error(
                "security",
                forms.ValidationError(
                    _(
                        "Port %(port)s expects SSL/TLS from the first byte. Choose SSL/TLS, "
                        "or port 587 with STARTTLS."
                    ),
                    code="port_expects_ssl",
                    params={"port": port},
                ),
            )
        if port in STARTTLS_PORTS and security == SmtpServer.Security.SSL:
            self.add_error(
                "security",
                forms.ValidationError(
                    _(
                        "Port %(port)s starts without encryption and switches with STARTTLS. "
                        "Choose STARTTLS, or port 465 with SSL/TLS."
                    ),
                    code="port_expects_starttls",
                    params={"port": port},
                ),
            )

    def _clean_authentication(self, cleaned):
        new_password = cleaned.get("new_password")
        clear_password = cleaned.get("clear_password")
        if new_password and clear_password:
            self.add_error(
                "clear_password",
                forms.ValidationError(
                    _("Either type a new password or remove the stored one, not both."),
                    code="password_and_clear",
                ),
            )
            return
        uses_password = (
            self.sends_by_smtp
            and cleaned.get("use_auth")
            and self.chosen_auth_method == SmtpServer.AuthMethod.PASSWORD
        )
        if not uses_password:
            return
        if not cleaned.get("username"):
            self.add_error(
                "username",
                forms.ValidationError(
                    _("Enter the SMTP user, or untick SMTP authentication."),
                    code="username_required",
                ),
            )
        keeps_password = bool(self.instance.password) and not clear_password
        if not new_password and not keeps_password:
            self.add_error(
                "new_password",
                forms.ValidationError(
                    _("Enter the SMTP password, or untick SMTP authentication."),
                    code="password_required",
                ),
            )


class DiagnosticMailForm(forms.Form):
    recipient = forms.EmailField(
        label=_("Send the test mail to"),
        help_text=_("One address; the mail goes straight through this server, not the outbox."),
    )
