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


# Keys looked up by one query: a message's few, or a mass mailing's in a few queries, each
# well under the number of parameters SQLite and PostgreSQL take.
KEYS_PER_QUERY = 500


def blacklist_blocked(*, addresses: list[str]) -> dict[str, BlacklistEntry]:
    """Map each blocked address of ``addresses`` to the entry that blocks it.

    One query per ``KEYS_PER_QUERY`` keys (a message's, or a whole mass mailing's): exact
    addresses and ``@domain`` entries together. An exact entry wins over a domain entry; a
    plus-address is blocked only when listed exactly. Addresses are matched in their normal
    form (case, whitespace, IDN domains); the keys of the result are the addresses as given.
    """
    keys = {address: address_match_key(address) for address in addresses}
    if not keys:
        return {}
    wanted = sorted(set(keys.values()) | {f"@{domain_of(key)}" for key in keys.values()})
    entries = {}
    for start in range(0, len(wanted), KEYS_PER_QUERY):
        chunk = wanted[start : start + KEYS_PER_QUERY]
        query = _entries_query(len(chunk))
        entries.update((entry.email, entry) for entry in query.instances(query.rows(chunk)))
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
