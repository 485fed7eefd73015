"""Forms of the server admin: the server itself (password write-only) and the test mail."""

from django import forms
from django.utils.translation import gettext_lazy as _

from smtpconfig.hosts import UnsafeHost, host_check
from smtpconfig.models import SmtpServer
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


class SmtpServerForm(forms.ModelForm):
    """A server as typed in the admin.

    The stored password is never sent to the browser: ``new_password`` starts blank, blank
    keeps the stored one, and ``clear_password`` removes it.
    """

    new_password = forms.CharField(
        label=_("SMTP password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    clear_password = forms.BooleanField(label=_("Remove the stored password"), required=False)

    class Meta:
        model = SmtpServer
        fields = [
            "name",
            "from_filter",
            "sender_name",
            "sender_email",
            "reply_to",
            "host",
            "port",
            "security",
            "use_auth",
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
        if "new_password" in self.fields:
            self.fields["new_password"].help_text = (
                _("A password is stored. Leave blank to keep it.")
                if self.instance.password
                else _("No password is stored.")
            )

    @property
    def sends_by_smtp(self) -> bool:
        return self.instance.transport == SmtpServer.Transport.SMTP

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
        self._clean_security(cleaned)
        self._clean_authentication(cleaned)
        self._clean_destination(cleaned)
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
            and self.instance.auth_method == SmtpServer.AuthMethod.PASSWORD
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
