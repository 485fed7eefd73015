"""Domain health: do SPF, DMARC, DKIM and MX let a server's mail through?

Each check returns a verdict, the records found and, when something is wrong, the record to
publish instead. A name server that does not answer gives "could not check" (``unknown``),
never "fail": a broken resolver must not be reported as a broken domain.

The resolver's name servers come from ``MAILADMIN["DNS_NAMESERVERS"]`` (and ``DNS_PORT``),
read when a check runs; empty means the system's resolver.
"""

import base64
import enum
import ipaddress
import re
from dataclasses import dataclass, field, replace

import dns.exception
import dns.name
import dns.resolver
from cryptography.hazmat.primitives.serialization import load_der_public_key
from django.utils.translation import gettext as _

from smtpconfig.conf import mailadmin_setting
from smtpconfig.dkim import dkim_txt_record
from smtpconfig.models import DkimKey, SmtpServer

# RFC 7208 4.6.4: more DNS-querying terms than this is a permanent error at the receiver.
SPF_MAX_LOOKUPS = 10
# Below this, receivers ignore or reject DKIM signatures (RFC 8301).
DKIM_MIN_BITS = 1024

# What each e-mail service asks its customers to include in their SPF record.
SERVICE_SPF_INCLUDES = {
    SmtpServer.Transport.AMAZON_SES: "amazonses.com",
    SmtpServer.Transport.BREVO: "spf.brevo.com",
    SmtpServer.Transport.MAILGUN: "mailgun.org",
    SmtpServer.Transport.MAILJET: "spf.mailjet.com",
    SmtpServer.Transport.POSTMARK: "spf.mtasv.net",
    SmtpServer.Transport.RESEND: "amazonses.com",
    SmtpServer.Transport.SPARKPOST: "sparkpostmail.com",
}
# Hosted SMTP relays whose own SPF record is what a domain should include.
HOST_SPF_INCLUDES = {
    "office365.com": "spf.protection.outlook.com",
    "outlook.com": "spf.protection.outlook.com",
    "gmail.com": "_spf.google.com",
    "googlemail.com": "_spf.google.com",
}

_SPF_LOOKUP_TERMS = {"include", "a", "mx", "ptr", "exists", "redirect"}


