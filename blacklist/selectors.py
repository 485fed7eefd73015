"""Reads of the blacklist."""

import functools
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from blacklist.models import BlacklistEntry
from blacklist.normalize import address_match_key, domain_of, normalize_address
from core.compiled import CompiledQuery, Read, rows_together


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


@dataclass(frozen=True)
class BlacklistLookup:
    """The reads that find which of some addresses the blacklist blocks: run them
    (``core.compiled.rows_together``, alone or with the other reads of a call) and give
    their rows to ``blocked``."""

    keys: dict[str, str]
    reads: list[Read]

    def blocked(self, rows: list[list[tuple]]) -> dict[str, BlacklistEntry]:
        """Map each blocked address to the entry that blocks it, from the rows of
        ``reads``."""
        entries = {}
        for (query, _chunk), chunk_rows in zip(self.reads, rows, strict=True):
            entries.update((entry.email, entry) for entry in query.instances(chunk_rows))
        blocked = {}
        for address, key in self.keys.items():
            entry = entries.get(key) or entries.get(f"@{domain_of(key)}")
            if entry is not None:
                blocked[address] = entry
        return blocked


def blacklist_lookup(*, addresses: list[str]) -> BlacklistLookup:
    """The lookup of ``addresses``: one read per ``KEYS_PER_QUERY`` keys, exact addresses
    and ``@domain`` entries together."""
    keys = {address: address_match_key(address) for address in addresses}
    wanted = sorted(set(keys.values()) | {f"@{domain_of(key)}" for key in keys.values()})
    reads = [
        (_entries_query(len(chunk)), chunk)
        for chunk in (
            wanted[start : start + KEYS_PER_QUERY]
            for start in range(0, len(wanted), KEYS_PER_QUERY)
        )
    ]
    return BlacklistLookup(keys=keys, reads=reads)


def blacklist_blocked(*, addresses: list[str]) -> dict[str, BlacklistEntry]:
    """Map each blocked address of ``addresses`` to the entry that blocks it.

    One query per ``KEYS_PER_QUERY`` keys (a message's, or a whole mass mailing's), in one
    round trip on PostgreSQL: exact addresses and ``@domain`` entries together. An exact
    entry wins over a domain entry; a plus-address is blocked only when listed exactly.
    Addresses are matched in their normal form (case, whitespace, IDN domains); the keys of
    the result are the addresses as given.
    """
    lookup = blacklist_lookup(addresses=addresses)
    return lookup.blocked(rows_together(lookup.reads))


def blacklist_entry_get(*, email: str) -> BlacklistEntry | None:
    """The entry listing exactly ``email`` (in any spelling), or None.

    A value that is not an address cannot be listed, so it gives None too.
    """
    try:
        address = normalize_address(email)
    except ValidationError:
        return None
    return BlacklistEntry.objects.select_related("created_by").filter(email=address).first()
