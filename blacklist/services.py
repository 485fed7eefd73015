"""The verbs of the blacklist: add, change, remove, import. Each records who and why.

"Who" is the history's ``history_user`` (and ``created_by``/``updated_by`` on the entry);
"why" is the history's ``history_change_reason``. Both are set on the instance right before
it is written, so the record is made in the same transaction as the change.
"""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import formats, timezone
from django.utils.text import Truncator
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from audit.services import AuditAction, audit_record
from blacklist.models import BlacklistEntry
from blacklist.normalize import normalize_address
from blacklist.selectors import blacklist_entry_get

# The length of simple_history's ``history_change_reason`` column.
CHANGE_REASON_MAX_LENGTH = 100
EDITABLE_FIELDS = ("email", "reason", "source", "source_detail", "note")


class BlacklistConflict(ValidationError):
    """The address is already listed by another entry; carries that entry."""

    def __init__(self, entry: BlacklistEntry):
        self.entry = entry
        super().__init__(blacklist_entry_explain(entry=entry), code="already_listed")


def blacklist_entry_explain(*, entry: BlacklistEntry) -> str:
    """The sentence shown when an address turns out to be listed already."""
    params = {
        "email": entry.email,
        "date": formats.date_format(timezone.localtime(entry.created_at), "SHORT_DATE_FORMAT"),
        "reason": entry.get_reason_display(),
    }
    if entry.created_by is not None:
        params["user"] = entry.created_by.get_username()
        return (
            gettext(
                "“%(email)s” is already on the blacklist since %(date)s (%(reason)s, added by "
                "%(user)s)."
            )
            % params
        )
    return gettext("“%(email)s” is already on the blacklist since %(date)s (%(reason)s).") % (
        params
    )


def blacklist_add(
    *,
    email: str,
    reason: str,
    source: str,
    note: str = "",
    acting_user=None,
    source_detail: str = "",
) -> tuple[BlacklistEntry, bool]:
    """List ``email`` (an address or ``@domain``); return ``(entry, created)``.

    When the address is already listed, nothing is written and the existing entry is returned
    with ``created`` False (``blacklist_entry_explain`` words it for the user), also when
    another process lists it at the same moment. Raises ``ValidationError`` for an invalid
    address, reason or source.
    """
    address = normalize_address(email)
    _check_choice(reason, BlacklistEntry.Reason, "reason")
    _check_choice(source, BlacklistEntry.Source, "source")
    existing = blacklist_entry_get(email=address)
    if existing is not None:
        return existing, False
    entry = BlacklistEntry(
        email=address,
        reason=reason,
        source=source,
        source_detail=source_detail,
        note=note,
        created_by=acting_user,
        updated_by=acting_user,
    )
    _record(
        entry,
        acting_user=acting_user,
        change_reason=gettext("%(reason)s (%(source)s)")
        % {"reason": entry.get_reason_display(), "source": entry.get_source_display()},
    )
    try:
        with transaction.atomic():
            entry.save(force_insert=True)
    except IntegrityError:
        # Listed by someone else between the look-up and the insert.
        existing = blacklist_entry_get(email=address)
        if existing is None:
            raise
        return existing, False
    return entry, True


def blacklist_privacy_opt_out(*, email: str, note: str = "", acting_user=None):
    """Block ``email`` because the member's data-protection settings refuse e-mail.

    For the CRM: call it when a member changes those settings so that they no longer accept
    mail. It is ``blacklist_add`` with reason ``privacy`` and source ``crm``, so it returns
    ``(entry, created)``, never duplicates an entry, and leaves an address already listed for
    another reason (a bounce, say) as it is. ``acting_user`` is the CRM user who made the
    change, if any; ``note`` is kept with the entry for the managers.
    """
    return blacklist_add(
        email=email,
        reason=BlacklistEntry.Reason.PRIVACY,
        source=BlacklistEntry.Source.CRM,
        note=note,
        acting_user=acting_user,
    )


