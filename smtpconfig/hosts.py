"""Which hosts the portal may open an SMTP connection to.

An administrator types the SMTP host; a careless or hostile value must not turn the portal
into a way to reach the cloud's metadata service or other machine-local endpoints. The host
is checked when a server is saved and again before every connection, since a name can
change what it resolves to.

Loopback and private ranges stay allowed by default: a relay on the same machine or the
club's network is normal. ``MAILADMIN['OUTBOUND_ALLOW_LOOPBACK']`` and
``['OUTBOUND_ALLOW_PRIVATE']`` narrow that.
"""

import ipaddress
import socket

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from smtpconfig.conf import mailadmin_setting

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud instance-metadata endpoints. Most are link-local already; these are not:
# AWS's IPv6 endpoint (a unique-local address), Alibaba's (shared address space) and
# Azure's wire server (a public address).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",
        "100.100.100.200",
        "168.63.129.16",
    )
)
# 0.0.0.0/8 means "this host" to Linux: connecting there reaches local services.
THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
# NAT64 maps IPv4 into this prefix; a gateway would forward to the embedded address.
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeHost(ValidationError):
    """The SMTP host is, or resolves to, an address the portal never connects to.

    A ``ValidationError``, so a form's ``clean`` that calls ``host_check`` shows it on the
    field as it is.
    """

    def __init__(self, message, *, host: str, address: str = ""):
        super().__init__(message, code="unsafe_host")
        self.host = host
        self.address = address


def host_check(*, host: str, port: int) -> list[str]:
    """Resolve ``host`` and return its addresses; raise ``UnsafeHost`` if any is refused.

    Every address counts, not only the first: a resolver may return several, and the
    connection may use any of them. A name that does not resolve returns an empty list;
    it reaches nothing, and the caller decides whether that is an error.
    """
    name = (host or "").strip().strip("[]")
    if not name:
        raise UnsafeHost(_("The SMTP server's host is empty."), host=host)
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    addresses = []
    for info in infos:
        address = info[4][0].split("%", 1)[0]  # drop an IPv6 zone id ("fe80::1%eth0")
        if address not in addresses:
            addresses.append(address)
    for address in addresses:
        reason = address_refusal(ipaddress.ip_address(address))
        if reason:
            if name == address:
                message = _("%(host)s is %(reason)s: the portal never connects there.")
            else:
                message = _(
                    "%(host)s resolves to %(address)s, %(reason)s: the portal never connects there."
                )
            raise UnsafeHost(
                message % {"host": host, "address": address, "reason": reason},
                host=host,
                address=address,
            )
    return addresses


def address_refusal(address: IPAddress) -> str:
    """Why the portal must not connect to ``address`` (a phrase), or "" if it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or (
            ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in NAT64 else None
        )
        if embedded is not None:
            return address_refusal(embedded)
    if address in METADATA_ADDRESSES:
        return str(_("a cloud metadata address"))
    if address.is_unspecified or (address.version == 4 and address in THIS_NETWORK):
        return str(_("an unspecified address"))
    if address.is_link_local:
        return str(_("a link-local address"))
    if address.is_multicast:
        return str(_("a multicast address"))
    if address.version == 4 and address == ipaddress.IPv4Address("255.255.255.255"):
        return str(_("a broadcast address"))
    if address.is_loopback:
        if not mailadmin_setting("OUTBOUND_ALLOW_LOOPBACK"):
            return str(_("a loopback address, which this site does not allow"))
        return ""
    if address.is_reserved:
        return str(_("a reserved address"))
    if address.is_private and not mailadmin_setting("OUTBOUND_ALLOW_PRIVATE"):
        return str(_("a private address, which this site does not allow"))
    return ""
