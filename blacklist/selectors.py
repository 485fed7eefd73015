"""Reads of the blacklist."""

from django.db.models import Q

from blacklist.models import BlacklistEntry
from blacklist.normalize import domain_of


def blacklist_blocked(*, addresses: list[str]) -> dict[str, BlacklistEntry]:
    """Map each blocked address of ``addresses`` (already normalised) to its entry.

    One query for a whole message: exact addresses and ``@domain`` entries together. An exact
    entry wins over a domain entry; a plus-address is blocked only when listed exactly.
    """
    if not addresses:
        return {}
    domains = {f"@{domain_of(address)}" for address in addresses}
    entries = {
        entry.email: entry
        for entry in BlacklistEntry.objects.filter(Q(email__in=addresses) | Q(email__in=domains))
    }
    blocked = {}
    for address in addresses:
        entry = entries.get(address) or entries.get(f"@{domain_of(address)}")
        if entry is not None:
            blocked[address] = entry
    return blocked