def blacklist_change(
    *, entry: BlacklistEntry, acting_user=None, change_reason: str = "", **changes
) -> BlacklistEntry:
    """Change the given fields of ``entry`` (any of email, reason, source, source_detail, note).

    Writes nothing when no value differs. Raises ``BlacklistConflict`` when the new address
    is listed by another entry, ``ValidationError`` for an invalid value.
    """
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"blacklist_change() got unexpected fields: {sorted(unknown)}")
    if "email" in changes:
        changes["email"] = normalize_address(changes["email"])
    if "reason" in changes:
        _check_choice(changes["reason"], BlacklistEntry.Reason, "reason")
    if "source" in changes:
        _check_choice(changes["source"], BlacklistEntry.Source, "source")
    stored = BlacklistEntry.objects.get(pk=entry.pk)
    changed = [name for name, value in changes.items() if getattr(stored, name) != value]
    for name, value in changes.items():
        setattr(entry, name, value)
    if not changed:
        return entry
    entry.updated_by = acting_user
    _record(
        entry,
        acting_user=acting_user,
        change_reason=change_reason
        or gettext("Changed: %(fields)s")
        % {"fields": ", ".join(str(entry._meta.get_field(name).verbose_name) for name in changed)},
    )
    try:
        with transaction.atomic():
            entry.save()
    except IntegrityError:
        other = blacklist_entry_get(email=entry.email)
        if other is None:
            raise
        raise BlacklistConflict(other) from None
    return entry


def blacklist_remove(*, entry: BlacklistEntry, acting_user=None, change_reason: str = "") -> None:
    """Take ``entry`` off the blacklist; its history keeps who removed it, when and why."""
    reason = change_reason or gettext("Removed")
    _record(entry, acting_user=acting_user, change_reason=reason)
    with transaction.atomic():
        # Removing an entry lets mail reach that address again: a security-relevant change.
        audit_record(
            action=AuditAction.BLACKLIST_REMOVED,
            obj=entry,
            before={"email": entry.email, "reason": entry.reason, "source": entry.source},
            after={"removed_because": reason},
            user=acting_user,
        )
        entry.delete()


def blacklist_remove_all(*, entries, acting_user=None, change_reason: str = "") -> int:
    """Remove several entries (the admin's bulk removal) together; return how many."""
    removed = 0
    with transaction.atomic():
        for entry in entries:
            blacklist_remove(entry=entry, acting_user=acting_user, change_reason=change_reason)
            removed += 1
    return removed


def blacklist_import(
    *,
    new_entries: list[BlacklistEntry],
    changed_entries: list[BlacklistEntry],
    changed_fields: list[str],
    acting_user=None,
    file_name: str = "",
    batch_size: int | None = None,
) -> None:
    """Write a batch of imported entries with their history, all or nothing.

    New entries get source ``import`` (the file name as detail) and ``acting_user`` as their
    creator; every history record names ``acting_user`` and the file. Raises
    ``IntegrityError`` when one of the new addresses was listed meanwhile by someone else.
    """
    reason = _limit(gettext("Imported from %(file)s") % {"file": file_name or "CSV"})
    now = timezone.now()
    for entry in new_entries:
        entry.source = BlacklistEntry.Source.IMPORT
        entry.source_detail = _limit(file_name, 255)
        entry.created_by = acting_user
        entry.updated_by = acting_user
    for entry in changed_entries:
        entry.updated_by = acting_user
        # bulk_update() skips auto_now, so the change time is set here.
        entry.updated_at = now
    with transaction.atomic():
        if new_entries:
            bulk_create_with_history(
                new_entries,
                BlacklistEntry,
                batch_size=batch_size,
                default_user=acting_user,
                default_change_reason=reason,
            )
        if changed_entries:
            bulk_update_with_history(
                changed_entries,
                BlacklistEntry,
                [*changed_fields, "updated_by", "updated_at"],
                batch_size=batch_size,
                default_user=acting_user,
                default_change_reason=reason,
            )


def _record(entry: BlacklistEntry, *, acting_user, change_reason: str) -> None:
    """Tell simple_history who makes the coming write and why.

    Without an acting user, simple_history falls back to the user of the current request.
    """
    if acting_user is not None:
        entry._history_user = acting_user
    entry._change_reason = _limit(change_reason)


def _limit(text: str, length: int = CHANGE_REASON_MAX_LENGTH) -> str:
    return Truncator(text).chars(length)


def _check_choice(value: str, choices, field: str) -> None:
    if value not in choices.values:
        raise ValidationError(
            {
                field: ValidationError(
                    _("“%(value)s” is not a known %(field)s; use one of: %(choices)s."),
                    code="invalid_choice",
                    params={
                        "value": value,
                        "field": BlacklistEntry._meta.get_field(field).verbose_name,
                        "choices": ", ".join(choices.values),
                    },
                )
            }
        )