class Verdict(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    UNKNOWN = "unknown"  # the DNS did not answer: could not check


@dataclass(frozen=True)
class CheckResult:
    check: str  # "spf", "dmarc", "dkim", "mx"
    verdict: Verdict
    message: str
    found: list[str] = field(default_factory=list)
    publish: str = ""  # the record to publish instead, empty when nothing needs changing
    publish_name: str = ""  # where to publish it


@dataclass(frozen=True)
class DomainReport:
    domain: str
    checks: list[CheckResult]

    @property
    def verdict(self) -> Verdict:
        """The worst verdict of the checks (``unknown`` ranks below ``fail``)."""
        order = [Verdict.FAIL, Verdict.UNKNOWN, Verdict.WARN, Verdict.OK]
        return min((check.verdict for check in self.checks), key=order.index)


class DnsUnavailable(Exception):
    """The name servers did not answer (timeout, SERVFAIL): the record is unknown."""


def dns_resolver() -> dns.resolver.Resolver:
    """A resolver on ``MAILADMIN["DNS_NAMESERVERS"]`` (system resolver when empty)."""
    nameservers = mailadmin_setting("DNS_NAMESERVERS")
    if nameservers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = list(nameservers)
        resolver.port = mailadmin_setting("DNS_PORT")
    else:
        resolver = dns.resolver.Resolver()
    resolver.timeout = resolver.lifetime = mailadmin_setting("DNS_TIMEOUT")
    # Answers are checked as published now, not as an earlier check cached them.
    resolver.cache = None
    return resolver


def _query(resolver: dns.resolver.Resolver, name: str, rdtype: str):
    """Answers for ``name``; an empty list when the name or the type does not exist."""
    try:
        return list(resolver.resolve(name, rdtype, search=False))
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as error:
        raise DnsUnavailable(str(error)) from error
    except dns.name.LabelTooLong:
        return []


def dns_txt(*, resolver: dns.resolver.Resolver, name: str) -> list[str]:
    """The TXT records of ``name``, each one's strings joined as receivers join them."""
    return [
        b"".join(rdata.strings).decode("utf-8", "replace")
        for rdata in _query(resolver, name, "TXT")
    ]


def dns_addresses(*, resolver: dns.resolver.Resolver, name: str) -> set[ipaddress._BaseAddress]:
    try:
        return {ipaddress.ip_address(name)}
    except ValueError:
        pass
    found = set()
    for rdtype in ("A", "AAAA"):
        found |= {ipaddress.ip_address(rdata.address) for rdata in _query(resolver, name, rdtype)}
    return found


def _is_spf(text: str) -> bool:
    return re.match(r"^v=spf1(\s|$)", text.strip(), re.IGNORECASE) is not None


def _is_dmarc(text: str) -> bool:
    return re.match(r"^v=DMARC1\s*(;|$)", text.strip(), re.IGNORECASE) is not None


def spf_expected_include(server: SmtpServer | None) -> str:
    """The ``include:`` domain the server's service or hosted relay publishes, if known."""
    if server is None:
        return ""
    if server.transport != SmtpServer.Transport.SMTP:
        return SERVICE_SPF_INCLUDES.get(server.transport, "")
    host = (server.host or "").lower().rstrip(".")
    for suffix, include in HOST_SPF_INCLUDES.items():
        if host == suffix or host.endswith(f".{suffix}"):
            return include
    return ""


@dataclass
class _SpfWalk:
    """What a recursive walk of an SPF record found."""

    lookups: int = 0
    includes: set[str] = field(default_factory=set)
    networks: list = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    visited: set[str] = field(default_factory=set)


def _spf_terms(record: str) -> list[tuple[str, str, str]]:
    """(qualifier, mechanism or modifier name, argument) for each term after ``v=spf1``."""
    terms = []
    for term in record.split()[1:]:
        qualifier = "+"
        if term[0] in "+-~?":
            qualifier, term = term[0], term[1:]
        match = re.match(r"^([A-Za-z][A-Za-z0-9_-]*)([:=/]?)(.*)$", term)
        if match is None:
            continue
        name, separator, argument = match.groups()
        if separator == "/":
            argument = f"/{argument}"
        terms.append((qualifier, name.lower(), argument))
    return terms


def _spf_walk(resolver, domain: str, record: str, walk: _SpfWalk) -> None:
    walk.visited.add(domain)
    for qualifier, name, argument in _spf_terms(record):
        if name in _SPF_LOOKUP_TERMS:
            walk.lookups += 1
        if walk.lookups > SPF_MAX_LOOKUPS:
            return
        if name in ("include", "redirect"):
            target = argument.lower().rstrip(".")
            walk.includes.add(target)
            if "%" in target or target in walk.visited:
                continue
            child = [text for text in dns_txt(resolver=resolver, name=target) if _is_spf(text)]
            if len(child) != 1:
                walk.errors.append(
                    _("%(name)s:%(target)s has %(count)d SPF records, receivers need exactly one.")
                    % {"name": name, "target": target, "count": len(child)}
                )
                continue
            _spf_walk(resolver, target, child[0], walk)
        elif qualifier != "+":
            continue
        elif name in ("ip4", "ip6"):
            try:
                walk.networks.append(ipaddress.ip_network(argument, strict=False))
            except ValueError:
                walk.errors.append(_("“%(term)s” is not a valid address.") % {"term": argument})
        elif name == "a":
            target = (argument or domain).partition("/")[0] or domain
            if "%" not in target:
                for address in dns_addresses(resolver=resolver, name=target):
                    walk.networks.append(ipaddress.ip_network(address))
        elif name == "mx":
            target = (argument or domain).partition("/")[0] or domain
            if "%" not in target:
                for rdata in _query(resolver, target, "MX"):
                    exchange = rdata.exchange.to_text(omit_final_dot=True)
                    for address in dns_addresses(resolver=resolver, name=exchange):
                        walk.networks.append(ipaddress.ip_network(address))


def _spf_all(record: str) -> str:
    """The qualifier of the record's ``all`` term, or ``""`` without one."""
    for qualifier, name, _argument in _spf_terms(record):
        if name == "all":
            return qualifier
    return ""


def _spf_with(record: str, mechanism: str) -> str:
    """``record`` with ``mechanism`` added before its ``all`` (or at the end)."""
    parts = record.split()
    for index, part in enumerate(parts):
        if part.lstrip("+-~?").lower() == "all":
            return " ".join(parts[:index] + [mechanism] + parts[index:])
    return " ".join(parts + [mechanism])


def _spf_mechanism(*, server: SmtpServer | None, addresses: set) -> str:
    include = spf_expected_include(server)
    if include:
        return f"include:{include}"
    if server is not None and server.host:
        try:
            address = ipaddress.ip_address(server.host)
        except ValueError:
            return f"a:{server.host.lower().rstrip('.')}"
        return f"ip{address.version}:{address}"
    if addresses:
        address = sorted(addresses, key=str)[0]
        return f"ip{address.version}:{address}"
    return ""


def spf_check(*, resolver, domain: str, server: SmtpServer | None = None) -> CheckResult:
    """SPF of ``domain``: exactly one record, under 10 lookups, authorising ``server``."""
    try:
        records = [text for text in dns_txt(resolver=resolver, name=domain) if _is_spf(text)]
        host_addresses = (
            dns_addresses(resolver=resolver, name=server.host)
            if server is not None and server.host and server.transport == SmtpServer.Transport.SMTP
            else set()
        )
    except DnsUnavailable as error:
        return CheckResult(
            "spf", Verdict.UNKNOWN, _("Could not check: the DNS did not answer (%s).") % error
        )
    mechanism = _spf_mechanism(server=server, addresses=host_addresses)
    if not records:
        if not mechanism:
            return CheckResult(
                "spf",
                Verdict.FAIL,
                _(
                    "No SPF record: Gmail and other receivers mark the mail as spam or refuse "
                    "it. Publish one naming the servers that send for this domain, e.g. "
                    "“v=spf1 a:smtp.example.org ~all”."
                ),
                publish_name=domain,
            )
        return CheckResult(
            "spf",
            Verdict.FAIL,
            _(
                "No SPF record: Gmail and other receivers mark the mail as spam or refuse it. "
                "Publish this TXT record."
            ),
            publish=f"v=spf1 {mechanism} ~all",
            publish_name=domain,
        )
    if len(records) > 1:
        merged = records[0]
        for other in records[1:]:
            for term in other.split()[1:]:
                if term.lstrip("+-~?").lower() != "all" and term not in merged.split():
                    merged = _spf_with(merged, term)
        return CheckResult(
            "spf",
            Verdict.FAIL,
            _(
                "%(count)d SPF records: receivers treat this as an error and ignore them all. "
                "Replace them by one record."
            )
            % {"count": len(records)},
            found=records,
            publish=merged,
            publish_name=domain,
        )
    record = records[0]
    walk = _SpfWalk()
    try:
        _spf_walk(resolver, domain.lower().rstrip("."), record, walk)
    except DnsUnavailable as error:
        return CheckResult(
            "spf",
            Verdict.UNKNOWN,
            _("Could not check: the DNS did not answer (%s).") % error,
            found=records,
        )
    if walk.lookups > SPF_MAX_LOOKUPS:
        return CheckResult(
            "spf",
            Verdict.FAIL,
            _(
                "The record needs more than %(max)d DNS lookups: receivers stop there and "
                "treat it as an error. Remove includes you no longer use or replace them by "
                "ip4:/ip6: ranges."
            )
            % {"max": SPF_MAX_LOOKUPS},
            found=records,
        )
    if walk.errors:
        return CheckResult("spf", Verdict.FAIL, " ".join(walk.errors), found=records)
    if server is None:
        return CheckResult(
            "spf",
            Verdict.OK,
            _("One SPF record with %(count)d DNS lookups.") % {"count": walk.lookups},
            found=records,
        )
    include = spf_expected_include(server)
    authorised = bool(include) and include in walk.includes
    if not authorised and host_addresses:
        authorised = all(
            any(address in network for network in walk.networks) for address in host_addresses
        )
    if not authorised:
        if not include and not host_addresses:
            return CheckResult(
                "spf",
                Verdict.WARN,
                _(
                    "One SPF record, but whether it authorises %(server)s cannot be told: "
                    "check the service's documentation."
                )
                % {"server": server.name},
                found=records,
            )
        if server.transport != SmtpServer.Transport.SMTP:
            # Most services send with their own bounce domain (Return-Path), which is what
            # SPF checks; the From domain's record matters once a custom one is set up.
            return CheckResult(
                "spf",
                Verdict.WARN,
                _(
                    "The SPF record does not include %(mechanism)s. Add it if %(server)s "
                    "sends with a bounce address (Return-Path) in this domain."
                )
                % {"server": server.name, "mechanism": mechanism},
                found=records,
                publish=_spf_with(record, mechanism),
                publish_name=domain,
            )
        return CheckResult(
            "spf",
            Verdict.FAIL,
            _("The SPF record does not authorise %(server)s (%(mechanism)s).")
            % {"server": server.name, "mechanism": mechanism},
            found=records,
            publish=_spf_with(record, mechanism),
            publish_name=domain,
        )
    if _spf_all(record) in ("+", "?"):
        return CheckResult(
            "spf",
            Verdict.WARN,
            _("The record ends in “%(all)sall”: it lets anybody send as this domain.")
            % {"all": _spf_all(record)},
            found=records,
            publish=re.sub(r"[+?]all\b", "~all", record),
            publish_name=domain,
        )
    return CheckResult(
        "spf",
        Verdict.OK,
        _("One SPF record authorising %(server)s, %(count)d DNS lookups.")
        % {"server": server.name, "count": walk.lookups},
        found=records,
    )


def _dmarc_tags(record: str) -> dict[str, str]:
    tags = {}
    for part in record.split(";"):
        key, separator, value = part.partition("=")
        if separator:
            tags[key.strip().lower()] = value.strip()
    return tags


def dmarc_check(*, resolver, domain: str) -> CheckResult:
    """DMARC of ``domain`` (or of its parent, the organisational domain): present, policy."""
    name = f"_dmarc.{domain}"
    suggestion = f"v=DMARC1; p=none; rua=mailto:postmaster@{domain}"
    try:
        records = [text for text in dns_txt(resolver=resolver, name=name) if _is_dmarc(text)]
        labels = domain.rstrip(".").split(".")
        if not records and len(labels) > 2:
            name = "_dmarc." + ".".join(labels[1:])
            records = [text for text in dns_txt(resolver=resolver, name=name) if _is_dmarc(text)]
    except DnsUnavailable as error:
        return CheckResult(
            "dmarc", Verdict.UNKNOWN, _("Could not check: the DNS did not answer (%s).") % error
        )
    if not records:
        return CheckResult(
            "dmarc",
            Verdict.FAIL,
            _(
                "No DMARC record: Gmail and Yahoo require one from senders of bulk mail. "
                "Start with a policy of “none” and tighten it once reports show all mail "
                "is aligned."
            ),
            publish=suggestion,
            publish_name=f"_dmarc.{domain}",
        )
    if len(records) > 1:
        return CheckResult(
            "dmarc",
            Verdict.FAIL,
            _("%(count)d DMARC records: receivers ignore them all. Keep one.")
            % {"count": len(records)},
            found=records,
            publish=records[0],
            publish_name=name,
        )
    tags = _dmarc_tags(records[0])
    policy = tags.get("p", "").lower()
    alignment = _("SPF alignment %(aspf)s, DKIM alignment %(adkim)s.") % {
        "aspf": _("strict") if tags.get("aspf", "r").lower() == "s" else _("relaxed"),
        "adkim": _("strict") if tags.get("adkim", "r").lower() == "s" else _("relaxed"),
    }
    if policy not in ("none", "quarantine", "reject"):
        return CheckResult(
            "dmarc",
            Verdict.FAIL,
            _("The DMARC record has no valid policy (p=none, quarantine or reject)."),
            found=records,
            publish=suggestion,
            publish_name=name,
        )
    if policy == "none":
        return CheckResult(
            "dmarc",
            Verdict.WARN,
            _("DMARC policy “none”: receivers are only asked to report, not to protect.")
            + " "
            + alignment,
            found=records,
        )
    return CheckResult(
        "dmarc",
        Verdict.OK,
        _("DMARC policy “%(policy)s”.") % {"policy": policy} + " " + alignment,
        found=records,
    )


def dkim_public_key_bits(public_key_b64: str) -> int:
    """Size in bits of a DKIM ``p=`` key (base64 DER); ``0`` when it cannot be read."""
    try:
        key = load_der_public_key(base64.b64decode(re.sub(r"\s+", "", public_key_b64)))
    except ValueError:
        return 0
    return getattr(key, "key_size", 0)


def dkim_check(*, resolver, domain: str, selector: str, expected_record: str = "") -> CheckResult:
    """The selector's DKIM record exists, holds a key of at least 1024 bits, and matches ours."""
    name = f"{selector}._domainkey.{domain}"
    try:
        records = dns_txt(resolver=resolver, name=name)
    except DnsUnavailable as error:
        return CheckResult(
            "dkim", Verdict.UNKNOWN, _("Could not check: the DNS did not answer (%s).") % error
        )
    if not records:
        return CheckResult(
            "dkim",
            Verdict.FAIL,
            _("No DKIM record for the selector “%(selector)s”: signed mail cannot be verified.")
            % {"selector": selector},
            publish=expected_record,
            publish_name=name,
        )
    tags = _dmarc_tags(records[0])
    public_key = tags.get("p", "")
    bits = dkim_public_key_bits(public_key) if public_key else 0
    if not public_key:
        return CheckResult(
            "dkim",
            Verdict.FAIL,
            _("The DKIM record has no key (p= is empty: the key was revoked)."),
            found=records,
            publish=expected_record,
            publish_name=name,
        )
    if bits < DKIM_MIN_BITS:
        return CheckResult(
            "dkim",
            Verdict.FAIL,
            _(
                "The DKIM key has %(bits)d bits: receivers ignore keys under %(min)d bits. "
                "Generate a new key and publish it."
            )
            % {"bits": bits, "min": DKIM_MIN_BITS},
            found=records,
            publish=expected_record,
            publish_name=name,
        )
    expected_key = _dmarc_tags(expected_record).get("p", "") if expected_record else ""
    if expected_key and re.sub(r"\s+", "", public_key) != expected_key:
        return CheckResult(
            "dkim",
            Verdict.FAIL,
            _(
                "The published DKIM key is not the one Mailadmin signs with: signatures fail. "
                "Publish this record."
            ),
            found=records,
            publish=expected_record,
            publish_name=name,
        )
    return CheckResult(
        "dkim",
        Verdict.OK,
        _("DKIM key of %(bits)d bits published for the selector “%(selector)s”.")
        % {"bits": bits, "selector": selector},
        found=records,
    )


def mx_check(*, resolver, domain: str) -> CheckResult:
    """The domain receives mail: replies and bounces come back, receivers trust it more."""
    try:
        answers = _query(resolver, domain, "MX")
    except DnsUnavailable as error:
        return CheckResult(
            "mx", Verdict.UNKNOWN, _("Could not check: the DNS did not answer (%s).") % error
        )
    found = sorted(
        f"{rdata.preference} {rdata.exchange.to_text(omit_final_dot=True) or '.'}"
        for rdata in answers
    )
    if not answers:
        return CheckResult(
            "mx",
            Verdict.WARN,
            _("No MX record: replies and bounces to this domain cannot be delivered."),
        )
    if all(rdata.exchange == dns.name.root for rdata in answers):
        return CheckResult(
            "mx",
            Verdict.WARN,
            _("A null MX record: this domain says it receives no mail, so replies bounce."),
            found=found,
        )
    return CheckResult("mx", Verdict.OK, _("The domain receives mail."), found=found)


def server_sender_domains(server: SmtpServer) -> list[str]:
    """The domains ``server`` sends for: its filter's domains and addresses, its sender."""
    domains = []
    entries = [part.strip() for part in (server.from_filter or "").split(",")]
    for entry in [*entries, server.sender_email or ""]:
        domain = entry.rpartition("@")[2].strip().lower().rstrip(".")
        if domain and domain not in domains:
            domains.append(domain)
    return domains


def domain_check(
    *, domain: str, server: SmtpServer | None = None, selectors: list[str] | None = None
) -> DomainReport:
    """Every check for ``domain`` as ``server`` would send for it.

    DKIM is checked for the given selectors, else for the selector of the domain's
    Mailadmin key; without either it is a warning telling how to get a key.
    """
    domain = domain.strip().lower().rstrip(".")
    resolver = dns_resolver()
    checks = [
        spf_check(resolver=resolver, domain=domain, server=server),
        dmarc_check(resolver=resolver, domain=domain),
    ]
    key = DkimKey.objects.filter(domain=domain, is_active=True).first()
    if selectors:
        for selector in selectors:
            expected = dkim_txt_record(key=key)[1] if key and key.selector == selector else ""
            checks.append(
                dkim_check(
                    resolver=resolver, domain=domain, selector=selector, expected_record=expected
                )
            )
    elif key is not None:
        checks.append(
            dkim_check(
                resolver=resolver,
                domain=domain,
                selector=key.selector,
                expected_record=dkim_txt_record(key=key)[1],
            )
        )
    elif server is not None and server.transport != SmtpServer.Transport.SMTP:
        checks.append(
            CheckResult(
                "dkim",
                Verdict.WARN,
                _(
                    "%(service)s signs the mail: check in its dashboard that the domain "
                    "is verified and its DKIM records are published."
                )
                % {"service": server.get_transport_display()},
            )
        )
    else:
        checks.append(
            CheckResult(
                "dkim",
                Verdict.WARN,
                _(
                    "No DKIM key for this domain: generate one under DKIM keys and publish "
                    "its record, so receivers can verify the mail."
                ),
            )
        )
    checks.append(mx_check(resolver=resolver, domain=domain))
    return DomainReport(domain=domain, checks=_with_dmarc_alignment(checks, server=server))


def _with_dmarc_alignment(
    checks: list[CheckResult], *, server: SmtpServer | None
) -> list[CheckResult]:
    """Fail DMARC when its policy is enforced but neither SPF nor DKIM passes for ``server``.

    DMARC passes when SPF or DKIM passes for the From domain; with neither, receivers apply
    the policy (quarantine or reject) to every message of this server.
    """
    by_name = {check.check: check for check in checks}
    dmarc = by_name["dmarc"]
    if server is None or dmarc.verdict != Verdict.OK:
        return checks
    if by_name["spf"].verdict == Verdict.OK or by_name["dkim"].verdict == Verdict.OK:
        return checks
    if Verdict.UNKNOWN in (by_name["spf"].verdict, by_name["dkim"].verdict):
        return checks
    if server.transport != SmtpServer.Transport.SMTP:
        # The service signs with its own DKIM keys, which this check cannot see.
        return checks
    failing = replace(
        dmarc,
        verdict=Verdict.FAIL,
        message=dmarc.message
        + " "
        + _(
            "Neither SPF nor DKIM passes for %(server)s: receivers apply this policy to "
            "its mail. Fix SPF or publish a DKIM key."
        )
        % {"server": server.name},
    )
    return [failing if check is dmarc else check for check in checks]


def server_domain_health(*, server: SmtpServer) -> list[DomainReport]:
    """A report for each sender domain of ``server``."""
    return [domain_check(domain=domain, server=server) for domain in server_sender_domains(server)]
