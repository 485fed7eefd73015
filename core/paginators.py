"""A paginator for admin lists that may hold millions of rows (the outbox, the blacklist)."""

from django.core.paginator import Paginator
from django.utils.functional import cached_property
from django.utils.translation import gettext as _

# Counting every row of a million-row table costs more than the whole page; past this many,
# the list says "more than" and offers the pages up to here (filters and search narrow it).
COUNT_CAP = 10_000


class CountAtLeast(int):
    """A count that stopped at the cap: arithmetic sees the cap, the page reads "more than"."""

    def __str__(self) -> str:
        return _("more than %(count)d") % {"count": int(self)}


class CappedCountPaginator(Paginator):
    """Counts at most ``COUNT_CAP`` rows, in a time that does not grow with the table."""

    @cached_property
    def count(self) -> int:
        # Without the ordering the database counts from any index instead of sorting.
        counted = self.object_list.order_by()[: COUNT_CAP + 1].count()
        return CountAtLeast(COUNT_CAP) if counted > COUNT_CAP else counted
