"""Reads of the blacklist."""

import functools

from django.core.exceptions import ValidationError

from blacklist.models import BlacklistEntry
from blacklist.normalize import address_match_key, domain_of, normalize_address
from core.compiled import CompiledQuery


@functools.lru_cache(maxsize=64)
def _entries_query(count: int) -> CompiledQuery:
    """The entries (and their creators) listing any of ``count`` keys: the query every sent
    message makes, composed once per number of keys."""
    placeholders = [f"{number}@" for number in range(count)]
    return CompiledQuery(
        lambda: BlacklistEntry.objects.filter(email__in=placeholders).select_related("created_by")
    )


def blacklist_blocked(*, addresses: list[str]) -> dict[str, BlacklistEntry]:
    """Map each blocked address of ``addresses`` to the entry that blocks it.

    One query for a whole message: exact addresses and ``@domain`` entries together. An exact
    entry wins over a domain entry; a plus-address is blocked only when listed exactly.
    Addresses are matched in their normal form (case, whitespace, IDN domains); the keys of
    the result are the addresses as given.
    """
    keys = {address: address_match_key(address) for address in addresses}
    if not keys:
        return {}
    wanted = sorted(set(keys.values()) | {f"@{domain_of(key)}" for key in keys.values()})
    query = _entries_query(len(wanted))
    entries = {entry.email: entry for entry in query.instances(query.rows(wanted))}
    blocked = {}
    for address, key in keys.items():
        entry = entries.get(key) or entries.get(f"@{domain_of(key)}")
        if entry is not None:
            blocked[address] = entry
    return blocked


def blacklist_entry_get(*, email: str) -> BlacklistEntry | None:
    """The entry listing exactly ``email`` (in any spelling), or None.

    A value that is not an address cannot be listed, so it gives None too.
    """
    try:
        address = normalize_address(email)
    except ValidationError:
        return None
    return BlacklistEntry.objects.select_related("created_by").filter(email=address).first()
