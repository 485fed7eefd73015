"""``manage.py check_domain DOMAIN``: SPF, DMARC, DKIM and MX of a sender domain."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from smtpconfig.dns_health import Verdict, domain_check, server_sender_domains
from smtpconfig.models import SmtpServer


class Command(BaseCommand):
    help = gettext_lazy(
        "Check the SPF, DMARC, DKIM and MX records of a sender domain and print what to "
        "publish where they are wrong."
    )

    def add_arguments(self, parser):
        parser.add_argument("domain")
        parser.add_argument(
            "--server",
            help=gettext_lazy(
                "Name of the server whose sending is checked (default: a server sending "
                "for the domain, else the default server)."
            ),
        )
        parser.add_argument(
            "--selector",
            action="append",
            dest="selectors",
            help=gettext_lazy("DKIM selector to check (repeatable)."),
        )
        parser.add_argument(
            "--strict",
            action="store_true",
            help=gettext_lazy("Exit with status 1 when a check fails."),
        )

    def handle(self, *args, domain, server=None, selectors=None, strict=False, **options):
        chosen = self._server(domain=domain, name=server)
        report = domain_check(domain=domain, server=chosen, selectors=selectors)
        self.stdout.write(
            _("Domain %(domain)s, as sent by %(server)s")
            % {"domain": report.domain, "server": chosen.name if chosen else _("(no server)")}
        )
        styles = {
            Verdict.OK: self.style.SUCCESS,
            Verdict.WARN: self.style.WARNING,
            Verdict.FAIL: self.style.ERROR,
            Verdict.UNKNOWN: self.style.NOTICE,
        }
        for check in report.checks:
            verdict = styles[check.verdict](check.verdict.upper())
            self.stdout.write(f"{check.check.upper():6} {verdict:8} {check.message}")
            for record in check.found:
                self.stdout.write("       " + _("found: %(record)s") % {"record": record})
            if check.publish:
                self.stdout.write(
                    "       "
                    + _("publish TXT at %(name)s: %(record)s")
                    % {"name": check.publish_name, "record": check.publish}
                )
        if strict and report.verdict == Verdict.FAIL:
            raise SystemExit(1)

    def _server(self, *, domain: str, name: str | None) -> SmtpServer | None:
        if name:
            try:
                return SmtpServer.objects.get(name=name)
            except SmtpServer.DoesNotExist:
                raise CommandError(_("No server named “%(name)s”.") % {"name": name}) from None
        domain = domain.strip().lower().rstrip(".")
        servers = list(SmtpServer.objects.filter(is_active=True))
        for server in servers:
            if domain in server_sender_domains(server):
                return server
        return next((server for server in servers if server.is_default), None)
