"""The client's address, as the lockouts and the audit trail see it."""

import ipaddress

from django.http import HttpRequest

from smtpconfig.conf import mailadmin_setting


def client_ip_address(request: HttpRequest) -> str | None:
    """The address of the client, counting ``TRUSTED_PROXY_COUNT`` proxies from the right.

    Each trusted proxy appends the address it received the request from to
    X-Forwarded-For, and the last one is ``REMOTE_ADDR``. Reading from the right means an
    address the client wrote into the header itself is never taken for its own, and with no
    trusted proxy the header is ignored altogether.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    proxies = mailadmin_setting("TRUSTED_PROXY_COUNT")
    if not proxies:
        return remote
    forwarded = [
        hop.strip()
        for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if hop.strip()
    ]
    chain = [*forwarded, remote] if remote else forwarded
    if not chain:
        return None
    candidate = chain[max(0, len(chain) - 1 - proxies)]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        # Garbage where a trusted proxy should have written an address: fall back to the
        # proxy's own address rather than trust it.
        return remote
